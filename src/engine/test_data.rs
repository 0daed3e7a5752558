//! Deterministic inputs for the kernel and statistics tests.

use candle_core::quantized::k_quants::GgmlType;

/// `n` values in [-0.5, 0.5) from a linear congruential sequence started at `seed`.
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

/// `v` quantized to candle's block type `T`.
pub fn quantize<T: GgmlType>(v: &[f32]) -> Vec<T> {
    let mut b = vec![T::zeros(); v.len() / T::BLCK_SIZE];
    T::from_float(v, &mut b);
    b
}

/// The raw bytes of candle blocks, as the engine's own kernels read them.
pub fn bytes<T>(b: &[T]) -> Vec<u8> {
    // SAFETY: candle's block types are `repr(C)` plain data without padding.
    unsafe { std::slice::from_raw_parts(b.as_ptr() as *const u8, std::mem::size_of_val(b)) }
        .to_vec()
}
