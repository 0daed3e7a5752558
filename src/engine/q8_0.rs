//! The engine's own Q8_0 × Q8_0 kernel, used on wasm for Q8_0 weights (most weights, after the
//! load-time requantization in `model::weight_matmul`): decode, prefill and scoring.
//!
//! The arithmetic is ggml's reference form (`ggml_vec_dot_q8_0_q8_0_generic`): per block, the
//! exact integer sum of the 32 byte products, then `sum += sumi as f32 * (dw * dy)` in block
//! order. Because a block's integer sum is exact however it is grouped, the simd128 form
//! (i16 products) and the relaxed-SIMD form (i8 dots) give the same bits, and each may lay out
//! its lanes as it runs fastest: four consecutive blocks of one weight row in a vector's lanes
//! when decoding (`dot_in_order`), four activation rows when prefilling, so that the f32 steps
//! are one vector operation for several blocks or outputs. Decoding adds its block products in
//! its own fixed order (`in_order_sum`): one running sum per lane, then the lanes. (Several
//! weight rows to the lanes, which wasm decoding ran until issue 15's seventh stop, read memory
//! more slowly than one row in order: `docs/BENCHMARKS.md`.)
//!
//! candle's simd128 `vec_dot` converts both f16 block scales in software for every block of
//! every column and re-extends the activation's bytes for every column. Here the activation row
//! is prepared once per product, its scales are converted once, and the weight scales come from
//! a 64k-entry table.
//!
//! In the relaxed build the weights are laid out at load (`Arranged`, `arrange_row`,
//! `model::Kernels::arranges_q8_0`): per run of four blocks, their scales already widened to
//! f32, then their quants, so that decoding loads a run's four scales as one vector instead of
//! looking up four f16 values. In Chromium that made a pass over Gemma 3's output matrix 9-10% faster, for 2
//! bytes a block (6%) more; a vector conversion of f16 scales gathered into a plane (the same
//! bytes) was slower than the lookups (docs/BENCHMARKS.md, issue 15's eleventh stop). The
//! widening is exact, so every form keeps its bits.

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

/// The little-endian u16 at `at`, in one load: LLVM compiles `u16::from_le_bytes([*at,
/// *at.add(1)])` for wasm into two byte loads, two shifts and an or, and the kernels read a
/// scale per block and row.
///
/// # Safety
/// `at` points at two readable bytes.
#[inline(always)]
// Only the wasm SIMD forms read scales this way.
#[cfg_attr(
    not(all(target_arch = "wasm32", target_feature = "simd128")),
    allow(dead_code)
)]
pub(crate) unsafe fn le_u16(at: *const u8) -> u16 {
    u16::from_le(unsafe { std::ptr::read_unaligned(at as *const u16) })
}

/// `u8x16_shr(q, 4)`'s bits when `low` is `u8x16_splat(0x0f)`: wasm has no byte shift, and V8
/// builds `i8x16.shr_u` from a 16-bit shift and a mask that it makes anew at every use (four
/// instructions), where this one's mask stays in a register for the whole loop.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub(crate) fn high_nibbles(
    q: core::arch::wasm32::v128,
    low: core::arch::wasm32::v128,
) -> core::arch::wasm32::v128 {
    use core::arch::wasm32::*;
    v128_and(u16x8_shr(q, 4), low)
}

fn scale_at(table: &[f32], block: &[u8]) -> f32 {
    table[u16::from_le_bytes([block[0], block[1]]) as usize]
}

/// The eight i32 lanes of an AVX register added: exact, so any order gives the same sum.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub(crate) unsafe fn hsum_i32(v: std::arch::x86_64::__m256i) -> i32 {
    use std::arch::x86_64::*;
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

/// Natively (AVX2): each block's exact integer sum from SIMD, then the wasm builds' own f32
/// steps in their own order, so the CLI gives the page's bits (the relaxed-SIMD build's, which
/// Chromium runs): `sequential` for prefill's reference order, else decoding's
/// (`in_order_sum`). ggml's AVX2 order (eight f32 lanes, fused multiply-adds) gave other
/// last bits, which the activations' rounding to 8 bits grew layer by layer: SmolLM2's first
/// token after "Hi" came out 0.04 nats apart between the CLI and the page.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub(crate) fn native_rows<const R: usize>(
    n: usize,
    sequential: bool,
    term: impl Fn(usize) -> [f32; R],
) -> [f32; R] {
    if sequential {
        let mut acc = [0f32; R];
        for b in 0..n {
            let t = term(b);
            for r in 0..R {
                acc[r] += t[r];
            }
        }
        acc
    } else {
        std::array::from_fn(|r| in_order_sum(n, |b| term(b)[r]))
    }
}

