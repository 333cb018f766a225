//! KLUE-RE metrics, computed the way KLUE's baseline computes them
//! (`klue_re_micro_f1`, `klue_re_auprc` in KLUE's evaluation code), in
//! percent:
//!
//! - **micro-F1** over the 29 relations, `no_relation` excluded: true
//!   positives are examples whose predicted relation is their gold
//!   relation; precision divides by the examples predicted as any relation,
//!   recall by the examples whose gold label is a relation (scikit-learn's
//!   `f1_score(average="micro", labels=<the 29 relations>)`).
//! - **AUPRC**: for each of the 30 classes (`no_relation` included) the area
//!   under its precision-recall curve, one-vs-rest on that class's
//!   probability (scikit-learn's `precision_recall_curve` then `auc`:
//!   trapezoids through the curve's points, which start at recall 0 with
//!   precision 1), averaged over the classes. A class without a single gold
//!   example has no recall and no curve: it is left out of the average
//!   (KLUE's dev set has every class; a small sample may not), and
//!   [`Auprc::classes`] says how many classes were averaged.
//! - **accuracy** over all 30 classes.
//!
//! Class probabilities ([`class_probabilities`]): KLUE's AUPRC ranks each
//! class's probability across examples, and KLUE's classifiers give a
//! softmax over the 30 classes. The reader gives one independent
//! probability per relation question instead, so the 30 scores of an
//! example are a relation's reader probability (0 when it was not asked)
//! and, for `no_relation`, `1 − ` the best relation's probability (each
//! question leaves its remaining mass to "no answer" or other spans, so the
//! best relation's shortfall is how unlikely any relation is), **normalised
//! to sum to 1** like a softmax. ([`raw_class_probabilities`] leaves out the
//! normalisation; on the calibration half of odqa's dev split the
//! normalised scores gave the higher AUPRC, 38.4 against 29.6, and
//! `odqa bench re` reports both.)
//!
//! Classes are numbered 0 = `no_relation`, `1 + i` = [`RELATIONS`]`[i]`.

use serde::Serialize;

use crate::klue::RelationError;
use crate::templates::{Relation, NO_RELATION, RELATIONS};

/// `no_relation` and the 29 relations.
pub const NUM_CLASSES: usize = 30;

/// The class of a relation; `None` (`no_relation`) is class 0.
pub fn class_of(relation: Option<Relation>) -> usize {
    relation.map_or(0, |r| r.index() + 1)
}

/// The label of class `class` (0..30); `no_relation` for anything else.
pub fn class_label(class: usize) -> &'static str {
    class
        .checked_sub(1)
        .and_then(|i| RELATIONS.get(i))
        .copied()
        .unwrap_or(NO_RELATION)
}

/// The 30 class probabilities of one example, normalised to sum to 1
/// (see the module documentation).
pub fn class_probabilities(scores: &[(Relation, f32)]) -> [f32; NUM_CLASSES] {
    let mut out = raw_class_probabilities(scores);
    let sum: f32 = out.iter().sum();
    if sum > 0.0 {
        for p in &mut out {
            *p /= sum;
        }
    }
    out
}

/// The 30 class scores of one example before normalisation: each asked
/// relation's probability, and `1 −` the best one for `no_relation`.
pub fn raw_class_probabilities(scores: &[(Relation, f32)]) -> [f32; NUM_CLASSES] {
    let mut out = [0.0f32; NUM_CLASSES];
    let mut best = 0.0f32;
    for &(r, p) in scores {
        out[class_of(Some(r))] = p.clamp(0.0, 1.0);
        best = best.max(p);
    }
    out[0] = (1.0 - best).clamp(0.0, 1.0);
    out
}

