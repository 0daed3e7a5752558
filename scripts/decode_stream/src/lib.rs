//! The engine's decoding kernels on one weight matrix of random blocks, in wasm, timed by the
//! host (`run.mjs`): the rows-per-pass form (`dot_cols`, what decoding ran until issue 15's
//! seventh stop, optionally touching a byte of every line 16 KB ahead as it did) against one
//! row at a time read front to back (`dot_in_order`, what it runs now). A matrix larger than
//! the caches shows how each form reads memory; a small one, its arithmetic alone.
#![allow(dead_code)]

/// The kernel files exactly as the engine compiles them (`crate::engine::…` paths resolve
/// here too). A module loaded by `path` places its own `path`s beside it, in `src/`.
#[path = "kernels.rs"]
pub mod engine;
use engine::{act_quant, q4_1, q5_0, q8_0};

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

fn touch(bytes: &[u8]) {
    let sink = bytes.iter().step_by(64).fold(0u8, |a, &b| a ^ b);
    std::hint::black_box(sink);
}

/// Milliseconds per pass over `rows` rows of `k` values of type `kind` (0 Q8_0, 1 Q5_0,
/// 2 Q4_1), `reps` passes after building the matrix: `form` 0 = `C` rows per pass (`c`, 2 or 4),
/// 1 = the same touching 16 KB ahead, 2 = one row at a time in order.
#[no_mangle]
pub extern "C" fn bench(kind: u32, rows: usize, k: usize, reps: usize, form: u32, c: usize) -> f64 {
    assert!(form == 2 || c == 2 || c == 4, "two or four rows per pass");
    let c = c.max(1);
    let blocks = k / 32;
    let (block_bytes, header) = match kind {
        0 => (q8_0::BLOCK_BYTES, 2),
        1 => (q5_0::BLOCK_BYTES, 2),
        _ => (q4_1::BLOCK_BYTES, 4),
    };
    let mut rng = Rng(0x1234_5678);
    let mut w = vec![0u8; rows * blocks * block_bytes];
    for block in w.chunks_exact_mut(block_bytes) {
        let d = half::f16::from_f32(0.001 + (rng.next() % 1000) as f32 * 1e-5).to_le_bytes();
        block[..2].copy_from_slice(&d);
        if kind == 2 {
            block[2..4].copy_from_slice(&half::f16::from_f32(-0.01).to_le_bytes());
        }
        for b in &mut block[header..] {
            // Q8_0's quants within ±127, as ggml writes them; any byte for the others.
            *b = if kind == 0 {
                ((rng.next() % 255) as i32 - 127) as i8 as u8
            } else {
                rng.next() as u8
            };
        }
    }
    let x: Vec<f32> = (0..k)
        .map(|_| (rng.next() % 2000) as f32 / 1000.0 - 1.0)
        .collect();
    let mut a = vec![0u8; blocks * if kind == 2 { 36 } else { 34 }];
    if kind == 2 {
        act_quant::q8_1(&x, &mut a)
    } else {
        act_quant::q8_0(&x, &mut a)
    }
    let row_bytes = blocks * block_bytes;
    let row = |r: usize| &w[r * row_bytes..(r + 1) * row_bytes];
    let ahead = (16 * 1024 / (c * row_bytes)).max(1) * c;
    let mut total = 0f32;
    macro_rules! pass {
        ($m:ident) => {{
            let y = $m::Activation::new(&a);
            let mut r = 0;
            if form == 2 {
                for r in 0..rows {
                    total += $m::dot_in_order(row(r), &y);
                }
                return;
            }
            while r + c <= rows {
                if form == 1 {
                    for t in r + ahead..(r + ahead + c).min(rows) {
                        touch(row(t));
                    }
                }
                total += if c == 4 {
                    $m::dot_cols::<4>(std::array::from_fn(|i| row(r + i)), &y)[0]
                } else {
                    $m::dot_cols::<2>(std::array::from_fn(|i| row(r + i)), &y)[0]
                };
                r += c;
            }
        }};
    }
    let mut run = || match kind {
        0 => pass!(q8_0),
        1 => pass!(q5_0),
        _ => pass!(q4_1),
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
