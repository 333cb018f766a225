//! Row kernels of the CPU encoder: softmax, GELU, LayerNorm, written as
//! plain loops over fixed-width lanes so that LLVM vectorizes them, and
//! compiled three times (AVX-512, AVX2+FMA, baseline) with the widest one
//! this CPU has picked at run time.
//!
//! Why not candle's: its softmax makes five passes with a scalar `exp`, its
//! GELU calls `libm::erff` per element; together they took more time than
//! the matrix products in a profile of the reader (../shared/NOTES.md).

use super::features::{cpu_features, SimdLevel};

/// Lanes of the accumulators: 16 f32 fill one AVX-512 register (two AVX2).
const LANES: usize = 16;

/// Defines `pub fn $name(args)` that runs `$body` compiled for the widest
/// instruction set this CPU has. The body must only call `#[inline(always)]`
/// helpers so that they are compiled with the same features.
macro_rules! multiversion {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                match cpu_features().simd {
                    SimdLevel::Avx512 => {
                        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
                        unsafe fn wide($($arg: $ty),*) $body
                        // SAFETY: the CPU has these features (checked at run time).
                        return unsafe { wide($($arg),*) };
                    }
                    SimdLevel::Avx2 => {
                        #[target_feature(enable = "avx2,fma")]
                        unsafe fn narrow($($arg: $ty),*) $body
                        // SAFETY: as above.
                        return unsafe { narrow($($arg),*) };
                    }
                    SimdLevel::Baseline => {}
                }
            }
            fn baseline($($arg: $ty),*) $body
            baseline($($arg),*)
        }
    };
}

/// e^x for finite x (Cephes' `expf` polynomial on x − n·ln 2, 2^n from the
/// exponent bits): relative error about 2e-7, no branches. Inputs below
/// −87 give a tiny positive number instead of 0, above 88 a large finite one.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' coefficients as published
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    // The low bits of t's pattern are n (two's complement); shifted into
    // the exponent field with the bias they make 2^n.
    let pow2 = f32::from_bits(t.to_bits().wrapping_add(127) << 23);
    e * pow2
}

/// erf(x), Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7.
#[inline(always)]
fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let mut p = 1.061_405_4_f32;
    p = p * t - 1.453_152_1;
    p = p * t + 1.421_413_8;
    p = p * t - 0.284_496_74;
    p = p * t + 0.254_829_6;
    let y = 1.0 - p * t * exp_f32(-a * a);
    y.copysign(x)
}

/// tanh(x) through e^{2x}, for the tanh form of GELU.
#[inline(always)]
fn tanh_f32(x: f32) -> f32 {
    let x = x.clamp(-9.0, 9.0);
    let e = exp_f32(2.0 * x);
    (e - 1.0) / (e + 1.0)
}

#[inline(always)]
fn lane_max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    let mut m = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for a in acc {
        m = m.max(a);
    }
    m
}

#[inline(always)]
fn lane_sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    chunks.remainder().iter().sum::<f32>() + acc.iter().sum::<f32>()
}

