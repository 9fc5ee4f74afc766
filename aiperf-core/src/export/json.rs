//! `profile_export_aiperf.json`, in AIPerf 0.13's shape (schema 1.4) and key order:
//! `schema_version`, `aiperf_version`, `benchmark_id`, the metrics AIPerf declares (up to
//! `total_error_isl`), `telemetry_data`, `input_config`, `run_info`, `was_cancelled`,
//! `is_complete` (with `incomplete_reason` when false), `error_summary`, `start_time`,
//! `end_time`, then the other metrics (the caller builds `input_config` and `run_info`).
//!
//! aiperf collects no GPU telemetry: `telemetry_data` says so as AIPerf does when no telemetry
//! endpoint answered (no endpoints, no errors). `is_complete` is false when the run was
//! interrupted (Ctrl-C, SIGTERM) before it finished, as AIPerf flags a cancelled run, so that
//! tooling can set such a run apart.
//!
//! A per-request metric is `{"unit","avg","p1",...,"p99","min","max","std","count","sum"}`; a
//! run metric is `{"unit","avg"}` (AIPerf omits `count` and `sum` there, so that a count of 1
//! is not mistaken for the number of requests). Metrics without a value are absent, as in
//! AIPerf. Times are UTC, ISO 8601 with microseconds and no offset, as Python writes them.

use std::io::{self, Write};

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::clock::to_unix_ns;
use crate::metrics::{BenchmarkReport, MetricId, MetricResult, MetricValue};
use crate::record::ErrorInfo;

/// The file's name in the artifact directory.
pub const FILE_NAME: &str = "profile_export_aiperf.json";

/// The AIPerf schema version this export follows.
pub const SCHEMA_VERSION: &str = "1.4";

/// Writes the export, indented by two spaces as AIPerf does.
pub fn write(
    out: &mut impl Write,
    report: &BenchmarkReport,
    input_config: &serde_json::Value,
    run_info: &serde_json::Value,
) -> io::Result<()> {
    let export = ProfileExport {
        report,
        input_config,
        run_info,
    };
    serde_json::to_writer_pretty(&mut *out, &export)?;
    out.write_all(b"\n")
}

struct ProfileExport<'a> {
    report: &'a BenchmarkReport,
    input_config: &'a serde_json::Value,
    run_info: &'a serde_json::Value,
}

impl Serialize for ProfileExport<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let report = self.report;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("schema_version", SCHEMA_VERSION)?;
        map.serialize_entry("aiperf_version", env!("CARGO_PKG_VERSION"))?;
        map.serialize_entry("benchmark_id", &report.benchmark_id)?;
        let (declared, added): (Vec<_>, Vec<_>) = report
            .results
            .iter()
            .partition(|result| result.metric <= MetricId::TotalErrorIsl);
        for result in declared {
            serialize_metric(&mut map, result)?;
        }
        let (start_time, end_time) = (
            iso8601_utc(to_unix_ns(report.start_ns)),
            iso8601_utc(to_unix_ns(report.end_ns)),
        );
        let telemetry = serde_json::json!({
            "summary": {
                "endpoints_configured": [],
                "endpoints_successful": [],
                "start_time": start_time,
                "end_time": end_time,
            },
            "endpoints": {},
            "error_summary": [],
        });
        map.serialize_entry("telemetry_data", &telemetry)?;
        map.serialize_entry("input_config", self.input_config)?;
        map.serialize_entry("run_info", self.run_info)?;
        map.serialize_entry("was_cancelled", &report.was_cancelled)?;
        map.serialize_entry("is_complete", &!report.was_cancelled)?;
        if report.was_cancelled {
            map.serialize_entry("incomplete_reason", INTERRUPTED)?;
        }
        let errors: Vec<JsonErrorCount<'_>> = report
            .error_summary
            .iter()
            .map(|e| JsonErrorCount {
                error_details: &e.error,
                count: e.count,
            })
            .collect();
        map.serialize_entry("error_summary", &errors)?;
        map.serialize_entry("start_time", &start_time)?;
        map.serialize_entry("end_time", &end_time)?;
        for result in added {
            serialize_metric(&mut map, result)?;
        }
        map.end()
    }
}

