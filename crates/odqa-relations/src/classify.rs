//! Relation classification and open relation extraction with the span
//! reader.
//!
//! **Classification** ([`RelationClassifier::score`],
//! [`RelationClassifier::predict`]): for a KLUE-RE example (a sentence, a
//! subject and an object mention with character offsets) every candidate
//! relation is asked as a question about the subject
//! ([`crate::templates::questions`]) over the sentence, and the relation's
//! probability is the reader's probability that the object mention is the
//! answer: `p_start(first object token) × p_end(last object token)`, each a
//! softmax over the window's passage tokens **plus the no-answer position**,
//! the very normalisation of the reader's answers
//! ([`odqa_reader::spans::span_probability`]). The object's tokens are the
//! ones that overlap its characters ([`odqa_reader::answer_tokens`]), as in
//! the training-data export. A sentence longer than one window: the
//! maximum over the windows that hold the whole object (0 when none does).
//! With several questions per relation
//! ([`ClassifierOptions::questions_per_relation`]) their probabilities are
//! averaged. All questions of one example go through the model in one batch
//! (up to [`ClassifierOptions::batch_size`] windows).
//!
//! **Candidates**: by default only the relations defined for the subject's
//! KLUE type ([`Relation::for_subject`]: the 18 `per:` relations for `PER`,
//! the 11 `org:` relations for `ORG`, all 29 for any other type), the way
//! the training-data export asks them; the others are not asked and count
//! as probability 0. [`ClassifierOptions::all_relations`] asks all 29.
//!
//! The **prediction** is the best relation when its probability reaches the
//! threshold, else `no_relation`. The threshold is calibrated on held-out
//! data ([`crate::metrics::calibrate_threshold`]).
//!
//! **Open mode** ([`RelationClassifier::open`]): only the sentence and the
//! subject are given. Each relation's questions are read like any question
//! (best spans of at most [`ClassifierOptions::max_answer_tokens`] tokens,
//! scored with the same normalisation, the best over its questions), and
//! the spans at or above the threshold that do not overlap a mention of the
//! subject are returned, best first.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use odqa_encoder::{Device, QaModel};
use odqa_reader::spans::{score_window, span_probability};
pub use odqa_reader::SpanModel;
use odqa_reader::{
    answer_tokens, merge_answers, run_windows, ScoringConfig, Window, WindowConfig, WindowSpans,
    Windower,
};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::klue::{KlueReExample, RelationError};
use crate::templates::{questions, Relation, SubjectType, NO_RELATION};

pub type Result<T> = std::result::Result<T, RelationError>;

/// Relation probabilities always leave room for "no answer" (position 0 of
/// the window is part of both softmaxes), as the reader was trained.
pub const ALLOW_NO_ANSWER: bool = true;

/// The no-relation threshold for classification with odqa's trained reader
/// (`models/odqa-reader-ko`): calibrated for micro-F1 on 300 held-out
/// KLUE-RE examples (0.1563 for reader v2; v1's was 0.0219; see
/// bench/README.md). It is below ½ because the best relation is already an
/// argmax over the relations; other readers should calibrate their own
/// (`odqa bench re --calibrate N`).
pub const DEFAULT_THRESHOLD: f32 = 0.156;

/// The default span threshold of open mode, which has no argmax over
/// relations to lean on: set by hand from a few example sentences, **not
/// calibrated** (the trained reader's right answers scored 0.4–0.85 there;
/// it also often gives one span to related relations, such as dates of
/// birth and death, at similar probabilities).
pub const DEFAULT_OPEN_THRESHOLD: f32 = 0.3;

/// Spans kept per window and per relation in open mode.
const OPEN_N_BEST: usize = 5;

/// How relations are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifierOptions {
    /// Question + sentence windows (KLUE sentences fit one window).
    pub windows: WindowConfig,
    /// Questions asked per relation: its first N templates (the preferred
    /// one first), probabilities averaged. 1 by default.
    pub questions_per_relation: usize,
    /// Ask all 29 relations whatever the subject's type.
    pub all_relations: bool,
    /// Windows per forward pass (one example's questions share a batch).
    pub batch_size: usize,
    /// Longest span open mode considers, in tokens.
    pub max_answer_tokens: usize,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        ClassifierOptions {
            windows: WindowConfig::default(),
            questions_per_relation: 1,
            all_relations: false,
            batch_size: 32,
            max_answer_tokens: 30,
        }
    }
}

