//! Client-side token counting (`--tokenizer`). Two kinds of tokenizer count tokens:
//!
//! - the builtin one, tiktoken's o200k_base, embedded in the binary and working offline
//!   (AIPerf's `--tokenizer builtin`, the default): [`o200k`]'s counter, whose vocabulary is
//!   laid out at build time so that only its pre-tokenizer's pattern is compiled on first use
//!   (a few milliseconds, which [`Tokenizer::warm_up_in_background`] moves off the critical
//!   path);
//! - a HuggingFace `tokenizer.json` read from disk (the file itself, a model directory
//!   holding one, or a Hub model id found in the local Hub cache, [`hub_cache`]), for counts
//!   that match a particular model. Nothing is downloaded.
//!
//! In the data flow of DESIGN.md §4 the tokenizer serves the dataset stage (prompts of exact
//! lengths, see [`crate::dataset::PromptWords`]) and the records beside the run (output counts,
//! in [`crate::record_processor`]); it never runs on the per-chunk path.
//!
//! ```no_run
//! use aiperf_core::tokenizer::Tokenizer;
//!
//! let tokenizer = Tokenizer::from_spec("models/qwen3/tokenizer.json")?;
//! assert_eq!(Tokenizer::from_spec("builtin")?.count("hello world"), 2);
//! println!("{tokenizer}: {} tokens", tokenizer.count("hello world"));
//! # Ok::<(), aiperf_core::tokenizer::TokenizerError>(())
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub mod hub_cache;
pub mod o200k;

use hub_cache::{DEFAULT_REVISION, HubCache};
use o200k::O200kBase;

/// The `--tokenizer` value naming the builtin tokenizer.
pub const BUILTIN_SPEC: &str = "builtin";

/// The file a HuggingFace model directory keeps its tokenizer in.
pub const TOKENIZER_FILE_NAME: &str = "tokenizer.json";

/// A tokenizer that counts the tokens of a text: cheap to clone and shareable across threads.
#[derive(Clone)]
pub struct Tokenizer {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    /// o200k_base, built on first use (a few ms) and shared: holding the handle costs nothing.
    Builtin,
    HuggingFace {
        model: Arc<tokenizers::Tokenizer>,
        path: Arc<Path>,
    },
}

/// The builtin tokenizer's counter, built by the first caller (or the warm-up thread).
fn o200k() -> &'static O200kBase {
    static O200K: OnceLock<O200kBase> = OnceLock::new();
    O200K.get_or_init(O200kBase::new)
}

/// Why a tokenizer could not be loaded or could not encode a text.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The path names nothing.
    #[error(
        "tokenizer {path} does not exist: give the path of a local HuggingFace tokenizer.json \
         (or of the model directory holding one), a model id in the local HuggingFace cache, or \
         `builtin`; nothing is downloaded"
    )]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// A Hub model id the local Hub cache does not hold.
    #[error(
        "tokenizer {model} (revision {revision}) is neither a local path nor in the HuggingFace \
         cache{}: fetch it there (`hf download {model} tokenizer.json --revision {revision}`), \
         or give the path of a tokenizer.json, or `builtin`; aiperf downloads nothing",
        cache.as_ref().map(|dir| format!(" ({})", dir.display())).unwrap_or_default()
    )]
    NotCached {
        /// The model id given.
        model: String,
        /// The revision asked for.
        revision: String,
        /// The cache looked in (`None` when no environment variable gives one).
        cache: Option<PathBuf>,
    },
    /// The path is a directory without a `tokenizer.json`.
    #[error(
        "directory {dir} holds no tokenizer.json: give the model directory that holds one, or \
         the tokenizer.json file itself"
    )]
    NoTokenizerFile {
        /// The directory given.
        dir: PathBuf,
    },
    /// The file exists but cannot be read.
    #[error("cannot read tokenizer file {path}: check its permissions")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is not JSON.
    #[error(
        "tokenizer file {path} is not valid JSON (line {line}, column {column}: {message}): give \
         the tokenizer.json that HuggingFace tokenizers or transformers saved"
    )]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser found.
        message: String,
    },
    /// The file is JSON but not a tokenizer the `tokenizers` library understands.
    #[error(
        "tokenizer file {path} is not a HuggingFace tokenizer ({message}): give the \
         tokenizer.json that HuggingFace tokenizers or transformers saved"
    )]
    InvalidModel {
        /// The file.
        path: PathBuf,
        /// What the tokenizer library found.
        message: String,
    },
    /// The tokenizer refused a text (e.g. a word-level model without an unknown token).
    #[error("tokenizer {tokenizer} cannot encode {text:?}: {message}")]
    Encode {
        /// The tokenizer's name ([`Tokenizer`]'s `Display`).
        tokenizer: String,
        /// The start of the text.
        text: String,
        /// What the tokenizer library said.
        message: String,
    },
}

