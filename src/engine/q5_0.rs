//! The engine's own Q5_0 × Q8_0 kernel, for the relaxed-SIMD wasm build, so Q5_0 weights (most
//! of Gemma 3's and Qwen2.5's) stay at 5.5 bits per weight instead of being requantized to
//! Q8_0 (8.5 bits) at load: a smaller heap, fewer bytes streamed per decoded token, and
//! llama.cpp's own weights rather than a rounding of them.
//!
//! A Q5_0 value is `u − 16` with `u` in 0..=31: its low four bits in a nibble, its fifth in a
//! 32-bit mask. `u` is a valid 7-bit operand of the relaxed i8 × i7 dot products as it is, and
//! Σ(u − 16)·y = Σu·y − 16·Σy, so the activation brings −16·Σy, once per block: decoding adds
//! four blocks' at once after their sums are gathered, a prefill tile starts from it.
//!
//! The arithmetic is ggml's reference `vec_dot_q5_0_q8_0`: per block the exact integer
//! Σ(u − 16)·y, then `acc += sum · (d_x·d_y)` in one f32. Integer sums do not depend on the
//! order of their additions, so every form here (a tile of activation rows while prefilling,
//! several rows, the portable form) gives the same bits, whichever lanes it sums in. The one
//! row read in order while decoding adds its blocks' products in its own fixed order
//! (`q8_0::in_order_sum`, `portable_in_order`).
//!
//! In the relaxed build the weights are laid out at load (`arrange`, `ARRANGED`): each run of
//! four blocks keeps its scales and nibbles and gathers its fifth bits into one 16-byte
//! plane, so that a half block's fifth bits are a shift and a mask instead of a shuffle, a
//! mask, a comparison and another mask. The same bytes in another order: no memory added.
//!
//! Prefill (`Tile`): the activation rows are laid out four to a vector, each i32 lane holding
//! four consecutive values of one row, and each group of four weight values is broadcast to
//! every lane. One relaxed dot then advances four rows at once, and a lane is one row's sum:
//! no horizontal sums, and the weight block is unpacked once for `TILE_ROWS` rows.

use super::q8_0::{self, f16_to_f32};

/// candle's `#[repr(C)] BlockQ5_0`: f16 d, 4 bytes of fifth bits, 16 bytes of nibbles.
pub const BLOCK_BYTES: usize = 22;
pub const BLOCK: usize = 32;

/// One activation row, quantized to Q8_0 (`q8_0::BLOCK_BYTES` per block), prepared once.
pub struct Activation<'a> {
    blocks: &'a [u8],
    scales: Vec<f32>,
    /// Per block: the 32 bytes as two vectors.
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    arranged: Vec<core::arch::wasm32::v128>,
    /// Per block: −16·Σy, which four consecutive blocks add as one vector.
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    offsets: Vec<i32>,
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
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        let (arranged, offsets) = relaxed::arrange(blocks);
        Activation {
            blocks,
            scales,
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            arranged,
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            offsets,
            #[cfg(all(
                target_arch = "x86_64",
                target_feature = "avx2",
                target_feature = "fma"
            ))]
            offsets: avx2::offsets(blocks),
        }
    }

    /// The 32 signed values of block `b`.
    fn values(&self, b: usize) -> &[u8] {
        &self.blocks[b * q8_0::BLOCK_BYTES + 2..(b + 1) * q8_0::BLOCK_BYTES]
    }
}

/// Activation rows per prefill pass: two vectors of four rows.
pub const TILE_ROWS: usize = 8;
const TILE_VECTORS: usize = TILE_ROWS / 4;

/// Up to `TILE_ROWS` activation rows laid out for `dot_tile`. Per block and per vector of four
/// rows: eight groups of 16 bytes, lane l of group g holding values 4g..4g+4 of row l; then each
/// row's −16·Σy and its scale, one lane per row. Rows past the last are zeros.
pub struct Tile<'a> {
    acts: &'a [Activation<'a>],
    groups: Vec<[u8; 16]>,
    offsets: Vec<[i32; 4]>,
    scales: Vec<[f32; 4]>,
}

