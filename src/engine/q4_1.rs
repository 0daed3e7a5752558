//! The engine's own Q4_1 × Q8_1 kernel for wasm, so Q4_1 weights (all of SmolLM2's) stay at 5
//! bits per weight instead of being requantized to Q8_0 (8.5 bits) at load.
//!
//! Why: decoding streams every weight once per token, and on the 2-core benchmark machine a
//! streaming product is bound by memory bandwidth (a 30 MB Q8_0 product ran no faster on two
//! threads than on one). Fewer bytes per token is the lever for decode speed, for threads to
//! pay off, and for the wasm heap. candle's Q4_1 dot product has no simd128 form (it is
//! scalar on wasm), hence this one.
//!
//! The arithmetic is ggml's reference `vec_dot_q4_1_q8_1`: per block the exact integer
//! Σ q4·q8, then `acc += (d_x·d_y)·sum + m_x·s_y` in f32. Integer sums do not depend on the
//! order of their additions, so every wasm form (simd128 and relaxed SIMD; several activation
//! rows, a prefill tile) and the portable form give the same bits, whichever lanes they sum
//! in: both wasm builds give SmolLM2 the same numbers. Decoding's one row read in order adds
//! its blocks' f32 values in its own fixed order (`q8_0::in_order_sum`, `portable_in_order`),
//! the same in both builds. The native AVX2 form takes only the exact block sums from SIMD and
//! gives the same bits too (`native`).
//!
//! Prefill (`Tile`, relaxed SIMD): as `q5_0::Tile`, four rows to a vector's lanes and each group
//! of four weight values broadcast to every lane, so one relaxed dot advances four rows.

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
        }
    }

    /// The 32 signed values of block `b`.
    fn values(&self, b: usize) -> &[u8] {
        &self.blocks[b * ACT_BLOCK_BYTES + 4..(b + 1) * ACT_BLOCK_BYTES]
    }
}

/// Activation rows per prefill pass: two vectors of four rows (relaxed SIMD); the other forms
/// take the tile's rows four at a time.
pub const TILE_ROWS: usize = 8;
const TILE_VECTORS: usize = TILE_ROWS / 4;

/// Up to `TILE_ROWS` activation rows laid out for the relaxed `dot_tile`, as `q5_0::Tile`: per
/// block and per vector of four rows, eight groups of 16 bytes (lane l of group g holding
/// values 4g..4g+4 of row l), then each row's d and s, one lane per row. Rows past the last
/// are zeros.
pub struct Tile<'a> {
    acts: &'a [Activation<'a>],
    groups: Vec<[u8; 16]>,
    d: Vec<[f32; 4]>,
    s: Vec<[f32; 4]>,
}

impl<'a> Tile<'a> {
    /// `acts`: 1 to `TILE_ROWS` rows of the same length.
    pub fn new(acts: &'a [Activation<'a>]) -> Self {
        assert!((1..=TILE_ROWS).contains(&acts.len()));
        let n = acts[0].d.len();
        assert!(acts.iter().all(|a| a.d.len() == n));
        let mut groups = vec![[0u8; 16]; n * TILE_VECTORS * 8];
        let mut d = vec![[0f32; 4]; n * TILE_VECTORS];
        let mut s = vec![[0f32; 4]; n * TILE_VECTORS];
        for (r, a) in acts.iter().enumerate() {
            let (v, l) = (r / 4, r % 4);
            for b in 0..n {
                let bv = b * TILE_VECTORS + v;
                let y = a.values(b);
                super::act_quant::into_lanes(&mut groups[bv * 8..(bv + 1) * 8], l, y);
                d[bv][l] = a.d[b];
                s[bv][l] = a.s[b];
            }
        }
        Tile { acts, groups, d, s }
    }

    pub fn rows(&self) -> usize {
        self.acts.len()
    }
}

/// Whether this build's SIMD forms (`dot_rows`, `dot_in_order`, `dot_tile`) read rows laid
/// out by `arrange` rather than as stored: the relaxed-SIMD wasm build. The portable forms and
/// the other builds' forms read the stored layout.
pub const ARRANGED: bool = cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd"));

/// Blocks per arranged group (`arrange`).
pub const GROUP: usize = 4;
const GROUP_BYTES: usize = GROUP * BLOCK_BYTES;
/// Where an arranged group keeps its four runs of nibbles, after four scales and four minimums.
const NIBBLES_AT: usize = 4 * GROUP;

