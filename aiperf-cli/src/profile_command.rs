//! `aiperf profile`: the benchmark. Parses AIPerf's flags (same spellings and aliases), checks
//! their combinations before anything runs, builds the endpoint and transport from the
//! registry, runs the schedule, and hands the records to metrics and exports.
//!
//! Modules: [`args`] (the flags), [`pairs`] (`-H` and `--extra-inputs` values), [`models`]
//! (`-m`), [`plan`] (validation), [`transport_choice`], [`signals`], [`input_config`] (the
//! configuration the JSON export echoes), [`redaction`] (secrets kept out of it),
//! [`report`](mod@report) (metrics, exports, exit status).

mod args;
mod input_config;
mod models;
mod pairs;
mod plan;
mod plan_summary;
mod redaction;
mod report;
mod signals;
mod transport_choice;

use std::sync::Arc;
use std::time::Duration;

use aiperf_core::dataset::SamplingOrder;
use aiperf_core::dataset::custom::{self};
use aiperf_core::dataset::model_selection::ModelPicker;
use aiperf_core::dataset::synthetic::{self};
use aiperf_core::endpoint::{Endpoint, EndpointContext, Message, RequestInput, Role};
use aiperf_core::export::ArtifactDir;
use aiperf_core::metrics::Analysis;
use aiperf_core::record_processor::{RecordFiles, RecordProcessor};
use aiperf_core::runner::{self, PreparedConversation, RunControl, RunError, RunOutput, RunPlan};
use aiperf_core::tokenizer::{BUILTIN_SPEC, Tokenizer};
use aiperf_core::transport::{Transport, TransportErrorKind};
use anyhow::{Context, bail};

pub(crate) use args::ProfileArgs;
use args::{ExportLevelArg, UiArg};
use plan::{DatasetSource, fit_plan_to_dataset, validate};
use report::report;
use signals::RunSignals;
use transport_choice::choose_transport;

use crate::verbosity::{LogLevel, say};