impl<'a> Tile<'a> {
    /// `acts`: 1 to `TILE_ROWS` rows of the same length.
    pub fn new(acts: &'a [Activation<'a>]) -> Self {
        assert!((1..=TILE_ROWS).contains(&acts.len()));
        let n = acts[0].scales.len();
        assert!(acts.iter().all(|a| a.scales.len() == n));
        let mut groups = vec![[0u8; 16]; n * TILE_VECTORS * 8];
        let mut offsets = vec![[0i32; 4]; n * TILE_VECTORS];
        let mut scales = vec![[0f32; 4]; n * TILE_VECTORS];
        for (r, a) in acts.iter().enumerate() {
            let (v, l) = (r / 4, r % 4);
            for b in 0..n {
                let bv = b * TILE_VECTORS + v;
                let y = a.values(b);
                super::act_quant::into_lanes(&mut groups[bv * 8..(bv + 1) * 8], l, y);
                offsets[bv][l] = -16 * y.iter().map(|&q| q as i8 as i32).sum::<i32>();
                scales[bv][l] = a.scales[b];
            }
        }
        Tile {
            acts,
            groups,
            offsets,
            scales,
        }
    }

    pub fn rows(&self) -> usize {
        self.acts.len()
    }
}

/// A block's 32 weight values as `u` (0..=31) and its scale.
#[inline(always)]
fn unpack_portable(wb: &[u8]) -> ([i32; 32], f32) {
    let qh = u32::from_le_bytes([wb[2], wb[3], wb[4], wb[5]]);
    let mut u = [0i32; 32];
    for j in 0..16 {
        u[j] = (wb[6 + j] & 0x0f) as i32 | (((qh >> j) & 1) << 4) as i32;
        u[16 + j] = (wb[6 + j] >> 4) as i32 | (((qh >> (j + 16)) & 1) << 4) as i32;
    }
    (u, f16_to_f32(u16::from_le_bytes([wb[0], wb[1]])))
}

/// Whether this build's SIMD forms (`dot_rows`, `dot_in_order`, `dot_tile`) read rows laid
/// out by `arrange` rather than as stored: the relaxed-SIMD wasm build. The portable forms
/// and the native AVX2 form always read the stored layout.
pub const ARRANGED: bool = cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd"));

/// Blocks per arranged group.
pub const GROUP: usize = 4;
const GROUP_BYTES: usize = GROUP * BLOCK_BYTES;
/// Where an arranged group keeps its nibbles and its plane of fifth bits.
const NIBBLES_AT: usize = 2 * GROUP;
const PLANE_AT: usize = NIBBLES_AT + 16 * GROUP;

/// Lays out each row of `blocks_per_row` blocks for the relaxed-SIMD forms, in place, the
/// same bytes in another order: each run of four blocks becomes their four f16 scales, their
/// four 16-byte runs of nibbles, then one 16-byte plane of their fifth bits, where bit `g` of
/// byte `j` is the fifth bit of element `j` of half-block `g` (block `g / 2`, elements
/// `16·(g % 2)..`). A half block's fifth bits are then one shift and one mask of the plane,
/// where the stored form needs a shuffle, a mask, a comparison and another mask; `unarranged`
/// reads a block back. The blocks past the row's last group of four stay as stored.
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
                out[NIBBLES_AT + 16 * i..NIBBLES_AT + 16 * (i + 1)].copy_from_slice(&b[6..]);
                let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                for j in 0..16 {
                    for half in 0..2 {
                        let bit = (qh >> (16 * half + j)) & 1;
                        out[PLANE_AT + j] |= (bit as u8) << (2 * i + half);
                    }
                }
            }
            group.copy_from_slice(&out);
        }
    }
}

