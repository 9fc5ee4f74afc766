//! Secrets kept out of what aiperf writes and prints, as AIPerf keeps them out: API keys,
//! headers that carry credentials (AIPerf's name list, and names with `auth`, `token`,
//! `secret`, ...), and the credentials a URL holds. `input_config`, `run_info`'s command line
//! and the console's URL go through here.

use super::pairs::{PairsOf, pairs};

/// What AIPerf writes in place of a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// The flags whose values AIPerf redacts on the command line: those whose name has one of
/// these.
const SECRET_FLAGS: &[&str] = &["api-key", "auth-token", "authorization"];

/// Header names whose values carry credentials (AIPerf's list: standard HTTP auth and the
/// major LLM and cloud providers' key headers).
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "ocp-apim-subscription-key",
    "x-goog-api-key",
    "x-functions-key",
    "aeg-sas-key",
    "x-amz-security-token",
    "cookie",
    "set-cookie",
    "x-auth-token",
    "x-access-token",
    "x-session-token",
    "x-csrf-token",
    "x-xsrf-token",
];

/// Fragments that make any header name credential-bearing (AIPerf's list): an exact-name
/// list can never be complete, and over-redacting only costs readability.
const SECRET_HEADER_FRAGMENTS: &[&str] = &[
    "auth",
    "token",
    "secret",
    "password",
    "passwd",
    "credential",
    "cookie",
    "apikey",
    "api-key",
    "api_key",
    "session",
    "signature",
    "sas-key",
    "access-key",
    "private-key",
];

/// Query parameters whose values a URL's redaction hides.
const SECRET_QUERY_FRAGMENTS: &[&str] = &["key", "token", "secret", "password", "signature"];

/// Whether a header's value is a secret, by its name.
pub(crate) fn is_secret_header(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    SECRET_HEADERS.contains(&name.as_str())
        || SECRET_HEADER_FRAGMENTS
            .iter()
            .any(|fragment| name.contains(fragment))
}

/// Whether a `-H` argument holds a secret: the value of a header named as credentials, among
/// the one or several it gives (`A:1,Authorization:x` gives two, as in AIPerf). An argument
/// that cannot be read is treated as one.
fn holds_secret_header(argument: &str) -> bool {
    pairs(argument, PairsOf::Headers).map_or(true, |headers| {
        headers.iter().any(|(name, _)| is_secret_header(name))
    })
}

/// `url` with the credentials it may hold redacted: the user information before `@`, and
/// the values of query parameters named like keys, tokens or secrets.
pub(crate) fn redact_url(url: &str) -> String {
    let (address, query) = url
        .split_once('?')
        .map_or((url, None), |(a, q)| (a, Some(q)));
    let authority_start = address.find("://").map_or(0, |at| at + 3);
    let authority_end = address[authority_start..]
        .find('/')
        .map_or(address.len(), |at| authority_start + at);
    let mut redacted = match address[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}{REDACTED}{}",
            &address[..authority_start],
            &address[authority_start + at..]
        ),
        None => address.to_owned(),
    };
    if let Some(query) = query {
        let parameters = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((name, _))
                    if SECRET_QUERY_FRAGMENTS
                        .iter()
                        .any(|fragment| name.to_ascii_lowercase().contains(fragment)) =>
                {
                    format!("{name}={REDACTED}")
                }
                _ => parameter.to_owned(),
            });
        redacted = format!("{redacted}?{}", parameters.collect::<Vec<_>>().join("&"));
    }
    redacted
}

/// `value` given to the flag named `flag` (lowercase, no dashes), redacted if it is a secret.
pub(crate) fn redact_value(flag: &str, value: &str) -> String {
    if SECRET_FLAGS.iter().any(|secret| flag.contains(secret)) {
        return REDACTED.to_owned();
    }
    match flag {
        "h" | "header" if holds_secret_header(value) => REDACTED.to_owned(),
        "u" | "url" => redact_url(value),
        _ => value.to_owned(),
    }
}
