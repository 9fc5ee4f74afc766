//! What `aiperf profile -v` says of the plan the flags resolved to: each phase's load and
//! limits, the dataset, the tokenizer and where the exports go, in words.

use std::time::Duration;

use aiperf_core::dataset::Conversation;
use aiperf_core::runner::{PhaseRamps, StopCondition};
use aiperf_core::schedule::{ArrivalPattern, LoadMode};

use super::plan::Profile;
use crate::verbosity::{LogLevel, say, shows};

/// Says, at `--log-level debug`, what `profile` resolved to, its dataset `conversations`.
pub(crate) fn say_the_plan(profile: &Profile, conversations: &[Conversation]) {
    if !shows(LogLevel::Debug) {
        return;
    }
    let plan = &profile.plan;
    if plan.has_warmup() {
        let mut limits = Vec::new();
        if plan.warmup_requests > 0 {
            limits.push(count(plan.warmup_requests, "request"));
        }
        if let Some(duration) = plan.warmup_duration {
            limits.push(format!("for {}", seconds(duration)));
        }
        if let Some(sessions) = plan.warmup_sessions {
            limits.push(count(sessions, "conversation"));
        }
        say!(
            LogLevel::Debug,
            "aiperf: debug: warm-up: {}; {}{}{}",
            load(plan.warmup_load()),
            limits.join(" or "),
            ramps(plan.warmup_ramps()),
            prefill(plan.warmup_prefill_limit())
        );
    }
    let (stop, grace) = match plan.stop {
        StopCondition::CONVERSATIONS_ONLY => ("until its conversations end".to_owned(), None),
        StopCondition::Count(requests) => (count(requests, "request"), None),
        StopCondition::Duration { duration, grace } => {
            (format!("for {}", seconds(duration)), Some(grace))
        }
    };
    let sessions = plan
        .sessions
        .map(|sessions| format!(" or {}", count(sessions, "conversation")))
        .unwrap_or_default();
    let grace = grace
        .map(|grace| format!("; {} of grace for the requests in flight", seconds(grace)))
        .unwrap_or_default();
    say!(
        LogLevel::Debug,
        "aiperf: debug: profiling: {}; {stop}{sessions}{grace}{}{}; at most {} in flight",
        load(plan.load),
        ramps(plan.profiling_ramps()),
        prefill(plan.prefill_concurrency),
        count(plan.max_in_flight(), "request")
    );
    let turns: usize = conversations.iter().map(|c| c.turns.len()).sum();
    say!(
        LogLevel::Debug,
        "aiperf: debug: dataset: {} of {} in all, taken in {:?} order; tokenizer {}; exports \
         to {}",
        count(conversations.len(), "conversation"),
        count(turns, "turn"),
        profile.sampling,
        profile.tokenizer,
        profile.artifact_dir.display()
    );
}

/// `n` `thing`s, in the plural unless one.
fn count(n: usize, thing: &str) -> String {
    match n {
        1 => format!("1 {thing}"),
        n => format!("{n} {thing}s"),
    }
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// A phase's load in words.
fn load(load: LoadMode) -> String {
    let cap = |cap: Option<usize>| {
        cap.map(|n| format!(", at most {n} at a time"))
            .unwrap_or_default()
    };
    match load {
        LoadMode::Concurrency(n) => format!("{n} at a time (closed loop)"),
        LoadMode::Rate {
            rate,
            pattern,
            max_concurrency,
        } => {
            let pattern = match pattern {
                ArrivalPattern::Constant => "evenly spaced".to_owned(),
                ArrivalPattern::Poisson => "Poisson gaps".to_owned(),
                ArrivalPattern::Gamma { smoothness } => {
                    format!("gamma gaps of smoothness {smoothness}")
                }
            };
            format!("{rate} requests/s, {pattern}{}", cap(max_concurrency))
        }
        LoadMode::FixedSchedule { max_concurrency } => {
            format!("at the dataset's timestamps{}", cap(max_concurrency))
        }
    }
}

/// A phase's ramps, as a clause to append (empty without any).
fn ramps(ramps: PhaseRamps) -> String {
    let mut clauses = String::new();
    if let Some(ramp) = ramps.concurrency {
        clauses.push_str(&format!("; concurrency ramped over {}", seconds(ramp)));
    }
    if let Some(ramp) = ramps.rate {
        clauses.push_str(&format!("; rate ramped over {}", seconds(ramp)));
    }
    clauses
}

/// A phase's prefill limit, as a clause to append (empty without one).
fn prefill(limit: Option<usize>) -> String {
    limit
        .map(|n| format!("; at most {n} awaiting a first token"))
        .unwrap_or_default()
}
