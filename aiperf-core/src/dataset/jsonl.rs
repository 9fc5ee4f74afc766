//! Reading JSON Lines dataset files: one JSON object per line, empty lines skipped, each
//! malformed line reported with the file, its 1-based line number and what is wrong
//! ([`LineError`]). The typed field readers ([`Fields`]) give the same messages to every
//! custom dataset format ([`super::single_turn`], [`super::multi_turn`], [`super::mooncake`]).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use super::DatasetError;

/// What is wrong with one line of a dataset file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line is not UTF-8 text.
    #[error("the line is not UTF-8 text: save the file as UTF-8")]
    NotUtf8,
    /// The line is not JSON.
    #[error("invalid JSON at column {column}: {message}")]
    InvalidJson {
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser found.
        message: String,
    },
    /// The line is JSON but not an object.
    #[error("expected a JSON object, found {found}: write one object per line")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// A required field is absent.
    #[error("missing field `{field}`: {hint}")]
    MissingField {
        /// The field's path, e.g. `turns[1].text`.
        field: String,
        /// What to add.
        hint: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("field `{field}` must be {expected}, found {found}")]
    WrongType {
        /// The field's path.
        field: String,
        /// What it must be.
        expected: &'static str,
        /// What it is.
        found: String,
    },
    /// A field holds a negative number.
    #[error("field `{field}` must not be negative, found {value}")]
    Negative {
        /// The field's path.
        field: String,
        /// The value found.
        value: String,
    },
    /// A field holds a value of the right type that is still wrong.
    #[error("field `{field}` {problem}")]
    Invalid {
        /// The field's path.
        field: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// A field AIPerf knows that this build does not support.
    #[error("field `{field}` is not supported: {why}")]
    Unsupported {
        /// The field's path.
        field: String,
        /// Why, and what to do instead.
        why: &'static str,
    },
}

/// Calls `entry` with each non-empty line's 1-based number and JSON object, in file order.
/// Returns how many entries there were; a file without any is [`DatasetError::Empty`].
pub(crate) fn read_objects(
    path: &Path,
    mut entry: impl FnMut(usize, &Map<String, Value>) -> Result<(), LineError>,
) -> Result<usize, DatasetError> {
    let read_error = |source| DatasetError::Read {
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(read_error)?);
    let mut bytes = Vec::new();
    let mut entries = 0;
    for line in 1.. {
        bytes.clear();
        if reader.read_until(b'\n', &mut bytes).map_err(read_error)? == 0 {
            break;
        }
        let at_line = |error| DatasetError::Line {
            path: path.to_owned(),
            line,
            error,
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| at_line(LineError::NotUtf8))?;
        if text.trim().is_empty() {
            continue;
        }
        // Without its line end, so that JSON cut short is "EOF while parsing" at its last
        // column, not an error on the next line.
        let object = parse_object(text.trim_end_matches(['\n', '\r'])).map_err(at_line)?;
        entry(line, &object).map_err(at_line)?;
        entries += 1;
    }
    if entries == 0 {
        return Err(DatasetError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(entries)
}

/// Parses one line as a JSON object.
pub(crate) fn parse_object(line: &str) -> Result<Map<String, Value>, LineError> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(LineError::NotAnObject {
            found: type_name(&other),
        }),
        Err(error) => {
            let full = error.to_string();
            let suffix = format!(" at line {} column {}", error.line(), error.column());
            let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
            Err(LineError::InvalidJson {
                column: error.column(),
                message,
            })
        }
    }
}

/// The JSON type of a value, as messages name it.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Typed, error-reporting access to the fields of one JSON object; `at` is the object's path
/// in the line (empty at the top, `turns[2].` inside a turn).
pub(crate) struct Fields<'a> {
    object: &'a Map<String, Value>,
    at: String,
}

impl<'a> Fields<'a> {
    /// The fields of the line's top-level object.
    pub(crate) fn top(object: &'a Map<String, Value>) -> Self {
        Self {
            object,
            at: String::new(),
        }
    }

