//! The seam between windows and a model: what a span-extraction model must
//! do ([`SpanModel`]), the padded input it is handed ([`Batch`]), what it
//! gives back ([`SpanLogits`]), and the one loop that drives a model over
//! many windows ([`run_windows`], [`score_all`]) for the reader, relation
//! classification, training parity and the server's queue alike.
//!
//! Models live elsewhere (candle in `odqa-encoder`, a queue in front of one
//! in `odqa-serve`, fakes in tests); nothing here knows tensors.

use std::sync::Arc;

use tokenizers::Tokenizer;

use crate::spans::{score_window, ScoringConfig, WindowSpans};
use crate::windows::Window;
use crate::{ReaderError, Result};

/// Row-major padded model input for a run of windows: `size` rows of
/// `seq_len` tokens (the longest window), padded with the model's pad id,
/// attention mask 0 and token type 0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    pub input_ids: Vec<u32>,
    pub attention_mask: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    /// Rows (windows).
    pub size: usize,
    /// Tokens per row.
    pub seq_len: usize,
}

impl Batch {
    /// `windows` padded to the longest of them with `pad_id`.
    pub fn pack(windows: &[Window], pad_id: u32) -> Self {
        let seq_len = windows.iter().map(Window::len).max().unwrap_or(0);
        let n = windows.len();
        let mut batch = Batch {
            input_ids: Vec::with_capacity(n * seq_len),
            attention_mask: Vec::with_capacity(n * seq_len),
            token_type_ids: Vec::with_capacity(n * seq_len),
            size: n,
            seq_len,
        };
        for w in windows {
            let pad = seq_len - w.len();
            batch.input_ids.extend_from_slice(&w.input_ids);
            batch.input_ids.extend(std::iter::repeat_n(pad_id, pad));
            batch.attention_mask.extend_from_slice(&w.attention_mask);
            batch.attention_mask.extend(std::iter::repeat_n(0, pad));
            batch.token_type_ids.extend_from_slice(&w.token_type_ids);
            batch.token_type_ids.extend(std::iter::repeat_n(0, pad));
        }
        batch
    }

    /// Positions the model computes over, padding included
    /// (`size × seq_len`).
    pub fn padded_tokens(&self) -> usize {
        self.size * self.seq_len
    }
}

/// Start and end logits of a batch, row-major `[batch × seq_len]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanLogits {
    pub start: Vec<f32>,
    pub end: Vec<f32>,
    pub batch: usize,
    pub seq_len: usize,
}

impl SpanLogits {
    /// Checks that these are `windows` rows of `seq_len` logits each.
    pub fn check(&self, windows: usize) -> Result<()> {
        let want = windows * self.seq_len;
        if self.batch != windows || self.start.len() != want || self.end.len() != want {
            return Err(ReaderError::Logits(format!(
                "{} start and {} end logits ({} rows) for {windows} windows × {}",
                self.start.len(),
                self.end.len(),
                self.batch,
                self.seq_len
            )));
        }
        Ok(())
    }

    /// Row `i`'s start and end logits.
    pub fn row(&self, i: usize) -> (&[f32], &[f32]) {
        let row = i * self.seq_len..(i + 1) * self.seq_len;
        (&self.start[row.clone()], &self.end[row])
    }
}

/// A span-extraction model: one start and one end logit per token of each
/// window. Implemented by `odqa_encoder::QaModel` (candle), by the server's
/// queue in front of it, and by fakes in tests.
pub trait SpanModel: Send + Sync {
    /// The tokenizer windows are built with.
    fn tokenizer(&self) -> &Tokenizer;
    /// Start and end logits of `windows` in one forward pass: row `i`
    /// (`seq_len` values, row-major) belongs to `windows[i]`. Padding is the
    /// model's business ([`Batch::pack`] with its own pad id).
    fn span_logits(&self, windows: &[Window]) -> Result<SpanLogits>;
}

impl<M: SpanModel + ?Sized> SpanModel for &M {
    fn tokenizer(&self) -> &Tokenizer {
        (**self).tokenizer()
    }

    fn span_logits(&self, windows: &[Window]) -> Result<SpanLogits> {
        (**self).span_logits(windows)
    }
}

impl<M: SpanModel + ?Sized> SpanModel for Arc<M> {
    fn tokenizer(&self) -> &Tokenizer {
        (**self).tokenizer()
    }

    fn span_logits(&self, windows: &[Window]) -> Result<SpanLogits> {
        (**self).span_logits(windows)
    }
}

/// Runs `windows` through `model` in forward passes of at most
/// `batch_size` windows and hands each window's start and end logits to
/// `each(index in windows, start, end)`, in window order. Returns the
/// number of passes.
///
/// Windows are grouped by length (longest first) before they are cut into
/// passes, so each pass is padded only to its own longest window; a
/// window's logits do not depend on its company (padding is masked), so
/// the grouping changes the work, not the result.
pub fn run_windows<M: SpanModel + ?Sized>(
    model: &M,
    windows: &[Window],
    batch_size: usize,
    mut each: impl FnMut(usize, &[f32], &[f32]) -> Result<()>,
) -> Result<usize> {
    if batch_size == 0 {
        return Err(ReaderError::Config("batch size must be at least 1".into()));
    }
    let mut order: Vec<usize> = (0..windows.len()).collect();
    // Stable: equal lengths keep their order.
    order.sort_by_key(|&i| std::cmp::Reverse(windows[i].len()));
    // Where each window's row is: (pass, row in the pass).
    let mut at = vec![(0usize, 0usize); windows.len()];
    let mut passes: Vec<SpanLogits> = Vec::with_capacity(windows.len().div_ceil(batch_size));
    for pass in order.chunks(batch_size) {
        let chunk: Vec<Window> = pass.iter().map(|&i| windows[i].clone()).collect();
        let logits = model.span_logits(&chunk)?;
        logits.check(chunk.len())?;
        for (j, &i) in pass.iter().enumerate() {
            at[i] = (passes.len(), j);
        }
        passes.push(logits);
    }
    for (i, &(pass, row)) in at.iter().enumerate() {
        let (start, end) = passes[pass].row(row);
        each(i, start, end)?;
    }
    Ok(passes.len())
}