/// Decoding's order natively (AVX2): `in_order_sum` over block terms `s·d (+ m)`, four blocks
/// at a time as the wasm forms take them: their exact sums gathered into one vector's lanes,
/// then per lane a multiply, an add of `m` where `MIN` (Q4_1's minimum term) and an add into
/// the lane's running sum, the same IEEE operations in the same order as `in_order_sum`'s.
///
/// # Safety
/// `lanes(b)` must be safe to call for every block `b < n`.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub(crate) unsafe fn native_in_order<const MIN: bool>(
    n: usize,
    lanes: impl Fn(usize) -> std::arch::x86_64::__m256i,
    d: impl Fn(usize) -> f32,
    m: impl Fn(usize) -> f32,
) -> f32 {
    use std::arch::x86_64::*;
    let full = n & !3;
    let mut acc = _mm_setzero_ps();
    let mut b = 0;
    while b < full {
        // Pairwise adds of exact i32s: [Σ block b, b+1, b+2, b+3].
        let ab = _mm256_hadd_epi32(lanes(b), lanes(b + 1));
        let cd = _mm256_hadd_epi32(lanes(b + 2), lanes(b + 3));
        let all = _mm256_hadd_epi32(ab, cd);
        let s = _mm_add_epi32(
            _mm256_castsi256_si128(all),
            _mm256_extracti128_si256(all, 1),
        );
        let dv = _mm_setr_ps(d(b), d(b + 1), d(b + 2), d(b + 3));
        let mut t = _mm_mul_ps(_mm_cvtepi32_ps(s), dv);
        if MIN {
            t = _mm_add_ps(t, _mm_setr_ps(m(b), m(b + 1), m(b + 2), m(b + 3)));
        }
        acc = _mm_add_ps(acc, t);
        b += 4;
    }
    let mut l = [0f32; 4];
    _mm_storeu_ps(l.as_mut_ptr(), acc);
    let mut sum = 0.0 + l[0] + l[1] + l[2] + l[3];
    for b in full..n {
        let t = hsum_i32(lanes(b)) as f32 * d(b);
        sum += if MIN { t + m(b) } else { t };
    }
    sum
}

#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
mod avx2 {
    use super::{Activation, BLOCK_BYTES};
    use std::arch::x86_64::*;

    /// Block `b`'s products against `y` in eight i32 lanes whose total is the exact Σ w·y.
    ///
    /// # Safety
    /// `w` holds block `b`, and `y` has it.
    #[inline(always)]
    pub unsafe fn block_lanes(w: *const u8, y: &Activation, b: usize) -> __m256i {
        let x = _mm256_loadu_si256(w.add(b * BLOCK_BYTES + 2) as *const __m256i);
        let yv = _mm256_loadu_si256(y.blocks.as_ptr().add(b * BLOCK_BYTES + 2) as *const __m256i);
        let p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(yv, x));
        _mm256_madd_epi16(p, _mm256_set1_epi16(1))
    }

    /// Block `b`'s exact Σ w·y against each of `ys` (ggml's sign trick: |w| as unsigned times
    /// y with w's sign; a file's −128 becomes 128, which still fits).
    ///
    /// # Safety
    /// `w` holds block `b`, and every `ys` has it.
    #[inline(always)]
    pub unsafe fn block_sums<const R: usize>(
        w: *const u8,
        ys: [&Activation; R],
        b: usize,
    ) -> [i32; R] {
        let x = _mm256_loadu_si256(w.add(b * BLOCK_BYTES + 2) as *const __m256i);
        let ax = _mm256_sign_epi8(x, x);
        let ones = _mm256_set1_epi16(1);
        std::array::from_fn(|r| {
            let y = ys[r].blocks.as_ptr().add(b * BLOCK_BYTES + 2);
            let sy = _mm256_sign_epi8(_mm256_loadu_si256(y as *const __m256i), x);
            super::hsum_i32(_mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), ones))
        })
    }
}

/// Native `dot_rows` / `dot_in_order` on stored rows: `native_rows` over `avx2::block_sums`.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
fn native_stored<const R: usize>(w: &[u8], ys: [&Activation; R], sequential: bool) -> [f32; R] {
    let table = scale_table();
    native_rows(ys[0].scales.len(), sequential, |b| {
        let dw = scale_at(table, &w[b * BLOCK_BYTES..]);
        // SAFETY: the callers check that `w` holds a block per activation block.
        let s = unsafe { avx2::block_sums(w.as_ptr(), ys, b) };
        std::array::from_fn(|r| s[r] as f32 * (dw * ys[r].scales[b]))
    })
}

/// One quantized activation row (from `act_quant::q8_0`), prepared for many weight rows.
pub struct Activation<'a> {
    blocks: &'a [u8],
    scales: Vec<f32>,
    /// The simd128 form's: the row's bytes sign-extended to i16, four vectors per block, done
    /// once per product rather than once per weight row.
    #[cfg(all(
        target_arch = "wasm32",
        target_feature = "simd128",
        not(target_feature = "relaxed-simd")
    ))]
    wide: Vec<core::arch::wasm32::v128>,
    /// The relaxed-SIMD form's: per block, the row's positive parts max(y, 0) (two vectors),
    /// then its negative parts max(−y, 0) (two vectors), all within 0..=127.
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    split: Vec<core::arch::wasm32::v128>,
}

impl<'a> Activation<'a> {
    /// `blocks` are the row's Q8_0 blocks as bytes (`BLOCK_BYTES` each), from ggml's quantizer
    /// (`act_quant::q8_0`): quants within ±127, except in a block whose values are too small
    /// for 127/amax to be finite, where −128 can appear but the block's scale is 0, so the
    /// relaxed form's dropping it (max(−(−128), 0) wraps to 0) changes no bit.
    pub fn new(blocks: &'a [u8]) -> Self {
        let table = scale_table();
        let scales = blocks
            .chunks_exact(BLOCK_BYTES)
            .map(|b| scale_at(table, b))
            .collect();
        Activation {
            blocks,
            scales,
            #[cfg(all(
                target_arch = "wasm32",
                target_feature = "simd128",
                not(target_feature = "relaxed-simd")
            ))]
            wide: simd::widen(blocks),
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            split: relaxed::split(blocks),
        }
    }
}

