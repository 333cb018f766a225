//! Rank fusion of a BM25 result list and a dense result list.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::index::DenseHit;

/// How to combine the two lists.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Fusion {
    /// Reciprocal rank fusion: `Σ 1 / (k + rank)`, rank from 1. A
    /// non-finite or negative `k` is treated as 60.
    Rrf { k: f32 },
    /// Min-max normalized score interpolation:
    /// `bm25 × (1 − dense_weight) + dense × dense_weight`, a passage missing
    /// from a list counting 0 there. `dense_weight` is clamped to `0..=1`
    /// (NaN → 0.5).
    Weighted { dense_weight: f32 },
}

impl Default for Fusion {
    /// `Rrf { k: 60 }`.
    fn default() -> Self {
        Fusion::Rrf { k: 60.0 }
    }
}

/// Dense hits as a fusion input list (`(passage_id, score)`, order kept).
pub fn from_hits(hits: &[DenseHit]) -> Vec<(String, f32)> {
    hits.iter()
        .map(|h| (h.passage_id.clone(), h.score))
        .collect()
}

/// Fuses two lists of `(passage_id, score)`, each sorted best first, and
/// returns the top `k` by fused score, descending, ties broken by passage
/// id (ascending) so the output is deterministic.
///
/// * RRF: each passage gets `Σ 1 / (k + rank)` over the lists it appears
///   in (rank from 1; the scores are ignored).
/// * Weighted: each list's scores are min-max normalized to `[0, 1]` (a
///   list whose scores are all equal → all 1.0; non-finite scores → 0 and
///   ignored for min/max), then `bm25 × (1 − w) + dense × w`, a missing
///   passage counting 0.
///
/// A passage appearing twice in one list counts once, at its first (best)
/// position.
pub fn fuse(
    bm25: &[(String, f32)],
    dense: &[(String, f32)],
    fusion: Fusion,
    k: usize,
) -> Vec<(String, f32)> {
    let mut acc: HashMap<&str, f32> = HashMap::new();
    match fusion {
        Fusion::Rrf { k: rk } => {
            let rk = if rk.is_finite() && rk >= 0.0 {
                rk
            } else {
                60.0
            };
            for list in [bm25, dense] {
                for (rank, id) in first_occurrences(list) {
                    *acc.entry(id).or_insert(0.0) += 1.0 / (rk + (rank + 1) as f32);
                }
            }
        }
        Fusion::Weighted { dense_weight } => {
            let w = if dense_weight.is_nan() {
                0.5
            } else {
                dense_weight.clamp(0.0, 1.0)
            };
            for (list, weight) in [(bm25, 1.0 - w), (dense, w)] {
                let norm = min_max(list);
                for (i, id) in first_occurrences(list) {
                    *acc.entry(id).or_insert(0.0) += weight * norm[i];
                }
            }
        }
    }
    let mut out: Vec<(String, f32)> = acc.into_iter().map(|(id, s)| (id.to_string(), s)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.truncate(k);
    out
}

/// `(index in list, id)` for the first occurrence of each id.
fn first_occurrences(list: &[(String, f32)]) -> Vec<(usize, &str)> {
    let mut seen = std::collections::HashSet::new();
    list.iter()
        .enumerate()
        .filter(|(_, (id, _))| seen.insert(id.as_str()))
        .map(|(i, (id, _))| (i, id.as_str()))
        .collect()
}

fn min_max(list: &[(String, f32)]) -> Vec<f32> {
    let finite = list.iter().map(|p| p.1).filter(|s| s.is_finite());
    let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
        (lo.min(s), hi.max(s))
    });
    list.iter()
        .map(|&(_, s)| {
            if !s.is_finite() {
                0.0
            } else if hi > lo {
                ((s - lo) / (hi - lo)).clamp(0.0, 1.0)
            } else {
                1.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(items: &[(&str, f32)]) -> Vec<(String, f32)> {
        items.iter().map(|(i, s)| (i.to_string(), *s)).collect()
    }

    fn close(a: &[(String, f32)], b: &[(&str, f32)]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.0, y.0, "{a:?} vs {b:?}");
            assert!((x.1 - y.1).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn rrf_hand_computed() {
        let bm = l(&[("a", 12.0), ("b", 9.0), ("c", 3.0)]);
        let de = l(&[("b", 0.9), ("d", 0.8), ("a", 0.7)]);
        let out = fuse(&bm, &de, Fusion::Rrf { k: 60.0 }, 10);
        // a: 1/61 + 1/63, b: 1/62 + 1/61, c: 1/63, d: 1/62
        close(
            &out,
            &[
                ("b", 1.0 / 62.0 + 1.0 / 61.0),
                ("a", 1.0 / 61.0 + 1.0 / 63.0),
                ("d", 1.0 / 62.0),
                ("c", 1.0 / 63.0),
            ],
        );
    }

    #[test]
    fn rrf_disjoint_and_ties() {
        let bm = l(&[("x", 5.0), ("y", 4.0)]);
        let de = l(&[("b", 0.5), ("a", 0.4)]);
        let out = fuse(&bm, &de, Fusion::Rrf { k: 0.0 }, 10);
        // ties at each rank broken by id
        close(&out, &[("b", 1.0), ("x", 1.0), ("a", 0.5), ("y", 0.5)]);
    }

    #[test]
    fn rrf_truncates_and_ignores_repeats() {
        let bm = l(&[("a", 1.0), ("a", 0.5), ("b", 0.2)]);
        let out = fuse(&bm, &[], Fusion::Rrf { k: 1.0 }, 1);
        close(&out, &[("a", 0.5)]);
        let out = fuse(&bm, &[], Fusion::Rrf { k: 1.0 }, 5);
        // b keeps its list position (rank 3)
        close(&out, &[("a", 0.5), ("b", 0.25)]);
        assert!(fuse(&bm, &[], Fusion::default(), 0).is_empty());
        assert!(fuse(&[], &[], Fusion::default(), 5).is_empty());
    }

    #[test]
    fn weighted_hand_computed() {
        let bm = l(&[("a", 10.0), ("b", 6.0), ("c", 2.0)]);
        let de = l(&[("c", 0.9), ("d", 0.5), ("a", 0.4)]);
        let out = fuse(&bm, &de, Fusion::Weighted { dense_weight: 0.25 }, 10);
        // bm25 norm: a 1, b .5, c 0; dense norm: c 1, d .2, a 0
        // a .75, b .375, c .25, d .05
        close(&out, &[("a", 0.75), ("b", 0.375), ("c", 0.25), ("d", 0.05)]);
        let out = fuse(&bm, &de, Fusion::Weighted { dense_weight: 1.0 }, 2);
        close(&out, &[("c", 1.0), ("d", 0.2)]);
    }

    #[test]
    fn weighted_all_equal_and_disjoint() {
        let bm = l(&[("a", 3.0), ("b", 3.0)]);
        let de = l(&[("c", 0.7)]);
        let out = fuse(&bm, &de, Fusion::Weighted { dense_weight: 0.5 }, 10);
        close(&out, &[("a", 0.5), ("b", 0.5), ("c", 0.5)]);
        // out-of-range weights clamp
        let out = fuse(&bm, &de, Fusion::Weighted { dense_weight: 7.0 }, 10);
        close(&out, &[("c", 1.0), ("a", 0.0), ("b", 0.0)]);
    }

    #[test]
    fn deterministic_under_input_permutation_of_ties() {
        let bm = l(&[("q", 1.0), ("p", 1.0), ("r", 1.0)]);
        let de = l(&[("s", 1.0)]);
        let f = Fusion::Weighted { dense_weight: 0.5 };
        let first = fuse(&bm, &de, f, 10);
        for _ in 0..20 {
            assert_eq!(fuse(&bm, &de, f, 10), first);
        }
        let names: Vec<&str> = first.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(names, ["p", "q", "r", "s"]);
    }
}
