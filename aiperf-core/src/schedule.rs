//! The schedule stage of DESIGN.md §4: when each request is due.
//!
//! Three load modes, as AIPerf has them: closed-loop [`LoadMode::Concurrency`] (N workers, each
//! sending its next request when the previous one ends), open-loop [`LoadMode::Rate`]
//! (requests due at absolute offsets from the start, drawn from an [`ArrivalPattern`], optionally
//! capped by a concurrency), and [`LoadMode::FixedSchedule`] (trace replay: each conversation
//! due at its recorded timestamp). Offsets are absolute, so a late request never delays the ones after
//! it: there is no drift from relative sleeps.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp, Gamma};

/// How inter-arrival times are drawn in rate mode (`--arrival-pattern`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArrivalPattern {
    /// Evenly spaced: exactly 1/rate apart.
    Constant,
    /// A Poisson process: exponential gaps of mean 1/rate.
    Poisson,
    /// Gamma-distributed gaps of mean 1/rate; `smoothness` is the shape (1 = Poisson, larger =
    /// more regular, smaller = burstier), AIPerf's `--arrival-smoothness`.
    Gamma {
        /// The gamma shape parameter, > 0.
        smoothness: f64,
    },
}

/// How load is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadMode {
    /// `--concurrency N`: N requests in flight at all times.
    Concurrency(usize),
    /// `--request-rate R`: requests due at a rate, optionally with at most `max_concurrency`
    /// in flight (a request due while the cap is reached waits, and its lag is recorded).
    Rate {
        /// Requests per second.
        rate: f64,
        /// How gaps are drawn.
        pattern: ArrivalPattern,
        /// The in-flight cap (`--concurrency` given with `--request-rate`).
        max_concurrency: Option<usize>,
    },
    /// `--fixed-schedule`: every conversation due at its first turn's timestamp (later turns
    /// at their own timestamps, or after their delay), optionally with at most
    /// `max_concurrency` conversations in flight.
    FixedSchedule {
        /// The in-flight cap (`--concurrency` given with `--fixed-schedule`).
        max_concurrency: Option<usize>,
    },
}

/// The offset at which an arrival due at `offset` at the full rate is due when the rate rises
/// linearly from 0 to its full value over `ramp` (`--request-rate-ramp-duration`), then stays:
/// the arrivals a rate of `R·t/ramp` has let go by `t` are `R·t²/(2·ramp)`, which the full rate
/// lets go by `t²/(2·ramp)`; past the ramp, every offset is `ramp/2` later than at full rate.
/// The pattern's draws are kept, only their times stretched.
pub fn ramped_offset(offset: Duration, ramp: Duration) -> Duration {
    let (u, t) = (offset.as_secs_f64(), ramp.as_secs_f64());
    if u < t / 2.0 {
        Duration::from_secs_f64((2.0 * t * u).sqrt())
    } else {
        offset.saturating_add(ramp / 2)
    }
}

impl LoadMode {
    /// The most requests that can be in flight at once, for sizing connection pools.
    pub fn max_in_flight(&self) -> usize {
        match *self {
            Self::Concurrency(n) => n,
            Self::Rate {
                max_concurrency: Some(n),
                ..
            }
            | Self::FixedSchedule {
                max_concurrency: Some(n),
            } => n,
            // A trace's concurrency is not known ahead: a pool that rarely needs to grow.
            Self::FixedSchedule {
                max_concurrency: None,
            } => 256,
            // Open loop without a cap: as many as a second of arrivals, at least 64.
            Self::Rate { rate, .. } => (rate.ceil() as usize).clamp(64, 65_536),
        }
    }
}

/// An invalid arrival configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// The rate is not a positive finite number.
    #[error("request rate must be a positive number of requests per second, got {0}")]
    BadRate(f64),
    /// The smoothness is not a positive finite number.
    #[error("arrival smoothness must be a positive number (1 is Poisson), got {0}")]
    BadSmoothness(f64),
}

/// The due offsets, from the start of a phase, of successive requests in rate mode.
#[derive(Debug)]
pub struct ArrivalTimes {
    gaps: Gaps,
    next_offset_ns: f64,
    rng: StdRng,
}

#[derive(Debug)]
enum Gaps {
    Constant(f64),
    Exponential(Exp<f64>),
    Gamma(Gamma<f64>),
}

