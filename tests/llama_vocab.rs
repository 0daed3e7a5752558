//! llama.cpp's own tokenizer tests, run through TinyLab's tokenizer: the vocabulary-only GGUFs
//! of many model families that llama.cpp ships (`models/ggml-vocab-*.gguf`), each with texts
//! and the ids llama.cpp's `test-tokenizer-0` requires for them (no BOS, special-token text read
//! as text). Fetched from the pinned llama-cpp-python source package by
//! `scripts/fetch_llama_tests.py`. These are real vocabularies TinyLab's own fixtures do not
//! write (Llama 3, Phi-3, Falcon, Command-R, DeepSeek Coder, MPT…), and texts chosen by llama.cpp.

mod common;

use std::path::{Path, PathBuf};

use tinylab::engine::tokenizer_from_source;

/// Files whose tokenizer TinyLab does not build, with what its refusal must name. Refused
/// rather than guessed: a wrong split gives ids, and numbers, that look right.
const REFUSED: &[(&str, &str)] = &[
    (
        "ggml-vocab-bert-bge.gguf",
        "unsupported tokenizer model `bert`",
    ),
    (
        "ggml-vocab-nomic-bert-moe.gguf",
        "unsupported tokenizer model `t5`",
    ),
    (
        "ggml-vocab-gemma-4.gguf",
        "unsupported tokenizer model `gemma4`",
    ),
];

/// The files with tests that must pass: at least these, so an emptied directory fails.
const CHECKED: &[&str] = &[
    "command-r",
    "deepseek-coder",
    "deepseek-llm",
    "falcon",
    "gpt-2",
    "llama-bpe",
    "llama-spm",
    "mpt",
    "phi-3",
    "qwen2",
    "qwen35",
    "refact",
    "starcoder",
];

fn dir() -> PathBuf {
    let d = common::root().join("assets/llama-tests/vocab");
    assert!(
        d.is_dir(),
        "{} is missing: run scripts/fetch_llama_tests.py (the test command does)",
        d.display()
    );
    d
}

/// llama.cpp's split of its test files: texts joined by this separator, one line of ids each.
fn cases(gguf: &Path) -> Option<Vec<(String, Vec<u32>)>> {
    let inp = std::fs::read(gguf.with_extension("gguf.inp")).ok()?;
    let out = std::fs::read_to_string(gguf.with_extension("gguf.out")).unwrap();
    let inp = String::from_utf8(inp).expect("llama.cpp's test texts are UTF-8");
    let texts: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    let lines: Vec<&str> = out.split('\n').collect();
    assert!(
        lines.len() >= texts.len(),
        "{}: fewer id lines than texts",
        gguf.display()
    );
    Some(
        texts
            .iter()
            .zip(lines)
            .map(|(t, l)| {
                let ids = l.split_whitespace().map(|i| i.parse().unwrap()).collect();
                (t.to_string(), ids)
            })
            .collect(),
    )
}

#[test]
fn llama_cpp_tokenizer_tests_give_llama_cpp_ids_or_a_named_refusal() {
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    entries.sort();
    for path in &entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(path).unwrap();
        let built = tokenizer_from_source(&bytes.as_slice());
        if let Some((_, why)) = REFUSED.iter().find(|(f, _)| *f == name) {
            match built {
                Ok(_) => failures.push(format!("{name}: built, but expected refused ({why})")),
                Err(e) if !e.to_string().contains(why) => {
                    failures.push(format!("{name}: refused as `{e}`, expected `{why}`"))
                }
                Err(_) => {}
            }
            continue;
        }
        let tokenizer = built.unwrap_or_else(|e| panic!("{name}: {e}"));
        let Some(cases) = cases(path) else {
            // llama.cpp ships a few vocabularies without tests (Aquila, Baichuan, GPT-NeoX):
            // they must load, and give back the text they are given.
            let text = "Hello world, 1234 — llama.cpp\n";
            let ids = tokenizer.encode(text, false).unwrap();
            assert!(!ids.is_empty(), "{name}: no ids");
            // A SentencePiece vocabulary's space prefix may come back as a leading space.
            let back = tokenizer.decode(&ids);
            assert_eq!(back.strip_prefix(' ').unwrap_or(&back), text, "{name}");
            continue;
        };
        let mut differ = 0;
        for (text, want) in &cases {
            let got = tokenizer
                .encode(text, false)
                .unwrap_or_else(|e| panic!("{name}: {text:?}: {e}"));
            if &got != want {
                differ += 1;
                if differ <= 3 {
                    failures.push(format!("{name}: {text:?}: {got:?}, llama.cpp {want:?}"));
                }
            }
        }
        if differ > 3 {
            failures.push(format!("{name}: {differ} of {} texts differ", cases.len()));
        }
        checked.push((name, cases.len()));
    }
    for want in CHECKED {
        let file = format!("ggml-vocab-{want}.gguf");
        assert!(
            checked.iter().any(|(n, k)| *n == file && *k >= 40),
            "{file} was not checked (fetched?): checked {checked:?}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Human vs model's rest is the whole text's tokens after the prompt's. A SentencePiece
/// vocabulary that adds a space prefix (Llama's, TinyLlama's) gave the rest, tokenized alone, a
/// second "▁" before its first word: a token the text never has.
#[test]
fn human_vs_model_cuts_the_whole_texts_tokens() {
    let bytes = std::fs::read(dir().join("ggml-vocab-llama-spm.gguf")).unwrap();
    let tok = tokenizer_from_source(&bytes.as_slice()).unwrap();
    for text in [
        "One. Two three four five.",
        "The rain came. It fell on the roofs all night.",
        "Title\n\nThe body goes on here.",
    ] {
        let plan = tinylab::lab::plan_with(&tok, text, 1).unwrap();
        let mut both = plan.prompt_ids.clone();
        both.extend(&plan.human_ids);
        assert_eq!(both, tok.encode_opening(text, false).unwrap(), "{text:?}");
    }
}
