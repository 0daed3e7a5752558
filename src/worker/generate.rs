//! The generation loop: prefill, then one token per turn of the event loop, so "stop" lands
//! between tokens.

use std::cell::Cell;

use super::js::{now_ms, yield_now};
use super::{post, Busy, State};
use crate::engine::{Engine, GenerateRequest};
use crate::protocol::{FinishReason, FromWorker, Timing, TokenEvent, TopAlternative};

pub async fn run(state: &State, request: GenerateRequest) {
    let Some(mut engine) = state.engine.borrow_mut().take() else {
        return post(&FromWorker::Failed {
            message: "load a model first".into(),
        });
    };
    state.busy.set(Busy::Generating);
    state.stop.set(false);
    let result = generate(&mut engine, &request, &state.stop).await;
    *state.engine.borrow_mut() = Some(engine);
    state.busy.set(Busy::Idle);
    if let Err(message) = result {
        post(&FromWorker::Failed { message });
    }
}

async fn generate(
    engine: &mut Engine,
    req: &GenerateRequest,
    stop: &Cell<bool>,
) -> Result<(), String> {
    let t0 = now_ms();
    let mut g = engine.start(req).map_err(|e| e.to_string())?;
    let prefill_ms = now_ms() - t0;
    let mut timing = Timing {
        prompt_tokens: g.prompt_ids.len(),
        prefill_ms,
        ..Timing::default()
    };
    post(&FromWorker::Started {
        prompt_ids: g.prompt_ids.clone(),
        prefill_ms,
    });
    let reason = loop {
        yield_now().await;
        if stop.get() {
            break FinishReason::Stopped;
        }
        let ts = now_ms();
        let step = engine.step(&mut g).map_err(|e| e.to_string())?;
        let te = now_ms();
        let Some(tok) = step else {
            break g
                .stop_reason
                .map(FinishReason::from)
                .unwrap_or(FinishReason::Length);
        };
        // A step that ended the run made no forward pass; it would flatter the decode rate.
        if g.stop_reason.is_none() {
            timing.decode_forwards += 1;
            timing.decode_ms += te - ts;
        }
        let at_ms = te - t0;
        timing.first_token_ms.get_or_insert(at_ms);
        post(&FromWorker::Token(TokenEvent {
            id: tok.id,
            text: tok.text,
            piece: tok.piece,
            entropy: tok.entropy,
            surprisal: tok.surprisal,
            rank: tok.rank,
            top: tok
                .top
                .into_iter()
                .map(|a| TopAlternative {
                    id: a.id,
                    text: a.text,
                    p: a.p,
                })
                .collect(),
            at_ms,
        }));
    };
    post(&FromWorker::Finished { reason, timing });
    Ok(())
}
