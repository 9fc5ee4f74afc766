//! The `http` transport: HTTP/1.1 over a keep-alive connection pool, the way OpenAI-compatible
//! servers are benchmarked.
//!
//! In the data flow of DESIGN.md §4 a worker hands [`HttpTransport::send`] the payload an
//! endpoint wrote. An HTTP/1.1 connection carries one request at a time, so the pool keeps as
//! many idle connections as requests may be in flight. `http://` URLs go over the lean client
//! of `http1`, which stamps each request when its bytes are written; `https://` URLs (the
//! crate's `tls` feature, rustls) over reqwest, the exchange the `http2` transport uses too.
//! Without `tls` they are rejected when the transport is created, with a message saying so.

use aiperf_core::endpoint::WireFormat;
use aiperf_core::registry::CreateError;
use aiperf_core::transport::{
    ResponseSink, Transport, TransportContext, TransportError, TransportMetadata, TransportRequest,
};

use crate::http_common::HttpTarget;
use crate::http_exchange::{HttpExchange, HttpVersion};
use crate::http1::Http1Client;

aiperf_core::register!(
    transport "http" => HttpTransport,
    "HTTP/1.1 with a keep-alive pool sized to the concurrency; server-sent events for streams"
);

/// The `http` transport: one client shared by every worker.
#[derive(Debug)]
pub struct HttpTransport {
    client: Client,
    /// One connection per request that may be in flight.
    connections: usize,
}

/// Which client carries the requests.
#[derive(Debug)]
enum Client {
    /// `http://`: the lean HTTP/1.1 client.
    Plain(Http1Client),
    /// `https://`: reqwest over rustls.
    Tls(HttpExchange),
}

#[async_trait::async_trait]
impl Transport for HttpTransport {
    fn create(ctx: &TransportContext) -> Result<Self, CreateError> {
        let connections = ctx.max_in_flight.max(1);
        let target = HttpTarget::new(ctx, "http")?;
        let client = if target.is_tls() {
            let version = HttpVersion::Http1 {
                idle_connections: connections,
            };
            Client::Tls(HttpExchange::for_target(target, 1, version)?)
        } else {
            Client::Plain(Http1Client::new(target, connections)?)
        };
        Ok(Self {
            client,
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
        match &self.client {
            Client::Plain(client) => client.probe().await,
            Client::Tls(exchange) => exchange.probe().await,
        }
    }

    /// One HTTP/1.1 connection per request that may be in flight.
    async fn open_connections(&self) -> usize {
        match &self.client {
            Client::Plain(client) => client.open_connections(self.connections).await,
            Client::Tls(exchange) => exchange.open_connections(self.connections).await,
        }
    }

    async fn send(
        &self,
        request: TransportRequest<'_>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError> {
        match &self.client {
            Client::Plain(client) => client.send(request, sink).await,
            Client::Tls(exchange) => exchange.send(request, sink).await,
        }
    }
}