multiversion! {
    /// Softmax of each `row_len` row of `scores` in place, after scaling
    /// by `scale` (the attention's 1/√d folded in: one pass fewer).
    pub fn softmax_rows(scores: &mut [f32], row_len: usize, scale: f32) {
        for row in scores.chunks_exact_mut(row_len) {
            let max = lane_max(row) * scale;
            for v in row.iter_mut() {
                *v = exp_f32(*v * scale - max);
            }
            let inv = 1.0 / lane_sum(row);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

multiversion! {
    /// GELU (erf form, as BERT's `gelu`) in place.
    pub fn gelu_erf(xs: &mut [f32]) {
        const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
        for v in xs.iter_mut() {
            let x = *v;
            *v = 0.5 * x * (1.0 + erf_f32(x * FRAC_1_SQRT_2));
        }
    }
}

multiversion! {
    /// GELU (tanh approximation, `gelu_new`/`gelu_pytorch_tanh`) in place.
    pub fn gelu_tanh(xs: &mut [f32]) {
        const C: f32 = 0.797_884_6; // √(2/π)
        for v in xs.iter_mut() {
            let x = *v;
            *v = 0.5 * x * (1.0 + tanh_f32(C * (x + 0.044_715 * x * x * x)));
        }
    }
}

multiversion! {
    /// ReLU in place.
    pub fn relu(xs: &mut [f32]) {
        for v in xs.iter_mut() {
            *v = v.max(0.0);
        }
    }
}

multiversion! {
    /// `rows[r] = LayerNorm(rows[r] + residual[r]) · gamma + beta` for each
    /// row of `gamma.len()` values (`residual` empty: no residual). Two
    /// passes over the row for the variance, as PyTorch does.
    pub fn add_layer_norm(rows: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let h = gamma.len();
        let n = h as f32;
        for (r, row) in rows.chunks_exact_mut(h).enumerate() {
            if !residual.is_empty() {
                let res = &residual[r * h..(r + 1) * h];
                for (v, &x) in row.iter_mut().zip(res) {
                    *v += x;
                }
            }
            let mean = lane_sum(row) / n;
            let mut acc = [0f32; LANES];
            let mut chunks = row.chunks_exact(LANES);
            for c in &mut chunks {
                for i in 0..LANES {
                    let d = c[i] - mean;
                    acc[i] += d * d;
                }
            }
            let tail: f32 = chunks.remainder().iter().map(|&x| (x - mean) * (x - mean)).sum();
            let var = (acc.iter().sum::<f32>() + tail) / n;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        let mut worst = 0f32;
        let mut x = -80.0f32;
        while x < 80.0 {
            let rel = ((exp_f32(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert!(exp_f32(-1000.0) < 1e-37);
        assert!(exp_f32(1000.0).is_finite());
    }

    #[test]
    fn erf_matches_reference() {
        // erf values from the defining series, summed in f64.
        fn erf_ref(x: f64) -> f64 {
            let mut sum = 0.0;
            let mut term = x;
            for n in 0..200 {
                sum += term / (2 * n + 1) as f64;
                term *= -x * x / (n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        }
        for i in -300..300 {
            let x = i as f64 / 100.0;
            let d = (erf_f32(x as f32) as f64 - erf_ref(x)).abs();
            assert!(d < 3e-7, "erf({x}) off by {d}");
        }
    }

    #[test]
    fn softmax_rows_match_naive() {
        let row_len = 37;
        let mut xs: Vec<f32> = (0..row_len * 3)
            .map(|i| ((i * 7919) % 101) as f32 / 7.0 - 6.0)
            .collect();
        let naive: Vec<f32> = xs
            .chunks(row_len)
            .flat_map(|r| {
                let m = r.iter().fold(f32::MIN, |a, &b| a.max(b)) * 0.5;
                let e: Vec<f64> = r.iter().map(|&v| ((v * 0.5 - m) as f64).exp()).collect();
                let s: f64 = e.iter().sum();
                e.into_iter().map(move |v| (v / s) as f32)
            })
            .collect();
        softmax_rows(&mut xs, row_len, 0.5);
        for (a, b) in xs.iter().zip(&naive) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn gelu_and_layer_norm_match_naive() {
        let xs: Vec<f32> = (0..100).map(|i| i as f32 / 10.0 - 5.0).collect();
        let mut g = xs.clone();
        gelu_erf(&mut g);
        let mut t = xs.clone();
        gelu_tanh(&mut t);
        for ((&x, &ge), &gt) in xs.iter().zip(&g).zip(&t) {
            let tanh_ref = 0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044_715 * x * x * x)).tanh());
            assert!((gt - tanh_ref).abs() < 1e-5, "gelu_tanh({x})");
            // erf and tanh forms agree to ~1e-3.
            assert!((ge - tanh_ref).abs() < 2e-3, "gelu({x}) = {ge}");
        }
        let h = 20;
        let mut rows = xs.clone();
        let residual: Vec<f32> = (0..100).map(|i| (i % 7) as f32).collect();
        let gamma: Vec<f32> = (0..h).map(|i| 1.0 + i as f32 / 10.0).collect();
        let beta: Vec<f32> = (0..h).map(|i| i as f32 / 100.0).collect();
        add_layer_norm(&mut rows, &residual, &gamma, &beta, 1e-12);
        for r in 0..5 {
            let x: Vec<f64> = (0..h)
                .map(|i| (xs[r * h + i] + residual[r * h + i]) as f64)
                .collect();
            let mean = x.iter().sum::<f64>() / h as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / h as f64;
            for i in 0..h {
                let want = (x[i] - mean) / (var + 1e-12).sqrt() * gamma[i] as f64 + beta[i] as f64;
                assert!((rows[r * h + i] as f64 - want).abs() < 1e-5);
            }
        }
    }
}
