//! Synthetic prompts of exact token lengths, as AIPerf's `--isl`/`--osl` flags describe them,
//! in conversations of one turn or, with `--conversation-turn-mean`, of several.
//!
//! Prompts are made of [`PromptWords`], each exactly one token of the chosen tokenizer, so a
//! prompt of N words is N tokens without running the tokenizer on the critical path. Lengths
//! are drawn from a normal distribution (mean, stddev) rounded and clamped to at least 1, or
//! uniformly from a window, deterministically from the seed. With [`PrefixConfig`] set, each
//! conversation's first prompt starts with one of the prefix prompts and each conversation
//! with the system prompt, counted in [`Turn::input_tokens`].
//!
//! A conversation of several turns ([`SyntheticConfig::turns`]) has a prompt of its own for
//! each turn; the runner sends each with the conversation so far, and each turn after the
//! first waits its [`TurnDelay`] after the previous answer, as in AIPerf.
//!
//! ```
//! use aiperf_core::dataset::synthetic::{self, LengthDistribution, SyntheticConfig};
//!
//! let conversations = synthetic::generate(&SyntheticConfig {
//!     input_tokens: LengthDistribution::fixed(128),
//!     entries: 4,
//!     turns: LengthDistribution::fixed(3),
//!     ..SyntheticConfig::default()
//! });
//! assert_eq!(conversations[0].turns.len(), 3);
//! assert_eq!(conversations[0].turns[2].input_tokens, Some(128));
//! ```

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use super::{Conversation, PrefixConfig, PrefixPrompts, PromptWords, Turn, rng_for};

/// A distribution of whole numbers of at least 1 (token lengths, turns per conversation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LengthDistribution {
    /// A normal draw, rounded: a mean and a standard deviation (0 for a fixed length).
    Normal {
        /// Mean length.
        mean: u32,
        /// Standard deviation.
        stddev: f64,
    },
    /// A uniform draw from `low..=high` (`--random-range-ratio`'s window, as `vllm bench
    /// serve` draws it); `low` is at most `high` (a window the other way draws `high`).
    Uniform {
        /// The shortest length drawn.
        low: u32,
        /// The longest length drawn.
        high: u32,
    },
}

/// The wait before each turn after a conversation's first (`--conversation-turn-delay-mean`,
/// `-stddev`, `-ratio`): a normal draw in milliseconds, at least 0, times `ratio`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnDelay {
    /// Mean, milliseconds.
    pub mean_ms: f64,
    /// Standard deviation, milliseconds (0 for a fixed delay).
    pub stddev_ms: f64,
    /// What every drawn delay is multiplied by (1 keeps them; 0 removes them).
    pub ratio: f64,
}

impl TurnDelay {
    /// One delay drawn from the distribution.
    fn sample(&self, rng: &mut impl Rng) -> Duration {
        let ms = if self.stddev_ms > 0.0 {
            Normal::new(self.mean_ms, self.stddev_ms)
                .expect("stddev is positive and finite")
                .sample(rng)
        } else {
            self.mean_ms
        };
        Duration::try_from_secs_f64((ms * self.ratio).max(0.0) / 1e3).unwrap_or(Duration::MAX)
    }
}

impl LengthDistribution {
    /// A fixed length.
    pub fn fixed(mean: u32) -> Self {
        Self::normal(mean, 0.0)
    }

    /// Normal draws around `mean`, `stddev` apart (0 for a fixed length).
    pub fn normal(mean: u32, stddev: f64) -> Self {
        Self::Normal { mean, stddev }
    }

    /// One length drawn from the distribution: at least 1.
    pub(crate) fn sample(&self, rng: &mut impl Rng) -> u32 {
        match *self {
            Self::Normal { mean, stddev } if stddev <= 0.0 => mean.max(1),
            Self::Normal { mean, stddev } => {
                let normal =
                    Normal::new(f64::from(mean), stddev).expect("stddev is positive and finite");
                let value = normal.sample(rng).round();
                if value < 1.0 {
                    1
                } else {
                    value.min(f64::from(u32::MAX)) as u32
                }
            }
            Self::Uniform { low, high } => rng.random_range(low.min(high)..=high).max(1),
        }
    }
}

