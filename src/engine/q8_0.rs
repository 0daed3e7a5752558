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

/// The eight lanes of an AVX register summed in ggml's order (`hsum_float_8`: high half onto
/// low half, then pairs), so that the native kernels round as llama.cpp's do.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub(crate) fn avx2_sum(v: std::arch::x86_64::__m256) -> f32 {
    let mut a = [0f32; 8];
    // SAFETY: `a` has room for the eight lanes; the store needs no alignment.
    unsafe { std::arch::x86_64::_mm256_storeu_ps(a.as_mut_ptr(), v) };
    let h = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (h[0] + h[2]) + (h[1] + h[3])
}

/// One quantized activation row, prepared for many columns.
pub struct Activation<'a> {
    blocks: &'a [u8],
    scales: Vec<f32>,
    /// The row's bytes sign-extended to i16, four vectors per block, done once per product
    /// rather than once per column.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    wide: Vec<core::arch::wasm32::v128>,
    /// The relaxed-SIMD form's: the row's bytes in `relaxed::order`, then negated, four
    /// vectors per block.
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    arranged: Vec<core::arch::wasm32::v128>,
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
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            arranged: relaxed::arrange(blocks),
        }
    }
}

/// The dot product of one weight row (Q8_0 bytes, as many blocks as the activation) with `y`.
pub fn dot(w: &[u8], y: &Activation) -> f32 {
    dot_rows::<1>(w, [y])[0]
}

/// One weight row against `R` activation rows: each weight block is loaded and widened once
/// for all of them (prefill, scoring). Every output has exactly the bits `dot` gives it alone.
pub fn dot_rows<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].scales.len();
    assert!(w.len() == n * BLOCK_BYTES && ys.iter().all(|y| y.scales.len() == n));
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // One row: the sign juggling below costs as much as it saves. Several rows share it.
        #[cfg(target_feature = "relaxed-simd")]
        if R > 1 {
            // SAFETY: lengths checked above; `arranged` holds four vectors per block.
            return unsafe { relaxed::dot_rows(w, ys, scale_table()) };
        }
        // SAFETY: lengths checked above; `wide` holds four vectors per block; wasm loads need
        // no alignment.
        unsafe { simd::dot_rows(w, ys, scale_table()) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        portable(w, ys)
    }
}

/// `C` weight rows against one activation row, interleaved block by block so that the CPU has
/// `C` independent chains of work while decoding; each output has exactly `dot`'s bits.
pub fn dot_cols<const C: usize>(ws: [&[u8]; C], y: &Activation) -> [f32; C] {
    let n = y.scales.len();
    assert!(ws.iter().all(|w| w.len() == n * BLOCK_BYTES));
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: lengths checked above.
        unsafe { simd::dot_cols(ws, y, scale_table()) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        ws.map(|w| dot(w, y))
    }
}

