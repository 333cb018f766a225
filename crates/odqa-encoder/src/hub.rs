//! Hugging Face hub checkpoints as readers: `hf:ORG/NAME[@REVISION]`.
//!
//! A checkpoint lives in the standard Hugging Face cache, laid out as
//! `huggingface_hub` and the `hf-hub` crate lay it out:
//!
//! ```text
//! $HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME default ~/.cache/huggingface)
//! └── models--ORG--NAME/
//!     ├── refs/main                 the commit hash the branch points at
//!     ├── blobs/…                   file contents (downloads land here)
//!     └── snapshots/<commit>/…      the files by name (links into blobs/)
//! ```
//!
//! [`HubModelId::resolve`] finds a revision there — a branch or tag through
//! `refs/`, a 40-hex commit as `snapshots/<commit>` directly — and checks
//! that the files a QA checkpoint needs are present: `config.json`, the
//! weights (`model.safetensors`, or `model.safetensors.index.json` and every
//! shard it lists), the tokenizer (`tokenizer.json`, else `vocab.txt`) and
//! `tokenizer_config.json` when the repository has one. Online, the files
//! missing from the cache are downloaded with `hf-hub` into that same
//! cache first; with `HF_HUB_OFFLINE` set (to 1, true, yes or on, as
//! `huggingface_hub` reads it) nothing is downloaded and a missing revision
//! or file is an [`EncoderError::HubNotCached`] that names the repository,
//! the revision and the file. Both ways the file choice is one function,
//! over either the cached snapshot or the repository's file list.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::encoder::SAFETENSORS_FILE;
use crate::error::{EncoderError, Result};
use crate::fetch::{CONFIG_FILE, TOKENIZER_FILE};
use crate::hf::{read_shard_index, SAFETENSORS_INDEX_FILE, TOKENIZER_CONFIG_FILE, VOCAB_FILE};

/// What a `--reader` value starts with to name a hub checkpoint.
pub const HUB_PREFIX: &str = "hf:";
/// The revision when none is given.
pub const DEFAULT_REVISION: &str = "main";
/// PyTorch weights, which odqa does not read (named in the error when a
/// repository has only these).
const PYTORCH_WEIGHTS: &str = "pytorch_model.bin";

/// Where a reader comes from: a directory, or a checkpoint on the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderLocation {
    Dir(PathBuf),
    Hub(HubModelId),
}

impl ReaderLocation {
    /// `hf:ORG/NAME[@REVISION]` is a hub checkpoint (and must parse as
    /// one); anything else is a directory (write `./hf:…` for a directory
    /// of that name).
    pub fn parse(arg: &Path) -> Result<Self> {
        match arg.to_str().and_then(|s| s.strip_prefix(HUB_PREFIX)) {
            Some(_) => HubModelId::parse(arg.to_str().unwrap_or_default()).map(Self::Hub),
            None => Ok(Self::Dir(arg.to_path_buf())),
        }
    }

    /// The directory this names: itself, or for a hub checkpoint its
    /// snapshot in the Hugging Face cache (`HF_HOME`; downloaded into it,
    /// with a progress bar when `progress`, unless `HF_HUB_OFFLINE` is set)
    /// together with [`HubCheckpoint::describe`] for the caller to report.
    pub fn local_dir(&self, progress: bool) -> Result<(PathBuf, Option<String>)> {
        match self {
            Self::Dir(dir) => Ok((dir.clone(), None)),
            Self::Hub(id) => {
                let mut settings = HubSettings::from_env()?;
                settings.progress = progress;
                let found = id.resolve(&settings)?;
                let described = found.describe();
                Ok((found.dir, Some(described)))
            }
        }
    }
}

/// A model repository on the hub at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubModelId {
    /// `ORG/NAME` (or a bare `NAME`, as the oldest models are named).
    pub repo: String,
    /// A branch, tag or 40-hex commit; [`DEFAULT_REVISION`] when not given.
    pub revision: String,
}

impl std::fmt::Display for HubModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{HUB_PREFIX}{}@{}", self.repo, self.revision)
    }
}

