//! The inference engine: plain Rust, no browser or OS types, so the CLI and the page's Web
//! Worker run the same code. Start with [`Engine::from_bytes`], then [`Engine::start`] and
//! [`Engine::step`] for streaming generation, or [`Engine::score`] for measuring a text.

pub mod act_quant;
pub mod chat;
pub mod clock;
pub mod dot_form;
pub mod error;
pub mod explicit_f64;
pub mod fast_exp;
pub mod gguf;
pub mod gguf_header;
pub mod iq4;
pub mod k_quants;
pub mod kernel_check;
pub mod model;
pub mod packed;
pub mod parallel;
pub mod profile;
pub mod q4_1;
pub mod q5_0;
pub mod q8_0;
pub mod regex_unicode;
pub mod sampler;
pub mod spm;
pub mod stats;
#[cfg(test)]
mod test_data;
pub mod tokenizer;
pub mod utf8;
pub mod weight;

use serde::{Deserialize, Serialize};

pub use error::{EngineError, Result};
pub use sampler::SamplingParams;
pub use stats::{Alternative, RankBuckets, Summary};

use gguf::GgufFile;
use model::{last_row, logits_rows, Model};
use sampler::Rng;
use stats::{summarize, token_stats, TokenStats};
use tokenizer::Tokenizer;
use utf8::Utf8Stream;

/// How many alternatives each token reports.
pub const TOP_ALTERNATIVES: usize = 5;

/// The SIMD form the products were compiled for. The wasm builds' two forms give the same
/// bits (`q8_0`), and native builds give the relaxed one's with AVX2 (`q8_0::native_rows`).
pub const KERNELS: &str = if cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) {
    "relaxed-simd"
} else if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
    "simd128"
} else if cfg!(target_arch = "wasm32") {
    "scalar"
} else {
    "native"
};
/// Default cap on positions held (KV cache, rope tables): enough for a playground, small
/// enough for wasm memory.
pub const DEFAULT_MAX_POSITIONS: usize = 4096;
/// Prompts are run through the model in chunks of this many tokens, bounding the attention
/// matrix for long prompts.
const PREFILL_CHUNK: usize = 256;
/// Tokens of context a scored text gets at most: longer texts are scored in half-overlapping
/// windows of this size. One value for the CLI, the page, the lab and Binoculars.
pub const SCORE_WINDOW: usize = 1024;
/// Rows of logits materialised at once while scoring (Gemma 3's vocabulary is 262k wide).
const SCORE_ROW_BLOCK: usize = 32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub architecture: String,
    pub name: String,
    pub parameters: u64,
    /// Tensor counts by type, most common first, e.g. "Q4_1 ×210, F32 ×61".
    pub tensor_types: String,
    pub vocab_size: usize,
    pub context_length: usize,
    pub max_positions: usize,
    pub n_layer: usize,
    pub n_embd: usize,
    pub add_bos: bool,
    pub bos_token: Option<u32>,
    pub eos_token: Option<u32>,
    /// "gguf" when the file carries its own chat template, else the fallback used.
    pub chat_template_source: String,
    /// A hash of every token's bytes, in id order: two models with the same fingerprint share
    /// a vocabulary, so their distributions can be compared position by position (Binoculars).
    #[serde(default)]
    pub vocab_fingerprint: String,
}

pub struct Engine {
    model: Model,
    tokenizer: Tokenizer,
    chat_template: String,
    info: ModelInfo,
    /// What a chat template's `strftime_now` answers; natively the UTC time when unset.
    clock: Option<clock::Clock>,
}

/// `copies` copies of a prompt (prompt repetition, `<QUERY><QUERY>`), a line break between
/// two copies unless the text already ends in white space, so that a question does not run
/// into its copy ("…is?The capital…"). The same rule for the page's pane, `--repeat-prompt`
/// and the evaluation's repeated queries and file contexts.
pub fn repeat_text(text: &str, copies: usize) -> String {
    let sep = if text.ends_with(char::is_whitespace) || text.is_empty() {
        ""
    } else {
        "\n"
    };
    vec![text; copies.max(1)].join(sep)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerateRequest {
    pub prompt: String,
    /// Wrap the prompt in the model's chat template as one user message.
    pub chat: bool,
    /// Send the query twice (`<QUERY><QUERY>`, [`repeat_text`]), after Leviathan, Kalman and
    /// Matias, "Prompt Repetition Improves Non-Reasoning LLMs".
    pub repeat_prompt: bool,
    pub max_tokens: usize,
    /// Keep going past EOS (benchmarks want a fixed token count).
    pub ignore_eos: bool,
    pub sampling: SamplingParams,
    /// Output ids taken as given before any is sampled: a fork replays its parent's tokens up
    /// to the branch point, then the alternative chosen there, and samples on from it. Each
    /// gets the numbers of the distribution it was taken from, as a sampled token does.
    pub forced: Vec<u32>,
    /// Text taken as given after `forced`, tokenized as plain text (a fork to a continuation
    /// the user typed instead of one of the listed alternatives).
    pub forced_text: String,
    /// A conversation (system, user and assistant turns, the last one the user's): when not
    /// empty it is the prompt, rendered with the chat template, and `prompt`, `chat` and
    /// `repeat_prompt` are not used. The oldest turns are left out when it would not fit.
    pub messages: Vec<chat::Message>,
    /// Start from the KV cache of whatever ran last, as far as its ids equal this prompt's
    /// (a conversation's next turn recomputes only the new part).
    pub reuse_cache: bool,
    /// With `reuse_cache`, take at most this many positions from the cache: a fork of a
    /// reply reuses what the reply itself reused and recomputes the rest as the reply did,
    /// so the tokens it replays get the reply's own numbers (a one-token recompute of the
    /// prompt's end rounds otherwise than the reply's batched prefill, by up to 0.1 nats in
    /// the browser's kernels).
    pub reuse_at_most: Option<usize>,
}

impl Default for GenerateRequest {
    fn default() -> Self {
        GenerateRequest {
            prompt: String::new(),
            chat: false,
            repeat_prompt: false,
            max_tokens: 128,
            ignore_eos: false,
            sampling: SamplingParams::default(),
            forced: Vec::new(),
            forced_text: String::new(),
            messages: Vec::new(),
            reuse_cache: false,
            reuse_at_most: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// `max_tokens` reached.
    Length,
    /// EOS or an end-of-turn token was drawn.
    Eos,
    /// The context cap was reached first.
    Context,
    /// The caller stopped it (the page's Stop); the engine never sets this itself.
    Stopped,
}

impl StopReason {
    /// The one text form: CLI JSON, the page's exports, data attributes.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Length => "length",
            StopReason::Eos => "eos",
            StopReason::Context => "context",
            StopReason::Stopped => "stopped",
        }
    }

    /// The form exports write, the CLI's `--json` and the page's JSON alike: CONTRACT.md's
    /// reasons are `length` and `eos`, so a context filled up is a length stop (as llama.cpp's
    /// server and OpenAI's API call it), told apart by the second value, `context_full`.
    pub fn reported(self) -> (&'static str, bool) {
        match self {
            StopReason::Context => (StopReason::Length.as_str(), true),
            other => (other.as_str(), false),
        }
    }

    /// What a person reads.
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Length => "reached max tokens",
            StopReason::Eos => "the model ended its answer",
            StopReason::Context => "context full",
            StopReason::Stopped => "stopped",
        }
    }
}

