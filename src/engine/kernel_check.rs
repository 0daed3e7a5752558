//! A self-check of this build's own kernels: every SIMD form (simd128, relaxed SIMD, AVX2)
//! against its portable reference on random blocks of several sizes, one to four activation
//! rows per pass, one row read front to back (Q8_0, Q4_1, Q5_0; against the portable form of
//! decoding's own order, `q8_0::in_order_sum`), the prefill tiles (Q4_1,
//! Q5_0, Q4_K, Q6_K) of up to eight rows (also read by their portable form, which checks the
//! layout natively), attention's f32 loops, the token statistics' sums and the activations'
//! block quantization. The wasm forms are
//! written to give the portable form's bits exactly, and so are the AVX2 forms (exact integer
//! sums from SIMD, then the portable form's f32 steps in its order).
//! The native tests run it, and the browser tests ask every worker build for it
//! (`Work::KernelCheck`), since only a browser runs the wasm forms.

use candle_core::quantized::k_quants::{BlockQ4K, BlockQ4_1, BlockQ5_0, BlockQ6K, BlockQ8_0};
use serde::{Deserialize, Serialize};

use super::{act_quant, k_quants, q4_1, q5_0, q8_0};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelCheck {
    pub kernel: String,
    /// Dot products compared.
    pub products: usize,
    /// Of those, how many had the portable form's bits exactly.
    pub equal: usize,
    /// The largest difference, relative to max(|reference|, 1).
    pub max_rel_diff: f64,
    /// Whether this build's form should give the portable bits (every wasm form does).
    pub exact: bool,
}

/// Deterministic values in [-0.5, 0.5) plus `shift` (off zero, so minimums matter).
fn values(n: usize, seed: u32, shift: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5 + shift
        })
        .collect()
}

fn block_bytes<T: candle_core::quantized::k_quants::GgmlType>(x: &[f32]) -> Vec<u8> {
    let mut b = vec![T::zeros(); x.len() / T::BLCK_SIZE];
    T::from_float(x, &mut b);
    // SAFETY: candle's block types are `repr(C)` plain data without padding.
    unsafe { std::slice::from_raw_parts(b.as_ptr() as *const u8, std::mem::size_of_val(&b[..])) }
        .to_vec()
}

/// One stored Q8_0 row laid out by `q8_0::arrange_row`.
fn arranged_q8_0(stored: &[u8]) -> Vec<u8> {
    let blocks = stored.len() / q8_0::BLOCK_BYTES;
    let mut out = vec![0u8; blocks * q8_0::ARRANGED_BLOCK_BYTES];
    q8_0::arrange_row(stored, &mut out);
    out
}

struct Tally {
    row: KernelCheck,
}

impl Tally {
    fn new(kernel: &str, exact: bool) -> Self {
        Tally {
            row: KernelCheck {
                kernel: kernel.into(),
                products: 0,
                equal: 0,
                max_rel_diff: 0.0,
                exact,
            },
        }
    }

    fn add_f64(&mut self, got: &[f64], want: &[f64]) {
        for (g, w) in got.iter().zip(want) {
            self.row.products += 1;
            if g.to_bits() == w.to_bits() {
                // Infinite sums (an infinite logit above a finite maximum) count as equal.
                self.row.equal += 1;
                continue;
            }
            let d = (g - w).abs() / w.abs().max(1.0);
            self.row.max_rel_diff =
                self.row
                    .max_rel_diff
                    .max(if d.is_nan() { f64::INFINITY } else { d });
        }
    }

    fn add(&mut self, got: &[f32], want: &[f32]) {
        for (g, w) in got.iter().zip(want) {
            self.row.products += 1;
            if g.to_bits() == w.to_bits() {
                self.row.equal += 1;
            }
            let d = (*g as f64 - *w as f64).abs() / (w.abs() as f64).max(1.0);
            self.row.max_rel_diff =
                self.row
                    .max_rel_diff
                    .max(if d.is_nan() { f64::INFINITY } else { d });
        }
    }
}

/// `dot_rows` of this build on the first `r` (1..=4) activations.
macro_rules! rows {
    ($f:path, $w:expr, $acts:expr, $r:expr) => {{
        let a = $acts;
        match $r {
            1 => $f($w, [&a[0]]).to_vec(),
            2 => $f($w, [&a[0], &a[1]]).to_vec(),
            3 => $f($w, [&a[0], &a[1], &a[2]]).to_vec(),
            _ => $f($w, [&a[0], &a[1], &a[2], &a[3]]).to_vec(),
        }
    }};
}

