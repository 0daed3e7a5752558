//! The engine's own Q4_K × Q8_K and Q6_K × Q8_K kernels, for the relaxed-SIMD wasm build, so
//! Gemma 3's and Qwen2.5's K-quant tensors stay as stored (4.5 and 6.6 bits per weight)
//! instead of being requantized to Q8_0 (8.5 bits): a smaller heap, fewer bytes per token,
//! and llama.cpp's own weights and activation format (Q8_K: one f32 scale per 256 values).
//!
//! Both grids are unsigned (Q4_K 0..=15, Q6_K 0..=63), so they are valid 7-bit operands of
//! `i32x4.relaxed_dot_i8x16_i7x16_add` as stored. Per 256-value block the arithmetic is
//! ggml's: an exact integer sum of scale × Σq·y over the sub-blocks, the minimum (Q4_K) or the
//! offset of 32 (Q6_K) taken off through the activation's sums per 16 values (`bsums`), then
//! one f32 product per block. The integer sums do not depend on the order of the additions,
//! so the portable form below gives the same bits as the relaxed one.

use super::q8_0::f16_to_f32;

/// candle's `#[repr(C)] BlockQ8K`: f32 d, 256 signed bytes, 16 i16 sums of 16 bytes each.
pub const ACT_BLOCK_BYTES: usize = 4 + 256 + 32;
pub const BLOCK: usize = 256;
/// `BlockQ4K`: f16 d, f16 dmin, 12 bytes of 6-bit scales and minimums, 128 bytes of nibbles.
pub const Q4K_BLOCK_BYTES: usize = 144;
/// `BlockQ6K`: 128 bytes of low nibbles, 64 of high bit pairs, 16 i8 scales, f16 d.
pub const Q6K_BLOCK_BYTES: usize = 210;
/// A Q6_K block widened at load (`q6k_widen`): its 256 values as bytes (0..=63) in element
/// order, its 16 i8 scales, its d as an f32. Unpacking the six-bit values took about a third
/// of the relaxed decoding kernel's instructions: Qwen2.5 decoded Q6_K at 7.8 G values a second
/// against 13 for Q5_0 and Q8_0 (BENCHMARKS' twenty-fifth stop). A byte a value costs 1.31× the
/// tensor's memory.
pub const Q6K_WIDE_BLOCK_BYTES: usize = 276;

/// One activation row quantized to Q8_K, prepared once for many columns.
pub struct Activation<'a> {
    blocks: &'a [u8],
    d: Vec<f32>,
    /// Per block, the sums of its 16 groups of 16 values.
    bsums: Vec<[i32; 16]>,
}

impl<'a> Activation<'a> {
    pub fn new(blocks: &'a [u8]) -> Self {
        let chunks = blocks.chunks_exact(ACT_BLOCK_BYTES);
        let d = chunks
            .clone()
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let bsums = chunks
            .map(|b| {
                std::array::from_fn(|g| i16::from_le_bytes([b[260 + 2 * g], b[261 + 2 * g]]) as i32)
            })
            .collect();
        Activation { blocks, d, bsums }
    }

    /// Block `b`'s 16 sums of 16 values, as the Q8_K block stores them (i16, little-endian).
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    #[inline(always)]
    fn bsums16(&self, b: usize) -> *const u8 {
        self.blocks[b * ACT_BLOCK_BYTES + 260..(b + 1) * ACT_BLOCK_BYTES].as_ptr()
    }

    /// The 256 quantized values of block `b`.
    #[inline(always)]
    fn qs(&self, b: usize) -> &[u8] {
        &self.blocks[b * ACT_BLOCK_BYTES + 4..b * ACT_BLOCK_BYTES + 260]
    }
}

#[inline(always)]
fn half(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Q4_K's eight 6-bit scales and minimums (ggml's `get_scale_min_k4`).
#[inline(always)]
fn scales_mins(q: &[u8]) -> ([i32; 8], [i32; 8]) {
    let mut sc = [0i32; 8];
    let mut mn = [0i32; 8];
    for j in 0..8 {
        let (d, m) = if j < 4 {
            (q[j] & 63, q[j + 4] & 63)
        } else {
            (
                (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4),
                (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
            )
        };
        sc[j] = d as i32;
        mn[j] = m as i32;
    }
    (sc, mn)
}

/// Q4_K's minimums times the activation's sums: Σ over sub-blocks of 32 of m·Σy.
#[inline(always)]
fn q4k_min_term(mins: &[i32; 8], bsums: &[i32; 16]) -> i32 {
    (0..8)
        .map(|s| mins[s] * (bsums[2 * s] + bsums[2 * s + 1]))
        .sum()
}

/// Q6_K's offset: 32·Σ over groups of 16 of scale·Σy.
#[inline(always)]
fn q6k_offset_term(scales: &[u8], bsums: &[i32; 16]) -> i32 {
    32 * (0..16)
        .map(|g| scales[g] as i8 as i32 * bsums[g])
        .sum::<i32>()
}

/// One Q4_K weight row against `R` activation rows.
pub fn q4k_dot_rows<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].d.len();
    assert!(w.len() == n * Q4K_BLOCK_BYTES && ys.iter().all(|y| y.d.len() == n));
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: lengths checked above.
        unsafe { relaxed::q4k_dot_rows(w, ys) }
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    {
        // Natively: AVX2's exact integer totals, then the reference's f32 steps (its bits).
        let n = ys[0].d.len();
        ys.map(|y| {
            let (mut acc, mut acc_min) = (0f32, 0f32);
            for b in 0..n {
                let wb = &w[b * Q4K_BLOCK_BYTES..(b + 1) * Q4K_BLOCK_BYTES];
                let (sc, mn) = scales_mins(&wb[4..16]);
                // SAFETY: `wb` is a whole block and `y.qs(b)` its 256 activation bytes.
                let total = unsafe { avx2::q4k_total(wb[16..].as_ptr(), y.qs(b).as_ptr(), &sc) };
                acc += half(wb, 0) * y.d[b] * total as f32;
                acc_min += half(wb, 2) * y.d[b] * q4k_min_term(&mn, &y.bsums[b]) as f32;
            }
            acc - acc_min
        })
    }
    #[cfg(not(any(
        all(target_arch = "wasm32", target_feature = "relaxed-simd"),
        all(target_arch = "x86_64", target_feature = "avx2")
    )))]
    {
        q4k_portable(w, ys)
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
mod avx2 {
    use std::arch::x86_64::*;

    /// A Q4_K block's exact Σ scale·Σ q·y over its eight sub-blocks of 32, as `q4k_portable`
    /// adds it (integers, so any order gives the same total).
    ///
    /// # Safety
    /// `qs` points at the block's 128 nibble bytes and `yq` at 256 activation bytes.
    #[inline(always)]
    pub unsafe fn q4k_total(qs: *const u8, yq: *const u8, sc: &[i32; 8]) -> i32 {
        let low = _mm256_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        let mut total = 0i32;
        for c in 0..4 {
            let q = _mm256_loadu_si256(qs.add(32 * c) as *const __m256i);
            let (lo, hi) = (
                _mm256_and_si256(q, low),
                _mm256_and_si256(_mm256_srli_epi16(q, 4), low),
            );
            let ylo = _mm256_loadu_si256(yq.add(64 * c) as *const __m256i);
            let yhi = _mm256_loadu_si256(yq.add(64 * c + 32) as *const __m256i);
            // Pairs of nibble × byte products fit i16 (2·15·128).
            let slo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, ylo), ones);
            let shi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, yhi), ones);
            total += sc[2 * c] * crate::engine::q8_0::hsum_i32(slo)
                + sc[2 * c + 1] * crate::engine::q8_0::hsum_i32(shi);
        }
        total
    }
}

