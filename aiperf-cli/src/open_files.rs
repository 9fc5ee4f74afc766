//! The process's limit on open files (`ulimit -n`): each connection to the server, or from a
//! client to the mock server, is one. Many systems start processes with a soft limit of 1024,
//! far below the hard limit an unprivileged process may raise it to, and below the thousands
//! of connections a high concurrency opens.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft limit on open files to the hard one, best effort: where the system refuses,
/// connections past the limit fail with "Too many open files", which their errors explain.
pub(crate) fn raise_to_hard_limit() {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let start = getrlimit(Resource::Nofile);
        let lowered = Rlimit {
            current: Some(start.current.unwrap_or(u64::MAX).min(512)),
            maximum: start.maximum,
        };
        setrlimit(Resource::Nofile, lowered).unwrap();
        raise_to_hard_limit();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum);
    }
}
