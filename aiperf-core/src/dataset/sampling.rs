//! The order in which a dataset's conversations are used (`--dataset-sampling-strategy`), as
//! AIPerf defines it:
//!
//! - `sequential`: in order, wrapping to the start after the end;
//! - `random`: uniformly at random with replacement (an entry may repeat before all are used);
//! - `shuffle`: a random permutation, then another after each full pass (no entry repeats
//!   within a pass).
//!
//! [`SamplingOrder`] is an endless iterator of conversation indices, deterministic under the
//! seed; the runner (DESIGN.md §4, between the dataset and the schedule) takes from it as it
//! starts conversations.
//!
//! ```
//! use aiperf_core::dataset::{SamplingOrder, SamplingStrategy};
//!
//! let order: Vec<usize> = SamplingOrder::new(SamplingStrategy::Sequential, 3, 0).take(5).collect();
//! assert_eq!(order, [0, 1, 2, 0, 1]);
//! ```

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::rng_for;

/// The random stream of sampling under the dataset seed.
const SAMPLING_STREAM: u64 = 0x7361_6d70_6c65;

/// How conversations are picked (`--dataset-sampling-strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SamplingStrategy {
    /// In order, wrapping around.
    Sequential,
    /// At random, with replacement.
    Random,
    /// A new random permutation for each pass.
    Shuffle,
}

impl SamplingStrategy {
    /// Every strategy, in the order help texts list them.
    pub const ALL: [Self; 3] = [Self::Random, Self::Sequential, Self::Shuffle];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Random => "random",
            Self::Shuffle => "shuffle",
        }
    }
}

impl fmt::Display for SamplingStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown `--dataset-sampling-strategy`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dataset sampling strategy `{0}`: use random, sequential or shuffle")]
pub struct UnknownSamplingStrategy(pub String);

impl FromStr for SamplingStrategy {
    type Err = UnknownSamplingStrategy;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|strategy| strategy.name() == name)
            .ok_or_else(|| UnknownSamplingStrategy(name.to_owned()))
    }
}

/// An endless iterator of the indices of `len` conversations, in the order a strategy uses
/// them; empty when `len` is 0.
#[derive(Debug, Clone)]
pub struct SamplingOrder {
    strategy: SamplingStrategy,
    len: usize,
    rng: StdRng,
    /// The current pass's order (`shuffle` only).
    pass: Vec<usize>,
    /// The next position in the pass (or, for `sequential`, the next index).
    position: usize,
}

impl SamplingOrder {
    /// The order of `len` conversations under `strategy`, deterministic under `seed`.
    pub fn new(strategy: SamplingStrategy, len: usize, seed: u64) -> Self {
        Self {
            strategy,
            len,
            rng: rng_for(seed, SAMPLING_STREAM),
            pass: Vec::new(),
            position: 0,
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> SamplingStrategy {
        self.strategy
    }
}

impl Iterator for SamplingOrder {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        match self.strategy {
            SamplingStrategy::Sequential => {
                let index = self.position;
                self.position = (self.position + 1) % self.len;
                Some(index)
            }
            SamplingStrategy::Random => Some(self.rng.random_range(0..self.len)),
            SamplingStrategy::Shuffle => {
                if self.position == self.pass.len() {
                    self.pass.clear();
                    self.pass.extend(0..self.len);
                    self.pass.shuffle(&mut self.rng);
                    self.position = 0;
                }
                let index = self.pass[self.position];
                self.position += 1;
                Some(index)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.len == 0 {
            (0, Some(0))
        } else {
            (usize::MAX, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn take(strategy: SamplingStrategy, len: usize, seed: u64, n: usize) -> Vec<usize> {
        SamplingOrder::new(strategy, len, seed).take(n).collect()
    }

    #[test]
    fn sequential_wraps_in_order() {
        assert_eq!(
            take(SamplingStrategy::Sequential, 3, 9, 7),
            [0, 1, 2, 0, 1, 2, 0]
        );
    }

    #[test]
    fn shuffle_is_a_permutation_per_pass_and_passes_differ() {
        let order = take(SamplingStrategy::Shuffle, 50, 1, 150);
        let passes: Vec<&[usize]> = order.chunks(50).collect();
        for pass in &passes {
            let mut sorted = pass.to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        }
        assert_ne!(passes[0], passes[1]);
        assert_ne!(passes[0], &(0..50).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn random_repeats_before_covering_and_stays_in_range() {
        let order = take(SamplingStrategy::Random, 50, 1, 50);
        assert!(order.iter().all(|&i| i < 50));
        let distinct: HashSet<_> = order.iter().collect();
        // 50 draws with replacement from 50 leave some out (all distinct: p ≈ 3e-21).
        assert!(distinct.len() < 50);
    }

    #[test]
    fn orders_are_deterministic_under_the_seed() {
        for strategy in SamplingStrategy::ALL {
            assert_eq!(take(strategy, 20, 3, 100), take(strategy, 20, 3, 100));
        }
        assert_ne!(
            take(SamplingStrategy::Random, 20, 3, 100),
            take(SamplingStrategy::Random, 20, 4, 100)
        );
        assert_ne!(
            take(SamplingStrategy::Shuffle, 20, 3, 100),
            take(SamplingStrategy::Shuffle, 20, 4, 100)
        );
    }

    #[test]
    fn an_empty_dataset_yields_nothing() {
        for strategy in SamplingStrategy::ALL {
            assert_eq!(SamplingOrder::new(strategy, 0, 1).next(), None);
        }
    }

    #[test]
    fn strategies_parse_from_and_print_as_their_names() {
        for strategy in SamplingStrategy::ALL {
            assert_eq!(strategy.name().parse(), Ok(strategy));
            assert_eq!(strategy.to_string(), strategy.name());
        }
        assert!("roundrobin".parse::<SamplingStrategy>().is_err());
    }
}