/// Lays out each row of `blocks_per_row` blocks for the relaxed-SIMD forms, in place, the same
/// bytes in another order: each run of four blocks becomes their four f16 scales, their four f16
/// minimums, then their four 16-byte runs of nibbles, so that one 16-byte load brings a group's
/// eight f16 values, which `relaxed::widen_f16` makes f32 four at a time. The blocks past the
/// row's last group of four stay as stored; `unarranged` reads a block back.
pub fn arrange(bytes: &mut [u8], blocks_per_row: usize) {
    let row_bytes = blocks_per_row * BLOCK_BYTES;
    if row_bytes == 0 {
        return;
    }
    for row in bytes.chunks_exact_mut(row_bytes) {
        for group in row.chunks_exact_mut(GROUP_BYTES) {
            let mut out = [0u8; GROUP_BYTES];
            for (i, b) in group.chunks_exact(BLOCK_BYTES).enumerate() {
                out[2 * i..2 * i + 2].copy_from_slice(&b[..2]);
                out[2 * GROUP + 2 * i..2 * GROUP + 2 * i + 2].copy_from_slice(&b[2..4]);
                out[NIBBLES_AT + 16 * i..NIBBLES_AT + 16 * (i + 1)].copy_from_slice(&b[4..]);
            }
            group.copy_from_slice(&out);
        }
    }
}

/// Block `i` (0..4) of an arranged group, as stored.
pub fn unarranged(group: &[u8], i: usize) -> [u8; BLOCK_BYTES] {
    let mut b = [0u8; BLOCK_BYTES];
    b[..2].copy_from_slice(&group[2 * i..2 * i + 2]);
    b[2..4].copy_from_slice(&group[2 * GROUP + 2 * i..2 * GROUP + 2 * i + 2]);
    b[4..].copy_from_slice(&group[NIBBLES_AT + 16 * i..NIBBLES_AT + 16 * (i + 1)]);
    b
}

/// `blocks` (rows of `blocks_per_row`) as this build's SIMD forms read them: `arrange`d where
/// `ARRANGED`, else as they are.
pub fn for_this_build(blocks: &[u8], blocks_per_row: usize) -> Vec<u8> {
    let mut out = blocks.to_vec();
    if ARRANGED {
        arrange(&mut out, blocks_per_row);
    }
    out
}

/// Whether `arrange`'s layout can hold these rows: the vector widening of f16 is exact for every
/// finite value, so a row with an infinite or NaN scale or minimum (a damaged or hostile file)
/// is kept as stored.
pub fn arrangeable(blocks: &[u8]) -> bool {
    blocks.chunks_exact(BLOCK_BYTES).all(|b| {
        let finite = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]) & 0x7c00 != 0x7c00;
        finite(0) && finite(2)
    })
}

/// A block's 32 weight values (0..=15), its scale and its minimum.
#[inline(always)]
fn unpack_portable(wb: &[u8]) -> ([i32; 32], f32, f32) {
    let mut u = [0i32; 32];
    for j in 0..16 {
        u[j] = (wb[4 + j] & 0x0f) as i32;
        u[16 + j] = (wb[4 + j] >> 4) as i32;
    }
    (u, f16_at(wb, 0), f16_at(wb, 2))
}

/// The dot product of one Q4_1 weight row with `y`.
pub fn dot(w: &[u8], y: &Activation) -> f32 {
    dot_rows::<1>(w, [y])[0]
}

