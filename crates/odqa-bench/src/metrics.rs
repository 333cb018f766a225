use crate::RetrievedPassage;

/// 1-based rank of the first passage whose text contains any of `answers`
/// as a plain (case-sensitive, byte-exact) substring; `None` when no
/// passage does. Empty answer strings never match.
pub fn first_hit_rank(answers: &[String], hits: &[RetrievedPassage]) -> Option<usize> {
    hits.iter()
        .position(|hit| {
            answers
                .iter()
                .any(|a| !a.is_empty() && hit.text.contains(a.as_str()))
        })
        .map(|i| i + 1)
}

/// Nearest-rank percentile of an ascending-sorted slice.
///
/// `p` is a percentage in `0..=100` (clamped; NaN counts as 0). The result
/// is the element at 1-based rank `ceil(p / 100 * n)`, with rank clamped to
/// `1..=n`, so `p = 0` gives the minimum and `p = 100` the maximum; no
/// interpolation is done. An empty slice gives `0.0`.
pub fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    let n = sorted_ms.len();
    if n == 0 {
        return 0.0;
    }
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) };
    let rank = (p * n as f64 / 100.0).ceil() as usize;
    sorted_ms[rank.clamp(1, n) - 1]
}
