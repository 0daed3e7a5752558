//! e^x in f32 from plain IEEE operations (Cephes' `expf`): the same bits on every build and
//! CPU (Rust never fuses a multiply and an add on its own), and branch-free, so that loops over
//! it vectorize. libm's `expf` is one scalar call per value; attention's softmax, SiLU and the
//! token statistics take e^x of every score, activation and logit.

/// e^x within two f32 ulps for −87 ≤ x ≤ 88. Below, e^−87 (about 1.6e−38: nothing next to
/// the terms it is summed with or added to); above, e^88. NaN stays NaN natively and in `exp4`,
/// but not always where LLVM vectorizes a loop of this function for wasm: its clamp then may
/// turn NaN into −87, so e^−87 comes out (seen in the page's kernel check). Callers must not
/// count on either for NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // NaN passes through `clamp` here; 2^n stays a normal f32 within.
    let x = x.clamp(-87.0, 88.0);
    // x = n·ln2 + r, ln2 in two parts (Cody and Waite) so that r keeps its low bits.
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `exp` on four lanes, each lane `exp`'s bits: the same operations in the same order (wasm's
/// `pmax`/`pmin` are `clamp`'s two comparisons, NaN kept). LLVM does not vectorize `exp` in
/// a loop with selects and counters on its own (the token statistics ran at a quarter of
/// this speed).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub fn exp4(x: core::arch::wasm32::v128) -> core::arch::wasm32::v128 {
    use core::arch::wasm32::*;
    let x = f32x4_pmin(f32x4_pmax(x, f32x4_splat(-87.0)), f32x4_splat(88.0));
    let n = f32x4_floor(f32x4_add(
        f32x4_mul(x, f32x4_splat(std::f32::consts::LOG2_E)),
        f32x4_splat(0.5),
    ));
    let r = f32x4_sub(
        f32x4_sub(x, f32x4_mul(n, f32x4_splat(0.693_359_4))),
        f32x4_mul(n, f32x4_splat(-2.121_944_4e-4)),
    );
    let mut p = f32x4_splat(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = f32x4_add(f32x4_mul(p, r), f32x4_splat(c));
    }
    let y = f32x4_add(
        f32x4_add(f32x4_mul(f32x4_mul(p, r), r), r),
        f32x4_splat(1.0),
    );
    let two_n = i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n), i32x4_splat(127)), 23);
    f32x4_mul(y, two_n)
}

#[cfg(test)]
mod tests {
    use super::exp;

    #[test]
    fn within_two_f32_ulps_over_the_range() {
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            assert!(
                (got - want).abs() <= 2.4e-7 * want,
                "exp({x}) = {got}, want {want}"
            );
            x += 0.001_37;
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert_eq!(exp(1000.0), exp(88.0));
        assert!(exp(88.0).is_finite());
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(f32::NEG_INFINITY), exp(-87.0));
    }
}
