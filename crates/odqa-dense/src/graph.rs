//! The HNSW graph: hnsw_rs with a cosine (dot of normalized vectors)
//! distance, built in parallel, dumped next to the embeddings and reloaded.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use hnsw_rs::anndists::dist::distances::Distance;
use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::{Hnsw, Neighbour};
use hnsw_rs::hnswio::HnswIo;
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{DenseError, Result};
use crate::params::HnswParams;
use crate::store::{GRAPH_BASENAME, GRAPH_FILE};

/// hnsw_rs's maximum number of layers.
const MAX_LAYERS: usize = 16;

/// `1 - dot(a, b)` clamped to `[0, 2]`: the cosine distance of
/// L2-normalized vectors.
///
/// hnsw_rs's own `DistDot` asserts `dot <= 1`, which rounding breaks for
/// (near-)duplicate passages; this one clamps instead of panicking. The
/// type's name is recorded in the dump and checked at reload.
#[derive(Debug, Default, Clone, Copy)]
pub struct CosineDot;

impl Distance<f32> for CosineDot {
    #[inline]
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot(va, vb)).clamp(0.0, 2.0)
    }
}

/// Dot product, unrolled by 8 so the compiler vectorizes it.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

pub(crate) type Graph = Hnsw<'static, f32, CosineDot>;

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic in hnsw_rs".to_string()
    }
}

/// Builds the graph over `rows` (row-major, `dim` wide) with data ids =
/// row numbers and dumps it as `dir/graph.hnsw.{graph,data}`.
pub(crate) fn build_and_dump(
    dir: &Path,
    rows: &[f32],
    dim: usize,
    params: &HnswParams,
    progress: bool,
    interrupt: &AtomicBool,
) -> Result<()> {
    let count = rows.len().checked_div(dim).unwrap_or(0);
    let path = dir.join(GRAPH_FILE);
    let res = catch_unwind(AssertUnwindSafe(|| -> Result<()> {
        let graph: Graph = Hnsw::new(
            params.m,
            count.max(1),
            MAX_LAYERS,
            params.ef_construction,
            CosineDot,
        );
        let pb = if progress {
            let pb = ProgressBar::new(count as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "dense graph [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
            ) {
                pb.set_style(style);
            }
            pb
        } else {
            ProgressBar::hidden()
        };
        // Chunks so the progress bar moves; each chunk is inserted in
        // parallel (rayon).
        let chunk = 4096;
        let mut start = 0;
        while start < count {
            if interrupt.load(Ordering::SeqCst) {
                pb.abandon();
                return Err(DenseError::Interrupted {
                    embedded: count,
                    total: count,
                });
            }
            let end = (start + chunk).min(count);
            let batch: Vec<(&[f32], usize)> = (start..end)
                .map(|r| (&rows[r * dim..(r + 1) * dim], r))
                .collect();
            graph.parallel_insert_slice(&batch);
            pb.set_position(end as u64);
            start = end;
        }
        pb.finish_and_clear();
        graph
            .file_dump(dir, GRAPH_BASENAME)
            .map_err(|e| DenseError::Graph {
                path: path.clone(),
                reason: format!("dump failed: {e:#}"),
            })
            .and_then(|name| {
                if name == GRAPH_BASENAME {
                    Ok(())
                } else {
                    Err(DenseError::Graph {
                        path: path.clone(),
                        reason: format!("hnsw_rs dumped under basename {name:?}"),
                    })
                }
            })
    }));
    match res {
        Ok(r) => r,
        Err(p) => Err(DenseError::Graph {
            path,
            reason: format!("build/dump panicked: {}", panic_message(p)),
        }),
    }
}

/// Reloads the dump in `dir`. Callers verify the files' checksums first;
/// hnsw_rs panics (caught here) on malformed dumps.
///
/// hnsw_rs ties the loaded graph's lifetime to its `HnswIo` loader; the
/// loader (a path, a name and a counter; no data: the vectors are read
/// into the graph, not memory-mapped) is leaked to get a `'static` graph.
pub(crate) fn load(dir: &Path, count: usize, dim: usize) -> Result<Graph> {
    let path = dir.join(GRAPH_FILE);
    let res = catch_unwind(AssertUnwindSafe(|| -> Result<Graph> {
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, GRAPH_BASENAME)));
        io.load_hnsw::<f32, CosineDot>()
            .map_err(|e| DenseError::Graph {
                path: path.clone(),
                reason: format!("reload failed: {e:#}"),
            })
    }));
    let mut graph = match res {
        Ok(r) => r?,
        Err(p) => {
            return Err(DenseError::Graph {
                path,
                reason: format!("reload panicked: {}", panic_message(p)),
            })
        }
    };
    if graph.get_nb_point() != count {
        return Err(DenseError::corrupt(
            &path,
            format!(
                "graph holds {} points, the manifest records {count}",
                graph.get_nb_point()
            ),
        ));
    }
    let gdim = graph.get_point_indexation().get_data_dimension();
    if count > 0 && gdim != dim {
        return Err(DenseError::corrupt(
            &path,
            format!("graph vectors have dimension {gdim}, the manifest records {dim}"),
        ));
    }
    graph.set_searching_mode(true);
    Ok(graph)
}

/// Searches the graph; hnsw_rs panics are turned into errors.
pub(crate) fn search(graph: &Graph, query: &[f32], k: usize, ef: usize) -> Result<Vec<Neighbour>> {
    catch_unwind(AssertUnwindSafe(|| graph.search(query, k, ef))).map_err(|p| DenseError::Graph {
        path: GRAPH_FILE.into(),
        reason: format!("search panicked: {}", panic_message(p)),
    })
}
