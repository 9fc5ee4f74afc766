//! Ctrl-C and SIGTERM during a run: the first stops scheduling and gives in-flight requests
//! the grace period, the second cancels them at once; every export is still written.

use std::sync::Arc;
use std::time::Duration;

use aiperf_core::runner::RunControl;

pub(crate) async fn watch_signals(control: Arc<RunControl>, grace: Duration) {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    next_signal(&mut terminate).await;
    eprintln!(
        "\naiperf: interrupted: no new requests; in-flight ones get {:.0} s to finish (interrupt again to stop now)",
        grace.as_secs_f64()
    );
    control.interrupt(grace);
    next_signal(&mut terminate).await;
    eprintln!("aiperf: stopping now; writing what was measured");
    control.interrupt(Duration::ZERO);
}

/// Resolves on the next Ctrl-C or SIGTERM.
async fn next_signal(terminate: &mut Option<tokio::signal::unix::Signal>) {
    match terminate {
        Some(terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        },
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
