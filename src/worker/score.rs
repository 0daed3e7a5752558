//! Scoring a text, and the lab's human-vs-model comparison, in the worker.

use super::js::{now_ms, yield_now};
use super::{post_event, post_with_buffer, Busy, State};
use crate::engine::stats::binoculars;
use std::cell::Cell;

use crate::engine::{
    past_end, CrossEntropy, Engine, GenerateRequest, ProbabilityRows, Scan, Scored, SCORE_WINDOW,
};
use crate::lab;
use crate::protocol::{
    BenchReport, BinocularsResult, Event, FromWorker, HumanVsModelResult, JobId, ScoredText,
};
use crate::timed_run::TimedRun;

/// Runs a job with the engine taken out of the state, then puts it back.
async fn with_engine<F>(state: &State, job: JobId, work: impl FnOnce(Engine) -> F)
where
    F: std::future::Future<Output = (Engine, Result<(), String>)>,
{
    let Some(engine) = state.engine.borrow_mut().take() else {
        return post_event(
            job,
            Event::Failed {
                message: "load a model first".into(),
            },
        );
    };
    state.begin(job, Busy::Working);
    let (engine, result) = work(engine).await;
    *state.engine.borrow_mut() = Some(engine);
    state.end();
    if let Err(message) = result {
        post_event(job, Event::Failed { message });
    }
}

/// Longest text the page scores, in characters (checked before tokenizing) and in tokens.
/// Scoring runs about as fast as prefill, twice over for long texts (windows overlap by half):
/// 8,192 tokens take minutes in a browser (about 3 natively on two cores of this project's
/// VM: each 1,024-token window about 11 s); beyond that a tab would work for tens of minutes.
/// The CLI has no such limit.
pub const MAX_SCORE_CHARS: usize = 100_000;
pub const MAX_SCORE_TOKENS: usize = 8_192;

/// Runs a scan one chunk per turn of the event loop, posting progress; false when stopped.
async fn scan(
    engine: &mut Engine,
    scan: &mut Scan,
    job: JobId,
    stop: &Cell<bool>,
    visit: &mut dyn FnMut(&Engine, u32, &[f32]),
) -> Result<bool, String> {
    loop {
        if engine.scan_step(scan, visit).map_err(|e| e.to_string())? {
            return Ok(true);
        }
        let (done, total) = scan.progress();
        post_event(job, Event::Advanced { done, total });
        yield_now().await;
        if stop.get() {
            return Ok(false);
        }
    }
}

/// Scores a text; a Stop keeps the tokens scored so far, sent as a partial result.
async fn score_text(
    engine: &mut Engine,
    job: JobId,
    text: &str,
    stop: &Cell<bool>,
) -> Result<(), String> {
    let t0 = now_ms();
    let chars = text.chars().count();
    if chars > MAX_SCORE_CHARS {
        return Err(format!(
            "the text has {chars} characters; the page scores at most {MAX_SCORE_CHARS} \
             (about {MAX_SCORE_TOKENS} tokens) at a time. Score a part of it, or use \
             `tinylab score --text-file`, which has no limit"
        ));
    }
    let ids = engine
        .tokenizer()
        .encode_prompt(text, false)
        .map_err(|e| e.to_string())?;
    if ids.len() > MAX_SCORE_TOKENS + 1 {
        return Err(format!(
            "the text has {} tokens; the page scores at most {MAX_SCORE_TOKENS} at a time \
             (that takes minutes). Score a part of it, or use `tinylab score --text-file`, which has \
             no limit",
            ids.len()
        ));
    }
    let mut s = Scan::new(ids, SCORE_WINDOW).map_err(|e| e.to_string())?;
    let total = s.progress().1;
    let mut scored = Scored::new(engine, &s);
    scan(engine, &mut s, job, stop, &mut |e, t, row| {
        scored.visit(e, t, row)
    })
    .await?;
    let r = scored.finish(s.into_ids());
    let mut text = ScoredText::new(r.prefix, r.tokens, r.summary, now_ms() - t0);
    text.prefix_bytes = Some(r.prefix_bytes);
    text.total = total;
    // Only the first id is context (see `Scored::new`); the rest are scored, or, when the user
    // stopped part way, not reached.
    text.context_ids = r.ids.iter().take(1).copied().collect();
    post_event(job, Event::Scored(text));
    Ok(())
}

