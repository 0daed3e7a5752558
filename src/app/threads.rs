//! The thread-count control. A cross-origin isolated page (the README's serve command sends
//! COOP/COEP) runs the shared-memory build of the model worker, whose weight products can use
//! helper threads; anywhere else the page runs the single-threaded build and the control is
//! fixed at 1. The choice is kept in localStorage and sent to every pane's worker.

use leptos::prelude::*;

use super::browser;
use super::AppState;
use crate::engine::parallel::MAX_PAGE_THREADS as MAX_THREADS;
use crate::protocol::ToWorker;

const KEY: &str = "tinylab-threads";

/// The threaded build sits in its own folder, so the helper it starts (`./tinylab_helper.js`)
/// and its glue resolve next to it. The page's build rides along (`?build=`): the service
/// worker answers a request for another build than its own from the network, so a page of a
/// new deploy never starts the old deploy's cached worker.
pub fn worker_url() -> String {
    let file = if isolated() {
        "./threads/tinylab_worker_loader.js"
    } else {
        "./tinylab_worker_loader.js"
    };
    super::browser::with_build(file)
}

fn isolated() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &"crossOriginIsolated".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// The most threads this page can use.
pub fn max() -> usize {
    if !isolated() {
        return 1;
    }
    web_sys::window()
        .map(|w| w.navigator().hardware_concurrency() as usize)
        .unwrap_or(1)
        .clamp(1, MAX_THREADS)
}

/// The saved choice, all cores by default.
pub fn wanted() -> usize {
    browser::local_get(KEY)
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(usize::MAX)
        .clamp(1, max())
}

thread_local! {
    static PANES: std::cell::Cell<usize> = const { std::cell::Cell::new(1) };
}

/// Panes share the cores: every pane has its own worker, and helpers that outnumber the cores
/// spin against each other, so each pane gets its share of the cores, at most the choice.
pub fn set_panes(n: usize) {
    PANES.with(|p| p.set(n.max(1)));
}

fn per_pane() -> usize {
    let share = (max() / PANES.with(|p| p.get())).max(1);
    wanted().min(share)
}

pub fn request() -> ToWorker {
    ToWorker::Threads { count: per_pane() }
}

#[component]
pub fn ThreadsControl() -> impl IntoView {
    let app = expect_context::<AppState>();
    let max = max();
    let chosen = RwSignal::new(wanted());
    let title = if max > 1 {
        "Threads for the weight products (this page is cross-origin isolated); panes running side by side share the cores"
    } else {
        "One thread: threads need a cross-origin isolated page (served with COOP/COEP headers), as `bash scripts/serve.sh` does"
    };
    let on_change = move |ev| {
        let Ok(n) = event_target_value(&ev).parse::<usize>() else {
            return;
        };
        browser::local_set(KEY, &n.to_string());
        chosen.set(n.clamp(1, max));
        for p in app.panes.get_untracked() {
            p.send_threads();
        }
    };
    view! {
        <label class="threads" title=title>
            <span class="muted">"Threads"</span>
            <select data-testid="threads" prop:disabled=max <= 1 prop:value=move || chosen.get().to_string() on:change=on_change>
                {(1..=max)
                    .map(|n| view! { <option value=n.to_string()>{n.to_string()}</option> })
                    .collect_view()}
            </select>
        </label>
    }
}
