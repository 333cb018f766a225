//! SQuAD v1 files (KorQuAD) with answer offsets, checked on load: an
//! answer's `answer_start` counts characters and must point at its text.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{io_error, Result, TrainError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SquadFile {
    pub data: Vec<SquadArticle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SquadArticle {
    pub title: String,
    pub paragraphs: Vec<SquadParagraph>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SquadParagraph {
    pub context: String,
    pub qas: Vec<SquadQa>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SquadQa {
    pub id: String,
    pub question: String,
    pub answers: Vec<SquadAnswer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SquadAnswer {
    pub text: String,
    /// Character offset of `text` in the paragraph.
    pub answer_start: usize,
}

impl SquadAnswer {
    /// The answer's half-open character range.
    pub fn char_range(&self) -> std::ops::Range<usize> {
        self.answer_start..self.answer_start + self.text.chars().count()
    }
}

/// Reads a SQuAD v1 file; every answer must be non-empty and found at its
/// `answer_start` (errors name the file, the question id and the field).
pub fn read_squad(path: &Path) -> Result<SquadFile> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    let file: SquadFile = serde_json::from_slice(&bytes).map_err(|e| TrainError::Data {
        path: path.to_path_buf(),
        detail: format!("not a SQuAD v1 file: {e}"),
    })?;
    for article in &file.data {
        for paragraph in &article.paragraphs {
            let chars: Vec<char> = paragraph.context.chars().collect();
            for qa in &paragraph.qas {
                let bad = |detail: String| TrainError::Data {
                    path: path.to_path_buf(),
                    detail: format!("question {:?}: {detail}", qa.id),
                };
                if qa.question.trim().is_empty() {
                    return Err(bad("question: empty".into()));
                }
                if qa.answers.is_empty() {
                    return Err(bad("answers: none".into()));
                }
                for answer in &qa.answers {
                    let range = answer.char_range();
                    if answer.text.trim().is_empty() {
                        return Err(bad("answers.text: empty".into()));
                    }
                    let found: Option<String> =
                        chars.get(range.clone()).map(|c| c.iter().collect());
                    if found.as_deref() != Some(answer.text.as_str()) {
                        return Err(bad(format!(
                            "answers.answer_start {} does not point at {:?} in its context",
                            answer.answer_start, answer.text
                        )));
                    }
                }
            }
        }
    }
    Ok(file)
}

/// Writes a SQuAD v1 file (for held-out splits that `odqa bench mrc` reads).
pub fn write_squad(path: &Path, articles: &[&SquadArticle]) -> Result<()> {
    let json = serde_json::json!({"version": "odqa-split", "data": articles});
    std::fs::write(path, json.to_string()).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_must_sit_at_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let good = r#"{"data":[{"title":"서울","paragraphs":[{"context":"수도는 서울이다.","qas":[{"id":"q1","question":"수도는?","answers":[{"text":"서울","answer_start":4}]}]}]}]}"#;
        std::fs::write(&path, good).unwrap();
        let file = read_squad(&path).unwrap();
        assert_eq!(
            file.data[0].paragraphs[0].qas[0].answers[0].char_range(),
            4..6
        );
        std::fs::write(
            &path,
            good.replace("\"answer_start\":4", "\"answer_start\":3"),
        )
        .unwrap();
        let err = read_squad(&path).unwrap_err().to_string();
        assert!(
            err.contains("question \"q1\": answers.answer_start 3"),
            "{err}"
        );
        std::fs::write(&path, good.replace("\"answers\":[", "\"answers\":[1,")).unwrap();
        assert!(read_squad(&path)
            .unwrap_err()
            .to_string()
            .contains("not a SQuAD v1 file"));
    }
}