/// What the synthetic dataset is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// Prompt lengths (`--isl`, `--isl-stddev`), not counting prefixes.
    pub input_tokens: LengthDistribution,
    /// Output lengths asked for (`--osl`, `--osl-stddev`); `None` lets the server decide.
    pub output_tokens: Option<LengthDistribution>,
    /// How many distinct prompts (`--num-dataset-entries`).
    pub entries: usize,
    /// The random seed (`--random-seed`).
    pub seed: u64,
    /// The words prompts are made of, for the chosen tokenizer
    /// ([`PromptWords::for_tokenizer`]).
    pub prompt_words: PromptWords,
    /// Prefix prompts and the shared system prompt (none by default).
    pub prefix: PrefixConfig,
    /// Turns per conversation (`--conversation-turn-mean`, `-stddev`; 1 by default).
    pub turns: LengthDistribution,
    /// The wait before each turn after the first; `None` sends it as soon as the previous
    /// turn's answer is in.
    pub turn_delay: Option<TurnDelay>,
}

impl Default for SyntheticConfig {
    /// AIPerf's defaults: 550-token prompts, the server's choice of output length, 100 entries,
    /// seed 0, the builtin tokenizer's words, no prefixes, conversations of one turn.
    fn default() -> Self {
        Self {
            input_tokens: LengthDistribution::fixed(550),
            output_tokens: None,
            entries: 100,
            seed: 0,
            prompt_words: PromptWords::builtin(),
            prefix: PrefixConfig::default(),
            turns: LengthDistribution::fixed(1),
            turn_delay: None,
        }
    }
}

/// The random stream of turn counts and delays, apart from the prompts' stream (a delay's
/// stddev changes no prompt).
const SESSION_SHAPE_STREAM: u64 = 0x7475_726e_7373;