/// One weight row against `R` (1 to 4) activation rows, each weight block unpacked once for
/// all of them; every output has exactly the bits `dot` gives it alone. In the relaxed build
/// the row is laid out by `arrange` and read as `dot_in_order` reads it, with its bits.
pub fn dot_rows<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    const { assert!(R >= 1 && R <= 4) };
    let n = ys[0].d.len();
    assert!(w.len() == n * BLOCK_BYTES && ys.iter().all(|y| y.d.len() == n));
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // The relaxed build prefills with tiles and decodes with `dot_in_order`; here it reads
        // each (arranged) row the way decoding does.
        ys.map(|y| dot_in_order_arranged(w, y))
    }
    #[cfg(all(
        target_arch = "wasm32",
        target_feature = "simd128",
        not(target_feature = "relaxed-simd")
    ))]
    {
        // SAFETY: lengths checked above; `wide` holds four vectors per block; wasm loads need
        // no alignment.
        unsafe { lanes::dot_rows::<simd::Widened, R>(w, ys, super::q8_0::scale_table()) }
    }
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    {
        native(w, ys, true)
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

/// Natively: AVX2's exact block sums, then `portable`'s f32 steps (`sequential`) or
/// `portable_in_order`'s, so the CLI has the wasm builds' bits (`q8_0::native_rows`).
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
fn native<const R: usize>(w: &[u8], ys: [&Activation; R], sequential: bool) -> [f32; R] {
    super::q8_0::native_rows(ys[0].d.len(), sequential, |b| {
        let wb = &w[b * BLOCK_BYTES..];
        let (dw, mw) = (f16_at(wb, 0), f16_at(wb, 2));
        // SAFETY: the callers check that `w` holds a block per activation block.
        let s = unsafe { avx2::block_sums(w.as_ptr(), ys, b) };
        std::array::from_fn(|r| (dw * ys[r].d[b]) * s[r] as f32 + mw * ys[r].s[b])
    })
}

/// One weight row against one activation row, read front to back (decoding in the wasm
/// builds, `weight::decode_streams`): four consecutive blocks to a vector's lanes, their
/// values added in `q8_0::in_order_sum`'s order; `portable_in_order`'s bits, natively too
/// (`q8_0::native_in_order`). The row is laid out by `arrange` where `ARRANGED`.
pub fn dot_in_order(w: &[u8], y: &Activation) -> f32 {
    assert!(w.len() == y.d.len() * BLOCK_BYTES);
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        dot_in_order_arranged(w, y)
    }
    #[cfg(all(
        target_arch = "wasm32",
        target_feature = "simd128",
        not(target_feature = "relaxed-simd")
    ))]
    {
        // SAFETY: length checked above.
        unsafe { lanes::in_order::<simd::Widened>(w, y, super::q8_0::scale_table()) }
    }
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    {
        // SAFETY: length checked above.
        unsafe {
            super::q8_0::native_in_order::<true>(
                y.d.len(),
                |b| avx2::block_lanes(w.as_ptr(), y, b),
                |b| f16_at(&w[b * BLOCK_BYTES..], 0) * y.d[b],
                |b| f16_at(&w[b * BLOCK_BYTES..], 2) * y.s[b],
            )
        }
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
        portable_in_order(w, y)
    }
}

/// `dot_in_order` on a row laid out by `arrange` (the relaxed build only), with its bits.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub fn dot_in_order_arranged(w: &[u8], y: &Activation) -> f32 {
    assert!(w.len() == y.d.len() * BLOCK_BYTES);
    // SAFETY: length checked above.
    super::dot_form::with_dot!(D => unsafe {
        relaxed::in_order_arranged::<D>(w, y, super::q8_0::scale_table())
    })
}

/// One weight row against a tile of activation rows (prefill); `out` takes one value per row,
/// each with `dot`'s bits. The row is laid out by `arrange` where `ARRANGED`.
pub fn dot_tile(w: &[u8], tile: &Tile, out: &mut [f32]) {
    let n = tile.acts[0].d.len();
    assert!(w.len() == n * BLOCK_BYTES && out.len() == tile.rows());
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: lengths checked above and by `Tile::new`.
        let all = super::dot_form::with_dot!(D => unsafe {
            relaxed::dot_tile::<D>(w, tile, super::q8_0::scale_table())
        });
        out.copy_from_slice(&all[..out.len()]);
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "relaxed-simd")))]
    {
        for (acts, out) in tile.acts.chunks(4).zip(out.chunks_mut(4)) {
            match acts {
                [a, b, c, d] => out.copy_from_slice(&dot_rows(w, [a, b, c, d])),
                [a, b, c] => out.copy_from_slice(&dot_rows(w, [a, b, c])),
                [a, b] => out.copy_from_slice(&dot_rows(w, [a, b])),
                [a] => out.copy_from_slice(&dot_rows(w, [a])),
                _ => unreachable!("chunks of 1 to 4"),
            }
        }
    }
}

/// The reference form (ggml's scalar arithmetic): machines without SIMD, and the tests.
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
        let mut acc = 0f32;
        for b in 0..n {
            acc += block_term(w, y, b);
        }
        acc
    })
}

/// `dot_in_order`'s arithmetic in plain Rust: the decoding kernels' reference
/// (`kernel_check`).
pub fn portable_in_order(w: &[u8], y: &Activation) -> f32 {
    super::q8_0::in_order_sum(y.d.len(), |b| block_term(w, y, b))
}

/// Block `b`'s f32 value, ggml's: `(d_x·d_y)·sum + m_x·s_y`.
fn block_term(w: &[u8], y: &Activation, b: usize) -> f32 {
    let (u, dw, mw) = unpack_portable(&w[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES]);
    let s: i32 = u
        .iter()
        .zip(y.values(b))
        .map(|(&u, &q)| u * q as i8 as i32)
        .sum();
    (dw * y.d[b]) * s as f32 + mw * y.s[b]
}

