//! The `http` transport: HTTP/1.1 over a keep-alive connection pool (reqwest), the way
//! OpenAI-compatible servers are benchmarked.
//!
//! In the data flow of DESIGN.md §4 a worker hands [`HttpTransport::send`] the payload an
//! endpoint wrote. The exchange itself (the POST, `ack_ns` at the response headers, every body
//! read stamped on arrival before the SSE parser splits it into chunks, classified errors that
//! keep what was measured) is shared with the `http2` transport in `http_exchange`; this file
//! holds what is HTTP/1.1's: one client whose pool keeps as many idle connections as requests
//! may be in flight, since an HTTP/1.1 connection carries one request at a time.
//!
//! `https://` URLs need the crate's `tls` feature (rustls); without it they are rejected when the
//! transport is created, with a message saying so.

use aiperf_core::endpoint::WireFormat;
use aiperf_core::registry::CreateError;
use aiperf_core::transport::{
    ResponseSink, Transport, TransportContext, TransportError, TransportMetadata, TransportRequest,
};

use crate::http_exchange::HttpExchange;

aiperf_core::register!(
    transport "http" => HttpTransport,
    "HTTP/1.1 with a keep-alive pool sized to the concurrency; server-sent events for streams"
);

/// The `http` transport: one reqwest client shared by every worker.
#[derive(Debug)]
pub struct HttpTransport {
    exchange: HttpExchange,
    /// One connection per request that may be in flight.
    connections: usize,
}

#[async_trait::async_trait]
impl Transport for HttpTransport {
    fn create(ctx: &TransportContext) -> Result<Self, CreateError> {
        let connections = ctx.max_in_flight.max(1);
        let exchange = HttpExchange::new(ctx, "http", 1, |builder| {
            builder.http1_only().pool_max_idle_per_host(connections)
        })?;
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

    /// `GET /v1/models` (OpenAI's model list): any HTTP answer, even 404 from a server that
    /// has no such route, shows the server is there.
    async fn probe(&self, _path: &str) -> Result<(), TransportError> {
        self.exchange.probe().await
    }

    /// One HTTP/1.1 connection per request that may be in flight.
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
