//! What the engine decides for one request, deterministically from the engine's seed and the
//! request's id: whether it fails (the error rate), how long its answer is (max tokens, early
//! EOS after `min_tokens`), which vocabulary word its answer starts from, and which injected
//! fault it gets ([`super::faults`]).
//!
//! Keying the choices by request id (not by arrival order) makes them reproducible when a
//! client replays the same ids, and independent of how concurrent requests interleave.

use super::request::fingerprint;

/// Why an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FinishReason {
    /// It reached its maximum length.
    Length,
    /// The engine stopped early (EOS).
    Stop,
}

impl FinishReason {
    /// The OpenAI `finish_reason` value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Length => "length",
            Self::Stop => "stop",
        }
    }
}

/// The random draws of one request: uniform in [0, 1) and a word offset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    failure_draw: f64,
    eos_draw: f64,
    /// Where in the vocabulary the answer starts.
    pub(crate) first_word: usize,
    /// The draw [`super::FaultConfig::pick`] reads (drawn last, so that adding it changed no
    /// earlier draw of a seed).
    pub(crate) fault_draw: f64,
}

/// The answer length a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Length {
    /// Output tokens.
    pub(crate) tokens: u32,
    /// Why the answer ends there.
    pub(crate) finish: FinishReason,
}

impl Outcome {
    /// The draws of the request with this id under this seed.
    pub(crate) fn for_request(seed: u64, request_id: &[u8]) -> Self {
        let mut state = splitmix64(seed ^ fingerprint(request_id, 0));
        let mut draw = || {
            state = splitmix64(state);
            state
        };
        Self {
            failure_draw: unit(draw()),
            eos_draw: unit(draw()),
            first_word: (draw() % (1 << 32)) as usize,
            fault_draw: unit(draw()),
        }
    }

    /// Whether the request is one of the `error_rate` fraction that fails.
    pub(crate) fn fails(&self, error_rate: f64) -> bool {
        self.failure_draw < error_rate
    }

    /// The answer's length: `max_tokens`, unless an EOS (probability `eos_rate` per token after
    /// `min_tokens`, never with `ignore_eos`) ends it earlier.
    pub(crate) fn length(
        &self,
        max_tokens: u32,
        min_tokens: u32,
        eos_rate: f64,
        ignore_eos: bool,
    ) -> Length {
        let full = Length {
            tokens: max_tokens,
            finish: FinishReason::Length,
        };
        if ignore_eos || eos_rate <= 0.0 {
            return full;
        }
        // Tokens until the first EOS, geometric with success `eos_rate` (at least 1), by
        // inverting its distribution function at the request's draw.
        let until_eos = if eos_rate >= 1.0 {
            1.0
        } else {
            ((1.0 - self.eos_draw).ln() / (1.0 - eos_rate).ln()).floor() + 1.0
        };
        let tokens = f64::from(min_tokens.min(max_tokens)) + until_eos;
        if tokens >= f64::from(max_tokens) {
            full
        } else {
            Length {
                tokens: tokens as u32,
                finish: FinishReason::Stop,
            }
        }
    }
}

/// One step of the SplitMix64 generator: a well-mixed 64-bit value from `state`.
pub(crate) fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform value in [0, 1) from 64 random bits.
pub(crate) fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(i: u64) -> Outcome {
        Outcome::for_request(7, format!("request-{i}").as_bytes())
    }

    #[test]
    fn same_seed_and_id_give_the_same_outcome() {
        let a = Outcome::for_request(1, b"id");
        let b = Outcome::for_request(1, b"id");
        let c = Outcome::for_request(2, b"id");
        assert_eq!(a.first_word, b.first_word);
        assert_eq!(a.length(100, 0, 0.1, false), b.length(100, 0, 0.1, false));
        assert_ne!(a.first_word, c.first_word);
    }

    #[test]
    fn without_eos_answers_are_max_tokens_long() {
        for i in 0..100 {
            let length = outcome(i).length(37, 0, 0.0, false);
            assert_eq!(
                length,
                Length {
                    tokens: 37,
                    finish: FinishReason::Length
                }
            );
            assert_eq!(outcome(i).length(37, 0, 0.9, true).tokens, 37, "ignore_eos");
        }
    }

    #[test]
    fn eos_ends_answers_early_after_min_tokens_with_the_expected_mean() {
        let n = 20_000;
        let mut total = 0u64;
        for i in 0..n {
            let length = outcome(i).length(10_000, 5, 0.1, false);
            assert!(length.tokens > 5, "at least one token after min_tokens");
            assert_eq!(length.finish, FinishReason::Stop);
            total += u64::from(length.tokens - 5);
        }
        // Geometric with p = 0.1 has mean 10.
        let mean = total as f64 / n as f64;
        assert!(
            (9.5..10.5).contains(&mean),
            "mean tokens after min_tokens {mean}"
        );
        let capped = outcome(3).length(2, 5, 0.1, false);
        assert_eq!(
            capped,
            Length {
                tokens: 2,
                finish: FinishReason::Length
            }
        );
        assert_eq!(outcome(3).length(50, 0, 1.0, false).tokens, 1);
    }

    #[test]
    fn the_fault_draw_is_uniform_and_independent_of_the_failure_draw() {
        let draws: Vec<Outcome> = (0..10_000).map(outcome).collect();
        let low = draws.iter().filter(|o| o.fault_draw < 0.25).count();
        assert!((2300..2700).contains(&low), "{low}");
        let both = draws
            .iter()
            .filter(|o| o.fault_draw < 0.5 && o.fails(0.5))
            .count();
        assert!((2300..2700).contains(&both), "{both}");
    }

    #[test]
    fn error_rate_is_the_fraction_that_fails() {
        let failed = (0..10_000).filter(|i| outcome(*i).fails(0.1)).count();
        assert!((900..1100).contains(&failed), "{failed}");
        assert!((0..1000).all(|i| !outcome(i).fails(0.0)));
        assert!((0..1000).all(|i| outcome(i).fails(1.0)));
    }
}
