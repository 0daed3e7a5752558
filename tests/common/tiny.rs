//! Tiny GGUF models with random weights, written by the tests themselves: one per supported
//! architecture, each with a real tokenizer vocabulary (byte-level BPE or SentencePiece) so
//! the whole engine path runs in milliseconds.
#![allow(dead_code)]

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use tinylab::engine::sampler::Rng;

pub const D: usize = 64;
pub const HEADS: usize = 2;
pub const KV_HEADS: usize = 1;
pub const HEAD_DIM: usize = 32;
pub const FF: usize = 64;
pub const LAYERS: usize = 2;

fn gpt2_byte_chars() -> Vec<char> {
    let mut out = Vec::new();
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        out.push(if printable {
            char::from_u32(b).unwrap()
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap()
        });
    }
    out
}

struct Vocab {
    tokens: Vec<String>,
    types: Vec<i32>,
    scores: Option<Vec<f32>>,
    merges: Option<Vec<String>>,
    bos: u32,
    eos: u32,
    add_bos: bool,
    model: &'static str,
}

fn gpt2_vocab() -> Vocab {
    let mut tokens: Vec<String> = gpt2_byte_chars().iter().map(|c| c.to_string()).collect();
    let mut types = vec![1; tokens.len()];
    let merges = vec!["h e", "l l", "he ll", "hell o", "Ġ w"];
    for m in &merges {
        tokens.push(m.replace(' ', ""));
        types.push(1);
    }
    tokens.push("<|endoftext|>".into());
    types.push(3);
    tokens.push("<|im_end|>".into());
    types.push(3);
    let eos = tokens.len() as u32 - 1;
    Vocab {
        tokens,
        types,
        scores: None,
        merges: Some(merges.into_iter().map(String::from).collect()),
        bos: eos - 1,
        eos,
        add_bos: false,
        model: "gpt2",
    }
}

fn spm_vocab() -> Vocab {
    let mut tokens = vec![
        "<pad>".to_string(),
        "<eos>".into(),
        "<bos>".into(),
        "<unk>".into(),
    ];
    let mut types = vec![3, 3, 3, 2];
    let mut scores = vec![0.0f32; 4];
    for b in 0..256 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
        scores.push(0.0);
    }
    for (i, p) in [
        "▁", "h", "e", "l", "o", "▁h", "he", "ll", "hell", "hello", "▁hello",
    ]
    .iter()
    .enumerate()
    {
        tokens.push(p.to_string());
        types.push(1);
        scores.push(-(i as f32));
    }
    tokens.push("<end_of_turn>".into());
    types.push(3);
    scores.push(0.0);
    Vocab {
        tokens,
        types,
        scores: Some(scores),
        merges: None,
        bos: 2,
        eos: 1,
        add_bos: true,
        model: "llama",
    }
}

fn random(rng: &mut Rng, shape: (usize, usize), scale: f32) -> Tensor {
    let v: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| (rng.next_f64() as f32 * 2.0 - 1.0) * scale)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn q(t: &Tensor, dtype: GgmlDType) -> QTensor {
    QTensor::quantize(t, dtype).unwrap()
}

fn ones(n: usize) -> QTensor {
    q(
        &Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap(),
        GgmlDType::F32,
    )
}

/// Every architecture the engine runs, as `general.architecture` names it.
pub const ARCHS: [&str; 5] = ["llama", "qwen2", "qwen3", "gemma3", "gpt2"];

/// A complete tiny model of `arch` (one of `ARCHS`) as GGUF bytes.
pub fn tiny_gguf(arch: &str, seed: u64) -> Vec<u8> {
    tiny_gguf_edited(arch, seed, |_| {})
}

/// Metadata as `tiny_gguf_edited` hands it to its editor.
pub type Metadata = Vec<(String, Value)>;

/// Sets (or adds) one metadata value.
pub fn set_meta(md: &mut Metadata, key: &str, value: Value) {
    match md.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => md.push((key.to_string(), value)),
    }
}