impl ClassifierOptions {
    pub fn validate(&self) -> Result<()> {
        self.windows.validate()?;
        for (name, value) in [
            ("questions_per_relation", self.questions_per_relation),
            ("batch_size", self.batch_size),
            ("max_answer_tokens", self.max_answer_tokens),
        ] {
            if value == 0 {
                return Err(RelationError::Invalid(format!("{name} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// A classification: the best relation, and `no_relation` below the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The predicted label: a relation or `no_relation`.
    pub label: &'static str,
    /// The predicted relation; `None` for `no_relation`.
    pub relation: Option<Relation>,
    /// The best-scoring relation, whether or not it reached the threshold
    /// (`None` only when no relation was asked).
    pub best: Option<Relation>,
    /// Its probability (0 when none was asked).
    pub probability: f32,
    /// Every asked relation's probability, in [`crate::RELATIONS`] order.
    pub scores: Vec<(Relation, f32)>,
}

impl Prediction {
    /// The prediction for `scores` under `threshold`.
    pub fn from_scores(scores: Vec<(Relation, f32)>, threshold: f32) -> Self {
        let top = best(&scores);
        let relation = top.filter(|&(_, p)| p >= threshold).map(|(r, _)| r);
        Prediction {
            label: relation.map_or(NO_RELATION, Relation::label),
            relation,
            best: top.map(|(r, _)| r),
            probability: top.map_or(0.0, |(_, p)| p),
            scores,
        }
    }
}

/// The best-scoring relation and its probability (the first of equals);
/// `None` for no scores.
pub fn best(scores: &[(Relation, f32)]) -> Option<(Relation, f32)> {
    scores.iter().copied().fold(None, |acc, (r, p)| match acc {
        Some((_, q)) if q >= p => acc,
        _ => Some((r, p)),
    })
}

/// A relation found in open mode: the object is an exact substring of the
/// sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    pub relation: Relation,
    /// `sentence.chars().skip(char_start).take(char_end - char_start)`.
    pub text: String,
    /// Character offset of the start.
    pub char_start: usize,
    /// Character offset one past the end.
    pub char_end: usize,
    /// The span's probability (see the module documentation).
    pub probability: f32,
}

/// The questions asked for one example and their windows.
struct Asked {
    /// The relations asked, in [`crate::RELATIONS`] order.
    relations: Vec<Relation>,
    /// Per question: the index of its relation in `relations`.
    question_relation: Vec<usize>,
    windows: Vec<Window>,
    /// Per window: the index of its question.
    window_question: Vec<usize>,
}

/// Relation classification and extraction with a span reader; see the
/// module documentation.
pub struct RelationClassifier<M = QaModel> {
    model: M,
    /// The model's tokenizer without truncation or padding.
    tokenizer: Tokenizer,
    options: ClassifierOptions,
    windows_run: AtomicUsize,
}

impl RelationClassifier<QaModel> {
    /// Loads a reader directory ([`QaModel::load_at`]).
    pub fn load(
        dir: &Path,
        options: ClassifierOptions,
        device: &Device,
        precision: odqa_encoder::Precision,
    ) -> Result<Self> {
        options.validate()?;
        let model = QaModel::load_at(dir, device, precision)?;
        model.check_window(options.windows.max_len)?;
        Self::new(model, options)
    }
}

impl<M: SpanModel> RelationClassifier<M> {
    /// Checks the options and that the model's tokenizer lays out windows.
    pub fn new(model: M, options: ClassifierOptions) -> Result<Self> {
        options.validate()?;
        let mut tokenizer = model.tokenizer().clone();
        tokenizer.with_padding(None);
        // Removing truncation cannot fail (only setting bad params can).
        let _ = tokenizer.with_truncation(None);
        Windower::new(&tokenizer, options.windows)?;
        Ok(RelationClassifier {
            model,
            tokenizer,
            options,
            windows_run: AtomicUsize::new(0),
        })
    }

    pub fn options(&self) -> &ClassifierOptions {
        &self.options
    }

    pub fn model(&self) -> &M {
        &self.model
    }

    /// Windows run through the model so far.
    pub fn windows_run(&self) -> usize {
        self.windows_run.load(Ordering::Relaxed)
    }

    /// The relations asked about a subject of `subject_type`.
    pub fn relations_for(&self, subject_type: SubjectType) -> Vec<Relation> {
        if self.options.all_relations {
            Relation::all().collect()
        } else {
            Relation::for_subject(subject_type).collect()
        }
    }

    /// Every asked relation's probability that the example's object is its
    /// answer, in [`crate::RELATIONS`] order.
    pub fn score(&self, example: &KlueReExample) -> Result<Vec<(Relation, f32)>> {
        example.validate().map_err(RelationError::Invalid)?;
        let subject = &example.subject_entity;
        self.score_object(
            &example.sentence,
            &subject.word,
            SubjectType::from_klue(&subject.entity_type),
            example.object_entity.char_range(),
        )
    }

    /// [`RelationClassifier::score`] and the decision under `threshold`.
    pub fn predict(&self, example: &KlueReExample, threshold: f32) -> Result<Prediction> {
        Ok(Prediction::from_scores(self.score(example)?, threshold))
    }

    /// The probabilities for an object given as the half-open character
    /// range `object` of `sentence`.
    pub fn score_object(
        &self,
        sentence: &str,
        subject: &str,
        subject_type: SubjectType,
        object: Range<usize>,
    ) -> Result<Vec<(Relation, f32)>> {
        let n_chars = sentence.chars().count();
        if object.start >= object.end || object.end > n_chars {
            return Err(RelationError::Invalid(format!(
                "object_entity: characters {}..{} outside a sentence of {n_chars} characters",
                object.start, object.end
            )));
        }
        let windower = self.windower()?;
        let tokens = windower.tokenize_passage(0, sentence)?;
        let object_tokens = answer_tokens(&tokens, &object).ok_or_else(|| {
            RelationError::Invalid(format!(
                "object_entity: characters {}..{} hold no token of the sentence",
                object.start, object.end
            ))
        })?;
        let asked = self.ask(&windower, sentence, subject, subject_type)?;
        let mut per_question = vec![0.0f32; asked.question_relation.len()];
        self.run(&asked.windows, |i, start, end| {
            let window = &asked.windows[i];
            if let Some(span) = window.positions_of(object_tokens) {
                let p = span_probability(window, start, end, span, ALLOW_NO_ANSWER)?;
                let slot = &mut per_question[asked.window_question[i]];
                *slot = slot.max(p);
            }
            Ok(())
        })?;
        let mut sums = vec![(0.0f32, 0usize); asked.relations.len()];
        for (q, p) in per_question.iter().enumerate() {
            let sum = &mut sums[asked.question_relation[q]];
            sum.0 += p;
            sum.1 += 1;
        }
        Ok(asked
            .relations
            .iter()
            .zip(sums)
            .map(|(&r, (sum, n))| (r, if n == 0 { 0.0 } else { sum / n as f32 }))
            .collect())
    }

    /// Open extraction: the relations and object spans of `subject` in
    /// `sentence` the reader finds at or above `threshold`, best first.
    pub fn open(
        &self,
        sentence: &str,
        subject: &str,
        subject_type: SubjectType,
        threshold: f32,
    ) -> Result<Vec<Found>> {
        let windower = self.windower()?;
        let asked = self.ask(&windower, sentence, subject, subject_type)?;
        let cfg = ScoringConfig {
            max_answer_tokens: self.options.max_answer_tokens,
            n_best: OPEN_N_BEST,
            allow_no_answer: ALLOW_NO_ANSWER,
        };
        let mut spans: Vec<Vec<WindowSpans>> = vec![Vec::new(); asked.relations.len()];
        self.run(&asked.windows, |i, start, end| {
            let relation = asked.question_relation[asked.window_question[i]];
            spans[relation].push(score_window(&asked.windows[i], start, end, &cfg)?);
            Ok(())
        })?;
        let mentions = mentions(sentence, subject.trim());
        let mut found = Vec::new();
        for (&relation, spans) in asked.relations.iter().zip(&spans) {
            for answer in merge_answers(&[sentence], spans, OPEN_N_BEST)? {
                let overlaps = mentions
                    .iter()
                    .any(|m| m.start < answer.char_end && answer.char_start < m.end);
                if answer.score >= threshold && !overlaps {
                    found.push(Found {
                        relation,
                        text: answer.text,
                        char_start: answer.char_start,
                        char_end: answer.char_end,
                        probability: answer.score,
                    });
                }
            }
        }
        found.sort_by(|a, b| {
            b.probability
                .total_cmp(&a.probability)
                .then(a.relation.index().cmp(&b.relation.index()))
                .then(a.char_start.cmp(&b.char_start))
                .then(a.char_end.cmp(&b.char_end))
        });
        Ok(found)
    }

    fn windower(&self) -> Result<Windower<'_>> {
        Ok(Windower::new(&self.tokenizer, self.options.windows)?)
    }

    /// The windows of every question of every relation asked.
    fn ask(
        &self,
        windower: &Windower<'_>,
        sentence: &str,
        subject: &str,
        subject_type: SubjectType,
    ) -> Result<Asked> {
        if subject.trim().is_empty() {
            return Err(RelationError::Invalid("subject: empty".into()));
        }
        if sentence.trim().is_empty() {
            return Err(RelationError::Invalid("sentence: empty".into()));
        }
        let mut asked = Asked {
            relations: self.relations_for(subject_type),
            question_relation: Vec::new(),
            windows: Vec::new(),
            window_question: Vec::new(),
        };
        for (r, &relation) in asked.relations.iter().enumerate() {
            let qs = questions(relation, subject, subject_type);
            for question in qs.iter().take(self.options.questions_per_relation) {
                let q = asked.question_relation.len();
                asked.question_relation.push(r);
                let windows = windower.windows(question, &[sentence])?;
                asked
                    .window_question
                    .extend(std::iter::repeat_n(q, windows.len()));
                asked.windows.extend(windows);
            }
        }
        Ok(asked)
    }

    /// Runs `windows` through the model in passes of
    /// [`ClassifierOptions::batch_size`] ([`odqa_reader::run_windows`]) and
    /// hands each window's start and end logits to `each`.
    fn run(
        &self,
        windows: &[Window],
        mut each: impl FnMut(usize, &[f32], &[f32]) -> Result<()>,
    ) -> Result<()> {
        // `each` fails with this crate's error; carry it through the
        // reader's loop untouched.
        let mut failed: Option<RelationError> = None;
        run_windows(
            &self.model,
            windows,
            self.options.batch_size,
            |i, start, end| {
                if failed.is_none() {
                    if let Err(e) = each(i, start, end) {
                        failed = Some(e);
                    }
                }
                Ok(())
            },
        )?;
        if let Some(e) = failed {
            return Err(e);
        }
        self.windows_run.fetch_add(windows.len(), Ordering::Relaxed);
        Ok(())
    }
}

/// Character ranges (half-open) of every occurrence of `word` in `text`.
fn mentions(text: &str, word: &str) -> Vec<Range<usize>> {
    if word.is_empty() {
        return Vec::new();
    }
    let len = word.chars().count();
    text.match_indices(word)
        .map(|(b, _)| {
            let start = text[..b].chars().count();
            start..start + len
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::klue::Entity;
    use odqa_reader::testing::{char_wordpiece_tokenizer, TestStyle};
    use odqa_reader::SpanLogits;

    const SENTENCE: &str = "삼성전자는 이건희가 회장이던 1969년에 설립되었다.";

    type Rule = Box<dyn Fn(&Window, &[u32]) -> Option<(usize, usize)> + Send + Sync>;

    /// A model whose logits peak where `rule` says: for a window it gives
    /// the passage characters `(first, last)` (inclusive) the start and the
    /// end should point at, or `None` for "no answer" (position 0).
    struct FakeModel {
        tokenizer: Tokenizer,
        rule: Rule,
        peak: f32,
    }

    impl SpanModel for FakeModel {
        fn tokenizer(&self) -> &Tokenizer {
            &self.tokenizer
        }

        fn span_logits(&self, windows: &[Window]) -> odqa_reader::Result<SpanLogits> {
            let seq_len = windows.iter().map(Window::len).max().unwrap_or(0);
            let mut start = vec![0.0f32; windows.len() * seq_len];
            let mut end = start.clone();
            for (i, w) in windows.iter().enumerate() {
                // <s> question </s> </s> passage </s>
                let question = &w.input_ids[1..w.context_range.start - 2];
                let (s, e) = match (self.rule)(w, question) {
                    Some((first, last)) => {
                        let at = |c: usize| {
                            w.token_char_offsets
                                .iter()
                                .position(|o| o.is_some_and(|(a, b)| a <= c && c < b))
                        };
                        match (at(first), at(last)) {
                            (Some(s), Some(e)) => (s, e),
                            _ => (0, 0),
                        }
                    }
                    None => (0, 0),
                };
                start[i * seq_len + s] = self.peak;
                end[i * seq_len + e] = self.peak;
            }
            Ok(SpanLogits {
                start,
                end,
                batch: windows.len(),
                seq_len,
            })
        }
    }

    fn tokenizer(subject: &str, sentence: &str) -> Tokenizer {
        let mut alphabet = sentence.to_string();
        for r in Relation::all() {
            for ty in [SubjectType::Person, SubjectType::Organization] {
                alphabet.extend(questions(r, subject, ty));
            }
        }
        char_wordpiece_tokenizer(&alphabet, TestStyle::Roberta).unwrap()
    }

    /// The question's token ids with `tokenizer`, as a window holds them.
    fn ids(tokenizer: &Tokenizer, question: &str) -> Vec<u32> {
        tokenizer
            .encode(question, false)
            .unwrap()
            .get_ids()
            .to_vec()
    }

    /// Peaks at chars `span` for the question `question`, no answer elsewhere.
    fn classifier_answering(
        subject: &str,
        sentence: &str,
        question: &str,
        span: (usize, usize),
        options: ClassifierOptions,
    ) -> RelationClassifier<FakeModel> {
        let tokenizer = tokenizer(subject, sentence);
        let want = ids(&tokenizer, question);
        let model = FakeModel {
            tokenizer,
            rule: Box::new(move |_: &Window, q: &[u32]| (q == want.as_slice()).then_some(span)),
            peak: 12.0,
        };
        RelationClassifier::new(model, options).unwrap()
    }

    fn entity(word: &str, start: usize, ty: &str) -> Entity {
        Entity {
            word: word.into(),
            start_idx: start,
            end_idx: start + word.chars().count() - 1,
            entity_type: ty.into(),
        }
    }

    fn example(subject: Entity, object: Entity) -> KlueReExample {
        KlueReExample {
            sentence: SENTENCE.into(),
            subject_entity: subject,
            object_entity: object,
            label: None,
            source: None,
        }
    }

    fn rel(label: &str) -> Relation {
        Relation::parse(label).unwrap()
    }

    #[test]
    fn the_object_at_its_character_offsets_is_the_answer() {
        // 이건희 is chars 6..=8; KLUE's end_idx is inclusive.
        let top = rel("org:top_members/employees");
        let q = questions(top, "삼성전자", SubjectType::Organization).remove(0);
        let c = classifier_answering(
            "삼성전자",
            SENTENCE,
            &q,
            (6, 8),
            ClassifierOptions::default(),
        );
        let ex = example(entity("삼성전자", 0, "ORG"), entity("이건희", 6, "PER"));
        assert_eq!(ex.object_entity.end_idx, 8);
        let scores = c.score(&ex).unwrap();
        // Only the 11 org: relations are asked about an organisation.
        assert_eq!(scores.len(), 11);
        assert!(scores.iter().all(|(r, _)| r.label().starts_with("org:")));
        assert!(scores.iter().all(|&(_, p)| (0.0..=1.0).contains(&p)));
        let prediction = c.predict(&ex, 0.5).unwrap();
        assert_eq!(prediction.label, "org:top_members/employees");
        assert_eq!(prediction.relation, Some(top));
        assert!(prediction.probability > 0.99, "{}", prediction.probability);
        // Every other question put its mass on "no answer".
        for &(r, p) in &prediction.scores {
            if r != top {
                assert!(p < 1e-6, "{} {p}", r.label());
            }
        }
        // Above the best probability: no_relation.
        let none = c.predict(&ex, 0.999_99).unwrap();
        assert_eq!((none.label, none.relation), ("no_relation", None));
        assert_eq!(none.best, Some(top));
        // A leading space holds no token: the same span.
        let spaced = example(entity("삼성전자", 0, "ORG"), entity(" 이건희", 5, "PER"));
        assert_eq!(c.score(&spaced).unwrap(), scores);
        // One character off on either side is another span: nearly 0.
        for (start, word) in [(7, "건희가"), (6, "이건희가")] {
            let shifted = example(entity("삼성전자", 0, "ORG"), entity(word, start, "PER"));
            let p = c.score(&shifted).unwrap();
            assert!(p.iter().all(|&(_, p)| p < 1e-3), "{word:?}: {p:?}");
        }
        // Only "이건" is the start token but not the end.
        let part = example(entity("삼성전자", 0, "ORG"), entity("이건", 6, "PER"));
        assert!(c.score(&part).unwrap().iter().all(|&(_, p)| p < 1e-3));
        assert_eq!(c.windows_run(), 11 * 7);
    }

    #[test]
    fn subject_types_choose_the_relations_asked() {
        let c = classifier_answering(
            "이건희",
            SENTENCE,
            "?",
            (0, 0),
            ClassifierOptions::default(),
        );
        let count = |ty: &str| {
            let ex = example(entity("이건희", 6, ty), entity("삼성전자", 0, "ORG"));
            c.score(&ex).unwrap().len()
        };
        assert_eq!(count("PER"), 18);
        assert_eq!(count("ORG"), 11);
        assert_eq!(count("LOC"), 29);
        let all = ClassifierOptions {
            all_relations: true,
            ..ClassifierOptions::default()
        };
        let c = classifier_answering("이건희", SENTENCE, "?", (0, 0), all);
        let ex = example(entity("이건희", 6, "PER"), entity("삼성전자", 0, "ORG"));
        let scores = c.score(&ex).unwrap();
        assert_eq!(scores.len(), 29);
        let labels: Vec<&str> = scores.iter().map(|(r, _)| r.label()).collect();
        assert_eq!(labels, crate::RELATIONS);
    }

    #[test]
    fn several_questions_are_averaged() {
        let founded = rel("org:founded");
        let qs = questions(founded, "삼성전자", SubjectType::Organization);
        let two = ClassifierOptions {
            questions_per_relation: 2,
            ..ClassifierOptions::default()
        };
        // Only the second question finds the year (1969년: chars 16..=20).
        let c = classifier_answering("삼성전자", SENTENCE, &qs[1], (16, 20), two);
        let ex = example(entity("삼성전자", 0, "ORG"), entity("1969년", 16, "DAT"));
        let scores = c.score(&ex).unwrap();
        let p = scores.iter().find(|(r, _)| *r == founded).unwrap().1;
        assert!((p - 0.5).abs() < 0.01, "{p}");
        assert_eq!(c.windows_run(), 22);
    }

    #[test]
    fn long_sentences_take_the_window_that_holds_the_object() {
        let sentence = format!("{}{}", "가나다라마바사아자차카타파하".repeat(3), SENTENCE);
        let offset = 42;
        let top = rel("org:top_members/employees");
        let q = questions(top, "삼성전자", SubjectType::Organization).remove(0);
        let options = ClassifierOptions {
            windows: WindowConfig {
                max_len: 48,
                doc_stride: 8,
                max_query_len: 24,
            },
            ..ClassifierOptions::default()
        };
        let c = classifier_answering("삼성전자", &sentence, &q, (offset + 6, offset + 8), options);
        let ex = KlueReExample {
            sentence: sentence.clone(),
            subject_entity: entity("삼성전자", offset, "ORG"),
            object_entity: entity("이건희", offset + 6, "PER"),
            label: None,
            source: None,
        };
        ex.validate().unwrap();
        let p = c.predict(&ex, 0.5).unwrap();
        assert_eq!(p.relation, Some(top));
        assert!(p.probability > 0.99);
        // Several windows per question were read.
        assert!(c.windows_run() > 11, "{}", c.windows_run());
    }

    #[test]
    fn open_mode_finds_spans_at_exact_offsets_and_skips_the_subject() {
        let top = rel("org:top_members/employees");
        let q = questions(top, "삼성전자", SubjectType::Organization).remove(0);
        let c = classifier_answering(
            "삼성전자",
            SENTENCE,
            &q,
            (6, 8),
            ClassifierOptions::default(),
        );
        let found = c
            .open(SENTENCE, "삼성전자", SubjectType::Organization, 0.5)
            .unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.relation, top);
        assert_eq!(
            (f.text.as_str(), f.char_start, f.char_end),
            ("이건희", 6, 9)
        );
        let chars: Vec<char> = SENTENCE.chars().collect();
        assert_eq!(
            chars[f.char_start..f.char_end].iter().collect::<String>(),
            f.text
        );
        assert!(f.probability > 0.99);
        // A reader that answers with the subject itself finds nothing.
        let c = classifier_answering(
            "삼성전자",
            SENTENCE,
            &q,
            (0, 3),
            ClassifierOptions::default(),
        );
        assert!(c
            .open(SENTENCE, "삼성전자", SubjectType::Organization, 0.5)
            .unwrap()
            .is_empty());
        assert!(matches!(
            c.open(SENTENCE, " ", SubjectType::Organization, 0.5),
            Err(RelationError::Invalid(_))
        ));
    }

    #[test]
    fn bad_examples_and_options_are_errors() {
        let c = classifier_answering(
            "삼성전자",
            SENTENCE,
            "?",
            (0, 0),
            ClassifierOptions::default(),
        );
        let mut ex = example(entity("삼성전자", 0, "ORG"), entity("이건희", 6, "PER"));
        ex.object_entity.start_idx = 7;
        let err = c.score(&ex).unwrap_err().to_string();
        assert!(err.contains("object_entity"), "{err}");
        let err = c
            .score_object(SENTENCE, "삼성전자", SubjectType::Organization, 20..200)
            .unwrap_err()
            .to_string();
        assert!(err.contains("object_entity"), "{err}");
        // A space holds no token.
        let err = c
            .score_object(SENTENCE, "삼성전자", SubjectType::Organization, 5..6)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no token"), "{err}");
        let tokenizer = tokenizer("a", "b");
        let bad = ClassifierOptions {
            batch_size: 0,
            ..ClassifierOptions::default()
        };
        let model = FakeModel {
            tokenizer,
            rule: Box::new(|_: &Window, _: &[u32]| None),
            peak: 1.0,
        };
        assert!(RelationClassifier::new(model, bad).is_err());
    }

    #[test]
    fn mentions_are_character_ranges() {
        assert_eq!(mentions("가나 가나다 가나", "가나"), vec![0..2, 3..5, 7..9]);
        assert_eq!(mentions("abc", ""), Vec::<Range<usize>>::new());
    }

    #[test]
    fn best_prefers_the_first_of_equals() {
        let a = rel("per:spouse");
        let b = rel("per:title");
        assert_eq!(best(&[(a, 0.3), (b, 0.3)]), Some((a, 0.3)));
        assert_eq!(best(&[(a, 0.2), (b, 0.3)]), Some((b, 0.3)));
        assert_eq!(best(&[]), None);
        let p = Prediction::from_scores(vec![], 0.0);
        assert_eq!((p.label, p.best, p.probability), ("no_relation", None, 0.0));
    }
}