/// Precision, recall and F1 in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PrecisionRecall {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl PrecisionRecall {
    fn from_counts(correct: usize, predicted: usize, gold: usize) -> Self {
        let ratio = |a: usize, b: usize| {
            if b == 0 {
                0.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        PrecisionRecall {
            precision: ratio(correct, predicted),
            recall: ratio(correct, gold),
            f1: ratio(2 * correct, predicted + gold),
        }
    }
}

/// KLUE's micro-F1 (and its precision and recall) over the 29 relations;
/// `gold` and `predicted` are classes.
pub fn micro_f1(gold: &[usize], predicted: &[usize]) -> PrecisionRecall {
    let correct = gold
        .iter()
        .zip(predicted)
        .filter(|&(&g, &p)| g == p && g != 0)
        .count();
    let predicted_relations = predicted.iter().filter(|&&p| p != 0).count();
    let gold_relations = gold.iter().filter(|&&g| g != 0).count();
    PrecisionRecall::from_counts(correct, predicted_relations, gold_relations)
}

/// Accuracy over all 30 classes, in percent (0 for no examples).
pub fn accuracy(gold: &[usize], predicted: &[usize]) -> f64 {
    if gold.is_empty() {
        return 0.0;
    }
    let correct = gold.iter().zip(predicted).filter(|(g, p)| g == p).count();
    100.0 * correct as f64 / gold.len() as f64
}

/// Area under the precision-recall curve of one binary problem, in
/// `0..=1`, as scikit-learn's `auc(recall, precision)` on
/// `precision_recall_curve(targets, scores)`: one point per distinct score
/// (ties share a threshold), plus (recall 0, precision 1); trapezoids.
/// `None` when there is no positive target.
pub fn pr_auc(targets: &[bool], scores: &[f32]) -> Option<f64> {
    let positives = targets.iter().filter(|&&t| t).count();
    if positives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..targets.len().min(scores.len())).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut last_recall, mut last_precision) = (0.0f64, 1.0f64);
    let mut area = 0.0;
    for (k, &i) in order.iter().enumerate() {
        if targets[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let group_ends = order
            .get(k + 1)
            .is_none_or(|&next| scores[next].total_cmp(&scores[i]).is_ne());
        if group_ends {
            let recall = tp as f64 / positives as f64;
            let precision = tp as f64 / (tp + fp) as f64;
            area += (recall - last_recall) * (precision + last_precision) / 2.0;
            (last_recall, last_precision) = (recall, precision);
        }
    }
    Some(area)
}

/// KLUE's AUPRC.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Auprc {
    /// The mean over the classes that have gold examples, in percent.
    pub value: f64,
    /// How many classes were averaged.
    pub classes: usize,
    /// Per class (0..30), in percent; `None` without gold examples.
    pub per_class: Vec<Option<f64>>,
}

/// KLUE's AUPRC from gold classes and per-example class probabilities.
pub fn klue_auprc(gold: &[usize], probabilities: &[[f32; NUM_CLASSES]]) -> Auprc {
    let per_class: Vec<Option<f64>> = (0..NUM_CLASSES)
        .map(|c| {
            let targets: Vec<bool> = gold.iter().map(|&g| g == c).collect();
            let scores: Vec<f32> = probabilities.iter().map(|p| p[c]).collect();
            pr_auc(&targets, &scores).map(|a| 100.0 * a)
        })
        .collect();
    let present: Vec<f64> = per_class.iter().flatten().copied().collect();
    let value = if present.is_empty() {
        0.0
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    };
    Auprc {
        value,
        classes: present.len(),
        per_class,
    }
}

/// One row of the per-class table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassRow {
    pub label: &'static str,
    /// Gold examples of the class.
    pub support: usize,
    /// Examples predicted as the class.
    pub predicted: usize,
    /// Examples predicted as the class that are of it.
    pub correct: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// The class's AUPRC in percent (`None` without gold examples).
    pub auprc: Option<f64>,
}

