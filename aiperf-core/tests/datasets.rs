//! Datasets from files the tests write themselves: HuggingFace tokenizers, the three custom
//! dataset formats, prefixes, and the parsers under arbitrary input (proptest).

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aiperf_core::dataset::custom::{self, CustomDatasetConfig};
use aiperf_core::dataset::mooncake::{self, TraceEntry, TraceInput};
use aiperf_core::dataset::single_turn::{self, TurnEntry};
use aiperf_core::dataset::{
    CustomDatasetType, DatasetError, LineError, PrefixConfig, PromptWords, multi_turn,
};
use aiperf_core::endpoint::Role;
use aiperf_core::tokenizer::{Tokenizer, TokenizerError};
use proptest::prelude::*;
use serde_json::{Value, json};

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("the temp dir is writable");
    path
}

fn load(
    path: &Path,
    kind: CustomDatasetType,
) -> Result<Vec<aiperf_core::dataset::Conversation>, DatasetError> {
    custom::load(&CustomDatasetConfig::new(
        path.to_owned(),
        kind,
        Tokenizer::builtin(),
    )?)
}

/// A tiny BPE tokenizer.json: letters a, b, c, merges "a b" then "ab c", whitespace split.
fn tiny_bpe() -> String {
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4},
            "merges": ["a b", "ab c"]
        }
    })
    .to_string()
}

/// A word-level tokenizer.json over `words` (no unknown token).
fn word_level(words: &[&str]) -> String {
    let vocab: serde_json::Map<String, Value> = words
        .iter()
        .enumerate()
        .map(|(i, word)| ((*word).to_owned(), json!(i)))
        .collect();
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    })
    .to_string()
}

/// A GPT-2-style byte-level BPE tokenizer.json that knows `words` (each with its leading
/// space, `Ġ` in byte-level form) as single tokens, built from their letters by merges.
fn byte_level_bpe(words: &[&str]) -> String {
    let mut vocab = serde_json::Map::new();
    let mut merges: Vec<String> = Vec::new();
    let add = |token: &str, vocab: &mut serde_json::Map<String, Value>| {
        if !vocab.contains_key(token) {
            let id = vocab.len();
            vocab.insert(token.to_owned(), json!(id));
        }
    };
    for word in words {
        let symbols: Vec<String> = word
            .chars()
            .map(|c| {
                if c == ' ' {
                    "\u{120}".to_owned()
                } else {
                    c.to_string()
                }
            })
            .collect();
        symbols.iter().for_each(|symbol| add(symbol, &mut vocab));
        let mut prefix = symbols[0].clone();
        for symbol in &symbols[1..] {
            let merge = format!("{prefix} {symbol}");
            if !merges.contains(&merge) {
                merges.push(merge);
            }
            prefix.push_str(symbol);
            add(&prefix, &mut vocab);
        }
    }
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": merges}
    })
    .to_string()
}

#[test]
fn synthetic_prompts_have_exact_lengths_for_a_byte_level_bpe_tokenizer() {
    use aiperf_core::dataset::synthetic::{self, LengthDistribution, SyntheticConfig};
    use aiperf_core::vocabulary::WORDS;

    let dir = tempfile::tempdir().expect("a temp dir");
    write(dir.path(), "tokenizer.json", &byte_level_bpe(&WORDS[..30]));
    let tokenizer = Tokenizer::from_path(dir.path()).expect("valid");
    assert_eq!(tokenizer.count(" the"), 1);
    assert_eq!(tokenizer.count(" the of and"), 3);
    assert_eq!(
        tokenizer.count(" then"),
        2,
        "the, then n: not a word of its own"
    );
    let prompt_words = PromptWords::for_tokenizer(&tokenizer).expect("30 known words");
    assert_eq!(prompt_words.len(), 30);
    let conversations = synthetic::generate(&SyntheticConfig {
        input_tokens: LengthDistribution::normal(200, 50.0),
        entries: 20,
        prompt_words,
        prefix: PrefixConfig {
            num_prefix_prompts: 2,
            prefix_prompt_length: 16,
            shared_system_prompt_length: 8,
            system_prompt: None,
        },
        ..SyntheticConfig::default()
    });
    for conversation in conversations {
        let turn = &conversation.turns[0];
        let counted: u64 = turn
            .input
            .messages
            .iter()
            .map(|m| tokenizer.count(&m.content))
            .sum();
        assert_eq!(Some(counted), turn.input_tokens);
    }
}

