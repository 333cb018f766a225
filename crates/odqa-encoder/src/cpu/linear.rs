//! Linear layers `y = x · Wᵀ + b` of the CPU encoder at three precisions.
//!
//! - f32: the `gemm` crate (its AVX-512 kernels through the `x86-v4`
//!   feature), bias pre-filled into the output and accumulated onto.
//! - bf16: weights packed once into 48-column panels of bf16 pairs; each
//!   token row is rounded to bf16 and multiplied with `vdpbf16ps`
//!   (AVX512_BF16) into f32 accumulators.
//! - int8: weights quantized symmetrically per output row, packed into
//!   panels of i8 quads; token rows quantized per row (dynamic scale) and
//!   multiplied into i32 with `vpdpbusd` (AVX512_VNNI; activations shifted
//!   to u8, the shift taken back with the weights' row sums) or, without
//!   VNNI, AVX2's `vpmaddubsw`/`vpmaddwd` (the activation's sign moved
//!   onto the weight so that |activation| is the unsigned operand and the
//!   i16 pair sums, at most 2 × 128 × 127, cannot saturate). Both give the
//!   same exact i32 sums.
//!
//! No crate offered bf16 or int8 GEMM on x86 without MKL (which cannot be
//! had offline here) — hence the two hand-written kernels, tested against
//! the f32 product.

use rayon::prelude::*;

use super::features::{cpu_features, Int8Kernel, Precision};
use super::SendPtr;

/// Output columns per packed panel: three 16-lane registers (AVX-512).
const PANEL: usize = 48;
/// Output columns per packed panel of the AVX2 int8 kernel: two 8-lane
/// registers, so that a 4-row tile's accumulators, the panel and the
/// temporaries fit AVX2's 16 registers.
const PANEL_AVX2: usize = 16;
/// Token rows per micro-tile.
const TILE_ROWS: usize = 8;
/// Rows per parallel task.
const TASK_ROWS: usize = 64;
/// Panels per parallel task.
const TASK_PANELS: usize = 4;
/// k-steps (pairs or quads) per pass over a panel: 128 × 48 × 4 bytes =
/// 24 KiB of weights, which stay in L1 while the task's rows stream past.
const K_BLOCK: usize = 128;

/// Calls `$kernel::<R>(args)` with the const `R` equal to `$rows` (1..=8):
/// the micro-kernels keep their R × 3 accumulators in registers.
macro_rules! for_tile_rows {
    ($rows:expr, $kernel:ident($($arg:expr),*)) => {
        match $rows {
            8 => $kernel::<8>($($arg),*),
            7 => $kernel::<7>($($arg),*),
            6 => $kernel::<6>($($arg),*),
            5 => $kernel::<5>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            _ => $kernel::<1>($($arg),*),
        }
    };
}

/// One linear layer with its weights in the layout its kernel wants.
pub(crate) struct Linear {
    /// Input features.
    pub k: usize,
    /// Output features.
    pub n: usize,
    bias: Vec<f32>,
    weights: Weights,
}

enum Weights {
    /// `[n × k]` row-major, as Hugging Face stores it.
    F32(Vec<f32>),
    /// Panels of `kp × 48` u32, each a pair of bf16 (even k low).
    Bf16 { packed: Vec<u32>, kp: usize },
    /// Panels of `kq × panel` i32 (48 columns for VNNI, 16 for AVX2), each
    /// four i8 (k order, low byte first), with each output row's scale and
    /// 128 × the row's sum of i8 weights (VNNI's u8 shift).
    Int8 {
        packed: Vec<i32>,
        kq: usize,
        scale: Vec<f32>,
        shift: Vec<i32>,
        kernel: Int8Kernel,
    },
}

impl Linear {
    /// `weight` is `[n × k]` row-major, `bias` `n` values. `precision` is
    /// F32, Bf16 or Int8 (the caller resolved Auto and checked support).
    pub fn new(weight: Vec<f32>, bias: Vec<f32>, n: usize, k: usize, precision: Precision) -> Self {
        // Without any int8 kernel the caller never asks for Int8; AVX2's
        // layout is a harmless stand-in for that impossible case.
        let kernel = cpu_features().int8_kernel().unwrap_or(Int8Kernel::Avx2);
        Self::with_int8_kernel(weight, bias, n, k, precision, kernel)
    }

    /// [`Linear::new`] with the int8 kernel named (a test runs both where
    /// the CPU has both).
    fn with_int8_kernel(
        weight: Vec<f32>,
        bias: Vec<f32>,
        n: usize,
        k: usize,
        precision: Precision,
        kernel: Int8Kernel,
    ) -> Self {
        debug_assert_eq!(weight.len(), n * k);
        debug_assert_eq!(bias.len(), n);
        let weights = match precision {
            Precision::Bf16 => pack_bf16(&weight, n, k),
            Precision::Int8 => pack_int8(&weight, n, k, kernel),
            Precision::F32 | Precision::Auto => Weights::F32(weight),
        };
        Linear {
            k,
            n,
            bias,
            weights,
        }
    }

