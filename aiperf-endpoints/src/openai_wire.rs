//! The OpenAI wire format shared by the builtin endpoints: what a request body is made of
//! ([`payload`]), how a response is read ([`response`], with the one-pass [`scanner`] for the
//! plain case of a streamed chunk), and the settings every OpenAI-shaped endpoint keeps from
//! its [`EndpointContext`].
//!
//! In the data flow of DESIGN.md §4 the endpoints call into here from
//! `Endpoint::format_payload` (once per request) and `Endpoint::parse_response` (once per
//! chunk); nothing here allocates a JSON tree on either path.

use std::borrow::Cow;

use aiperf_core::endpoint::EndpointContext;
use serde_json::{Map, Value};

pub(crate) mod payload;
pub(crate) mod response;
pub(crate) mod scanner;

/// What an OpenAI-shaped endpoint keeps from the user's choices.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `model` of every request.
    pub(crate) model: String,
    /// Whether requests ask for a streamed response.
    pub(crate) streaming: bool,
    /// `--extra-inputs`, merged into every payload.
    pub(crate) extra: Map<String, Value>,
    /// The URL path requests go to.
    pub(crate) path: Cow<'static, str>,
}

impl Settings {
    /// Takes the settings from `ctx`, with `default_path` unless `--endpoint` overrides it.
    pub(crate) fn new(ctx: &EndpointContext, default_path: &'static str) -> Self {
        Self {
            model: ctx.model.clone(),
            streaming: ctx.streaming,
            extra: ctx.extra_inputs.clone(),
            path: resolve_path(ctx.custom_path.as_deref(), default_path),
        }
    }
}

/// The path requests go to: `custom` when it is set and not blank (given a leading `/` if it
/// lacks one), else `default`.
pub(crate) fn resolve_path(custom: Option<&str>, default: &'static str) -> Cow<'static, str> {
    match custom.map(str::trim) {
        None | Some("") => Cow::Borrowed(default),
        Some(path) if path.starts_with('/') => Cow::Owned(path.to_owned()),
        Some(path) => Cow::Owned(format!("/{path}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_paths_replace_the_default_and_gain_a_leading_slash() {
        assert_eq!(
            resolve_path(None, "/v1/chat/completions"),
            "/v1/chat/completions"
        );
        assert_eq!(resolve_path(Some(""), "/v1/x"), "/v1/x");
        assert_eq!(resolve_path(Some("  "), "/v1/x"), "/v1/x");
        assert_eq!(resolve_path(Some("/v2/chat"), "/v1/x"), "/v2/chat");
        assert_eq!(resolve_path(Some("v2/chat"), "/v1/x"), "/v2/chat");
    }
}
