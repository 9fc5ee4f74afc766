//! Synthetic prompts of exact token lengths, as AIPerf's `--isl`/`--osl` flags describe them.
//!
//! Prompts are made of [`crate::vocabulary::WORDS`], each exactly one token of the builtin
//! tokenizer, so a prompt of N words is N tokens without running the tokenizer on the critical
//! path. Lengths are drawn from a normal distribution (mean, stddev) rounded and clamped to at
//! least 1, deterministically from the seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use super::{Conversation, Turn};
use crate::endpoint::{Message, RequestInput};
use crate::vocabulary::WORDS;

/// A length distribution: a mean and a standard deviation, in tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LengthDistribution {
    /// Mean length.
    pub mean: u32,
    /// Standard deviation (0 for a fixed length).
    pub stddev: f64,
}

impl LengthDistribution {
    /// A fixed length.
    pub fn fixed(mean: u32) -> Self {
        Self { mean, stddev: 0.0 }
    }

    fn sample(&self, rng: &mut StdRng) -> u32 {
        if self.stddev <= 0.0 {
            return self.mean.max(1);
        }
        let normal =
            Normal::new(f64::from(self.mean), self.stddev).expect("stddev is positive and finite");
        let value = normal.sample(rng).round();
        if value < 1.0 {
            1
        } else {
            value.min(f64::from(u32::MAX)) as u32
        }
    }
}

/// What the synthetic dataset is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// Prompt lengths (`--isl`, `--isl-stddev`).
    pub input_tokens: LengthDistribution,
    /// Output lengths asked for (`--osl`, `--osl-stddev`); `None` lets the server decide.
    pub output_tokens: Option<LengthDistribution>,
    /// How many distinct prompts (`--num-dataset-entries`).
    pub entries: usize,
    /// The random seed (`--random-seed`).
    pub seed: u64,
}

/// Builds `config.entries` single-turn conversations with prompts of the sampled lengths.
pub fn generate(config: &SyntheticConfig) -> Vec<Conversation> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    (0..config.entries)
        .map(|i| {
            let input_tokens = config.input_tokens.sample(&mut rng);
            let max_output_tokens = config.output_tokens.map(|d| d.sample(&mut rng));
            let prompt = prompt_of(input_tokens, &mut rng);
            Conversation {
                session_id: format!("synthetic-{i}"),
                turns: vec![Turn {
                    input: RequestInput {
                        messages: vec![Message::user(prompt)],
                        max_output_tokens,
                    },
                    input_tokens: Some(u64::from(input_tokens)),
                    delay: None,
                    timestamp: None,
                }],
            }
        })
        .collect()
}

/// A prompt of exactly `tokens` builtin-tokenizer tokens.
fn prompt_of(tokens: u32, rng: &mut StdRng) -> String {
    let mut prompt = String::with_capacity(tokens as usize * 7);
    for _ in 0..tokens {
        prompt.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Tokenizer;

    fn config(stddev: f64) -> SyntheticConfig {
        SyntheticConfig {
            input_tokens: LengthDistribution { mean: 100, stddev },
            output_tokens: Some(LengthDistribution::fixed(32)),
            entries: 20,
            seed: 7,
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
            input_tokens: LengthDistribution {
                mean: 3,
                stddev: 50.0,
            },
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
}