/// The reference form: machines without relaxed SIMD, the tests and `kernel_check`.
pub fn q4k_portable<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].d.len();
    ys.map(|y| {
        let (mut acc, mut acc_min) = (0f32, 0f32);
        for b in 0..n {
            let wb = &w[b * Q4K_BLOCK_BYTES..(b + 1) * Q4K_BLOCK_BYTES];
            let (sc, mn) = scales_mins(&wb[4..16]);
            let (qs, yq) = (&wb[16..], y.qs(b));
            let mut total = 0i32;
            for c in 0..4 {
                let (mut lo, mut hi) = (0i32, 0i32);
                for i in 0..32 {
                    let q = qs[32 * c + i];
                    lo += (q & 0xf) as i32 * yq[64 * c + i] as i8 as i32;
                    hi += (q >> 4) as i32 * yq[64 * c + 32 + i] as i8 as i32;
                }
                total += sc[2 * c] * lo + sc[2 * c + 1] * hi;
            }
            acc += half(wb, 0) * y.d[b] * total as f32;
            acc_min += half(wb, 2) * y.d[b] * q4k_min_term(&mn, &y.bsums[b]) as f32;
        }
        acc - acc_min
    })
}

/// Q6_K's 6-bit value of element `i` (0..256) of block `wb`, 0..=63.
fn q6(wb: &[u8], i: usize) -> i32 {
    let (half_, j) = (i / 128, i % 128);
    let (quarter, l) = (j / 32, j % 32);
    let ql = wb[64 * half_ + l + if quarter % 2 == 1 { 32 } else { 0 }];
    let nibble = if quarter >= 2 { ql >> 4 } else { ql & 0xf };
    let high = (wb[128 + 32 * half_ + l] >> (2 * quarter)) & 3;
    (nibble | (high << 4)) as i32
}

/// Q6_K blocks as `Q6K_WIDE_BLOCK_BYTES` blocks: the same values, scales and d, so the
/// products keep their bits. A trailing partial block is dropped (the callers pass whole ones).
pub fn q6k_widen(blocks: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(blocks.len() / Q6K_BLOCK_BYTES * Q6K_WIDE_BLOCK_BYTES);
    for wb in blocks.chunks_exact(Q6K_BLOCK_BYTES) {
        out.extend((0..256).map(|i| q6(wb, i) as u8));
        out.extend_from_slice(&wb[192..208]);
        out.extend_from_slice(&half(wb, 208).to_le_bytes());
    }
    out
}

/// How the portable forms read a Q6_K block: as stored or widened.
trait Q6kLayout {
    const BYTES: usize;
    fn values(wb: &[u8]) -> [i32; 256];
    fn scales(wb: &[u8]) -> &[u8];
    fn d(wb: &[u8]) -> f32;
}

struct Stored;
impl Q6kLayout for Stored {
    const BYTES: usize = Q6K_BLOCK_BYTES;
    fn values(wb: &[u8]) -> [i32; 256] {
        std::array::from_fn(|i| q6(wb, i))
    }
    fn scales(wb: &[u8]) -> &[u8] {
        &wb[192..208]
    }
    fn d(wb: &[u8]) -> f32 {
        half(wb, 208)
    }
}

struct Wide;
impl Q6kLayout for Wide {
    const BYTES: usize = Q6K_WIDE_BLOCK_BYTES;
    fn values(wb: &[u8]) -> [i32; 256] {
        std::array::from_fn(|i| wb[i] as i32)
    }
    fn scales(wb: &[u8]) -> &[u8] {
        &wb[256..272]
    }
    fn d(wb: &[u8]) -> f32 {
        f32::from_le_bytes([wb[272], wb[273], wb[274], wb[275]])
    }
}

