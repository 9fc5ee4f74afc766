//! After the run: client-side token counts, metrics, the four exports, the console report
//! and the exit status.

use aiperf_core::export::{ArtifactDir, SessionPayloads, console};
use aiperf_core::metrics::{RunFacts, analyze};
use aiperf_core::runner::{self, RunOutput};
use aiperf_core::tokenizer::Tokenizer;
use anyhow::Context;

use super::args::ProfileArgs;
use super::plan::Profile;
use crate::exit;

/// Counts output and reasoning tokens with the client tokenizer, after the run (off the
/// measured path), spread over the machine's cores.
pub(crate) fn count_client_tokens(
    output: &mut RunOutput,
    tokenizer: &Tokenizer,
    produces_tokens: bool,
) {
    if !produces_tokens {
        return;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = output.records.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for records in output.records.chunks_mut(chunk) {
            scope.spawn(move || {
                for record in records {
                    record.client_tokens.output = Some(tokenizer.count(&record.text.content));
                    record.client_tokens.reasoning = Some(tokenizer.count(&record.text.reasoning));
                }
            });
        }
    });
}

/// Metrics, exports and the console report; the exit status.
pub(crate) fn report(
    args: &ProfileArgs,
    profile: &Profile,
    artifacts: &ArtifactDir,
    output: &RunOutput,
) -> anyhow::Result<u8> {
    let facts = RunFacts {
        benchmark_id: runner::random_uuid(),
        was_cancelled: output.was_interrupted,
        profiling_start_ns: Some(output.profiling_start_ns),
        profiling_end_ns: Some(output.profiling_end_ns),
        requests_sent: None,
    };
    let report = analyze(&output.records, &facts, &profile.metric_options);
    // The per-request file first: it holds everything measured, whatever fails after it.
    artifacts.write_records_jsonl(&report, &output.records)?;
    let input_config =
        serde_json::to_value(args).context("failed to describe the run's configuration")?;
    artifacts.write_profile_json(&report, &input_config)?;
    artifacts.write_profile_csv(&report)?;
    artifacts.write_inputs_json(&SessionPayloads::group(output.payloads.iter().flat_map(
        |sent| {
            sent.payloads
                .iter()
                .map(move |payload| (&*sent.session_id, &payload[..]))
        },
    )))?;

    print!("{}", console::render(&report));
    if !args.streaming && profile.transport_ctx.url.is_none() {
        println!("(add --streaming to measure time to first token and inter-token latency)");
    }
    let counts = report.counts;
    println!(
        "requests: {} sent = {} succeeded + {} errored + {} cancelled{}",
        counts.sent,
        counts.succeeded,
        counts.errored,
        counts.cancelled,
        if counts.is_reconciled() {
            ""
        } else {
            "  (DOES NOT RECONCILE: please report this)"
        }
    );
    println!("exports written to {}", artifacts.path().display());

    if output.was_interrupted {
        return Ok(exit::INTERRUPTED);
    }
    if counts.sent > 0 && counts.succeeded == 0 {
        eprintln!("aiperf: every request failed: see the error summary above");
        return Ok(exit::RUN_FAILED);
    }
    if let Some(threshold) = args.failed_request_threshold
        && counts.errored > threshold
    {
        eprintln!(
            "aiperf: {} requests failed, more than --failed-request-threshold {threshold}",
            counts.errored
        );
        return Ok(exit::RUN_FAILED);
    }
    Ok(exit::SUCCESS)
}
