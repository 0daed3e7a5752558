//! The engine's own Q4_1 × Q8_1 kernel for wasm, so Q4_1 weights (all of SmolLM2's) stay at 5
//! bits per weight instead of being requantized to Q8_0 (8.5 bits) at load.
//!
//! Why: decoding streams every weight once per token, and on the 2-core benchmark machine a
//! streaming product is bound by memory bandwidth (a 30 MB Q8_0 product ran no faster on two
//! threads than on one). Fewer bytes per token is the lever for decode speed, for threads to
//! pay off, and for the wasm heap. candle's Q4_1 dot product has no simd128 form (it is
//! scalar on wasm), hence this one. Arithmetic per block is ggml's `vec_dot_q4_1_q8_1`:
//! `d_x·d_y·Σ q4·q8 + m_x·s_y`, accumulated in a different order than candle's scalar loop
//! (f32 rounding differs in the last bits).

use super::q8_0::f16_to_f32;

/// candle's `#[repr(C)] BlockQ4_1`: f16 d, f16 m, 16 bytes of nibbles.
pub const BLOCK_BYTES: usize = 20;
/// candle's `#[repr(C)] BlockQ8_1`: f16 d, f16 s (= d·Σq), 32 signed bytes.
pub const ACT_BLOCK_BYTES: usize = 36;
pub const BLOCK: usize = 32;

#[inline(always)]
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// One activation row quantized to Q8_1, with its scales converted once.
pub struct Activation<'a> {
    #[cfg_attr(
        all(target_arch = "wasm32", target_feature = "simd128"),
        allow(dead_code)
    )]
    blocks: &'a [u8],
    d: Vec<f32>,
    s: Vec<f32>,
    /// The row's bytes sign-extended to i16, four vectors per block, once per product.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    wide: Vec<core::arch::wasm32::v128>,
}

impl<'a> Activation<'a> {
    pub fn new(blocks: &'a [u8]) -> Self {
        let d = blocks
            .chunks_exact(ACT_BLOCK_BYTES)
            .map(|b| f16_at(b, 0))
            .collect();
        let s = blocks
            .chunks_exact(ACT_BLOCK_BYTES)
            .map(|b| f16_at(b, 2))
            .collect();
        Activation {
            blocks,
            d,
            s,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            wide: simd::widen(blocks),
        }
    }
}

/// The dot product of one Q4_1 weight row with `y`.
pub fn dot(w: &[u8], y: &Activation) -> f32 {
    let n = y.d.len();
    assert!(w.len() == n * BLOCK_BYTES);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: length checked above; `wide` holds four vectors per block; wasm loads need
        // no alignment.
        unsafe { simd::dot(w, y, super::q8_0::scale_table()) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        let mut lanes = [0f32; 4];
        let mut mins = 0f32;
        for b in 0..n {
            let wb = &w[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES];
            let yq = &y.blocks[b * ACT_BLOCK_BYTES + 4..(b + 1) * ACT_BLOCK_BYTES];
            // Lane l of the simd form sums elements i ≡ 2l, 2l+1 (mod 8).
            let mut sums = [0i32; 4];
            for j in 0..16 {
                let lo = (wb[4 + j] & 0x0f) as i32;
                let hi = (wb[4 + j] >> 4) as i32;
                sums[(j % 8) / 2] += lo * yq[j] as i8 as i32 + hi * yq[16 + j] as i8 as i32;
            }
            let d = f16_at(wb, 0) * y.d[b];
            for (lane, s) in lanes.iter_mut().zip(sums) {
                *lane += s as f32 * d;
            }
            mins += f16_at(wb, 2) * y.s[b];
        }
        lanes[0] + lanes[1] + lanes[2] + lanes[3] + mins
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use super::{Activation, ACT_BLOCK_BYTES, BLOCK_BYTES};
    use core::arch::wasm32::*;

    pub fn widen(blocks: &[u8]) -> Vec<v128> {
        crate::engine::q8_0::simd::widen_blocks(blocks, ACT_BLOCK_BYTES, 4)
    }

    /// # Safety
    /// `at` points at two readable bytes, and `table` has all 65,536 f16 values.
    #[inline(always)]
    unsafe fn half(table: &[f32], at: *const u8) -> f32 {
        *table.get_unchecked(u16::from_le_bytes([*at, *at.add(1)]) as usize)
    }

    /// One column at a time, front to back; see `q8_0::simd::dot` for why not four at once.
    ///
    /// # Safety
    /// `w` holds one block of `BLOCK_BYTES` per activation block of `y`, and `table` is
    /// `q8_0::scale_table()` (the caller, `super::dot`, checks the length).
    pub unsafe fn dot(w: &[u8], y: &Activation, table: &[f32]) -> f32 {
        let mut acc = f32x4_splat(0.0);
        let mut mins = 0f32;
        let low = u8x16_splat(0x0f);
        let (w, wide) = (w.as_ptr(), y.wide.as_ptr());
        for b in 0..y.d.len() {
            let wb = w.add(b * BLOCK_BYTES);
            let yv = wide.add(4 * b);
            let q = v128_load(wb.add(4) as *const v128);
            let lo = v128_and(q, low);
            let hi = u8x16_shr(q, 4);
            let s = i32x4_dot_i16x8(u16x8_extend_low_u8x16(lo), *yv);
            let s = i32x4_add(s, i32x4_dot_i16x8(u16x8_extend_high_u8x16(lo), *yv.add(1)));
            let s = i32x4_add(s, i32x4_dot_i16x8(u16x8_extend_low_u8x16(hi), *yv.add(2)));
            let s = i32x4_add(s, i32x4_dot_i16x8(u16x8_extend_high_u8x16(hi), *yv.add(3)));
            let d = half(table, wb) * *y.d.get_unchecked(b);
            acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(s), f32x4_splat(d)));
            mins += half(table, wb.add(2)) * *y.s.get_unchecked(b);
        }
        f32x4_extract_lane::<0>(acc)
            + f32x4_extract_lane::<1>(acc)
            + f32x4_extract_lane::<2>(acc)
            + f32x4_extract_lane::<3>(acc)
            + mins
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_data::{bytes, quantize, values};
    use candle_core::quantized::k_quants::{BlockQ4_1, BlockQ8_1, GgmlType};

    #[test]
    fn dot_matches_candle_within_rounding() {
        let k = 32 * 18;
        // Shifted off zero, so the blocks' minimums matter.
        let vals = |seed: u32| -> Vec<f32> { values(k, seed).iter().map(|v| v + 0.2).collect() };
        let y: Vec<BlockQ8_1> = quantize(&vals(1));
        let rows: Vec<Vec<BlockQ4_1>> = (0..4).map(|i| quantize(&vals(10 + i))).collect();
        let yb = bytes(&y);
        let rb: Vec<Vec<u8>> = rows.iter().map(|r| bytes(r)).collect();
        assert_eq!(rb[0].len(), k / 32 * BLOCK_BYTES);
        let act = Activation::new(&yb);
        for (rbytes, r) in rb.iter().zip(&rows) {
            let o = dot(rbytes, &act);
            let theirs = BlockQ4_1::vec_dot(k, r, &y);
            assert!(
                (o - theirs).abs() <= 1e-4 * theirs.abs().max(1.0),
                "{o} vs {theirs}"
            );
        }
    }
}
