//! KLUE-RE records: `{sentence, subject_entity: {word, start_idx, end_idx,
//! type}, object_entity: {…}, label, source}`, one JSON object a line.
//! Offsets count characters and `end_idx` is **inclusive**.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::templates::{Relation, NO_RELATION};

#[derive(Debug, thiserror::Error)]
pub enum RelationError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {detail}")]
    Record {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    /// An example or argument that cannot be classified (named field).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Reader(#[from] odqa_reader::ReaderError),
    #[error(transparent)]
    Model(#[from] odqa_encoder::EncoderError),
    /// Scoring the example at `record` (1-based) of `path` failed.
    #[error("{}: record {record}", path.display())]
    AtRecord {
        path: PathBuf,
        record: usize,
        #[source]
        source: Box<RelationError>,
    },
    /// A benchmark result file or directory could not be created.
    #[error("creating {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A benchmark result file could not be written.
    #[error("writing {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Writing prediction lines to the caller's writer failed (the caller
    /// knows where it leads).
    #[error(transparent)]
    Output(std::io::Error),
    /// A benchmark example without a gold label (`record` 1-based).
    #[error("{}: record {record} has no label: bench re needs labelled examples", path.display())]
    Unlabelled { path: PathBuf, record: usize },
    /// Calibrating on `asked` of the `examples` leaves none to calibrate on
    /// or none to report on.
    #[error(
        "--calibrate {asked}: need between 1 and {} of the {examples} examples in {}, leaving some to report on",
        examples.saturating_sub(1),
        path.display()
    )]
    CalibrationSplit {
        asked: usize,
        examples: usize,
        path: PathBuf,
    },
    /// The examples to report on came to none.
    #[error("no examples to report on (--limit 0?)")]
    NothingToReport,
}

/// An entity mention; `start_idx..=end_idx` are character offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    pub word: String,
    pub start_idx: usize,
    pub end_idx: usize,
    #[serde(rename = "type")]
    pub entity_type: String,
}

impl Entity {
    /// Half-open character range of the mention.
    pub fn char_range(&self) -> std::ops::Range<usize> {
        self.start_idx..self.end_idx + 1
    }
}

/// One KLUE-RE example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KlueReExample {
    pub sentence: String,
    pub subject_entity: Entity,
    pub object_entity: Entity,
    /// `no_relation` or one of the 29 relations; absent in unlabelled input.
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

impl KlueReExample {
    /// The gold relation, `None` for `no_relation` or no label.
    pub fn relation(&self) -> Option<Relation> {
        self.label.as_deref().and_then(Relation::parse)
    }

    /// Checks the label and that both mentions are where their offsets say.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(label) = &self.label {
            if label != NO_RELATION && Relation::parse(label).is_none() {
                return Err(format!("label: unknown relation {label:?}"));
            }
        }
        let chars: Vec<char> = self.sentence.chars().collect();
        for (field, e) in [
            ("subject_entity", &self.subject_entity),
            ("object_entity", &self.object_entity),
        ] {
            if e.start_idx > e.end_idx || e.end_idx >= chars.len() {
                return Err(format!(
                    "{field}: start_idx {} / end_idx {} (inclusive) outside a sentence of {} characters",
                    e.start_idx,
                    e.end_idx,
                    chars.len()
                ));
            }
            let found: String = chars[e.char_range()].iter().collect();
            if found != e.word {
                return Err(format!(
                    "{field}: word {:?} but the sentence has {found:?} at {}..={}",
                    e.word, e.start_idx, e.end_idx
                ));
            }
        }
        Ok(())
    }
}

/// Reads and validates a KLUE-RE JSONL file; errors name the file and line.
/// Blank lines are allowed.
pub fn read_klue_re(path: &Path) -> Result<Vec<KlueReExample>, RelationError> {
    let io = |source| RelationError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let record = |detail: String| RelationError::Record {
            path: path.to_path_buf(),
            line: i + 1,
            detail,
        };
        let example: KlueReExample =
            serde_json::from_str(&line).map_err(|e| record(e.to_string()))?;
        example.validate().map_err(record)?;
        out.push(example);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(line: &str) -> KlueReExample {
        serde_json::from_str(line).unwrap()
    }

    const GOOD: &str = r#"{"sentence": "서브 스폰서는 대웅제약 우루사가 전속모델인", "subject_entity": {"word": "대웅제약", "start_idx": 8, "end_idx": 11, "type": "ORG"}, "object_entity": {"word": "우루사", "start_idx": 13, "end_idx": 15, "type": "ORG"}, "label": "org:product", "source": "wikipedia"}"#;

    #[test]
    fn inclusive_offsets_point_at_the_words() {
        let e = example(GOOD);
        e.validate().unwrap();
        assert_eq!(e.object_entity.char_range(), 13..16);
        assert_eq!(e.relation().unwrap().label(), "org:product");
    }

    #[test]
    fn bad_records_name_file_line_and_field() {
        let dir = std::env::temp_dir().join(format!("odqa-klue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("re.jsonl");
        let shifted = GOOD.replace("\"start_idx\": 13", "\"start_idx\": 12");
        std::fs::write(&path, format!("{GOOD}\n\n{shifted}\n")).unwrap();
        let err = read_klue_re(&path).unwrap_err().to_string();
        assert!(err.contains("re.jsonl:3: object_entity"), "{err}");
        let unknown = GOOD.replace("org:product", "org:flavour");
        std::fs::write(&path, format!("{unknown}\n")).unwrap();
        let err = read_klue_re(&path).unwrap_err().to_string();
        assert!(err.contains(":1: label: unknown relation"), "{err}");
        std::fs::write(&path, "{\"sentence\": 3}\n").unwrap();
        let err = read_klue_re(&path).unwrap_err().to_string();
        assert!(err.contains(":1: "), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
