//! After the run: the statistics of the records processed beside it, the other exports (the
//! JSONL file and `outputs.json` are written already), the console report and the exit
//! status.

use aiperf_core::export::{ArtifactDir, SessionPayloads, console};
use aiperf_core::metrics::{BenchmarkReport, MetricId, RunFacts};
use aiperf_core::record_processor::Processed;
use aiperf_core::runner::{self, RunOutput};
use anyhow::{Context, bail};

use super::args::{DEFAULT_MODEL, ProfileArgs};
use super::input_config::{input_config, run_info};
use super::plan::Profile;
use crate::exit;
use crate::verbosity::{LogLevel, say};

/// Metrics, exports and the console report; the exit status.
pub(crate) fn report(
    args: &ProfileArgs,
    given: &[String],
    profile: &Profile,
    artifacts: &ArtifactDir,
    output: &RunOutput,
    processed: Processed,
) -> anyhow::Result<u8> {
    let facts = RunFacts {
        benchmark_id: runner::random_uuid(),
        was_cancelled: output.was_interrupted,
        profiling_start_ns: Some(output.profiling_start_ns),
        profiling_end_ns: Some(output.profiling_end_ns),
        requests_sent: None,
    };
    let report = processed.analysis.finish(&facts);
    let input_config =
        input_config(args, given, profile).context("failed to describe the run's configuration")?;
    let command_line: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|word| word.to_string_lossy().into_owned())
        .collect();
    let run_info = run_info(&report.benchmark_id, args, given, &command_line);
    // Each export is written whatever became of the others, and the console report is shown
    // before any export's failure is: one file that cannot be written loses nothing else.
    let payloads = SessionPayloads::group(output.payloads.iter().flat_map(|sent| {
        sent.payloads
            .iter()
            .map(move |payload| (&*sent.session_id, &payload[..]))
    }));
    let written = [
        artifacts
            .write_profile_json(&report, &input_config, &run_info)
            .map(drop),
        artifacts.write_profile_csv(&report).map(drop),
        artifacts.write_inputs_json(&payloads).map(drop),
        // The per-request files were written during the run.
        processed.jsonl.map(drop),
        processed.outputs.map(drop),
    ];

    let mut out = console::render(&report);
    if !args.streaming && profile.transport_ctx.url.is_none() {
        out.push_str("(add --streaming to measure time to first token and inter-token latency)\n");
    }
    let counts = report.counts;
    out.push_str(&format!(
        "requests: {} sent = {} succeeded + {} errored + {} cancelled{}{}\n",
        counts.sent,
        counts.succeeded,
        counts.errored,
        counts.cancelled,
        if counts.cancelled > 0 {
            " (the table's Error Request Count includes the cancelled, as AIPerf's does)"
        } else {
            ""
        },
        if counts.is_reconciled() {
            ""
        } else {
            "  (DOES NOT RECONCILE: please report this)"
        }
    ));
    crate::stdout::print(&out);
    if let Some(note) = fell_behind_note(processed.caught_up) {
        say!(LogLevel::Warning, "{note}");
    }
    if args.streaming && answers_came_whole(&report) {
        say!(LogLevel::Warning, "{NOT_STREAMED_NOTE}");
    }
    let failures: Vec<String> = written
        .into_iter()
        .filter_map(|result| {
            result
                .err()
                .map(|error| format!("{:#}", anyhow::Error::from(error)))
        })
        .collect();
    if !failures.is_empty() {
        bail!(
            "{} (the other exports are in {})",
            failures.join("; "),
            artifacts.path().display()
        );
    }
    crate::stdout::print(&format!(
        "exports written to {}\n",
        artifacts.path().display()
    ));

    if output.was_interrupted {
        return Ok(exit::INTERRUPTED);
    }
    if counts.sent > 0 && counts.succeeded == 0 {
        say!(
            LogLevel::Critical,
            "aiperf: every request failed: see the error summary above"
        );
        if profile.transport_ctx.url.is_some() && args.model == DEFAULT_MODEL {
            say!(
                LogLevel::Critical,
                "aiperf: no --model was given, so the requests named `{DEFAULT_MODEL}`, the \
                 simulated engine's: if the errors say the server does not know that model, \
                 pass -m with one it serves (its GET /v1/models lists them)"
            );
        }
        return Ok(exit::RUN_FAILED);
    }
    if let Some(threshold) = args.failed_request_threshold
        && counts.errored > threshold
    {
        say!(
            LogLevel::Critical,
            "aiperf: {} requests failed, more than --failed-request-threshold {threshold}",
            counts.errored
        );
        return Ok(exit::RUN_FAILED);
    }
    Ok(exit::SUCCESS)
}

/// What to say when the record processor fell over a second behind and `caught_up` records
/// were processed at normal priority (`None` when it never did).
fn fell_behind_note(caught_up: usize) -> Option<String> {
    (caught_up > 0).then(|| {
        format!(
            "aiperf: note: record processing fell over a second behind ({caught_up} {} \
             processed at normal priority): the client's core was busy, and the client may \
             itself have limited the load",
            if caught_up == 1 { "record" } else { "records" }
        )
    })
}

/// What to say when a streaming run's answers all came whole ([`answers_came_whole`]).
const NOT_STREAMED_NOTE: &str = "aiperf: note: --streaming was asked, but no answer of several \
     tokens came in more than one chunk: time to first token is then each request's whole \
     latency, and inter-token latency is meaningless. The server either sent whole bodies \
     (check that it streams, and that --extra-inputs does not set `stream`) or put each \
     answer in one event";

/// Whether answers of several tokens came, none of them in more than one chunk: a server that
/// ignored the request to stream.
fn answers_came_whole(report: &BenchmarkReport) -> bool {
    let several_tokens = report
        .stats(MetricId::OutputSequenceLength)
        .is_some_and(|tokens| tokens.max > 1.0);
    let in_pieces = report
        .stats(MetricId::TimeToSecondToken)
        .is_some_and(|second| second.count > 0);
    several_tokens && !in_pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_on_falling_behind_counts_the_records_caught_up() {
        assert_eq!(fell_behind_note(0), None);
        assert_eq!(
            fell_behind_note(1).unwrap(),
            "aiperf: note: record processing fell over a second behind (1 record processed at \
             normal priority): the client's core was busy, and the client may itself have \
             limited the load"
        );
        assert!(
            fell_behind_note(2)
                .unwrap()
                .contains("(2 records processed")
        );
    }
}
