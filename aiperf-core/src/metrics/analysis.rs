//! Turns a run's records into a [`BenchmarkReport`]: one pass over the profiling records
//! computes every applicable per-request metric into the record table (and goodput, the error
//! summary and the run's window on the way), then statistics per metric, then the run metrics.

use std::collections::HashMap;

use super::formulas::{RecordInput, RunTotals};
use super::options::MetricOptions;
use super::record_table::{Ending, RecordTable};
use super::report::{
    BenchmarkReport, ErrorCount, MetricResult, MetricValue, RequestCounts, RunFacts, ScheduleLag,
    cancellation_error,
};
use super::table::{METRICS, MetricDef, MetricFlags, MetricId, MetricKind};
use crate::record::{ErrorInfo, Outcome, Phase, RequestRecord};
use crate::stats::Stats;

/// Computes the metrics of a run.
///
/// `records` is everything the runner produced, warm-up included; only profiling records enter
/// the metrics. Successful requests enter the latency and token statistics; failed and
/// cancelled ones enter the error counts, `error_isl` and the error summary; every request
/// enters the dispatch lag. The report keeps the index of each profiling record in `records`
/// for the JSONL export.
pub fn analyze(
    records: &[RequestRecord],
    run: &RunFacts,
    options: &MetricOptions,
) -> BenchmarkReport {
    let active: Vec<bool> = METRICS.iter().map(|def| applies(def, options)).collect();
    let profiling = records
        .iter()
        .filter(|r| r.phase == Phase::Profiling)
        .count();
    let mut table = RecordTable::new(&active, profiling);
    let mut counts = RequestCounts::default();
    let mut errors: HashMap<(Option<u16>, &str, &str), u64> = HashMap::new();
    let mut window: Option<(u64, u64)> = None;
    let mut good_requests = (!options.goodput.is_empty()).then_some(0_u64);
    let mut usage_compared = 0_u64;
    let mut usage_discrepancies = 0_u64;
    let mut token_fallbacks = 0_u64;
    let mut saw_reasoning = false;
    let cancellation = cancellation_error();

    let record_metrics: Vec<&MetricDef> = METRICS
        .iter()
        .filter(|def| active[def.id as usize] && def.kind.is_distribution())
        .collect();
    let diff_slots: Vec<usize> = METRICS
        .iter()
        .filter(|def| def.flags.contains(MetricFlags::USAGE_DIFF))
        .filter_map(|def| table.slot(def.id))
        .collect();
    let slo_slots: Vec<(Option<usize>, super::Slo)> = options
        .goodput
        .iter()
        .map(|slo| (table.slot(slo.metric), *slo))
        .collect();

    for (index, record) in records.iter().enumerate() {
        if record.phase != Phase::Profiling {
            counts.warmup += 1;
            continue;
        }
        let ending = match &record.outcome {
            Outcome::Success => {
                counts.succeeded += 1;
                Ending::Succeeded
            }
            Outcome::Error(error) => {
                counts.errored += 1;
                *errors
                    .entry((error.code, &error.kind, &error.message))
                    .or_default() += 1;
                Ending::Errored
            }
            Outcome::Cancelled => {
                counts.cancelled += 1;
                *errors
                    .entry((cancellation.code, &cancellation.kind, &cancellation.message))
                    .or_default() += 1;
                Ending::Cancelled
            }
        };
        let last_ns = match ending {
            Ending::Succeeded => record.response_ns.last().copied().unwrap_or(record.end_ns),
            Ending::Errored | Ending::Cancelled => record.end_ns,
        };
        window = Some(match window {
            None => (record.start_ns, last_ns),
            Some((start, end)) => (start.min(record.start_ns), end.max(last_ns)),
        });

        let input = RecordInput {
            record,
            tokens: options.token_source.select(record),
        };
        if ending == Ending::Succeeded {
            saw_reasoning |= !record.text.reasoning.is_empty();
            if record.usage.is_none_or(|u| u.completion_tokens.is_none())
                && record.client_tokens.output.is_some()
            {
                token_fallbacks += 1;
            }
        }
        table.push_row(index, ending);
        for def in &record_metrics {
            match def.kind {
                MetricKind::Record {
                    population,
                    formula,
                } => {
                    let wanted = ending.is_in(population)
                        || (ending != Ending::Succeeded
                            && def.flags.contains(MetricFlags::ALSO_FOR_FAILED));
                    if let (true, Some(value)) = (wanted, formula(&input)) {
                        let slot = table
                            .slot(def.id)
                            .expect("active record metrics have a column");
                        table.set(slot, value * def.unit.scale_from_base());
                    }
                }
                MetricKind::RecordList { formula } if ending == Ending::Succeeded => {
                    let list = table
                        .list_slot(def.id)
                        .expect("active list metrics have a buffer");
                    let buffer = table.list_buffer(list);
                    let start = buffer.len();
                    formula(&input, buffer);
                    let scale = def.unit.scale_from_base();
                    buffer[start..].iter_mut().for_each(|v| *v *= scale);
                }
                MetricKind::RecordList { .. } | MetricKind::Scalar { .. } => {}
            }
        }
        table.finish_row();

        if ending == Ending::Succeeded {
            let row = table.len() - 1;
            if let Some(good) = good_requests.as_mut() {
                let is_good = slo_slots.iter().all(|(slot, slo)| {
                    slot.and_then(|slot| table.value_at(row, slot))
                        .is_some_and(|value| slo.is_met(value))
                });
                *good += u64::from(is_good);
            }
            let mut diffs = diff_slots
                .iter()
                .filter_map(|&slot| table.value_at(row, slot))
                .peekable();
            if diffs.peek().is_some() {
                usage_compared += 1;
                let threshold = options.usage_discrepancy_threshold_pct;
                usage_discrepancies += u64::from(diffs.any(|d| d > threshold));
            }
        }
    }
    counts.sent = run
        .requests_sent
        .unwrap_or(counts.succeeded + counts.errored + counts.cancelled);

    // Statistics of every per-request metric, and the sums the run metrics read.
    let mut results = Vec::new();
    let mut sums = vec![None; METRICS.len()];
    let mut distributions: Vec<Option<Stats>> = vec![None; METRICS.len()];
    for def in &record_metrics {
        let mut values = match def.kind {
            MetricKind::Record { population, .. } => table.column(
                table
                    .slot(def.id)
                    .expect("active record metrics have a column"),
                population,
            ),
            MetricKind::RecordList { .. } => table
                .list_values(
                    table
                        .list_slot(def.id)
                        .expect("active list metrics have a buffer"),
                )
                .to_vec(),
            MetricKind::Scalar { .. } => continue,
        };
        if let Some(stats) = Stats::from_values(&mut values) {
            sums[def.id as usize] = Some(stats.sum);
            distributions[def.id as usize] = Some(stats);
        }
    }
    let totals = RunTotals {
        counts,
        window_ns: window,
        good_requests,
        usage_discrepancies: (usage_compared > 0).then_some(usage_discrepancies),
        sums,
    };
    for def in METRICS.iter().filter(|def| active[def.id as usize]) {
        let value = match def.kind {
            MetricKind::Scalar { formula } => {
                formula(&totals).map(|v| MetricValue::Scalar(v * def.unit.scale_from_base()))
            }
            MetricKind::Record { .. } | MetricKind::RecordList { .. } => {
                distributions[def.id as usize].map(MetricValue::Distribution)
            }
        };
        if let Some(value) = value {
            results.push(MetricResult {
                metric: def.id,
                value,
            });
        }
    }

    let schedule_lag =
        distributions[MetricId::CreditToStartLatency as usize].map(|lag| ScheduleLag {
            p50_ms: lag.p50,
            p99_ms: lag.p99,
            max_ms: lag.max,
            threshold_ms: options.behind_schedule_threshold_ms,
            fell_behind: lag.p99 > options.behind_schedule_threshold_ms,
        });

    let mut error_summary: Vec<ErrorCount> = errors
        .into_iter()
        .map(|((code, kind, message), count)| ErrorCount {
            error: ErrorInfo {
                code,
                kind: kind.to_owned(),
                message: message.to_owned(),
            },
            count,
        })
        .collect();
    error_summary.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.error.code.cmp(&b.error.code))
            .then_with(|| a.error.kind.cmp(&b.error.kind))
            .then_with(|| a.error.message.cmp(&b.error.message))
    });

    let warnings = warnings(&counts, schedule_lag, options, &totals, token_fallbacks);
    let (first_ns, last_ns) = window.unwrap_or((0, 0));
    BenchmarkReport {
        benchmark_id: run.benchmark_id.clone(),
        was_cancelled: run.was_cancelled,
        start_ns: run.profiling_start_ns.unwrap_or(first_ns),
        end_ns: run.profiling_end_ns.unwrap_or(last_ns),
        counts,
        results,
        error_summary,
        schedule_lag,
        saw_reasoning,
        options: options.clone(),
        warnings,
        records: table,
        input_len: records.len(),
    }
}