/// One stored Q6_K weight row against `R` activation rows. The relaxed build multiplies
/// widened rows (`q6k_wide_dot_rows`) but for a tied output layer, which shares the embedding
/// table's stored blocks rather than holding a widened copy; the others requantize Q6_K
/// (simd128) or use candle's kernel (native).
pub fn q6k_dot_rows<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].d.len();
    assert!(w.len() == n * Q6K_BLOCK_BYTES && ys.iter().all(|y| y.d.len() == n));
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: lengths checked above.
        unsafe { relaxed::q6k_dot_rows(w, ys) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    {
        q6k_portable(w, ys)
    }
}

/// One widened Q6_K weight row (`q6k_widen`) against `R` activation rows, with
/// `q6k_dot_rows`'s bits.
pub fn q6k_wide_dot_rows<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].d.len();
    assert!(w.len() == n * Q6K_WIDE_BLOCK_BYTES && ys.iter().all(|y| y.d.len() == n));
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: lengths checked above.
        unsafe { relaxed::q6k_wide_dot_rows(w, ys) }
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    {
        portable_in::<Wide, R>(w, ys)
    }
}

/// The reference form of a stored row: the tests and `kernel_check`.
pub fn q6k_portable<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    portable_in::<Stored, R>(w, ys)
}

fn portable_in<L: Q6kLayout, const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].d.len();
    ys.map(|y| {
        let mut acc = 0f32;
        for b in 0..n {
            let wb = &w[b * L::BYTES..(b + 1) * L::BYTES];
            let (scales, yq, u) = (L::scales(wb), y.qs(b), L::values(wb));
            let mut total = 0i32;
            for (g, &sc) in scales.iter().enumerate() {
                let s: i32 = (16 * g..16 * g + 16)
                    .map(|i| u[i] * yq[i] as i8 as i32)
                    .sum();
                total += sc as i8 as i32 * s;
            }
            total -= q6k_offset_term(scales, &y.bsums[b]);
            acc += L::d(wb) * y.d[b] * total as f32;
        }
        acc
    })
}

/// Activation rows per prefill pass: two vectors of four rows.
pub const TILE_ROWS: usize = 8;
const TILE_VECTORS: usize = TILE_ROWS / 4;

/// Up to `TILE_ROWS` Q8_K activation rows laid out for `q4k_dot_tile` and `q6k_dot_tile`, four
/// rows to a vector's lanes, so that one relaxed dot advances four rows against a group of four
/// weight values broadcast to every lane. Per block and per vector of four rows: 64 groups of
/// 16 bytes, lane l of group g holding values 4g..4g+4 of row l; eight vectors of sums, lane l
/// holding row l's sums of the 16-value groups 2p and 2p+1 as two i16 (`i32x4.dot_i16x8_s`
/// against a pair of scales or minimums); each row's scale. Rows past the last are zeros.
pub struct Tile<'a> {
    acts: &'a [Activation<'a>],
    groups: Vec<[u8; 16]>,
    sums: Vec<[i16; 8]>,
    d: Vec<[f32; 4]>,
}

impl<'a> Tile<'a> {
    /// `acts`: 1 to `TILE_ROWS` rows of the same length.
    pub fn new(acts: &'a [Activation<'a>]) -> Self {
        assert!((1..=TILE_ROWS).contains(&acts.len()));
        let n = acts[0].d.len();
        assert!(acts.iter().all(|a| a.d.len() == n));
        let mut groups = vec![[0u8; 16]; n * TILE_VECTORS * 64];
        let mut sums = vec![[0i16; 8]; n * TILE_VECTORS * 8];
        let mut d = vec![[0f32; 4]; n * TILE_VECTORS];
        for (r, a) in acts.iter().enumerate() {
            let (v, l) = (r / 4, r % 4);
            for b in 0..n {
                let bv = b * TILE_VECTORS + v;
                let y = a.qs(b);
                super::act_quant::into_lanes(&mut groups[bv * 64..(bv + 1) * 64], l, y);
                for p in 0..8 {
                    // Sums of 16 i8 values: the i16 they were stored as.
                    sums[bv * 8 + p][2 * l] = a.bsums[b][2 * p] as i16;
                    sums[bv * 8 + p][2 * l + 1] = a.bsums[b][2 * p + 1] as i16;
                }
                d[bv][l] = a.d[b];
            }
        }
        Tile {
            acts,
            groups,
            sums,
            d,
        }
    }

    pub fn rows(&self) -> usize {
        self.acts.len()
    }

    /// Row `4v + l`'s values 4g..4g+4 of block `b`.
    fn group(&self, b: usize, v: usize, l: usize, g: usize) -> &[u8] {
        &self.groups[(b * TILE_VECTORS + v) * 64 + g][4 * l..4 * l + 4]
    }

    /// Row `4v + l`'s sum of the 16 values of group `g16` of block `b`.
    fn sum16(&self, b: usize, v: usize, l: usize, g16: usize) -> i32 {
        self.sums[(b * TILE_VECTORS + v) * 8 + g16 / 2][2 * l + g16 % 2] as i32
    }
}

/// One Q4_K weight row against a tile (prefill); `out` takes one value per row, each with
/// `q4k_dot_rows`'s bits.
pub fn q4k_dot_tile(w: &[u8], tile: &Tile, out: &mut [f32]) {
    let n = tile.acts[0].d.len();
    assert!(w.len() == n * Q4K_BLOCK_BYTES && out.len() == tile.rows());
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: lengths checked above and by `Tile::new`.
        let all = super::dot_form::with_dot!(D => unsafe { relaxed::q4k_dot_tile::<D>(w, tile) });
        out.copy_from_slice(&all[..out.len()]);
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    {
        // Natively four rows at a time through the AVX2 row form: the same bits, without the
        // portable tile's scalar products.
        for (acts, out) in tile.acts.chunks(4).zip(out.chunks_mut(4)) {
            match acts {
                [a, b, c, d] => out.copy_from_slice(&q4k_dot_rows(w, [a, b, c, d])),
                [a, b, c] => out.copy_from_slice(&q4k_dot_rows(w, [a, b, c])),
                [a, b] => out.copy_from_slice(&q4k_dot_rows(w, [a, b])),
                [a] => out.copy_from_slice(&q4k_dot_rows(w, [a])),
                _ => unreachable!("chunks of 1 to 4"),
            }
        }
    }
    #[cfg(not(any(
        all(target_arch = "wasm32", target_feature = "relaxed-simd"),
        all(target_arch = "x86_64", target_feature = "avx2")
    )))]
    {
        q4k_portable_tile(w, tile, out)
    }
}

