//! Activations quantized for the engine's own kernels the way llama.cpp's x86 build does it
//! (ggml's AVX2 `quantize_row_q8_0` and `quantize_row_q8_1`, and `quantize_row_q8_K`), in the
//! byte layout of candle's block types. candle's `from_float` differs in ways that matter
//! for fidelity: it rounds halves away from zero where ggml rounds them to even, scales by
//! 1/(amax/127) where ggml scales by 127/amax, and stores Q8_1's block sum as
//! f16(f16(Σq)·f16(d)) where ggml stores f16(Σq·d), which moved every Q4_1 block's minimum
//! term (all of SmolLM2's weights) by up to an f16 step.

use half::f16;

/// Q8_0: f16 d, 32 signed bytes. `out` holds `x.len() / 32` blocks of 34 bytes.
pub fn q8_0(x: &[f32], out: &mut [u8]) {
    for (xs, block) in x.chunks_exact(32).zip(out.chunks_exact_mut(34)) {
        let (d, id) = scales(xs);
        block[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        quantize_block(xs, id, &mut block[2..]);
    }
}

/// Q8_1: f16 d, f16 s = d·Σq, 32 signed bytes. `out` holds blocks of 36 bytes.
pub fn q8_1(x: &[f32], out: &mut [u8]) {
    for (xs, block) in x.chunks_exact(32).zip(out.chunks_exact_mut(36)) {
        let (d, id) = scales(xs);
        let sum = quantize_block(xs, id, &mut block[4..]);
        block[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        block[2..4].copy_from_slice(&f16::from_f32(d * sum as f32).to_le_bytes());
    }
}

/// Q8_K: f32 d, 256 signed bytes, 16 i16 sums of 16. `out` holds blocks of 292 bytes.
pub fn q8_k(x: &[f32], out: &mut [u8]) {
    for (xs, block) in x.chunks_exact(256).zip(out.chunks_exact_mut(292)) {
        // The value of largest magnitude, with its sign: it maps to −127 exactly. The first
        // of equal magnitudes, as ggml's loop keeps it.
        let amax = abs_max(xs);
        let max = xs.iter().copied().find(|v| v.abs() == amax).unwrap_or(0.0);
        if amax == 0.0 || amax.is_nan() {
            block.fill(0);
            if amax.is_nan() {
                block[..4].copy_from_slice(&f32::NAN.to_le_bytes());
            }
            continue;
        }
        let iscale = -127.0 / max;
        for (q, v) in block[4..260].iter_mut().zip(xs) {
            *q = ((iscale * v).round_ties_even() as i32).min(127) as i8 as u8;
        }
        for g in 0..16 {
            let s: i32 = block[4 + 16 * g..4 + 16 * (g + 1)]
                .iter()
                .map(|&q| q as i8 as i32)
                .sum();
            block[260 + 2 * g..262 + 2 * g].copy_from_slice(&(s as i16).to_le_bytes());
        }
        block[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}

/// Q8_0 blocks whose values lie on Q8_K's grid: one scale per 256 values (the value of
/// largest magnitude maps to −127), written into each of their eight blocks. llama.cpp
/// multiplies IQ4_XS weights with Q8_K activations; their IQ4_XS matrices, read as Q8_0
/// (`iq4`), take these so that their products round the activations as llama.cpp does, not
/// per 32 values (which on a tiny model moved surprisals 1.5× llama.cpp's own spread). The
/// f32 scale becomes f16, as every Q8_0 activation scale does. `x.len()` is whole blocks of
/// 256 (`gguf` refuses IQ4_XS rows that are not).
pub fn q8_0_on_k_grid(x: &[f32], out: &mut [u8]) {
    for (xs, blocks) in x.chunks_exact(256).zip(out.chunks_exact_mut(8 * 34)) {
        let amax = abs_max(xs);
        let max = xs.iter().copied().find(|v| v.abs() == amax).unwrap_or(0.0);
        if amax == 0.0 || amax.is_nan() {
            blocks.fill(0);
            if amax.is_nan() {
                for b in blocks.chunks_exact_mut(34) {
                    b[..2].copy_from_slice(&f16::NAN.to_le_bytes());
                }
            }
            continue;
        }
        let iscale = -127.0 / max;
        let d = f16::from_f32(1.0 / iscale).to_le_bytes();
        for (b, vs) in blocks.chunks_exact_mut(34).zip(xs.chunks_exact(32)) {
            b[..2].copy_from_slice(&d);
            for (q, v) in b[2..].iter_mut().zip(vs) {
                *q = ((iscale * v).round_ties_even() as i32).min(127) as i8 as u8;
            }
        }
    }
}

/// Copies one row's block of quantized values into a prefill tile (`q4_1::Tile`,
/// `q5_0::Tile`, `k_quants::Tile`): lane `l` of each of `groups`' vectors gets the next four
/// values, so that a lane holds four consecutive values of one row.
pub fn into_lanes(groups: &mut [[u8; 16]], l: usize, values: &[u8]) {
    for (group, four) in groups.iter_mut().zip(values.chunks_exact(4)) {
        group[4 * l..4 * l + 4].copy_from_slice(four);
    }
}

/// The largest |x| (0 for none), in eight lanes so that it vectorizes: a maximum does not
/// depend on the order it is taken in. NaN when any value is NaN: a block scale of NaN carries
/// it into the product, where skipping it would have quantized a NaN activation to 0 and the
/// model's broken numbers would have come out as plausible ones (`model::logits_rows`
/// refuses NaN scores).
fn abs_max(xs: &[f32]) -> f32 {
    let mut m = [0f32; 8];
    let mut nan = [false; 8];
    let mut groups = xs.chunks_exact(8);
    for g in &mut groups {
        for j in 0..8 {
            let a = g[j].abs();
            nan[j] |= a.is_nan();
            m[j] = if a > m[j] { a } else { m[j] };
        }
    }
    let tail = groups.remainder();
    if nan.contains(&true) || tail.iter().any(|v| v.is_nan()) {
        return f32::NAN;
    }
    m.into_iter()
        .chain(tail.iter().map(|v| v.abs()))
        .fold(0f32, |a, b| if b > a { b } else { a })
}

/// A block's 32 values times `id`, rounded half to even and saturated to i8 (NaN to 0), into
/// `out`'s 32 bytes; returns the sum of the bytes as signed values. In wasm four lanes at a
/// time (`quantize_block_portable`'s bytes: the same multiply and rounding, and saturating
/// narrowings for the cast): one value at a time it was 2.5% of the page's worker's time.
#[inline(always)]
pub fn quantize_block(xs: &[f32], id: f32, out: &mut [u8]) -> i32 {
    let (xs, out) = (&xs[..32], &mut out[..32]);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        use core::arch::wasm32::*;
        let idv = f32x4_splat(id);
        let mut sum = i32x4_splat(0);
        for half in 0..2 {
            let q = |k: usize| {
                // SAFETY: `xs` holds 32 values, and 16·half + 4k + 4 ≤ 32.
                let v = unsafe { v128_load(xs.as_ptr().add(16 * half + 4 * k) as *const v128) };
                i32x4_trunc_sat_f32x4(f32x4_nearest(f32x4_mul(v, idv)))
            };
            let bytes = i8x16_narrow_i16x8(
                i16x8_narrow_i32x4(q(0), q(1)),
                i16x8_narrow_i32x4(q(2), q(3)),
            );
            // SAFETY: `out` holds 32 bytes.
            unsafe { v128_store(out.as_mut_ptr().add(16 * half) as *mut v128, bytes) };
            sum = i32x4_add(
                sum,
                i32x4_extadd_pairwise_i16x8(i16x8_extadd_pairwise_i8x16(bytes)),
            );
        }
        i32x4_extract_lane::<0>(sum)
            + i32x4_extract_lane::<1>(sum)
            + i32x4_extract_lane::<2>(sum)
            + i32x4_extract_lane::<3>(sum)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        quantize_block_portable(xs, id, out)
    }
}

/// `quantize_block` one value at a time: the reference for its bytes (`kernel_check`).
pub fn quantize_block_portable(xs: &[f32], id: f32, out: &mut [u8]) -> i32 {
    let mut sum = 0i32;
    for (q, v) in out[..32].iter_mut().zip(&xs[..32]) {
        let r = (v * id).round_ties_even() as i8;
        sum += r as i32;
        *q = r as u8;
    }
    sum
}

/// ggml's block scale and its inverse: d = amax/127, id = 127/amax (0 for a zero block).
fn scales(xs: &[f32]) -> (f32, f32) {
    let amax = abs_max(xs);
    let d = amax / 127.0;
    (d, if amax != 0.0 { 127.0 / amax } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_data::{bytes, quantize, values};
    use candle_core::quantized::k_quants::{BlockQ8K, BlockQ8_0, BlockQ8_1};

    /// IQ4_XS's activations: Q8_K's values exactly, its scale in each of the eight Q8_0 blocks
    /// as f16; a zero row stays zero and a NaN goes on as NaN.
    #[test]
    fn q8_0_on_k_grid_holds_q8_ks_values() {
        let mut x = values(256 * 3, 21);
        x[256..512].fill(0.0);
        let mut k = vec![0u8; 3 * 292];
        q8_k(&x, &mut k);
        let mut ours = vec![0u8; 3 * 8 * 34];
        q8_0_on_k_grid(&x, &mut ours);
        for (kb, ob) in k.chunks_exact(292).zip(ours.chunks_exact(8 * 34)) {
            let d = f32::from_le_bytes([kb[0], kb[1], kb[2], kb[3]]);
            for (j, b) in ob.chunks_exact(34).enumerate() {
                assert_eq!(&b[2..], &kb[4 + 32 * j..4 + 32 * (j + 1)]);
                assert_eq!(f16::from_le_bytes([b[0], b[1]]), f16::from_f32(d));
            }
        }
        assert!(ours[8 * 34..16 * 34].iter().all(|&b| b == 0));
        x[3] = f32::NAN;
        q8_0_on_k_grid(&x, &mut ours);
        assert!(f16::from_le_bytes([ours[0], ours[1]]).is_nan());
    }

    /// Against candle's quantizers: the same layout, and the same values except where the two
    /// roundings part (a half step, or Q8_1's sum in f16).
    #[test]
    fn layouts_match_candle_and_differences_are_rounding() {
        let x = values(256 * 4, 9);
        let mut ours = vec![0u8; x.len() / 32 * 34];
        q8_0(&x, &mut ours);
        let theirs = bytes(&quantize::<BlockQ8_0>(&x));
        let differ = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
        assert!(
            differ <= ours.len() / 50,
            "{differ} of {} bytes differ",
            ours.len()
        );

        let mut ours = vec![0u8; x.len() / 32 * 36];
        q8_1(&x, &mut ours);
        let theirs = bytes(&quantize::<BlockQ8_1>(&x));
        for (a, b) in ours.chunks_exact(36).zip(theirs.chunks_exact(36)) {
            assert_eq!(a[..2], b[..2], "d");
            let q = |v: &[u8]| v[4..].iter().map(|&q| q as i8 as i32).sum::<i32>();
            // ggml's s is d·Σq rounded once, d in f32: within one f16 step of the stored d's.
            let d = f16::from_le_bytes([a[0], a[1]]).to_f32();
            let (s, want) = (f16::from_le_bytes([a[2], a[3]]).to_f32(), d * q(a) as f32);
            assert!((s - want).abs() <= want.abs() / 512.0, "{s} vs {want}");
        }

        let mut ours = vec![0u8; x.len() / 256 * 292];
        q8_k(&x, &mut ours);
        let theirs = bytes(&quantize::<BlockQ8K>(&x));
        for (a, b) in ours.chunks_exact(292).zip(theirs.chunks_exact(292)) {
            assert_eq!(a[..4], b[..4], "d");
            let differ = a[4..260]
                .iter()
                .zip(&b[4..260])
                .filter(|(p, q)| p != q)
                .count();
            assert!(differ <= 4, "{differ} values differ");
        }
    }

    #[test]
    fn halves_round_to_even_and_zero_blocks_stay_zero() {
        // amax 127 → id 1: 2.5 → 2, 3.5 → 4, −2.5 → −2.
        let mut x = vec![0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = 3.5;
        x[3] = -2.5;
        let mut out = vec![0u8; 34];
        q8_0(&x, &mut out);
        assert_eq!(
            out[2..6].iter().map(|&q| q as i8).collect::<Vec<_>>(),
            [127, 2, 4, -2]
        );
        let mut out = vec![1u8; 292];
        q8_k(&[0f32; 256], &mut out);
        assert!(out.iter().all(|&b| b == 0));
    }

    /// Q8_K maps the first value of largest magnitude to −127, whatever the sign of a later
    /// value of the same magnitude (ggml's loop keeps the first).
    #[test]
    fn q8_k_scales_by_the_first_of_equal_magnitudes() {
        for (first, later) in [(-2.0f32, 2.0f32), (2.0, -2.0)] {
            let mut x = vec![0.5f32; 256];
            x[3] = first;
            x[200] = later;
            let mut out = vec![0u8; 292];
            q8_k(&x, &mut out);
            assert_eq!(out[4 + 3] as i8, -127, "first {first}");
            assert_eq!(out[4 + 200] as i8, 127, "first {first}");
            let d = f32::from_le_bytes([out[0], out[1], out[2], out[3]]);
            assert_eq!(d, -first / 127.0);
        }
    }
}
