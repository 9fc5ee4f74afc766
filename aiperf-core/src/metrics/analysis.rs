//! Turns a run's records into a [`BenchmarkReport`] in three steps: one pass over the
//! profiling records, one record at a time as they arrive, computes every applicable
//! per-request metric into the record table (counting outcomes, errors, goodput and token
//! disagreements on the way); then, once the run is over, statistics per metric, then the run
//! metrics from counts, sums and the run's window.

use std::collections::HashMap;

use super::formulas::{self, RecordInput, RunTotals};
use super::goodput::Slo;
use super::options::{MetricOptions, TokenSource};
use super::record_table::{Ending, RecordRow, RecordTable};
use super::report::{
    BenchmarkReport, ErrorCount, MetricResult, MetricValue, RequestCounts, RunFacts, ScheduleLag,
};
use super::table::{METRICS, MetricDef, MetricFlags, MetricId, MetricKind};
use super::timeline::{CurveStats, Interval, Timeline};
use crate::record::{ErrorInfo, Outcome, Phase, RequestRecord};
use crate::stats::Stats;

/// Computes the metrics of a run from all its records at once: [`Analysis`] fed every record,
/// then finished.
///
/// `records` is everything the runner produced, warm-up included; only profiling records enter
/// the metrics.
pub fn analyze(
    records: &[RequestRecord],
    run: &RunFacts,
    options: &MetricOptions,
) -> BenchmarkReport {
    let mut analysis = Analysis::new(options);
    for record in records {
        analysis.add(record);
    }
    analysis.finish(run)
}

/// The metrics of a run, computed one record at a time as records arrive (beside the run), so
/// that no record has to be kept: each one's values are computed, handed back for its JSONL
/// line, and kept only as the statistics need them (in bounded memory, see
/// `value_column`).
///
/// Successful requests enter the latency and token statistics; failed and cancelled ones enter
/// the error counts, `error_isl` and the error summary; every request enters the dispatch lag.
#[derive(Debug)]
pub struct Analysis {
    active: Vec<bool>,
    pass: RecordPass,
}

impl Analysis {
    /// An analysis with no records yet.
    pub fn new(options: &MetricOptions) -> Self {
        let active: Vec<bool> = METRICS.iter().map(|def| applies(def, options)).collect();
        let pass = RecordPass::new(&active, options);
        Self { active, pass }
    }

    /// Adds a record and returns its metric values (valid until the next call), for its line
    /// of `profile_export.jsonl`. A warm-up record's values are computed for its line, as
    /// AIPerf writes one, but enter no statistic: warm-up records are only counted.
    pub fn add(&mut self, record: &RequestRecord) -> RecordRow<'_> {
        self.pass.add(record)
    }

    /// The report of the run, from every record added.
    pub fn finish(self, run: &RunFacts) -> BenchmarkReport {
        let Self { active, pass } = self;
        let RecordPass {
            table,
            timeline,
            mut counts,
            errors,
            window,
            good_requests,
            usage_compared,
            usage_discrepancies,
            osl_compared,
            osl_mismatches,
            token_fallbacks,
            saw_reasoning,
            options,
            ..
        } = pass;
        counts.sent = run
            .requests_sent
            .unwrap_or(counts.succeeded + counts.errored + counts.cancelled);

        let (distributions, mut unreadable) = statistics(table);
        let curves = match timeline.finish(window.unwrap_or((0, 0))) {
            Ok(curves) => curves,
            Err(error) => {
                unreadable.push(format!(
                    "no time-weighted metrics (effective_*, active_*, tokens_in_flight): the \
                     requests' times could not be read back from their temporary file ({error})"
                ));
                None
            }
        };
        let totals = RunTotals {
            counts,
            window_ns: window,
            good_requests,
            usage_discrepancies: (usage_compared > 0).then_some(usage_discrepancies),
            osl_mismatches: (osl_compared > 0).then_some(osl_mismatches),
            sums: distributions.iter().map(|s| s.map(|s| s.sum)).collect(),
        };
        let results = results(&active, &distributions, curves.as_ref(), &totals);
        let schedule_lag =
            distributions[MetricId::CreditToStartLatency as usize].map(|lag| ScheduleLag {
                p50_ms: lag.p50,
                p99_ms: lag.p99,
                max_ms: lag.max,
                threshold_ms: options.behind_schedule_threshold_ms,
                fell_behind: lag.p99 > options.behind_schedule_threshold_ms,
            });
        let mut warnings = warnings(&totals, schedule_lag, &options, token_fallbacks);
        warnings.extend(unreadable);
        let (first_ns, last_ns) = window.unwrap_or((0, 0));
        BenchmarkReport {
            benchmark_id: run.benchmark_id.clone(),
            was_cancelled: run.was_cancelled,
            start_ns: run.profiling_start_ns.unwrap_or(first_ns),
            end_ns: run.profiling_end_ns.unwrap_or(last_ns),
            counts,
            results,
            error_summary: error_summary(errors),
            schedule_lag,
            saw_reasoning,
            options,
            warnings,
        }
    }
}