/// One token with what the model thought of it: generated, or scored in a given text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Token {
    pub id: u32,
    /// This token's own text (may be part of a character).
    pub text: String,
    /// Text that became complete with this token; concatenating these (and a finished run's
    /// held-back tail) gives the output.
    pub piece: String,
    #[serde(with = "explicit_f64")]
    pub entropy: f64,
    #[serde(with = "explicit_f64")]
    pub surprisal: f64,
    pub rank: usize,
    pub top: Vec<Alternative>,
    /// Σ p (ln p)² at this position, for Fast-DetectGPT over any subset of tokens.
    #[serde(skip)]
    pub second_moment: f64,
}

/// A generation in progress. Owned by the caller, so a worker can hold it between messages and
/// drop it on "stop"; all model state it needs lives in the engine's KV cache.
pub struct Generation {
    pub prompt_ids: Vec<u32>,
    /// Prompt ids already run through the model; `step` needs all of them.
    prefilled: usize,
    history: Vec<u32>,
    next_logits: Vec<f32>,
    params: SamplingParams,
    rng: Rng,
    utf8: Utf8Stream,
    max_tokens: usize,
    ignore_eos: bool,
    /// Some token is no end of generation, so `ignore_eos` can keep them all from being drawn.
    can_mask_eog: bool,
    forced: Vec<u32>,
    /// Prompt tokens whose keys and values came from the cache (`reuse_cache`).
    pub reused: usize,
    /// Oldest conversation turns left out to fit the context.
    pub left_out: usize,
    pub generated: Vec<u32>,
    pub stats: Vec<TokenStats>,
    pub stop_reason: Option<StopReason>,
}

impl Generation {
    /// Whether the whole prompt has been run through the model.
    pub fn prefilled(&self) -> bool {
        self.prefilled == self.prompt_ids.len()
    }

    /// Prompt tokens run through the model so far.
    pub fn prefilled_tokens(&self) -> usize {
        self.prefilled
    }

    /// Text still held back by the UTF-8 stream; call once generation has stopped.
    pub fn flush(&mut self) -> String {
        self.utf8.finish()
    }

    pub fn summary(&self) -> Summary {
        summarize(&self.stats)
    }
}

