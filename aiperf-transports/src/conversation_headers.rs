//! The headers that name a request's conversation, as AIPerf sends them: `X-Correlation-ID`
//! (or the name `--session-header` gives) and `X-Session-Affinity`, both the id of this run of
//! the conversation ([`aiperf_core::transport::TransportRequest::correlation_id`]), so that a
//! router can keep its turns on one server. The HTTP transports send them as headers, gRPC as
//! metadata.

use aiperf_core::registry::CreateError;
use aiperf_core::transport::{TransportContext, check_session_header};
use http::HeaderName;

/// `X-Correlation-ID`: a user's own (`-H`) is kept, as AIPerf keeps it.
pub(crate) const CORRELATION: &str = "x-correlation-id";

/// `X-Session-Affinity`: always the request's, a user's replaced, as AIPerf replaces it.
pub(crate) const SESSION_AFFINITY: &str = "x-session-affinity";

/// The conversation headers a transport adds to each request, given the context's
/// `--session-header` and whether the user's headers already hold one (`user_has`, by lowercase
/// name). A `--session-header` that is no header name, or one HTTP or aiperf sets, is refused.
pub(crate) fn to_send(
    ctx: &TransportContext,
    user_has: impl Fn(&str) -> bool,
) -> Result<Vec<HeaderName>, CreateError> {
    let correlation = match &ctx.session_header {
        Some(name) => check_session_header(name).map_err(CreateError::new)?,
        None => HeaderName::from_static(CORRELATION),
    };
    let affinity = HeaderName::from_static(SESSION_AFFINITY);
    let mut names = Vec::with_capacity(2);
    if !user_has(correlation.as_str()) && correlation != affinity {
        names.push(correlation);
    }
    names.push(affinity);
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_affinity_is_always_sent_and_the_correlation_unless_the_user_gave_one() {
        let ctx = TransportContext::default();
        assert_eq!(
            to_send(&ctx, |_| false).unwrap(),
            [CORRELATION, SESSION_AFFINITY]
        );
        assert_eq!(to_send(&ctx, |_| true).unwrap(), [SESSION_AFFINITY]);
    }

    #[test]
    fn a_session_header_replaces_the_correlation_header() {
        let mut ctx = TransportContext {
            session_header: Some("X-Session-ID".to_owned()),
            ..TransportContext::default()
        };
        assert_eq!(
            to_send(&ctx, |_| false).unwrap(),
            ["x-session-id", SESSION_AFFINITY]
        );
        // The user's own header of that name is kept, as their X-Correlation-ID would be.
        assert_eq!(
            to_send(&ctx, |name| name == "x-session-id").unwrap(),
            [SESSION_AFFINITY]
        );
        ctx.session_header = Some("X-Session-Affinity".to_owned());
        assert_eq!(to_send(&ctx, |_| false).unwrap(), [SESSION_AFFINITY]);
        for bad in ["", "X Session", "X-Séance", "a:b"] {
            ctx.session_header = Some(bad.to_owned());
            let error = to_send(&ctx, |_| false).unwrap_err().to_string();
            assert!(error.contains("is not a header name"), "{bad}: {error}");
        }
        for taken in [
            "Content-Length",
            "transfer-encoding",
            "X-Request-ID",
            "Authorization",
        ] {
            ctx.session_header = Some(taken.to_owned());
            let error = to_send(&ctx, |_| false).unwrap_err().to_string();
            assert!(error.contains("HTTP or aiperf sets"), "{taken}: {error}");
        }
    }
}
