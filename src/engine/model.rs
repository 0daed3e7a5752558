//! The transformer for the supported architectures, on candle-core and candle-nn.
//!
//! Kept close to candle-transformers' `quantized_llama`, `quantized_qwen2`, `quantized_qwen3`,
//! `quantized_gemma3` and `gpt2`-style models so fixes stay comparable. One block serves all
//! five; `Arch` says where they differ (norm kind, positions, gated or plain MLP, biases, Q/K
//! norms, fused QKV). Changes the playground needs:
//! - the forward pass returns hidden states for every position, so scoring gets all logits from
//!   one pass and generation asks only for the last row;
//! - Gemma 3 uses GELU (tanh) in its MLP and llama.cpp's sliding-window rule (`i - j >= window`
//!   is masked), also during single-token decoding;
//! - token embeddings stay quantized and rows are dequantized on lookup, which saves hundreds
//!   of MB for Gemma 3's 262k-row table;
//! - rope tables cover only the engine's context cap, not the model's full trained context.

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QTensor};

use super::weight::{add_weighted4, dot_f32, dot_f32_many, Weight};
use candle_core::{DType, Device, Tensor};

use super::error::{EngineError, Result};
use super::gguf::GgufFile;
use super::iq4::IQuant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    Gemma3,
    Gpt2,
}

/// The `general.architecture` values the engine runs, for messages and the page.
pub const SUPPORTED_ARCHITECTURES: &str = "llama, qwen2, qwen3, gemma3, gpt2";

impl Arch {
    pub const ALL: [Arch; 5] = [
        Arch::Llama,
        Arch::Qwen2,
        Arch::Qwen3,
        Arch::Gemma3,
        Arch::Gpt2,
    ];

    pub fn from_name(name: &str) -> Result<Self> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| EngineError::UnsupportedArchitecture(super::error::one_line(name)))
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
            Arch::Gpt2 => "gpt2",
        }
    }

    /// GPT-2: learned absolute positions, LayerNorm with bias, a plain GELU MLP (no gate).
    /// Everything else here: RoPE, RMSNorm, a gated MLP.
    fn is_gpt2(self) -> bool {
        self == Arch::Gpt2
    }

    /// Tensors of every layer that llama.cpp requires of this architecture beyond the
    /// projections and the two norms every one has: without them llama.cpp refuses the file,
    /// and this engine ran a damaged model whose numbers looked plausible.
    fn required_in_layer(self, fused_qkv: bool) -> &'static [&'static str] {
        match self {
            // Its q/k/v biases are optional in llama.cpp (`create_tensor_qkv`), as for the
            // others.
            Arch::Llama | Arch::Qwen2 => &[],
            Arch::Qwen3 => &["attn_q_norm.weight", "attn_k_norm.weight"],
            Arch::Gemma3 => &[
                "attn_q_norm.weight",
                "attn_k_norm.weight",
                "post_attention_norm.weight",
                "post_ffw_norm.weight",
            ],
            Arch::Gpt2 if fused_qkv => &[
                "attn_norm.bias",
                "attn_qkv.bias",
                "attn_output.bias",
                "ffn_norm.bias",
                "ffn_up.bias",
                "ffn_down.bias",
            ],
            Arch::Gpt2 => &[
                "attn_norm.bias",
                "attn_q.bias",
                "attn_k.bias",
                "attn_v.bias",
                "attn_output.bias",
                "ffn_norm.bias",
                "ffn_up.bias",
                "ffn_down.bias",
            ],
        }
    }

    /// Whether llama.cpp reads tensor `name` for this architecture (its `create_tensor` calls
    /// in `src/models/<arch>.cpp`, llama-cpp-python 0.3.36), as this engine does: every
    /// other tensor is refused. GPT-2's q/k/v may also come split, which llama.cpp refuses
    /// and this engine runs as the fused product.
    ///
    /// `has` says whether the file holds a tensor: a layer's q/k/v come as llama.cpp's
    /// `create_tensor_qkv` reads them, the fused matrix with its fused bias or else separate
    /// biases, or the separate matrices with separate biases, and nothing else beside them.
    /// Heads llama.cpp reads for other uses (Qwen3's reranking `cls.output`, Gemma 3's
    /// embedding `dense_2`/`dense_3`) are allowed and unused, as in generation there.
    fn has_place_for(self, name: &str, n_layer: usize, has: &dyn Fn(&str) -> bool) -> bool {
        let global: &[&str] = match self {
            // Llama 3's frequency factors (`rope_freqs`), which llama.cpp reads for llama.
            Arch::Llama => &["rope_freqs.weight"],
            Arch::Gpt2 => &["position_embd.weight", "output_norm.bias"],
            Arch::Qwen3 => &["cls.output.weight"],
            Arch::Gemma3 => &["dense_2.weight", "dense_3.weight"],
            _ => &[],
        };
        if ["token_embd.weight", "output_norm.weight", "output.weight"].contains(&name)
            || global.contains(&name)
        {
            return true;
        }
        let Some((layer, part)) = name
            .strip_prefix("blk.")
            .and_then(|rest| rest.split_once('.'))
        else {
            return false;
        };
        // `blk.01.…` is not layer 1 to llama.cpp, which names them by `{}` formatting.
        let in_range = layer
            .parse::<usize>()
            .is_ok_and(|i| i < n_layer && i.to_string() == layer);
        let own: &[&str] = match self {
            Arch::Llama => &[
                "attn_norm.weight",
                "attn_output.weight",
                "attn_output.bias",
                "ffn_norm.weight",
                "ffn_gate.weight",
                "ffn_up.weight",
                "ffn_down.weight",
                "ffn_gate.bias",
                "ffn_up.bias",
                "ffn_down.bias",
            ],
            Arch::Qwen2 => &[
                "attn_norm.weight",
                "attn_output.weight",
                "ffn_norm.weight",
                "ffn_gate.weight",
                "ffn_up.weight",
                "ffn_down.weight",
            ],
            Arch::Qwen3 => &[
                "attn_norm.weight",
                "attn_output.weight",
                "attn_q_norm.weight",
                "attn_k_norm.weight",
                "ffn_norm.weight",
                "ffn_gate.weight",
                "ffn_up.weight",
                "ffn_down.weight",
            ],
            Arch::Gemma3 => &[
                "attn_norm.weight",
                "attn_output.weight",
                "attn_q_norm.weight",
                "attn_k_norm.weight",
                "post_attention_norm.weight",
                "ffn_norm.weight",
                "ffn_gate.weight",
                "ffn_up.weight",
                "ffn_down.weight",
                "post_ffw_norm.weight",
            ],
            Arch::Gpt2 => &[
                "attn_norm.weight",
                "attn_norm.bias",
                "attn_output.weight",
                "attn_output.bias",
                "ffn_norm.weight",
                "ffn_norm.bias",
                "ffn_up.weight",
                "ffn_up.bias",
                "ffn_down.weight",
                "ffn_down.bias",
            ],
        };
        let fused = has(&format!("blk.{layer}.attn_qkv.weight"));
        let fused_bias = has(&format!("blk.{layer}.attn_qkv.bias"));
        let qkv = match part {
            "attn_qkv.weight" => true,
            "attn_qkv.bias" => fused,
            "attn_q.weight" | "attn_k.weight" | "attn_v.weight" => !fused,
            "attn_q.bias" | "attn_k.bias" | "attn_v.bias" => !fused_bias,
            _ => false,
        };
        in_range && (qkv || own.contains(&part))
    }

    fn uses_rope(self) -> bool {
        !self.is_gpt2()
    }

    /// The metadata key of the norms' epsilon.
    fn eps_key(self) -> &'static str {
        if self.is_gpt2() {
            "attention.layer_norm_epsilon"
        } else {
            "attention.layer_norm_rms_epsilon"
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub rope_base: f32,
    /// Epsilon of every norm (RMSNorm, or GPT-2's LayerNorm).
    pub norm_eps: f64,
    /// Gemma 3's local attention: each sliding layer sees this many positions, the newest
    /// included. `None` (no key, or 0) means every layer attends to every position, and
    /// every layer rotates at `rope_base`, as llama.cpp runs such a file.
    pub sliding_window: Option<usize>,
    /// Which layers slide (`attention.sliding_window_pattern`, as llama.cpp reads it: a
    /// number n makes every n-th layer global, 0 makes all slide, or a list of booleans,
    /// layer by layer; five local layers then a global one without the key). Empty when
    /// `sliding_window` is `None`.
    pub sliding_layers: Vec<bool>,
    /// The sliding layers' RoPE base (`rope.freq_base_swa`, 10,000 without it).
    pub rope_base_swa: f32,
    /// Linear RoPE scaling: positions times 1 / `rope.scaling.factor` (or the older
    /// `rope.scale_linear`), as llama.cpp applies a `linear` type (the default type); 1 for
    /// type `none` or no factor. Other types are refused (`check_rope_is_plain`).
    pub rope_scale: f32,
    /// Gemma 3's `final_logit_softcapping`: the logits become cap · tanh(logit / cap).
    pub logit_softcap: Option<f32>,
    /// What the query·key products are multiplied by: 1/√(head size), except for Gemma 3's
    /// 62-layer shape (27B), where llama.cpp takes 1/√(width / heads).
    pub attention_scale: f32,
}

impl ModelConfig {
    pub fn from_gguf(g: &GgufFile) -> Result<Self> {
        let arch = Arch::from_name(&g.string("general.architecture")?)?;
        let p = arch.name();
        let k = |s: &str| format!("{p}.{s}");
        let n_embd = g.u32(&k("embedding_length"))? as usize;
        let n_layer = g.u32(&k("block_count"))? as usize;
        let n_head = g
            .u32_per_layer(&k("attention.head_count"), n_layer)?
            .ok_or_else(|| EngineError::MissingMetadata(k("attention.head_count")))?
            as usize;
        let n_kv_head = g
            .u32_per_layer(&k("attention.head_count_kv"), n_layer)?
            .unwrap_or(n_head as u32) as usize;
        if n_head == 0 || n_kv_head == 0 || !n_head.is_multiple_of(n_kv_head) {
            return Err(EngineError::InvalidGguf(format!(
                "{n_head} attention heads cannot share {n_kv_head} key/value heads"
            )));
        }
        let head_dim = g
            .u32_opt(&k("attention.key_length"))?
            .map(|v| v as usize)
            .unwrap_or(n_embd / n_head);
        if head_dim > MAX_HEAD_DIM {
            return Err(EngineError::InvalidGguf(format!(
                "a head size of {head_dim} values; at most {MAX_HEAD_DIM} are supported (real \
                 models use 64 to 256)"
            )));
        }
        let vocab_size = g.vocab_size();
        // Keys llama.cpp requires: a file without them is refused there, and a guess here
        // would run it with numbers its trainers never used.
        let required = |key: &str, what: &str| {
            EngineError::InvalidGguf(format!(
                "the file has no `{key}` (the model's {what}); llama.cpp refuses such a file too"
            ))
        };
        // As llama.cpp: a missing or zero window turns sliding off for the whole model.
        let sliding_window = match arch {
            Arch::Gemma3 => g
                .u32_opt(&k("attention.sliding_window"))?
                .filter(|&w| w > 0)
                .map(|w| w as usize),
            _ => None,
        };
        let sliding_layers = match sliding_window {
            // No more layers than tensors: `check_against_tensors` refuses a count past that,
            // and a hostile u32::MAX would make a 4 GB list first.
            Some(_) => sliding_pattern(
                g,
                &k("attention.sliding_window_pattern"),
                n_layer.min(g.content.tensor_infos.len()),
            )?,
            None => Vec::new(),
        };
        let rope_base_swa = match sliding_window {
            Some(_) => g.f32_opt(&k("rope.freq_base_swa"))?.unwrap_or(10_000.0),
            None => 10_000.0,
        };
        let logit_softcap = match arch {
            Arch::Gemma3 => g
                .f32_opt(&k("final_logit_softcapping"))?
                .filter(|&c| c != 0.0),
            _ => None,
        };
        // Read leniently here; `check_rope_is_plain` names a bad type or factor.
        let rope_scale = {
            let kind = match g.get(&k("rope.scaling.type")) {
                Some(v) => v.to_string().ok().cloned(),
                None => Some("linear".to_string()),
            };
            let factor = match g.f32_opt(&k("rope.scaling.factor")).ok().flatten() {
                Some(f) => f,
                None => g
                    .f32_opt(&k("rope.scale_linear"))
                    .ok()
                    .flatten()
                    .unwrap_or(0.0),
            };
            if kind.as_deref() == Some("linear") && factor != 0.0 {
                1.0 / factor
            } else {
                1.0
            }
        };
        let attention_scale = if arch == Arch::Gemma3 && n_layer == 62 {
            1.0 / ((n_embd / n_head) as f32).sqrt()
        } else {
            1.0 / (head_dim as f32).sqrt()
        };
        Ok(ModelConfig {
            arch,
            n_layer,
            n_embd,
            n_head,
            n_kv_head,
            head_dim,
            n_ff: g
                .u32_per_layer(&k("feed_forward_length"), n_layer)?
                .unwrap_or(0) as usize,
            vocab_size,
            context_length: g
                .u32_opt(&k("context_length"))?
                .ok_or_else(|| required(&k("context_length"), "positions it was trained for"))?
                as usize,
            // llama.cpp's default for every architecture.
            rope_base: g.f32_opt(&k("rope.freq_base"))?.unwrap_or(10_000.0),
            norm_eps: g
                .f32_opt(&k(arch.eps_key()))?
                .ok_or_else(|| required(&k(arch.eps_key()), "norms' epsilon"))?
                as f64,
            sliding_window,
            sliding_layers,
            rope_base_swa,
            rope_scale,
            logit_softcap,
            attention_scale,
        })
    }

