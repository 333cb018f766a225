//! Deterministic held-out splits: items are ordered by a seeded hash of a
//! key (an article title, a sentence), and the first `fraction` of them are
//! held out, so the split never depends on file order and repeated keys
//! (the same sentence twice) always land on the same side.

/// FNV-1a over the seed and the key: stable across platforms and releases,
/// unlike `std`'s hasher.
pub fn split_hash(seed: u64, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_le_bytes().iter().chain(key.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The set of distinct keys held out: `round(fraction × distinct keys)`
/// (at least one when `fraction > 0` and there are keys).
pub fn held_out_keys<'a>(
    keys: impl IntoIterator<Item = &'a str>,
    fraction: f64,
    seed: u64,
) -> std::collections::HashSet<String> {
    let mut distinct: Vec<&str> = keys.into_iter().collect();
    distinct.sort_unstable();
    distinct.dedup();
    distinct.sort_by_key(|k| (split_hash(seed, k), *k));
    let mut n = (fraction * distinct.len() as f64).round() as usize;
    if fraction > 0.0 && n == 0 && !distinct.is_empty() {
        n = 1;
    }
    distinct.into_iter().take(n).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_seeded_order_free_and_sized() {
        let keys: Vec<String> = (0..100).map(|i| format!("article {i}")).collect();
        let a = held_out_keys(keys.iter().map(String::as_str), 0.1, 7);
        let b = held_out_keys(keys.iter().rev().map(String::as_str), 0.1, 7);
        assert_eq!(a, b);
        assert_eq!(a.len(), 10);
        let c = held_out_keys(keys.iter().map(String::as_str), 0.1, 8);
        assert_ne!(a, c);
        let repeated = ["x", "x", "y"];
        assert_eq!(held_out_keys(repeated, 0.5, 1).len(), 1);
        assert_eq!(held_out_keys(["x"], 0.01, 1).len(), 1);
    }
}
