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
    blocks: &'a [u8],
    d: Vec<f32>,
    s: Vec<f32>,
    /// The row's bytes sign-extended to i16, four vectors per block, once per product.
    #[cfg(all(
        target_arch = "wasm32",
        target_feature = "simd128",
        not(target_feature = "relaxed-simd")
    ))]
    wide: Vec<core::arch::wasm32::v128>,
    /// The relaxed-SIMD form's: the row's bytes in `q8_0::relaxed::order`, two vectors per
    /// block.
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    arranged: Vec<core::arch::wasm32::v128>,
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
            #[cfg(all(
                target_arch = "wasm32",
                target_feature = "simd128",
                not(target_feature = "relaxed-simd")
            ))]
            wide: simd::widen(blocks),
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            arranged: relaxed::arrange(blocks),
        }
    }
}

/// The dot product of one Q4_1 weight row with `y`.
pub fn dot(w: &[u8], y: &Activation) -> f32 {
    dot_rows::<1>(w, [y])[0]
}

/// One weight row against `R` activation rows, each weight block unpacked once for all of
/// them; every output has exactly the bits `dot` gives it alone.
pub fn dot_rows<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].d.len();
    assert!(w.len() == n * BLOCK_BYTES && ys.iter().all(|y| y.d.len() == n));
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: lengths checked above; `arranged` holds two vectors per block.
        unsafe { relaxed::dot_rows(w, ys, super::q8_0::scale_table()) }
    }
    #[cfg(all(
        target_arch = "wasm32",
        target_feature = "simd128",
        not(target_feature = "relaxed-simd")
    ))]
    {
        // SAFETY: lengths checked above; `wide` holds four vectors per block; wasm loads need
        // no alignment.
        unsafe { simd::dot_rows(w, ys, super::q8_0::scale_table()) }
    }
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    {
        // SAFETY: lengths checked above.
        unsafe { avx2::dot_rows(w, ys, super::q8_0::scale_table()) }
    }
    #[cfg(not(any(
        all(target_arch = "wasm32", target_feature = "simd128"),
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
/// `C` independent chains of work while decoding; each output has exactly `dot`'s bits.
pub fn dot_cols<const C: usize>(ws: [&[u8]; C], y: &Activation) -> [f32; C] {
    let n = y.d.len();
    assert!(ws.iter().all(|w| w.len() == n * BLOCK_BYTES));
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: lengths checked above.
        unsafe { relaxed::dot_cols(ws, y, super::q8_0::scale_table()) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    {
        ws.map(|w| dot(w, y))
    }
}

/// The reference form, in the simd128 form's lanes: machines without SIMD, and the tests.
#[cfg_attr(
    any(
        all(target_arch = "wasm32", target_feature = "simd128"),
        all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma"
        )
    ),
    allow(dead_code)
)]
pub fn portable<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].d.len();
    ys.map(|y| {
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
    })
}

#[cfg(all(
    target_arch = "wasm32",
    target_feature = "simd128",
    not(target_feature = "relaxed-simd")
))]
mod simd {
    use super::{Activation, ACT_BLOCK_BYTES, BLOCK_BYTES};
    use crate::engine::q8_0::simd::lanes_sum;
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

