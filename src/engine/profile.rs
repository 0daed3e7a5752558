//! Time spent in the weight products, for the benchmark's "where the time goes" figure.
//!
//! Off unless a clock is installed (the engine has none of its own: `Instant` does not exist
//! on wasm32-unknown-unknown), so normal runs pay one atomic load per product.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

static CLOCK: OnceLock<fn() -> f64> = OnceLock::new();
/// Total milliseconds in products, as f64 bits.
static PRODUCT_MS: AtomicU64 = AtomicU64::new(0);
/// The same, by weight type: which kernel to work on next.
static BY_TYPE: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());

/// Installs the clock (milliseconds); the first one wins.
pub fn set_clock(now_ms: fn() -> f64) {
    let _ = CLOCK.set(now_ms);
}

/// Milliseconds spent in weight products since the clock was installed.
pub fn product_ms() -> f64 {
    f64::from_bits(PRODUCT_MS.load(Relaxed))
}

/// Milliseconds in products by weight type (a name such as `Q8_0`), in first-seen order.
pub fn product_ms_by_type() -> Vec<(&'static str, f64)> {
    BY_TYPE.lock().map(|v| v.clone()).unwrap_or_default()
}

pub fn time_product<R>(kind: &'static str, f: impl FnOnce() -> R) -> R {
    let Some(now) = CLOCK.get() else {
        return f();
    };
    let t0 = now();
    let r = f();
    let spent = now() - t0;
    // Only the model's own thread runs products, so a plain read-add-store cannot race.
    PRODUCT_MS.store((product_ms() + spent).to_bits(), Relaxed);
    if let Ok(mut v) = BY_TYPE.lock() {
        match v.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, ms)) => *ms += spent,
            None => v.push((kind, spent)),
        }
    }
    r
}
