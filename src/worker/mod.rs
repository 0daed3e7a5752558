//! The Web Worker that owns one engine. The page never runs inference itself.
//!
//! `start` installs the message handler. Every piece of work is a job with the page's id
//! (`protocol`); loading (`loader`), generating (`generate`) and scoring (`score`) are async
//! tasks on the worker's event loop, one job at a time. A generation yields to the loop after
//! each token, so a `Stop` for its job is heard before the next token is computed. The one
//! thing that runs beside a job is a first load's put into the browser cache (`loader`), which
//! starts after the model is ready.

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
use crate::protocol::{Event, FromWorker, JobId, ToWorker, Work};

/// What the worker holds between messages.
#[derive(Default)]
struct State {
    /// Taken out while a job runs, so no `RefCell` borrow lives across an `await`.
    engine: RefCell<Option<Engine>>,
    busy: Cell<Busy>,
    /// The job running now, if any: a `Stop` names it.
    job: Cell<Option<JobId>>,
    stop: Cell<bool>,
    /// The last load's job and a promise that resolves (to `true`) when its bytes are in the
    /// browser cache, or failed to get there. Other jobs run while the put does; a new load
    /// waits for it, so that two model files are never held at once and a second load of the
    /// same model finds it in the cache.
    keeping: RefCell<Option<(JobId, js_sys::Promise)>>,
}

impl State {
    fn begin(&self, job: JobId, busy: Busy) {
        self.job.set(Some(job));
        self.busy.set(busy);
        self.stop.set(false);
    }