/// One stored Q6_K weight row against a tile (prefill), with `q6k_dot_rows`'s bits.
pub fn q6k_dot_tile(w: &[u8], tile: &Tile, out: &mut [f32]) {
    q6k_tile_in::<Stored>(w, tile, out)
}

/// One widened Q6_K weight row against a tile (prefill), with `q6k_dot_rows`'s bits.
pub fn q6k_wide_dot_tile(w: &[u8], tile: &Tile, out: &mut [f32]) {
    q6k_tile_in::<Wide>(w, tile, out)
}

/// A Q6_K layout that both the portable forms and, in the relaxed build, the SIMD ones read.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
trait TileLayout: Q6kLayout + relaxed::SimdLayout {}
#[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
trait TileLayout: Q6kLayout {}
impl TileLayout for Stored {}
impl TileLayout for Wide {}

fn q6k_tile_in<L: TileLayout>(w: &[u8], tile: &Tile, out: &mut [f32]) {
    let n = tile.acts[0].d.len();
    assert!(w.len() == n * L::BYTES && out.len() == tile.rows());
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: lengths checked above and by `Tile::new`.
        let all =
            super::dot_form::with_dot!(D => unsafe { relaxed::q6k_dot_tile::<D, L>(w, tile) });
        out.copy_from_slice(&all[..out.len()]);
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    {
        portable_tile_in::<L>(w, tile, out)
    }
}

/// A Q4_K block's 256 values (0..=15), in order.
fn q4k_values(qs: &[u8]) -> [i32; 256] {
    let mut u = [0i32; 256];
    for c in 0..4 {
        for i in 0..32 {
            u[64 * c + i] = (qs[32 * c + i] & 0xf) as i32;
            u[64 * c + 32 + i] = (qs[32 * c + i] >> 4) as i32;
        }
    }
    u
}

/// `q4k_dot_tile` read from the tile's layout in plain Rust: the layout's check natively
/// (`kernel_check`), and the form where there is no relaxed SIMD.
pub fn q4k_portable_tile(w: &[u8], tile: &Tile, out: &mut [f32]) {
    let n = tile.acts[0].d.len();
    let (mut acc, mut acc_min) = ([0f32; TILE_ROWS], [0f32; TILE_ROWS]);
    for b in 0..n {
        let wb = &w[b * Q4K_BLOCK_BYTES..(b + 1) * Q4K_BLOCK_BYTES];
        let (sc, mn) = scales_mins(&wb[4..16]);
        let u = q4k_values(&wb[16..]);
        for r in 0..TILE_ROWS {
            let (v, l) = (r / 4, r % 4);
            let mut total = 0i32;
            for (sub, &scale) in sc.iter().enumerate() {
                let s: i32 = (8 * sub..8 * sub + 8)
                    .map(|g| {
                        let y = tile.group(b, v, l, g);
                        (0..4)
                            .map(|j| y[j] as i8 as i32 * u[4 * g + j])
                            .sum::<i32>()
                    })
                    .sum();
                total += scale * s;
            }
            let min: i32 = (0..8)
                .map(|s| mn[s] * (tile.sum16(b, v, l, 2 * s) + tile.sum16(b, v, l, 2 * s + 1)))
                .sum();
            let yd = tile.d[b * TILE_VECTORS + v][l];
            acc[r] += half(wb, 0) * yd * total as f32;
            acc_min[r] += half(wb, 2) * yd * min as f32;
        }
    }
    for (r, o) in out.iter_mut().enumerate() {
        *o = acc[r] - acc_min[r];
    }
}

/// `q6k_dot_tile` read from the tile's layout in plain Rust, as `q4k_portable_tile`.
pub fn q6k_portable_tile(w: &[u8], tile: &Tile, out: &mut [f32]) {
    portable_tile_in::<Stored>(w, tile, out)
}

fn portable_tile_in<L: Q6kLayout>(w: &[u8], tile: &Tile, out: &mut [f32]) {
    let n = tile.acts[0].d.len();
    let mut acc = [0f32; TILE_ROWS];
    for b in 0..n {
        let wb = &w[b * L::BYTES..(b + 1) * L::BYTES];
        let (scales, u) = (L::scales(wb), L::values(wb));
        for (r, acc) in acc.iter_mut().enumerate() {
            let (v, l) = (r / 4, r % 4);
            let mut total = 0i32;
            for (g16, &scale) in scales.iter().enumerate() {
                let s: i32 = (4 * g16..4 * g16 + 4)
                    .map(|g| {
                        let y = tile.group(b, v, l, g);
                        (0..4)
                            .map(|j| y[j] as i8 as i32 * u[4 * g + j])
                            .sum::<i32>()
                    })
                    .sum();
                total += scale as i8 as i32 * s;
                total -= 32 * scale as i8 as i32 * tile.sum16(b, v, l, g16);
            }
            *acc += L::d(wb) * tile.d[b * TILE_VECTORS + v][l] * total as f32;
        }
    }
    out.copy_from_slice(&acc[..out.len()]);
}

#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
mod relaxed {
    use super::*;
    use crate::engine::q8_0::relaxed::{dot_pair_small, groups8, splats8, Dot};
    use core::arch::wasm32::*;

