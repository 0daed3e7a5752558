//! e^x in f32 from plain IEEE operations (Cephes' `expf`): the same bits on every build and
//! CPU (Rust never fuses a multiply and an add on its own), and branch-free, so that loops over
//! it vectorize. libm's `expf` is one scalar call per value; attention's softmax, SiLU and the
//! token statistics take e^x of every score, activation and logit.

/// e^x within two f32 ulps for −87 ≤ x ≤ 88. Below, e^−87 (about 1.6e−38: nothing next to
/// the terms it is summed with or added to); above, e^88; NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // NaN passes through `clamp`; 2^n stays a normal f32 within.
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
