//! The metrics stage of the data flow (DESIGN.md §4): request records in, a
//! [`BenchmarkReport`] out, which the [`crate::export`] module writes as AIPerf's files.
//!
//! Everything about a metric is defined once, in the metric table ([`METRICS`]): its AIPerf
//! tag, header, unit, kind (per request, list per request, or per run), flags and console
//! order, and its formula ([`formulas`]). The exporters, goodput parsing and the console are
//! derived from it.
//!
//! Records are added to an [`Analysis`] one at a time as they arrive (beside the run), each
//! giving back its values for its JSONL line; [`analyze`] does the same for records at hand:
//!
//! ```
//! use aiperf_core::metrics::{MetricId, MetricOptions, RunFacts, analyze, parse_goodput};
//!
//! # let records: Vec<aiperf_core::record::RequestRecord> = Vec::new();
//! let options = MetricOptions {
//!     goodput: parse_goodput("time_to_first_token:100")?,
//!     ..MetricOptions::default()
//! };
//! let run = RunFacts { benchmark_id: "run-1".into(), ..RunFacts::default() };
//! let report = analyze(&records, &run, &options);
//! assert_eq!(report.counts.sent, 0);
//! assert!(report.stats(MetricId::TimeToFirstToken).is_none());
//! # Ok::<(), aiperf_core::metrics::GoodputError>(())
//! ```

mod analysis;
pub mod formulas;
mod goodput;
mod options;
mod record_table;
mod report;
mod table;
mod timeline;
mod value_column;

#[cfg(test)]
pub(crate) mod tests;

pub use analysis::{Analysis, analyze};
pub use goodput::{GoodputError, Slo, parse_goodput, slo_metrics};
pub use options::{MetricOptions, TokenSource};
pub use record_table::{RecordRow, RecordValue};
pub use report::{
    BenchmarkReport, ErrorCount, MetricResult, MetricValue, RequestCounts, RunFacts, ScheduleLag,
};
pub use table::{METRICS, MetricDef, MetricFlags, MetricId, MetricKind, Population, Unit};
pub use timeline::{Curve, TimeWeightedStats};