    #[inline(always)]
    fn hsum(v: v128) -> i32 {
        i32x4_extract_lane::<0>(v)
            + i32x4_extract_lane::<1>(v)
            + i32x4_extract_lane::<2>(v)
            + i32x4_extract_lane::<3>(v)
    }

    /// Σ a·u over 32 values, times `scale` (an i16 in every lane, at most 63), in i32 lanes:
    /// `dot_pair_small` with the scale taken in its widening step (one `pmaddwd` on x64)
    /// instead of widening with ones and then an i32 multiply: one instruction where there
    /// were two. The i16 pair sums of nibbles times bytes are at most 2 · 2 · 15 · 127 = 7,620,
    /// so nothing saturates, and every i32 lane is the same.
    #[inline(always)]
    fn dot_pair_scaled(a0: v128, u0: v128, a1: v128, u1: v128, scale: v128) -> v128 {
        let s = i16x8_add(
            i16x8_relaxed_dot_i8x16_i7x16(a0, u0),
            i16x8_relaxed_dot_i8x16_i7x16(a1, u1),
        );
        i32x4_dot_i16x8(s, scale)
    }

    /// Part `c` (0..4) of a Q4_K block's nibbles: the low nibbles of its 32 bytes (elements
    /// 64c..64c+32) as two vectors, then the high ones (64c+32..64c+64).
    ///
    /// # Safety
    /// `qs` points at the block's 128 bytes of nibbles.
    #[inline(always)]
    unsafe fn q4k_part(qs: *const u8, c: usize) -> [v128; 4] {
        let low = u8x16_splat(0x0f);
        let q0 = v128_load(qs.add(32 * c) as *const v128);
        let q1 = v128_load(qs.add(32 * c + 16) as *const v128);
        [
            v128_and(q0, low),
            v128_and(q1, low),
            crate::engine::q8_0::high_nibbles(q0, low),
            crate::engine::q8_0::high_nibbles(q1, low),
        ]
    }

    /// The four groups of 16 six-bit values (0..=63) that bytes `16sub..16sub+16` of a Q6_K
    /// half hold: elements 128h + 32q + 16sub + t for q = 0..4. Masked before shifting, so no
    /// bit crosses into a neighbouring byte.
    ///
    /// # Safety
    /// `ql` and `qh` point at the half's 64 low-nibble and 32 high-bit bytes.
    #[inline(always)]
    unsafe fn q6k_groups(ql: *const u8, qh: *const u8, sub: usize) -> [v128; 4] {
        let low = u8x16_splat(0x0f);
        let a = v128_load(ql.add(16 * sub) as *const v128);
        let bb = v128_load(ql.add(32 + 16 * sub) as *const v128);
        let hb = v128_load(qh.add(16 * sub) as *const v128);
        [
            v128_or(
                v128_and(a, low),
                i16x8_shl(v128_and(hb, u8x16_splat(0x03)), 4),
            ),
            v128_or(
                v128_and(bb, low),
                i16x8_shl(v128_and(hb, u8x16_splat(0x0c)), 2),
            ),
            v128_or(
                crate::engine::q8_0::high_nibbles(a, low),
                v128_and(hb, u8x16_splat(0x30)),
            ),
            v128_or(
                crate::engine::q8_0::high_nibbles(bb, low),
                u16x8_shr(v128_and(hb, u8x16_splat(0xc0)), 2),
            ),
        ]
    }

    /// Where the SIMD forms find a Q6_K block's parts, as stored or widened.
    pub trait SimdLayout {
        const BLOCK: usize;
        const SCALES_AT: usize;
        /// Groups of 16 values 8h+2q+sub, q = 0..4 (elements 128h + 32q + 16sub + t).
        ///
        /// # Safety
        /// `wb` points at a whole block.
        unsafe fn vectors(wb: *const u8, h: usize, sub: usize) -> [v128; 4];
        /// # Safety
        /// `wb` points at a whole block.
        unsafe fn scale_d(wb: *const u8) -> f32;
    }

    impl SimdLayout for Stored {
        const BLOCK: usize = Q6K_BLOCK_BYTES;
        const SCALES_AT: usize = 192;
        #[inline(always)]
        unsafe fn vectors(wb: *const u8, h: usize, sub: usize) -> [v128; 4] {
            q6k_groups(wb.add(64 * h), wb.add(128 + 32 * h), sub)
        }
        #[inline(always)]
        unsafe fn scale_d(wb: *const u8) -> f32 {
            f16_to_f32(u16::from_le_bytes(*(wb.add(208) as *const [u8; 2])))
        }
    }

    impl SimdLayout for Wide {
        const BLOCK: usize = Q6K_WIDE_BLOCK_BYTES;
        const SCALES_AT: usize = 256;
        #[inline(always)]
        unsafe fn vectors(wb: *const u8, h: usize, sub: usize) -> [v128; 4] {
            std::array::from_fn(|q| v128_load(wb.add(16 * (8 * h + 2 * q + sub)) as *const v128))
        }
        #[inline(always)]
        unsafe fn scale_d(wb: *const u8) -> f32 {
            f32::from_le_bytes(*(wb.add(272) as *const [u8; 4]))
        }
    }

