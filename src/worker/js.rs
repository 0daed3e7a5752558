//! Small bridges to the worker's JavaScript environment.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

thread_local! {
    /// The worker's `performance`, looked up once: finding it is several calls out of wasm,
    /// and the profile reads the clock about a thousand times per decoded token.
    static PERFORMANCE: Option<web_sys::Performance> = js_sys::global()
        .dyn_into::<web_sys::WorkerGlobalScope>()
        .ok()
        .and_then(|g| g.performance());
}

/// `performance.now()` in the worker; `Instant` does not exist on wasm32-unknown-unknown.
pub fn now_ms() -> f64 {
    PERFORMANCE.with(|p| p.as_ref().map_or(0.0, |p| p.now()))
}

/// The browser's local date and time, for chat templates' `strftime_now`.
pub fn local_now() -> Option<crate::engine::clock::Clock> {
    let d = js_sys::Date::new_0();
    crate::engine::clock::Clock::new(
        i32::try_from(d.get_full_year()).ok()?,
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds(),
    )
}

/// Lets queued messages (a "stop") run before the next token. A `MessageChannel` round trip
/// is a macrotask without `setTimeout`'s 4 ms clamp on nested timers.
pub async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if let Ok(channel) = web_sys::MessageChannel::new() {
            channel.port1().set_onmessage(Some(resolve.unchecked_ref()));
            if channel.port2().post_message(&JsValue::NULL).is_ok() {
                return;
            }
        }
        // No channel: carry on without yielding rather than hang.
        let _ = resolve.call0(&JsValue::NULL);
    });
    let _ = JsFuture::from(promise).await;
}

/// A promise that resolves after `ms` milliseconds (resolves at once where there is no timer).
pub fn sleep(ms: i32) -> js_sys::Promise {
    js_sys::Promise::new(&mut |resolve, _reject| {
        let scope = js_sys::global()
            .dyn_into::<web_sys::WorkerGlobalScope>()
            .ok();
        let set = scope.map(|s| {
            s.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
                .is_ok()
        });
        if set != Some(true) {
            let _ = resolve.call0(&JsValue::NULL);
        }
    })
}

/// A JS error or rejection as a readable sentence.
pub fn describe(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}
