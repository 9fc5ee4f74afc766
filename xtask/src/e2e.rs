//! `cargo xtask e2e`: the plugin flow of DESIGN.md §3, end to end, as a user runs it.
//!
//! On a copy of the workspace (`<target>/e2e/workspace`, made afresh each run, `target/` and
//! `.git/` left out) it runs the real commands:
//! 1. `cargo xtask new-plugin` scaffolds a plugin for `endpoint chat` outside the workspace
//!    (`<target>/e2e/outside/`), and the plugin's own tests pass;
//! 2. `cargo add --path <it> -p aiperf-cli`, rebuild: `aiperf plugins endpoint chat --json`
//!    shows it selected, the builtin `ChatEndpoint` still listed, and `--use-implementation`
//!    switching back;
//! 3. a second plugin claiming `chat` at the same priority: the build fails naming both crates
//!    and both ways out;
//! 4. a pin in aiperf-cli's `[package.metadata.aiperf.select]`: the build succeeds and the
//!    pinned plugin wins;
//! 5. a type path naming no type, then 6. a type lacking the trait: compilation fails on a line
//!    naming the plugin crate and its metadata key.
//!
//! Isolation: the nested builds use a target directory of their own (`<target>/e2e/target`),
//! kept between runs so that only the first run compiles the dependencies. Sharing the real
//! workspace's build directory would be faster but is unsafe: cargo names the artifacts of a
//! path crate after its place in the workspace, not its absolute path, so the copy's
//! aiperf-core would overwrite the real one's, and the real workspace's next build would take
//! the copy's stale artifacts for fresh.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use anyhow::{Context, bail};
use cargo_metadata::MetadataCommand;
use serde_json::Value;
use toml_edit::{DocumentMut, Item, Table};

use crate::workspace;

/// Arguments of `cargo xtask e2e`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// The plugins the flow creates.
const FIRST: &str = "e2e-chat-a";
const SECOND: &str = "e2e-chat-b";
/// The builtin the plugins override (registered by aiperf-endpoints).
const BUILTIN_CHAT: &str = "ChatEndpoint";

/// `[&OsStr; N]` from strings and paths, for command arguments.
macro_rules! os_args {
    ($($arg:expr),* $(,)?) => {
        [$(std::ffi::OsStr::new(&$arg)),*]
    };
}

/// Runs every step, printing PASS or FAIL for each; `Ok(false)` when one failed.
pub fn run(_args: Args) -> anyhow::Result<bool> {
    let started = Instant::now();
    let root = workspace::root()?;
    let metadata = MetadataCommand::new()
        .manifest_path(root.join("Cargo.toml"))
        .no_deps()
        .exec()
        .context("cannot read the workspace's metadata")?;
    let target_dir = metadata.target_directory.into_std_path_buf();
    let base = target_dir.join("e2e");
    let flow = Flow {
        workspace: base.join("workspace"),
        outside: base.join("outside"),
        artifacts: base.join("target"),
    };
    for dir in [&flow.workspace, &flow.outside] {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
    }
    let skip = [root.join("target"), root.join(".git"), target_dir.clone()];
    let copied = copy_tree(&root, &flow.workspace, &skip)
        .with_context(|| format!("cannot copy the workspace to {}", flow.workspace.display()))?;
    println!(
        "e2e: copied the workspace ({copied} files) to {}\n     building in {}",
        flow.workspace.display(),
        flow.artifacts.display()
    );

    let steps: [(&str, Step); 6] = [
        (
            "scaffold a plugin outside the workspace; its own tests pass",
            Flow::scaffold,
        ),
        (
            "cargo add it to aiperf-cli: it is selected, the builtin still listed",
            Flow::add,
        ),
        (
            "a second plugin, same name and priority: the build fails naming both",
            Flow::conflict,
        ),
        (
            "pin one in aiperf-cli's Cargo.toml: it builds and the pinned one wins",
            Flow::pin,
        ),
        (
            "a type path naming no type: the error names the crate and key",
            Flow::missing_type,
        ),
        (
            "a type without the trait: the error names the crate and key",
            Flow::missing_trait,
        ),
    ];
    let mut passed = true;
    for (i, (title, step)) in steps.iter().enumerate() {
        let number = i + 1;
        if !passed {
            println!("[{number}/{}] SKIP  {title}", steps.len());
            continue;
        }
        let step_started = Instant::now();
        let result = step(&flow);
        let seconds = step_started.elapsed().as_secs_f64();
        match result {
            Ok(()) => println!("[{number}/{}] PASS  {title} ({seconds:.1} s)", steps.len()),
            Err(err) => {
                println!("[{number}/{}] FAIL  {title} ({seconds:.1} s)", steps.len());
                println!("      {}", format!("{err:#}").replace('\n', "\n      "));
                passed = false;
            }
        }
    }
    println!(
        "e2e: {} in {:.1} s",
        if passed { "PASS" } else { "FAIL" },
        started.elapsed().as_secs_f64()
    );
    Ok(passed)
}

