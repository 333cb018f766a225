//! Relation extraction as reading comprehension (KLUE-RE).
//!
//! Owns: the question templates that turn a KLUE-RE relation about a
//! subject into a Korean question ([`templates`]), Korean particle choice
//! after a name ([`josa`]), KLUE-RE records ([`klue`]), relation
//! classification and open extraction by asking those questions of the
//! span reader ([`classify`]), and KLUE-RE's metrics: micro-F1 without
//! `no_relation`, AUPRC, accuracy, threshold calibration ([`metrics`]),
//! and the KLUE-RE benchmark: scoring a labelled file, calibrating on its
//! first examples, the typed report and its JSON/Markdown/prediction files
//! ([`bench`]), and classifying a file into one prediction line per
//! example ([`jsonl`]).
//! The templates live only here: the reader's training-data export and
//! relation classification both ask exactly these questions.
//!
//! It runs the reader (an [`odqa_encoder::QaModel`], or anything that
//! gives start/end logits: [`odqa_reader::SpanModel`]) but owns no model code:
//! windows, span-probability normalisation and the object's token span
//! come from `odqa-reader`, the model from `odqa-encoder`. Errors are
//! [`RelationError`]s naming the file, line and field; no input reaches an
//! `unwrap`/`expect`.
//!
//! ```rust
//! use odqa_relations::{questions, Relation, SubjectType};
//! for relation in Relation::all().filter(|r| r.label() == "per:place_of_birth") {
//!     let asked = questions(relation, "이순신", SubjectType::Person);
//!     assert!(!asked.is_empty());
//!     assert!(asked.iter().all(|q| q.contains("이순신")));
//! }
//! ```

pub mod bench;
pub mod classify;
pub mod josa;
pub mod jsonl;
pub mod klue;
pub mod metrics;
pub mod templates;

pub use classify::{
    ClassifierOptions, Found, Prediction, RelationClassifier, SpanModel, DEFAULT_OPEN_THRESHOLD,
    DEFAULT_THRESHOLD,
};
pub use klue::{read_klue_re, Entity, KlueReExample, RelationError};
pub use metrics::{calibrate_threshold, evaluate, Calibration, Evaluation};
pub use templates::{questions, Relation, SubjectType, NO_RELATION, RELATIONS};
