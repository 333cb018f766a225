//! `odqa index dense` and the retrieval flags shared by search, ask and the
//! benchmarks.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use odqa_dense::{build_dense_index, DenseBuildOptions, DenseIndex, Fusion, HnswParams};
use odqa_encoder::Encoder;
use odqa_index::{IndexManifest, PassageIndex};
use odqa_pipeline::{IndexDir, RetrievalMode, RetrievalOptions, Retriever};

use crate::{Bm25Args, Ctx, DenseArgs, FusionChoice, ModeChoice, RetrievalArgs};

/// The fetched multilingual-e5-small in the model cache (fetched on first use).
pub fn default_model_dir() -> Result<PathBuf> {
    Ok(odqa_encoder::fetch_model(&odqa_encoder::default_home())?)
}

/// The encoder in `model`, else the default model, on `--device`.
pub fn encoder_from(ctx: &Ctx, model: Option<PathBuf>) -> Result<Encoder> {
    let dir = match model {
        Some(dir) => dir,
        None => default_model_dir()?,
    };
    let options = odqa_encoder::EncoderOptions {
        precision: ctx.precision,
        ..Default::default()
    };
    let encoder = Encoder::load_with(&dir, &ctx.device, &options)?;
    crate::report_precision("encoder", encoder.precision());
    Ok(encoder)
}

impl DenseArgs {
    pub fn defaults(index: PathBuf) -> Self {
        DenseArgs {
            index: Some(index),
            batch_size: 16,
            m: 16,
            ef_construction: 200,
            ef_search: 64,
        }
    }
}

/// Embeds the passages of the index at `index` in corpus order (the order
/// `odqa passages export` writes, stable across runs, so a rerun resumes).
pub fn build(ctx: &Ctx, index: &Path, args: &DenseArgs) -> Result<()> {
    let manifest = IndexManifest::read(index)?;
    let bm25 = PassageIndex::open(index, &ctx.dictionary)?;
    let passages = corpus_passages(&manifest)?;
    if passages.len() as u64 != bm25.num_passages() {
        bail!(
            "{} yields {} passages but the index at {} holds {}: the corpus changed since the build; rebuild the index",
            manifest.corpus.display(),
            passages.len(),
            index.display(),
            bm25.num_passages()
        );
    }
    let mut options = DenseBuildOptions::new(
        IndexDir::new(index).dense(),
        IndexDir::DENSE_MODEL.to_string(),
    );
    options.batch_size = args.batch_size;
    options.progress = ctx.progress;
    options.hnsw = HnswParams {
        m: args.m,
        ef_construction: args.ef_construction,
        ef_search: args.ef_search,
    };
    let interrupt = crate::commands::interrupt_flag();
    let built = build_dense_index(&passages, &encoder_from(ctx, None)?, &options, &interrupt)
        .with_context(|| format!("building the dense index in {}", options.dir.display()))?;
    eprintln!(
        "dense index {}: {} passages, dim {}, {:.1} passages/s embedding ({} resumed), graph {:.1} s",
        options.dir.display(),
        built.count,
        built.dim,
        built.passages_per_s,
        built.rows_resumed,
        built.seconds_graph
    );
    Ok(())
}

fn corpus_passages(manifest: &IndexManifest) -> Result<Vec<(String, String)>> {
    // The build skipped malformed records only under --skip-bad-lines; skip the same.
    let skip_bad = manifest.counts.skipped_records > 0;
    let stream = odqa_corpus::passages(&manifest.corpus, &manifest.passages, skip_bad)
        .with_context(|| "re-reading the index's corpus for its passages")?;
    let mut out = Vec::new();
    for event in stream {
        if let odqa_corpus::PassageEvent::Article { passages, .. } = event? {
            out.extend(passages.into_iter().map(|p| (p.id, p.text)));
        }
    }
    Ok(out)
}