#[test]
fn a_bpe_tokenizer_json_written_here_loads_and_counts_as_its_merges_say() {
    let dir = tempfile::tempdir().expect("a temp dir");
    write(dir.path(), "tokenizer.json", &tiny_bpe());
    let tokenizer =
        Tokenizer::from_spec(dir.path().to_str().expect("utf-8 path")).expect("a valid BPE");
    assert_eq!(tokenizer.count("abc"), 1);
    assert_eq!(tokenizer.count("ab ab a"), 3);
    assert_eq!(tokenizer.count("ba cab"), 4); // b a | c ab
    assert_eq!(tokenizer.count("abcabc"), 2);
}

#[test]
fn a_missing_tokenizer_is_an_error_naming_it_before_anything_runs() {
    let error = Tokenizer::from_spec("no/such/tokenizer.json").expect_err("missing");
    assert!(matches!(error, TokenizerError::NotFound { .. }));
    assert!(
        error.to_string().contains("no/such/tokenizer.json"),
        "{error}"
    );
}

#[test]
fn single_turn_lines_of_one_session_are_its_turns_in_file_order() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = write(
        dir.path(),
        "sessions.jsonl",
        concat!(
            "{\"text\": \"What is a GPU?\", \"session_id\": \"s\"}\n",
            "{\"text\": \"Alone\"}\n",
            "{\"text\": \"And a TPU?\", \"session_id\": \"s\", \"delay\": 100}\n",
            "{\"text\": \"No id\", \"session_id\": \"\"}\n",
            "{\"text\": \"No id either\", \"session_id\": \"\"}\n",
        ),
    );
    let mut config =
        CustomDatasetConfig::new(path, CustomDatasetType::SingleTurn, Tokenizer::builtin())
            .expect("builtin");
    config.prefix = PrefixConfig {
        num_prefix_prompts: 1,
        prefix_prompt_length: 5,
        ..PrefixConfig::default()
    };
    let conversations = custom::load(&config).expect("valid");
    /// A conversation's id, and each turn's message count and delay.
    type Shape<'a> = (&'a str, Vec<(usize, Option<Duration>)>);
    let shape: Vec<Shape> = conversations
        .iter()
        .map(|c| {
            let turns = c.turns.iter().map(|t| (t.input.messages.len(), t.delay));
            (c.session_id.as_str(), turns.collect())
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("s", vec![(1, None), (1, Some(Duration::from_millis(100)))]),
            ("single_turn-2", vec![(1, None)]),
            // An empty id is none, as in AIPerf: each such line is a conversation of its own.
            ("single_turn-4", vec![(1, None)]),
            ("single_turn-5", vec![(1, None)]),
        ]
    );
    let texts: Vec<&str> = conversations[0]
        .turns
        .iter()
        .map(|t| t.input.messages[0].content.as_str())
        .collect();
    assert!(texts[0].ends_with(" What is a GPU?") && texts[0].len() > "What is a GPU?".len());
    assert_eq!(
        texts[1], "And a TPU?",
        "the prefix opens the first turn only"
    );
    let tokenizer = Tokenizer::builtin();
    assert_eq!(
        conversations[0].turns[1].input_tokens,
        Some(tokenizer.count("And a TPU?"))
    );
}

