//! The engine's own Q5_0 × Q8_0 kernel, for the relaxed-SIMD wasm build, so Q5_0 weights (most
//! of Gemma 3's and Qwen2.5's) stay at 5.5 bits per weight instead of being requantized to
//! Q8_0 (8.5 bits) at load: a smaller heap, fewer bytes streamed per decoded token, and
//! llama.cpp's own weights rather than a rounding of them.
//!
//! A Q5_0 value is `u − 16` with `u` in 0..=31: its low four bits in a nibble, its fifth in a
//! 32-bit mask. `u` is a valid 7-bit operand of `i32x4.relaxed_dot_i8x16_i7x16_add` as it
//! is, and Σ(u − 16)·y = Σu·y − 16·Σy, so the activation row brings −16·Σy per lane (once per
//! product) as the dot product's starting value. Per block the arithmetic is then ggml's
//! `vec_dot_q5_0_q8_0`: an exact integer sum times `d_x·d_y`, accumulated in four f32 lanes.
//! Lane l holds elements 4l..4l+3 and 16+4l..16+4l+3 (the relaxed dot's grouping); the
//! portable form below sums the same lanes in the same order, so both give the same bits.

use super::q8_0::{self, f16_to_f32};

/// candle's `#[repr(C)] BlockQ5_0`: f16 d, 4 bytes of fifth bits, 16 bytes of nibbles.
pub const BLOCK_BYTES: usize = 22;
pub const BLOCK: usize = 32;

/// One activation row, quantized to Q8_0 (`q8_0::BLOCK_BYTES` per block), prepared once.
pub struct Activation<'a> {
    blocks: &'a [u8],
    scales: Vec<f32>,
    /// Per block: the 32 bytes as two vectors, then −16·Σy per lane.
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    arranged: Vec<core::arch::wasm32::v128>,
    /// Per block: 16·Σy per AVX lane.
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    offsets: Vec<[i32; 8]>,
}

impl<'a> Activation<'a> {
    pub fn new(blocks: &'a [u8]) -> Self {
        let table = q8_0::scale_table();
        let scales = blocks
            .chunks_exact(q8_0::BLOCK_BYTES)
            .map(|b| table[u16::from_le_bytes([b[0], b[1]]) as usize])
            .collect();
        Activation {
            blocks,
            scales,
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            arranged: relaxed::arrange(blocks),
            #[cfg(all(
                target_arch = "x86_64",
                target_feature = "avx2",
                target_feature = "fma"
            ))]
            offsets: avx2::offsets(blocks),
        }
    }
}

/// The lane of element `i` (0..32) of a block.
#[inline(always)]
fn lane(i: usize) -> usize {
    (i % 16) / 4
}

/// One weight row against `R` activation rows.
pub fn dot_rows<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].scales.len();
    assert!(w.len() == n * BLOCK_BYTES && ys.iter().all(|y| y.scales.len() == n));
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: lengths checked above; `arranged` holds three vectors per block.
        unsafe { relaxed::dot_rows(w, ys, q8_0::scale_table()) }
    }
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    {
        // SAFETY: lengths checked above; `offsets` has one entry per block.
        unsafe { avx2::dot_rows(w, ys, q8_0::scale_table()) }
    }
    #[cfg(not(any(
        all(target_arch = "wasm32", target_feature = "relaxed-simd"),
        all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma"
        )
    )))]
    {
        portable(w, ys)
    }
}

/// `C` weight rows against one activation row, interleaved block by block so that the CPU has
/// `C` independent chains of work while decoding; each output has exactly `dot_rows`'s bits.
pub fn dot_cols<const C: usize>(ws: [&[u8]; C], y: &Activation) -> [f32; C] {
    let n = y.scales.len();
    assert!(ws.iter().all(|w| w.len() == n * BLOCK_BYTES));
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: lengths checked above.
        unsafe { relaxed::dot_cols(ws, y, q8_0::scale_table()) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    {
        ws.map(|w| dot_rows(w, [y])[0])
    }
}

/// The reference form, in the relaxed form's lanes (the same bits): machines without SIMD,
/// and the tests.
#[cfg_attr(
    any(
        all(target_arch = "wasm32", target_feature = "relaxed-simd"),
        all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma"
        )
    ),
    allow(dead_code)
)]
pub fn portable<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].scales.len();
    ys.map(|y| {
        let mut lanes = [0f32; 4];
        for b in 0..n {
            let wb = &w[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES];
            let yq = &y.blocks[b * q8_0::BLOCK_BYTES + 2..(b + 1) * q8_0::BLOCK_BYTES];
            let qh = u32::from_le_bytes([wb[2], wb[3], wb[4], wb[5]]);
            let mut sums = [0i32; 4];
            for j in 0..16 {
                let lo = (wb[6 + j] & 0x0f) as i32 | (((qh >> j) & 1) << 4) as i32;
                let hi = (wb[6 + j] >> 4) as i32 | (((qh >> (j + 16)) & 1) << 4) as i32;
                sums[lane(j)] += (lo - 16) * yq[j] as i8 as i32;
                sums[lane(16 + j)] += (hi - 16) * yq[16 + j] as i8 as i32;
            }
            let d = f16_to_f32(u16::from_le_bytes([wb[0], wb[1]])) * y.scales[b];
            for (l, s) in lanes.iter_mut().zip(sums) {
                *l += s as f32 * d;
            }
        }
        lanes[0] + lanes[1] + lanes[2] + lanes[3]
    })
}

