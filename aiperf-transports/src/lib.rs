//! aiperf-transports: the builtin transports of aiperf, each registered under its name with
//! `aiperf_core::register!`, so linking this crate is all it takes to make them available.
//!
//! - `in_engine` ([`in_engine::InEngineTransport`], always built): the simulated engine inside
//!   the process, used when no `--url` is given.

pub mod in_engine;
