//! Parsers of flag values that every subcommand shares, so that a wrong value gets a message
//! that says what is wrong with it (clap's own says "invalid digit found in string").

/// Parses a whole-number flag (`--concurrency 8`), saying what is wrong when it is not one
/// (`-1`, `abc`, or more than the flag's type holds).
pub(crate) fn whole_number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    let text = text.trim();
    text.parse().map_err(|_| match text.parse::<i128>() {
        Ok(_) if text.starts_with('-') => {
            format!("a whole number of 0 or more is expected, got {text}")
        }
        Ok(_) => format!("{text} is more than this flag can take"),
        Err(_) => format!("a whole number is expected (0, 1, 2, ...), got `{text}`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_way_of_being_wrong_has_its_message() {
        assert_eq!(whole_number::<u16>(" 80 "), Ok(80));
        assert_eq!(whole_number::<u16>("0"), Ok(0));
        for negative in ["-1", "-0"] {
            let error = whole_number::<u16>(negative).unwrap_err();
            assert!(error.contains("of 0 or more"), "{negative}: {error}");
        }
        let error = whole_number::<u16>("70000").unwrap_err();
        assert!(error.contains("more than this flag can take"), "{error}");
        let error = whole_number::<u16>("ten").unwrap_err();
        assert!(error.contains("a whole number is expected"), "{error}");
    }
}