    /// One weight row, front to back, against `R` activation rows; see `q8_0::simd::dot_rows`.
    ///
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
        let mut mins = [0f32; R];
        let low = u8x16_splat(0x0f);
        let w = w.as_ptr();
        let wide = ys.map(|y| y.wide.as_ptr());
        let (d, s) = (ys.map(|y| y.d.as_ptr()), ys.map(|y| y.s.as_ptr()));
        for b in 0..ys[0].d.len() {
            let wb = w.add(b * BLOCK_BYTES);
            let q = v128_load(wb.add(4) as *const v128);
            let lo = v128_and(q, low);
            let hi = u8x16_shr(q, 4);
            let w0 = u16x8_extend_low_u8x16(lo);
            let w1 = u16x8_extend_high_u8x16(lo);
            let w2 = u16x8_extend_low_u8x16(hi);
            let w3 = u16x8_extend_high_u8x16(hi);
            let (dw, mw) = (half(table, wb), half(table, wb.add(2)));
            for r in 0..R {
                let yv = wide[r].add(4 * b);
                let sum = i32x4_dot_i16x8(w0, *yv);
                let sum = i32x4_add(sum, i32x4_dot_i16x8(w1, *yv.add(1)));
                let sum = i32x4_add(sum, i32x4_dot_i16x8(w2, *yv.add(2)));
                let sum = i32x4_add(sum, i32x4_dot_i16x8(w3, *yv.add(3)));
                let dd = f32x4_splat(dw * *d[r].add(b));
                acc[r] = f32x4_add(acc[r], f32x4_mul(f32x4_convert_i32x4(sum), dd));
                mins[r] += mw * *s[r].add(b);
            }
        }
        let mut out = [0f32; R];
        for r in 0..R {
            out[r] = lanes_sum(acc[r]) + mins[r];
        }
        out
    }
}

/// The relaxed-SIMD form: the nibbles (0..=15) are the 7-bit operand of
/// `i32x4.relaxed_dot_i8x16_i7x16_add` as they are, so a block is two instructions per row
/// instead of four widenings and four `dot_i16x8`. Bytes are shuffled into
/// `q8_0::relaxed::order` so that lane l sums the same products as in `simd::dot_rows`: the
/// same bits as the simd128 build.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
mod relaxed {
    use super::{Activation, ACT_BLOCK_BYTES, BLOCK_BYTES};
    use crate::engine::q8_0::relaxed::order;
    use crate::engine::q8_0::simd::lanes_sum;
    use core::arch::wasm32::*;

    /// Per block: the 32 activation bytes as two halves in `order`.
    pub fn arrange(blocks: &[u8]) -> Vec<v128> {
        blocks
            .chunks_exact(ACT_BLOCK_BYTES)
            .flat_map(|b| {
                // SAFETY: a block has 32 bytes after its two 2-byte scales.
                unsafe {
                    [
                        order(v128_load(b[4..].as_ptr() as *const v128)),
                        order(v128_load(b[20..].as_ptr() as *const v128)),
                    ]
                }
            })
            .collect()
    }

    /// # Safety
    /// `at` points at two readable bytes, and `table` has all 65,536 f16 values.
    #[inline(always)]
    unsafe fn half(table: &[f32], at: *const u8) -> f32 {
        *table.get_unchecked(u16::from_le_bytes([*at, *at.add(1)]) as usize)
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
        let mut mins = [0f32; R];
        let low = u8x16_splat(0x0f);
        let zero = i32x4_splat(0);
        let w = w.as_ptr();
        let arranged = ys.map(|y| y.arranged.as_ptr());
        let (d, s) = (ys.map(|y| y.d.as_ptr()), ys.map(|y| y.s.as_ptr()));
        for b in 0..ys[0].d.len() {
            let wb = w.add(b * BLOCK_BYTES);
            // Byte j holds element j (low nibble) and element 16 + j (high nibble).
            let q = order(v128_load(wb.add(4) as *const v128));
            let lo = v128_and(q, low);
            let hi = u8x16_shr(q, 4);
            let (dw, mw) = (half(table, wb), half(table, wb.add(2)));
            for r in 0..R {
                let yv = arranged[r].add(2 * b);
                let sum = i32x4_relaxed_dot_i8x16_i7x16_add(*yv, lo, zero);
                let sum = i32x4_relaxed_dot_i8x16_i7x16_add(*yv.add(1), hi, sum);
                let dd = f32x4_splat(dw * *d[r].add(b));
                acc[r] = f32x4_add(acc[r], f32x4_mul(f32x4_convert_i32x4(sum), dd));
                mins[r] += mw * *s[r].add(b);
            }
        }
        let mut out = [0f32; R];
        for r in 0..R {
            out[r] = lanes_sum(acc[r]) + mins[r];
        }
        out
    }

