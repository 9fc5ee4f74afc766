//! The `grpc` transport: gRPC over HTTP/2 (tonic), for servers such as Triton Inference Server,
//! TensorRT-LLM and Dynamo that are benchmarked through KServe v2 `GRPCInferenceService`.
//!
//! In the data flow of DESIGN.md §4 it stands where the http transport stands, and knows no
//! protocol buffers: the endpoint's payload is an encoded request message and
//! [`TransportRequest::path`] the method to call (`/inference.GRPCInferenceService/ModelInfer`).
//! A non-streaming request is a unary call; a streaming one is a bidirectional call carrying
//! that one request, answered by as many messages as the server sends until it ends the stream
//! (as Triton does for decoupled models once the request is complete). Each response message
//! becomes one [`TimedChunk`] holding its bytes, stamped with [`now_ns`] as tonic hands it over,
//! before anything decodes it; the endpoint decodes it after the run.
//!
//! Failures keep what was measured: a non-OK gRPC status becomes a
//! [`TransportErrorKind::GrpcStatus`] error with the gRPC code and message (messages already
//! received stay in the sink); a server that cannot be reached a
//! [`TransportErrorKind::Connect`] error; the request timeout a
//! [`TransportErrorKind::Timeout`] error.
//!
//! URLs are `grpc://HOST:PORT` (cleartext HTTP/2) or, with the `tls` feature,
//! `grpcs://HOST:PORT` (TLS, trusting what the `https://` transports trust); chosen
//! explicitly (`--transport grpc`), the transport also takes `http://` and `https://`, the forms
//! tonic and grpc-go use for the same things, but only `grpc://` and `grpcs://` URLs select it
//! by themselves. Requests go to a few connections in turn,
//! one per [`STREAMS_PER_CONNECTION`] requests of the run's concurrency; they are opened on
//! first use, inside the run's runtime. The run's headers (`-H`, `--api-key`) are sent as
//! metadata, with `x-request-id` naming each request.

mod raw_codec;

use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aiperf_core::clock::now_ns;
use aiperf_core::endpoint::WireFormat;
use aiperf_core::registry::CreateError;
use aiperf_core::transport::{
    ResponseSink, TimedChunk, Transport, TransportContext, TransportError, TransportErrorKind,
    TransportMetadata, TransportRequest,
};
use bytes::Bytes;
use http::uri::{PathAndQuery, Uri};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use raw_codec::RawCodec;

use crate::connect_failure::{self, causes};
use crate::{conversation_headers, request_timeout};

aiperf_core::register!(
    transport "grpc" => GrpcTransport,
    "gRPC over HTTP/2 (grpc://HOST:PORT, or grpcs:// over TLS): unary calls, or bidirectional streams for streaming, each response message stamped on arrival"
);

/// Concurrent calls per connection: 100, the smallest limit on concurrent streams that
/// RFC 9113 recommends servers allow (gRPC servers commonly allow 100 or more).
pub const STREAMS_PER_CONNECTION: usize = 100;

/// The method the readiness probe calls: the standard gRPC health check, whose answer (even
/// `UNIMPLEMENTED` from a server without it) shows that a gRPC server is there.
const PROBE_METHOD: &str = "/grpc.health.v1.Health/Check";
/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The metadata key naming each request.
const X_REQUEST_ID: &str = "x-request-id";

/// The `grpc` transport: a few HTTP/2 connections shared by every worker.
#[derive(Debug)]
pub struct GrpcTransport {
    /// The URL as given (`grpc://host:port`), for messages.
    url: String,
    /// Where tonic connects (`http://host:port`, or `https://host:port` with TLS).
    endpoint: Endpoint,
    /// How many connections to open.
    connections: usize,
    /// The connections, opened on first use (opening one needs the async runtime).
    channels: OnceLock<Box<[Channel]>>,
    /// The next connection to use.
    next: AtomicUsize,
    /// The run's headers, as gRPC metadata.
    metadata: MetadataMap,
    /// The conversation metadata each request gets ([`conversation_headers::to_send`]).
    session_metadata: Vec<AsciiMetadataKey>,
    timeout: Option<Duration>,
}

impl GrpcTransport {
    /// How many connections a run with `max_in_flight` requests at once uses.
    pub fn connections_for(max_in_flight: usize) -> usize {
        max_in_flight.div_ceil(STREAMS_PER_CONNECTION).max(1)
    }

    /// The connection for the next call: each in turn.
    fn channel(&self) -> Channel {
        let channels = self.channels.get_or_init(|| {
            (0..self.connections)
                .map(|_| self.endpoint.connect_lazy())
                .collect()
        });
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        channels[turn % channels.len()].clone()
    }

