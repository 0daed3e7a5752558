//! The engine's own Q8_0 × Q8_0 kernel, used on wasm for Q8_0 weights (most weights, after the
//! load-time requantization in `model::weight_matmul`): decode, prefill and scoring.
//!
//! candle's simd128 `vec_dot` converts both f16 block scales in software for every block of
//! every column and re-extends the activation's bytes for every column. Here the activation row
//! is widened to i16 once per product, its scales are converted once, and the weight scales
//! come from a 64k-entry table. Per block the arithmetic is candle's own (32-lane i32 dot, then
//! `sum as f32 * (dx * dy)` added into four f32 lanes summed in order 0, 1, 2, 3), so results
//! are the same bits.

/// Bytes per block: an f16 scale, then 32 signed bytes (candle's `#[repr(C)] BlockQ8_0`).
pub const BLOCK_BYTES: usize = 34;
pub const BLOCK: usize = 32;

/// f16 bits to f32, exactly (normals, subnormals, infinities, NaN).
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = man · 2^-24, exact in f32.
            let v = man as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Every f16 value as f32: a table lookup beat converting inline in the kernels (measured:
/// SmolLM2 prefill 121 against 90 tokens/s with the Q8_0 kernel).
pub(crate) fn scale_table() -> &'static [f32] {
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| (0..=u16::MAX).map(f16_to_f32).collect())
}

fn scale_at(table: &[f32], block: &[u8]) -> f32 {
    table[u16::from_le_bytes([block[0], block[1]]) as usize]
}

/// One quantized activation row, prepared for many columns.
pub struct Activation<'a> {
    #[cfg_attr(
        all(target_arch = "wasm32", target_feature = "simd128"),
        allow(dead_code)
    )]
    blocks: &'a [u8],
    scales: Vec<f32>,
    /// The row's bytes sign-extended to i16, four vectors per block, done once per product
    /// rather than once per column.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    wide: Vec<core::arch::wasm32::v128>,
}

impl<'a> Activation<'a> {
    /// `blocks` are the row's Q8_0 blocks as bytes (`BLOCK_BYTES` each).
    pub fn new(blocks: &'a [u8]) -> Self {
        let table = scale_table();
        let scales = blocks
            .chunks_exact(BLOCK_BYTES)
            .map(|b| scale_at(table, b))
            .collect();
        Activation {
            blocks,
            scales,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            wide: simd::widen(blocks),
        }
    }
}

