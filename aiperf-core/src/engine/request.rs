//! Reading an OpenAI request as the simulated engine needs it: which API it is for (from the
//! path), how many prompt tokens it carries, how long an answer it allows and how that answer
//! is to be sent.
//!
//! Prompts are counted while the JSON is read, exactly as the builtin tokenizer counts them
//! (`prompt_tokens`); nothing of the prompt is kept. Unknown fields are ignored, as
//! OpenAI-compatible servers do.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};

use super::prompt_tokens::count;

/// The APIs the simulated engine serves, by URL path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/completions`.
    Completions,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `GET /v1/models`.
    Models,
}

impl Route {
    /// Every route, in the order they are listed to users.
    pub const ALL: [Route; 4] = [
        Route::ChatCompletions,
        Route::Completions,
        Route::Embeddings,
        Route::Models,
    ];

    /// The route a URL path (a query string and a trailing slash are ignored) goes to.
    pub fn from_path(path: &str) -> Result<Route, RequestError> {
        let bare = path.split_once('?').map_or(path, |(bare, _)| bare);
        let bare = bare.strip_suffix('/').unwrap_or(bare);
        Self::ALL
            .into_iter()
            .find(|route| route.path() == bare)
            .ok_or_else(|| RequestError::UnknownRoute {
                path: path.to_owned(),
            })
    }

    /// The route's URL path.
    pub fn path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/v1/chat/completions",
            Self::Completions => "/v1/completions",
            Self::Embeddings => "/v1/embeddings",
            Self::Models => "/v1/models",
        }
    }

    /// The HTTP method the route answers.
    pub fn method(self) -> &'static str {
        match self {
            Self::Models => "GET",
            Self::ChatCompletions | Self::Completions | Self::Embeddings => "POST",
        }
    }

    /// The API's name in messages.
    fn api(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat completions",
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
            Self::Models => "models",
        }
    }
}

/// A request the engine cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The path is not one the engine serves.
    #[error(
        "no route for `{path}`: the simulated engine serves POST /v1/chat/completions, \
         POST /v1/completions, POST /v1/embeddings and GET /v1/models"
    )]
    UnknownRoute {
        /// The path asked for.
        path: String,
    },
    /// The path is served, but with another method.
    #[error("`{path}` takes {expected}, not {method}")]
    WrongMethod {
        /// The path asked for.
        path: &'static str,
        /// The method used.
        method: String,
        /// The method the path takes.
        expected: &'static str,
    },
    /// The body is not JSON of the API's shape (the detail names the field and position).
    #[error("invalid {api} request body: {detail}")]
    InvalidBody {
        /// The API (`chat completions`).
        api: &'static str,
        /// What serde_json found wrong.
        detail: serde_json::Error,
    },
    /// The body is well formed but asks for something the engine cannot do.
    #[error("invalid {api} request: {message}")]
    InvalidValue {
        /// The API (`chat completions`).
        api: &'static str,
        /// What is wrong and what to send instead.
        message: String,
    },
}

impl RequestError {
    /// The HTTP status a server answers it with.
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownRoute { .. } => 404,
            Self::WrongMethod { .. } => 405,
            Self::InvalidBody { .. } | Self::InvalidValue { .. } => 400,
        }
    }
}

/// What the engine takes from one generation request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParsedRequest {
    /// The API (never [`Route::Models`]).
    pub route: Route,
    /// The request's `model`, as a JSON string literal ready to echo.
    pub model_json: Box<[u8]>,
    /// Prompt tokens, by the builtin tokenizer (token-id prompts count their ids).
    pub input_tokens: u64,
    /// `max_completion_tokens` or `max_tokens`, at least 1.
    pub max_tokens: Option<u32>,
    /// `min_tokens` (top level or `nvext`): no early stop before this many tokens.
    pub min_tokens: u32,
    /// `ignore_eos` (top level or `nvext`): never stop early.
    pub ignore_eos: bool,
    /// `stream`.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// Embeddings: one fingerprint per input, from which its vector is derived.
    pub embedding_inputs: Vec<u64>,
}

