//! `profile_export_aiperf.csv`, in AIPerf 0.13's two-section layout:
//!
//! ```text
//! Metric,avg,min,max,sum,p1,p5,p10,p25,p50,p75,p90,p95,p99,std
//! Time to First Token (ms),50.00,...
//!
//! Metric,Value
//! Request Throughput (requests/sec),11.76
//! ```
//!
//! Per-request metrics first, then run metrics, each section sorted by tag as AIPerf sorts it,
//! then, after two blank lines, the header of AIPerf's GPU telemetry section without rows:
//! aiperf collects no GPU telemetry, and AIPerf writes the header even when it has none;
//! a row is named "Header (unit)" (no unit for request counts); numbers have two decimals.
//! Lines end with `\r\n`, as Python's `csv` module writes them, and fields are quoted only when
//! they hold a comma, a quote or a line break.

use std::io::{self, Write};

use crate::metrics::{BenchmarkReport, MetricDef, MetricValue, Unit};

/// The file's name in the artifact directory.
pub const FILE_NAME: &str = "profile_export_aiperf.csv";

/// The header of the statistics section.
pub const STATS_HEADER: [&str; 15] = [
    "Metric", "avg", "min", "max", "sum", "p1", "p5", "p10", "p25", "p50", "p75", "p90", "p95",
    "p99", "std",
];

/// The header of AIPerf's GPU telemetry section, which closes its file.
pub const TELEMETRY_HEADER: [&str; 20] = [
    "Endpoint",
    "GPU_Index",
    "GPU_Name",
    "GPU_UUID",
    "Platform",
    "Metric",
    "avg",
    "min",
    "max",
    "sum",
    "p1",
    "p5",
    "p10",
    "p25",
    "p50",
    "p75",
    "p90",
    "p95",
    "p99",
    "std",
];

/// Writes the export.
pub fn write(out: &mut impl Write, report: &BenchmarkReport) -> io::Result<()> {
    let mut distributions: Vec<(&MetricDef, &MetricValue)> = Vec::new();
    let mut scalars: Vec<(&MetricDef, f64)> = Vec::new();
    for result in &report.results {
        let def = result.metric.def();
        match &result.value {
            MetricValue::Scalar(value) => scalars.push((def, *value)),
            value => distributions.push((def, value)),
        }
    }
    distributions.sort_by_key(|(def, _)| def.tag);
    scalars.sort_by_key(|(def, _)| def.tag);

    if !distributions.is_empty() {
        write_row(out, STATS_HEADER.iter().map(|s| s.to_string()))?;
        // A statistic the metric has not (a time-weighted one's sum, say) is an empty cell,
        // as AIPerf leaves it.
        for (def, value) in &distributions {
            let cells = STATS_HEADER[1..]
                .iter()
                .map(|name| value.stat(name).map_or_else(String::new, number));
            write_row(out, std::iter::once(row_name(def)).chain(cells))?;
        }
        if !scalars.is_empty() {
            out.write_all(b"\r\n")?;
        }
    }
    if !scalars.is_empty() {
        write_row(out, ["Metric".to_owned(), "Value".to_owned()])?;
        for (def, value) in &scalars {
            write_row(out, [row_name(def), number(*value)])?;
        }
    }
    out.write_all(b"\r\n\r\n")?;
    write_row(out, TELEMETRY_HEADER.iter().map(|s| s.to_string()))
}

/// "Header (unit)", without the unit for request counts, as AIPerf names rows.
fn row_name(def: &MetricDef) -> String {
    match def.unit {
        Unit::Requests => def.header.to_owned(),
        unit => format!("{} ({})", def.header, unit.as_str()),
    }
}

fn number(value: f64) -> String {
    format!("{value:.2}")
}