/// Every KLUE-RE metric of one set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub examples: usize,
    pub micro_precision: f64,
    pub micro_recall: f64,
    pub micro_f1: f64,
    pub auprc: f64,
    /// Classes with gold examples, the ones AUPRC averages.
    pub auprc_classes: usize,
    pub accuracy: f64,
    /// All 30 classes, `no_relation` first.
    pub classes: Vec<ClassRow>,
}

/// Evaluates predicted classes and class probabilities against gold
/// classes (all three of one length, classes below [`NUM_CLASSES`]).
pub fn evaluate(
    gold: &[usize],
    predicted: &[usize],
    probabilities: &[[f32; NUM_CLASSES]],
) -> Result<Evaluation, RelationError> {
    if gold.len() != predicted.len() || gold.len() != probabilities.len() {
        return Err(RelationError::Invalid(format!(
            "{} gold labels, {} predictions and {} probability rows",
            gold.len(),
            predicted.len(),
            probabilities.len()
        )));
    }
    if let Some(c) = gold.iter().chain(predicted).find(|&&c| c >= NUM_CLASSES) {
        return Err(RelationError::Invalid(format!(
            "class {c} is not one of the {NUM_CLASSES} KLUE-RE classes"
        )));
    }
    let micro = micro_f1(gold, predicted);
    let auprc = klue_auprc(gold, probabilities);
    let classes = (0..NUM_CLASSES)
        .map(|c| {
            let support = gold.iter().filter(|&&g| g == c).count();
            let n_predicted = predicted.iter().filter(|&&p| p == c).count();
            let correct = gold
                .iter()
                .zip(predicted)
                .filter(|&(&g, &p)| g == c && p == c)
                .count();
            let pr = PrecisionRecall::from_counts(correct, n_predicted, support);
            ClassRow {
                label: class_label(c),
                support,
                predicted: n_predicted,
                correct,
                precision: pr.precision,
                recall: pr.recall,
                f1: pr.f1,
                auprc: auprc.per_class[c],
            }
        })
        .collect();
    Ok(Evaluation {
        examples: gold.len(),
        micro_precision: micro.precision,
        micro_recall: micro.recall,
        micro_f1: micro.f1,
        auprc: auprc.value,
        auprc_classes: auprc.classes,
        accuracy: accuracy(gold, predicted),
        classes,
    })
}

impl Evaluation {
    /// The per-class table in Markdown: classes with gold or predicted
    /// examples, `no_relation` first.
    pub fn class_table(&self) -> String {
        let mut out = String::from(
            "| class | gold | predicted | correct | P | R | F1 | AUPRC |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for row in self
            .classes
            .iter()
            .filter(|r| r.support > 0 || r.predicted > 0)
        {
            let auprc = row
                .auprc
                .map_or_else(|| "–".to_string(), |a| format!("{a:.1}"));
            out.push_str(&format!(
                "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {} |\n",
                row.label,
                row.support,
                row.predicted,
                row.correct,
                row.precision,
                row.recall,
                row.f1,
                auprc
            ));
        }
        out
    }
}

/// A no-relation threshold chosen on held-out examples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Calibration {
    /// Predict the best relation when its probability is at least this.
    pub threshold: f32,
    /// The micro-F1 (percent) the threshold gives on those examples.
    pub micro_f1: f64,
    pub examples: usize,
}

