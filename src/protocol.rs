//! The page ↔ worker message protocol, typed on both sides.
//!
//! Every message travels as one JSON string (`serde_json`), so the page and the worker share
//! these types and a mismatch fails to parse instead of silently misreading a field. A local
//! file rides next to the JSON as a `File` object (structured clone, no copy on the UI thread);
//! see `app::worker_client`.
//!
//! Work is a job: the page gives each `ToWorker::Job` an id, and every reply about it, progress
//! to failure, comes back as `FromWorker::Job` with that id, so the page never guesses what a
//! reply belongs to (`ui::pane` drops replies for jobs it no longer waits for). A load:
//! `Progress`* → `Loaded` | `Failed`; a generation: `Started` → `Token`* → `Finished` |
//! `Failed` (with `Advanced` between prompt chunks of a long prompt); a scoring: `Advanced`* →
//! `Scored` | `Failed`. `Stop{job}` is heard between tokens and between chunks. `Threads` is a setting, answered by its own
//! reply and never failing a job. `Crashed` means the worker is gone and the page must start a
//! new one. Engine types cross to the wire here, in the `From` impls at the end.

use serde::{Deserialize, Serialize};

use crate::engine::{GenerateRequest, ModelInfo, StopReason, Summary, Token};
pub use crate::timed_run::Timing;

/// Name of the Cache API bucket that holds model bytes, shared by page and worker.
pub const MODEL_CACHE: &str = "tinylab-models-v1";

/// The longest a worker's new load waits for its last load's put in the browser cache; past
/// it the worker answers that put's job with a `Kept` that says so, and loads.
pub const PUT_WAIT_MS: u32 = 120_000;

/// Names one piece of work; unique per pane (the page counts them).
pub type JobId = u64;

/// The form a relaxed-SIMD worker sums its byte products with (`engine::dot_form`): both give
/// the same bits, and which is faster depends on the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DotChoice {
    /// `pairs` or `dot-add` (`engine::dot_form::DotForm::name`).
    pub form: String,
    /// Set by the page's `?dot=` rather than measured.
    pub forced: bool,
    /// This browser's earlier measurement, kept by the page and handed to this worker, which
    /// did not measure (`engine::dot_form::DotRequest::Kept`).
    #[serde(default)]
    pub kept: bool,
    /// The measurement: time with `pairs` ÷ time with `dot-add` (above 1, `dot-add` was
    /// faster); this worker's own, or the kept one's.
    pub ratio: Option<f64>,
    /// Milliseconds this worker spent measuring (0 when forced or kept).
    pub ms: f64,
}

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// Start `work`; refused with `Failed` for this job while another job runs.
    Job { job: JobId, work: Work },
    /// Stop job `job` after the token (or window) being computed; ignored for any other job.
    Stop { job: JobId },
    /// Use up to `count` threads (this worker's included) for the weight products. Heard at
    /// once, even mid-run; answered by `Threads`. Only the shared-memory build can exceed one.
    Threads { count: usize },
    /// Panics on purpose, to test that a dying worker is reported and replaced. The page sends
    /// it only with `?debug=1`.
    Crash,
}

/// A catalog model a local file may be a copy of (the same size): a file whose sha256 is the
/// catalog's is kept under the catalog's URL, once, and the pane then has the catalog model
/// chosen, so a link can name it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogTwin {
    pub id: String,
    pub url: String,
    pub sha256: String,
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// Load a model from a same-origin URL, from the browser cache when it holds it.
    LoadUrl {
        url: String,
        label: String,
    },
    /// Load the `File` sent alongside this message; `cache_key` is where its bytes are kept,
    /// unless the file is one of `twins` (catalog models of its size), byte for byte.
    LoadFile {
        name: String,
        cache_key: String,
        #[serde(default)]
        twins: Vec<CatalogTwin>,
    },
    Generate {
        request: GenerateRequest,
    },
    /// Score a text: per-token surprisal, entropy and rank under this model.
    Score {
        text: String,
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
    },
    /// Binoculars, performer side: the observer's rows ride beside this message; `ids` are the
    /// observer's tokens (the two models share a vocabulary).
    Binoculars {
        ids: Vec<u32>,
    },
    /// Score `items` under each of `conditions` (`crate::eval`), item by item; Stop keeps what
    /// was scored.
    Eval {
        items: Vec<crate::eval::Item>,
        conditions: Vec<crate::eval::Condition>,
    },
    /// The benchmark workload (`crate::bench`) on the loaded model.
    Bench {
        prompt_tokens: usize,
        gen_tokens: usize,
        repetitions: usize,
    },
    /// This build's kernels against their portable reference (`engine::kernel_check`); needs
    /// no model.
    KernelCheck,
}

