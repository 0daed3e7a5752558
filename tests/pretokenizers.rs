//! The split of text before the merges (`tokenizer.ggml.pre`) for every name llama.cpp knows,
//! against llama.cpp on the same vocabulary-only files (`scripts/pretokenizer_fixtures.py`):
//! the names TinyLab supports give llama.cpp's ids, and every other name is refused, not
//! guessed.

mod common;

use std::collections::HashSet;

use candle_core::quantized::gguf_file::{self, Content, Value};
use serde_json::Value as Json;
use tinylab::engine::gguf::GgufFile;
use tinylab::engine::tokenizer::Tokenizer;

/// Names llama.cpp accepts whose split TinyLab does not make (yet): refused with a message.
const NOT_SUPPORTED: &[&str] = &[
    "kimi-k2",
    "superbpe",
    "chameleon",
    "glm4",
    "chatglm-bpe",
    "jina-v1-en",
    "jina-v2-code",
    "roberta-bpe",
    "glm5",
    // SentencePiece-style BPE (no byte-level map, spaces as ▁) under a BPE model's name.
    "gemma4",
    "granite-embed-multi-311m",
    "sarvam-moe",
    // Digits grouped by hand-written splitters whose cuts no regex makes.
    "afmoe",
    "tiny_aya",
    "cohere2moe",
];

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_pre_tokenizer_name_splits_as_llama_cpp_or_is_refused() {
    let fx = fixture();
    let content = common::smollm2_content();
    let (extra, first_merges) = (strings(&fx["extra_tokens"]), strings(&fx["first_merges"]));
    let missing = fx["missing"].as_str().unwrap();
    let texts = strings(&fx["texts"]);

    // The fixture's tokens and merges added, and `pre` as the name (left out for `missing`).
    let tokenizer_for = |pre: &str| {
        let name = (pre != missing).then_some(pre);
        vocabulary_only(&content, &extra, 1, &first_merges, Some(name))
    };

    let refused_by_llama = strings(&fx["refused"]);
    let accepted = fx["accepted"].as_object().unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (pre, want) in accepted {
        let result = tokenizer_for(pre);
        if NOT_SUPPORTED.contains(&pre.as_str()) {
            match result {
                Err(e) => assert!(
                    e.to_string().contains("unknown pre-tokenizer"),
                    "{pre}: {e}"
                ),
                Ok(_) => failures.push(format!("{pre}: accepted, but listed as not supported")),
            }
            continue;
        }
        let tokenizer = match result {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{pre}: refused ({e}), but llama.cpp splits it"));
                continue;
            }
        };
        for (text, want) in texts.iter().zip(want.as_array().unwrap()) {
            let got = tokenizer.encode(text, false).unwrap();
            if got != common::ids(want) {
                failures.push(format!(
                    "{pre}: {text:?}: {got:?} against llama.cpp's {:?}",
                    common::ids(want)
                ));
            }
        }
        checked += 1;
    }
    // Names under which llama.cpp aborts on a byte-level vocabulary: refused here.
    for pre in strings(&fx["aborted"]) {
        match tokenizer_for(&pre) {
            Err(e) => assert!(
                e.to_string().contains("unknown pre-tokenizer"),
                "{pre}: {e}"
            ),
            Ok(_) => failures.push(format!("{pre}: llama.cpp aborts on it, TinyLab split it")),
        }
    }
    for pre in &refused_by_llama {
        match tokenizer_for(pre) {
            Err(e) => assert!(
                e.to_string()
                    .contains(&format!("unknown pre-tokenizer `{pre}`")),
                "{pre}: {e}"
            ),
            Ok(_) => failures.push(format!(
                "{pre}: llama.cpp refuses it, TinyLab guessed a split"
            )),
        }
    }
    // Tokens whose text llama.cpp knows as an end-of-turn or fill-in-the-middle marker: it
    // makes them control tokens (so plain text does not read as them) and some end a
    // generation.
    for (text, want) in fx["user_defined"].as_object().unwrap() {
        let tokenizer =
            vocabulary_only(&content, std::slice::from_ref(text), 4, &[], None).unwrap();
        let id = tokenizer.vocab_size() as u32 - 1;
        let got = tokenizer.encode(text, false).unwrap();
        if got != common::ids(&want["ids"]) {
            failures.push(format!(
                "user-defined {text:?}: {got:?} against llama.cpp's {:?}",
                want["ids"]
            ));
        }
        let eog = want["end_of_generation"].as_bool().unwrap();
        if tokenizer.is_end_of_generation(id) != eog {
            failures.push(format!(
                "user-defined {text:?}: end of generation should be {eog}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The fixture covers llama.cpp's whole list, and most of it is supported.
    assert!(checked >= 76, "only {checked} names compared");
    assert!(refused_by_llama.len() >= 3);
}

/// SmolLM2's tokenizer metadata in a file of no tensors, rewritten: the `added` tokens it
/// lacks appended (the last ids) with token type `kind`, `first_merges` ranked before its own,
/// and its pre-tokenizer name replaced (`Some(None)`: left out; `None`: kept).
fn vocabulary_only(
    content: &Content,
    added: &[String],
    kind: i32,
    first_merges: &[String],
    pre: Option<Option<&str>>,
) -> tinylab::engine::Result<Tokenizer> {
    let vocab = content.metadata["tokenizer.ggml.tokens"].to_vec().unwrap();
    let known: HashSet<&str> = vocab
        .iter()
        .map(|v| v.to_string().unwrap().as_str())
        .collect();
    let added: Vec<&String> = added
        .iter()
        .filter(|t| !known.contains(t.as_str()))
        .collect();
    let mut md: Vec<(String, Value)> = Vec::new();
    for (k, v) in &content.metadata {
        if !k.starts_with("tokenizer.") || (pre.is_some() && k == "tokenizer.ggml.pre") {
            continue;
        }
        let mut v = v.clone();
        match k.as_str() {
            "tokenizer.ggml.tokens" => {
                let mut all = v.to_vec().unwrap().clone();
                all.extend(added.iter().map(|t| Value::String(t.to_string())));
                v = Value::Array(all);
            }
            "tokenizer.ggml.token_type" => {
                let mut all = v.to_vec().unwrap().clone();
                all.extend(added.iter().map(|_| Value::I32(kind)));
                v = Value::Array(all);
            }
            "tokenizer.ggml.merges" => {
                let mut all: Vec<Value> = first_merges
                    .iter()
                    .map(|m| Value::String(m.clone()))
                    .collect();
                all.extend(v.to_vec().unwrap().iter().cloned());
                v = Value::Array(all);
            }
            _ => {}
        }
        md.push((k.clone(), v));
    }
    if let Some(Some(name)) = pre {
        md.push(("tokenizer.ggml.pre".into(), Value::String(name.into())));
    }
    let refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut out, &refs, &[]).unwrap();
    Tokenizer::from_gguf(&GgufFile::parse(&out.into_inner()).unwrap())
}

fn fixture() -> Json {
    let path = common::root().join("tests/fixtures/pretokenizers.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The tokens that end a generation in each catalog model are llama.cpp's: its end-of-turn
/// texts, its fill-in-the-middle pad, repository and file-separator markers (SmolLM2's
/// `<reponame>`, Qwen2.5's `<|repo_name|>`), whatever their type (Qwen2.5's `</s>` is a normal
/// token).
#[test]
fn end_of_generation_tokens_are_llama_cpps() {
    let fx = fixture();
    let want = fx["end_of_generation"].as_object().unwrap();
    let mut checked = 0;
    for m in common::catalog() {
        let name = m.file.file_name().unwrap().to_str().unwrap().to_string();
        let Some(ids) = want.get(&name) else {
            continue;
        };
        let bytes = common::model_bytes(&m);
        let tokenizer = tinylab::engine::tokenizer_from_source(&bytes).unwrap();
        let got: Vec<u32> = (0..tokenizer.vocab_size() as u32)
            .filter(|&i| tokenizer.is_end_of_generation(i))
            .collect();
        assert_eq!(got, common::ids(ids), "{name}");
        checked += 1;
    }
    assert_eq!(checked, 3, "a fixture for each catalog model");
}
