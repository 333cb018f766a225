//! What the binary's end-to-end tests share: where the repository and the
//! model cache are, running `odqa`, reading its output.

// Each test crate uses its own subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The model cache the encoder tests fill (PyPI, once).
pub fn odqa_home() -> PathBuf {
    std::env::var_os("ODQA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/odqa-home"))
}

/// `odqa ARGS --quiet` from the repository root, with the shared model cache.
pub fn odqa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_odqa"))
        .args(args)
        .arg("--quiet")
        .env("ODQA_HOME", odqa_home())
        .current_dir(repo_root())
        .output()
        .expect("odqa runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Standard output, then standard error.
pub fn text(output: &Output) -> String {
    format!("{}{}", stdout(output), stderr(output))
}
