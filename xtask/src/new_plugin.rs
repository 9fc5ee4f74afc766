//! `cargo xtask new-plugin NAME --category endpoint --name chat [--path DIR]`: scaffolds a
//! plugin crate that builds, passes its own tests, and overrides the builtin of its name as soon
//! as aiperf-cli depends on it.
//!
//! The crate is written as a third party would write it (DESIGN.md §2): it depends on
//! aiperf-core only (by path and version, since aiperf-core is not published yet) and declares
//! its implementation in `[package.metadata.aiperf.plugins.<category>]`. Where it goes decides
//! how it relates to this workspace:
//! - under `plugins/` (the default, `plugins/NAME`): it becomes a workspace member, like
//!   `plugins/nvidia-optimized-endpoints`, so workspace-wide tests and lints cover it;
//! - anywhere else inside the workspace directory: it gets its own `[workspace]` table and is
//!   added to the workspace's `exclude`, so it stays a separate project (cargo would otherwise
//!   adopt it as a member once aiperf-cli depends on it by path);
//! - outside the workspace directory: it gets its own `[workspace]` table, so it builds on its
//!   own whatever directory holds it.
//!
//! Nothing adds it to aiperf-cli: that is the user's step, `cargo add --path DIR -p aiperf-cli`.
//!
//! Only the `endpoint` category has a template: a working OpenAI chat completions endpoint.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use toml_edit::{Array, DocumentMut, Item, Value};

use crate::plugin_manifest;
use crate::workspace;

/// Arguments of `cargo xtask new-plugin`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The crate's package name (e.g. `acme-chat`).
    crate_name: String,
    /// The registry category the implementation belongs to.
    #[arg(long, value_parser = ["endpoint"])]
    category: String,
    /// The name it registers under; the same name as a builtin overrides it (e.g. `chat`).
    #[arg(long)]
    name: String,
    /// The crate's directory (default: `plugins/CRATE_NAME` in the workspace).
    #[arg(long)]
    path: Option<PathBuf>,
}

/// Where a new plugin sits relative to the workspace, which decides its `[workspace]` handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Under `plugins/`: a workspace member.
    Member,
    /// Inside the workspace directory elsewhere: excluded, its own workspace.
    Excluded,
    /// Outside the workspace directory: its own workspace.
    Standalone,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<bool> {
    validate_crate_name(&args.crate_name)?;
    if !plugin_manifest::is_registry_name(&args.name) {
        bail!(
            "`{}` is not a valid registry name: use lowercase letters, digits, `_` and `-`",
            args.name
        );
    }
    let root = workspace::root()?;
    let dir = match &args.path {
        Some(path) => workspace::absolute(path)?,
        None => root.join("plugins").join(&args.crate_name),
    };
    if dir.exists() && dir.read_dir()?.next().is_some() {
        bail!(
            "{} already exists and is not empty: choose another --path",
            dir.display()
        );
    }
    let placement = placement(&root, &dir);
    let files = render(&args, &root, &dir, placement);
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    for (path, contents) in &files {
        std::fs::write(dir.join(path), contents)
            .with_context(|| format!("cannot write {}", dir.join(path).display()))?;
    }
    let relative = workspace::relative(&root, &dir);
    match placement {
        Placement::Member => add_to_workspace_list(&root, "members", &relative)?,
        Placement::Excluded => add_to_workspace_list(&root, "exclude", &relative)?,
        Placement::Standalone => {}
    }
    let type_name = type_name(&args.crate_name, &args.category);
    println!(
        "Created plugin crate `{}` in {}: {} `{}` = {}::{type_name}",
        args.crate_name,
        dir.display(),
        args.category,
        args.name,
        args.crate_name.replace('-', "_"),
    );
    println!(
        "{}",
        match placement {
            Placement::Member =>
                "It is a member of this workspace (listed in [workspace] members).",
            Placement::Excluded =>
                "It is its own workspace (listed in this workspace's [workspace] exclude).",
            Placement::Standalone => "It is its own workspace.",
        }
    );
    println!("Next:");
    println!("  cargo test --manifest-path {}/Cargo.toml", dir.display());
    println!("  cargo add --path {} -p aiperf-cli", dir.display());
    println!(
        "  cargo run -p aiperf-cli -- plugins {} {}",
        args.category, args.name
    );
    Ok(true)
}

fn validate_crate_name(name: &str) -> anyhow::Result<()> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        bail!(
            "`{name}` is not a good crate name: start with a lowercase letter, then use lowercase letters, digits, `-` and `_`"
        );
    }
    Ok(())
}

