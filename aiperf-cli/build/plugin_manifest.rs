//! Reading the plugin registry's Cargo metadata: the `[package.metadata.aiperf.plugins.<category>]`
//! declarations of plugin crates, the `[package.metadata.aiperf.select]` pins of the binary, the
//! builtins registered with `aiperf_core::register!`, and the build-time half of the selection
//! rules of DESIGN.md §3 (priority, conflicts, pins).
//!
//! One module, two users, no duplicated logic:
//! - `aiperf-cli/build.rs` `#[path]`-includes it to generate the plugin override table
//!   (see `plugin_table_gen.rs`) and to fail the build on bad metadata;
//! - `cargo xtask list-plugins` `#[path]`-includes it to report the same facts without building.
//!
//! It depends only on `cargo_metadata`, `serde` and `thiserror`, which both users have. The
//! run-time half of the rules lives in `aiperf_core::registry`; the two agree by construction:
//! this module only rejects what the run-time registry would reject at start-up.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use cargo_metadata::{DependencyKind, Metadata, Package, PackageId};
use serde::Serialize;
use serde_json::Value;

/// A registry category as the build script and xtask see it. Mirrors the categories declared with
/// `aiperf_core::define_category!` and the fields of `aiperf_core::registries::PluginTable`; a
/// test of aiperf-cli checks that the two lists agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategorySpec {
    /// The category's name (`endpoint`), the key under `[package.metadata.aiperf.plugins]`.
    pub name: &'static str,
    /// The `PluginTable` field holding its plugins (`endpoints`).
    pub table_field: &'static str,
    /// The category's marker type, as generated code names it.
    pub category_type: &'static str,
    /// The trait an implementation must implement, for messages.
    pub trait_name: &'static str,
}

/// Every category, in display order.
pub const CATEGORIES: [CategorySpec; 2] = [
    CategorySpec {
        name: "endpoint",
        table_field: "endpoints",
        category_type: "::aiperf_core::endpoint::EndpointCategory",
        trait_name: "aiperf_core::endpoint::Endpoint",
    },
    CategorySpec {
        name: "transport",
        table_field: "transports",
        category_type: "::aiperf_core::transport::TransportCategory",
        trait_name: "aiperf_core::transport::Transport",
    },
];

/// The category called `name`.
pub fn category(name: &str) -> Option<&'static CategorySpec> {
    CATEGORIES.iter().find(|c| c.name == name)
}

fn known_categories() -> String {
    CATEGORIES
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The package that defines the registry; crates depending on it may register builtins.
pub const CORE_CRATE: &str = "aiperf-core";

/// One implementation a plugin crate declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Declaration {
    /// The category (`endpoint`).
    pub category: &'static str,
    /// The name it registers under (`chat`).
    pub name: String,
    /// The type path as written, without a leading `::` (`my_plugin::FastChat`).
    pub type_path: String,
    /// The path's last segment (`FastChat`), which `--use-implementation` accepts.
    pub type_name: String,
    /// Higher wins between plugins of the same name.
    pub priority: i32,
    /// The table form's `description`, if given.
    pub description: Option<String>,
}

impl Declaration {
    /// `category.name`, as pins and `--use-implementation` write it.
    pub fn key(&self) -> String {
        format!("{}.{}", self.category, self.name)
    }

    /// The metadata key that declared it, for messages: `[package.metadata.aiperf.plugins.endpoint] chat`.
    pub fn metadata_key(&self) -> String {
        format!(
            "[package.metadata.aiperf.plugins.{}] {}",
            self.category, self.name
        )
    }
}

/// A crate that declares plugins, with its declarations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginCrate {
    /// The package name (`nvidia-optimized-endpoints`).
    pub package: String,
    /// Its version.
    pub version: String,
    /// Its library's crate name (`nvidia_optimized_endpoints`), which type paths start with.
    pub lib_name: String,
    /// Its manifest.
    pub manifest_path: PathBuf,
    /// The package description, used for implementations declared without one.
    pub description: Option<String>,
    /// What it declares, by category then name.
    pub declarations: Vec<Declaration>,
}

/// A build-time choice from the binary's `[package.metadata.aiperf.select]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinDecl {
    /// The category.
    pub category: &'static str,
    /// The registered name.
    pub name: String,
    /// A crate name or a type name.
    pub which: String,
}

/// A builtin found in a crate's sources: an `aiperf_core::register!(CATEGORY "NAME" => TYPE, ...)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Builtin {
    /// The category.
    pub category: String,
    /// The registered name.
    pub name: String,
    /// The type as written in the macro call (what the run-time registry records).
    pub type_name: String,
    /// The crate whose sources hold the call.
    #[serde(rename = "crate")]
    pub krate: String,
}