/// The `incomplete_reason` of an interrupted run, AIPerf's words for it.
const INTERRUPTED: &str = "Run cancelled before all records were processed.";

/// Writes one metric's entry: its statistics, or its value for the run.
fn serialize_metric<M: SerializeMap>(map: &mut M, result: &MetricResult) -> Result<(), M::Error> {
    let def = result.metric.def();
    let unit = def.unit.as_str();
    match &result.value {
        MetricValue::Scalar(avg) => map.serialize_entry(def.tag, &JsonScalar { unit, avg: *avg }),
        stats => map.serialize_entry(def.tag, &JsonStats::of(unit, stats)),
    }
}

/// A metric's statistics, AIPerf's keys in AIPerf's order. A time-weighted metric has no
/// count, sum, or percentiles below p50 but its median, as AIPerf writes it: those keys are
/// left out.
#[derive(Serialize)]
struct JsonStats<'a> {
    unit: &'a str,
    avg: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    p1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p5: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p10: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p25: Option<f64>,
    p50: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    p75: Option<f64>,
    p90: f64,
    p95: f64,
    p99: f64,
    min: f64,
    max: f64,
    std: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sum: Option<f64>,
}

impl<'a> JsonStats<'a> {
    /// The statistics of a distribution or a time-weighted metric, each read by its name
    /// ([`MetricValue::stat`]): those the metric lacks are left out.
    fn of(unit: &'a str, value: &MetricValue) -> Self {
        let stat = |name| value.stat(name);
        let given = |name| stat(name).unwrap_or_default();
        Self {
            unit,
            avg: given("avg"),
            p1: stat("p1"),
            p5: stat("p5"),
            p10: stat("p10"),
            p25: stat("p25"),
            p50: given("p50"),
            p75: stat("p75"),
            p90: given("p90"),
            p95: given("p95"),
            p99: given("p99"),
            min: given("min"),
            max: given("max"),
            std: given("std"),
            count: match value {
                MetricValue::Distribution(stats) => Some(stats.count),
                MetricValue::Scalar(_) | MetricValue::TimeWeighted(_) => None,
            },
            sum: stat("sum"),
        }
    }
}

#[derive(Serialize)]
struct JsonScalar<'a> {
    unit: &'a str,
    avg: f64,
}