    /// Whether any layer has a second RoPE table (the sliding layers').
    fn any_sliding(&self) -> bool {
        self.sliding_layers.iter().any(|&s| s)
    }
}

/// Which of `n_layer` layers slide, from `key` as llama.cpp's `load_swa_pattern` reads it.
fn sliding_pattern(g: &GgufFile, key: &str, n_layer: usize) -> Result<Vec<bool>> {
    use candle_core::quantized::gguf_file::Value;
    let every =
        |n: usize| -> Vec<bool> { (0..n_layer).map(|il| n == 0 || il % n < n - 1).collect() };
    match g.get(key) {
        None => Ok(every(6)),
        Some(Value::Array(list)) => {
            if list.len() > MAX_PATTERN {
                return Err(EngineError::InvalidGguf(format!(
                    "`{key}` lists {} layers; at most {MAX_PATTERN} are read",
                    list.len()
                )));
            }
            // Layers past the list's end are global, as llama.cpp leaves them.
            (0..n_layer)
                .map(|il| match list.get(il) {
                    None => Ok(false),
                    Some(Value::Bool(b)) => Ok(*b),
                    // llama.cpp reads integer lists too.
                    Some(Value::I32(v)) => Ok(*v != 0),
                    Some(Value::U32(v)) => Ok(*v != 0),
                    Some(_) => Err(EngineError::InvalidGguf(format!(
                        "`{key}` is a list of something other than true or false"
                    ))),
                })
                .collect()
        }
        Some(_) => Ok(every(g.u32(key)? as usize)),
    }
}

/// llama.cpp's most layers (`LLAMA_MAX_LAYERS`), the longest pattern list it reads.
const MAX_PATTERN: usize = 512;

impl ModelConfig {
    /// The RoPE tables (built whole at load) and, in the browser, a full KV cache at
    /// `positions`, held against a budget: the head size and head counts are only checked
    /// against the tensors, and a small file with a head of 2^18 values asks for gigabytes of
    /// tables at load, and in the page of cache as it runs (wasm32 has 4 GB for everything,
    /// and running out aborts the worker). Natively the cache grows page by page as it is
    /// used, so a big model at a long `--context` still loads. Real models here need tens of
    /// MB of tables at their whole context.
    fn check_context_memory(&self, positions: usize) -> Result<()> {
        let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
        let (p, hd) = (positions as u128, self.head_dim as u128);
        // cos and sin, `head_dim / 2` each per position, f32; Gemma 3 has a second table for
        // its local layers.
        let tables = if self.any_sliding() { 2 } else { 1 };
        let rope = tables * p * hd * 4;
        let kv = self.n_layer as u128 * p * 2 * self.n_kv_head as u128 * hd * 4;
        let cache_too_big = cfg!(target_arch = "wasm32") && kv > MAX_KV_BYTES;
        if rope > MAX_ROPE_BYTES || cache_too_big {
            return Err(EngineError::InvalidGguf(format!(
                "at {positions} positions this model's rotary tables would take {:.1} GB and its \
                 key/value cache up to {:.1} GB (heads of {} values, {} key/value heads, {} \
                 layers); at most {:.2} GB of tables{} are allowed: ask for a shorter context",
                gib(rope),
                gib(kv),
                self.head_dim,
                self.n_kv_head,
                self.n_layer,
                gib(MAX_ROPE_BYTES),
                if cfg!(target_arch = "wasm32") {
                    format!(" and {:.0} GB of cache", gib(MAX_KV_BYTES))
                } else {
                    String::new()
                },
            )));
        }
        Ok(())
    }
}

/// Widest attention head read.
const MAX_HEAD_DIM: usize = 1024;

/// All rotary tables' most bytes: Gemma 3's two take 64 MB at 32k positions.
#[cfg(target_arch = "wasm32")]
const MAX_ROPE_BYTES: u128 = 256 << 20;
/// Natively room for a 128k context at Gemma 3's heads, and no more: a 1.6 MB file with
/// heads of 65,536 values made 2 GB of tables.
#[cfg(not(target_arch = "wasm32"))]
const MAX_ROPE_BYTES: u128 = 512 << 20;
/// A whole KV cache's most bytes in the browser, beside the weights in wasm32's 4 GB.
const MAX_KV_BYTES: u128 = 2 << 30;

/// The shape of tensor `name` as the engine indexes it (`[rows, cols]` for a matrix), if present.
fn shape<'g>(g: &'g GgufFile, name: &str) -> Option<&'g [usize]> {
    g.content.tensor_infos.get(name).map(|t| t.shape.dims())
}

impl ModelConfig {
    /// The engine rotates every dimension of every head at one base frequency. A file that
    /// asks for more (YaRN, partial rotation) would load and
    /// then write fluent-looking nonsense, so it is refused by name instead.
    fn check_rope_is_plain(&self, g: &GgufFile) -> Result<()> {
        let p = self.arch.name();
        let unsupported = |what: String| {
            Err(EngineError::InvalidGguf(format!(
                "{what}, which TinyLab does not apply; the model would give wrong numbers"
            )))
        };
        // As llama.cpp reads them: the type defaults to linear, and the factor (or the older
        // `rope.scale_linear`) divides every frequency whatever the type says; 0 and 1 mean
        // no scaling. YaRN and the others change every frequency too.
        let type_key = format!("{p}.rope.scaling.type");
        let kind = match g.metadata().get(&type_key) {
            None => "linear".to_string(),
            Some(_) => g.string(&type_key)?,
        };
        let factor = match g.f32_opt(&format!("{p}.rope.scaling.factor"))? {
            Some(f) => Some(f),
            None => g.f32_opt(&format!("{p}.rope.scale_linear"))?,
        }
        .unwrap_or(0.0);
        // Linear scaling (the default type) is applied, as llama.cpp applies it; `none`
        // ignores the factor, as there; YaRN and the others change every frequency, except
        // YaRN at a factor of 1 (or 0, llama.cpp's 1) with no attention factor of its own:
        // llama.cpp's `rope_yarn` then leaves every angle and the scale as they are.
        let yarn_as_is = kind == "yarn"
            && (factor == 0.0 || factor == 1.0)
            && g.f32_opt(&format!("{p}.rope.scaling.attn_factor"))?
                .is_none_or(|a| a == 1.0);
        if !(kind == "none" || kind == "linear" || yarn_as_is) {
            return unsupported(format!(
                "the model uses RoPE scaling `{}` (factor {factor})",
                super::error::one_line(&kind)
            ));
        }
        if kind == "linear" && !(factor.is_finite() && factor >= 0.0) {
            return Err(EngineError::InvalidGguf(format!(
                "the RoPE scaling factor is {factor}"
            )));
        }
        // Llama 3's per-frequency factors divide each frequency, as llama.cpp applies them to
        // llama; it reads no such tensor for the other architectures, which are refused.
        if g.has_tensor("rope_freqs.weight") {
            if self.arch != Arch::Llama {
                return unsupported(
                    "the model scales RoPE frequencies (`rope_freqs.weight`)".into(),
                );
            }
            let half = self.head_dim / 2;
            match shape(g, "rope_freqs.weight") {
                Some(dims) if dims == [half] => {}
                dims => {
                    return Err(EngineError::InvalidGguf(format!(
                        "`rope_freqs.weight` is {:?}, but should be [{half}] (one factor \
                         for each pair of a head's dimensions)",
                        dims.unwrap_or_default()
                    )))
                }
            }
        }
        match g.u32_opt(&format!("{p}.rope.dimension_count"))? {
            Some(n) if n as usize != self.head_dim => unsupported(format!(
                "the model rotates {n} of each head's {} dimensions \
                 (`{p}.rope.dimension_count`)",
                self.head_dim
            )),
            _ => Ok(()),
        }
    }

