//! Prefix prompts and the shared system prompt, for prefix-cache benchmarks (AIPerf's
//! `--num-prefix-prompts`, `--prefix-prompt-length` and `--shared-system-prompt-length`), or
//! the user's own [`SystemPrompt`] in its place.
//!
//! - A pool of `num_prefix_prompts` prompts of `prefix_prompt_length` tokens is generated once;
//!   each synthetic or `single_turn` conversation gets one of them, chosen with the seed, at
//!   the start of its first user message. Requests sharing a prefix share that many leading
//!   tokens.
//! - A system prompt of `shared_system_prompt_length` tokens, the same for every conversation,
//!   starts the first turn of each conversation as a system message (the runner keeps it at the
//!   head of the history for later turns).
//! - A [`SystemPrompt`] given verbatim takes that place instead. A dataset's own system message
//!   (a `multi_turn` session's leading system turn) follows it in the same message, after
//!   [`super::system_prompt::SYSTEM_PROMPT_SEPARATOR`], as AIPerf joins them.
//!
//! Generated prompts are made of [`PromptWords`] and a verbatim one is counted once by the
//! run's tokenizer, so token counts stay exact: [`super::Turn::input_tokens`] includes them.
//! This module sits in the dataset stage of DESIGN.md §4, applied by each source as it builds
//! its turns.

use rand::Rng;
use rand::rngs::StdRng;

use super::system_prompt::SystemPrompt;
use super::{PromptWords, rng_for};
use crate::endpoint::{Message, Role};

/// Random stream purposes under the dataset seed.
const PREFIX_POOL_STREAM: u64 = 0x7072_6566_6978;
const SYSTEM_PROMPT_STREAM: u64 = 0x7379_7374_656d;
const PREFIX_CHOICE_STREAM: u64 = 0x6368_6f69_6365;

/// What prefixes to generate; all zero and no verbatim prompt (the default) turns every
/// feature off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixConfig {
    /// How many distinct prefix prompts (`--num-prefix-prompts`); 0 for none.
    pub num_prefix_prompts: usize,
    /// Tokens of each prefix prompt (`--prefix-prompt-length`); 0 for none.
    pub prefix_prompt_length: u32,
    /// Tokens of the system prompt shared by every conversation
    /// (`--shared-system-prompt-length`); 0 for none.
    pub shared_system_prompt_length: u32,
    /// A system prompt given verbatim; it replaces the generated one (the CLI refuses both).
    pub system_prompt: Option<SystemPrompt>,
}

/// The generated prefixes, and a seeded chooser handing one to each request.
#[derive(Debug, Clone)]
pub struct PrefixPrompts {
    pool: Vec<String>,
    pool_tokens: u32,
    system: Option<String>,
    system_tokens: u32,
    /// Whether `system` was given verbatim, so a dataset's own system message joins it.
    verbatim: bool,
    choice: StdRng,
}

impl PrefixPrompts {
    /// Generates the prefixes `config` asks for from `words`, deterministically under `seed`.
    pub fn generate(config: &PrefixConfig, words: &PromptWords, seed: u64) -> Self {
        let pool_tokens = if config.num_prefix_prompts == 0 {
            0
        } else {
            config.prefix_prompt_length
        };
        let pool = if pool_tokens == 0 {
            Vec::new()
        } else {
            let mut rng = rng_for(seed, PREFIX_POOL_STREAM);
            (0..config.num_prefix_prompts)
                .map(|_| words.prompt(pool_tokens, &mut rng))
                .collect()
        };
        let (system, system_tokens) = match &config.system_prompt {
            Some(verbatim) => (Some(verbatim.text().to_owned()), verbatim.tokens()),
            None => {
                let tokens = config.shared_system_prompt_length;
                let generated = (tokens > 0)
                    .then(|| words.prompt(tokens, &mut rng_for(seed, SYSTEM_PROMPT_STREAM)));
                (generated, tokens)
            }
        };
        Self {
            pool,
            pool_tokens,
            system,
            system_tokens,
            verbatim: config.system_prompt.is_some(),
            choice: rng_for(seed, PREFIX_CHOICE_STREAM),
        }
    }

    /// No prefixes at all.
    pub fn none() -> Self {
        Self::generate(&PrefixConfig::default(), &PromptWords::builtin(), 0)
    }