fn is_commit_hash(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl HubModelId {
    /// Parses `hf:ORG/NAME[@REVISION]`.
    pub fn parse(spec: &str) -> Result<Self> {
        let bad = |detail: &str| EncoderError::HubSpec {
            spec: spec.to_string(),
            detail: detail.to_string(),
        };
        let rest = spec
            .strip_prefix(HUB_PREFIX)
            .ok_or_else(|| bad("it does not start with hf:"))?;
        let (repo, revision) = match rest.split_once('@') {
            Some((repo, rev)) => (repo, Some(rev)),
            None => (rest, None),
        };
        let parts: Vec<&str> = repo.split('/').collect();
        if repo.is_empty() || parts.len() > 2 {
            return Err(bad("the model id must be ORG/NAME"));
        }
        for part in &parts {
            let ok_chars = part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if part.is_empty()
                || !ok_chars
                || part.starts_with(['.', '-'])
                || part.ends_with(['.', '-'])
                || part.contains("--")
                || part.contains("..")
                || part.len() > 96
            {
                return Err(bad(&format!(
                    "{part:?} is not a hub name (letters, digits, '-', '_', '.'; \
                     no '--' or '..', not starting or ending with '-' or '.')"
                )));
            }
        }
        let revision = match revision {
            None => DEFAULT_REVISION.to_string(),
            Some(rev) => {
                let ok = !rev.is_empty()
                    && rev.len() <= 256
                    && !rev.starts_with('/')
                    && !rev.ends_with('/')
                    && rev
                        .split('/')
                        .all(|c| !c.is_empty() && c != "." && c != "..")
                    && !rev
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || c == '\\');
                if !ok {
                    return Err(bad(&format!(
                        "revision {rev:?} is not a branch, tag or commit"
                    )));
                }
                rev.to_string()
            }
        };
        Ok(HubModelId {
            repo: repo.to_string(),
            revision,
        })
    }

    /// Whether the revision is a full commit hash (found in `snapshots/`
    /// directly; immutable, so a complete cached copy needs no network).
    pub fn is_commit(&self) -> bool {
        is_commit_hash(&self.revision)
    }

    /// The repository's directory name in the cache: `models--ORG--NAME`.
    pub fn folder_name(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }

    /// Finds (and, unless offline, downloads) the checkpoint; see the
    /// module documentation.
    pub fn resolve(&self, settings: &HubSettings) -> Result<HubCheckpoint> {
        if settings.offline {
            return resolve_cached(self, settings, offline_hint());
        }
        if self.is_commit() {
            if let Ok(found) = resolve_cached(self, settings, String::new()) {
                return Ok(found);
            }
        }
        online::resolve(self, settings)
    }
}

/// Where the cache is and whether the hub may be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// The hub cache directory (the one holding `models--…`).
    pub cache_dir: PathBuf,
    /// `HF_HUB_OFFLINE`: read the cache only.
    pub offline: bool,
    /// `HF_ENDPOINT` (default `https://huggingface.co`).
    pub endpoint: Option<String>,
    /// `HF_TOKEN` (else `hf-hub` reads the token file beside the cache).
    pub token: Option<String>,
    /// Progress bars while downloading.
    pub progress: bool,
}

impl HubSettings {
    /// From the environment, as `huggingface_hub` reads it: the cache is
    /// `HF_HUB_CACHE`, else `$HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|k| std::env::var_os(k))
    }

    /// [`HubSettings::from_env`] over any variable lookup.
    pub fn from_vars(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Self> {
        let set = |k: &str| var(k).filter(|v| !v.is_empty());
        let cache_dir = if let Some(dir) = set("HF_HUB_CACHE") {
            PathBuf::from(dir)
        } else if let Some(home) = set("HF_HOME") {
            PathBuf::from(home).join("hub")
        } else if let Some(xdg) = set("XDG_CACHE_HOME") {
            PathBuf::from(xdg).join("huggingface").join("hub")
        } else if let Some(home) = set("HOME") {
            PathBuf::from(home)
                .join(".cache")
                .join("huggingface")
                .join("hub")
        } else {
            return Err(EncoderError::Hub {
                repo: "(any)".into(),
                detail: "no Hugging Face cache: set HF_HOME (or HF_HUB_CACHE, or HOME)".into(),
            });
        };
        let offline = set("HF_HUB_OFFLINE").is_some_and(|v| is_true(&v));
        let text = |k: &str| set(k).and_then(|v| v.into_string().ok());
        Ok(HubSettings {
            cache_dir,
            offline,
            endpoint: text("HF_ENDPOINT"),
            token: text("HF_TOKEN"),
            progress: false,
        })
    }
}