/// Runs `$body` with `$F` this build's `lanes::BlockSums` form: in the relaxed build, with the
/// products summed by the `dot_form` in use now.
#[cfg(all(
    target_arch = "wasm32",
    target_feature = "simd128",
    not(target_feature = "relaxed-simd")
))]
macro_rules! with_form {
    ($F:ident => $body:expr) => {{
        type $F = simd::Widened;
        $body
    }};
}
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
macro_rules! with_form {
    ($F:ident => $body:expr) => {
        crate::engine::dot_form::with_dot!(D => {
            type $F = relaxed::Split<D>;
            $body
        })
    };
}

/// The dot product of one weight row (Q8_0 bytes, as many blocks as the activation) with `y`.
pub fn dot(w: &[u8], y: &Activation) -> f32 {
    dot_rows::<1>(w, [y])[0]
}

/// One weight row against `R` activation rows: each weight block is loaded once for all of
/// them (prefill, scoring). Every output has exactly the bits `dot` gives it alone.
pub fn dot_rows<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].scales.len();
    assert!(w.len() == n * BLOCK_BYTES && ys.iter().all(|y| y.scales.len() == n));
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: lengths checked above.
        unsafe { simd_rows::<lanes::Stored, R>(w, ys) }
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    {
        native_stored(w, ys, true)
    }
    #[cfg(not(any(
        all(target_arch = "wasm32", target_feature = "simd128"),
        all(target_arch = "x86_64", target_feature = "avx2")
    )))]
    {
        portable(w, ys)
    }
}

/// `dot_rows` on a row laid out by `arrange_row`, with the same bits.
pub fn dot_rows_arranged<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].scales.len();
    assert!(w.len() == n * ARRANGED_BLOCK_BYTES && ys.iter().all(|y| y.scales.len() == n));
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: lengths checked above.
        unsafe { simd_rows::<lanes::Arranged, R>(w, ys) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        portable_arranged(w, ys)
    }
}

/// # Safety
/// `w` holds one block in layout `L` per block of every row of `ys`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
unsafe fn simd_rows<L: lanes::Layout, const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let mut out = [0f32; R];
    for (i, chunk) in ys.chunks(4).enumerate() {
        // A short chunk repeats its last row: lanes are independent, so the others keep
        // their bits.
        let four = std::array::from_fn(|j| chunk[j.min(chunk.len() - 1)]);
        let v = with_form!(F => unsafe { lanes::rows4::<F, L>(w, four, scale_table()) });
        out[4 * i..4 * i + chunk.len()].copy_from_slice(&v[..chunk.len()]);
    }
    out
}

/// One weight row against one activation row, read front to back (decoding in the wasm
/// builds, `weight::decode_streams`): four consecutive blocks to a vector's lanes, their
/// products summed in `in_order_sum`'s order; `portable_in_order`'s bits.
pub fn dot_in_order(w: &[u8], y: &Activation) -> f32 {
    assert!(w.len() == y.scales.len() * BLOCK_BYTES);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: length checked above.
        with_form!(F => unsafe { lanes::in_order::<F, lanes::Stored>(w, y, scale_table()) })
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    {
        let table = scale_table();
        // SAFETY: length checked above.
        unsafe {
            native_in_order::<false>(
                y.scales.len(),
                |b| avx2::block_lanes(w.as_ptr(), y, b),
                |b| scale_at(table, &w[b * BLOCK_BYTES..]) * y.scales[b],
                |_| 0.0,
            )
        }
    }
    #[cfg(not(any(
        all(target_arch = "wasm32", target_feature = "simd128"),
        all(target_arch = "x86_64", target_feature = "avx2")
    )))]
    {
        portable_in_order(w, y)
    }
}

/// `dot_in_order` on a row laid out by `arrange_row`, with the same bits: a group's four
/// scales are one vector load instead of four table lookups.
pub fn dot_in_order_arranged(w: &[u8], y: &Activation) -> f32 {
    assert!(w.len() == y.scales.len() * ARRANGED_BLOCK_BYTES);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // SAFETY: length checked above.
        with_form!(F => unsafe { lanes::in_order::<F, lanes::Arranged>(w, y, scale_table()) })
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        let n = y.scales.len();
        in_order_sum(n, |b| block_term(arranged_block(w, b, n), y, b))
    }
}

/// How the decoding kernels (`dot_in_order` here and in `q4_1`, `q5_0`) add up a row's block
/// products, `term(b)` for block `b`: while whole runs of four blocks remain, block `b` goes to
/// lane `b % 4`, each lane a running f32 sum from 0.0; then 0.0 plus lane 0, 1, 2 and 3, one
/// addition at a time; then the last `n % 4` blocks one by one. One vector accumulator in
/// SIMD, where the reference's single running sum (`dot`, prefill's tiles) is four dependent
/// additions per run of four blocks, which held decoding back: a pass over Gemma 3's 178 MB
/// output matrix in Chromium went from 13.1 to 12.0 ms, medians of five rounds
/// (docs/BENCHMARKS.md, issue 15's thirteenth stop). The rounding differs from the
/// reference's in the last bits, as llama.cpp's own SIMD forms' does. Both wasm builds decode
/// in this order, and so does the native build (`native_in_order`, the same operations).
pub fn in_order_sum(n: usize, term: impl Fn(usize) -> f32) -> f32 {
    let full = n & !3;
    let mut lanes = [0f32; 4];
    for b in 0..full {
        lanes[b % 4] += term(b);
    }
    let mut sum = 0.0 + lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for b in full..n {
        sum += term(b);
    }
    sum
}

