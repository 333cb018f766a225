//! Building a dense index: restartable batch embedding, then the graph.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use odqa_encoder::{Encoder, TextKind};

use crate::error::{DenseError, Result};
use crate::graph;
use crate::params::{DenseBuildOptions, DenseManifest, MANIFEST_FORMAT};
use crate::store::{
    self, PartialMeta, EMBEDDINGS_FILE, EMBEDDINGS_PARTIAL_FILE, GRAPH_DATA_FILE, GRAPH_FILE,
    IDS_FILE, IDS_PARTIAL_FILE, MANIFEST_FILE, PARTIAL_META_FILE,
};

/// Embeds every passage ([`TextKind::Passage`]) in batches and builds the
/// HNSW graph; see the crate documentation for the files and the resume
/// rules. `passages` are `(passage_id, text)`; ids must be unique,
/// non-empty and free of line breaks.
///
/// `interrupt` is polled between batches (and between graph chunks): when
/// set, the call returns [`DenseError::Interrupted`] and keeps what was
/// written so that a rerun with the same passages resumes. A directory
/// that already holds a complete index is rebuilt from scratch.
pub fn build_dense_index(
    passages: &[(String, String)],
    encoder: &Encoder,
    options: &DenseBuildOptions,
    interrupt: &AtomicBool,
) -> Result<DenseManifest> {
    options.hnsw.validate()?;
    if options.batch_size == 0 {
        return Err(DenseError::InvalidParams {
            field: "batch_size",
            reason: "must be at least 1".into(),
        });
    }
    validate_passages(passages)?;
    let dir = options.dir.as_path();
    fs::create_dir_all(dir).map_err(|e| DenseError::io(dir, "create directory", e))?;
    let dim = encoder.dim();
    if dim == 0 {
        return Err(DenseError::InvalidParams {
            field: "encoder.dim",
            reason: "encoder reports dimension 0".into(),
        });
    }
    let total = passages.len();

    let resumed = prepare_partial(dir, passages, &options.model, dim)?;

    // Embed the remaining rows, appending after each batch.
    let emb_path = dir.join(EMBEDDINGS_PARTIAL_FILE);
    let ids_path = dir.join(IDS_PARTIAL_FILE);
    let mut emb_out = append(&emb_path)?;
    let mut ids_out = append(&ids_path)?;
    let pb = progress_bar(options.progress, total, resumed);
    let t_embed = Instant::now();
    let mut done = resumed;
    let mut batches = 0usize;
    let mut bytes = Vec::new();
    while done < total {
        if interrupt.load(Ordering::SeqCst) || options.max_batches.is_some_and(|m| batches >= m) {
            pb.abandon();
            return Err(DenseError::Interrupted {
                embedded: done,
                total,
            });
        }
        let end = (done + options.batch_size).min(total);
        let texts: Vec<&str> = passages[done..end].iter().map(|p| p.1.as_str()).collect();
        let vecs =
            encoder
                .embed(&texts, TextKind::Passage)
                .map_err(|source| DenseError::Encoder {
                    start: done,
                    end,
                    source,
                })?;
        check_output(&vecs, done, end, dim)?;
        bytes.clear();
        for v in &vecs {
            for x in v {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        // Embeddings first, then ids: a torn batch leaves at most extra
        // embedding rows, which the resume truncates.
        write_synced(&mut emb_out, &bytes, &emb_path)?;
        let mut line = String::new();
        for (id, _) in &passages[done..end] {
            line.push_str(id);
            line.push('\n');
        }
        write_synced(&mut ids_out, line.as_bytes(), &ids_path)?;
        done = end;
        batches += 1;
        pb.set_position(done as u64);
    }
    pb.finish_and_clear();
    let seconds_embedding = t_embed.elapsed().as_secs_f64();
    drop(emb_out);
    drop(ids_out);
    let rows_embedded = total - resumed;

    // All embedded: promote the partial files (no manifest yet, so `open`
    // still refuses the directory).
    store::rename(&emb_path, &dir.join(EMBEDDINGS_FILE))?;
    store::rename(&ids_path, &dir.join(IDS_FILE))?;
    store::sync_dir(dir);

    finalize(
        options,
        interrupt,
        Counts {
            total,
            dim,
            seconds_embedding,
            rows_embedded,
            rows_resumed: resumed,
        },
    )
}

/// Builds an index from precomputed embeddings (`ids.len()` rows of `dim`
/// values, row-major) instead of running an encoder: for embeddings made
/// elsewhere, tests and benchmarks. Rows are L2-normalized before they are
/// stored (a zero or non-finite row is an error). Writes the same files as
/// [`build_dense_index`] (embedding time 0); not restartable (nothing to
/// resume), and any index or partial files in the directory are replaced.
pub fn build_dense_index_from_embeddings(
    ids: &[String],
    embeddings: &[f32],
    dim: usize,
    options: &DenseBuildOptions,
    interrupt: &AtomicBool,
) -> Result<DenseManifest> {
    options.hnsw.validate()?;
    if dim == 0 {
        return Err(DenseError::InvalidParams {
            field: "dim",
            reason: "must be at least 1".into(),
        });
    }
    if Some(embeddings.len()) != ids.len().checked_mul(dim) {
        return Err(DenseError::InvalidParams {
            field: "embeddings",
            reason: format!(
                "{} values for {} ids × {dim} dims",
                embeddings.len(),
                ids.len()
            ),
        });
    }
    let passages: Vec<(String, String)> = ids.iter().map(|i| (i.clone(), String::new())).collect();
    validate_passages(&passages)?;
    let dir = options.dir.as_path();
    fs::create_dir_all(dir).map_err(|e| DenseError::io(dir, "create directory", e))?;
    store::remove_if_exists(&dir.join(MANIFEST_FILE))?;
    store::sync_dir(dir);
    for name in [
        GRAPH_FILE,
        GRAPH_DATA_FILE,
        EMBEDDINGS_PARTIAL_FILE,
        IDS_PARTIAL_FILE,
        PARTIAL_META_FILE,
    ] {
        store::remove_if_exists(&dir.join(name))?;
    }
    let mut bytes = Vec::with_capacity(embeddings.len() * 4);
    for (row, v) in embeddings.chunks_exact(dim).enumerate() {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return Err(DenseError::InvalidPassage {
                index: row,
                passage_id: ids[row].clone(),
                reason: format!("embedding norm is {norm}"),
            });
        }
        for x in v {
            bytes.extend_from_slice(&(x / norm).to_le_bytes());
        }
    }
    store::write_atomic(dir, EMBEDDINGS_FILE, &bytes)?;
    drop(bytes);
    let mut text = String::new();
    for id in ids {
        text.push_str(id);
        text.push('\n');
    }
    store::write_atomic(dir, IDS_FILE, text.as_bytes())?;
    finalize(
        options,
        interrupt,
        Counts {
            total: ids.len(),
            dim,
            seconds_embedding: 0.0,
            rows_embedded: 0,
            rows_resumed: 0,
        },
    )
}

struct Counts {
    total: usize,
    dim: usize,
    seconds_embedding: f64,
    rows_embedded: usize,
    rows_resumed: usize,
}

/// From complete `embeddings.f32` + `ids.txt`: graph, dump, manifest.
fn finalize(
    options: &DenseBuildOptions,
    interrupt: &AtomicBool,
    c: Counts,
) -> Result<DenseManifest> {
    let dir = options.dir.as_path();
    let (rows, emb_sum) = store::read_embeddings(&dir.join(EMBEDDINGS_FILE), c.total, c.dim)?;
    let mut files = vec![
        store::FileEntry {
            name: EMBEDDINGS_FILE.into(),
            bytes: (c.total * c.dim * 4) as u64,
            checksum: emb_sum,
        },
        store::file_entry(dir, IDS_FILE)?,
    ];

    let t_graph = Instant::now();
    if c.total > 0 {
        graph::build_and_dump(
            dir,
            &rows,
            c.dim,
            &options.hnsw,
            options.progress,
            interrupt,
        )?;
        files.push(store::file_entry(dir, GRAPH_FILE)?);
        files.push(store::file_entry(dir, GRAPH_DATA_FILE)?);
    }
    let seconds_graph = t_graph.elapsed().as_secs_f64();

    let manifest = DenseManifest {
        format: MANIFEST_FORMAT,
        model: options.model.clone(),
        dim: c.dim,
        count: c.total,
        hnsw: options.hnsw,
        seconds_embedding: c.seconds_embedding,
        seconds_graph,
        passages_per_s: if c.seconds_embedding > 0.0 {
            c.rows_embedded as f64 / c.seconds_embedding
        } else {
            0.0
        },
        rows_embedded: c.rows_embedded,
        rows_resumed: c.rows_resumed,
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| DenseError::Manifest {
        path: dir.join(MANIFEST_FILE),
        field: "(whole)".into(),
        reason: format!("cannot serialize: {e}"),
    })?;
    store::write_atomic(dir, MANIFEST_FILE, &json)?;
    store::remove_if_exists(&dir.join(PARTIAL_META_FILE))?;
    Ok(manifest)
}

fn validate_passages(passages: &[(String, String)]) -> Result<()> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(passages.len());
    for (index, (id, _)) in passages.iter().enumerate() {
        let bad = |reason: &str| DenseError::InvalidPassage {
            index,
            passage_id: id.clone(),
            reason: reason.into(),
        };
        if id.is_empty() {
            return Err(bad("empty passage id"));
        }
        if id.contains(['\n', '\r']) {
            return Err(bad("passage id contains a line break"));
        }
        if !seen.insert(id.as_str()) {
            return Err(bad("duplicate passage id"));
        }
    }
    Ok(())
}

