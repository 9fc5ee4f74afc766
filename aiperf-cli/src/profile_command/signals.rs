//! Ctrl-C and SIGTERM during a run. Ctrl-C (SIGINT) stops scheduling and gives in-flight
//! requests the grace period; a second one cancels them at once. SIGTERM cancels them at once:
//! it comes from a service manager (`docker stop`, Kubernetes) that kills the process soon
//! after, and the exports must be written before that. Every export is still written.

use std::sync::Arc;
use std::time::Duration;

use aiperf_core::runner::RunControl;

/// What ends the run early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
}

pub(crate) async fn watch_signals(control: Arc<RunControl>, grace: Duration) {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    if next_signal(&mut terminate).await == Signal::Interrupt {
        eprintln!(
            "\naiperf: interrupted: no new requests; in-flight ones get {:.0} s to finish (interrupt again to stop now)",
            grace.as_secs_f64()
        );
        control.interrupt(grace);
        next_signal(&mut terminate).await;
    }
    eprintln!("aiperf: stopping now; writing what was measured");
    control.interrupt(Duration::ZERO);
}

/// Resolves on the next Ctrl-C or SIGTERM, saying which.
async fn next_signal(terminate: &mut Option<tokio::signal::unix::Signal>) -> Signal {
    match terminate {
        Some(terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => Signal::Interrupt,
            _ = terminate.recv() => Signal::Terminate,
        },
        None => {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}
