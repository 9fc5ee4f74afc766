//! NVIDIA NIM's request extension object, `nvext`: with `ignore_eos: true` and `min_tokens: N`
//! next to `max_tokens: N`, the server generates exactly N tokens, so every request of a run
//! has the output length the user asked for (`--osl`).
//!
//! A user's own `nvext` object (from `--extra-inputs`, e.g. `{"top_k": 1}`) is kept and the
//! two fields are merged into it; fields the user set explicitly win, as extra inputs always
//! do. The user's entries are serialized once, when the endpoint is created.

use serde_json::{Map, Value};

use crate::payload_template::FieldWriter;

/// How the `nvext` object of each request is written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Nvext {
    /// The user's own entries, serialized without braces (`"top_k":1`); empty if none.
    user_entries: Vec<u8>,
    /// Whether the user gave an `nvext` object (then it is sent even without an output length).
    has_user_object: bool,
    /// Whether to add `"ignore_eos":true` (the user did not set it).
    add_ignore_eos: bool,
    /// Whether to add `"min_tokens":N` (the user did not set it).
    add_min_tokens: bool,
}

impl Nvext {
    /// Takes the user's `nvext` object out of the extra inputs to merge into it. Returns `None`
    /// when the user set `nvext` to something other than an object: it then stays an extra
    /// input and is sent as given.
    pub(crate) fn take_from(extra: &mut Map<String, Value>) -> Option<Self> {
        let user = match extra.remove("nvext") {
            None => return Some(Self::from_user(Map::new(), false)),
            Some(Value::Object(user)) => user,
            Some(other) => {
                extra.insert("nvext".to_owned(), other);
                return None;
            }
        };
        Some(Self::from_user(user, true))
    }

    fn from_user(user: Map<String, Value>, has_user_object: bool) -> Self {
        let mut entries = serde_json::to_vec(&user).expect("a JSON map always serializes");
        // Drop the braces: the entries are written inside the merged object.
        entries.pop();
        entries.remove(0);
        Self {
            user_entries: entries,
            has_user_object,
            add_ignore_eos: !user.contains_key("ignore_eos"),
            add_min_tokens: !user.contains_key("min_tokens"),
        }
    }

    /// About how many bytes [`Nvext::write`] adds.
    pub(crate) fn size_hint(&self) -> usize {
        self.user_entries.len() + 48
    }

    /// Writes the `nvext` field of one request asking for `max_output_tokens`.
    pub(crate) fn write(&self, fields: &mut FieldWriter<'_>, max_output_tokens: Option<u32>) {
        let Some(n) = max_output_tokens else {
            if self.has_user_object {
                let out = fields.key("nvext");
                out.push(b'{');
                out.extend_from_slice(&self.user_entries);
                out.push(b'}');
            }
            return;
        };
        let out = fields.key("nvext");
        out.push(b'{');
        out.extend_from_slice(&self.user_entries);
        let mut needs_comma = !self.user_entries.is_empty();
        if self.add_ignore_eos {
            if needs_comma {
                out.push(b',');
            }
            out.extend_from_slice(br#""ignore_eos":true"#);
            needs_comma = true;
        }
        if self.add_min_tokens {
            if needs_comma {
                out.push(b',');
            }
            out.extend_from_slice(br#""min_tokens":"#);
            crate::payload_template::write_u32(out, n);
        }
        out.push(b'}');
    }
}
