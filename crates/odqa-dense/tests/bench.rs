//! HNSW recall@10 against exact search and queries/s at several
//! `ef_search`, on random unit vectors. Not asserted; run with
//! `cargo test --release -p odqa-dense --test bench -- --ignored --nocapture`.
//! `ODQA_DENSE_BENCH_N` overrides the number of vectors (default 2000).

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use odqa_dense::{build_dense_index_from_embeddings, DenseBuildOptions, DenseIndex};

/// xorshift64* + Box-Muller: Gaussian vectors, uniform on the sphere once
/// normalized.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f32 {
        let (u, v) = (self.next_f64(), self.next_f64());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
    fn unit(&mut self, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim).map(|_| self.gauss()).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }
}

#[test]
#[ignore]
fn recall_and_qps() {
    let n: usize = std::env::var("ODQA_DENSE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dim = 384;
    let nq = 500;
    let k = 10;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut rows = Vec::with_capacity(n * dim);
    for _ in 0..n {
        rows.extend(rng.unit(dim));
    }
    let ids: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = DenseBuildOptions::new(tmp.path(), "random");
    opts.progress = false;
    let t = Instant::now();
    let m = build_dense_index_from_embeddings(&ids, &rows, dim, &opts, &AtomicBool::new(false))
        .unwrap();
    let build_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let index = DenseIndex::open(tmp.path()).unwrap();
    let open_s = t.elapsed().as_secs_f64();
    println!(
        "n={n} dim={dim} m={} ef_construction={}: build {build_s:.2}s (graph {:.2}s), open {open_s:.3}s",
        m.hnsw.m, m.hnsw.ef_construction, m.seconds_graph
    );

    // Two query sets: fresh random unit vectors (hard: no structure), and
    // stored vectors plus noise (a near neighbour exists, like real
    // question/passage pairs).
    let random: Vec<Vec<f32>> = (0..nq).map(|_| rng.unit(dim)).collect();
    let near: Vec<Vec<f32>> = (0..nq)
        .map(|i| {
            let row = (i * 7919) % n;
            let noise = rng.unit(dim);
            rows[row * dim..(row + 1) * dim]
                .iter()
                .zip(noise)
                .map(|(x, e)| x + 0.5 * e)
                .collect()
        })
        .collect();

    for (name, queries) in [("random", &random), ("near", &near)] {
        let t = Instant::now();
        let exact: Vec<Vec<usize>> = queries
            .iter()
            .map(|q| {
                index
                    .search_exact(q, k)
                    .unwrap()
                    .iter()
                    .map(|h| h.row)
                    .collect()
            })
            .collect();
        let exact_qps = nq as f64 / t.elapsed().as_secs_f64();
        println!("[{name}] exact: {exact_qps:.0} q/s");
        for ef in [16, 64, 256] {
            let t = Instant::now();
            let got: Vec<Vec<usize>> = queries
                .iter()
                .map(|q| {
                    index
                        .search(q, k, Some(ef))
                        .unwrap()
                        .iter()
                        .map(|h| h.row)
                        .collect()
                })
                .collect();
            let qps = nq as f64 / t.elapsed().as_secs_f64();
            let hits: usize = got
                .iter()
                .zip(&exact)
                .map(|(g, e)| g.iter().filter(|r| e.contains(r)).count())
                .sum();
            let recall = hits as f64 / (nq * k) as f64;
            let top1 = got
                .iter()
                .zip(&exact)
                .filter(|(g, e)| g.first() == e.first())
                .count() as f64
                / nq as f64;
            println!(
                "[{name}] ef_search={ef:>3}: recall@10 {recall:.4}, top-1 agreement {top1:.4}, {qps:.0} q/s"
            );
        }
    }
}
