//! Time spent in the weight products and in the other phases of a forward pass, for the
//! benchmark's "where the time goes" figures.
//!
//! Off unless a clock is installed (the engine has none of its own: `Instant` does not exist
//! on wasm32-unknown-unknown), so normal runs pay one atomic load per product. A clock costs
//! something too (about a thousand readings per decoded token, each a call out of wasm in the
//! browser), so the benchmark times its runs with it switched off (`set_on`) and profiles one
//! more run for the shares.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

static CLOCK: OnceLock<fn() -> f64> = OnceLock::new();
/// Whether the installed clock is read: on unless the benchmark is timing a run.
static ON: AtomicBool = AtomicBool::new(true);
/// Total milliseconds in products, as f64 bits.
static PRODUCT_MS: AtomicU64 = AtomicU64::new(0);
/// The same, by weight type: which kernel to work on next.
static BY_TYPE: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());
/// Milliseconds in the phases of a pass that are not weight products (norms, attention, ...).
static PHASES: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());

/// Installs the clock (milliseconds); the first one wins.
pub fn set_clock(now_ms: fn() -> f64) {
    let _ = CLOCK.set(now_ms);
}

/// Whether a clock is installed and on, so that the figures below grow.
pub fn enabled() -> bool {
    clock().is_some()
}

/// Switches the installed clock's readings on or off; the totals stay as they are.
pub fn set_on(on: bool) {
    ON.store(on, Relaxed);
}

fn clock() -> Option<&'static fn() -> f64> {
    CLOCK.get().filter(|_| ON.load(Relaxed))
}

/// Milliseconds spent in weight products since the clock was installed.
pub fn product_ms() -> f64 {
    f64::from_bits(PRODUCT_MS.load(Relaxed))
}

/// Milliseconds in products by weight type (a name such as `Q8_0`), in first-seen order.
pub fn product_ms_by_type() -> Vec<(&'static str, f64)> {
    BY_TYPE.lock().map(|v| v.clone()).unwrap_or_default()
}

/// Milliseconds by phase (`time_phase`'s names), in first-seen order.
pub fn phase_ms() -> Vec<(&'static str, f64)> {
    PHASES.lock().map(|v| v.clone()).unwrap_or_default()
}

pub fn time_product<R>(kind: &'static str, f: impl FnOnce() -> R) -> R {
    let Some(now) = clock() else {
        return f();
    };
    let t0 = now();
    let r = f();
    let spent = now() - t0;
    // Only the model's own thread runs products, so a plain read-add-store cannot race.
    PRODUCT_MS.store((product_ms() + spent).to_bits(), Relaxed);
    add(&BY_TYPE, kind, spent);
    r
}

/// Times one phase of a forward pass that is not a weight product.
pub fn time_phase<R>(phase: &'static str, f: impl FnOnce() -> R) -> R {
    let Some(now) = clock() else {
        return f();
    };
    let t0 = now();
    let r = f();
    add(&PHASES, phase, now() - t0);
    r
}

fn add(list: &Mutex<Vec<(&'static str, f64)>>, name: &'static str, spent: f64) {
    if let Ok(mut v) = list.lock() {
        match v.iter_mut().find(|(k, _)| *k == name) {
            Some((_, ms)) => *ms += spent,
            None => v.push((name, spent)),
        }
    }
}
