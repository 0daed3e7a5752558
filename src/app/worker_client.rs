//! The page's side of the worker protocol: spawn a model worker, send typed requests, hand
//! typed replies to a callback.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use crate::protocol::{FromWorker, ToWorker};

/// Trunk writes the worker's loader next to index.html (`data-loader-shim`); the path is
/// relative so the app works under any base path.
const WORKER_URL: &str = "./tinylab_worker_loader.js";

pub struct WorkerClient {
    worker: Worker,
    /// The worker sets its handler only after its wasm has started, and a message that arrives
    /// before that is dropped, so requests wait here until `Ready`.
    ready: Rc<Cell<bool>>,
    pending: Rc<RefCell<Vec<JsValue>>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

impl WorkerClient {
    pub fn spawn(on_reply: impl Fn(FromWorker) + 'static) -> Result<Self, String> {
        let worker = Worker::new(WORKER_URL)
            .map_err(|e| format!("could not start the model worker: {e:?}"))?;
        let on_reply = Rc::new(on_reply);
        let ready = Rc::new(Cell::new(false));
        let pending: Rc<RefCell<Vec<JsValue>>> = Rc::default();

        let (r, p, w, cb) = (
            ready.clone(),
            pending.clone(),
            worker.clone(),
            on_reply.clone(),
        );
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let msg = match ev.data().as_string() {
                Some(s) => FromWorker::from_json(&s)
                    .unwrap_or_else(|message| FromWorker::Failed { message }),
                None => FromWorker::Failed {
                    message: "the worker sent something that is not a message".into(),
                },
            };
            if msg == FromWorker::Ready {
                r.set(true);
                for queued in p.borrow_mut().drain(..) {
                    let _ = w.post_message(&queued);
                }
            }
            cb(msg);
        });
        let cb = on_reply.clone();
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |ev: ErrorEvent| {
            ev.prevent_default();
            let detail = ev.message();
            cb(FromWorker::Crashed {
                message: if detail.is_empty() {
                    "the model worker failed to start or crashed".into()
                } else {
                    format!("the model worker crashed: {detail}")
                },
            });
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(WorkerClient {
            worker,
            ready,
            pending,
            _on_message: on_message,
            _on_error: on_error,
        })
    }

    pub fn send(&self, msg: &ToWorker) {
        self.post(envelope(msg));
    }

    /// Sends a `File` along with the message; the browser clones the handle, not the bytes.
    pub fn send_with_file(&self, msg: &ToWorker, file: &web_sys::File) {
        let env = envelope(msg);
        let _ = js_sys::Reflect::set(&env, &"file".into(), file);
        self.post(env);
    }

    fn post(&self, env: JsValue) {
        if self.ready.get() {
            let _ = self.worker.post_message(&env);
        } else {
            self.pending.borrow_mut().push(env);
        }
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