    /// # Safety
    /// `w` holds one `Q4K_BLOCK_BYTES` block per activation block of every `ys`.
    #[inline(always)]
    pub unsafe fn q4k_dot_rows<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
        let (mut acc, mut acc_min) = ([0f32; R], [0f32; R]);
        let zero = i32x4_splat(0);
        for b in 0..ys[0].d.len() {
            let wb = &w[b * Q4K_BLOCK_BYTES..(b + 1) * Q4K_BLOCK_BYTES];
            let (sc, mn) = scales_mins(&wb[4..16]);
            let qs = wb[16..].as_ptr();
            let yq = ys.map(|y| y.qs(b).as_ptr());
            let mut totals = [zero; R];
            for c in 0..4 {
                let [lo0, lo1, hi0, hi1] = q4k_part(qs, c);
                let (s_lo, s_hi) = (
                    i16x8_splat(sc[2 * c] as i16),
                    i16x8_splat(sc[2 * c + 1] as i16),
                );
                for r in 0..R {
                    // Unaligned: the values start 4 bytes into each activation block.
                    let y = yq[r].add(64 * c) as *const v128;
                    let lo = dot_pair_scaled(v128_load(y), lo0, v128_load(y.add(1)), lo1, s_lo);
                    let hi =
                        dot_pair_scaled(v128_load(y.add(2)), hi0, v128_load(y.add(3)), hi1, s_hi);
                    totals[r] = i32x4_add(totals[r], i32x4_add(lo, hi));
                }
            }
            let (d, dmin) = (half(wb, 0), half(wb, 2));
            for r in 0..R {
                acc[r] += d * ys[r].d[b] * hsum(totals[r]) as f32;
                acc_min[r] += dmin * ys[r].d[b] * q4k_min_term(&mn, &ys[r].bsums[b]) as f32;
            }
        }
        std::array::from_fn(|r| acc[r] - acc_min[r])
    }

    /// # Safety
    /// `w` holds one `Q6K_BLOCK_BYTES` block per activation block of every `ys`.
    #[inline(always)]
    pub unsafe fn q6k_dot_rows<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
        let mut acc = [0f32; R];
        let zero = i32x4_splat(0);
        for b in 0..ys[0].d.len() {
            let wb = &w[b * Q6K_BLOCK_BYTES..(b + 1) * Q6K_BLOCK_BYTES];
            let scales = &wb[192..208];
            let yq = ys.map(|y| y.qs(b).as_ptr());
            let mut totals = [zero; R];
            for h in 0..2 {
                let ql = wb[64 * h..].as_ptr();
                let qh = wb[128 + 32 * h..].as_ptr();
                for sub in 0..2 {
                    let e = q6k_groups(ql, qh, sub);
                    for (q, eq) in e.iter().enumerate() {
                        let g = 8 * h + 2 * q + sub;
                        let s = i16x8_splat(scales[g] as i8 as i16);
                        for r in 0..R {
                            let y = v128_load(yq[r].add(16 * g) as *const v128);
                            // Pairs of 6-bit × 8-bit products fit an i16 (at most 16,002),
                            // so the scale multiplies them in the widening step.
                            let dot = i16x8_relaxed_dot_i8x16_i7x16(y, *eq);
                            totals[r] = i32x4_add(totals[r], i32x4_dot_i16x8(dot, s));
                        }
                    }
                }
            }
            q6k_block_end(&mut acc, totals, scales.as_ptr(), half(wb, 208), ys, b);
        }
        acc
    }

    /// A Q6_K block's end, stored or widened: the offset 32·Σ scale·Σy taken off each row's
    /// integer total, in lanes too, from the activation block's own i16 sums of 16 values (at
    /// most 16 · 127 in size; two widening products, where the scalar loop took sixteen
    /// multiplies and their loads), then the block's one f32 product added.
    ///
    /// # Safety
    /// `scales` points at the block's 16 scales.
    #[inline(always)]
    unsafe fn q6k_block_end<const R: usize>(
        acc: &mut [f32; R],
        totals: [v128; R],
        scales: *const u8,
        d: f32,
        ys: [&Activation; R],
        b: usize,
    ) {
        let sc = v128_load(scales as *const v128);
        let (sc_lo, sc_hi) = (i16x8_extend_low_i8x16(sc), i16x8_extend_high_i8x16(sc));
        for r in 0..R {
            let bs = ys[r].bsums16(b);
            let offset = i32x4_add(
                i32x4_dot_i16x8(sc_lo, v128_load(bs as *const v128)),
                i32x4_dot_i16x8(sc_hi, v128_load(bs.add(16) as *const v128)),
            );
            let total = hsum(i32x4_sub(totals[r], i32x4_shl(offset, 5)));
            acc[r] += d * ys[r].d[b] * total as f32;
        }
    }

    /// # Safety
    /// `w` holds one `Q6K_WIDE_BLOCK_BYTES` block per activation block of every `ys`.
    #[inline(always)]
    pub unsafe fn q6k_wide_dot_rows<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
        let mut acc = [0f32; R];
        let zero = i32x4_splat(0);
        for b in 0..ys[0].d.len() {
            let wb = w.as_ptr().add(b * Q6K_WIDE_BLOCK_BYTES);
            let scales = wb.add(256);
            let yq = ys.map(|y| y.qs(b).as_ptr());
            let mut totals = [zero; R];
            for g in 0..16 {
                let wv = v128_load(wb.add(16 * g) as *const v128);
                // A byte splat and a widening: `i16x8_splat` of the scale as a scalar was a
                // load, a move and a broadcast in V8's code.
                let s = i16x8_extend_low_i8x16(v128_load8_splat(scales.add(g)));
                for r in 0..R {
                    let y = v128_load(yq[r].add(16 * g) as *const v128);
                    // Pairs of 6-bit × 8-bit products fit an i16 (at most 16,002), so the
                    // scale multiplies them in the widening step.
                    let dot = i16x8_relaxed_dot_i8x16_i7x16(y, wv);
                    totals[r] = i32x4_add(totals[r], i32x4_dot_i16x8(dot, s));
                }
            }
            q6k_block_end(
                &mut acc,
                totals,
                scales,
                <Wide as SimdLayout>::scale_d(wb),
                ys,
                b,
            );
        }
        acc
    }

    /// Two i16 scales as one i32 lane, the first in the low half: the partner of a tile's
    /// pairs of sums in `i32x4_dot_i16x8`.
    #[inline(always)]
    fn pair(a: i32, b: i32) -> v128 {
        i32x4_splat((a as u16 as u32 | ((b as u16 as u32) << 16)) as i32)
    }

    /// # Safety
    /// `w` holds one `Q4K_BLOCK_BYTES` block per block of the tile's rows.
    #[inline(always)]
    pub unsafe fn q4k_dot_tile<D: Dot>(w: &[u8], tile: &Tile) -> [f32; TILE_ROWS] {
        let zero = i32x4_splat(0);
        let mut acc = [f32x4_splat(0.0); TILE_VECTORS];
        let mut acc_min = [f32x4_splat(0.0); TILE_VECTORS];
        let groups = tile.groups.as_ptr() as *const v128;
        let sums = tile.sums.as_ptr() as *const v128;
        let yd = tile.d.as_ptr() as *const v128;
        for b in 0..tile.acts[0].d.len() {
            let wb = &w[b * Q4K_BLOCK_BYTES..(b + 1) * Q4K_BLOCK_BYTES];
            let (sc, mn) = scales_mins(&wb[4..16]);
            let qs = wb[16..].as_ptr();
            let mut totals = [zero; TILE_VECTORS];
            for c in 0..4 {
                let [lo0, lo1, hi0, hi1] = q4k_part(qs, c);
                // Sub-blocks 2c (values 64c..64c+32) and 2c+1 (the next 32).
                for (h, (p0, p1)) in [(lo0, lo1), (hi0, hi1)].into_iter().enumerate() {
                    let ws = splats8(p0, p1);
                    let scale = i32x4_splat(sc[2 * c + h]);
                    for (v, total) in totals.iter_mut().enumerate() {
                        let y = groups.add((b * TILE_VECTORS + v) * 64 + 16 * c + 8 * h);
                        *total = i32x4_add(*total, i32x4_mul(groups8::<D>(y, &ws, zero), scale));
                    }
                }
            }
            let (d, dmin) = (f32x4_splat(half(wb, 0)), f32x4_splat(half(wb, 2)));
            for v in 0..TILE_VECTORS {
                let bv = b * TILE_VECTORS + v;
                let mut min = zero;
                for (p, &m) in mn.iter().enumerate() {
                    let s = v128_load(sums.add(8 * bv + p));
                    min = i32x4_add(min, i32x4_dot_i16x8(s, pair(m, m)));
                }
                let y = v128_load(yd.add(bv));
                acc[v] = f32x4_add(
                    acc[v],
                    f32x4_mul(f32x4_mul(d, y), f32x4_convert_i32x4(totals[v])),
                );
                acc_min[v] = f32x4_add(
                    acc_min[v],
                    f32x4_mul(f32x4_mul(dmin, y), f32x4_convert_i32x4(min)),
                );
            }
        }
        let mut out = [0f32; TILE_ROWS];
        for v in 0..TILE_VECTORS {
            v128_store(
                out[4 * v..].as_mut_ptr() as *mut v128,
                f32x4_sub(acc[v], acc_min[v]),
            );
        }
        out
    }

    /// # Safety
    /// `w` holds one `L::BLOCK` block per block of the tile's rows.
    #[inline(always)]
    pub unsafe fn q6k_dot_tile<D: Dot, L: SimdLayout>(w: &[u8], tile: &Tile) -> [f32; TILE_ROWS] {
        let zero = i32x4_splat(0);
        let mut acc = [f32x4_splat(0.0); TILE_VECTORS];
        let groups = tile.groups.as_ptr() as *const v128;
        let sums = tile.sums.as_ptr() as *const v128;
        let yd = tile.d.as_ptr() as *const v128;
        for b in 0..tile.acts[0].d.len() {
            let wb = &w[b * L::BLOCK..(b + 1) * L::BLOCK];
            let scales = &wb[L::SCALES_AT..L::SCALES_AT + 16];
            let scale = |g: usize| scales[g] as i8 as i32;
            let mut totals = [zero; TILE_VECTORS];
            for h in 0..2 {
                for sub in 0..2 {
                    // Groups of 16 values 8h+2q+sub, q = 0..4, in pairs (q, q+1) so that each
                    // pass runs two chains of four dots.
                    let e = L::vectors(wb.as_ptr(), h, sub);
                    for q in [0, 2] {
                        let ws = splats8(e[q], e[q + 1]);
                        let (g0, g1) = (8 * h + 2 * q + sub, 8 * h + 2 * q + 2 + sub);
                        let (s0, s1) = (i32x4_splat(scale(g0)), i32x4_splat(scale(g1)));
                        for (v, total) in totals.iter_mut().enumerate() {
                            let y = groups.add((b * TILE_VECTORS + v) * 64);
                            let (y0, y1) = (y.add(4 * g0), y.add(4 * g1));
                            let pairs = |y: *const v128, w: &[v128]| {
                                D::pair_small_add(
                                    v128_load(y.add(2)),
                                    w[2],
                                    v128_load(y.add(3)),
                                    w[3],
                                    dot_pair_small::<D>(
                                        v128_load(y),
                                        w[0],
                                        v128_load(y.add(1)),
                                        w[1],
                                    ),
                                )
                            };
                            let (p, r) = (pairs(y0, &ws[..4]), pairs(y1, &ws[4..]));
                            *total =
                                i32x4_add(*total, i32x4_add(i32x4_mul(p, s0), i32x4_mul(r, s1)));
                        }
                    }
                }
            }
            let d = f32x4_splat(L::scale_d(wb.as_ptr()));
            for (v, total) in totals.iter().enumerate() {
                let bv = b * TILE_VECTORS + v;
                let mut offset = zero;
                for p in 0..8 {
                    let s = v128_load(sums.add(8 * bv + p));
                    offset = i32x4_add(
                        offset,
                        i32x4_dot_i16x8(s, pair(scale(2 * p), scale(2 * p + 1))),
                    );
                }
                let total = i32x4_sub(*total, i32x4_shl(offset, 5));
                let y = v128_load(yd.add(bv));
                acc[v] = f32x4_add(
                    acc[v],
                    f32x4_mul(f32x4_mul(d, y), f32x4_convert_i32x4(total)),
                );
            }
        }
        let mut out = [0f32; TILE_ROWS];
        for (v, acc) in acc.iter().enumerate() {
            v128_store(out[4 * v..].as_mut_ptr() as *mut v128, *acc);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_data::{bytes, quantize, values};
    use candle_core::quantized::k_quants::{BlockQ4K, BlockQ6K, BlockQ8K, GgmlType};

    fn close(ours: f32, theirs: f32) {
        assert!(
            (ours - theirs).abs() <= 1e-4 * theirs.abs().max(1.0),
            "{ours} vs {theirs}"
        );
    }

    #[test]
    fn q4k_and_q6k_match_candle_within_rounding() {
        let k = 256 * 5;
        // Shifted off zero, so Q4_K's minimums matter.
        let vals = |seed: u32| -> Vec<f32> { values(k, seed).iter().map(|v| v + 0.1).collect() };
        let y: Vec<BlockQ8K> = quantize(&vals(1));
        let yb = bytes(&y);
        let act = Activation::new(&yb);
        for i in 0..4 {
            let w4: Vec<BlockQ4K> = quantize(&vals(10 + i));
            close(
                q4k_dot_rows(&bytes(&w4), [&act])[0],
                BlockQ4K::vec_dot(k, &w4, &y),
            );
            let w6: Vec<BlockQ6K> = quantize(&vals(20 + i));
            close(
                q6k_dot_rows(&bytes(&w6), [&act])[0],
                BlockQ6K::vec_dot(k, &w6, &y),
            );
        }
    }

    /// A widened block holds the stored block's values, scales and d, so its products, rows
    /// and tiles, have the stored form's bits; blocks of any bits included.
    #[test]
    fn widened_q6k_blocks_keep_the_products_bits() {
        let k = 256 * 3;
        let y = bytes(&quantize::<BlockQ8K>(&values(k, 7)));
        let act = Activation::new(&y);
        for seed in 0..4 {
            let mut w = bytes(&quantize::<BlockQ6K>(&values(k, 30 + seed)));
            if seed == 3 {
                // Every bit pattern is a block: extreme values, scales of both signs, and a
                // subnormal, a negative and a zero d.
                for (b, block) in w.chunks_exact_mut(Q6K_BLOCK_BYTES).enumerate() {
                    block[..192]
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, v)| *v = (i * 37 + b) as u8);
                    block[192..208]
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, v)| *v = (i as u8).wrapping_mul(29).wrapping_add(128));
                    let d = [
                        half::f16::from_bits(1),
                        half::f16::from_f32(-0.01),
                        half::f16::ZERO,
                    ][b];
                    block[208..].copy_from_slice(&d.to_le_bytes());
                }
            }
            let wide = q6k_widen(&w);
            assert_eq!(wide.len(), 3 * Q6K_WIDE_BLOCK_BYTES);
            for (wb, sb) in wide
                .chunks_exact(Q6K_WIDE_BLOCK_BYTES)
                .zip(w.chunks_exact(Q6K_BLOCK_BYTES))
            {
                for (i, &v) in wb[..256].iter().enumerate() {
                    assert_eq!(v as i32, q6(sb, i));
                }
                assert_eq!(&wb[256..272], &sb[192..208]);
                assert_eq!(Wide::d(wb).to_bits(), half(sb, 208).to_bits());
            }
            let want = q6k_portable(&w, [&act])[0];
            let got = q6k_wide_dot_rows(&wide, [&act])[0];
            assert_eq!(got.to_bits(), want.to_bits(), "seed {seed}");
            let tile = Tile::new(std::slice::from_ref(&act));
            let mut out = [0f32];
            q6k_wide_dot_tile(&wide, &tile, &mut out);
            assert_eq!(out[0].to_bits(), want.to_bits(), "seed {seed}, a tile");
        }
    }

    /// The tile layout read in plain Rust gives the per-row forms' bits, for every row count
    /// (a partial last tile included), on values off zero so that minimums and offsets count.
    #[test]
    fn tiles_give_the_row_forms_bits() {
        let k = 256 * 3;
        let vals = |seed: u32| -> Vec<f32> { values(k, seed).iter().map(|v| v + 0.1).collect() };
        let ys: Vec<Vec<u8>> = (0..TILE_ROWS)
            .map(|r| bytes(&quantize::<BlockQ8K>(&vals(60 + r as u32))))
            .collect();
        let acts: Vec<Activation> = ys.iter().map(|b| Activation::new(b)).collect();
        let w4 = bytes(&quantize::<BlockQ4K>(&vals(5)));
        let w6 = bytes(&quantize::<BlockQ6K>(&vals(6)));
        for rows in 1..=TILE_ROWS {
            let tile = Tile::new(&acts[..rows]);
            let mut got = vec![0f32; rows];
            q4k_portable_tile(&w4, &tile, &mut got);
            for (r, g) in got.iter().enumerate() {
                let want = q4k_portable(&w4, [&acts[r]])[0];
                assert_eq!(g.to_bits(), want.to_bits(), "Q4_K, {rows} rows");
            }
            q6k_portable_tile(&w6, &tile, &mut got);
            for (r, g) in got.iter().enumerate() {
                let want = q6k_portable(&w6, [&acts[r]])[0];
                assert_eq!(g.to_bits(), want.to_bits(), "Q6_K, {rows} rows");
            }
        }
    }
}
