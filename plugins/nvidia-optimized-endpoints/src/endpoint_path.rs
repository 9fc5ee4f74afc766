//! The URL path an endpoint sends to: the user's `--endpoint` override or the API's default.

use std::borrow::Cow;

/// `custom` when it is set and not blank (given a leading `/` if it lacks one), else
/// `default`.
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
        assert_eq!(resolve_path(None, "/v1/completions"), "/v1/completions");
        assert_eq!(
            resolve_path(Some(" "), "/v1/completions"),
            "/v1/completions"
        );
        assert_eq!(resolve_path(Some("/nim/v1/x"), "/v1/x"), "/nim/v1/x");
        assert_eq!(resolve_path(Some("nim/v1/x"), "/v1/x"), "/nim/v1/x");
    }
}