/// `dot_tile` read from the tile's own layout in plain Rust: checks that layout natively
/// (`kernel_check`).
pub fn portable_tile(w: &[u8], tile: &Tile, out: &mut [f32]) {
    let n = tile.acts[0].d.len();
    let mut acc = [0f32; TILE_ROWS];
    for b in 0..n {
        let (u, dw, mw) = unpack_portable(&w[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES]);
        for (r, acc) in acc.iter_mut().enumerate() {
            let (v, l) = (r / 4, r % 4);
            let bv = b * TILE_VECTORS + v;
            let mut s = 0i32;
            for g in 0..8 {
                for j in 0..4 {
                    s += tile.groups[bv * 8 + g][4 * l + j] as i8 as i32 * u[4 * g + j];
                }
            }
            *acc += (dw * tile.d[bv][l]) * s as f32 + mw * tile.s[bv][l];
        }
    }
    out.copy_from_slice(&acc[..out.len()]);
}

/// The frame both wasm forms share: per block, one weight block's sums against up to four
/// activation rows (or, `in_order`, four consecutive blocks of one row) gathered into one
/// vector's lanes, then ggml's f32 steps lane by lane. A form says how a weight block is unpacked and
/// summed against a row (`BlockSums`).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use super::{Activation, BLOCK_BYTES};
    use crate::engine::q8_0::simd::{add_in_order, sum_lanes4, total};
    use core::arch::wasm32::*;

    pub trait BlockSums {
        type Unpacked;
        /// # Safety
        /// `wb` points at a whole weight block.
        unsafe fn unpack(wb: *const u8) -> Self::Unpacked;
        /// Σ w·y over block `b` of `y`, in four i32 lanes.
        ///
        /// # Safety
        /// `y` holds block `b`.
        unsafe fn sum(w: &Self::Unpacked, y: &Activation, b: usize) -> v128;
    }

    /// # Safety
    /// `at` points at two readable bytes, and `table` has all 65,536 f16 values.
    #[inline(always)]
    unsafe fn half(table: &[f32], at: *const u8) -> f32 {
        *table.get_unchecked(crate::engine::q8_0::le_u16(at) as usize)
    }

    /// `acc + (d_x·d_y)·sum + m_x·s_y` per lane, lane l's sum being `sums[l]`'s lanes added.
    #[inline(always)]
    fn step(acc: v128, sums: [v128; 4], dd: v128, ms: v128) -> v128 {
        let t = f32x4_mul(dd, f32x4_convert_i32x4(sum_lanes4(sums)));
        f32x4_add(acc, f32x4_add(t, ms))
    }

    /// The first `N` lanes of `acc`.
    #[inline(always)]
    fn first<const N: usize>(acc: v128) -> [f32; N] {
        let mut out = [0f32; 4];
        // SAFETY: `out` holds 16 bytes.
        unsafe { v128_store(out.as_mut_ptr() as *mut v128, acc) };
        std::array::from_fn(|i| out[i])
    }

    /// One weight row against `R` (1 to 4) activation rows.
    ///
    /// # Safety
    /// `w` holds one block of `BLOCK_BYTES` per activation block of every `ys`, and `table` is
    /// `q8_0::scale_table()` (the caller, `super::dot_rows`, checks the lengths).
    // The relaxed build reads arranged rows (`relaxed::in_order_arranged`).
    #[cfg_attr(target_feature = "relaxed-simd", allow(dead_code))]
    #[inline(always)]
    pub unsafe fn dot_rows<F: BlockSums, const R: usize>(
        w: &[u8],
        ys: [&Activation; R],
        table: &[f32],
    ) -> [f32; R] {
        let mut acc = f32x4_splat(0.0);
        let w = w.as_ptr();
        for b in 0..ys[0].d.len() {
            let wb = w.add(b * BLOCK_BYTES);
            let unpacked = F::unpack(wb);
            let mut sums = [i32x4_splat(0); 4];
            let (mut dy, mut sy) = ([0f32; 4], [0f32; 4]);
            for r in 0..R {
                sums[r] = F::sum(&unpacked, ys[r], b);
                dy[r] = *ys[r].d.get_unchecked(b);
                sy[r] = *ys[r].s.get_unchecked(b);
            }
            let dd = f32x4_mul(
                f32x4_splat(half(table, wb)),
                v128_load(dy.as_ptr() as *const v128),
            );
            let ms = f32x4_mul(
                f32x4_splat(half(table, wb.add(2))),
                v128_load(sy.as_ptr() as *const v128),
            );
            acc = step(acc, sums, dd, ms);
        }
        first(acc)
    }

    /// One weight row against one activation row: blocks b..b+4 in the four lanes, each
    /// lane `(d_x·d_y)·sum + m_x·s_y` as `step` computes it and summed in the lane, the lanes
    /// then added up in order, and the last `n % 4` blocks one at a time
    /// (`q8_0::in_order_sum`).
    ///
    /// # Safety
    /// `w` holds one block of `BLOCK_BYTES` per block of `y`, and `table` is
    /// `q8_0::scale_table()` (the caller, `super::dot_in_order`, checks the length).
    // The relaxed build reads arranged rows (`relaxed::in_order_arranged`).
    #[cfg_attr(target_feature = "relaxed-simd", allow(dead_code))]
    #[inline(always)]
    pub unsafe fn in_order<F: BlockSums>(w: &[u8], y: &Activation, table: &[f32]) -> f32 {
        let w = w.as_ptr();
        let n = y.d.len();
        let mut acc = f32x4_splat(0.0);
        let mut b = 0;
        while b + 4 <= n {
            let wb: [*const u8; 4] = std::array::from_fn(|i| w.add((b + i) * BLOCK_BYTES));
            let sums: [v128; 4] = std::array::from_fn(|i| F::sum(&F::unpack(wb[i]), y, b + i));
            let dd = f32x4_mul(
                f32x4(
                    half(table, wb[0]),
                    half(table, wb[1]),
                    half(table, wb[2]),
                    half(table, wb[3]),
                ),
                v128_load(y.d.as_ptr().add(b) as *const v128),
            );
            let ms = f32x4_mul(
                f32x4(
                    half(table, wb[0].add(2)),
                    half(table, wb[1].add(2)),
                    half(table, wb[2].add(2)),
                    half(table, wb[3].add(2)),
                ),
                v128_load(y.s.as_ptr().add(b) as *const v128),
            );
            let v = f32x4_add(f32x4_mul(dd, f32x4_convert_i32x4(sum_lanes4(sums))), ms);
            acc = f32x4_add(acc, v);
            b += 4;
        }
        let mut sum = add_in_order(0.0, acc);
        while b < n {
            let wb = w.add(b * BLOCK_BYTES);
            let s = F::sum(&F::unpack(wb), y, b);
            let dd = half(table, wb) * *y.d.get_unchecked(b);
            let ms = half(table, wb.add(2)) * *y.s.get_unchecked(b);
            sum += dd * total(s) as f32 + ms;
            b += 1;
        }
        sum
    }
}

