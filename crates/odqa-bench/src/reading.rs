//! Reading benchmarks: EM/F1 (the official KorQuAD 1.0 definitions, from
//! `odqa-reader`) and per-stage latency of a prediction closure.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use odqa_reader::metrics::{exact_match_max, f1_max};

use crate::bench::LatencySummary;
use crate::{BenchError, Question};

/// What the system under test answered for one question.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingPrediction {
    pub answer: String,
    pub retrieve_ms: f64,
    pub read_ms: f64,
    /// Windows the reader ran for this question.
    pub windows: usize,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReadingReport {
    pub label: String,
    /// `mrc` (gold paragraph given) or `odqa` (retrieve, then read).
    pub kind: String,
    pub questions_file: String,
    pub questions: usize,
    /// × 100, averaged over questions, as the official script reports.
    pub exact_match: f64,
    pub f1: f64,
    pub retrieve_ms: LatencySummary,
    pub read_ms: LatencySummary,
    pub total_ms: LatencySummary,
    pub windows: usize,
    pub windows_per_second: f64,
    pub created_unix: u64,
    pub extra: serde_json::Value,
}

/// Runs `predict` over `questions` (one at a time) and scores the answers.
/// Returns the report and the predictions `{question_id: answer}` in the
/// official evaluation script's input format.
pub fn run_reading_bench<E: std::fmt::Display>(
    questions: &[Question],
    label: &str,
    kind: &str,
    questions_file: &str,
    show_progress: bool,
    mut predict: impl FnMut(&Question) -> Result<ReadingPrediction, E>,
) -> Result<(ReadingReport, BTreeMap<String, String>), BenchError> {
    if questions.is_empty() {
        return Err(BenchError::NoQuestions);
    }
    let bar = ProgressBar::with_draw_target(
        Some(questions.len() as u64),
        if show_progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:30} {pos}/{len} questions [{elapsed_precise}<{eta_precise}] {msg}",
    ) {
        bar.set_style(style);
    }
    let mut predictions = BTreeMap::new();
    let (mut em, mut f1, mut windows) = (0.0, 0.0, 0usize);
    let (mut retrieve, mut read, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for (i, question) in questions.iter().enumerate() {
        let prediction = predict(question).map_err(|e| BenchError::Search {
            id: question.id.clone(),
            message: e.to_string(),
        })?;
        em += exact_match_max(&prediction.answer, &question.answers);
        f1 += f1_max(&prediction.answer, &question.answers);
        windows += prediction.windows;
        retrieve.push(prediction.retrieve_ms);
        read.push(prediction.read_ms);
        total.push(prediction.retrieve_ms + prediction.read_ms);
        predictions.insert(question.id.clone(), prediction.answer);
        bar.inc(1);
        bar.set_message(format!(
            "EM {:.1} F1 {:.1}",
            100.0 * em / (i + 1) as f64,
            100.0 * f1 / (i + 1) as f64
        ));
    }
    bar.finish_and_clear();
    let n = questions.len() as f64;
    let read_seconds: f64 = read.iter().sum::<f64>() / 1e3;
    let report = ReadingReport {
        label: label.to_string(),
        kind: kind.to_string(),
        questions_file: questions_file.to_string(),
        questions: questions.len(),
        exact_match: 100.0 * em / n,
        f1: 100.0 * f1 / n,
        retrieve_ms: LatencySummary::of(retrieve),
        read_ms: LatencySummary::of(read),
        total_ms: LatencySummary::of(total),
        windows,
        windows_per_second: if read_seconds > 0.0 {
            windows as f64 / read_seconds
        } else {
            0.0
        },
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        extra: serde_json::Value::Null,
    };
    Ok((report, predictions))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: &str, answers: &[&str]) -> Question {
        Question {
            id: id.into(),
            question: "?".into(),
            answers: answers.iter().map(|a| a.to_string()).collect(),
            context: None,
            title: None,
        }
    }

    #[test]
    fn scores_follow_the_official_definitions() {
        let questions = [
            q("a", &["서울"]),
            q("b", &["1545년", "1545"]),
            q("c", &["부산"]),
        ];
        let answers =
            std::collections::HashMap::from([("a", "서울특별시"), ("b", "1545년"), ("c", "대구")]);
        let (report, predictions) = run_reading_bench(&questions, "t", "mrc", "f", false, |q| {
            Ok::<_, String>(ReadingPrediction {
                answer: answers[q.id.as_str()].to_string(),
                retrieve_ms: 1.0,
                read_ms: 3.0,
                windows: 2,
            })
        })
        .unwrap();
        // EM: 0 + 1 + 0; F1: 2·(2/5·1)/(2/5+1) = 0.5714…, 1, 0.
        assert!((report.exact_match - 100.0 / 3.0).abs() < 1e-9);
        assert!((report.f1 - 100.0 * (4.0 / 7.0 + 1.0) / 3.0).abs() < 1e-9);
        assert_eq!(report.windows, 6);
        assert!((report.windows_per_second - 6.0 / 0.009).abs() < 1e-6);
        assert_eq!(predictions["b"], "1545년");
        assert_eq!(report.total_ms.mean, 4.0);
    }

    #[test]
    fn a_failing_prediction_names_the_question() {
        let questions = [q("x1", &["a"])];
        let err = run_reading_bench(&questions, "t", "mrc", "f", false, |_| {
            Err::<ReadingPrediction, _>("boom")
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("x1") && err.to_string().contains("boom"),
            "{err}"
        );
    }
}
