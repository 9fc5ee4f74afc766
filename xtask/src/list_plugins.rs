//! `cargo xtask list-plugins`: the plugin registry's build-time view, without building.
//!
//! It runs `cargo metadata` on aiperf-cli with the given features and reports, for every crate
//! declaring `[package.metadata.aiperf.plugins]` among the workspace members and aiperf-cli's
//! dependency graph: what it declares, whether those features link it (and which feature would),
//! which builtin each declaration overrides, and what `aiperf-cli/build.rs` would select or
//! reject. The reading and the rules are `aiperf-cli/build/plugin_manifest.rs`, the module the
//! build script uses, so this report and the build agree.
//!
//! Builtins are found the way the build script finds them: by scanning the `src/` of every
//! linked crate that depends on aiperf-core for `aiperf_core::register!(CATEGORY "NAME" => TYPE`
//! calls. A registration behind a `#[cfg(feature = ...)]` is listed whether or not the feature
//! is on; `aiperf plugins` shows the exact run-time set.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::PathBuf;

use anyhow::Context;
use cargo_metadata::{CargoOpt, DependencyKind, Metadata, MetadataCommand, Package};
use serde::Serialize;

use crate::plugin_manifest::{self, Builtin, Declaration, NameSelection, PinDecl};
use crate::workspace;

/// The binary whose dependency graph decides what is enabled.
const BINARY_PACKAGE: &str = "aiperf-cli";

/// Arguments of `cargo xtask list-plugins`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Features of aiperf-cli to resolve with (repeatable, or comma-separated), as for
    /// `cargo build -p aiperf-cli --features ...`.
    #[arg(long, short = 'F', value_delimiter = ',')]
    features: Vec<String>,
    /// Resolve without aiperf-cli's default features.
    #[arg(long)]
    no_default_features: bool,
    /// Resolve with every feature of aiperf-cli.
    #[arg(long)]
    all_features: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the command; `Ok(false)` when the metadata has errors or conflicts (exit status 1).
