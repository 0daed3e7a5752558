//! The page's side of the worker protocol: spawn a model worker, send typed requests, hand
//! typed replies to a callback.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use crate::protocol::{FromWorker, ToWorker};

const READY_DEADLINE_MS: i32 = 60_000;

/// A message waiting for the worker to start, with what it transfers.
type Queued = (JsValue, Option<js_sys::Array>);

pub struct WorkerClient {
    worker: Worker,
    /// The worker sets its handler only after its wasm has started, and a message that arrives
    /// before that is dropped, so requests wait here until `Ready`.
    ready: Rc<Cell<bool>>,
    pending: Rc<RefCell<Vec<Queued>>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

impl WorkerClient {
    /// `on_reply` gets each message and the raw data it came in (which may carry a buffer).
    pub fn spawn(on_reply: impl Fn(FromWorker, JsValue) + 'static) -> Result<Self, String> {
        // Relative paths (see `threads::worker_url`), so the app works under any base path.
        let worker = Worker::new(super::threads::worker_url())
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
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let data = ev.data();
            // Plain messages are JSON strings; ones with a buffer are `{json, buffer}`.
            let json = data.as_string().or_else(|| {
                js_sys::Reflect::get(&data, &"json".into())
                    .ok()
                    .and_then(|j| j.as_string())
            });
            let msg = match json {
                Some(s) => FromWorker::from_json(&s)
                    .unwrap_or_else(|message| FromWorker::Failed { message }),
                None => FromWorker::Failed {
                    message: "the worker sent something that is not a message".into(),
                },
            };
            if msg == FromWorker::Ready {
                r.set(true);
                for (queued, transfer) in p.borrow_mut().drain(..) {
                    let _ = match transfer {
                        Some(t) => w.post_message_with_transfer(&queued, &t),
                        None => w.post_message(&queued),
                    };
                }
            }
            cb(msg, data);
        });
        let cb = on_reply.clone();
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |ev: ErrorEvent| {
            ev.prevent_default();
            let detail = ev.message();
            cb(
                FromWorker::Crashed {
                    message: if detail.is_empty() {
                        "the model worker failed to start or crashed".into()
                    } else {
                        format!("the model worker crashed: {detail}")
                    },
                },
                JsValue::NULL,
            );
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // A worker whose wasm fails to start (offline without a cached copy, out of memory)
        // rejects a promise inside the loader, which fires no error event: give it a deadline.
        let (r, cb) = (ready.clone(), on_reply.clone());
        let deadline = Closure::once_into_js(move || {
            if !r.get() {
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
            pending,
            _on_message: on_message,
            _on_error: on_error,
        })
    }

    pub fn send(&self, msg: &ToWorker) {
        self.post(envelope(msg), None);
    }

    /// Sends a buffer along with the message, transferred (the sender's copy becomes empty).
    pub fn send_with_buffer(&self, msg: &ToWorker, buffer: &JsValue) {
        let env = envelope(msg);
        let _ = js_sys::Reflect::set(&env, &"buffer".into(), buffer);
        self.post(env, Some(js_sys::Array::of1(buffer)));
    }

    /// Sends a `File` along with the message; the browser clones the handle, not the bytes.
    pub fn send_with_file(&self, msg: &ToWorker, file: &web_sys::File) {
        let env = envelope(msg);
        let _ = js_sys::Reflect::set(&env, &"file".into(), file);
        self.post(env, None);
    }

    fn post(&self, env: JsValue, transfer: Option<js_sys::Array>) {
        if !self.ready.get() {
            self.pending.borrow_mut().push((env, transfer));
            return;
        }
        let _ = match transfer {
            Some(t) => self.worker.post_message_with_transfer(&env, &t),
            None => self.worker.post_message(&env),
        };
    }
}

impl Drop for WorkerClient {
    fn drop(&mut self) {
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