/// `dot_in_order`'s arithmetic in plain Rust on a stored row: the decoding kernels' reference
/// (`kernel_check`), and natively.
pub fn portable_in_order(w: &[u8], y: &Activation) -> f32 {
    let table = scale_table();
    in_order_sum(y.scales.len(), |b| {
        let wb = &w[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES];
        block_term((&wb[2..], scale_at(table, wb)), y, b)
    })
}

/// Block `b`'s f32 product, ggml's: the exact integer sum, then `sumi · (dw · dy)`.
fn block_term((q, dw): (&[u8], f32), y: &Activation, b: usize) -> f32 {
    let yb = &y.blocks[b * BLOCK_BYTES + 2..(b + 1) * BLOCK_BYTES];
    let sumi: i32 = q
        .iter()
        .zip(yb)
        .map(|(&w, &y)| w as i8 as i32 * y as i8 as i32)
        .sum();
    sumi as f32 * (dw * y.scales[b])
}

/// The reference form, ggml's: machines without SIMD, the tests and `kernel_check`.
pub fn portable<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let table = scale_table();
    portable_with(ys, |b| {
        let wb = &w[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES];
        (&wb[2..], scale_at(table, wb))
    })
}

/// `portable` on a row laid out by `arrange_row`.
pub fn portable_arranged<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].scales.len();
    portable_with(ys, |b| arranged_block(w, b, n))
}

/// ggml's arithmetic over blocks given as (32 quants, scale).
fn portable_with<'w, const R: usize>(
    ys: [&Activation; R],
    block: impl Fn(usize) -> (&'w [u8], f32),
) -> [f32; R] {
    let n = ys[0].scales.len();
    ys.map(|y| {
        let mut sum = 0f32;
        for b in 0..n {
            sum += block_term(block(b), y, b);
        }
        sum
    })
}

/// Bytes per block laid out by `arrange_row`: an f32 scale and 32 quants.
pub const ARRANGED_BLOCK_BYTES: usize = 36;

/// Lays out one row of stored Q8_0 blocks (`BLOCK_BYTES` each) into `out`
/// (`ARRANGED_BLOCK_BYTES` each): per run of four blocks, their four scales widened to f32 (16
/// bytes, so that decoding loads them as one vector instead of looking up four f16 values in
/// a table), then their four runs of 32 quants; the blocks past the row's last run of four
/// each as an f32 scale and its quants. Widening is exact, so every product keeps its bits.
pub fn arrange_row(stored: &[u8], out: &mut [u8]) {
    let n = stored.len() / BLOCK_BYTES;
    assert!(stored.len() == n * BLOCK_BYTES && out.len() == n * ARRANGED_BLOCK_BYTES);
    let full = n & !3;
    let scale = |b: usize| {
        f16_to_f32(u16::from_le_bytes([
            stored[b * BLOCK_BYTES],
            stored[b * BLOCK_BYTES + 1],
        ]))
        .to_le_bytes()
    };
    let quants = |b: usize| &stored[b * BLOCK_BYTES + 2..(b + 1) * BLOCK_BYTES];
    for g in (0..full).step_by(4) {
        let at = &mut out[g * ARRANGED_BLOCK_BYTES..(g + 4) * ARRANGED_BLOCK_BYTES];
        for i in 0..4 {
            at[4 * i..4 * i + 4].copy_from_slice(&scale(g + i));
            at[16 + 32 * i..16 + 32 * (i + 1)].copy_from_slice(quants(g + i));
        }
    }
    for b in full..n {
        let at = &mut out[b * ARRANGED_BLOCK_BYTES..(b + 1) * ARRANGED_BLOCK_BYTES];
        at[..4].copy_from_slice(&scale(b));
        at[4..].copy_from_slice(quants(b));
    }
}

/// Block `b` of a row of `n` blocks laid out by `arrange_row`: its 32 quants and its scale.
pub fn arranged_block(row: &[u8], b: usize, n: usize) -> (&[u8], f32) {
    let (quants, scale) = if b < n & !3 {
        let g = (b & !3) * ARRANGED_BLOCK_BYTES;
        (g + 16 + 32 * (b & 3), g + 4 * (b & 3))
    } else {
        let at = b * ARRANGED_BLOCK_BYTES;
        (at + 4, at)
    };
    let d = f32::from_le_bytes([row[scale], row[scale + 1], row[scale + 2], row[scale + 3]]);
    (&row[quants..quants + 32], d)
}

