//! Custom datasets: the user's JSONL file (`--input-file FILE --custom-dataset-type TYPE`), read
//! into [`Conversation`]s before the run starts (DESIGN.md §4, the dataset stage). Each format
//! has its own module: [`super::single_turn`], [`super::multi_turn`], [`super::mooncake`].
//! A malformed line stops loading with [`DatasetError::Line`]: the file, the line number and
//! what is wrong.

use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;

use super::synthetic::LengthDistribution;
use super::{
    Conversation, DatasetError, PrefixConfig, PromptWords, SamplingStrategy, mooncake, multi_turn,
    rng_for, single_turn,
};
use crate::tokenizer::{Tokenizer, TokenizerError};

/// The default tokens per `hash_ids` block (`--isl-block-size`).
pub const DEFAULT_ISL_BLOCK_SIZE: NonZeroU32 = NonZeroU32::new(512).expect("512 is not zero");

/// The custom dataset formats (`--custom-dataset-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomDatasetType {
    /// `single_turn`: one request per line (lines sharing a `session_id` are one
    /// conversation's turns).
    SingleTurn,
    /// `multi_turn`: one session of turns per line.
    MultiTurn,
    /// `mooncake_trace`: a Mooncake trace, replayed by length with shared-prefix blocks.
    MooncakeTrace,
}

impl CustomDatasetType {
    /// Every format, in the order help texts list them.
    pub const ALL: [Self; 3] = [Self::SingleTurn, Self::MultiTurn, Self::MooncakeTrace];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::SingleTurn => "single_turn",
            Self::MultiTurn => "multi_turn",
            Self::MooncakeTrace => "mooncake_trace",
        }
    }

    /// The sampling strategy used when the user gives none (AIPerf's: files are used in order).
    pub fn preferred_sampling(self) -> SamplingStrategy {
        SamplingStrategy::Sequential
    }
}

impl fmt::Display for CustomDatasetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown `--custom-dataset-type`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown custom dataset type `{0}`: use single_turn, multi_turn or mooncake_trace")]
pub struct UnknownDatasetType(pub String);

impl FromStr for CustomDatasetType {
    type Err = UnknownDatasetType;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| UnknownDatasetType(name.to_owned()))
    }
}

/// What a custom dataset is read with.
#[derive(Debug, Clone)]
pub struct CustomDatasetConfig {
    /// The JSONL file (`--input-file`).
    pub path: PathBuf,
    /// Its format (`--custom-dataset-type`).
    pub kind: CustomDatasetType,
    /// Counts the prompts the file gives as text ([`super::Turn::input_tokens`]).
    pub tokenizer: Tokenizer,
    /// What synthesized prompts (trace lines, prefixes) are made of: words of one token each
    /// for `tokenizer`.
    pub prompt_words: PromptWords,
    /// Prefix prompts (for `single_turn`) and the system prompt, shared or the user's own (for
    /// every format).
    pub prefix: PrefixConfig,
    /// Tokens per `hash_ids` block of a trace (`--isl-block-size`).
    pub isl_block_size: NonZeroU32,
    /// The random seed (`--random-seed`).
    pub seed: u64,
    /// The output length of the turns whose line gives none (`--osl`, `--osl-stddev`); a
    /// line's own `output_length` goes first, as in AIPerf.
    pub output_tokens: Option<LengthDistribution>,
}

impl CustomDatasetConfig {
    /// A config for `path` in format `kind`, with `tokenizer`'s prompt words, no prefixes,
    /// 512-token blocks and seed 0.
    pub fn new(
        path: PathBuf,
        kind: CustomDatasetType,
        tokenizer: Tokenizer,
    ) -> Result<Self, DatasetError> {
        Ok(Self {
            path,
            kind,
            prompt_words: PromptWords::for_tokenizer(&tokenizer)?,
            tokenizer,
            prefix: PrefixConfig::default(),
            isl_block_size: DEFAULT_ISL_BLOCK_SIZE,
            seed: 0,
            output_tokens: None,
        })
    }
}

/// Reads the dataset file `config` names, in its format; the turns without an output length
/// of their own get one of [`CustomDatasetConfig::output_tokens`].
pub fn load(config: &CustomDatasetConfig) -> Result<Vec<Conversation>, DatasetError> {
    let mut conversations = match config.kind {
        CustomDatasetType::SingleTurn => single_turn::load(config),
        CustomDatasetType::MultiTurn => multi_turn::load(config),
        CustomDatasetType::MooncakeTrace => mooncake::load(config),
    }?;
    if let Some(lengths) = &config.output_tokens {
        let mut rng = rng_for(config.seed, OUTPUT_LENGTH_STREAM);
        let unset = conversations
            .iter_mut()
            .flat_map(|conversation| &mut conversation.turns)
            .filter(|turn| turn.input.max_output_tokens.is_none());
        for turn in unset {
            turn.input.max_output_tokens = Some(lengths.sample(&mut rng));
        }
    }
    Ok(conversations)
}

/// The random stream of the output lengths `--osl` gives a file's turns.
const OUTPUT_LENGTH_STREAM: u64 = 0x6f73_6c73;

/// Counts the tokens of each text, in order, spread over the machine's cores (a large file's
/// prompts take seconds to tokenize on one).
pub(crate) fn count_texts<'a>(
    tokenizer: &Tokenizer,
    texts: impl Iterator<Item = &'a str>,
) -> Result<Vec<u64>, TokenizerError> {
    let texts: Vec<&str> = texts.collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Below this many texts a thread costs more than it saves.
    const PER_THREAD: usize = 256;
    let chunk = texts.len().div_ceil(threads).max(PER_THREAD);
    if texts.len() <= chunk {
        return texts.iter().map(|text| tokenizer.try_count(text)).collect();
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = texts
            .chunks(chunk)
            .map(|texts| {
                scope.spawn(move || {
                    texts
                        .iter()
                        .map(|text| tokenizer.try_count(text))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut counts = Vec::with_capacity(texts.len());
        for worker in workers {
            counts.extend(worker.join().expect("counting tokens does not panic")?);
        }
        Ok(counts)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_from_and_print_as_their_aiperf_names() {
        for kind in CustomDatasetType::ALL {
            assert_eq!(kind.name().parse(), Ok(kind));
            assert_eq!(kind.to_string(), kind.name());
        }
        let error = "random_pool"
            .parse::<CustomDatasetType>()
            .expect_err("unknown");
        assert!(
            error
                .to_string()
                .contains("single_turn, multi_turn or mooncake_trace")
        );
    }

    #[test]
    fn counts_come_back_in_order_whether_spread_or_not() {
        let tokenizer = Tokenizer::builtin();
        let texts: Vec<String> = (0..1000).map(|i| " the".repeat(i % 7 + 1)).collect();
        let counts = count_texts(&tokenizer, texts.iter().map(String::as_str)).expect("counts");
        let expected: Vec<u64> = (0..1000).map(|i| (i % 7 + 1) as u64).collect();
        assert_eq!(counts, expected);
        let few = count_texts(&tokenizer, ["a b", ""].into_iter()).expect("counts");
        assert_eq!(few, [2, 0]);
    }
}
