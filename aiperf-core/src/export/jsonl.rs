//! `profile_export.jsonl`: one line per request (warm-up and profiling), written as the
//! request's record is processed (so in the order requests end), in AIPerf 0.13's shape:
//!
//! ```text
//! {"metadata":{"session_num":0,"x_request_id":"..","x_correlation_id":"..","conversation_id":"..",
//!   "turn_index":0,"request_start_ns":..,"request_ack_ns":..,"request_end_ns":..,
//!   "worker_id":"worker_0","record_processor_id":"record_processor_0",
//!   "benchmark_phase":"profiling","was_cancelled":false},
//!  "metrics":{"time_to_first_token":{"value":79.7,"unit":"ms"},...}}
//! ```
//!
//! As in AIPerf's lines, a field without a value is left out rather than written as `null`:
//! `error` is there only for a failed or cancelled request (scripts test `"error" in line`),
//! `cancellation_time_ns` only for a cancelled one, `request_ack_ns` only once a response
//! head arrived.
//!
//! The metadata has every field AIPerf's own record model requires, so that its
//! `MetricRecordInfo` loads these lines: aiperf sends from one process, so `worker_id` and
//! `record_processor_id` name the only ones. Timestamps are Unix nanoseconds. Metric values are in their display unit; token and request
//! counts are written as integers, inter-chunk latency as a list. A failed request carries
//! `"error":{"code":..,"type":..,"message":..}` and the metrics it has (`request_latency` to
//! the failure, `error_isl`); a cancelled one is reported as AIPerf reports cancellations (code
//! 499, `RequestCancellationError`). The records keep no separate session id, so
//! `x_correlation_id` identifies one run of a conversation (shared by its turns). Warm-up
//! requests are written too, as AIPerf writes them, with `"benchmark_phase":"warmup"`: a
//! script that averages the lines filters on it, as it must for AIPerf's files.

use std::io::{self, Write};

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};

use crate::clock::to_unix_ns;
use crate::metrics::{RecordRow, RecordValue};
use crate::record::{ErrorInfo, Outcome, RequestRecord};

/// The file's name in the artifact directory.
pub const FILE_NAME: &str = "profile_export.jsonl";

/// The `worker_id` of every line: the one process that sends.
const WORKER_ID: &str = "worker_0";

/// The `record_processor_id` of every line: the one record processor.
const RECORD_PROCESSOR_ID: &str = "record_processor_0";

/// Writes the line of one request: its record and the metric values
/// [`crate::metrics::Analysis::add`] computed for it.
pub fn write_line(
    out: &mut impl Write,
    record: &RequestRecord,
    row: RecordRow<'_>,
) -> io::Result<()> {
    let cancellation;
    let error = match &record.outcome {
        Outcome::Success => None,
        Outcome::Error(error) => Some(error),
        Outcome::Cancelled(why) => {
            cancellation = why.error();
            Some(&cancellation)
        }
    };
    let cancelled = record.outcome.is_cancelled();
    let line = Line {
        metadata: Metadata {
            session_num: record.session_num,
            x_request_id: &record.request_id,
            x_correlation_id: &record.correlation_id,
            conversation_id: &record.conversation_id,
            turn_index: record.turn_index,
            request_start_ns: to_unix_ns(record.start_ns),
            request_ack_ns: record.ack_ns.map(to_unix_ns),
            request_end_ns: to_unix_ns(record.end_ns),
            worker_id: WORKER_ID,
            record_processor_id: RECORD_PROCESSOR_ID,
            benchmark_phase: record.phase.as_str(),
            was_cancelled: cancelled,
            cancellation_time_ns: cancelled.then(|| to_unix_ns(record.end_ns)),
        },
        metrics: Metrics(row),
        error,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

#[derive(Serialize)]
struct Line<'a> {
    metadata: Metadata<'a>,
    metrics: Metrics<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorInfo>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    session_num: u64,
    x_request_id: &'a str,
    x_correlation_id: &'a str,
    conversation_id: &'a str,
    turn_index: u32,
    request_start_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_ack_ns: Option<u64>,
    request_end_ns: u64,
    worker_id: &'static str,
    record_processor_id: &'static str,
    benchmark_phase: &'static str,
    was_cancelled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancellation_time_ns: Option<u64>,
}

struct Metrics<'a>(RecordRow<'a>);

