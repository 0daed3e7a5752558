//! Every architecture against llama.cpp, on tiny random-weight models: `scripts/tiny_fixtures.py`
//! writes `tests/fixtures/tiny/<arch>.gguf` with llama.cpp's own `gguf` package (a real
//! vocabulary cut from a catalog model of the same family, tensors and keys as llama.cpp's
//! converter names them) and runs llama-cpp-python on it. Only the JSON is committed: the test
//! command writes the models again (`--models-only`, seeded, byte-identical) before this runs. The same checks as the real models'
//! (`llama_parity.rs`), with this build's weights and with the wasm build's (which requantizes
//! other types), so each architecture's block is held to llama.cpp's, not only to itself.

mod common;

use common::parity;
use serde_json::Value;
use tinylab::engine::gguf::GgufFile;
use tinylab::engine::model::Kernels;
use tinylab::engine::{Engine, DEFAULT_MAX_POSITIONS};

fn path(arch: &str, ext: &str) -> std::path::PathBuf {
    common::root()
        .join("tests/fixtures/tiny")
        .join(format!("{arch}.{ext}"))
}

fn fixture(arch: &str) -> Value {
    let text = std::fs::read_to_string(path(arch, "json")).expect("committed fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// The written model, checked to be the one the fixture was made from.
fn load(arch: &str, kernels: Kernels) -> Engine {
    let bytes = read_model(arch);
    let sha = sha256_hex(&bytes);
    assert_eq!(
        fixture(arch)["sha256"].as_str(),
        Some(sha.as_str()),
        "{arch}: the fixture is for another file; rerun scripts/tiny_fixtures.py"
    );
    let e = Engine::from_source_for(&bytes, DEFAULT_MAX_POSITIONS, kernels)
        .unwrap_or_else(|e| panic!("{arch}: {e}"));
    assert_eq!(
        Some(e.info().architecture.as_str()),
        fixture(arch)["architecture"].as_str()
    );
    e
}

/// Files of an architecture whose metadata or tensors differ from its family's usual shape
/// (`VARIANTS` in scripts/tiny_fixtures.py): what llama.cpp reads and a file may set.
const VARIANTS: [(&str, &str); 16] = [
    ("gemma3-pattern", "gemma3"),
    ("gemma3-list", "gemma3"),
    ("gemma3-global", "gemma3"),
    ("qwen2-nobias", "qwen2"),
    ("gemma3-noids", "gemma3"),
    ("llama-noids", "llama"),
    ("qwen2-endids", "qwen2"),
    ("llama-linear", "llama"),
    ("qwen2-fused", "qwen2"),
    ("qwen3-arrays", "qwen3"),
    ("gemma3-addeos", "gemma3"),
    ("qwen2-addeos", "qwen2"),
    ("llama-iq4nl", "llama"),
    ("llama-iq4xs", "llama"),
    ("llama-freqs", "llama"),
    ("qwen3-yarn1", "qwen3"),
];

/// The tiny model's bytes; a missing file says how to write it (the test command does).
fn read_model(arch: &str) -> Vec<u8> {
    std::fs::read(path(arch, "gguf")).unwrap_or_else(|e| {
        panic!(
            "tests/fixtures/tiny/{arch}.gguf: {e}; write the tiny models with \
             `python3 scripts/tiny_fixtures.py --models-only` (scripts/test.sh does)"
        )
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Weight types in the file that `kernels` requantizes to Q8_0 at load, and IQ4_XS, whose
/// blocks become Q8_0 blocks with their scales rounded to f16 (`engine::iq4`; IQ4_NL's become
/// Q8_0 exactly).
fn requantized(arch: &str, kernels: Kernels) -> Vec<String> {
    let bytes = read_model(arch);
    let g = GgufFile::parse(&bytes).expect("GGUF");
    let mut types: Vec<String> = g
        .content
        .tensor_infos
        .iter()
        .filter_map(|(name, t)| match g.type_name(name, t) {
            "IQ4_NL" => None,
            "IQ4_XS" => Some("IQ4_XS".to_string()),
            _ if kernels.requantizes(t.ggml_dtype) => Some(format!("{:?}", t.ggml_dtype)),
            _ => None,
        })
        .collect();
    types.sort();
    types.dedup();
    types
}

/// Where matrices are requantized, that rounding adds to llama.cpp's. The tiny qwen2 model
/// (Q5_0 and Q6_K) differs from llama.cpp by 0.076 nats on average with the simd128 build's
/// weights (both requantized to Q8_0), 1.6x llama.cpp's own F32 vs F16 cache spread (0.048),
/// and its perplexity by 0.82%; kept as stored (native and relaxed-SIMD builds) it gives
/// llama.cpp's numbers to the bit. Before native builds kept Q4_1 (issue 15), the tiny llama
/// model natively was 0.098 (2.09x) and 1.86%. These bounds hold the cost of requantizing
/// where it is, so that it cannot grow unseen.
const REQUANTIZED_NOISE_FACTOR: f64 = 2.5;
const REQUANTIZED_PERPLEXITY: f64 = 0.025;

fn check(arch: &str, kernels: Kernels) {
    let fx = fixture(arch);
    let requantized = requantized(arch, kernels);
    let label = format!("tiny {arch} (requantized: {requantized:?})");
    let weights = if requantized.is_empty() {
        parity::Weights::of(kernels)
    } else {
        parity::Weights {
            kernels,
            noise_factor: REQUANTIZED_NOISE_FACTOR,
            perplexity_floor: REQUANTIZED_PERPLEXITY,
        }
    };
    let mut e = load(arch, kernels);
    // The tokens llama.cpp ends a generation on (fixtures written since they record it).
    if let Some(want) = fx["eog"].as_array() {
        let want: Vec<u64> = want.iter().filter_map(|v| v.as_u64()).collect();
        let mut got: Vec<u64> = e
            .tokenizer()
            .end_of_generation_ids()
            .map(u64::from)
            .collect();
        got.sort_unstable();
        assert_eq!(got, want, "{label}: end-of-generation ids");
    }
    parity::tokenization_matches(&label, &e, &fx);
    special_tokenization_matches(&label, &e, &fx);
    parity::scoring_matches(&label, &mut e, &fx, weights);
    parity::greedy_matches(&label, &mut e, &fx, weights);
}

/// The ids with special-token text read as those tokens, and what every token writes into
/// generated text.
fn special_tokenization_matches(label: &str, e: &Engine, fx: &Value) {
    let tk = e.tokenizer();
    let mut failures = Vec::new();
    let listed = |key: &str| {
        fx[key].as_array().unwrap_or_else(|| {
            panic!("{label}: the fixture has no `{key}`; rerun scripts/tiny_fixtures.py")
        })
    };
    for case in listed("tokenize_special") {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = tk.encode(text, true).unwrap();
        if got != want {
            failures.push(format!(
                "{text:?}\n  llama.cpp {want:?}\n  tinylab   {got:?}"
            ));
        }
    }
    assert_eq!(listed("pieces").len(), tk.vocab_size(), "{label}: pieces");
    for (id, hex) in listed("pieces").iter().enumerate() {
        let want = hex.as_str().unwrap();
        let got: String = tk
            .token_bytes(id as u32)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if got != want {
            failures.push(format!(
                "token {id} ({:?}) writes {got:?}, llama.cpp {want:?}",
                tk.token_text(id as u32)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{label}: special tokens differ from llama.cpp's:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_architecture_has_a_fixture() {
    for arch in common::tiny::ARCHS {
        assert_eq!(fixture(arch)["architecture"].as_str(), Some(arch));
    }
    for (name, arch) in VARIANTS {
        assert_eq!(fixture(name)["architecture"].as_str(), Some(arch));
    }
}

#[test]
fn llama() {
    check("llama", Kernels::BUILD);
}
#[test]
fn qwen2() {
    check("qwen2", Kernels::BUILD);
}
#[test]
fn qwen3() {
    check("qwen3", Kernels::BUILD);
}
#[test]
fn gemma3() {
    check("gemma3", Kernels::BUILD);
}
#[test]
fn gpt2() {
    check("gpt2", Kernels::BUILD);
}
#[test]
fn llama_wasm_weights() {
    check("llama", Kernels::Wasm);
}
#[test]
fn qwen2_wasm_weights() {
    check("qwen2", Kernels::Wasm);
}
#[test]
fn qwen3_wasm_weights() {
    check("qwen3", Kernels::Wasm);
}
#[test]
fn gemma3_wasm_weights() {
    check("gemma3", Kernels::Wasm);
}
#[test]
fn gpt2_wasm_weights() {
    check("gpt2", Kernels::Wasm);
}
#[test]
fn qwen2_relaxed_wasm_weights() {
    check("qwen2", Kernels::WasmRelaxed);
}
#[test]
fn gemma3_relaxed_wasm_weights() {
    check("gemma3", Kernels::WasmRelaxed);
}
/// The tiny qwen3's tied Q6_K table: the relaxed build widens Q6_K matrices at load but leaves
/// a tied table's stored blocks to its output layer.
#[test]
fn qwen3_relaxed_wasm_weights() {
    check("qwen3", Kernels::WasmRelaxed);
}

/// Every third layer global, the local layers' own RoPE base (`rope.freq_base_swa`) and a
/// final logit softcap: before they were read, this file was 1.4 nats a token from llama.cpp.
#[test]
fn gemma3_pattern_and_softcap() {
    check("gemma3-pattern", Kernels::BUILD);
    check("gemma3-pattern", Kernels::WasmRelaxed);
}
/// The pattern as a list of booleans, and layers past its end global.
#[test]
fn gemma3_pattern_as_a_list() {
    check("gemma3-list", Kernels::BUILD);
    check("gemma3-list", Kernels::Wasm);
}
/// Without `sliding_window` no layer slides, and all rotate at `rope.freq_base` (a window of
/// 512 and the local base were assumed).
#[test]
fn gemma3_without_a_window() {
    check("gemma3-global", Kernels::BUILD);
}
/// Qwen2 without its q/k/v biases runs, as in llama.cpp (it was refused).
#[test]
fn qwen2_without_biases() {
    check("qwen2-nobias", Kernels::BUILD);
    check("qwen2-nobias", Kernels::WasmRelaxed);
}

/// No special token ids: llama.cpp's defaults, SentencePiece BOS 1 before every prompt and
/// EOS 2, byte-level BPE 11 for both (the engine took a missing id for none).
#[test]
fn missing_special_ids_are_llama_cpps_defaults() {
    check("gemma3-noids", Kernels::BUILD);
    check("llama-noids", Kernels::BUILD);
}
/// End-of-turn, end-of-message and fill-in-the-middle pad ids named by the file end a
/// generation, and a named pad id replaces the one found by its text (the keys were not read).
#[test]
fn named_end_ids_end_a_generation() {
    check("qwen2-endids", Kernels::BUILD);
}

/// IQ4_NL and IQ4_XS weights, the tied embedding table among them, in every build's form
/// (they were refused).
#[test]
fn iq4_nl_and_iq4_xs_weights() {
    for kernels in [Kernels::BUILD, Kernels::Wasm, Kernels::WasmRelaxed] {
        check("llama-iq4nl", kernels);
        check("llama-iq4xs", kernels);
    }
}

/// The model's line of weight types names them as llama.cpp does (`Q4_K`, not candle's `Q4K`),
/// as the i-quants beside them are named.
#[test]
fn weight_types_are_named_as_ggml_names_them() {
    let types = load("gemma3", Kernels::BUILD).info().tensor_types.clone();
    assert!(types.contains("Q4_K ×"), "{types}");
    let types = load("llama-iq4xs", Kernels::BUILD)
        .info()
        .tensor_types
        .clone();
    assert!(
        types.contains("IQ4_XS ×") && types.contains("IQ4_NL ×"),
        "{types}"
    );
}

/// Linear RoPE scaling, applied as llama.cpp applies it (it was refused).
#[test]
fn linear_rope_scaling() {
    check("llama-linear", Kernels::BUILD);
}
/// Llama 3's per-frequency RoPE factors (`rope_freqs.weight`), applied as llama.cpp applies
/// them (the file was refused), natively and with the page's kernels.
#[test]
fn llama3_rope_frequency_factors() {
    for kernels in [Kernels::BUILD, Kernels::Wasm] {
        check("llama-freqs", kernels);
    }
}
/// YaRN at a factor of 1 runs as plain RoPE, as llama.cpp runs it (it was refused).
#[test]
fn yarn_at_factor_one() {
    for kernels in [Kernels::BUILD, Kernels::Wasm] {
        check("qwen3-yarn1", kernels);
    }
}
/// Frequency factors the engine cannot use are refused by name, before any weight is read:
/// one factor too few (too many would overlap the next tensor, a check of its own), and a
/// factor that is not a number.
#[test]
fn rope_frequency_factors_that_do_not_fit_are_refused() {
    let good = read_model("llama-freqs");
    let content =
        candle_core::quantized::gguf_file::Content::read(&mut std::io::Cursor::new(&good))
            .expect("the fixture reads");
    let info = &content.tensor_infos["rope_freqs.weight"];
    let half = info.shape.dims()[0];
    let error = |bytes: &[u8]| match Engine::from_bytes(bytes, DEFAULT_MAX_POSITIONS) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    };

    let mut wrong_size = good.clone();
    common::tiny::set_tensor_dims(&mut wrong_size, "rope_freqs.weight", &[half as u64 - 1]);
    let e = error(&wrong_size);
    assert!(
        e.contains(&format!("is [{}], but should be [{half}]", half - 1)),
        "{e}"
    );

    let mut not_a_number = good.clone();
    let at = (content.tensor_data_offset + info.offset) as usize + 4;
    not_a_number[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let e = error(&not_a_number);
    assert!(
        e.contains(&format!("must hold {half} finite factors above 0")),
        "{e}"
    );
}
/// A fused q/k/v matrix with separate biases: the biases are added (they were left out).
#[test]
fn fused_qkv_with_separate_biases() {
    check("qwen2-fused", Kernels::BUILD);
}
/// Head counts and feed-forward width given per layer, all alike (they were refused).
#[test]
fn per_layer_shapes_that_agree() {
    check("qwen3-arrays", Kernels::BUILD);
}
/// A file that closes every text with EOS: the prompt, the scored text and the rendered chat
/// end with it, as in llama.cpp (it was left out). Tokens typed unused, undefined, unknown or
/// out of range write nothing into generated text, and an unknown token's text is read as
/// that token where control tokens' is (their text was written, and read as plain text).
#[test]
fn eos_after_every_text_and_odd_token_types() {
    check("gemma3-addeos", Kernels::BUILD);
    check("qwen2-addeos", Kernels::BUILD);
    // Where more text follows (Human vs model's prompt, an evaluation item's context), no EOS
    // comes between.
    let mut e = load("qwen2-addeos", Kernels::BUILD);
    let eos = e.tokenizer().eos;
    let text = "The rain came. It fell on the roofs of the town all night long.";
    assert_eq!(
        e.prompt_ids(text, false, false).unwrap().last().copied(),
        eos
    );
    let plan = tinylab::lab::plan(&e, text, 1).unwrap();
    assert_ne!(
        plan.prompt_ids.last().copied(),
        eos,
        "Human vs model's prompt"
    );
    // An item's choice is scored right after its context, as one text with BOS only.
    let item = tinylab::eval::Item {
        body: String::new(),
        question: String::new(),
        options: Vec::new(),
        choices: vec!["came down".into(), "went".into()],
        answer: 0,
        context: Some("The rain".into()),
        line: None,
    };
    let r =
        tinylab::eval::score_item(&mut e, 0, &item, &tinylab::eval::Condition::default()).unwrap();
    let tk = e.tokenizer();
    let (ctx, full) = (
        tk.encode_opening("The rain", false).unwrap(),
        tk.encode_opening("The rain came down", false).unwrap(),
    );
    let scored = e.score_ids(full.clone(), 1024).unwrap();
    let want: f64 = -scored.tokens[ctx.len() - 1..]
        .iter()
        .map(|t| t.surprisal)
        .sum::<f64>();
    assert!(
        (r.loglik[0] - want).abs() < 1e-3,
        "choice log-likelihood {} against {want} scored as one text",
        r.loglik[0]
    );
    assert_eq!(r.tokens[0], full.len() - ctx.len());
    // A generated answer's prompt is a prompt, closed with EOS as `tinylab generate` closes it.
    let c = tinylab::eval::Condition {
        generate: true,
        ..Default::default()
    };
    let r = tinylab::eval::score_item(&mut e, 0, &item, &c).unwrap();
    let prompt = e.tokenizer().encode_prompt("The rain", false).unwrap();
    assert_eq!(prompt.last().copied(), eos);
    let req = tinylab::engine::GenerateRequest {
        max_tokens: tinylab::eval::GENERATE_TOKENS,
        sampling: tinylab::engine::SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut g = e.start_with_ids(prompt.clone(), &req).unwrap();
    let mut text = String::new();
    while let Some(t) = e.step(&mut g).unwrap() {
        text.push_str(&t.piece);
    }
    text.push_str(&g.flush());
    assert_eq!(r.output.as_deref(), Some(text.as_str()));
    assert_eq!(r.forward_tokens, prompt.len() + g.generated.len());
    // The check before a run counts that EOS: a context one token short of the model's
    // positions is refused up front, not in the middle of the run.
    let bytes = read_model("qwen2-addeos");
    let n = e
        .tokenizer()
        .encode_opening("The rain", false)
        .unwrap()
        .len();
    for (cap, fits) in [(n + 1, false), (n + 2, true)] {
        let mut small = Engine::from_source_for(&bytes, cap, Kernels::BUILD).unwrap();
        let checked = tinylab::eval::check_item(&small, 0, &item, std::slice::from_ref(&c), None);
        assert_eq!(checked.is_ok(), fits, "{cap} positions: {checked:?}");
        if fits {
            tinylab::eval::score_item(&mut small, 0, &item, &c).unwrap();
        }
    }
}