#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
mod relaxed {
    use super::{Activation, BLOCK_BYTES};
    use crate::engine::q8_0;
    use crate::engine::q8_0::simd::lanes_sum;
    use core::arch::wasm32::*;

    pub fn arrange(blocks: &[u8]) -> Vec<v128> {
        blocks
            .chunks_exact(q8_0::BLOCK_BYTES)
            .flat_map(|b| {
                let q = &b[2..];
                let mut lanes = [0i32; 4];
                for (i, &v) in q.iter().enumerate() {
                    lanes[super::lane(i)] -= 16 * v as i8 as i32;
                }
                // SAFETY: a block has 32 bytes after its 2-byte scale.
                unsafe {
                    [
                        v128_load(q.as_ptr() as *const v128),
                        v128_load(q[16..].as_ptr() as *const v128),
                        i32x4(lanes[0], lanes[1], lanes[2], lanes[3]),
                    ]
                }
            })
            .collect()
    }

    /// One weight block as the relaxed dot's unsigned operands (elements 0..16, 16..32, each
    /// 0..=31) and its scale.
    ///
    /// # Safety
    /// `wb` points at a whole block, and `table` is `q8_0::scale_table()`.
    #[inline(always)]
    unsafe fn unpack(wb: *const u8, table: &[f32]) -> (v128, v128, f32) {
        let bits = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        let fifth = u8x16_splat(0x10);
        let low = u8x16_splat(0x0f);
        // Element j's fifth bit is bit j of the mask: spread its bytes, one per element.
        let qh = v128_load32_splat(wb.add(2) as *const u32);
        let h0 = i8x16_shuffle::<0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1>(qh, qh);
        let h1 = i8x16_shuffle::<2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3>(qh, qh);
        let h0 = v128_and(i8x16_eq(v128_and(h0, bits), bits), fifth);
        let h1 = v128_and(i8x16_eq(v128_and(h1, bits), bits), fifth);
        let q = v128_load(wb.add(6) as *const v128);
        let u0 = v128_or(v128_and(q, low), h0);
        let u1 = v128_or(u8x16_shr(q, 4), h1);
        let dw = *table.get_unchecked(u16::from_le_bytes([*wb, *wb.add(1)]) as usize);
        (u0, u1, dw)
    }

    /// # Safety
    /// `w` holds one block of `BLOCK_BYTES` per activation block of every `ys`, and `table` is
    /// `q8_0::scale_table()` (the caller, `super::dot_rows`, checks the lengths).
    #[inline(always)]
    pub unsafe fn dot_rows<const R: usize>(
        w: &[u8],
        ys: [&Activation; R],
        table: &[f32],
    ) -> [f32; R] {
        let mut acc = [f32x4_splat(0.0); R];
        let w = w.as_ptr();
        let arranged = ys.map(|y| y.arranged.as_ptr());
        let scales = ys.map(|y| y.scales.as_ptr());
        for b in 0..ys[0].scales.len() {
            let (u0, u1, dw) = unpack(w.add(b * BLOCK_BYTES), table);
            for r in 0..R {
                let yv = arranged[r].add(3 * b);
                let s = i32x4_relaxed_dot_i8x16_i7x16_add(*yv, u0, *yv.add(2));
                let s = i32x4_relaxed_dot_i8x16_i7x16_add(*yv.add(1), u1, s);
                let d = f32x4_splat(dw * *scales[r].add(b));
                acc[r] = f32x4_add(acc[r], f32x4_mul(f32x4_convert_i32x4(s), d));
            }
        }
        acc.map(lanes_sum)
    }

