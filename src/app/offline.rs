//! Offline use: registers the service worker (`www/sw.js`), follows the network state, and
//! shows whether the page and which models would work with the network cut.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::AppState;
use crate::ui::format;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwState {
    Starting,
    Ready,
    Unavailable(String),
}

/// Registers the service worker and keeps `app.sw` and `app.online` current.
pub fn start(app: AppState) {
    let Some(window) = web_sys::window() else {
        return;
    };
    app.online.set(window.navigator().on_line());
    for (event, online) in [("online", true), ("offline", false)] {
        let cb = Closure::<dyn FnMut()>::new(move || {
            app.online.set(online);
            // Back online: what the server has may be asked again.
            if online {
                app.refresh_presence();
            }
        });
        let _ = window.add_event_listener_with_callback(event, cb.as_ref().unchecked_ref());
        // Listens for the page's lifetime.
        cb.forget();
    }
    if app.demo {
        ask_to_keep_storage(app, &window);
    }
    let has_sw =
        js_sys::Reflect::has(&window.navigator(), &"serviceWorker".into()).unwrap_or(false);
    if !has_sw {
        app.sw.set(SwState::Unavailable(
            "this browser keeps no offline copy here (it needs https or localhost)".into(),
        ));
        return;
    }
    let container = window.navigator().service_worker();
    let registered = container.register("./sw.js");
    let ready = container.ready();
    leptos::task::spawn_local(async move {
        let registration = match JsFuture::from(registered).await {
            Ok(r) => r,
            Err(e) => {
                let why = e
                    .dyn_ref::<js_sys::Error>()
                    .map(|e| String::from(e.message()))
                    .unwrap_or_else(|| "registration failed".into());
                app.sw.set(SwState::Unavailable(why));
                return;
            }
        };
        watch_first_install(app, &registration);
        if let Ok(r) = ready {
            if JsFuture::from(r).await.is_ok() {
                app.sw.set(SwState::Ready);
            }
        }
    });
}

/// Kiosk mode: asks the browser to keep this site's storage (the cached models, the offline
/// copy) when the disk runs short, where best-effort storage is evicted: an event laptop
/// prepared days before must still have its models. The answer goes on the header's offline
/// status (`data-persisted`, and its title when refused).
fn ask_to_keep_storage(app: AppState, window: &web_sys::Window) {
    let storage = window.navigator().storage();
    if !js_sys::Reflect::has(&storage, &"persist".into()).unwrap_or(false) {
        return;
    }
    let Ok(asked) = storage.persist() else {
        return;
    };
    leptos::task::spawn_local(async move {
        if let Ok(v) = JsFuture::from(asked).await {
            app.persisted.set(v.as_bool());
        }
    });
}

/// A first install that fails (the browser would not store the app's files: its storage is
/// full or refused) leaves no worker that could ever be ready: say so instead of preparing
/// for ever.
fn watch_first_install(app: AppState, registration: &JsValue) {
    let get = |v: &JsValue, key: &str| js_sys::Reflect::get(v, &key.into()).ok();
    let is_none = |v: &Option<JsValue>| v.as_ref().is_none_or(|v| v.is_null() || v.is_undefined());
    let installing = get(registration, "installing");
    if is_none(&installing) || !is_none(&get(registration, "active")) {
        return;
    }
    let Some(installing) = installing else {
        return;
    };
    let worker = installing.clone();
    let cb = Closure::<dyn FnMut()>::new(move || {
        let state = get(&worker, "state").and_then(|s| s.as_string());
        if state.as_deref() == Some("redundant") && app.sw.get_untracked() == SwState::Starting {
            app.sw.set(SwState::Unavailable(
                "the browser would not store the page's files (its storage may be full)".into(),
            ));
        }
    });
    if let Some(target) = installing.dyn_ref::<web_sys::EventTarget>() {
        let _ = target.add_event_listener_with_callback("statechange", cb.as_ref().unchecked_ref());
    }
    // Listens for as long as that worker lives.
    cb.forget();
}

#[component]
pub fn OfflineStatus() -> impl IntoView {
    let app = expect_context::<AppState>();
    // The blind arena's models would show in what the cache gains while a battle loads them
    // (each catalog size, and every sum of two, is its own): not said until the vote.
    let blind = move || {
        app.arena
            .with(|s| s.active && s.pair.is_some() && s.voted.is_none())
    };
    let text = move || {
        let models = app.cached.with(|c| {
            let total: u64 = c.iter().filter_map(|m| m.bytes).sum();
            match c.len() {
                0 => "no models cached yet".to_string(),
                1 => format!("1 model cached ({})", format::bytes(total)),
                n => format!("{n} models cached ({})", format::bytes(total)),
            }
        });
        let models = if blind() {
            "cached models not shown until the vote".to_string()
        } else {
            models
        };
        let net = if app.online.get() { "" } else { "Offline · " };
        match app.sw.get() {
            SwState::Ready => format!("{net}Offline ready · {models}"),
            SwState::Starting => format!("{net}Preparing offline use… · {models}"),
            SwState::Unavailable(why) => format!("{net}No offline copy: {why}"),
        }
    };
    view! {
        <span
            class="offline-status"
            data-testid="offline-status"
            data-state=move || match app.sw.get() {
                SwState::Ready => "ready",
                SwState::Starting => "starting",
                SwState::Unavailable(_) => "unavailable",
            }
            data-online=move || app.online.get().to_string()
            data-persisted=move || app.persisted.get().map(|p| p.to_string())
            title=move || {
                let kept = if app.persisted.get() == Some(false) {
                    " This browser did not agree to keep them when its disk runs short: open the page again before the event."
                } else {
                    ""
                };
                format!("Cached models are listed, with sizes and a remove button, under Models.{kept}")
            }
        >
            {text}
        </span>
    }
}
