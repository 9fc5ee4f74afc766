//! aiperf-transports: the builtin transports of aiperf, each registered under its name with
//! `aiperf_core::register!` (a linkme slice element), so linking this crate is all it takes to
//! make them available to the registry.
//!
//! A transport is the `Transport::send` step of DESIGN.md §4: it carries an endpoint's payload
//! to the server and fills a `ResponseSink` with chunks stamped on arrival.
//!
//! - `http` ([`http::HttpTransport`], feature `http`, on by default): HTTP/1.1 with a
//!   keep-alive pool sized to the concurrency, server-sent events parsed per the WHATWG rules;
//!   `https://` URLs with the `tls` feature.
//! - `in_engine` ([`in_engine::InEngineTransport`], always built): the simulated engine inside
//!   the process, used when no `--url` is given.

#[cfg(feature = "http")]
pub mod http;
pub mod in_engine;