/// The reference form, in the simd128 form's lanes (which the relaxed form also sums):
/// machines without SIMD, the tests and `kernel_check`.
pub fn portable<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].scales.len();
    let table = scale_table();
    ys.map(|y| {
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
    })
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) mod simd {
    use super::{Activation, BLOCK_BYTES};
    use core::arch::wasm32::*;

    pub fn widen(blocks: &[u8]) -> Vec<v128> {
        widen_blocks(blocks, BLOCK_BYTES, 2)
    }

    /// The four f32 lanes summed in order 0, 1, 2, 3: every wasm kernel's last step (and the
    /// portable forms'), so all give the same bits.
    #[inline(always)]
    pub fn lanes_sum(a: v128) -> f32 {
        f32x4_extract_lane::<0>(a)
            + f32x4_extract_lane::<1>(a)
            + f32x4_extract_lane::<2>(a)
            + f32x4_extract_lane::<3>(a)
    }

    /// The 32 signed bytes after `header` bytes of every `block_bytes`-long block, as four
    /// i16x8 vectors per block (Q8_0: a 2-byte scale; Q8_1: two 2-byte scales).
    /// Lane c: the sum of the four lanes of `s[c]` (integers, so exact in any order). Gathers
    /// four rows' block sums into one vector for their f32 steps.
    #[inline(always)]
    pub fn sum_lanes4(s: [v128; 4]) -> v128 {
        let a = i32x4_add(
            i32x4_shuffle::<0, 4, 1, 5>(s[0], s[1]),
            i32x4_shuffle::<2, 6, 3, 7>(s[0], s[1]),
        );
        let b = i32x4_add(
            i32x4_shuffle::<0, 4, 1, 5>(s[2], s[3]),
            i32x4_shuffle::<2, 6, 3, 7>(s[2], s[3]),
        );
        i32x4_add(
            i32x4_shuffle::<0, 1, 4, 5>(a, b),
            i32x4_shuffle::<2, 3, 6, 7>(a, b),
        )
    }

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

    /// One weight row, read front to back, against `R` activation rows: the weight is widened
    /// once and every row reuses it (prefill). For one row see `dot_cols`.
    ///
    /// # Safety
    /// `w` holds one block of `BLOCK_BYTES` per activation block of every `ys`, and `table` is
    /// `scale_table()` (the caller, `super::dot_rows`, checks the lengths).
    #[inline(always)]
    pub unsafe fn dot_rows<const R: usize>(
        w: &[u8],
        ys: [&Activation; R],
        table: &[f32],
    ) -> [f32; R] {
        let mut acc = [f32x4_splat(0.0); R];
        let w = w.as_ptr();
        let wide = ys.map(|y| y.wide.as_ptr());
        let scales = ys.map(|y| y.scales.as_ptr());
        for b in 0..ys[0].scales.len() {
            let wb = w.add(b * BLOCK_BYTES);
            let q = wb.add(2) as *const i8;
            let w0 = i16x8_load_extend_i8x8(q);
            let w1 = i16x8_load_extend_i8x8(q.add(8));
            let w2 = i16x8_load_extend_i8x8(q.add(16));
            let w3 = i16x8_load_extend_i8x8(q.add(24));
            let dw = *table.get_unchecked(u16::from_le_bytes([*wb, *wb.add(1)]) as usize);
            for r in 0..R {
                let yv = wide[r].add(4 * b);
                let s = i32x4_dot_i16x8(w0, *yv);
                let s = i32x4_add(s, i32x4_dot_i16x8(w1, *yv.add(1)));
                let s = i32x4_add(s, i32x4_dot_i16x8(w2, *yv.add(2)));
                let s = i32x4_add(s, i32x4_dot_i16x8(w3, *yv.add(3)));
                let d = f32x4_splat(dw * *scales[r].add(b));
                acc[r] = f32x4_add(acc[r], f32x4_mul(f32x4_convert_i32x4(s), d));
            }
        }
        acc.map(lanes_sum)
    }

    /// `dot_rows::<1>` for `C` weight rows at once (decoding), the same arithmetic per row.
    /// Two rows give the CPU two independent chains per block: Gemma 3's decode (mostly this
    /// kernel, on its 262,144-row output matrix) went 12.1 → 18.9 tokens/s. An earlier form
    /// with four columns that shared each activation load was much slower (13.8 against 30.8
    /// on another machine, issue 6); two columns are what was measured to pay.
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
        let (wide, scales) = (y.wide.as_ptr(), y.scales.as_ptr());
        for b in 0..y.scales.len() {
            let yv = wide.add(4 * b);
            let ys = *scales.add(b);
            for c in 0..C {
                let wb = ws[c].add(b * BLOCK_BYTES);
                let q = wb.add(2) as *const i8;
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
                let d = f32x4_splat(dw * ys);
                acc[c] = f32x4_add(acc[c], f32x4_mul(f32x4_convert_i32x4(s), d));
            }
        }
        acc.map(lanes_sum)
    }
}

