//! The selection rules of DESIGN.md §3, exercised on a registry built from a real linkme
//! registration plus hand-made plugin registrations.

use aiperf_core::endpoint::{
    Endpoint, EndpointCategory, EndpointContext, EndpointMetadata, ParseError, ParsedChunk,
    RequestInput, ResponseText, WireFormat,
};
use aiperf_core::registries::{PluginTable, Registries};
use aiperf_core::registry::{CreateError, Pin, Registration, Registry, RegistryError};
use bytes::Bytes;

/// An endpoint whose payload names its type, so tests can see which one was created.
macro_rules! named_endpoint {
    ($ty:ident) => {
        struct $ty;
        impl Endpoint for $ty {
            fn create(ctx: &EndpointContext) -> Result<Self, CreateError> {
                if ctx.model == "refuse" {
                    return Err(CreateError::new("refused"));
                }
                Ok($ty)
            }
            fn metadata(&self) -> EndpointMetadata {
                EndpointMetadata {
                    path: "/",
                    supports_streaming: false,
                    produces_tokens: true,
                    wire_format: WireFormat::Http,
                }
            }
            fn path(&self) -> &str {
                "/"
            }
            fn format_payload(&self, _: &RequestInput) -> Bytes {
                Bytes::from_static(stringify!($ty).as_bytes())
            }
            fn parse_response(
                &self,
                _: &[u8],
                _: &mut ResponseText,
            ) -> Result<ParsedChunk, ParseError> {
                Ok(ParsedChunk::default())
            }
        }
    };
}

named_endpoint!(BuiltinEcho);
named_endpoint!(PluginA);
named_endpoint!(PluginB);
named_endpoint!(PluginHigh);

aiperf_core::register!(endpoint "echo" => BuiltinEcho, "test builtin");

static PLUGIN_A: Registration<EndpointCategory> =
    Registration::of::<PluginA>("echo", "PluginA", "plugin-a", "1.0.0", "a", 0);
static PLUGIN_HIGH: Registration<EndpointCategory> =
    Registration::of::<PluginHigh>("echo", "PluginHigh", "plugin-high", "1.0.0", "high", 10);

fn created(registry: &Registry<EndpointCategory>) -> Bytes {
    registry
        .create_instance("echo", &EndpointContext::default())
        .unwrap()
        .format_payload(&RequestInput::default())
}

fn selected_type(registry: &Registry<EndpointCategory>) -> String {
    let infos = registry.list_implementations("echo").unwrap();
    let selected: Vec<_> = infos.iter().filter(|i| i.is_selected).collect();
    assert_eq!(selected.len(), 1, "exactly one selected: {infos:?}");
    selected[0].type_name.clone()
}

#[test]
fn builtin_registered_by_linkme_is_selected_alone() {
    let registry = Registry::<EndpointCategory>::builtins();
    assert_eq!(registry.names().collect::<Vec<_>>(), ["echo"]);
    let infos = registry.list_implementations("echo").unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].type_name, "BuiltinEcho");
    assert_eq!(infos[0].crate_name, "aiperf-core");
    assert!(!infos[0].is_plugin && infos[0].is_selected);
    assert_eq!(created(&registry), "BuiltinEcho");
}

#[test]
fn plugin_beats_builtin_and_builtin_stays_listed() {
    let mut registry = Registry::<EndpointCategory>::builtins();
    registry.add_plugin(&PLUGIN_A).unwrap();
    assert_eq!(selected_type(&registry), "PluginA");
    assert_eq!(created(&registry), "PluginA");
    let infos = registry.list_implementations("echo").unwrap();
    assert_eq!(infos.len(), 2);
    assert!(
        infos
            .iter()
            .any(|i| i.type_name == "BuiltinEcho" && !i.is_selected && !i.is_plugin)
    );
}

#[test]
fn higher_priority_plugin_wins_in_either_order() {
    for order in [[&PLUGIN_A, &PLUGIN_HIGH], [&PLUGIN_HIGH, &PLUGIN_A]] {
        let mut registry = Registry::<EndpointCategory>::builtins();
        for plugin in order {
            registry.add_plugin(plugin).unwrap();
        }
        assert_eq!(selected_type(&registry), "PluginHigh");
        assert_eq!(
            registry.list_implementations("echo").unwrap()[0].type_name,
            "PluginHigh"
        );
    }
}

