//! The builtin endpoints are registered by linkme under their names, from this crate.

use aiperf_core::endpoint::{EndpointCategory, EndpointContext};
use aiperf_core::registry::Registry;
use aiperf_endpoints as _;

#[test]
fn chat_completions_and_embeddings_are_registered_from_this_crate() {
    let registry = Registry::<EndpointCategory>::builtins();
    assert_eq!(
        registry.names().collect::<Vec<_>>(),
        ["chat", "completions", "embeddings"]
    );
    for (name, type_name) in [
        ("chat", "ChatEndpoint"),
        ("completions", "CompletionsEndpoint"),
        ("embeddings", "EmbeddingsEndpoint"),
    ] {
        let infos = registry.list_implementations(name).unwrap();
        assert_eq!(infos.len(), 1, "{infos:?}");
        let info = &infos[0];
        assert_eq!(info.type_name, type_name);
        assert_eq!(info.crate_name, "aiperf-endpoints");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert!(info.is_selected && !info.is_plugin);
        assert!(!info.description.is_empty());
        let endpoint = registry
            .create_instance(name, &EndpointContext::default())
            .unwrap();
        assert!(endpoint.path().starts_with("/v1/"));
    }
}
