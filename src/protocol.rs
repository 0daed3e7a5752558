//! The page ↔ worker message protocol, typed on both sides.
//!
//! Every message travels as one JSON string (`serde_json`), so the page and the worker share
//! these types and a mismatch fails to parse instead of silently misreading a field. A local
//! file rides next to the JSON as a `File` object (structured clone, no copy on the UI thread);
//! see `app::worker_client`.
//!
//! A pane's life: `LoadUrl`/`LoadFile` → `Progress`* → `Loaded` | `LoadFailed`;
//! then `Generate` → `Started` → `Token`* → `Finished` | `Failed`. `Stop` is heard between
//! tokens. `Crashed` means the worker is gone and the page must start a new one.

use serde::{Deserialize, Serialize};

use crate::engine::{GenerateRequest, ModelInfo, StopReason, Summary};

/// Name of the Cache API bucket that holds model bytes, shared by page and worker.
pub const MODEL_CACHE: &str = "tinylab-models-v1";

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// Load a model from a same-origin URL, from the browser cache when it holds it.
    LoadUrl {
        url: String,
        label: String,
    },
    /// Load the `File` sent alongside this message; `cache_key` is where its bytes are kept.
    LoadFile {
        name: String,
        cache_key: String,
    },
    Generate {
        request: GenerateRequest,
    },
    /// Score a text: per-token surprisal, entropy and rank under this model.
    Score {
        text: String,
        window: usize,
    },
    /// The entropy lab's "human vs model": the first `sentences` sentences of `text` become a
    /// prompt, the model continues it for as many tokens as the human rest has, and both
    /// continuations are scored with the prompt as context.
    HumanVsModel {
        text: String,
        sentences: usize,
        request: GenerateRequest,
    },
    /// Binoculars, observer side: the next-token probabilities at every position of `text`
    /// come back as a transferred `Float32Array` beside `Distributions`.
    Distributions {
        text: String,
        window: usize,
    },
    /// Binoculars, performer side: the observer's rows ride beside this message; `ids` are the
    /// observer's tokens (the two models share a vocabulary).
    Binoculars {
        ids: Vec<u32>,
        window: usize,
    },
    /// Stop the running generation after the token being computed.
    Stop,
    /// Use up to `count` threads (this worker's included) for the weight products. Heard at
    /// once, even mid-run; answered by `Threads`. Only the shared-memory build can exceed one.
    Threads {
        count: usize,
    },
    /// The benchmark workload (`crate::bench`) on the loaded model.
    Bench {
        prompt_tokens: usize,
        gen_tokens: usize,
        repetitions: usize,
    },
    /// Panics on purpose, to test that a dying worker is reported and replaced. The page sends
    /// it only with `?debug=1`.
    Crash,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker's wasm is running and listening.
    Ready,
    Progress(LoadProgress),
    Loaded(LoadedModel),
    LoadFailed {
        message: String,
    },
    /// The prompt went through the model; tokens follow.
    Started {
        prompt_ids: Vec<u32>,
        prefill_ms: f64,
    },
    Token(TokenEvent),
    Finished {
        reason: FinishReason,
        timing: Timing,
    },
    Scored(ScoredText),
    /// The lab's continuation is being written: `done` of `total` tokens.
    LabProgress {
        done: usize,
        total: usize,
    },
    HumanVsModel(HumanVsModelResult),
    /// The observer's rows (`[positions × vocab]` f32) are in the message's `buffer`.
    Distributions {
        ids: Vec<u32>,
        vocab_fingerprint: String,
    },
    Binoculars(BinocularsResult),
    Bench(BenchReport),
    /// How many threads the products use now, and the most this worker can have (1 where
    /// the build or the page cannot share memory between threads).
    Threads {
        active: usize,
        max: usize,
    },
    /// The request was refused or the computation failed; the model stays loaded.
    Failed {
        message: String,
    },
    /// A panic: the worker's state cannot be trusted any more.
    Crashed {
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadProgress {
    pub loaded: u64,
    /// From Content-Length or the file size; `None` when the server did not say.
    pub total: Option<u64>,
    pub from_cache: bool,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadedModel {
    pub label: String,
    pub info: ModelInfo,
    pub bytes: u64,
    pub from_cache: bool,
    /// Reading the bytes (network, cache or file).
    pub read_ms: f64,
    /// Parsing the GGUF and building the model.
    pub build_ms: f64,
    /// Whether the bytes are now in the browser cache for the next load.
    pub cached_now: bool,
    /// Why the bytes were not kept, when they were not (storage full, no Cache API).
    #[serde(default)]
    pub cache_note: Option<String>,
}

/// One generated token, as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEvent {
    pub id: u32,
    /// The token's own text (may be a fragment of a character).
    pub text: String,
    /// Text completed by this token; concatenated, these are the output.
    pub piece: String,
    pub entropy: f64,
    pub surprisal: f64,
    pub rank: usize,
    pub top: Vec<TopAlternative>,
    /// Milliseconds since the request arrived, when this token was ready.
    pub at_ms: f64,
}

/// A scored text. `prefix` is the text of tokens that were context only (the first token has
/// nothing before it to be predicted from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredText {
    pub prefix: String,
    pub tokens: Vec<TokenEvent>,
    pub summary: Summary,
    pub ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanVsModelResult {
    /// The prompt both continuations follow.
    pub prompt: String,
    pub prompt_tokens: usize,
    pub human: ScoredText,
    pub model: ScoredText,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub figures: crate::bench::Figures,
    /// The prompt as text, so another engine can be given the same tokens.
    pub prompt_text: String,
    /// Size of the worker's wasm memory after the run (it only grows, so this is the peak).
    pub wasm_memory_bytes: u64,
}

/// Binoculars (Hans et al., 2024), as in the authors' code: the performer's log-perplexity of
/// the text over the cross-entropy −Σ p_observer · ln p_performer, both averaged over tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinocularsResult {
    pub score: f64,
    pub log_ppl: f64,
    pub log_x_ppl: f64,
    pub tokens: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopAlternative {
    pub id: u32,
    pub text: String,
    pub p: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    Length,
    Eos,
    Context,
    /// The user pressed stop.
    Stopped,
}

impl From<StopReason> for FinishReason {
    fn from(r: StopReason) -> Self {
        match r {
            StopReason::Length => FinishReason::Length,
            StopReason::Eos => FinishReason::Eos,
            StopReason::Context => FinishReason::Context,
        }
    }
}

impl FinishReason {
    pub fn describe(self) -> &'static str {
        match self {
            FinishReason::Length => "reached max tokens",
            FinishReason::Eos => "the model ended its answer",
            FinishReason::Context => "context full",
            FinishReason::Stopped => "stopped",
        }
    }
}

