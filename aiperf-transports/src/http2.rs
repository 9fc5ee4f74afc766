//! The `http2` transport: HTTP/2, many requests multiplexed as streams over few connections,
//! the way gateways and HTTP/2 inference servers are benchmarked without a connection per
//! request. `http://` URLs use cleartext HTTP/2 with prior knowledge (h2c: no upgrade round
//! trip); `https://` URLs (with the `tls` feature) negotiate `h2` by ALPN and fail if the server
//! cannot speak it, so a run never silently falls back to HTTP/1.1.
//!
//! In the data flow of DESIGN.md §4 it is the `http` transport with another connection policy:
//! the exchange (the POST, `ack_ns` at the response headers, every body read stamped on arrival
//! before the SSE parser splits it into chunks, classified errors) is the same code,
//! `http_exchange`. Requests go to a small set of clients in turn, one connection each, with
//! [`STREAMS_PER_CONNECTION`] of the run's concurrency per connection.
//!
//! Chosen by `--transport http2`: an `http://` URL alone keeps choosing the `http` transport.

use aiperf_core::endpoint::WireFormat;
use aiperf_core::registry::CreateError;
use aiperf_core::transport::{
    ResponseSink, Transport, TransportContext, TransportError, TransportMetadata, TransportRequest,
};

use crate::http_common::HttpTarget;
use crate::http_exchange::{HttpExchange, HttpVersion};

aiperf_core::register!(
    transport "http2" => Http2Transport,
    "HTTP/2 (h2c with prior knowledge for http://, ALPN for https://), requests multiplexed over few connections"
);

/// Concurrent requests per connection: 100, the smallest limit on concurrent streams
/// (`SETTINGS_MAX_CONCURRENT_STREAMS`) that RFC 9113 recommends servers allow, so that no
/// request waits for a stream slot on a server that follows it.
pub const STREAMS_PER_CONNECTION: usize = 100;

/// The `http2` transport: a few reqwest clients, one HTTP/2 connection each.
#[derive(Debug)]
pub struct Http2Transport {
    exchange: HttpExchange,
    /// How many clients (one connection each) requests take in turn.
    connections: usize,
}

impl Http2Transport {
    /// How many connections a run with `max_in_flight` requests at once uses.
    pub fn connections_for(max_in_flight: usize) -> usize {
        max_in_flight.div_ceil(STREAMS_PER_CONNECTION).max(1)
    }
}

#[async_trait::async_trait]
impl Transport for Http2Transport {
    fn create(ctx: &TransportContext) -> Result<Self, CreateError> {
        let connections = Self::connections_for(ctx.max_in_flight);
        let target = HttpTarget::new(ctx, "http2")?;
        let exchange = HttpExchange::for_target(target, connections, HttpVersion::Http2)?;
        Ok(Self {
            exchange,
            connections,
        })
    }

    fn metadata(&self) -> TransportMetadata {
        TransportMetadata {
            url_schemes: &["http", "https"],
            wire_formats: &[WireFormat::Http],
        }
    }

    /// `GET /v1/models` over HTTP/2: any HTTP answer shows the server is there and speaks
    /// HTTP/2.
    async fn probe(&self, _path: &str) -> Result<(), TransportError> {
        self.exchange.probe().await
    }

    /// One HTTP/2 connection per client.
    async fn open_connections(&self) -> usize {
        self.exchange.open_connections(self.connections).await
    }

    async fn send(
        &self,
        request: TransportRequest<'_>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError> {
        self.exchange.send(request, sink).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_grow_with_the_concurrency_by_hundreds() {
        let counts: Vec<usize> = [0, 1, 100, 101, 1000]
            .into_iter()
            .map(Http2Transport::connections_for)
            .collect();
        assert_eq!(counts, [1, 1, 1, 2, 10]);
    }

    #[test]
    fn serves_http_urls_and_names_itself_in_errors() {
        let ctx = TransportContext {
            url: Some("grpc://127.0.0.1:1".into()),
            ..TransportContext::default()
        };
        let message = Http2Transport::create(&ctx).unwrap_err().message;
        assert!(
            message.starts_with("the http2 transport serves http://"),
            "{message}"
        );
        let ok = TransportContext {
            url: Some("http://127.0.0.1:1".into()),
            max_in_flight: 250,
            ..TransportContext::default()
        };
        let transport = Http2Transport::create(&ok).unwrap();
        assert_eq!(transport.metadata().url_schemes, ["http", "https"]);
    }
}
