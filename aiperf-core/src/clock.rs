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

/// The [`Instant`] a [`now_ns`] reading corresponds to, for sleeping until an absolute deadline.
pub fn instant_at(ns: u64) -> Instant {
    anchor().instant + std::time::Duration::from_nanos(ns)
}

/// Converts a [`now_ns`] reading to nanoseconds since the Unix epoch.
pub fn to_unix_ns(ns: u64) -> u64 {
    anchor().unix_ns + ns
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
}