    /// `out[m × n] = x[m × k] · Wᵀ + b`.
    pub fn forward(&self, x: &[f32], m: usize, out: &mut [f32]) {
        debug_assert_eq!(x.len(), m * self.k);
        debug_assert_eq!(out.len(), m * self.n);
        if m == 0 {
            return;
        }
        match &self.weights {
            Weights::F32(w) => self.forward_f32(w, x, m, out),
            #[cfg(target_arch = "x86_64")]
            Weights::Bf16 { packed, kp } => {
                let rows = to_bf16_rows(x, m, self.k, *kp);
                self.tiled(m, out, PANEL, TASK_PANELS, |r0, rows_n, p0, p1, dst| {
                    // SAFETY: Bf16 weights exist only when the CPU has AVX512_BF16.
                    unsafe {
                        bf16::panels(
                            &rows,
                            *kp,
                            r0,
                            rows_n,
                            packed,
                            p0,
                            p1,
                            &self.bias,
                            (self.n, self.n),
                            dst,
                        )
                    }
                });
            }
            #[cfg(target_arch = "x86_64")]
            Weights::Int8 {
                packed,
                kq,
                scale,
                shift,
                kernel: Int8Kernel::Vnni,
            } => {
                let (rows, row_scale) = to_u8_rows(x, m, self.k, *kq);
                self.tiled(m, out, PANEL, TASK_PANELS, |r0, rows_n, p0, p1, dst| {
                    // SAFETY: VNNI int8 weights exist only when the CPU has AVX512_VNNI.
                    unsafe {
                        int8::panels(
                            &rows, &row_scale, *kq, r0, rows_n, packed, scale, shift, p0, p1,
                            &self.bias, self.n, dst,
                        )
                    }
                });
            }
            #[cfg(target_arch = "x86_64")]
            Weights::Int8 {
                packed,
                kq,
                scale,
                kernel: Int8Kernel::Avx2,
                ..
            } => {
                let (rows, row_scale) = to_i8_rows(x, m, self.k, *kq);
                let task_panels = TASK_PANELS * PANEL / PANEL_AVX2;
                self.tiled(
                    m,
                    out,
                    PANEL_AVX2,
                    task_panels,
                    |r0, rows_n, p0, p1, dst| {
                        // SAFETY: AVX2 int8 weights exist only when the CPU has AVX2.
                        unsafe {
                            int8_avx2::panels(
                                &rows, &row_scale, *kq, r0, rows_n, packed, scale, p0, p1,
                                &self.bias, self.n, dst,
                            )
                        }
                    },
                );
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("reduced precisions are x86-64 only"),
        }
    }

    fn forward_f32(&self, w: &[f32], x: &[f32], m: usize, out: &mut [f32]) {
        let (n, k) = (self.n, self.k);
        for row in out.chunks_exact_mut(n) {
            row.copy_from_slice(&self.bias);
        }
        let threads = rayon::current_num_threads();
        let parallelism = if m * n * k >= 1 << 18 && threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: out is m × n row-major, x m × k row-major, Wᵀ read from
        // W's [n × k] layout (k step 1, n step k); all in bounds.
        unsafe {
            matmul(
                (m, n, k),
                (out.as_mut_ptr(), n, true),
                (x.as_ptr(), k as isize, 1),
                (w.as_ptr(), 1, k as isize),
                parallelism,
            )
        }
    }

    /// Runs `kernel(first_row, rows, first_panel, end_panel, out_ptr)` over
    /// a grid of row × panel tasks in parallel (panels `panel` columns wide,
    /// `task_panels` to a task); tasks write disjoint cells.
    fn tiled<F>(&self, m: usize, out: &mut [f32], panel: usize, task_panels: usize, kernel: F)
    where
        F: Fn(usize, usize, usize, usize, SendPtr<f32>) + Sync,
    {
        let panels = self.n.div_ceil(panel);
        let row_tasks = m.div_ceil(TASK_ROWS);
        let panel_tasks = panels.div_ceil(task_panels);
        let dst = SendPtr(out.as_mut_ptr());
        (0..row_tasks * panel_tasks).into_par_iter().for_each(|t| {
            let (rt, pt) = (t / panel_tasks, t % panel_tasks);
            let r0 = rt * TASK_ROWS;
            let rows = TASK_ROWS.min(m - r0);
            let p0 = pt * task_panels;
            let p1 = (p0 + task_panels).min(panels);
            kernel(r0, rows, p0, p1, dst);
        });
    }
}

/// `dst = (dst if accumulate) + lhs · rhs` through the `gemm` crate, for a
/// row-major `dst` (`m × n`, row stride `ld`); `lhs` (`m × k`) and `rhs`
/// (`k × n`) are given as (pointer, row stride, column stride).
///
/// # Safety
/// Every pointer is valid for its matrix at its strides, and `dst` is not
/// written by anyone else meanwhile.
pub(crate) unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    (dst, ld, accumulate): (*mut f32, usize, bool),
    (lhs, lhs_rs, lhs_cs): (*const f32, isize, isize),
    (rhs, rhs_rs, rhs_cs): (*const f32, isize, isize),
    parallelism: gemm::Parallelism,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        ld as isize,
        accumulate,
        lhs,
        lhs_cs,
        lhs_rs,
        rhs,
        rhs_cs,
        rhs_rs,
        1.0,
        1.0,
        false,
        false,
        false,
        parallelism,
    )
}