/// Whether `arrange`'s layout can hold these rows in the relaxed build, whose decoding widens a
/// group's f16 scales in vector arithmetic (`q4_1::relaxed::widen_f16`), exact for every finite
/// value: a row with an infinite or NaN scale (a damaged or hostile file) is not.
pub fn arrangeable(blocks: &[u8]) -> bool {
    blocks
        .chunks_exact(BLOCK_BYTES)
        .all(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7c00 != 0x7c00)
}

/// Block `i` (0..4) of an arranged group, as stored.
pub fn unarranged(group: &[u8], i: usize) -> [u8; BLOCK_BYTES] {
    let mut b = [0u8; BLOCK_BYTES];
    b[..2].copy_from_slice(&group[2 * i..2 * i + 2]);
    let mut qh = 0u32;
    for j in 0..16 {
        for half in 0..2 {
            let bit = (group[PLANE_AT + j] >> (2 * i + half)) & 1;
            qh |= (bit as u32) << (16 * half + j);
        }
    }
    b[2..6].copy_from_slice(&qh.to_le_bytes());
    b[6..].copy_from_slice(&group[NIBBLES_AT + 16 * i..NIBBLES_AT + 16 * (i + 1)]);
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

/// One weight row against `R` activation rows (laid out by `arrange` where `ARRANGED`). The
/// relaxed build, which prefills with tiles and decodes with `dot_in_order`, reads each row
/// with `dot_in_order` here (so in decoding's order, `portable_in_order`); elsewhere the
/// reference order.
pub fn dot_rows<const R: usize>(w: &[u8], ys: [&Activation; R]) -> [f32; R] {
    let n = ys[0].scales.len();
    assert!(w.len() == n * BLOCK_BYTES && ys.iter().all(|y| y.scales.len() == n));
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: lengths checked above.
        super::dot_form::with_dot!(D => {
            ys.map(|y| unsafe { relaxed::in_order::<D>(w, y, q8_0::scale_table()) })
        })
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

/// Natively: AVX2's exact block sums, then `portable`'s f32 steps (`sequential`) or
/// `portable_in_order`'s, so the CLI has the relaxed build's bits (`q8_0::native_rows`).
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
fn native<const R: usize>(w: &[u8], ys: [&Activation; R], sequential: bool) -> [f32; R] {
    let table = q8_0::scale_table();
    q8_0::native_rows(ys[0].scales.len(), sequential, |b| {
        let wb = &w[b * BLOCK_BYTES..];
        let dw = table[u16::from_le_bytes([wb[0], wb[1]]) as usize];
        // SAFETY: the callers check that `w` holds a block per activation block.
        let s = unsafe { avx2::block_sums(w.as_ptr(), ys, b) };
        std::array::from_fn(|r| s[r] as f32 * (dw * ys[r].scales[b]))
    })
}

/// One weight row against a tile of activation rows (prefill); `out` takes one value per row,
/// each with `dot_rows`'s bits. The row is laid out by `arrange` where `ARRANGED`.
pub fn dot_tile(w: &[u8], tile: &Tile, out: &mut [f32]) {
    let n = tile.acts[0].scales.len();
    assert!(w.len() == n * BLOCK_BYTES && out.len() == tile.rows());
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: lengths checked above and by `Tile::new`.
        let all = super::dot_form::with_dot!(D => unsafe {
            relaxed::dot_tile::<D>(w, tile, q8_0::scale_table())
        });
        out.copy_from_slice(&all[..out.len()]);
    }
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    {
        // Four rows per pass, each with `dot_rows`'s (the reference's) bits.
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
    #[cfg(not(any(
        all(target_arch = "wasm32", target_feature = "relaxed-simd"),
        all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma"
        )
    )))]
    {
        portable_tile(w, tile, out)
    }
}

