//! The engine's own account of one request: when it arrived, was admitted, produced its first
//! and last token, and how many tokens went in and out. `aiperf mock-server --truth-log` writes
//! one per line, so a benchmark can pair the client's timings with the server's by
//! `X-Request-ID` and measure the client's own error (DESIGN.md §6).
//!
//! Times are Unix-epoch nanoseconds ([`crate::clock::to_unix_ns`]), comparable with the
//! `request_start_ns` of another process's `profile_export.jsonl` on the same machine.

use serde::Serialize;

/// The true timings of one request, as the engine served it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TruthRecord {
    /// The request's `X-Request-ID`, or `engine-N` when it came without one.
    pub request_id: String,
    /// The URL path it was sent to.
    pub path: String,
    /// The HTTP status it was answered with.
    pub status: u16,
    /// Whether it asked for a streamed answer.
    pub streaming: bool,
    /// When it arrived (Unix ns): as `aiperf mock-server` serves HTTP on Linux, when the bytes
    /// that completed it reached the server's socket (the kernel's receive stamp), so that
    /// time it waited there for the server's one core is the server's; otherwise when the
    /// server began handling it.
    pub arrival_ns: u64,
    /// When it got a slot in the batch (Unix ns); `None` if it never did.
    pub admitted_ns: Option<u64>,
    /// When its first token was produced (Unix ns): streamed, when its chunk was emitted;
    /// otherwise its scheduled time, as nothing is sent then.
    pub first_token_ns: Option<u64>,
    /// When its last token was produced and sent (Unix ns).
    pub last_token_ns: Option<u64>,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Output tokens produced.
    pub output_tokens: u64,
    /// Whether the answer was dropped (client gone, server stopping) before it ended.
    pub cancelled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_one_json_object_with_every_field() {
        let record = TruthRecord {
            request_id: "r1".into(),
            path: "/v1/chat/completions".into(),
            status: 200,
            arrival_ns: 1,
            admitted_ns: Some(2),
            ..TruthRecord::default()
        };
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"request_id":"r1","path":"/v1/chat/completions","status":200,"streaming":false,"arrival_ns":1,"admitted_ns":2,"first_token_ns":null,"last_token_ns":null,"input_tokens":0,"output_tokens":0,"cancelled":false}"#
        );
    }
}