/// A Q8_0 matrix whose rows are laid out by `arrange_row`.
pub struct Arranged {
    bytes: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl Arranged {
    /// An empty matrix of `rows` rows of `cols` values (a multiple of `BLOCK`), filled by
    /// `set_rows`.
    pub fn new(rows: usize, cols: usize) -> Self {
        assert!(cols.is_multiple_of(BLOCK));
        Arranged {
            bytes: vec![0; rows * (cols / BLOCK) * ARRANGED_BLOCK_BYTES],
            rows,
            cols,
        }
    }

    /// Lays out stored rows `first..` (whole rows of `BLOCK_BYTES` blocks) into place.
    pub fn set_rows(&mut self, first: usize, stored: &[u8]) {
        let per_row = self.cols / BLOCK;
        let (stored_row, row) = (per_row * BLOCK_BYTES, per_row * ARRANGED_BLOCK_BYTES);
        for (r, s) in stored.chunks_exact(stored_row).enumerate() {
            let at = (first + r) * row;
            arrange_row(s, &mut self.bytes[at..at + row]);
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Row `r`'s values, as candle's Q8_0 dequantization gives them (`q as f32 * d`).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let per_row = self.cols / BLOCK;
        let row_bytes = per_row * ARRANGED_BLOCK_BYTES;
        let row = &self.bytes[r * row_bytes..(r + 1) * row_bytes];
        for (b, chunk) in out.chunks_exact_mut(BLOCK).enumerate().take(per_row) {
            let (q, d) = arranged_block(row, b, per_row);
            for (o, &q) in chunk.iter_mut().zip(q) {
                *o = q as i8 as f32 * d;
            }
        }
    }
}

/// The loops both wasm forms share; a `BlockSums` form gives each block's integer sums.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use super::simd::{add_in_order, sum_lanes4, total};
    use super::{Activation, ARRANGED_BLOCK_BYTES, BLOCK_BYTES};
    use core::arch::wasm32::*;

    /// How one form reads a weight block and sums its products with an activation block.
    pub trait BlockSums {
        /// A weight block's 32 quants, loaded once for several activation rows.
        type Quants: Copy;
        /// # Safety
        /// `q` points at 32 readable bytes.
        unsafe fn load(q: *const u8) -> Self::Quants;
        /// Four i32 lanes whose total is the block's exact Σ w·y (any grouping).
        ///
        /// # Safety
        /// `y` has a block `b`.
        unsafe fn sums(w: Self::Quants, y: &Activation, b: usize) -> v128;
    }

    #[inline(always)]
    unsafe fn scale(table: &[f32], wb: *const u8) -> f32 {
        *table.get_unchecked(super::le_u16(wb) as usize)
    }

    /// Where a weight row keeps each block's quants and scale: as stored (`Stored`), or
    /// `super::arrange_row`'s groups (`Arranged`).
    pub trait Layout {
        /// Quants of block `b + i` (`i` < 4), where `b` starts a whole group of four.
        ///
        /// # Safety
        /// The row has block `b + 3`.
        unsafe fn group_quants(w: *const u8, b: usize, i: usize) -> *const u8;
        /// The scales of blocks `b..b + 4`, `b` as for `group_quants`.
        ///
        /// # Safety
        /// As `group_quants`; `table` is `scale_table()`.
        unsafe fn group_scales(w: *const u8, b: usize, table: &[f32]) -> v128;
        /// Block `b`'s quants and scale, where the row's whole groups end at `full`.
        ///
        /// # Safety
        /// The row has block `b`; `table` is `scale_table()`.
        unsafe fn block(w: *const u8, b: usize, full: usize, table: &[f32]) -> (*const u8, f32);
    }

    /// Candle's blocks: an f16 scale, then 32 quants.
    pub struct Stored;
    impl Layout for Stored {
        #[inline(always)]
        unsafe fn group_quants(w: *const u8, b: usize, i: usize) -> *const u8 {
            w.add((b + i) * BLOCK_BYTES + 2)
        }
        #[inline(always)]
        unsafe fn group_scales(w: *const u8, b: usize, table: &[f32]) -> v128 {
            let wb: [*const u8; 4] = std::array::from_fn(|i| w.add((b + i) * BLOCK_BYTES));
            f32x4(
                scale(table, wb[0]),
                scale(table, wb[1]),
                scale(table, wb[2]),
                scale(table, wb[3]),
            )
        }
        #[inline(always)]
        unsafe fn block(w: *const u8, b: usize, _: usize, table: &[f32]) -> (*const u8, f32) {
            let wb = w.add(b * BLOCK_BYTES);
            (wb.add(2), scale(table, wb))
        }
    }

    /// `super::arrange_row`'s: four f32 scales, then four blocks' quants, per whole group;
    /// past them, an f32 scale and 32 quants per block.
    pub struct Arranged;
    impl Layout for Arranged {
        #[inline(always)]
        unsafe fn group_quants(w: *const u8, b: usize, i: usize) -> *const u8 {
            w.add(b * ARRANGED_BLOCK_BYTES + 16 + 32 * i)
        }
        #[inline(always)]
        unsafe fn group_scales(w: *const u8, b: usize, _: &[f32]) -> v128 {
            v128_load(w.add(b * ARRANGED_BLOCK_BYTES) as *const v128)
        }
        #[inline(always)]
        unsafe fn block(w: *const u8, b: usize, full: usize, _: &[f32]) -> (*const u8, f32) {
            let (quants, scale) = if b < full {
                let g = w.add((b & !3) * ARRANGED_BLOCK_BYTES);
                (g.add(16 + 32 * (b & 3)), g.add(4 * (b & 3)))
            } else {
                let at = w.add(b * ARRANGED_BLOCK_BYTES);
                (at.add(4), at)
            };
            (quants, (scale as *const f32).read_unaligned())
        }
    }

    /// One weight row against one activation row: blocks b..b+4 in the four lanes (their
    /// exact integer sums, then each block's f32 product), each lane's products summed in the
    /// lane, the lanes then added up in order, and the last `n % 4` blocks one at a time:
    /// `super::in_order_sum`'s order.
    ///
    /// # Safety
    /// `w` holds one block per activation block in layout `L`, and `table` is
    /// `scale_table()` (the callers check the lengths).
    #[inline(always)]
    pub unsafe fn in_order<F: BlockSums, L: Layout>(
        w: &[u8],
        y: &Activation,
        table: &[f32],
    ) -> f32 {
        let w = w.as_ptr();
        let n = y.scales.len();
        let full = n & !3;
        let mut acc = f32x4_splat(0.0);
        let mut b = 0;
        while b < full {
            let s: [v128; 4] =
                std::array::from_fn(|i| F::sums(F::load(L::group_quants(w, b, i)), y, b + i));
            let dw = L::group_scales(w, b, table);
            let d = f32x4_mul(dw, v128_load(y.scales.as_ptr().add(b) as *const v128));
            let p = f32x4_mul(f32x4_convert_i32x4(sum_lanes4(s)), d);
            acc = f32x4_add(acc, p);
            b += 4;
        }
        let mut sum = add_in_order(0.0, acc);
        while b < n {
            let (q, dw) = L::block(w, b, full, table);
            let s = F::sums(F::load(q), y, b);
            sum += total(s) as f32 * (dw * *y.scales.get_unchecked(b));
            b += 1;
        }
        sum
    }

    /// One weight row against four activation rows, one to a lane.
    ///
    /// # Safety
    /// As `in_order`, for every row.
    #[inline(always)]
    pub unsafe fn rows4<F: BlockSums, L: Layout>(
        w: &[u8],
        ys: [&Activation; 4],
        table: &[f32],
    ) -> [f32; 4] {
        let w = w.as_ptr();
        let n = ys[0].scales.len();
        let full = n & !3;
        let mut acc = f32x4_splat(0.0);
        for b in 0..n {
            let (quants, dw) = L::block(w, b, full, table);
            let q = F::load(quants);
            let s = ys.map(|y| F::sums(q, y, b));
            let dy = f32x4(
                *ys[0].scales.get_unchecked(b),
                *ys[1].scales.get_unchecked(b),
                *ys[2].scales.get_unchecked(b),
                *ys[3].scales.get_unchecked(b),
            );
            let d = f32x4_mul(f32x4_splat(dw), dy);
            acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(sum_lanes4(s)), d));
        }
        let mut out = [0f32; 4];
        v128_store(out.as_mut_ptr() as *mut v128, acc);
        out
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) mod simd {
    use core::arch::wasm32::*;

    #[cfg(not(target_feature = "relaxed-simd"))]
    pub fn widen(blocks: &[u8]) -> Vec<v128> {
        widen_blocks(blocks, super::BLOCK_BYTES, 2)
    }

    /// The simd128 form: quants sign-extended to i16, eight products per `i32x4.dot_i16x8`.
    #[cfg(not(target_feature = "relaxed-simd"))]
    pub struct Widened;
    #[cfg(not(target_feature = "relaxed-simd"))]
    impl super::lanes::BlockSums for Widened {
        type Quants = [v128; 4];
        #[inline(always)]
        unsafe fn load(q: *const u8) -> [v128; 4] {
            let q = q as *const i8;
            [0, 8, 16, 24].map(|o| i16x8_load_extend_i8x8(q.add(o)))
        }
        #[inline(always)]
        unsafe fn sums(w: [v128; 4], y: &super::Activation, b: usize) -> v128 {
            let yv = y.wide.as_ptr().add(4 * b);
            let s = i32x4_dot_i16x8(w[0], *yv);
            let s = i32x4_add(s, i32x4_dot_i16x8(w[1], *yv.add(1)));
            let s = i32x4_add(s, i32x4_dot_i16x8(w[2], *yv.add(2)));
            i32x4_add(s, i32x4_dot_i16x8(w[3], *yv.add(3)))
        }
    }

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

    /// `sum` plus lane 0, then lane 1, 2 and 3 of `p`, one f32 addition at a time (the
    /// `in_order` kernels' lanes, `super::in_order_sum`).
    #[inline(always)]
    pub fn add_in_order(sum: f32, p: v128) -> f32 {
        let sum = sum + f32x4_extract_lane::<0>(p);
        let sum = sum + f32x4_extract_lane::<1>(p);
        let sum = sum + f32x4_extract_lane::<2>(p);
        sum + f32x4_extract_lane::<3>(p)
    }

    /// The sum of the four i32 lanes of `s` (exact).
    #[inline(always)]
    pub fn total(s: v128) -> i32 {
        i32x4_extract_lane::<0>(sum_lanes4([s; 4]))
    }

    /// The 32 signed bytes after `header` bytes of every `block_bytes`-long block, as four
    /// i16x8 vectors per block (Q8_0: a 2-byte scale; Q8_1: two 2-byte scales).
    #[cfg(not(target_feature = "relaxed-simd"))]
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
}