    /// The fields of a nested object at `path` (e.g. `turns[2]`).
    pub(crate) fn nested(object: &'a Map<String, Value>, path: String) -> Self {
        Self {
            at: format!("{path}."),
            object,
        }
    }

    /// The full path of `key`.
    pub(crate) fn path(&self, key: &str) -> String {
        format!("{}{key}", self.at)
    }

    /// The value of `key`; JSON `null` counts as absent (as in AIPerf's models).
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key).filter(|value| !value.is_null())
    }

    /// Whether `key` is present (and not null).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// An error if any of `keys` is present.
    pub(crate) fn reject(&self, keys: &[&str], why: &'static str) -> Result<(), LineError> {
        match keys.iter().find(|key| self.has(key)) {
            Some(key) => Err(LineError::Unsupported {
                field: self.path(key),
                why,
            }),
            None => Ok(()),
        }
    }

    fn wrong_type(&self, key: &str, expected: &'static str, value: &Value) -> LineError {
        LineError::WrongType {
            field: self.path(key),
            expected,
            found: type_name(value).to_owned(),
        }
    }

    /// A string field.
    pub(crate) fn string(&self, key: &str) -> Result<Option<&'a str>, LineError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    /// An array field.
    pub(crate) fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>, LineError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(self.wrong_type(key, "an array", other)),
        }
    }

    /// A non-negative integer field of at most `u32::MAX`.
    pub(crate) fn count(&self, key: &str) -> Result<Option<u32>, LineError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let integer = integer(value).ok_or_else(|| self.wrong_type(key, "an integer", value))?;
        u32::try_from(integer).map(Some).map_err(|_| {
            if integer < 0 {
                LineError::Negative {
                    field: self.path(key),
                    value: value.to_string(),
                }
            } else {
                LineError::Invalid {
                    field: self.path(key),
                    problem: format!("is too large ({value}): at most {}", u32::MAX),
                }
            }
        })
    }

    /// A positive integer field of at most `u32::MAX`.
    pub(crate) fn positive_count(&self, key: &str) -> Result<Option<u32>, LineError> {
        match self.count(key)? {
            Some(0) => Err(LineError::Invalid {
                field: self.path(key),
                problem: "must be at least 1, found 0".to_owned(),
            }),
            other => Ok(other),
        }
    }

    /// A time in milliseconds (an integer or a decimal number, not negative), as a duration.
    pub(crate) fn millis(&self, key: &str) -> Result<Option<Duration>, LineError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let millis = value
            .as_f64()
            .ok_or_else(|| self.wrong_type(key, "a number of milliseconds", value))?;
        if millis < 0.0 {
            return Err(LineError::Negative {
                field: self.path(key),
                value: value.to_string(),
            });
        }
        // Durations hold u64 nanoseconds: about 584 years.
        const MAX_MILLIS: f64 = 1.8e13;
        if !millis.is_finite() || millis > MAX_MILLIS {
            return Err(LineError::Invalid {
                field: self.path(key),
                problem: format!("is too large ({value} ms)"),
            });
        }
        Ok(Some(Duration::from_nanos((millis * 1e6).round() as u64)))
    }
}

