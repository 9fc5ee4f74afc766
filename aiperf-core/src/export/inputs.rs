//! `inputs.json`: the request bodies sent, grouped by session, as AIPerf writes them:
//! `{"data":[{"session_id":"..","payloads":[{..request body..}, ...]}]}`. A session's payloads
//! are its turns in order; the `session_id` is the `conversation_id` of `profile_export.jsonl`,
//! so scripts can join the two.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;

/// The file's name in the artifact directory.
pub const FILE_NAME: &str = "inputs.json";

/// One session (conversation) and the bodies of its requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionPayloads {
    /// The session's id (the records' `conversation_id`).
    pub session_id: String,
    /// The request bodies, in turn order.
    pub payloads: Vec<serde_json::Value>,
}

impl SessionPayloads {
    /// Groups `(session id, request body)` pairs by session, sessions in order of first
    /// appearance and bodies in the order given. A body that is not JSON (a binary protocol's)
    /// is kept as a JSON string of its text, invalid UTF-8 replaced, rather than dropped.
    pub fn group<'a>(requests: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<Self> {
        let mut sessions: Vec<Self> = Vec::new();
        let mut index: HashMap<&'a str, usize> = HashMap::new();
        for (session_id, body) in requests {
            let payload = serde_json::from_slice(body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
            });
            let at = *index.entry(session_id).or_insert_with(|| {
                sessions.push(Self {
                    session_id: session_id.to_owned(),
                    payloads: Vec::new(),
                });
                sessions.len() - 1
            });
            sessions[at].payloads.push(payload);
        }
        sessions
    }
}

#[derive(Serialize)]
struct InputsFile<'a> {
    data: &'a [SessionPayloads],
}

/// Writes the file, indented by two spaces as AIPerf does.
pub fn write(out: &mut impl Write, sessions: &[SessionPayloads]) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &InputsFile { data: sessions })?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn groups_turns_by_session_in_order() {
        let first = br#"{"messages":[{"role":"user","content":"hi"}]}"#;
        let second = br#"{"messages":[{"role":"user","content":"again"}]}"#;
        let other = br#"{"prompt":"x"}"#;
        let sessions = SessionPayloads::group([
            ("s1", &first[..]),
            ("s2", &other[..]),
            ("s1", &second[..]),
            ("s3", &b"\x00binary"[..]),
        ]);
        let ids: Vec<&str> = sessions.iter().map(|s| s.session_id.as_str()).collect();
        assert_eq!(ids, ["s1", "s2", "s3"]);
        assert_eq!(sessions[0].payloads[1]["messages"][0]["content"], "again");
        assert_eq!(sessions[2].payloads[0], json!("\u{0}binary"));
    }

    #[test]
    fn the_file_has_aiperf_shape() {
        let sessions = SessionPayloads::group([("s1", &br#"{"model":"m","stream":true}"#[..])]);
        let mut out = Vec::new();
        write(&mut out, &sessions).unwrap();
        let text = String::from_utf8(out).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({"data": [{"session_id": "s1", "payloads": [{"model": "m", "stream": true}]}]})
        );
        assert!(text.starts_with("{\n  \"data\": [\n"), "{text}");
        let mut empty = Vec::new();
        write(&mut empty, &[]).unwrap();
        assert_eq!(String::from_utf8(empty).unwrap(), "{\n  \"data\": []\n}\n");
    }
}