#[derive(Serialize)]
struct JsonErrorCount<'a> {
    error_details: &'a ErrorInfo,
    count: u64,
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` in UTC, as Python's `datetime.isoformat()`.
fn iso8601_utc(unix_ns: u64) -> String {
    let seconds = unix_ns / 1_000_000_000;
    let micros = (unix_ns % 1_000_000_000) / 1_000;
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{error, record};
    use crate::metrics::{MetricOptions, RunFacts, analyze, parse_goodput};

    fn export(report: &BenchmarkReport) -> serde_json::Value {
        let mut out = Vec::new();
        write(
            &mut out,
            report,
            &serde_json::json!({"endpoint": {"streaming": true}}),
            &serde_json::json!({"trial": 0}),
        )
        .unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    fn keys(value: &serde_json::Value) -> Vec<&str> {
        value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn top_level_keys_follow_aiperf_order() {
        let records = [record(), error(500, "boom")];
        let run = RunFacts {
            benchmark_id: "bench-1".into(),
            ..RunFacts::default()
        };
        let report = analyze(&records, &run, &MetricOptions::default());
        let mut out = Vec::new();
        let run_info = serde_json::json!({"trial": 0});
        write(&mut out, &report, &serde_json::json!({"a": 1}), &run_info).unwrap();
        let text = String::from_utf8(out).unwrap();
        // serde_json::Value sorts keys, so check the order on the text, at the top level
        // (indented by two spaces: telemetry_data has an error_summary of its own).
        let order: Vec<usize> = [
            "schema_version",
            "aiperf_version",
            "benchmark_id",
            "request_throughput",
            "request_latency",
            "time_to_first_token",
            "error_isl",
            "telemetry_data",
            "input_config",
            "run_info",
            "was_cancelled",
            "is_complete",
            "error_summary",
            "start_time",
            "end_time",
            "time_to_first_output_token",
        ]
        .iter()
        .map(|key| {
            let top_level = format!("\n  \"{key}\":");
            text.find(&top_level)
                .unwrap_or_else(|| panic!("{key} missing"))
        })
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}\n{text}");
        assert!(
            text.starts_with("{\n  \"schema_version\": \"1.4\",\n"),
            "{text}"
        );
    }

    #[test]
    fn metric_objects_have_aiperf_key_sets() {
        let report = analyze(
            &[record(), error(500, "boom")],
            &RunFacts::default(),
            &MetricOptions::default(),
        );
        let json = export(&report);
        let mut distribution_keys = keys(&json["time_to_first_token"]);
        distribution_keys.sort_unstable();
        let mut expected = vec![
            "unit", "avg", "p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "min",
            "max", "std", "count", "sum",
        ];
        expected.sort_unstable();
        assert_eq!(distribution_keys, expected);
        let mut scalar_keys = keys(&json["request_throughput"]);
        scalar_keys.sort_unstable();
        assert_eq!(scalar_keys, ["avg", "unit"]);
        assert_eq!(json["time_to_first_token"]["unit"], "ms");
        assert_eq!(json["time_to_first_token"]["avg"], 50.0);
        assert_eq!(json["time_to_first_token"]["count"], 1);
        assert_eq!(json["request_throughput"]["unit"], "requests/sec");
        assert_eq!(
            json["request_count"],
            serde_json::json!({"unit": "requests", "avg": 1.0})
        );
        assert_eq!(json["benchmark_duration"]["unit"], "sec");
        assert_eq!(
            json["output_token_throughput_per_user"]["unit"],
            "tokens/sec/user"
        );
        assert!(
            json.get("min_request_timestamp").is_none(),
            "AIPerf keeps its internal metrics out of the file"
        );
        assert!(json.get("goodput").is_none(), "no SLOs: no goodput key");
    }

    #[test]
    fn run_fields_and_error_summary() {
        let run = RunFacts {
            benchmark_id: "bench-1".into(),
            was_cancelled: true,
            ..RunFacts::default()
        };
        let records = [record(), error(500, "boom"), error(500, "boom")];
        let report = analyze(&records, &run, &MetricOptions::default());
        let json = export(&report);
        assert_eq!(json["schema_version"], "1.4");
        assert_eq!(json["aiperf_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["benchmark_id"], "bench-1");
        assert_eq!(
            json["input_config"],
            serde_json::json!({"endpoint": {"streaming": true}})
        );
        assert_eq!(json["was_cancelled"], true);
        assert_eq!(json["is_complete"], false);
        assert_eq!(
            json["incomplete_reason"],
            "Run cancelled before all records were processed."
        );
        assert_eq!(json["telemetry_data"]["endpoints"], serde_json::json!({}));
        assert_eq!(
            json["error_summary"],
            serde_json::json!([
                {"error_details": {"code": 500, "type": "Internal Server Error", "message": "boom"}, "count": 2}
            ])
        );
        for key in ["start_time", "end_time"] {
            let time = json[key].as_str().unwrap();
            assert_eq!(time.len(), "2025-10-03T13:13:39.146443".len(), "{time}");
            assert_eq!(&time[10..11], "T");
        }
    }

    #[test]
    fn goodput_keys_appear_with_slos() {
        let options = MetricOptions {
            goodput: parse_goodput("time_to_first_token:100").unwrap(),
            ..MetricOptions::default()
        };
        let report = analyze(&[record()], &RunFacts::default(), &options);
        let json = export(&report);
        assert_eq!(json["good_request_count"]["avg"], 1.0);
        assert_eq!(json["goodput"]["unit"], "requests/sec");
    }

    #[test]
    fn times_are_utc_with_microseconds() {
        // 2025-10-03T13:13:39.146443 UTC
        assert_eq!(
            iso8601_utc(1_759_497_219_146_443_999),
            "2025-10-03T13:13:39.146443"
        );
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00.000000");
        // A leap day.
        assert_eq!(
            iso8601_utc(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000"
        );
    }
}