#[test]
fn same_priority_plugins_conflict_naming_both_crates_and_the_ways_out() {
    static BOTH: [Registration<EndpointCategory>; 2] = [
        Registration::of::<PluginA>("echo", "PluginA", "plugin-a", "1.0.0", "a", 0),
        Registration::of::<PluginB>("echo", "PluginB", "plugin-b", "2.0.0", "b", 0),
    ];
    let mut registry = Registry::<EndpointCategory>::builtins();
    let err = registry.discover_plugins(&BOTH, &[]).unwrap_err();
    assert!(matches!(err, RegistryError::Conflict { .. }), "{err:?}");
    let message = err.to_string();
    for needle in [
        "plugin-a",
        "plugin-b",
        "priority",
        "[package.metadata.aiperf.select]",
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
}

#[test]
fn a_pin_settles_a_conflict() {
    static BOTH: [Registration<EndpointCategory>; 2] = [
        Registration::of::<PluginA>("echo", "PluginA", "plugin-a", "1.0.0", "a", 0),
        Registration::of::<PluginB>("echo", "PluginB", "plugin-b", "2.0.0", "b", 0),
    ];
    let pins = [Pin {
        category: "endpoint",
        name: "echo",
        which: "plugin-b",
    }];
    let mut registry = Registry::<EndpointCategory>::builtins();
    registry.discover_plugins(&BOTH, &pins).unwrap();
    assert_eq!(selected_type(&registry), "PluginB");
    // Pins of other categories are ignored by this one.
    let other = [Pin {
        category: "transport",
        name: "echo",
        which: "nothing",
    }];
    let mut registry = Registry::<EndpointCategory>::builtins();
    registry
        .discover_plugins(std::slice::from_ref(&PLUGIN_A), &other)
        .unwrap();
    assert_eq!(selected_type(&registry), "PluginA");
}

#[test]
fn a_pin_can_keep_the_builtin() {
    let pins = [Pin {
        category: "endpoint",
        name: "echo",
        which: "BuiltinEcho",
    }];
    let mut registry = Registry::<EndpointCategory>::builtins();
    registry
        .discover_plugins(std::slice::from_ref(&PLUGIN_HIGH), &pins)
        .unwrap();
    assert_eq!(selected_type(&registry), "BuiltinEcho");
}

#[test]
fn use_implementation_switches_by_type_or_crate_and_keeps_everything_reachable() {
    let mut registry = Registry::<EndpointCategory>::builtins();
    registry.add_plugin(&PLUGIN_A).unwrap();
    registry.use_implementation("echo", "BuiltinEcho").unwrap();
    assert_eq!(created(&registry), "BuiltinEcho");
    registry.use_implementation("echo", "plugin-a").unwrap();
    assert_eq!(created(&registry), "PluginA");
    // A later plugin does not undo an explicit choice.
    registry.add_plugin(&PLUGIN_HIGH).unwrap();
    assert_eq!(created(&registry), "PluginA");
    assert_eq!(registry.list_implementations("echo").unwrap().len(), 3);

    let err = registry.use_implementation("echo", "Nope").unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("BuiltinEcho (aiperf-core)") && message.contains("PluginA (plugin-a)"),
        "{message}"
    );
}

#[test]
fn unknown_name_lists_the_known_names() {
    let registry = Registry::<EndpointCategory>::builtins();
    let err = registry
        .create_instance("chta", &EndpointContext::default())
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "unknown endpoint `chta`: known endpoints are echo"
    );
    assert!(registry.list_implementations("chta").is_err());
}

#[test]
fn creation_errors_name_the_implementation() {
    let registry = Registry::<EndpointCategory>::builtins();
    let ctx = EndpointContext {
        model: "refuse".into(),
        ..Default::default()
    };
    let message = registry
        .create_instance("echo", &ctx)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        message,
        "cannot create endpoint `echo` (BuiltinEcho from aiperf-core): refused"
    );
}

#[test]
fn registries_parse_choices_and_reject_malformed_ones() {
    static TABLE_ENDPOINTS: [Registration<EndpointCategory>; 1] = [Registration::of::<PluginA>(
        "echo", "PluginA", "plugin-a", "1.0.0", "a", 0,
    )];
    let table = PluginTable {
        endpoints: &TABLE_ENDPOINTS,
        ..PluginTable::EMPTY
    };
    let mut registries = Registries::discover(&table).unwrap();
    assert_eq!(
        registries.endpoint.selected("echo").unwrap().type_name,
        "PluginA"
    );
    registries
        .use_implementation("endpoint.echo=BuiltinEcho")
        .unwrap();
    assert_eq!(
        registries.endpoint.selected("echo").unwrap().type_name,
        "BuiltinEcho"
    );
    for bad in [
        "endpoint.echo",
        "echo=BuiltinEcho",
        "endpoint.=X",
        "endpoint.echo=",
    ] {
        assert!(
            matches!(
                registries.use_implementation(bad),
                Err(RegistryError::MalformedChoice(_))
            ),
            "{bad}"
        );
    }
    let err = registries
        .use_implementation("dataset.echo=X")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "unknown category `dataset`: known categories are endpoint, transport"
    );
    let views = registries.categories();
    assert_eq!(views[0].name(), "endpoint");
    let validations = views[0].validate();
    assert_eq!(validations.len(), 2);
    assert!(
        validations.iter().all(|v| v.error.is_none()),
        "{validations:?}"
    );
}
