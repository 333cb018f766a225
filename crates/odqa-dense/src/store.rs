//! On-disk layout of a dense index directory and the helpers reading and
//! writing it.
//!
//! ```text
//! dir/
//!   embeddings.f32          count × dim little-endian f32, row-major, no header
//!   ids.txt                 one passage id per line (row order), '\n'-terminated
//!   graph.hnsw.graph        hnsw_rs dump: the graph
//!   graph.hnsw.data         hnsw_rs dump: the vectors as hnsw_rs stores them
//!   dense-manifest.json     written last: the index is complete iff it exists
//! during a build:
//!   embeddings.f32.partial  rows embedded so far (appended per batch)
//!   ids.partial             their ids
//!   dense-partial.json      model and dim of the partial rows
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DenseError, Result};

pub const MANIFEST_FILE: &str = "dense-manifest.json";
pub const EMBEDDINGS_FILE: &str = "embeddings.f32";
pub const IDS_FILE: &str = "ids.txt";
pub const EMBEDDINGS_PARTIAL_FILE: &str = "embeddings.f32.partial";
pub const IDS_PARTIAL_FILE: &str = "ids.partial";
pub const PARTIAL_META_FILE: &str = "dense-partial.json";
/// Basename of the hnsw_rs dump (`graph.hnsw.graph` + `graph.hnsw.data`).
pub const GRAPH_BASENAME: &str = "graph";
pub const GRAPH_FILE: &str = "graph.hnsw.graph";
pub const GRAPH_DATA_FILE: &str = "graph.hnsw.data";

/// Size and checksum of one file of a complete index, recorded in the
/// manifest and verified by [`crate::DenseIndex::open`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name inside the index directory.
    pub name: String,
    pub bytes: u64,
    /// [`Checksum`] of the contents, 16 hex digits.
    pub checksum: String,
}

/// Model and dimension of the rows in the partial files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartialMeta {
    pub model: String,
    pub dim: usize,
}

/// A fast 64-bit checksum (word-wise multiply/xor mixing) for detecting
/// truncated or damaged files. Not cryptographic.
#[derive(Debug, Clone)]
pub struct Checksum {
    h: u64,
    len: u64,
    tail: Vec<u8>,
}

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Default for Checksum {
    fn default() -> Self {
        Self::new()
    }
}

impl Checksum {
    pub fn new() -> Self {
        Checksum {
            h: 0xcbf2_9ce4_8422_2325,
            len: 0,
            tail: Vec::with_capacity(8),
        }
    }

    #[inline]
    fn word(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(K);
        self.h ^= self.h >> 29;
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.tail.is_empty() {
            let need = 8 - self.tail.len();
            let take = need.min(data.len());
            self.tail.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.tail.len() < 8 {
                return;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.tail);
            self.tail.clear();
            self.word(u64::from_le_bytes(b));
        }
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.word(u64::from_le_bytes(b));
        }
        self.tail.extend_from_slice(chunks.remainder());
    }

    pub fn finish(mut self) -> String {
        let mut b = [0u8; 8];
        let n = self.tail.len();
        b[..n].copy_from_slice(&self.tail);
        self.word(u64::from_le_bytes(b) ^ ((n as u64) << 56));
        self.word(self.len);
        format!("{:016x}", self.h)
    }
}

pub(crate) fn open_read(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| DenseError::io(path, "open", e))
}

/// Size and checksum of a file.
pub(crate) fn file_entry(dir: &Path, name: &str) -> Result<FileEntry> {
    let path = dir.join(name);
    let mut f = open_read(&path)?;
    let mut sum = Checksum::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| DenseError::io(&path, "read", e))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        sum.update(&buf[..n]);
    }
    Ok(FileEntry {
        name: name.to_string(),
        bytes,
        checksum: sum.finish(),
    })
}

/// Verifies a file against its manifest entry (size first, then checksum).
pub(crate) fn verify_entry(dir: &Path, entry: &FileEntry) -> Result<()> {
    let path = dir.join(&entry.name);
    let meta = fs::metadata(&path).map_err(|e| DenseError::io(&path, "stat", e))?;
    if meta.len() != entry.bytes {
        return Err(DenseError::corrupt(
            &path,
            format!(
                "size is {} bytes, the manifest records {}",
                meta.len(),
                entry.bytes
            ),
        ));
    }
    let actual = file_entry(dir, &entry.name)?;
    if actual.checksum != entry.checksum {
        return Err(DenseError::corrupt(
            &path,
            format!(
                "checksum {} differs from the manifest's {}",
                actual.checksum, entry.checksum
            ),
        ));
    }
    Ok(())
}

