//! Shared pieces of the integration tests: the real `aiperf` binary and the real mock server.

// Each test crate compiles this module and uses a different subset of it.
#![allow(dead_code)]

pub mod mock;
pub mod run;