#[test]
fn a_single_turn_file_is_read_line_by_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = write(
        dir.path(),
        "prompts.jsonl",
        concat!(
            "{\"text\": \"What is machine learning?\"}\n",
            "\n",
            "{\"texts\": [\"Summarize:\", \"the plot of Hamlet\"], \"output_length\": 64}\n",
            "{\"text\": \"Who are you?\", \"timestamp\": 1000, \"session_id\": \"mine\"}\n",
            "{\"text\": \"What is AI?\", \"delay\": 250}\n",
        ),
    );
    let conversations = load(&path, CustomDatasetType::SingleTurn).expect("a valid file");
    let ids: Vec<&str> = conversations
        .iter()
        .map(|c| c.session_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["single_turn-1", "single_turn-3", "mine", "single_turn-5"]
    );
    let tokenizer = Tokenizer::builtin();
    for conversation in &conversations {
        let [turn] = &conversation.turns[..] else {
            panic!("one turn per line");
        };
        let [message] = &turn.input.messages[..] else {
            panic!("one user message");
        };
        assert_eq!(message.role, Role::User);
        assert_eq!(turn.input_tokens, Some(tokenizer.count(&message.content)));
    }
    let turn = |i: usize| &conversations[i].turns[0];
    assert_eq!(
        turn(0).input.messages[0].content,
        "What is machine learning?"
    );
    assert_eq!(
        turn(1).input.messages[0].content,
        "Summarize:\nthe plot of Hamlet"
    );
    assert_eq!(turn(1).input.max_output_tokens, Some(64));
    assert_eq!(turn(2).timestamp, Some(Duration::from_secs(1)));
    assert_eq!(turn(3).delay, Some(Duration::from_millis(250)));
    assert_eq!(turn(0).input.max_output_tokens, None);
}

#[test]
fn single_turn_requests_get_a_seeded_prefix_and_the_shared_system_prompt_exactly_counted() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let lines: String = (0..40)
        .map(|i| format!("{{\"text\": \"question number {i}\"}}\n"))
        .collect();
    let path = write(dir.path(), "prompts.jsonl", &lines);
    let mut config =
        CustomDatasetConfig::new(path, CustomDatasetType::SingleTurn, Tokenizer::builtin())
            .expect("builtin");
    config.prefix = PrefixConfig {
        num_prefix_prompts: 3,
        prefix_prompt_length: 50,
        shared_system_prompt_length: 20,
        system_prompt: None,
    };
    config.seed = 11;
    let conversations = custom::load(&config).expect("valid");
    assert_eq!(conversations, custom::load(&config).expect("valid"));
    let tokenizer = Tokenizer::builtin();
    let mut prefixes = std::collections::HashSet::new();
    let system = &conversations[0].turns[0].input.messages[0];
    for (i, conversation) in conversations.iter().enumerate() {
        let turn = &conversation.turns[0];
        let [first, user] = &turn.input.messages[..] else {
            panic!("system and user messages");
        };
        assert_eq!(
            (first.role, &first.content),
            (Role::System, &system.content)
        );
        assert_eq!(tokenizer.count(&first.content), 20);
        let (prefix, question) = user
            .content
            .rsplit_once(" question")
            .expect("prefix, then the line's text");
        assert_eq!(question, format!(" number {i}"));
        assert_eq!(tokenizer.count(prefix), 50);
        prefixes.insert(prefix.to_owned());
        assert_eq!(
            turn.input_tokens,
            Some(tokenizer.count(&first.content) + tokenizer.count(&user.content))
        );
    }
    assert_eq!(prefixes.len(), 3, "every prefix of the pool is used");
}

