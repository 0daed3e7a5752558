//! The generation job: `timed_run`'s loop with one prompt chunk or one token per turn of the
//! event loop, so a Stop lands between chunks of a long prompt and between tokens.

use std::cell::Cell;

use super::js::{now_ms, yield_now};
use super::{post_event, Busy, State};
use crate::engine::{Engine, GenerateRequest};
use crate::protocol::{Event, JobId, TokenEvent};
use crate::timed_run::TimedRun;

pub async fn run(state: &State, job: JobId, request: GenerateRequest) {
    let Some(mut engine) = state.engine.borrow_mut().take() else {
        return post_event(
            job,
            Event::Failed {
                message: "load a model first".into(),
            },
        );
    };
    state.begin(job, Busy::Working);
    let result = generate(&mut engine, job, &request, &state.stop).await;
    *state.engine.borrow_mut() = Some(engine);
    state.end();
    if let Err(message) = result {
        post_event(job, Event::Failed { message });
    }
}

async fn generate(
    engine: &mut Engine,
    job: JobId,
    req: &GenerateRequest,
    stop: &Cell<bool>,
) -> Result<(), String> {
    let mut run = TimedRun::begin(engine, req, &now_ms).map_err(|e| e.to_string())?;
    // A Stop during the prompt ends the run before it started: no `Started`, no token.
    if prefill(engine, &mut run, job, stop).await? {
        post_event(
            job,
            Event::Started {
                prompt_ids: run.generation.prompt_ids.clone(),
                prefill_ms: run.timing().prefill_ms,
                reused: run.generation.reused,
                left_out: run.generation.left_out,
            },
        );
        loop {
            yield_now().await;
            if stop.get() {
                break;
            }
            match run.step(engine).map_err(|e| e.to_string())? {
                Some(token) => post_event(job, Event::Token(TokenEvent::from(token))),
                None => break,
            }
        }
    }
    let (end, _) = run.finish();
    post_event(
        job,
        Event::Finished {
            reason: end.reason,
            timing: end.timing,
            tail: end.tail,
        },
    );
    Ok(())
}

/// Feeds the prompt chunk by chunk, yielding between chunks; false when stopped first.
pub async fn prefill(
    engine: &mut Engine,
    run: &mut TimedRun<'_>,
    job: JobId,
    stop: &Cell<bool>,
) -> Result<bool, String> {
    let total = run.generation.prompt_ids.len();
    while !run.prefill_step(engine).map_err(|e| e.to_string())? {
        post_event(
            job,
            Event::Advanced {
                done: run.generation.prefilled_tokens(),
                total,
            },
        );
        yield_now().await;
        if stop.get() {
            return Ok(false);
        }
    }
    Ok(true)
}
