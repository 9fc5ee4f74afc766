//! The builtin endpoints are registered by linkme under their names, from this crate.

use aiperf_core::endpoint::{EndpointCategory, EndpointContext, WireFormat};
use aiperf_core::registry::Registry;
use aiperf_endpoints as _;

#[test]
fn every_builtin_endpoint_is_registered_from_this_crate() {
    let registry = Registry::<EndpointCategory>::builtins();
    let mut expected = vec![
        (
            "chat",
            "ChatEndpoint",
            "/v1/chat/completions",
            WireFormat::Http,
        ),
        (
            "completions",
            "CompletionsEndpoint",
            "/v1/completions",
            WireFormat::Http,
        ),
        (
            "embeddings",
            "EmbeddingsEndpoint",
            "/v1/embeddings",
            WireFormat::Http,
        ),
        (
            "triton_generate",
            "TritonGenerateEndpoint",
            "/v2/models/m/generate",
            WireFormat::Http,
        ),
    ];
    if cfg!(feature = "kserve") {
        expected.push((
            "kserve",
            "KServeEndpoint",
            "/inference.GRPCInferenceService/ModelInfer",
            WireFormat::Grpc,
        ));
    }
    expected.sort_unstable();
    let names: Vec<&str> = expected.iter().map(|(name, ..)| *name).collect();
    assert_eq!(registry.names().collect::<Vec<_>>(), names);
    let ctx = EndpointContext {
        model: "m".into(),
        ..EndpointContext::default()
    };
    for (name, type_name, path, wire_format) in expected {
        let infos = registry.list_implementations(name).unwrap();
        assert_eq!(infos.len(), 1, "{infos:?}");
        let info = &infos[0];
        assert_eq!(info.type_name, type_name);
        assert_eq!(info.crate_name, "aiperf-endpoints");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert!(info.is_selected && !info.is_plugin);
        assert!(!info.description.is_empty());
        let endpoint = registry.create_instance(name, &ctx).unwrap();
        assert_eq!(endpoint.path(), path);
        assert_eq!(endpoint.metadata().wire_format, wire_format);
    }
}