#[test]
fn multi_turn_sessions_keep_their_turns_in_order_with_only_each_turns_user_message() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = write(
        dir.path(),
        "chats.jsonl",
        concat!(
            r#"{"session_id": "a", "turns": [{"role": "system", "text": "Be terse."}, {"text": "What is a GPU?"}, {"text": "And a TPU?", "delay": 1000}]}"#,
            "\n",
            r#"{"turns": [{"text": "Hello", "output_length": 5}]}"#,
            "\n",
            r#"{"session_id": "a", "turns": [{"text": "Thanks", "delay": 20.5}]}"#,
            "\n",
        ),
    );
    let conversations = load(&path, CustomDatasetType::MultiTurn).expect("valid");
    let ids: Vec<&str> = conversations
        .iter()
        .map(|c| c.session_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "multi_turn-2"]);
    let a = &conversations[0];
    let texts: Vec<Vec<(Role, &str)>> = a
        .turns
        .iter()
        .map(|turn| {
            turn.input
                .messages
                .iter()
                .map(|m| (m.role, m.content.as_str()))
                .collect()
        })
        .collect();
    assert_eq!(
        texts,
        [
            vec![(Role::System, "Be terse."), (Role::User, "What is a GPU?")],
            vec![(Role::User, "And a TPU?")],
            vec![(Role::User, "Thanks")],
        ]
    );
    let delays: Vec<Option<Duration>> = a.turns.iter().map(|t| t.delay).collect();
    assert_eq!(
        delays,
        [
            None,
            Some(Duration::from_secs(1)),
            Some(Duration::from_micros(20_500))
        ]
    );
    let tokenizer = Tokenizer::builtin();
    assert_eq!(
        a.turns[0].input_tokens,
        Some(tokenizer.count("Be terse.") + tokenizer.count("What is a GPU?"))
    );
    assert_eq!(conversations[1].turns[0].input.max_output_tokens, Some(5));
}

/// The length, in bytes, of the longest common run of whole leading words (each word
/// starting with a space) of `a` and `b`.
fn common_word_prefix(a: &str, b: &str) -> usize {
    a.split(' ')
        .skip(1)
        .zip(b.split(' ').skip(1))
        .take_while(|(x, y)| x == y)
        .map(|(word, _)| 1 + word.len())
        .sum()
}

fn trace_prompts(tokenizer: Tokenizer, trace: &str, block: u32, seed: u64) -> Vec<String> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = write(dir.path(), "trace.jsonl", trace);
    let mut config = CustomDatasetConfig::new(path, CustomDatasetType::MooncakeTrace, tokenizer)
        .expect("prompt words for the tokenizer");
    config.isl_block_size = NonZeroU32::new(block).expect("non-zero");
    config.seed = seed;
    custom::load(&config)
        .expect("a valid trace")
        .into_iter()
        .flat_map(|c| c.turns)
        .map(|turn| turn.input.messages[0].content.clone())
        .collect()
}

#[test]
fn trace_lines_sharing_hash_ids_share_a_prompt_prefix_of_exactly_those_blocks() {
    let trace = concat!(
        r#"{"timestamp": 0, "input_length": 40, "output_length": 4, "hash_ids": [1, 2, 3]}"#,
        "\n",
        r#"{"timestamp": 10, "input_length": 45, "output_length": 4, "hash_ids": [1, 2, 4]}"#,
        "\n",
        r#"{"timestamp": 20, "input_length": 20, "hash_ids": [1, 2]}"#,
        "\n",
        r#"{"timestamp": 30, "input_length": 30}"#,
        "\n",
    );
    let tokenizer = Tokenizer::builtin();
    let prompts = trace_prompts(tokenizer.clone(), trace, 16, 5);
    let counts: Vec<u64> = prompts.iter().map(|p| tokenizer.count(p)).collect();
    assert_eq!(counts, [40, 45, 20, 30]);
    let shared = common_word_prefix(&prompts[0], &prompts[1]);
    assert_eq!(tokenizer.count(&prompts[0][..shared]), 32, "blocks 1 and 2");
    // Line 3's last block (id 2, 4 tokens) is the start of line 1's block 2.
    assert!(prompts[0].starts_with(&prompts[2]));
    assert_eq!(common_word_prefix(&prompts[0], &prompts[3]), 0);
    assert_eq!(prompts, trace_prompts(tokenizer.clone(), trace, 16, 5));
    assert_ne!(prompts, trace_prompts(tokenizer, trace, 16, 6));
}