impl Tokenizer {
    /// The builtin tokenizer (o200k_base), built on first use and shared.
    pub fn builtin() -> Self {
        Self {
            kind: Kind::Builtin,
        }
    }

    /// The tokenizer a `--tokenizer` value names: [`BUILTIN_SPEC`] (`builtin`), the path of a
    /// HuggingFace `tokenizer.json` or of a directory holding one (see [`Tokenizer::from_path`]),
    /// or a Hub model id in the local Hub cache at its `main` revision.
    pub fn from_spec(spec: &str) -> Result<Self, TokenizerError> {
        Self::from_spec_at(spec, DEFAULT_REVISION, HubCache::from_env().as_ref())
    }

    /// [`Tokenizer::from_spec`], a Hub model id taken at `revision` (`--tokenizer-revision`)
    /// from `cache`.
    pub fn from_spec_at(
        spec: &str,
        revision: &str,
        cache: Option<&HubCache>,
    ) -> Result<Self, TokenizerError> {
        if spec == BUILTIN_SPEC {
            return Ok(Self::builtin());
        }
        if !hub_cache::names_hub_model(spec) {
            return Self::from_path(Path::new(spec));
        }
        match cache.and_then(|cache| cache.tokenizer_file(spec, revision)) {
            Some(file) => Self::from_path(&file),
            None => Err(TokenizerError::NotCached {
                model: spec.to_owned(),
                revision: revision.to_owned(),
                cache: cache.map(|cache| cache.root().to_owned()),
            }),
        }
    }

    /// Loads a HuggingFace tokenizer from `path`: a `tokenizer.json`, or a directory holding
    /// one. Truncation and padding saved in the file are switched off, so that counts are the
    /// text's own.
    pub fn from_path(path: &Path) -> Result<Self, TokenizerError> {
        let file = if path.is_dir() {
            let file = path.join(TOKENIZER_FILE_NAME);
            if !file.is_file() {
                return Err(TokenizerError::NoTokenizerFile {
                    dir: path.to_owned(),
                });
            }
            file
        } else {
            path.to_owned()
        };
        let bytes = std::fs::read(&file).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => TokenizerError::NotFound { path: file.clone() },
            _ => TokenizerError::Read {
                path: file.clone(),
                source,
            },
        })?;
        let mut model = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|error| {
            match error.downcast_ref::<serde_json::Error>() {
                Some(json) if json.is_syntax() || json.is_eof() => TokenizerError::InvalidJson {
                    path: file.clone(),
                    line: json.line(),
                    column: json.column(),
                    message: json_message(json),
                },
                _ => TokenizerError::InvalidModel {
                    path: file.clone(),
                    message: error.to_string(),
                },
            }
        })?;
        model
            .with_truncation(None)
            .map_err(|error| TokenizerError::InvalidModel {
                path: file.clone(),
                message: error.to_string(),
            })?;
        model.with_padding(None);
        Ok(Self {
            kind: Kind::HuggingFace {
                model: Arc::new(model),
                path: file.into(),
            },
        })
    }

    /// Starts building the builtin tokenizer on a background thread, so that a later
    /// [`Tokenizer::builtin`] finds it ready.
    pub fn warm_up_in_background() {
        std::thread::Builder::new()
            .name("tokenizer-warm-up".into())
            .spawn(|| {
                o200k();
            })
            .expect("spawning a thread at start-up succeeds");
    }

    /// Whether this is the builtin tokenizer.
    pub fn is_builtin(&self) -> bool {
        matches!(self.kind, Kind::Builtin)
    }

    /// The number of tokens of `text`, without special tokens (a chat template's or a
    /// tokenizer's BOS/EOS are not the text's; special tokens written in the text count as
    /// ordinary text for the builtin tokenizer).
    ///
    /// A text the tokenizer refuses (see [`Tokenizer::try_count`]) counts 0 tokens.
    pub fn count(&self, text: &str) -> u64 {
        self.try_count(text).unwrap_or(0)
    }

    /// The number of tokens of `text`, or why the tokenizer refuses it. The builtin tokenizer
    /// never does; a HuggingFace word-level model without an unknown token refuses words it
    /// does not know.
    pub fn try_count(&self, text: &str) -> Result<u64, TokenizerError> {
        match &self.kind {
            Kind::Builtin => Ok(o200k().count(text) as u64),
            Kind::HuggingFace { model, .. } => model
                .encode_fast(text, false)
                .map(|encoding| encoding.len() as u64)
                .map_err(|error| self.encode_error(text, error.to_string())),
        }
    }

    /// Whether `word` is one token that decodes back to it (ignoring surrounding spaces): not
    /// an unknown-token stand-in.
    pub(crate) fn is_one_known_token(&self, word: &str) -> bool {
        match &self.kind {
            Kind::Builtin => o200k().count(word) == 1,
            Kind::HuggingFace { model, .. } => model
                .encode_fast(word, false)
                .ok()
                .filter(|encoding| encoding.len() == 1)
                .and_then(|encoding| model.decode(encoding.get_ids(), false).ok())
                .is_some_and(|decoded| decoded.trim() == word.trim()),
        }
    }

    /// The texts of the tokenizer's tokens as it decodes each alone, in token-id order,
    /// special tokens left out; `None` for the builtin tokenizer, whose vocabulary of byte
    /// sequences is not needed ([`crate::vocabulary::WORDS`] serves it).
    pub(crate) fn decoded_vocabulary(&self) -> Option<impl Iterator<Item = String> + '_> {
        let Kind::HuggingFace { model, .. } = &self.kind else {
            return None;
        };
        let size = u32::try_from(model.get_vocab_size(false)).unwrap_or(u32::MAX);
        Some((0..size).filter_map(move |id| model.decode(&[id], true).ok()))
    }

    fn encode_error(&self, text: &str, message: String) -> TokenizerError {
        const SHOWN: usize = 40;
        let end = text
            .char_indices()
            .nth(SHOWN)
            .map_or(text.len(), |(index, _)| index);
        TokenizerError::Encode {
            tokenizer: self.to_string(),
            text: text[..end].to_owned(),
            message,
        }
    }
}

