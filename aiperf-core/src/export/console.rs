//! The console summary printed after a run: AIPerf's metrics table (Metric, avg, min, max, p99,
//! p90, p50, std, in display units with two decimals), then the run metrics, the error summary
//! and any warnings. Rows follow the metric table's console order; metrics that do not apply to
//! the run (no value, hidden, reasoning metrics without reasoning) are left out.

use std::fmt::Write as _;

use crate::metrics::{BenchmarkReport, MetricDef, MetricFlags, MetricValue};

/// The columns of the metrics table after "Metric".
pub const STAT_COLUMNS: [&str; 7] = ["avg", "min", "max", "p99", "p90", "p50", "std"];

/// Renders the summary; the text ends with a newline.
pub fn render(report: &BenchmarkReport) -> String {
    let mut rows: Vec<(&MetricDef, &MetricValue)> = report
        .results
        .iter()
        .map(|r| (r.metric.def(), &r.value))
        .filter(|(def, _)| {
            def.is_console()
                && (report.saw_reasoning || !def.flags.contains(MetricFlags::SUPPORTS_REASONING))
        })
        .collect();
    rows.sort_by_key(|(def, _)| def.console_order);

    let title = if report.options.produces_tokens {
        "aiperf | LLM Metrics"
    } else {
        "aiperf | Metrics"
    };
    let mut out = String::new();
    let in_side_table = |def: &MetricDef| {
        def.flags.contains(MetricFlags::EFFECTIVE_TABLE)
            || def.flags.contains(MetricFlags::ACTIVE_TABLE)
    };
    let distributions = stats_rows(&rows, |def| !in_side_table(def));
    // A run whose every request failed has no distribution to show: no empty table then.
    if !distributions.is_empty() {
        draw_stats_table(&mut out, title, &distributions);
    }

    let scalars: Vec<Vec<String>> = rows
        .iter()
        .filter_map(|(def, value)| match value {
            MetricValue::Scalar(v) => Some(vec![name(def), scalar(def, *v)]),
            MetricValue::Distribution(_) | MetricValue::TimeWeighted(_) => None,
        })
        .collect();
    if !scalars.is_empty() {
        out.push('\n');
        draw_table(
            &mut out,
            None,
            &[("Metric", Align::Left), ("Value", Align::Right)],
            &scalars,
        );
    }

    // AIPerf's tables of the time-weighted metrics.
    for (flag, side_title) in [
        (MetricFlags::EFFECTIVE_TABLE, format!("{title}: Effective")),
        (MetricFlags::ACTIVE_TABLE, format!("{title}: Active")),
    ] {
        let table = stats_rows(&rows, |def| def.flags.contains(flag));
        if !table.is_empty() {
            out.push('\n');
            draw_stats_table(&mut out, &side_title, &table);
        }
    }

    if !report.error_summary.is_empty() {
        let errors: Vec<Vec<String>> = report
            .error_summary
            .iter()
            .map(|e| {
                vec![
                    group_thousands(&e.count.to_string()),
                    e.error
                        .code
                        .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    e.error.kind.clone(),
                    shorten(&e.error.message, 80),
                ]
            })
            .collect();
        out.push('\n');
        let headers = [
            ("Count", Align::Right),
            ("Code", Align::Right),
            ("Type", Align::Left),
            ("Message", Align::Left),
        ];
        draw_table(&mut out, Some("Errors"), &headers, &errors);
    }

    for warning in &report.warnings {
        let _ = writeln!(out, "\nwarning: {warning}");
    }
    out
}

fn name(def: &MetricDef) -> String {
    format!("{} ({})", def.header, def.unit.as_str())
}

/// The rows of the metrics with statistics that `keep` keeps, in the columns' order.
fn stats_rows(
    rows: &[(&MetricDef, &MetricValue)],
    keep: impl Fn(&MetricDef) -> bool,
) -> Vec<Vec<String>> {
    rows.iter()
        .filter(|(def, _)| keep(def))
        .filter_map(|(def, value)| {
            // A stage the run never had (no streamed request, no success) is only zeros: kept
            // in the files, as AIPerf writes them, but not shown.
            if let MetricValue::TimeWeighted(s) = value
                && s.min == 0.0
                && s.max == 0.0
            {
                return None;
            }
            let mut row = vec![name(def)];
            for column in STAT_COLUMNS {
                row.push(number(value.stat(column)?));
            }
            Some(row)
        })
        .collect()
}

