//! How much `aiperf profile` says on stderr beside its results, set by AIPerf's flags
//! (`--log-level`, `-v`, `-vv`): the run's failures, and its answers to Ctrl-C, at every level;
//! notes on flags, the dataset and the results from `warning` down; what the run is doing from
//! `info` down (the default); and, at `debug` and `trace`, the plan the flags resolved to.

use std::sync::atomic::{AtomicU8, Ordering};

use clap::ValueEnum;

/// AIPerf's log levels, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub(crate) enum LogLevel {
    /// As `debug` (aiperf has nothing finer to say).
    Trace,
    /// The resolved plan too: phases, loads, dataset, tokenizer, exports.
    Debug,
    /// What the run is doing: where it sends, the connections opened, the tokenizer found.
    Info,
    /// As `warning`.
    Notice,
    /// Notes on flags that do nothing, on the dataset and on the results.
    Warning,
    /// As `error`.
    Success,
    /// As `critical`: aiperf says nothing at this level.
    Error,
    /// Only the run's failures and answers to Ctrl-C, which every level shows.
    Critical,
}

/// The level in force; `info` until [`set`] says otherwise.
static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);

/// Sets the level for the rest of the process.
pub(crate) fn set(level: LogLevel) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether a line of `level` is said.
pub(crate) fn shows(level: LogLevel) -> bool {
    level as u8 >= LEVEL.load(Ordering::Relaxed)
}

/// The level `--log-level`, `-v` (debug) and `-vv`/`--extra-verbose` (trace) ask for: the
/// verbose flags override `--log-level`, as in AIPerf.
pub(crate) fn from_flags(log_level: LogLevel, verbose: u8, extra_verbose: bool) -> LogLevel {
    match (verbose, extra_verbose) {
        (_, true) | (2.., _) => LogLevel::Trace,
        (1, false) => LogLevel::Debug,
        (0, false) => log_level,
    }
}

/// Writes a line to stderr when its level is shown: `say!(LogLevel::Warning, "...", ...)`.
macro_rules! say {
    ($level:expr, $($arg:tt)*) => {
        if $crate::verbosity::shows($level) {
            eprintln!($($arg)*);
        }
    };
}
pub(crate) use say;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verbose_flags_override_the_log_level() {
        assert_eq!(from_flags(LogLevel::Info, 0, false), LogLevel::Info);
        assert_eq!(from_flags(LogLevel::Info, 1, false), LogLevel::Debug);
        assert_eq!(from_flags(LogLevel::Warning, 2, false), LogLevel::Trace);
        assert_eq!(from_flags(LogLevel::Error, 0, true), LogLevel::Trace);
        assert_eq!(from_flags(LogLevel::Trace, 1, false), LogLevel::Debug);
        assert_eq!(from_flags(LogLevel::Error, 0, false), LogLevel::Error);
    }

    #[test]
    fn a_level_shows_itself_and_what_is_more_severe() {
        set(LogLevel::Warning);
        assert!(shows(LogLevel::Error) && shows(LogLevel::Warning));
        assert!(!shows(LogLevel::Info) && !shows(LogLevel::Debug));
        set(LogLevel::Info);
        assert!(shows(LogLevel::Info) && !shows(LogLevel::Debug));
    }
}