/// Whether a metric applies to a run with these options.
fn applies(def: &MetricDef, options: &MetricOptions) -> bool {
    let flags = def.flags;
    (options.streaming || !flags.contains(MetricFlags::STREAMING_ONLY))
        && (options.produces_tokens || !flags.contains(MetricFlags::PRODUCES_TOKENS_ONLY))
        && (!options.goodput.is_empty() || !flags.contains(MetricFlags::GOODPUT))
}

fn warnings(
    counts: &RequestCounts,
    schedule_lag: Option<ScheduleLag>,
    options: &MetricOptions,
    totals: &RunTotals,
    token_fallbacks: u64,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if !counts.is_reconciled() {
        warnings.push(format!(
            "{} requests were sent but {} are accounted for ({} succeeded, {} failed, {} cancelled): \
             some results are missing",
            counts.sent,
            counts.succeeded + counts.errored + counts.cancelled,
            counts.succeeded,
            counts.errored,
            counts.cancelled
        ));
    }
    if let Some(lag) = schedule_lag.filter(|lag| lag.fell_behind) {
        warnings.push(format!(
            "the client fell behind its schedule: dispatch lag p99 {:.2} ms (p50 {:.2} ms, max {:.2} ms) \
             exceeds {:.2} ms; latencies are measured from the actual send time, and the offered load \
             was lower than asked (a --concurrency cap or an overloaded client machine)",
            lag.p99_ms, lag.p50_ms, lag.max_ms, lag.threshold_ms
        ));
    }
    for slo in &options.goodput {
        let def = slo.metric.def();
        if !applies(def, options) {
            let why = if def.flags.contains(MetricFlags::STREAMING_ONLY) && !options.streaming {
                "it needs --streaming"
            } else {
                "this endpoint produces no tokens"
            };
            warnings.push(format!(
                "no request can meet the goodput SLO on {}: {why}; remove it from --goodput",
                def.tag
            ));
        }
    }
    if let Some(discrepancies) = totals.usage_discrepancies.filter(|&n| n > 0) {
        warnings.push(format!(
            "{discrepancies} of {} successful requests have server and client token counts differing by more \
             than {}%: the client tokenizer may not match the model's (see usage_*_diff_pct in the exports)",
            counts.succeeded, options.usage_discrepancy_threshold_pct
        ));
    }
    if token_fallbacks > 0
        && options.token_source == super::TokenSource::ServerWhenPresent
        && token_fallbacks < counts.succeeded
    {
        warnings.push(format!(
            "{token_fallbacks} of {} successful requests carried no usage: their output lengths come from \
             the client tokenizer, the others' from the server",
            counts.succeeded
        ));
    }
    warnings
}
