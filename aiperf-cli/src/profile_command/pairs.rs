//! The `key:value` arguments of `-H/--header` and `--extra-inputs`, read as AIPerf reads them,
//! so that an AIPerf command line sends the same headers and payload fields here:
//! - an argument that starts with `{` is a JSON object of pairs;
//! - any other is one pair or several separated by commas (`temperature:0.7,top_p:0.9`), each
//!   split at its first colon, name and value trimmed;
//! - several arguments may follow one flag (`--extra-inputs temperature:0.7 top_p:0.9`), and
//!   the flag may be repeated.
//!
//! A `-H` argument whose comma-separated parts are not all pairs
//! (`Accept: text/event-stream, application/json`), which AIPerf refuses, is one header here,
//! its value holding the commas; an `--extra-inputs` one is refused, as in AIPerf (`a:1,b` is
//! more likely a slip than a value). Commas inside brackets, braces or double quotes never
//! separate pairs, so that a value may be a JSON list or object (`stop:["a","b"]`).

use serde_json::{Map, Value};

/// Which flag's arguments are read, which decides how their values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PairsOf {
    /// `-H`: values are text, and one may hold commas (see the module's docs).
    Headers,
    /// `--extra-inputs`: values typed by [`payload_value`], every comma-separated part a pair.
    Payload,
}

/// The pairs of one argument, in order, each value read as `of` says (or taken as it is from
/// a JSON object). The error says what is wrong with `argument`, for a message that names its
/// flag.
pub(crate) fn pairs(argument: &str, of: PairsOf) -> Result<Vec<(String, Value)>, String> {
    let text_value = |text: &str| match of {
        PairsOf::Headers => Value::String(text.to_owned()),
        PairsOf::Payload => payload_value(text),
    };
    let trimmed = argument.trim();
    if trimmed.starts_with('{') {
        let object: Map<String, Value> = serde_json::from_str(trimmed)
            .map_err(|_| format!("`{argument}` looks like JSON but is not a JSON object"))?;
        return Ok(object.into_iter().collect());
    }
    let parts: Vec<&str> = split_outside_brackets(trimmed)
        .into_iter()
        .filter(|part| !part.trim().is_empty())
        .collect();
    let all_pairs = !parts.is_empty() && parts.iter().all(|part| part.contains(':'));
    let parts = if all_pairs || of == PairsOf::Payload {
        parts
    } else {
        vec![trimmed]
    };
    parts
        .into_iter()
        .map(|part| {
            let (key, value) = part.split_once(':').ok_or_else(|| {
                format!(
                    "`{argument}` is not of the form key:value (several separated by commas) \
                     or a JSON object"
                )
            })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(format!("`{argument}` has an empty name before a colon"));
            }
            Ok((key.to_owned(), text_value(value.trim())))
        })
        .collect()
}

