//! The heap a model load needs, on the three real models, with the weights prepared as the
//! wasm build prepares them. Wasm memory never shrinks, so the peak during loading is what the
//! page keeps; the budget is 1.5× the file plus the KV cache, and the file itself stays
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

#[test]
fn loading_peaks_under_one_and_a_half_times_the_file() {
    let mut report = Vec::new();
    for m in catalog() {
        let bytes = model_bytes(&m);
        let before = LIVE.load(Relaxed);
        PEAK.store(before, Relaxed);
        let engine = Engine::from_source_for(&bytes, DEFAULT_MAX_POSITIONS, Kernels::Wasm)
            .unwrap_or_else(|e| panic!("{}: {e}", m.id));
        let peak = PEAK.load(Relaxed) - before;
        let kept = LIVE.load(Relaxed) - before;
        drop(engine);
        let ratio = peak as f64 / bytes.len() as f64;
        eprintln!(
            "{}: peak {:.1} MB, kept {:.1} MB, file {:.1} MB: {ratio:.2}× the file",
            m.id,
            peak as f64 / 1e6,
            kept as f64 / 1e6,
            bytes.len() as f64 / 1e6
        );
        report.push((m.id, ratio));
    }
    let over: Vec<_> = report.iter().filter(|(_, r)| *r > 1.5).collect();
    assert!(
        over.is_empty(),
        "over 1.5× the file while loading: {over:?}"
    );
}