/// Round-to-nearest-even f32 → bf16 bits (NaN kept quiet).
fn bf16_bits(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

/// Round-to-nearest-even f32 → bf16 bits for finite values (weights and
/// activations), a few integer operations instead of `half`'s checks.
#[inline(always)]
fn bf16_round(x: f32) -> u32 {
    let b = x.to_bits();
    (b.wrapping_add(0x7fff + ((b >> 16) & 1))) >> 16
}

fn pack_bf16(w: &[f32], n: usize, k: usize) -> Weights {
    let b = PackedBf16::from_fn(n, k, |col, i| w[col * k + i]);
    Weights::Bf16 {
        packed: b.packed,
        kp: b.kp,
    }
}

/// An `[n × k]` matrix in the bf16 kernel's panel layout.
struct PackedBf16 {
    packed: Vec<u32>,
    kp: usize,
}

impl PackedBf16 {
    /// Packs the matrix whose element (column `j`, depth `i`) is `w(j, i)`.
    fn from_fn(n: usize, k: usize, w: impl Fn(usize, usize) -> f32) -> Self {
        let kp = k.div_ceil(2);
        let panels = n.div_ceil(PANEL);
        let mut packed = vec![0u32; panels * kp * PANEL];
        for col in 0..n {
            let (panel, lane) = (col / PANEL, col % PANEL);
            for p in 0..kp {
                let lo = bf16_round(w(col, 2 * p));
                let hi = if 2 * p + 1 < k {
                    bf16_round(w(col, 2 * p + 1))
                } else {
                    0
                };
                packed[(panel * kp + p) * PANEL + lane] = lo | (hi << 16);
            }
        }
        PackedBf16 { packed, kp }
    }
}

fn pack_int8(w: &[f32], n: usize, k: usize, kernel: Int8Kernel) -> Weights {
    let width = match kernel {
        Int8Kernel::Vnni => PANEL,
        Int8Kernel::Avx2 => PANEL_AVX2,
    };
    let kq = k.div_ceil(4);
    let panels = n.div_ceil(width);
    let mut packed = vec![0i32; panels * kq * width];
    let mut scale = vec![0f32; n];
    let mut shift = vec![0i32; n];
    for col in 0..n {
        let (panel, lane) = (col / width, col % width);
        let row = &w[col * k..(col + 1) * k];
        let max = row.iter().fold(0f32, |m, &v| m.max(v.abs()));
        let s = scale_of_max(max);
        scale[col] = s;
        let q: Vec<i8> = row
            .iter()
            .map(|&v| (v / s).round().clamp(-127.0, 127.0) as i8)
            .collect();
        shift[col] = 128 * q.iter().map(|&v| v as i32).sum::<i32>();
        for p in 0..kq {
            let mut bytes = [0u8; 4];
            for (j, b) in bytes.iter_mut().enumerate() {
                *b = q.get(4 * p + j).copied().unwrap_or(0) as u8;
            }
            packed[(panel * kq + p) * width + lane] = i32::from_le_bytes(bytes);
        }
    }
    Weights::Int8 {
        packed,
        kq,
        scale,
        shift,
        kernel,
    }
}

/// Token rows rounded to bf16, `kp` pairs each (an odd k padded with 0).
fn to_bf16_rows(x: &[f32], m: usize, k: usize, kp: usize) -> Vec<u32> {
    let mut rows = vec![0u32; m * kp];
    rows.par_chunks_mut(kp)
        .zip(x.par_chunks(k))
        .for_each(|(dst, src)| {
            let mut done = 0;
            #[cfg(target_arch = "x86_64")]
            if cpu_features().avx512_bf16 {
                // SAFETY: the CPU has AVX512_BF16.
                done = unsafe { bf16::convert_row(src, dst) };
            }
            for (p, d) in dst.iter_mut().enumerate().skip(done / 2) {
                let lo = bf16_bits(src[2 * p]) as u32;
                let hi = src.get(2 * p + 1).map_or(0, |&v| bf16_bits(v) as u32);
                *d = lo | (hi << 16);
            }
        });
    rows
}

/// Token rows quantized to i8 with a per-row scale (max |x| / 127), stored
/// shifted by 128 as u8 quads (`vpdpbusd` wants unsigned activations); the
/// shift is taken back with the weights' row sums. Padding bytes are 128
/// (zero) so that they cancel against zero weights.
fn to_u8_rows(x: &[f32], m: usize, k: usize, kq: usize) -> (Vec<u32>, Vec<f32>) {
    let mut rows = vec![0x8080_8080u32; m * kq];
    let mut scales = vec![0f32; m];
    rows.par_chunks_mut(kq)
        .zip(scales.par_iter_mut())
        .zip(x.par_chunks(k))
        .for_each(|((dst, scale), src)| {
            let bytes: &mut [u8] = bytemuck_u8(dst);
            #[cfg(target_arch = "x86_64")]
            if cpu_features().avx512_vnni {
                // SAFETY: VNNI implies AVX-512 F/BW here (CpuFeatures).
                *scale = unsafe { int8::quantize_row(src, bytes) };
                return;
            }
            *scale = quantize_tail(src, bytes, row_scale(src), 128);
        });
    (rows, scales)
}

/// Token rows quantized to i8 with a per-row scale (max |x| / 127, nearest
/// even), as quads for the AVX2 kernel; padding bytes are 0.
fn to_i8_rows(x: &[f32], m: usize, k: usize, kq: usize) -> (Vec<u32>, Vec<f32>) {
    let mut rows = vec![0u32; m * kq];
    let mut scales = vec![0f32; m];
    rows.par_chunks_mut(kq)
        .zip(scales.par_iter_mut())
        .zip(x.par_chunks(k))
        .for_each(|((dst, scale), src)| {
            let bytes: &mut [u8] = bytemuck_u8(dst);
            #[cfg(target_arch = "x86_64")]
            if cpu_features().simd >= super::SimdLevel::Avx2 {
                // SAFETY: the CPU has AVX2 and FMA.
                *scale = unsafe { int8_avx2::quantize_row(src, bytes) };
                return;
            }
            *scale = quantize_tail(src, bytes, row_scale(src), 0);
        });
    (rows, scales)
}

/// max |x| / 127, or 1 for a row of zeros.
fn row_scale(src: &[f32]) -> f32 {
    scale_of_max(src.iter().fold(0f32, |m, &v| m.max(v.abs())))
}

/// The symmetric int8 scale for a row whose largest magnitude is `max`
/// (1 for a row of zeros, so that dividing by it is harmless).
fn scale_of_max(max: f32) -> f32 {
    if max > 0.0 {
        max / 127.0
    } else {
        1.0
    }
}

/// `src` quantized with `scale` (nearest even, ±127) into `dst` as
/// `q + offset` bytes; returns `scale`.
fn quantize_tail(src: &[f32], dst: &mut [u8], scale: f32, offset: i32) -> f32 {
    let inv = 1.0 / scale;
    for (b, &v) in dst.iter_mut().zip(src) {
        *b = ((v * inv).round_ties_even().clamp(-127.0, 127.0) as i32 + offset) as u8;
    }
    scale
}

fn bytemuck_u8(words: &mut [u32]) -> &mut [u8] {
    // SAFETY: u32 has no padding and any byte pattern is a valid u8; the
    // length is exact and the lifetime is the borrow's.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 4) }
}

#[cfg(target_arch = "x86_64")]
mod bf16 {
    use std::arch::x86_64::*;

    use super::{SendPtr, K_BLOCK, PANEL, TILE_ROWS};

    /// Rounds `src` to bf16 into `dst` (pairs), 32 values at a time;
    /// returns how many values it converted (the caller does the tail).
    #[target_feature(enable = "avx512f,avx512bf16,avx512bw,avx512vl")]
    pub(super) unsafe fn convert_row(src: &[f32], dst: &mut [u32]) -> usize {
        let full = src.len() / 32 * 32;
        for c in (0..full).step_by(32) {
            let lo = _mm512_loadu_ps(src.as_ptr().add(c));
            let hi = _mm512_loadu_ps(src.as_ptr().add(c + 16));
            let packed = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(dst.as_mut_ptr().add(c / 2).cast(), packed);
        }
        full
    }

    /// Output rows `r0..r0+rows`, panels `p0..p1` of `x · Wᵀ + b`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bf16,avx512bw,avx512vl")]
    pub(super) unsafe fn panels(
        x: &[u32],
        kp: usize,
        r0: usize,
        rows: usize,
        packed: &[u32],
        p0: usize,
        p1: usize,
        bias: &[f32],
        (n, ld): (usize, usize),
        dst: SendPtr<f32>,
    ) {
        for p in p0..p1 {
            let panel = &packed[p * kp * PANEL..(p + 1) * kp * PANEL];
            for k0 in (0..kp).step_by(K_BLOCK) {
                let ks = (k0, (k0 + K_BLOCK).min(kp));
                let mut r = 0;
                while r < rows {
                    let tile = TILE_ROWS.min(rows - r);
                    let a = &x[(r0 + r) * kp..];
                    let at = (bias, n, ld, p, dst, r0 + r);
                    for_tile_rows!(tile, tile_kernel(a, kp, ks, panel, at));
                    r += tile;
                }
            }
        }
    }

    /// Where a tile's results go: bias, n, output row stride, panel,
    /// output, first row.
    pub(super) type Out<'a> = (&'a [f32], usize, usize, usize, SendPtr<f32>, usize);

    /// k-steps `k0..k1` of a tile; the first block writes (with bias), the
    /// others add to what is there.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16,avx512bw,avx512vl")]
    unsafe fn tile_kernel<const R: usize>(
        a: &[u32],
        kp: usize,
        (k0, k1): (usize, usize),
        panel: &[u32],
        out: Out<'_>,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 3]; R];
        let b = panel.as_ptr();
        let a = a.as_ptr();
        for q in k0..k1 {
            let b0 = _mm512_loadu_si512(b.add(q * PANEL).cast());
            let b1 = _mm512_loadu_si512(b.add(q * PANEL + 16).cast());
            let b2 = _mm512_loadu_si512(b.add(q * PANEL + 32).cast());
            let (b0, b1, b2): (__m512bh, __m512bh, __m512bh) = (
                std::mem::transmute::<__m512i, __m512bh>(b0),
                std::mem::transmute::<__m512i, __m512bh>(b1),
                std::mem::transmute::<__m512i, __m512bh>(b2),
            );
            for (i, acc) in acc.iter_mut().enumerate() {
                let ai: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*a.add(i * kp + q) as i32));
                acc[0] = _mm512_dpbf16_ps(acc[0], ai, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], ai, b1);
                acc[2] = _mm512_dpbf16_ps(acc[2], ai, b2);
            }
        }
        store_tile::<R>(&acc, k0 == 0, out);
    }

    /// The lanes of the 16 columns from `col` that lie before `n`.
    #[inline(always)]
    pub(super) fn column_mask(n: usize, col: usize) -> __mmask16 {
        let valid = (n - col).min(16);
        if valid == 16 {
            0xffff
        } else {
            (1u16 << valid) - 1
        }
    }

    /// Writes a tile of f32 results to rows `row..row+R`, columns of panel
    /// `p` (masking columns past `n`): `acc + bias` when `first`, else
    /// `dst + acc`.
    #[inline(always)]
    pub(super) unsafe fn store_tile<const R: usize>(
        acc: &[[__m512; 3]; R],
        first: bool,
        (bias, n, ld, p, dst, row): Out<'_>,
    ) {
        for j in 0..3 {
            let col = p * PANEL + j * 16;
            if col >= n {
                break;
            }
            let mask = column_mask(n, col);
            let bv = _mm512_maskz_loadu_ps(mask, bias.as_ptr().add(col));
            for (i, acc) in acc.iter().enumerate() {
                let at = dst.0.add((row + i) * ld + col);
                let base = if first {
                    bv
                } else {
                    _mm512_maskz_loadu_ps(mask, at)
                };
                _mm512_mask_storeu_ps(at, mask, _mm512_add_ps(acc[j], base));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod int8 {
    use std::arch::x86_64::*;

    use super::bf16::{column_mask, store_tile, Out};
    use super::{SendPtr, K_BLOCK, PANEL, TILE_ROWS};

    /// Quantizes `src` (scale max |x| / 127, nearest even) into `dst` as
    /// u8 shifted by 128; returns the scale. `dst` is at least `src` long.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn quantize_row(src: &[f32], dst: &mut [u8]) -> f32 {
        let full = src.len() / 16 * 16;
        let mut maxv = _mm512_setzero_ps();
        for c in (0..full).step_by(16) {
            maxv = _mm512_max_ps(maxv, _mm512_abs_ps(_mm512_loadu_ps(src.as_ptr().add(c))));
        }
        let max = src[full..]
            .iter()
            .fold(_mm512_reduce_max_ps(maxv), |m, &v| m.max(v.abs()));
        let s = super::scale_of_max(max);
        let inv = _mm512_set1_ps(1.0 / s);
        let shift = _mm512_set1_epi32(128);
        for c in (0..full).step_by(16) {
            let q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(src.as_ptr().add(c)), inv));
            let bytes = _mm512_cvtusepi32_epi8(_mm512_add_epi32(q, shift));
            _mm_storeu_si128(dst.as_mut_ptr().add(c).cast(), bytes);
        }
        super::quantize_tail(&src[full..], &mut dst[full..], s, 128)
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512vnni,avx512bw,avx512vl")]
    pub(super) unsafe fn panels(
        x: &[u32],
        x_scale: &[f32],
        kq: usize,
        r0: usize,
        rows: usize,
        packed: &[i32],
        w_scale: &[f32],
        shift: &[i32],
        p0: usize,
        p1: usize,
        bias: &[f32],
        n: usize,
        dst: SendPtr<f32>,
    ) {
        for p in p0..p1 {
            let panel = &packed[p * kq * PANEL..(p + 1) * kq * PANEL];
            for k0 in (0..kq).step_by(K_BLOCK) {
                let ks = (k0, (k0 + K_BLOCK).min(kq));
                let mut r = 0;
                while r < rows {
                    let tile = TILE_ROWS.min(rows - r);
                    let (a, s) = (&x[(r0 + r) * kq..], &x_scale[r0 + r..]);
                    let w = (w_scale, shift);
                    let at = (bias, n, n, p, dst, r0 + r);
                    for_tile_rows!(tile, tile_kernel(a, s, kq, ks, panel, w, at));
                    r += tile;
                }
            }
        }
    }

    /// k-steps `k0..k1` of a tile, scaled to f32 and written (first
    /// block, with bias and the u8 shift taken back) or added.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f,avx512vnni,avx512bw,avx512vl")]
    unsafe fn tile_kernel<const R: usize>(
        a: &[u32],
        a_scale: &[f32],
        kq: usize,
        (k0, k1): (usize, usize),
        panel: &[i32],
        (w_scale, shift): (&[f32], &[i32]),
        out: Out<'_>,
    ) {
        let (_, n, _, p, _, _) = out;
        let first = k0 == 0;
        let mut acc = [[_mm512_setzero_si512(); 3]; R];
        let b = panel.as_ptr();
        let ap = a.as_ptr();
        for q in k0..k1 {
            let b0 = _mm512_loadu_si512(b.add(q * PANEL).cast());
            let b1 = _mm512_loadu_si512(b.add(q * PANEL + 16).cast());
            let b2 = _mm512_loadu_si512(b.add(q * PANEL + 32).cast());
            for (i, acc) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_epi32(*ap.add(i * kq + q) as i32);
                acc[0] = _mm512_dpbusd_epi32(acc[0], ai, b0);
                acc[1] = _mm512_dpbusd_epi32(acc[1], ai, b1);
                acc[2] = _mm512_dpbusd_epi32(acc[2], ai, b2);
            }
        }
        // (acc − 128·Σw) · s_x · s_w, per column j of the panel.
        let mut scaled = [[_mm512_setzero_ps(); 3]; R];
        for j in 0..3 {
            let col = p * PANEL + j * 16;
            if col >= n {
                break;
            }
            let mask = column_mask(n, col);
            let sw = _mm512_maskz_loadu_ps(mask, w_scale.as_ptr().add(col));
            let sh = if first {
                _mm512_maskz_loadu_epi32(mask, shift.as_ptr().add(col))
            } else {
                _mm512_setzero_si512()
            };
            for i in 0..R {
                let v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][j], sh));
                scaled[i][j] = _mm512_mul_ps(v, _mm512_mul_ps(sw, _mm512_set1_ps(a_scale[i])));
            }
        }
        store_tile::<R>(&scaled, first, out);
    }
}

