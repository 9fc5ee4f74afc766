//! Goodput SLOs: `--goodput "time_to_first_token:100 inter_token_latency:10"`. A successful
//! request is good when it meets every SLO: at most the threshold for metrics where smaller is
//! better (latencies), at least the threshold for those where larger is better (throughput per
//! user). Thresholds are in the metric's display unit (ms, tokens/sec/user, tokens). A request
//! lacking a value for an SLO's metric (inter token latency of a one-token answer) is not good.
//!
//! ```
//! use aiperf_core::metrics::{MetricId, parse_goodput};
//!
//! let slos = parse_goodput("time_to_first_token:100 output_token_throughput_per_user:50").unwrap();
//! assert_eq!(slos[0].metric, MetricId::TimeToFirstToken);
//! assert!(slos[0].is_met(99.5) && !slos[0].is_met(100.5));
//! assert!(slos[1].is_met(60.0) && !slos[1].is_met(40.0));
//! ```

use super::table::{METRICS, MetricFlags, MetricId, MetricKind, Population};

/// One service-level objective on a per-request metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slo {
    /// The metric constrained.
    pub metric: MetricId,
    /// The threshold, in the metric's display unit.
    pub threshold: f64,
}

impl Slo {
    /// Whether a request's value (in the display unit) meets the objective.
    pub fn is_met(&self, value: f64) -> bool {
        if self
            .metric
            .def()
            .flags
            .contains(MetricFlags::LARGER_IS_BETTER)
        {
            value >= self.threshold
        } else {
            value <= self.threshold
        }
    }
}

/// A `--goodput` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoodputError {
    /// No SLO at all.
    #[error(
        "--goodput is empty: give SLOs as \"tag:value\" pairs, e.g. \"time_to_first_token:100 inter_token_latency:10\""
    )]
    Empty,
    /// An entry without `:`.
    #[error(
        "--goodput entry `{entry}` is not `tag:value`: write it like `time_to_first_token:100`"
    )]
    NotAPair {
        /// The entry as given.
        entry: String,
    },
    /// A tag that names no per-request metric.
    #[error("--goodput names unknown metric `{tag}`: use one of {valid}")]
    UnknownTag {
        /// The tag as given.
        tag: String,
        /// The valid tags, comma-separated.
        valid: String,
    },
    /// A threshold that is not a finite non-negative number.
    #[error(
        "--goodput threshold `{value}` for `{tag}` is not a number: give a non-negative number in {unit}"
    )]
    BadNumber {
        /// The metric.
        tag: String,
        /// The value as given.
        value: String,
        /// The metric's display unit.
        unit: &'static str,
    },
    /// The same metric twice.
    #[error("--goodput constrains `{tag}` twice: keep one threshold per metric")]
    Duplicate {
        /// The metric.
        tag: String,
    },
}

/// The metrics a goodput SLO may constrain: per-request metrics with a value for successful
/// requests.
pub fn slo_metrics() -> impl Iterator<Item = MetricId> {
    METRICS.iter().filter_map(|def| match def.kind {
        MetricKind::Record {
            population: Population::Succeeded | Population::Sent,
            ..
        } => Some(def.id),
        _ => None,
    })
}

