//! The progress bar of `aiperf profile` (`--ui-type simple`): drawn on stderr when it is a
//! terminal, refreshed from the run's completed-request counter by its own task, so the
//! request path never touches it.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use aiperf_core::runner::{RunControl, RunPlan, StopCondition};
use indicatif::{ProgressBar, ProgressStyle};

/// What the bar fills towards.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// The requests to send.
    ToCount,
    /// The benchmark duration.
    ToTime,
    /// Nothing known: the requests done are counted.
    Counting,
}

/// A running progress display; [`Progress::finish`] clears it.
pub(crate) struct Progress {
    bar: Option<(ProgressBar, tokio::task::JoinHandle<()>)>,
}

impl Progress {
    /// Starts drawing if `enabled` and stderr is a terminal.
    pub(crate) fn start(enabled: bool, plan: &RunPlan, control: Arc<RunControl>) -> Self {
        if !enabled || !std::io::stderr().is_terminal() {
            return Self { bar: None };
        }
        // A warm-up by duration sends an unknown number of requests for a time of its own
        // before the profiling phase: neither a count nor the time has a known end then. Nor
        // has a count of conversations alone, whose turns vary.
        let unknown_end = plan.warmup_duration.is_some()
            || plan.warmup_sessions.is_some()
            || plan.stop == StopCondition::CONVERSATIONS_ONLY;
        let (total, template, mode) = match plan.stop {
            _ if unknown_end => (
                0,
                "{spinner} [{elapsed_precise}] {msg} requests done",
                Mode::Counting,
            ),
            StopCondition::Count(n) => (
                (n + plan.warmup_requests) as u64,
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} requests ({per_sec}, eta {eta})",
                Mode::ToCount,
            ),
            StopCondition::Duration { duration, .. } => (
                duration.as_secs(),
                "{spinner} [{elapsed_precise}] {bar:40} {msg} requests done",
                Mode::ToTime,
            ),
        };
        let bar = ProgressBar::new(total);
        bar.set_style(ProgressStyle::with_template(template).expect("the template is valid"));
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tick.tick().await;
                    match mode {
                        Mode::ToCount => bar.set_position(control.completed()),
                        Mode::ToTime => {
                            bar.set_position(start.elapsed().as_secs());
                            bar.set_message(control.completed().to_string());
                        }
                        Mode::Counting => {
                            bar.tick();
                            bar.set_message(control.completed().to_string());
                        }
                    }
                }
            })
        };
        Self {
            bar: Some((bar, ticker)),
        }
    }

    /// Stops and clears the bar.
    pub(crate) fn finish(self) {
        if let Some((bar, ticker)) = self.bar {
            ticker.abort();
            bar.finish_and_clear();
        }
    }
}