impl ArrivalTimes {
    /// Arrivals at `rate` per second following `pattern`, deterministic under `seed`. The first
    /// request is due at offset 0.
    pub fn new(rate: f64, pattern: ArrivalPattern, seed: u64) -> Result<Self, ScheduleError> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ScheduleError::BadRate(rate));
        }
        let mean_gap_ns = 1e9 / rate;
        let gaps = match pattern {
            ArrivalPattern::Constant => Gaps::Constant(mean_gap_ns),
            ArrivalPattern::Poisson => {
                Gaps::Exponential(Exp::new(1.0 / mean_gap_ns).expect("rate is positive"))
            }
            ArrivalPattern::Gamma { smoothness } => {
                if !(smoothness.is_finite() && smoothness > 0.0) {
                    return Err(ScheduleError::BadSmoothness(smoothness));
                }
                Gaps::Gamma(
                    Gamma::new(smoothness, mean_gap_ns / smoothness)
                        .expect("shape and scale are positive"),
                )
            }
        };
        Ok(Self {
            gaps,
            next_offset_ns: 0.0,
            rng: StdRng::seed_from_u64(seed),
        })
    }
}

impl Iterator for ArrivalTimes {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let offset = Duration::from_nanos(self.next_offset_ns as u64);
        let gap = match &self.gaps {
            Gaps::Constant(gap) => *gap,
            Gaps::Exponential(exp) => exp.sample(&mut self.rng),
            Gaps::Gamma(gamma) => gamma.sample(&mut self.rng),
        };
        self.next_offset_ns += gap;
        Some(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_lets_go_what_a_linearly_rising_rate_lets_go() {
        let ramp = Duration::from_secs(10);
        let at = |seconds: f64| ramped_offset(Duration::from_secs_f64(seconds), ramp).as_secs_f64();
        // Half the ramp's arrivals at full rate (5 s) take the whole ramp (10 s).
        assert!((at(5.0) - 10.0).abs() < 1e-9);
        // By 5 s a rate of R t / 10 has let go 1.25 R: the full rate's arrivals of 1.25 s.
        assert!((at(1.25) - 5.0).abs() < 1e-9);
        // After the ramp, every arrival 5 s later than at full rate.
        assert!((at(6.0) - 11.0).abs() < 1e-9);
        assert_eq!(at(0.0), 0.0);
    }

    fn mean_gap_s(pattern: ArrivalPattern, rate: f64) -> (f64, f64) {
        let offsets: Vec<f64> = ArrivalTimes::new(rate, pattern, 1)
            .unwrap()
            .take(20_001)
            .map(|d| d.as_secs_f64())
            .collect();
        let gaps: Vec<f64> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced() {
        let offsets: Vec<Duration> = ArrivalTimes::new(4.0, ArrivalPattern::Constant, 0)
            .unwrap()
            .take(3)
            .collect();
        assert_eq!(
            offsets,
            [
                Duration::ZERO,
                Duration::from_millis(250),
                Duration::from_millis(500)
            ]
        );
    }

    #[test]
    fn poisson_and_gamma_have_the_asked_mean_and_their_shape() {
        let (mean, cv) = mean_gap_s(ArrivalPattern::Poisson, 200.0);
        assert!((mean - 0.005).abs() < 0.0002, "mean gap {mean}");
        assert!(
            (cv - 1.0).abs() < 0.05,
            "exponential gaps have cv 1, got {cv}"
        );
        let (mean, cv) = mean_gap_s(ArrivalPattern::Gamma { smoothness: 4.0 }, 200.0);
        assert!((mean - 0.005).abs() < 0.0002, "mean gap {mean}");
        assert!(
            (cv - 0.5).abs() < 0.05,
            "gamma shape 4 has cv 1/2, got {cv}"
        );
    }

    #[test]
    fn offsets_are_deterministic_and_monotonic() {
        let a: Vec<Duration> = ArrivalTimes::new(50.0, ArrivalPattern::Poisson, 9)
            .unwrap()
            .take(100)
            .collect();
        let b: Vec<Duration> = ArrivalTimes::new(50.0, ArrivalPattern::Poisson, 9)
            .unwrap()
            .take(100)
            .collect();
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert_eq!(
            ArrivalTimes::new(0.0, ArrivalPattern::Constant, 0).unwrap_err(),
            ScheduleError::BadRate(0.0)
        );
        assert!(ArrivalTimes::new(f64::NAN, ArrivalPattern::Poisson, 0).is_err());
        assert_eq!(
            ArrivalTimes::new(1.0, ArrivalPattern::Gamma { smoothness: -1.0 }, 0).unwrap_err(),
            ScheduleError::BadSmoothness(-1.0)
        );
    }

    #[test]
    fn max_in_flight_follows_the_mode() {
        assert_eq!(LoadMode::Concurrency(32).max_in_flight(), 32);
        let rate = |r, cap| LoadMode::Rate {
            rate: r,
            pattern: ArrivalPattern::Poisson,
            max_concurrency: cap,
        };
        assert_eq!(rate(10.0, Some(8)).max_in_flight(), 8);
        assert_eq!(rate(10.0, None).max_in_flight(), 64);
        assert_eq!(rate(1000.0, None).max_in_flight(), 1000);
    }
}
