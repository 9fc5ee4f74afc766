//! aiperf-transports: the builtin transports of aiperf, each registered under its name with
//! `aiperf_core::register!` (a linkme slice element), so linking this crate is all it takes to
//! make them available to the registry.
//!
//! A transport is the `Transport::send` step of DESIGN.md §4: it carries an endpoint's payload
//! to the server and fills a `ResponseSink` with chunks stamped on arrival. Its metadata says
//! which URL schemes it serves and which wire formats (`http`, `grpc`) it carries, so an
//! endpoint is only ever paired with a transport that can carry its requests.
//!
//! | name | type | feature | URLs | carries |
//! |---|---|---|---|---|
//! | `http` | [`http::HttpTransport`] | `http` | `http://`, `https://` (`tls`) | HTTP bodies |
//! | `http2` | [`http2::Http2Transport`] | `http2` | `http://` (h2c), `https://` (`tls`) | HTTP bodies |
//! | `grpc` | [`grpc::GrpcTransport`] | `grpc` | `grpc://`, `grpcs://` (`tls`) | gRPC messages |
//! | `in_engine` | [`in_engine::InEngineTransport`] | always | none: no `--url` | HTTP bodies (OpenAI routes) |
//!
//! - `http`: HTTP/1.1 with a keep-alive pool sized to the concurrency, server-sent events
//!   parsed per the WHATWG rules. `http://` URLs go over this crate's own lean client (`http1`:
//!   one socket and one read buffer per connection, starting at 4 KiB; each request stamped
//!   as its bytes are written, each read with the kernel's receive time); `https://` URLs over
//!   reqwest.
//! - `http2`: reqwest over HTTP/2 (the exchange `http` uses for `https://`), many requests
//!   multiplexed over a few connections.
//! - `grpc`: tonic calls carrying the endpoint's encoded message to the method its path names,
//!   unary or as a bidirectional stream, each response message stamped on arrival.
//! - `in_engine`: the simulated engine inside the process, used when no `--url` is given.
//!
//! Features `http`, `http2`, `grpc` and `tls` are on by default; `--no-default-features`
//! leaves only `in_engine`.
//!
//! With `tls`, `https://` and `grpcs://` connections trust Mozilla's root certificates (built
//! in) and the system's store, read once per process. When `SSL_CERT_FILE` (a PEM file) or
//! `SSL_CERT_DIR` (directories of them) is set, the certificates there take the system store's
//! place, as they do for OpenSSL, curl and Python: that is how a server signed by a private CA
//! is trusted.

#[cfg(any(feature = "http", feature = "http2", feature = "grpc"))]
mod connect_failure;
#[cfg(any(feature = "http", feature = "http2", feature = "grpc"))]
mod conversation_headers;
#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
mod http1;
#[cfg(feature = "http2")]
pub mod http2;
#[cfg(any(feature = "http", feature = "http2"))]
mod http_common;
#[cfg(any(feature = "http", feature = "http2"))]
mod http_exchange;
pub mod in_engine;
pub mod receive_stamps;
mod request_timeout;
#[cfg(feature = "tls")]
mod tls_roots;
