//! aiperf-transports