impl Serialize for Metrics<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (id, value) in self.0.values() {
            let unit = id.def().unit;
            let value = Value {
                value,
                integral: unit.is_integral(),
            };
            map.serialize_entry(
                id.tag(),
                &MetricEntry {
                    value,
                    unit: unit.as_str(),
                },
            )?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct MetricEntry<'a> {
    value: Value<'a>,
    unit: &'static str,
}

struct Value<'a> {
    value: RecordValue<'a>,
    integral: bool,
}

impl Serialize for Value<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.value {
            RecordValue::Single(v) => match super::display_number(v, self.integral) {
                Some(number) => number.serialize(serializer),
                None => serializer.serialize_f64(v),
            },
            RecordValue::List(values) => {
                let mut seq = serializer.serialize_seq(Some(values.len()))?;
                for v in values {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{MS, START, error, record};
    use crate::metrics::{Analysis, MetricOptions};
    use crate::record::{Cancellation, Phase};

    /// The JSONL text of `records`, as the record processor writes it.
    fn text(records: &[RequestRecord]) -> String {
        let mut analysis = Analysis::new(&MetricOptions::default());
        let mut out = Vec::new();
        for record in records {
            let row = analysis.add(record);
            write_line(&mut out, record, row).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    fn lines(records: &[RequestRecord]) -> Vec<serde_json::Value> {
        let text = text(records);
        assert!(text.ends_with('\n'));
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_successful_request_line() {
        let line = &lines(&[record()])[0];
        let metadata = &line["metadata"];
        let keys: Vec<&str> = metadata
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = [
            "session_num",
            "x_request_id",
            "x_correlation_id",
            "conversation_id",
            "turn_index",
            "request_start_ns",
            "request_ack_ns",
            "request_end_ns",
            "worker_id",
            "record_processor_id",
            "benchmark_phase",
            "was_cancelled",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(metadata["x_request_id"], "req-1");
        assert_eq!(metadata["conversation_id"], "conv-1");
        assert_eq!(metadata["turn_index"], 0);
        assert_eq!(metadata["benchmark_phase"], "profiling");
        assert_eq!(metadata["was_cancelled"], false);
        assert!(
            metadata.get("cancellation_time_ns").is_none(),
            "AIPerf leaves out what has no value"
        );
        let start = metadata["request_start_ns"].as_u64().unwrap();
        assert_eq!(start, to_unix_ns(START));
        assert_eq!(
            metadata["request_ack_ns"].as_u64().unwrap() - start,
            20 * MS
        );
        assert_eq!(
            metadata["request_end_ns"].as_u64().unwrap() - start,
            90 * MS
        );

        let metrics = &line["metrics"];
        assert_eq!(
            metrics["time_to_first_token"],
            serde_json::json!({"value": 50.0, "unit": "ms"})
        );
        assert_eq!(
            metrics["request_latency"],
            serde_json::json!({"value": 85.0, "unit": "ms"})
        );
        assert_eq!(
            metrics["input_sequence_length"],
            serde_json::json!({"value": 100, "unit": "tokens"})
        );
        assert_eq!(
            metrics["inter_chunk_latency"],
            serde_json::json!({"value": [10.0, 10.0, 15.0], "unit": "ms"})
        );
        assert_eq!(
            metrics["output_token_throughput_per_user"]["unit"],
            "tokens/sec/user"
        );
        assert!(metrics.get("error_isl").is_none());
        assert!(line.get("error").is_none(), "{line}");
    }

    #[test]
    fn the_exact_text_of_a_line() {
        let mut r = record();
        r.response_ns.truncate(1);
        r.client_tokens.output = Some(1);
        r.requested_output_tokens = None;
        let out = text(&[r]);
        let start = to_unix_ns(START);
        let expected = format!(
            "{{\"metadata\":{{\"session_num\":0,\"x_request_id\":\"req-1\",\
             \"x_correlation_id\":\"conv-1\",\"conversation_id\":\"conv-1\",\"turn_index\":0,\
             \"request_start_ns\":{start},\"request_ack_ns\":{},\"request_end_ns\":{},\
             \"worker_id\":\"worker_0\",\"record_processor_id\":\"record_processor_0\",\
             \"benchmark_phase\":\"profiling\",\"was_cancelled\":false}},\"metrics\":{{\
             \"request_latency\":{{\"value\":50.0,\"unit\":\"ms\"}},\
             \"time_to_first_token\":{{\"value\":50.0,\"unit\":\"ms\"}},\
             \"output_sequence_length\":{{\"value\":1,\"unit\":\"tokens\"}},\
             \"input_sequence_length\":{{\"value\":100,\"unit\":\"tokens\"}},\
             \"output_token_count\":{{\"value\":1,\"unit\":\"tokens\"}},\
             \"time_to_first_output_token\":{{\"value\":50.0,\"unit\":\"ms\"}},\
             \"credit_to_start_latency\":{{\"value\":0.5,\"unit\":\"ms\"}},\
             \"effective_latency\":{{\"value\":50.5,\"unit\":\"ms\"}},\
             \"client_prompt_tokens\":{{\"value\":100,\"unit\":\"tokens\"}},\
             \"client_completion_tokens\":{{\"value\":1,\"unit\":\"tokens\"}},\
             \"decode_duration\":{{\"value\":0.0,\"unit\":\"ms\"}},\
             \"e2e_output_token_throughput\":{{\"value\":20.0,\"unit\":\"tokens/sec/user\"}},\
             \"prefill_throughput_per_user\":{{\"value\":2000.0,\"unit\":\"tokens/sec/user\"}}}}}}\n",
            start + 20 * MS,
            start + 90 * MS
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn failed_and_cancelled_requests_carry_their_error() {
        let mut cancelled = record();
        cancelled.outcome = Outcome::Cancelled(Cancellation::ByTheRun);
        cancelled.end_ns = START + 7 * MS;
        let mut warmup = record();
        warmup.phase = Phase::Warmup;
        let lines = lines(&[warmup, error(503, "overloaded"), cancelled]);
        assert_eq!(
            lines.len(),
            3,
            "warm-up requests are written, as AIPerf writes them"
        );
        assert_eq!(lines[0]["metadata"]["benchmark_phase"], "warmup");
        assert_eq!(lines[0]["metrics"]["time_to_first_token"]["value"], 50.0);

        let failed = &lines[1];
        assert_eq!(
            failed["error"],
            serde_json::json!({"code": 503, "type": "Service Unavailable", "message": "overloaded"})
        );
        assert_eq!(
            failed["metrics"]["request_latency"],
            serde_json::json!({"value": 30.0, "unit": "ms"})
        );
        assert_eq!(
            failed["metrics"]["error_isl"],
            serde_json::json!({"value": 120, "unit": "tokens"})
        );
        assert!(failed["metrics"].get("time_to_first_token").is_none());
        assert_eq!(failed["metadata"]["was_cancelled"], false);

        let cancelled = &lines[2];
        assert_eq!(cancelled["metadata"]["was_cancelled"], true);
        assert_eq!(
            cancelled["metadata"]["cancellation_time_ns"].as_u64(),
            Some(to_unix_ns(START + 7 * MS))
        );
        assert_eq!(
            failed["metadata"]["cancellation_time_ns"],
            serde_json::Value::Null
        );
        assert_eq!(cancelled["error"]["code"], 499);
        assert_eq!(cancelled["error"]["type"], "RequestCancellationError");
        assert_eq!(cancelled["metrics"]["request_latency"]["value"], 7.0);
    }
}