pub fn run(args: Args) -> anyhow::Result<bool> {
    let report = Report::gather(&args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(report.errors.is_empty())
}

/// Everything the command reports.
#[derive(Debug, Serialize)]
struct Report {
    /// The features resolved with, as given.
    features: Vec<String>,
    no_default_features: bool,
    all_features: bool,
    /// Every plugin crate found.
    plugins: Vec<PluginReport>,
    /// What build.rs would select for every name a linked plugin or a pin touches.
    selections: Vec<NameSelection>,
    /// aiperf-cli's `[package.metadata.aiperf.select]`.
    pins: Vec<PinDecl>,
    /// The builtins found in the linked crates' sources.
    builtins: Vec<Builtin>,
    /// Problems build.rs would fail on, as it would word them.
    errors: Vec<String>,
}

#[derive(Debug, Serialize)]
struct PluginReport {
    #[serde(rename = "crate")]
    krate: String,
    version: String,
    manifest_path: PathBuf,
    workspace_member: bool,
    /// Whether aiperf-cli links it under these features.
    enabled: bool,
    /// aiperf-cli's features that pull it in (for an optional dependency).
    enabled_by: Vec<String>,
    declarations: Vec<DeclarationReport>,
}

#[derive(Debug, Serialize)]
struct DeclarationReport {
    #[serde(flatten)]
    declaration: Declaration,
    /// Builtins registered under the same category and name.
    overrides: Vec<Builtin>,
    /// Whether build.rs would select it (only for enabled crates without conflicts).
    selected: bool,
}

impl Report {
    fn gather(args: &Args) -> anyhow::Result<Self> {
        let metadata = query(args)?;
        let binary = metadata
            .workspace_packages()
            .into_iter()
            .find(|p| p.name == BINARY_PACKAGE)
            .with_context(|| format!("the workspace has no `{BINARY_PACKAGE}` package"))?;
        let reached = plugin_manifest::normal_dependency_closure(&metadata, &binary.id);
        let mut errors: Vec<String> = Vec::new();

        // Builtins of the linked crates, as build.rs scans them.
        let mut builtins = Vec::new();
        for r in reached
            .iter()
            .filter(|r| plugin_manifest::depends_on_core(r.package))
        {
            let (found, _) = plugin_manifest::scan_builtins(r.package)
                .with_context(|| format!("cannot read the sources of `{}`", r.package.name))?;
            builtins.extend(found);
        }

        // Candidates: workspace members, then the linked crates.
        let linked: BTreeMap<&str, &plugin_manifest::Reached<'_>> = reached
            .iter()
            .map(|r| (r.package.id.repr.as_str(), r))
            .collect();
        let mut candidates: Vec<&Package> = metadata.workspace_packages();
        candidates.extend(reached.iter().map(|r| r.package));
        candidates.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        candidates.dedup_by(|a, b| a.id == b.id);

        let mut plugins = Vec::new();
        let mut linked_plugins = Vec::new();
        for package in candidates {
            let plugin = match plugin_manifest::read_plugin_crate(package) {
                Ok(Some(plugin)) => plugin,
                Ok(None) => continue,
                Err(found) => {
                    errors.extend(found.iter().map(ToString::to_string));
                    continue;
                }
            };
            let reached = linked.get(package.id.repr.as_str());
            if let Some(r) = reached {
                if r.extern_name.is_some() {
                    linked_plugins.push(plugin.clone());
                } else {
                    errors.push(
                        plugin_manifest::PluginError::NotDirect {
                            krate: plugin.package.clone(),
                            via: format!("{BINARY_PACKAGE} -> {}", r.via.join(" -> ")),
                            root: BINARY_PACKAGE.to_owned(),
                        }
                        .to_string(),
                    );
                }
            }
            plugins.push(PluginReport {
                enabled: reached.is_some(),
                enabled_by: features_enabling(binary, package),
                workspace_member: metadata.workspace_members.contains(&package.id),
                krate: plugin.package.clone(),
                version: plugin.version.clone(),
                manifest_path: plugin.manifest_path.clone(),
                declarations: plugin
                    .declarations
                    .iter()
                    .map(|d| DeclarationReport {
                        overrides: builtins
                            .iter()
                            .filter(|b| b.category == d.category && b.name == d.name)
                            .cloned()
                            .collect(),
                        declaration: d.clone(),
                        selected: false,
                    })
                    .collect(),
            });
        }

        let pins = plugin_manifest::read_pins(binary).unwrap_or_else(|found| {
            errors.extend(found.iter().map(ToString::to_string));
            Vec::new()
        });
        let selected = plugin_manifest::select(&linked_plugins, &builtins, &pins, BINARY_PACKAGE);
        errors.extend(selected.errors.iter().map(ToString::to_string));
        let selections = selected.selections;
        for plugin in plugins.iter_mut().filter(|p| p.enabled) {
            for d in &mut plugin.declarations {
                d.selected = selections.iter().any(|s| {
                    s.category == d.declaration.category
                        && s.name == d.declaration.name
                        && s.winner().is_plugin
                        && s.winner().krate == plugin.krate
                });
            }
        }
        Ok(Self {
            features: args.features.clone(),
            no_default_features: args.no_default_features,
            all_features: args.all_features,
            plugins,
            selections,
            pins,
            builtins,
            errors,
        })
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let mut how = Vec::new();
        if self.all_features {
            how.push("--all-features".to_owned());
        }
        if self.no_default_features {
            how.push("--no-default-features".to_owned());
        }
        if !self.features.is_empty() {
            how.push(format!("--features {}", self.features.join(",")));
        }
        let how = if how.is_empty() {
            "default features".to_owned()
        } else {
            how.join(" ")
        };
        let _ = writeln!(out, "Plugin crates ({BINARY_PACKAGE} with {how}):");
        if self.plugins.is_empty() {
            out.push_str("  none: no crate declares [package.metadata.aiperf.plugins]\n");
        }
        for p in &self.plugins {
            let origin = if p.workspace_member {
                "workspace member"
            } else {
                "dependency"
            };
            let state = match (p.enabled, p.enabled_by.as_slice()) {
                (true, _) => "ENABLED".to_owned(),
                (false, []) => "not enabled (not a dependency of aiperf-cli)".to_owned(),
                (false, features) => format!(
                    "not enabled (enable with --features {})",
                    features.join(" or --features ")
                ),
            };
            let _ = writeln!(
                out,
                "\n  {} {}  [{origin}]  {state}\n    {}",
                p.krate,
                p.version,
                p.manifest_path.display()
            );
            let width = p
                .declarations
                .iter()
                .map(|d| d.declaration.key().len())
                .max()
                .unwrap_or(0);
            let path_width = p
                .declarations
                .iter()
                .map(|d| d.declaration.type_path.len())
                .max()
                .unwrap_or(0);
            for d in &p.declarations {
                let overrides = if d.overrides.is_empty() {
                    "new name (no builtin)".to_owned()
                } else {
                    let names: Vec<String> = d
                        .overrides
                        .iter()
                        .map(|b| format!("{} ({})", b.type_name, b.krate))
                        .collect();
                    let verb = if p.enabled {
                        "overrides"
                    } else {
                        "would override"
                    };
                    format!("{verb} builtin {}", names.join(", "))
                };
                let selected = if d.selected { "  [selected]" } else { "" };
                let _ = writeln!(
                    out,
                    "    {:<width$}  {:<path_width$}  priority {}  {overrides}{selected}",
                    d.declaration.key(),
                    d.declaration.type_path,
                    d.declaration.priority,
                );
            }
        }
        if !self.pins.is_empty() {
            out.push_str("\nPins ([package.metadata.aiperf.select] of aiperf-cli):\n");
            for pin in &self.pins {
                let _ = writeln!(out, "  {}.{} = {:?}", pin.category, pin.name, pin.which);
            }
        }
        out.push_str(
            "\nSelection build.rs would make (names an enabled plugin or a pin touches):\n",
        );
        if self.selections.is_empty() {
            out.push_str("  none\n");
        }
        for s in &self.selections {
            let others: Vec<String> = s
                .candidates
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != s.selected)
                .map(|(_, c)| c.to_string())
                .collect();
            let why = match &s.pinned {
                Some(which) => format!("pinned to {which:?}"),
                None if s.winner().is_plugin => format!("plugin, priority {}", s.winner().priority),
                None => "builtin".to_owned(),
            };
            let _ = writeln!(
                out,
                "  {}.{}: {} ({why}){}",
                s.category,
                s.name,
                s.winner(),
                if others.is_empty() {
                    String::new()
                } else {
                    format!("; also listed: {}", others.join(", "))
                }
            );
        }
        if self.errors.is_empty() {
            out.push_str("\nConflicts and errors: none\n");
        } else {
            let _ = writeln!(
                out,
                "\nConflicts and errors (build.rs would fail on these): {}",
                self.errors.len()
            );
            for e in &self.errors {
                let _ = writeln!(out, "- {}", e.replace('\n', "\n  "));
            }
        }
        out
    }
}

