//! Shared pieces of the integration tests: the real `aiperf` binary and the real mock server.

pub mod mock;
pub mod run;
