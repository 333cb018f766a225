//! The model-independent half of odqa's span-extraction reader.
//!
//! A transformer (run elsewhere, e.g. with candle) reads a question and a
//! passage and emits one start and one end logit per token; everything
//! around that model call lives here:
//!
//! - **Answer metrics** ([`metrics`]): the official KorQuAD 1.0 evaluation
//!   script, ported exactly: normalization, exact match, character-level
//!   F1, max over gold answers, corpus averages, and reading KorQuAD/SQuAD
//!   JSON datasets.
//! - **Windows** ([`windows`]): question + passage-chunk model inputs laid
//!   out the way the tokenizer's own post-processor lays out pairs
//!   (`[CLS] q [SEP] p [SEP]` or `<s> q </s></s> p </s>`), sliding over long
//!   passages with a document stride, each passage token carrying its span
//!   in the passage in characters; padded batches.
//! - **The model seam** ([`model`]): the [`SpanModel`] trait every
//!   span-extraction model implements (logits in as `f32`), the padded
//!   [`Batch`] it is handed, and the one loop that drives a model over many
//!   windows ([`run_windows`], [`score_all`]), used by the reader, relation
//!   classification, training parity and the server's queue.
//! - **Span scoring** ([`spans`]): softmax over a window's passage tokens
//!   (plus the first token for "no answer"), best spans by
//!   `p_start × p_end` within a maximum answer length, mapped back to exact
//!   passage substrings and merged across windows and passages.
//! - **Fusion** ([`fusion`]): an answer's final score from its span
//!   probability and its passage's normalized retrieval score (weight μ),
//!   equal answers of different passages merged with their evidence, the
//!   early-stopping bound and the no-answer decision — on numbers alone, so
//!   stored reads can be re-scored without the model.
//!
//! It must not touch models or tensors (no candle dependency: logits come in
//! as `f32` slices), retrieval, or any I/O beyond reading datasets. Errors
//! are [`ReaderError`]s; no input reaches an `unwrap`/`expect`.
//!
//! ```rust
//! use odqa_reader::testing::{char_wordpiece_tokenizer, TestStyle};
//! use odqa_reader::{exact_match, f1, WindowConfig, Windower};
//! # fn main() -> Result<(), odqa_reader::ReaderError> {
//! let tokenizer = char_wordpiece_tokenizer("서울은수도이다", TestStyle::Bert)?;
//! let config = WindowConfig { max_len: 16, doc_stride: 8, max_query_len: 8 };
//! let windower = Windower::new(&tokenizer, config)?;
//! let windows = windower.windows("수도는", &["서울은 수도이다"])?;
//! assert!(!windows.is_empty());
//! assert!(exact_match("이순신 장군", "이순신 장군"));
//! assert!(f1("이순신", "이순신 장군") > 0.5);
//! # Ok(())
//! # }
//! ```

mod error;
pub mod fusion;
pub mod metrics;
pub mod model;
pub mod spans;
pub mod testing;
pub mod windows;

pub use error::{ReaderError, Result};
pub use metrics::{evaluate, exact_match, f1, normalize_answer, Scores};
pub use model::{run_windows, score_all, Batch, SpanLogits, SpanModel};
pub use spans::{
    best_answers, best_answers_flat, merge_answers, no_answer_score, score_window, Answer,
    ScoringConfig, SpanCandidate, WindowSpans,
};
pub use windows::{
    answer_tokens, build_windows, pad_id, PairLayout, PassageTokens, Window, WindowConfig, Windower,
};