/// Reads a request body for `route`, counting prompt tokens with the builtin tokenizer.
pub(crate) fn parse(route: Route, body: &[u8]) -> Result<ParsedRequest, RequestError> {
    let api = route.api();
    if route == Route::Models {
        return Err(RequestError::WrongMethod {
            path: route.path(),
            method: "POST".into(),
            expected: route.method(),
        });
    }
    let body: Body =
        serde_json::from_slice(body).map_err(|detail| RequestError::InvalidBody { api, detail })?;
    let invalid = |message: String| RequestError::InvalidValue { api, message };
    let missing = |field: &str| {
        invalid(format!(
            "missing field `{field}`: a {api} request needs `model` and `{field}`"
        ))
    };
    let model_json = body.model.ok_or_else(|| missing("model"))?.0;
    let mut max_tokens = body.max_tokens;
    let mut stream = body.stream.unwrap_or(false);
    let mut embedding_inputs = Vec::new();
    let input_tokens = match route {
        Route::ChatCompletions => {
            max_tokens = body.max_completion_tokens.or(max_tokens);
            body.messages.ok_or_else(|| missing("messages"))?.0
        }
        Route::Completions => match body.prompt.ok_or_else(|| missing("prompt"))?.0[..] {
            [prompt] => prompt.tokens,
            ref prompts => {
                return Err(invalid(format!(
                    "`prompt` holds {} prompts: the simulated engine answers one prompt per \
                     request, so send them as separate requests",
                    prompts.len()
                )));
            }
        },
        Route::Embeddings => {
            let inputs = body.input.ok_or_else(|| missing("input"))?.0;
            if inputs.is_empty() {
                return Err(invalid(
                    "`input` is empty: send at least one text to embed".into(),
                ));
            }
            stream = false;
            embedding_inputs = inputs.iter().map(|input| input.fingerprint).collect();
            inputs.iter().map(|input| input.tokens).sum()
        }
        Route::Models => unreachable!("models requests are refused before the body is read"),
    };
    if max_tokens == Some(0) {
        return Err(invalid("max_tokens must be at least 1, got 0".into()));
    }
    let nvext = body.nvext.unwrap_or_default();
    Ok(ParsedRequest {
        route,
        model_json,
        input_tokens,
        max_tokens,
        min_tokens: nvext.min_tokens.or(body.min_tokens).unwrap_or(0),
        ignore_eos: nvext.ignore_eos.or(body.ignore_eos).unwrap_or(false),
        stream,
        include_usage: body
            .stream_options
            .and_then(|options| options.include_usage)
            .unwrap_or(false),
        embedding_inputs,
    })
}

/// Every field the engine reads, of every API; which are required depends on the route.
#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    model: Option<ModelName>,
    #[serde(default)]
    messages: Option<Messages>,
    #[serde(default)]
    prompt: Option<Texts>,
    #[serde(default)]
    input: Option<Texts>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    nvext: Option<NvExt>,
    #[serde(default)]
    ignore_eos: Option<bool>,
    #[serde(default)]
    min_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// NVIDIA NIM's extension fields.
#[derive(Deserialize, Default)]
struct NvExt {
    #[serde(default)]
    ignore_eos: Option<bool>,
    #[serde(default)]
    min_tokens: Option<u32>,
}

/// The request's `model`, kept as the JSON string literal responses echo.
struct ModelName(Box<[u8]>);

impl<'de> Deserialize<'de> for ModelName {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ModelVisitor;
        impl Visitor<'_> for ModelVisitor {
            type Value = ModelName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a model name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<ModelName, E> {
                let json = serde_json::to_vec(name).expect("a string always serializes");
                Ok(ModelName(json.into_boxed_slice()))
            }
        }
        deserializer.deserialize_str(ModelVisitor)
    }
}

/// The prompt tokens of a chat's `messages`, summed over every message's content.
struct Messages(u64);

impl<'de> Deserialize<'de> for Messages {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MessagesVisitor;
        impl<'de> Visitor<'de> for MessagesVisitor {
            type Value = Messages;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of messages")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Messages, A::Error> {
                let mut tokens = 0;
                while let Some(message) = seq.next_element::<Message>()? {
                    tokens += message.content.0;
                }
                Ok(Messages(tokens))
            }
        }
        deserializer.deserialize_seq(MessagesVisitor)
    }
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Content,
}