    /// Calls the standard gRPC health check on `channel`: any gRPC answer shows the server is
    /// there.
    async fn health_check(&self, channel: Channel) -> Result<(), TransportError> {
        let path = PathAndQuery::from_static(PROBE_METHOD);
        let mut grpc = tonic::client::Grpc::new(channel);
        let call = async {
            grpc.ready()
                .await
                .map_err(|error| self.unreachable(&causes(&error)))?;
            let request =
                tonic::Request::from_parts(self.metadata.clone(), Default::default(), Bytes::new());
            match grpc.unary::<_, Bytes, _>(request, path, RawCodec).await {
                Ok(_) => Ok(()),
                Err(status) => match self.status_error(status, false) {
                    // The server's own status, even UNIMPLEMENTED, shows it is there.
                    error if error.kind == TransportErrorKind::GrpcStatus => Ok(()),
                    error => Err(error),
                },
            }
        };
        match tokio::time::timeout(PROBE_TIMEOUT, call).await {
            Ok(result) => result,
            Err(_elapsed) => Err(self.unreachable(&format!(
                "no answer to a health check within {} s",
                PROBE_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Everything after the call is prepared; [`Transport::send`] bounds it by the timeout.
    async fn exchange(
        &self,
        request: TransportRequest<'_>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError> {
        let path = method_path(request.path)?;
        let mut metadata = self.metadata.clone();
        let request_id = AsciiMetadataValue::from_str(request.request_id).map_err(|_| {
            TransportError::new(
                TransportErrorKind::Protocol,
                format!(
                    "request id `{}` cannot be sent as x-request-id metadata: use visible ASCII",
                    request.request_id
                ),
            )
        })?;
        metadata.insert(X_REQUEST_ID, request_id);
        // The conversation's id, as the HTTP transports send it.
        if let Ok(correlation) = AsciiMetadataValue::from_str(request.correlation_id) {
            for name in &self.session_metadata {
                metadata.insert(name.clone(), correlation.clone());
            }
        }
        let mut grpc = tonic::client::Grpc::new(self.channel());
        grpc.ready()
            .await
            .map_err(|error| self.unreachable(&causes(&error)))?;
        if request.streaming {
            let messages = futures_util::stream::once(std::future::ready(request.payload));
            let call = tonic::Request::from_parts(metadata, Default::default(), messages);
            let answered = grpc.streaming(call, path, RawCodec).await;
            let ack_ns = now_ns();
            let mut stream = answered
                .map_err(|status| self.status_error(status, false))?
                .into_inner();
            sink.ack_ns = Some(ack_ns);
            sink.status = Some(200);
            loop {
                let message = stream.message().await;
                let received_ns = now_ns();
                match message {
                    Ok(Some(data)) => sink.push(TimedChunk { received_ns, data }),
                    Ok(None) => return Ok(()),
                    Err(status) => return Err(self.status_error(status, !sink.chunks.is_empty())),
                }
            }
        } else {
            let call = tonic::Request::from_parts(metadata, Default::default(), request.payload);
            let answered = grpc.unary(call, path, RawCodec).await;
            // The whole answer (headers, message, trailers) is in: one chunk, stamped now.
            let received_ns = now_ns();
            let data: Bytes = answered
                .map_err(|status| self.status_error(status, false))?
                .into_inner();
            sink.ack_ns = Some(received_ns);
            sink.status = Some(200);
            sink.push(TimedChunk { received_ns, data });
            Ok(())
        }
    }

    /// A connection that could not be made.
    fn unreachable(&self, cause: &str) -> TransportError {
        connect_failure::connect_error(&format!("the gRPC server at {}", self.url), cause)
    }

    /// A call that ended with a non-OK status, `mid_stream` when response messages had come
    /// first (how many is left out, so that the error summary has one row per way of failing;
    /// the record keeps them). tonic reports a connection that could not be made as
    /// `UNAVAILABLE` with no response metadata, which a server's own status always has.
    fn status_error(&self, status: Status, mid_stream: bool) -> TransportError {
        if status.code() == Code::Unavailable && status.metadata().is_empty() {
            return self.unreachable(status.message());
        }
        let code = status.code();
        let mut message = format!("gRPC status {code:?} ({})", code as i32);
        if !status.message().is_empty() {
            message.push_str(": ");
            message.push_str(status.message());
        }
        if mid_stream {
            message.push_str(" (mid-stream)");
        }
        TransportError {
            kind: TransportErrorKind::GrpcStatus,
            code: Some(code as u16),
            message,
        }
    }
}

#[async_trait::async_trait]
impl Transport for GrpcTransport {
    fn create(ctx: &TransportContext) -> Result<Self, CreateError> {
        let Some(url) = ctx.url.as_deref() else {
            return Err(CreateError::new(
                "the grpc transport needs the server's address: pass --url grpc://HOST:PORT (or \
                 grpcs:// for TLS)",
            ));
        };
        let address = grpc_address(url)?;
        let timeout = request_timeout::limit(ctx)?;
        let endpoint = address.endpoint(url)?;
        let metadata = metadata(&ctx.headers)?;
        let session_metadata =
            conversation_headers::to_send(ctx, |name| metadata.contains_key(name))?
                .into_iter()
                .map(|name| {
                    AsciiMetadataKey::from_bytes(name.as_str().as_bytes()).map_err(|_| {
                        CreateError::new(format!(
                            "`{name}` cannot be gRPC metadata (a name ending in -bin is binary \
                             metadata): give --session-header another name"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
        Ok(Self {
            url: url.to_owned(),
            endpoint,
            connections: Self::connections_for(ctx.max_in_flight),
            channels: OnceLock::new(),
            next: AtomicUsize::new(0),
            metadata,
            session_metadata,
            timeout,
        })
    }

    fn metadata(&self) -> TransportMetadata {
        TransportMetadata {
            url_schemes: &["grpc", "grpcs"],
            wire_formats: &[WireFormat::Grpc],
        }
    }

    /// Calls the standard gRPC health check: any gRPC answer shows the server is there.
    async fn probe(&self, _path: &str) -> Result<(), TransportError> {
        self.health_check(self.channel()).await
    }

    /// Connects every channel (one HTTP/2 connection each) the run's calls take in turn, with
    /// a health check on each.
    async fn open_connections(&self) -> usize {
        let checks = (0..self.connections).map(|_| self.health_check(self.channel()));
        futures_util::future::join_all(checks)
            .await
            .iter()
            .filter(|answered| answered.is_ok())
            .count()
    }

    async fn send(
        &self,
        request: TransportRequest<'_>,
        sink: &mut ResponseSink,
    ) -> Result<(), TransportError> {
        request_timeout::within(self.timeout, sink, async |sink| {
            self.exchange(request, sink).await
        })
        .await
    }
}

/// Where a gRPC URL points.
#[derive(Debug)]
struct GrpcAddress {
    /// `HOST:PORT`, as tonic connects to it.
    authority: String,
    /// The host alone (an IPv6 address without its brackets): the name the server's TLS
    /// certificate must carry.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    host: String,
    /// Whether the URL asks for TLS (`grpcs://`).
    tls: bool,
}

impl GrpcAddress {
    /// The scheme of this address's gRPC URLs, for messages: `grpc` or `grpcs`.
    fn url_scheme(&self) -> &'static str {
        if self.tls { "grpcs" } else { "grpc" }
    }

    /// What tonic connects to for `url`: `http://HOST:PORT`, or `https://HOST:PORT` with the
    /// TLS settings of `tls_config`.
    fn endpoint(&self, url: &str) -> Result<Endpoint, CreateError> {
        let scheme = if self.tls { "https" } else { "http" };
        let endpoint = Endpoint::from_shared(format!("{scheme}://{}", self.authority))
            .map_err(|error| {
                CreateError::new(format!(
                    "`{url}` is not a valid gRPC address ({error}): pass --url {}://HOST:PORT",
                    self.url_scheme()
                ))
            })?
            .tcp_nodelay(true)
            .http2_adaptive_window(true);
        if !self.tls {
            return Ok(endpoint);
        }
        #[cfg(feature = "tls")]
        let endpoint = endpoint
            .tls_config(tls_config(&self.host))
            .map_err(|error| {
                CreateError::new(format!(
                    "cannot set up TLS for `{url}` ({}): check SSL_CERT_FILE and SSL_CERT_DIR",
                    causes(&error)
                ))
            })?;
        Ok(endpoint)
    }
}

/// The TLS settings of a `grpcs://` connection to `host`: the roots the `https://` transports
/// trust too (`tls_roots`), and `host` as the name the server's certificate must carry.
#[cfg(feature = "tls")]
fn tls_config(host: &str) -> tonic::transport::ClientTlsConfig {
    // Given as trust anchors rather than with tonic's `with_native_roots`, which refuses an
    // empty store (a container without ca-certificates) where the others go on with the rest.
    tonic::transport::ClientTlsConfig::new()
        .trust_anchors(crate::tls_roots::roots().roots.iter().cloned())
        .domain_name(host)
}

/// The address of a `grpc://HOST:PORT` URL (or `http://HOST:PORT`), or of a `grpcs://HOST:PORT`
/// one (or `https://HOST:PORT`) over TLS, which needs the `tls` feature.
fn grpc_address(url: &str) -> Result<GrpcAddress, CreateError> {
    let Some((scheme, _)) = url.split_once("://") else {
        return Err(CreateError::new(format!(
            "`{url}` has no scheme: pass --url grpc://{url}"
        )));
    };
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "grpc" | "http" => false,
        "grpcs" | "https" if cfg!(feature = "tls") => true,
        "grpcs" | "https" => return Err(crate::connect_failure::tls_not_built(url, "grpc")),
        _ => {
            return Err(CreateError::new(format!(
                "the grpc transport serves grpc:// and grpcs:// URLs, not `{scheme}://`: pass \
                 --url grpc://HOST:PORT, or choose another transport with --transport"
            )));
        }
    };
    let uri = Uri::from_str(url).map_err(|error| {
        CreateError::new(format!(
            "`{url}` is not a valid URL ({error}): pass --url {scheme}://HOST:PORT"
        ))
    })?;
    let Some(authority) = uri.authority() else {
        return Err(CreateError::new(format!(
            "`{url}` names no server: pass --url {scheme}://HOST:PORT"
        )));
    };
    if authority.as_str().contains('@') {
        // Not echoed: the URL holds a password.
        return Err(CreateError::new(format!(
            "the --url holds credentials (user:password@), which gRPC does not send: pass them \
             as a header (-H 'authorization: ...' or --api-key) and --url {scheme}://HOST:PORT"
        )));
    }
    if authority.port().is_none() {
        return Err(CreateError::new(format!(
            "`{url}` has no port, and gRPC has no default one: pass --url \
             {scheme}://{authority}:PORT (Triton serves gRPC on 8001)"
        )));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(CreateError::new(format!(
            "`{url}` has a path, which gRPC URLs cannot have (the endpoint names the method): \
             pass --url {scheme}://{authority}"
        )));
    }
    Ok(GrpcAddress {
        authority: authority.to_string(),
        host: authority.host().trim_matches(['[', ']']).to_owned(),
        tls,
    })
}

/// The run's headers as gRPC metadata (keys lowercased, as HTTP/2 requires).
fn metadata(headers: &[(String, String)]) -> Result<MetadataMap, CreateError> {
    let mut map = MetadataMap::with_capacity(headers.len() + 1);
    for (name, value) in headers {
        let key = AsciiMetadataKey::from_str(&name.trim().to_ascii_lowercase()).map_err(|_| {
            CreateError::new(format!(
                "`{name}` is not a valid gRPC metadata key: pass -H 'name: value' with a name of \
                 letters, digits and hyphens, not ending in -bin"
            ))
        })?;
        let value = AsciiMetadataValue::from_str(value.trim()).map_err(|_| {
            CreateError::new(format!(
                "the value of header `{name}` is not valid gRPC metadata: remove control \
                 characters and non-ASCII text from it"
            ))
        })?;
        // A header given twice is sent once, with the last value (AIPerf's header dict keeps
        // the last of two same-case names).
        map.insert(key, value);
    }
    Ok(map)
}

/// The endpoint's path as a gRPC method path (`/package.Service/Method`).
fn method_path(path: &str) -> Result<PathAndQuery, TransportError> {
    let valid = path.starts_with('/') && path[1..].contains('/') && !path.contains('?');
    valid
        .then(|| PathAndQuery::from_str(path).ok())
        .flatten()
        .ok_or_else(|| {
            TransportError::new(
                TransportErrorKind::Protocol,
                format!(
                    "`{path}` is not a gRPC method path (/package.Service/Method): choose an \
                     endpoint type that speaks gRPC, e.g. --endpoint-type kserve"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create_error(ctx: &TransportContext) -> String {
        GrpcTransport::create(ctx).unwrap_err().message
    }

    #[test]
    fn urls_must_be_grpc_with_a_host_and_port() {
        let transport =
            GrpcTransport::create(&TransportContext::for_url("grpc://127.0.0.1:8001")).unwrap();
        assert_eq!(transport.endpoint.uri(), "http://127.0.0.1:8001/");
        assert_eq!(transport.metadata().url_schemes, ["grpc", "grpcs"]);
        assert!(GrpcTransport::create(&TransportContext::for_url("GRPC://localhost:1/")).is_ok());
        let http =
            GrpcTransport::create(&TransportContext::for_url("http://127.0.0.1:8001")).unwrap();
        assert_eq!(http.endpoint.uri(), "http://127.0.0.1:8001/");
        for (url, expected) in [
            ("localhost:8001", "pass --url grpc://localhost:8001"),
            ("ftp://h:1", "not `ftp://`"),
            ("grpc://h", "no port"),
            ("grpc://h:1/v2/models", "has a path"),
            ("grpc://", "not a valid URL"),
            ("grpc://user:secret@h:1", "holds credentials"),
        ] {
            let message = create_error(&TransportContext::for_url(url));
            assert!(message.contains(expected), "{url}: {message}");
            assert!(
                !message.contains("secret"),
                "the password is not echoed: {message}"
            );
        }
        assert!(create_error(&TransportContext::default()).contains("--url grpc://HOST:PORT"));
    }

    #[test]
    fn an_ipv6_host_is_its_address_without_brackets() {
        let address = grpc_address("grpc://[::1]:8001").unwrap();
        assert_eq!(
            (address.authority.as_str(), address.host.as_str()),
            ("[::1]:8001", "::1")
        );
        assert!(!address.tls);
    }

    #[test]
    fn grpcs_urls_take_tls_exactly_when_it_is_built_in() {
        let result = GrpcTransport::create(&TransportContext::for_url("grpcs://127.0.0.1:8001"));
        if cfg!(feature = "tls") {
            assert_eq!(result.unwrap().endpoint.uri(), "https://127.0.0.1:8001/");
            let explicit = GrpcTransport::create(&TransportContext::for_url("https://[::1]:8001"));
            assert_eq!(explicit.unwrap().endpoint.uri(), "https://[::1]:8001/");
            assert!(
                create_error(&TransportContext::for_url("grpcs://h")).contains("grpcs://h:PORT")
            );
        } else {
            assert!(result.unwrap_err().message.contains("`tls` feature"));
        }
    }

    #[test]
    fn headers_become_lowercase_metadata() {
        let mut ctx = TransportContext::for_url("grpc://h:1");
        ctx.headers = vec![
            ("Authorization".into(), "Bearer k".into()),
            ("X-Tenant".into(), " a ".into()),
        ];
        let transport = GrpcTransport::create(&ctx).unwrap();
        assert_eq!(transport.metadata.get("authorization").unwrap(), "Bearer k");
        assert_eq!(transport.metadata.get("x-tenant").unwrap(), "a");
        ctx.headers = vec![("bad key".into(), "v".into())];
        assert!(create_error(&ctx).contains("`bad key` is not a valid gRPC metadata key"));
        ctx.headers = vec![("x-ok".into(), "line\nbreak".into())];
        assert!(create_error(&ctx).contains("value of header `x-ok`"));
        ctx.headers = Vec::new();
        ctx.request_timeout = Some(Duration::ZERO);
        assert!(create_error(&ctx).contains("--request-timeout-seconds"));
    }

    #[test]
    fn connections_grow_with_the_concurrency_by_hundreds() {
        let counts: Vec<usize> = [0, 1, 100, 101, 1000]
            .into_iter()
            .map(GrpcTransport::connections_for)
            .collect();
        assert_eq!(counts, [1, 1, 1, 2, 10]);
    }

    #[test]
    fn only_method_paths_are_called() {
        assert!(method_path("/inference.GRPCInferenceService/ModelInfer").is_ok());
        for bad in ["/v1/chat/completions?x=1", "ModelInfer", "/ModelInfer", ""] {
            let error = method_path(bad).unwrap_err();
            assert_eq!(error.kind, TransportErrorKind::Protocol);
            assert!(error.message.contains("--endpoint-type kserve"), "{bad}");
        }
    }

    #[test]
    fn server_statuses_keep_their_code_and_connect_failures_are_named() {
        let transport = GrpcTransport::create(&TransportContext::for_url("grpc://h:1")).unwrap();
        let error = transport.status_error(Status::unavailable("tcp connect error"), false);
        assert_eq!(error.kind, TransportErrorKind::Connect);
        assert!(
            error.message.contains("grpc://h:1 is not reachable"),
            "{error}"
        );

        let mut from_server = Status::invalid_argument("unknown model 'x'");
        from_server.metadata_mut().insert(
            "content-type",
            AsciiMetadataValue::from_static("application/grpc"),
        );
        let error = transport.status_error(from_server, true);
        assert_eq!(error.kind, TransportErrorKind::GrpcStatus);
        assert_eq!(error.code, Some(3));
        assert_eq!(
            error.message,
            "gRPC status InvalidArgument (3): unknown model 'x' (mid-stream)"
        );
    }
}
