//! The benchmark's clock: monotonic nanoseconds since the process's anchor, convertible to Unix
//! time for exports. Every timestamp in a record comes from [`now_ns`], so differences between
//! them are immune to wall-clock steps.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

struct Anchor {
    instant: Instant,
    unix_ns: u64,
}

fn anchor() -> &'static Anchor {
    static ANCHOR: OnceLock<Anchor> = OnceLock::new();
    ANCHOR.get_or_init(|| Anchor {
        instant: Instant::now(),
        unix_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    })
}

/// Monotonic nanoseconds since the process's clock anchor (taken on first use).
pub fn now_ns() -> u64 {
    anchor().instant.elapsed().as_nanos() as u64
}

/// The reading `offset` after the reading `ns`, saturating: a time beyond the clock's range (a
/// schedule offset of centuries, from a tiny rate or a trace in epoch milliseconds) stays in
/// the far future instead of wrapping into the past.
pub fn after(ns: u64, offset: std::time::Duration) -> u64 {
    ns.saturating_add(u64::try_from(offset.as_nanos()).unwrap_or(u64::MAX))
}

/// The [`Instant`] a [`now_ns`] reading corresponds to, for sleeping until an absolute deadline.
pub fn instant_at(ns: u64) -> Instant {
    anchor().instant + std::time::Duration::from_nanos(ns)
}

/// Converts a [`now_ns`] reading to nanoseconds since the Unix epoch.
pub fn to_unix_ns(ns: u64) -> u64 {
    anchor().unix_ns + ns
}

/// Converts a Unix-epoch time taken by someone else (the kernel's receive stamp of a packet)
/// to a [`now_ns`] reading, through the offset between the two clocks as it is now (so that a
/// wall-clock step since start-up does not shift it); never later than now.
pub fn from_unix_ns(unix_ns: u64) -> u64 {
    // Wall clock first: a pause between the two readings then makes the result later, which
    // the clamp to now bounds, never earlier than the event.
    let unix_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    let now = now_ns();
    now.saturating_sub(unix_now.saturating_sub(unix_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_monotonic_and_convert_to_unix_time() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        let unix = to_unix_ns(b);
        // After 2020-01-01 and consistent with SystemTime.
        assert!(unix > 1_577_836_800_000_000_000);
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        assert!(system.abs_diff(unix) < 5_000_000_000);
        assert!(instant_at(b) <= Instant::now());
    }

    #[test]
    fn unix_times_convert_back_to_readings_of_this_clock() {
        let reading = now_ns();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let back = from_unix_ns(unix - 3_000_000);
        assert!(back <= now_ns());
        assert!(
            back.abs_diff(reading.saturating_sub(3_000_000)) < 1_000_000,
            "{back} vs {reading}"
        );
        assert!(from_unix_ns(u64::MAX) <= now_ns(), "never later than now");
    }
}