/// Runs `aiperf profile`; `given` names the flags the command line set (for the exports'
/// `input_config`).
pub(crate) fn run(args: ProfileArgs, given: &[String]) -> anyhow::Result<u8> {
    crate::verbosity::set(crate::verbosity::from_flags(
        args.log_level,
        args.verbose,
        args.extra_verbose,
    ));
    // Compile the builtin tokenizer's pattern while everything else is set up: the first
    // record to count its output tokens then finds it ready.
    if args
        .tokenizer
        .as_deref()
        .is_none_or(|spec| spec == BUILTIN_SPEC)
    {
        Tokenizer::warm_up_in_background();
    }
    let mut profile = validate(&args)?;
    let registries = crate::registries(&args.use_implementation)?;
    // One endpoint per --model name (they differ only in the model their bodies name); the
    // first parses every response.
    let endpoints = profile
        .models
        .iter()
        .map(|model| {
            let ctx = EndpointContext {
                model: model.clone(),
                ..profile.endpoint_ctx.clone()
            };
            let endpoint = registries
                .endpoint
                .create_instance(&args.endpoint_type, &ctx)?;
            Ok(Arc::from(endpoint))
        })
        .collect::<anyhow::Result<Vec<Arc<dyn Endpoint>>>>()?;
    let endpoint = Arc::clone(&endpoints[0]);
    if args.streaming && !endpoint.metadata().supports_streaming {
        bail!(
            "endpoint `{}` cannot stream: drop --streaming",
            args.endpoint_type
        );
    }
    if profile.dataset.prefix().system_prompt.is_some() && !sends_system_messages(&*endpoint) {
        bail!(
            "--system-prompt/--system-prompt-file: endpoint `{}` sends no system message, so \
             the prompt would never reach the server: drop it, or use an endpoint that sends \
             one (chat, completions)",
            args.endpoint_type
        );
    }
    profile.metric_options.produces_tokens = endpoint.metadata().produces_tokens;
    if !endpoint.metadata().produces_tokens && args.osl.is_some() {
        say!(
            LogLevel::Warning,
            "aiperf: --osl has no effect: it sets how many tokens to generate, and endpoint `{}` \
             generates none",
            args.endpoint_type
        );
    }
    let mut conversations = match &profile.dataset {
        DatasetSource::Synthetic(config) => synthetic::generate(config),
        DatasetSource::File(config) => custom::load(config)?,
    };
    fit_plan_to_dataset(&args, &mut profile, &mut conversations)?;
    plan_summary::say_the_plan(&profile, &conversations);
    let mut transports: Vec<Arc<dyn Transport>> = Vec::new();
    let mut transport_names = Vec::new();
    for ctx in profile.transport_contexts() {
        let (name, transport) = choose_transport(
            &registries,
            args.transport.as_deref(),
            &ctx,
            &args.endpoint_type,
            endpoint.metadata().wire_format,
        )?;
        transports.push(transport.into());
        if !transport_names.contains(&name) {
            transport_names.push(name);
        }
    }
    let transport_names = transport_names.join("`, `");
    match profile.urls.as_slice() {
        [] => say!(
            LogLevel::Info,
            "aiperf: no --url given: benchmarking the built-in simulated engine (transport `{transport_names}`)"
        ),
        [url] => say!(
            LogLevel::Info,
            "aiperf: profiling {} with endpoint `{}` over `{transport_names}`",
            redaction::redact_url(url),
            args.endpoint_type
        ),
        urls => say!(
            LogLevel::Info,
            "aiperf: profiling {} servers ({}) with endpoint `{}` over `{transport_names}`, each \
             conversation going to the next in turn",
            urls.len(),
            urls.iter()
                .map(|url| redaction::redact_url(url))
                .collect::<Vec<_>>()
                .join(", "),
            args.endpoint_type
        ),
    }

    let mut models = ModelPicker::new(
        args.model_selection_strategy.into(),
        endpoints.len(),
        args.random_seed,
    );
    let conversations: Vec<PreparedConversation> = conversations
        .iter()
        .map(|conversation| {
            PreparedConversation::prepare(conversation, || {
                Arc::clone(&endpoints[models.next_model()])
            })
        })
        .collect();
    let order = Box::new(SamplingOrder::new(
        profile.sampling,
        conversations.len(),
        args.random_seed,
    ));

    // Checked now, not after the run: a run whose results cannot be written is wasted.
    let mut artifacts = ArtifactDir::prepare(&profile.artifact_dir)?;
    if let Some(prefix) = &profile.export_prefix {
        artifacts = artifacts.with_prefix(prefix);
    }
    // Records are processed as requests end, beside the run: the client tokenizer counts,
    // the metrics, the JSONL line; none is kept. Started once the server answered.
    let (records, received) = std::sync::mpsc::channel();
    let produces_tokens = endpoint.metadata().produces_tokens;
    let start_processor = || {
        RecordProcessor::start(
            received,
            Analysis::new(&profile.metric_options),
            produces_tokens.then(|| profile.tokenizer.clone()),
            RecordFiles {
                jsonl: match args.export_level {
                    ExportLevelArg::Summary => None,
                    ExportLevelArg::Records | ExportLevelArg::Raw => {
                        Some(artifacts.records_jsonl()?)
                    }
                },
                outputs: args
                    .export_outputs_json
                    .then(|| artifacts.outputs_json())
                    .transpose()?,
            },
        )
        .context("failed to start the record processor's threads")
    };
    let control = Arc::new(RunControl::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let run = runner::run(
        Arc::clone(&endpoint),
        transports.clone(),
        conversations,
        order,
        profile.plan.clone(),
        Arc::clone(&control),
        records,
    );
    let (output, processor) = runtime.block_on(run_with_progress(
        &args,
        &transports,
        endpoint.path(),
        &profile.plan,
        control,
        start_processor,
        run,
    ))?;
    // Connections hold file descriptors: closed before the exports are written, a run that
    // used every one the process may open still writes its results.
    drop(transports);
    drop(runtime);
    report(
        &args,
        given,
        &profile,
        &artifacts,
        &output,
        processor.finish(),
    )
}

/// Runs the benchmark (`run`, the runner's future) once the server answers at `path`, with a
/// progress bar (when asked and on a terminal) and Ctrl-C / SIGTERM handling ([`signals`]:
/// Ctrl-C gives in-flight requests the grace period, SIGTERM or a second Ctrl-C cancels them
/// at once). The record processor (`start_processor`) starts once the server answered, so that a
/// run that could not start leaves no `profile_export.jsonl`, and before the connections are
/// opened, which may take every file descriptor the process is allowed.
async fn run_with_progress(
    args: &ProfileArgs,
    transports: &[Arc<dyn Transport>],
    path: &str,
    plan: &RunPlan,
    control: Arc<RunControl>,
    start_processor: impl FnOnce() -> anyhow::Result<RecordProcessor>,
    run: impl Future<Output = Result<RunOutput, RunError>>,
) -> anyhow::Result<(RunOutput, RecordProcessor)> {
    let grace = Duration::try_from_secs_f64(args.benchmark_grace_period).unwrap_or(Duration::ZERO);
    let signals = tokio::spawn(RunSignals::catch().watch(Arc::clone(&control), grace));
    let wait = Duration::try_from_secs_f64(args.wait_for_model_timeout).unwrap_or(Duration::ZERO);
    // Interrupted while waiting for the server, the run starts at once and sends nothing.
    for transport in transports {
        tokio::select! {
            answered = wait_for_server(transport.as_ref(), path, wait) => answered?,
            () = control.interrupted() => break,
        }
    }
    let processor = start_processor()?;
    if !control.was_interrupted() {
        let mut opened = 0;
        for transport in transports {
            opened += transport.open_connections().await;
        }
        if opened > 0 {
            say!(
                LogLevel::Info,
                "aiperf: opened {opened} connection{} before the run",
                if opened == 1 { "" } else { "s" }
            );
        }
    }
    let progress = crate::progress::Progress::start(args.ui != UiArg::None, plan, control);
    let output = run.await;
    progress.finish();
    signals.abort();
    Ok((output?, processor))
}

/// Whether `endpoint` puts a conversation's system message on the wire (embeddings, for one,
/// sends only the user's text): a payload formatted around a marker holds the marker.
fn sends_system_messages(endpoint: &dyn Endpoint) -> bool {
    const MARKER: &str = "aiperf-system-prompt-probe";
    let probe = RequestInput {
        messages: vec![
            Message {
                role: Role::System,
                content: MARKER.to_owned(),
            },
            Message::user("?"),
        ],
        max_output_tokens: None,
    };
    let payload = endpoint.format_payload(&probe);
    payload
        .windows(MARKER.len())
        .any(|window| window == MARKER.as_bytes())
}

/// Probes the server until it answers or `wait` has passed: an unreachable server is one
/// clear error before the run, not thousands of failed records. A definite refusal (the
/// in-process engine does not serve the endpoint's path) is an error at once.
async fn wait_for_server(
    transport: &dyn Transport,
    path: &str,
    wait: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let err = match transport.probe(path).await {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        let unreachable = matches!(
            err.kind,
            TransportErrorKind::Connect | TransportErrorKind::Timeout
        );
        if !unreachable {
            bail!("{err}");
        }
        if tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
        } else if wait.is_zero() {
            bail!("{err}; or give --wait-for-model-timeout SECONDS to wait for it");
        } else {
            bail!(
                "{err} (waited {:.0} s, --wait-for-model-timeout)",
                wait.as_secs_f64()
            );
        }
    }
}
