//! Ctrl-C and SIGTERM during a run. Ctrl-C (SIGINT) stops scheduling and gives in-flight
//! requests the grace period; a second one cancels them at once. SIGTERM cancels them at once:
//! it comes from a service manager (`docker stop`, Kubernetes) that kills the process soon
//! after, and the exports must be written before that. Every export is still written.

use std::sync::Arc;
use std::time::Duration;

use aiperf_core::runner::RunControl;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::verbosity::{LogLevel, say};

/// Ctrl-C and SIGTERM, caught from when [`RunSignals::catch`] is called: before the server is
/// probed and the connections opened, so that a signal then ends the run the same way (with
/// nothing sent) instead of killing the process.
pub(crate) struct RunSignals {
    interrupt: Option<Signal>,
    terminate: Option<Signal>,
}

/// Which signal came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caught {
    /// Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl RunSignals {
    /// Catches both signals from now on (a signal that cannot be caught keeps its default).
    /// Must be called inside the runtime.
    pub(crate) fn catch() -> Self {
        Self {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Interrupts `control` as the signals come: the first Ctrl-C with `grace`, SIGTERM or a
    /// second Ctrl-C at once.
    pub(crate) async fn watch(mut self, control: Arc<RunControl>, grace: Duration) {
        if self.next().await == Caught::Interrupt {
            say!(
                LogLevel::Critical,
                "\naiperf: interrupted: no new requests; in-flight ones get {:.0} s to finish (interrupt again to stop now)",
                grace.as_secs_f64()
            );
            control.interrupt(grace);
            self.next().await;
        }
        say!(
            LogLevel::Critical,
            "aiperf: stopping now; writing what was measured"
        );
        control.interrupt(Duration::ZERO);
    }

    /// The next signal caught.
    async fn next(&mut self) -> Caught {
        tokio::select! {
            Some(()) = recv(&mut self.interrupt) => Caught::Interrupt,
            Some(()) = recv(&mut self.terminate) => Caught::Terminate,
            else => std::future::pending().await,
        }
    }
}

/// The next delivery of `signal`; never, when it could not be caught.
async fn recv(signal: &mut Option<Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}