/// Wall-clock figures measured in the worker for one generation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Timing {
    pub prompt_tokens: usize,
    pub prefill_ms: f64,
    /// From the request to the first token on its way to the page.
    pub first_token_ms: Option<f64>,
    /// Forward passes made while decoding (the last token needs none).
    pub decode_forwards: usize,
    /// Time spent in those passes, not counting waits for messages.
    pub decode_ms: f64,
}

impl Timing {
    pub fn prefill_tokens_per_s(&self) -> Option<f64> {
        (self.prefill_ms > 0.0 && self.prompt_tokens > 0)
            .then(|| self.prompt_tokens as f64 * 1000.0 / self.prefill_ms)
    }

    pub fn decode_tokens_per_s(&self) -> Option<f64> {
        (self.decode_ms > 0.0 && self.decode_forwards > 0)
            .then(|| self.decode_forwards as f64 * 1000.0 / self.decode_ms)
    }
}

impl ToWorker {
    pub fn to_json(&self) -> String {
        // Serialising these plain enums cannot fail: no maps with non-string keys, no NaN keys.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("bad message to worker: {e}"))
    }
}

impl FromWorker {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("bad message from worker: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SamplingParams;

    #[test]
    fn requests_round_trip_and_are_tagged() {
        let msgs = vec![
            ToWorker::LoadUrl {
                url: "assets/models/a.gguf".into(),
                label: "A".into(),
            },
            ToWorker::LoadFile {
                name: "x.gguf".into(),
                cache_key: "local/x.gguf".into(),
            },
            ToWorker::Generate {
                request: GenerateRequest {
                    prompt: "Hi <b>".into(),
                    chat: true,
                    max_tokens: 24,
                    sampling: SamplingParams {
                        temperature: 0.0,
                        ..SamplingParams::default()
                    },
                    ..GenerateRequest::default()
                },
            },
            ToWorker::Stop,
        ];
        for m in msgs {
            let json = m.to_json();
            assert!(json.contains("\"type\":"), "{json}");
            assert_eq!(ToWorker::from_json(&json).unwrap(), m);
        }
        assert_eq!(ToWorker::Stop.to_json(), r#"{"type":"stop"}"#);
    }

    #[test]
    fn replies_round_trip() {
        let msgs = vec![
            FromWorker::Ready,
            FromWorker::Progress(LoadProgress {
                loaded: 10,
                total: Some(100),
                from_cache: false,
                elapsed_ms: 3.5,
            }),
            FromWorker::Token(TokenEvent {
                id: 7,
                text: "é".into(),
                piece: "é".into(),
                entropy: 1.25,
                surprisal: 0.5,
                rank: 0,
                top: vec![TopAlternative {
                    id: 7,
                    text: "é".into(),
                    p: 0.6,
                }],
                at_ms: 12.0,
            }),
            FromWorker::Finished {
                reason: FinishReason::Stopped,
                timing: Timing {
                    prompt_tokens: 5,
                    prefill_ms: 50.0,
                    first_token_ms: Some(60.0),
                    decode_forwards: 3,
                    decode_ms: 30.0,
                },
            },
            FromWorker::Crashed {
                message: "boom".into(),
            },
        ];
        for m in msgs {
            assert_eq!(FromWorker::from_json(&m.to_json()).unwrap(), m);
        }
    }

    #[test]
    fn partial_generate_request_uses_defaults() {
        // The page may omit fields; they must fall back to the engine's defaults, not fail.
        let m = ToWorker::from_json(r#"{"type":"generate","request":{"prompt":"x"}}"#).unwrap();
        let ToWorker::Generate { request } = m else {
            panic!("wrong variant")
        };
        assert_eq!(request.max_tokens, GenerateRequest::default().max_tokens);
        assert_eq!(request.sampling, SamplingParams::default());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(ToWorker::from_json("{").is_err());
        assert!(ToWorker::from_json(r#"{"type":"explode"}"#).is_err());
        assert!(FromWorker::from_json("null").is_err());
    }

    #[test]
    fn rates_need_time_and_tokens() {
        let t = Timing {
            prompt_tokens: 100,
            prefill_ms: 500.0,
            first_token_ms: Some(520.0),
            decode_forwards: 10,
            decode_ms: 250.0,
        };
        assert_eq!(t.prefill_tokens_per_s(), Some(200.0));
        assert_eq!(t.decode_tokens_per_s(), Some(40.0));
        assert_eq!(Timing::default().decode_tokens_per_s(), None);
        assert_eq!(Timing::default().prefill_tokens_per_s(), None);
    }
}