    /// # Safety
    /// Every `ws[c]` holds one block of `BLOCK_BYTES` per block of `y`, and `table` is
    /// `q8_0::scale_table()` (the caller, `super::dot_cols`, checks the lengths).
    #[inline(always)]
    pub unsafe fn dot_cols<const C: usize>(
        ws: [&[u8]; C],
        y: &Activation,
        table: &[f32],
    ) -> [f32; C] {
        let mut acc = [f32x4_splat(0.0); C];
        let mut mins = [0f32; C];
        let low = u8x16_splat(0x0f);
        let zero = i32x4_splat(0);
        let ws = ws.map(|w| w.as_ptr());
        let (arranged, d, s) = (y.arranged.as_ptr(), y.d.as_ptr(), y.s.as_ptr());
        for b in 0..y.d.len() {
            let (y0, y1) = (*arranged.add(2 * b), *arranged.add(2 * b + 1));
            let (yd, ys) = (*d.add(b), *s.add(b));
            for c in 0..C {
                let wb = ws[c].add(b * BLOCK_BYTES);
                let q = order(v128_load(wb.add(4) as *const v128));
                let sum = i32x4_relaxed_dot_i8x16_i7x16_add(y0, v128_and(q, low), zero);
                let sum = i32x4_relaxed_dot_i8x16_i7x16_add(y1, u8x16_shr(q, 4), sum);
                let dd = f32x4_splat(half(table, wb) * yd);
                acc[c] = f32x4_add(acc[c], f32x4_mul(f32x4_convert_i32x4(sum), dd));
                mins[c] += half(table, wb.add(2)) * ys;
            }
        }
        std::array::from_fn(|c| lanes_sum(acc[c]) + mins[c])
    }
}

/// The native form on x86-64 with AVX2 (the build's baseline, `.cargo/config.toml`): ggml's own
/// `vec_dot_q4_1_q8_1` arithmetic, 32 nibble × byte products per `maddubs`. It lets native
/// builds keep Q4_1 as stored instead of requantizing it to Q8_0, which moved SmolLM2's
/// surprisals farther from llama.cpp's than llama.cpp's own configurations are from each other.
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
mod avx2 {
    use super::{Activation, ACT_BLOCK_BYTES, BLOCK_BYTES};
    use std::arch::x86_64::*;

    /// # Safety
    /// `w` holds one block of `BLOCK_BYTES` per activation block of every `ys`, and `table` is
    /// `q8_0::scale_table()` (the caller, `super::dot_rows`, checks the lengths).
    #[inline(always)]
    pub unsafe fn dot_rows<const R: usize>(
        w: &[u8],
        ys: [&Activation; R],
        table: &[f32],
    ) -> [f32; R] {
        let half =
            |at: *const u8| *table.get_unchecked(u16::from_le_bytes([*at, *at.add(1)]) as usize);
        let mut acc = [_mm256_setzero_ps(); R];
        let mut mins = [0f32; R];
        let low = _mm256_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        let w = w.as_ptr();
        for b in 0..ys[0].d.len() {
            let wb = w.add(b * BLOCK_BYTES);
            let q = _mm_loadu_si128(wb.add(4) as *const __m128i);
            // Elements 0..16 are the low nibbles, 16..32 the high ones.
            let u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);
            let (dw, mw) = (half(wb), half(wb.add(2)));
            for r in 0..R {
                let y = ys[r].blocks.as_ptr().add(b * ACT_BLOCK_BYTES + 4);
                let y = _mm256_loadu_si256(y as *const __m256i);
                // Pairs of nibble × byte products fit i16 (2·15·128).
                let s = _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), ones);
                let d = _mm256_set1_ps(dw * *ys[r].d.get_unchecked(b));
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), d, acc[r]);
                mins[r] += mw * *ys[r].s.get_unchecked(b);
            }
        }
        std::array::from_fn(|r| super::super::q8_0::avx2_sum(acc[r]) + mins[r])
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
            let p = portable(rbytes, [&act])[0];
            assert!(
                (p - theirs).abs() <= 1e-4 * theirs.abs().max(1.0),
                "portable {p} vs {theirs}"
            );
            assert!(
                (o - theirs).abs() <= 1e-4 * theirs.abs().max(1.0),
                "{o} vs {theirs}"
            );
        }
    }
}