/// Whether a metric applies to a run with these options.
fn applies(def: &MetricDef, options: &MetricOptions) -> bool {
    let flags = def.flags;
    (options.streaming || !flags.contains(MetricFlags::STREAMING_ONLY))
        && (options.produces_tokens || !flags.contains(MetricFlags::PRODUCES_TOKENS_ONLY))
        && (!options.goodput.is_empty() || !flags.contains(MetricFlags::GOODPUT))
}

/// The state of the pass over the records.
#[derive(Debug)]
struct RecordPass {
    options: MetricOptions,
    /// The active per-request metrics, in table order.
    record_metrics: Vec<&'static MetricDef>,
    /// Columns of the usage-difference metrics.
    diff_slots: Vec<usize>,
    /// The column of `osl_mismatch_diff_pct`, when it applies.
    osl_diff_slot: Option<usize>,
    /// Each SLO with its metric's column (`None`: the metric does not apply to this run).
    slos: Vec<(Option<usize>, Slo)>,
    table: RecordTable,
    /// The profiling requests' intervals, for the time-weighted metrics.
    timeline: Timeline,
    counts: RequestCounts,
    errors: HashMap<ErrorInfo, u64>,
    window: Option<(u64, u64)>,
    good_requests: Option<u64>,
    usage_compared: u64,
    usage_discrepancies: u64,
    /// Successful requests that asked for an output length, and those that missed it.
    osl_compared: u64,
    osl_mismatches: u64,
    token_fallbacks: u64,
    saw_reasoning: bool,
}

impl RecordPass {
    fn new(active: &[bool], options: &MetricOptions) -> Self {
        let table = RecordTable::new(active);
        let diff_slots = METRICS
            .iter()
            .filter(|def| def.flags.contains(MetricFlags::USAGE_DIFF))
            .filter_map(|def| table.slot(def.id))
            .collect();
        let slos = options
            .goodput
            .iter()
            .map(|slo| (table.slot(slo.metric), *slo))
            .collect();
        Self {
            options: options.clone(),
            record_metrics: METRICS
                .iter()
                .filter(|def| active[def.id as usize] && def.kind.is_distribution())
                .collect(),
            diff_slots,
            osl_diff_slot: table.slot(MetricId::OslMismatchDiffPct),
            slos,
            table,
            timeline: Timeline::default(),
            counts: RequestCounts::default(),
            errors: HashMap::new(),
            window: None,
            good_requests: (!options.goodput.is_empty()).then_some(0),
            usage_compared: 0,
            usage_discrepancies: 0,
            osl_compared: 0,
            osl_mismatches: 0,
            token_fallbacks: 0,
            saw_reasoning: false,
        }
    }