/// One weight row against one activation row, read front to back (decoding in the wasm
/// builds, `weight::decode_streams`): four consecutive blocks to a vector's lanes, their
/// products added in `q8_0::in_order_sum`'s order: `portable_in_order`'s bits in wasm (the
/// simd128 build requantizes Q5_0 and never decodes with it), natively too
/// (`q8_0::native_in_order`). The row is laid out by `arrange` where `ARRANGED`.
pub fn dot_in_order(w: &[u8], y: &Activation) -> f32 {
    assert!(w.len() == y.scales.len() * BLOCK_BYTES);
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    {
        // SAFETY: length checked above.
        super::dot_form::with_dot!(D => unsafe {
            relaxed::in_order::<D>(w, y, q8_0::scale_table())
        })
    }
    #[cfg(all(target_arch = "wasm32", not(target_feature = "relaxed-simd")))]
    {
        portable_in_order(w, y)
    }
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    {
        let table = q8_0::scale_table();
        // SAFETY: length checked above.
        unsafe {
            q8_0::native_in_order::<false>(
                y.scales.len(),
                |b| avx2::block_lanes(w.as_ptr(), y, b),
                |b| {
                    let wb = &w[b * BLOCK_BYTES..];
                    table[u16::from_le_bytes([wb[0], wb[1]]) as usize] * y.scales[b]
                },
                |_| 0.0,
            )
        }
    }
    #[cfg(not(any(
        target_arch = "wasm32",
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

/// The reference form (ggml's scalar arithmetic): machines without SIMD, and the tests.
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
        let mut acc = 0f32;
        for b in 0..n {
            acc += block_term(w, y, b);
        }
        acc
    })
}

/// `dot_in_order`'s arithmetic in plain Rust on a stored row: the wasm builds' decoding
/// reference (`kernel_check`).
pub fn portable_in_order(w: &[u8], y: &Activation) -> f32 {
    q8_0::in_order_sum(y.scales.len(), |b| block_term(w, y, b))
}

/// Block `b`'s f32 product, ggml's: the exact Σ(u − 16)·y, then `sum · (d_x·d_y)`.
fn block_term(w: &[u8], y: &Activation, b: usize) -> f32 {
    let (u, dw) = unpack_portable(&w[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES]);
    let s: i32 = u
        .iter()
        .zip(y.values(b))
        .map(|(&u, &q)| (u - 16) * q as i8 as i32)
        .sum();
    s as f32 * (dw * y.scales[b])
}

/// `dot_tile` read from the tile's own layout in plain Rust: checks that layout natively
/// (`kernel_check`), and runs where there is no SIMD form.
#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "relaxed-simd"),
    allow(dead_code)
)]
pub fn portable_tile(w: &[u8], tile: &Tile, out: &mut [f32]) {
    let n = tile.acts[0].scales.len();
    let mut acc = [0f32; TILE_ROWS];
    for b in 0..n {
        let (u, dw) = unpack_portable(&w[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES]);
        for v in 0..TILE_VECTORS {
            let bv = b * TILE_VECTORS + v;
            for l in 0..4 {
                let mut s = tile.offsets[bv][l];
                for g in 0..8 {
                    for j in 0..4 {
                        s += tile.groups[bv * 8 + g][4 * l + j] as i8 as i32 * u[4 * g + j];
                    }
                }
                acc[4 * v + l] += s as f32 * (dw * tile.scales[bv][l]);
            }
        }
    }
    out.copy_from_slice(&acc[..out.len()]);
}

#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
mod relaxed {
    use super::{
        Activation, Tile, BLOCK_BYTES, GROUP, NIBBLES_AT, PLANE_AT, TILE_ROWS, TILE_VECTORS,
    };
    use crate::engine::q8_0;
    use crate::engine::q8_0::relaxed::{dot_pair_small, groups8, splats8, Dot};
    use crate::engine::q8_0::simd::{add_in_order, sum_lanes4, total};
    use core::arch::wasm32::*;

    pub fn arrange(blocks: &[u8]) -> (Vec<v128>, Vec<i32>) {
        let values = blocks
            .chunks_exact(q8_0::BLOCK_BYTES)
            .flat_map(|b| {
                // SAFETY: a block has 32 bytes after its 2-byte scale.
                unsafe {
                    [
                        v128_load(b[2..].as_ptr() as *const v128),
                        v128_load(b[18..].as_ptr() as *const v128),
                    ]
                }
            })
            .collect();
        let offsets = blocks
            .chunks_exact(q8_0::BLOCK_BYTES)
            .map(|b| -16 * b[2..].iter().map(|&v| v as i8 as i32).sum::<i32>())
            .collect();
        (values, offsets)
    }