/// The relaxed-SIMD form (the page's second build, for browsers that have relaxed SIMD): 16
/// byte products per `i32x4.relaxed_dot_i8x16_i7x16_add` instead of 8 per `i32x4.dot_i16x8`
/// after widening. Its second operand must stay within 0..=127 for the result to be the same
/// on every machine, so it gets `|w|` and the activation gets w's sign (ggml's own trick on
/// x86). Q8_0 never holds −128: ggml's quantizer rounds to ±127 and the wasm builds clamp a
/// file's −128 at load (`gguf::clamp_q8_0`).
///
/// The weight's bytes are shuffled into `relaxed::order` first, so that lane l of the result sums the
/// same 8 products as lane l of `simd::dot_rows` (elements 2l, 2l+1 of every 8). Integer sums
/// are exact, and the f32 steps after are the same, so both builds give the same bits.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub(super) mod relaxed {
    use super::simd::lanes_sum;
    use super::{Activation, BLOCK_BYTES};
    use core::arch::wasm32::*;

    /// The i32 lanes of `lo`, then of `hi`, each broadcast to a whole vector: eight groups of
    /// four weight values, for a prefill tile whose lanes are rows (`q4_1`, `q5_0`,
    /// `k_quants`).
    #[inline(always)]
    pub fn splats8(lo: v128, hi: v128) -> [v128; 8] {
        [
            i32x4_shuffle::<0, 0, 0, 0>(lo, lo),
            i32x4_shuffle::<1, 1, 1, 1>(lo, lo),
            i32x4_shuffle::<2, 2, 2, 2>(lo, lo),
            i32x4_shuffle::<3, 3, 3, 3>(lo, lo),
            i32x4_shuffle::<0, 0, 0, 0>(hi, hi),
            i32x4_shuffle::<1, 1, 1, 1>(hi, hi),
            i32x4_shuffle::<2, 2, 2, 2>(hi, hi),
            i32x4_shuffle::<3, 3, 3, 3>(hi, hi),
        ]
    }

    /// `init` plus Σ over eight groups of a tile vector (`y`: eight vectors, lane l holding
    /// four values of row l) against eight groups of weight values (`splats8`), in two chains
    /// of four dots so that each dot waits on half as many; exact.
    ///
    /// # Safety
    /// `y` points at eight readable vectors.
    #[inline(always)]
    pub unsafe fn groups8(y: *const v128, w: &[v128; 8], init: v128) -> v128 {
        let (mut a, mut b) = (init, i32x4_splat(0));
        for j in 0..4 {
            a = i32x4_relaxed_dot_i8x16_i7x16_add(v128_load(y.add(j)), w[j], a);
            b = i32x4_relaxed_dot_i8x16_i7x16_add(v128_load(y.add(4 + j)), w[4 + j], b);
        }
        i32x4_add(a, b)
    }

    /// A 16-byte half in relaxed-lane order: slot 4l+t holds element
    /// [0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15][4l+t], so relaxed lane l sums
    /// elements 2l, 2l+1, 2l+8, 2l+9, as `i32x4_dot_i16x8` lane l does over two 8-byte halves.
    #[inline(always)]
    pub fn order(v: v128) -> v128 {
        i8x16_shuffle::<0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15>(v, v)
    }

    /// Per block: both halves of the activation in `order`, then the same negated.
    pub fn arrange(blocks: &[u8]) -> Vec<v128> {
        blocks
            .chunks_exact(BLOCK_BYTES)
            .flat_map(|b| {
                // SAFETY: a block has 32 bytes after its 2-byte scale.
                let (y0, y1) = unsafe {
                    (
                        order(v128_load(b[2..].as_ptr() as *const v128)),
                        order(v128_load(b[18..].as_ptr() as *const v128)),
                    )
                };
                // Activations are quantized by candle's `from_float` to ±127: no overflow.
                [y0, y1, i8x16_neg(y0), i8x16_neg(y1)]
            })
            .collect()
    }

    /// # Safety
    /// As `simd::dot_rows`, with `arranged` in place of `wide`.
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
        let zero = i32x4_splat(0);
        for b in 0..ys[0].scales.len() {
            let wb = w.add(b * BLOCK_BYTES);
            let q0 = order(v128_load(wb.add(2) as *const v128));
            let q1 = order(v128_load(wb.add(18) as *const v128));
            let (a0, a1) = (i8x16_abs(q0), i8x16_abs(q1));
            let (n0, n1) = (i8x16_lt(q0, zero), i8x16_lt(q1, zero));
            let dw = *table.get_unchecked(u16::from_le_bytes([*wb, *wb.add(1)]) as usize);
            for r in 0..R {
                let yv = arranged[r].add(4 * b);
                // Masks are whole bytes of 0 or 1 bits, where the relaxed select is exact.
                let y0 = i8x16_relaxed_laneselect(*yv.add(2), *yv, n0);
                let y1 = i8x16_relaxed_laneselect(*yv.add(3), *yv.add(1), n1);
                let s = i32x4_relaxed_dot_i8x16_i7x16_add(y0, a0, zero);
                let s = i32x4_relaxed_dot_i8x16_i7x16_add(y1, a1, s);
                let d = f32x4_splat(dw * *scales[r].add(b));
                acc[r] = f32x4_add(acc[r], f32x4_mul(f32x4_convert_i32x4(s), d));
            }
        }
        acc.map(lanes_sum)
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