    fn add(&mut self, record: &RequestRecord) -> RecordRow<'_> {
        let profiling = record.phase == Phase::Profiling;
        let ending = if profiling {
            self.count_outcome(record)
        } else {
            // A warm-up request's values are computed for its line, never counted.
            self.counts.warmup += 1;
            Ending::of(&record.outcome)
        };
        let input = RecordInput {
            record,
            tokens: self.options.token_source.select(record),
        };
        if profiling {
            let last_ns = last_ns(record, ending);
            self.window = Some(match self.window {
                None => (record.start_ns, last_ns),
                Some((start, end)) => (start.min(record.start_ns), end.max(last_ns)),
            });
            self.timeline.add(self.interval(&input, ending, last_ns));
        }
        self.table.start_row();
        for def in &self.record_metrics {
            match def.kind {
                MetricKind::Record {
                    population,
                    formula,
                } => {
                    let wanted = ending.is_in(population)
                        || (ending != Ending::Succeeded
                            && def.flags.contains(MetricFlags::ALSO_FOR_FAILED));
                    if !wanted {
                        continue;
                    }
                    if let Some(value) = formula(&input) {
                        let slot = self
                            .table
                            .slot(def.id)
                            .expect("active metrics have a column");
                        self.table.set(slot, value * def.unit.scale_from_base());
                    }
                }
                MetricKind::RecordList { formula } if ending == Ending::Succeeded => {
                    let list = self
                        .table
                        .list_slot(def.id)
                        .expect("active lists have a buffer");
                    let buffer = self.table.list_buffer(list);
                    let start = buffer.len();
                    formula(&input, buffer);
                    let scale = def.unit.scale_from_base();
                    buffer[start..].iter_mut().for_each(|v| *v *= scale);
                }
                MetricKind::RecordList { .. }
                | MetricKind::Scalar { .. }
                | MetricKind::TimeWeighted { .. } => {}
            }
        }
        if profiling {
            self.table.finish_row(ending);
            if ending == Ending::Succeeded {
                self.check_success(record);
            }
        }
        self.table.row()
    }

    /// The request's place on the run's timeline, from its send to `end_ns`: a successful
    /// streamed request's first token (its first response, as TTFT takes it) and token counts
    /// too.
    fn interval(&self, input: &RecordInput<'_>, ending: Ending, end_ns: u64) -> Interval {
        let record = input.record;
        let succeeded = ending == Ending::Succeeded;
        let first_token_ns = (succeeded && self.options.streaming)
            .then(|| record.response_ns.first().copied())
            .flatten();
        let tokens = |formula: formulas::RecordFormula| succeeded.then(|| formula(input)).flatten();
        Interval {
            start_ns: record.start_ns,
            first_token_ns,
            end_ns,
            input_tokens: tokens(formulas::input_sequence_length),
            output_tokens: tokens(formulas::output_sequence_length),
        }
    }

    /// Counts the record's outcome (and its error) and says how it ended.
    fn count_outcome(&mut self, record: &RequestRecord) -> Ending {
        match &record.outcome {
            Outcome::Success => self.counts.succeeded += 1,
            Outcome::Error(error) => {
                self.counts.errored += 1;
                match self.errors.get_mut(error) {
                    Some(count) => *count += 1,
                    None => {
                        self.errors.insert(error.clone(), 1);
                    }
                }
            }
            Outcome::Cancelled(why) => {
                self.counts.cancelled += 1;
                // Summarized under its cancellation error, as AIPerf does.
                *self.errors.entry(why.error()).or_insert(0) += 1;
            }
        }
        Ending::of(&record.outcome)
    }

    /// Goodput, token-count agreement and reasoning, from the successful request just added.
    fn check_success(&mut self, record: &RequestRecord) {
        let table = &self.table;
        if let Some(good) = self.good_requests.as_mut() {
            let is_good = self.slos.iter().all(|(slot, slo)| {
                slot.and_then(|slot| table.value(slot))
                    .is_some_and(|value| slo.is_met(value))
            });
            *good += u64::from(is_good);
        }
        let mut diffs = self
            .diff_slots
            .iter()
            .filter_map(|&slot| table.value(slot))
            .peekable();
        if diffs.peek().is_some() {
            self.usage_compared += 1;
            let threshold = self.options.usage_discrepancy_threshold_pct;
            self.usage_discrepancies += u64::from(diffs.any(|d| d > threshold));
        }
        let osl_diff = self.osl_diff_slot.and_then(|slot| table.value(slot));
        if let (Some(diff_pct), Some(requested)) = (osl_diff, record.requested_output_tokens) {
            self.osl_compared += 1;
            let mismatch = formulas::is_osl_mismatch(diff_pct, requested as f64);
            self.osl_mismatches += u64::from(mismatch);
        }
        if record.usage.is_none_or(|u| u.completion_tokens.is_none())
            && record.client_tokens.output.is_some()
        {
            self.token_fallbacks += 1;
        }
        self.saw_reasoning |= !record.text.reasoning.is_empty();
    }
}

/// When a request ended for the run's window and timeline: its last response's bytes for a
/// success, its failure or cancellation otherwise.
fn last_ns(record: &RequestRecord, ending: Ending) -> u64 {
    match ending {
        Ending::Succeeded => record.response_ns.last().copied().unwrap_or(record.end_ns),
        Ending::Errored | Ending::Cancelled => record.end_ns,
    }
}