    /// `dot_rows::<1>` for `C` weight rows at once (decoding), the same arithmetic per row.
    ///
    /// # Safety
    /// As `dot_rows`, for every `ws[c]`.
    #[inline(always)]
    pub unsafe fn dot_cols<const C: usize>(
        ws: [&[u8]; C],
        y: &Activation,
        table: &[f32],
    ) -> [f32; C] {
        let mut acc = [f32x4_splat(0.0); C];
        let ws = ws.map(|w| w.as_ptr());
        let (arranged, scales) = (y.arranged.as_ptr(), y.scales.as_ptr());
        for b in 0..y.scales.len() {
            let yv = arranged.add(3 * b);
            let (y0, y1, y2) = (*yv, *yv.add(1), *yv.add(2));
            let ys = *scales.add(b);
            for c in 0..C {
                let (u0, u1, dw) = unpack(ws[c].add(b * BLOCK_BYTES), table);
                let s = i32x4_relaxed_dot_i8x16_i7x16_add(y0, u0, y2);
                let s = i32x4_relaxed_dot_i8x16_i7x16_add(y1, u1, s);
                let d = f32x4_splat(dw * ys);
                acc[c] = f32x4_add(acc[c], f32x4_mul(f32x4_convert_i32x4(s), d));
            }
        }
        acc.map(lanes_sum)
    }
}

/// The native form on x86-64 with AVX2 (the build's baseline): 32 products per `maddubs`,
/// so native builds keep Q5_0 as stored too. Lane l of `madd(maddubs)` holds elements
/// 4l..4l+3; the activation brings 16·Σy per lane, taken off before the f32 steps, so each
/// lane is the exact Σ(u − 16)·y.
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
mod avx2 {
    use super::{Activation, BLOCK_BYTES};
    use crate::engine::q8_0;
    use std::arch::x86_64::*;

    /// Per block: 16·Σy over each lane's four elements.
    pub fn offsets(blocks: &[u8]) -> Vec<[i32; 8]> {
        blocks
            .chunks_exact(q8_0::BLOCK_BYTES)
            .map(|b| {
                std::array::from_fn(|l| {
                    16 * b[2 + 4 * l..6 + 4 * l]
                        .iter()
                        .map(|&v| v as i8 as i32)
                        .sum::<i32>()
                })
            })
            .collect()
    }

    /// # Safety
    /// `w` holds one block of `BLOCK_BYTES` per activation block of every `ys`, and `table` is
    /// `q8_0::scale_table()` (the caller, `super::dot_rows`, checks the lengths).
    #[inline(always)]
    pub unsafe fn dot_rows<const R: usize>(
        w: &[u8],
        ys: [&Activation; R],
        table: &[f32],
    ) -> [f32; R] {
        let mut acc = [_mm256_setzero_ps(); R];
        let low = _mm256_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        let fifth = _mm256_set1_epi8(0x10);
        let spread = _mm256_setr_epi8(
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3,
            3, 3, 3,
        );
        let bits = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
        let w = w.as_ptr();
        for b in 0..ys[0].scales.len() {
            let wb = w.add(b * BLOCK_BYTES);
            let qh = u32::from_le_bytes([*wb.add(2), *wb.add(3), *wb.add(4), *wb.add(5)]);
            // Byte j gets bit j of the mask, as 0x10 or 0.
            let h = _mm256_shuffle_epi8(_mm256_set1_epi32(qh as i32), spread);
            let h = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(h, bits), bits), fifth);
            let q = _mm_loadu_si128(wb.add(6) as *const __m128i);
            let u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);
            let u = _mm256_or_si256(u, h);
            let dw = *table.get_unchecked(u16::from_le_bytes([*wb, *wb.add(1)]) as usize);
            for r in 0..R {
                let y = ys[r].blocks.as_ptr().add(b * q8_0::BLOCK_BYTES + 2);
                let y = _mm256_loadu_si256(y as *const __m256i);
                let s = _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), ones);
                let off = _mm256_loadu_si256(ys[r].offsets.as_ptr().add(b) as *const __m256i);
                let s = _mm256_sub_epi32(s, off);
                let d = _mm256_set1_ps(dw * *ys[r].scales.get_unchecked(b));
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), d, acc[r]);
            }
        }
        acc.map(q8_0::avx2_sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_data::{bytes, quantize, values};
    use candle_core::quantized::k_quants::{BlockQ5_0, BlockQ8_0, GgmlType};

    #[test]
    fn dot_matches_candle_within_rounding() {
        let k = 32 * 18;
        let y: Vec<BlockQ8_0> = quantize(&values(k, 1));
        let rows: Vec<Vec<BlockQ5_0>> = (0..4).map(|i| quantize(&values(k, 10 + i))).collect();
        let yb = bytes(&y);
        let act = Activation::new(&yb);
        for r in &rows {
            let rb = bytes(r);
            assert_eq!(rb.len(), k / 32 * BLOCK_BYTES);
            let ours = dot_rows(&rb, [&act])[0];
            let theirs = BlockQ5_0::vec_dot(k, r, &y);
            let p = portable(&rb, [&act])[0];
            assert!(
                (p - theirs).abs() <= 1e-4 * theirs.abs().max(1.0),
                "portable {p} vs {theirs}"
            );
            assert!(
                (ours - theirs).abs() <= 1e-4 * theirs.abs().max(1.0),
                "{ours} vs {theirs}"
            );
        }
    }
}