    /// Metadata that sizes allocations or indexes buffers, held against the tensors that are
    /// really there before anything is allocated: a lying value is a plain error here, not a
    /// capacity-overflow abort, a multi-GB RoPE table or a read past a buffer later. Only the
    /// tensor table is read (no weights), so this costs nothing on a good file.
    fn check_against_tensors(&self, g: &GgufFile) -> Result<()> {
        let bad = |what: String| Err(EngineError::InvalidGguf(what));
        let p = self.arch.name();
        let tensors = g.content.tensor_infos.len();
        // Every layer has at least its attention norm and four projections.
        if self.n_layer == 0 || self.n_layer > tensors / 5 {
            return bad(format!(
                "`{p}.block_count` says {} layers, but the file holds {tensors} tensors",
                self.n_layer
            ));
        }
        // Fewer layers than the file holds would run a model cut short, fluent-looking
        // nonsense (llama.cpp refuses such a file too: not every tensor is used).
        let last_layer = g
            .content
            .tensor_infos
            .keys()
            .filter_map(|name| {
                name.strip_prefix("blk.")?
                    .split('.')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .max();
        if let Some(last) = last_layer.filter(|&l| l >= self.n_layer) {
            return bad(format!(
                "`{p}.block_count` says {} layers, but the file holds tensors of layer {last} \
                 (counted from 0)",
                self.n_layer
            ));
        }
        if self.context_length < 2 {
            return bad(format!(
                "`{p}.context_length` is {}; a model needs at least 2 positions",
                self.context_length
            ));
        }
        if self.head_dim < 2 || !self.head_dim.is_multiple_of(2) {
            return bad(format!(
                "the key length (head size) is {}; it must be an even number of at least 2",
                self.head_dim
            ));
        }
        // llama.cpp sizes the value heads by this key; the engine has one width for both.
        if let Some(v) = g.u32_opt(&format!("{p}.attention.value_length"))? {
            if v as usize != self.head_dim {
                return bad(format!(
                    "value heads of {v} values beside key heads of {} \
                     (`{p}.attention.value_length`); heads of two widths are not supported",
                    self.head_dim
                ));
            }
        }
        let rope_ok = self.rope_base.is_finite() && self.rope_base > 0.0;
        if self.arch.uses_rope() && !rope_ok {
            return bad(format!("`{p}.rope.freq_base` is {}", self.rope_base));
        }
        if self.arch.uses_rope() {
            self.check_rope_is_plain(g)?;
        }
        if !(self.norm_eps.is_finite() && self.norm_eps >= 0.0) {
            return bad(format!(
                "`{p}.{}` is {}",
                self.arch.eps_key(),
                self.norm_eps
            ));
        }
        // llama.cpp reads it (embedding models); this engine attends causally only.
        if g.bool_opt(&format!("{p}.attention.causal")) == Some(false) {
            return bad(format!(
                "`{p}.attention.causal` is false: the model attends to later positions too, \
                 which TinyLab does not apply; the model would give wrong numbers"
            ));
        }
        let swa_ok = self.rope_base_swa.is_finite() && self.rope_base_swa > 0.0;
        if self.any_sliding() && !swa_ok {
            return bad(format!(
                "`{p}.rope.freq_base_swa` is {}",
                self.rope_base_swa
            ));
        }
        if let Some(cap) = self.logit_softcap.filter(|c| !(c.is_finite() && *c > 0.0)) {
            return bad(format!("`{p}.final_logit_softcapping` is {cap}"));
        }
        let embd = shape(g, "token_embd.weight")
            .ok_or_else(|| EngineError::MissingTensor("token_embd.weight".into()))?;
        if embd != [self.vocab_size, self.n_embd] {
            return bad(format!(
                "`token_embd.weight` is {embd:?}, but the vocabulary has {} tokens and \
                 `{p}.embedding_length` is {}",
                self.vocab_size, self.n_embd
            ));
        }
        if let Some(out) = shape(g, "output.weight") {
            if out != [self.vocab_size, self.n_embd] {
                return bad(format!(
                    "`output.weight` is {out:?}, but the vocabulary has {} tokens and \
                     `{p}.embedding_length` is {}",
                    self.vocab_size, self.n_embd
                ));
            }
        }
        if self.arch.is_gpt2() {
            let pos = shape(g, "position_embd.weight")
                .ok_or_else(|| EngineError::MissingTensor("position_embd.weight".into()))?;
            if !matches!(pos, [rows, d] if *rows >= self.context_length && *d == self.n_embd) {
                return bad(format!(
                    "`position_embd.weight` is {pos:?}, but `{p}.context_length` is {} and \
                     `{p}.embedding_length` is {}",
                    self.context_length, self.n_embd
                ));
            }
        }
        let q_width = self.n_head.checked_mul(self.head_dim);
        let kv_width = self.n_kv_head.checked_mul(self.head_dim);
        for i in 0..self.n_layer {
            let fused = g.has_tensor(&format!("blk.{i}.attn_qkv.weight"));
            if !fused && !g.has_tensor(&format!("blk.{i}.attn_q.weight")) {
                return bad(format!(
                    "`{p}.block_count` says {} layers, but the file has tensors for {i}",
                    self.n_layer
                ));
            }
            let expect = |name: &str, rows: Option<usize>, cols: Option<usize>| -> Result<()> {
                let full = format!("blk.{i}.{name}.weight");
                let dims = shape(g, &full).ok_or(EngineError::MissingTensor(full.clone()))?;
                let ok = match dims {
                    [r, c] => rows.is_none_or(|x| x == *r) && cols.is_none_or(|x| x == *c),
                    _ => false,
                };
                if ok {
                    // A bias, where the architecture has one, adds one value per output row.
                    let bias = format!("blk.{i}.{name}.bias");
                    return match shape(g, &bias) {
                        Some(b) if b != &dims[..1] => Err(EngineError::InvalidGguf(format!(
                            "`{bias}` is {b:?}, but `{full}` has {} rows",
                            dims[0]
                        ))),
                        _ => Ok(()),
                    };
                }
                let want = |x: Option<usize>| x.map_or("any".to_string(), |x| x.to_string());
                Err(EngineError::InvalidGguf(format!(
                    "`{full}` is {dims:?}, but the metadata ({} heads, {} key/value heads of \
                     size {}, width {}) needs [{}, {}]",
                    self.n_head,
                    self.n_kv_head,
                    self.head_dim,
                    self.n_embd,
                    want(rows),
                    want(cols)
                )))
            };
            if let Some(name) = self
                .arch
                .required_in_layer(fused)
                .iter()
                .find(|name| !g.has_tensor(&format!("blk.{i}.{name}")))
            {
                return Err(EngineError::MissingTensor(format!("blk.{i}.{name}")));
            }
            let d = Some(self.n_embd);
            if fused {
                let qkv = q_width.and_then(|q| kv_width.and_then(|kv| q.checked_add(2 * kv)));
                expect("attn_qkv", qkv, d)?;
            } else {
                expect("attn_q", q_width, d)?;
                expect("attn_k", kv_width, d)?;
                expect("attn_v", kv_width, d)?;
            }
            expect("attn_output", d, q_width)?;
            // The feed-forward width is whatever `ffn_up` has, and the others must agree (a
            // `ffn_down` of other columns failed at the first token with a bare shape error).
            expect("ffn_up", None, d)?;
            let ff = shape(g, &format!("blk.{i}.ffn_up.weight")).and_then(|s| s.first().copied());
            if !self.arch.is_gpt2() {
                expect("ffn_gate", ff, d)?;
            }
            expect("ffn_down", d, ff)?;
            for (name, len, required) in [
                ("attn_norm", self.n_embd, true),
                ("ffn_norm", self.n_embd, true),
                ("attn_q_norm", self.head_dim, false),
                ("attn_k_norm", self.head_dim, false),
                ("post_attention_norm", self.n_embd, false),
                ("post_ffw_norm", self.n_embd, false),
            ] {
                for part in ["weight", "bias"] {
                    let full = format!("blk.{i}.{name}.{part}");
                    match shape(g, &full) {
                        Some(dims) if dims != [len] => {
                            return bad(format!("`{full}` is {dims:?}, but should be [{len}]"))
                        }
                        None if required && part == "weight" => {
                            return Err(EngineError::MissingTensor(full))
                        }
                        _ => {}
                    }
                }
            }
        }
        if self.arch.is_gpt2() && !g.has_tensor("output_norm.bias") {
            return Err(EngineError::MissingTensor("output_norm.bias".into()));
        }
        for name in ["output_norm.weight", "output_norm.bias"] {
            match shape(g, name) {
                Some(dims) if dims != [self.n_embd] => {
                    return bad(format!(
                        "`{name}` is {dims:?}, but should be [{}]",
                        self.n_embd
                    ))
                }
                _ => {}
            }
        }
        // A tensor the architecture has no place for (an extra norm, a bias llama.cpp does
        // not read for it, a layer past `block_count`) would be left out of the numbers
        // without a word; llama.cpp refuses such a file ("wrong number of tensors").
        if let Some(t) = g.content.tensor_infos.keys().find(|t| {
            !self
                .arch
                .has_place_for(t, self.n_layer, &|n| g.has_tensor(n))
        }) {
            return bad(if t == "output.bias" {
                // llama.cpp adds Qwen2's; the engine's output layer has no bias.
                "the model adds a bias to its logits (`output.bias`), which TinyLab does not \
                 apply; the model would give wrong numbers"
                    .to_string()
            } else {
                format!(
                    "the file has a tensor `{t}` that a `{p}` model has no place for \
                     (llama.cpp refuses such a file too)"
                )
            });
        }
        Ok(())
    }
}

struct RmsNorm {
    weight: Vec<f32>,
    eps: f32,
}

impl RmsNorm {
    fn load(g: &GgufFile, name: &str, eps: f64) -> Result<Self> {
        let weight = g
            .tensor(name)?
            .dequantize(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(RmsNorm {
            weight,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut v = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        self.normalize_rows(&mut v)?;
        Ok(Tensor::from_vec(v, x.shape(), &Device::Cpu)?)
    }

    /// Every `weight.len()`-long row of `data`, in place, on the pool.
    fn normalize_rows(&self, data: &mut [f32]) -> Result<()> {
        let d = self.weight.len();
        if d == 0 || !data.len().is_multiple_of(d) {
            return Err(EngineError::InvalidGguf(format!(
                "a norm of {d} values does not fit rows of {} values",
                data.len()
            )));
        }
        super::parallel::for_each_row(data, d, &|_, row| self.normalize(row));
        Ok(())
    }

    /// candle's `rms_norm` arithmetic, so results are the same bits as before it moved here:
    /// the squares summed in order, then each value divided by the root and scaled.
    fn normalize(&self, row: &mut [f32]) {
        let sum2 = row.iter().map(|&v| v * v).sum::<f32>();
        let m = (sum2 / row.len() as f32 + self.eps).sqrt();
        for (v, w) in row.iter_mut().zip(&self.weight) {
            *v = *v / m * *w;
        }
    }
}

/// GPT-2's LayerNorm, as ggml's `ggml_norm` then weight and bias: the mean first, then the
/// variance of the centred values (two passes, sums in f64). candle's `layer_norm` takes the
/// variance as E[x²] − E[x]² in f32, which loses digits on GPT-2's residual stream, where a few
/// channels run to hundreds.
struct LayerNorm {
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
    eps: f32,
}

impl LayerNorm {
    fn load(g: &GgufFile, prefix: &str, eps: f64) -> Result<Self> {
        let vector = |name: &str| -> Result<Vec<f32>> {
            Ok(g.tensor(name)?
                .dequantize(&Device::Cpu)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        };
        let bias_name = format!("{prefix}.bias");
        Ok(LayerNorm {
            weight: vector(&format!("{prefix}.weight"))?,
            bias: if g.has_tensor(&bias_name) {
                Some(vector(&bias_name)?)
            } else {
                None
            },
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let d = self.weight.len();
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let mut out = Vec::with_capacity(xs.len());
        for row in xs.chunks(d.max(1)) {
            let n = row.len() as f64;
            let mean = (row.iter().map(|&v| v as f64).sum::<f64>() / n) as f32;
            let var = row
                .iter()
                .map(|&v| {
                    let c = (v - mean) as f64;
                    c * c
                })
                .sum::<f64>()
                / n;
            let scale = 1.0 / (var as f32 + self.eps).sqrt();
            for (j, &v) in row.iter().enumerate() {
                let y = (v - mean) * scale * self.weight[j];
                out.push(match &self.bias {
                    Some(b) => y + b[j],
                    None => y,
                });
            }
        }
        Ok(Tensor::from_vec(out, x.shape(), &Device::Cpu)?)
    }
}

/// The norm an architecture uses before attention, before the MLP and at the end.
enum Norm {
    Rms(RmsNorm),
    Layer(LayerNorm),
}

impl Norm {
    /// `prefix` names the tensor without `.weight` (GPT-2 also has `.bias`).
    fn load(g: &GgufFile, prefix: &str, cfg: &ModelConfig) -> Result<Self> {
        Ok(if cfg.arch.is_gpt2() {
            Norm::Layer(LayerNorm::load(g, prefix, cfg.norm_eps)?)
        } else {
            Norm::Rms(RmsNorm::load(g, &format!("{prefix}.weight"), cfg.norm_eps)?)
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        super::profile::time_phase("norms", || match self {
            Norm::Rms(n) => n.forward(x),
            Norm::Layer(n) => n.forward(x),
        })
    }
}

struct Rope {
    /// `[position][half head dim]`.
    cos: Vec<f32>,
    sin: Vec<f32>,
    half: usize,
    /// Rotates pairs (2i, 2i+1) as llama does, rather than (i, i + half) (NeoX style).
    interleaved: bool,
}

impl Rope {
    /// `scale` multiplies every position (linear RoPE scaling; 1 for none); `factors` (Llama
    /// 3's `rope_freqs`, one per frequency) divide the frequencies, as ggml's `freq_factors`.
    fn new(
        head_dim: usize,
        base: f32,
        scale: f32,
        max_pos: usize,
        interleaved: bool,
        factors: Option<&[f32]>,
    ) -> Result<Self> {
        let half = head_dim / 2;
        if let Some(f) = factors {
            if f.len() != half || f.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
                return Err(EngineError::InvalidGguf(format!(
                    "`rope_freqs.weight` must hold {half} finite factors above 0"
                )));
            }
        }
        // f64 for the angles: llama.cpp's float recurrence and candle's f32 matmul both drift at
        // large positions; computing exactly keeps us nearest to the maths both approximate.
        // The frequencies once, not once per position: `pow` was most of this table's time,
        // about 100 ms of Gemma 3's load in the page (its two tables of 4,096 positions).
        let freqs: Vec<f64> = (0..half)
            .map(|i| {
                let f = libm::pow(base as f64, -2.0 * i as f64 / head_dim as f64);
                match factors {
                    Some(ff) => f / ff[i] as f64,
                    None => f,
                }
            })
            .collect();
        let mut cos = Vec::with_capacity(max_pos * half);
        let mut sin = Vec::with_capacity(max_pos * half);
        for p in 0..max_pos {
            for &freq in &freqs {
                // Times exactly 1.0 where nothing is scaled: the same bits as before.
                let a = p as f64 * freq * scale as f64;
                cos.push(libm::cos(a) as f32);
                sin.push(libm::sin(a) as f32);
            }
        }
        Ok(Rope {
            cos,
            sin,
            half,
            interleaved,
        })
    }

    /// Rotates one head's vector for position `pos`, with candle's `rope`/`rope_i` arithmetic.
    fn rotate(&self, x: &mut [f32], pos: usize) {
        let (half, base) = (self.half, pos * self.half);
        let (Some(cos), Some(sin)) = (
            self.cos.get(base..base + half),
            self.sin.get(base..base + half),
        ) else {
            return;
        };
        for i in 0..half.min(x.len() / 2) {
            let (a, b) = if self.interleaved {
                (2 * i, 2 * i + 1)
            } else {
                (i, i + half)
            };
            let (xa, xb) = (x[a], x[b]);
            x[a] = xa * cos[i] - xb * sin[i];
            x[b] = xa * sin[i] + xb * cos[i];
        }
    }
}

struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

/// Native x86-64 builds with AVX2 (the baseline in `.cargo/config.toml`) have the engine's own
/// Q4_1 and Q5_0 kernels (`q4_1::avx2`, `q5_0::avx2`) and keep those types as stored.
const NATIVE_OWN_KERNELS: bool = cfg!(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
));

/// Which SIMD kernels the products will run on, which decides the weight types requantized at
/// load. Each build uses its own (`Kernels::BUILD`); the llama.cpp parity tests also load the
/// wasm builds' choices natively, to measure what they cost in accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// x86/ARM: the engine's own kernels with the relaxed wasm build's bits (AVX2 on x86-64)
    /// for Q8_0, Q4_1, Q5_0, Q4_K and Q6_K; candle's for the other types.
    Native,
    /// wasm32 with simd128: the engine's own Q8_0 and Q4_1 kernels (`q8_0`, `q4_1`).
    Wasm,
    /// wasm32 with relaxed SIMD: also Q5_0, Q4_K and Q6_K as stored (`q5_0`, `k_quants`).
    WasmRelaxed,
}

impl Kernels {
    pub const BUILD: Kernels = if cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd"))
    {
        Kernels::WasmRelaxed
    } else if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        Kernels::Wasm
    } else {
        Kernels::Native
    };

    /// Types whose products are slow on these kernels, requantized to Q8_0 at load.
    /// - All: Q5_1, Q3_K and Q5_K (candle's code for them is scalar on wasm, and x86 lacks
    ///   AVX forms).
    /// - simd128: Q5_0 (an own kernel, which must widen every byte to i16, cut Qwen2.5's
    ///   decoding from 10.9 to 7.7 tokens/s). The relaxed build and native x86-64 keep it
    ///   (`q5_0`); so do they Q4_1 (`q4_1`).
    /// - simd128: Q4_K and Q6_K. candle has simd128 forms, but per weight they ran 2.1× and
    ///   3.4× slower than the engine's Q8_0 kernel (bench, Qwen2.5 decode: 14% and 23% of the
    ///   time for 12% of the weights each). Requantized: Qwen2.5 decode 15.5 → 21.7 and
    ///   prefill 23 → 36 tokens/s, Gemma 3 decode 29.7 → 34.3; the accuracy cost is in the
    ///   parity tests. Q4_1 keeps its 5 bits: `q4_1` is as fast as Q8_0 per weight.
    pub fn requantizes(self, t: GgmlDType) -> bool {
        match t {
            GgmlDType::Q5_1 | GgmlDType::Q3K | GgmlDType::Q5K => true,
            GgmlDType::Q5_0 => match self {
                Kernels::Native => !NATIVE_OWN_KERNELS,
                Kernels::Wasm => true,
                Kernels::WasmRelaxed => false,
            },
            GgmlDType::Q4_1 => self == Kernels::Native && !NATIVE_OWN_KERNELS,
            GgmlDType::Q4K | GgmlDType::Q6K => self == Kernels::Wasm,
            _ => false,
        }
    }

    /// Whether Q6_K weights are widened to a byte a value at load (`k_quants::q6k_widen`,
    /// `weight::WideQ6K`): the relaxed build's, whose kernel unpacked the six-bit values for
    /// every token; natively too when a model is loaded as that build does (heap, parity).
    pub fn widens_q6k(self) -> bool {
        // Natively too: the portable form reads a byte a value far faster than it unpacks six
        // bits, and the CLI must have the relaxed build's bits (it keeps their order).
        matches!(self, Kernels::WasmRelaxed | Kernels::Native)
    }

    /// Whether Q8_0 weights are laid out by `q8_0::arrange_row` at load (`q8_0::Arranged`): the
    /// relaxed build's, where its kernels read a run of four scales as one vector. Natively
    /// too when the tests load a model as that build does, so that its heap and its model
    /// path (tied embeddings, joint products) are checked outside a browser; the products
    /// keep their bits either way.
    pub fn arranges_q8_0(self) -> bool {
        self == Kernels::WasmRelaxed
    }
}

/// A weight matrix ready for products. Types without a fast kernel are requantized to Q8_0 at
/// load: 8-bit blocks of 32 hold a 4-, 5- or 6-bit grid almost exactly (the rounding error is
/// under a tenth of the original step). Costs: load time and the memory of those tensors
/// (1.5–2× theirs).
pub fn weight_matmul(qt: candle_core::quantized::QTensor, kernels: Kernels) -> Result<Weight> {
    let cols = qt.shape().dims().last().copied().unwrap_or(0);
    if (kernels.requantizes(qt.dtype()) || unarrangeable(&qt)?) && cols % 32 == 0 {
        let f = qt.dequantize(&Device::Cpu)?;
        let q8 = candle_core::quantized::QTensor::quantize(&f, GgmlDType::Q8_0)?;
        // Laid out as the file's own Q8_0 tensors are, so that they join them (Q5_K_M files
        // mix Q5_1 and Q8_0 in one layer's q, k and v).
        return q8_0_weight(q8, kernels);
    }
    if qt.dtype() == GgmlDType::Q6K && kernels.widens_q6k() && cols > 0 {
        let (rows, _) = qt.shape().dims2()?;
        let wide = super::weight::WideQ6K::new(rows, cols, &qt.data()?)?;
        return Ok(Weight::wide_q6k(std::sync::Arc::new(wide)));
    }
    if laid_out_for_products(qt.dtype()) && cols % 32 == 0 {
        use candle_core::quantized::k_quants::{BlockQ4_1, BlockQ5_0};
        let laid = if qt.dtype() == GgmlDType::Q5_0 {
            arranged::<BlockQ5_0>(&qt, super::q5_0::arrange)?
        } else {
            arranged::<BlockQ4_1>(&qt, super::q4_1::arrange)?
        };
        return Ok(Weight::new(std::sync::Arc::new(laid))?);
    }
    Ok(Weight::new(std::sync::Arc::new(qt))?)
}

/// Whether this build's kernels read `t` in a layout of their own (`q5_0::arrange`,
/// `q4_1::arrange`, done by `weight_matmul`), so that a tied output layer needs its own copy
/// of the embedding table. Not Q6_K, which the relaxed build widens (`Kernels::widens_q6k`):
/// its kernels read stored blocks too, and a widened copy of a tied table would cost 2.3× the
/// table's memory instead of nothing.
fn laid_out_for_products(t: GgmlDType) -> bool {
    (t == GgmlDType::Q5_0 && super::q5_0::ARRANGED)
        || (t == GgmlDType::Q4_1 && super::q4_1::ARRANGED)
}

/// Whether a Q4_1 or Q5_0 tensor must be requantized in this build: its kernels read
/// `q4_1::arrange`'s or `q5_0::arrange`'s layout, whose scales they widen in a way that has no
/// place for an infinite or NaN scale (`q4_1::arrangeable`, `q5_0::arrangeable`); only a
/// damaged file has one.
fn unarrangeable(qt: &candle_core::quantized::QTensor) -> Result<bool> {
    Ok(match qt.dtype() {
        GgmlDType::Q4_1 if super::q4_1::ARRANGED => !super::q4_1::arrangeable(&qt.data()?),
        GgmlDType::Q5_0 if super::q5_0::ARRANGED => !super::q5_0::arrangeable(&qt.data()?),
        _ => false,
    })
}

/// Tensor `name` ready for products: `weight_matmul` on it, except that for the relaxed build
/// a Q8_0 matrix is read straight into `q8_0::arrange_row`'s layout (`Kernels::arranges_q8_0`).
fn load_weight(g: &GgufFile, name: &str, kernels: Kernels) -> Result<Weight> {
    if let Some(kind) = g.iquant(name) {
        return iquant_weight(g.tensor(name)?, kind, kernels);
    }
    if kernels.arranges_q8_0() {
        if let Some(a) = g.q8_0_arranged(name)? {
            return Ok(Weight::arranged_q8_0(std::sync::Arc::new(a)));
        }
    }
    weight_matmul(g.tensor(name)?, kernels)
}

/// An IQ4_NL or IQ4_XS matrix, which `GgufFile::tensor` reads as Q8_0 (`iq4`): laid out as the
/// file's own Q8_0 matrices are, and for IQ4_XS with its activations on Q8_K's grid.
fn iquant_weight(q8: QTensor, kind: IQuant, kernels: Kernels) -> Result<Weight> {
    let w = q8_0_weight(q8, kernels)?;
    Ok(match kind {
        IQuant::Iq4Xs => w.on_k_grid(),
        IQuant::Iq4Nl => w,
    })
}

/// A Q8_0 matrix as this build multiplies it: laid out by `q8_0::arrange_row` where the
/// kernels read that layout, as stored elsewhere.
fn q8_0_weight(q8: QTensor, kernels: Kernels) -> Result<Weight> {
    let cols = q8.shape().dims().last().copied().unwrap_or(0);
    if kernels.arranges_q8_0() && cols > 0 {
        let (rows, _) = q8.shape().dims2()?;
        let mut a = super::q8_0::Arranged::new(rows, cols);
        a.set_rows(0, &q8.data()?);
        return Ok(Weight::arranged_q8_0(std::sync::Arc::new(a)));
    }
    Ok(Weight::new(std::sync::Arc::new(q8))?)
}

/// A Q5_0 or Q4_1 matrix (`T`) with its rows laid out for the relaxed-SIMD kernels by
/// `arrange` (`q5_0::arrange`, `q4_1::arrange`): the same bytes, so the same memory, in an
/// order that candle's own code for the type cannot read. Only products read it, and only
/// through the engine's kernels (`weight::own_kernel`); the token embeddings are a tensor of
/// their own (`Embeddings`), read from the file as stored.
fn arranged<T: candle_core::quantized::k_quants::GgmlType + 'static>(
    qt: &candle_core::quantized::QTensor,
    arrange: fn(&mut [u8], usize),
) -> Result<candle_core::quantized::QTensor> {
    use candle_core::quantized::QStorage;
    let cols = qt.shape().dims().last().copied().unwrap_or(0);
    let data = qt.data()?;
    let block_bytes = std::mem::size_of::<T>();
    let mut blocks = vec![T::zeros(); data.len() / block_bytes];
    // SAFETY: `T` is one of candle's `repr(C)` blocks (22 or 20 bytes) without padding, for
    // which every byte pattern is a value; the slice covers exactly the vector's bytes.
    let raw = unsafe {
        std::slice::from_raw_parts_mut(
            blocks.as_mut_ptr() as *mut u8,
            std::mem::size_of_val(&blocks[..]),
        )
    };
    if raw.len() != data.len() {
        return Err(EngineError::InvalidGguf(format!(
            "a {:?} tensor does not hold whole blocks",
            qt.dtype()
        )));
    }
    raw.copy_from_slice(&data);
    drop(data);
    arrange(raw, cols / T::BLCK_SIZE);
    Ok(candle_core::quantized::QTensor::new(
        QStorage::Cpu(Box::new(blocks)),
        qt.shape().clone(),
    )?)
}

impl Linear {
    fn load(g: &GgufFile, prefix: &str, kernels: Kernels) -> Result<Self> {
        let weight = load_weight(g, &format!("{prefix}.weight"), kernels)?;
        let bias_name = format!("{prefix}.bias");
        let bias = if g.has_tensor(&bias_name) {
            Some(g.tensor(&bias_name)?.dequantize(&Device::Cpu)?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    /// `parts` as one product (`Weight::joint`), their biases joined too; `None` where the
    /// weights cannot be joined or only some parts have a bias.
    fn joint(parts: &[&Linear]) -> Option<Linear> {
        let weights: Vec<&Weight> = parts.iter().map(|p| &p.weight).collect();
        let weight = Weight::joint(&weights)?;
        let biases: Option<Vec<Tensor>> = parts.iter().map(|p| p.bias.clone()).collect();
        let bias = match biases {
            Some(b) => Some(Tensor::cat(&b, 0).ok()?),
            None if parts.iter().all(|p| p.bias.is_none()) => None,
            None => return None,
        };
        Some(Linear { weight, bias })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.weight.forward(x)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// The query, key and value projections: three matrices, or one fused matrix (GPT-2's
/// `attn_qkv`) whose output rows are the queries, then the keys, then the values.
enum Qkv {
    Split { q: Linear, k: Linear, v: Linear },
    Fused(Linear),
}

struct Layer {
    attn_norm: Norm,
    qkv: Qkv,
    wo: Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    post_attn_norm: Option<RmsNorm>,
    ffn_norm: Norm,
    ffn_in: FfnIn,
    down: Linear,
    post_ffn_norm: Option<RmsNorm>,
    sliding_window: Option<usize>,
    rope: usize,
    kv: KvCache,
}

/// The feed-forward layer's products before its activation.
enum FfnIn {
    /// GPT-2's MLP: `down(gelu(up(x)))`.
    Up(Linear),
    /// The gated MLP of every other architecture, as two products.
    GateUp { gate: Linear, up: Linear },
    /// The same as one joint product (`Weight::joint`): each row the gate's outputs, then up's.
    Joint(Linear),
}

/// Positions per page of the KV cache.
const KV_PAGE: usize = 32;

/// Keys and values of every position so far, in pages of `KV_PAGE` positions, each page
/// head-major (`[kv head][position][head dim]`) so that attention reads one head's keys front
/// to back. Pages never move: a step fills the last page or adds one, so the cache never copies
/// itself and holds at most one part-filled page per layer beyond what it uses. A doubling
/// `Vec` held up to twice what it used, plus the block it had just left; that was most of
/// SmolLM2's heap peak above its file (1.26×).
#[derive(Default)]
struct KvCache {
    heads: usize,
    head_dim: usize,
    /// Positions held.
    len: usize,
    k: Vec<Box<[f32]>>,
    v: Vec<Box<[f32]>>,
}

impl KvCache {
    fn new(heads: usize, head_dim: usize) -> Self {
        KvCache {
            heads,
            head_dim,
            ..KvCache::default()
        }
    }

    /// `k`, `v`: the new positions, position-major (`[position][kv head][head dim]`), as the
    /// projections give them.
    fn append(&mut self, k: &[f32], v: &[f32]) {
        let (heads, hd) = (self.heads, self.head_dim);
        let per = heads * hd;
        debug_assert!(per > 0 && k.len() == v.len() && k.len().is_multiple_of(per));
        for (kp, vp) in k.chunks_exact(per).zip(v.chunks_exact(per)) {
            let (page, slot) = (self.len / KV_PAGE, self.len % KV_PAGE);
            if page == self.k.len() {
                self.k.push(vec![0.0; KV_PAGE * per].into_boxed_slice());
                self.v.push(vec![0.0; KV_PAGE * per].into_boxed_slice());
            }
            for g in 0..heads {
                let at = (g * KV_PAGE + slot) * hd;
                self.k[page][at..at + hd].copy_from_slice(&kp[g * hd..][..hd]);
                self.v[page][at..at + hd].copy_from_slice(&vp[g * hd..][..hd]);
            }
            self.len += 1;
        }
    }

    /// Keeps the first `n` positions and frees the pages past them.
    fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
        let pages = self.len.div_ceil(KV_PAGE);
        self.k.truncate(pages);
        self.v.truncate(pages);
    }

    /// The key of kv head `g` at position `pos`.
    #[inline]
    fn key(&self, pos: usize, g: usize) -> &[f32] {
        let at = (g * KV_PAGE + pos % KV_PAGE) * self.head_dim;
        &self.k[pos / KV_PAGE][at..][..self.head_dim]
    }

    #[inline]
    fn value(&self, pos: usize, g: usize) -> &[f32] {
        let at = (g * KV_PAGE + pos % KV_PAGE) * self.head_dim;
        &self.v[pos / KV_PAGE][at..][..self.head_dim]
    }

    /// What the pages take, part-filled ones whole.
    fn bytes(&self) -> usize {
        let per = self.heads * self.head_dim;
        (self.k.len() + self.v.len()) * KV_PAGE * per * std::mem::size_of::<f32>()
    }
}

/// Token embeddings kept in their quantized form; rows are dequantized on lookup. The table is
/// shared with the output layer when the model ties the two (Gemma, Qwen, SmolLM2), so it is held
/// once: for Gemma 3's 262k-token vocabulary that is 178 MB less.
struct Embeddings {
    table: Table,
    dtype: GgmlDType,
    row_bytes: usize,
    n_rows: usize,
    dim: usize,
}

/// An embedding table's blocks: as stored, or (tied to the output layer in the relaxed build)
/// laid out by `q8_0::arrange_row`.
enum Table {
    Stored(std::sync::Arc<candle_core::quantized::QTensor>),
    ArrangedQ8_0(std::sync::Arc<super::q8_0::Arranged>),
}

impl Embeddings {
    /// `arrange`: read a Q8_0 table in `q8_0::arrange_row`'s layout (other types as stored).
    fn load(g: &GgufFile, name: &str, arrange: bool) -> Result<Self> {
        if arrange {
            if let Some(a) = g.q8_0_arranged(name)? {
                let (n_rows, dim) = (a.rows(), a.cols());
                return Ok(Embeddings {
                    table: Table::ArrangedQ8_0(std::sync::Arc::new(a)),
                    dtype: GgmlDType::Q8_0,
                    // Read by the stored path only; the arranged rows are `a`'s to find.
                    row_bytes: 0,
                    n_rows,
                    dim,
                });
            }
        }
        let table = g.tensor(name)?;
        let dtype = table.dtype();
        let (n_rows, dim) = match table.shape().dims() {
            [r, d] => (*r, *d),
            dims => {
                return Err(EngineError::InvalidGguf(format!(
                    "`{name}` should be a matrix, has shape {dims:?}"
                )))
            }
        };
        if !dim.is_multiple_of(dtype.block_size()) {
            return Err(EngineError::InvalidGguf(format!(
                "`{name}` rows of {dim} do not split into {dtype:?} blocks"
            )));
        }
        let row_bytes = dim / dtype.block_size() * dtype.type_size();
        Ok(Embeddings {
            table: Table::Stored(std::sync::Arc::new(table)),
            dtype,
            row_bytes,
            n_rows,
            dim,
        })
    }

    fn lookup(&self, ids: &[u32]) -> Result<Tensor> {
        for &id in ids {
            if id as usize >= self.n_rows {
                return Err(EngineError::InvalidInput(format!(
                    "token id {id} is outside the vocabulary of {}",
                    self.n_rows
                )));
            }
        }
        match &self.table {
            Table::Stored(table) => {
                let raw = table.data()?;
                let mut buf = Vec::with_capacity(ids.len() * self.row_bytes);
                for &id in ids {
                    let r = id as usize;
                    buf.extend_from_slice(&raw[r * self.row_bytes..(r + 1) * self.row_bytes]);
                }
                let q =
                    qtensor_from_ggml(self.dtype, &buf, vec![ids.len(), self.dim], &Device::Cpu)?;
                Ok(q.dequantize(&Device::Cpu)?)
            }
            Table::ArrangedQ8_0(a) => {
                let mut out = vec![0f32; ids.len() * self.dim];
                for (&id, row) in ids.iter().zip(out.chunks_exact_mut(self.dim)) {
                    a.dequantize_row(id as usize, row);
                }
                Ok(Tensor::from_vec(out, (ids.len(), self.dim), &Device::Cpu)?)
            }
        }
    }
}

pub struct Model {
    pub config: ModelConfig,
    embed: Embeddings,
    /// GPT-2's learned position embeddings (the others use RoPE).
    positions: Option<Embeddings>,
    layers: Vec<Layer>,
    ropes: Vec<Rope>,
    norm: Norm,
    output: Weight,
    max_positions: usize,
    /// Positions already in the KV cache.
    cached: usize,
    /// The ids those positions hold, so a caller can reuse a common prefix.
    cached_ids: Vec<u32>,
}

/// A part of a GGUF cut by llama.cpp's `gguf-split` holds some of the tensors (and a later part
/// no model metadata at all), which read as a missing tensor or a missing architecture: name
/// the cause, and the way to one file, instead.
pub fn check_not_split(g: &GgufFile) -> Result<()> {
    let count = g.u32_opt("split.count")?.unwrap_or(1);
    if count <= 1 {
        return Ok(());
    }
    let part = g
        .u32_opt("split.no")?
        .map_or(String::new(), |no| format!(" {}", no as u64 + 1));
    Err(EngineError::InvalidInput(format!(
        "this file is part{part} of a model split into {count} files; TinyLab reads one file: \
         join the parts with llama.cpp's `llama-gguf-split --merge FIRST-PART OUT.gguf` and load \
         OUT.gguf"
    )))
}

/// The metadata held against the tensors (`check_against_tensors`) before anything is built:
/// the tokenizer is built first, and a vocabulary of millions of tokens that the embedding does
/// not have took gigabytes and seconds before the same error.
pub fn check_file(g: &GgufFile) -> Result<()> {
    ModelConfig::from_gguf(g)?.check_against_tensors(g)
}

impl Model {
    /// `max_positions` caps the context the engine will hold (KV cache and rope tables).
    pub fn load(g: &GgufFile, max_positions: usize, kernels: Kernels) -> Result<Self> {
        let config = ModelConfig::from_gguf(g)?;
        config.check_against_tensors(g)?;
        let max_positions = max_positions.min(config.context_length).max(1);
        config.check_context_memory(max_positions)?;
        let eps = config.norm_eps;
        let tied = !g.has_tensor("output.weight");
        // A tied Q8_0 table is read once, laid out for the output layer's products, and the
        // embedding reads its rows from that (Gemma 3's is 178 MB).
        let arrange = tied && kernels.arranges_q8_0();
        let embed = Embeddings::load(g, "token_embd.weight", arrange)?;
        let output = if !tied {
            load_weight(g, "output.weight", kernels)?
        } else if kernels.requantizes(embed.dtype) || laid_out_for_products(embed.dtype) {
            // Tied, but the output layer wants a fast type (a requantized copy) or its rows in
            // another order than the embedding reads them (a laid-out copy).
            weight_matmul(g.tensor("token_embd.weight")?, kernels)?
        } else {
            match &embed.table {
                // An IQ4_XS table, read as Q8_0, multiplies as IQ4_XS matrices do.
                Table::Stored(t) if g.iquant("token_embd.weight") == Some(IQuant::Iq4Xs) => {
                    Weight::new(t.clone())?.on_k_grid()
                }
                Table::Stored(t) => Weight::new(t.clone())?,
                Table::ArrangedQ8_0(a) => Weight::arranged_q8_0(a.clone()),
            }
        };
        let positions = if config.arch.is_gpt2() {
            Some(Embeddings::load(g, "position_embd.weight", false)?)
        } else {
            None
        };
        let mut ropes = Vec::new();
        if config.arch.uses_rope() {
            let interleaved = config.arch == Arch::Llama;
            // Checked against the head size with the metadata (`check_against_tensors`).
            let factors = if g.has_tensor("rope_freqs.weight") {
                Some(
                    g.tensor("rope_freqs.weight")?
                        .dequantize(&Device::Cpu)?
                        .flatten_all()?
                        .to_vec1::<f32>()?,
                )
            } else {
                None
            };
            ropes.push(Rope::new(
                config.head_dim,
                config.rope_base,
                config.rope_scale,
                max_positions,
                interleaved,
                factors.as_deref(),
            )?);
        }
        if config.any_sliding() {
            // llama.cpp scales only the global layers (`rope_freq_scale_train_swa` is 1).
            ropes.push(Rope::new(
                config.head_dim,
                config.rope_base_swa,
                1.0,
                max_positions,
                false,
                None,
            )?);
        }
        let mut layers = Vec::with_capacity(config.n_layer);
        for i in 0..config.n_layer {
            let p = format!("blk.{i}");
            let opt_norm = |n: &str| -> Result<Option<RmsNorm>> {
                let name = format!("{p}.{n}.weight");
                if g.has_tensor(&name) {
                    Ok(Some(RmsNorm::load(g, &name, eps)?))
                } else {
                    Ok(None)
                }
            };
            let linear = |n: &str| Linear::load(g, &format!("{p}.{n}"), kernels);
            // Split projections are joined where the kernels allow: one job for the pool
            // instead of three (two for the gate and up), which is what two threads lose most
            // on in decoding, where each product is tens of microseconds.
            let qkv = if g.has_tensor(&format!("{p}.attn_qkv.weight")) {
                let mut fused = linear("attn_qkv")?;
                // A fused matrix may come with separate q/k/v biases (llama.cpp's
                // `create_tensor_qkv` reads them where the fused one has none): joined.
                let part = |n: &str| format!("{p}.attn_{n}.bias");
                if fused.bias.is_none() && ["q", "k", "v"].iter().any(|n| g.has_tensor(&part(n))) {
                    let (q_rows, kv_rows) = (
                        config.n_head * config.head_dim,
                        config.n_kv_head * config.head_dim,
                    );
                    // A part without its bias adds nothing, as in llama.cpp.
                    let biases = [("q", q_rows), ("k", kv_rows), ("v", kv_rows)]
                        .iter()
                        .map(|&(n, rows)| {
                            let b = if g.has_tensor(&part(n)) {
                                g.tensor(&part(n))?
                                    .dequantize(&Device::Cpu)?
                                    .flatten_all()?
                            } else {
                                Tensor::zeros(rows, candle_core::DType::F32, &Device::Cpu)?
                            };
                            if b.elem_count() != rows {
                                return Err(EngineError::InvalidGguf(format!(
                                    "`{}` holds {} values, but the layer's {n} has {rows} rows",
                                    part(n),
                                    b.elem_count()
                                )));
                            }
                            Ok(b)
                        })
                        .collect::<Result<Vec<Tensor>>>()?;
                    fused.bias = Some(Tensor::cat(&biases, 0)?);
                }
                Qkv::Fused(fused)
            } else {
                let (q, k, v) = (linear("attn_q")?, linear("attn_k")?, linear("attn_v")?);
                match Linear::joint(&[&q, &k, &v]) {
                    Some(all) => Qkv::Fused(all),
                    None => Qkv::Split { q, k, v },
                }
            };
            let ffn_in = if config.arch.is_gpt2() {
                FfnIn::Up(linear("ffn_up")?)
            } else {
                let (gate, up) = (linear("ffn_gate")?, linear("ffn_up")?);
                match Linear::joint(&[&gate, &up]) {
                    Some(both)
                        if gate.weight.out_features() == up.weight.out_features()
                            && gate.bias.is_none() =>
                    {
                        FfnIn::Joint(both)
                    }
                    _ => FfnIn::GateUp { gate, up },
                }
            };
            let sliding = config.sliding_layers.get(i).copied().unwrap_or(false);
            layers.push(Layer {
                attn_norm: Norm::load(g, &format!("{p}.attn_norm"), &config)?,
                qkv,
                wo: linear("attn_output")?,
                q_norm: opt_norm("attn_q_norm")?,
                k_norm: opt_norm("attn_k_norm")?,
                post_attn_norm: opt_norm("post_attention_norm")?,
                ffn_norm: Norm::load(g, &format!("{p}.ffn_norm"), &config)?,
                ffn_in,
                down: linear("ffn_down")?,
                post_ffn_norm: opt_norm("post_ffw_norm")?,
                sliding_window: if sliding { config.sliding_window } else { None },
                rope: usize::from(sliding),
                kv: KvCache::new(config.n_kv_head, config.head_dim),
            });
        }
        Ok(Model {
            norm: Norm::load(g, "output_norm", &config)?,
            config,
            embed,
            positions,
            layers,
            ropes,
            output,
            max_positions,
            cached: 0,
            cached_ids: Vec::new(),
        })
    }

    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Positions currently in the KV cache.
    pub fn cached(&self) -> usize {
        self.cached
    }

    /// The ids whose keys and values the cache holds, in order.
    pub fn cached_ids(&self) -> &[u32] {
        &self.cached_ids
    }

    /// The heap the KV cache takes now, its part-filled pages whole.
    pub fn kv_cache_bytes(&self) -> usize {
        self.layers.iter().map(|l| l.kv.bytes()).sum()
    }

    /// Keeps the first `n` cached positions and forgets the rest, so a shared context can be
    /// continued several ways (evaluation's choices).
    pub fn truncate_cache(&mut self, n: usize) {
        let n = n.min(self.cached);
        self.cached_ids.truncate(n);
        for l in &mut self.layers {
            l.kv.truncate(n);
        }
        self.cached = n;
    }

    pub fn clear_cache(&mut self) {
        for l in &mut self.layers {
            l.kv.truncate(0);
        }
        self.cached = 0;
        self.cached_ids.clear();
    }

    /// `forward` for scoring: every row's numbers as a pass of several rows gives them, however
    /// the text was cut into passes. One row alone takes decoding's kernels, which add their
    /// blocks in another order; the activations' 8-bit rounding turns that last-bit
    /// difference into up to 0.2 nats (SmolLM2, an evaluation choice of two tokens against the
    /// same text scored whole). So a lone row runs with the position before it, recomputed:
    /// the same bits where a pass of several rows made it.
    pub fn forward_rows(&mut self, ids: &[u32]) -> Result<Tensor> {
        match (ids, self.cached_ids.last()) {
            ([id], Some(&before)) => {
                self.truncate_cache(self.cached - 1);
                let h = self.forward(&[before, *id])?;
                Ok(h.narrow(0, 1, 1)?)
            }
            // The first position (an evaluation's empty context, its BOS alone): run twice,
            // the first row kept, which the second cannot change (attention looks back only).
            ([id], None) if self.max_positions >= 2 => {
                let h = self.forward(&[*id, *id])?;
                self.truncate_cache(1);
                Ok(h.narrow(0, 0, 1)?)
            }
            _ => self.forward(ids),
        }
    }

    /// Runs `ids` at the next positions of the cache and returns final-norm hidden states,
    /// shape `(ids.len(), n_embd)`.
    pub fn forward(&mut self, ids: &[u32]) -> Result<Tensor> {
        let t = ids.len();
        if t == 0 {
            return Err(EngineError::InvalidInput(
                "nothing to run: no tokens".into(),
            ));
        }
        let offset = self.cached;
        if offset + t > self.max_positions {
            return Err(EngineError::InvalidInput(format!(
                "{} tokens exceed the context of {} tokens",
                offset + t,
                self.max_positions
            )));
        }
        let cfg = &self.config;
        let mut x =
            super::profile::time_phase("embedding", || self.embed.lookup(ids))?.unsqueeze(0)?;
        if cfg.arch == Arch::Gemma3 {
            x = (x * (cfg.n_embd as f64).sqrt())?;
        }
        if let Some(table) = &self.positions {
            let at: Vec<u32> = (offset..offset + t).map(|p| p as u32).collect();
            x = x.broadcast_add(&table.lookup(&at)?)?;
        }
        for layer in &mut self.layers {
            let residual = x.clone();
            let h = layer.attn_norm.forward(&x)?;
            let h = attention(layer, &self.ropes, cfg, &h, offset)?;
            let h = match &layer.post_attn_norm {
                Some(n) => n.forward(&h)?,
                None => h,
            };
            x = super::profile::time_phase("residual", || h + residual)?;
            let residual = x.clone();
            let h = layer.ffn_norm.forward(&x)?;
            let gemma = cfg.arch == Arch::Gemma3;
            let h = match &layer.ffn_in {
                FfnIn::Up(up) => {
                    let up = up.forward(&h)?;
                    super::profile::time_phase("ffn activation", || gelu(&up))?
                }
                FfnIn::GateUp { gate, up } => {
                    let up = up.forward(&h)?;
                    let gate = gate.forward(&h)?;
                    super::profile::time_phase("ffn activation", || gated(&gate, Some(&up), gemma))?
                }
                FfnIn::Joint(both) => {
                    let both = both.forward(&h)?;
                    super::profile::time_phase("ffn activation", || gated(&both, None, gemma))?
                }
            };
            let h = layer.down.forward(&h)?;
            let h = match &layer.post_ffn_norm {
                Some(n) => n.forward(&h)?,
                None => h,
            };
            x = super::profile::time_phase("residual", || h + residual)?;
        }
        self.cached = offset + t;
        self.cached_ids.truncate(offset);
        self.cached_ids.extend_from_slice(ids);
        let x = self.norm.forward(&x)?;
        Ok(x.squeeze(0)?)
    }

    /// Logits for the given hidden-state rows, shape `(rows, vocab)`.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        // A NaN in the hidden state (weights holding NaN: the final norm's, or any layer's that
        // reached the residual stream) would be quantized to 0 on its way into the output
        // product, and every token would come out equally likely: numbers that look real.
        let finite = hidden
            .flatten_all()?
            .to_vec1::<f32>()?
            .iter()
            .fold(true, |ok, x| ok & x.is_finite());
        if !finite {
            return Err(EngineError::Compute(NAN_SCORES.into()));
        }
        let logits = self.output.forward(hidden)?;
        match self.config.logit_softcap {
            // As llama.cpp: scaled down, tanh, scaled back up; libm's tanh, the same bits in
            // every build.
            Some(cap) => {
                let dims = logits.dims().to_vec();
                let capped: Vec<f32> = logits
                    .flatten_all()?
                    .to_vec1::<f32>()?
                    .into_iter()
                    .map(|l| libm::tanhf(l * (1.0 / cap)) * cap)
                    .collect();
                Ok(Tensor::from_vec(capped, dims, &Device::Cpu)?)
            }
            None => Ok(logits),
        }
    }
}

fn attention(
    layer: &mut Layer,
    ropes: &[Rope],
    cfg: &ModelConfig,
    x: &Tensor,
    offset: usize,
) -> Result<Tensor> {
    let (b, t, _) = x.dims3()?;
    let (nh, nkv, hd) = (cfg.n_head, cfg.n_kv_head, cfg.head_dim);
    let flat =
        |x: Tensor| -> Result<Vec<f32>> { Ok(x.contiguous()?.flatten_all()?.to_vec1::<f32>()?) };
    let (mut q, mut k, v) = match &layer.qkv {
        Qkv::Split { q, k, v } => (
            flat(q.forward(x)?)?,
            flat(k.forward(x)?)?,
            flat(v.forward(x)?)?,
        ),
        Qkv::Fused(qkv) => {
            let all = qkv.forward(x)?;
            (
                flat(all.narrow(2, 0, nh * hd)?)?,
                flat(all.narrow(2, nh * hd, nkv * hd)?)?,
                flat(all.narrow(2, (nh + nkv) * hd, nkv * hd)?)?,
            )
        }
    };
    // The projections come out position-major (`[t][heads][head dim]`), which is the layout of
    // the cache and of `cached_attention`'s queries: per-head norms and RoPE work on them in
    // place, one position per work item, with no transposes.
    let rope = ropes.get(layer.rope).or(ropes.last());
    let heads = |data: &mut [f32], norm: &Option<RmsNorm>, phase: &'static str| {
        super::profile::time_phase(phase, || {
            super::parallel::for_each_row(data, data.len() / t.max(1), &|r, row| {
                for head in row.chunks_exact_mut(hd) {
                    if let Some(n) = norm {
                        n.normalize(head);
                    }
                    if let Some(rope) = rope {
                        rope.rotate(head, offset + r);
                    }
                }
            })
        })
    };
    if q.len() != t * nh * hd || k.len() != t * nkv * hd || v.len() != k.len() {
        return Err(EngineError::InvalidGguf(
            "the attention projections do not match the head counts".into(),
        ));
    }
    for n in [&layer.q_norm, &layer.k_norm].into_iter().flatten() {
        if n.weight.len() != hd {
            return Err(EngineError::InvalidGguf(format!(
                "a per-head norm of {} values for heads of {hd}",
                n.weight.len()
            )));
        }
    }
    heads(&mut q, &layer.q_norm, "heads: norm and rope");
    heads(&mut k, &layer.k_norm, "heads: norm and rope");
    // Always to `offset`, not only at 0: a forward that failed part way through leaves the
    // earlier layers' caches ahead of `Model::cached`.
    layer.kv.truncate(offset);
    super::profile::time_phase("kv cache", || layer.kv.append(&k, &v));
    let y = super::profile::time_phase("attention", || {
        cached_attention(&layer.kv, &q, cfg, offset, layer.sliding_window)
    });
    layer
        .wo
        .forward(&Tensor::from_vec(y, (b, t, nh * hd), &Device::Cpu)?)
}

/// Attention of `t` query rows (`q`: position-major, `[t][heads][head dim]`, at positions
/// `offset..offset + t`) over the cache, read straight from its buffers: no cache copy, no
/// repeated kv heads, no mask matrix. A work item for the `parallel` pool is one query row and
/// a run of the heads that share a kv head (`head_slices`), so that a key or value read from
/// memory serves every head of the run from the core's nearest cache: Gemma 3 has four heads
/// on one kv head, and one head per item read its 256-value keys and values four times a layer.
/// Every sum runs in a fixed order (`dot`, then positions in order), whatever the runs, so the
/// result does not depend on the thread count or on the CPU. This is why prefill does not use
/// candle's f32 matmul: its `gemm` sizes its blocks from the CPU's cache sizes, read at run
/// time, and so summed in a different order on another machine (the AVX2 CI machine parted
/// from this one at a near tie).
fn cached_attention(
    kv: &KvCache,
    q: &[f32],
    cfg: &ModelConfig,
    offset: usize,
    window: Option<usize>,
) -> Vec<f32> {
    let t = q.len() / (cfg.n_head * cfg.head_dim);
    let group = cfg.n_head / cfg.n_kv_head;
    let slices = head_slices(t * cfg.n_kv_head, group, super::parallel::threads());
    attention_in_slices(kv, q, cfg, offset, window, slices)
}

/// `cached_attention` with each kv head's query heads in `slices` runs (1..=group).
fn attention_in_slices(
    kv: &KvCache,
    q: &[f32],
    cfg: &ModelConfig,
    offset: usize,
    window: Option<usize>,
    slices: usize,
) -> Vec<f32> {
    let (nh, nkv, hd) = (cfg.n_head, cfg.n_kv_head, cfg.head_dim);
    let t = q.len() / (nh * hd);
    let scale = cfg.attention_scale;
    let group = nh / nkv;
    let threads = super::parallel::threads();
    let mut out = vec![0f32; t * nh * hd];
    let out_at = super::parallel::DisjointOut::new(&mut out);
    // `w`, `sums` and `acc`: scratch for one item, allocated once per chunk of items.
    let item = |it: usize, w: &mut Vec<f32>, sums: &mut Vec<f32>, acc: &mut Vec<f32>| {
        let (r, g, k) = (it / (nkv * slices), it / slices % nkv, it % slices);
        // Heads `h0..h1` of the query row, all on kv head `g`.
        let h0 = g * group + k * group / slices;
        let h1 = g * group + (k + 1) * group / slices;
        let heads = h1 - h0;
        // Query row r sits at position i and sees keys first..=i: causal, and inside the
        // sliding window (Gemma 3's local layers), as llama.cpp masks them.
        let i = offset + r;
        let first = window.map_or(0, |w| (i + 1).saturating_sub(w));
        let n = i + 1 - first;
        let qh = |h: usize| &q[(r * nh + h0 + h) * hd..][..hd];
        let key = |j: usize| kv.key(j, g);
        // Per head, its `n` scores: four positions per pass, each head in turn against the
        // same four keys.
        w.clear();
        w.resize(heads * n, 0.0);
        let mut j = first;
        while j + 4 <= i + 1 {
            let keys = [key(j), key(j + 1), key(j + 2), key(j + 3)];
            for h in 0..heads {
                let d = dot_f32_many(qh(h), keys);
                w[h * n + j - first..][..4].copy_from_slice(&d.map(|x| x * scale));
            }
            j += 4;
        }
        for j in j..=i {
            for h in 0..heads {
                w[h * n + j - first] = dot_f32(qh(h), key(j)) * scale;
            }
        }
        sums.clear();
        sums.extend(w.chunks_exact_mut(n).map(|w| {
            let max = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            w.iter_mut()
                .for_each(|x| *x = super::fast_exp::exp(*x - max));
            w.iter().sum::<f32>()
        }));
        acc.clear();
        acc.resize(heads * hd, 0.0);
        let value = |j: usize| kv.value(j, g);
        // Four positions per pass over each head's `acc`, each element still summed in
        // position order: the bits of one position at a time, with a quarter of the loads and
        // stores of `acc`, and the four values read once for every head.
        let mut j = first;
        while j + 4 <= i + 1 {
            let v = [value(j), value(j + 1), value(j + 2), value(j + 3)];
            for (h, acc) in acc.chunks_exact_mut(hd).enumerate() {
                let (p, sum) = (&w[h * n + j - first..][..4], sums[h]);
                add_weighted4(acc, [p[0] / sum, p[1] / sum, p[2] / sum, p[3] / sum], v);
            }
            j += 4;
        }
        for j in j..=i {
            for (h, acc) in acc.chunks_exact_mut(hd).enumerate() {
                let p = w[h * n + j - first] / sums[h];
                for (a, v) in acc.iter_mut().zip(value(j)) {
                    *a += p * v;
                }
            }
        }
        // SAFETY: item `it` writes only its own row's heads h0..h1.
        unsafe { out_at.write((r * nh + h0) * hd, acc) };
    };
    let items = t * nkv * slices;
    let work = t * nh * (offset + t) * hd;
    // Chunks of items rather than single ones: each grab is an atomic on a cursor that a
    // thread done with its own segment may be taking from too. At most an eighth of each
    // thread's share per grab (fewer towards the end) still evens out the causal rows' growing
    // lengths.
    let chunk = if work >= 1 << 16 {
        items.div_ceil(8 * threads).max(1)
    } else {
        items
    };
    super::parallel::for_each_chunk(items, chunk, &|range| {
        let (mut w, mut sums, mut acc) = (Vec::new(), Vec::new(), Vec::new());
        range.for_each(|it| item(it, &mut w, &mut sums, &mut acc));
    });
    out
}

/// Into how many runs `cached_attention` splits each kv head's `group` query heads, given
/// `units` (query rows × kv heads) and the pool's `threads`: one run, reading each key and
/// value once for the whole group, unless that leaves threads idle or unevenly loaded. Then
/// the fewest runs that give every thread the same number of items (Gemma 3 decoding on two
/// threads: its one kv head's four heads as two runs of two), or failing that at least one
/// item per thread, and never more runs than heads.
fn head_slices(units: usize, group: usize, threads: usize) -> usize {
    if units >= 4 * threads {
        return 1;
    }
    let group = group.max(1);
    (1..=group)
        .find(|s| units * s >= threads && (units * s).is_multiple_of(threads))
        .or_else(|| (1..=group).find(|s| units * s >= threads))
        .unwrap_or(group)
}

/// The feed-forward gate applied and multiplied by `up`: GELU (Gemma, `gelu_f16`) or SiLU.
/// `up: None` means `gate` is a joint product whose rows hold the gate's values, then up's.
/// SiLU is candle's formula with `fast_exp::exp`, the same bits in both builds, and a loop
/// that vectorizes (libm's `expf` took 9% of Qwen2.5's prefill).
fn gated(gate: &Tensor, up: Option<&Tensor>, gelu: bool) -> Result<Tensor> {
    let g = gate.flatten_all()?.to_vec1::<f32>()?;
    let u = up.map(|u| u.flatten_all()?.to_vec1::<f32>()).transpose()?;
    let mut dims = gate.dims().to_vec();
    let width = dims.last().copied().unwrap_or(1).max(1);
    // Each row's gate values at `gs[r * width..]` and up's at `us[r * width..]`, `d` of each.
    let (gs, us, d) = match &u {
        Some(u) if u.len() == g.len() => (&g[..], &u[..], width),
        None if width % 2 == 0 => (&g[..], &g[width / 2..], width / 2),
        _ => {
            return Err(EngineError::InvalidGguf(
                "the feed-forward gate and up projections differ in size".into(),
            ))
        }
    };
    let mut out = vec![0f32; g.len() / width * d];
    super::parallel::for_each_row(&mut out, d, &|r, row| {
        let pairs = row
            .iter_mut()
            .zip(&gs[r * width..][..d])
            .zip(&us[r * width..][..d]);
        if gelu {
            let table = gelu_table();
            pairs.for_each(|((o, &v), &u)| *o = gelu_f16(v, u, table));
        } else {
            pairs.for_each(|((o, &v), &u)| *o = v / (1.0 + super::fast_exp::exp(-v)) * u);
        }
    });
    if let Some(last) = dims.last_mut() {
        *last = d;
    }
    Ok(Tensor::from_vec(out, dims, &Device::Cpu)?)
}

/// GPT-2's MLP activation, GELU as ggml computes it (`gelu_f16`).
fn gelu(x: &Tensor) -> Result<Tensor> {
    let mut v = x.flatten_all()?.to_vec1::<f32>()?;
    let d = x.dims().last().copied().unwrap_or(1);
    super::parallel::for_each_row(&mut v, d, &|_, row| {
        let table = gelu_table();
        for v in row {
            *v = gelu_f16(*v, 1.0, table);
        }
    });
    Ok(Tensor::from_vec(v, x.shape(), &Device::Cpu)?)
}

/// GELU in its tanh form, with libm's `tanhf` so native and wasm builds agree.
fn gelu_tanh(v: f32) -> f32 {
    const SQRT_TWO_OVER_PI: f32 = 0.797_884_6;
    0.5 * v * (1.0 + libm::tanhf(SQRT_TWO_OVER_PI * v * (1.0 + 0.044715 * v * v)))
}

/// `gelu(v) * g` as ggml's CPU backend computes it (`ggml_vec_geglu_f32`, `ggml_vec_gelu_f32`
/// with `GGML_GELU_FP16`, its default): `v` rounded to f16 and looked up in a table of f16
/// results, outside ±10 the limits. Nearer llama.cpp than computing each value, and a table
/// read instead of a `tanhf` per value, which was a tenth of Gemma 3's prefill. The table holds
/// the f16 results widened to f32 and `f16_bits` rounds without branches, so that a row's loop
/// vectorizes but for the table reads (`half`'s conversions, both ways, took 2.4 times as long).
/// `table` is `gelu_table()`, fetched once per row by the callers rather than once per value.
#[inline(always)]
fn gelu_f16(v: f32, g: f32, table: &[f32]) -> f32 {
    if v <= -10.0 {
        0.0
    } else if v >= 10.0 || v.is_nan() {
        v * g
    } else {
        table[f16_bits(v) as usize] * g
    }
}

fn gelu_table() -> &'static [f32] {
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| {
                let v = half::f16::from_bits(bits).to_f32();
                half::f16::from_f32(gelu_tanh(v)).to_f32()
            })
            .collect()
    })
}

/// `half::f16::from_f32(v).to_bits()` (round to nearest, ties to even) for finite
/// |v| < 65,504, without branches (F. Giesen's `float_to_half_fast3_rtne`): f16 normals round
/// in the integer bits, subnormals in an f32 addition that leaves them in the low mantissa.
/// From 65,536 up, infinities and NaN give wrong bits (NaN: 1.5's), so callers keep them out.
#[inline(always)]
fn f16_bits(v: f32) -> u16 {
    debug_assert!(
        v.abs() < 65_520.0,
        "f16_bits({v}) is outside f16's finite range"
    );
    let a = v.to_bits() & 0x7fff_ffff;
    let sign = (v.to_bits() >> 16) & 0x8000;
    let odd = (a >> 13) & 1;
    let normal = a
        .wrapping_add(((15i32 - 127) as u32) << 23)
        .wrapping_add(0xfff + odd)
        >> 13;
    // 0.5: its exponent puts f16's smallest subnormal at the f32 mantissa's lowest bit.
    const MAGIC: u32 = 126 << 23;
    let subnormal = (f32::from_bits(a) + f32::from_bits(MAGIC))
        .to_bits()
        .wrapping_sub(MAGIC);
    // Below 2^-14 (f32 exponent 113) f16 has no normal.
    ((if a < 113 << 23 { subnormal } else { normal }) | sign) as u16
}

/// Reads a `(rows, vocab)` logits tensor into per-row vectors.
const NAN_SCORES: &str = "the model's next-token scores are not numbers (NaN): its weights \
     are damaged or overflow, so nothing it gives would mean anything";

pub fn logits_rows(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    let rows = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    // Weights that hold NaN (or overflow to it or to ±∞) give NaN scores: every number made from them
    // would be made up (a "perplexity" of exactly the vocabulary size, rank 0 for every token,
    // an end of text drawn at once). A fold rather than `any`, so that it vectorizes: a pass
    // over 262k values is a few hundredths of a millisecond.
    let nan = rows
        .iter()
        .any(|r| r.iter().fold(false, |seen, x| seen | !x.is_finite()));
    if nan {
        return Err(EngineError::Compute(NAN_SCORES.into()));
    }
    Ok(rows)
}

/// Last row of a hidden-state tensor, kept 2-D for the output layer.
pub fn last_row(hidden: &Tensor) -> Result<Tensor> {
    let n = hidden.dim(0)?;
    Ok(hidden.narrow(0, n - 1, 1)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small file may name a head of 2^18 values; the tables and cache it would need at the
    /// page's 4,096 positions are refused, while the real models fit at their whole context.
    #[test]
    fn context_memory_is_bounded_before_anything_is_built() {
        let cfg = |n_layer, n_kv_head, head_dim, context_length| ModelConfig {
            arch: Arch::Qwen2,
            n_layer,
            n_embd: 896,
            n_head: 14,
            n_kv_head,
            head_dim,
            n_ff: 4864,
            vocab_size: 151936,
            context_length,
            rope_base: 1e6,
            norm_eps: 1e-6,
            sliding_window: None,
            sliding_layers: Vec::new(),
            rope_base_swa: 10_000.0,
            rope_scale: 1.0,
            logit_softcap: None,
            attention_scale: 1.0 / (head_dim as f32).sqrt(),
        };
        // Qwen2.5 0.5B at its whole context, and Gemma 3 270M.
        assert!(cfg(24, 2, 64, 32768).check_context_memory(32768).is_ok());
        assert!(cfg(18, 1, 256, 32768).check_context_memory(32768).is_ok());
        let e = cfg(1, 1, 1 << 18, 4096)
            .check_context_memory(4096)
            .unwrap_err()
            .to_string();
        assert!(e.contains("shorter context"), "{e}");
        // A bigger model at a long context natively: its cache grows as it is used.
        assert!(cfg(28, 8, 128, 131072).check_context_memory(131072).is_ok());
    }
    /// A Q8_0 embedding table read in `q8_0::arrange_row`'s layout (the relaxed build's, tied
    /// to the output layer) looks up the same rows, bit for bit, as the stored table, and
    /// refuses an id past the vocabulary the same way.
    #[test]
    fn arranged_embeddings_look_up_the_stored_rows() {
        use candle_core::quantized::QTensor;
        let (n, k) = (37, 32 * 7);
        let x: Vec<f32> = (0..n * k)
            .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / 200.0)
            .collect();
        let t = Tensor::from_vec(x, (n, k), &Device::Cpu).unwrap();
        let qt = QTensor::quantize(&t, GgmlDType::Q8_0).unwrap();
        let bytes = super::super::gguf::test_file(&[("token_embd.weight", &qt)]);
        let src: &[u8] = &bytes;
        let g = GgufFile::parse(&src).unwrap();
        let stored = Embeddings::load(&g, "token_embd.weight", false).unwrap();
        let laid = Embeddings::load(&g, "token_embd.weight", true).unwrap();
        assert!(matches!(laid.table, Table::ArrangedQ8_0(_)));
        let ids = [0u32, 36, 5, 5, 17];
        let bits = |e: &Embeddings| -> Vec<u32> {
            let v = e.lookup(&ids).unwrap().flatten_all().unwrap();
            v.to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        assert_eq!(bits(&laid), bits(&stored));
        assert!(matches!(
            laid.lookup(&[37]),
            Err(EngineError::InvalidInput(_))
        ));
    }

    /// The relaxed build's Q5_0 weights: the file's bytes, laid out by `q5_0::arrange`, in a
    /// tensor of the same shape and type.
    #[test]
    fn arranged_q5_0_holds_the_arranged_bytes() {
        use candle_core::quantized::QTensor;
        let (n, k) = (5, 32 * 9);
        let x: Vec<f32> = (0..n * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let t = Tensor::from_vec(x, (n, k), &Device::Cpu).unwrap();
        let qt = QTensor::quantize(&t, GgmlDType::Q5_0).unwrap();
        let arranged = arranged::<candle_core::quantized::k_quants::BlockQ5_0>(
            &qt,
            super::super::q5_0::arrange,
        )
        .unwrap();
        let mut want = qt.data().unwrap().to_vec();
        super::super::q5_0::arrange(&mut want, k / 32);
        assert_eq!(arranged.data().unwrap().to_vec(), want);
        assert_eq!(arranged.shape(), qt.shape());
        assert_eq!(arranged.dtype(), GgmlDType::Q5_0);
    }

    /// The relaxed build's Q4_1 weights likewise (`q4_1::arrange`), and a tied output layer
    /// over a laid-out type gets its own copy (`laid_out_for_products`) where the build lays
    /// that type out.
    #[test]
    fn arranged_q4_1_holds_the_arranged_bytes() {
        use candle_core::quantized::QTensor;
        let (n, k) = (3, 32 * 6);
        let x: Vec<f32> = (0..n * k)
            .map(|i| ((i * 41 % 97) as f32 - 40.0) / 30.0)
            .collect();
        let t = Tensor::from_vec(x, (n, k), &Device::Cpu).unwrap();
        let qt = QTensor::quantize(&t, GgmlDType::Q4_1).unwrap();
        let laid = arranged::<candle_core::quantized::k_quants::BlockQ4_1>(
            &qt,
            super::super::q4_1::arrange,
        )
        .unwrap();
        let mut want = qt.data().unwrap().to_vec();
        super::super::q4_1::arrange(&mut want, k / 32);
        assert_eq!(laid.data().unwrap().to_vec(), want);
        assert_eq!(laid.dtype(), GgmlDType::Q4_1);
        assert_eq!(
            laid_out_for_products(GgmlDType::Q4_1),
            super::super::q4_1::ARRANGED
        );
        assert!(!laid_out_for_products(GgmlDType::Q8_0));
        // Natively nothing is laid out, so no Q4_1 tensor is requantized for its scales.
        assert!(!unarrangeable(&qt).unwrap());
    }

    /// The relaxed build's Q6_K matrices are widened at load, natively too when a model is
    /// loaded as that build loads it, and their products keep the stored rows' bits (the
    /// portable form, which the relaxed SIMD form equals in the browsers' kernel check).
    #[test]
    fn widened_q6k_weights_keep_the_stored_products() {
        use crate::engine::k_quants;
        use candle_core::quantized::QTensor;
        let (n, k) = (5, 256 * 2);
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 101) as f32 - 50.0) / 40.0)
            .collect();
        let qt = QTensor::quantize(
            &Tensor::from_vec(w, (n, k), &Device::Cpu).unwrap(),
            GgmlDType::Q6K,
        )
        .unwrap();
        let stored = qt.data().unwrap().to_vec();
        let wide = weight_matmul(qt, Kernels::WasmRelaxed).unwrap();
        let x: Vec<f32> = (0..k)
            .map(|i| ((i * 17 % 29) as f32 - 14.0) / 9.0)
            .collect();
        let got = wide
            .forward(&Tensor::from_vec(x.clone(), (1, k), &Device::Cpu).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut a = vec![0u8; 2 * k_quants::ACT_BLOCK_BYTES];
        crate::engine::act_quant::q8_k(&x, &mut a);
        let act = k_quants::Activation::new(&a);
        let row = 2 * k_quants::Q6K_BLOCK_BYTES;
        for (c, g) in got.iter().enumerate() {
            let want = k_quants::q6k_portable(&stored[c * row..(c + 1) * row], [&act])[0];
            assert_eq!(g.to_bits(), want.to_bits(), "row {c}");
        }
        assert!(Kernels::WasmRelaxed.widens_q6k() && Kernels::Native.widens_q6k());
        assert!(!Kernels::Wasm.widens_q6k());
        // A tied output layer keeps sharing a Q6_K table's stored blocks.
        assert!(!laid_out_for_products(GgmlDType::Q6K));
    }

    /// `f16_bits` against `half` on a sweep of every 257th f32 below 65,504 in size, each f16
    /// rounding tie (the halfway points between neighbouring f16 values, even and odd
    /// mantissas, subnormal and normal) and one f32 step either side of it; and `gelu_f16` on
    /// the specials it routes round the table.
    #[test]
    fn f16_rounding_and_gelu_match_half() {
        let check = |v: f32| {
            if v.is_finite() && v.abs() < 65504.0 {
                assert_eq!(f16_bits(v), half::f16::from_f32(v).to_bits(), "{v:e}");
            }
        };
        (0..=0x477f_e000u32).step_by(257).for_each(|b| {
            check(f32::from_bits(b));
            check(-f32::from_bits(b));
        });
        for h in 0..0x7bffu16 {
            let lo = half::f16::from_bits(h).to_f32() as f64;
            let hi = half::f16::from_bits(h + 1).to_f32() as f64;
            let tie = ((lo + hi) / 2.0) as f32;
            for v in [
                tie,
                f32::from_bits(tie.to_bits() - 1),
                f32::from_bits(tie.to_bits() + 1),
            ] {
                check(v);
                check(-v);
            }
        }
        let old = |v: f32| half::f16::from_f32(gelu_tanh(half::f16::from_f32(v).to_f32())).to_f32();
        for v in [0.0f32, -0.0, 1e-8, -3.3e-6, 0.5, -1.25, 9.99, -9.99] {
            assert_eq!(
                gelu_f16(v, 2.0, gelu_table()).to_bits(),
                (old(v) * 2.0).to_bits(),
                "{v}"
            );
        }
        assert_eq!(gelu_f16(-10.0, 2.0, gelu_table()), 0.0);
        assert_eq!(gelu_f16(12.0, 2.0, gelu_table()), 24.0);
        assert!(gelu_f16(f32::NAN, 2.0, gelu_table()).is_nan());
        assert_eq!(gelu_f16(f32::INFINITY, 1.0, gelu_table()), f32::INFINITY);
    }
    use crate::engine::test_data::values as random;

    /// The RoPE tables hold cos and sin of p·base^(−2i/d), each angle in f64: sampled at the
    /// first, the last and some middle pairs, at positions from 0 to the table's last.
    #[test]
    fn rope_tables_are_the_angles_in_f64() {
        let (hd, base, max_pos) = (16, 1_000_000.0f32, 4096);
        let rope = Rope::new(hd, base, 1.0, max_pos, false, None).unwrap();
        assert_eq!(rope.cos.len(), max_pos * hd / 2);
        for p in [0, 1, 2, 777, max_pos - 1] {
            for i in [0, 1, 5, hd / 2 - 1] {
                let a = p as f64 * libm::pow(base as f64, -2.0 * i as f64 / hd as f64);
                let at = p * hd / 2 + i;
                assert_eq!(rope.cos[at].to_bits(), (libm::cos(a) as f32).to_bits());
                assert_eq!(rope.sin[at].to_bits(), (libm::sin(a) as f32).to_bits());
            }
        }
    }

    /// Llama 3's factors divide each frequency; factors of the wrong count, or not above 0
    /// (an angle of infinity), are refused.
    #[test]
    fn rope_frequency_factors_divide_the_frequencies() {
        let (hd, base) = (8, 10_000.0f32);
        let factors = [0.5f32, 1.0, 4.0, 8.0];
        let rope = Rope::new(hd, base, 1.0, 64, true, Some(&factors)).unwrap();
        for (i, f) in factors.iter().enumerate() {
            let a = 63.0 * libm::pow(base as f64, -2.0 * i as f64 / hd as f64) / *f as f64;
            assert_eq!(rope.cos[63 * hd / 2 + i], libm::cos(a) as f32);
        }
        for bad in [
            &[1.0f32, 1.0, 1.0][..],
            &[1.0, 0.0, 1.0, 1.0],
            &[1.0, f32::NAN, 1.0, 1.0],
        ] {
            assert!(
                Rope::new(hd, base, 1.0, 4, true, Some(bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    /// The in-place per-head norm and RoPE give candle's `rms_norm`, `rope` and `rope_i` to
    /// the bit, on the heads-major layout candle wants, with the pool on.
    #[test]
    fn heads_in_place_equal_candles_norm_and_rope() {
        crate::engine::parallel::test_pool();
        // 700 × 48 values: enough for `for_each_row` to hand rows to the helpers.
        let (t, nh, hd, offset) = (700, 3, 16, 5);
        let x = random(t * nh * hd, 7);
        let norm = RmsNorm {
            weight: random(hd, 8),
            eps: 1e-6,
        };
        for interleaved in [false, true] {
            let rope = Rope::new(hd, 10_000.0, 1.0, offset + t, interleaved, None).unwrap();
            let mut ours = x.clone();
            crate::engine::parallel::for_each_row(&mut ours, nh * hd, &|r, row| {
                for head in row.chunks_exact_mut(hd) {
                    norm.normalize(head);
                    rope.rotate(head, offset + r);
                }
            });
            let xt = Tensor::from_vec(x.clone(), (1, t, nh, hd), &Device::Cpu)
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap();
            let w = Tensor::from_vec(norm.weight.clone(), hd, &Device::Cpu).unwrap();
            let normed = candle_nn::ops::rms_norm(&xt, &w, norm.eps).unwrap();
            let table = |v: &[f32]| {
                Tensor::from_vec(v.to_vec(), (offset + t, hd / 2), &Device::Cpu)
                    .unwrap()
                    .narrow(0, offset, t)
                    .unwrap()
            };
            let (cos, sin) = (table(&rope.cos), table(&rope.sin));
            let theirs = if interleaved {
                candle_nn::rotary_emb::rope_i(&normed, &cos, &sin)
            } else {
                candle_nn::rotary_emb::rope(&normed, &cos, &sin)
            }
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&ours), bits(&theirs), "interleaved: {interleaved}");
        }
    }

    /// Pages fill in order across appends of any size, and truncating frees whole pages only.
    #[test]
    fn kv_cache_pages_hold_positions_in_order() {
        let (heads, hd) = (2, 3);
        let per = heads * hd;
        let mut kv = KvCache::new(heads, hd);
        let total = 2 * KV_PAGE + 5;
        let keys: Vec<f32> = (0..total * per).map(|i| i as f32).collect();
        let values: Vec<f32> = keys.iter().map(|x| -x).collect();
        for (a, b) in [
            (0, 1),
            (1, KV_PAGE),
            (KV_PAGE, KV_PAGE + 1),
            (KV_PAGE + 1, total),
        ] {
            kv.append(&keys[a * per..b * per], &values[a * per..b * per]);
        }
        assert_eq!(kv.len, total);
        assert_eq!(kv.bytes(), 2 * 3 * KV_PAGE * per * 4);
        for pos in 0..total {
            for g in 0..heads {
                assert_eq!(kv.key(pos, g), &keys[pos * per + g * hd..][..hd]);
                assert_eq!(kv.value(pos, g), &values[pos * per + g * hd..][..hd]);
            }
        }
        kv.truncate(KV_PAGE + 1);
        assert_eq!(kv.bytes(), 2 * 2 * KV_PAGE * per * 4);
        kv.append(&[7.0; 6], &[8.0; 6]);
        assert_eq!(kv.key(KV_PAGE + 1, 1), &[7.0; 3]);
        assert_eq!(kv.value(KV_PAGE, 1), &values[KV_PAGE * per + hd..][..hd]);
        kv.truncate(0);
        assert_eq!((kv.len, kv.bytes()), (0, 0));
    }

    /// The cache-reading attention against a plain f64 reference with an explicit mask: causal,
    /// grouped kv heads, a sliding window, and a chunk that starts after earlier positions; and,
    /// however a kv head's query heads are split into runs, the bits of one head at a time.
    #[test]
    fn cached_attention_equals_masked_softmax_attention() {
        for (n_head, n_kv_head, head_dim) in [(6, 2, 8), (4, 1, 256), (9, 3, 64), (5, 5, 12)] {
            attention_case(n_head, n_kv_head, head_dim);
        }
    }

    fn attention_case(n_head: usize, n_kv_head: usize, head_dim: usize) {
        let cfg = ModelConfig {
            arch: Arch::Llama,
            n_layer: 1,
            n_embd: 0,
            n_head,
            n_kv_head,
            head_dim,
            n_ff: 0,
            vocab_size: 0,
            context_length: 64,
            rope_base: 10_000.0,
            norm_eps: 1e-6,
            sliding_window: None,
            sliding_layers: Vec::new(),
            rope_base_swa: 10_000.0,
            rope_scale: 1.0,
            logit_softcap: None,
            attention_scale: 1.0 / (head_dim as f32).sqrt(),
        };
        let (nh, nkv, hd) = (cfg.n_head, cfg.n_kv_head, cfg.head_dim);
        // More positions than a page, added in uneven steps, so reads cross page edges.
        let total = KV_PAGE + 11;
        let (keys, values) = (random(total * nkv * hd, 1), random(total * nkv * hd, 2));
        let mut kv = KvCache::new(nkv, hd);
        for (a, b) in [(0, 5), (5, 6), (6, KV_PAGE + 3), (KV_PAGE + 3, total)] {
            let r = a * nkv * hd..b * nkv * hd;
            kv.append(&keys[r.clone()], &values[r]);
        }
        for (offset, window) in [(0, None), (4, None), (0, Some(3)), (6, Some(4))] {
            let t = total - offset;
            let q = random(t * nh * hd, 3 + offset as u32);
            let got = cached_attention(&kv, &q, &cfg, offset, window);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for slices in 1..=nh / nkv {
                let split = attention_in_slices(&kv, &q, &cfg, offset, window, slices);
                assert_eq!(
                    bits(&split),
                    bits(&got),
                    "{nh}/{nkv} heads in {slices} runs"
                );
            }
            // The f32 arithmetic one position at a time, as it was before positions were taken
            // four at a time: the same bits.
            for r in 0..t {
                let i = offset + r;
                let first = window.map_or(0, |w| (i + 1).saturating_sub(w));
                for h in 0..nh {
                    let g = h / (nh / nkv);
                    let qh = &q[(r * nh + h) * hd..][..hd];
                    let at = |m: &[f32], j: usize| m[(j * nkv + g) * hd..][..hd].to_vec();
                    let scale = 1.0 / (hd as f32).sqrt();
                    let mut w: Vec<f32> = (first..=i)
                        .map(|j| dot_f32(qh, &at(&keys, j)) * scale)
                        .collect();
                    let max = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    w.iter_mut()
                        .for_each(|x| *x = crate::engine::fast_exp::exp(*x - max));
                    let sum: f32 = w.iter().sum();
                    let mut acc = vec![0f32; hd];
                    for (p, j) in w.iter().zip(first..=i) {
                        for (a, v) in acc.iter_mut().zip(at(&values, j)) {
                            *a += p / sum * v;
                        }
                    }
                    let have = &got[(r * nh + h) * hd..][..hd];
                    assert_eq!(bits(have), bits(&acc), "offset {offset} row {r} head {h}");
                }
            }
            for r in 0..t {
                let i = offset + r;
                for h in 0..nh {
                    let g = h / (nh / nkv);
                    let visible: Vec<usize> = (0..total)
                        .filter(|&j| j <= i && window.is_none_or(|w| i - j < w))
                        .collect();
                    let scores: Vec<f64> = visible
                        .iter()
                        .map(|&j| {
                            (0..hd)
                                .map(|d| {
                                    q[(r * nh + h) * hd + d] as f64
                                        * keys[(j * nkv + g) * hd + d] as f64
                                })
                                .sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for d in 0..hd {
                        let want: f64 = visible
                            .iter()
                            .zip(&e)
                            .map(|(&j, p)| p / z * values[(j * nkv + g) * hd + d] as f64)
                            .sum();
                        let have = got[(r * nh + h) * hd + d] as f64;
                        assert!(
                            (have - want).abs() < 1e-5,
                            "offset {offset} window {window:?} row {r} head {h} dim {d}: {have} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// Decoding (one query row) splits a kv head's heads only as far as the threads need:
    /// Gemma 3 (4 heads on 1 kv head) into two runs on two threads, none on one; SmolLM2 (3 kv
    /// heads of 3) into runs that give two threads the same number of items; Qwen2.5 (2 of 7)
    /// not at all on two threads. Prefill, with rows enough, never splits.
    /// A layer's q/k/v as llama.cpp's `create_tensor_qkv` reads them, and nothing beside.
    #[test]
    fn qkv_tensors_have_a_place_only_in_llama_cpps_combinations() {
        let place = |arch: Arch, layer: &[&str], name: &str| {
            let has = |n: &str| layer.iter().any(|t| format!("blk.0.{t}") == n);
            arch.has_place_for(&format!("blk.0.{name}"), 2, &has)
        };
        let split = ["attn_q.weight", "attn_k.weight", "attn_v.weight"];
        let fused = ["attn_qkv.weight"];
        let fused_bias = ["attn_qkv.weight", "attn_qkv.bias"];
        for arch in [Arch::Llama, Arch::Qwen2, Arch::Qwen3, Arch::Gemma3] {
            assert!(place(arch, &split, "attn_q.weight") && place(arch, &split, "attn_v.bias"));
            assert!(!place(arch, &split, "attn_qkv.bias"), "{arch:?}");
            assert!(place(arch, &fused, "attn_qkv.weight") && place(arch, &fused, "attn_k.bias"));
            assert!(!place(arch, &fused, "attn_q.weight"), "{arch:?}");
            assert!(place(arch, &fused_bias, "attn_qkv.bias"));
            assert!(!place(arch, &fused_bias, "attn_q.bias"), "{arch:?}");
        }
        // Past the layers the metadata counts, or not a layer's name as llama.cpp writes it.
        assert!(!Arch::Llama.has_place_for("blk.2.attn_norm.weight", 2, &|_| false));
        assert!(!Arch::Llama.has_place_for("blk.01.attn_norm.weight", 2, &|_| false));
        // Heads llama.cpp reads for other uses.
        assert!(Arch::Qwen3.has_place_for("cls.output.weight", 2, &|_| false));
        assert!(Arch::Gemma3.has_place_for("dense_2.weight", 2, &|_| false));
        assert!(!Arch::Llama.has_place_for("cls.output.weight", 2, &|_| false));
        assert!(!Arch::Qwen2.has_place_for("output.bias", 2, &|_| false));
    }

    #[test]
    fn head_slices_split_only_for_idle_threads() {
        // (query rows × kv heads, heads per kv head, threads) → runs
        let cases = [
            ((1, 4, 1), 1),
            ((1, 4, 2), 2),
            ((1, 4, 4), 4),
            ((1, 4, 8), 4),
            ((3, 3, 1), 1),
            ((3, 3, 2), 2),
            ((3, 3, 4), 2),
            ((2, 7, 2), 1),
            ((2, 7, 3), 3),
            ((2, 1, 8), 1),
            ((64, 4, 8), 1),
            ((0, 4, 2), 4),
        ];
        for ((units, group, threads), runs) in cases {
            assert_eq!(
                head_slices(units, group, threads),
                runs,
                "{units} {group} {threads}"
            );
        }
    }
}