impl RetrievalArgs {
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            ModeChoice::Bm25 => "bm25",
            ModeChoice::Dense => "dense",
            ModeChoice::Hybrid => "hybrid",
        }
    }

    fn options(&self, bm25: &Bm25Args, base: odqa_index::Bm25Params) -> Result<RetrievalOptions> {
        if !(0.0..=1.0).contains(&self.dense_weight) {
            bail!(
                "--dense-weight must be within 0..=1, got {}",
                self.dense_weight
            );
        }
        if self.fusion_depth == 0 {
            bail!("--fusion-depth must be at least 1");
        }
        let params = bm25.apply(base);
        params.validate()?;
        Ok(RetrievalOptions {
            mode: match self.mode {
                ModeChoice::Bm25 => RetrievalMode::Bm25,
                ModeChoice::Dense => RetrievalMode::Dense,
                ModeChoice::Hybrid => RetrievalMode::Hybrid,
            },
            fusion: match self.fusion {
                FusionChoice::Rrf => Fusion::Rrf { k: self.rrf_k },
                FusionChoice::Weighted => Fusion::Weighted {
                    dense_weight: self.dense_weight,
                },
            },
            fusion_depth: self.fusion_depth,
            ef_search: self.ef_search,
            exact: self.exact,
            bm25: Some(params),
        })
    }

    /// The BM25 index at `dir`, plus its dense index and the query encoder
    /// when the mode needs them.
    pub fn open(&self, ctx: &Ctx, dir: &Path, bm25: &Bm25Args) -> Result<Retriever> {
        Retriever::open(
            &IndexDir::new(dir),
            &ctx.dictionary,
            |index| self.options(bm25, index.manifest().bm25),
            || encoder_from(ctx, None),
        )
    }
}

/// Recall@k of HNSW search against exact search over the same embeddings,
/// and queries/s of each (query embedding excluded: vectors are computed
/// first).
pub fn bench_ann(
    ctx: &Ctx,
    index: &Path,
    questions: &Path,
    k: usize,
    efs: &[usize],
    out_dir: &Path,
) -> Result<()> {
    if k == 0 || efs.is_empty() || efs.contains(&0) {
        bail!("-k and every --ef must be at least 1");
    }
    let dense = DenseIndex::open(&IndexDir::new(index).dense())?;
    let encoder = encoder_from(ctx, None)?;
    let questions = odqa_bench::load_questions(questions)?;
    let texts: Vec<&str> = questions.iter().map(|q| q.question.as_str()).collect();
    let vectors = encoder.embed(&texts, odqa_encoder::TextKind::Query)?;
    let started = std::time::Instant::now();
    let exact: Vec<Vec<usize>> = vectors
        .iter()
        .map(|v| {
            Ok(dense
                .search_exact(v, k)?
                .into_iter()
                .map(|h| h.row)
                .collect())
        })
        .collect::<Result<_>>()?;
    let exact_qps = vectors.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "exact: {exact_qps:.0} queries/s over {} passages",
        dense.len()
    );
    let mut rows = vec![odqa_bench::AnnRow {
        method: "exact",
        ef_search: None,
        recall_vs_exact: None,
        queries_per_second: exact_qps,
    }];
    for &ef in efs {
        let started = std::time::Instant::now();
        let mut found = 0usize;
        for (vector, truth) in vectors.iter().zip(&exact) {
            let hits = dense.search(vector, k, Some(ef))?;
            found += hits.iter().filter(|h| truth.contains(&h.row)).count();
        }
        let qps = vectors.len() as f64 / started.elapsed().as_secs_f64();
        let recall = found as f64 / exact.iter().map(Vec::len).sum::<usize>().max(1) as f64;
        println!("ef {ef:>4}: recall@{k} {recall:.4} against exact, {qps:.0} queries/s");
        rows.push(odqa_bench::AnnRow {
            method: "hnsw",
            ef_search: Some(ef),
            recall_vs_exact: Some(recall),
            queries_per_second: qps,
        });
    }
    let report = odqa_bench::AnnReport {
        index: index.to_path_buf(),
        passages: dense.len(),
        queries: vectors.len(),
        k,
        hnsw: dense.manifest().hnsw,
        rows,
    };
    let path = report.write(out_dir)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
