//! `POST /v1/relations`: KLUE-RE relations of a subject in a sentence,
//! asked as questions of the same reader the pipeline loaded
//! (`odqa-relations` owns the questions and the scoring).

use odqa_pipeline::Pipeline;
use odqa_relations::{
    ClassifierOptions, RelationClassifier, RelationError, SubjectType, DEFAULT_THRESHOLD,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::queue::{QueueError, QueuedModel};

/// Relation questions go through the same queue as the reader's windows.
pub(crate) type Classifier = RelationClassifier<QueuedModel>;

/// A classifier over the pipeline's (queued) reader model, windowed like the
/// reader.
pub(crate) fn classifier(pipeline: &Pipeline<QueuedModel>) -> Result<Classifier, RelationError> {
    let options = ClassifierOptions {
        windows: pipeline.reader().options().windows,
        ..ClassifierOptions::default()
    };
    RelationClassifier::new(pipeline.reader().model().clone(), options)
}

/// The subject's relations found in the sentence.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RelationsResponse {
    pub sentence: String,
    pub subject: String,
    /// `classify` when an object was given, else `open`.
    pub mode: String,
    /// The decision threshold used.
    pub threshold: f32,
    /// Classification: where the object is in the sentence (its first
    /// occurrence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<SpanOut>,
    /// Classification: the best relation when it reaches the threshold,
    /// else `no_relation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Classification: the best relation's probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f32>,
    /// Classification: every relation asked, most probable first.
    pub scores: Vec<RelationScore>,
    /// Open extraction: relations and their object spans at or above the
    /// threshold, best first.
    pub found: Vec<FoundOut>,
    pub total_ms: f64,
}

/// A span of the sentence (character offsets).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SpanOut {
    pub text: String,
    pub char_start: usize,
    pub char_end: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RelationScore {
    /// A KLUE-RE label, e.g. `per:date_of_birth`.
    pub relation: String,
    pub probability: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FoundOut {
    pub relation: String,
    /// An exact substring of the sentence.
    pub text: String,
    pub char_start: usize,
    pub char_end: usize,
    pub probability: f32,
}

impl From<RelationError> for ApiError {
    fn from(err: RelationError) -> Self {
        match err {
            RelationError::Invalid(message) => ApiError::invalid("invalid_argument", message),
            RelationError::Reader(odqa_reader::ReaderError::EmptyQuestion) => {
                ApiError::invalid("empty_question", err.to_string())
            }
            RelationError::Reader(odqa_reader::ReaderError::EmptyPassage { .. }) => {
                ApiError::invalid("empty_context", err.to_string())
            }
            RelationError::Reader(ref inner) => match QueueError::inside(inner) {
                Some(queue) => ApiError::from_queue(queue),
                None => ApiError::internal(err.to_string()),
            },
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// The character range of the first occurrence of `needle` in `haystack`.
fn find_chars(haystack: &str, needle: &str) -> Option<(usize, usize)> {
    let byte = haystack.find(needle)?;
    let start = haystack[..byte].chars().count();
    Some((start, start + needle.chars().count()))
}

/// Classifies (`object` given) or extracts (no object) on a blocking thread.
pub(crate) fn run(
    classifier: &Classifier,
    sentence: String,
    subject: String,
    object: Option<String>,
    subject_type: Option<String>,
    threshold: Option<f32>,
) -> Result<RelationsResponse, ApiError> {
    let started = std::time::Instant::now();
    let threshold = threshold.unwrap_or(DEFAULT_THRESHOLD);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(ApiError::invalid(
            "invalid_argument",
            format!("`threshold` is {threshold}; it must be within 0..=1"),
        ));
    }
    let subject_type = SubjectType::from_klue(subject_type.as_deref().unwrap_or(""));
    let subject = subject.trim().to_string();
    // Relations of a subject the sentence does not mention would be
    // answers about nothing; an empty sentence is the reader's error.
    if !sentence.trim().is_empty() && !sentence.contains(&subject) {
        return Err(ApiError::invalid(
            "subject_not_in_sentence",
            format!("`subject` {subject:?} does not occur in `sentence` as written"),
        ));
    }
    let mut response = RelationsResponse {
        sentence: String::new(),
        subject: subject.clone(),
        mode: "open".into(),
        threshold,
        object: None,
        label: None,
        probability: None,
        scores: Vec::new(),
        found: Vec::new(),
        total_ms: 0.0,
    };
    match object {
        Some(object) => {
            let object = object.trim().to_string();
            let (start, end) = find_chars(&sentence, &object).ok_or_else(|| {
                ApiError::invalid(
                    "object_not_in_sentence",
                    format!("`object` {object:?} does not occur in `sentence` as written"),
                )
            })?;
            let scores = classifier.score_object(&sentence, &subject, subject_type, start..end)?;
            let prediction = odqa_relations::Prediction::from_scores(scores, threshold);
            let mut scores: Vec<RelationScore> = prediction
                .scores
                .iter()
                .map(|(r, p)| RelationScore {
                    relation: r.label().to_string(),
                    probability: *p,
                })
                .collect();
            scores.sort_by(|a, b| b.probability.total_cmp(&a.probability));
            response.mode = "classify".into();
            response.object = Some(SpanOut {
                text: object,
                char_start: start,
                char_end: end,
            });
            response.label = Some(prediction.label.to_string());
            response.probability = Some(prediction.probability);
            response.scores = scores;
        }
        None => {
            response.found = classifier
                .open(&sentence, &subject, subject_type, threshold)?
                .into_iter()
                .map(|f| FoundOut {
                    relation: f.relation.label().to_string(),
                    text: f.text,
                    char_start: f.char_start,
                    char_end: f.char_end,
                    probability: f.probability,
                })
                .collect();
        }
    }
    response.sentence = sentence;
    response.total_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::find_chars;

    #[test]
    fn objects_are_found_in_characters() {
        assert_eq!(find_chars("이순신은 한성에서", "한성"), Some((5, 7)));
        assert_eq!(find_chars("abc", "d"), None);
    }
}
