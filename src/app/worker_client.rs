//! The page's side of the worker protocol: spawn a model worker, send typed requests, hand
//! typed replies to a callback.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use crate::protocol::{Event, FromWorker, JobId, ToWorker};

const READY_DEADLINE_MS: i32 = 60_000;

/// A message waiting for the worker to start, with what it transfers and the job it starts.
type Queued = (JsValue, Option<js_sys::Array>, Option<JobId>);

pub struct WorkerClient {
    worker: Worker,
    /// The worker sets its handler only after its wasm has started, and a message that arrives
    /// before that is dropped, so requests wait here until `Ready`.
    ready: Rc<Cell<bool>>,
    /// Cleared on drop, so the start deadline of a worker that was replaced never fires.
    alive: Rc<Cell<bool>>,
    pending: Rc<RefCell<Vec<Queued>>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl WorkerClient {
    /// `on_reply` gets each message and the raw data it came in (which may carry a buffer).
    pub fn spawn(on_reply: impl Fn(FromWorker, JsValue) + 'static) -> Result<Self, String> {
        // Relative paths (see `threads::worker_url`), so the app works under any base path.
        let opts = web_sys::WorkerOptions::new();
        opts.set_name(&super::threads::worker_name());
        let worker = Worker::new_with_options(&super::threads::worker_url(), &opts)
            .map_err(|e| format!("could not start the model worker: {e:?}"))?;
        let on_reply = Rc::new(on_reply);
        let ready = Rc::new(Cell::new(false));
        let pending: Rc<RefCell<Vec<Queued>>> = Rc::default();

        let (r, p, w, cb) = (
            ready.clone(),
            pending.clone(),
            worker.clone(),
            on_reply.clone(),
        );
        let on_message =
            Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
                let data = ev.data();
                // Plain messages are JSON strings; ones with a buffer are `{json, buffer}`.
                let json = data.as_string().or_else(|| {
                    js_sys::Reflect::get(&data, &"json".into())
                        .ok()
                        .and_then(|j| j.as_string())
                });
                let msg = match json {
                    Some(s) => FromWorker::from_json(&s)
                        .unwrap_or_else(|message| FromWorker::Unreadable { message }),
                    None => FromWorker::Unreadable {
                        message: "the worker sent something that is not a message".into(),
                    },
                };
                if let FromWorker::Ready {
                    build,
                    kernels,
                    dot,
                } = &msg
                {
                    // For tests and the curious: which build of the worker really runs, and
                    // which of its forms.
                    super::browser::set_root_attr("data-kernels", kernels);
                    if let Some(dot) = dot {
                        super::browser::set_root_attr("data-dot", &dot.form);
                        // A worker that measured has the latest word: its answer is kept
                        // for the next workers, or, too close to call, clears the old one.
                        if !dot.forced && !dot.kept {
                            let key = crate::ui::dot_memory::KEY;
                            let now = super::browser::this_browser();
                            match crate::ui::dot_memory::to_keep(dot, &now) {
                                Some(keep) => {
                                    super::browser::local_set(key, &keep);
                                }
                                None => super::browser::local_remove(key),
                            }
                        }
                    }
                    let page = super::browser::page_build();
                    if !page.is_empty() && *build != page {
                        // Files of two deploys: the server has a newer build than this page.
                        let message =
                            format!(
                        "TinyLab was updated on the server (this page is build {page}, the \
                         model worker build {}); reload the page to use the new version",
                        if build.is_empty() { "unknown" } else { build.as_str() }
                    );
                        w.terminate();
                        cb(FromWorker::Crashed { message }, JsValue::NULL);
                        return;
                    }
                    r.set(true);
                    let queued: Vec<Queued> = p.borrow_mut().drain(..).collect();
                    cb(msg, data);
                    for (env, transfer, job) in queued {
                        if let (Err(message), Some(job)) =
                            (post_now(&w, &env, transfer.as_ref()), job)
                        {
                            let event = Event::Failed { message };
                            cb(FromWorker::Job { job, event }, JsValue::NULL);
                        }
                    }
                    return;
                }
                cb(msg, data);
            });
        let cb = on_reply.clone();
        // A script that could not be fetched fires a plain `Event`, not an `ErrorEvent`: its
        // `message` getter would throw, and the pane would wait out the deadline instead.
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
            ev.prevent_default();
            let message = match ev.dyn_ref::<ErrorEvent>().map(ErrorEvent::message) {
                Some(detail) if !detail.is_empty() => {
                    format!("the model worker crashed: {detail}")
                }
                Some(_) => "the model worker failed to start or crashed".into(),
                None => "the model worker's script could not be fetched (offline with no \
                         copy of this version of the page kept, or the server lacks it)"
                    .into(),
            };
            cb(FromWorker::Crashed { message }, JsValue::NULL);
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // A worker whose wasm fails to start (offline without a cached copy, out of memory)
        // rejects a promise inside the loader, which fires no error event: give it a deadline.
        let alive = Rc::new(Cell::new(true));
        let (r, a, cb) = (ready.clone(), alive.clone(), on_reply.clone());
        let deadline = Closure::once_into_js(move || {
            if a.get() && !r.get() {
                cb(
                    FromWorker::Crashed {
                        message: "the model worker did not start within 60 s".into(),
                    },
                    JsValue::NULL,
                );
            }
        });
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(
                deadline.unchecked_ref(),
                READY_DEADLINE_MS,
            );
        }
        Ok(WorkerClient {
            worker,
            ready,
            alive,
            pending,
            _on_message: on_message,
            _on_error: on_error,
        })
    }

    /// Sends a request; an error when the browser refused it (the job then never starts).
    pub fn send(&self, msg: &ToWorker) -> Result<(), String> {
        self.post(msg, envelope(msg), None)
    }

    /// Sends a buffer along with the message, transferred (the sender's copy becomes empty).
    pub fn send_with_buffer(&self, msg: &ToWorker, buffer: &JsValue) -> Result<(), String> {
        let env = envelope(msg);
        let _ = js_sys::Reflect::set(&env, &"buffer".into(), buffer);
        self.post(msg, env, Some(js_sys::Array::of1(buffer)))
    }

    /// Sends a `File` along with the message; the browser clones the handle, not the bytes.
    pub fn send_with_file(&self, msg: &ToWorker, file: &web_sys::File) -> Result<(), String> {
        let env = envelope(msg);
        let _ = js_sys::Reflect::set(&env, &"file".into(), file);
        self.post(msg, env, None)
    }

    fn post(
        &self,
        msg: &ToWorker,
        env: JsValue,
        transfer: Option<js_sys::Array>,
    ) -> Result<(), String> {
        if !self.ready.get() {
            let job = match msg {
                ToWorker::Job { job, .. } => Some(*job),
                _ => None,
            };
            self.pending.borrow_mut().push((env, transfer, job));
            return Ok(());
        }
        post_now(&self.worker, &env, transfer.as_ref())
    }
}

fn post_now(
    worker: &Worker,
    env: &JsValue,
    transfer: Option<&js_sys::Array>,
) -> Result<(), String> {
    match transfer {
        Some(t) => worker.post_message_with_transfer(env, t),
        None => worker.post_message(env),
    }
    .map_err(|e| {
        format!(
            "could not send the request to the model worker: {}",
            describe(&e)
        )
    })
}

fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

impl Drop for WorkerClient {
    fn drop(&mut self) {
        self.alive.set(false);
        self.worker.set_onmessage(None);
        self.worker.set_onerror(None);
        self.worker.terminate();
    }
}

fn envelope(msg: &ToWorker) -> JsValue {
    let obj = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&obj, &"json".into(), &msg.to_json().into());
    obj.into()
}