/// One continuation's log-likelihood (`Engine::logliks`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ChoiceLoglik {
    /// Σ ln p of the continuation's tokens.
    #[serde(with = "explicit_f64")]
    pub loglik: f64,
    pub tokens: usize,
    /// Every continuation token was the most likely one (lm-eval's `is_greedy`).
    pub greedy: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Logliks {
    pub choices: Vec<ChoiceLoglik>,
    /// Positions run through the model, and how many running each request alone would take.
    pub forward_tokens: usize,
    pub forward_tokens_without_sharing: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScoreResult {
    /// Every input id, BOS included when the model adds one.
    pub ids: Vec<u32>,
    /// The text of the ids that were context only (the first one has nothing before it).
    pub prefix: String,
    /// The bytes of those ids: more than `prefix` holds when the first token is part of a
    /// character, whose bytes then open the next token's piece.
    #[serde(skip)]
    pub prefix_bytes: usize,
    /// One entry per predicted token: all ids but the first. Their pieces continue `prefix`,
    /// and the last one holds any incomplete character at the end.
    pub tokens: Vec<Token>,
    #[serde(flatten)]
    pub summary: Summary,
}

/// The tokenizer alone, from a GGUF's metadata, without reading a weight: what tokenizing
/// needs, so that a vocabulary-only file (as llama.cpp's tokenizer tests use) works too, and a
/// model of an architecture this engine cannot run still tokenizes.
pub fn tokenizer_from_source(src: &dyn gguf::ByteSource) -> Result<Tokenizer> {
    Tokenizer::from_gguf(&GgufFile::parse(src)?)
}

/// Whether ChatML's turn markers are tokens of their own in this vocabulary. A vocabulary that
/// cannot encode them says yes: ChatML, as before, and the load goes on.
fn has_chatml_tokens(tokenizer: &Tokenizer) -> bool {
    tokenizer
        .encode("<|im_start|><|im_end|>", true)
        .map_or(true, |ids| ids.len() == 2)
}

impl Engine {
    /// Loads a GGUF from its bytes (the CLI reads a file).
    pub fn from_bytes(bytes: &[u8], max_positions: usize) -> Result<Self> {
        Self::from_source(&bytes, max_positions)
    }

    /// Loads a GGUF from wherever its bytes are (the page keeps them in JS memory).
    pub fn from_source(src: &dyn gguf::ByteSource, max_positions: usize) -> Result<Self> {
        Self::from_source_for(src, max_positions, model::Kernels::BUILD)
    }

    /// `from_source`, preparing the weights for `kernels` rather than this build's own.
    pub fn from_source_for(
        src: &dyn gguf::ByteSource,
        max_positions: usize,
        kernels: model::Kernels,
    ) -> Result<Self> {
        let mut gguf = GgufFile::parse(src)?;
        model::check_not_split(&gguf)?;
        let arch = gguf.string("general.architecture")?;
        model::Arch::from_name(&arch)?;
        model::check_file(&gguf)?;
        let tokenizer = Tokenizer::from_gguf(&gguf)?;
        gguf.drop_vocabulary();
        let model = Model::load(&gguf, max_positions, kernels)?;
        if tokenizer.vocab_size() != model.config.vocab_size {
            return Err(EngineError::InvalidGguf(format!(
                "vocabulary of {} tokens but the model expects {}",
                tokenizer.vocab_size(),
                model.config.vocab_size
            )));
        }
        // A template of another type is named, not replaced by a built-in one.
        let (chat_template, source) = match gguf.string_opt("tokenizer.chat_template")?.ok_or(()) {
            Ok(t) => (t, "gguf"),
            Err(_) if arch == "gemma3" => (chat::GEMMA3_TEMPLATE.to_string(), "gemma3 (built in)"),
            // llama.cpp falls back on ChatML; a vocabulary without its tokens (GPT-2's) reads
            // them as text, and with no end of a turn a reply ran to the token limit writing
            // turns of its own. Such a base model continues the messages as plain text.
            Err(_) if !has_chatml_tokens(&tokenizer) => (
                chat::PLAIN_TEMPLATE.to_string(),
                "none (the messages as plain text: the file has neither a template nor ChatML's tokens)",
            ),
            Err(_) => (chat::CHATML_TEMPLATE.to_string(), "chatml (built in)"),
        };
        let mut by_type: std::collections::BTreeMap<String, usize> = Default::default();
        let mut parameters = 0u64;
        for (name, t) in &gguf.content.tensor_infos {
            *by_type
                .entry(gguf.type_name(name, t).to_string())
                .or_default() += 1;
            parameters = parameters.saturating_add(t.shape.elem_count() as u64);
        }
        let mut by_type: Vec<_> = by_type.into_iter().collect();
        by_type.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let tensor_types = by_type
            .iter()
            .map(|(t, n)| format!("{t} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let cfg = &model.config;
        let info = ModelInfo {
            architecture: arch,
            name: gguf.string("general.name").unwrap_or_default(),
            parameters,
            tensor_types,
            vocab_size: cfg.vocab_size,
            context_length: cfg.context_length,
            max_positions: model.max_positions(),
            n_layer: cfg.n_layer,
            n_embd: cfg.n_embd,
            add_bos: tokenizer.add_bos,
            bos_token: tokenizer.bos,
            eos_token: tokenizer.eos,
            chat_template_source: source.to_string(),
            vocab_fingerprint: tokenizer.fingerprint(),
        };
        Ok(Engine {
            model,
            tokenizer,
            chat_template,
            info,
            clock: None,
        })
    }

    /// The time chat templates are told it is (`strftime_now`): the page gives its local
    /// time before each job; natively the UTC time is read when none was given.
    pub fn set_clock(&mut self, now: Option<clock::Clock>) {
        self.clock = now;
    }

    /// The heap the KV cache takes now (`Model::kv_cache_bytes`).
    pub fn kv_cache_bytes(&self) -> usize {
        self.model.kv_cache_bytes()
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// "4096 positions this model holds here", and where the caller set fewer than the model
    /// was trained for, that number too: what to raise is the caller's setting, not the model.
    fn positions_here(&self) -> String {
        let cap = self.model.max_positions();
        let trained = self.model.config.context_length;
        if cap < trained {
            format!("{cap} positions set aside here (the model was trained for {trained})")
        } else {
            format!("{cap} positions this model holds")
        }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Plain-text tokenization: no BOS/EOS, special-token text stays text.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text, false)
    }

    /// The prompt as token ids: optional repetition, optional chat template, BOS per the GGUF.
    pub fn prompt_ids(&self, prompt: &str, chat: bool, repeat: bool) -> Result<Vec<u32>> {
        let query = repeat_text(prompt, if repeat { 2 } else { 1 });
        if !chat {
            return self.tokenizer.encode_prompt(&query, false);
        }
        self.render_ids(&[chat::Message::user(&query)])
    }

    /// Runs the prompt through the model and returns a generation ready to step.
    pub fn start(&mut self, req: &GenerateRequest) -> Result<Generation> {
        let mut g = self.begin(req)?;
        while !self.prefill_step(&mut g)? {}
        Ok(g)
    }

    /// Like [`Engine::start`] for callers that already hold token ids (benchmarks, tests);
    /// `req.prompt`, `chat` and `repeat_prompt` are ignored.
    pub fn start_with_ids(
        &mut self,
        prompt_ids: Vec<u32>,
        req: &GenerateRequest,
    ) -> Result<Generation> {
        let mut g = self.begin_with_ids(prompt_ids, req)?;
        while !self.prefill_step(&mut g)? {}
        Ok(g)
    }

    /// A generation whose prompt is not yet run: the caller runs it with
    /// [`Engine::prefill_step`], one chunk at a time, so a long prompt can be stopped.
    pub fn begin(&mut self, req: &GenerateRequest) -> Result<Generation> {
        if !req.messages.is_empty() {
            let (ids, left_out) = self.conversation_ids(&req.messages, req.max_tokens)?;
            let mut g = self.begin_with_ids(ids, req)?;
            g.left_out = left_out;
            return Ok(g);
        }
        // An empty prompt is llama.cpp's unconditional sampling where the file adds a BOS (GPT-2's
        // samples start so); without one there is nothing to run, and an empty chat message
        // is taken for a mistake.
        if req.prompt.is_empty() && (req.chat || !self.tokenizer.add_bos) {
            return Err(EngineError::InvalidInput(if req.chat {
                "the prompt is empty".into()
            } else {
                "the prompt is empty, and this model adds no BOS token to start from".into()
            }));
        }
        let prompt_ids = self.prompt_ids(&req.prompt, req.chat, req.repeat_prompt)?;
        self.begin_with_ids(prompt_ids, req)
    }

    /// A conversation's prompt ids (chat template, BOS per the GGUF) and how many of its
    /// oldest turns were left out so that the prompt and `max_new` more tokens fit the
    /// context. A system turn stays; turns go from the front, a user turn with the reply
    /// after it, until it fits; the last user turn always stays, and if it alone cannot fit
    /// that is an error rather than a cut message.
    pub fn conversation_ids(
        &self,
        messages: &[chat::Message],
        max_new: usize,
    ) -> Result<(Vec<u32>, usize)> {
        check_roles(messages)?;
        let cap = self.model.max_positions();
        let system = messages.first().filter(|m| m.role == "system").cloned();
        let turns = &messages[usize::from(system.is_some())..];
        if turns.last().is_none_or(|m| m.role != "user") {
            return Err(EngineError::InvalidInput(
                "a conversation must end with a user message".into(),
            ));
        }
        // Where the kept part may start: the first turn, or any later user turn (a reply is
        // never kept without the question it answers).
        let starts: Vec<usize> = std::iter::once(0)
            .chain((1..turns.len()).filter(|&i| turns[i].role == "user"))
            .collect();
        // A token stands for at most the vocabulary's longest piece of text (escaped control
        // text is shorter than what it stands for, hence the margin): what cannot fit is known
        // from its length, without tokenizing megabytes three times over.
        let per_token = 4 * self.tokenizer.longest_token_bytes().max(1);
        let at_least =
            |ms: &[chat::Message]| ms.iter().map(|m| m.content.len()).sum::<usize>() / per_token;
        let room = max_new.min(cap / 4);
        let fit = |first: usize| -> Result<Option<Vec<u32>>> {
            let kept: Vec<chat::Message> = system.iter().chain(&turns[first..]).cloned().collect();
            if at_least(&kept) + room >= cap {
                return Ok(None);
            }
            let ids = self.render_ids(&kept)?;
            Ok((ids.len() + room < cap).then_some(ids))
        };
        if let Some(ids) = fit(0)? {
            return Ok((ids, 0));
        }
        // Fewer turns never take more positions, so the first start that fits is found by
        // bisection: a few renders even for a long (or hostile) conversation, not one per turn.
        let last = starts.len() - 1;
        let Some(mut best) = fit(starts[last])? else {
            let kept: Vec<chat::Message> = system
                .iter()
                .chain(&turns[starts[last]..])
                .cloned()
                .collect();
            let needs = match at_least(&kept) {
                n if n >= cap => format!("at least {n}"),
                _ => self.render_ids(&kept)?.len().to_string(),
            };
            // The system prompt is kept whatever else goes: where it takes the room, it is
            // what to shorten.
            let system_len = system.as_ref().map_or(0, |m| m.content.len());
            let turns_len: usize = turns[starts[last]..].iter().map(|m| m.content.len()).sum();
            let (what, shorten) = if system_len > turns_len {
                (
                    "the system prompt and the last message need",
                    "shorten the system prompt",
                )
            } else {
                ("the last message alone needs", "shorten it")
            };
            return Err(EngineError::InvalidInput(format!(
                "{what} {needs} of the {}; {shorten}",
                self.positions_here()
            )));
        };
        let (mut lo, mut hi) = (0, last); // starts[lo] does not fit; starts[hi] fits
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            match fit(starts[mid])? {
                Some(ids) => {
                    hi = mid;
                    best = ids;
                }
                None => lo = mid,
            }
        }
        // Leaving out only as much as the next turn needs would move the kept part's start at
        // every turn once the context is full, and then no turn could reuse the last one's KV
        // cache (each recomputed the whole prompt: 26-30 s a turn for SmolLM2 at 4096). So the
        // cut is snapped forward to a grid of a third of the context, counted over the left-out
        // turns (their tokens, plus a template's usual few a turn): it stays where it is, turn
        // after turn, until the turns that must go pass the next grid line.
        let snapped = self.snapped_start(turns, &starts[hi..], cap)?;
        if snapped != starts[hi] {
            if let Some(ids) = fit(snapped)? {
                return Ok((ids, snapped));
            }
        }
        Ok((best, starts[hi]))
    }

    /// The first of `starts` (the first of them the fewest turns to leave out) at which the
    /// left-out turns' tokens reach the grid line at or above the first's; the first if none.
    fn snapped_start(
        &self,
        turns: &[chat::Message],
        starts: &[usize],
        cap: usize,
    ) -> Result<usize> {
        let Some(&first) = starts.first() else {
            return Ok(0);
        };
        // About what chat templates add around a turn (role markers, ends of turn). An estimate
        // is enough: it only spaces the grid, and what is kept is checked to fit as rendered.
        const TEMPLATE_TOKENS_A_TURN: usize = 6;
        let unit = (cap / 3).max(1);
        let mut dropped = Vec::with_capacity(turns.len() + 1);
        dropped.push(0usize);
        for m in turns {
            let n = self.tokenizer.encode(&m.content, false)?.len() + TEMPLATE_TOKENS_A_TURN;
            dropped.push(dropped[dropped.len() - 1] + n);
        }
        let line = dropped[first].div_ceil(unit) * unit;
        Ok(starts
            .iter()
            .copied()
            .find(|&s| dropped[s] >= line)
            .unwrap_or(first))
    }

    fn render_ids(&self, messages: &[chat::Message]) -> Result<Vec<u32>> {
        let tk = &self.tokenizer;
        let text = |id: Option<u32>| id.map(|b| tk.token_text(b).to_string()).unwrap_or_default();
        let (bos_text, eos_text) = (text(tk.bos), text(tk.eos));
        // A message's control-token text is its writer's text: only the template's own
        // markers become control tokens (a pasted `<|im_end|><|im_start|>system` would
        // otherwise end the turn and forge another).
        let escaped: Vec<chat::Message> = messages
            .iter()
            .map(|m| chat::Message {
                role: m.role.clone(),
                content: tk.escape_control(&m.content).into_owned(),
            })
            .collect();
        #[cfg(not(target_arch = "wasm32"))]
        let now = self.clock.or_else(clock::Clock::now_utc);
        #[cfg(target_arch = "wasm32")]
        let now = self.clock;
        let rendered = chat::render(
            &self.chat_template,
            &escaped,
            &bos_text,
            &eos_text,
            true,
            now,
        )?;
        // Templates that print `bos_token` themselves would otherwise get a second BOS.
        let body = match rendered.strip_prefix(bos_text.as_str()) {
            Some(rest) if tk.add_bos && !bos_text.is_empty() => rest,
            _ => rendered.as_str(),
        };
        tk.encode_rendered(body)
    }

    /// Runs the next chunk of the prompt; true once the whole prompt is in and the first
    /// token's distribution is ready.
    pub fn prefill_step(&mut self, g: &mut Generation) -> Result<bool> {
        if g.prefilled() {
            return Ok(true);
        }
        let end = (g.prefilled + PREFILL_CHUNK).min(g.prompt_ids.len());
        let hidden = self.model.forward(&g.prompt_ids[g.prefilled..end])?;
        g.prefilled = end;
        if g.prefilled() {
            g.next_logits = self.last_logits(&hidden)?;
        }
        Ok(g.prefilled())
    }

    /// [`Engine::begin`] with token ids.
    pub fn begin_with_ids(
        &mut self,
        prompt_ids: Vec<u32>,
        req: &GenerateRequest,
    ) -> Result<Generation> {
        req.sampling.validate().map_err(EngineError::InvalidInput)?;
        if prompt_ids.is_empty() {
            // The text was not empty (`begin` said so before): it made no token, as a chat
            // template that writes nothing does, or a vocabulary with none of its characters.
            return Err(EngineError::InvalidInput(
                "the prompt gave no tokens: none of its text is in the model's vocabulary, or \
                 the chat template wrote nothing for it"
                    .into(),
            ));
        }
        let cap = self.model.max_positions();
        if prompt_ids.len() >= cap {
            return Err(EngineError::InvalidInput(format!(
                "the prompt has {} tokens and needs {} positions (its own and at least one new \
                 token's), more than the {}, so it was refused rather than cut",
                prompt_ids.len(),
                prompt_ids.len() + 1,
                self.positions_here()
            )));
        }
        let vocab = self.model.config.vocab_size;
        let mut forced = req.forced.clone();
        if !req.forced_text.is_empty() {
            forced.extend(self.tokenizer.encode(&req.forced_text, false)?);
        }
        if let Some(bad) = forced.iter().find(|&&id| id as usize >= vocab) {
            return Err(EngineError::InvalidInput(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        // A given end of generation stops the run where it stands, as a drawn one does; what
        // is given after it could never run.
        if !req.ignore_eos {
            let ends = forced
                .iter()
                .position(|&id| self.tokenizer.is_end_of_generation(id));
            if let Some(i) = ends.filter(|&i| i + 1 < forced.len()) {
                return Err(EngineError::InvalidInput(format!(
                    "given token {} (number {} of {}) ends the generation, so the {} given \
                     after it would never run",
                    forced[i],
                    i + 1,
                    forced.len(),
                    forced.len() - i - 1
                )));
            }
        }
        if prompt_ids.len() + forced.len() >= cap {
            return Err(EngineError::InvalidInput(format!(
                "the prompt and the {} given tokens need {} positions; this model is limited \
                 to {cap} here",
                forced.len(),
                prompt_ids.len() + forced.len()
            )));
        }
        // Reuse what the cache holds of this prompt; at least the last prompt token runs, as
        // its logits are the first token's distribution.
        let reused = if req.reuse_cache {
            let same = self
                .model
                .cached_ids()
                .iter()
                .zip(&prompt_ids)
                .take_while(|(a, b)| a == b)
                .count();
            same.min(prompt_ids.len() - 1)
                .min(req.reuse_at_most.unwrap_or(usize::MAX))
        } else {
            0
        };
        self.model.truncate_cache(reused);
        let forced_none = forced.is_empty();
        Ok(Generation {
            reused,
            left_out: 0,
            history: prompt_ids.clone(),
            prompt_ids,
            prefilled: reused,
            next_logits: Vec::new(),
            rng: Rng::new(req.sampling.seed),
            params: req.sampling.clone(),
            utf8: Utf8Stream::default(),
            ignore_eos: req.ignore_eos,
            can_mask_eog: self.tokenizer.end_of_generation_ids().count()
                < self.tokenizer.vocab_size(),
            // A fork runs at least one token past what it was given.
            max_tokens: if forced_none {
                req.max_tokens
            } else {
                req.max_tokens.max(forced.len() + 1)
            },
            forced,
            generated: Vec::new(),
            stats: Vec::new(),
            // Given tokens always run (they are what a fork is), whatever `max_tokens` says.
            stop_reason: (req.max_tokens == 0 && forced_none).then_some(StopReason::Length),
        })
    }

    fn last_logits(&self, hidden: &candle_core::Tensor) -> Result<Vec<f32>> {
        let logits = self.model.logits(&last_row(hidden)?)?;
        logits_rows(&logits)?
            .pop()
            .ok_or_else(|| EngineError::Compute("no logits".into()))
    }

    /// Draws the next token, or returns `None` once the generation has stopped.
    pub fn step(&mut self, g: &mut Generation) -> Result<Option<Token>> {
        if g.stop_reason.is_some() {
            return Ok(None);
        }
        while !self.prefill_step(g)? {}
        // A given token draws nothing from the RNG: the same seed then gives the same branch.
        let id = profile::time_phase("sampling", || match g.forced.get(g.generated.len()) {
            Some(&id) => id,
            None if g.ignore_eos && g.can_mask_eog => {
                // As llama.cpp's `ignore_eos`: no end of generation is drawn (one drawn and
                // passed over made the model write the next turn's markers and go on). The
                // statistics below still read the model's own distribution.
                let mut masked = None;
                for eog in self.tokenizer.end_of_generation_ids() {
                    if let Some(l) = g.next_logits.get_mut(eog as usize) {
                        masked.get_or_insert_with(Vec::new).push((eog, *l));
                        *l = f32::NEG_INFINITY;
                    }
                }
                let id = sampler::sample(&g.next_logits, &g.history, &g.params, &mut g.rng);
                for (eog, l) in masked.into_iter().flatten() {
                    g.next_logits[eog as usize] = l;
                }
                id
            }
            None => sampler::sample(&g.next_logits, &g.history, &g.params, &mut g.rng),
        });
        if !g.ignore_eos && self.tokenizer.is_end_of_generation(id) {
            g.stop_reason = Some(StopReason::Eos);
            return Ok(None);
        }
        let (s, top) = profile::time_phase("token statistics", || {
            let (s, top) = stats::stats_and_top(&g.next_logits, id, TOP_ALTERNATIVES);
            (s, self.alternatives(top))
        });
        g.history.push(id);
        g.generated.push(id);
        g.stats.push(s);
        let piece = g.utf8.push(self.tokenizer.token_bytes(id));
        if g.generated.len() >= g.max_tokens {
            g.stop_reason = Some(StopReason::Length);
        } else if self.model.cached() + 1 >= self.model.max_positions() {
            // The prompt and the output together fill the positions (the last token drawn
            // needs none of its own, but `--context` counts it, as the prompt's refusal does).
            g.stop_reason = Some(StopReason::Context);
        } else {
            let hidden = self.model.forward(&[id])?;
            g.next_logits = self.last_logits(&hidden)?;
        }
        Ok(Some(Token {
            id,
            text: self.tokenizer.token_display(id),
            piece,
            entropy: s.entropy,
            surprisal: s.surprisal,
            rank: s.rank,
            top,
            second_moment: s.second_moment,
        }))
    }

    fn alternatives(&self, top: Vec<(u32, f64)>) -> Vec<Alternative> {
        top.into_iter()
            .map(|(id, p)| Alternative {
                id,
                text: self.tokenizer.token_display(id),
                p,
            })
            .collect()
    }

    /// Scores a text: for every token after the first, how surprising it was and how uncertain
    /// the model was. Texts longer than `window` tokens are scored in overlapping windows that
    /// give each token at least half a window of context.
    pub fn score(&mut self, text: &str, window: usize) -> Result<ScoreResult> {
        let ids = self.tokenizer.encode_prompt(text, false)?;
        self.score_ids(ids, window)
    }

    pub fn score_ids(&mut self, ids: Vec<u32>, window: usize) -> Result<ScoreResult> {
        self.score_ids_watched(ids, window, &mut |_, _| {})
    }

    /// [`Engine::score_ids`], telling `watch` after each step how many tokens are scored of
    /// how many (a long text takes minutes natively).
    pub fn score_ids_watched(
        &mut self,
        ids: Vec<u32>,
        window: usize,
        watch: &mut dyn FnMut(usize, usize),
    ) -> Result<ScoreResult> {
        let mut scan = Scan::new(ids, window)?;
        let mut scored = Scored::new(self, &scan);
        while !self.scan_step(&mut scan, &mut |e, target, row| {
            scored.visit(e, target, row)
        })? {
            let (done, all) = scan.progress();
            watch(done, all);
        }
        Ok(scored.finish(scan.into_ids()))
    }

    /// Log-likelihoods of several continuations of one context, as lm-evaluation-harness
    /// scores them: `context` holds the context's ids (BOS included when the model adds one),
    /// each of `fulls` the ids of one whole request, and a request's continuation is everything
    /// after its first `context.len()` ids (`crate::eval` makes these). The context's KV cache is
    /// computed once and reused for every request that starts with it; a request whose
    /// tokenization differs inside the context is run on from where the two part.
    pub fn logliks(&mut self, context: &[u32], fulls: &[Vec<u32>]) -> Result<Logliks> {
        let n_ctx = context.len();
        let cap = self.model.max_positions();
        if n_ctx == 0 {
            return Err(EngineError::InvalidInput("the context is empty".into()));
        }
        if let Some(longest) = fulls.iter().map(Vec::len).max() {
            if longest > cap {
                return Err(EngineError::InvalidInput(format!(
                    "an item has {longest} tokens; this model is limited to {cap} here"
                )));
            }
        }
        self.model.clear_cache();
        let mut hidden = None;
        for chunk in context.chunks(PREFILL_CHUNK) {
            hidden = Some(self.model.forward_rows(chunk)?);
        }
        let hidden = hidden.ok_or_else(|| EngineError::InvalidInput("empty context".into()))?;
        let context_last = self.last_logits(&hidden)?;
        // The first continuation token of every request that starts with the whole context is
        // read from this one row: normalise it once (Gemma 3's is 262k wide).
        let (last_max, last_lse) = stats::log_norm(&context_last);
        let mut forwarded = n_ctx;
        // Cache positions that still hold the context (a request that parts inside the context
        // overwrites the rest).
        let mut valid = n_ctx;
        let mut out = Vec::with_capacity(fulls.len());
        for full in fulls {
            if full.len() <= n_ctx {
                return Err(EngineError::InvalidInput(
                    "a choice adds no tokens after the context".into(),
                ));
            }
            let shared = full.iter().zip(context).take_while(|(a, b)| a == b).count();
            let whole_context = shared == n_ctx;
            let from = if whole_context {
                if valid < n_ctx {
                    self.model.truncate_cache(valid);
                    for chunk in context[valid..].chunks(PREFILL_CHUNK) {
                        self.model.forward_rows(chunk)?;
                    }
                    forwarded += n_ctx - valid;
                    valid = n_ctx;
                }
                n_ctx
            } else {
                shared.min(n_ctx - 1).min(valid)
            };
            self.model.truncate_cache(from);
            if !whole_context {
                valid = from;
            }
            let cont = &full[n_ctx..];
            let mut loglik = 0.0;
            let mut greedy = true;
            let mut add = |row: &[f32], (max, lse): (f64, f64), target: u32| {
                loglik += row
                    .get(target as usize)
                    .map_or(f64::NEG_INFINITY, |&l| l as f64 - max - lse);
                greedy &= sampler::argmax(row) == target;
            };
            let rest = if whole_context {
                add(&context_last, (last_max, last_lse), cont[0]);
                &cont[1..]
            } else {
                cont
            };
            // Position p's logits predict full[p + 1]; the continuation needs positions
            // n_ctx - 1 onwards: the first from the context when the request starts with all
            // of it, the rest from running the request on from `from`. Each block of rows is
            // summed as it comes: kept whole, a long choice held a vocabulary-wide row per
            // token (2,000 tokens of Gemma 3 were 2 GB).
            let run = &full[from..full.len() - 1];
            if !run.is_empty() {
                let mut parts = Vec::new();
                for chunk in run.chunks(PREFILL_CHUNK) {
                    parts.push(self.model.forward_rows(chunk)?);
                }
                forwarded += run.len();
                let hidden = candle_core::Tensor::cat(&parts, 0)?;
                let mut targets = rest.iter();
                let mut r = (n_ctx - 1 + usize::from(whole_context)) - from;
                while r < run.len() {
                    let n = SCORE_ROW_BLOCK.min(run.len() - r);
                    let block = logits_rows(&self.model.logits(&hidden.narrow(0, r, n)?)?)?;
                    for (row, &target) in block.iter().zip(targets.by_ref()) {
                        add(row, stats::log_norm(row), target);
                    }
                    r += n;
                }
            }
            out.push(ChoiceLoglik {
                loglik,
                tokens: cont.len(),
                greedy,
            });
        }
        Ok(Logliks {
            choices: out,
            forward_tokens: forwarded,
            forward_tokens_without_sharing: fulls.iter().map(|f| f.len() - 1).sum(),
        })
    }

    /// Next-token probabilities (softmax at temperature 1) at every position of the text, the
    /// one after its last token included (`past_end`), row-major `[positions × vocab]`: what a
    /// second model with the same vocabulary compares against (Binoculars' observer).
    pub fn probability_rows(&mut self, ids: &[u32], window: usize) -> Result<Vec<f32>> {
        let ids = past_end(ids);
        let mut scan = Scan::new(ids.clone(), window)?;
        let mut rows = ProbabilityRows::new(self, ids.len())?;
        while !self.scan_step(&mut scan, &mut |_, _, row| rows.visit(row))? {}
        Ok(rows.out)
    }

    /// This model's surprisal of each token after the first, and at every position of the
    /// text, the one after its last token included, the cross-entropy −Σ_v p_other(v) ln
    /// p_this(v) against `other` rows from [`Engine::probability_rows`] (one more than the
    /// surprisals, as Binoculars' authors average them).
    pub fn cross_entropy(
        &mut self,
        ids: &[u32],
        window: usize,
        other: &[f32],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let ids = past_end(ids);
        let mut scan = Scan::new(ids.clone(), window)?;
        let mut x = CrossEntropy::new(self, ids.len(), other)?;
        while !self.scan_step(&mut scan, &mut |_, t, row| x.visit(t, row))? {}
        Ok(x.finish())
    }

    /// Runs the next chunk of a scan and calls `visit(engine, target, logits)` for every
    /// token that chunk predicts. True once every token after the first has been visited.
    /// Texts longer than the window are run in windows that overlap by half, so every token
    /// gets at least half a window of context. Each call runs one prefill chunk and only that
    /// chunk's logits, so a caller that yields between calls can stop a long text within a
    /// chunk, and no window's hidden states are held at once.
    pub fn scan_step(
        &mut self,
        scan: &mut Scan,
        visit: &mut dyn FnMut(&Engine, u32, &[f32]),
    ) -> Result<bool> {
        let ids = &scan.ids;
        if scan.next >= ids.len() {
            return Ok(true);
        }
        // A model that starts every text with BOS starts every window with it too, as
        // llama.cpp's perplexity does: without it the later windows of a long text scored
        // Gemma 3 as if cut mid-stream (perplexity 21.4 against 17.4 past token 1,024).
        let bos = ids[0];
        let lead = self.tokenizer.add_bos && self.tokenizer.bos == Some(bos);
        let window = scan.window.min(self.model.max_positions());
        if window < 2 + usize::from(lead) {
            return Err(EngineError::InvalidInput(format!(
                "a scoring window of {window} positions scores nothing (at least {} are needed)",
                2 + usize::from(lead)
            )));
        }
        let w = scan.current.get_or_insert_with(|| {
            let (start, room) = if scan.next == 1 {
                (0, window)
            } else {
                (scan.next - window / 2, window - usize::from(lead))
            };
            Window {
                start,
                end: (start + room).min(ids.len()),
                fed: start,
            }
        });
        // A later window's BOS goes in one chunk with the window's first tokens, as the first
        // window's does (and llama.cpp's perplexity batches it): run alone it gave Gemma 3
        // numbers up to 0.24 nats from those of the same context scored fresh.
        let with_bos = w.fed == w.start && lead && w.start > 0;
        if w.fed == w.start {
            self.model.clear_cache();
        }
        let from = w.fed;
        let to = (from + PREFILL_CHUNK - usize::from(with_bos)).min(w.end);
        let hidden = if with_bos {
            let chunk: Vec<u32> = std::iter::once(bos)
                .chain(ids[from..to].iter().copied())
                .collect();
            let h = self.model.forward(&chunk)?;
            h.narrow(0, 1, to - from)?
        } else {
            self.model.forward_rows(&ids[from..to])?
        };
        w.fed = to;
        let window_done = w.fed == w.end;
        // Position p's row predicts ids[p + 1]: visit the rows of this chunk whose target is
        // new (not in the overlap with the last window) and inside this window.
        let first = (scan.next - 1).max(from);
        let last_excl = to.min(w.end - 1);
        let mut p = first;
        while p < last_excl {
            let n = SCORE_ROW_BLOCK.min(last_excl - p);
            let rows = logits_rows(&self.model.logits(&hidden.narrow(0, p - from, n)?)?)?;
            for (k, row) in rows.iter().enumerate() {
                visit(self, ids[p + k + 1], row);
            }
            p += n;
        }
        scan.next = scan.next.max(last_excl + 1);
        if window_done {
            scan.current = None;
            if scan.next >= ids.len() {
                self.model.clear_cache();
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// A text being run through the model for its per-token distributions (scoring, Binoculars),
/// stepped by [`Engine::scan_step`].
pub struct Scan {
    ids: Vec<u32>,
    window: usize,
    /// First target position not yet visited.
    next: usize,
    current: Option<Window>,
}

struct Window {
    start: usize,
    end: usize,
    /// Positions of the window already run.
    fed: usize,
}

impl Scan {
    pub fn new(ids: Vec<u32>, window: usize) -> Result<Self> {
        if window < 2 {
            // Each window's first token is only context, so a window of 1 scores nothing.
            return Err(EngineError::InvalidInput(format!(
                "the scoring window must hold at least 2 tokens (got {window})"
            )));
        }
        if ids.len() < 2 {
            return Err(EngineError::InvalidInput(
                "the text is too short to score: it needs at least two tokens".into(),
            ));
        }
        Ok(Scan {
            ids,
            window,
            next: 1,
            current: None,
        })
    }

    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Tokens visited so far, and how many there are to visit.
    pub fn progress(&self) -> (usize, usize) {
        (self.next - 1, self.ids.len() - 1)
    }

    pub fn into_ids(self) -> Vec<u32> {
        self.ids
    }
}

/// Per-token results of a scan, as [`ScoreResult`] holds them.
pub struct Scored {
    prefix: String,
    prefix_bytes: usize,
    tokens: Vec<Token>,
    stats: Vec<TokenStats>,
    utf8: Utf8Stream,
}

impl Scored {
    pub fn new(engine: &Engine, scan: &Scan) -> Self {
        let mut utf8 = Utf8Stream::default();
        let first = scan
            .ids
            .first()
            .map(|&id| engine.tokenizer.token_bytes(id))
            .unwrap_or_default();
        Scored {
            prefix_bytes: first.len(),
            prefix: utf8.push(first),
            tokens: Vec::with_capacity(scan.ids.len()),
            stats: Vec::with_capacity(scan.ids.len()),
            utf8,
        }
    }

    pub fn visit(&mut self, engine: &Engine, target: u32, row: &[f32]) {
        let (s, top) = stats::stats_and_top(row, target, TOP_ALTERNATIVES);
        self.tokens.push(Token {
            id: target,
            text: engine.tokenizer.token_display(target),
            piece: self.utf8.push(engine.tokenizer.token_bytes(target)),
            surprisal: s.surprisal,
            entropy: s.entropy,
            rank: s.rank,
            top: engine.alternatives(top),
            second_moment: s.second_moment,
        });
        self.stats.push(s);
    }

    /// The result over the tokens visited so far (all of them once the scan is done).
    pub fn finish(mut self, ids: Vec<u32>) -> ScoreResult {
        let tail = self.utf8.finish();
        if let Some(last) = self.tokens.last_mut() {
            last.piece.push_str(&tail);
        }
        ScoreResult {
            ids,
            prefix: self.prefix,
            prefix_bytes: self.prefix_bytes,
            summary: summarize(&self.stats),
            tokens: self.tokens,
        }
    }
}

/// `ids` with a placeholder after the last, so that a scan also visits the position after
/// the text, whose row predicts the placeholder. Binoculars' authors average the
/// cross-entropy over every position of the text, that one included (`entropy()` in their
/// `metrics.py` does not shift), and the log-perplexity over the tokens after the first.
pub fn past_end(ids: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(ids.len() + 1);
    out.extend_from_slice(ids);
    // Any id the vocabulary has: only the rows before it are read.
    out.push(0);
    out
}

/// Binoculars' observer side: softmax rows of every scored position.
pub struct ProbabilityRows {
    pub out: Vec<f32>,
}

impl ProbabilityRows {
    pub fn new(engine: &Engine, n_ids: usize) -> Result<Self> {
        let mut out = Vec::new();
        out.try_reserve_exact(n_ids.saturating_sub(1) * engine.info.vocab_size)
            .map_err(|_| EngineError::InvalidInput("the text is too long to compare".into()))?;
        Ok(ProbabilityRows { out })
    }

    pub fn visit(&mut self, row: &[f32]) {
        let (max, lse) = stats::log_norm(row);
        self.out.extend(
            row.iter()
                .map(|&l| libm::exp((l as f64) - max - lse) as f32),
        );
    }
}

/// Binoculars' performer side: surprisal and cross-entropy against the observer's rows.
pub struct CrossEntropy<'o> {
    other: &'o [f32],
    vocab: usize,
    k: usize,
    pub surprisal: Vec<f64>,
    pub cross: Vec<f64>,
}

impl<'o> CrossEntropy<'o> {
    pub fn new(engine: &Engine, n_ids: usize, other: &'o [f32]) -> Result<Self> {
        let v = engine.info.vocab_size;
        if other.len() != n_ids.saturating_sub(1) * v {
            return Err(EngineError::InvalidInput(format!(
                "the other model's distributions do not fit this text and vocabulary \
                 ({} values for {} positions × {v})",
                other.len(),
                n_ids.saturating_sub(1)
            )));
        }
        Ok(CrossEntropy {
            other,
            vocab: v,
            k: 0,
            surprisal: Vec::new(),
            cross: Vec::new(),
        })
    }

    pub fn visit(&mut self, target: u32, row: &[f32]) {
        let v = self.vocab;
        let (max, lse) = stats::log_norm(row);
        let p = &self.other[self.k * v..(self.k + 1) * v];
        let x: f64 = row
            .iter()
            .zip(p)
            .map(|(&l, &q)| -(q as f64) * ((l as f64) - max - lse))
            .sum();
        self.surprisal.push(token_stats(row, target).surprisal);
        self.cross.push(x);
        self.k += 1;
    }

    /// The surprisals and cross-entropies of a scan over `past_end` ids: the placeholder's
    /// surprisal means nothing and is dropped.
    pub fn finish(mut self) -> (Vec<f64>, Vec<f64>) {
        self.surprisal.pop();
        (self.surprisal, self.cross)
    }
}

/// The roles every catalog template knows, in the places they know them. A role is printed
/// into the prompt as it is (`<|im_start|>{role}`), so an unknown one is refused rather than
/// rendered: it could carry a turn's end and forge another.
fn check_roles(messages: &[chat::Message]) -> Result<()> {
    if messages.is_empty() {
        return Err(EngineError::InvalidInput(
            "the conversation has no messages".into(),
        ));
    }
    for (i, m) in messages.iter().enumerate() {
        match m.role.as_str() {
            "user" | "assistant" => {}
            "system" if i == 0 => {}
            "system" => {
                return Err(EngineError::InvalidInput(format!(
                    "message {}: a system message can only come first",
                    i + 1
                )))
            }
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(EngineError::InvalidInput(format!(
                    "message {}: the role {:?} is not \"system\", \"user\" or \"assistant\"",
                    i + 1,
                    error::no_controls(&shown)
                )));
            }
        }
    }
    Ok(())
}