/// Runs every kernel's check. In the relaxed-SIMD build the integer kernels run once per
/// `dot_form` (the second time named "Q8_0 · dot-add" and so on), since a worker may use
/// either; the form in use before is restored.
pub fn run() -> Vec<KernelCheck> {
    use super::dot_form::{self, DotForm};
    let mut out = Vec::new();
    if dot_form::CHOOSES {
        let before = dot_form::current();
        for form in [DotForm::Pairs, DotForm::DotAdd] {
            dot_form::set(form);
            let mut rows = integer_kernels();
            if form == DotForm::DotAdd {
                for r in &mut rows {
                    r.kernel = format!("{} · {}", r.kernel, form.name());
                }
            }
            out.extend(rows);
        }
        dot_form::set(before);
    } else {
        out.extend(integer_kernels());
    }
    out.push(attention_f32());
    out.push(token_statistics());
    out.push(activation_quantization());
    out
}

/// The weight types' products: Q8_0, Q4_1, Q5_0, Q4_K and Q6_K, in that order.
fn integer_kernels() -> Vec<KernelCheck> {
    let mut out = Vec::new();

    // 32-value blocks: one, two, seven and eight per row (the in-order forms take four blocks
    // at a time, then the rest one by one).
    let mut t8 = Tally::new("Q8_0", true);
    // Every form, AVX2 too, gives the portable bits: the CLI has the page's numbers.
    let mut t41 = Tally::new("Q4_1", true);
    let mut t50 = Tally::new("Q5_0", true);
    for (i, blocks) in [1usize, 2, 7, 8].into_iter().enumerate() {
        let k = 32 * blocks;
        // Eight rows: a whole Q5_0 prefill tile.
        let x: Vec<Vec<f32>> = (0..8)
            .map(|r| values(k, 100 + r + 10 * i as u32, 0.05))
            .collect();
        let mut a8 = vec![vec![0u8; blocks * 34]; 8];
        let mut a81 = vec![vec![0u8; blocks * 36]; 8];
        for r in 0..8 {
            act_quant::q8_0(&x[r], &mut a8[r]);
            act_quant::q8_1(&x[r], &mut a81[r]);
        }
        let p8: Vec<q8_0::Activation> = a8.iter().map(|b| q8_0::Activation::new(b)).collect();
        let p41: Vec<q4_1::Activation> = a81.iter().map(|b| q4_1::Activation::new(b)).collect();
        let p50: Vec<q5_0::Activation> = a8.iter().map(|b| q5_0::Activation::new(b)).collect();
        for col in 0..6u32 {
            let w = values(k, 7 + col + 31 * i as u32, 0.1 * col as f32 - 0.2);
            let (w8, w41, w50) = (
                block_bytes::<BlockQ8_0>(&w),
                block_bytes::<BlockQ4_1>(&w),
                block_bytes::<BlockQ5_0>(&w),
            );
            let w50s = q5_0::for_this_build(&w50, blocks);
            let w41s = q4_1::for_this_build(&w41, blocks);
            // Q8_0 rows laid out by `q8_0::arrange_row` (the relaxed build's weights), read by
            // every form against the portable form on the stored row.
            let w8a = arranged_q8_0(&w8);
            for r in 1..=4 {
                let want = |f: &dyn Fn(usize) -> f32| (0..r).map(f).collect::<Vec<f32>>();
                t8.add(
                    &rows!(q8_0::dot_rows, &w8, &p8, r),
                    &want(&|j| q8_0::portable(&w8, [&p8[j]])[0]),
                );
                t8.add(
                    &rows!(q8_0::dot_rows_arranged, &w8a, &p8, r),
                    &want(&|j| q8_0::portable(&w8, [&p8[j]])[0]),
                );
                t8.add(
                    &rows!(q8_0::portable_arranged, &w8a, &p8, r),
                    &want(&|j| q8_0::portable(&w8, [&p8[j]])[0]),
                );
                // As Q5_0's below: the relaxed build reads arranged rows in decoding's order.
                t41.add(
                    &rows!(q4_1::dot_rows, &w41s, &p41, r),
                    &want(&|j| {
                        if q4_1::ARRANGED {
                            q4_1::portable_in_order(&w41, &p41[j])
                        } else {
                            q4_1::portable(&w41, [&p41[j]])[0]
                        }
                    }),
                );
                // The relaxed build reads each row with its decoding kernel there, in
                // decoding's order (`q5_0::dot_rows`).
                t50.add(
                    &rows!(q5_0::dot_rows, &w50s, &p50, r),
                    &want(&|j| {
                        if q5_0::ARRANGED {
                            q5_0::portable_in_order(&w50, &p50[j])
                        } else {
                            q5_0::portable(&w50, [&p50[j]])[0]
                        }
                    }),
                );
            }
            // Prefill's tiles of one to eight rows.
            for r in 1..=q4_1::TILE_ROWS {
                let tile = q4_1::Tile::new(&p41[..r]);
                let mut got = vec![0f32; r];
                q4_1::dot_tile(&w41s, &tile, &mut got);
                let want: Vec<f32> = (0..r).map(|j| q4_1::portable(&w41, [&p41[j]])[0]).collect();
                t41.add(&got, &want);
                q4_1::portable_tile(&w41, &tile, &mut got);
                t41.add(&got, &want);
            }
            for r in 1..=q5_0::TILE_ROWS {
                let tile = q5_0::Tile::new(&p50[..r]);
                let mut got = vec![0f32; r];
                q5_0::dot_tile(&w50s, &tile, &mut got);
                let want: Vec<f32> = (0..r).map(|j| q5_0::portable(&w50, [&p50[j]])[0]).collect();
                t50.add(&got, &want);
                // The tile's layout, read by the portable form.
                q5_0::portable_tile(&w50, &tile, &mut got);
                t50.add(&got, &want);
            }
            // One row read front to back (decoding), on two weight rows.
            let more = values(k, 1000 + col + 31 * i as u32, 0.1);
            // Their reference is the portable form of their own order (`q8_0::in_order_sum`).
            macro_rules! in_order {
                ($tally:expr, $block:ty, $in_order:path, $portable:path, $w:expr, $y:expr) => {{
                    let other = block_bytes::<$block>(&more);
                    $tally.add(
                        &[$in_order($w, $y), $in_order(&other, $y)],
                        &[$portable($w, $y), $portable(&other, $y)],
                    );
                }};
            }
            in_order!(
                t8,
                BlockQ8_0,
                q8_0::dot_in_order,
                q8_0::portable_in_order,
                &w8,
                &p8[0]
            );
            let other = block_bytes::<BlockQ8_0>(&more);
            t8.add(
                &[
                    q8_0::dot_in_order_arranged(&w8a, &p8[0]),
                    q8_0::dot_in_order_arranged(&arranged_q8_0(&other), &p8[0]),
                ],
                &[
                    q8_0::portable_in_order(&w8, &p8[0]),
                    q8_0::portable_in_order(&other, &p8[0]),
                ],
            );
            // A file may hold −128, which ggml's quantizer never writes: every form multiplies
            // it exactly (nothing clamps it at load).
            let mut low = w8.clone();
            for block in low.chunks_exact_mut(q8_0::BLOCK_BYTES) {
                block[2..].iter_mut().step_by(3).for_each(|q| *q = 0x80);
            }
            let want_low: Vec<f32> = (0..4).map(|j| q8_0::portable(&low, [&p8[j]])[0]).collect();
            t8.add(&rows!(q8_0::dot_rows, &low, &p8, 4), &want_low);
            let want_low_in_order = [q8_0::portable_in_order(&low, &p8[0])];
            t8.add(&[q8_0::dot_in_order(&low, &p8[0])], &want_low_in_order);
            let low_a = arranged_q8_0(&low);
            t8.add(&rows!(q8_0::dot_rows_arranged, &low_a, &p8, 4), &want_low);
            t8.add(
                &[q8_0::dot_in_order_arranged(&low_a, &p8[0])],
                &want_low_in_order,
            );
            // Q4_1's SIMD forms read rows as this build lays them out (`q4_1::arrange` in the
            // relaxed build, whose scales and minimums are widened from f16 four at a time).
            let other = block_bytes::<BlockQ4_1>(&more);
            t41.add(
                &[
                    q4_1::dot_in_order(&w41s, &p41[0]),
                    q4_1::dot_in_order(&q4_1::for_this_build(&other, blocks), &p41[0]),
                ],
                &[
                    q4_1::portable_in_order(&w41, &p41[0]),
                    q4_1::portable_in_order(&other, &p41[0]),
                ],
            );
            // Scales and minimums a quantizer rarely writes: zeros of both signs, subnormals,
            // the smallest normal, in decoding and in a whole tile.
            let mut odd = w41.clone();
            for (b, block) in odd.chunks_exact_mut(q4_1::BLOCK_BYTES).enumerate() {
                let d = [0x0000u16, 0x0001, 0x03ff, 0x0400, 0x2c00, 0x3c00][(b + col as usize) % 6];
                let m =
                    [0x8000u16, 0x8001, 0x83ff, 0xa400, 0x0000, 0xbc00][(b + 2 * col as usize) % 6];
                block[..2].copy_from_slice(&d.to_le_bytes());
                block[2..4].copy_from_slice(&m.to_le_bytes());
            }
            let odd_s = q4_1::for_this_build(&odd, blocks);
            t41.add(
                &[q4_1::dot_in_order(&odd_s, &p41[0])],
                &[q4_1::portable_in_order(&odd, &p41[0])],
            );
            // Q5_0's decoding widens its scales the same way (`q5_0::relaxed::in_order`).
            let mut odd50 = w50.clone();
            for (b, block) in odd50.chunks_exact_mut(q5_0::BLOCK_BYTES).enumerate() {
                let d = [0x0000u16, 0x8001, 0x03ff, 0x0400, 0xac00, 0x3c00][(b + col as usize) % 6];
                block[..2].copy_from_slice(&d.to_le_bytes());
            }
            t50.add(
                &[q5_0::dot_in_order(
                    &q5_0::for_this_build(&odd50, blocks),
                    &p50[0],
                )],
                &[q5_0::portable_in_order(&odd50, &p50[0])],
            );
            let tile = q4_1::Tile::new(&p41);
            let mut got = vec![0f32; q4_1::TILE_ROWS];
            q4_1::dot_tile(&odd_s, &tile, &mut got);
            let want: Vec<f32> = (0..q4_1::TILE_ROWS)
                .map(|j| q4_1::portable(&odd, [&p41[j]])[0])
                .collect();
            t41.add(&got, &want);
            // Q5_0's SIMD forms read rows as this build lays them out (`q5_0::arrange` in the
            // relaxed build), its portable form as stored.
            let other = block_bytes::<BlockQ5_0>(&more);
            t50.add(
                &[
                    q5_0::dot_in_order(&w50s, &p50[0]),
                    q5_0::dot_in_order(&q5_0::for_this_build(&other, blocks), &p50[0]),
                ],
                &[
                    q5_0::portable_in_order(&w50, &p50[0]),
                    q5_0::portable_in_order(&other, &p50[0]),
                ],
            );
        }
    }
    out.extend([t8.row, t41.row, t50.row]);

    // 256-value blocks: one and three per row.
    let mut t4k = Tally::new("Q4_K", true);
    let mut t6k = Tally::new("Q6_K", true);
    for (i, blocks) in [1usize, 3].into_iter().enumerate() {
        let k = 256 * blocks;
        // Eight rows: a whole prefill tile.
        let x: Vec<Vec<f32>> = (0..8)
            .map(|r| values(k, 500 + r + 10 * i as u32, 0.05))
            .collect();
        let mut a = vec![vec![0u8; blocks * k_quants::ACT_BLOCK_BYTES]; 8];
        for r in 0..8 {
            act_quant::q8_k(&x[r], &mut a[r]);
        }
        let p: Vec<k_quants::Activation> = a.iter().map(|b| k_quants::Activation::new(b)).collect();
        for col in 0..6u32 {
            let w = values(k, 900 + col + 31 * i as u32, 0.1 * col as f32 - 0.2);
            let (w4, w6) = (block_bytes::<BlockQ4K>(&w), block_bytes::<BlockQ6K>(&w));
            // The relaxed build multiplies Q6_K widened at load; every build checks that form.
            let w6w = k_quants::q6k_widen(&w6);
            for r in 1..=4 {
                let want = |f: &dyn Fn(usize) -> f32| (0..r).map(f).collect::<Vec<f32>>();
                t4k.add(
                    &rows!(k_quants::q4k_dot_rows, &w4, &p, r),
                    &want(&|j| k_quants::q4k_portable(&w4, [&p[j]])[0]),
                );
                t6k.add(
                    &rows!(k_quants::q6k_wide_dot_rows, &w6w, &p, r),
                    &want(&|j| k_quants::q6k_portable(&w6, [&p[j]])[0]),
                );
                // Stored rows too: a tied output layer shares the embedding table's blocks.
                t6k.add(
                    &rows!(k_quants::q6k_dot_rows, &w6, &p, r),
                    &want(&|j| k_quants::q6k_portable(&w6, [&p[j]])[0]),
                );
            }
            // Prefill's tiles of one to eight rows, in this build's form and the portable one.
            for r in 1..=k_quants::TILE_ROWS {
                let tile = k_quants::Tile::new(&p[..r]);
                let mut got = vec![0f32; r];
                let want4: Vec<f32> = (0..r)
                    .map(|j| k_quants::q4k_portable(&w4, [&p[j]])[0])
                    .collect();
                let want6: Vec<f32> = (0..r)
                    .map(|j| k_quants::q6k_portable(&w6, [&p[j]])[0])
                    .collect();
                k_quants::q4k_dot_tile(&w4, &tile, &mut got);
                t4k.add(&got, &want4);
                k_quants::q4k_portable_tile(&w4, &tile, &mut got);
                t4k.add(&got, &want4);
                k_quants::q6k_wide_dot_tile(&w6w, &tile, &mut got);
                t6k.add(&got, &want6);
                k_quants::q6k_dot_tile(&w6, &tile, &mut got);
                t6k.add(&got, &want6);
                k_quants::q6k_portable_tile(&w6, &tile, &mut got);
                t6k.add(&got, &want6);
            }
        }
    }
    out.extend([t4k.row, t6k.row]);
    out
}