/// `cargo metadata` on aiperf-cli with the requested features, for the host platform.
fn query(args: &Args) -> anyhow::Result<Metadata> {
    let mut command = MetadataCommand::new();
    command.manifest_path(workspace::root()?.join(BINARY_PACKAGE).join("Cargo.toml"));
    if args.no_default_features {
        command.features(CargoOpt::NoDefaultFeatures);
    }
    if args.all_features {
        command.features(CargoOpt::AllFeatures);
    }
    if !args.features.is_empty() {
        command.features(CargoOpt::SomeFeatures(args.features.clone()));
    }
    let host = host_triple()?;
    command.other_options(vec!["--filter-platform".to_owned(), host]);
    command
        .exec()
        .context("cannot run `cargo metadata` on aiperf-cli (check the feature names)")
}

/// The host target triple, from `rustc -vV`.
fn host_triple() -> anyhow::Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = std::process::Command::new(rustc)
        .arg("-vV")
        .output()
        .context("cannot run `rustc -vV` to learn the host platform")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` printed no `host:` line")
}

/// aiperf-cli's features that enable `plugin` as an optional dependency: a feature listing
/// `dep:NAME`, `NAME` or `NAME/feature` (not the weak `NAME?/feature`), directly or through
/// other features.
fn features_enabling(binary: &Package, plugin: &Package) -> Vec<String> {
    let dep_names: BTreeSet<&str> = binary
        .dependencies
        .iter()
        .filter(|d| d.kind == DependencyKind::Normal && d.optional && d.name == *plugin.name)
        .map(|d| d.rename.as_deref().unwrap_or(&d.name))
        .collect();
    if dep_names.is_empty() {
        return Vec::new();
    }
    // `dep:NAME`, `NAME` and `NAME/feature` enable the dependency; `NAME?/feature` does not.
    let direct = |values: &[String]| {
        values.iter().any(|v| {
            let v = v.strip_prefix("dep:").unwrap_or(v);
            !v.contains("?/") && dep_names.contains(v.split('/').next().unwrap_or(v))
        })
    };
    let mut enabling: BTreeSet<&str> = binary
        .features
        .iter()
        .filter(|(_, values)| direct(values))
        .map(|(name, _)| name.as_str())
        .collect();
    loop {
        let more: Vec<&str> = binary
            .features
            .iter()
            .filter(|(name, values)| {
                !enabling.contains(name.as_str())
                    && values.iter().any(|v| enabling.contains(v.as_str()))
            })
            .map(|(name, _)| name.as_str())
            .collect();
        if more.is_empty() {
            break;
        }
        enabling.extend(more);
    }
    if enabling.is_empty() {
        // An optional dependency with no feature naming it gets an implicit feature of its name.
        return dep_names.into_iter().map(str::to_owned).collect();
    }
    enabling.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn package(name: &str, dependencies: Value, features: Value) -> Package {
        serde_json::from_value(json!({
            "name": name, "version": "0.1.0", "id": format!("path+file:///w/{name}#0.1.0"),
            "source": null, "description": null, "dependencies": dependencies, "targets": [],
            "features": features, "manifest_path": format!("/w/{name}/Cargo.toml"),
            "metadata": null, "publish": null, "authors": [], "categories": [], "keywords": [],
            "edition": "2024", "links": null, "default_run": null, "rust_version": null
        }))
        .expect("the test package is well formed")
    }

    fn dependency(name: &str, rename: Option<&str>, optional: bool) -> Value {
        json!({
            "name": name, "source": null, "req": "*", "kind": null, "rename": rename,
            "optional": optional, "uses_default_features": true, "features": [],
            "target": null, "registry": null, "path": format!("/w/{name}")
        })
    }

    #[test]
    fn features_enabling_a_plugin_follow_dep_names_renames_and_feature_chains() {
        let plugin = package("fast-chat", json!([]), json!({}));
        let binary = package(
            "aiperf-cli",
            json!([dependency("fast-chat", Some("fast"), true)]),
            json!({
                "default": ["http"],
                "http": [],
                "fast-plugin": ["dep:fast"],
                "all-plugins": ["fast-plugin"],
                "fast-extras": ["fast/extras"],
                "weak-extras": ["fast?/extras"]
            }),
        );
        assert_eq!(
            features_enabling(&binary, &plugin),
            ["all-plugins", "fast-extras", "fast-plugin"]
        );
    }

    #[test]
    fn an_optional_dependency_without_a_feature_has_an_implicit_one() {
        let plugin = package("fast-chat", json!([]), json!({}));
        let binary = package(
            "aiperf-cli",
            json!([dependency("fast-chat", None, true)]),
            json!({"default": []}),
        );
        assert_eq!(features_enabling(&binary, &plugin), ["fast-chat"]);
        let required = package(
            "aiperf-cli",
            json!([dependency("fast-chat", None, false)]),
            json!({}),
        );
        assert!(features_enabling(&required, &plugin).is_empty());
    }
}