/// Every window's best spans ([`score_window`]) from forward passes of at
/// most `batch_size` windows ([`run_windows`]), in window order.
pub fn score_all<M: SpanModel + ?Sized>(
    model: &M,
    windows: &[Window],
    batch_size: usize,
    cfg: &ScoringConfig,
) -> Result<Vec<WindowSpans>> {
    let mut spans = Vec::with_capacity(windows.len());
    run_windows(model, windows, batch_size, |i, start, end| {
        let scored = score_window(&windows[i], start, end, cfg).map_err(|err| match err {
            ReaderError::Logits(d) => ReaderError::Logits(format!("window {i}: {d}")),
            other => other,
        })?;
        spans.push(scored);
        Ok(())
    })?;
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::char_wordpiece_tokenizer;
    use crate::testing::TestStyle;
    use crate::windows::{WindowConfig, Windower};

    /// A BERT-style tokenizer and a windower of 24 tokens for the tests.
    fn windower(t: &Tokenizer) -> Windower<'_> {
        let cfg = WindowConfig {
            max_len: 24,
            doc_stride: 8,
            max_query_len: 4,
        };
        Windower::new(t, cfg).unwrap()
    }

    fn bert() -> Tokenizer {
        char_wordpiece_tokenizer("서울특별시대한민국의수도", TestStyle::Bert).unwrap()
    }

    #[test]
    fn batch_pads_to_longest() {
        let t = bert();
        let w = windower(&t);
        let ws = w.windows("수도", &["서울", "대한민국"]).unwrap();
        let b = Batch::pack(&ws, 0);
        let (ids, mask, types, n, seq) = (
            b.input_ids,
            b.attention_mask,
            b.token_type_ids,
            b.size,
            b.seq_len,
        );
        assert_eq!((n, seq), (2, ws[1].len()));
        assert_eq!(ids.len(), n * seq);
        assert_eq!(&ids[..ws[0].len()], &ws[0].input_ids[..]);
        assert_eq!(&ids[ws[0].len()..seq], &[0, 0]);
        assert_eq!(
            &mask[..seq],
            &[vec![1; ws[0].len()], vec![0; 2]].concat()[..]
        );
        assert_eq!(&types[seq..], &ws[1].token_type_ids[..]);
        assert_eq!(Batch::pack(&[], 0), Batch::default());
    }

    /// Logits that say which window they were computed for: every start
    /// logit is the window's first passage token id, every end logit its
    /// length; counts the passes and their sizes.
    struct Echo {
        tokenizer: Tokenizer,
        passes: std::sync::Mutex<Vec<(usize, usize)>>,
    }

    impl SpanModel for Echo {
        fn tokenizer(&self) -> &Tokenizer {
            &self.tokenizer
        }

        fn span_logits(&self, windows: &[Window]) -> Result<SpanLogits> {
            let b = Batch::pack(windows, 0);
            self.passes.lock().unwrap().push((b.size, b.seq_len));
            let mut start = Vec::new();
            let mut end = Vec::new();
            for w in windows {
                let id = w.input_ids[w.context_range.start] as f32;
                start.extend(std::iter::repeat_n(id, b.seq_len));
                end.extend(std::iter::repeat_n(w.len() as f32, b.seq_len));
            }
            Ok(SpanLogits {
                start,
                end,
                batch: b.size,
                seq_len: b.seq_len,
            })
        }
    }

    #[test]
    fn run_windows_groups_by_length_and_answers_in_window_order() {
        let model = Echo {
            tokenizer: bert(),
            passes: Default::default(),
        };
        let w = windower(model.tokenizer());
        let ws = w
            .windows("수도", &["서울", "대한민국의수도", "시", "특별시"])
            .unwrap();
        let mut seen = Vec::new();
        let passes = run_windows(&model, &ws, 2, |i, start, end| {
            seen.push((i, start[0], end[0] as usize));
            Ok(())
        })
        .unwrap();
        assert_eq!(passes, 2);
        // Each window got its own row back, in window order.
        let want: Vec<_> = ws
            .iter()
            .enumerate()
            .map(|(i, w)| (i, w.input_ids[w.context_range.start] as f32, w.len()))
            .collect();
        assert_eq!(seen, want);
        // Longest two first, each pass padded to its own longest.
        let mut lens: Vec<usize> = ws.iter().map(Window::len).collect();
        lens.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(
            *model.passes.lock().unwrap(),
            vec![(2, lens[0]), (2, lens[2])]
        );
        assert!(run_windows(&model, &ws, 0, |_, _, _| Ok(())).is_err());
    }

    #[test]
    fn logits_of_the_wrong_shape_are_an_error() {
        let logits = SpanLogits {
            start: vec![0.0; 6],
            end: vec![0.0; 5],
            batch: 2,
            seq_len: 3,
        };
        assert!(matches!(logits.check(2), Err(ReaderError::Logits(_))));
        assert!(logits.check(3).is_err());
    }
}
