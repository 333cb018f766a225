//! Resolving `--corpus NAME` through the manifests under `corpora/`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Corpora tried, in order, when no `--corpus` is given.
const DEFAULT_CORPORA: &[&str] = &["kowiki-2020-mini", "odqa-demo"];

#[derive(Debug, Deserialize)]
struct CorpusManifest {
    name: String,
    paths: Vec<PathBuf>,
}

/// A corpus to read: its name (for default index paths) and location.
#[derive(Debug, Clone)]
pub struct ResolvedCorpus {
    pub name: String,
    pub path: PathBuf,
}

/// The directory holding corpus manifests: `$ODQA_CORPORA`, else
/// `./corpora`.
fn manifests_dir() -> PathBuf {
    std::env::var_os("ODQA_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("corpora"))
}

/// `spec` is an existing path, or the name of a manifest `corpora/NAME.toml`
/// whose first existing path is used.
pub fn resolve(spec: Option<&str>) -> Result<ResolvedCorpus> {
    match spec {
        Some(spec) => {
            let path = Path::new(spec);
            if path.exists() {
                let name = path
                    .file_name()
                    .map(|n| {
                        n.to_string_lossy()
                            .split('.')
                            .next()
                            .unwrap_or("corpus")
                            .to_string()
                    })
                    .unwrap_or_else(|| "corpus".into());
                return Ok(ResolvedCorpus {
                    name,
                    path: path.to_path_buf(),
                });
            }
            from_manifest(spec)
        }
        None => {
            let mut errors = Vec::new();
            for name in DEFAULT_CORPORA {
                match from_manifest(name) {
                    Ok(corpus) => return Ok(corpus),
                    Err(err) => errors.push(format!("{err:#}")),
                }
            }
            bail!("no default corpus is available:\n  {}", errors.join("\n  "))
        }
    }
}

fn from_manifest(name: &str) -> Result<ResolvedCorpus> {
    let dir = manifests_dir();
    let file = dir.join(format!("{name}.toml"));
    if !file.is_file() {
        bail!(
            "corpus {name:?} is neither a path nor a manifest ({} not found; run from the repository root or set ODQA_CORPORA)",
            file.display()
        );
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let manifest: CorpusManifest =
        toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    // Manifest paths are relative to the repository root, the parent of corpora/.
    let root = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let root = if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root
    };
    for candidate in &manifest.paths {
        let path = if candidate.is_absolute() {
            candidate.clone()
        } else {
            root.join(candidate)
        };
        if path.exists() {
            return Ok(ResolvedCorpus {
                name: manifest.name,
                path,
            });
        }
    }
    bail!(
        "corpus {name:?}: none of its paths exist ({}); see {} for how to obtain it",
        manifest
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        file.display()
    )
}