/// `huggingface_hub`'s truth values for environment flags.
fn is_true(value: &OsStr) -> bool {
    value.to_str().is_some_and(|v| {
        ["1", "ON", "YES", "TRUE"].contains(&v.trim().to_ascii_uppercase().as_str())
    })
}

fn offline_hint() -> String {
    "; HF_HUB_OFFLINE is set, so nothing is downloaded (unset it to fetch the checkpoint)".into()
}

/// How a resolved checkpoint was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubOrigin {
    /// Every file was already in the cache.
    Cache,
    /// Some files were downloaded into the cache.
    Downloaded,
    /// The hub could not be reached; the cached snapshot is used.
    CacheAfterError(String),
}

/// A hub checkpoint found in the cache: its snapshot directory loads like
/// any checkpoint directory ([`crate::QaModel::load_hf`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubCheckpoint {
    pub id: HubModelId,
    /// The commit the revision resolved to.
    pub commit: String,
    /// `…/models--ORG--NAME/snapshots/<commit>`.
    pub dir: PathBuf,
    /// The files odqa uses, by name.
    pub files: Vec<String>,
    pub origin: HubOrigin,
}

impl HubCheckpoint {
    /// One line for stderr: what was resolved to where, and how.
    pub fn describe(&self) -> String {
        let how = match &self.origin {
            HubOrigin::Cache => "from the Hugging Face cache".to_string(),
            HubOrigin::Downloaded => "downloaded into the Hugging Face cache".to_string(),
            HubOrigin::CacheAfterError(e) => {
                format!("from the Hugging Face cache (the hub is unreachable: {e})")
            }
        };
        format!(
            "{}: commit {} {how}: {}",
            self.id,
            self.commit,
            self.dir.display()
        )
    }
}

/// The files of one snapshot, cached or on the hub: the checkpoint's file
/// choice ([`choose_files`]) runs over either.
trait Snapshot {
    /// Whether the snapshot has `name`.
    fn has(&self, name: &str) -> bool;
    /// The local path of `name` (downloading it if need be); called only
    /// for names [`Snapshot::has`] says are there.
    fn get(&mut self, name: &str) -> Result<PathBuf>;
    /// The error for a file the checkpoint needs and the snapshot lacks.
    fn missing(&self, what: String) -> EncoderError;
}

