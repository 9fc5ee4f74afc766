//! `outputs.json` (`--export-outputs-json`): each profiling request's generated text beside
//! its ids, times and a few of its metrics, as AIPerf 0.13 writes it:
//!
//! ```text
//! {"schema_version": "1.0", "data": [{"session_num": 0, "conversation_id": "..",
//!   "turn_index": 0, "x_request_id": "..", "request_start_ns": .., "request_end_ns": ..,
//!   "metrics": {"request_latency": 81.2, ...}, "response_text": "..."}, ...]}
//! ```
//!
//! sorted by session and turn. Records are processed as their requests end and none is kept,
//! so each entry is appended to a fragments file ([`FRAGMENTS_FILE_NAME`]) as its record is
//! processed, and `outputs.json` is assembled from those lines once the run is over (as
//! AIPerf assembles its fragments). Metric values are in their display units; a request
//! without a metric (a failed one's TTFT) has no key for it, and one without text has
//! `"response_text": null`.

use std::borrow::Cow;
use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::Number;

use crate::clock::to_unix_ns;
use crate::metrics::{MetricId, RecordRow};
use crate::record::{Phase, RequestRecord};

/// The file's name in the artifact directory.
pub const FILE_NAME: &str = "outputs.json";

/// The fragments file, beside it until it is assembled.
pub const FRAGMENTS_FILE_NAME: &str = "outputs.fragments.jsonl";

/// One request's entry, in AIPerf's key order: borrowed from its record when written as a
/// fragment, owned when read back.
#[derive(Serialize, Deserialize)]
struct Entry<'a> {
    session_num: u64,
    conversation_id: Cow<'a, str>,
    turn_index: u32,
    x_request_id: Cow<'a, str>,
    request_start_ns: u64,
    request_end_ns: u64,
    metrics: EntryMetrics,
    response_text: Option<Cow<'a, str>>,
}

/// The metrics an entry carries, as AIPerf's `OutputsJsonRecordProcessor` allows them, in its
/// order; those a request lacks are left out.
#[derive(Serialize, Deserialize)]
struct EntryMetrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input_sequence_length: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output_token_count: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output_sequence_length: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_latency: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_to_first_token: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inter_token_latency: Option<Number>,
}

impl EntryMetrics {
    fn of(row: RecordRow<'_>) -> Self {
        let metric = |id: MetricId| {
            let value = row.value(id)?;
            match id.def().unit.is_integral() && value >= 0.0 && value.fract() == 0.0 {
                true => Some(Number::from(value as u64)),
                false => Number::from_f64(value),
            }
        };
        Self {
            input_sequence_length: metric(MetricId::InputSequenceLength),
            output_token_count: metric(MetricId::OutputTokenCount),
            output_sequence_length: metric(MetricId::OutputSequenceLength),
            request_latency: metric(MetricId::RequestLatency),
            time_to_first_token: metric(MetricId::TimeToFirstToken),
            inter_token_latency: metric(MetricId::InterTokenLatency),
        }
    }
}

/// Appends the fragment of one request: its record and the metric values
/// [`crate::metrics::Analysis::add`] computed for it. Warm-up requests have none, as in AIPerf.
pub fn write_fragment(
    out: &mut impl Write,
    record: &RequestRecord,
    row: RecordRow<'_>,
) -> io::Result<()> {
    if record.phase != Phase::Profiling {
        return Ok(());
    }
    let text = record.text.content.as_str();
    let entry = Entry {
        session_num: record.session_num,
        conversation_id: Cow::Borrowed(&record.conversation_id),
        turn_index: record.turn_index,
        x_request_id: Cow::Borrowed(&record.request_id),
        request_start_ns: to_unix_ns(record.start_ns),
        request_end_ns: to_unix_ns(record.end_ns),
        metrics: EntryMetrics::of(row),
        response_text: (!text.is_empty()).then_some(Cow::Borrowed(text)),
    };
    serde_json::to_writer(&mut *out, &entry)?;
    out.write_all(b"\n")
}

/// The document `outputs.json` holds.
#[derive(Serialize)]
struct Document<'a> {
    schema_version: &'static str,
    data: Vec<Entry<'a>>,
}

/// Writes `outputs.json` to `out` from the `fragments` lines, sorted by session and turn;
/// returns how many entries it holds.
pub fn assemble(fragments: impl BufRead, out: &mut impl Write) -> io::Result<usize> {
    let mut data = Vec::new();
    for line in fragments.lines() {
        let line = line?;
        if !line.is_empty() {
            data.push(serde_json::from_str::<Entry<'static>>(&line)?);
        }
    }
    data.sort_by_key(|entry| (entry.session_num, entry.turn_index));
    let count = data.len();
    let document = Document {
        schema_version: "1.0",
        data,
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    out.write_all(b"\n")?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{MS, error, record};
    use crate::metrics::{Analysis, MetricOptions};
    use serde_json::Value;

    #[test]
    fn profiling_requests_are_assembled_in_session_order_with_their_text_and_metrics() {
        let mut analysis = Analysis::new(&MetricOptions::default());
        let mut fragments = Vec::new();
        let mut later = record();
        later.session_num = 3;
        later.text.content = "Bonjour à tous".into();
        let mut failed = error(500, "boom");
        failed.session_num = 1;
        let mut warmup = record();
        warmup.phase = Phase::Warmup;
        for record in [&later, &failed, &warmup] {
            let row = analysis.add(record);
            write_fragment(&mut fragments, record, row).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(
            assemble(&fragments[..], &mut out).unwrap(),
            2,
            "no warm-up entry"
        );
        let text = String::from_utf8(out).unwrap();
        let order = [
            "session_num",
            "conversation_id",
            "turn_index",
            "x_request_id",
        ];
        let at: Vec<usize> = order.iter().map(|key| text.find(key).unwrap()).collect();
        assert!(at.is_sorted(), "AIPerf's key order: {text}");
        let document: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(document["schema_version"], "1.0");
        let data = document["data"].as_array().unwrap();
        assert_eq!(data[0]["session_num"], 1, "sorted by session");
        assert_eq!(data[0]["response_text"], Value::Null);
        assert!(data[0]["metrics"].get("time_to_first_token").is_none());
        assert_eq!(data[1]["session_num"], 3);
        assert_eq!(data[1]["response_text"], "Bonjour à tous");
        assert_eq!(data[1]["x_request_id"], "req-1");
        assert_eq!(data[1]["metrics"]["time_to_first_token"], 50.0);
        assert_eq!(
            data[1]["metrics"]["request_latency"], 85.0,
            "to the last response"
        );
        assert_eq!(
            data[1]["metrics"]["input_sequence_length"], 100,
            "a count, whole"
        );
        let start = data[1]["request_start_ns"].as_u64().unwrap();
        assert_eq!(data[1]["request_end_ns"].as_u64().unwrap() - start, 90 * MS);
    }
}
