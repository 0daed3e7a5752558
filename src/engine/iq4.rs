//! llama.cpp's IQ4_NL and IQ4_XS weights, read as Q8_0 blocks.
//!
//! Both store 4-bit indices into one fixed table of 16 signed bytes (`KVALUES`, spaced for a
//! normal distribution instead of evenly) and an f16 scale per block of 32 values (IQ4_NL), or
//! a super-block scale with a 6-bit factor per block of 32 (IQ4_XS). A Q8_0 block is an f16
//! scale and 32 signed bytes, so each IQ4 block of 32 is one Q8_0 block holding the table's
//! values themselves: exact for IQ4_NL, and for IQ4_XS exact up to rounding the block's scale
//! (`d × factor`) to f16, a relative 2^-11 at most. The products then run on the Q8_0 kernels
//! of every build, as llama.cpp's own IQ4_NL product does (its activations are Q8_0 too).
//! Cost: 8.5 bits a weight in memory instead of 4.5 (IQ4_NL) or 4.25 (IQ4_XS).
//!
//! candle reads neither type, so `gguf_header` notes where each such tensor's type is written
//! and `gguf` shows candle a stand-in of the same block length (`IQuant::stand_in`).

use candle_core::quantized::k_quants::{BlockQ8_0, GgmlType};
use half::f16;

/// `kvalues_iq4nl` in ggml-common.h.
pub const KVALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IQuant {
    Iq4Nl,
    Iq4Xs,
}

impl IQuant {
    pub fn from_ggml(id: u32) -> Option<IQuant> {
        match id {
            20 => Some(IQuant::Iq4Nl),
            23 => Some(IQuant::Iq4Xs),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IQuant::Iq4Nl => "IQ4_NL",
            IQuant::Iq4Xs => "IQ4_XS",
        }
    }

    /// Values per block and bytes per block (`block_iq4_nl`, `block_iq4_xs`).
    pub fn block_and_size(self) -> (usize, usize) {
        match self {
            IQuant::Iq4Nl => (32, 18),
            IQuant::Iq4Xs => (256, 136),
        }
    }

    /// The ggml type candle's parser is shown instead: one it reads, with the same values per
    /// block, so that it takes the tensor's shape as it is (Q4_0 for IQ4_NL, Q4_K for IQ4_XS).
    /// Nothing reads a stand-in's bytes: `GgufFile` sizes and reads these tensors itself.
    pub fn stand_in(self) -> u32 {
        match self {
            IQuant::Iq4Nl => 2,
            IQuant::Iq4Xs => 12,
        }
    }
}

