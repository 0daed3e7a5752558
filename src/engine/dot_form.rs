//! Which of two instruction sequences the relaxed-SIMD build sums its byte products with.
//!
//! Both give the same exact integer sums, so the choice never changes a bit of output; it only
//! changes speed, and which is faster depends on the machine under the browser:
//! - `Pairs`: two `i16x8.relaxed_dot_i8x16_i7x16_s`, added in i16, widened once by
//!   `i32x4.dot_i16x8_s`. Four x86 instructions without AVX-VNNI, where V8 makes each
//!   `i32x4` relaxed dot of five (docs/BENCHMARKS.md, the eighth stop's AMD EPYC).
//! - `DotAdd`: two chained `i32x4.relaxed_dot_i8x16_i7x16_add_s`. One `vpdpbusd` each where
//!   V8 finds AVX-VNNI (Intel since Alder Lake and Sapphire Rapids, AMD since Zen 5), one
//!   `sdot` on Arm with the dot-product extension. On the AVX-VNNI VM of issue 15's
//!   twenty-second stop it ran 4-31% faster than `Pairs` (not measured on Arm).
//!
//! A browser does not say which instructions V8 picked, so the worker times both forms on a
//! small matrix when it starts (`calibrate`) and keeps the faster; the page can force one
//! (`?dot=pairs`, `?dot=add`). The page keeps a clear measurement in localStorage and hands it
//! to later workers of the same deploy in the same browser (`DotRequest::Kept`), so only the
//! first worker measures; `?dot=measure` measures again. The choice is one global: every
//! thread of a worker reads it at the start of each product, and nothing changes it while a
//! product runs.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DotForm {
    Pairs,
    DotAdd,
}

impl DotForm {
    /// The name the page, the bench and the kernel check use.
    pub fn name(self) -> &'static str {
        match self {
            DotForm::Pairs => "pairs",
            DotForm::DotAdd => "dot-add",
        }
    }

    /// `pairs`, or `add`/`dot-add`: the values of the page's `?dot=`.
    pub fn parse(s: &str) -> Option<DotForm> {
        match s {
            "pairs" => Some(DotForm::Pairs),
            "add" | "dot-add" => Some(DotForm::DotAdd),
            _ => None,
        }
    }

    /// The form a query string (`?a=b&dot=add`, the page's or the worker's) forces, if any.
    pub fn from_query(search: &str) -> Option<DotForm> {
        query_value(search, "dot").and_then(DotForm::parse)
    }
}

/// The value of `key` in a query string (`?a=b&key=value`), if it is there.
pub fn query_value<'a>(search: &'a str, key: &str) -> Option<&'a str> {
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// How a worker comes by its form, from its name or address: the page's `?dot=` forces one; a
/// choice this browser measured before and the page kept (`dot=add&dotkept=1.12`: the form
/// and the ratio it was chosen by) is used without measuring again; else the worker measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DotRequest {
    Measure,
    Forced(DotForm),
    Kept { form: DotForm, ratio: f64 },
}

impl DotRequest {
    pub fn from_query(search: &str) -> DotRequest {
        let Some(form) = DotForm::from_query(search) else {
            return DotRequest::Measure;
        };
        let kept = query_value(search, "dotkept").and_then(|r| r.parse::<f64>().ok());
        match kept {
            // Only a ratio that names this form: anything else was not written by the page.
            Some(ratio) if ratio.is_finite() && ratio > 0.0 && chosen_by(ratio) == form => {
                DotRequest::Kept { form, ratio }
            }
            _ => DotRequest::Forced(form),
        }
    }
}

/// The form a measured ratio (time with `Pairs` ÷ time with `DotAdd`) chooses.
pub fn chosen_by(ratio: f64) -> DotForm {
    if ratio > 1.0 {
        DotForm::DotAdd
    } else {
        DotForm::Pairs
    }
}

/// Whether a measured ratio is clear enough to keep for later workers: a near tie is measured
/// again, since its winner may be the VM's noise, and what it would save is little.
pub fn worth_keeping(ratio: f64) -> bool {
    ratio.is_finite() && ratio > 0.0 && ratio.ln().abs() >= 0.03
}

/// Whether this build has two forms to choose between (the relaxed-SIMD wasm build).
pub const CHOOSES: bool = cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd"));

static FORM: AtomicU8 = AtomicU8::new(0);

/// The form the products use now (`Pairs` until something sets another).
pub fn current() -> DotForm {
    if FORM.load(Relaxed) == 1 {
        DotForm::DotAdd
    } else {
        DotForm::Pairs
    }
}