#[test]
fn trace_prefixes_are_exact_for_a_huggingface_tokenizer_too() {
    // "wa" .. "wz", "waa" .. "wzz", "waaa" ..: none of the builtin words.
    let words: Vec<String> = (0..64u8)
        .map(|i| {
            format!(
                "w{}",
                char::from(b'a' + i % 26)
                    .to_string()
                    .repeat(usize::from(i / 26) + 1)
            )
        })
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().expect("a temp dir");
    write(dir.path(), "tokenizer.json", &word_level(&words));
    let tokenizer = Tokenizer::from_path(dir.path()).expect("valid");
    assert!(
        PromptWords::for_tokenizer(&tokenizer)
            .expect("64 words")
            .len()
            >= 8
    );
    let trace = concat!(
        r#"{"input_length": 25, "hash_ids": [7, 8, 9]}"#,
        "\n",
        r#"{"input_length": 24, "hash_ids": [7, 8, 1]}"#,
        "\n",
    );
    let prompts = trace_prompts(tokenizer.clone(), trace, 10, 1);
    assert_eq!(tokenizer.count(&prompts[0]), 25);
    assert_eq!(tokenizer.count(&prompts[1]), 24);
    let shared = common_word_prefix(&prompts[0], &prompts[1]);
    assert_eq!(tokenizer.count(&prompts[0][..shared]), 20);
}

#[test]
fn malformed_lines_give_the_file_and_line_number_and_what_is_wrong() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let cases = [
        (
            CustomDatasetType::SingleTurn,
            "{\"text\": \"ok\"}\n\n{\"text\": \"ok\", \"output_length\": -5}\n",
            3,
            "field `output_length` must not be negative, found -5",
        ),
        (
            CustomDatasetType::SingleTurn,
            "{\"text\": \"ok\"}\n{\"text\": \"ok\"\n",
            2,
            "invalid JSON at column",
        ),
        (
            CustomDatasetType::MultiTurn,
            "{\"turns\": [{\"text\": \"ok\"}]}\n{\"turns\": [{\"text\": \"ok\"}, {\"texts\": 3}]}\n",
            2,
            "field `turns[1].texts` must be an array, found a number",
        ),
        (
            CustomDatasetType::MooncakeTrace,
            "{\"input_length\": 10}\n{\"output_length\": 10}\n",
            2,
            "missing field `input_length`",
        ),
        (
            CustomDatasetType::MooncakeTrace,
            "{\"input_length\": 2000, \"hash_ids\": [1, 2]}\n",
            1,
            "the last block would hold 1488 tokens",
        ),
    ];
    for (kind, contents, line, what) in cases {
        let path = write(dir.path(), &format!("{kind}.jsonl"), contents);
        let error = load(&path, kind).expect_err(contents);
        assert!(
            matches!(error, DatasetError::Line { line: l, .. } if l == line),
            "{kind}: {error:?}"
        );
        let message = error.to_string();
        let expected_start = format!("{}:{line}: ", path.display());
        assert!(message.starts_with(&expected_start), "{message}");
        assert!(message.contains(what), "{message}");
    }
    let error = load(
        &dir.path().join("absent.jsonl"),
        CustomDatasetType::SingleTurn,
    )
    .expect_err("missing file");
    assert!(matches!(error, DatasetError::Read { .. }));
    assert!(error.to_string().contains("absent.jsonl"), "{error}");
}