/// The activations' block quantization (`act_quant::quantize_block`; four lanes at a time in
/// both wasm builds) against its portable loop: each of a block's 32 bytes and their sum, for
/// blocks at ggml's own scale (127/amax), at halves that round to even, at a scale that
/// overflows i8 and one that is infinite, and with NaN and infinities among the values.
fn activation_quantization() -> KernelCheck {
    use super::act_quant::{quantize_block, quantize_block_portable};
    let mut t = Tally::new("activation quantization", true);
    for i in 0..8u32 {
        let mut xs: Vec<f32> = values(32, 6000 + i, 0.0)
            .into_iter()
            .map(|v| v * 3.0)
            .collect();
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        let id = match i {
            // Every value an odd number of halves: each rounds to even.
            2 => {
                for (j, x) in xs.iter_mut().enumerate() {
                    *x = (j as f32 - 16.0) + 0.5;
                }
                1.0
            }
            // Past i8 on both sides: the cast saturates.
            3 => 300.0 / amax,
            4 => f32::INFINITY,
            5 => {
                xs[7] = f32::NAN;
                xs[8] = f32::INFINITY;
                xs[20] = f32::NEG_INFINITY;
                127.0 / amax
            }
            _ => 127.0 / amax,
        };
        let (mut got, mut want) = ([0u8; 32], [0u8; 32]);
        let sums = [
            quantize_block(&xs, id, &mut got),
            quantize_block_portable(&xs, id, &mut want),
        ];
        let as_f32 = |b: &[u8; 32], sum: i32| -> Vec<f32> {
            b.iter()
                .map(|&q| q as i8 as f32)
                .chain([sum as f32])
                .collect()
        };
        t.add(&as_f32(&got, sums[0]), &as_f32(&want, sums[1]));
    }
    t.row
}

