//! Helper threads for the engine's parallel products (`engine::parallel`).
//!
//! Only the shared-memory build of this worker (`scripts/build_threads.sh`: atomics, nightly
//! `build-std`) can have them, and only on a cross-origin isolated page; the page picks that
//! build only then. A helper is a nested Web Worker (`www/threads/tinylab_helper.js`) that
//! instantiates this same wasm module on this worker's memory and calls
//! [`tinylab_helper_main`], which never returns. Helpers start lazily, the first time more than
//! one thread is asked for, and stay; lowering the count only parks them.

use wasm_bindgen::prelude::*;

use crate::engine::parallel;
use crate::protocol::FromWorker;

/// Name prefix of helper workers; `worker::start` stays idle when it runs inside one.
pub const HELPER_NAME: &str = "tinylab-helper";
/// Relative to this worker's script, so the app works under any base path.
const HELPER_URL: &str = "./tinylab_helper.js";

/// The entry of a helper thread (called from `tinylab_helper.js`).
#[wasm_bindgen]
pub fn tinylab_helper_main(index: usize) {
    parallel::helper_loop(index)
}

/// Called by `tinylab_helper.js` when the helper's code trapped (a panic aborts in wasm): the
/// pool stops waiting for it, and the job that was running fails with `message`.
#[wasm_bindgen]
pub fn tinylab_helper_died(index: usize, message: String) {
    parallel::helper_died(index, &message)
}

/// True inside a helper worker, where the model worker's message loop must not start.
pub fn is_helper() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .is_some_and(|n| n.starts_with(HELPER_NAME))
}

/// The most threads this worker can use.
pub fn max_threads() -> usize {
    if !cfg!(target_feature = "atomics") || !cross_origin_isolated() {
        return 1;
    }
    let cores = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| js_sys::Reflect::get(&n, &"hardwareConcurrency".into()))
        .ok()
        .and_then(|c| c.as_f64())
        .unwrap_or(1.0) as usize;
    cores.clamp(1, parallel::MAX_PAGE_THREADS)
}

fn cross_origin_isolated() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"crossOriginIsolated".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Sets the thread count, starting helpers as needed, and reports what is in effect.
pub fn set(count: usize) -> FromWorker {
    let max = max_threads();
    let count = count.clamp(1, max);
    // A refused setting is its own answer: threads that did start are used, and no job fails.
    let (count, note) = match spawn_helpers(count - 1) {
        Ok(()) => (count, None),
        Err(message) => (SPAWNED.with(|s| s.get()) + 1, Some(message)),
    };
    parallel::set_threads(count);
    FromWorker::Threads {
        active: count,
        max,
        note,
    }
}

thread_local! {
    static SPAWNED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn spawn_helpers(wanted: usize) -> Result<(), String> {
    let spawned = SPAWNED.with(|s| s.get());
    for index in spawned..wanted {
        let opts = web_sys::WorkerOptions::new();
        opts.set_name(&format!("{HELPER_NAME}-{index}"));
        // The helper's files must be this worker's build, not a cached copy of another deploy.
        let build = super::loader_build();
        let url = if build.is_empty() {
            HELPER_URL.to_string()
        } else {
            format!("{HELPER_URL}?build={build}")
        };
        let helper = web_sys::Worker::new_with_options(&url, &opts)
            .map_err(|e| format!("could not start helper thread {index}: {e:?}"))?;
        let init = js_sys::Array::of3(
            &wasm_bindgen::module(),
            &wasm_bindgen::memory(),
            &JsValue::from(index as u32),
        );
        helper
            .post_message(&init)
            .map_err(|e| format!("could not start helper thread {index}: {e:?}"))?;
        // The helper runs for the worker's lifetime; dropping the handle does not end it.
        SPAWNED.with(|s| s.set(index + 1));
    }
    Ok(())
}