/// The simd128 form: nibbles and activation bytes widened to i16, four `dot_i16x8` a block.
#[cfg(all(
    target_arch = "wasm32",
    target_feature = "simd128",
    not(target_feature = "relaxed-simd")
))]
mod simd {
    use super::lanes::BlockSums;
    use super::{Activation, ACT_BLOCK_BYTES};
    use core::arch::wasm32::*;

    pub fn widen(blocks: &[u8]) -> Vec<v128> {
        crate::engine::q8_0::simd::widen_blocks(blocks, ACT_BLOCK_BYTES, 4)
    }

    pub struct Widened;

    impl BlockSums for Widened {
        /// Elements 0..8, 8..16, 16..24, 24..32 as i16.
        type Unpacked = [v128; 4];

        #[inline(always)]
        unsafe fn unpack(wb: *const u8) -> [v128; 4] {
            let q = v128_load(wb.add(4) as *const v128);
            let low = u8x16_splat(0x0f);
            let lo = v128_and(q, low);
            let hi = crate::engine::q8_0::high_nibbles(q, low);
            [
                u16x8_extend_low_u8x16(lo),
                u16x8_extend_high_u8x16(lo),
                u16x8_extend_low_u8x16(hi),
                u16x8_extend_high_u8x16(hi),
            ]
        }

        #[inline(always)]
        unsafe fn sum(w: &[v128; 4], y: &Activation, b: usize) -> v128 {
            let yv = y.wide.as_ptr().add(4 * b);
            let s = i32x4_dot_i16x8(w[0], *yv);
            let s = i32x4_add(s, i32x4_dot_i16x8(w[1], *yv.add(1)));
            let s = i32x4_add(s, i32x4_dot_i16x8(w[2], *yv.add(2)));
            i32x4_add(s, i32x4_dot_i16x8(w[3], *yv.add(3)))
        }
    }
}

