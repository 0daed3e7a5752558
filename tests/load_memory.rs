//! The heap a model load needs, on the three real models, with the weights prepared as the
//! wasm build prepares them. Wasm memory never shrinks, so the peak during loading is what the
//! page keeps; issue 6's budget is 1.5× the file plus the KV cache, issue 15's 1.15× for weights kept as stored, and the file itself stays
//! outside the heap (in JS memory) in the browser.
//!
//! One test in its own binary: the counting allocator sees every allocation in the process.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use common::{catalog, model_bytes};
use tinylab::engine::model::Kernels;
use tinylab::engine::{Engine, DEFAULT_MAX_POSITIONS};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Loads every catalog model for `kernels` and returns each one's peak heap over its file size.
fn peaks(kernels: Kernels) -> Vec<(String, f64)> {
    let mut report = Vec::new();
    for m in catalog() {
        let bytes = model_bytes(&m);
        let before = LIVE.load(Relaxed);
        PEAK.store(before, Relaxed);
        let engine = Engine::from_source_for(&bytes, DEFAULT_MAX_POSITIONS, kernels)
            .unwrap_or_else(|e| panic!("{}: {e}", m.id));
        let peak = PEAK.load(Relaxed) - before;
        let kept = LIVE.load(Relaxed) - before;
        drop(engine);
        let ratio = peak as f64 / bytes.len() as f64;
        eprintln!(
            "{} ({kernels:?}): peak {:.1} MB, kept {:.1} MB, file {:.1} MB: {ratio:.2}× the file",
            m.id,
            peak as f64 / 1e6,
            kept as f64 / 1e6,
            bytes.len() as f64 / 1e6
        );
        report.push((m.id, ratio));
    }
    report
}

/// Both limits in one test: the counting allocator is process-wide, so two tests running at
/// once would see each other's allocations.
#[test]
fn loading_stays_within_the_budgets() {
    // The simd128 fallback build requantizes Q5_0, Q4_K and Q6_K to Q8_0: issue 6's budget.
    let fallback = peaks(Kernels::Wasm);
    let over: Vec<_> = fallback.iter().filter(|(_, r)| *r > 1.5).collect();
    assert!(
        over.is_empty(),
        "simd128 build over 1.5× the file: {over:?}"
    );
    // The relaxed-SIMD build keeps every weight as stored, but for Q8_0's scales widened to
    // f32 at load (`q8_0::Arranged`, read a slice at a time, never beside the stored form):
    // issue 15's budget, which the tokenizer's tables once broke for Gemma 3's 262,144-token
    // vocabulary.
    let relaxed = peaks(Kernels::WasmRelaxed);
    let over: Vec<_> = relaxed.iter().filter(|(_, r)| *r > 1.15).collect();
    assert!(
        over.is_empty(),
        "relaxed build over 1.15× the file: {over:?}"
    );
}