/// Sets up the partial files and returns how many rows they already hold
/// (verified against `passages`).
fn prepare_partial(
    dir: &Path,
    passages: &[(String, String)],
    model: &str,
    dim: usize,
) -> Result<usize> {
    let manifest = dir.join(MANIFEST_FILE);
    let meta_path = dir.join(PARTIAL_META_FILE);
    let emb_partial = dir.join(EMBEDDINGS_PARTIAL_FILE);
    let ids_partial = dir.join(IDS_PARTIAL_FILE);
    let emb_final = dir.join(EMBEDDINGS_FILE);
    let ids_final = dir.join(IDS_FILE);

    if manifest.exists() {
        // A complete index: start over. The manifest goes first so that an
        // interruption from here on never leaves a directory `open` accepts.
        store::remove_if_exists(&manifest)?;
        store::sync_dir(dir);
        for name in [
            EMBEDDINGS_FILE,
            IDS_FILE,
            GRAPH_FILE,
            GRAPH_DATA_FILE,
            EMBEDDINGS_PARTIAL_FILE,
            IDS_PARTIAL_FILE,
            PARTIAL_META_FILE,
        ] {
            store::remove_if_exists(&dir.join(name))?;
        }
    } else if !emb_partial.exists()
        && !ids_partial.exists()
        && emb_final.exists()
        && ids_final.exists()
        && meta_path.exists()
    {
        // Interrupted after embedding everything (while building the
        // graph): take the rows back as partial files.
        store::rename(&emb_final, &emb_partial)?;
        store::rename(&ids_final, &ids_partial)?;
    }

    let meta = PartialMeta {
        model: model.to_string(),
        dim,
    };
    if !emb_partial.exists() && !ids_partial.exists() {
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| DenseError::Manifest {
            path: meta_path.clone(),
            field: "(whole)".into(),
            reason: format!("cannot serialize: {e}"),
        })?;
        store::write_atomic(dir, PARTIAL_META_FILE, &json)?;
        for p in [&emb_partial, &ids_partial] {
            File::create(p).map_err(|e| DenseError::io(p, "create", e))?;
        }
        store::sync_dir(dir);
        return Ok(0);
    }

    // Resume.
    let old: PartialMeta = match fs::read(&meta_path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| DenseError::PartialMismatch {
            path: meta_path.clone(),
            reason: format!("unreadable: {e}"),
        })?,
        Err(e) => {
            return Err(DenseError::PartialMismatch {
                path: meta_path.clone(),
                reason: format!("partial files exist but their description cannot be read: {e}"),
            })
        }
    };
    if old.model != meta.model {
        return Err(DenseError::PartialMismatch {
            path: meta_path,
            reason: format!(
                "partial rows were embedded with model {:?}, this build uses {:?}",
                old.model, meta.model
            ),
        });
    }
    if old.dim != dim {
        return Err(DenseError::PartialMismatch {
            path: meta_path,
            reason: format!(
                "partial rows have dimension {}, the encoder has {dim}",
                old.dim
            ),
        });
    }
    for p in [&emb_partial, &ids_partial] {
        if !p.exists() {
            File::create(p).map_err(|e| DenseError::io(p, "create", e))?;
        }
    }
    let emb_len = fs::metadata(&emb_partial)
        .map_err(|e| DenseError::io(&emb_partial, "stat", e))?
        .len();
    let row_bytes = (dim * 4) as u64;
    let emb_rows = (emb_len / row_bytes) as usize;
    let (ids, _torn) = store::read_ids(&ids_partial)?;
    let n = emb_rows.min(ids.len());
    if n > passages.len() {
        return Err(DenseError::PartialMismatch {
            path: ids_partial,
            reason: format!(
                "holds {n} rows, more than the {} passages of this build",
                passages.len()
            ),
        });
    }
    if let Some(row) = (0..n).find(|&r| ids[r] != passages[r].0) {
        return Err(DenseError::PartialMismatch {
            path: ids_partial,
            reason: format!(
                "row {row} is passage {:?}, this build has {:?} there",
                ids[row], passages[row].0
            ),
        });
    }
    // Drop torn or unmatched tails.
    let ids_len: u64 = ids[..n].iter().map(|s| s.len() as u64 + 1).sum();
    store::truncate(&emb_partial, n as u64 * row_bytes)?;
    store::truncate(&ids_partial, ids_len)?;
    Ok(n)
}

