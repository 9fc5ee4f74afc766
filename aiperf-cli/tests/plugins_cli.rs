//! `aiperf plugins`, run as the real binary: the listings people read (compared whole, as
//! snapshots), the JSON scripts read, the errors for unknown names, `--use-implementation` and
//! `--validate`.
//!
//! The binary's plugin set depends on aiperf-cli's features, so the snapshots do too: run
//! `cargo test -p aiperf-cli --features nvidia-optimized-endpoints` for the plugin's side.

use std::process::Output;

use serde_json::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const PLUGIN_ON: bool = cfg!(feature = "nvidia-optimized-endpoints");

fn aiperf(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_aiperf"))
        .args(args)
        .output()
        .expect("the aiperf binary runs")
}

fn stdout_of(args: &[&str]) -> String {
    let output = aiperf(args);
    assert!(
        output.status.success(),
        "aiperf {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the listing is UTF-8")
}

fn json_of(args: &[&str]) -> Value {
    serde_json::from_str(&stdout_of(args)).expect("--json prints JSON")
}

/// The implementations of `endpoint chat`, as `(type, crate, is_plugin, is_selected)`.
fn chat_implementations(extra: &[&str]) -> Vec<(String, String, bool, bool)> {
    let mut args = vec!["plugins", "endpoint", "chat", "--json"];
    args.extend(extra);
    let listing = json_of(&args);
    assert_eq!(listing["category"], "endpoint");
    assert_eq!(listing["name"], "chat");
    listing["implementations"]
        .as_array()
        .expect("implementations is a list")
        .iter()
        .map(|i| {
            (
                i["type_name"].as_str().unwrap().to_owned(),
                i["crate"].as_str().unwrap().to_owned(),
                i["is_plugin"].as_bool().unwrap(),
                i["is_selected"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn row(type_name: &str, krate: &str, plugin: bool, selected: bool) -> (String, String, bool, bool) {
    (type_name.to_owned(), krate.to_owned(), plugin, selected)
}

#[test]
fn endpoint_listing_snapshot() {
    let expected = if PLUGIN_ON {
        format!(
            "\
endpoint: API shapes: how a request payload is written and how responses are parsed
  NAME              TYPE                          CRATE                       VERSION  PRIORITY  KIND     WIRE
  chat            * OptimizedChatEndpoint         nvidia-optimized-endpoints  0.1.0    0         plugin   http
                    ChatEndpoint                  aiperf-endpoints            {VERSION}    -         builtin
  completions     * OptimizedCompletionsEndpoint  nvidia-optimized-endpoints  0.1.0    0         plugin   http
                    CompletionsEndpoint           aiperf-endpoints            {VERSION}    -         builtin
  embeddings      * OptimizedEmbeddingsEndpoint   nvidia-optimized-endpoints  0.1.0    0         plugin   http
                    EmbeddingsEndpoint            aiperf-endpoints            {VERSION}    -         builtin
  kserve          * KServeEndpoint                aiperf-endpoints            {VERSION}    -         builtin  grpc
  triton_generate * TritonGenerateEndpoint        aiperf-endpoints            {VERSION}    -         builtin  http

* selected. Details: aiperf plugins CATEGORY NAME. Switch: --use-implementation CATEGORY.NAME=TYPE_OR_CRATE
"
        )
    } else {
        format!(
            "\
endpoint: API shapes: how a request payload is written and how responses are parsed
  NAME              TYPE                    CRATE             VERSION  PRIORITY  KIND     WIRE
  chat            * ChatEndpoint            aiperf-endpoints  {VERSION}    -         builtin  http
  completions     * CompletionsEndpoint     aiperf-endpoints  {VERSION}    -         builtin  http
  embeddings      * EmbeddingsEndpoint      aiperf-endpoints  {VERSION}    -         builtin  http
  kserve          * KServeEndpoint          aiperf-endpoints  {VERSION}    -         builtin  grpc
  triton_generate * TritonGenerateEndpoint  aiperf-endpoints  {VERSION}    -         builtin  http

* selected. Details: aiperf plugins CATEGORY NAME. Switch: --use-implementation CATEGORY.NAME=TYPE_OR_CRATE
"
        )
    };
    assert_eq!(stdout_of(&["plugins", "endpoint"]), expected);
}

#[test]
fn chat_detail_snapshot() {
    let builtin = format!(
        "  ChatEndpoint
    crate:       aiperf-endpoints {VERSION}
    kind:        builtin
    description: OpenAI chat completions (/v1/chat/completions): messages in, content and reasoning out, streaming or not
"
    );
    let expected = if PLUGIN_ON {
        format!(
            "\
endpoint chat: 2 implementations

* OptimizedChatEndpoint (selected)
    crate:       nvidia-optimized-endpoints 0.1.0
    kind:        plugin, priority 0
    description: aiperf plugin: NVIDIA NIM endpoints with nvext (exact output length) and a cheaper per-request path.

{builtin}
Switch with --use-implementation endpoint.chat=ChatEndpoint
"
        )
    } else {
        format!(
            "endpoint chat: 1 implementation\n\n{}",
            builtin.replacen("  ChatEndpoint", "* ChatEndpoint (selected)", 1)
        )
    };
    assert_eq!(stdout_of(&["plugins", "endpoint", "chat"]), expected);
}

#[test]
fn the_plugin_is_selected_and_the_builtin_still_listed() {
    let listed = chat_implementations(&[]);
    if PLUGIN_ON {
        assert_eq!(
            listed,
            [
                row(
                    "OptimizedChatEndpoint",
                    "nvidia-optimized-endpoints",
                    true,
                    true
                ),
                row("ChatEndpoint", "aiperf-endpoints", false, false),
            ]
        );
    } else {
        assert_eq!(
            listed,
            [row("ChatEndpoint", "aiperf-endpoints", false, true)]
        );
    }
}

#[test]
fn use_implementation_switches_by_type_or_crate() {
    for choice in [
        "endpoint.chat=ChatEndpoint",
        "endpoint.chat=aiperf-endpoints",
    ] {
        let listed = chat_implementations(&["--use-implementation", choice]);
        let selected: Vec<_> = listed.iter().filter(|r| r.3).collect();
        assert_eq!(
            selected,
            [&row("ChatEndpoint", "aiperf-endpoints", false, true)]
        );
        assert_eq!(
            listed.len(),
            if PLUGIN_ON { 2 } else { 1 },
            "nothing is unregistered"
        );
    }
}

#[test]
fn overview_lists_every_category_with_its_description() {
    let text = stdout_of(&["plugins"]);
    assert!(text.starts_with(
        "endpoint: API shapes: how a request payload is written and how responses are parsed\n"
    ));
    assert!(text.contains(
        "\ntransport: wire protocols: how payloads reach the server and responses come back\n"
    ));
    let listing = json_of(&["plugins", "--json"]);
    let categories = listing["categories"].as_array().unwrap();
    let names: Vec<&str> = categories
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["endpoint", "transport"]);
    for category in categories {
        assert!(!category["description"].as_str().unwrap().is_empty());
        for name in category["names"].as_array().unwrap() {
            let implementations = name["implementations"].as_array().unwrap();
            let selected = implementations
                .iter()
                .filter(|i| i["is_selected"] == true)
                .count();
            assert_eq!(selected, 1, "exactly one selected: {name}");
            for i in implementations {
                let (type_name, krate) = (
                    i["type_name"].as_str().unwrap(),
                    i["crate"].as_str().unwrap(),
                );
                assert!(
                    text.lines()
                        .any(|l| l.contains(type_name) && l.contains(krate)),
                    "{type_name} ({krate}) is missing from the text listing"
                );
                assert!(
                    !i["description"].as_str().unwrap().is_empty(),
                    "every registered implementation has a description: {i}"
                );
            }
        }
    }
}

#[test]
fn the_category_json_is_the_category_of_the_overview() {
    let overview = json_of(&["plugins", "--json"]);
    let endpoint = json_of(&["plugins", "endpoint", "--json"]);
    assert_eq!(overview["categories"][0], endpoint);
}

#[test]
fn unknown_category_and_name_list_the_known_ones() {
    let output = aiperf(&["plugins", "endpoints"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: unknown category `endpoints`: known categories are endpoint, transport\n"
    );
    let output = aiperf(&["plugins", "endpoint", "chta"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: unknown endpoint `chta`: known endpoints are chat, completions, embeddings, kserve, triton_generate\n"
    );
}

#[test]
fn an_unknown_choice_lists_the_candidates() {
    let output = aiperf(&["plugins", "--use-implementation", "endpoint.chat=Nope"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("endpoint `chat` has no implementation `Nope`: choose a type or crate among"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ChatEndpoint (aiperf-endpoints)"),
        "{stderr}"
    );
    let output = aiperf(&["plugins", "--use-implementation", "chat=ChatEndpoint"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not of the form CATEGORY.NAME="));
}

#[test]
fn validate_instantiates_every_implementation() {
    let text = stdout_of(&["plugins", "--validate"]);
    let report = json_of(&["plugins", "--validate", "--json"]);
    let validations = report["validations"].as_array().unwrap();
    assert_eq!(report["failed"], 0, "{report}");
    let listing = json_of(&["plugins", "--json"]);
    let registered: usize = listing["categories"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["names"].as_array().unwrap())
        .map(|n| n["implementations"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        validations.len(),
        registered,
        "every implementation is validated"
    );
    assert!(validations.iter().all(|v| v["error"].is_null()));
    assert!(
        text.ends_with(&format!(
            "{registered} implementations validated, 0 failed\n"
        )),
        "{text}"
    );
    let only_chat = json_of(&["plugins", "endpoint", "chat", "--validate", "--json"]);
    let chat = only_chat["validations"].as_array().unwrap();
    assert_eq!(chat.len(), if PLUGIN_ON { 2 } else { 1 });
    assert!(
        chat.iter()
            .all(|v| v["category"] == "endpoint" && v["name"] == "chat")
    );
}