/// Gets the files a QA checkpoint needs from `snapshot`: config, weights
/// (single or every shard), tokenizer (+ its config when there). Returns
/// their names and the one directory they are in.
fn choose_files(snapshot: &mut dyn Snapshot) -> Result<(Vec<String>, PathBuf)> {
    let mut paths = Vec::new();
    let mut names = Vec::new();
    let mut need = |s: &mut dyn Snapshot, name: &str, what: &str| -> Result<PathBuf> {
        if !s.has(name) {
            return Err(s.missing(what.to_string()));
        }
        let path = s.get(name)?;
        names.push(name.to_string());
        paths.push(path.clone());
        Ok(path)
    };
    need(snapshot, CONFIG_FILE, CONFIG_FILE)?;
    if snapshot.has(SAFETENSORS_FILE) {
        need(snapshot, SAFETENSORS_FILE, SAFETENSORS_FILE)?;
    } else if snapshot.has(SAFETENSORS_INDEX_FILE) {
        let index = need(snapshot, SAFETENSORS_INDEX_FILE, SAFETENSORS_INDEX_FILE)?;
        let (shards, _) = read_shard_index(&index)?;
        for shard in shards {
            need(
                snapshot,
                &shard,
                &format!("{shard} (a weights shard listed in {SAFETENSORS_INDEX_FILE})"),
            )?;
        }
    } else {
        let only_pytorch = if snapshot.has(PYTORCH_WEIGHTS) {
            format!(
                "; it has only {PYTORCH_WEIGHTS}, which odqa does not read \
                 (convert it to safetensors)"
            )
        } else {
            String::new()
        };
        return Err(snapshot.missing(format!(
            "weights ({SAFETENSORS_FILE} or {SAFETENSORS_INDEX_FILE}){only_pytorch}"
        )));
    }
    if snapshot.has(TOKENIZER_FILE) {
        need(snapshot, TOKENIZER_FILE, TOKENIZER_FILE)?;
    } else if snapshot.has(VOCAB_FILE) {
        need(snapshot, VOCAB_FILE, VOCAB_FILE)?;
    } else {
        return Err(snapshot.missing(format!("tokenizer ({TOKENIZER_FILE} or {VOCAB_FILE})")));
    }
    if snapshot.has(TOKENIZER_CONFIG_FILE) {
        need(snapshot, TOKENIZER_CONFIG_FILE, TOKENIZER_CONFIG_FILE)?;
    }
    let dir = paths
        .first()
        .and_then(|p| p.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    if let Some(stray) = paths.iter().find(|p| p.parent() != Some(dir.as_path())) {
        return Err(snapshot.missing(format!(
            "{} in the snapshot directory {} (it is at {})",
            stray.file_name().unwrap_or_default().to_string_lossy(),
            dir.display(),
            stray.display()
        )));
    }
    Ok((names, dir))
}

/// A snapshot directory already in the cache.
struct CachedSnapshot<'a> {
    id: &'a HubModelId,
    dir: PathBuf,
    cache: PathBuf,
    hint: String,
}

impl Snapshot for CachedSnapshot<'_> {
    fn has(&self, name: &str) -> bool {
        // Follows the link into blobs/: a dangling one is not there.
        self.dir.join(name).is_file()
    }

    fn get(&mut self, name: &str) -> Result<PathBuf> {
        Ok(self.dir.join(name))
    }

    fn missing(&self, what: String) -> EncoderError {
        not_cached(self.id, what, &self.cache, &self.hint)
    }
}

fn not_cached(id: &HubModelId, missing: String, cache: &Path, hint: &str) -> EncoderError {
    EncoderError::HubNotCached {
        checkpoint: id.to_string(),
        missing,
        cache: cache.to_path_buf(),
        hint: hint.to_string(),
    }
}

/// The commit a revision is at in the cache: a commit hash itself when its
/// snapshot is there, else what `refs/<revision>` holds.
fn cached_commit(id: &HubModelId, repo_dir: &Path, hint: &str) -> Result<String> {
    let snapshots = repo_dir.join("snapshots");
    if id.is_commit() {
        if snapshots.join(&id.revision).is_dir() {
            return Ok(id.revision.clone());
        }
        return Err(not_cached(
            id,
            format!("commit {} (snapshots/{})", id.revision, id.revision),
            repo_dir,
            hint,
        ));
    }
    let ref_path = repo_dir.join("refs").join(&id.revision);
    let commit = match std::fs::read_to_string(&ref_path) {
        Ok(text) => text.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let what = if repo_dir.is_dir() {
                format!("revision {} (refs/{})", id.revision, id.revision)
            } else {
                "the repository".to_string()
            };
            return Err(not_cached(id, what, repo_dir, hint));
        }
        Err(e) => return Err(EncoderError::io(ref_path, e)),
    };
    if !is_commit_hash(&commit) {
        return Err(EncoderError::Hub {
            repo: id.repo.clone(),
            detail: format!(
                "{}: holds {commit:?}, not a commit hash",
                ref_path.display()
            ),
        });
    }
    if !snapshots.join(&commit).is_dir() {
        return Err(not_cached(
            id,
            format!("snapshot {commit} (refs/{} points to it)", id.revision),
            repo_dir,
            hint,
        ));
    }
    Ok(commit)
}

