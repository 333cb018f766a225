//! `odqa index dense` and the retrieval flags shared by search, ask and the
//! benchmarks.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use odqa_dense::{build_dense_index, DenseBuildOptions, Fusion};
use odqa_encoder::Encoder;
use odqa_index::PassageIndex;
use odqa_pipeline::{IndexDir, Pipeline, RetrievalOptions, Retriever};

use crate::{Bm25Args, Ctx, DenseArgs, FusionChoice, ReaderArgs, RetrievalArgs};

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

/// Embeds the passages of the index at `index` in corpus order (the order
/// `odqa passages export` writes, stable across runs, so a rerun resumes)
/// and builds its HNSW graph; `args` `None` takes the defaults.
pub fn build(ctx: &Ctx, index: &Path, args: Option<&DenseArgs>) -> Result<()> {
    let passages = PassageIndex::open(index, &ctx.dictionary)?
        .corpus_passages()
        .context("re-reading the index's corpus for its passages")?;
    let mut options = DenseBuildOptions::new(
        IndexDir::new(index).dense(),
        IndexDir::DENSE_MODEL.to_string(),
    );
    options.progress = ctx.progress;
    if let Some(args) = args {
        options.batch_size = args.batch_size;
        options.hnsw = args.hnsw;
    }
    let interrupt = crate::commands::interrupt_flag();
    let built = build_dense_index(&passages, &encoder_from(ctx, None)?, &options, &interrupt)
        .with_context(|| format!("building the dense index in {}", options.dir.display()))?;
    eprintln!("{}", built.summary(&options.dir));
    Ok(())
}

impl RetrievalArgs {
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
            mode: self.mode,
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

    /// The retriever at `dir` and the reader `reader` names, as `ask` and
    /// `bench odqa` answer with them.
    pub fn pipeline(&self, ctx: &Ctx, dir: &Path, reader: &ReaderArgs) -> Result<Pipeline> {
        let retriever = self.open(ctx, dir, &Bm25Args::default())?;
        Ok(Pipeline::new(retriever, reader.load(ctx)?))
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