/// The threshold that maximises micro-F1 on examples whose best relation
/// is `best[i] = (class ≥ 1, probability)` and whose gold class is
/// `gold[i]`. Every distinct best probability is tried as the lowest one
/// kept; of equal F1s the highest threshold wins, and the threshold is
/// placed halfway to the next lower probability (so that those examples
/// keep their side). Without any F1 above 0 the threshold keeps nothing
/// (just above the highest probability, at least 1).
pub fn calibrate_threshold(
    best: &[(usize, f32)],
    gold: &[usize],
) -> Result<Calibration, RelationError> {
    if best.len() != gold.len() {
        return Err(RelationError::Invalid(format!(
            "{} predictions but {} gold labels",
            best.len(),
            gold.len()
        )));
    }
    let gold_relations = gold.iter().filter(|&&g| g != 0).count();
    let mut order: Vec<usize> = (0..best.len()).collect();
    order.sort_by(|&a, &b| best[b].1.total_cmp(&best[a].1));
    let top = order.first().map_or(1.0, |&i| best[i].1.max(1.0));
    let mut chosen = Calibration {
        threshold: next_up(top),
        micro_f1: 0.0,
        examples: best.len(),
    };
    let (mut kept, mut correct) = (0usize, 0usize);
    for (k, &i) in order.iter().enumerate() {
        kept += 1;
        if best[i].0 == gold[i] && gold[i] != 0 {
            correct += 1;
        }
        let p = best[i].1;
        let next = order.get(k + 1).map(|&j| best[j].1);
        if next.is_some_and(|q| q.total_cmp(&p).is_eq()) {
            continue;
        }
        let f1 = PrecisionRecall::from_counts(correct, kept, gold_relations).f1;
        if f1 > chosen.micro_f1 {
            chosen.micro_f1 = f1;
            // Halfway, unless p and q are too close for a float between.
            chosen.threshold =
                next.map_or(p, |q| Some((p + q) / 2.0).filter(|&m| m > q).unwrap_or(p));
        }
    }
    Ok(chosen)
}