/// One step of the flow.
type Step = fn(&Flow) -> anyhow::Result<()>;

/// The directories of one run.
struct Flow {
    /// The copy of the workspace.
    workspace: PathBuf,
    /// Where plugins are scaffolded, outside the copy.
    outside: PathBuf,
    /// `CARGO_TARGET_DIR` of the nested builds, separate from the real workspace's.
    artifacts: PathBuf,
}

impl Flow {
    fn scaffold(&self) -> anyhow::Result<()> {
        self.new_plugin(FIRST)?;
        // The plugin is its own workspace; start it from the workspace's lock file so that it
        // resolves the versions already compiled, offline.
        let plugin = self.outside.join(FIRST);
        std::fs::copy(self.workspace.join("Cargo.lock"), plugin.join("Cargo.lock"))?;
        let manifest = plugin.join("Cargo.toml");
        let output = self.cargo(&os_args!["test", "--offline", "--manifest-path", manifest,])?;
        expect_success(&output, "cargo test of the scaffolded plugin")
    }

    fn add(&self) -> anyhow::Result<()> {
        self.cargo_add(FIRST)?;
        self.build_ok()?;
        let listing = self.plugins_json(&[])?;
        expect_selected(&listing, FIRST, true)?;
        let builtin = find(&listing, BUILTIN_CHAT)?;
        if builtin["is_plugin"] != false || builtin["is_selected"] != false {
            bail!("the builtin {BUILTIN_CHAT} should be listed, not selected: {listing}");
        }
        let switched =
            self.plugins_json(&["--use-implementation", "endpoint.chat=ChatEndpoint"])?;
        if find(&switched, BUILTIN_CHAT)?["is_selected"] != true {
            bail!("--use-implementation endpoint.chat=ChatEndpoint did not select it: {switched}");
        }
        Ok(())
    }

    fn conflict(&self) -> anyhow::Result<()> {
        self.new_plugin(SECOND)?;
        self.cargo_add(SECOND)?;
        let output = self.build()?;
        expect_failure_mentioning(
            &output,
            "the build with two plugins claiming endpoint chat at priority 0",
            &[
                &format!("plugins `{FIRST}` and `{SECOND}`"),
                "endpoint `chat` with priority 0",
                "priority = 1",
                "[package.metadata.aiperf.select]",
                &format!("endpoint.chat = \"{FIRST}\""),
            ],
        )
    }

    fn pin(&self) -> anyhow::Result<()> {
        let manifest = self.workspace.join("aiperf-cli/Cargo.toml");
        edit_toml(&manifest, |doc| {
            let select = table_path(doc, &["package", "metadata", "aiperf", "select"]);
            let mut endpoint = Table::new();
            endpoint.set_dotted(true);
            endpoint.insert("chat", toml_edit::value(SECOND));
            select.insert("endpoint", Item::Table(endpoint));
        })?;
        self.build_ok()?;
        let listing = self.plugins_json(&[])?;
        expect_selected(&listing, SECOND, true)?;
        expect_selected(&listing, FIRST, false)?;
        Ok(())
    }

    fn missing_type(&self) -> anyhow::Result<()> {
        self.set_type_path(SECOND, "e2e_chat_b::NoSuchEndpoint")?;
        let output = self.build()?;
        expect_failure_mentioning(
            &output,
            "the build with a type path naming no type",
            &[
                "NoSuchEndpoint",
                &format!("{SECOND}: [package.metadata.aiperf.plugins.endpoint] chat"),
            ],
        )
    }

    fn missing_trait(&self) -> anyhow::Result<()> {
        let lib = self.outside.join(SECOND).join("src/lib.rs");
        let mut source = std::fs::read_to_string(&lib)?;
        source.push_str("\n/// A type that is not an endpoint.\npub struct NotAnEndpoint;\n");
        std::fs::write(&lib, source)?;
        self.set_type_path(SECOND, "e2e_chat_b::NotAnEndpoint")?;
        let output = self.build()?;
        expect_failure_mentioning(
            &output,
            "the build with a type lacking the Endpoint trait",
            &[
                "cannot be registered as an aiperf",
                &format!("{SECOND}: [package.metadata.aiperf.plugins.endpoint] chat"),
            ],
        )
    }

    /// `cargo xtask new-plugin NAME --category endpoint --name chat --path <outside>/NAME`.
    fn new_plugin(&self, name: &str) -> anyhow::Result<()> {
        let dir = self.outside.join(name);
        let output = self.cargo(&os_args![
            "xtask",
            "new-plugin",
            name,
            "--category",
            "endpoint",
            "--name",
            "chat",
            "--path",
            dir,
        ])?;
        expect_success(&output, "cargo xtask new-plugin")
    }

    /// `cargo add --offline --path <outside>/NAME -p aiperf-cli`.
    fn cargo_add(&self, name: &str) -> anyhow::Result<()> {
        let dir = self.outside.join(name);
        let output = self.cargo(&os_args![
            "add",
            "--offline",
            "--path",
            dir,
            "-p",
            "aiperf-cli",
        ])?;
        expect_success(&output, "cargo add")
    }

