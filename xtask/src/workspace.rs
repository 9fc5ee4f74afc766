//! Where the workspace is and how to run its cargo: the facts every xtask command starts from.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The root of the workspace the current directory is in, as `cargo locate-project --workspace`
/// finds it.
///
/// Found at run time, not from this crate's compile-time `CARGO_MANIFEST_DIR`: a copy of the
/// workspace (as `cargo xtask e2e` makes) may run an xtask binary compiled from the original,
/// since cargo reuses artifacts of identical sources at the same place in a workspace.
pub fn root() -> anyhow::Result<PathBuf> {
    let output = cargo()
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .output()
        .context("cannot run `cargo locate-project`")?;
    if !output.status.success() {
        bail!(
            "cannot find the workspace from the current directory: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let manifest = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("`cargo locate-project` printed no manifest path")
}

/// A `cargo` command: the cargo that runs this xtask (`CARGO`), else the one on `PATH`.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// What a measuring command (`bench`, `soak`) starts from: the release `aiperf` it just built
/// and an emptied output directory of its own.
#[derive(Debug)]
pub struct ReleaseRun {
    /// `<target>/release/aiperf`, freshly built.
    pub binary: PathBuf,
    /// `<target>/<name>`, created empty.
    pub dir: PathBuf,
}

/// Builds `aiperf-cli` in release and prepares `<target>/<name>` (removing what an earlier run
/// left there).
pub fn release_run(name: &str) -> anyhow::Result<ReleaseRun> {
    let root = root()?;
    let status = cargo()
        .args(["build", "--release", "-p", "aiperf-cli"])
        .current_dir(&root)
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("`cargo build --release -p aiperf-cli` failed");
    }
    let target = cargo_metadata::MetadataCommand::new()
        .manifest_path(root.join("Cargo.toml"))
        .no_deps()
        .exec()
        .context("cannot read the workspace's metadata")?
        .target_directory
        .into_std_path_buf();
    let dir = target.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(ReleaseRun {
        binary: target.join("release/aiperf"),
        dir,
    })
}

/// `path` made absolute against the current directory, with `.` and `..` removed lexically.
pub fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The relative path from directory `from` to `to` (both absolute and normalized), as a
/// Cargo.toml `path = "..."` wants it, with `/` separators.
pub fn relative(from: &Path, to: &Path) -> String {
    let from: Vec<Component<'_>> = from.components().collect();
    let to: Vec<Component<'_>> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_then_descend() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            relative(&p("/w/plugins/fast"), &p("/w/aiperf-core")),
            "../../aiperf-core"
        );
        assert_eq!(
            relative(&p("/tmp/out/fast"), &p("/w/aiperf-core")),
            "../../../w/aiperf-core"
        );
        assert_eq!(relative(&p("/w"), &p("/w/a/b")), "a/b");
        assert_eq!(relative(&p("/w"), &p("/w")), ".");
    }

    #[test]
    fn absolute_removes_dots() {
        assert_eq!(
            absolute(Path::new("/a/b/../c/./d")).unwrap(),
            PathBuf::from("/a/c/d")
        );
    }
}