    /// The prefix prompts of the pool.
    pub fn pool(&self) -> &[String] {
        &self.pool
    }

    /// The shared system prompt, if any.
    pub fn system_prompt(&self) -> Option<&str> {
        self.system.as_deref()
    }

    /// The system prompt when it was given verbatim: a dataset's own system message then
    /// joins it, after [`super::system_prompt::SYSTEM_PROMPT_SEPARATOR`], in one message.
    pub fn verbatim_system_prompt(&self) -> Option<&str> {
        self.system.as_deref().filter(|_| self.verbatim)
    }

    /// The next request's prefix and its token count (`("", 0)` without a pool).
    pub fn next_prefix(&mut self) -> (&str, u32) {
        if self.pool.is_empty() {
            return ("", 0);
        }
        let index = self.choice.random_range(0..self.pool.len());
        (&self.pool[index], self.pool_tokens)
    }

    /// The first-turn messages before the user's: the shared system message, if any, and its
    /// token count.
    pub fn system_messages(&self) -> (Vec<Message>, u32) {
        match &self.system {
            Some(system) => (
                vec![Message {
                    role: Role::System,
                    content: system.clone(),
                }],
                self.system_tokens,
            ),
            None => (Vec::new(), 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Tokenizer;

    fn config() -> PrefixConfig {
        PrefixConfig {
            num_prefix_prompts: 3,
            prefix_prompt_length: 40,
            shared_system_prompt_length: 25,
            system_prompt: None,
        }
    }

    #[test]
    fn prefixes_have_exact_lengths_and_are_distinct() {
        let prefixes = PrefixPrompts::generate(&config(), &PromptWords::builtin(), 1);
        let tokenizer = Tokenizer::builtin();
        assert_eq!(prefixes.pool().len(), 3);
        for prefix in prefixes.pool() {
            assert_eq!(tokenizer.count(prefix), 40);
        }
        assert_ne!(prefixes.pool()[0], prefixes.pool()[1]);
        let (messages, tokens) = prefixes.system_messages();
        assert_eq!(tokens, 25);
        assert_eq!(messages[0].role, Role::System);
        assert_eq!(tokenizer.count(&messages[0].content), 25);
    }

    #[test]
    fn the_choice_is_deterministic_and_uses_the_whole_pool() {
        let choose = |seed| {
            let mut prefixes = PrefixPrompts::generate(&config(), &PromptWords::builtin(), seed);
            (0..60)
                .map(|_| prefixes.next_prefix().0.to_owned())
                .collect::<Vec<_>>()
        };
        let chosen = choose(5);
        assert_eq!(chosen, choose(5));
        let distinct: std::collections::HashSet<_> = chosen.iter().collect();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn zero_turns_each_feature_off() {
        let mut none = PrefixPrompts::none();
        assert_eq!(none.next_prefix(), ("", 0));
        assert_eq!(none.system_messages(), (Vec::new(), 0));
        let only_count = PrefixConfig {
            num_prefix_prompts: 4,
            ..PrefixConfig::default()
        };
        let mut prefixes = PrefixPrompts::generate(&only_count, &PromptWords::builtin(), 0);
        assert!(prefixes.pool().is_empty());
        assert_eq!(prefixes.next_prefix(), ("", 0));
    }

    #[test]
    fn a_verbatim_system_prompt_takes_the_system_message_s_place() {
        let tokenizer = Tokenizer::builtin();
        let text = "You are a terse assistant.\nAnswer in one line.";
        let config = PrefixConfig {
            system_prompt: Some(SystemPrompt::new(text.to_owned(), &tokenizer).unwrap()),
            ..PrefixConfig::default()
        };
        let prefixes = PrefixPrompts::generate(&config, &PromptWords::builtin(), 0);
        let (messages, tokens) = prefixes.system_messages();
        let system = Message {
            role: Role::System,
            content: text.to_owned(),
        };
        assert_eq!(messages, [system]);
        assert_eq!(u64::from(tokens), tokenizer.count(text));
        assert_eq!(prefixes.verbatim_system_prompt(), Some(text));
        let generated = PrefixPrompts::generate(&self::config(), &PromptWords::builtin(), 0);
        assert!(generated.system_prompt().is_some());
        assert_eq!(
            generated.verbatim_system_prompt(),
            None,
            "generated, not verbatim"
        );
    }
}