#[cfg(target_arch = "x86_64")]
mod int8_avx2 {
    use std::arch::x86_64::*;

    use super::{SendPtr, PANEL_AVX2 as PANEL};

    /// Token rows per micro-tile: 4 rows × 2 registers of accumulators.
    const TILE_ROWS: usize = 4;
    /// Quads per pass over a panel: 256 × 16 × 4 bytes = 16 KiB of weights.
    const K_BLOCK: usize = 256;

    /// Quantizes `src` (scale max |x| / 127, nearest even) into `dst` as
    /// i8; returns the scale. `dst` is at least `src` long.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn quantize_row(src: &[f32], dst: &mut [u8]) -> f32 {
        let full8 = src.len() / 8 * 8;
        let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        let mut maxv = _mm256_setzero_ps();
        for c in (0..full8).step_by(8) {
            let v = _mm256_loadu_ps(src.as_ptr().add(c));
            maxv = _mm256_max_ps(maxv, _mm256_and_ps(v, abs_mask));
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), maxv);
        let max = src[full8..]
            .iter()
            .chain(&lanes)
            .fold(0f32, |m, &v| m.max(v.abs()));
        let s = super::scale_of_max(max);
        let inv = _mm256_set1_ps(1.0 / s);
        // packs work within 128-bit halves: dwords come out as
        // q0[0..4] q1[0..4] q2[0..4] q3[0..4] | q0[4..8] q1[4..8] …
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let full32 = src.len() / 32 * 32;
        for c in (0..full32).step_by(32) {
            let p = src.as_ptr().add(c);
            let q = |o: usize| _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(p.add(o)), inv));
            let (q0, q1, q2, q3) = (q(0), q(8), q(16), q(24));
            let bytes = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
            let bytes = _mm256_permutevar8x32_epi32(bytes, order);
            _mm256_storeu_si256(dst.as_mut_ptr().add(c).cast(), bytes);
        }
        super::quantize_tail(&src[full32..], &mut dst[full32..], s, 0)
    }

    /// Output rows `r0..r0+rows`, panels `p0..p1` of `x · Wᵀ + b`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn panels(
        x: &[u32],
        x_scale: &[f32],
        kq: usize,
        r0: usize,
        rows: usize,
        packed: &[i32],
        w_scale: &[f32],
        p0: usize,
        p1: usize,
        bias: &[f32],
        n: usize,
        dst: SendPtr<f32>,
    ) {
        for p in p0..p1 {
            let panel = &packed[p * kq * PANEL..(p + 1) * kq * PANEL];
            for k0 in (0..kq).step_by(K_BLOCK) {
                let ks = (k0, (k0 + K_BLOCK).min(kq));
                let mut r = 0;
                while r < rows {
                    let tile = TILE_ROWS.min(rows - r);
                    let (a, s) = (&x[(r0 + r) * kq..], &x_scale[r0 + r..]);
                    let out = (bias, w_scale, n, p, dst, r0 + r);
                    match tile {
                        4 => tile_kernel::<4>(a, s, kq, ks, panel, out),
                        3 => tile_kernel::<3>(a, s, kq, ks, panel, out),
                        2 => tile_kernel::<2>(a, s, kq, ks, panel, out),
                        _ => tile_kernel::<1>(a, s, kq, ks, panel, out),
                    }
                    r += tile;
                }
            }
        }
    }

    /// Where a tile's results go: bias, weight scales, n, panel, output,
    /// first row (rows are `n` apart).
    type Out<'a> = (&'a [f32], &'a [f32], usize, usize, SendPtr<f32>, usize);

    /// k-steps `k0..k1` of a tile, scaled to f32 and written (first block,
    /// with bias) or added to what is there.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile_kernel<const R: usize>(
        a: &[u32],
        a_scale: &[f32],
        kq: usize,
        (k0, k1): (usize, usize),
        panel: &[i32],
        (bias, w_scale, n, p, dst, row): Out<'_>,
    ) {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        let b = panel.as_ptr();
        let ap = a.as_ptr();
        for q in k0..k1 {
            let b0 = _mm256_loadu_si256(b.add(q * PANEL).cast());
            let b1 = _mm256_loadu_si256(b.add(q * PANEL + 8).cast());
            for (i, acc) in acc.iter_mut().enumerate() {
                let ai = _mm256_set1_epi32(*ap.add(i * kq + q) as i32);
                let magnitude = _mm256_abs_epi8(ai);
                // |a|·(b·sign a) = a·b; pairs ≤ 2 × 128 × 127 fit in i16.
                let s0 = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(b0, ai));
                let s1 = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(b1, ai));
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(s0, ones));
                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(s1, ones));
            }
        }
        let first = k0 == 0;
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for j in 0..2 {
            let col = p * PANEL + j * 8;
            if col >= n {
                break;
            }
            let valid = (n - col).min(8);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid as i32), lane);
            let sw = _mm256_maskload_ps(w_scale.as_ptr().add(col), mask);
            let bv = _mm256_maskload_ps(bias.as_ptr().add(col), mask);
            for (i, acc) in acc.iter().enumerate() {
                let at = dst.0.add((row + i) * n + col);
                let base = if first {
                    bv
                } else {
                    _mm256_maskload_ps(at, mask)
                };
                let scale = _mm256_mul_ps(sw, _mm256_set1_ps(a_scale[i]));
                let v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[j]), scale, base);
                _mm256_maskstore_ps(at, mask, v);
            }
        }
    }
}