/// Parses `--goodput`: whitespace-separated `tag:threshold` pairs, thresholds in the metric's
/// display unit.
pub fn parse_goodput(spec: &str) -> Result<Vec<Slo>, GoodputError> {
    let mut slos: Vec<Slo> = Vec::new();
    for entry in spec.split_whitespace() {
        let Some((tag, value)) = entry.split_once(':') else {
            return Err(GoodputError::NotAPair {
                entry: entry.to_owned(),
            });
        };
        let metric = MetricId::from_tag(tag)
            .filter(|id| slo_metrics().any(|m| m == *id))
            .ok_or_else(|| GoodputError::UnknownTag {
                tag: tag.to_owned(),
                valid: slo_metrics()
                    .map(MetricId::tag)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let threshold = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| GoodputError::BadNumber {
                tag: tag.to_owned(),
                value: value.to_owned(),
                unit: metric.def().unit.as_str(),
            })?;
        if slos.iter().any(|slo| slo.metric == metric) {
            return Err(GoodputError::Duplicate {
                tag: tag.to_owned(),
            });
        }
        slos.push(Slo { metric, threshold });
    }
    if slos.is_empty() {
        return Err(GoodputError::Empty);
    }
    Ok(slos)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_several_slos_in_display_units() {
        let slos = parse_goodput(
            "time_to_first_token:100  inter_token_latency:10\trequest_latency:2000.5",
        )
        .unwrap();
        assert_eq!(
            slos,
            [
                Slo {
                    metric: MetricId::TimeToFirstToken,
                    threshold: 100.0
                },
                Slo {
                    metric: MetricId::InterTokenLatency,
                    threshold: 10.0
                },
                Slo {
                    metric: MetricId::RequestLatency,
                    threshold: 2000.5
                },
            ]
        );
    }

    #[test]
    fn smaller_is_better_uses_at_most_and_larger_is_better_at_least() {
        let ttft = Slo {
            metric: MetricId::TimeToFirstToken,
            threshold: 100.0,
        };
        assert!(ttft.is_met(100.0) && ttft.is_met(0.0) && !ttft.is_met(100.001));
        let per_user = Slo {
            metric: MetricId::OutputTokenThroughputPerUser,
            threshold: 50.0,
        };
        assert!(per_user.is_met(50.0) && per_user.is_met(80.0) && !per_user.is_met(49.9));
    }

    #[test]
    fn unknown_tags_list_the_valid_ones() {
        let err = parse_goodput("ttft:100").unwrap_err();
        let GoodputError::UnknownTag { tag, valid } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(tag, "ttft");
        assert!(valid.contains("time_to_first_token") && valid.contains("inter_token_latency"));
        assert!(
            !valid.contains("request_throughput"),
            "run metrics are not per-request: {valid}"
        );
        assert!(!valid.contains("error_isl"), "{valid}");
        assert!(err.to_string().contains("use one of"), "{err}");
        // Run-level metrics exist but cannot be an SLO.
        assert!(matches!(
            parse_goodput("request_throughput:5"),
            Err(GoodputError::UnknownTag { .. })
        ));
    }

    #[test]
    fn bad_entries_say_what_to_write() {
        assert_eq!(parse_goodput("   "), Err(GoodputError::Empty));
        assert!(matches!(
            parse_goodput("time_to_first_token=100"),
            Err(GoodputError::NotAPair { .. })
        ));
        for value in ["abc", "", "-1", "inf", "NaN"] {
            let err = parse_goodput(&format!("time_to_first_token:{value}")).unwrap_err();
            assert!(
                matches!(err, GoodputError::BadNumber { unit: "ms", .. }),
                "{value}: {err:?}"
            );
        }
        assert_eq!(
            parse_goodput("request_latency:1 request_latency:2"),
            Err(GoodputError::Duplicate {
                tag: "request_latency".into()
            })
        );
    }

    proptest! {
        #[test]
        fn any_input_parses_or_fails_cleanly(spec in "\\PC{0,60}") {
            if let Ok(slos) = parse_goodput(&spec) {
                prop_assert!(!slos.is_empty());
                prop_assert!(slos.iter().all(|s| s.threshold.is_finite() && s.threshold >= 0.0));
            }
        }

        #[test]
        fn every_valid_pair_round_trips(index in 0usize..100, threshold in 0.0f64..1e6) {
            let metrics: Vec<MetricId> = slo_metrics().collect();
            let metric = metrics[index % metrics.len()];
            let slos = parse_goodput(&format!("{}:{threshold}", metric.tag())).unwrap();
            prop_assert_eq!(slos, vec![Slo { metric, threshold }]);
        }
    }
}