/// Attention's f32 loops (`weight::dot_f32_many`, `weight::add_weighted4`; simd128 in both
/// wasm builds) against the plain loops whose bits they must have, at head sizes with and
/// without a tail past the last four values.
fn attention_f32() -> KernelCheck {
    use super::weight::{add_weighted4, dot_f32, dot_f32_many};
    let mut t = Tally::new("f32 attention", true);
    for (i, len) in [1usize, 3, 4, 7, 64, 66, 128, 256].into_iter().enumerate() {
        let seed = 4000 + 10 * i as u32;
        let q = values(len, seed, 0.0);
        let v: Vec<Vec<f32>> = (0..4).map(|n| values(len, seed + 1 + n, 0.02)).collect();
        let v = [&v[0][..], &v[1], &v[2], &v[3]];
        let want: Vec<f32> = v.iter().map(|b| dot_f32(&q, b)).collect();
        t.add(&dot_f32_many(&q, v), &want);
        let p = [0.4, 0.3, 0.2, 0.1];
        let mut got = values(len, seed + 9, 0.0);
        let mut want = got.clone();
        add_weighted4(&mut got, p, v);
        for (j, a) in want.iter_mut().enumerate() {
            *a = *a + p[0] * v[0][j] + p[1] * v[1][j] + p[2] * v[2][j] + p[3] * v[3][j];
        }
        t.add(&got, &want);
    }
    t.row
}