/// Uses `form` from the next product on. Call it between products only: a product whose
/// threads read different forms would still be right, only timed as neither.
pub fn set(form: DotForm) {
    FORM.store(matches!(form, DotForm::DotAdd) as u8, Relaxed);
}

/// Runs `$body` with the type `$D` standing for the relaxed build's `Dot` form in use now
/// (`q8_0::relaxed::{Pairs, DotAdd}`): the dispatch at each relaxed kernel's entry.
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
macro_rules! with_dot {
    ($D:ident => $body:expr) => {
        if $crate::engine::dot_form::current() == $crate::engine::dot_form::DotForm::DotAdd {
            type $D = $crate::engine::q8_0::relaxed::DotAdd;
            $body
        } else {
            type $D = $crate::engine::q8_0::relaxed::Pairs;
            $body
        }
    };
}
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
pub(crate) use with_dot;

/// What `calibrate` measured and chose.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    pub chosen: DotForm,
    /// The median over paired rounds of (time with `Pairs`) ÷ (time with `DotAdd`): above 1,
    /// `DotAdd` was faster.
    pub ratio: f64,
    /// Milliseconds the calibration took, warm-up included.
    pub ms: f64,
}

/// Paired rounds timed; each round times both forms, in alternating order.
const ROUNDS: usize = 11;

