//! What an HTTP transport saw of one request on the wire, beyond the timestamps every transport
//! records: how the request got its connection, when its bytes went out, and how its response's
//! bytes came in. The `http_req_*` metrics (AIPerf 0.13's HTTP trace metrics, named after k6's:
//! `http_req_sending`, `http_req_waiting`, ...) are computed from it.
//!
//! A transport fills [`ResponseSink::http_trace`](crate::transport::ResponseSink::http_trace)
//! when it sees these things itself; the `http` transport's client for `http://` URLs does.
//! Transports that do not (the in-process engine, gRPC, `https://` through reqwest) leave it
//! out, and their runs have no `http_req_*` metrics, as AIPerf has none for transports without
//! a trace.
//!
//! The phases follow k6's definitions, which AIPerf's names come from; AIPerf's own aiohttp
//! trace differs in three places a reader comparing runs may meet. Its `sending` starts before
//! a new connection is opened, so on such a request it includes the connecting; its
//! `connecting` includes the address lookup, which its overhead and total then count twice;
//! and it opens connections as requests need them, where aiperf opens the run's connections
//! before it starts ([`crate::transport::Transport::open_connections`]), so that every request
//! of a run at a steady concurrency shows a reused connection. The byte and read counts are
//! AIPerf's: body data only, and a body taken whole is one read.
//!
//! ```
//! use aiperf_core::http_trace::HttpTrace;
//!
//! let trace = HttpTrace {
//!     connecting_ns: 300_000,
//!     send_start_ns: 1_000_000,
//!     send_end_ns: 1_010_000,
//!     body_first_ns: Some(51_000_000),
//!     body_last_ns: Some(91_000_000),
//!     body_reads: 5,
//!     ..HttpTrace::default()
//! };
//! assert_eq!(trace.waiting_ns(), Some(49_990_000));
//! assert_eq!(trace.receiving_ns(), Some(40_000_000));
//! assert_eq!(trace.total_ns(), 300_000 + 10_000 + 49_990_000 + 40_000_000);
//! ```

/// One request's exchange as its HTTP transport saw it. Timestamps are
/// [`crate::clock::now_ns`] readings (the arrivals, as every transport's, the kernel's receive
/// stamps where it gives them); durations are nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpTrace {
    /// Whether the request went on a connection already open (kept alive after an earlier
    /// request, or opened before the run), making no connection of its own.
    pub connection_reused: bool,
    /// Time spent waiting for a free connection from the pool.
    pub blocked_ns: u64,
    /// Time spent finding the server's address, for a connection the request opened.
    pub dns_lookup_ns: u64,
    /// Time spent connecting (TCP, and TLS where there is one), for a connection the request
    /// opened.
    pub connecting_ns: u64,
    /// When the request's first bytes were handed to the connection.
    pub send_start_ns: u64,
    /// When its last bytes were.
    pub send_end_ns: u64,
    /// How many writes carried the request.
    pub writes: u32,
    /// The bytes of the request's body (AIPerf counts the body alone, not the head).
    pub body_bytes_sent: u64,
    /// When the first read that yielded body data arrived (`None` without a body).
    pub body_first_ns: Option<u64>,
    /// When the last one arrived.
    pub body_last_ns: Option<u64>,
    /// How many reads yielded body data: a read holding only framing (a chunked body's last
    /// chunk) yields none, and a body taken whole rather than streamed counts as one, arrived
    /// with its last read, as AIPerf's trace sees it.
    pub body_reads: u32,
    /// The bytes of the response's body data, framing left out (as AIPerf counts them).
    pub body_bytes_received: u64,
}

impl HttpTrace {
    /// Writing the request: from its first bytes handed over to its last (`http_req_sending`).
    pub fn sending_ns(&self) -> u64 {
        self.send_end_ns.saturating_sub(self.send_start_ns)
    }

    /// From the request's last bytes written to the first bytes of its response's body
    /// (`http_req_waiting`, the time to first byte as AIPerf takes it: for a stream, its first
    /// event, not its head). `None` without a body.
    pub fn waiting_ns(&self) -> Option<u64> {
        Some(self.body_first_ns?.saturating_sub(self.send_end_ns))
    }

    /// From the first bytes of the response's body to its last (`http_req_receiving`): 0 for
    /// a body that came in one read, `None` without a body.
    pub fn receiving_ns(&self) -> Option<u64> {
        match self.body_reads {
            0 => None,
            1 => Some(0),
            _ => Some(self.body_last_ns?.saturating_sub(self.body_first_ns?)),
        }
    }

    /// From the request's first bytes written to its response's last (`http_req_duration`):
    /// the exchange without the connection's setup. `None` without a body.
    pub fn duration_ns(&self) -> Option<u64> {
        Some(self.body_last_ns?.saturating_sub(self.send_start_ns))
    }

    /// Waiting for, finding and opening a connection (`http_req_connection_overhead`).
    pub fn connection_overhead_ns(&self) -> u64 {
        self.blocked_ns + self.dns_lookup_ns + self.connecting_ns
    }

    /// Every phase added up: connection overhead, sending, waiting and receiving
    /// (`http_req_total`), a missing phase counting 0, as AIPerf adds them.
    pub fn total_ns(&self) -> u64 {
        self.connection_overhead_ns()
            + self.sending_ns()
            + self.waiting_ns().unwrap_or(0)
            + self.receiving_ns().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_connection_has_no_overhead_and_a_one_read_body_no_receiving() {
        let trace = HttpTrace {
            connection_reused: true,
            send_start_ns: 100,
            send_end_ns: 150,
            body_first_ns: Some(1_150),
            body_last_ns: Some(1_150),
            body_reads: 1,
            ..HttpTrace::default()
        };
        assert_eq!(trace.connection_overhead_ns(), 0);
        assert_eq!(trace.sending_ns(), 50);
        assert_eq!(trace.waiting_ns(), Some(1_000));
        assert_eq!(trace.receiving_ns(), Some(0));
        assert_eq!(trace.duration_ns(), Some(1_050));
        assert_eq!(trace.total_ns(), 1_050);
    }

    #[test]
    fn without_a_body_only_the_sending_and_the_overhead_count() {
        let trace = HttpTrace {
            blocked_ns: 7,
            dns_lookup_ns: 20,
            connecting_ns: 300,
            send_start_ns: 1_000,
            send_end_ns: 1_040,
            ..HttpTrace::default()
        };
        assert_eq!(trace.waiting_ns(), None);
        assert_eq!(trace.receiving_ns(), None);
        assert_eq!(trace.duration_ns(), None);
        assert_eq!(trace.connection_overhead_ns(), 327);
        assert_eq!(trace.total_ns(), 367);
    }
}
