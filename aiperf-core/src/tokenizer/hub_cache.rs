//! HuggingFace Hub model ids (`meta-llama/Llama-3.1-8B-Instruct`, the `--tokenizer` AIPerf is
//! usually given) found in the local Hub cache, as `huggingface_hub` lays it out:
//! `models--{org}--{name}/refs/{revision}` holds a commit, whose files are in
//! `models--{org}--{name}/snapshots/{commit}/`. Nothing is downloaded: a model served on this
//! machine (vLLM, SGLang) or fetched with `hf download` is already there.

use std::path::{Path, PathBuf};

use super::TOKENIZER_FILE_NAME;

/// The revision a Hub model id means when none is given (`--tokenizer-revision`).
pub const DEFAULT_REVISION: &str = "main";

/// The local HuggingFace Hub cache: a directory of `models--{org}--{name}` directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubCache {
    root: PathBuf,
}

impl HubCache {
    /// The cache at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache `huggingface_hub` uses: `$HF_HUB_CACHE` (or the older
    /// `$HUGGINGFACE_HUB_CACHE`), else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`,
    /// else `~/.cache/huggingface/hub`; `None` when no variable gives a place.
    pub fn from_env() -> Option<Self> {
        let var = |name| std::env::var_os(name).filter(|value| !value.is_empty());
        let root = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .or_else(|| var("HF_HOME").map(|home| PathBuf::from(home).join("hub")))
            .or_else(|| {
                var("XDG_CACHE_HOME").map(|cache| PathBuf::from(cache).join("huggingface/hub"))
            })
            .or_else(|| {
                var("HOME").map(|home| PathBuf::from(home).join(".cache/huggingface/hub"))
            })?;
        Some(Self::at(root))
    }

    /// Where the cache is.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cached `tokenizer.json` of model `repo_id` at `revision` (a branch or tag the cache
    /// has a ref for, or a commit), if the cache holds it.
    pub fn tokenizer_file(&self, repo_id: &str, revision: &str) -> Option<PathBuf> {
        let model = self
            .root
            .join(format!("models--{}", repo_id.replace('/', "--")));
        let commit = match std::fs::read_to_string(model.join("refs").join(revision)) {
            Ok(commit) => commit.trim().to_owned(),
            Err(_) if is_commit(revision) => revision.to_owned(),
            Err(_) => return None,
        };
        let file = model
            .join("snapshots")
            .join(commit)
            .join(TOKENIZER_FILE_NAME);
        file.is_file().then_some(file)
    }
}

/// Whether a `--tokenizer` value names a Hub model: not `builtin`, not a path that exists, and
/// shaped as a model id ([`is_repo_id`]).
pub fn names_hub_model(spec: &str) -> bool {
    spec != super::BUILTIN_SPEC && is_repo_id(spec) && !Path::new(spec).exists()
}

/// Whether `spec` has the shape of a Hub model id: `name` or `org/name`, of letters, digits,
/// `-`, `_` and `.`, neither part starting with `.` (so `./tok.json` and `../x` are paths),
/// and not a `.json` file's name.
pub fn is_repo_id(spec: &str) -> bool {
    if spec.ends_with(".json") {
        return false;
    }
    let part_ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match spec.split_once('/') {
        Some((org, name)) => part_ok(org) && part_ok(name),
        None => part_ok(spec),
    }
}

/// Whether `revision` is a full commit hash (40 hexadecimal digits).
fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    /// A cache holding `org/model`'s tokenizer at `COMMIT`, which `main` and `v1` point to.
    fn cache() -> (tempfile::TempDir, HubCache) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let model = dir.path().join("models--org--model");
        std::fs::create_dir_all(model.join("refs")).unwrap();
        std::fs::write(model.join("refs/main"), format!("{COMMIT}\n")).unwrap();
        std::fs::write(model.join("refs/v1"), COMMIT).unwrap();
        let snapshot = model.join("snapshots").join(COMMIT);
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::write(snapshot.join(TOKENIZER_FILE_NAME), "{}").unwrap();
        let cache = HubCache::at(dir.path());
        (dir, cache)
    }

    #[test]
    fn a_cached_model_is_found_by_branch_tag_or_commit() {
        let (dir, cache) = cache();
        let expected = dir
            .path()
            .join("models--org--model/snapshots")
            .join(COMMIT)
            .join(TOKENIZER_FILE_NAME);
        for revision in [DEFAULT_REVISION, "v1", COMMIT] {
            assert_eq!(
                cache.tokenizer_file("org/model", revision).as_ref(),
                Some(&expected),
                "{revision}"
            );
        }
    }

    #[test]
    fn what_the_cache_lacks_is_none() {
        let (_dir, cache) = cache();
        assert_eq!(cache.tokenizer_file("org/other", DEFAULT_REVISION), None);
        assert_eq!(cache.tokenizer_file("org/model", "v2"), None);
        let other_commit = "f".repeat(40);
        assert_eq!(cache.tokenizer_file("org/model", &other_commit), None);
    }

    #[test]
    fn model_ids_are_told_from_paths() {
        for id in [
            "gpt2",
            "meta-llama/Llama-3.1-8B-Instruct",
            "Qwen/Qwen2.5-0.5B",
        ] {
            assert!(is_repo_id(id), "{id}");
        }
        for path in [
            "",
            "./tokenizer.json",
            "../models/x",
            "/abs/tokenizer.json",
            "a/b/c",
            "org/",
            "org/.hidden",
            "with space/x",
            "tokenizer.json",
            "models/tok.json",
        ] {
            assert!(!is_repo_id(path), "{path}");
        }
    }
}
