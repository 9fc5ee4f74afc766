//! The faults a simulated server injects on purpose, so that a benchmark client can be checked
//! against every way a real server misbehaves: rate limiting, stalls, broken JSON, streams
//! that end without `[DONE]` or without usage, and (on the wire, applied by `aiperf
//! mock-server`) connections reset before the headers or mid-stream, malformed server-sent
//! events and slow headers.
//!
//! In the data flow of DESIGN.md §4 the faults stand where the server stands: which request
//! gets which fault is decided by [`FaultConfig::pick`] from one uniform draw per request,
//! taken from the engine's seed and the request's id (as the error rate is, see
//! [`super::outcome`]), so a replay of the same ids meets the same faults whatever the
//! interleaving. The draw is compared with the rates cumulated in [`Fault::ALL`]'s order:
//! faults are exclusive, and each rate is the fraction of requests that get that fault. A
//! request picked by the error rate fails with its status whatever its draw.
//!
//! A fault that strikes mid-stream hits chunk `⌊chunks / 2⌋` (0-based) of the answer, so a
//! 10-chunk answer breaks after 5 chunks and a 1-chunk answer at its first.
//!
//! ```
//! use aiperf_core::engine::{Fault, FaultConfig};
//!
//! let faults = FaultConfig::default().with_rate(Fault::NoDone, 0.25);
//! assert_eq!(faults.pick(0.1), Some(Fault::NoDone));
//! assert_eq!(faults.pick(0.3), None);
//! ```

use std::time::Duration;

/// One way a server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// HTTP 429 Too Many Requests, with a `retry-after` header of
    /// [`FaultConfig::retry_after_seconds`].
    RateLimited,
    /// No byte for [`FaultConfig::stall`] before the first token (after the headers of a
    /// stream).
    StallBeforeFirstToken,
    /// No byte for [`FaultConfig::stall`] before the chunk a mid-stream fault hits.
    StallBetweenTokens,
    /// The chunk a mid-stream fault hits (or a whole body) is cut to its first
    /// [`INVALID_JSON_KEPT_BYTES`] bytes: invalid JSON, in an otherwise well-formed stream.
    InvalidJson,
    /// The stream ends without its `data: [DONE]` event (streams only).
    NoDone,
    /// The stream has no usage chunk, even when `stream_options.include_usage` asks for one
    /// (streams only).
    NoUsage,
    /// Wire: the connection is closed after the request is read, before any response header.
    ResetBeforeHeaders,
    /// Wire: the connection is cut before the chunk a mid-stream fault hits (a whole body:
    /// halfway through it), without the end of the body.
    ResetMidStream,
    /// Wire: the chunk a mid-stream fault hits is sent without its `data:` field name, as a
    /// line that is no SSE field (streams only).
    MalformedSse,
    /// Wire: the response headers are sent [`FaultConfig::stall`] late.
    SlowHeaders,
}

/// Where a fault is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultLayer {
    /// By the engine itself, wherever it runs (in process or behind the mock server).
    Engine,
    /// On the wire, by the server that carries the engine (`aiperf mock-server`): in process
    /// there is no connection, framing or header to break, and such a fault has no effect.
    Wire,
}

/// How many bytes of a chunk the [`Fault::InvalidJson`] fault keeps. Every chunk and body the
/// engine writes for chat and completions starts with `{"id":"chatcmpl-` or `{"id":"cmpl-`,
/// so the cut falls inside the id string and every such error reads the same, whatever the
/// request (embeddings bodies are cut after `{"object":`).
pub const INVALID_JSON_KEPT_BYTES: usize = 10;

impl Fault {
    /// Every fault, in the order their rates are cumulated.
    pub const ALL: [Fault; 10] = [
        Fault::RateLimited,
        Fault::StallBeforeFirstToken,
        Fault::StallBetweenTokens,
        Fault::InvalidJson,
        Fault::NoDone,
        Fault::NoUsage,
        Fault::ResetBeforeHeaders,
        Fault::ResetMidStream,
        Fault::MalformedSse,
        Fault::SlowHeaders,
    ];

    /// What the fault is called in messages (`rate limit`, `reset before headers`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::RateLimited => "rate limit",
            Self::StallBeforeFirstToken => "stall before the first token",
            Self::StallBetweenTokens => "stall between tokens",
            Self::InvalidJson => "invalid JSON",
            Self::NoDone => "no [DONE]",
            Self::NoUsage => "no usage",
            Self::ResetBeforeHeaders => "reset before headers",
            Self::ResetMidStream => "reset mid-stream",
            Self::MalformedSse => "malformed SSE",
            Self::SlowHeaders => "slow headers",
        }
    }

    /// Who makes the fault: the engine, or the server carrying it.
    pub fn layer(self) -> FaultLayer {
        match self {
            Self::RateLimited
            | Self::StallBeforeFirstToken
            | Self::StallBetweenTokens
            | Self::InvalidJson
            | Self::NoDone
            | Self::NoUsage => FaultLayer::Engine,
            Self::ResetBeforeHeaders
            | Self::ResetMidStream
            | Self::MalformedSse
            | Self::SlowHeaders => FaultLayer::Wire,
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|fault| *fault == self)
            .expect("ALL lists every fault")
    }
}

/// The fault one request gets, and where in its answer it strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedFault {
    /// The fault.
    pub fault: Fault,
    /// The chunk (0-based) a mid-stream fault hits: `⌊chunks / 2⌋` of a streamed text answer,
    /// 0 otherwise.
    pub chunk: u32,
}