fn append(path: &Path) -> Result<BufWriter<File>> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map(BufWriter::new)
        .map_err(|e| DenseError::io(path, "open for append", e))
}

fn write_synced(out: &mut BufWriter<File>, bytes: &[u8], path: &Path) -> Result<()> {
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .and_then(|_| out.get_ref().sync_data())
        .map_err(|e| DenseError::io(path, "append", e))
}

fn check_output(vecs: &[Vec<f32>], start: usize, end: usize, dim: usize) -> Result<()> {
    let bad = |reason: String| DenseError::EncoderOutput { start, end, reason };
    if vecs.len() != end - start {
        return Err(bad(format!(
            "{} vectors for {} passages",
            vecs.len(),
            end - start
        )));
    }
    for (i, v) in vecs.iter().enumerate() {
        if v.len() != dim {
            return Err(bad(format!(
                "passage {} has dimension {}, expected {dim}",
                start + i,
                v.len()
            )));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(bad(format!("passage {} has non-finite values", start + i)));
        }
    }
    Ok(())
}

fn progress_bar(enabled: bool, total: usize, done: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "dense embed [{elapsed_precise}] {wide_bar} {pos}/{len} passages ({per_sec}, eta {eta})",
    ) {
        pb.set_style(style);
    }
    pb.set_position(done as u64);
    pb.reset_eta();
    pb
}