/// The tokens of a message's `content`: a string, null, or a list of parts whose `text` counts.
#[derive(Default)]
struct Content(u64);

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = Content;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, null, or a list of content parts")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Content, E> {
                Ok(Content(count(text)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Content, E> {
                Ok(Content(0))
            }
            fn visit_none<E: de::Error>(self) -> Result<Content, E> {
                Ok(Content(0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut tokens = 0;
                while let Some(part) = seq.next_element::<ContentPart>()? {
                    tokens += part.text.0;
                }
                Ok(Content(tokens))
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

/// One part of a multi-part content: its `text` counts, other kinds (images) count nothing.
#[derive(Deserialize)]
struct ContentPart {
    #[serde(default)]
    text: Content,
}

/// One text to generate from or embed: its tokens and a fingerprint of its content.
#[derive(Debug, Clone, Copy)]
struct Text {
    tokens: u64,
    fingerprint: u64,
}

impl Text {
    fn of_str(text: &str) -> Self {
        Text {
            tokens: count(text),
            fingerprint: fingerprint(text.as_bytes(), 0),
        }
    }
}

/// A `prompt` or `input`: a string, a list of strings, a list of token ids (one text), or a
/// list of token-id lists.
struct Texts(Vec<Text>);

impl<'de> Deserialize<'de> for Texts {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextsVisitor;
        impl<'de> Visitor<'de> for TextsVisitor {
            type Value = Texts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, a list of strings, or a list of token ids")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Texts, E> {
                Ok(Texts(vec![Text::of_str(text)]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Texts, A::Error> {
                let mut texts = Vec::new();
                let mut ids = TokenIds::default();
                while let Some(item) = seq.next_element::<TextOrId>()? {
                    match item {
                        TextOrId::Text(text) => texts.push(text),
                        TextOrId::Id(id) => ids.push(id),
                    }
                }
                match (texts.is_empty(), ids.count) {
                    (_, 0) => Ok(Texts(texts)),
                    (true, _) => Ok(Texts(vec![ids.into_text()])),
                    (false, _) => Err(de::Error::custom(
                        "a list mixes texts and token ids: send either texts or token ids",
                    )),
                }
            }
        }
        deserializer.deserialize_any(TextsVisitor)
    }
}

/// An element of a [`Texts`] list.
enum TextOrId {
    Text(Text),
    Id(u64),
}

impl<'de> Deserialize<'de> for TextOrId {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = TextOrId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, a token id, or a list of token ids")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<TextOrId, E> {
                Ok(TextOrId::Text(Text::of_str(text)))
            }
            fn visit_u64<E: de::Error>(self, id: u64) -> Result<TextOrId, E> {
                Ok(TextOrId::Id(id))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextOrId, A::Error> {
                let mut ids = TokenIds::default();
                while let Some(id) = seq.next_element::<u64>()? {
                    ids.push(id);
                }
                Ok(TextOrId::Text(ids.into_text()))
            }
        }
        deserializer.deserialize_any(ItemVisitor)
    }
}

/// A text given as token ids, counted and fingerprinted as they are read.
#[derive(Default)]
struct TokenIds {
    count: u64,
    fingerprint: u64,
}

impl TokenIds {
    fn push(&mut self, id: u64) {
        self.count += 1;
        self.fingerprint = fingerprint(&id.to_le_bytes(), self.fingerprint);
    }

    fn into_text(self) -> Text {
        Text {
            tokens: self.count,
            fingerprint: self.fingerprint,
        }
    }
}

/// FNV-1a over `bytes`, continuing from `state` (0 to start).
pub(crate) fn fingerprint(bytes: &[u8], state: u64) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash = if state == 0 { OFFSET } else { state };
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Tokenizer;

    fn parse_ok(route: Route, body: &str) -> ParsedRequest {
        parse(route, body.as_bytes()).unwrap()
    }

    fn parse_err(route: Route, body: &str) -> RequestError {
        parse(route, body.as_bytes()).unwrap_err()
    }

    #[test]
    fn routes_come_from_paths() {
        assert_eq!(
            Route::from_path("/v1/chat/completions").unwrap(),
            Route::ChatCompletions
        );
        assert_eq!(
            Route::from_path("/v1/completions/?x=1").unwrap(),
            Route::Completions
        );
        assert_eq!(
            Route::from_path("/v1/embeddings").unwrap(),
            Route::Embeddings
        );
        assert_eq!(Route::from_path("/v1/models").unwrap(), Route::Models);
        let error = Route::from_path("/v2/generate").unwrap_err();
        assert_eq!(error.status(), 404);
        assert!(error.to_string().contains("/v2/generate"));
        for route in Route::ALL {
            assert_eq!(Route::from_path(route.path()).unwrap(), route);
        }
    }

    #[test]
    fn chat_counts_every_message_and_reads_the_options() {
        let parsed = parse_ok(
            Route::ChatCompletions,
            r#"{"model":"m\"x","messages":[
                {"role":"system","content":" the of"},
                {"role":"user","content":[{"type":"text","text":" and to"},{"type":"image_url","image_url":{"url":"x"}}]},
                {"role":"assistant","content":null},
                {"role":"user","content":" in\n\n is"}],
              "max_tokens":7,"max_completion_tokens":9,"stream":true,
              "stream_options":{"include_usage":true},"nvext":{"ignore_eos":true,"min_tokens":3},
              "temperature":0.5}"#,
        );
        let tokenizer = Tokenizer::builtin();
        assert_eq!(parsed.input_tokens, 4 + tokenizer.count(" in\n\n is"));
        assert_eq!(parsed.max_tokens, Some(9), "max_completion_tokens wins");
        assert!(parsed.stream && parsed.include_usage && parsed.ignore_eos);
        assert_eq!(parsed.min_tokens, 3);
        assert_eq!(&*parsed.model_json, br#""m\"x""#);
    }

    #[test]
    fn chat_defaults() {
        let parsed = parse_ok(
            Route::ChatCompletions,
            r#"{"model":"m","messages":[{"role":"user","content":"hello world"}],"max_tokens":null,"ignore_eos":true,"min_tokens":2}"#,
        );
        assert_eq!(parsed.input_tokens, 2);
        assert_eq!(parsed.max_tokens, None);
        assert!(!parsed.stream && !parsed.include_usage);
        assert!(parsed.ignore_eos, "top-level ignore_eos (vLLM) counts too");
        assert_eq!(parsed.min_tokens, 2);
    }

    #[test]
    fn completions_take_a_string_a_single_list_or_token_ids() {
        let string = parse_ok(
            Route::Completions,
            r#"{"model":"m","prompt":"hello world","max_tokens":4}"#,
        );
        assert_eq!((string.input_tokens, string.max_tokens), (2, Some(4)));
        let list = parse_ok(
            Route::Completions,
            r#"{"model":"m","prompt":["hello world"]}"#,
        );
        assert_eq!(list.input_tokens, 2);
        let ids = parse_ok(Route::Completions, r#"{"model":"m","prompt":[1,2,3,4,5]}"#);
        assert_eq!(ids.input_tokens, 5);
        let nested = parse_ok(Route::Completions, r#"{"model":"m","prompt":[[1,2,3]]}"#);
        assert_eq!(nested.input_tokens, 3);
        let batch = parse_err(Route::Completions, r#"{"model":"m","prompt":["a","b"]}"#);
        assert_eq!(batch.status(), 400);
        assert!(batch.to_string().contains("separate requests"), "{batch}");
    }

    #[test]
    fn embeddings_keep_one_fingerprint_per_input() {
        let parsed = parse_ok(
            Route::Embeddings,
            r#"{"model":"m","input":["hello world","hello world"," the"],"stream":true}"#,
        );
        assert_eq!(parsed.input_tokens, 5);
        assert_eq!(parsed.embedding_inputs.len(), 3);
        assert_eq!(parsed.embedding_inputs[0], parsed.embedding_inputs[1]);
        assert_ne!(parsed.embedding_inputs[0], parsed.embedding_inputs[2]);
        assert!(!parsed.stream, "embeddings never stream");
        let one = parse_ok(Route::Embeddings, r#"{"model":"m","input":"hello world"}"#);
        assert_eq!(one.embedding_inputs.len(), 1);
        assert_eq!(
            parse_err(Route::Embeddings, r#"{"model":"m","input":[]}"#).status(),
            400
        );
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let cases = [
            (Route::ChatCompletions, "not json", "expected"),
            (
                Route::ChatCompletions,
                r#"{"messages":[]}"#,
                "missing field `model`",
            ),
            (
                Route::ChatCompletions,
                r#"{"model":"m"}"#,
                "missing field `messages`",
            ),
            (
                Route::ChatCompletions,
                r#"{"model":7,"messages":[]}"#,
                "model name",
            ),
            (
                Route::ChatCompletions,
                r#"{"model":"m","messages":[],"max_tokens":-1}"#,
                "integer `-1`",
            ),
            (
                Route::ChatCompletions,
                r#"{"model":"m","messages":[],"max_tokens":0}"#,
                "at least 1",
            ),
            (Route::Completions, r#"{"model":"m"}"#, "prompt"),
            (
                Route::Completions,
                r#"{"model":"m","prompt":["a",1]}"#,
                "mixes",
            ),
            (
                Route::Embeddings,
                r#"{"model":"m","input":{}}"#,
                "token ids",
            ),
        ];
        for (route, body, needle) in cases {
            let error = parse_err(route, body);
            assert_eq!(error.status(), 400, "{body}");
            assert!(error.to_string().contains(needle), "{body}: {error}");
        }
        let error = parse_err(Route::Models, "{}");
        assert_eq!(error.status(), 405);
    }

    #[test]
    fn fingerprints_differ_by_content() {
        assert_eq!(fingerprint(b"abc", 0), fingerprint(b"abc", 0));
        assert_ne!(fingerprint(b"abc", 0), fingerprint(b"abd", 0));
    }
}
