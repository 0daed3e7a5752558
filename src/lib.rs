//! TinyLab: run, compare and measure small GGUF language models.
//!
//! [`engine`] is the whole inference stack and knows nothing of browsers or terminals; the
//! native CLI (`src/main.rs`) and the page's Web Worker are thin shells around it.

// The shared-memory worker build (nightly, see scripts/build_threads.sh) sleeps on wasm atomics.
#![cfg_attr(
    all(target_arch = "wasm32", target_feature = "atomics"),
    feature(stdarch_wasm_atomic_wait)
)]

#[cfg(target_arch = "wasm32")]
pub mod app;
pub mod bench;
pub mod engine;
pub mod eval;
pub mod lab;
pub mod protocol;
pub mod storage;
pub mod timed_run;
pub mod ui;
#[cfg(target_arch = "wasm32")]
pub mod worker;