pub async fn run_score(state: &State, job: JobId, text: String) {
    let stop = &state.stop;
    with_engine(state, job, |mut engine| async move {
        let result = score_text(&mut engine, job, &text, stop).await;
        (engine, result)
    })
    .await;
}

pub async fn run_lab(
    state: &State,
    job: JobId,
    text: String,
    sentences: usize,
    request: GenerateRequest,
) {
    let stop = &state.stop;
    with_engine(state, job, |mut engine| async move {
        let result = lab_inner(&mut engine, job, &text, sentences, request, stop).await;
        (engine, result)
    })
    .await;
}

async fn lab_inner(
    engine: &mut Engine,
    job: JobId,
    text: &str,
    sentences: usize,
    mut request: GenerateRequest,
    stop: &Cell<bool>,
) -> Result<(), String> {
    let t0 = now_ms();
    let plan = lab::plan(engine, text, sentences).map_err(|e| e.to_string())?;
    let total = plan.human_ids.len();
    request.max_tokens = total;
    let mut run = TimedRun::begin_with_ids(engine, plan.prompt_ids.clone(), &request, &now_ms)
        .map_err(|e| e.to_string())?;
    if !super::generate::prefill(engine, &mut run, job, stop).await? {
        return Err("stopped".into());
    }
    post_event(job, Event::LabProgress { done: 0, total });
    let mut generated = Vec::new();
    while let Some((tok, _)) = run.step(engine).map_err(|e| e.to_string())? {
        generated.push(tok.id);
        post_event(
            job,
            Event::LabProgress {
                done: generated.len(),
                total,
            },
        );
        yield_now().await;
        if stop.get() {
            return Err("stopped".into());
        }
    }
    if generated.is_empty() {
        return Err(
            "the model ended its continuation at once, so there is nothing to compare".into(),
        );
    }
    let mut continuation = async |tail: &[u32]| -> Result<lab::Continuation, String> {
        let mut s = Scan::new(lab::continuation_ids(&plan, tail), SCORE_WINDOW)
            .map_err(|e| e.to_string())?;
        let mut scored = Scored::new(engine, &s);
        if !scan(engine, &mut s, job, stop, &mut |e, t, row| {
            scored.visit(e, t, row)
        })
        .await?
        {
            return Err("stopped".into());
        }
        Ok(lab::continuation(scored.finish(s.into_ids()), tail.len()))
    };
    let human = continuation(&plan.human_ids).await?;
    let model = continuation(&generated).await?;
    let ms = now_ms() - t0;
    let text = |c: lab::Continuation| ScoredText::new(String::new(), c.tokens, c.summary, ms);
    post_event(
        job,
        Event::HumanVsModel(HumanVsModelResult {
            prompt: plan.prompt.clone(),
            prompt_tokens: plan.prompt_text_tokens,
            human: text(human),
            model: text(model),
            human_total: plan.human_total,
        }),
    );
    Ok(())
}

/// Most tokens a Binoculars text may have: the observer's rows are positions × vocabulary
/// floats (Qwen2.5's 151,936-token vocabulary makes 512 positions 311 MB).
pub const MAX_BINOCULARS_TOKENS: usize = 512;

pub async fn run_distributions(state: &State, job: JobId, text: String) {
    let stop = &state.stop;
    with_engine(state, job, |mut engine| async move {
        let result = distributions(&mut engine, job, &text, stop).await;
        (engine, result)
    })
    .await;
}

async fn distributions(
    engine: &mut Engine,
    job: JobId,
    text: &str,
    stop: &Cell<bool>,
) -> Result<(), String> {
    let ids = engine
        .tokenizer()
        .encode_prompt(text, false)
        .map_err(|e| e.to_string())?;
    if ids.len() > MAX_BINOCULARS_TOKENS {
        return Err(format!(
            "the text has {} tokens; Binoculars takes at most {MAX_BINOCULARS_TOKENS} \
             here (both models' full distributions are held in memory)",
            ids.len()
        ));
    }
    let padded = past_end(&ids);
    let mut rows = ProbabilityRows::new(engine, padded.len()).map_err(|e| e.to_string())?;
    let mut s = Scan::new(padded, SCORE_WINDOW).map_err(|e| e.to_string())?;
    if !scan(engine, &mut s, job, stop, &mut |_, _, row| rows.visit(row)).await? {
        return Err("stopped".into());
    }
    let buffer = js_sys::Float32Array::from(&rows.out[..]).buffer();
    post_with_buffer(
        &FromWorker::Job {
            job,
            event: Event::Distributions {
                ids,
                vocab_fingerprint: engine.info().vocab_fingerprint.clone(),
            },
        },
        &buffer,
    );
    Ok(())
}

