//! The result of the metrics stage: a [`BenchmarkReport`] holds everything the exporters write
//! (statistics per metric, run values, counts, the error summary, the run's window and health)
//! and the per-request values behind `profile_export.jsonl`.

use super::options::MetricOptions;
use super::table::MetricId;
use super::timeline::TimeWeightedStats;
use crate::record::ErrorInfo;
use crate::stats::Stats;

/// Facts about the run that the records alone do not carry.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    /// The run's unique id (`benchmark_id` in the JSON export).
    pub benchmark_id: String,
    /// The run was interrupted before its stop condition (Ctrl-C).
    pub was_cancelled: bool,
    /// When the profiling phase started ([`crate::clock::now_ns`]); defaults to the first
    /// profiling request's send time.
    pub profiling_start_ns: Option<u64>,
    /// When the profiling phase ended; defaults to the last profiling response.
    pub profiling_end_ns: Option<u64>,
    /// How many profiling requests the scheduler sent, to check against the records; `None`
    /// takes the number of profiling records.
    pub requests_sent: Option<u64>,
}

/// The profiling requests by outcome. Every request sent ends as exactly one record, so
/// `sent == succeeded + errored + cancelled` (see [`RequestCounts::is_reconciled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestCounts {
    /// Requests sent in the profiling phase.
    pub sent: u64,
    /// Requests that succeeded.
    pub succeeded: u64,
    /// Requests that failed.
    pub errored: u64,
    /// Requests cancelled by the client.
    pub cancelled: u64,
    /// Warm-up requests (excluded from every metric).
    pub warmup: u64,
}

impl RequestCounts {
    /// Whether every request sent is accounted for by exactly one outcome.
    pub fn is_reconciled(&self) -> bool {
        self.sent == self.succeeded + self.errored + self.cancelled
    }
}

/// One kind of error and how often it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCount {
    /// The error (code, type, message).
    pub error: ErrorInfo,
    /// How many profiling requests ended with it.
    pub count: u64,
}

/// How well the client kept its schedule: the dispatch lag (actual minus intended send time)
/// over the profiling requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleLag {
    /// Median dispatch lag, in ms.
    pub p50_ms: f64,
    /// 99th percentile dispatch lag, in ms.
    pub p99_ms: f64,
    /// Largest dispatch lag, in ms.
    pub max_ms: f64,
    /// The p99 above which the run is flagged, in ms.
    pub threshold_ms: f64,
    /// The client fell behind its schedule: p99 above the threshold.
    pub fell_behind: bool,
}

/// A metric's result for the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricValue {
    /// Statistics of a per-request metric, in its unit.
    Distribution(Stats),
    /// One value for the run, in its unit.
    Scalar(f64),
    /// Time-weighted statistics of a curve over the run's timeline, in its unit.
    TimeWeighted(TimeWeightedStats),
}

impl MetricValue {
    /// A statistic of the result by its export name (`avg`, `min`, `max`, `sum`, `p1`..`p99`,
    /// `std`); `None` for one it does not have: a time-weighted result has no sum and no
    /// percentile below the median, a run value none at all.
    pub fn stat(&self, name: &str) -> Option<f64> {
        match self {
            Self::Distribution(s) => Some(match name {
                "avg" => s.avg,
                "min" => s.min,
                "max" => s.max,
                "sum" => s.sum,
                "p1" => s.p1,
                "p5" => s.p5,
                "p10" => s.p10,
                "p25" => s.p25,
                "p50" => s.p50,
                "p75" => s.p75,
                "p90" => s.p90,
                "p95" => s.p95,
                "p99" => s.p99,
                "std" => s.std,
                _ => return None,
            }),
            Self::TimeWeighted(s) => Some(match name {
                "avg" => s.avg,
                "min" => s.min,
                "max" => s.max,
                "p50" => s.p50,
                "p90" => s.p90,
                "p95" => s.p95,
                "p99" => s.p99,
                "std" => s.std,
                _ => return None,
            }),
            Self::Scalar(_) => None,
        }
    }
}

/// A metric and its result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricResult {
    /// The metric.
    pub metric: MetricId,
    /// Its result.
    pub value: MetricValue,
}

/// Everything measured in a run, ready for the exporters.
#[derive(Debug, Clone)]
pub struct BenchmarkReport {
    /// The run's unique id.
    pub benchmark_id: String,
    /// The run was interrupted before its stop condition.
    pub was_cancelled: bool,
    /// The profiling phase's start ([`crate::clock::now_ns`] reading).
    pub start_ns: u64,
    /// The profiling phase's end ([`crate::clock::now_ns`] reading).
    pub end_ns: u64,
    /// Requests by outcome.
    pub counts: RequestCounts,
    /// Every metric that has a value, in table order.
    pub results: Vec<MetricResult>,
    /// Errors of the profiling phase grouped by (code, type, message), most frequent first;
    /// cancellations included, as AIPerf reports them.
    pub error_summary: Vec<ErrorCount>,
    /// Dispatch lag, when any profiling request was sent.
    pub schedule_lag: Option<ScheduleLag>,
    /// Some successful request carried reasoning content.
    pub saw_reasoning: bool,
    /// The options the metrics were computed with.
    pub options: MetricOptions,
    /// Things the user should know about the numbers (fell behind schedule, counts that do
    /// not reconcile, SLOs that cannot be met, token count disagreements).
    pub warnings: Vec<String>,
}

impl BenchmarkReport {
    /// A metric's result, if it has one.
    pub fn get(&self, id: MetricId) -> Option<&MetricValue> {
        self.results
            .iter()
            .find(|r| r.metric == id)
            .map(|r| &r.value)
    }

    /// A per-request metric's statistics, if it has any.
    pub fn stats(&self, id: MetricId) -> Option<&Stats> {
        match self.get(id)? {
            MetricValue::Distribution(stats) => Some(stats),
            MetricValue::Scalar(_) | MetricValue::TimeWeighted(_) => None,
        }
    }

    /// A time-weighted metric's statistics, if it has any.
    pub fn time_weighted(&self, id: MetricId) -> Option<&TimeWeightedStats> {
        match self.get(id)? {
            MetricValue::TimeWeighted(stats) => Some(stats),
            MetricValue::Distribution(_) | MetricValue::Scalar(_) => None,
        }
    }

    /// A run metric's value, if it has one.
    pub fn scalar(&self, id: MetricId) -> Option<f64> {
        match self.get(id)? {
            MetricValue::Scalar(v) => Some(*v),
            MetricValue::Distribution(_) | MetricValue::TimeWeighted(_) => None,
        }
    }
}
