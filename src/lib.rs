//! TinyLab: run, compare and measure small GGUF language models.
//!
//! [`engine`] is the whole inference stack and knows nothing of browsers or terminals; the
//! native CLI (`src/main.rs`) and the page's Web Worker are thin shells around it.

pub mod engine;
