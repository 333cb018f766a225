//! Naming corpora: `--corpus NAME` resolved through the manifests under
//! `corpora/` (`corpora/NAME.toml`: a name and candidate paths, the first
//! that exists wins), or a path given as is.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Corpora tried, in order, when no corpus is named: the mini Wikipedia
/// slice where `../shared` is beside the checkout, else the committed demo
/// corpus, so a fresh clone always has one.
pub const DEFAULT_CORPORA: &[&str] = &["kowiki-2020-mini", "odqa-demo"];

/// Why a corpus name could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Neither an existing path nor the name of a manifest.
    #[error("corpus {name:?} is neither a path nor a manifest ({} not found; run from the repository root or set ODQA_CORPORA)", manifest.display())]
    Unknown {
        /// The name asked for.
        name: String,
        /// The manifest looked for.
        manifest: PathBuf,
    },
    /// The manifest exists but none of its paths do.
    #[error("corpus {name:?}: none of its paths exist ({}); see {} for how to obtain it", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "), manifest.display())]
    Missing {
        /// The name asked for.
        name: String,
        /// The manifest's candidate paths, as written there.
        paths: Vec<PathBuf>,
        /// The manifest.
        manifest: PathBuf,
    },
    /// Reading the manifest failed.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The manifest.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid TOML of the expected shape.
    #[error("parsing {}: {source}", path.display())]
    Parse {
        /// The manifest.
        path: PathBuf,
        /// What the TOML parser said.
        #[source]
        source: toml::de::Error,
    },
    /// No corpus was named and none of [`DEFAULT_CORPORA`] is available.
    #[error("no default corpus is available:\n  {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    NoDefault(Vec<CatalogError>),
}

#[derive(Debug, Deserialize)]
struct CorpusManifest {
    name: String,
    paths: Vec<PathBuf>,
    #[serde(default)]
    sample_questions: Vec<String>,
}

/// A corpus to read: its name (which names its default index) and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCorpus {
    /// The manifest's name, or for a path its file name up to the first dot.
    pub name: String,
    /// The corpus file or directory (it exists).
    pub path: PathBuf,
    /// Questions the corpus answers, for demos (the manifest's
    /// `sample_questions`; none for a corpus given by path).
    pub sample_questions: Vec<String>,
}

impl ResolvedCorpus {
    /// Where odqa keeps this corpus's index unless told otherwise: `index/NAME`.
    pub fn default_index_dir(&self) -> PathBuf {
        Path::new("index").join(&self.name)
    }
}

/// The directory holding corpus manifests: `$ODQA_CORPORA`, else `./corpora`.
pub fn manifests_dir() -> PathBuf {
    std::env::var_os("ODQA_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("corpora"))
}

/// `spec` is an existing path, or the name of a manifest in
/// [`manifests_dir`]; `None` takes the first available of
/// [`DEFAULT_CORPORA`].
pub fn resolve_corpus(spec: Option<&str>) -> Result<ResolvedCorpus, CatalogError> {
    let dir = manifests_dir();
    let Some(spec) = spec else {
        let mut errors = Vec::new();
        for name in DEFAULT_CORPORA {
            match from_manifest(&dir, name) {
                Ok(corpus) => return Ok(corpus),
                Err(err) => errors.push(err),
            }
        }
        return Err(CatalogError::NoDefault(errors));
    };
    let path = Path::new(spec);
    if !path.exists() {
        return from_manifest(&dir, spec);
    }
    let name = path
        .file_name()
        .map(|n| {
            let n = n.to_string_lossy();
            n.split('.').next().unwrap_or("corpus").to_string()
        })
        .unwrap_or_else(|| "corpus".into());
    Ok(ResolvedCorpus {
        name,
        path: path.to_path_buf(),
        sample_questions: Vec::new(),
    })
}

fn from_manifest(dir: &Path, name: &str) -> Result<ResolvedCorpus, CatalogError> {
    let file = dir.join(format!("{name}.toml"));
    if !file.is_file() {
        return Err(CatalogError::Unknown {
            name: name.into(),
            manifest: file,
        });
    }
    let text = std::fs::read_to_string(&file).map_err(|source| CatalogError::Read {
        path: file.clone(),
        source,
    })?;
    let manifest: CorpusManifest = toml::from_str(&text).map_err(|source| CatalogError::Parse {
        path: file.clone(),
        source,
    })?;
    // Manifest paths are relative to the repository root, the parent of corpora/.
    let root = match dir.parent() {
        Some(root) if !root.as_os_str().is_empty() => root.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let found = manifest
        .paths
        .iter()
        .map(|candidate| root.join(candidate)) // an absolute candidate replaces root
        .find(|path| path.exists());
    match found {
        Some(path) => Ok(ResolvedCorpus {
            name: manifest.name,
            path,
            sample_questions: manifest.sample_questions,
        }),
        None => Err(CatalogError::Missing {
            name: name.into(),
            paths: manifest.paths,
            manifest: file,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_resolve_to_their_first_existing_path() -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        let corpora = root.path().join("corpora");
        std::fs::create_dir_all(&corpora)?;
        std::fs::write(root.path().join("b.jsonl"), "")?;
        std::fs::write(
            corpora.join("wiki.toml"),
            "name = \"wiki\"\npaths = [\"a.jsonl\", \"b.jsonl\"]\nsample_questions = [\"누구?\"]\n",
        )?;
        std::fs::write(
            corpora.join("gone.toml"),
            "name = \"gone\"\npaths = [\"x.jsonl\"]\n",
        )?;
        std::fs::write(corpora.join("bad.toml"), "name = 3\n")?;
        let found = from_manifest(&corpora, "wiki")?;
        assert_eq!(found.name, "wiki");
        assert_eq!(found.path, root.path().join("b.jsonl"));
        assert_eq!(found.default_index_dir(), Path::new("index/wiki"));
        assert_eq!(found.sample_questions, ["누구?"]);
        let missing = from_manifest(&corpora, "gone").map(|_| ()).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("none of its paths exist (x.jsonl)"),
            "{missing}"
        );
        let unknown = from_manifest(&corpora, "nope").map(|_| ()).unwrap_err();
        assert!(matches!(unknown, CatalogError::Unknown { .. }), "{unknown}");
        let bad = from_manifest(&corpora, "bad").map(|_| ()).unwrap_err();
        assert!(bad.to_string().starts_with("parsing "), "{bad}");
        Ok(())
    }

    #[test]
    fn an_existing_path_is_named_by_its_file_stem() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("kowiki.part1.jsonl.zst");
        std::fs::write(&path, "")?;
        let spec = path.to_string_lossy().into_owned();
        let found = resolve_corpus(Some(&spec))?;
        assert_eq!((found.name.as_str(), found.path), ("kowiki", path));
        Ok(())
    }
}