/// A table of statistics ([`STAT_COLUMNS`]) titled `title`.
fn draw_stats_table(out: &mut String, title: &str, rows: &[Vec<String>]) {
    let mut headers = vec![("Metric", Align::Left)];
    headers.extend(STAT_COLUMNS.map(|column| (column, Align::Right)));
    draw_table(out, Some(title), &headers, rows);
}

fn scalar(def: &MetricDef, value: f64) -> String {
    if def.unit.is_integral() {
        group_thousands(&format!("{value:.0}"))
    } else {
        number(value)
    }
}

/// Two decimals with thousands separators, as Python's `f"{v:,.2f}"`.
fn number(value: f64) -> String {
    group_thousands(&format!("{value:.2}"))
}

fn group_thousands(formatted: &str) -> String {
    let (sign, unsigned) = formatted
        .strip_prefix('-')
        .map_or(("", formatted), |rest| ("-", rest));
    let (integer, fraction) = unsigned
        .split_once('.')
        .map_or((unsigned, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::with_capacity(formatted.len() + integer.len() / 3);
    grouped.push_str(sign);
    for (i, digit) in integer.chars().enumerate() {
        if i > 0 && (integer.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if let Some(fraction) = fraction {
        grouped.push('.');
        grouped.push_str(fraction);
    }
    grouped
}

fn shorten(text: &str, max_chars: usize) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= max_chars {
        return one_line;
    }
    let mut short: String = one_line.chars().take(max_chars - 1).collect();
    short.push('…');
    short
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// Draws a table in the style of Rich's default box (heavy head), with the title centred
/// above it.
fn draw_table(
    out: &mut String,
    title: Option<&str>,
    headers: &[(&str, Align)],
    rows: &[Vec<String>],
) {
    let widths: Vec<usize> = (0..headers.len())
        .map(|col| {
            rows.iter()
                .map(|row| row[col].chars().count())
                .chain([headers[col].0.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let total: usize = widths.iter().map(|w| w + 3).sum::<usize>() + 1;
    if let Some(title) = title {
        let pad = total.saturating_sub(title.chars().count()) / 2;
        let _ = writeln!(out, "{:pad$}{title}", "");
    }
    let line = |out: &mut String, left: &str, fill: &str, middle: &str, right: &str| {
        out.push_str(left);
        for (i, width) in widths.iter().enumerate() {
            if i > 0 {
                out.push_str(middle);
            }
            out.push_str(&fill.repeat(width + 2));
        }
        out.push_str(right);
        out.push('\n');
    };
    let cells = |out: &mut String, edge: &str, cells: &[String]| {
        out.push_str(edge);
        for ((cell, width), (_, align)) in cells.iter().zip(&widths).zip(headers) {
            match align {
                Align::Left => write!(out, " {cell:<width$} {edge}"),
                Align::Right => write!(out, " {cell:>width$} {edge}"),
            }
            .expect("writing to a String cannot fail");
        }
        out.push('\n');
    };
    line(out, "┏", "━", "┳", "┓");
    cells(
        out,
        "┃",
        &headers
            .iter()
            .map(|(h, _)| h.to_string())
            .collect::<Vec<_>>(),
    );
    line(out, "┡", "━", "╇", "┩");
    for row in rows {
        cells(out, "│", row);
    }
    line(out, "└", "─", "┴", "┘");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{MS, START, error, record};
    use crate::metrics::{MetricOptions, RunFacts, analyze};
    use crate::record::{Cancellation, Outcome};

    #[test]
    fn the_console_summary() {
        let mut second = record();
        second.start_ns = START + 500 * MS;
        second.scheduled_ns = second.start_ns;
        second.response_ns = vec![START + 560 * MS, START + 1_000 * MS];
        second.client_tokens.output = Some(2);
        second.requested_output_tokens = Some(2);
        let mut cancelled = record();
        cancelled.outcome = Outcome::Cancelled(Cancellation::ByTheRun);
        let report = analyze(
            &[record(), second, error(500, "internal error"), cancelled],
            &RunFacts::default(),
            &MetricOptions {
                behind_schedule_threshold_ms: 0.25,
                ..MetricOptions::default()
            },
        );
        // The time-weighted figures, by hand over the 1 s window: 705 request-ms in flight
        // (0.70); decode 3 tokens in 35 ms (85.71/s) and 1 in 440 ms (2.27/s); prefill 100
        // tokens in 50 ms and in 60 ms; tokens in flight 100x50 + 104x35 + 100x60 + 102x440
        // token-ms (59.52); the active total over the 590 ms some request was in flight.
        let expected = r#"
                                                aiperf | LLM Metrics
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━━━━┓
┃ Metric                                             ┃    avg ┃    min ┃    max ┃    p99 ┃    p90 ┃    p50 ┃    std ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━━━━┩
│ Time to First Token (ms)                           │  55.00 │  50.00 │  60.00 │  59.90 │  59.00 │  55.00 │   5.00 │
│ Time to Second Token (ms)                          │ 225.00 │  10.00 │ 440.00 │ 435.70 │ 397.00 │ 225.00 │ 215.00 │
│ Request Latency (ms)                               │ 292.50 │  85.00 │ 500.00 │ 495.85 │ 458.50 │ 292.50 │ 207.50 │
│ Decode Duration (ms)                               │ 237.50 │  35.00 │ 440.00 │ 435.95 │ 399.50 │ 237.50 │ 202.50 │
│ Inter Token Latency (ms)                           │ 225.83 │  11.67 │ 440.00 │ 435.72 │ 397.17 │ 225.83 │ 214.17 │
│ Output Token Throughput Per User (tokens/sec/user) │  43.99 │   2.27 │  85.71 │  84.88 │  77.37 │  43.99 │  41.72 │
│ E2E Output Token Throughput (tokens/sec/user)      │  25.53 │   4.00 │  47.06 │  46.63 │  42.75 │  25.53 │  21.53 │
│ Output Sequence Length (tokens)                    │   3.00 │   2.00 │   4.00 │   3.98 │   3.80 │   3.00 │   1.00 │
│ Input Sequence Length (tokens)                     │ 100.00 │ 100.00 │ 100.00 │ 100.00 │ 100.00 │ 100.00 │   0.00 │
└────────────────────────────────────────────────────┴────────┴────────┴────────┴────────┴────────┴────────┴────────┘

┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━┓
┃ Metric                                          ┃  Value ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━┩
│ Output Token Throughput (tokens/sec)            │   6.00 │
│ Input Token Throughput (tokens/sec)             │ 200.00 │
│ Request Throughput (requests/sec)               │   2.00 │
│ Request Count (requests)                        │      2 │
│ Error Request Count (requests)                  │      2 │
│ Cancelled Request Count (requests)              │      1 │
│ Completed Requests (Success + Error) (requests) │      4 │
│ Request Error Rate (%)                          │  50.00 │
│ Benchmark Duration (sec)                        │   1.00 │
└─────────────────────────────────────────────────┴────────┘

                                                aiperf | LLM Metrics: Effective
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━┓
┃ Metric                                                  ┃    avg ┃   min ┃      max ┃      p99 ┃      p90 ┃    p50 ┃    std ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━┩
│ Effective Concurrency (requests)                        │   0.70 │  0.00 │     3.00 │     3.00 │     1.00 │   1.00 │   0.71 │
│ Effective Decode Throughput (tokens/sec)                │   4.00 │  0.00 │    85.71 │    85.71 │     2.27 │   0.00 │  15.60 │
│ Effective Prefill Throughput (tokens/sec)               │ 200.00 │  0.00 │ 2,000.00 │ 2,000.00 │ 1,666.67 │   0.00 │ 571.55 │
│ Effective Decode Concurrency (requests)                 │   0.47 │  0.00 │     1.00 │     1.00 │     1.00 │   0.00 │   0.50 │
│ Effective Prefill Concurrency (requests)                │   0.11 │  0.00 │     1.00 │     1.00 │     1.00 │   0.00 │   0.31 │
│ Effective Total Throughput (tokens/sec)                 │ 204.00 │  0.00 │ 2,000.00 │ 2,000.00 │ 1,666.67 │   2.27 │ 570.36 │
│ Effective Decode Throughput Per User (tokens/sec/user)  │   4.00 │  0.00 │    85.71 │    85.71 │     2.27 │   0.00 │  15.60 │
│ Effective Prefill Throughput Per User (tokens/sec/user) │ 200.00 │  0.00 │ 2,000.00 │ 2,000.00 │ 1,666.67 │   0.00 │ 571.55 │
│ Tokens In Flight (tokens)                               │  59.52 │  0.00 │   104.00 │   104.00 │   102.00 │ 100.00 │  50.14 │
│ Effective Latency (CO-aware) (ms)                       │ 176.62 │ 30.50 │   500.00 │   487.71 │   377.15 │  88.00 │ 188.18 │
└─────────────────────────────────────────────────────────┴────────┴───────┴──────────┴──────────┴──────────┴────────┴────────┘

                                                   aiperf | LLM Metrics: Active
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━┓
┃ Metric                                               ┃      avg ┃      min ┃      max ┃      p99 ┃      p90 ┃      p50 ┃    std ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━┩
│ Active Decode Throughput (tokens/sec)                │     8.42 │     2.27 │    85.71 │    85.71 │     2.27 │     2.27 │  21.80 │
│ Active Prefill Throughput (tokens/sec)               │ 1,818.18 │ 1,666.67 │ 2,000.00 │ 2,000.00 │ 2,000.00 │ 1,666.67 │ 165.98 │
│ Active Decode Throughput Per User (tokens/sec/user)  │     8.42 │     2.27 │    85.71 │    85.71 │     2.27 │     2.27 │  21.80 │
│ Active Prefill Throughput Per User (tokens/sec/user) │ 1,818.18 │ 1,666.67 │ 2,000.00 │ 2,000.00 │ 2,000.00 │ 1,666.67 │ 165.98 │
│ Active Total Throughput (tokens/sec)                 │   345.76 │     0.00 │ 2,000.00 │ 2,000.00 │ 1,666.67 │     2.27 │ 708.77 │
└──────────────────────────────────────────────────────┴──────────┴──────────┴──────────┴──────────┴──────────┴──────────┴────────┘

                                      Errors
┏━━━━━━━┳━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ Count ┃ Code ┃ Type                     ┃ Message                              ┃
┡━━━━━━━╇━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│     1 │  499 │ RequestCancellationError │ Request cancelled by external signal │
│     1 │  500 │ Internal Server Error    │ internal error                       │
└───────┴──────┴──────────────────────────┴──────────────────────────────────────┘

warning: the client fell behind its schedule: dispatch lag p99 0.50 ms (p50 0.50 ms, max 0.50 ms) exceeds 0.25 ms; latencies are measured from the actual send time, and the offered load was lower than asked (a --concurrency cap, as it ramps up with --concurrency-ramp-duration, or an overloaded client machine)
"#;
        let expected = expected.strip_prefix('\n').expect("starts with a newline");
        let text = render(&report);
        assert_eq!(text, expected, "\n{text}");
    }

    #[test]
    fn a_run_without_a_success_shows_no_empty_table() {
        let report = analyze(
            &[error(500, "internal error")],
            &RunFacts::default(),
            &MetricOptions::default(),
        );
        let text = render(&report);
        assert!(!text.contains("LLM Metrics\n"), "{text}");
        // The failed request was in flight, though: the time-weighted figures that have a
        // value are shown, the stages no request reached are not.
        assert!(text.contains("Effective Concurrency"), "{text}");
        assert!(!text.contains("Decode"), "{text}");
        assert!(!text.contains("LLM Metrics: Active"), "{text}");
        assert!(
            text.contains("internal error"),
            "the errors are shown: {text}"
        );
    }

    #[test]
    fn numbers_group_thousands_like_python() {
        assert_eq!(number(1234567.891), "1,234,567.89");
        assert_eq!(number(-1234.5), "-1,234.50");
        assert_eq!(number(999.999), "1,000.00");
        assert_eq!(number(0.0), "0.00");
        assert_eq!(group_thousands("100"), "100");
    }

    #[test]
    fn long_messages_are_shortened_to_one_line() {
        assert_eq!(shorten("a\nb", 10), "a b");
        assert_eq!(shorten("abcdefghij", 5), "abcd…");
    }
}
