//! `aiperf mock-server`: the simulated engine of `aiperf_core::engine` served over HTTP
//! (OpenAI chat, completions, embeddings, models; SSE streaming with usage; Triton's generate
//! extension, [`triton`]) and, with `--grpc-port`, over KServe v2 gRPC ([`grpc`], feature
//! `grpc`), so tests, demos and `cargo xtask bench` have a real server on loopback with known
//! truth (DESIGN.md §6).
//!
//! HTTP/1.1 with keep-alive and HTTP/2 with prior knowledge (h2c) share one port
//! (hyper-util's auto connection builder). `--truth-log FILE` writes the engine's own timings of
//! every request, one JSON line each, for pairing with a client's records by `X-Request-ID`;
//! a request's arrival is the kernel's receive time of its bytes ([`arrival`]). Each piece of
//! an answer leaves when it is written, as the truth log says: the connections have
//! `TCP_NODELAY` and a congestion control that does not pace ([`send_unpaced`]).
//!
//! Faults are injected on purpose, each with a rate chosen by `--seed` and the request id: the
//! engine's own (the shared engine flags: `--rate-limit-rate`, stalls, invalid JSON, no usage,
//! no `[DONE]`) and the wire ones ([`faults`]: resets before the headers and mid-stream,
//! malformed SSE, slow headers).
//!
//! With `--tls-cert` and `--tls-key` both ports speak TLS ([`tls`]: `https://`, `grpcs://`).
//!
//! On start it prints one line to stdout, `aiperf mock-server listening on http://ADDR:PORT`
//! (`https://` with TLS), so scripts can read the port when started with `--port 0`; with
//! `--grpc-port`, a second line follows, `aiperf mock-server grpc listening on
//! grpc://ADDR:PORT` (`grpcs://`). Ctrl-C or
//! SIGTERM stops it; requests still in flight are dropped (and logged as cancelled) and the
//! truth log is flushed.

mod arrival;
mod faults;
#[cfg(feature = "grpc")]
mod grpc;
mod routes;
mod tls;
mod triton;
mod truth_log;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aiperf_core::engine::{Engine, EngineConfig};
use aiperf_core::tokenizer::Tokenizer;
use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};

use truth_log::TruthLog;

use crate::engine_args::EngineArgs;
use crate::flag_values::whole_number;

/// Arguments of `aiperf mock-server`. Engine defaults are those of `EngineConfig::default()`.
#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
pub(crate) struct MockServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on; 0 picks a free one (the line printed at start names it).
    #[arg(long, default_value_t = 8000, value_parser = whole_number::<u16>)]
    port: u16,
    /// Also serve KServe v2 gRPC on this port (0 picks a free one; a second line names it).
    #[arg(long, value_name = "PORT", value_parser = whole_number::<u16>)]
    grpc_port: Option<u16>,
    /// Runtime worker threads; 1 lets the server be pinned to one core (taskset).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    workers: u16,
    /// How the simulated engine behaves.
    #[command(flatten)]
    engine: EngineArgs,
    /// The faults only a server can make on the wire.
    #[command(flatten)]
    wire_faults: faults::WireFaultArgs,
    /// TLS on both ports.
    #[command(flatten)]
    tls: tls::TlsArgs,
    /// Seed of the engine's random choices (errors, early stops, answer words).
    #[arg(long, default_value_t = EngineConfig::default().seed)]
    seed: u64,
    /// Write each request's true timings to FILE, one JSON line per request.
    #[arg(long, value_name = "FILE")]
    truth_log: Option<PathBuf>,
    /// The model name /v1/models reports (requests may name any model).
    #[arg(long, default_value_t = EngineConfig::default().model)]
    model: String,
}

impl MockServerArgs {
    fn engine_config(&self) -> anyhow::Result<EngineConfig> {
        let mut config = EngineConfig {
            model: self.model.clone(),
            ..self.engine.engine_config(self.seed)?
        };
        self.wire_faults.apply_to(&mut config.faults);
        config.validate().context("invalid fault flags")?;
        Ok(config)
    }
}

/// Runs the server until Ctrl-C or SIGTERM.
pub(crate) fn run(args: MockServerArgs) -> anyhow::Result<u8> {
    if cfg!(not(feature = "grpc")) && args.grpc_port.is_some() {
        anyhow::bail!(
            "this aiperf was built without the `grpc` feature, so it cannot serve --grpc-port: \
             rebuild aiperf-cli with --features grpc"
        );
    }
    let config = args.engine_config()?;
    let acceptors = args.tls.acceptors()?;
    let truth_log = args
        .truth_log
        .as_deref()
        .map(TruthLog::create)
        .transpose()?;
    let engine = match &truth_log {
        Some(log) => Engine::with_truth_sink(config, log.sink()),
        None => Engine::new(config),
    }
    .context("invalid engine flags")?;
    // Prompts are counted with the builtin tokenizer: build it while the runtime starts.
    Tokenizer::warm_up_in_background();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.workers))
        .thread_name("mock-server")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(serve(
        &args.host,
        args.port,
        args.grpc_port,
        acceptors,
        engine,
    ));
    // Drops the connections still open: their requests are logged as cancelled.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Some(log) = truth_log {
        let path = log.path().display().to_string();
        let written = log
            .close()
            .with_context(|| format!("cannot write the truth log {path}"))?;
        eprintln!("aiperf mock-server: {written} requests written to the truth log {path}");
    }
    served?;
    Ok(crate::exit::SUCCESS)
}