/// The statistics of every per-request metric with values, indexed by [`MetricId`], and a
/// warning for each metric whose values could not be read back.
fn statistics(table: RecordTable) -> (Vec<Option<Stats>>, Vec<String>) {
    let mut distributions = vec![None; METRICS.len()];
    let mut unreadable = Vec::new();
    for (id, values) in table.into_columns() {
        match values {
            Ok(mut values) => distributions[id as usize] = Stats::from_values(&mut values),
            Err(error) => unreadable.push(format!(
                "no statistics for {}: its values could not be read back from their temporary \
                 file ({error}); the per-request values are in profile_export.jsonl",
                id.tag()
            )),
        }
    }
    (distributions, unreadable)
}

/// Every active metric with a value, in table order.
fn results(
    active: &[bool],
    distributions: &[Option<Stats>],
    curves: Option<&CurveStats>,
    totals: &RunTotals,
) -> Vec<MetricResult> {
    METRICS
        .iter()
        .filter(|def| active[def.id as usize])
        .filter_map(|def| {
            let value = match def.kind {
                MetricKind::Scalar { formula } => {
                    MetricValue::Scalar(formula(totals)? * def.unit.scale_from_base())
                }
                MetricKind::Record { .. } | MetricKind::RecordList { .. } => {
                    MetricValue::Distribution(distributions[def.id as usize]?)
                }
                MetricKind::TimeWeighted { curve, active_only } => {
                    MetricValue::TimeWeighted(curves?.stats(curve, active_only))
                }
            };
            Some(MetricResult {
                metric: def.id,
                value,
            })
        })
        .collect()
}

/// Errors grouped by (code, type, message), most frequent first, cancellations included under
/// their errors ([`crate::record::Cancellation::error`]).
fn error_summary(errors: HashMap<ErrorInfo, u64>) -> Vec<ErrorCount> {
    let mut summary: Vec<ErrorCount> = errors
        .into_iter()
        .map(|(error, count)| ErrorCount { error, count })
        .collect();
    summary.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.error.code.cmp(&b.error.code))
            .then_with(|| a.error.kind.cmp(&b.error.kind))
            .then_with(|| a.error.message.cmp(&b.error.message))
    });
    summary
}

fn warnings(
    totals: &RunTotals,
    schedule_lag: Option<ScheduleLag>,
    options: &MetricOptions,
    token_fallbacks: u64,
) -> Vec<String> {
    let counts = &totals.counts;
    let mut warnings = Vec::new();
    if !counts.is_reconciled() {
        warnings.push(format!(
            "{} requests were sent but {} are accounted for ({} succeeded, {} failed, \
             {} cancelled): some results are missing",
            counts.sent,
            counts.succeeded + counts.errored + counts.cancelled,
            counts.succeeded,
            counts.errored,
            counts.cancelled
        ));
    }
    if let Some(lag) = schedule_lag.filter(|lag| lag.fell_behind) {
        warnings.push(format!(
            "the client fell behind its schedule: dispatch lag p99 {:.2} ms (p50 {:.2} ms, \
             max {:.2} ms) exceeds {:.2} ms; latencies are measured from the actual send time, \
             and the offered load was lower than asked (a --concurrency cap, as it ramps up \
             with --concurrency-ramp-duration, or an overloaded \
             client machine)",
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
            "{discrepancies} of {} successful requests have server and client token counts \
             differing by more than {}%: the client tokenizer may not match the model's (see \
             usage_*_diff_pct in the exports)",
            counts.succeeded, options.usage_discrepancy_threshold_pct
        ));
    }
    if let Some(mismatches) = totals.osl_mismatches.filter(|&n| n > 0) {
        warnings.push(format!(
            "{mismatches} of {} successful requests generated an output length that differs \
             from the max_tokens they asked for by more than 5% (or 50 tokens): the server may \
             stop at an end-of-sequence token (with vLLM, --extra-inputs ignore_eos:true) or \
             not honour max_tokens; see osl_mismatch_diff_pct in the exports",
            counts.succeeded
        ));
    }
    let mixed_sources = token_fallbacks > 0 && token_fallbacks < counts.succeeded;
    if mixed_sources && options.token_source == TokenSource::ServerWhenPresent {
        warnings.push(format!(
            "{token_fallbacks} of {} successful requests carried no usage: their output lengths \
             come from the client tokenizer, the others' from the server",
            counts.succeeded
        ));
    }
    warnings
}