/// Everything that can be wrong with plugin metadata or with the selection it leads to. Each
/// message names the crate and key concerned and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// A category that no registry has.
    #[error(
        "crate `{krate}` declares [package.metadata.aiperf.plugins.{category}], but `{category}` is not a category \
         (known categories: {known}); fix the table name in {manifest}"
    )]
    UnknownCategory {
        /// The plugin crate.
        krate: String,
        /// The category written.
        category: String,
        /// Every category.
        known: String,
        /// The crate's manifest.
        manifest: String,
    },
    /// A type path that is not `lib_name::path::Type`.
    #[error(
        "crate `{krate}`: {key} = \"{path}\" is not a usable type path: {reason}; write it as \"{lib}::TypeName\" \
         (in {manifest})"
    )]
    MalformedTypePath {
        /// The plugin crate.
        krate: String,
        /// The metadata key.
        key: String,
        /// The path as written.
        path: String,
        /// What is wrong with it.
        reason: String,
        /// The crate's library name.
        lib: String,
        /// The crate's manifest.
        manifest: String,
    },
    /// An entry or table of the wrong shape (not a string or table, bad priority, unknown key).
    #[error("crate `{krate}`: {key}: {reason} (in {manifest})")]
    MalformedEntry {
        /// The crate.
        krate: String,
        /// The metadata key.
        key: String,
        /// What is wrong and what is expected.
        reason: String,
        /// The crate's manifest.
        manifest: String,
    },
    /// A crate declaring plugins without a library to name them in.
    #[error(
        "crate `{krate}` declares [package.metadata.aiperf.plugins] but has no library target: \
         plugins must be library crates (in {manifest})"
    )]
    NoLibrary {
        /// The crate.
        krate: String,
        /// Its manifest.
        manifest: String,
    },
    /// A plugin crate reached only through another crate, which the binary cannot name.
    #[error(
        "crate `{krate}` declares plugins and is in the binary's dependency graph through {via}, but the binary \
         can only register plugins it depends on directly: add it with `cargo add {krate} -p {root}` \
         (or `cargo add --path <its directory> -p {root}`)"
    )]
    NotDirect {
        /// The plugin crate.
        krate: String,
        /// The chain of crates that pulls it in.
        via: String,
        /// The binary's package.
        root: String,
    },
    /// Two plugins with the same name and priority and no pin.
    #[error(
        "plugins `{first}` and `{second}` both provide {category} `{name}` with priority {priority}, and nothing \
         chooses between them. Two ways out:\n  \
         - give one a higher priority in its Cargo.toml: [package.metadata.aiperf.plugins.{category}.{name}] \
         type = \"...\", priority = {higher}\n  \
         - or pin one in {root}'s Cargo.toml, which needs no edit of either plugin:\n      \
         [package.metadata.aiperf.select]\n      {category}.{name} = \"{first}\""
    )]
    Conflict {
        /// The category.
        category: &'static str,
        /// The contested name.
        name: String,
        /// One plugin crate.
        first: String,
        /// The other.
        second: String,
        /// Their common priority.
        priority: i32,
        /// `priority + 1`, for the suggestion.
        higher: i64,
        /// The binary's package.
        root: String,
    },
    /// A pin whose category, name or choice matches nothing.
    #[error(
        "[package.metadata.aiperf.select] {category}.{name} = \"{which}\" in {root}'s Cargo.toml names nothing: {reason}"
    )]
    PinNamesNothing {
        /// The category written.
        category: String,
        /// The name written.
        name: String,
        /// The choice written.
        which: String,
        /// What exists instead.
        reason: String,
        /// The binary's package.
        root: String,
    },
    /// A `[package.metadata.aiperf.select]` table of the wrong shape.
    #[error(
        "[package.metadata.aiperf.select] in {root}'s Cargo.toml: {reason}; write pins as `endpoint.chat = \"crate-or-type\"`"
    )]
    MalformedPin {
        /// What is wrong.
        reason: String,
        /// The binary's package.
        root: String,
    },
}

/// The `aiperf` table of a package's `[package.metadata]`, if any.
fn aiperf_metadata(package: &Package) -> Option<&serde_json::Map<String, Value>> {
    package.metadata.get("aiperf")?.as_object()
}

/// The library crate name of a package (`[lib] name`, else the package name with `_`).
pub fn lib_name(package: &Package) -> Option<String> {
    package
        .targets
        .iter()
        .find(|t| t.is_lib() || t.is_rlib() || t.is_proc_macro())
        .map(|t| t.name.replace('-', "_"))
}