/// The relaxed-SIMD form: the nibbles (0..=15) are the 7-bit operand of
/// `i32x4.relaxed_dot_i8x16_i7x16_add` as they are, so a block is two instructions per row
/// instead of four widenings and four `dot_i16x8`.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub(crate) mod relaxed {
    use super::lanes::BlockSums;
    use super::{Activation, Tile, ACT_BLOCK_BYTES, BLOCK_BYTES, TILE_ROWS, TILE_VECTORS};
    use crate::engine::q8_0::relaxed::{dot_pair_small, groups8, splats8, Dot};
    use core::arch::wasm32::*;

    /// Q4_1's nibbles, summed by `D`.
    pub struct Nibbles<D>(core::marker::PhantomData<D>);

    impl<D: Dot> BlockSums for Nibbles<D> {
        /// Byte j of the first vector is element j (the low nibbles), of the second element
        /// 16 + j (the high ones).
        type Unpacked = (v128, v128);

        #[inline(always)]
        unsafe fn unpack(wb: *const u8) -> (v128, v128) {
            let q = v128_load(wb.add(4) as *const v128);
            let low = u8x16_splat(0x0f);
            (v128_and(q, low), crate::engine::q8_0::high_nibbles(q, low))
        }

        #[inline(always)]
        unsafe fn sum(w: &(v128, v128), y: &Activation, b: usize) -> v128 {
            let yb = y.blocks.as_ptr().add(b * ACT_BLOCK_BYTES + 4);
            dot_pair_small::<D>(
                v128_load(yb as *const v128),
                w.0,
                v128_load(yb.add(16) as *const v128),
                w.1,
            )
        }
    }

    /// # Safety
    /// `at` points at two readable bytes, and `table` has all 65,536 f16 values.
    #[inline(always)]
    unsafe fn half(table: &[f32], at: *const u8) -> f32 {
        *table.get_unchecked(crate::engine::q8_0::le_u16(at) as usize)
    }

    /// The constants `widen_f16` works with, made once per row and hidden from LLVM
    /// (`black_box`): seen as constants in the loop, V8 builds them anew at every use
    /// (`q5_0::relaxed::Masks`).
    pub struct Widening {
        low: v128,
        keep: v128,
        scale: v128,
    }

    impl Widening {
        #[inline(always)]
        pub fn new() -> Self {
            Widening {
                low: core::hint::black_box(u8x16_splat(0x0f)),
                keep: core::hint::black_box(u32x4_splat(0x8fff_e000)),
                scale: core::hint::black_box(f32x4_splat(f32::from_bits(0x7780_0000))),
            }
        }
    }

    /// Four f16 values, sign-extended to i32 lanes, as f32: shifted into f32's places (the
    /// sign's copies in bits 28..31 masked off but for bit 31), the exponent then rebased by
    /// multiplying by 2^112. Exact for every finite f16, subnormals and zeros included (an f32
    /// subnormal times a power of two is exact); an infinite or NaN f16 would come out finite,
    /// which `arrangeable` keeps out.
    #[inline(always)]
    pub fn widen_f16(x: v128, c: &Widening) -> v128 {
        f32x4_mul(v128_and(i32x4_shl(x, 13), c.keep), c.scale)
    }

    /// Lane `L` of `v` in every lane.
    #[inline(always)]
    fn lane<const L: usize>(v: v128) -> v128 {
        i32x4_shuffle::<L, L, L, L>(v, v)
    }

    /// An arranged group's four scales and four minimums, as f32 (`widen_f16`).
    ///
    /// # Safety
    /// `g` points at a whole arranged group.
    #[inline(always)]
    unsafe fn group_scales(g: *const u8, c: &Widening) -> (v128, v128) {
        let h = v128_load(g as *const v128);
        (
            widen_f16(i32x4_extend_low_i16x8(h), c),
            widen_f16(i32x4_extend_high_i16x8(h), c),
        )
    }

    /// Block `i`'s weight values in an arranged group, as `Nibbles::unpack` gives a stored
    /// block's.
    ///
    /// # Safety
    /// `g` points at a whole arranged group, and `i` < 4.
    #[inline(always)]
    unsafe fn group_nibbles(g: *const u8, i: usize, c: &Widening) -> (v128, v128) {
        let q = v128_load(g.add(super::NIBBLES_AT + 16 * i) as *const v128);
        (
            v128_and(q, c.low),
            crate::engine::q8_0::high_nibbles(q, c.low),
        )
    }

    /// One arranged weight row (`super::arrange`) against one activation row: each group's four
    /// blocks in the four lanes, as `lanes::in_order` computes them from stored blocks, so the
    /// same bits; the last `n % 4` blocks, stored as they were, one at a time.
    ///
    /// # Safety
    /// `w` holds one block of `BLOCK_BYTES` per block of `y`, laid out by `arrange`, and `table`
    /// is `q8_0::scale_table()`.
    #[inline(always)]
    pub unsafe fn in_order_arranged<D: Dot>(w: &[u8], y: &Activation, table: &[f32]) -> f32 {
        use super::GROUP;
        use crate::engine::q8_0::simd::{add_in_order, sum_lanes4, total};
        let w = w.as_ptr();
        let n = y.d.len();
        let c = Widening::new();
        let mut acc = f32x4_splat(0.0);
        let mut b = 0;
        while b + GROUP <= n {
            let g = w.add(b * BLOCK_BYTES);
            let (dw, mw) = group_scales(g, &c);
            let sums: [v128; 4] = std::array::from_fn(|i| {
                <Nibbles<D> as BlockSums>::sum(&group_nibbles(g, i, &c), y, b + i)
            });
            let dd = f32x4_mul(dw, v128_load(y.d.as_ptr().add(b) as *const v128));
            let ms = f32x4_mul(mw, v128_load(y.s.as_ptr().add(b) as *const v128));
            let v = f32x4_add(f32x4_mul(dd, f32x4_convert_i32x4(sum_lanes4(sums))), ms);
            acc = f32x4_add(acc, v);
            b += GROUP;
        }
        let mut sum = add_in_order(0.0, acc);
        while b < n {
            let wb = w.add(b * BLOCK_BYTES);
            let u = <Nibbles<D> as BlockSums>::unpack(wb);
            let s = <Nibbles<D> as BlockSums>::sum(&u, y, b);
            let dd = half(table, wb) * *y.d.get_unchecked(b);
            let ms = half(table, wb.add(2)) * *y.s.get_unchecked(b);
            sum += dd * total(s) as f32 + ms;
            b += 1;
        }
        sum
    }

    /// One arranged weight row (`super::arrange`) against a tile: each group of four weight
    /// values broadcast to every lane, one relaxed dot per group and four rows
    /// (`q8_0::relaxed::groups8`); a group's scales and minimums widened four at a time, the
    /// row's last `n % 4` blocks, stored as they were, through the table.
    ///
    /// # Safety
    /// `w` holds one block of `BLOCK_BYTES` per block of the tile's rows, laid out by
    /// `arrange`, and `table` is `q8_0::scale_table()`.
    #[inline(always)]
    pub unsafe fn dot_tile<D: Dot>(w: &[u8], tile: &Tile, table: &[f32]) -> [f32; TILE_ROWS] {
        use super::GROUP;
        let mut acc = [f32x4_splat(0.0); TILE_VECTORS];
        let w = w.as_ptr();
        let groups = tile.groups.as_ptr() as *const v128;
        let dy = tile.d.as_ptr() as *const v128;
        let sy = tile.s.as_ptr() as *const v128;
        let zero = i32x4_splat(0);
        let c = Widening::new();
        // Block `b` with its weight values `u` and its scale and minimum in every lane.
        let mut block = |b: usize, u: (v128, v128), dw: v128, mw: v128| {
            let splat = splats8(u.0, u.1);
            for (v, acc) in acc.iter_mut().enumerate() {
                let bv = b * TILE_VECTORS + v;
                let sum = groups8::<D>(groups.add(8 * bv), &splat, zero);
                let t = f32x4_mul(
                    f32x4_mul(dw, v128_load(dy.add(bv))),
                    f32x4_convert_i32x4(sum),
                );
                let m = f32x4_mul(mw, v128_load(sy.add(bv)));
                *acc = f32x4_add(*acc, f32x4_add(t, m));
            }
        };
        let n = tile.acts[0].d.len();
        let mut b = 0;
        while b + GROUP <= n {
            let g = w.add(b * BLOCK_BYTES);
            let (dw, mw) = group_scales(g, &c);
            let nibbles = |i: usize| group_nibbles(g, i, &c);
            block(b, nibbles(0), lane::<0>(dw), lane::<0>(mw));
            block(b + 1, nibbles(1), lane::<1>(dw), lane::<1>(mw));
            block(b + 2, nibbles(2), lane::<2>(dw), lane::<2>(mw));
            block(b + 3, nibbles(3), lane::<3>(dw), lane::<3>(mw));
            b += GROUP;
        }
        while b < n {
            let wb = w.add(b * BLOCK_BYTES);
            block(
                b,
                <Nibbles<D> as BlockSums>::unpack(wb),
                f32x4_splat(half(table, wb)),
                f32x4_splat(half(table, wb.add(2))),
            );
            b += 1;
        }
        let mut out = [0f32; TILE_ROWS];
        for (v, acc) in acc.iter().enumerate() {
            v128_store(out[4 * v..].as_mut_ptr() as *mut v128, *acc);
        }
        out
    }
}