    fn build(&self) -> anyhow::Result<Output> {
        self.cargo(&os_args!["build", "--offline", "-p", "aiperf-cli",])
    }

    fn build_ok(&self) -> anyhow::Result<()> {
        expect_success(&self.build()?, "cargo build -p aiperf-cli")
    }

    /// `aiperf plugins endpoint chat --json` from the copy's build.
    fn plugins_json(&self, extra: &[&str]) -> anyhow::Result<Value> {
        let binary = self.artifacts.join("debug/aiperf");
        let output = Command::new(&binary)
            .args(["plugins", "endpoint", "chat", "--json"])
            .args(extra)
            .output()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        expect_success(&output, "aiperf plugins endpoint chat --json")?;
        serde_json::from_slice(&output.stdout).context("aiperf plugins --json printed no JSON")
    }

    fn set_type_path(&self, plugin: &str, path: &str) -> anyhow::Result<()> {
        edit_toml(&self.outside.join(plugin).join("Cargo.toml"), |doc| {
            table_path(
                doc,
                &["package", "metadata", "aiperf", "plugins", "endpoint"],
            )
            .insert("chat", toml_edit::value(path));
        })
    }

    /// A cargo command in the copy, with its own target directory.
    fn cargo(&self, args: &[&std::ffi::OsStr]) -> anyhow::Result<Output> {
        workspace::cargo()
            .args(args)
            .current_dir(&self.workspace)
            .env("CARGO_TARGET_DIR", &self.artifacts)
            .env_remove("CARGO_BUILD_BUILD_DIR")
            .env("CARGO_TERM_COLOR", "never")
            .output()
            .with_context(|| format!("cannot run cargo {args:?}"))
    }
}

fn find<'v>(listing: &'v Value, type_name: &str) -> anyhow::Result<&'v Value> {
    listing["implementations"]
        .as_array()
        .and_then(|list| list.iter().find(|i| i["type_name"] == type_name))
        .with_context(|| format!("{type_name} is not listed: {listing}"))
}

/// Checks that `krate`'s implementation is listed as a plugin, selected or not.
fn expect_selected(listing: &Value, krate: &str, selected: bool) -> anyhow::Result<()> {
    let found = listing["implementations"]
        .as_array()
        .and_then(|list| list.iter().find(|i| i["crate"] == krate))
        .with_context(|| format!("no implementation from {krate} is listed: {listing}"))?;
    if found["is_plugin"] != true || found["is_selected"] != selected {
        bail!(
            "{krate} should be a plugin{} selected: {listing}",
            if selected { "" } else { " not" }
        );
    }
    Ok(())
}

fn expect_success(output: &Output, what: &str) -> anyhow::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed ({}):\n{}",
        output.status,
        tail(&output.stderr)
    )
}

fn expect_failure_mentioning(output: &Output, what: &str, needles: &[&str]) -> anyhow::Result<()> {
    if output.status.success() {
        bail!("{what} succeeded; it should have failed");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let missing: Vec<&&str> = needles.iter().filter(|n| !stderr.contains(**n)).collect();
    if !missing.is_empty() {
        bail!(
            "{what} failed, but its errors do not mention {missing:?}:\n{}",
            tail(&output.stderr)
        );
    }
    Ok(())
}

/// The last lines of a command's output, for failure reports.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn edit_toml(path: &Path, edit: impl FnOnce(&mut DocumentMut)) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut doc: DocumentMut = text
        .parse()
        .with_context(|| format!("cannot parse {}", path.display()))?;
    edit(&mut doc);
    std::fs::write(path, doc.to_string())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The table at `keys`, created (implicit, so no empty headers appear) where missing.
fn table_path<'d>(doc: &'d mut DocumentMut, keys: &[&str]) -> &'d mut Table {
    let mut table = doc.as_table_mut();
    for key in keys {
        let item = table.entry(key).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        table = item
            .as_table_mut()
            .expect("the manifests edited here have tables at these keys");
    }
    table
}

/// Copies `from` into `to`, skipping the `skip` directories. Files keep their modification
/// time, except manifests and lock files. Returns the number of files copied.
fn copy_tree(from: &Path, to: &Path, skip: &[PathBuf]) -> std::io::Result<usize> {
    std::fs::create_dir_all(to)?;
    let mut copied = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        if skip.contains(&path) {
            continue;
        }
        let destination = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copied += copy_tree(&path, &destination, skip)?;
        } else if kind.is_file() {
            std::fs::copy(&path, &destination)?;
            let name = entry.file_name();
            if name != "Cargo.toml" && name != "Cargo.lock" {
                let modified = entry.metadata()?.modified()?;
                std::fs::File::options()
                    .write(true)
                    .open(&destination)?
                    .set_modified(modified)?;
            }
            copied += 1;
        }
    }
    Ok(copied)
}