/// `tiny_gguf` with its metadata changed by `edit` before it is written: hostile headers.
pub fn tiny_gguf_edited(arch: &str, seed: u64, edit: impl FnOnce(&mut Metadata)) -> Vec<u8> {
    let vocab = if arch == "gemma3" {
        spm_vocab()
    } else {
        gpt2_vocab()
    };
    let n_vocab = vocab.tokens.len();
    let mut rng = Rng::new(seed);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, t: QTensor| tensors.push((name, t));
    add(
        "token_embd.weight".into(),
        q(&random(&mut rng, (n_vocab, D), 0.1), GgmlDType::Q8_0),
    );
    add("output_norm.weight".into(), ones(D));
    let gpt2 = arch == "gpt2";
    let bias = |rng: &mut Rng, n: usize| {
        q(
            &random(rng, (1, n), 0.1).flatten_all().unwrap(),
            GgmlDType::F32,
        )
    };
    if gpt2 {
        add("output_norm.bias".into(), bias(&mut rng, D));
        add(
            "position_embd.weight".into(),
            q(&random(&mut rng, (256, D), 0.1), GgmlDType::F32),
        );
    }
    if arch == "qwen2" {
        add(
            "output.weight".into(),
            q(&random(&mut rng, (n_vocab, D), 0.2), GgmlDType::Q4_0),
        );
    }
    for l in 0..LAYERS {
        let p = format!("blk.{l}");
        let mat = |rng: &mut Rng, rows, cols, dt| q(&random(rng, (rows, cols), 0.1), dt);
        add(format!("{p}.attn_norm.weight"), ones(D));
        add(format!("{p}.ffn_norm.weight"), ones(D));
        if gpt2 {
            // GPT-2: one fused QKV with bias, biases everywhere, LayerNorm biases, no gate.
            add(
                format!("{p}.attn_qkv.weight"),
                mat(&mut rng, 3 * HEADS * HEAD_DIM, D, GgmlDType::F16),
            );
            add(
                format!("{p}.attn_qkv.bias"),
                bias(&mut rng, 3 * HEADS * HEAD_DIM),
            );
            for (n, rows) in [
                ("attn_output", D),
                ("ffn_up", FF),
                ("ffn_down", D),
                ("attn_norm", D),
                ("ffn_norm", D),
            ] {
                add(format!("{p}.{n}.bias"), bias(&mut rng, rows));
            }
        } else {
            add(
                format!("{p}.attn_q.weight"),
                mat(&mut rng, HEADS * HEAD_DIM, D, GgmlDType::Q8_0),
            );
            add(
                format!("{p}.attn_k.weight"),
                mat(&mut rng, KV_HEADS * HEAD_DIM, D, GgmlDType::Q4_1),
            );
            add(
                format!("{p}.attn_v.weight"),
                mat(&mut rng, KV_HEADS * HEAD_DIM, D, GgmlDType::Q5_0),
            );
            add(
                format!("{p}.ffn_gate.weight"),
                mat(&mut rng, FF, D, GgmlDType::Q4_0),
            );
        }
        add(
            format!("{p}.attn_output.weight"),
            mat(&mut rng, D, HEADS * HEAD_DIM, GgmlDType::Q8_0),
        );
        add(
            format!("{p}.ffn_up.weight"),
            mat(&mut rng, FF, D, GgmlDType::Q8_0),
        );
        add(
            format!("{p}.ffn_down.weight"),
            mat(&mut rng, D, FF, GgmlDType::Q8_0),
        );
        if arch == "qwen2" {
            for (n, rows) in [
                ("q", HEADS * HEAD_DIM),
                ("k", KV_HEADS * HEAD_DIM),
                ("v", KV_HEADS * HEAD_DIM),
            ] {
                add(
                    format!("{p}.attn_{n}.bias"),
                    q(
                        &random(&mut rng, (1, rows), 0.1).flatten_all().unwrap(),
                        GgmlDType::F32,
                    ),
                );
            }
        }
        if arch == "gemma3" || arch == "qwen3" {
            add(format!("{p}.attn_q_norm.weight"), ones(HEAD_DIM));
            add(format!("{p}.attn_k_norm.weight"), ones(HEAD_DIM));
        }
        if arch == "gemma3" {
            add(format!("{p}.post_attention_norm.weight"), ones(D));
            add(format!("{p}.post_ffw_norm.weight"), ones(D));
        }
    }

    let k = |s: &str| format!("{arch}.{s}");
    let mut md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        ("general.name".into(), Value::String(format!("tiny {arch}"))),
        (k("embedding_length"), Value::U32(D as u32)),
        (k("block_count"), Value::U32(LAYERS as u32)),
        (k("attention.head_count"), Value::U32(HEADS as u32)),
        (
            k("attention.head_count_kv"),
            Value::U32(if gpt2 { HEADS } else { KV_HEADS } as u32),
        ),
        (k("feed_forward_length"), Value::U32(FF as u32)),
        (k("context_length"), Value::U32(256)),
        (k("rope.freq_base"), Value::F32(10000.0)),
        (
            k(if gpt2 {
                "attention.layer_norm_epsilon"
            } else {
                "attention.layer_norm_rms_epsilon"
            }),
            Value::F32(1e-6),
        ),
        (
            "tokenizer.ggml.model".into(),
            Value::String(vocab.model.into()),
        ),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(
                vocab
                    .tokens
                    .iter()
                    .map(|t| Value::String(t.clone()))
                    .collect(),
            ),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(vocab.types.iter().map(|&t| Value::I32(t)).collect()),
        ),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(vocab.bos)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(vocab.eos)),
        (
            "tokenizer.ggml.add_bos_token".into(),
            Value::Bool(vocab.add_bos),
        ),
    ];
    if arch == "gemma3" {
        md.push((k("attention.key_length"), Value::U32(HEAD_DIM as u32)));
        md.push((k("attention.value_length"), Value::U32(HEAD_DIM as u32)));
        // Small window so the sliding-window mask is exercised by short tests.
        md.push((k("attention.sliding_window"), Value::U32(8)));
        md.push(("tokenizer.ggml.add_space_prefix".into(), Value::Bool(false)));
    }
    if let Some(s) = &vocab.scores {
        md.push((
            "tokenizer.ggml.scores".into(),
            Value::Array(s.iter().map(|&x| Value::F32(x)).collect()),
        ));
    }
    if let Some(m) = &vocab.merges {
        md.push((
            "tokenizer.ggml.merges".into(),
            Value::Array(m.iter().map(|x| Value::String(x.clone())).collect()),
        ));
        let pre = match arch {
            "qwen2" | "qwen3" => "qwen2",
            "gpt2" => "gpt-2",
            _ => "smollm",
        };
        md.push(("tokenizer.ggml.pre".into(), Value::String(pre.into())));
    }
    edit(&mut md);
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(a, b)| (a.as_str(), b)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(a, b)| (a.as_str(), b)).collect();
    let mut buf = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut buf, &md_refs, &t_refs).unwrap();
    buf.into_inner()
}