/// A JSON integer as i128 (covers both i64 and u64); floats with no fraction count too
/// (`1.0`), as Python's pydantic accepts them for int fields.
pub(crate) fn integer(value: &Value) -> Option<i128> {
    let Value::Number(number) = value else {
        return None;
    };
    if let Some(signed) = number.as_i64() {
        return Some(i128::from(signed));
    }
    if let Some(unsigned) = number.as_u64() {
        return Some(i128::from(unsigned));
    }
    let float = number.as_f64()?;
    (float.fract() == 0.0 && float.abs() < 1e30).then_some(float as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> Map<String, Value> {
        parse_object(json).expect("a valid object")
    }

    #[test]
    fn a_line_must_be_a_json_object() {
        assert_eq!(
            parse_object("[1, 2]"),
            Err(LineError::NotAnObject { found: "an array" })
        );
        let Err(LineError::InvalidJson { column, message }) = parse_object(r#"{"text": }"#) else {
            panic!("invalid JSON must be reported as such");
        };
        assert_eq!(column, 10);
        assert!(message.starts_with("expected value"), "{message}");
    }

    #[test]
    fn a_line_cut_short_is_reported_at_its_last_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.jsonl");
        std::fs::write(&path, "{\"text\": \"a\"\r\n").unwrap();
        let error = read_objects(&path, |_, _| Ok(())).unwrap_err().to_string();
        assert!(
            error.contains(":1: invalid JSON at column 12: EOF while parsing an object"),
            "{error}"
        );
    }

    #[test]
    fn numbers_are_checked_for_type_sign_and_range() {
        let object = fields(
            r#"{"a": 5, "b": -3, "c": "x", "d": 1e12, "e": 2.0, "f": 0, "g": 1.5, "h": null}"#,
        );
        let f = Fields::top(&object);
        assert_eq!(f.count("a"), Ok(Some(5)));
        assert_eq!(f.count("e"), Ok(Some(2)));
        assert_eq!(f.count("h"), Ok(None));
        assert_eq!(f.count("missing"), Ok(None));
        assert!(
            matches!(f.count("b"), Err(LineError::Negative { ref value, .. }) if value == "-3")
        );
        assert!(
            matches!(f.count("c"), Err(LineError::WrongType { found, .. }) if found == "a string")
        );
        assert!(matches!(f.count("d"), Err(LineError::Invalid { .. })));
        assert!(matches!(f.count("g"), Err(LineError::WrongType { .. })));
        assert!(matches!(
            f.positive_count("f"),
            Err(LineError::Invalid { .. })
        ));
        assert_eq!(f.millis("g"), Ok(Some(Duration::from_micros(1500))));
        assert!(matches!(f.millis("b"), Err(LineError::Negative { .. })));
    }

    #[test]
    fn nested_fields_are_named_by_their_path() {
        let object = fields(r#"{"text": 3}"#);
        let error = Fields::nested(&object, "turns[2]".into())
            .string("text")
            .expect_err("a number is not a string");
        assert_eq!(
            error.to_string(),
            "field `turns[2].text` must be a string, found a number"
        );
    }

    #[test]
    fn files_are_read_line_by_line_with_line_numbers_and_empty_lines_skipped() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("data.jsonl");
        std::fs::write(&path, "{\"a\": 1}\n\n   \r\n{\"a\": 2}\r\n{\"a\": 3}").expect("writable");
        let mut seen = Vec::new();
        let entries = read_objects(&path, |line, object| {
            seen.push((line, Fields::top(object).count("a")?));
            Ok(())
        })
        .expect("valid file");
        assert_eq!(entries, 3);
        assert_eq!(seen, [(1, Some(1)), (4, Some(2)), (5, Some(3))]);

        std::fs::write(&path, "{\"a\": 1}\n{\"a\": -1}\n").expect("writable");
        let error = read_objects(&path, |_, object| Fields::top(object).count("a").map(drop))
            .expect_err("negative");
        assert!(
            matches!(error, DatasetError::Line { line: 2, .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}:2: ", path.display()))
        );

        std::fs::write(&path, b"{\"a\": 1}\n\xff\n").expect("writable");
        let error = read_objects(&path, |_, _| Ok(())).expect_err("not UTF-8");
        assert!(matches!(
            error,
            DatasetError::Line {
                line: 2,
                error: LineError::NotUtf8,
                ..
            }
        ));

        std::fs::write(&path, "\n\n").expect("writable");
        let error = read_objects(&path, |_, _| Ok(())).expect_err("empty");
        assert!(matches!(error, DatasetError::Empty { .. }));

        let error =
            read_objects(&dir.path().join("missing.jsonl"), |_, _| Ok(())).expect_err("missing");
        assert!(matches!(error, DatasetError::Read { .. }));
        assert!(error.to_string().contains("missing.jsonl"));
    }
}