/// The Q8_0 blocks of `bytes`, whole blocks of `kind` (`bytes.len()` a multiple of its size).
/// An IQ4_XS block whose scale times its factor is past f16's range (|d| of about 2048 and
/// more: no real model's) cannot be a Q8_0 block and is refused, where it would have become
/// infinite values.
pub fn to_q8_0(kind: IQuant, bytes: &[u8]) -> Result<Vec<BlockQ8_0>, String> {
    let (block, size) = kind.block_and_size();
    let mut raw = Vec::with_capacity(bytes.len() / size * (block / 32) * Q8_0_BYTES);
    for b in bytes.chunks_exact(size) {
        match kind {
            IQuant::Iq4Nl => push_q8_0(&mut raw, [b[0], b[1]], &b[2..18]),
            IQuant::Iq4Xs => {
                let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
                let scales_h = u16::from_le_bytes([b[2], b[3]]);
                let scales_l = &b[4..8];
                let qs = &b[8..136];
                for ib in 0..8 {
                    let low = (scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf;
                    let high = ((scales_h >> (2 * ib)) & 3) as u8;
                    let factor = i32::from(low | (high << 4)) - 32;
                    // Exact in f32 (an f16 times a 6-bit integer), then rounded once.
                    let dl = f16::from_f32(d * factor as f32);
                    if dl.is_infinite() && d.is_finite() {
                        return Err(format!(
                            "an IQ4_XS block's scale {d} times its factor {factor} is past \
                             the range of the 16-bit scales it is read into"
                        ));
                    }
                    push_q8_0(&mut raw, dl.to_le_bytes(), &qs[16 * ib..16 * ib + 16]);
                }
            }
        }
    }
    let n = raw.len() / Q8_0_BYTES;
    let mut out = vec![BlockQ8_0::zeros(); n];
    // SAFETY: `BlockQ8_0` is `repr(C)` plain data (an f16 and 32 i8, 34 bytes, asserted by
    // candle) for which every byte pattern is a value; `raw` holds exactly `n` of them.
    unsafe {
        std::ptr::copy_nonoverlapping(raw.as_ptr(), out.as_mut_ptr() as *mut u8, n * Q8_0_BYTES)
    };
    Ok(out)
}

const Q8_0_BYTES: usize = 34;

/// One Q8_0 block: the scale, then the table's values for the 32 indices, low nibbles first
/// (values 0-15 of the block), then high nibbles (16-31), as `dequantize_row_iq4_nl` orders them.
fn push_q8_0(raw: &mut Vec<u8>, d: [u8; 2], nibbles: &[u8]) {
    raw.extend_from_slice(&d);
    raw.extend(nibbles.iter().map(|q| KVALUES[usize::from(q & 0xf)] as u8));
    raw.extend(nibbles.iter().map(|q| KVALUES[usize::from(q >> 4)] as u8));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dequantized(blocks: &[BlockQ8_0]) -> Vec<f32> {
        let mut out = vec![0f32; blocks.len() * 32];
        BlockQ8_0::to_float(blocks, &mut out);
        out
    }

    /// `dequantize_row_iq4_nl`, written out from ggml-quants.c.
    #[test]
    fn iq4_nl_is_llama_cpps_values_exactly() {
        let mut b = vec![0u8; 18 * 2];
        b[0..2].copy_from_slice(&f16::from_f32(0.015625).to_le_bytes());
        b[18..20].copy_from_slice(&f16::from_f32(-3.5).to_le_bytes());
        for (i, x) in b.iter_mut().enumerate().filter(|(i, _)| i % 18 >= 2) {
            *x = (i * 37 % 256) as u8;
        }
        let got = dequantized(&to_q8_0(IQuant::Iq4Nl, &b).unwrap());
        for blk in 0..2 {
            let o = blk * 18;
            let d = f16::from_le_bytes([b[o], b[o + 1]]).to_f32();
            for j in 0..16 {
                let q = b[o + 2 + j];
                assert_eq!(
                    got[blk * 32 + j],
                    d * f32::from(KVALUES[(q & 0xf) as usize])
                );
                assert_eq!(
                    got[blk * 32 + j + 16],
                    d * f32::from(KVALUES[(q >> 4) as usize])
                );
            }
        }
    }

    /// A scale whose product with its factor f16 cannot hold is refused (it became infinite
    /// values, where llama.cpp's f32 arithmetic keeps them finite); one just inside is kept.
    #[test]
    fn an_iq4_xs_scale_past_f16_is_refused() {
        let block = |d: f32, ls: u8| {
            let mut b = vec![0u8; 136];
            b[0..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
            b[4] = ls & 0xf;
            b[2] = ls >> 4;
            b
        };
        // Factor ls − 32 = −32 (ls 0) in the first sub-block; the others 0 − 32 too.
        assert!(to_q8_0(IQuant::Iq4Xs, &block(2048.0, 0)).is_err());
        assert!(to_q8_0(IQuant::Iq4Xs, &block(2000.0, 0)).is_ok());
        assert!(
            to_q8_0(IQuant::Iq4Xs, &block(2048.0, 33)).is_err(),
            "other sub-blocks' factor −32"
        );
        // A NaN or infinite scale stays what it is, as in llama.cpp (the scores' NaN check
        // names it later).
        assert!(to_q8_0(IQuant::Iq4Xs, &block(f32::INFINITY, 0)).is_ok());
    }

    /// `dequantize_row_iq4_xs`: every 6-bit factor, both nibbles, the scale's rounding bounded.
    #[test]
    fn iq4_xs_is_llama_cpps_values_up_to_the_scales_rounding() {
        let mut blocks = Vec::new();
        for s in 0..8u32 {
            let mut b = vec![0u8; 136];
            b[0..2].copy_from_slice(&f16::from_f32(0.0123 * (s + 1) as f32).to_le_bytes());
            // Factors s*8 .. s*8+7 across the eight sub-blocks: all 64 over the eight blocks.
            let mut scales_h = 0u16;
            for ib in 0..8 {
                let ls = (s * 8 + ib as u32) as u8;
                b[4 + ib / 2] |= (ls & 0xf) << (4 * (ib % 2));
                scales_h |= u16::from(ls >> 4) << (2 * ib);
            }
            b[2..4].copy_from_slice(&scales_h.to_le_bytes());
            for (j, x) in b[8..].iter_mut().enumerate() {
                *x = (j as u32 * 73 + s * 11) as u8;
            }
            blocks.extend_from_slice(&b);
        }
        let got = dequantized(&to_q8_0(IQuant::Iq4Xs, &blocks).unwrap());
        assert_eq!(got.len(), 8 * 256);
        for (s, b) in blocks.chunks_exact(136).enumerate() {
            let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
            let scales_h = u16::from_le_bytes([b[2], b[3]]);
            for ib in 0..8 {
                let ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xf) as i32
                    | ((((scales_h >> (2 * ib)) & 3) as i32) << 4);
                assert_eq!(ls as usize, s * 8 + ib);
                let dl = d * (ls - 32) as f32;
                for j in 0..16 {
                    let q = b[8 + 16 * ib + j];
                    for (k, nib) in [(j, q & 0xf), (j + 16, q >> 4)] {
                        let want = dl * f32::from(KVALUES[nib as usize]);
                        let at = s * 256 + ib * 32 + k;
                        assert!(
                            (got[at] - want).abs() <= want.abs() * (1.0 / 2048.0),
                            "block {s} sub-block {ib} value {k}: {} against {want}",
                            got[at]
                        );
                    }
                }
            }
        }
    }
}