/// Where the tensor `name`'s info starts in a GGUF header (its dimension count), and that
/// count.
fn tensor_info_at(bytes: &[u8], name: &str) -> (usize, usize) {
    let pat = name.as_bytes();
    let pos = bytes
        .windows(pat.len())
        .position(|w| w == pat)
        .expect("tensor name in header");
    let at = pos + pat.len();
    let n_dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    (at, n_dims)
}

/// Sets the ggml type id of the tensor `name` in a GGUF header, to fake unsupported types.
pub fn set_tensor_type(bytes: &mut [u8], name: &str, type_id: u32) {
    let (at, n_dims) = tensor_info_at(bytes, name);
    let at = at + 4 + 8 * n_dims;
    bytes[at..at + 4].copy_from_slice(&type_id.to_le_bytes());
}

/// Sets the dimensions of the tensor `name` in a GGUF header (in the file's order, columns
/// first), keeping their count: sizes that overflow or lie.
pub fn set_tensor_dims(bytes: &mut [u8], name: &str, dims: &[u64]) {
    let (mut at, n_dims) = tensor_info_at(bytes, name);
    assert_eq!(n_dims, dims.len());
    at += 4;
    for d in dims {
        bytes[at..at + 8].copy_from_slice(&d.to_le_bytes());
        at += 8;
    }
}

/// Moves the tensor `name`'s data offset in a GGUF header to `offset`.
pub fn set_tensor_offset(bytes: &mut [u8], name: &str, offset: u64) {
    let (at, n_dims) = tensor_info_at(bytes, name);
    let at = at + 4 + 8 * n_dims + 4;
    bytes[at..at + 8].copy_from_slice(&offset.to_le_bytes());
}

/// The tensor `name`'s data offset in a GGUF header.
pub fn tensor_offset(bytes: &[u8], name: &str) -> u64 {
    let (at, n_dims) = tensor_info_at(bytes, name);
    let at = at + 4 + 8 * n_dims + 4;
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Replaces a string metadata value of the same length (to fake another architecture).
pub fn replace_bytes(bytes: &mut [u8], from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let pos = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .expect("string present");
    bytes[pos..pos + to.len()].copy_from_slice(to.as_bytes());
}

pub fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tinylab-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}