/// Worker → page.
// One message lives at a time, straight from JSON to the pane: boxing the big events would
// only add an allocation per token.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker's wasm is running and listening. `build` names the deploy its files came
    /// from (the service worker's version, stamped into its loader by the build; empty in a
    /// development build), so the page can refuse a worker from another deploy.
    Ready {
        #[serde(default)]
        build: String,
        /// The SIMD form this worker was built with (`engine::KERNELS`).
        #[serde(default)]
        kernels: String,
        /// How the relaxed build sums its byte products, and why (`engine::dot_form`); none
        /// in the builds with one form.
        #[serde(default)]
        dot: Option<DotChoice>,
    },
    /// News of job `job`.
    Job { job: JobId, event: Event },
    /// How many threads the products use now, and the most this worker can have (1 where
    /// the build or the page cannot share memory between threads); `note` says why fewer
    /// than asked, when a helper could not start.
    Threads {
        active: usize,
        max: usize,
        #[serde(default)]
        note: Option<String>,
    },
    /// The worker's wasm heap after a job ended (it only grows): what the worker holds now.
    Memory { wasm_memory_bytes: u64 },
    /// A message the worker could not read, so there is no job to answer.
    Unreadable { message: String },
    /// A panic: the worker's state cannot be trusted any more; every job of it is over.
    Crashed { message: String },
}

/// What happened to a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Progress(LoadProgress),
    Loaded(LoadedModel),
    /// The model that job loaded, read from the network or a file, was put in the browser
    /// cache (`cached_now`) or could not be (`cache_note` says why). It follows `Loaded` when
    /// that said `keeping`: the put runs after the model is ready, so the first load does not
    /// wait for the copy to disk.
    Kept {
        cached_now: bool,
        #[serde(default)]
        cache_note: Option<String>,
    },
    /// The prompt went through the model; tokens follow.
    Started {
        prompt_ids: Vec<u32>,
        prefill_ms: f64,
        /// Prompt tokens taken from the KV cache rather than recomputed (a conversation's
        /// earlier turns).
        #[serde(default)]
        reused: usize,
        /// Oldest conversation turns left out to fit the context.
        #[serde(default)]
        left_out: usize,
    },
    Token(TokenEvent),
    /// Part of a long run is done: `done` of `total` prompt tokens read (a generation, the
    /// lab), or text tokens scored. Sent between chunks, which is also where Stop is heard.
    Advanced {
        done: usize,
        total: usize,
    },
    /// The generation ended; `tail` is text the last tokens left incomplete.
    Finished {
        reason: StopReason,
        timing: Timing,
        #[serde(default)]
        tail: String,
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
    /// One item scored under one condition (by id, `eval::Condition::id`).
    EvalItem {
        condition: String,
        result: crate::eval::ItemResult,
    },
    /// Before scoring, every item is tokenized and checked (`eval::check_item`): `items` of
    /// them so far, said now and then, since a large file takes seconds.
    EvalChecked {
        items: usize,
    },
    /// The evaluation ended: every item scored, or `stopped` by the user part way.
    EvalDone {
        stopped: bool,
    },
    Bench(BenchReport),
    KernelCheck {
        kernels: String,
        checks: Vec<crate::engine::kernel_check::KernelCheck>,
    },
    /// The job was refused or failed; a loaded model stays loaded.
    Failed {
        message: String,
    },
}

impl Event {
    /// Whether this is the job's last message.
    pub fn ends_job(&self) -> bool {
        !matches!(
            self,
            Event::Progress(_)
                | Event::Started { .. }
                | Event::Token(_)
                | Event::Advanced { .. }
                | Event::LabProgress { .. }
                | Event::EvalItem { .. }
                | Event::EvalChecked { .. }
        )
    }
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
    /// Waiting, before the read, for the worker's last put in the browser cache to end (a load
    /// right after a first load): not in `read_ms`, said beside it.
    #[serde(default)]
    pub waited_ms: f64,
    /// Whether the bytes are now in the browser cache for the next load.
    pub cached_now: bool,
    /// The bytes are being put in the browser cache now; an `Event::Kept` for the same job
    /// follows with the outcome.
    #[serde(default)]
    pub keeping: bool,
    /// Why the bytes were not kept, when they were not (storage full, no Cache API).
    #[serde(default)]
    pub cache_note: Option<String>,
    /// The worker's wasm heap right after the build (0 where there is none): the model's
    /// resident size, apart from the working memory a run adds later.
    #[serde(default)]
    pub wasm_memory_bytes: u64,
    /// The catalog model a local file turned out to be (its sha256 is the catalog's).
    #[serde(default)]
    pub catalog_twin: Option<String>,
}

