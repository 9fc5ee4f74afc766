//! `outputs.json` (`--export-outputs-json`): each profiling request's generated text beside
//! its ids, times and a few of its metrics, as AIPerf 0.13 writes it:
//!
//! ```text
//! {"schema_version": "1.0", "data": [
//! {"session_num":0,"conversation_id":"..","turn_index":0,"x_request_id":"..",
//!  "request_start_ns":..,"request_end_ns":..,"metrics":{"request_latency":81.2,...},
//!  "response_text":"..."},
//! ...]}
//! ```
//!
//! sorted by session and turn, one entry a line. The text is the reasoning, then the answer,
//! as AIPerf joins them; a request that failed or was cancelled has `"response_text": null`
//! and no metrics, as in AIPerf. Metric values are in their display units.
//!
//! Records are processed as their requests end and none is kept, so each entry is appended
//! to a fragments file ([`FRAGMENTS_FILE_NAME`]) as its record is processed; once the run is
//! over, it sorts the entries by their place in that file (24 bytes each in memory,
//! not their text) and copies them, in order, into `outputs.json`.

use std::borrow::Cow;
use std::io::{self, BufRead, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};
use serde_json::Number;

use super::display_number;
use crate::clock::to_unix_ns;
use crate::metrics::{MetricId, RecordRow};
use crate::record::{Phase, RequestRecord};

/// The file's name in the artifact directory.
pub const FILE_NAME: &str = "outputs.json";

/// The fragments file, beside it until it is assembled; no export's name ends so, whatever
/// `--profile-export-prefix` says.
pub const FRAGMENTS_FILE_NAME: &str = "outputs.json.part";

/// One request's entry, in AIPerf's key order, borrowed from its record.
#[derive(Serialize)]
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
#[derive(Serialize)]
struct EntryMetrics {
    #[serde(skip_serializing_if = "Option::is_none")]
    input_sequence_length: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_token_count: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_sequence_length: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_latency: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_to_first_token: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inter_token_latency: Option<Number>,
}

impl EntryMetrics {
    fn of(row: RecordRow<'_>) -> Self {
        let metric = |id: MetricId| display_number(row.value(id)?, id.def().unit.is_integral());
        Self {
            input_sequence_length: metric(MetricId::InputSequenceLength),
            output_token_count: metric(MetricId::OutputTokenCount),
            output_sequence_length: metric(MetricId::OutputSequenceLength),
            request_latency: metric(MetricId::RequestLatency),
            time_to_first_token: metric(MetricId::TimeToFirstToken),
            inter_token_latency: metric(MetricId::InterTokenLatency),
        }
    }

    /// No metrics: a request that did not succeed, as AIPerf leaves them out.
    fn none() -> Self {
        Self {
            input_sequence_length: None,
            output_token_count: None,
            output_sequence_length: None,
            request_latency: None,
            time_to_first_token: None,
            inter_token_latency: None,
        }
    }
}

/// Appends the fragment of one request: its record and the metric values
/// [`crate::metrics::Analysis::add`] computed for it. Warm-up requests have none, as in AIPerf.
pub(crate) fn write_fragment(
    out: &mut impl Write,
    record: &RequestRecord,
    row: RecordRow<'_>,
) -> io::Result<()> {
    if record.phase != Phase::Profiling {
        return Ok(());
    }
    let succeeded = record.is_success();
    let text = &record.text;
    let response_text = match (text.reasoning.is_empty(), text.content.is_empty()) {
        _ if !succeeded => None,
        (true, true) => None,
        (true, false) => Some(Cow::Borrowed(text.content.as_str())),
        (false, true) => Some(Cow::Borrowed(text.reasoning.as_str())),
        (false, false) => Some(Cow::Owned(format!("{}{}", text.reasoning, text.content))),
    };
    let entry = Entry {
        session_num: record.session_num,
        conversation_id: Cow::Borrowed(&record.conversation_id),
        turn_index: record.turn_index,
        x_request_id: Cow::Borrowed(&record.request_id),
        request_start_ns: to_unix_ns(record.start_ns),
        request_end_ns: to_unix_ns(record.end_ns),
        metrics: match succeeded {
            true => EntryMetrics::of(row),
            false => EntryMetrics::none(),
        },
        response_text,
    };
    serde_json::to_writer(&mut *out, &entry)?;
    out.write_all(b"\n")
}

/// Where an entry sits in the fragments file, and its place in the order.
#[derive(Deserialize)]
struct SortKey {
    session_num: u64,
    turn_index: u32,
}

/// Writes `outputs.json` to `out` from the `fragments` file, its entries sorted by session and
/// turn, reading each entry's text only to copy it; returns how many entries it holds. A line
/// that is not an entry (a write cut short) is left out, as AIPerf leaves it.
pub(crate) fn assemble(
    fragments: &mut (impl BufRead + Seek),
    out: &mut impl Write,
) -> io::Result<usize> {
    let mut places = Vec::new();
    let (mut offset, mut line) = (0u64, String::new());
    loop {
        line.clear();
        let read = fragments.read_line(&mut line)?;
        if read == 0 {
            break;
        }
        if let Ok(key) = serde_json::from_str::<SortKey>(line.trim_end()) {
            let length = line.trim_end().len();
            places.push(((key.session_num, key.turn_index), offset, length));
        }
        offset += read as u64;
    }
    places.sort_by_key(|&(key, ..)| key);
    out.write_all(b"{\"schema_version\": \"1.0\", \"data\": [\n")?;
    let mut entry = Vec::new();
    for (i, &(_, offset, length)) in places.iter().enumerate() {
        fragments.seek(SeekFrom::Start(offset))?;
        entry.resize(length, 0);
        fragments.read_exact(&mut entry)?;
        out.write_all(&entry)?;
        out.write_all(if i + 1 < places.len() { b",\n" } else { b"\n" })?;
    }
    out.write_all(b"]}\n")?;
    Ok(places.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{MS, error, record};
    use crate::metrics::{Analysis, MetricOptions};
    use serde_json::Value;
    use std::io::Cursor;

    #[test]
    fn profiling_requests_are_assembled_in_session_order_with_their_text_and_metrics() {
        let mut analysis = Analysis::new(&MetricOptions::default());
        let mut fragments = Vec::new();
        let mut later = record();
        later.session_num = 3;
        later.text.content = "Bonjour à tous".into();
        later.text.reasoning = "Greet. ".into();
        let mut failed = error(500, "boom");
        failed.session_num = 1;
        failed.text.content = "partial".into();
        let mut warmup = record();
        warmup.phase = Phase::Warmup;
        for record in [&later, &failed, &warmup] {
            let row = analysis.add(record);
            write_fragment(&mut fragments, record, row).unwrap();
        }
        fragments.extend_from_slice(b"{\"session_num\": 0, \"cut sh");
        let mut out = Vec::new();
        let entries = assemble(&mut Cursor::new(fragments), &mut out).unwrap();
        assert_eq!(entries, 2, "no warm-up entry, no line cut short");
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
        assert_eq!(
            data[0]["response_text"],
            Value::Null,
            "a failure's partial text"
        );
        assert_eq!(data[0]["metrics"], serde_json::json!({}));
        assert_eq!(data[1]["session_num"], 3);
        assert_eq!(data[1]["response_text"], "Greet. Bonjour à tous");
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

    #[test]
    fn no_entries_make_an_empty_list() {
        let mut out = Vec::new();
        assert_eq!(assemble(&mut Cursor::new(Vec::new()), &mut out).unwrap(), 0);
        let document: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(document["data"], serde_json::json!([]));
    }
}