/// The smallest f32 above `x` (for finite, non-negative `x`).
fn next_up(x: f32) -> f32 {
    f32::from_bits(x.to_bits() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn classes_are_numbered_no_relation_first() {
        assert_eq!(class_of(None), 0);
        assert_eq!(class_of(Relation::parse("org:dissolved")), 1);
        assert_eq!(class_of(Relation::parse("per:title")), 29);
        assert_eq!(class_label(0), "no_relation");
        assert_eq!(class_label(29), "per:title");
        assert_eq!(class_label(30), "no_relation");
    }

    #[test]
    fn micro_f1_leaves_no_relation_out() {
        // gold:      no  r1  r1  r2  no
        // predicted: r1  r1  no  r2  no
        // 2 right of 3 predicted relations, 2 found of 3 gold relations.
        let gold = [0, 1, 1, 2, 0];
        let predicted = [1, 1, 0, 2, 0];
        let m = micro_f1(&gold, &predicted);
        assert!(close(m.precision, 200.0 / 3.0));
        assert!(close(m.recall, 200.0 / 3.0));
        assert!(close(m.f1, 200.0 / 3.0));
        // Accuracy counts the correct no_relation too: 3 of 5.
        assert!(close(accuracy(&gold, &predicted), 60.0));
        // Predicting no_relation everywhere: micro-F1 0, accuracy 2/5.
        let none = [0; 5];
        assert_eq!(micro_f1(&gold, &none).f1, 0.0);
        assert!(close(accuracy(&gold, &none), 40.0));
        // P and R differ: 1 right of 1 predicted, 1 of 3 gold → F1 = 2·1/(1+3).
        let m = micro_f1(&gold, &[0, 1, 0, 0, 0]);
        assert!(close(m.precision, 100.0));
        assert!(close(m.recall, 100.0 / 3.0));
        assert!(close(m.f1, 50.0));
        assert_eq!(accuracy(&[], &[]), 0.0);
    }

    #[test]
    fn pr_auc_by_hand() {
        // Scores 0.9 (+) 0.8 (−) 0.7 (+) 0.1 (−):
        // points (r, p): (0, 1) (.5, 1) (.5, .5) (1, 2/3) (1, .5)
        // area: .5·1 + 0 + .5·(.5 + 2/3)/2 + 0 = 0.791666…
        let a = pr_auc(&[true, false, true, false], &[0.9, 0.8, 0.7, 0.1]).unwrap();
        assert!(close(a, 0.5 + 0.5 * (0.5 + 2.0 / 3.0) / 2.0), "{a}");
        // Perfect ranking: 1.
        assert!(close(
            pr_auc(&[false, true, true], &[0.2, 0.9, 0.8]).unwrap(),
            1.0
        ));
        // Ties share a threshold: constant scores give (1 + prevalence)/2.
        assert!(close(pr_auc(&[true, false], &[0.5, 0.5]).unwrap(), 0.75));
        assert!(close(
            pr_auc(&[true, false, false, false], &[0.3; 4]).unwrap(),
            (1.0 + 0.25) / 2.0
        ));
        // Worst ranking, the positive last of four: (0, 1) (0, 0) (0, 0)
        // (0, 0) (1, 1/4); only the last trapezoid has width: 1/8.
        assert!(close(
            pr_auc(&[false, false, false, true], &[0.9, 0.8, 0.7, 0.1]).unwrap(),
            0.125
        ));
        assert_eq!(pr_auc(&[false, false], &[0.1, 0.2]), None);
    }

    #[test]
    fn klue_auprc_by_hand() {
        // gold: no_relation, 1, 1, 2.
        let gold = [0, 1, 1, 2];
        let mut probs = [[0.0f32; NUM_CLASSES]; 4];
        for (row, (no, one, two)) in probs.iter_mut().zip([
            (0.7, 0.3, 0.0),
            (0.2, 0.8, 0.0),
            (0.6, 0.4, 0.0),
            (0.1, 0.5, 0.9),
        ]) {
            row[0] = no;
            row[1] = one;
            row[2] = two;
        }
        // Class 0: its one example scores highest → 1.
        // Class 1: .8(+) .5(−) .4(+) .3(−) → 0.791666… (as above).
        // Class 2: .9(+) then three ties at 0 → 1.
        // 27 classes without examples are left out.
        let a = klue_auprc(&gold, &probs);
        assert_eq!(a.classes, 3);
        let class1 = 100.0 * (0.5 + 0.5 * (0.5 + 2.0 / 3.0) / 2.0);
        assert!(close(a.per_class[0].unwrap(), 100.0));
        assert!(close(a.per_class[1].unwrap(), class1));
        assert!(close(a.per_class[2].unwrap(), 100.0));
        assert!(a.per_class[3..].iter().all(Option::is_none));
        assert!(close(a.value, (200.0 + class1) / 3.0), "{}", a.value);
        // evaluate() puts it together.
        let predicted = [1, 1, 0, 2];
        let e = evaluate(&gold, &predicted, &probs).unwrap();
        assert_eq!(e.examples, 4);
        assert!(close(e.auprc, a.value));
        // Relations: 2 right (rows 1, 3) of 3 predicted, of 3 gold.
        assert!(close(e.micro_f1, 200.0 / 3.0));
        assert!(close(e.accuracy, 50.0));
        let row = &e.classes[1];
        assert_eq!(
            (row.label, row.support, row.predicted, row.correct),
            ("org:dissolved", 2, 2, 1)
        );
        assert!(close(row.f1, 50.0));
        let table = e.class_table();
        assert!(
            table.contains("| org:dissolved | 2 | 2 | 1 | 50.0 | 50.0 | 50.0 | 79.2 |"),
            "{table}"
        );
        assert_eq!(table.lines().count(), 2 + 3);
        assert!(evaluate(&gold, &predicted[..3], &probs).is_err());
        assert!(evaluate(&[30], &[0], &probs[..1]).is_err());
    }

    #[test]
    fn no_relation_probability_is_the_best_relations_shortfall() {
        let spouse = Relation::parse("per:spouse").unwrap();
        let title = Relation::parse("per:title").unwrap();
        let p = raw_class_probabilities(&[(spouse, 0.25), (title, 0.5)]);
        assert_eq!(p[0], 0.5);
        assert_eq!(p[class_of(Some(spouse))], 0.25);
        assert_eq!(p[29], 0.5);
        assert_eq!(p.iter().filter(|&&x| x > 0.0).count(), 3);
        // Normalised: 0.5, 0.25, 0.5 over 1.25.
        let n = class_probabilities(&[(spouse, 0.25), (title, 0.5)]);
        assert!((n[0] - 0.4).abs() < 1e-6 && (n[29] - 0.4).abs() < 1e-6);
        assert!((n[class_of(Some(spouse))] - 0.2).abs() < 1e-6);
        assert!((n.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(class_probabilities(&[])[0], 1.0);
        // A certain relation leaves nothing to no_relation.
        let c = class_probabilities(&[(spouse, 1.0)]);
        assert_eq!((c[0], c[class_of(Some(spouse))]), (0.0, 1.0));
    }

    #[test]
    fn calibration_by_hand() {
        // Best relations and their probabilities, highest first; 3 gold relations.
        let best = [(1, 0.9), (2, 0.8), (1, 0.6), (3, 0.3)];
        // Keeping 1, 2, 3, 4: F1 = 2/4, 2/5, 4/6, 6/7 → keep all, at 0.3.
        let c = calibrate_threshold(&best, &[1, 0, 1, 3]).unwrap();
        assert!(close(c.micro_f1, 600.0 / 7.0));
        assert_eq!(c.threshold, 0.3);
        // 2 gold relations: F1 = 2/3, 2/4, 4/5, 4/6 → keep three,
        // threshold halfway between 0.6 and 0.3.
        let c = calibrate_threshold(&best, &[1, 0, 1, 0]).unwrap();
        assert!(close(c.micro_f1, 80.0));
        assert!((c.threshold - 0.45).abs() < 1e-6);
        assert_eq!(c.examples, 4);
        // Ties are kept or dropped together: 0.8 twice.
        let tied = [(1, 0.9), (2, 0.8), (2, 0.8), (1, 0.1)];
        let c = calibrate_threshold(&tied, &[1, 0, 0, 0]).unwrap();
        assert!(close(c.micro_f1, 100.0));
        assert!((c.threshold - 0.85).abs() < 1e-6);
        // Nothing right: the threshold keeps nothing.
        let c = calibrate_threshold(&[(1, 0.9)], &[0]).unwrap();
        assert_eq!(c.micro_f1, 0.0);
        assert!(c.threshold > 1.0);
        assert!(calibrate_threshold(&best, &[0]).is_err());
    }

    proptest! {
        #[test]
        fn metrics_stay_in_range(
            rows in proptest::collection::vec((0usize..NUM_CLASSES, 0usize..NUM_CLASSES, 0.0f32..=1.0), 1..40)
        ) {
            let gold: Vec<usize> = rows.iter().map(|r| r.0).collect();
            let predicted: Vec<usize> = rows.iter().map(|r| r.1).collect();
            let probs: Vec<[f32; NUM_CLASSES]> = rows
                .iter()
                .map(|r| {
                    let mut p = [0.0; NUM_CLASSES];
                    p[r.1] = r.2;
                    p
                })
                .collect();
            let e = evaluate(&gold, &predicted, &probs).unwrap();
            for v in [e.micro_f1, e.micro_precision, e.micro_recall, e.auprc, e.accuracy] {
                prop_assert!((0.0..=100.0 + 1e-9).contains(&v), "{v}");
            }
            let classes: std::collections::HashSet<usize> = gold.iter().copied().collect();
            prop_assert_eq!(e.auprc_classes, classes.len());
            let best: Vec<(usize, f32)> = rows.iter().map(|r| (r.1.max(1), r.2)).collect();
            let c = calibrate_threshold(&best, &gold).unwrap();
            // The chosen threshold reproduces the F1 it reports.
            let at: Vec<usize> = best
                .iter()
                .map(|&(class, p)| if p >= c.threshold { class } else { 0 })
                .collect();
            prop_assert!((micro_f1(&gold, &at).f1 - c.micro_f1).abs() < 1e-9);
        }
    }
}
