use std::path::Path;
use std::time::Instant;

use odqa_encoder::{Device, QaModel};
use odqa_reader::spans::score_windows;
use odqa_reader::{merge_answers, pad_id, Answer, ScoringConfig, WindowConfig, Windower};
use serde::{Deserialize, Serialize};

use crate::{PipelineError, Result};

/// How the reader windows passages and scores spans.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReaderOptions {
    pub windows: WindowConfig,
    pub scoring: ScoringConfig,
    /// Windows per forward pass; windows of different passages share batches.
    pub batch_size: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            windows: WindowConfig::default(),
            scoring: ScoringConfig::default(),
            batch_size: 16,
        }
    }
}

/// What one read produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOutput {
    /// n-best answers over all passages, best first.
    pub answers: Vec<Answer>,
    /// The lowest no-answer score over the windows, when the scoring allows it.
    pub no_answer_score: Option<f32>,
    pub windows: usize,
    pub seconds: f64,
}

/// A span-extraction model with its windowing and scoring settings.
pub struct Reader {
    model: QaModel,
    options: ReaderOptions,
    pad_id: u32,
}

impl Reader {
    pub fn load(model_dir: &Path, options: ReaderOptions, device: &Device) -> Result<Self> {
        if options.batch_size == 0 {
            return Err(PipelineError::InvalidOption(
                "reader batch size must be at least 1".into(),
            ));
        }
        options.windows.validate()?;
        options.scoring.validate()?;
        let model = QaModel::load(model_dir, device)?;
        let pad_id = pad_id(model.tokenizer()).unwrap_or(0);
        // Fails early on a tokenizer without the special tokens windows need.
        Windower::new(model.tokenizer(), options.windows)?;
        Ok(Reader {
            model,
            options,
            pad_id,
        })
    }

    pub fn options(&self) -> &ReaderOptions {
        &self.options
    }

    /// The best spans for `question` over `passages`.
    pub fn read(&self, question: &str, passages: &[&str]) -> Result<ReadOutput> {
        let started = Instant::now();
        let windower = Windower::new(self.model.tokenizer(), self.options.windows)?;
        let windows = windower.windows(question, passages)?;
        let mut spans = Vec::with_capacity(windows.len());
        for chunk in windows.chunks(self.options.batch_size) {
            let (ids, mask, types, batch, seq_len) = odqa_reader::batch(chunk, self.pad_id);
            let logits = self.model.logits(&ids, &mask, &types, batch, seq_len)?;
            let start: Vec<&[f32]> = logits.start.chunks(seq_len).collect();
            let end: Vec<&[f32]> = logits.end.chunks(seq_len).collect();
            spans.extend(score_windows(chunk, &start, &end, &self.options.scoring)?);
        }
        let answers = merge_answers(passages, &spans, self.options.scoring.n_best)?;
        let no_answer_score = odqa_reader::no_answer_score(&spans);
        Ok(ReadOutput {
            answers,
            no_answer_score,
            windows: windows.len(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}
