//! The engine's decoding kernels on one weight matrix of random blocks, in wasm, timed by the
//! host (`run.mjs`): one row at a time, read front to back (`dot_in_order`, as
//! `weight::decode_streams` calls it; `set_streams` takes the rows from several runs in turn,
//! as that does). A matrix larger than the caches shows how a kernel reads memory; a small one,
//! its arithmetic alone. (Until issue 15's seventh stop this also timed the
//! several-rows-per-pass forms that decoding ran before; `docs/BENCHMARKS.md` keeps their
//! figures.)
#![allow(dead_code)]

/// The kernel files exactly as the engine compiles them (`crate::engine::…` paths resolve
/// here too). A module loaded by `path` places its own `path`s beside it, in `src/`.
#[path = "kernels.rs"]
pub mod engine;
use engine::{act_quant, k_quants, q4_1, q5_0, q8_0};

extern "C" {
    /// Milliseconds, from the host.
    fn now() -> f64;
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

/// How many runs of rows, far apart, a kernel pass reads in turn (1: front to back).
static STREAMS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

#[no_mangle]
pub extern "C" fn set_streams(n: usize) {
    STREAMS.store(n, std::sync::atomic::Ordering::Relaxed);
}

/// Sums the relaxed build's byte products with `engine::dot_form`'s `Pairs` (0) or `DotAdd`
/// (1); the simd128 build has one form and ignores it.
#[no_mangle]
pub extern "C" fn set_dot(form: u32) {
    engine::dot_form::set(if form == 1 {
        engine::dot_form::DotForm::DotAdd
    } else {
        engine::dot_form::DotForm::Pairs
    });
}

/// The relaxed build's own choice (`engine::dot_form::calibrate`): 1 for `DotAdd`, 0 for
/// `Pairs`, -1 where the build has one form; `calibration_ratio` then gives its ratio.
#[no_mangle]
pub extern "C" fn calibrate() -> i32 {
    match engine::dot_form::calibrate(&|| unsafe { now() }) {
        Some(c) => {
            RATIO.store(c.ratio.to_bits(), std::sync::atomic::Ordering::Relaxed);
            (c.chosen == engine::dot_form::DotForm::DotAdd) as i32
        }
        None => -1,
    }
}

static RATIO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[no_mangle]
pub extern "C" fn calibration_ratio() -> f64 {
    f64::from_bits(RATIO.load(std::sync::atomic::Ordering::Relaxed))
}

/// Milliseconds per pass over `rows` rows of `k` values of type `kind` (0 Q8_0, 1 Q5_0,
/// 2 Q4_1, 3 no kernel: the Q8_0 matrix's bytes summed as i32 lanes, four 16-byte loads and
/// adds per 64 bytes, which is what memory gives a loop of few instructions per byte, 4 Q8_0
/// laid out by `q8_0::arrange_row` as the relaxed build keeps it, 5 Q4_1 laid out by
/// `q4_1::arrange`, relaxed build only, 6 Q6_K widened by `k_quants::q6k_widen`; `k` a
/// multiple of 256 for it),
/// `reps` passes after building the matrix. The kernels' rows are taken from `set_streams`'
/// runs in turn, as `weight::decode_streams` does (the last run shorter when they do not
/// divide the rows), so every row is read once and GB/s counts the whole matrix.
#[no_mangle]
pub extern "C" fn bench(kind: u32, rows: usize, k: usize, reps: usize) -> f64 {
    if kind == 6 {
        return bench_q6k(rows, k, reps);
    }
    let blocks = k / 32;
    let (block_bytes, header) = match kind {
        0 | 3 | 4 => (q8_0::BLOCK_BYTES, 2),
        1 => (q5_0::BLOCK_BYTES, 2),
        _ => (q4_1::BLOCK_BYTES, 4),
    };
    let q4_1 = kind == 2 || kind == 5;
    let mut rng = Rng(0x1234_5678);
    let mut w = vec![0u8; rows * blocks * block_bytes];
    for block in w.chunks_exact_mut(block_bytes) {
        // Scales spread over 10^-4..10^-1.5 (minimums with either sign), as a real model's
        // are: narrower, they would touch few of the scale table's cache lines.
        let mut spread = || 10f32.powf(-4.0 + 2.5 * (rng.next() % 10_000) as f32 / 10_000.0);
        let d = half::f16::from_f32(spread()).to_le_bytes();
        block[..2].copy_from_slice(&d);
        if q4_1 {
            let m = spread() * if rng.next() % 2 == 0 { 1.0 } else { -1.0 };
            block[2..4].copy_from_slice(&half::f16::from_f32(m).to_le_bytes());
        }
        for b in &mut block[header..] {
            // Q8_0's quants within ±127, as ggml writes them; any byte for the others.
            *b = if kind == 0 || kind == 3 || kind == 4 {
                ((rng.next() % 255) as i32 - 127) as i8 as u8
            } else {
                rng.next() as u8
            };
        }
    }
    // The relaxed build reads Q5_0 rows laid out at load, as the engine keeps them.
    if kind == 1 {
        w = q5_0::for_this_build(&w, blocks);
    }
    let x: Vec<f32> = (0..k)
        .map(|_| (rng.next() % 2000) as f32 / 1000.0 - 1.0)
        .collect();
    let mut a = vec![0u8; blocks * if q4_1 { 36 } else { 34 }];
    if q4_1 {
        act_quant::q8_1(&x, &mut a)
    } else {
        act_quant::q8_0(&x, &mut a)
    }
    // Q4_1 as `q4_1::arrange` lays it out (the relaxed build only).
    if kind == 5 {
        q4_1::arrange(&mut w, blocks);
    }
    if kind == 4 {
        let mut a = q8_0::Arranged::new(rows, k);
        a.set_rows(0, &w);
        w = a.bytes().to_vec();
    }
    let row_bytes = blocks
        * if kind == 4 {
            q8_0::ARRANGED_BLOCK_BYTES
        } else {
            block_bytes
        };
    let row = |r: usize| &w[r * row_bytes..(r + 1) * row_bytes];
    let mut total = 0f32;
    let streams = STREAMS.load(std::sync::atomic::Ordering::Relaxed).max(1);
    macro_rules! pass {
        ($m:ident, $dot:ident) => {{
            let y = $m::Activation::new(&a);
            let per = rows.div_ceil(streams);
            for i in 0..per {
                for s in 0..streams {
                    if s * per + i < rows {
                        total += $m::$dot(row(s * per + i), &y);
                    }
                }
            }
        }};
    }
    let mut run = || match kind {
        0 => pass!(q8_0, dot_in_order),
        1 => pass!(q5_0, dot_in_order),
        2 => pass!(q4_1, dot_in_order),
        3 => total += stream(&w),
        #[cfg(target_feature = "relaxed-simd")]
        5 => pass!(q4_1, dot_in_order_arranged),
        #[cfg(not(target_feature = "relaxed-simd"))]
        5 => panic!("only the relaxed build lays Q4_1 out"),
        _ => pass!(q8_0, dot_in_order_arranged),
    };
    // SAFETY: the host's clock.
    let t0 = unsafe { now() };
    for _ in 0..reps {
        run();
    }
    let ms = (unsafe { now() } - t0) / reps as f64;
    drop(run);
    std::hint::black_box(total);
    ms
}

/// `bench` for Q6_K: random blocks (any byte is a valid value, scale or high bit pair; the
/// f16 scale spread as the other cases'), widened as the engine keeps them, activations
/// quantized to Q8_K. GB/s counts the stored bytes.
fn bench_q6k(rows: usize, k: usize, reps: usize) -> f64 {
    let blocks = k / k_quants::BLOCK;
    let mut rng = Rng(0x1234_5678);
    let mut w = vec![0u8; rows * blocks * k_quants::Q6K_BLOCK_BYTES];
    for block in w.chunks_exact_mut(k_quants::Q6K_BLOCK_BYTES) {
        for b in &mut block[..208] {
            *b = rng.next() as u8;
        }
        let d = 10f32.powf(-4.0 + 2.5 * (rng.next() % 10_000) as f32 / 10_000.0);
        block[208..].copy_from_slice(&half::f16::from_f32(d).to_le_bytes());
    }
    let x: Vec<f32> = (0..k)
        .map(|_| (rng.next() % 2000) as f32 / 1000.0 - 1.0)
        .collect();
    let mut a = vec![0u8; blocks * k_quants::ACT_BLOCK_BYTES];
    act_quant::q8_k(&x, &mut a);
    let y = k_quants::Activation::new(&a);
    // Widened at load, as the relaxed build multiplies Q6_K (`k_quants::q6k_widen`).
    let w = k_quants::q6k_widen(&w);
    let row_bytes = blocks * k_quants::Q6K_WIDE_BLOCK_BYTES;
    let row = |r: usize| &w[r * row_bytes..(r + 1) * row_bytes];
    let streams = STREAMS.load(std::sync::atomic::Ordering::Relaxed).max(1);
    let mut total = 0f32;
    let mut run = || {
        let per = rows.div_ceil(streams);
        for i in 0..per {
            for s in 0..streams {
                if s * per + i < rows {
                    total += k_quants::q6k_wide_dot_rows(row(s * per + i), [&y])[0];
                }
            }
        }
    };
    // SAFETY: the host's clock.
    let t0 = unsafe { now() };
    for _ in 0..reps {
        run();
    }
    let ms = (unsafe { now() } - t0) / reps as f64;
    drop(run);
    std::hint::black_box(total);
    ms
}

/// The bytes of `w` summed as i32 lanes (four accumulators, 64 bytes a step): a pass over the
/// matrix with almost no work per byte, the yardstick for the kernels' passes from memory.
fn stream(w: &[u8]) -> f32 {
    use core::arch::wasm32::*;
    let mut acc = [i32x4_splat(0); 4];
    for chunk in w.chunks_exact(64) {
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: a chunk holds 64 bytes, so four 16-byte loads.
            *a = i32x4_add(*a, unsafe {
                v128_load(chunk.as_ptr().add(16 * i) as *const v128)
            });
        }
    }
    let s = i32x4_add(i32x4_add(acc[0], acc[1]), i32x4_add(acc[2], acc[3]));
    let lanes = [
        i32x4_extract_lane::<0>(s),
        i32x4_extract_lane::<1>(s),
        i32x4_extract_lane::<2>(s),
        i32x4_extract_lane::<3>(s),
    ];
    lanes.iter().fold(0i32, |t, &l| t.wrapping_add(l)) as f32
}