/// Builds `config.entries` conversations of the sampled number of turns, each a prompt of the
/// sampled length.
pub fn generate(config: &SyntheticConfig) -> Vec<Conversation> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut shape = rng_for(config.seed, SESSION_SHAPE_STREAM);
    let mut prefixes = PrefixPrompts::generate(&config.prefix, &config.prompt_words, config.seed);
    (0..config.entries)
        .map(|i| {
            let turns = config.turns.sample(&mut shape);
            Conversation {
                session_id: format!("synthetic-{i}"),
                turns: (0..turns)
                    .map(|turn| {
                        let delay = (turn > 0)
                            .then(|| config.turn_delay.map(|delay| delay.sample(&mut shape)))
                            .flatten();
                        Turn {
                            delay,
                            ..synthetic_turn(config, turn == 0, &mut prefixes, &mut rng)
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

/// One turn's prompt, of a sampled length; a conversation's first turn starts with the shared
/// system prompt and one of the prefix prompts, as AIPerf starts it.
fn synthetic_turn(
    config: &SyntheticConfig,
    first: bool,
    prefixes: &mut PrefixPrompts,
    rng: &mut StdRng,
) -> Turn {
    let input_tokens = config.input_tokens.sample(rng);
    let max_output_tokens = config.output_tokens.map(|d| d.sample(rng));
    let ((messages, system_tokens), (prefix, prefix_tokens)) = if first {
        (prefixes.system_messages(), prefixes.next_prefix())
    } else {
        ((Vec::new(), 0), ("", 0))
    };
    let mut prompt = String::with_capacity(prefix.len() + input_tokens as usize * 8);
    prompt.push_str(prefix);
    config
        .prompt_words
        .push_words(&mut prompt, input_tokens, rng);
    let prompt_tokens = u64::from(prefix_tokens) + u64::from(input_tokens);
    Turn::of_prompt(
        (messages, u64::from(system_tokens)),
        (prompt, prompt_tokens),
        max_output_tokens,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Tokenizer;

    fn config(stddev: f64) -> SyntheticConfig {
        SyntheticConfig {
            input_tokens: LengthDistribution::normal(100, stddev),
            output_tokens: Some(LengthDistribution::fixed(32)),
            entries: 20,
            seed: 7,
            ..SyntheticConfig::default()
        }
    }

    #[test]
    fn prompts_have_exact_token_lengths() {
        let tokenizer = Tokenizer::builtin();
        for conversation in generate(&config(10.0)) {
            let turn = &conversation.turns[0];
            let counted = tokenizer.count(&turn.input.messages[0].content);
            assert_eq!(Some(counted), turn.input_tokens);
            assert_eq!(turn.input.max_output_tokens, Some(32));
        }
    }

    #[test]
    fn fixed_lengths_are_exact_and_the_seed_makes_it_deterministic() {
        let a = generate(&config(0.0));
        assert!(a.iter().all(|c| c.turns[0].input_tokens == Some(100)));
        assert_eq!(a, generate(&config(0.0)));
        let other = generate(&SyntheticConfig {
            seed: 8,
            ..config(0.0)
        });
        assert_ne!(a, other);
        // Distinct prompts: a prefix cache cannot serve them all from one entry.
        assert_ne!(a[0].turns[0].input, a[1].turns[0].input);
    }

    #[test]
    fn sampled_lengths_spread_around_the_mean_and_stay_positive() {
        let conversations = generate(&SyntheticConfig {
            input_tokens: LengthDistribution::normal(3, 50.0),
            entries: 200,
            ..config(0.0)
        });
        let lengths: Vec<u64> = conversations
            .iter()
            .map(|c| c.turns[0].input_tokens.unwrap())
            .collect();
        assert!(lengths.iter().all(|&l| l >= 1));
        assert!(lengths.iter().any(|&l| l > 50));
    }

    #[test]
    fn prefixes_and_the_shared_system_prompt_are_counted_exactly() {
        let tokenizer = Tokenizer::builtin();
        let conversations = generate(&SyntheticConfig {
            prefix: PrefixConfig {
                num_prefix_prompts: 2,
                prefix_prompt_length: 30,
                shared_system_prompt_length: 12,
                system_prompt: None,
            },
            ..config(10.0)
        });
        let pool = PrefixPrompts::generate(
            &PrefixConfig {
                num_prefix_prompts: 2,
                prefix_prompt_length: 30,
                shared_system_prompt_length: 12,
                system_prompt: None,
            },
            &PromptWords::builtin(),
            7,
        );
        for conversation in &conversations {
            let turn = &conversation.turns[0];
            let [system, user] = &turn.input.messages[..] else {
                panic!("a system and a user message: {:?}", turn.input.messages);
            };
            assert_eq!(system.role, crate::endpoint::Role::System);
            assert_eq!(Some(system.content.as_str()), pool.system_prompt());
            assert!(
                pool.pool()
                    .iter()
                    .any(|p| user.content.starts_with(p.as_str()))
            );
            let counted = tokenizer.count(&system.content) + tokenizer.count(&user.content);
            assert_eq!(Some(counted), turn.input_tokens);
        }
        // Both prefixes are used.
        let first: std::collections::HashSet<&str> = conversations
            .iter()
            .map(|c| &c.turns[0].input.messages[1].content[..20])
            .collect();
        assert_eq!(first.len(), 2);
    }

    #[test]
    fn another_tokenizers_words_give_exact_lengths_for_that_tokenizer() {
        let words: Vec<&str> = crate::vocabulary::WORDS
            .iter()
            .map(|w| w.trim_start())
            .collect();
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("tokenizer.json");
        std::fs::write(
            &path,
            crate::tokenizer::tests::word_level_json(&words[..50], false),
        )
        .expect("writable");
        let tokenizer = Tokenizer::from_path(&path).expect("valid");
        let prompt_words = PromptWords::for_tokenizer(&tokenizer).expect("50 words");
        for conversation in generate(&SyntheticConfig {
            prompt_words,
            ..config(20.0)
        }) {
            let turn = &conversation.turns[0];
            let counted = tokenizer.count(&turn.input.messages[0].content);
            assert_eq!(Some(counted), turn.input_tokens);
        }
    }

    fn sessions(turns: LengthDistribution, turn_delay: Option<TurnDelay>) -> Vec<Conversation> {
        generate(&SyntheticConfig {
            turns,
            turn_delay,
            entries: 50,
            prefix: PrefixConfig {
                num_prefix_prompts: 2,
                prefix_prompt_length: 30,
                shared_system_prompt_length: 12,
                system_prompt: None,
            },
            ..config(0.0)
        })
    }

    #[test]
    fn conversations_have_the_turns_asked_for_each_a_prompt_of_its_own() {
        let tokenizer = Tokenizer::builtin();
        let conversations = sessions(LengthDistribution::fixed(3), None);
        for conversation in &conversations {
            let [first, later @ ..] = &conversation.turns[..] else {
                panic!("turns: {conversation:?}");
            };
            assert_eq!(later.len(), 2);
            // The system prompt and a prefix open the conversation: 12 + 30 + 100 tokens.
            assert_eq!(first.input.messages.len(), 2);
            assert_eq!(first.input_tokens, Some(142));
            for turn in later {
                let [user] = &turn.input.messages[..] else {
                    panic!("one user message: {turn:?}");
                };
                assert_eq!(user.role, crate::endpoint::Role::User);
                assert_eq!(Some(tokenizer.count(&user.content)), turn.input_tokens);
                assert_eq!(turn.input_tokens, Some(100));
                assert_eq!(turn.input.max_output_tokens, Some(32));
                assert_eq!(turn.delay, None);
                assert_ne!(turn.input, first.input);
            }
        }
        assert_eq!(conversations, sessions(LengthDistribution::fixed(3), None));
    }

    #[test]
    fn turn_counts_spread_around_their_mean_and_stay_positive() {
        let counts: Vec<usize> = sessions(LengthDistribution::normal(2, 3.0), None)
            .iter()
            .map(|c| c.turns.len())
            .collect();
        assert!(counts.iter().all(|&n| n >= 1), "{counts:?}");
        assert!(counts.contains(&1), "{counts:?}");
        assert!(counts.iter().any(|&n| n >= 4), "{counts:?}");
    }

    #[test]
    fn turns_after_the_first_wait_their_delay_times_the_ratio() {
        let fixed = TurnDelay {
            mean_ms: 200.0,
            stddev_ms: 0.0,
            ratio: 0.5,
        };
        for conversation in sessions(LengthDistribution::fixed(3), Some(fixed)) {
            let delays: Vec<_> = conversation.turns.iter().map(|t| t.delay).collect();
            let expected = Some(Duration::from_millis(100));
            assert_eq!(delays, [None, expected, expected]);
        }
        let spread = TurnDelay {
            stddev_ms: 150.0,
            ratio: 1.0,
            ..fixed
        };
        let delays: Vec<Duration> = sessions(LengthDistribution::fixed(2), Some(spread))
            .iter()
            .map(|c| c.turns[1].delay.expect("a delay"))
            .collect();
        assert!(
            delays.iter().any(|d| d.is_zero()),
            "clamped at 0: {delays:?}"
        );
        assert!(
            delays.iter().any(|d| *d > Duration::from_millis(300)),
            "{delays:?}"
        );
        // The delays' draws leave the prompts as they were.
        let plain = sessions(LengthDistribution::fixed(2), None);
        let delayed = sessions(LengthDistribution::fixed(2), Some(spread));
        for (a, b) in plain.iter().zip(&delayed) {
            assert_eq!(a.turns[1].input, b.turns[1].input);
        }
    }
}
