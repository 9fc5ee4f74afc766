//! aiperf-endpoints
