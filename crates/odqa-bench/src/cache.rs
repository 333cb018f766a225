//! A read cache for `bench odqa --cache`: every retrieved passage's n-best
//! spans for the top-k of each question, stored once, then re-scored at any
//! retrieval weight μ, depth, no-answer threshold and with or without early
//! stopping ([`odqa_reader::fusion::decide`]) without running the model.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use odqa_reader::fusion::{decide, FusionSettings, ReadPassage};
use odqa_reader::metrics::{exact_match_max, f1_max};
use serde::{Deserialize, Serialize};

use crate::bench::LatencySummary;
use crate::BenchError;

/// One question's reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedQuestion {
    pub id: String,
    pub question: String,
    /// Gold answers.
    pub answers: Vec<String>,
    /// Every passage of the top-k, read, in retrieval order.
    pub passages: Vec<ReadPassage>,
    /// Per passage: whether its text holds a gold answer (for calibrating
    /// the no-answer threshold: with none among the passages read, "no
    /// answer" is the right outcome).
    pub gold_in_passage: Vec<bool>,
    pub retrieve_ms: f64,
    /// Reading all `passages` (all their windows), measured.
    pub read_ms: f64,
}

impl CachedQuestion {
    /// Measured milliseconds per window of this question (0 when none).
    pub fn ms_per_window(&self) -> f64 {
        let windows: usize = self.passages.iter().map(|p| p.windows).sum();
        if windows == 0 {
            0.0
        } else {
            self.read_ms / windows as f64
        }
    }
}

/// The whole cache: what produced it, and the questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadCache {
    /// Depth read per question.
    pub top_k: usize,
    /// Reader, index and options that produced it (free-form).
    pub source: serde_json::Value,
    pub questions: Vec<CachedQuestion>,
}

