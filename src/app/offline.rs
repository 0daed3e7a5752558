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
        let cb = Closure::<dyn FnMut()>::new(move || app.online.set(online));
        let _ = window.add_event_listener_with_callback(event, cb.as_ref().unchecked_ref());
        // Listens for the page's lifetime.
        cb.forget();
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
        if let Err(e) = JsFuture::from(registered).await {
            let why = e
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|| "registration failed".into());
            app.sw.set(SwState::Unavailable(why));
            return;
        }
        if let Ok(r) = ready {
            if JsFuture::from(r).await.is_ok() {
                app.sw.set(SwState::Ready);
            }
        }
    });
}

#[component]
pub fn OfflineStatus() -> impl IntoView {
    let app = expect_context::<AppState>();
    let text = move || {
        let models = app.cached.with(|c| {
            let total: u64 = c.iter().filter_map(|m| m.bytes).sum();
            match c.len() {
                0 => "no models cached yet".to_string(),
                1 => format!("1 model cached ({})", format::bytes(total)),
                n => format!("{n} models cached ({})", format::bytes(total)),
            }
        });
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
            title="Cached models are listed, with sizes and a remove button, under Models"
        >
            {text}
        </span>
    }
}
