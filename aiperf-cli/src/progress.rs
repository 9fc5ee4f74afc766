//! The progress bar of `aiperf profile` (`--ui-type simple`): drawn on stderr when it is a
//! terminal, refreshed from the run's completed-request counter by its own task, so the
//! request path never touches it.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use aiperf_core::runner::{RunControl, RunPlan, StopCondition};
use indicatif::{ProgressBar, ProgressStyle};

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
        let (total, template) = match plan.stop {
            StopCondition::Count(n) => (
                (n + plan.warmup_requests) as u64,
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} requests ({per_sec}, eta {eta})",
            ),
            StopCondition::Duration { duration, .. } => (
                duration.as_secs(),
                "{spinner} [{elapsed_precise}] {bar:40} {msg} requests done",
            ),
        };
        let bar = ProgressBar::new(total);
        bar.set_style(ProgressStyle::with_template(template).expect("the template is valid"));
        let ticker = {
            let bar = bar.clone();
            let by_time = matches!(plan.stop, StopCondition::Duration { .. });
            tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tick.tick().await;
                    if by_time {
                        bar.set_position(start.elapsed().as_secs());
                        bar.set_message(control.completed().to_string());
                    } else {
                        bar.set_position(control.completed());
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