/// The token statistics' chunk sums (`stats::chunk_moments`; f32x4 lanes in both wasm builds)
/// against their portable loop, on chunks with and without a tail past the last eight
/// values, with logits far below the maximum, NaN and infinities among them, and a maximum or
/// chosen logit that is infinite.
fn token_statistics() -> KernelCheck {
    use super::stats::{chunk_moments, chunk_moments_portable};
    let mut t = Tally::new("token statistics", true);
    for (i, len) in [1usize, 7, 8, 13, 64, 100, 512, 509]
        .into_iter()
        .enumerate()
    {
        let mut logits: Vec<f32> = values(len, 5000 + i as u32, 0.0)
            .into_iter()
            .map(|v| v * 240.0)
            .collect();
        for (at, special) in [(3, f32::NAN), (5, f32::INFINITY), (6, f32::NEG_INFINITY)] {
            if at < len && i % 2 == 1 {
                logits[at] = special;
            }
        }
        for (max, chosen) in [
            (120.0, 3.0),
            (30.0, -50.0),
            (f32::INFINITY, 1.0),
            (0.0, f32::NEG_INFINITY),
        ] {
            let got = chunk_moments(&logits, max, chosen);
            let want = chunk_moments_portable(&logits, max, chosen);
            t.add_f64(&got, &want);
        }
    }
    t.row
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Natively: the portable forms against themselves where there is no native SIMD form, and
    /// the AVX2 forms of Q8_0, Q4_1 and Q5_0 bit for bit. The wasm forms are the browser tests'.
    #[test]
    fn this_builds_kernels_agree_with_their_reference() {
        let rows = run();
        assert_eq!(rows.len(), 8);
        for r in rows {
            // Sizes × columns × (1 + 2 + 3 + 4 rows), plus the 32-value types' 2 rows read in
            // order.
            let expected = match r.kernel.as_str() {
                // Plus tiles of 1 to 8 rows, in this build's form and the portable one.
                "Q4_K" => 2 * 6 * (10 + 2 * 36),
                // Rows and tiles widened and stored, and tiles in the portable form.
                "Q6_K" => 2 * 6 * (2 * 10 + 3 * 36),
                // Plus odd scales: one row in order.
                "Q5_0" => 4 * 6 * (10 + 2 + 2 * 36 + 1),
                // Plus odd scales and minimums: one row in order and a tile of eight.
                "Q4_1" => 4 * 6 * (10 + 2 + 2 * 36 + 1 + 8),
                // Plus weights holding −128 (4 rows, 1 row in order).
                // Stored, arranged and arranged read by the portable form; in order, stored
                // and arranged; −128s, stored and arranged.
                "Q8_0" => 4 * 6 * (3 * 10 + 2 + 2 + 2 * (4 + 1)),
                // Four dot products and a row of weighted sums at each of eight lengths.
                "f32 attention" => 8 * 4 + (1 + 3 + 4 + 7 + 64 + 66 + 128 + 256),
                // Four sums at eight lengths and four (maximum, chosen) pairs.
                "token statistics" => 8 * 4 * 4,
                // Eight blocks of 32 bytes and their sum.
                "activation quantization" => 8 * 33,
                other => unreachable!("no kernel named {other}"),
            };
            assert_eq!(r.products, expected, "{r:?}");
            if r.exact {
                assert_eq!(r.equal, r.products, "{r:?}");
            }
            assert!(r.max_rel_diff < 1e-5, "{r:?}");
        }
    }
}
