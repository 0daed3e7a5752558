//! Scoring a text, and the lab's human-vs-model comparison, in the worker.

use wasm_bindgen::JsCast;

use super::js::{now_ms, yield_now};
use super::{post, post_with_buffer, Busy, State};
use crate::engine::stats::binoculars;
use crate::engine::utf8::Utf8Stream;
use crate::engine::{Engine, GenerateRequest, ScoredToken, Summary};
use crate::lab;
use crate::protocol::{
    BenchReport, BinocularsResult, FromWorker, HumanVsModelResult, ScoredText, TokenEvent,
    TopAlternative,
};

/// Runs `job` with the engine taken out of the state, then puts it back.
async fn with_engine<F>(state: &State, job: impl FnOnce(Engine) -> F)
where
    F: std::future::Future<Output = (Engine, Result<(), String>)>,
{
    let Some(engine) = state.engine.borrow_mut().take() else {
        return post(&FromWorker::Failed {
            message: "load a model first".into(),
        });
    };
    state.busy.set(Busy::Generating);
    state.stop.set(false);
    let (engine, result) = job(engine).await;
    *state.engine.borrow_mut() = Some(engine);
    state.busy.set(Busy::Idle);
    if let Err(message) = result {
        post(&FromWorker::Failed { message });
    }
}

pub async fn run_score(state: &State, text: String, window: usize) {
    with_engine(state, |mut engine| async move {
        let t0 = now_ms();
        let result = engine
            .score(&text, window)
            .map_err(|e| e.to_string())
            .map(|r| {
                let context = &r.ids[..r.ids.len() - r.tokens.len()];
                let prefix = engine.tokenizer().decode(context);
                scored(&engine, prefix, &r.tokens, r.summary, now_ms() - t0)
            });
        let out = result.map(|s| post(&FromWorker::Scored(s)));
        (engine, out)
    })
    .await;
}

pub async fn run_lab(state: &State, text: String, sentences: usize, request: GenerateRequest) {
    let stop = &state.stop;
    with_engine(state, |mut engine| async move {
        let result = lab_inner(&mut engine, &text, sentences, request, stop).await;
        (engine, result)
    })
    .await;
}

async fn lab_inner(
    engine: &mut Engine,
    text: &str,
    sentences: usize,
    mut request: GenerateRequest,
    stop: &std::cell::Cell<bool>,
) -> Result<(), String> {
    let t0 = now_ms();
    let plan = lab::plan(engine, text, sentences).map_err(|e| e.to_string())?;
    let total = plan.human_ids.len();
    request.max_tokens = total;
    let mut g = engine
        .start_with_ids(plan.prompt_ids.clone(), &request)
        .map_err(|e| e.to_string())?;
    post(&FromWorker::LabProgress { done: 0, total });
    let mut generated = Vec::new();
    while let Some(tok) = engine.step(&mut g).map_err(|e| e.to_string())? {
        generated.push(tok.id);
        post(&FromWorker::LabProgress {
            done: generated.len(),
            total,
        });
        yield_now().await;
        if stop.get() {
            return Err("stopped".into());
        }
    }
    let (human, model) =
        lab::compare(engine, &plan, &generated, 1024).map_err(|e| e.to_string())?;
    let ms = now_ms() - t0;
    post(&FromWorker::HumanVsModel(HumanVsModelResult {
        prompt: plan.prompt.clone(),
        prompt_tokens: plan.prompt_ids.len(),
        human: scored(engine, String::new(), &human.tokens, human.summary, ms),
        model: scored(engine, String::new(), &model.tokens, model.summary, ms),
    }));
    Ok(())
}

/// Scored tokens as the page shows them, with the text each completes.
fn scored(
    engine: &Engine,
    prefix: String,
    tokens: &[ScoredToken],
    summary: Summary,
    ms: f64,
) -> ScoredText {
    let mut utf8 = Utf8Stream::default();
    let tokens = tokens
        .iter()
        .map(|t| TokenEvent {
            id: t.id,
            text: t.text.clone(),
            piece: utf8.push(engine.tokenizer().token_bytes(t.id)),
            entropy: t.entropy,
            surprisal: t.surprisal,
            rank: t.rank,
            top: t
                .top
                .iter()
                .map(|a| TopAlternative {
                    id: a.id,
                    text: a.text.clone(),
                    p: a.p,
                })
                .collect(),
            at_ms: 0.0,
        })
        .collect();
    ScoredText {
        prefix,
        tokens,
        summary,
        ms,
    }
}

/// Most tokens a Binoculars text may have: the observer's rows are positions × vocabulary
/// floats (Qwen2.5's 151,936-token vocabulary makes 512 positions 311 MB).
pub const MAX_BINOCULARS_TOKENS: usize = 512;

pub async fn run_distributions(state: &State, text: String, window: usize) {
    with_engine(state, |mut engine| async move {
        let result = (|| {
            let ids = engine
                .tokenizer()
                .encode_prompt(&text, false)
                .map_err(|e| e.to_string())?;
            if ids.len() > MAX_BINOCULARS_TOKENS {
                return Err(format!(
                    "the text has {} tokens; Binoculars takes at most {MAX_BINOCULARS_TOKENS} \
                     here (both models' full distributions are held in memory)",
                    ids.len()
                ));
            }
            let rows = engine
                .probability_rows(&ids, window)
                .map_err(|e| e.to_string())?;
            let buffer = js_sys::Float32Array::from(&rows[..]).buffer();
            post_with_buffer(
                &FromWorker::Distributions {
                    ids,
                    vocab_fingerprint: engine.info().vocab_fingerprint.clone(),
                },
                &buffer,
            );
            Ok(())
        })();
        (engine, result)
    })
    .await;
}

pub async fn run_binoculars(state: &State, ids: Vec<u32>, window: usize, rows: Vec<f32>) {
    with_engine(state, |mut engine| async move {
        let result = engine
            .cross_entropy(&ids, window, &rows)
            .map_err(|e| e.to_string())
            .and_then(|(surprisal, cross)| {
                let n = surprisal.len() as f64;
                let score = binoculars(&surprisal, &cross)
                    .ok_or_else(|| "Binoculars is undefined for this text".to_string())?;
                post(&FromWorker::Binoculars(BinocularsResult {
                    score,
                    log_ppl: surprisal.iter().sum::<f64>() / n,
                    log_x_ppl: cross.iter().sum::<f64>() / n,
                    tokens: surprisal.len(),
                }));
                Ok(())
            });
        (engine, result)
    })
    .await;
}

pub async fn run_bench(state: &State, prompt_tokens: usize, gen_tokens: usize, repetitions: usize) {
    crate::engine::profile::set_clock(now_ms);
    with_engine(state, |mut engine| async move {
        let result = crate::bench::prompt_ids(&engine, prompt_tokens)
            .and_then(|ids| {
                let figures =
                    crate::bench::run(&mut engine, &ids, gen_tokens, repetitions, &now_ms)?;
                Ok((ids, figures))
            })
            .map_err(|e| e.to_string())
            .map(|(ids, figures)| {
                let body: Vec<u32> = ids
                    .iter()
                    .copied()
                    .filter(|&i| Some(i) != engine.info().bos_token)
                    .collect();
                let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
                let bytes = memory
                    .buffer()
                    .unchecked_into::<js_sys::ArrayBuffer>()
                    .byte_length();
                post(&FromWorker::Bench(BenchReport {
                    figures,
                    prompt_text: engine.tokenizer().decode(&body),
                    wasm_memory_bytes: bytes as u64,
                }));
            });
        (engine, result)
    })
    .await;
}