/// The message of a serde_json error without the " at line L column C" it appends.
fn json_message(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match full.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => full,
    }
}

impl fmt::Display for Tokenizer {
    /// `builtin (o200k_base)`, or the path of the tokenizer.json.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Builtin => f.write_str("builtin (o200k_base)"),
            Kind::HuggingFace { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tokenizer({self})")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vocabulary::WORDS;

    /// A word-level tokenizer.json: whitespace pre-tokenizer, the given words, `[UNK]` for
    /// anything else (when `unknown` is true), and padding and truncation saved in the file
    /// (which loading must switch off).
    pub(crate) fn word_level_json(words: &[&str], unknown: bool) -> String {
        let mut vocab = serde_json::Map::new();
        vocab.insert("[UNK]".into(), 0.into());
        for (i, word) in words.iter().enumerate() {
            vocab.insert((*word).into(), (i + 1).into());
        }
        serde_json::json!({
            "version": "1.0",
            "truncation": {"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0},
            "padding": {"strategy": {"Fixed": 64}, "direction": "Right", "pad_to_multiple_of": null,
                        "pad_id": 0, "pad_type_id": 0, "pad_token": "[UNK]"},
            "added_tokens": [],
            "normalizer": null,
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": null,
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab,
                      "unk_token": if unknown { "[UNK]" } else { "<missing>" }}
        })
        .to_string()
    }

    fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("the temp dir is writable");
        path
    }

    #[test]
    fn counts_known_texts() {
        let tokenizer = Tokenizer::builtin();
        assert_eq!(tokenizer.count(""), 0);
        assert_eq!(tokenizer.count("hello world"), 2);
        assert!(tokenizer.count("Supercalifragilisticexpialidocious") > 1);
    }

    #[test]
    fn every_vocabulary_word_is_one_token_and_texts_of_them_count_exactly() {
        let tokenizer = Tokenizer::builtin();
        let multi: Vec<&str> = WORDS
            .iter()
            .copied()
            .filter(|w| tokenizer.count(w) != 1)
            .collect();
        assert!(multi.is_empty(), "not single tokens: {multi:?}");
        let text: String = WORDS.iter().cycle().take(1000).copied().collect();
        assert_eq!(tokenizer.count(&text), 1000);
    }

    #[test]
    fn the_builtin_spec_names_the_builtin_tokenizer() {
        let tokenizer = Tokenizer::from_spec("builtin").expect("builtin always loads");
        assert!(tokenizer.is_builtin());
        assert_eq!(tokenizer.to_string(), "builtin (o200k_base)");
        assert!(tokenizer.decoded_vocabulary().is_none());
    }