/// Reads a package's `[package.metadata.aiperf.plugins]`: `Ok(None)` if it declares none.
/// Every problem is reported, not just the first.
pub fn read_plugin_crate(package: &Package) -> Result<Option<PluginCrate>, Vec<PluginError>> {
    let Some(plugins) = aiperf_metadata(package).and_then(|m| m.get("plugins")) else {
        return Ok(None);
    };
    let krate = package.name.to_string();
    let manifest = package.manifest_path.to_string();
    let malformed = |key: &str, reason: &str| PluginError::MalformedEntry {
        krate: krate.clone(),
        key: key.to_owned(),
        reason: reason.to_owned(),
        manifest: manifest.clone(),
    };
    let Some(plugins) = plugins.as_object() else {
        return Err(vec![malformed(
            "[package.metadata.aiperf.plugins]",
            "must be a table of categories, e.g. [package.metadata.aiperf.plugins.endpoint]",
        )]);
    };
    let Some(lib) = lib_name(package) else {
        return Err(vec![PluginError::NoLibrary { krate, manifest }]);
    };
    let mut errors = Vec::new();
    let mut declarations = Vec::new();
    for (category_name, entries) in plugins {
        let Some(spec) = category(category_name) else {
            errors.push(PluginError::UnknownCategory {
                krate: krate.clone(),
                category: category_name.clone(),
                known: known_categories(),
                manifest: manifest.clone(),
            });
            continue;
        };
        let Some(entries) = entries.as_object() else {
            errors.push(malformed(
                &format!("[package.metadata.aiperf.plugins.{category_name}]"),
                "must be a table of `name = \"crate::Type\"` entries",
            ));
            continue;
        };
        for (name, entry) in entries {
            let key = format!("[package.metadata.aiperf.plugins.{category_name}] {name}");
            match read_entry(spec, name, entry, &lib) {
                Ok(declaration) => declarations.push(declaration),
                Err(EntryError::Malformed(reason)) => errors.push(malformed(&key, &reason)),
                Err(EntryError::TypePath { path, reason }) => {
                    errors.push(PluginError::MalformedTypePath {
                        krate: krate.clone(),
                        key,
                        path,
                        reason,
                        lib: lib.clone(),
                        manifest: manifest.clone(),
                    })
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    declarations.sort_by(|a, b| (a.category, &a.name).cmp(&(b.category, &b.name)));
    Ok(Some(PluginCrate {
        package: krate,
        version: package.version.to_string(),
        lib_name: lib,
        manifest_path: package.manifest_path.clone().into_std_path_buf(),
        description: package.description.clone(),
        declarations,
    }))
}

enum EntryError {
    Malformed(String),
    TypePath { path: String, reason: String },
}

/// One entry: `name = "crate::Type"` or `[...name] type = "crate::Type", priority = 10`.
fn read_entry(
    spec: &'static CategorySpec,
    name: &str,
    entry: &Value,
    lib: &str,
) -> Result<Declaration, EntryError> {
    if !is_registry_name(name) {
        return Err(EntryError::Malformed(format!(
            "`{name}` is not a valid name: use lowercase letters, digits, `_` and `-`"
        )));
    }
    let (path, priority, description) = match entry {
        Value::String(path) => (path.as_str(), 0, None),
        Value::Object(table) => {
            if let Some(unknown) = table
                .keys()
                .find(|k| !["type", "priority", "description"].contains(&k.as_str()))
            {
                return Err(EntryError::Malformed(format!(
                    "unknown key `{unknown}`: the table form takes `type`, `priority` and `description`"
                )));
            }
            let path = table.get("type").and_then(Value::as_str).ok_or_else(|| {
                EntryError::Malformed(
                    "the table form needs `type = \"crate::Type\"` (a string)".to_owned(),
                )
            })?;
            let priority = match table.get("priority") {
                None => 0,
                Some(value) => value
                    .as_i64()
                    .and_then(|p| i32::try_from(p).ok())
                    .ok_or_else(|| {
                        EntryError::Malformed(format!(
                            "`priority = {value}` must be an integer between {} and {}",
                            i32::MIN,
                            i32::MAX
                        ))
                    })?,
            };
            let description = match table.get("description") {
                None => None,
                Some(Value::String(d)) => Some(d.clone()),
                Some(_) => {
                    return Err(EntryError::Malformed(
                        "`description` must be a string".to_owned(),
                    ));
                }
            };
            (path, priority, description)
        }
        _ => {
            return Err(EntryError::Malformed(
                "must be a type path string (`chat = \"crate::Type\"`) or a table with `type` and `priority`"
                    .to_owned(),
            ));
        }
    };
    let type_path = parse_type_path(path, lib).map_err(|reason| EntryError::TypePath {
        path: path.to_owned(),
        reason,
    })?;
    let type_name = type_path
        .rsplit("::")
        .next()
        .expect("a checked type path has segments")
        .to_owned();
    Ok(Declaration {
        category: spec.name,
        name: name.to_owned(),
        type_path,
        type_name,
        priority,
        description,
    })
}

/// Whether `name` can be registered: non-empty, lowercase ASCII letters, digits, `_`, `-`.
pub fn is_registry_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks a type path and returns it without a leading `::`: at least two segments, each a Rust
/// identifier, the first being the crate's library name.
pub fn parse_type_path(path: &str, lib: &str) -> Result<String, String> {
    let trimmed = path.trim();
    let trimmed = trimmed.strip_prefix("::").unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err("it is empty".to_owned());
    }
    let segments: Vec<&str> = trimmed.split("::").collect();
    if let Some(bad) = segments.iter().find(|s| !is_identifier(s)) {
        return Err(if bad.is_empty() {
            "it has an empty segment".to_owned()
        } else {
            format!("`{bad}` is not a Rust identifier (generics and spaces are not allowed)")
        });
    }
    if segments.len() < 2 {
        return Err("it has no crate prefix".to_owned());
    }
    if segments[0] != lib {
        return Err(format!(
            "it must start with the crate's library name `{lib}`, not `{}`",
            segments[0]
        ));
    }
    Ok(segments.join("::"))
}

fn is_identifier(segment: &str) -> bool {
    let raw = segment.strip_prefix("r#").unwrap_or(segment);
    let mut chars = raw.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    raw != "_" && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Reads the binary's `[package.metadata.aiperf.select]` pins. Accepts the dotted form
/// (`endpoint.chat = "x"`, i.e. a table per category) and the quoted form (`"endpoint.chat" = "x"`).
pub fn read_pins(root: &Package) -> Result<Vec<PinDecl>, Vec<PluginError>> {
    let Some(select) = aiperf_metadata(root).and_then(|m| m.get("select")) else {
        return Ok(Vec::new());
    };
    let root_name = root.name.to_string();
    let malformed = |reason: String| PluginError::MalformedPin {
        reason,
        root: root_name.clone(),
    };
    let Some(select) = select.as_object() else {
        return Err(vec![malformed("it must be a table".to_owned())]);
    };
    let mut flat: Vec<(String, String, &Value)> = Vec::new();
    for (key, value) in select {
        match (key.split_once('.'), value) {
            (Some((category, name)), _) => flat.push((category.to_owned(), name.to_owned(), value)),
            (None, Value::Object(names)) => {
                for (name, value) in names {
                    flat.push((key.clone(), name.clone(), value));
                }
            }
            (None, _) => {
                return Err(vec![malformed(format!(
                    "`{key}` is not of the form CATEGORY.NAME"
                ))]);
            }
        }
    }
    let mut pins = Vec::new();
    let mut errors = Vec::new();
    for (category_name, name, value) in flat {
        let Some(which) = value.as_str() else {
            errors.push(malformed(format!(
                "`{category_name}.{name}` must be a string naming a crate or a type"
            )));
            continue;
        };
        let Some(spec) = category(&category_name) else {
            errors.push(PluginError::PinNamesNothing {
                category: category_name.clone(),
                name,
                which: which.to_owned(),
                reason: format!(
                    "`{category_name}` is not a category (known categories: {})",
                    known_categories()
                ),
                root: root_name.clone(),
            });
            continue;
        };
        pins.push(PinDecl {
            category: spec.name,
            name,
            which: which.to_owned(),
        });
    }
    if errors.is_empty() {
        Ok(pins)
    } else {
        Err(errors)
    }
}

/// A package reached from the binary through normal dependencies.
#[derive(Debug, Clone)]
pub struct Reached<'m> {
    /// The package.
    pub package: &'m Package,
    /// The name the binary's code uses for it (`NodeDep.name`, which follows renames), if it is
    /// a direct dependency.
    pub extern_name: Option<String>,
    /// The package names from the binary down to it (excluding the binary), for messages.
    pub via: Vec<String>,
}

/// Every package the `root` package links: its normal dependencies, transitively, as resolved
/// with the features the metadata was queried with. Build and dev dependencies are not linked
/// into the binary, so they are not followed. Sorted by package name, then version.
pub fn normal_dependency_closure<'m>(metadata: &'m Metadata, root: &PackageId) -> Vec<Reached<'m>> {
    let Some(resolve) = metadata.resolve.as_ref() else {
        return Vec::new();
    };
    let nodes: BTreeMap<&PackageId, &cargo_metadata::Node> =
        resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let packages: BTreeMap<&PackageId, &Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let mut seen: BTreeMap<&PackageId, Reached<'m>> = BTreeMap::new();
    let mut queue: VecDeque<(&PackageId, Vec<String>)> = VecDeque::from([(root, Vec::new())]);
    while let Some((id, via)) = queue.pop_front() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in &node.deps {
            let normal = dep
                .dep_kinds
                .iter()
                .any(|k| k.kind == DependencyKind::Normal);
            if !normal || seen.contains_key(&dep.pkg) || &dep.pkg == root {
                continue;
            }
            let Some(package) = packages.get(&dep.pkg) else {
                continue;
            };
            let mut path = via.clone();
            path.push(package.name.to_string());
            seen.insert(
                &dep.pkg,
                Reached {
                    package,
                    extern_name: via.is_empty().then(|| dep.name.clone()),
                    via: path.clone(),
                },
            );
            queue.push_back((&dep.pkg, path));
        }
    }
    let mut reached: Vec<Reached<'m>> = seen.into_values().collect();
    reached.sort_by(|a, b| {
        (a.package.name.as_str(), &a.package.version)
            .cmp(&(b.package.name.as_str(), &b.package.version))
    });
    reached
}