/// The checkpoint from the cache alone.
fn resolve_cached(id: &HubModelId, settings: &HubSettings, hint: String) -> Result<HubCheckpoint> {
    let repo_dir = settings.cache_dir.join(id.folder_name());
    let commit = cached_commit(id, &repo_dir, &hint)?;
    let dir = repo_dir.join("snapshots").join(&commit);
    let mut snapshot = CachedSnapshot {
        id,
        cache: dir.clone(),
        dir,
        hint,
    };
    let (files, dir) = choose_files(&mut snapshot)?;
    Ok(HubCheckpoint {
        id: id.clone(),
        commit,
        dir,
        files,
        origin: HubOrigin::Cache,
    })
}

/// Asking the hub (`hf-hub`, blocking): the revision's commit and file
/// list, then each missing file downloaded at that commit.
mod online {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use hf_hub::api::sync::{ApiBuilder, ApiError, ApiRepo};
    use hf_hub::{Cache, Repo, RepoType};

    use super::{
        choose_files, is_commit_hash, resolve_cached, HubCheckpoint, HubModelId, HubOrigin,
        HubSettings, Snapshot,
    };
    use crate::error::{EncoderError, Result};

    struct HubSnapshot<'a> {
        id: &'a HubModelId,
        repo: ApiRepo,
        names: BTreeSet<String>,
        dir: PathBuf,
        downloaded: bool,
    }

    impl Snapshot for HubSnapshot<'_> {
        fn has(&self, name: &str) -> bool {
            self.names.contains(name)
        }

        fn get(&mut self, name: &str) -> Result<PathBuf> {
            let local = self.dir.join(name);
            if local.is_file() {
                return Ok(local);
            }
            self.downloaded = true;
            self.repo.download(name).map_err(|e| EncoderError::Hub {
                repo: self.id.repo.clone(),
                detail: format!("downloading {name} at {}: {e}", self.id.revision),
            })
        }

        fn missing(&self, what: String) -> EncoderError {
            EncoderError::HubMissingFile {
                repo: self.id.repo.clone(),
                revision: self.id.revision.clone(),
                missing: what,
            }
        }
    }

    /// Whether an error means the hub was not reached (then a cached copy
    /// is used, as `huggingface_hub` does), rather than an answer from it.
    fn unreachable(e: &ApiError) -> bool {
        match e {
            ApiError::RequestError(e) => matches!(**e, ureq::Error::Transport(_)),
            _ => false,
        }
    }

    pub(super) fn resolve(id: &HubModelId, settings: &HubSettings) -> Result<HubCheckpoint> {
        let hub_err = |detail: String| EncoderError::Hub {
            repo: id.repo.clone(),
            detail,
        };
        let cache_dir = std::path::absolute(&settings.cache_dir)
            .map_err(|e| EncoderError::io(&settings.cache_dir, e))?;
        let mut builder = ApiBuilder::from_cache(Cache::new(cache_dir.clone()))
            .with_progress(settings.progress)
            .with_user_agent("odqa", env!("CARGO_PKG_VERSION"));
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
        }
        if let Some(token) = &settings.token {
            builder = builder.with_token(Some(token.clone()));
        }
        let api = builder
            .build()
            .map_err(|e| hub_err(format!("cannot set up the hub client: {e}")))?;
        let info = api
            .repo(Repo::with_revision(
                id.repo.clone(),
                RepoType::Model,
                id.revision.clone(),
            ))
            .info();
        let info = match info {
            Ok(info) => info,
            Err(e) if unreachable(&e) => {
                let mut cached =
                    resolve_cached(id, settings, format!("; the hub is unreachable ({e})"))?;
                cached.origin = HubOrigin::CacheAfterError(e.to_string());
                return Ok(cached);
            }
            Err(e) => {
                return Err(hub_err(format!(
                    "revision {} not found on the hub: {e}",
                    id.revision
                )))
            }
        };
        if !is_commit_hash(&info.sha) {
            return Err(hub_err(format!(
                "the hub answered commit {:?} for revision {}",
                info.sha, id.revision
            )));
        }
        let repo_dir = cache_dir.join(id.folder_name());
        // Downloads at the commit itself, so every file lands in one
        // snapshot even if the branch moves meanwhile. hf-hub records the
        // download's revision as a ref; huggingface_hub keeps no ref named
        // after a commit, so that one is removed unless it was there before.
        let stray_ref = repo_dir.join("refs").join(&info.sha);
        let stray_existed = stray_ref.exists();
        let mut snapshot = HubSnapshot {
            id,
            repo: api.repo(Repo::with_revision(
                id.repo.clone(),
                RepoType::Model,
                info.sha.clone(),
            )),
            names: info.siblings.into_iter().map(|s| s.rfilename).collect(),
            dir: repo_dir.join("snapshots").join(&info.sha),
            downloaded: false,
        };
        let chosen = choose_files(&mut snapshot);
        if !stray_existed {
            let _ = std::fs::remove_file(&stray_ref);
        }
        let (files, dir) = chosen?;
        if !id.is_commit() {
            let ref_path = repo_dir.join("refs").join(&id.revision);
            let write = ref_path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&ref_path, &info.sha));
            write.map_err(|e| EncoderError::io(&ref_path, e))?;
        }
        Ok(HubCheckpoint {
            id: id.clone(),
            commit: info.sha,
            dir,
            files,
            origin: if snapshot.downloaded {
                HubOrigin::Downloaded
            } else {
                HubOrigin::Cache
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_revisions() {
        let id = HubModelId::parse("hf:monologg/koelectra-base-v3-finetuned-korquad").unwrap();
        assert_eq!(id.repo, "monologg/koelectra-base-v3-finetuned-korquad");
        assert_eq!(id.revision, "main");
        assert_eq!(
            id.folder_name(),
            "models--monologg--koelectra-base-v3-finetuned-korquad"
        );
        let id = HubModelId::parse("hf:klue/roberta-base@v1.0").unwrap();
        assert_eq!(
            (id.repo.as_str(), id.revision.as_str()),
            ("klue/roberta-base", "v1.0")
        );
        assert!(!id.is_commit());
        let hash = "0123456789abcdef0123456789abcdef01234567";
        assert!(HubModelId::parse(&format!("hf:a/b@{hash}"))
            .unwrap()
            .is_commit());
        assert!(HubModelId::parse("hf:a/b@refs/pr/1").is_ok());
        assert!(HubModelId::parse("hf:bert-base-uncased").is_ok());
        for bad in [
            "hf:",
            "hf:a/b/c",
            "hf:a//b",
            "hf:../x",
            "hf:a/b@",
            "hf:a/b@../main",
            "hf:a/b@x y",
            "hf:a--b/c",
            "hf:a/b@/main",
            "hf:-a/b",
        ] {
            let e = HubModelId::parse(bad).unwrap_err();
            assert!(matches!(e, EncoderError::HubSpec { .. }), "{bad}: {e}");
        }
        assert_eq!(
            ReaderLocation::parse(Path::new("models/x")).unwrap(),
            ReaderLocation::Dir("models/x".into())
        );
        assert!(matches!(
            ReaderLocation::parse(Path::new("hf:a/b")).unwrap(),
            ReaderLocation::Hub(_)
        ));
        assert!(ReaderLocation::parse(Path::new("hf:a b")).is_err());
    }

    #[test]
    fn settings_follow_the_environment() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let s = HubSettings::from_vars(vars(&[("HOME", "/h")])).unwrap();
        assert_eq!(s.cache_dir, Path::new("/h/.cache/huggingface/hub"));
        assert!(!s.offline);
        let s = HubSettings::from_vars(vars(&[
            ("HOME", "/h"),
            ("XDG_CACHE_HOME", "/x"),
            ("HF_HOME", "/hf"),
            ("HF_HUB_OFFLINE", "1"),
        ]))
        .unwrap();
        assert_eq!(s.cache_dir, Path::new("/hf/hub"));
        assert!(s.offline);
        let s =
            HubSettings::from_vars(vars(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/c")])).unwrap();
        assert_eq!(s.cache_dir, Path::new("/c"));
        let s = HubSettings::from_vars(vars(&[("XDG_CACHE_HOME", "/x")])).unwrap();
        assert_eq!(s.cache_dir, Path::new("/x/huggingface/hub"));
        for (v, want) in [
            ("true", true),
            ("YES", true),
            ("on", true),
            ("0", false),
            ("no", false),
        ] {
            assert_eq!(is_true(OsStr::new(v)), want, "{v}");
        }
        assert!(HubSettings::from_vars(|_| None).is_err());
    }
}
