//! The Web Worker that owns one engine. The page never runs inference itself.
//!
//! `start` installs the message handler. Loading (`loader`) and generating (`generate`) are
//! async tasks on the worker's event loop; a generation yields to the loop after each token, so
//! a `Stop` message is heard before the next token is computed.

mod generate;
mod js;
mod loader;
mod score;
mod threads;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local as spawn;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::engine::Engine;
use crate::protocol::{FromWorker, ToWorker};

/// What the worker holds between messages.
#[derive(Default)]
struct State {
    /// Taken out while a generation runs, so no `RefCell` borrow lives across an `await`.
    engine: RefCell<Option<Engine>>,
    busy: Cell<Busy>,
    stop: Cell<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
enum Busy {
    #[default]
    Idle,
    Loading,
    Generating,
}

/// Posts a message with a buffer beside it, transferred rather than copied.
pub fn post_with_buffer(msg: &FromWorker, buffer: &js_sys::ArrayBuffer) {
    if let Ok(scope) = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>() {
        let obj = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&obj, &"json".into(), &msg.to_json().into());
        let _ = js_sys::Reflect::set(&obj, &"buffer".into(), buffer);
        let _ = scope.post_message_with_transfer(&obj, &js_sys::Array::of1(buffer));
    }
}

pub fn post(msg: &FromWorker) {
    if let Ok(scope) = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>() {
        let _ = scope.post_message(&JsValue::from_str(&msg.to_json()));
    }
}

/// Entry point of the worker binary.
pub fn start() {
    // A helper thread instantiates this same module (and so runs this), but only serves
    // `engine::parallel`; see `threads`.
    if threads::is_helper() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let what = info.payload_as_str().unwrap_or("an internal error");
        let at = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        post(&FromWorker::Crashed {
            message: format!("the model worker crashed: {what}{at}"),
        });
    }));
    let Ok(scope) = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>() else {
        return;
    };
    let state = Rc::new(State::default());
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        handle(&state, ev.data());
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    post(&FromWorker::Ready);
}

fn handle(state: &Rc<State>, data: JsValue) {
    // The page sends `{json, file?}`: the typed message, and a File when loading one.
    let json = js_sys::Reflect::get(&data, &"json".into())
        .ok()
        .and_then(|v| v.as_string());
    let msg = match json.as_deref().map(ToWorker::from_json) {
        Some(Ok(m)) => m,
        Some(Err(e)) => return post(&FromWorker::Failed { message: e }),
        None => {
            return post(&FromWorker::Failed {
                message: "bad message to worker: no json field".into(),
            })
        }
    };
    // Stop and Crash act at once; everything else is a job, refused while another runs.
    match msg {
        ToWorker::Stop => return state.stop.set(true),
        ToWorker::Threads { count } => return post(&threads::set(count)),
        ToWorker::Crash => panic!("crash requested by the page (?debug=1)"),
        _ => {}
    }
    if refuse_if_busy(state) {
        return;
    }
    let st = state.clone();
    match msg {
        ToWorker::Stop | ToWorker::Crash | ToWorker::Threads { .. } => {}
        ToWorker::LoadUrl { url, label } => spawn(async move {
            loader::load(&st, loader::Source::Url { url, label }).await;
        }),
        ToWorker::LoadFile { name, cache_key } => {
            let file = js_sys::Reflect::get(&data, &"file".into())
                .ok()
                .and_then(|f| f.dyn_into::<web_sys::Blob>().ok());
            let Some(blob) = file else {
                return post(&FromWorker::LoadFailed {
                    message: "no file came with the request".into(),
                });
            };
            spawn(async move {
                let src = loader::Source::File {
                    blob,
                    name,
                    cache_key,
                };
                loader::load(&st, src).await;
            })
        }
        ToWorker::Generate { request } => spawn(async move {
            generate::run(&st, request).await;
        }),
        ToWorker::Score { text, window } => spawn(async move {
            score::run_score(&st, text, window).await;
        }),
        ToWorker::HumanVsModel {
            text,
            sentences,
            request,
        } => spawn(async move {
            score::run_lab(&st, text, sentences, request).await;
        }),
        ToWorker::Distributions { text, window } => spawn(async move {
            score::run_distributions(&st, text, window).await;
        }),
        ToWorker::Binoculars { ids, window } => {
            let rows = js_sys::Reflect::get(&data, &"buffer".into())
                .ok()
                .and_then(|b| b.dyn_into::<js_sys::ArrayBuffer>().ok())
                .map(|b| js_sys::Float32Array::new(&b).to_vec());
            let Some(rows) = rows else {
                return post(&FromWorker::Failed {
                    message: "the observer's distributions did not arrive".into(),
                });
            };
            spawn(async move {
                score::run_binoculars(&st, ids, window, rows).await;
            })
        }
        ToWorker::Bench {
            prompt_tokens,
            gen_tokens,
            repetitions,
        } => spawn(async move {
            score::run_bench(&st, prompt_tokens, gen_tokens, repetitions).await;
        }),
    }
}

fn refuse_if_busy(state: &State) -> bool {
    let message = match state.busy.get() {
        Busy::Idle => return false,
        Busy::Loading => "a model is still loading",
        Busy::Generating => "this pane is busy; stop it first",
    };
    post(&FromWorker::Failed {
        message: message.into(),
    });
    true
}
