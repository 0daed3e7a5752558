//! What the page computes and shows that needs no browser: token colours, number formats,
//! run summaries, and the settings a pane keeps. Plain Rust, unit-tested natively; the Leptos
//! components in `app/` only wire these to the DOM.

pub mod arena;
pub mod catalog;
pub mod colors;
pub mod compare;
pub mod dot_memory;
pub mod eval_report;
pub mod export;
pub mod format;
pub mod kept_outputs;
pub mod keys;
pub mod pane;
pub mod presets;
pub mod settings;
pub mod summary;