fn write_row(out: &mut impl Write, fields: impl IntoIterator<Item = String>) -> io::Result<()> {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if field.contains([',', '"', '\n', '\r']) {
            write!(out, "\"{}\"", field.replace('"', "\"\""))?;
        } else {
            out.write_all(field.as_bytes())?;
        }
    }
    out.write_all(b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{MS, START, error, record};
    use crate::metrics::{MetricOptions, RunFacts, analyze};

    fn csv(report: &BenchmarkReport) -> String {
        let mut out = Vec::new();
        write(&mut out, report).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn two_sections_sorted_by_tag_with_two_decimals() {
        let mut second = record();
        second.start_ns = START + 1_000 * MS;
        second.scheduled_ns = second.start_ns;
        second.response_ns = vec![START + 1_100 * MS, START + 2_000 * MS];
        let options = MetricOptions {
            streaming: false,
            ..MetricOptions::default()
        };
        let report = analyze(
            &[record(), second, error(500, "boom")],
            &RunFacts::default(),
            &options,
        );
        let text = csv(&report);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "Metric,avg,min,max,sum,p1,p5,p10,p25,p50,p75,p90,p95,p99,std"
        );
        let blank = lines.iter().position(|l| l.is_empty()).unwrap();
        let stats_rows: Vec<&str> = lines[1..blank]
            .iter()
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(
            stats_rows,
            [
                "Active Decode Throughput (tokens/sec)",
                "Active Decode Throughput Per User (tokens/sec/user)",
                "Active Prefill Throughput (tokens/sec)",
                "Active Prefill Throughput Per User (tokens/sec/user)",
                "Active Total Throughput (tokens/sec)",
                "Client Completion Tokens (tokens)",
                "Client Prompt Tokens (tokens)",
                "Credit-to-Start Latency (ms)",
                "E2E Output Token Throughput (tokens/sec/user)",
                "Effective Concurrency",
                "Effective Decode Concurrency",
                "Effective Decode Throughput (tokens/sec)",
                "Effective Decode Throughput Per User (tokens/sec/user)",
                "Effective Latency (CO-aware) (ms)",
                "Effective Prefill Concurrency",
                "Effective Prefill Throughput (tokens/sec)",
                "Effective Prefill Throughput Per User (tokens/sec/user)",
                "Effective Total Throughput (tokens/sec)",
                "Error Input Sequence Length (tokens)",
                "Input Sequence Length (tokens)",
                "OSL Mismatch Diff % (%)",
                "Output Sequence Length (tokens)",
                "Output Token Count (tokens)",
                "Request Latency (ms)",
                "Tokens In Flight (tokens)",
            ]
        );
        // A time-weighted row leaves the sum and the percentiles it has not empty, as AIPerf:
        // 1000 + 85 + 30 request-ms in flight over 2 s, two at once for 30 ms, none for 915.
        let concurrency = lines
            .iter()
            .find(|l| l.starts_with("Effective Concurrency,"))
            .unwrap();
        assert_eq!(
            *concurrency,
            "Effective Concurrency,0.56,0.00,2.00,,,,,,1.00,,1.00,1.00,2.00,0.53"
        );
        let latency = lines
            .iter()
            .find(|l| l.starts_with("Request Latency"))
            .unwrap();
        // Latencies 85 ms and 1000 ms.
        assert_eq!(
            *latency,
            "Request Latency (ms),542.50,85.00,1000.00,1085.00,94.15,130.75,176.50,313.75,542.50,771.25,908.50,954.25,990.85,457.50"
        );
        assert_eq!(lines[blank + 1], "Metric,Value");
        let scalar_end = blank
            + 2
            + lines[blank + 2..]
                .iter()
                .position(|l| l.is_empty())
                .unwrap();
        let scalar_rows: Vec<&str> = lines[blank + 2..scalar_end]
            .iter()
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(
            scalar_rows,
            [
                "Benchmark Duration (sec)",
                "Completed Requests (Success + Error)",
                "Error Request Count",
                "Input Token Throughput (tokens/sec)",
                "OSL Mismatch Count",
                "Output Token Throughput (tokens/sec)",
                "Request Count",
                "Request Error Rate (%)",
                "Request Throughput (requests/sec)",
                "Total Error Input Sequence Length (tokens)",
                "Total Input Sequence Length (tokens)",
                "Total Output Sequence Length (tokens)",
                "Total Output Tokens (tokens)",
                "Total Token Throughput (tokens/sec)",
            ]
        );
        assert!(
            text.contains("\r\nBenchmark Duration (sec),2.00\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nRequest Count,2.00\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n\r\nEndpoint,GPU_Index,GPU_Name,GPU_UUID,Platform,Metric,avg,min,max,sum,p1,p5,p10,p25,p50,p75,p90,p95,p99,std\r\n"),
            "AIPerf's GPU telemetry header closes the file, without rows: {text}"
        );
    }

    #[test]
    fn fields_with_commas_or_quotes_are_quoted() {
        let mut out = Vec::new();
        write_row(
            &mut out,
            [
                "a,b".to_owned(),
                "say \"hi\"".to_owned(),
                "plain".to_owned(),
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a,b\",\"say \"\"hi\"\"\",plain\r\n"
        );
    }

    #[test]
    fn an_empty_report_has_only_the_counts() {
        let report = analyze(&[], &RunFacts::default(), &MetricOptions::default());
        assert_eq!(
            csv(&report),
            format!(
                "Metric,Value\r\nError Request Count,0.00\r\nRequest Count,0.00\r\n\r\n\r\n{}\r\n",
                TELEMETRY_HEADER.join(",")
            )
        );
    }
}