/// The dot product of one weight row (Q8_0 bytes, as many blocks as the activation) with `y`.
pub fn dot(w: &[u8], y: &Activation) -> f32 {
    let n = y.scales.len();
    assert!(w.len() == n * BLOCK_BYTES);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: length checked above; `wide` holds four vectors per block; wasm loads need
        // no alignment.
        unsafe { simd::dot(w, y, scale_table()) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        let table = scale_table();
        let mut lanes = [0f32; 4];
        for b in 0..n {
            let wb = &w[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES];
            let yb = &y.blocks[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES];
            let d = scale_at(table, wb) * y.scales[b];
            // Lane l sums byte pairs at i ≡ 2l, 2l+1 (mod 8), as i32x4_dot_i16x8 does.
            let mut sums = [0i32; 4];
            for i in 0..BLOCK {
                sums[(i % 8) / 2] += wb[2 + i] as i8 as i32 * yb[2 + i] as i8 as i32;
            }
            for (lane, s) in lanes.iter_mut().zip(sums) {
                *lane += s as f32 * d;
            }
        }
        lanes[0] + lanes[1] + lanes[2] + lanes[3]
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) mod simd {
    use super::{Activation, BLOCK_BYTES};
    use core::arch::wasm32::*;

    pub fn widen(blocks: &[u8]) -> Vec<v128> {
        widen_blocks(blocks, BLOCK_BYTES, 2)
    }

    /// The 32 signed bytes after `header` bytes of every `block_bytes`-long block, as four
    /// i16x8 vectors per block (Q8_0: a 2-byte scale; Q8_1: two 2-byte scales).
    pub fn widen_blocks(blocks: &[u8], block_bytes: usize, header: usize) -> Vec<v128> {
        assert!(block_bytes >= header + 32);
        blocks
            .chunks_exact(block_bytes)
            .flat_map(|b| {
                let q = b[header..].as_ptr() as *const i8;
                // SAFETY: asserted above, 32 bytes follow the header in every block.
                unsafe { [0, 8, 16, 24].map(|o| i16x8_load_extend_i8x8(q.add(o))) }
            })
            .collect()
    }

    /// One column at a time, its bytes read front to back. Four columns interleaved per block
    /// (the earlier form, sharing each activation load) was much slower on one-row products:
    /// Gemma 3 decode 13.8 against 30.8 tokens/s.
    ///
    /// # Safety
    /// `w` holds one block of `BLOCK_BYTES` per activation block of `y`, and `table` is
    /// `scale_table()` (the caller, `super::dot`, checks the length).
    pub unsafe fn dot(w: &[u8], y: &Activation, table: &[f32]) -> f32 {
        let mut acc = f32x4_splat(0.0);
        let (w, wide) = (w.as_ptr(), y.wide.as_ptr());
        for (b, &dy) in y.scales.iter().enumerate() {
            let wb = w.add(b * BLOCK_BYTES);
            let q = wb.add(2) as *const i8;
            let yv = wide.add(4 * b);
            let s = i32x4_dot_i16x8(i16x8_load_extend_i8x8(q), *yv);
            let s = i32x4_add(
                s,
                i32x4_dot_i16x8(i16x8_load_extend_i8x8(q.add(8)), *yv.add(1)),
            );
            let s = i32x4_add(
                s,
                i32x4_dot_i16x8(i16x8_load_extend_i8x8(q.add(16)), *yv.add(2)),
            );
            let s = i32x4_add(
                s,
                i32x4_dot_i16x8(i16x8_load_extend_i8x8(q.add(24)), *yv.add(3)),
            );
            let dw = *table.get_unchecked(u16::from_le_bytes([*wb, *wb.add(1)]) as usize);
            acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(s), f32x4_splat(dw * dy)));
        }
        f32x4_extract_lane::<0>(acc)
            + f32x4_extract_lane::<1>(acc)
            + f32x4_extract_lane::<2>(acc)
            + f32x4_extract_lane::<3>(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_data::{bytes, quantize, values};
    use candle_core::quantized::k_quants::{BlockQ8_0, GgmlType};

    #[test]
    fn f16_conversion_is_exact() {
        for bits in (0..=u16::MAX).step_by(7) {
            let ours = f16_to_f32(bits);
            let h = half_reference(bits);
            assert!(
                ours.to_bits() == h.to_bits() || (ours.is_nan() && h.is_nan()),
                "{bits:#x}"
            );
        }
    }

    /// The textbook formula, in f64, as an independent reference.
    fn half_reference(bits: u16) -> f32 {
        let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
        let exp = ((bits >> 10) & 0x1f) as i32;
        let man = (bits & 0x3ff) as f64;
        let v = match exp {
            0 => man * 2f64.powi(-24),
            0x1f if man == 0.0 => f64::INFINITY,
            0x1f => f64::NAN,
            e => (1.0 + man / 1024.0) * 2f64.powi(e - 15),
        };
        (sign * v) as f32
    }

    #[test]
    fn dot_matches_candle_within_rounding() {
        let k = 32 * 18;
        let y: Vec<BlockQ8_0> = quantize(&values(k, 1));
        let rows: Vec<Vec<BlockQ8_0>> = (0..4).map(|i| quantize(&values(k, 10 + i))).collect();
        let yb = bytes(&y);
        let act = Activation::new(&yb);
        for r in &rows {
            let o = dot(&bytes(r), &act);
            let theirs = BlockQ8_0::vec_dot(k, r, &y);
            assert!(
                (o - theirs).abs() <= 1e-4 * theirs.abs().max(1.0),
                "{o} vs {theirs}"
            );
        }
    }
}