/// The builtins registered in Rust source text: every `register!(CATEGORY "NAME" => TYPE, ...)`
/// outside comments, as `(category, name, type)`.
pub fn builtins_in_source(source: &str) -> Vec<(String, String, String)> {
    let code = strip_comments(source);
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("register!") {
        let before = &rest[..at];
        rest = &rest[at + "register!".len()..];
        // `__register_in!` and other names ending in `register!` are not the macro.
        if before.ends_with(|c: char| c == '_' || c.is_ascii_alphanumeric()) {
            continue;
        }
        if let Some(call) = parse_register_call(rest) {
            found.push(call);
        }
    }
    found
}

/// Parses `(endpoint "chat" => ChatEndpoint, ...` after `register!`.
fn parse_register_call(text: &str) -> Option<(String, String, String)> {
    let text = text
        .trim_start()
        .strip_prefix(['(', '{', '['])?
        .trim_start();
    let category_end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let (category, text) = text.split_at(category_end);
    let text = text.trim_start().strip_prefix('"')?;
    let (name, text) = text.split_once('"')?;
    let text = text.trim_start().strip_prefix("=>")?;
    let type_end = text.find(',')?;
    let type_name: String = text[..type_end].split_whitespace().collect();
    if category.is_empty() || name.is_empty() || type_name.is_empty() {
        return None;
    }
    Some((category.to_owned(), name.to_owned(), type_name))
}

/// Removes `//` and `/* */` comments, keeping string literals intact.
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut previous = ' ';
                for c in chars.by_ref() {
                    if previous == '*' && c == '/' {
                        break;
                    }
                    previous = c;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Whether a package can register builtins: it depends on aiperf-core.
pub fn depends_on_core(package: &Package) -> bool {
    package
        .dependencies
        .iter()
        .any(|d| d.kind == DependencyKind::Normal && d.name == CORE_CRATE)
}

/// The builtins of a package found by scanning the `.rs` files under its `src/` directory, and
/// that directory (for `rerun-if-changed`). A package without `src/` has none.
pub fn scan_builtins(package: &Package) -> std::io::Result<(Vec<Builtin>, Option<PathBuf>)> {
    let Some(dir) = package.manifest_path.parent() else {
        return Ok((Vec::new(), None));
    };
    let src = dir.join("src").into_std_path_buf();
    if !src.is_dir() {
        return Ok((Vec::new(), None));
    }
    let mut files = Vec::new();
    collect_rust_files(&src, &mut files)?;
    files.sort();
    let mut builtins = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for (category, name, type_name) in builtins_in_source(&text) {
            builtins.push(Builtin {
                category,
                name,
                type_name,
                krate: package.name.to_string(),
            });
        }
    }
    Ok((builtins, Some(src)))
}