fn placement(root: &Path, dir: &Path) -> Placement {
    if dir.starts_with(root.join("plugins")) {
        Placement::Member
    } else if dir.starts_with(root) {
        Placement::Excluded
    } else {
        Placement::Standalone
    }
}

/// The implementation's type name: the crate name in CamelCase plus the category
/// (`acme-chat` → `AcmeChatEndpoint`), distinct from the builtins' names so that
/// `--use-implementation` can tell them apart.
fn type_name(crate_name: &str, category: &str) -> String {
    let mut out = String::new();
    for word in crate_name
        .split(['-', '_'])
        .chain(std::iter::once(category))
        .filter(|w| !w.is_empty())
    {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// The files of the new crate, relative to its directory.
fn render(
    args: &Args,
    root: &Path,
    dir: &Path,
    placement: Placement,
) -> Vec<(&'static str, String)> {
    let lib = args.crate_name.replace('-', "_");
    let type_name = type_name(&args.crate_name, &args.category);
    let core_path = workspace::relative(dir, &root.join("aiperf-core"));
    let fill = |template: &str| {
        template
            .replace("__CRATE__", &args.crate_name)
            .replace("__LIB__", &lib)
            .replace("__TYPE__", &type_name)
            .replace("__NAME__", &args.name)
            .replace("__CORE_PATH__", &core_path)
    };
    let mut manifest = fill(include_str!("../templates/endpoint/Cargo.toml.tmpl"));
    if placement != Placement::Member {
        manifest.push_str(
            "\n# This crate is its own workspace, not a member of the one aiperf-cli lives in.\n[workspace]\n",
        );
    }
    vec![
        ("Cargo.toml", manifest),
        (
            "src/lib.rs",
            fill(include_str!("../templates/endpoint/lib.rs.tmpl")),
        ),
    ]
}

/// Adds `entry` to `[workspace] members` or `exclude` of the workspace's Cargo.toml, keeping the
/// file's formatting.
fn add_to_workspace_list(root: &Path, key: &str, entry: &str) -> anyhow::Result<()> {
    let path = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut doc: DocumentMut = text
        .parse()
        .with_context(|| format!("cannot parse {}", path.display()))?;
    let workspace = doc
        .get_mut("workspace")
        .and_then(Item::as_table_mut)
        .with_context(|| format!("{} has no [workspace] table", path.display()))?;
    let list = workspace
        .entry(key)
        .or_insert_with(|| Item::Value(Value::Array(Array::new())))
        .as_array_mut()
        .with_context(|| format!("[workspace] {key} in {} is not an array", path.display()))?;
    if list.iter().any(|v| v.as_str() == Some(entry)) {
        return Ok(());
    }
    let multiline = list.trailing_comma() || list.len() > 3;
    list.push(entry);
    if multiline {
        for value in list.iter_mut() {
            value.decor_mut().set_prefix("\n    ");
        }
        list.set_trailing("\n");
        list.set_trailing_comma(true);
    }
    std::fs::write(&path, doc.to_string())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_camel_case_with_the_category() {
        assert_eq!(type_name("acme-chat", "endpoint"), "AcmeChatEndpoint");
        assert_eq!(type_name("e2e_chat_a", "endpoint"), "E2eChatAEndpoint");
    }

    #[test]
    fn placement_follows_the_directory() {
        let root = Path::new("/w");
        assert_eq!(
            placement(root, Path::new("/w/plugins/x")),
            Placement::Member
        );
        assert_eq!(
            placement(root, Path::new("/w/vendor/x")),
            Placement::Excluded
        );
        assert_eq!(
            placement(root, Path::new("/elsewhere/x")),
            Placement::Standalone
        );
    }

    #[test]
    fn crate_names_are_checked() {
        assert!(validate_crate_name("acme-chat2").is_ok());
        for bad in ["Acme", "2acme", "acme chat", ""] {
            assert!(validate_crate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn workspace_lists_gain_the_entry_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[workspace]\nresolver = \"3\"\nmembers = [\n    \"a\",\n    \"b\",\n]\n",
        )
        .unwrap();
        add_to_workspace_list(dir.path(), "members", "plugins/x").unwrap();
        add_to_workspace_list(dir.path(), "members", "plugins/x").unwrap();
        add_to_workspace_list(dir.path(), "exclude", "vendor/y").unwrap();
        let text = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
        assert_eq!(
            text,
            "[workspace]\nresolver = \"3\"\nmembers = [\n    \"a\",\n    \"b\",\n    \"plugins/x\",\n]\nexclude = [\"vendor/y\"]\n"
        );
    }
}