impl ReadCache {
    /// Writes the cache as JSON through a temporary file renamed into place
    /// (an interrupted write leaves no partial cache).
    pub fn write(&self, path: &Path) -> Result<(), BenchError> {
        let io = |source| BenchError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(self).map_err(|source| BenchError::Serialize {
            what: "the read cache".into(),
            source,
        })?;
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    pub fn read(path: &Path) -> Result<ReadCache, BenchError> {
        let bytes = std::fs::read(path).map_err(|source| BenchError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let cache: ReadCache =
            serde_json::from_slice(&bytes).map_err(|source| BenchError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        if let Some(q) = cache
            .questions
            .iter()
            .find(|q| q.gold_in_passage.len() != q.passages.len())
        {
            return Err(BenchError::Format {
                path: path.to_path_buf(),
                at: format!("question {:?}", q.id),
                message: "gold_in_passage and passages differ in length".into(),
            });
        }
        Ok(cache)
    }
}

/// One point of a sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRow {
    pub settings: FusionSettings,
    pub questions: usize,
    /// × 100; a "no answer" prediction is the empty string.
    pub exact_match: f64,
    pub f1: f64,
    /// EM counting a "no answer" as right when no passage read holds a gold
    /// answer (what the no-answer threshold is calibrated on).
    pub exact_match_with_abstention: f64,
    pub no_answers: usize,
    pub windows_per_question: f64,
    pub passages_per_question: f64,
    /// Estimated from each question's measured ms per window × windows read.
    pub read_ms_estimate: LatencySummary,
}

/// Re-scores every cached question with `settings`: the row and the
/// predictions `{id: answer}` ("" for no answer).
pub fn rescore(
    cache: &ReadCache,
    settings: &FusionSettings,
) -> Result<(SweepRow, BTreeMap<String, String>), BenchError> {
    if cache.questions.is_empty() {
        return Err(BenchError::NoQuestions);
    }
    if settings.top_k == 0 || settings.top_k > cache.top_k {
        return Err(BenchError::InvalidOptions(format!(
            "top-k {} is outside 1..={} (the depth the cache was read at)",
            settings.top_k, cache.top_k
        )));
    }
    odqa_reader::fusion::check_weight(settings.weight)
        .map_err(|e| BenchError::InvalidOptions(e.to_string()))?;
    let (mut em, mut f1, mut em_abstain) = (0.0, 0.0, 0.0);
    let (mut windows, mut passages, mut no_answers) = (0usize, 0usize, 0usize);
    let mut read_ms = Vec::with_capacity(cache.questions.len());
    let mut predictions = BTreeMap::new();
    for q in &cache.questions {
        let d = decide(&q.passages, settings);
        let answer = match (d.no_answer, d.answers.first()) {
            (false, Some(a)) => a.text.clone(),
            _ => String::new(),
        };
        let e = exact_match_max(&answer, &q.answers);
        em += e;
        f1 += f1_max(&answer, &q.answers);
        if answer.is_empty() {
            no_answers += 1;
            if !q.gold_in_passage[..d.passages_read].contains(&true) {
                em_abstain += 1.0;
            }
        } else {
            em_abstain += e;
        }
        windows += d.windows_read;
        passages += d.passages_read;
        read_ms.push(q.ms_per_window() * d.windows_read as f64);
        predictions.insert(q.id.clone(), answer);
    }
    let n = cache.questions.len() as f64;
    Ok((
        SweepRow {
            settings: *settings,
            questions: cache.questions.len(),
            exact_match: 100.0 * em / n,
            f1: 100.0 * f1 / n,
            exact_match_with_abstention: 100.0 * em_abstain / n,
            no_answers,
            windows_per_question: windows as f64 / n,
            passages_per_question: passages as f64 / n,
            read_ms_estimate: LatencySummary::of(read_ms),
        },
        predictions,
    ))
}

/// [`rescore`] at every combination of `weights`, `top_ks`, `early_stop`
/// and `thresholds` (`base` gives the rest).
pub fn sweep(
    cache: &ReadCache,
    base: &FusionSettings,
    weights: &[f32],
    top_ks: &[usize],
    early_stop: &[bool],
    thresholds: &[f32],
) -> Result<Vec<SweepRow>, BenchError> {
    let mut rows = Vec::new();
    for &top_k in top_ks {
        for &stop in early_stop {
            for &weight in weights {
                for &threshold in thresholds {
                    let settings = FusionSettings {
                        weight,
                        top_k,
                        early_stop: stop,
                        no_answer_threshold: threshold,
                        ..*base
                    };
                    rows.push(rescore(cache, &settings)?.0);
                }
            }
        }
    }
    Ok(rows)
}

/// A Markdown table of sweep rows.
pub fn sweep_table(rows: &[SweepRow]) -> String {
    let mut out = String::from(
        "| top-k | μ | early stop | threshold | EM | F1 | EM (abstain right) | no answer | windows/q | passages/q | read p50 / p99 ms (est.) |\n\
         | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        let s = &r.settings;
        out.push_str(&format!(
            "| {} | {:.2} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {:.0} / {:.0} |\n",
            s.top_k,
            s.weight,
            if s.early_stop { "yes" } else { "no" },
            s.no_answer_threshold,
            r.exact_match,
            r.f1,
            r.exact_match_with_abstention,
            r.no_answers,
            r.windows_per_question,
            r.passages_per_question,
            r.read_ms_estimate.p50,
            r.read_ms_estimate.p99
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use odqa_reader::fusion::ReadSpan;

    fn cache() -> ReadCache {
        let passage = |rank: usize, r: f32, text: &str, p: f32| ReadPassage {
            rank,
            retrieval_score: r,
            windows: 2,
            spans: vec![ReadSpan {
                text: text.into(),
                char_start: 0,
                char_end: text.chars().count(),
                probability: p,
            }],
            no_answer_score: Some(0.1),
        };
        ReadCache {
            top_k: 2,
            source: serde_json::json!({"test": true}),
            questions: vec![
                CachedQuestion {
                    id: "a".into(),
                    question: "수도는?".into(),
                    answers: vec!["서울".into()],
                    passages: vec![passage(0, 10.0, "서울", 0.5), passage(1, 5.0, "부산", 0.7)],
                    gold_in_passage: vec![true, false],
                    retrieve_ms: 1.0,
                    read_ms: 40.0,
                },
                CachedQuestion {
                    id: "b".into(),
                    question: "항구는?".into(),
                    answers: vec!["목포".into()],
                    passages: vec![passage(0, 8.0, "인천", 0.2), passage(1, 7.0, "대구", 0.1)],
                    gold_in_passage: vec![false, false],
                    retrieve_ms: 1.0,
                    read_ms: 40.0,
                },
            ],
        }
    }

    fn base() -> FusionSettings {
        FusionSettings {
            weight: 0.0,
            top_k: 2,
            answers: 5,
            early_stop: false,
            batch_windows: 2,
            no_answer_threshold: 0.0,
        }
    }

    #[test]
    fn the_cache_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        cache().write(&path).unwrap();
        let back = ReadCache::read(&path).unwrap();
        assert_eq!(back, cache());
        assert_eq!(
            rescore(&back, &base()).unwrap().1,
            rescore(&cache(), &base()).unwrap().1
        );
        std::fs::write(&path, b"{").unwrap();
        assert!(ReadCache::read(&path).is_err());
    }

    #[test]
    fn weights_depths_and_thresholds_re_score_without_the_model() {
        let c = cache();
        // μ 0: the reader's surer 부산 wins; μ 0.5: 서울 (0.75 vs 0.6).
        assert_eq!(rescore(&c, &base()).unwrap().1["a"], "부산");
        let mu = FusionSettings {
            weight: 0.5,
            ..base()
        };
        let (row, preds) = rescore(&c, &mu).unwrap();
        assert_eq!(preds["a"], "서울");
        assert_eq!(row.exact_match, 50.0);
        assert_eq!(row.windows_per_question, 4.0);
        let top1 = FusionSettings { top_k: 1, ..base() };
        assert_eq!(rescore(&c, &top1).unwrap().1["a"], "서울");
        // Threshold 0.5 at μ 0.5: b's best is 0.5·0.2 + 0.5 = 0.6 → answered;
        // at 0.65 b abstains, which is right (no gold read), a stays (0.75).
        let t = FusionSettings {
            no_answer_threshold: 0.65,
            ..mu
        };
        let (row, preds) = rescore(&c, &t).unwrap();
        assert_eq!((preds["a"].as_str(), preds["b"].as_str()), ("서울", ""));
        assert_eq!(row.no_answers, 1);
        assert_eq!(row.exact_match_with_abstention, 100.0);
        let deep = FusionSettings { top_k: 3, ..base() };
        assert!(rescore(&c, &deep).is_err());
        let rows = sweep(&c, &base(), &[0.0, 0.5], &[1, 2], &[false, true], &[0.0]).unwrap();
        assert_eq!(rows.len(), 8);
        assert!(sweep_table(&rows).lines().count() == 10);
    }
}