    #[test]
    fn a_word_level_file_or_its_directory_loads_and_counts_words_without_padding() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = write(
            dir.path(),
            TOKENIZER_FILE_NAME,
            &word_level_json(&["hello", "world"], true),
        );
        for spec in [&file, dir.path()] {
            let tokenizer = Tokenizer::from_spec(spec.to_str().expect("utf-8 temp path"))
                .expect("a valid tokenizer.json loads");
            assert!(!tokenizer.is_builtin());
            assert_eq!(tokenizer.to_string(), file.display().to_string());
            assert_eq!(tokenizer.count(""), 0);
            assert_eq!(tokenizer.count("hello"), 1);
            // Unknown words are one [UNK] each; punctuation is split off by the pre-tokenizer.
            // The file's truncation (4) and padding (64) would change these counts.
            assert_eq!(tokenizer.count("hello world, hello there world again"), 7);
        }
    }

    #[test]
    fn a_model_id_is_read_from_the_hub_cache_at_its_revision() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let commit = "89abcdef0123456789abcdef0123456789abcdef";
        let model = dir.path().join("models--acme--tiny");
        std::fs::create_dir_all(model.join("refs")).unwrap();
        std::fs::write(model.join("refs/main"), commit).unwrap();
        let snapshot = model.join("snapshots").join(commit);
        std::fs::create_dir_all(&snapshot).unwrap();
        write(
            &snapshot,
            TOKENIZER_FILE_NAME,
            &word_level_json(&["hello"], true),
        );
        let cache = HubCache::at(dir.path());
        let tokenizer = Tokenizer::from_spec_at("acme/tiny", "main", Some(&cache)).expect("cached");
        assert_eq!(tokenizer.count("hello hello"), 2);
        assert!(tokenizer.to_string().contains(commit), "{tokenizer}");
        let error = Tokenizer::from_spec_at("acme/tiny", "v2", Some(&cache)).expect_err("no ref");
        let message = error.to_string();
        assert!(
            matches!(error, TokenizerError::NotCached { .. }),
            "{message}"
        );
        assert!(
            message.contains("hf download acme/tiny tokenizer.json --revision v2"),
            "{message}"
        );
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        let error = Tokenizer::from_spec_at("acme/tiny", "main", None).expect_err("no cache");
        assert!(matches!(
            error,
            TokenizerError::NotCached { cache: None, .. }
        ));
    }

    #[test]
    fn the_decoded_vocabulary_lists_the_words_in_id_order() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = write(
            dir.path(),
            "tok.json",
            &word_level_json(&["alpha", "beta"], true),
        );
        let tokenizer = Tokenizer::from_path(&file).expect("loads");
        let words: Vec<String> = tokenizer
            .decoded_vocabulary()
            .expect("a HF model")
            .collect();
        assert_eq!(words, ["[UNK]", "alpha", "beta"]);
    }

    #[test]
    fn a_model_without_an_unknown_token_refuses_unknown_words() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = write(dir.path(), "tok.json", &word_level_json(&["hello"], false));
        let tokenizer = Tokenizer::from_path(&file).expect("loads");
        assert_eq!(tokenizer.try_count("hello hello").ok(), Some(2));
        let error = tokenizer.try_count("goodbye").expect_err("unknown word");
        assert!(matches!(error, TokenizerError::Encode { ref text, .. } if text == "goodbye"));
        assert_eq!(tokenizer.count("goodbye"), 0);
    }

    #[test]
    fn errors_name_the_path_and_say_what_to_give() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let missing = dir.path().join("nope.json");
        let error = Tokenizer::from_path(&missing).expect_err("missing");
        assert!(
            matches!(error, TokenizerError::NotFound { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains("nope.json") && message.contains("`builtin`"),
            "{message}"
        );

        let error = Tokenizer::from_path(dir.path()).expect_err("empty dir");
        assert!(
            matches!(error, TokenizerError::NoTokenizerFile { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("holds no tokenizer.json"));

        let broken = write(dir.path(), "broken.json", "{\n  \"model\": [1, 2,\n");
        let error = Tokenizer::from_path(&broken).expect_err("truncated JSON");
        match &error {
            TokenizerError::InvalidJson { line, message, .. } => {
                assert_eq!(*line, 3, "{error}");
                assert!(!message.contains(" at line "), "{message}");
            }
            other => panic!("expected invalid JSON, got {other:?}"),
        }
        assert!(error.to_string().contains("broken.json"));

        let not_a_tokenizer = write(dir.path(), "other.json", r#"{"model": {"type": "Nope"}}"#);
        let error = Tokenizer::from_path(&not_a_tokenizer).expect_err("not a tokenizer");
        assert!(
            matches!(error, TokenizerError::InvalidModel { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("other.json"));
    }
}