/// Which faults are injected, how often, and their parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// The rate of each fault, in [`Fault::ALL`]'s order.
    rates: [f64; Fault::ALL.len()],
    /// How long a stall or a slow-headers delay lasts.
    pub stall: Duration,
    /// The `retry-after` (seconds) of rate-limited answers.
    pub retry_after_seconds: u32,
}

impl Default for FaultConfig {
    /// No fault; a stall lasts one second, a rate-limited client is told to retry after one.
    fn default() -> Self {
        Self {
            rates: [0.0; Fault::ALL.len()],
            stall: Duration::from_secs(1),
            retry_after_seconds: 1,
        }
    }
}

/// A [`FaultConfig`] that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultConfigError {
    /// A rate outside [0, 1].
    #[error("the {} fault rate is {rate}: set a fraction between 0 and 1", fault.name())]
    NotAFraction {
        /// The fault.
        fault: Fault,
        /// The rate given.
        rate: f64,
    },
    /// Rates adding up to more than 1 (faults are exclusive).
    #[error(
        "the fault rates add up to {sum}: a request gets at most one fault, so their sum must \
         be at most 1"
    )]
    OverOne {
        /// The sum of the rates.
        sum: f64,
    },
}

impl FaultConfig {
    /// The fraction of requests that get `fault`.
    pub fn rate(&self, fault: Fault) -> f64 {
        self.rates[fault.index()]
    }

    /// Sets the fraction of requests that get `fault`.
    pub fn set_rate(&mut self, fault: Fault, rate: f64) {
        self.rates[fault.index()] = rate;
    }

    /// This configuration with the rate of `fault` set.
    pub fn with_rate(mut self, fault: Fault, rate: f64) -> Self {
        self.set_rate(fault, rate);
        self
    }

    /// Whether any fault has a non-zero rate.
    pub fn is_active(&self) -> bool {
        self.rates.iter().any(|rate| *rate > 0.0)
    }

    /// Checks every rate is a fraction and that together they cover at most every request.
    pub fn validate(&self) -> Result<(), FaultConfigError> {
        for (fault, rate) in Fault::ALL.into_iter().zip(self.rates) {
            if !(0.0..=1.0).contains(&rate) {
                return Err(FaultConfigError::NotAFraction { fault, rate });
            }
        }
        let sum: f64 = self.rates.iter().sum();
        // Rates given as decimals (0.3 + 0.7) may sum to a hair over 1.
        if sum > 1.0 + 1e-9 {
            return Err(FaultConfigError::OverOne { sum });
        }
        Ok(())
    }

    /// The fault of the request whose draw (uniform in [0, 1)) is `draw`: the first fault of
    /// [`Fault::ALL`] whose cumulated rate exceeds it, if any.
    pub fn pick(&self, draw: f64) -> Option<Fault> {
        let mut cumulated = 0.0;
        for (fault, rate) in Fault::ALL.into_iter().zip(self.rates) {
            cumulated += rate;
            if rate > 0.0 && draw < cumulated {
                return Some(fault);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_fault_once_with_a_name() {
        for (i, fault) in Fault::ALL.into_iter().enumerate() {
            assert_eq!(fault.index(), i);
            assert!(!fault.name().is_empty());
        }
        let wire = Fault::ALL
            .iter()
            .filter(|f| f.layer() == FaultLayer::Wire)
            .count();
        assert_eq!(wire, 4);
    }

    #[test]
    fn rates_are_exclusive_slices_of_the_draw() {
        let faults = FaultConfig::default()
            .with_rate(Fault::RateLimited, 0.1)
            .with_rate(Fault::NoUsage, 0.2)
            .with_rate(Fault::SlowHeaders, 0.3);
        faults.validate().unwrap();
        assert_eq!(faults.pick(0.0), Some(Fault::RateLimited));
        assert_eq!(faults.pick(0.099), Some(Fault::RateLimited));
        assert_eq!(faults.pick(0.1), Some(Fault::NoUsage));
        assert_eq!(faults.pick(0.35), Some(Fault::SlowHeaders));
        assert_eq!(faults.pick(0.61), None);
        assert_eq!(faults.pick(0.999), None);
        assert!(faults.is_active());
        assert_eq!(FaultConfig::default().pick(0.0), None);
        assert!(!FaultConfig::default().is_active());
    }

    #[test]
    fn a_rate_of_one_picks_every_request() {
        let faults = FaultConfig::default().with_rate(Fault::MalformedSse, 1.0);
        faults.validate().unwrap();
        for draw in [0.0, 0.5, 0.999_999] {
            assert_eq!(faults.pick(draw), Some(Fault::MalformedSse));
        }
    }

    #[test]
    fn bad_rates_name_the_fault_and_what_to_do() {
        let negative = FaultConfig::default().with_rate(Fault::InvalidJson, -0.1);
        let message = negative.validate().unwrap_err().to_string();
        assert!(
            message.contains("invalid JSON fault rate is -0.1"),
            "{message}"
        );
        let nan = FaultConfig::default().with_rate(Fault::NoDone, f64::NAN);
        assert!(nan.validate().is_err());
        let over = FaultConfig::default()
            .with_rate(Fault::NoDone, 0.6)
            .with_rate(Fault::NoUsage, 0.6);
        let message = over.validate().unwrap_err().to_string();
        assert!(message.contains("at most 1"), "{message}");
        let exact = FaultConfig::default()
            .with_rate(Fault::NoDone, 0.3)
            .with_rate(Fault::NoUsage, 0.7);
        exact.validate().unwrap();
    }
}