/// Accepts connections until a shutdown signal, serving each on its own task; also serves gRPC
/// on `grpc_port` when given. `acceptors` take the HTTP and the gRPC port's connections (TLS
/// with `--tls-cert`).
async fn serve(
    host: &str,
    port: u16,
    grpc_port: Option<u16>,
    acceptors: tls::Acceptors,
    engine: Engine,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind((host, port)).await.with_context(|| {
        format!(
            "cannot listen on {host}:{port}: check --host, or pick another --port (0 takes any free one)"
        )
    })?;
    // Accepted connections inherit it: see `arrival` (without it, arrivals are handler stamps).
    let stamped = aiperf_transports::receive_stamps::enable(&listener);
    send_unpaced(&listener, "the HTTP port");
    #[cfg(feature = "grpc")]
    let grpc_listener = match grpc_port {
        Some(port) => Some(grpc::bind(host, port).await?),
        None => None,
    };
    #[cfg(not(feature = "grpc"))]
    let _ = grpc_port;
    let shutdown = shutdown_signal();
    let address = listener
        .local_addr()
        .context("cannot read the listening address")?;
    // Ready means ready: the first request must not wait for the tokenizer (being built since
    // start-up) that counts its prompt.
    tokio::task::spawn_blocking(Tokenizer::builtin)
        .await
        .context("cannot build the builtin tokenizer")?;
    announce("", &acceptors.http.scheme("http"), address)?;
    #[cfg(feature = "grpc")]
    if let Some(grpc_listener) = grpc_listener {
        grpc::start(grpc_listener, acceptors.grpc.clone(), engine.clone())?;
    }

    let mut builder = auto::Builder::new(TokioExecutor::new());
    // One write per response: copying a response into one buffer costs less than the extra
    // writev that a queue of many small SSE frames (over 16 buffers) would take.
    builder.http1().keep_alive(true).writev(false);
    // Benchmarks multiplex thousands of streams over few h2c connections.
    builder.http2().max_concurrent_streams(100_000);
    let builder = Arc::new(builder);

    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            stream = next_connection(&listener, "a connection") => stream,
            () = &mut shutdown => return Ok(()),
        };
        let builder = builder.clone();
        let engine = engine.clone();
        let acceptor = acceptors.http.clone();
        let (stream, received_at) = arrival::StampedStream::new(stream, stamped);
        tokio::spawn(async move {
            let Some(stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request| {
                let arrival_ns = received_at.arrival_ns();
                let engine = engine.clone();
                async move {
                    let response = routes::handle(&engine, request, arrival_ns).await;
                    faults::apply(&engine, response).await
                }
            });
            // A client closing mid-request is normal for a load generator, and an injected
            // reset ends the connection on purpose: nothing to report.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Prints the stdout line scripts read a port from: `aiperf mock-server {service}listening on
/// {scheme}://{address}` (`service` is empty for the HTTP port, `"grpc "` for the gRPC one).
fn announce(service: &str, scheme: &str, address: SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "aiperf mock-server {service}listening on {scheme}://{address}"
    )
    .and_then(|()| stdout.flush())
    .context("cannot write to stdout")
}

/// The next connection `listener` accepts (`what` names it in messages), with
/// `TCP_NODELAY`: each SSE event or gRPC message must leave at once, not wait for Nagle's
/// algorithm. An error (out of file descriptors and the like) is reported, and the next
/// accept waits a moment for connections to close.
async fn next_connection(listener: &TcpListener, what: &str) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                return stream;
            }
            Err(error) => {
                eprintln!("aiperf mock-server: cannot accept {what}: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The TCP congestion control the mock's connections use: Reno, which every Linux kernel
/// has and lets any process choose, and which does not pace.
const UNPACED_CONGESTION_CONTROL: &str = "reno";

/// Has the connections `listener` accepts send each write at once, whatever the system's
/// default congestion control: a pacing one (BBR, which some hosts make the default) can hold
/// a token's chunk in the kernel after the engine stamped it in the truth log, then send it
/// with the next one, and a client measured against the truth log would be charged for the
/// server's delay (its first token read one inter-token latency late). Connections take the
/// listener's choice as they are made, so their pacing is never set up. On loopback, where
/// nothing is lost, the choice changes nothing else; across a lossy network Reno recovers
/// more slowly than CUBIC, which matters little for a test server's small answers. Best
/// effort: a listener that refuses keeps the system's default, and a line on stderr says so
/// (`what` names it).
fn send_unpaced(listener: &TcpListener, what: &str) {
    #[cfg(target_os = "linux")]
    if let Err(error) =
        rustix::net::sockopt::set_tcp_congestion(listener, UNPACED_CONGESTION_CONTROL)
    {
        eprintln!(
            "aiperf mock-server: cannot set {what}'s TCP congestion control to \
             {UNPACED_CONGESTION_CONTROL} ({error}): with a pacing default (bbr), the truth \
             log may stamp tokens before they leave"
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (listener, what);
}

/// Completes on Ctrl-C or (on Unix) SIGTERM. The handlers are installed when this is called,
/// not when first polled, so a signal right after the "listening" line still stops the server
/// cleanly.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        async fn received(signal: Option<Signal>) {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                // No handler could be installed: the default action (exit) applies.
                None => std::future::pending().await,
            }
        }
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            tokio::select! {
                () = received(interrupt) => {}
                () = received(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        // Without a Ctrl-C handler the server runs until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_take_the_unpaced_congestion_control() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        send_unpaced(&listener, "the test's port");
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, next_connection(&listener, "a test"));
        client.unwrap();
        let chosen = rustix::net::sockopt::tcp_congestion(&accepted).unwrap();
        assert_eq!(chosen, UNPACED_CONGESTION_CONTROL, "{chosen:?}");
        assert!(accepted.nodelay().unwrap());
    }
}
