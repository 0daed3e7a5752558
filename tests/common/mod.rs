//! Shared by the integration tests: where models and fixtures live, and loading them.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;
use tinylab::engine::model::Kernels;
use tinylab::engine::{Engine, DEFAULT_MAX_POSITIONS};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct CatalogModel {
    pub id: String,
    pub file: PathBuf,
}

pub fn catalog() -> Vec<CatalogModel> {
    let text = std::fs::read_to_string(root().join("assets/models/catalog.json"))
        .expect("assets/models/catalog.json is committed");
    let v: Value = serde_json::from_str(&text).expect("catalog is JSON");
    v["models"]
        .as_array()
        .expect("catalog has models")
        .iter()
        .map(|m| CatalogModel {
            id: m["id"].as_str().unwrap().to_string(),
            file: root()
                .join("assets/models")
                .join(m["file"].as_str().unwrap()),
        })
        .collect()
}

/// The real model's bytes. A missing model fails the test: the README's test command fetches
/// all three, and a parity test that silently skips would prove nothing.
pub fn model_bytes(m: &CatalogModel) -> Vec<u8> {
    std::fs::read(&m.file).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}); run `python3 scripts/fetch_models.py --all` first",
            m.file.display()
        )
    })
}

/// SmolLM2's GGUF as candle reads it (metadata and tensor infos): the real vocabulary the
/// tokenizer tests rewrite.
pub fn smollm2_content() -> candle_core::quantized::gguf_file::Content {
    let smollm2 = catalog()
        .into_iter()
        .find(|m| m.id.starts_with("smollm2"))
        .expect("SmolLM2 in the catalog");
    let bytes = model_bytes(&smollm2);
    candle_core::quantized::gguf_file::Content::read(&mut std::io::Cursor::new(&bytes))
        .expect("SmolLM2's GGUF reads")
}

pub fn load(m: &CatalogModel) -> Engine {
    load_for(m, Kernels::BUILD)
}

/// The model with its weights prepared as for `kernels`' build.
pub fn load_for(m: &CatalogModel, kernels: Kernels) -> Engine {
    Engine::from_source_for(&model_bytes(m), DEFAULT_MAX_POSITIONS, kernels)
        .unwrap_or_else(|e| panic!("{}: {e}", m.id))
}

pub fn fixture(id: &str) -> Value {
    let p = root().join("tests/fixtures").join(format!("{id}.json"));
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/llama_fixtures.py", p.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A command line run's JSON, once it is seen to have succeeded (else its stderr is the
/// failure's message).
pub fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the command's JSON")
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an id array")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("a number array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

pub mod parity;
pub mod tiny;
