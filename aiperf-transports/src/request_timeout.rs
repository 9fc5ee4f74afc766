//! `--request-timeout-seconds`, the same in every transport: a zero limit is refused when the
//! transport is created, and a request still running at the limit ends with a
//! [`TransportErrorKind::Timeout`] error that keeps what its sink received (the chunks stamped
//! so far stay in the record).
//!
//! Messages say where the response was ([`stage`]), never per-request figures, so that the
//! error summary, which groups by code, type and message, has one row per way of failing.

use std::time::Duration;

use aiperf_core::registry::CreateError;
use aiperf_core::transport::{ResponseSink, TransportContext, TransportError, TransportErrorKind};

/// The run's request timeout, checked: `None` when there is none; a zero limit (every request
/// would fail at once) is refused.
pub(crate) fn limit(ctx: &TransportContext) -> Result<Option<Duration>, CreateError> {
    if ctx.request_timeout == Some(Duration::ZERO) {
        return Err(CreateError::new(
            "the request timeout is zero: pass a positive --request-timeout-seconds",
        ));
    }
    Ok(ctx.request_timeout)
}

/// Runs `send` on `sink`, bounded by `limit` when there is one: a request still running then
/// ends with [`error`], keeping what `sink` received.
pub(crate) async fn within(
    limit: Option<Duration>,
    sink: &mut ResponseSink,
    send: impl AsyncFnOnce(&mut ResponseSink) -> Result<(), TransportError>,
) -> Result<(), TransportError> {
    let Some(limit) = limit else {
        return send(sink).await;
    };
    match tokio::time::timeout(limit, send(sink)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(error(limit, sink)),
    }
}

/// The error of a request that did not end within `limit`.
fn error(limit: Duration, sink: &ResponseSink) -> TransportError {
    TransportError::new(
        TransportErrorKind::Timeout,
        format!(
            "no complete response within the request timeout of {:.3} s ({}): raise \
             --request-timeout-seconds or check the server's load",
            limit.as_secs_f64(),
            stage(sink)
        ),
    )
}

/// Where a response was when it failed, by what arrived of it: for the timeout's messages and
/// those of a body that broke off (`http_common::broken_body`). A gRPC unary call records its
/// headers only with its answer, so its timeout always reads "before the response headers".
pub(crate) fn stage(sink: &ResponseSink) -> &'static str {
    match (sink.ack_ns, sink.chunks.is_empty()) {
        (None, _) => "before the response headers",
        (Some(_), true) => "before the first event",
        (Some(_), false) => "mid-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aiperf_core::transport::TimedChunk;
    use bytes::Bytes;

    #[test]
    fn a_zero_limit_is_refused_and_none_means_no_limit() {
        let zero = TransportContext {
            request_timeout: Some(Duration::ZERO),
            ..TransportContext::default()
        };
        assert!(
            limit(&zero)
                .unwrap_err()
                .message
                .contains("pass a positive --request-timeout-seconds")
        );
        assert_eq!(limit(&TransportContext::default()).unwrap(), None);
    }

    #[tokio::test]
    async fn a_request_past_its_limit_ends_with_a_timeout_keeping_what_arrived() {
        let mut sink = ResponseSink::default();
        let result = within(Some(Duration::from_millis(20)), &mut sink, async |sink| {
            sink.ack_ns = Some(1);
            sink.chunks.push(TimedChunk {
                received_ns: 2,
                data: Bytes::from_static(b"first"),
            });
            std::future::pending().await
        })
        .await;
        let error = result.unwrap_err();
        assert_eq!(error.kind, TransportErrorKind::Timeout);
        assert!(error.message.contains("0.020 s (mid-stream)"), "{error}");
        assert_eq!(sink.chunks.len(), 1, "the chunk received is kept");

        let mut sink = ResponseSink::default();
        within(Some(Duration::from_secs(5)), &mut sink, async |_| Ok(()))
            .await
            .unwrap();
        within(None, &mut sink, async |_| Ok(())).await.unwrap();
    }
}