/// Whether `precision`'s kernel can run here.
pub(crate) fn kernel_available(precision: Precision) -> bool {
    cfg!(target_arch = "x86_64") && cpu_features().supports(precision)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(w: &[f32], b: &[f32], x: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                let dot: f64 = (0..k)
                    .map(|i| x[r * k + i] as f64 * w[c * k + i] as f64)
                    .sum();
                out[r * n + c] = dot as f32 + b[c];
            }
        }
        out
    }

    fn data(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// Every precision against an f64 reference, on shapes that exercise
    /// odd k, partial panels, partial tiles and several tasks.
    #[test]
    fn every_precision_matches_the_reference() {
        for &(m, n, k) in &[
            (1, 5, 3),
            (13, 50, 37),
            (70, 97, 130),
            (9, 48, 64),
            (20, 50, 1100),
            (5, 300, 40),
        ] {
            let w = data(n * k, 1);
            let b = data(n, 2);
            let x = data(m * k, 3);
            let want = reference(&w, &b, &x, m, n, k);
            let scale = (k as f32).sqrt();
            for (precision, tol) in [
                (Precision::F32, 1e-4),
                (Precision::Bf16, 0.02),
                (Precision::Int8, 0.04),
            ] {
                if !kernel_available(precision) {
                    eprintln!("{precision}: no kernel on this CPU, skipped");
                    continue;
                }
                let lin = Linear::new(w.clone(), b.clone(), n, k, precision);
                let mut out = vec![f32::NAN; m * n];
                lin.forward(&x, m, &mut out);
                for (i, (g, e)) in out.iter().zip(&want).enumerate() {
                    assert!(
                        (g - e).abs() <= tol * scale,
                        "{precision} m{m} n{n} k{k} [{i}]: {g} vs {e}"
                    );
                }
            }
        }
    }

    /// The int8 kernels this CPU has, each forced.
    fn int8_kernels() -> Vec<Int8Kernel> {
        let f = cpu_features();
        let mut kernels = Vec::new();
        if cfg!(target_arch = "x86_64") && f.avx512_vnni {
            kernels.push(Int8Kernel::Vnni);
        }
        if cfg!(target_arch = "x86_64") && f.simd >= super::super::SimdLevel::Avx2 {
            kernels.push(Int8Kernel::Avx2);
        }
        kernels
    }

    fn int8_forward(
        w: &[f32],
        b: &[f32],
        x: &[f32],
        (m, n, k): (usize, usize, usize),
        kernel: Int8Kernel,
    ) -> Vec<f32> {
        let lin = Linear::with_int8_kernel(w.to_vec(), b.to_vec(), n, k, Precision::Int8, kernel);
        let mut out = vec![f32::NAN; m * n];
        lin.forward(x, m, &mut out);
        out
    }

    /// Every int8 kernel on this CPU against the reference, and against
    /// each other: VNNI and AVX2 form the same i32 sums, so they differ
    /// only by the float rounding of the final scaling.
    #[test]
    fn int8_kernels_agree_with_the_reference_and_each_other() {
        let kernels = int8_kernels();
        if kernels.is_empty() {
            eprintln!("no int8 kernel on this CPU, skipped");
            return;
        }
        for &(m, n, k) in &[(1, 5, 3), (7, 33, 45), (66, 97, 1100), (4, 300, 64)] {
            let (w, b, x) = (data(n * k, 7), data(n, 8), data(m * k, 9));
            let want = reference(&w, &b, &x, m, n, k);
            let outs: Vec<Vec<f32>> = kernels
                .iter()
                .map(|&kernel| int8_forward(&w, &b, &x, (m, n, k), kernel))
                .collect();
            for (kernel, out) in kernels.iter().zip(&outs) {
                for (i, (g, e)) in out.iter().zip(&want).enumerate() {
                    let tol = 0.04 * (k as f32).sqrt();
                    assert!(
                        (g - e).abs() <= tol,
                        "{kernel:?} m{m} n{n} k{k} [{i}]: {g} vs {e}"
                    );
                }
            }
            for pair in outs.windows(2) {
                for (i, (a, b)) in pair[0].iter().zip(&pair[1]).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                        "m{m} n{n} k{k} [{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }

    /// Activations and weights at ±max quantize to ±127 everywhere: the
    /// worst case for AVX2's i16 pair sums (2 × 127 × 127), which must not
    /// saturate. Signs are chosen so every product is +1 (or every −1).
    #[test]
    fn int8_extreme_values_do_not_saturate() {
        let (m, n, k) = (3, 20, 256);
        let x: Vec<f32> = (0..m * k)
            .map(|i| if i % 3 == 0 { -2.0 } else { 2.0 })
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| {
                let (col, j) = (i / k, i % k);
                let same = if j % 3 == 0 { -0.5 } else { 0.5 };
                if col % 2 == 0 {
                    same
                } else {
                    -same
                }
            })
            .collect();
        let b = vec![0f32; n];
        let want = reference(&w, &b, &x, m, n, k);
        for kernel in int8_kernels() {
            let out = int8_forward(&w, &b, &x, (m, n, k), kernel);
            for (i, (g, e)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (g - e).abs() <= 1e-3 * e.abs(),
                    "{kernel:?} [{i}]: {g} vs {e}"
                );
            }
        }
    }
}
