//! The headers that name a request's conversation, as AIPerf sends them: `X-Correlation-ID`
//! and `X-Session-Affinity`, both the id of this run of the conversation
//! ([`aiperf_core::transport::TransportRequest::correlation_id`]), so that a router can keep
//! its turns on one server. The HTTP transports send them as headers, gRPC as metadata.

/// `X-Correlation-ID`: a user's own (`-H`) is kept, as AIPerf keeps it.
pub(crate) const CORRELATION: &str = "x-correlation-id";

/// `X-Session-Affinity`: always the request's, a user's replaced, as AIPerf replaces it.
pub(crate) const SESSION_AFFINITY: &str = "x-session-affinity";

/// The conversation headers a transport adds to each request, given whether the user's
/// headers already hold one (`user_has`, by lowercase name).
pub(crate) fn to_send(user_has: impl Fn(&str) -> bool) -> Vec<&'static str> {
    [CORRELATION, SESSION_AFFINITY]
        .into_iter()
        .filter(|&name| name == SESSION_AFFINITY || !user_has(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_affinity_is_always_sent_and_the_correlation_unless_the_user_gave_one() {
        assert_eq!(to_send(|_| false), [CORRELATION, SESSION_AFFINITY]);
        assert_eq!(to_send(|_| true), [SESSION_AFFINITY]);
    }
}