/// Reads a whole embeddings file of `rows × dim` f32 (exact size required),
/// returning the row-major values and the file's checksum.
pub(crate) fn read_embeddings(path: &Path, rows: usize, dim: usize) -> Result<(Vec<f32>, String)> {
    let expected = (rows as u64)
        .checked_mul(dim as u64)
        .and_then(|v| v.checked_mul(4))
        .ok_or_else(|| DenseError::corrupt(path, "rows × dim overflows"))?;
    let meta = fs::metadata(path).map_err(|e| DenseError::io(path, "stat", e))?;
    if meta.len() != expected {
        return Err(DenseError::corrupt(
            path,
            format!(
                "size is {} bytes, expected {rows} rows × {dim} dims × 4 = {expected} bytes{}",
                meta.len(),
                if meta.len() < expected {
                    " (truncated)"
                } else {
                    ""
                }
            ),
        ));
    }
    let mut f = open_read(path)?;
    let n = rows * dim;
    let mut out = Vec::with_capacity(n);
    let mut sum = Checksum::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0usize;
    loop {
        let r = f
            .read(&mut buf[filled..])
            .map_err(|e| DenseError::io(path, "read", e))?;
        if r == 0 {
            break;
        }
        sum.update(&buf[filled..filled + r]);
        filled += r;
        let whole = filled / 4 * 4;
        for c in buf[..whole].chunks_exact(4) {
            let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if !v.is_finite() {
                let at = out.len();
                return Err(DenseError::corrupt(
                    path,
                    format!(
                        "non-finite value {v} at row {}, dim {}",
                        at / dim.max(1),
                        at % dim.max(1)
                    ),
                ));
            }
            out.push(v);
        }
        buf.copy_within(whole..filled, 0);
        filled -= whole;
    }
    if out.len() != n || filled != 0 {
        return Err(DenseError::corrupt(
            path,
            format!(
                "read {} values, expected {n} (file changed while reading?)",
                out.len()
            ),
        ));
    }
    Ok((out, sum.finish()))
}

/// Reads an ids file: one id per '\n'-terminated line. An unterminated last
/// line is returned separately (a torn write) rather than as an id.
pub(crate) fn read_ids(path: &Path) -> Result<(Vec<String>, bool)> {
    let f = open_read(path)?;
    let mut r = BufReader::new(f);
    let mut ids = Vec::new();
    let mut line = Vec::new();
    let mut torn = false;
    loop {
        line.clear();
        let n = r
            .read_until(b'\n', &mut line)
            .map_err(|e| DenseError::io(path, "read", e))?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            torn = true;
            break;
        }
        line.pop();
        let s = String::from_utf8(std::mem::take(&mut line)).map_err(|_| {
            DenseError::corrupt(path, format!("line {} is not UTF-8", ids.len() + 1))
        })?;
        ids.push(s);
    }
    Ok((ids, torn))
}

/// Writes `bytes` to `dir/name` via a temporary file + fsync + rename.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = File::create(&tmp).map_err(|e| DenseError::io(&tmp, "create", e))?;
        f.write_all(bytes)
            .map_err(|e| DenseError::io(&tmp, "write", e))?;
        f.sync_all().map_err(|e| DenseError::io(&tmp, "sync", e))?;
    }
    rename(&tmp, &path)?;
    sync_dir(dir);
    Ok(())
}

pub(crate) fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| DenseError::Io {
        path: from.to_path_buf(),
        op: "rename",
        source: std::io::Error::new(e.kind(), format!("to {}: {e}", to.display())),
    })
}

/// Removes a file if it exists.
pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DenseError::io(path, "remove", e)),
    }
}

/// Best-effort directory fsync so renames are durable (no-op where
/// unsupported).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Truncates a file to `len` bytes.
pub(crate) fn truncate(path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| DenseError::io(path, "open for truncation", e))?;
    f.set_len(len)
        .map_err(|e| DenseError::io(path, "truncate", e))?;
    f.sync_all().map_err(|e| DenseError::io(path, "sync", e))
}