/// Times both forms on decoding's Q8_0 kernel over a small matrix that stays in cache
/// (arranged rows against one activation), sets the faster, and says what it measured. `now`
/// is a clock in milliseconds. Where this build has one form (`CHOOSES` false) it sets nothing
/// and returns `None`.
///
/// Q8_0's kernel is the one whose two forms differ most (four dots a block against two
/// dot-and-widen chains of four instructions), so the machine's answer shows through noise;
/// the nibble kernels go the same way by less (Q4_1 and Q5_0 rows 5-17% faster with `DotAdd`
/// where Q8_0's were 18-31%, on the Intel Xeon VM of issue 15's twenty-second stop; 12-18%
/// slower where Q8_0's were 35% slower, without AVX-VNNI). The kernel is warmed first, so
/// that V8 has compiled it with its optimizing tier before any round counts; each round's
/// ratio compares two passes a few milliseconds apart, and the median of the rounds drops the
/// ones a pause fell into.
pub fn calibrate(now: &dyn Fn() -> f64) -> Option<Calibration> {
    if !CHOOSES {
        return None;
    }
    use super::{act_quant, q8_0};
    let start = now();
    const ROWS: usize = 96;
    const BLOCKS: usize = 20;
    let k = 32 * BLOCKS;
    // Deterministic bytes: quants within ±127 as ggml writes them, scales near ggml's.
    let mut seed = 0x9e37_79b9u32;
    let mut next = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        seed >> 8
    };
    let mut w8 = vec![0u8; ROWS * BLOCKS * q8_0::BLOCK_BYTES];
    for b in w8.chunks_exact_mut(q8_0::BLOCK_BYTES) {
        let d = half::f16::from_f32(0.001 + (next() % 1000) as f32 * 1e-5);
        b[..2].copy_from_slice(&d.to_le_bytes());
        b[2..]
            .iter_mut()
            .for_each(|q| *q = ((next() % 255) as i32 - 127) as i8 as u8);
    }
    let mut arranged = q8_0::Arranged::new(ROWS, k);
    arranged.set_rows(0, &w8);
    let x: Vec<f32> = (0..k)
        .map(|_| (next() % 2000) as f32 / 1000.0 - 1.0)
        .collect();
    let mut a8 = vec![0u8; BLOCKS * 34];
    act_quant::q8_0(&x, &mut a8);
    let y8 = q8_0::Activation::new(&a8);
    let row8 = |r: usize| {
        let n = BLOCKS * q8_0::ARRANGED_BLOCK_BYTES;
        &arranged.bytes()[r * n..(r + 1) * n]
    };
    let mut sink = 0f32;
    let mut pass = |form: DotForm, reps: usize| -> f64 {
        set(form);
        let t0 = now();
        for _ in 0..reps {
            for r in 0..ROWS {
                sink += q8_0::dot_in_order_arranged(row8(r), &y8);
            }
        }
        now() - t0
    };
    // Warm-up, until neither form has got faster for 10 ms (at least 15 ms, at most 250):
    // V8 first runs a function as its baseline compiler made it, and only after enough work
    // compiles it again, in the background, with its optimizing one, which is what decoding
    // runs. The baseline code is slower, and slower still with `DotAdd` (it does not use
    // AVX-VNNI), so rounds timed before the switch chose `Pairs` on a machine where `DotAdd`
    // is the faster (issue 15's twenty-second stop).
    let warm = now();
    let (mut best, mut last_gain) = ([f64::INFINITY; 2], warm);
    loop {
        let t = now();
        if t - warm > 250.0 || (t - warm > 15.0 && t - last_gain > 10.0) {
            break;
        }
        for (i, form) in [DotForm::Pairs, DotForm::DotAdd].into_iter().enumerate() {
            let ms = pass(form, 4);
            if ms < 0.8 * best[i] {
                best[i] = ms;
                last_gain = now();
            }
        }
    }
    // Enough repetitions for a pass of two milliseconds or more: a browser's clock may step
    // by 0.1 ms (outside a cross-origin isolated page), which a shorter pass would feel.
    let mut reps = 1;
    while reps < 8192 && pass(DotForm::DotAdd, reps) < 2.0 {
        reps *= 2;
    }
    let mut ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (pairs, dot_add) = if round % 2 == 0 {
            let p = pass(DotForm::Pairs, reps);
            (p, pass(DotForm::DotAdd, reps))
        } else {
            let d = pass(DotForm::DotAdd, reps);
            (pass(DotForm::Pairs, reps), d)
        };
        if pairs > 0.0 && dot_add > 0.0 {
            ratios.push(pairs / dot_add);
        }
    }
    std::hint::black_box(sink);
    ratios.sort_by(f64::total_cmp);
    // A coarse clock (a browser may round `performance.now` to 0.1 ms or more) can leave no
    // round measured: keep the form that needs no AVX-VNNI to be fast.
    let ratio = ratios.get(ratios.len() / 2).copied().unwrap_or(1.0);
    let chosen = chosen_by(ratio);
    set(chosen);
    Some(Calibration {
        chosen,
        ratio,
        ms: now() - start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for f in [DotForm::Pairs, DotForm::DotAdd] {
            assert_eq!(DotForm::parse(f.name()), Some(f));
        }
        assert_eq!(DotForm::parse("add"), Some(DotForm::DotAdd));
        assert_eq!(DotForm::parse("fast"), None);
        assert_eq!(
            DotForm::from_query("?build=ab12&dot=add"),
            Some(DotForm::DotAdd)
        );
        assert_eq!(DotForm::from_query("dot=pairs"), Some(DotForm::Pairs));
        assert_eq!(DotForm::from_query("?dot=fast&x=1"), None);
        assert_eq!(DotForm::from_query("?nodot=add"), None);
        assert_eq!(DotForm::from_query(""), None);
        assert_eq!(
            DotForm::from_query("?dotkept=1.2&dot=pairs"),
            Some(DotForm::Pairs)
        );
    }

    #[test]
    fn a_kept_choice_is_read_only_when_its_ratio_names_its_form() {
        use DotRequest::*;
        assert_eq!(DotRequest::from_query("?build=ab"), Measure);
        assert_eq!(DotRequest::from_query("?dot=add"), Forced(DotForm::DotAdd));
        assert_eq!(
            DotRequest::from_query("?build=ab&dot=add&dotkept=1.12"),
            Kept {
                form: DotForm::DotAdd,
                ratio: 1.12
            }
        );
        assert_eq!(
            DotRequest::from_query("?dotkept=0.7&dot=pairs"),
            Kept {
                form: DotForm::Pairs,
                ratio: 0.7
            }
        );
        // A ratio that names the other form, or none at all, is not a measurement.
        for bad in ["0.7", "1.0", "NaN", "inf", "-2", "", "x"] {
            assert_eq!(
                DotRequest::from_query(&format!("?dot=add&dotkept={bad}")),
                Forced(DotForm::DotAdd),
                "{bad}"
            );
        }
        assert_eq!(DotRequest::from_query("?dot=measure&dotkept=1.2"), Measure);
    }

    #[test]
    fn near_ties_are_not_kept() {
        assert!(worth_keeping(1.12) && worth_keeping(0.8) && worth_keeping(1.031));
        assert!(!worth_keeping(1.0) && !worth_keeping(1.02) && !worth_keeping(0.98));
        assert!(!worth_keeping(f64::NAN) && !worth_keeping(0.0) && !worth_keeping(-1.2));
    }

    /// Natively there is one form: nothing is timed or set.
    #[test]
    fn native_builds_do_not_calibrate() {
        const { assert!(!CHOOSES) };
        assert_eq!(calibrate(&|| 0.0), None);
        assert_eq!(current(), DotForm::Pairs);
    }
}