/// Arbitrary JSON, with keys the parsers look for mixed with others.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("text".to_owned()),
        Just("texts".to_owned()),
        Just("contents".to_owned()),
        Just("output_length".to_owned()),
        Just("timestamp".to_owned()),
        Just("delay".to_owned()),
        Just("role".to_owned()),
        Just("session_id".to_owned()),
        Just("turns".to_owned()),
        Just("input_length".to_owned()),
        Just("text_input".to_owned()),
        Just("hash_ids".to_owned()),
        "[a-z_]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (0u32..5000).prop_map(Value::from),
        prop_oneof![
            Just("user".to_owned()),
            Just("system".to_owned()),
            ".{0,12}"
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn turn_entry() -> impl Strategy<Value = TurnEntry> {
    (
        "[^\u{0}]{1,40}",
        prop::option::of(1u32..100_000),
        prop_oneof![
            Just((None, None)),
            (0u64..10_000_000).prop_map(|ms| (Some(Duration::from_millis(ms)), None)),
            (0u64..10_000_000).prop_map(|ms| (None, Some(Duration::from_millis(ms)))),
        ],
        prop::option::of("[a-z0-9-]{1,12}"),
    )
        .prop_map(
            |(text, output_length, (timestamp, delay), session_id)| TurnEntry {
                text,
                role: Role::User,
                output_length,
                timestamp,
                delay,
                session_id,
            },
        )
}

fn turn_json(entry: &TurnEntry) -> Value {
    let mut object = serde_json::Map::new();
    object.insert("text".into(), json!(entry.text));
    if let Some(n) = entry.output_length {
        object.insert("output_length".into(), json!(n));
    }
    if let Some(t) = entry.timestamp {
        object.insert("timestamp".into(), json!(t.as_millis() as u64));
    }
    if let Some(d) = entry.delay {
        object.insert("delay".into(), json!(d.as_millis() as u64));
    }
    if let Some(id) = &entry.session_id {
        object.insert("session_id".into(), json!(id));
    }
    Value::Object(object)
}

fn trace_entry() -> impl Strategy<Value = TraceEntry> {
    (
        prop_oneof![
            (1u32..100_000, prop::collection::vec(any::<u64>(), 0..8)).prop_map(
                |(input_length, hash_ids)| TraceInput::Synthetic {
                    input_length,
                    hash_ids
                }
            ),
            "[^\u{0}]{1,40}".prop_map(TraceInput::Text),
        ],
        prop::option::of(1u32..100_000),
        prop::option::of(0u64..10_000_000),
        prop::option::of("[a-z0-9-]{1,12}"),
    )
        .prop_map(|(input, output_length, timestamp, session_id)| TraceEntry {
            input,
            output_length,
            timestamp: timestamp.map(Duration::from_millis),
            delay: None,
            session_id,
        })
}

fn trace_json(entry: &TraceEntry) -> Value {
    let mut object = serde_json::Map::new();
    match &entry.input {
        TraceInput::Synthetic {
            input_length,
            hash_ids,
        } => {
            object.insert("input_length".into(), json!(input_length));
            if !hash_ids.is_empty() {
                object.insert("hash_ids".into(), json!(hash_ids));
            }
        }
        TraceInput::Text(text) => {
            object.insert("text_input".into(), json!(text));
        }
    }
    if let Some(n) = entry.output_length {
        object.insert("output_length".into(), json!(n));
    }
    if let Some(t) = entry.timestamp {
        object.insert("timestamp".into(), json!(t.as_millis() as u64));
    }
    if let Some(id) = &entry.session_id {
        object.insert("session_id".into(), json!(id));
    }
    Value::Object(object)
}

proptest! {
    #[test]
    fn parsers_never_panic_on_arbitrary_json(value in arbitrary_json()) {
        let line = value.to_string();
        let _ = single_turn::parse_line(&line);
        let _ = multi_turn::parse_line(&line);
        let _ = mooncake::parse_line(&line);
        let turns = json!({"turns": [value.clone()]}).to_string();
        let _ = multi_turn::parse_line(&turns);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(line in ".{0,80}") {
        let _ = single_turn::parse_line(&line);
        let _ = multi_turn::parse_line(&line);
        let _ = mooncake::parse_line(&line);
    }

    #[test]
    fn valid_single_turn_lines_round_trip(entry in turn_entry()) {
        let line = turn_json(&entry).to_string();
        prop_assert_eq!(single_turn::parse_line(&line), Ok(entry));
    }

    #[test]
    fn valid_multi_turn_lines_round_trip(
        turns in prop::collection::vec(turn_entry(), 1..5),
        session_id in prop::option::of("[a-z]{1,8}"),
    ) {
        let mut object = json!({"turns": turns.iter().map(turn_json).collect::<Vec<_>>()});
        if let Some(id) = &session_id {
            object["session_id"] = json!(id);
        }
        let entry = multi_turn::parse_line(&object.to_string()).expect("valid");
        prop_assert_eq!(entry.session_id, session_id);
        prop_assert_eq!(entry.turns, turns);
    }

    #[test]
    fn valid_trace_lines_round_trip(entry in trace_entry()) {
        let line = trace_json(&entry).to_string();
        prop_assert_eq!(mooncake::parse_line(&line), Ok(entry));
    }

    #[test]
    fn wrong_types_are_reported_not_accepted(value in arbitrary_json()) {
        prop_assume!(!value.is_string() && !value.is_null());
        let line = json!({"text": value}).to_string();
        let is_wrong_type = matches!(
            single_turn::parse_line(&line),
            Err(LineError::WrongType { .. })
        );
        prop_assert!(is_wrong_type);
    }
}

#[test]
fn a_verbatim_system_prompt_opens_every_format_and_joins_a_sessions_own() {
    use aiperf_core::dataset::SystemPrompt;
    let dir = tempfile::tempdir().expect("a temp dir");
    let tokenizer = Tokenizer::builtin();
    let verbatim = "You are a \"helpful\" assistant.\nAnswer briefly.";
    let files = [
        (
            CustomDatasetType::SingleTurn,
            r#"{"text": "What is a GPU?"}"#,
        ),
        (
            CustomDatasetType::MultiTurn,
            r#"{"turns": [{"role": "system", "text": "Be terse."}, {"text": "What is a GPU?"}, {"text": "And a TPU?"}]}
{"turns": [{"text": "What is a GPU?"}]}"#,
        ),
        (
            CustomDatasetType::MooncakeTrace,
            r#"{"text_input": "What is a GPU?", "timestamp": 0}"#,
        ),
    ];
    for (kind, lines) in files {
        let path = write(dir.path(), &format!("{}.jsonl", kind.name()), lines);
        let mut config = CustomDatasetConfig::new(path, kind, tokenizer.clone()).expect("builtin");
        config.prefix = PrefixConfig {
            system_prompt: Some(SystemPrompt::new(verbatim.to_owned(), &tokenizer).unwrap()),
            ..PrefixConfig::default()
        };
        let conversations = custom::load(&config).expect("valid");
        for conversation in &conversations {
            let first = &conversation.turns[0];
            let [system, user] = &first.input.messages[..] else {
                panic!("{kind:?}: {:?}", first.input.messages);
            };
            assert_eq!((system.role, user.role), (Role::System, Role::User));
            assert_eq!(
                first.input_tokens,
                Some(tokenizer.count(&system.content) + tokenizer.count(&user.content)),
                "{kind:?}: the system prompt is counted"
            );
            for later in &conversation.turns[1..] {
                assert_eq!(later.input.messages.len(), 1, "{kind:?}: first turn only");
            }
        }
        let systems: Vec<&str> = conversations
            .iter()
            .map(|c| c.turns[0].input.messages[0].content.as_str())
            .collect();
        match kind {
            CustomDatasetType::MultiTurn => assert_eq!(
                systems,
                [format!("{verbatim}\n\nBe terse."), verbatim.to_owned()],
                "one message: the verbatim prompt, then the session's own"
            ),
            _ => assert_eq!(systems, [verbatim]),
        }
    }
}
