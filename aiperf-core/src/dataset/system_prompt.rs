//! The user's own system prompt (`--system-prompt`, `--system-prompt-file`): one text, sent
//! verbatim as the system message at the head of every conversation, in the place of the
//! generated shared system prompt ([`super::PrefixConfig::system_prompt`]).

use crate::tokenizer::{Tokenizer, TokenizerError};

/// What joins the verbatim system prompt and a dataset's own system message, as AIPerf joins
/// them (one message: many servers mishandle two system messages).
pub const SYSTEM_PROMPT_SEPARATOR: &str = "\n\n";

/// A system prompt the user gives verbatim (`--system-prompt`, `--system-prompt-file`), with
/// its token count by the tokenizer it was counted with (the run's, so that the dataset's
/// counts agree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPrompt {
    text: String,
    tokens: u32,
}

/// Why a verbatim system prompt cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum SystemPromptError {
    /// Nothing in it but whitespace.
    #[error("the system prompt is empty or only whitespace: give some text, or leave it out")]
    Empty,
    /// The tokenizer cannot count it.
    #[error("the tokenizer cannot count the system prompt")]
    Uncountable {
        /// Why.
        #[source]
        source: TokenizerError,
    },
}

impl SystemPrompt {
    /// `text`, counted by `tokenizer`; refused when there is nothing in it but whitespace, or
    /// when the tokenizer cannot encode it.
    pub fn new(text: String, tokenizer: &Tokenizer) -> Result<Self, SystemPromptError> {
        if text.trim().is_empty() {
            return Err(SystemPromptError::Empty);
        }
        let tokens = tokenizer
            .try_count(&text)
            .map_err(|source| SystemPromptError::Uncountable { source })?;
        Ok(Self {
            text,
            tokens: u32::try_from(tokens).unwrap_or(u32::MAX),
        })
    }

    /// The text, as sent.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Its tokens, by the tokenizer it was counted with.
    pub fn tokens(&self) -> u32 {
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_prompt_keeps_its_text_and_its_count() {
        let tokenizer = Tokenizer::builtin();
        let text = "You are a terse assistant.\nAnswer in one line.";
        let prompt = SystemPrompt::new(text.to_owned(), &tokenizer).unwrap();
        assert_eq!(prompt.text(), text);
        assert_eq!(u64::from(prompt.tokens()), tokenizer.count(text));
    }

    #[test]
    fn a_blank_system_prompt_is_refused() {
        for blank in ["", " \n\t"] {
            assert!(matches!(
                SystemPrompt::new(blank.to_owned(), &Tokenizer::builtin()),
                Err(SystemPromptError::Empty)
            ));
        }
    }
}