/// One generated token as it travels: the engine's token and when it was ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEvent {
    #[serde(flatten)]
    pub token: Token,
    /// Milliseconds since the request arrived, when this token was ready (0 for scored text).
    #[serde(default)]
    pub at_ms: f64,
}

impl std::ops::Deref for TokenEvent {
    type Target = Token;
    fn deref(&self) -> &Token {
        &self.token
    }
}

/// A scored text. `prefix` is the text of tokens that were context only (the first token has
/// nothing before it to be predicted from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredText {
    pub prefix: String,
    pub tokens: Vec<TokenEvent>,
    pub summary: Summary,
    pub ms: f64,
    /// Tokens the whole text has to score; more than `tokens.len()` when the user stopped the
    /// scoring part way and these are the ones done (a partial result).
    #[serde(default)]
    pub total: usize,
    /// The ids that were context only (the first token, or BOS where the model adds one), so
    /// that an export lists every input id, as `tinylab score` does.
    #[serde(default)]
    pub context_ids: Vec<u32>,
    /// The context ids' bytes (`ScoreResult::prefix_bytes`); `None` in a result saved before
    /// it was kept, read as `prefix`'s length.
    #[serde(default)]
    pub prefix_bytes: Option<usize>,
}

impl ScoredText {
    pub fn partial(&self) -> bool {
        self.tokens.len() < self.total
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanVsModelResult {
    /// The prompt both continuations follow.
    pub prompt: String,
    pub prompt_tokens: usize,
    pub human: ScoredText,
    pub model: ScoredText,
    /// The human text's tokens after the prompt, of which the first `MAX_CONTINUATION` are
    /// compared (0 in a result saved before it was kept).
    #[serde(default)]
    pub human_total: usize,
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
    #[serde(with = "crate::engine::explicit_f64")]
    pub score: f64,
    #[serde(with = "crate::engine::explicit_f64")]
    pub log_ppl: f64,
    #[serde(with = "crate::engine::explicit_f64")]
    pub log_x_ppl: f64,
    pub tokens: usize,
}

impl From<(Token, f64)> for TokenEvent {
    fn from((token, at_ms): (Token, f64)) -> Self {
        TokenEvent { token, at_ms }
    }
}

impl From<Token> for TokenEvent {
    fn from(token: Token) -> Self {
        TokenEvent { token, at_ms: 0.0 }
    }
}

impl ScoredText {
    /// A scored text as the page shows it; `ms` is how long the scoring took.
    pub fn new(prefix: String, tokens: Vec<Token>, summary: Summary, ms: f64) -> Self {
        ScoredText {
            prefix,
            total: tokens.len(),
            tokens: tokens.into_iter().map(TokenEvent::from).collect(),
            summary,
            ms,
            context_ids: Vec::new(),
            prefix_bytes: None,
        }
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
    use crate::engine::{Alternative, SamplingParams};

    /// A NaN statistic (weights holding NaN give NaN logits) must not fail the whole message.
    #[test]
    fn nan_statistics_arrive_as_explicit_values() {
        let token = Token {
            id: 3,
            text: "x".into(),
            piece: "x".into(),
            entropy: f64::NAN,
            surprisal: f64::NAN,
            rank: 0,
            top: vec![Alternative {
                id: 3,
                text: "x".into(),
                p: f64::NAN,
            }],
            second_moment: 0.0,
        };
        let summary = crate::engine::stats::summarize(&[]);
        let msg = FromWorker::Job {
            job: 4,
            event: Event::Scored(ScoredText::new(
                String::new(),
                vec![token],
                Summary {
                    perplexity: f64::NAN,
                    fast_detectgpt: Some(f64::INFINITY),
                    ..summary
                },
                1.0,
            )),
        };
        let json = msg.to_json();
        assert!(json.contains(r#""entropy":"NaN""#), "{json}");
        let FromWorker::Job {
            event: Event::Scored(back),
            ..
        } = FromWorker::from_json(&json).unwrap()
        else {
            panic!("not a score")
        };
        assert!(back.tokens[0].entropy.is_nan());
        assert!(back.summary.perplexity.is_nan());
        assert_eq!(back.summary.fast_detectgpt, Some(f64::INFINITY));
        assert_eq!(
            crate::ui::format::num(Some(back.summary.perplexity), 1),
            "n/a"
        );
    }

    #[test]
    fn requests_round_trip_and_are_tagged() {
        let msgs = vec![
            ToWorker::Job {
                job: 1,
                work: Work::LoadUrl {
                    url: "assets/models/a.gguf".into(),
                    label: "A".into(),
                },
            },
            ToWorker::Job {
                job: 2,
                work: Work::LoadFile {
                    name: "x.gguf".into(),
                    cache_key: "local/x.gguf".into(),
                    twins: vec![CatalogTwin {
                        id: "m".into(),
                        url: "assets/models/x.gguf?sha256=00".into(),
                        sha256: "00".repeat(32),
                    }],
                },
            },
            ToWorker::Job {
                job: 3,
                work: Work::Generate {
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
            },
            ToWorker::Stop { job: 3 },
            ToWorker::Threads { count: 2 },
        ];
        for m in msgs {
            let json = m.to_json();
            assert!(json.contains("\"type\":"), "{json}");
            assert_eq!(ToWorker::from_json(&json).unwrap(), m);
        }
        assert_eq!(
            ToWorker::Stop { job: 7 }.to_json(),
            r#"{"type":"stop","job":7}"#
        );
        assert_eq!(
            ToWorker::Job {
                job: 4,
                work: Work::Score { text: "x".into() }
            }
            .to_json(),
            r#"{"type":"job","job":4,"work":{"kind":"score","text":"x"}}"#
        );
    }

    #[test]
    fn replies_round_trip_with_their_job() {
        let token = Token {
            id: 7,
            text: "é".into(),
            piece: "é".into(),
            entropy: 1.25,
            surprisal: 0.5,
            rank: 0,
            top: vec![Alternative {
                id: 7,
                text: "é".into(),
                p: 0.6,
            }],
            second_moment: 0.0,
        };
        let msgs = vec![
            FromWorker::Ready {
                build: "ea3c6900597d9191".into(),
                kernels: "relaxed-simd".into(),
                dot: Some(DotChoice {
                    form: "dot-add".into(),
                    forced: false,
                    kept: false,
                    ratio: Some(1.12),
                    ms: 48.5,
                }),
            },
            FromWorker::Job {
                job: 1,
                event: Event::Progress(LoadProgress {
                    loaded: 10,
                    total: Some(100),
                    from_cache: false,
                    elapsed_ms: 3.5,
                }),
            },
            FromWorker::Job {
                job: 2,
                event: Event::Token(TokenEvent::from((token, 12.0))),
            },
            FromWorker::Job {
                job: 2,
                event: Event::Finished {
                    reason: StopReason::Stopped,
                    timing: Timing {
                        prompt_tokens: 5,
                        prefill_ms: 50.0,
                        first_token_ms: Some(60.0),
                        decode_forwards: 3,
                        decode_ms: 30.0,
                    },
                    tail: "\u{FFFD}".into(),
                },
            },
            FromWorker::Job {
                job: 3,
                event: Event::Failed {
                    message: "busy".into(),
                },
            },
            FromWorker::Threads {
                active: 1,
                max: 1,
                note: None,
            },
            FromWorker::Crashed {
                message: "boom".into(),
            },
        ];
        for m in msgs {
            assert_eq!(FromWorker::from_json(&m.to_json()).unwrap(), m);
        }
        // A token travels flat: the engine's fields beside `at_ms`.
        let json = FromWorker::Job {
            job: 9,
            event: Event::Token(TokenEvent::from(Token::default())),
        }
        .to_json();
        assert!(json.contains(r#""kind":"token","id":0"#), "{json}");
    }

    #[test]
    fn partial_generate_request_uses_defaults() {
        // The page may omit fields; they must fall back to the engine's defaults, not fail.
        let m = ToWorker::from_json(
            r#"{"type":"job","job":1,"work":{"kind":"generate","request":{"prompt":"x"}}}"#,
        )
        .unwrap();
        let ToWorker::Job {
            work: Work::Generate { request },
            ..
        } = m
        else {
            panic!("wrong variant")
        };
        assert_eq!(request.max_tokens, GenerateRequest::default().max_tokens);
        assert_eq!(request.sampling, SamplingParams::default());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(ToWorker::from_json("{").is_err());
        assert!(ToWorker::from_json(r#"{"type":"explode"}"#).is_err());
        assert!(
            ToWorker::from_json(r#"{"type":"job","work":{"kind":"score","text":"x"}}"#).is_err()
        );
        assert!(FromWorker::from_json("null").is_err());
    }

    #[test]
    fn last_messages_end_their_job() {
        assert!(!Event::Token(TokenEvent::from(Token::default())).ends_job());
        assert!(!Event::LabProgress { done: 1, total: 2 }.ends_job());
        assert!(Event::Failed {
            message: String::new()
        }
        .ends_job());
        assert!(Event::Finished {
            reason: StopReason::Eos,
            timing: Timing::default(),
            tail: String::new()
        }
        .ends_job());
    }
}
