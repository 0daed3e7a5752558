//! Hostile GGUF headers: a tiny model of every architecture with one metadata value changed.
//! Values that size allocations or index buffers must give a clear error (never a panic, a
//! capacity-overflow abort or a multi-GB allocation, either of which kills this test process),
//! and each case must fail fast. Values that are merely unusual (a huge trained context) must
//! still load, with memory sized by what the engine uses.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use candle_core::quantized::gguf_file::Value;
use common::tiny::{
    replace_bytes, set_meta, set_tensor_dims, set_tensor_offset, tensor_offset, tiny_gguf,
    tiny_gguf_edited, Metadata, D, FF, HEADS, HEAD_DIM, LAYERS,
};
use tinylab::engine::{Engine, GenerateRequest};

use common::tiny::ARCHS;

/// What loading must give: an error whose text contains one of the `|`-separated words, or a
/// working engine.
enum Want {
    Error(&'static str),
    Loads,
}

fn cases(arch: &str) -> Vec<(String, Value, Want)> {
    let k = |s: &str| format!("{arch}.{s}");
    use Want::*;
    let gpt2 = arch == "gpt2";
    let eps_key = if gpt2 {
        "attention.layer_norm_epsilon"
    } else {
        "attention.layer_norm_rms_epsilon"
    };
    let mut cases =
        vec![
        (
            "tokenizer.ggml.pre".into(),
            Value::U32(2),
            Error("`tokenizer.ggml.pre` is not a string"),
        ),
        (
            "tokenizer.ggml.add_bos_token".into(),
            Value::String("true".into()),
            Error("`tokenizer.ggml.add_bos_token` is not true or false"),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(vec![Value::I32(1); 3]),
            Error("`tokenizer.ggml.token_type` has 3 entries for"),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(vec![Value::String("normal".into()); 3]),
            Error("`tokenizer.ggml.token_type` is not a list of whole numbers"),
        ),
        (
            k("context_length"),
            Value::String("4096".into()),
            Error("context_length` is not a 32-bit integer"),
        ),
        // gguf-split's first part: its metadata is whole, its tensors are not.
        (
            "split.count".into(),
            Value::U16(3),
            Error("part of a model split into 3 files; TinyLab reads one file: join"),
        ),
        ("split.count".into(), Value::U16(1), Loads),
        (k("block_count"), Value::U32(0), Error("layers")),
        (k("block_count"), Value::U32(u32::MAX), Error("layers")),
        (
            k("block_count"),
            Value::U32(LAYERS as u32 + 1),
            Error("layers"),
        ),
        // Fewer layers than the file holds: a model cut short would run and talk nonsense.
        (
            k("block_count"),
            Value::U32(LAYERS as u32 - 1),
            Error("tensors of layer 1"),
        ),
        (k("block_count"), Value::I32(-1), Error("32-bit integer")),
        (
            k("block_count"),
            Value::U64(u64::MAX),
            Error("32-bit integer"),
        ),
        (k("attention.head_count"), Value::U32(0), Error("heads")),
        (
            k("attention.head_count"),
            Value::U32(u32::MAX),
            // GPT-2's tiny model has as many key/value heads as heads, which 2³²−1 cannot share.
            Error("head size|attn_q|cannot share"),
        ),
        (
            k("attention.head_count"),
            Value::U32(4),
            Error("attn_k|attn_q"),
        ),
        // One value per layer, as llama.cpp also reads it: the same for every layer runs,
        // layers of different shapes are named.
        (
            k("attention.head_count"),
            Value::Array(vec![Value::U32(HEADS as u32); LAYERS]),
            Loads,
        ),
        (
            k("feed_forward_length"),
            Value::Array(vec![Value::U32(FF as u32), Value::U32(FF as u32 * 2)]),
            Error("different values"),
        ),
        (
            k("attention.head_count"),
            Value::Array(vec![Value::String("2".into()); LAYERS]),
            Error("list of them"),
        ),
        (k("attention.causal"), Value::Bool(false), Error("causal` is false")),
        (k("attention.causal"), Value::Bool(true), Loads),
        (k("attention.head_count_kv"), Value::U32(0), Error("heads")),
        (
            k("attention.head_count_kv"),
            Value::U32(u32::MAX),
            Error("heads"),
        ),
        (k("attention.key_length"), Value::U32(0), Error("head size")),
        (k("attention.key_length"), Value::U32(3), Error("head size")),
        (
            k("attention.key_length"),
            Value::U32(u32::MAX),
            Error("head size"),
        ),
        (
            k("attention.key_length"),
            Value::U32(1 << 30),
            Error("head size of 1073741824 values; at most 1024"),
        ),
        (
            k("attention.key_length"),
            Value::U32(65536),
            Error("head size of 65536 values; at most 1024"),
        ),
        (
            k("embedding_length"),
            Value::U32(u32::MAX),
            Error("head size|token_embd"),
        ),
        (
            k("embedding_length"),
            Value::U32(D as u32 + 32),
            Error("token_embd"),
        ),
        (
            k("context_length"),
            Value::U32(0),
            Error("at least 2 positions"),
        ),
        (
            k("context_length"),
            Value::U32(1),
            Error("at least 2 positions"),
        ),
        (k(eps_key), Value::F32(f32::INFINITY), Error("epsilon")),
        (k(eps_key), Value::F32(-1.0), Error("epsilon")),
        (
            "general.alignment".into(),
            Value::U32(0),
            Error("power of two"),
        ),
        (
            "general.alignment".into(),
            Value::U32(3),
            Error("power of two"),
        ),
        (
            "general.alignment".into(),
            Value::U32(u32::MAX),
            Error("power of two"),
        ),
        (
            "general.alignment".into(),
            Value::U32(1 << 31),
            Error("power of two up to 2^30"),
        ),
        // Strings the message repeats are cut (the run below checks every message's length).
        (
            "tokenizer.ggml.model".into(),
            Value::String("D".repeat(100_000)),
            Error("unsupported tokenizer model `DDD"),
        ),
        // Of another type, a template is named, not replaced by a built-in one.
        (
            "tokenizer.chat_template".into(),
            Value::U32(7),
            Error("`tokenizer.chat_template` is not a string"),
        ),
        (
            "general.alignment".into(),
            Value::I32(-8),
            Error("stored as an i32; GGUF stores it as a u32"),
        ),
        (
            "general.alignment".into(),
            Value::U64(32),
            Error("stored as a u64"),
        ),
        (
            "tokenizer.ggml.bos_token_id".into(),
            Value::U32(u32::MAX),
            Loads,
        ),
        (
            "tokenizer.ggml.eos_token_id".into(),
            Value::U32(u32::MAX),
            Loads,
        ),
        (
            "tokenizer.chat_template".into(),
            Value::String(
                "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
                    .into(),
            ),
            Loads,
        ),
    ];
    if gpt2 {
        // Learned positions: the table must cover the context; RoPE keys mean nothing.
        cases.extend([
            (
                k("context_length"),
                Value::U32(u32::MAX),
                Error("position_embd"),
            ),
            (k("context_length"), Value::U32(257), Error("position_embd")),
            (k("context_length"), Value::U32(256), Loads),
            (k("rope.freq_base"), Value::F32(f32::NAN), Loads),
        ]);
    } else {
        cases.extend([
            // A model trained on a huge context is fine: the engine holds what it uses.
            (k("context_length"), Value::U32(u32::MAX), Loads),
            (
                k("rope.freq_base"),
                Value::F32(f32::NAN),
                Error("freq_base"),
            ),
            (k("rope.freq_base"), Value::F32(-1.0), Error("freq_base")),
            // RoPE the engine would not apply: refused by name, not run wrongly.
            // YaRN with no factor (llama.cpp's 1) changes nothing there: it runs as is.
            (k("rope.scaling.type"), Value::String("yarn".into()), Loads),
            (k("rope.scaling.type"), Value::String("none".into()), Loads),
            // A factor without a type is linear scaling, as is the older key: applied, as
            // llama.cpp applies it (`tests/tiny_parity.rs` checks the numbers); a factor that
            // is not a positive number is named.
            (k("rope.scaling.factor"), Value::F32(4.0), Loads),
            (k("rope.scale_linear"), Value::F32(4.0), Loads),
            (k("rope.scaling.factor"), Value::F32(1.0), Loads),
            (
                k("rope.scaling.factor"),
                Value::F32(-2.0),
                Error("RoPE scaling factor is -2"),
            ),
            (
                k("rope.scaling.factor"),
                Value::F32(f32::INFINITY),
                Error("RoPE scaling factor is inf"),
            ),
            (
                k("rope.scaling.type"),
                Value::U32(1),
                Error("rope.scaling.type` is not a string"),
            ),
            (
                k("rope.scaling.type"),
                Value::String("E".repeat(100_000)),
                Error("RoPE scaling `EEE"),
            ),
            // A value of the wrong type is named, not replaced by the default.
            (
                k("rope.freq_base"),
                Value::String("1e5".into()),
                Error("freq_base` is not a number"),
            ),
            (
                k("rope.dimension_count"),
                Value::U32(HEAD_DIM as u32 / 2),
                Error("rotates 16 of each head's 32"),
            ),
            (
                k("rope.dimension_count"),
                Value::U32(HEAD_DIM as u32),
                Loads,
            ),
        ]);
    }
    if arch == "gemma3" {
        cases.extend([
            (
                "gemma3.rope.freq_base_swa".into(),
                Value::F32(f32::NAN),
                Error("freq_base_swa` is NaN"),
            ),
            (
                "gemma3.rope.freq_base_swa".into(),
                Value::F32(0.0),
                Error("freq_base_swa` is 0"),
            ),
            (
                "gemma3.final_logit_softcapping".into(),
                Value::F32(-3.0),
                Error("final_logit_softcapping` is -3"),
            ),
            (
                "gemma3.final_logit_softcapping".into(),
                Value::F32(f32::INFINITY),
                Error("final_logit_softcapping` is inf"),
            ),
            (
                "gemma3.attention.sliding_window_pattern".into(),
                Value::Array(vec![Value::F32(1.0)]),
                Error("other than true or false"),
            ),
            (
                "gemma3.attention.sliding_window_pattern".into(),
                Value::Array(vec![Value::I32(1), Value::I32(0)]),
                Loads,
            ),
            (
                "gemma3.attention.sliding_window_pattern".into(),
                Value::Array(vec![Value::Bool(true); 513]),
                Error("lists 513 layers"),
            ),
            (
                "gemma3.attention.sliding_window_pattern".into(),
                Value::String("6".into()),
                Error("sliding_window_pattern` is not a 32-bit integer"),
            ),
            // Without a window no layer slides, and the pattern and second base go unread,
            // as in llama.cpp; so does a key it does not read at all.
            (
                "gemma3.attention.sliding_window".into(),
                Value::U32(0),
                Loads,
            ),
            (
                "gemma3.rope.local_freq_base".into(),
                Value::F32(f32::NAN),
                Loads,
            ),
        ]);
    }
    cases
}

/// Grows or shrinks every per-token array together, so only the count is wrong.
fn resize_vocab(md: &mut Metadata, grow: bool) {
    for (key, extra) in [
        ("tokenizer.ggml.tokens", Value::String("<extra>".into())),
        ("tokenizer.ggml.scores", Value::F32(0.0)),
        ("tokenizer.ggml.token_type", Value::I32(1)),
    ] {
        let Some(entry) = md.iter_mut().find(|(k, _)| k == key) else {
            continue;
        };
        let mut values = entry.1.to_vec().unwrap().clone();
        if grow {
            values.push(extra);
        } else {
            values.pop();
        }
        entry.1 = Value::Array(values);
    }
}

/// One hostile header: what it is, how it is made from the tiny model, what loading gives.
type Case = (String, Box<dyn FnOnce(&mut Metadata)>, Want);

/// Runs one load; returns its outcome and how long it took.
fn load(bytes: &[u8]) -> (Result<Result<Engine, String>, String>, f64) {
    let t0 = Instant::now();
    let out = catch_unwind(AssertUnwindSafe(|| {
        Engine::from_bytes(bytes, 256).map_err(|e| e.to_string())
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    });
    (out, t0.elapsed().as_secs_f64())
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[test]
fn hostile_metadata_is_a_clear_error_for_every_architecture() {
    let mut failures = Vec::new();
    let mut slowest = (0.0, String::new());
    let mut n = 0;
    for arch in ARCHS {
        // The unchanged model loads: the edits below are what breaks it.
        assert!(load(&tiny_gguf(arch, 1)).0.is_ok_and(|r| r.is_ok()));
        let mut all: Vec<Case> = Vec::new();
        for (key, value, want) in cases(arch) {
            let k = key.clone();
            all.push((
                format!("{key} = {value:?}"),
                Box::new(move |md: &mut Metadata| set_meta(md, &k, value)),
                want,
            ));
        }
        if arch != "gpt2" {
            // YaRN that scales, or that scales attention, is refused by name.
            for (factor, attn) in [(4.0, None), (1.0, Some(2.0))] {
                let arch = arch.to_string();
                let k = move |s: &str| format!("{arch}.{s}");
                all.push((
                    format!("YaRN at factor {factor}, attention factor {attn:?}"),
                    Box::new(move |md: &mut Metadata| {
                        set_meta(md, &k("rope.scaling.type"), Value::String("yarn".into()));
                        set_meta(md, &k("rope.scaling.factor"), Value::F32(factor));
                        if let Some(a) = attn {
                            set_meta(md, &k("rope.scaling.attn_factor"), Value::F32(a));
                        }
                    }),
                    Want::Error("RoPE scaling `yarn`"),
                ));
            }
        }
        for (what, grow) in [
            ("one token more than the embedding has rows", true),
            ("one token fewer", false),
        ] {
            all.push((
                what.to_string(),
                Box::new(move |md: &mut Metadata| resize_vocab(md, grow)),
                Want::Error("token_embd"),
            ));
        }
        for (what, edit, want) in all {
            n += 1;
            let bytes = tiny_gguf_edited(arch, 1, edit);
            let (out, secs) = load(&bytes);
            if secs > slowest.0 {
                slowest = (secs, format!("{arch}: {what}"));
            }
            let case = format!("{arch}: {what}");
            match (out, want) {
                (Err(panic), _) => failures.push(format!("{case}: PANIC {panic}")),
                // A string from the file, repeated whole, made messages of megabytes.
                (Ok(Err(e)), _) if e.chars().count() > 1_000 => failures.push(format!(
                    "{case}: a message of {} characters",
                    e.chars().count()
                )),
                (Ok(Err(e)), Want::Error(needle)) if needle.split('|').any(|w| e.contains(w)) => {}
                (Ok(Err(e)), Want::Error(needle)) => {
                    failures.push(format!("{case}: error without `{needle}`: {e}"))
                }
                (Ok(Ok(_)), Want::Error(needle)) => {
                    failures.push(format!("{case}: loaded, wanted an error with `{needle}`"))
                }
                (Ok(Err(e)), Want::Loads) => failures.push(format!("{case}: refused: {e}")),
                (Ok(Ok(mut engine)), Want::Loads) => {
                    // It must also run, within the engine's own context cap.
                    let req = GenerateRequest {
                        prompt: "hello".into(),
                        max_tokens: 3,
                        ..Default::default()
                    };
                    if let Err(e) = engine.start(&req) {
                        failures.push(format!("{case}: loads but cannot run: {e}"));
                    }
                    if engine.info().max_positions > 256 {
                        failures.push(format!("{case}: holds more positions than asked"));
                    }
                }
            }
            // A hang guard, far above the milliseconds these take (printed below).
            if secs > 10.0 {
                failures.push(format!("{case}: took {secs:.2} s"));
            }
        }
    }
    println!(
        "{n} hostile headers; slowest {:.3} s ({}); peak memory of this test process {:.0} MB",
        slowest.0,
        slowest.1,
        peak_rss_mb()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A later part of a split model holds no architecture: the message names the split, not a
/// missing key.
#[test]
fn a_later_part_of_a_split_model_is_named_as_such() {
    let bytes = tiny_gguf_edited("llama", 1, |md: &mut Metadata| {
        md.retain(|(k, _)| k == "general.alignment" || !k.contains('.') || k.starts_with("split."));
        set_meta(md, "split.no", Value::U16(1));
        set_meta(md, "split.count", Value::U16(2));
    });
    match load(&bytes).0 {
        Ok(Err(e)) => assert!(
            e.contains("part 2 of a model split into 2 files") && e.contains("--merge"),
            "{e}"
        ),
        Ok(Ok(_)) => panic!("a part without a model loaded"),
        Err(panic) => panic!("{panic}"),
    }
}

/// The chat template is the file's own code: a hostile one ends in a named error, natively in
/// a second or two, and the model still works without chat.
#[test]
fn a_hostile_chat_template_is_stopped() {
    for template in [
        "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
        "{{ 'x' * 99999999 }}",
        "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    ] {
        let bytes = tiny_gguf_edited("qwen2", 1, |md| {
            set_meta(
                md,
                "tokenizer.chat_template",
                Value::String(template.into()),
            )
        });
        let mut engine = Engine::from_bytes(&bytes, 256).unwrap();
        let t0 = Instant::now();
        let e = engine
            .start(&GenerateRequest {
                prompt: "hi".into(),
                chat: true,
                max_tokens: 2,
                ..Default::default()
            })
            .err()
            .unwrap_or_else(|| panic!("{template}: ran"));
        let secs = t0.elapsed().as_secs_f64();
        let msg = e.to_string();
        println!("{template:.40}: {secs:.3} s: {msg}");
        // Fuel makes the failure certain; this only guards against a hang.
        assert!(secs < 10.0, "{template}: {secs} s");
        assert!(msg.starts_with("chat template:"), "{msg}");
        let plain = engine.start(&GenerateRequest {
            prompt: "hi".into(),
            max_tokens: 2,
            ..Default::default()
        });
        assert!(plain.is_ok());
    }
}

/// What no check inside the template engine can reach (`~` on a list that holds one string a
/// million times over: 10 GB of text built inside minijinja) meets the command line's memory
/// ceiling: one line and exit 1, where it took 19 GB for 48 s. The ceiling is set low here.
#[test]
fn the_command_line_stops_at_its_memory_ceiling() {
    let shared = (1..=6).fold("{% set l0 = 'x' * 10000 %}".to_string(), |t, k| {
        format!(
            "{t}{{% set l{k} = [{}] %}}",
            vec![format!("l{}", k - 1); 10].join(", ")
        )
    });
    let template = format!("{shared}{{{{ (l6 ~ '')|length }}}}");
    let bytes = tiny_gguf_edited("qwen2", 1, |md| {
        set_meta(md, "tokenizer.chat_template", Value::String(template))
    });
    let model = common::tiny::temp_file("concat-template.gguf", &bytes);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tinylab"))
        .args([
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--chat",
            "--prompt",
            "hi",
        ])
        .args(["--max-tokens", "2"])
        .env("TINYLAB_MAX_MEMORY_MB", "512")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("more memory than the 512 MB that TINYLAB_MAX_MEMORY_MB allows"),
        "{err}"
    );
}

/// Building the tokenizer is linear in the vocabulary's bytes: a SentencePiece vocabulary with
/// one token of a million characters loads in well under a second. (Trying every split of it,
/// as before, took 2.8 s for 200,000 characters and grows with the square: over a minute here.
/// The bound is far from both, so a slow machine does not fail it and the old code cannot pass.)
#[test]
fn a_very_long_token_does_not_slow_loading() {
    let bytes = tiny_gguf_edited("gemma3", 1, |md| {
        // Replace the last ordinary token, so counts and embedding rows still agree.
        for (key, value) in md.iter_mut() {
            if key == "tokenizer.ggml.tokens" {
                let mut t = value.to_vec().unwrap().clone();
                let last = t.len() - 1;
                t[last] = Value::String("\u{2581}a".repeat(500_000));
                *value = Value::Array(t);
            }
        }
    });
    let t0 = Instant::now();
    let e = Engine::from_bytes(&bytes, 256);
    let secs = t0.elapsed().as_secs_f64();
    assert!(e.is_ok(), "{:?}", e.err().map(|e| e.to_string()));
    println!("load with a 1,000,000-character token: {secs:.3} s");
    assert!(secs < 10.0, "{secs} s");
}

/// A byte token whose text is under three bytes is refused by its id, as llama.cpp refuses to
/// load it (its `token_to_byte` reads two characters after `<0x`).
#[test]
fn a_byte_token_too_short_to_hold_its_byte_is_refused() {
    let bytes = tiny_gguf_edited("gemma3", 1, |md| {
        for (key, value) in md.iter_mut() {
            if key == "tokenizer.ggml.tokens" {
                let mut t = value.to_vec().unwrap().clone();
                let at = t
                    .iter()
                    .position(|v| matches!(v, Value::String(s) if s == "<0x41>"))
                    .unwrap();
                t[at] = Value::String("<0".into());
                *value = Value::Array(t);
            }
        }
    });
    let err = Engine::from_bytes(&bytes, 256).err().map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.contains(
            "is a byte token written \"<0\"; byte \
             tokens are written `<0xHH>`"
        )),
        "{err:?}"
    );
}

/// A GGUF (version 3) of no tensors and one metadata array of `n` bytes, written by hand:
/// candle's writer would hold each byte as a 32-byte `Value` first.
fn byte_array_gguf(n: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(n + 64);
    b.extend(b"GGUF");
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    let key = b"x.pad";
    b.extend((key.len() as u64).to_le_bytes());
    b.extend(key);
    b.extend(9u32.to_le_bytes());
    b.extend(0u32.to_le_bytes());
    b.extend((n as u64).to_le_bytes());
    b.resize(b.len() + n, 7);
    b
}

/// What candle's parser accepts and then crashes on, or holds at many times the file's size:
/// a second key of the same name (candle keeps the last), a key with a trailing NUL (candle
/// drops it), a key or an array nesting that an earlier check gave up on, tensor sizes that
/// overflow, a tensor named twice, and metadata arrays of millions of bytes. Each is a clear
/// error before anything is allocated for it.
#[test]
fn header_tricks_candle_would_crash_on_are_refused() {
    let alignment_zero = |md: &mut Metadata| {
        md.push(("general.alignment".into(), Value::U32(0)));
    };
    let mut nested = Value::Array(vec![]);
    for _ in 0..64 {
        nested = Value::Array(vec![nested]);
    }
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let header = |edit: Box<dyn Fn(&mut Metadata)>| -> Edit {
        let bytes = tiny_gguf_edited("llama", 1, edit);
        Box::new(move |out: &mut Vec<u8>| *out = bytes.clone())
    };
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "general.alignment twice, 32 then 0",
            header(Box::new(move |md: &mut Metadata| {
                md.push(("general.alignment".into(), Value::U32(32)));
                alignment_zero(md);
            })),
            "appears twice",
        ),
        (
            "general.alignment with a trailing NUL, 0",
            header(Box::new(|md: &mut Metadata| {
                md.push(("general.alignment\0".into(), Value::U32(0)));
            })),
            "power of two",
        ),
        (
            "a 2 MiB key first, then general.alignment 0",
            header(Box::new(move |md: &mut Metadata| {
                md.insert(0, ("k".repeat(2 << 20), Value::U32(1)));
                alignment_zero(md);
            })),
            "bytes long",
        ),
        (
            "arrays nested 65 deep, then general.alignment 0",
            header(Box::new(move |md: &mut Metadata| {
                md.insert(0, ("x.nested".into(), nested.clone()));
                alignment_zero(md);
            })),
            "nested",
        ),
        (
            "9 million bytes in a metadata array",
            Box::new(|b: &mut Vec<u8>| *b = byte_array_gguf(9 << 20)),
            "arrays hold more than",
        ),
        (
            "ffn_up of 2^58 rows: 2^64 values",
            Box::new(|b: &mut Vec<u8>| set_tensor_dims(b, "blk.0.ffn_up.weight", &[64, 1 << 58])),
            "more values than this build can address",
        ),
        (
            "ffn_up of 2^33 x 2^33 values",
            Box::new(|b: &mut Vec<u8>| {
                set_tensor_dims(b, "blk.0.ffn_up.weight", &[1 << 33, 1 << 33])
            }),
            "more values than this build can address",
        ),
        (
            "attn_q's data moved by one byte",
            Box::new(|b: &mut Vec<u8>| {
                let at = tensor_offset(b, "blk.0.attn_q.weight");
                set_tensor_offset(b, "blk.0.attn_q.weight", at + 1)
            }),
            "not on the file's alignment",
        ),
        (
            "attn_q's data on ffn_up's",
            Box::new(|b: &mut Vec<u8>| {
                let at = tensor_offset(b, "blk.0.ffn_up.weight");
                set_tensor_offset(b, "blk.0.attn_q.weight", at)
            }),
            "overlap",
        ),
        (
            // Smaller, so the data still fits: it loaded, and the first token failed on a
            // bare "matmul shapes".
            "ffn_down with half ffn_up's width as its columns",
            Box::new(|b: &mut Vec<u8>| {
                set_tensor_dims(b, "blk.0.ffn_down.weight", &[FF as u64 / 2, D as u64])
            }),
            "`blk.0.ffn_down.weight` is [64, 32], but",
        ),
        (
            "a tensor named twice",
            Box::new(|b: &mut Vec<u8>| {
                replace_bytes(b, "blk.0.ffn_up.weight", "blk.1.ffn_up.weight")
            }),
            "appears twice",
        ),
        // Millions of tiny entries took half a minute and gigabytes to read through.
        (
            "a header that lists 2^20 metadata entries",
            Box::new(|b: &mut Vec<u8>| b[16..24].copy_from_slice(&(1u64 << 20).to_le_bytes())),
            "lists 1048576 metadata entries; at most 65536",
        ),
        (
            "a header that lists 2^20 tensors",
            Box::new(|b: &mut Vec<u8>| b[8..16].copy_from_slice(&(1u64 << 20).to_le_bytes())),
            "lists 1048576 tensors; at most 65536",
        ),
        // As llama.cpp: it read version 1 as a tensor of 83,886,080 dimensions.
        (
            "GGUF version 1",
            Box::new(|b: &mut Vec<u8>| b[4..8].copy_from_slice(&1u32.to_le_bytes())),
            "GGUF version 1, which llama.cpp no longer reads",
        ),
        (
            "GGUF version 999",
            Box::new(|b: &mut Vec<u8>| b[4..8].copy_from_slice(&999u32.to_le_bytes())),
            "GGUF version 999; versions 2 and 3 are read",
        ),
    ];
    let base = tiny_gguf("llama", 1);
    let mut failures = Vec::new();
    for (what, edit, needle) in cases {
        let mut bytes = base.clone();
        edit(&mut bytes);
        let (out, secs) = load(&bytes);
        match out {
            Err(panic) => failures.push(format!("{what}: PANIC {panic}")),
            Ok(Ok(_)) => failures.push(format!("{what}: loaded, wanted `{needle}`")),
            Ok(Err(e)) if needle.split('|').any(|w| e.contains(w)) => {}
            Ok(Err(e)) => failures.push(format!("{what}: error without `{needle}`: {e}")),
        }
        if secs > 10.0 {
            failures.push(format!("{what}: took {secs:.2} s"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A merge listed twice keeps its first rank, as llama.cpp reads the list: SmolLM2's
/// vocabulary with its first 100 merges listed again at the end tokenizes as it does without
/// them (the tokenizers crate alone ranks a merge by its last place: "Hello world" came out
/// `He llo … wo r ld`).
#[test]
fn a_repeated_merge_keeps_its_first_rank() {
    use candle_core::quantized::gguf_file;
    use tinylab::engine::gguf::GgufFile;
    use tinylab::engine::tokenizer::Tokenizer;
    let content = common::smollm2_content();
    // The tokenizer's metadata alone, in a file of no tensors.
    let vocab_only = |repeat: usize| {
        let mut md: Vec<(String, Value)> = content
            .metadata
            .iter()
            .filter(|(k, _)| k.starts_with("tokenizer.") && *k != "tokenizer.chat_template")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &mut md {
            if k == "tokenizer.ggml.merges" {
                let mut merges = v.to_vec().unwrap().clone();
                let again: Vec<Value> = merges.iter().take(repeat).cloned().collect();
                merges.extend(again);
                *v = Value::Array(merges);
            }
        }
        let refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut out = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut out, &refs, &[]).unwrap();
        out.into_inner()
    };
    let (plain, repeated) = (vocab_only(0), vocab_only(100));
    let tokenizer = |b: &Vec<u8>| Tokenizer::from_gguf(&GgufFile::parse(b).unwrap()).unwrap();
    let text = "Hello world, hello there: the other wonderful words.";
    assert_eq!(
        tokenizer(&repeated).encode(text, false).unwrap(),
        tokenizer(&plain).encode(text, false).unwrap()
    );
}

#[test]
fn a_tensor_llama_cpp_requires_is_required() {
    // Each was optional for every architecture here, so a file without it ran with numbers
    // that looked plausible; llama.cpp refuses each of these files.
    for (arch, name) in [
        ("qwen2", "blk.1.attn_k.bias"),
        ("qwen3", "blk.0.attn_q_norm.weight"),
        ("gemma3", "blk.1.post_ffw_norm.weight"),
        ("gemma3", "blk.0.attn_k_norm.weight"),
        ("gemma3", "blk.0.post_attention_norm.weight"),
        ("gpt2", "blk.1.ffn_down.bias"),
        ("gpt2", "blk.0.attn_qkv.bias"),
        ("gpt2", "output_norm.bias"),
    ] {
        let mut bytes = tiny_gguf(arch, 1);
        // Renamed in place, so the file keeps its layout and only loses the name.
        replace_bytes(&mut bytes, name, &format!("X{}", &name[1..]));
        let (out, _) = load(&bytes);
        match out {
            // Qwen2's biases are optional (llama.cpp's `create_tensor_qkv`), but a tensor it
            // does not know is refused.
            Ok(Err(e)) if arch == "qwen2" => assert!(
                e.contains("tensor `Xlk.1.attn_k.bias` that a `qwen2` model has no place for"),
                "{arch}: {e}"
            ),
            Ok(Err(e)) => assert!(
                e.contains(&format!("missing tensor `{name}`")),
                "{arch}: {e}"
            ),
            Ok(Ok(_)) => panic!("{arch} without {name} loaded"),
            Err(p) => panic!("{arch} without {name} panicked: {p}"),
        }
    }
    // A tensor the architecture does not read: llama.cpp refuses the file ("wrong number of
    // tensors"), and leaving it out could change the numbers.
    let mut bytes = tiny_gguf("qwen2", 1);
    replace_bytes(&mut bytes, "blk.1.attn_q.bias", "blk.1.attn_q.xias");
    assert!(
        matches!(load(&bytes).0, Ok(Err(ref e)) if e.contains("`blk.1.attn_q.xias` that a `qwen2` model has no place for")),
        "{:?}",
        load(&bytes).0.map(|r| r.err())
    );
    // A tensor every architecture needed before still says so the same way.
    let mut bytes = tiny_gguf("llama", 1);
    replace_bytes(&mut bytes, "blk.0.ffn_norm.weight", "Xlk.0.ffn_norm.weight");
    assert!(matches!(load(&bytes).0, Ok(Err(e)) if e.contains("missing tensor")));
}

#[test]
fn a_key_llama_cpp_requires_is_required() {
    // Each was read as a default (2048 positions; an epsilon of 1e-6, or 1e-5 for GPT-2), so a
    // file without it ran with numbers its trainers never used; llama.cpp refuses each.
    for arch in ["llama", "qwen2", "qwen3", "gemma3", "gpt2"] {
        let eps = if arch == "gpt2" {
            "attention.layer_norm_epsilon"
        } else {
            "attention.layer_norm_rms_epsilon"
        };
        for key in ["context_length", eps] {
            let key = format!("{arch}.{key}");
            let bytes = tiny_gguf_edited(arch, 1, |md| md.retain(|(k, _)| *k != key));
            match load(&bytes).0 {
                Ok(Err(e)) => assert!(
                    e.contains(&format!("the file has no `{key}`"))
                        && e.contains("llama.cpp refuses"),
                    "{arch}: {e}"
                ),
                Ok(Ok(_)) => panic!("{arch} without {key} loaded"),
                Err(p) => panic!("{arch} without {key} panicked: {p}"),
            }
        }
    }
    // Value heads of another width than the key heads: llama.cpp sizes them by the key; the
    // engine read only the key width.
    let bytes = tiny_gguf_edited("qwen2", 1, |md| {
        set_meta(
            md,
            "qwen2.attention.value_length",
            Value::U32(HEAD_DIM as u32 / 2),
        )
    });
    assert!(
        matches!(load(&bytes).0, Ok(Err(ref e)) if e.contains("heads of two widths are not supported")),
        "{:?}",
        load(&bytes).0.map(|r| r.err())
    );
}