/// The relaxed-SIMD form (the page's second build, for browsers that have relaxed SIMD): 16
/// byte products per `i32x4.relaxed_dot_i8x16_i7x16_add` instead of 8 per `i32x4.dot_i16x8`
/// after widening. Its second operand must stay within 0..=127 for the result to be the same
/// on every machine, so the weight's quants go first (any i8) and the activation second, split
/// into its positive and negative parts: Σ w·y = Σ w·max(y, 0) − Σ w·max(−y, 0). Four dots a
/// block, but no unpacking: Qwen2.5's Q8_0 products went from 28 to 21-23 ms a decoded token
/// (docs/BENCHMARKS.md).
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub(crate) mod relaxed {
    use super::BLOCK_BYTES;
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

    /// The two ways to sum byte products into i32 lanes (`engine::dot_form`): the same exact
    /// sums, each the faster on some machines.
    pub trait Dot {
        /// `acc` plus Σ a·u over two pairs of vectors, in four i32 lanes, where every byte of
        /// `u0` and `u1` is 0..=63 (nibbles, Q5_0's five bits, Q6_K's six): each i16 pair of
        /// products is at most 2·128·63 = 16,128 in size, so nothing saturates whichever
        /// instructions a machine uses, and every machine gives the same lanes.
        fn pair_small_add(a0: v128, u0: v128, a1: v128, u1: v128, acc: v128) -> v128;
        /// A Q8_0 block's Σ w·y in four i32 lanes, from its two halves of quants `w` (any
        /// bytes) and `yv`'s four vectors (`split`: the positive parts of both halves, then the
        /// negated negative parts, each 0..=127; an i16 pair at most 2·128·127 = 32,512).
        ///
        /// # Safety
        /// `yv` points at four readable vectors.
        unsafe fn split_sums(w: [v128; 2], yv: *const v128) -> v128;
    }

    /// Two `i16x8.relaxed_dot_i8x16_i7x16_s`, added in i16 and widened once. Where the CPU
    /// has no AVX-VNNI, V8 builds an `i32x4` relaxed dot from `pmaddubsw`, then `pmaddwd`
    /// with a vector of ones that it makes anew at each use, then an add (node 20's V8,
    /// `--print-wasm-code`): two of them cost ten instructions, this four. In Chromium 148 on
    /// an AMD EPYC VM, where decoding is bound by instructions rather than memory, this and
    /// `groups8`'s use of it made one-thread decoding 8-11% faster and prefill 20-28%.
    pub struct Pairs;
    /// Two chained `i32x4.relaxed_dot_i8x16_i7x16_add_s`: one `vpdpbusd` each where V8 finds
    /// AVX-VNNI, one `sdot` on Arm. On the Intel Xeon VM of issue 15's twenty-second stop,
    /// decoding's Q4_1 and Q5_0 rows ran 5-9% faster than with `Pairs` and arranged Q8_0
    /// rows 6-31%; with V8's AVX-VNNI turned off (`--no-enable-avx-vnni`), 18-35% slower.
    pub struct DotAdd;

    impl Dot for Pairs {
        #[inline(always)]
        fn pair_small_add(a0: v128, u0: v128, a1: v128, u1: v128, acc: v128) -> v128 {
            let s = i16x8_add(
                i16x8_relaxed_dot_i8x16_i7x16(a0, u0),
                i16x8_relaxed_dot_i8x16_i7x16(a1, u1),
            );
            i32x4_add(acc, i32x4_dot_i16x8(s, i16x8_splat(1)))
        }
        #[inline(always)]
        unsafe fn split_sums(w: [v128; 2], yv: *const v128) -> v128 {
            // The two halves' i16 sums could pass i16 together, so each widens on its own.
            let ones = i16x8_splat(1);
            i32x4_add(
                i32x4_dot_i16x8(dot_signed16(w[0], *yv, *yv.add(2)), ones),
                i32x4_dot_i16x8(dot_signed16(w[1], *yv.add(1), *yv.add(3)), ones),
            )
        }
    }

    impl Dot for DotAdd {
        #[inline(always)]
        fn pair_small_add(a0: v128, u0: v128, a1: v128, u1: v128, acc: v128) -> v128 {
            let s = i32x4_relaxed_dot_i8x16_i7x16_add(a0, u0, acc);
            i32x4_relaxed_dot_i8x16_i7x16_add(a1, u1, s)
        }
        #[inline(always)]
        unsafe fn split_sums(w: [v128; 2], yv: *const v128) -> v128 {
            let zero = i32x4_splat(0);
            let pos = i32x4_relaxed_dot_i8x16_i7x16_add(w[0], *yv, zero);
            let pos = i32x4_relaxed_dot_i8x16_i7x16_add(w[1], *yv.add(1), pos);
            let neg = i32x4_relaxed_dot_i8x16_i7x16_add(w[0], *yv.add(2), zero);
            let neg = i32x4_relaxed_dot_i8x16_i7x16_add(w[1], *yv.add(3), neg);
            i32x4_sub(pos, neg)
        }
    }

    /// Σ a·u over two pairs of vectors in four i32 lanes (`Dot::pair_small_add` from zero).
    #[inline(always)]
    pub fn dot_pair_small<D: Dot>(a0: v128, u0: v128, a1: v128, u1: v128) -> v128 {
        D::pair_small_add(a0, u0, a1, u1, i32x4_splat(0))
    }

    /// Σ w·(y⁺ − y⁻) over 16 values in i16 pairs, for `w` any bytes and `pos`, `neg` the
    /// activation's positive and negative parts (0..=127, disjoint): each pair's difference is
    /// the exact w·y of two values, at most 2 · 128 · 127 = 32,512 in size, so the i16
    /// subtraction is exact (neither part saturates: each is at most 32,512 too).
    #[inline(always)]
    pub fn dot_signed16(w: v128, pos: v128, neg: v128) -> v128 {
        i16x8_sub(
            i16x8_relaxed_dot_i8x16_i7x16(w, pos),
            i16x8_relaxed_dot_i8x16_i7x16(w, neg),
        )
    }

    /// `init` plus Σ over eight groups of a tile vector (`y`: eight vectors, lane l holding
    /// four values of row l) against eight groups of weight values (`splats8`), two groups to
    /// each `dot_pair_small`, so every weight value must be 0..=63 (the callers' are Q4_1's
    /// and Q4_K's nibbles and Q5_0's five bits); exact.
    ///
    /// # Safety
    /// `y` points at eight readable vectors.
    #[inline(always)]
    pub unsafe fn groups8<D: Dot>(y: *const v128, w: &[v128; 8], init: v128) -> v128 {
        let mut s = init;
        for j in (0..8).step_by(2) {
            s = D::pair_small_add(
                v128_load(y.add(j)),
                w[j],
                v128_load(y.add(j + 1)),
                w[j + 1],
                s,
            );
        }
        s
    }

    /// Per block: max(y, 0) for both halves, then max(−y, 0) for both halves, all within
    /// 0..=127 (a −128 negates to itself and counts as 0: see `Activation::new` for why no bit
    /// changes).
    pub fn split(blocks: &[u8]) -> Vec<v128> {
        let zero = i8x16_splat(0);
        blocks
            .chunks_exact(BLOCK_BYTES)
            .flat_map(|b| {
                // SAFETY: a block has 32 bytes after its 2-byte scale.
                let (y0, y1) = unsafe {
                    (
                        v128_load(b[2..].as_ptr() as *const v128),
                        v128_load(b[18..].as_ptr() as *const v128),
                    )
                };
                [
                    i8x16_max(y0, zero),
                    i8x16_max(y1, zero),
                    i8x16_max(i8x16_neg(y0), zero),
                    i8x16_max(i8x16_neg(y1), zero),
                ]
            })
            .collect()
    }

    /// Q8_0's blocks against `split` activations, summed by `D`.
    pub struct Split<D>(core::marker::PhantomData<D>);
    impl<D: Dot> super::lanes::BlockSums for Split<D> {
        type Quants = [v128; 2];
        #[inline(always)]
        unsafe fn load(q: *const u8) -> [v128; 2] {
            [
                v128_load(q as *const v128),
                v128_load(q.add(16) as *const v128),
            ]
        }
        #[inline(always)]
        unsafe fn sums(w: [v128; 2], y: &super::Activation, b: usize) -> v128 {
            D::split_sums(w, y.split.as_ptr().add(4 * b))
        }
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

    /// Decoding's order, on terms where it shows: lanes by block % 4 (the 1 survives next to
    /// 1e8 in its own lane, where one running sum loses it), then the tail one by one.
    #[test]
    fn in_order_sum_adds_lanes_then_the_tail() {
        let terms = [1e8f32, 1.0, 0.0, 0.0, -1e8, 0.0, 0.0, 0.0, 0.5];
        assert_eq!(in_order_sum(9, |b| terms[b]), 1.5);
        assert_eq!(terms.iter().fold(0f32, |s, t| s + t), 0.5);
        // Fewer than four blocks: one by one.
        assert_eq!(in_order_sum(3, |b| [1e8f32, 1.0, -1e8][b]), 0.0);
        assert_eq!(in_order_sum(0, |_| 1.0), 0.0);
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

    /// `arrange_row` moves every block: each reads back through `arranged_block` as stored
    /// (its f16 scale widened), for rows of whole runs of four, tails only, and both; and
    /// `Arranged` gives candle's dequantized values.
    #[test]
    fn arrange_row_keeps_every_block() {
        use candle_core::{Device, Tensor};
        for n in 1..=9 {
            let stored = bytes(&quantize::<BlockQ8_0>(&values(32 * n, 40 + n as u32)));
            let mut row = vec![0u8; n * ARRANGED_BLOCK_BYTES];
            arrange_row(&stored, &mut row);
            for b in 0..n {
                let s = &stored[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES];
                let (q, d) = arranged_block(&row, b, n);
                assert_eq!(q, &s[2..], "{n} blocks, block {b}");
                assert_eq!(d.to_bits(), scale_at(scale_table(), s).to_bits());
            }
            let rows = 3;
            let x = values(rows * 32 * n, 70 + n as u32);
            let t = Tensor::from_vec(x, (rows, 32 * n), &Device::Cpu).unwrap();
            let qt = candle_core::quantized::QTensor::quantize(
                &t,
                candle_core::quantized::GgmlDType::Q8_0,
            )
            .unwrap();
            let mut a = Arranged::new(rows, 32 * n);
            a.set_rows(0, &qt.data().unwrap());
            let want = qt
                .dequantize(&Device::Cpu)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for (r, want) in want.iter().enumerate() {
                let mut got = vec![0f32; 32 * n];
                a.dequantize_row(r, &mut got);
                assert_eq!(
                    got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{n} blocks, row {r}"
                );
            }
        }
    }
}