/// The native form on x86-64 with AVX2 (the build's baseline, `.cargo/config.toml`): 32 nibble
/// × byte products per `maddubs`, each block's sum exact, the f32 steps left to `native` so
/// that the CLI gives the wasm builds' bits. It lets native builds keep Q4_1 as stored instead
/// of requantizing it to Q8_0, which moved SmolLM2's surprisals farther from llama.cpp's than
/// llama.cpp's own configurations are from each other.
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
mod avx2 {
    use super::{Activation, ACT_BLOCK_BYTES, BLOCK_BYTES};
    use std::arch::x86_64::*;

    /// Block `b`'s exact Σ u·y against each of `ys`: 32 nibble × byte products per
    /// `maddubs`, pairs of which fit i16 (2·15·128).
    ///
    /// # Safety
    /// `w` holds block `b`, and every `ys` has it.
    #[inline(always)]
    pub unsafe fn block_sums<const R: usize>(
        w: *const u8,
        ys: [&Activation; R],
        b: usize,
    ) -> [i32; R] {
        let low = _mm256_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        let q = _mm_loadu_si128(w.add(b * BLOCK_BYTES + 4) as *const __m128i);
        // Elements 0..16 are the low nibbles, 16..32 the high ones.
        let u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);
        std::array::from_fn(|r| {
            let y = ys[r].blocks.as_ptr().add(b * ACT_BLOCK_BYTES + 4);
            let y = _mm256_loadu_si256(y as *const __m256i);
            crate::engine::q8_0::hsum_i32(_mm256_madd_epi16(_mm256_maddubs_epi16(u, y), ones))
        })
    }

    /// `block_sums` for one row, before the lanes are added.
    ///
    /// # Safety
    /// `w` holds block `b`, and `y` has it.
    #[inline(always)]
    pub unsafe fn block_lanes(w: *const u8, y: &Activation, b: usize) -> __m256i {
        let q = _mm_loadu_si128(w.add(b * BLOCK_BYTES + 4) as *const __m128i);
        let u = _mm256_and_si256(
            _mm256_set_m128i(_mm_srli_epi16(q, 4), q),
            _mm256_set1_epi8(0x0f),
        );
        let y =
            _mm256_loadu_si256(y.blocks.as_ptr().add(b * ACT_BLOCK_BYTES + 4) as *const __m256i);
        _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1))
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

    /// `arrange` moves every byte of each whole group of four and none past it, `unarranged`
    /// gives each block back, and `arrangeable` turns away a row with an infinite or NaN scale
    /// or minimum and nothing else.
    #[test]
    fn arrange_keeps_every_byte_and_refuses_only_non_finite_scales() {
        let (rows, per_row) = (3, 7);
        let stored: Vec<u8> = (0..rows * per_row * BLOCK_BYTES)
            .map(|i| (i * 131 % 251) as u8)
            .collect();
        let mut laid = stored.clone();
        arrange(&mut laid, per_row);
        for (got, want) in laid
            .chunks_exact(per_row * BLOCK_BYTES)
            .zip(stored.chunks_exact(per_row * BLOCK_BYTES))
        {
            for g in 0..per_row / GROUP {
                let group = &got[g * GROUP_BYTES..(g + 1) * GROUP_BYTES];
                for i in 0..GROUP {
                    let b = (g * GROUP + i) * BLOCK_BYTES;
                    assert_eq!(unarranged(group, i)[..], want[b..b + BLOCK_BYTES]);
                }
            }
            let tail = per_row / GROUP * GROUP_BYTES;
            assert_eq!(got[tail..], want[tail..]);
            assert_ne!(got[..tail], want[..tail]);
        }
        let mut block = [0u8; BLOCK_BYTES];
        for (at, bits, ok) in [
            (0, 0x7bffu16, true),
            (2, 0x8001, true),
            (0, 0x7c00, false),
            (2, 0xfc00, false),
            (0, 0x7e00, false),
            (2, 0xffff, false),
        ] {
            block[at..at + 2].copy_from_slice(&bits.to_le_bytes());
            let mut row = vec![0u8; 2 * BLOCK_BYTES];
            row[BLOCK_BYTES..].copy_from_slice(&block);
            assert_eq!(arrangeable(&row), ok, "{bits:#06x} at {at}");
            block = [0u8; BLOCK_BYTES];
        }
    }

    /// The tile layout read in plain Rust gives the per-row form's bits, for every row count
    /// (a partial last tile included).
    #[test]
    fn tile_gives_the_row_forms_bits() {
        let k = 32 * 7;
        let vals = |seed: u32| -> Vec<f32> { values(k, seed).iter().map(|v| v + 0.2).collect() };
        let ys: Vec<Vec<u8>> = (0..TILE_ROWS)
            .map(|r| bytes(&quantize::<BlockQ8_1>(&vals(40 + r as u32))))
            .collect();
        let acts: Vec<Activation> = ys.iter().map(|b| Activation::new(b)).collect();
        let w = bytes(&quantize::<BlockQ4_1>(&vals(3)));
        for rows in 1..=TILE_ROWS {
            let tile = Tile::new(&acts[..rows]);
            let mut got = vec![0f32; rows];
            portable_tile(&w, &tile, &mut got);
            for (r, g) in got.iter().enumerate() {
                assert_eq!(
                    g.to_bits(),
                    portable(&w, [&acts[r]])[0].to_bits(),
                    "{rows} rows"
                );
            }
        }
    }
}
