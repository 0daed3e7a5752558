//! The engine's kernel files, compiled as they are.
#[path = "../../../src/engine/act_quant.rs"]
pub mod act_quant;
#[path = "../../../src/engine/q4_1.rs"]
pub mod q4_1;
#[path = "../../../src/engine/q5_0.rs"]
pub mod q5_0;
#[path = "../../../src/engine/q8_0.rs"]
pub mod q8_0;
#[path = "../../../src/engine/dot_form.rs"]
pub mod dot_form;
#[path = "../../../src/engine/k_quants.rs"]
pub mod k_quants;