    fn end(&self) {
        self.job.set(None);
        self.busy.set(Busy::Idle);
        // The heap grows after a load (a long score's rows, Binoculars' distributions): the
        // page's figure, and its choice of a fresh worker for the next load, follow it.
        post(&FromWorker::Memory {
            wasm_memory_bytes: wasm_memory_bytes(),
        });
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
enum Busy {
    #[default]
    Idle,
    Loading,
    Working,
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

/// Posts news of job `job`.
pub fn post_event(job: JobId, event: Event) {
    let event = match event {
        Event::Failed { message } => Event::Failed {
            message: crate::engine::error::capped(&message),
        },
        other => other,
    };
    post(&FromWorker::Job { job, event });
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
    // Before `Ready`, so that no product runs before the form is chosen.
    let dot = dot_choice();
    post(&FromWorker::Ready {
        build: loader_build(),
        kernels: crate::engine::KERNELS.to_string(),
        dot,
    });
}

/// The relaxed build's `engine::dot_form`: forced by `dot=`, or this browser's earlier
/// measurement that the page kept (`dot=…&dotkept=…`), in this worker's name (the page's,
/// `app::threads::worker_name`) or else its address (the bench's); else the faster of the
/// two on this machine, measured now.
fn dot_choice() -> Option<crate::protocol::DotChoice> {
    use crate::engine::dot_form::{self, DotRequest};
    use crate::protocol::DotChoice;
    if !dot_form::CHOOSES {
        return None;
    }
    let name = js_sys::Reflect::get(&js_sys::global(), &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .unwrap_or_default();
    let search = js_sys::global()
        .dyn_into::<web_sys::WorkerGlobalScope>()
        .ok()
        .map(|scope| scope.location().search())
        .unwrap_or_default();
    // The name first: `DotRequest` reads the first `dot=` it finds.
    let search = format!("{name}&{search}");
    let told = |form: dot_form::DotForm, ratio: Option<f64>| {
        dot_form::set(form);
        Some(DotChoice {
            form: form.name().into(),
            forced: ratio.is_none(),
            kept: ratio.is_some(),
            ratio,
            ms: 0.0,
        })
    };
    match DotRequest::from_query(&search) {
        DotRequest::Forced(form) => told(form, None),
        DotRequest::Kept { form, ratio } => told(form, Some(ratio)),
        DotRequest::Measure => {
            let c = dot_form::calibrate(&js::now_ms)?;
            Some(DotChoice {
                form: c.chosen.name().into(),
                forced: false,
                kept: false,
                ratio: Some(c.ratio),
                ms: c.ms,
            })
        }
    }
}

/// The size of this worker's wasm memory, which only grows: the peak so far.
pub(crate) fn wasm_memory_bytes() -> u64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length() as u64
}

/// The deploy this worker's files came from: `self.TINYLAB_BUILD`, which the build stamps into
/// the loader script (`scripts/sw_manifest.py`).
pub(crate) fn loader_build() -> String {
    js_sys::Reflect::get(&js_sys::global(), &"TINYLAB_BUILD".into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

fn handle(state: &Rc<State>, data: JsValue) {
    // The page sends `{json, file?, buffer?}`: the typed message, and a File or the observer's
    // rows beside it.
    let json = js_sys::Reflect::get(&data, &"json".into())
        .ok()
        .and_then(|v| v.as_string());
    let msg = match json.as_deref().map(ToWorker::from_json) {
        Some(Ok(m)) => m,
        Some(Err(message)) => return post(&FromWorker::Unreadable { message }),
        None => {
            return post(&FromWorker::Unreadable {
                message: "bad message to worker: no json field".into(),
            })
        }
    };
    let (job, work) = match msg {
        ToWorker::Stop { job } => {
            if state.job.get() == Some(job) {
                state.stop.set(true);
            }
            return;
        }
        ToWorker::Threads { count } => return post(&threads::set(count)),
        ToWorker::Crash => panic!("crash requested by the page (?debug=1)"),
        ToWorker::Job { job, work } => (job, work),
    };
    if let Some(message) = busy_reason(state) {
        return post_event(
            job,
            Event::Failed {
                message: message.into(),
            },
        );
    }
    // The page's local time for chat templates that date their system prompt, fixed for
    // the job (Hugging Face and llama.cpp give templates local time too).
    if let Some(engine) = state.engine.borrow_mut().as_mut() {
        engine.set_clock(js::local_now());
    }
    let st = state.clone();
    match work {
        Work::LoadUrl { url, label } => spawn(async move {
            loader::load(&st, job, loader::Source::Url { url, label }).await;
        }),
        Work::LoadFile {
            name,
            cache_key,
            twins,
        } => {
            let file = js_sys::Reflect::get(&data, &"file".into())
                .ok()
                .and_then(|f| f.dyn_into::<web_sys::Blob>().ok());
            let Some(blob) = file else {
                return post_event(
                    job,
                    Event::Failed {
                        message: "no file came with the request".into(),
                    },
                );
            };
            spawn(async move {
                let src = loader::Source::File {
                    blob,
                    name,
                    cache_key,
                    twins,
                };
                loader::load(&st, job, src).await;
            })
        }
        Work::Generate { request } => spawn(async move {
            generate::run(&st, job, request).await;
        }),
        Work::Score { text } => spawn(async move {
            score::run_score(&st, job, text).await;
        }),
        Work::HumanVsModel {
            text,
            sentences,
            request,
        } => spawn(async move {
            score::run_lab(&st, job, text, sentences, request).await;
        }),
        Work::Distributions { text } => spawn(async move {
            score::run_distributions(&st, job, text).await;
        }),
        Work::Binoculars { ids } => {
            let rows = js_sys::Reflect::get(&data, &"buffer".into())
                .ok()
                .and_then(|b| b.dyn_into::<js_sys::ArrayBuffer>().ok())
                .map(|b| js_sys::Float32Array::new(&b).to_vec());
            let Some(rows) = rows else {
                return post_event(
                    job,
                    Event::Failed {
                        message: "the observer's distributions did not arrive".into(),
                    },
                );
            };
            spawn(async move {
                score::run_binoculars(&st, job, ids, rows).await;
            })
        }
        Work::Eval { items, conditions } => spawn(async move {
            score::run_eval(&st, job, items, conditions).await;
        }),
        Work::Bench {
            prompt_tokens,
            gen_tokens,
            repetitions,
        } => spawn(async move {
            score::run_bench(&st, job, prompt_tokens, gen_tokens, repetitions).await;
        }),
        Work::KernelCheck => post_event(
            job,
            Event::KernelCheck {
                kernels: crate::engine::KERNELS.to_string(),
                checks: crate::engine::kernel_check::run(),
            },
        ),
    }
}

/// Why a new job must wait, if one runs.
fn busy_reason(state: &State) -> Option<&'static str> {
    match state.busy.get() {
        Busy::Idle => None,
        Busy::Loading => Some("a model is still loading"),
        Busy::Working => Some("this pane is busy; stop it first"),
    }
}