pub async fn run_binoculars(state: &State, job: JobId, ids: Vec<u32>, rows: Vec<f32>) {
    let stop = &state.stop;
    with_engine(state, job, |mut engine| async move {
        let result = binoculars_score(&mut engine, job, ids, &rows, stop).await;
        (engine, result)
    })
    .await;
}

async fn binoculars_score(
    engine: &mut Engine,
    job: JobId,
    ids: Vec<u32>,
    rows: &[f32],
    stop: &Cell<bool>,
) -> Result<(), String> {
    let padded = past_end(&ids);
    let mut x = CrossEntropy::new(engine, padded.len(), rows).map_err(|e| e.to_string())?;
    let mut s = Scan::new(padded, SCORE_WINDOW).map_err(|e| e.to_string())?;
    if !scan(engine, &mut s, job, stop, &mut |_, t, row| x.visit(t, row)).await? {
        return Err("stopped".into());
    }
    let (surprisal, cross) = x.finish();
    let score = binoculars(&surprisal, &cross)
        .ok_or_else(|| "Binoculars is undefined for this text".to_string())?;
    post_event(
        job,
        Event::Binoculars(BinocularsResult {
            score,
            log_ppl: surprisal.iter().sum::<f64>() / surprisal.len() as f64,
            log_x_ppl: cross.iter().sum::<f64>() / cross.len() as f64,
            tokens: surprisal.len(),
        }),
    );
    Ok(())
}

pub async fn run_bench(
    state: &State,
    job: JobId,
    prompt_tokens: usize,
    gen_tokens: usize,
    repetitions: usize,
) {
    crate::engine::profile::set_clock(now_ms);
    with_engine(state, job, |mut engine| async move {
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
                let bytes = super::wasm_memory_bytes();
                post_event(
                    job,
                    Event::Bench(BenchReport {
                        figures,
                        prompt_text: engine.tokenizer().decode(&body),
                        wasm_memory_bytes: bytes,
                    }),
                );
            });
        (engine, result)
    })
    .await;
}

/// Scores every item under every condition, item by item (so a Stop leaves complete pairs for
/// the paired test), yielding to the event loop between items so Stop is heard.
pub async fn run_eval(
    state: &State,
    job: JobId,
    items: Vec<crate::eval::Item>,
    conditions: Vec<crate::eval::Condition>,
) {
    let stop = &state.stop;
    with_engine(state, job, |mut engine| async move {
        // Every item is checked before any is scored (`eval::check_items`), yielding now and
        // then so that a Stop is heard while a large file is tokenized.
        for (i, item) in items.iter().enumerate() {
            if i % 16 == 0 {
                if i > 0 {
                    post_event(job, Event::EvalChecked { items: i });
                }
                yield_now().await;
                if stop.get() {
                    post_event(job, Event::EvalDone { stopped: true });
                    return (engine, Ok(()));
                }
            }
            if let Err(e) = crate::eval::check_item(&engine, i, item, &conditions, None) {
                return (engine, Err(e));
            }
        }
        if items.len() > 16 {
            post_event(job, Event::EvalChecked { items: items.len() });
        }
        let mut result = Ok(());
        let mut stopped = false;
        'items: for (i, item) in items.iter().enumerate() {
            for (k, c) in conditions.iter().enumerate() {
                yield_now().await;
                // Heard before an item, not inside one: a Stop between its conditions left it
                // scored under some only, and each condition's accuracy then counted other
                // items (n = 11 against 10).
                if k == 0 && stop.get() {
                    stopped = true;
                    break 'items;
                }
                match crate::eval::score_item(&mut engine, i, item, c) {
                    Ok(r) => post_event(
                        job,
                        Event::EvalItem {
                            condition: c.id(),
                            result: r,
                        },
                    ),
                    Err(e) => {
                        result = Err(format!("{}: {e}", crate::eval::item_name(i, item)));
                        break 'items;
                    }
                }
            }
        }
        if result.is_ok() {
            post_event(job, Event::EvalDone { stopped });
        }
        (engine, result)
    })
    .await;
}