fn collect_rust_files(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rust_files(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// One implementation competing for a name, at build time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Its type name.
    pub type_name: String,
    /// Its crate.
    #[serde(rename = "crate")]
    pub krate: String,
    /// Its priority (0 for builtins).
    pub priority: i32,
    /// Whether it is a plugin.
    pub is_plugin: bool,
}

/// How one name that plugins or pins touch is settled at build time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameSelection {
    /// The category.
    pub category: &'static str,
    /// The name.
    pub name: String,
    /// Every implementation: plugins by descending priority, then builtins.
    pub candidates: Vec<Candidate>,
    /// The index in `candidates` of the selected one.
    pub selected: usize,
    /// The pin that chose it, if one did.
    pub pinned: Option<String>,
}

impl NameSelection {
    /// The selected implementation.
    pub fn winner(&self) -> &Candidate {
        &self.candidates[self.selected]
    }
}

/// What [`select`] decided: a selection for every name it could settle, an error for every
/// conflict or pin naming nothing. The build fails if `errors` is not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selections {
    /// The names settled, by category then name.
    pub selections: Vec<NameSelection>,
    /// The conflicts and bad pins.
    pub errors: Vec<PluginError>,
}

/// Applies the selection rules of DESIGN.md §3 to every name a plugin or pin touches: a pin
/// chooses; else the plugin with the highest priority wins (over any builtin); two plugins
/// tied at the top are a conflict.
pub fn select(
    plugins: &[PluginCrate],
    builtins: &[Builtin],
    pins: &[PinDecl],
    root: &str,
) -> Selections {
    let mut names: BTreeMap<(&'static str, String), Vec<Candidate>> = BTreeMap::new();
    for plugin in plugins {
        for d in &plugin.declarations {
            names
                .entry((d.category, d.name.clone()))
                .or_default()
                .push(Candidate {
                    type_name: d.type_name.clone(),
                    krate: plugin.package.clone(),
                    priority: d.priority,
                    is_plugin: true,
                });
        }
    }
    let pinned: BTreeSet<(&'static str, &str)> =
        pins.iter().map(|p| (p.category, p.name.as_str())).collect();
    for spec in &CATEGORIES {
        for b in builtins.iter().filter(|b| b.category == spec.name) {
            let touched = names.contains_key(&(spec.name, b.name.clone()))
                || pinned.contains(&(spec.name, b.name.as_str()));
            if touched {
                names
                    .entry((spec.name, b.name.clone()))
                    .or_default()
                    .push(Candidate {
                        type_name: b.type_name.clone(),
                        krate: b.krate.clone(),
                        priority: 0,
                        is_plugin: false,
                    });
            }
        }
    }
    let mut errors = Vec::new();
    for pin in pins {
        match names.get(&(pin.category, pin.name.clone())) {
            None => errors.push(PluginError::PinNamesNothing {
                category: pin.category.to_owned(),
                name: pin.name.clone(),
                which: pin.which.clone(),
                reason: format!(
                    "no plugin or builtin registers {} `{}`{}",
                    pin.category,
                    pin.name,
                    known_names(pin.category, plugins, builtins)
                ),
                root: root.to_owned(),
            }),
            Some(candidates) if !candidates.iter().any(|c| matches_choice(c, &pin.which)) => errors
                .push(PluginError::PinNamesNothing {
                    category: pin.category.to_owned(),
                    name: pin.name.clone(),
                    which: pin.which.clone(),
                    reason: format!(
                        "choose a crate or type among {}",
                        candidates
                            .iter()
                            .map(|c| format!("{} ({})", c.type_name, c.krate))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    root: root.to_owned(),
                }),
            Some(_) => {}
        }
    }
    let mut selections = Vec::new();
    for ((category, name), mut candidates) in names {
        candidates.sort_by(|a, b| {
            (b.is_plugin, b.priority, &a.krate, &a.type_name).cmp(&(
                a.is_plugin,
                a.priority,
                &b.krate,
                &b.type_name,
            ))
        });
        let pin = pins
            .iter()
            .find(|p| p.category == category && p.name == name);
        if let Some(pin) = pin {
            if let Some(index) = candidates
                .iter()
                .position(|c| matches_choice(c, &pin.which))
            {
                selections.push(NameSelection {
                    category,
                    name,
                    candidates,
                    selected: index,
                    pinned: Some(pin.which.clone()),
                });
            }
            continue;
        }
        let top = &candidates[0];
        if let Some(tied) = candidates[1..]
            .iter()
            .find(|c| c.is_plugin && top.is_plugin && c.priority == top.priority)
        {
            errors.push(PluginError::Conflict {
                category,
                name: name.clone(),
                first: top.krate.clone(),
                second: tied.krate.clone(),
                priority: top.priority,
                higher: i64::from(top.priority) + 1,
                root: root.to_owned(),
            });
            continue;
        }
        selections.push(NameSelection {
            category,
            name,
            candidates,
            selected: 0,
            pinned: None,
        });
    }
    Selections { selections, errors }
}

/// Whether a pin's or `--use-implementation`'s choice names this candidate, as the run-time
/// registry matches it: by type name or crate name.
fn matches_choice(candidate: &Candidate, which: &str) -> bool {
    candidate.type_name == which || candidate.krate == which
}

fn known_names(category: &str, plugins: &[PluginCrate], builtins: &[Builtin]) -> String {
    let names: BTreeSet<&str> = plugins
        .iter()
        .flat_map(|p| &p.declarations)
        .filter(|d| d.category == category)
        .map(|d| d.name.as_str())
        .chain(
            builtins
                .iter()
                .filter(|b| b.category == category)
                .map(|b| b.name.as_str()),
        )
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(
            " (known {category} names: {})",
            names.into_iter().collect::<Vec<_>>().join(", ")
        )
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.type_name, self.krate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(package: &str, declarations: &[(&str, &str, i32)]) -> PluginCrate {
        let lib = package.replace('-', "_");
        PluginCrate {
            package: package.to_owned(),
            version: "0.1.0".to_owned(),
            lib_name: lib.clone(),
            manifest_path: PathBuf::from(format!("/plugins/{package}/Cargo.toml")),
            description: None,
            declarations: declarations
                .iter()
                .map(|&(name, type_name, priority)| Declaration {
                    category: "endpoint",
                    name: name.to_owned(),
                    type_path: format!("{lib}::{type_name}"),
                    type_name: type_name.to_owned(),
                    priority,
                    description: None,
                })
                .collect(),
        }
    }

    fn builtin(name: &str, type_name: &str) -> Builtin {
        Builtin {
            category: "endpoint".to_owned(),
            name: name.to_owned(),
            type_name: type_name.to_owned(),
            krate: "aiperf-endpoints".to_owned(),
        }
    }

    fn pin(name: &str, which: &str) -> PinDecl {
        PinDecl {
            category: "endpoint",
            name: name.to_owned(),
            which: which.to_owned(),
        }
    }

    /// A package built the way `cargo metadata` reports it, with the given `[package.metadata]`.
    fn package(name: &str, metadata: Value) -> Package {
        let json = serde_json::json!({
            "name": name,
            "version": "1.2.3",
            "id": format!("path+file:///x/{name}#1.2.3"),
            "source": null,
            "description": "a test plugin",
            "dependencies": [],
            "targets": [{
                "kind": ["lib"], "crate_types": ["lib"], "name": name,
                "src_path": format!("/x/{name}/src/lib.rs"), "edition": "2024",
                "doc": true, "doctest": true, "test": true
            }],
            "features": {},
            "manifest_path": format!("/x/{name}/Cargo.toml"),
            "metadata": metadata,
            "publish": null,
            "authors": [],
            "categories": [],
            "keywords": [],
            "edition": "2024",
            "links": null,
            "default_run": null,
            "rust_version": null
        });
        serde_json::from_value(json).expect("the test package is well formed")
    }

    #[test]
    fn reads_string_and_table_forms() {
        let metadata = serde_json::json!({"aiperf": {"plugins": {"endpoint": {
            "chat": "my_plugin::FastChat",
            "embeddings": {"type": "::my_plugin::embed::FastEmbed", "priority": 10,
                           "description": "fast embeddings"}
        }}}});
        let read = read_plugin_crate(&package("my-plugin", metadata))
            .unwrap()
            .unwrap();
        assert_eq!(read.lib_name, "my_plugin");
        assert_eq!(read.version, "1.2.3");
        assert_eq!(
            read.declarations,
            [
                Declaration {
                    category: "endpoint",
                    name: "chat".into(),
                    type_path: "my_plugin::FastChat".into(),
                    type_name: "FastChat".into(),
                    priority: 0,
                    description: None,
                },
                Declaration {
                    category: "endpoint",
                    name: "embeddings".into(),
                    type_path: "my_plugin::embed::FastEmbed".into(),
                    type_name: "FastEmbed".into(),
                    priority: 10,
                    description: Some("fast embeddings".into()),
                },
            ]
        );
    }

    #[test]
    fn a_package_without_plugins_declares_nothing() {
        let other = serde_json::json!({"docs": {"rs": {"all-features": true}}});
        assert_eq!(read_plugin_crate(&package("serde", other)), Ok(None));
        assert_eq!(read_plugin_crate(&package("serde", Value::Null)), Ok(None));
    }

    #[test]
    fn unknown_category_is_reported_with_the_known_ones() {
        let metadata =
            serde_json::json!({"aiperf": {"plugins": {"endpoints": {"chat": "p::Chat"}}}});
        let errors = read_plugin_crate(&package("p", metadata)).unwrap_err();
        let message = errors[0].to_string();
        assert!(matches!(errors[0], PluginError::UnknownCategory { .. }));
        assert!(
            message.contains("`endpoints` is not a category"),
            "{message}"
        );
        assert!(
            message.contains("known categories: endpoint, transport"),
            "{message}"
        );
        assert!(message.contains("/x/p/Cargo.toml"), "{message}");
    }

    #[test]
    fn malformed_type_paths_name_the_crate_and_key() {
        for (path, reason) in [
            ("Chat", "no crate prefix"),
            ("p::Chat<u8>", "is not a Rust identifier"),
            ("p::", "empty segment"),
            ("p:Chat", "is not a Rust identifier"),
            (
                "other::Chat",
                "must start with the crate's library name `p`",
            ),
            ("", "empty"),
            ("p::1Chat", "is not a Rust identifier"),
        ] {
            let metadata = serde_json::json!({"aiperf": {"plugins": {"endpoint": {"chat": path}}}});
            let errors = read_plugin_crate(&package("p", metadata)).unwrap_err();
            let message = errors[0].to_string();
            assert!(
                matches!(errors[0], PluginError::MalformedTypePath { .. }),
                "{path}: {message}"
            );
            assert!(message.contains("crate `p`"), "{message}");
            assert!(
                message.contains("[package.metadata.aiperf.plugins.endpoint] chat"),
                "{message}"
            );
            assert!(message.contains(reason), "{path}: {message}");
        }
    }

    #[test]
    fn malformed_entries_say_what_is_expected() {
        for (entry, expected) in [
            (serde_json::json!(3), "must be a type path string"),
            (serde_json::json!({"priority": 2}), "needs `type = "),
            (
                serde_json::json!({"type": "p::Chat", "priority": "high"}),
                "must be an integer",
            ),
            (
                serde_json::json!({"type": "p::Chat", "priority": 1e12}),
                "must be an integer",
            ),
            (
                serde_json::json!({"type": "p::Chat", "priorty": 2}),
                "unknown key `priorty`",
            ),
        ] {
            let metadata =
                serde_json::json!({"aiperf": {"plugins": {"endpoint": {"chat": entry}}}});
            let errors = read_plugin_crate(&package("p", metadata)).unwrap_err();
            assert!(errors[0].to_string().contains(expected), "{}", errors[0]);
        }
        let metadata = serde_json::json!({"aiperf": {"plugins": {"endpoint": {"Chat!": "p::C"}}}});
        let errors = read_plugin_crate(&package("p", metadata)).unwrap_err();
        assert!(errors[0].to_string().contains("not a valid name"));
    }

    #[test]
    fn every_error_of_a_crate_is_reported() {
        let metadata = serde_json::json!({"aiperf": {"plugins": {
            "endpoint": {"chat": "Chat", "completions": "p::Completions"},
            "loader": {"x": "p::X"}
        }}});
        let errors = read_plugin_crate(&package("p", metadata)).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn pins_read_in_dotted_and_quoted_forms() {
        let metadata = serde_json::json!({"aiperf": {"select": {
            "endpoint": {"chat": "fast-chat"},
            "transport.http": "HyperTransport"
        }}});
        let pins = read_pins(&package("aiperf-cli", metadata)).unwrap();
        assert_eq!(
            pins,
            [
                pin("chat", "fast-chat"),
                PinDecl {
                    category: "transport",
                    name: "http".into(),
                    which: "HyperTransport".into()
                }
            ]
        );
        let bad = serde_json::json!({"aiperf": {"select": {"loader": {"x": "y"}}}});
        let errors = read_pins(&package("aiperf-cli", bad)).unwrap_err();
        assert!(errors[0].to_string().contains("`loader` is not a category"));
        let bad = serde_json::json!({"aiperf": {"select": {"endpoint": {"chat": 1}}}});
        assert!(read_pins(&package("aiperf-cli", bad)).is_err());
    }

    #[test]
    fn a_plugin_beats_the_builtin_of_its_name() {
        let plugins = [plugin("fast", &[("chat", "FastChat", 0)])];
        let builtins = [builtin("chat", "ChatEndpoint"), builtin("completions", "C")];
        let selections = select(&plugins, &builtins, &[], "aiperf-cli").selections;
        assert_eq!(selections.len(), 1, "only names a plugin touches");
        assert_eq!(selections[0].winner().type_name, "FastChat");
        assert_eq!(selections[0].candidates[1].type_name, "ChatEndpoint");
        assert!(!selections[0].candidates[1].is_plugin);
    }

    #[test]
    fn a_higher_priority_wins_between_plugins() {
        let plugins = [
            plugin("low", &[("chat", "LowChat", 0)]),
            plugin("high", &[("chat", "HighChat", 5)]),
        ];
        let selections = select(&plugins, &[], &[], "aiperf-cli").selections;
        assert_eq!(selections[0].winner().krate, "high");
    }

    #[test]
    fn equal_priorities_conflict_naming_both_crates_and_both_ways_out() {
        let plugins = [
            plugin("plugin-a", &[("chat", "AChat", 3)]),
            plugin("plugin-b", &[("chat", "BChat", 3)]),
        ];
        let errors = select(&plugins, &[], &[], "aiperf-cli").errors;
        let message = errors[0].to_string();
        assert!(
            message.contains("plugins `plugin-a` and `plugin-b`"),
            "{message}"
        );
        assert!(
            message.contains("endpoint `chat` with priority 3"),
            "{message}"
        );
        assert!(message.contains("priority = 4"), "{message}");
        assert!(
            message.contains("[package.metadata.aiperf.select]"),
            "{message}"
        );
        assert!(
            message.contains("endpoint.chat = \"plugin-a\""),
            "{message}"
        );
        assert!(message.contains("aiperf-cli's Cargo.toml"), "{message}");
    }

    #[test]
    fn a_tie_below_the_top_priority_is_no_conflict() {
        let plugins = [
            plugin("a", &[("chat", "AChat", 0)]),
            plugin("b", &[("chat", "BChat", 0)]),
            plugin("c", &[("chat", "CChat", 1)]),
        ];
        let selections = select(&plugins, &[], &[], "aiperf-cli").selections;
        assert_eq!(selections[0].winner().krate, "c");
    }

    #[test]
    fn a_pin_settles_a_conflict_by_crate_or_type() {
        let plugins = [
            plugin("plugin-a", &[("chat", "AChat", 0)]),
            plugin("plugin-b", &[("chat", "BChat", 0)]),
        ];
        for which in ["plugin-b", "BChat"] {
            let selections = select(&plugins, &[], &[pin("chat", which)], "aiperf-cli").selections;
            assert_eq!(selections[0].winner().krate, "plugin-b");
            assert_eq!(selections[0].pinned.as_deref(), Some(which));
        }
    }

    #[test]
    fn a_pin_may_choose_a_builtin() {
        let plugins = [plugin("fast", &[("chat", "FastChat", 9)])];
        let builtins = [builtin("chat", "ChatEndpoint")];
        let selections = select(
            &plugins,
            &builtins,
            &[pin("chat", "ChatEndpoint")],
            "aiperf-cli",
        )
        .selections;
        assert_eq!(selections[0].winner().type_name, "ChatEndpoint");
    }

    #[test]
    fn a_pin_naming_nothing_is_an_error() {
        let plugins = [plugin("fast", &[("chat", "FastChat", 0)])];
        let builtins = [builtin("chat", "ChatEndpoint")];
        let errors = select(&plugins, &builtins, &[pin("chat", "nope")], "aiperf-cli").errors;
        let message = errors[0].to_string();
        assert!(message.contains("endpoint.chat = \"nope\""), "{message}");
        assert!(
            message.contains("FastChat (fast), ChatEndpoint (aiperf-endpoints)"),
            "{message}"
        );
        let errors = select(&plugins, &builtins, &[pin("chta", "fast")], "aiperf-cli").errors;
        let message = errors[0].to_string();
        assert!(
            message.contains("no plugin or builtin registers endpoint `chta`"),
            "{message}"
        );
        assert!(message.contains("known endpoint names: chat"), "{message}");
    }

    /// `cli` -> `fast` (renamed `quick`, normal) -> `deep` (normal); `cli` -> `tool` (dev and
    /// build only) -> `hidden`. The closure follows normal dependencies only, and records the
    /// name `cli`'s code uses for its direct ones.
    #[test]
    fn the_closure_follows_normal_dependencies_under_their_extern_names() {
        let id = |name: &str| format!("path+file:///x/{name}#1.2.3");
        // Cargo writes a normal dependency's kind as null.
        let (normal, dev, build) = (Value::Null, Value::from("dev"), Value::from("build"));
        let dep = |name: &str, extern_name: &str, kinds: &[&Value]| {
            let kinds: Vec<Value> = kinds
                .iter()
                .map(|k| serde_json::json!({"kind": k, "target": null}))
                .collect();
            serde_json::json!({"name": extern_name, "pkg": id(name), "dep_kinds": kinds})
        };
        let node = |name: &str, deps: Vec<Value>| serde_json::json!({"id": id(name), "deps": deps, "dependencies": [], "features": []});
        let packages: Vec<Value> = ["cli", "fast", "deep", "tool", "hidden"]
            .iter()
            .map(|n| serde_json::to_value(package(n, Value::Null)).unwrap())
            .collect();
        let metadata: Metadata = serde_json::from_value(serde_json::json!({
            "packages": packages,
            "workspace_members": [id("cli")],
            "resolve": {"root": id("cli"), "nodes": [
                node("cli", vec![dep("fast", "quick", &[&normal]), dep("tool", "tool", &[&dev, &build])]),
                node("fast", vec![dep("deep", "deep", &[&normal])]),
                node("deep", vec![]),
                node("tool", vec![dep("hidden", "hidden", &[&normal])]),
                node("hidden", vec![]),
            ]},
            "workspace_root": "/x",
            "target_directory": "/x/target",
            "version": 1
        }))
        .expect("the test metadata is well formed");
        let root = metadata.resolve.as_ref().unwrap().root.clone().unwrap();
        let reached: Vec<(String, Option<String>, Vec<String>)> =
            normal_dependency_closure(&metadata, &root)
                .into_iter()
                .map(|r| (r.package.name.to_string(), r.extern_name, r.via))
                .collect();
        assert_eq!(
            reached,
            [
                ("deep".into(), None, vec!["fast".into(), "deep".into()]),
                ("fast".into(), Some("quick".into()), vec!["fast".into()]),
            ]
        );
    }

    #[test]
    fn finds_register_calls_outside_comments() {
        let source = r#"
            //! aiperf_core::register!(endpoint "doc" => DocEndpoint, "in a doc comment");
            /* aiperf_core::register!(endpoint "block" => Block, "x"); */
            aiperf_core::register!(endpoint "chat" => ChatEndpoint, "OpenAI chat // not a comment");
            register!(transport "http" =>
                http::HttpTransport, "multi-line");
            $crate::__register_in!(SLICE, Category, "hidden", T, "not a registration");
            let s = "register!(endpoint \"in-string\" => S, \"x\")";
        "#;
        assert_eq!(
            builtins_in_source(source),
            [
                ("endpoint".into(), "chat".into(), "ChatEndpoint".into()),
                (
                    "transport".into(),
                    "http".into(),
                    "http::HttpTransport".into()
                ),
            ]
        );
    }

    #[test]
    fn type_paths_accept_raw_identifiers_and_modules() {
        assert_eq!(
            parse_type_path(" ::p::r#mod::Chat ", "p").as_deref(),
            Ok("p::r#mod::Chat")
        );
        assert!(parse_type_path("p::_", "p").is_err());
    }
}