    /// The constant vectors `unpack` works with, made once per product and hidden from LLVM
    /// (`black_box`). Seen as constants, LLVM folds them into the instructions: the shuffle
    /// masks become immediates, which V8 builds anew for every block (a 64-bit move and an
    /// insert each), and the bit test becomes a not-equal, which V8 makes of a compare, a
    /// vector of ones and an xor. As values in registers, a block's fifth bits are a
    /// `pshufb`, an and, a compare and an and per half (V8's code, read with node's
    /// `--print-wasm-code`).
    #[derive(Clone, Copy)]
    pub struct Masks {
        /// Bytes 0 and 1 (then 2 and 3) of the fifth-bit mask, each spread to eight lanes.
        spread: [v128; 2],
        /// Lane j: bit j % 8.
        bits: v128,
        fifth: v128,
        low: v128,
    }

    impl Masks {
        #[inline(always)]
        pub fn new() -> Self {
            core::hint::black_box(Masks {
                spread: [
                    u8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                    u8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3),
                ],
                bits: u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128),
                fifth: u8x16_splat(0x10),
                low: u8x16_splat(0x0f),
            })
        }
    }

    /// One weight block as the relaxed dot's unsigned operands (elements 0..16, 16..32, each
    /// 0..=31) and its scale.
    ///
    /// # Safety
    /// `wb` points at a whole block, and `table` is `q8_0::scale_table()`.
    #[inline(always)]
    unsafe fn unpack(wb: *const u8, table: &[f32], m: &Masks) -> (v128, v128, f32) {
        // Element j's fifth bit is bit j of the 32-bit mask: its bytes spread one per element
        // (`relaxed_swizzle` is `swizzle` for indices below 16, without V8's clamp).
        let qh = v128_load32_splat(wb.add(2) as *const u32);
        let h0 = i8x16_relaxed_swizzle(qh, m.spread[0]);
        let h1 = i8x16_relaxed_swizzle(qh, m.spread[1]);
        let h0 = v128_and(i8x16_eq(v128_and(h0, m.bits), m.bits), m.fifth);
        let h1 = v128_and(i8x16_eq(v128_and(h1, m.bits), m.bits), m.fifth);
        let q = v128_load(wb.add(6) as *const v128);
        let u0 = v128_or(v128_and(q, m.low), h0);
        let u1 = v128_or(crate::engine::q8_0::high_nibbles(q, m.low), h1);
        let dw = *table.get_unchecked(crate::engine::q8_0::le_u16(wb) as usize);
        (u0, u1, dw)
    }

    /// Half-block `g`'s fifth bits from an arranged group's plane: bit `g` of each byte moved
    /// to bit 4 and masked to 0x10. The shift is of 16-bit lanes, and a shift left by at most
    /// 4 or right by at most 3 brings bit 4 of each byte from within that byte, so the mask
    /// keeps nothing of its neighbour.
    #[inline(always)]
    fn fifth_bits<const G: u32>(plane: v128, fifth: v128) -> v128 {
        let at4 = if G <= 4 {
            u16x8_shl(plane, 4 - G)
        } else {
            u16x8_shr(plane, G - 4)
        };
        v128_and(at4, fifth)
    }

    /// Block `I` of an arranged group (`super::arrange`) as the relaxed dot's unsigned
    /// operands and its scale.
    ///
    /// # Safety
    /// `group` points at a whole arranged group, and `table` is `q8_0::scale_table()`.
    #[inline(always)]
    unsafe fn unpack_in_group<const I: usize>(
        group: *const u8,
        plane: v128,
        table: &[f32],
        m: &Masks,
    ) -> (v128, v128, f32) {
        let q = v128_load(group.add(NIBBLES_AT + 16 * I) as *const v128);
        let (h0, h1) = match I {
            0 => (
                fifth_bits::<0>(plane, m.fifth),
                fifth_bits::<1>(plane, m.fifth),
            ),
            1 => (
                fifth_bits::<2>(plane, m.fifth),
                fifth_bits::<3>(plane, m.fifth),
            ),
            2 => (
                fifth_bits::<4>(plane, m.fifth),
                fifth_bits::<5>(plane, m.fifth),
            ),
            _ => (
                fifth_bits::<6>(plane, m.fifth),
                fifth_bits::<7>(plane, m.fifth),
            ),
        };
        let u0 = v128_or(v128_and(q, m.low), h0);
        let u1 = v128_or(crate::engine::q8_0::high_nibbles(q, m.low), h1);
        let dw = *table.get_unchecked(crate::engine::q8_0::le_u16(group.add(2 * I)) as usize);
        (u0, u1, dw)
    }

    /// The four blocks of an arranged group, unpacked.
    ///
    /// # Safety
    /// As `unpack_in_group`.
    #[inline(always)]
    unsafe fn unpack_group(group: *const u8, table: &[f32], m: &Masks) -> [(v128, v128, f32); 4] {
        let plane = v128_load(group.add(PLANE_AT) as *const v128);
        [
            unpack_in_group::<0>(group, plane, table, m),
            unpack_in_group::<1>(group, plane, table, m),
            unpack_in_group::<2>(group, plane, table, m),
            unpack_in_group::<3>(group, plane, table, m),
        ]
    }

    /// One arranged weight row against one activation row: each group's four blocks in the
    /// four lanes (exact integer sums, then each block's f32 product), summed in the lanes,
    /// the lanes then added up in order, and the last `n % 4` blocks, stored as they were,
    /// one at a time (`q8_0::in_order_sum`).
    ///
    /// # Safety
    /// `w` holds one block of `BLOCK_BYTES` per block of `y`, laid out by `arrange`, and
    /// `table` is `q8_0::scale_table()`.
    #[inline(always)]
    pub unsafe fn in_order<D: Dot>(w: &[u8], y: &Activation, table: &[f32]) -> f32 {
        let w = w.as_ptr();
        let (arranged, scales) = (y.arranged.as_ptr(), y.scales.as_ptr());
        let offsets = y.offsets.as_ptr();
        let n = y.scales.len();
        let masks = Masks::new();
        let dot = |b: usize, u0: v128, u1: v128| {
            let yv = arranged.add(2 * b);
            dot_pair_small::<D>(*yv, u0, *yv.add(1), u1)
        };
        let widening = crate::engine::q4_1::relaxed::Widening::new();
        let mut acc = f32x4_splat(0.0);
        let mut b = 0;
        while b + GROUP <= n {
            let group = w.add(b * BLOCK_BYTES);
            // The group's four scales widened in vector arithmetic (`q4_1::relaxed::widen_f16`,
            // exact for every finite f16; `arrangeable` keeps the rest out); `unpack_group`'s
            // table lookups then go unused and LLVM drops them.
            let dw = crate::engine::q4_1::relaxed::widen_f16(
                i32x4_extend_low_i16x8(v128_load64_zero(group as *const u64)),
                &widening,
            );
            let blocks = unpack_group(group, table, &masks);
            let d = f32x4_mul(dw, v128_load(scales.add(b) as *const v128));
            let s: [v128; 4] = std::array::from_fn(|i| dot(b + i, blocks[i].0, blocks[i].1));
            let sums = i32x4_add(sum_lanes4(s), v128_load(offsets.add(b) as *const v128));
            let p = f32x4_mul(f32x4_convert_i32x4(sums), d);
            acc = f32x4_add(acc, p);
            b += GROUP;
        }
        let mut sum = add_in_order(0.0, acc);
        while b < n {
            let (u0, u1, dw) = unpack(w.add(b * BLOCK_BYTES), table, &masks);
            sum += (total(dot(b, u0, u1)) + *offsets.add(b)) as f32 * (dw * *scales.add(b));
            b += 1;
        }
        sum
    }

    /// One arranged weight row against a tile: per block, each group of four weight values
    /// broadcast to every lane, and one relaxed dot per group and four rows
    /// (`q8_0::relaxed::groups8`).
    ///
    /// # Safety
    /// `w` holds one block of `BLOCK_BYTES` per block of the tile's rows, laid out by
    /// `arrange`, and `table` is `q8_0::scale_table()`.
    #[inline(always)]
    pub unsafe fn dot_tile<D: Dot>(w: &[u8], tile: &Tile, table: &[f32]) -> [f32; TILE_ROWS] {
        let mut acc = [f32x4_splat(0.0); TILE_VECTORS];
        let masks = Masks::new();
        let w = w.as_ptr();
        let groups = tile.groups.as_ptr() as *const v128;
        let offsets = tile.offsets.as_ptr() as *const v128;
        let scales = tile.scales.as_ptr() as *const v128;
        let mut block = |b: usize, (u0, u1, dw): (v128, v128, f32)| {
            let dw = f32x4_splat(dw);
            let splat = splats8(u0, u1);
            for (v, acc) in acc.iter_mut().enumerate() {
                let bv = b * TILE_VECTORS + v;
                let sum = groups8::<D>(groups.add(8 * bv), &splat, v128_load(offsets.add(bv)));
                let d = f32x4_mul(dw, v128_load(scales.add(bv)));
                *acc = f32x4_add(*acc, f32x4_mul(f32x4_convert_i32x4(sum), d));
            }
        };
        let n = tile.acts[0].scales.len();
        let mut b = 0;
        while b + GROUP <= n {
            let unpacked = unpack_group(w.add(b * BLOCK_BYTES), table, &masks);
            for (i, u) in unpacked.into_iter().enumerate() {
                block(b + i, u);
            }
            b += GROUP;
        }
        while b < n {
            block(b, unpack(w.add(b * BLOCK_BYTES), table, &masks));
            b += 1;
        }
        let mut out = [0f32; TILE_ROWS];
        for (v, acc) in acc.iter().enumerate() {
            v128_store(out[4 * v..].as_mut_ptr() as *mut v128, *acc);
        }
        out
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

    /// Block `b`'s exact Σ(u − 16)·y against each of `ys`: the unsigned 5-bit values times y
    /// by `maddubs`, less 16·Σy (`offsets`, per lane).
    ///
    /// # Safety
    /// `w` holds block `b`, and every `ys` has it.
    #[inline(always)]
    pub unsafe fn block_sums<const R: usize>(
        w: *const u8,
        ys: [&Activation; R],
        b: usize,
    ) -> [i32; R] {
        let ones = _mm256_set1_epi16(1);
        let u = unpacked(w.add(b * BLOCK_BYTES));
        std::array::from_fn(|r| q8_0::hsum_i32(lanes_of(u, ys[r], b, ones)))
    }

    /// Block `b`'s unsigned 5-bit values (`u`) against `y` in eight i32 lanes whose total is
    /// the exact Σ(u − 16)·y.
    #[inline(always)]
    unsafe fn lanes_of(u: __m256i, y: &Activation, b: usize, ones: __m256i) -> __m256i {
        let yv = y.blocks.as_ptr().add(b * q8_0::BLOCK_BYTES + 2);
        let yv = _mm256_loadu_si256(yv as *const __m256i);
        let s = _mm256_madd_epi16(_mm256_maddubs_epi16(u, yv), ones);
        let off = _mm256_loadu_si256(y.offsets.as_ptr().add(b) as *const __m256i);
        _mm256_sub_epi32(s, off)
    }

    /// `block_sums` for one row, before the lanes are added.
    ///
    /// # Safety
    /// `w` holds block `b`, and `y` has it.
    #[inline(always)]
    pub unsafe fn block_lanes(w: *const u8, y: &Activation, b: usize) -> __m256i {
        let u = unpacked(w.add(b * BLOCK_BYTES));
        lanes_of(u, y, b, _mm256_set1_epi16(1))
    }

    /// A block's 32 values as unsigned bytes: the nibbles, and 0x10 where the fifth bit is set.
    #[inline(always)]
    unsafe fn unpacked(wb: *const u8) -> __m256i {
        let spread = _mm256_setr_epi8(
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3,
            3, 3, 3,
        );
        let bits = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
        let qh = u32::from_le_bytes([*wb.add(2), *wb.add(3), *wb.add(4), *wb.add(5)]);
        // Byte j gets bit j of the mask, as 0x10 or 0.
        let h = _mm256_shuffle_epi8(_mm256_set1_epi32(qh as i32), spread);
        let h = _mm256_and_si256(
            _mm256_cmpeq_epi8(_mm256_and_si256(h, bits), bits),
            _mm256_set1_epi8(0x10),
        );
        let q = _mm_loadu_si128(wb.add(6) as *const __m128i);
        let u = _mm256_and_si256(
            _mm256_set_m128i(_mm_srli_epi16(q, 4), q),
            _mm256_set1_epi8(0x0f),
        );
        _mm256_or_si256(u, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_data::{bytes, quantize, values};
    use candle_core::quantized::k_quants::{BlockQ5_0, BlockQ8_0, GgmlType};

    /// `arrangeable` turns away a row with an infinite or NaN scale and nothing else.
    #[test]
    fn arrangeable_refuses_only_non_finite_scales() {
        for (bits, ok) in [
            (0x7bffu16, true),
            (0x8001, true),
            (0x0000, true),
            (0x7c00, false),
            (0xfc00, false),
            (0x7e01, false),
        ] {
            let mut row = vec![0u8; 2 * BLOCK_BYTES];
            row[BLOCK_BYTES..BLOCK_BYTES + 2].copy_from_slice(&bits.to_le_bytes());
            assert_eq!(arrangeable(&row), ok, "{bits:#06x}");
        }
    }

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

    /// `arrange` moves bytes only: every block of a whole group reads back as stored through
    /// `unarranged`, the blocks past the last group stay where they were, and rows stay apart.
    #[test]
    fn arrange_keeps_every_block() {
        for per_row in [1usize, 3, 4, 7, 8, 28] {
            let rows = 3;
            let mut s = 0x2545_f491u32;
            let stored: Vec<u8> = (0..rows * per_row * BLOCK_BYTES)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 17;
                    s ^= s << 5;
                    s as u8
                })
                .collect();
            let mut arranged = stored.clone();
            arrange(&mut arranged, per_row);
            let row_bytes = per_row * BLOCK_BYTES;
            let whole = per_row / GROUP * GROUP;
            for r in 0..rows {
                let (a, st) = (&arranged[r * row_bytes..], &stored[r * row_bytes..]);
                for b in 0..per_row {
                    let want = &st[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES];
                    let got = if b < whole {
                        unarranged(&a[(b / GROUP) * GROUP_BYTES..], b % GROUP).to_vec()
                    } else {
                        a[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES].to_vec()
                    };
                    assert_eq!(got, want, "{per_row} blocks a row, row {r}, block {b}");
                }
            }
            if per_row >= GROUP {
                assert_ne!(arranged, stored, "{per_row} blocks a row");
            }
        }
    }

    /// The tile layout read in plain Rust gives the per-row form's bits, for every row count
    /// (a partial last tile included).
    #[test]
    fn tile_gives_the_row_forms_bits() {
        let k = 32 * 7;
        let ys: Vec<Vec<u8>> = (0..TILE_ROWS)
            .map(|r| bytes(&quantize::<BlockQ8_0>(&values(k, 40 + r as u32))))
            .collect();
        let acts: Vec<Activation> = ys.iter().map(|b| Activation::new(b)).collect();
        let w = bytes(&quantize::<BlockQ5_0>(&values(k, 3)));
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