/// A payload value written as text (`--extra-inputs key:value`), typed as AIPerf types it:
/// `true`/`false` in any case a boolean, `none`/`null` null, a whole number without leading
/// zeros an integer, digits with one decimal point (`0.7`, `.5`) a float, anything else a
/// string. A JSON list or object (`["a","b"]`, which AIPerf cannot take) is that value.
fn payload_value(text: &str) -> Value {
    if text.starts_with(['[', '{'])
        && let Ok(value) = serde_json::from_str(text)
    {
        return value;
    }
    match text.to_ascii_lowercase().as_str() {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "none" | "null" => return Value::Null,
        _ => {}
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if all_digits(digits) && (digits == "0" || !digits.starts_with('0')) {
        // Python's integers have no bound: past i64, u64, then the nearest float.
        if let Ok(whole) = text.parse::<i64>() {
            return whole.into();
        }
        if let Ok(whole) = text.parse::<u64>() {
            return whole.into();
        }
        if let Ok(float) = text.parse::<f64>() {
            return float.into();
        }
    } else if digits.matches('.').count() == 1
        && all_digits(&digits.replace('.', ""))
        && let Ok(float) = text.parse::<f64>()
    {
        return float.into();
    }
    Value::String(text.to_owned())
}

/// A header value: the text as given, or a JSON object's value as text (a string as it is,
/// anything else as JSON).
pub(crate) fn header_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `text` split at the commas that are outside brackets, braces and double-quoted strings; at
/// every comma when a bracket, brace or string is left open (a value that is not JSON).
fn split_outside_brackets(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    for (at, byte) in text.bytes().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                parts.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    if depth > 0 || in_string {
        return text.split(',').collect();
    }
    parts
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn payload(argument: &str) -> Result<Value, String> {
        let pairs = pairs(argument, PairsOf::Payload)?;
        Ok(Value::Object(pairs.into_iter().collect()))
    }

    #[test]
    fn commas_separate_pairs_as_in_aiperf() {
        assert_eq!(
            payload("temperature:0.7, top_p:0.9,ignore_eos:True").unwrap(),
            json!({"temperature": 0.7, "top_p": 0.9, "ignore_eos": true})
        );
        assert_eq!(
            payload(r#"{"temperature": 0.7, "stop": "a,b"}"#).unwrap(),
            json!({"temperature": 0.7, "stop": "a,b"})
        );
    }

    #[test]
    fn values_are_typed_as_aiperf_types_them() {
        for (text, expected) in [
            ("FALSE", json!(false)),
            ("None", json!(null)),
            ("null", json!(null)),
            ("42", json!(42)),
            ("-7", json!(-7)),
            ("0", json!(0)),
            ("007", json!("007")),
            ("0.5", json!(0.5)),
            (".5", json!(0.5)),
            ("-1.25", json!(-1.25)),
            ("1e3", json!("1e3")),
            ("18446744073709551615", json!(18446744073709551615u64)),
            ("1.2.3", json!("1.2.3")),
            ("\"quoted\"", json!("\"quoted\"")),
            ("hello world", json!("hello world")),
            ("", json!("")),
            (r#"["a","b"]"#, json!(["a", "b"])),
            (r#"{"type":"json_object"}"#, json!({"type": "json_object"})),
            ("[not json", json!("[not json")),
        ] {
            assert_eq!(payload_value(text), expected, "{text}");
        }
    }

    #[test]
    fn commas_inside_a_json_value_do_not_separate_pairs() {
        assert_eq!(
            payload(r#"stop:["a","b"],n:2,x:{"k":[1,2]}"#).unwrap(),
            json!({"stop": ["a", "b"], "n": 2, "x": {"k": [1, 2]}})
        );
    }

    #[test]
    fn an_open_bracket_does_not_swallow_the_pairs_after_it() {
        assert_eq!(
            payload("stop:{,top_p:0.9").unwrap(),
            json!({"stop": "{", "top_p": 0.9})
        );
    }

    #[test]
    fn a_value_with_commas_stays_whole_when_its_parts_are_not_pairs() {
        let header = pairs(
            "Accept: text/event-stream, application/json",
            PairsOf::Headers,
        )
        .unwrap();
        assert_eq!(
            header,
            vec![(
                "Accept".to_owned(),
                json!("text/event-stream, application/json")
            )]
        );
        assert_eq!(
            payload("a:1,").unwrap(),
            json!({"a": 1}),
            "an empty part is nothing"
        );
        let error = payload("temperature:0.7,top_p").unwrap_err();
        assert!(
            error.contains("not of the form key:value"),
            "a slip, as AIPerf reads it: {error}"
        );
    }

    #[test]
    fn wrong_arguments_say_what_is_wrong() {
        let error = payload("no-colon").unwrap_err();
        assert!(error.contains("not of the form key:value"), "{error}");
        let error = payload(":1").unwrap_err();
        assert!(error.contains("empty name"), "{error}");
        let error = payload("a:1, :2").unwrap_err();
        assert!(error.contains("empty name"), "{error}");
        let error = payload("{not json").unwrap_err();
        assert!(error.contains("not a JSON object"), "{error}");
        let error = payload("[1,2]").unwrap_err();
        assert!(error.contains("not of the form key:value"), "{error}");
    }

    #[test]
    fn header_values_are_text() {
        assert_eq!(header_value(&json!("Bearer x")), "Bearer x");
        assert_eq!(header_value(&json!(5)), "5");
        assert_eq!(header_value(&json!(true)), "true");
    }
}
