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

/// Each build of the worker sits in its own folder, so the helper it starts
/// (`./tinylab_helper.js`) and its glue resolve next to it: threads where the page is
/// cross-origin isolated, relaxed SIMD where the browser has it (`relaxed_simd`). The page's
/// build rides along (`?build=`): the service worker answers a request for another build than
/// its own from the network, so a page of a new deploy never starts the old deploy's cached
/// worker.
pub fn worker_url() -> String {
    let dir = match (isolated(), relaxed_simd()) {
        (true, true) => "./threads-relaxed/",
        (true, false) => "./threads/",
        (false, true) => "./relaxed/",
        (false, false) => "./",
    };
    super::browser::with_build(&format!("{dir}tinylab_worker_loader.js"))
}

/// The model worker's name, which tells a relaxed worker how to sum its byte products
/// (`engine::dot_form::DotRequest`): the page's `?dot=pairs|add` (for tests and for
/// comparing), or this browser's earlier measurement (`ui::dot_memory`); empty, it measures.
/// A name rather than the worker's address: once the service worker controls the page it
/// answers the worker's script from its cache, and a worker's `location` is then the cached
/// response's address, without the query.
pub fn worker_name() -> String {
    if !relaxed_simd() {
        return String::new();
    }
    crate::ui::dot_memory::worker_query(
        &browser::location_search(),
        browser::local_get(crate::ui::dot_memory::KEY).as_deref(),
        &browser::this_browser(),
    )
    .unwrap_or_default()
}

/// A module of one function that uses `i8x16.relaxed_swizzle`: browsers without relaxed SIMD
/// refuse to validate it (wasm-feature-detect's probe).
const RELAXED_PROBE: [u8; 36] = [
    0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253,
    15, 65, 2, 253, 15, 253, 128, 2, 11,
];

/// Whether the workers run the relaxed-SIMD build: the browser validates relaxed SIMD, and the
/// address does not say `simd=plain` (which forces the simd128 build, for tests and for
/// comparing). Both builds give the same bits (`engine::q8_0`).
pub fn relaxed_simd() -> bool {
    thread_local! {
        static RELAXED: bool = {
            let forced_plain = browser::location_search()
                .trim_start_matches('?')
                .split('&')
                .any(|kv| kv == "simd=plain");
            !forced_plain
                && js_sys::WebAssembly::validate(&js_sys::Uint8Array::from(&RELAXED_PROBE[..]).into())
                    .unwrap_or(false)
        };
    }
    RELAXED.with(|r| *r)
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
    browser::local_get(&browser::own_key(KEY))
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

/// Back to the default (all cores), as kiosk mode's Reset does, told to every pane's worker.
pub fn forget_choice(app: AppState) {
    browser::local_remove(&browser::own_key(KEY));
    app.threads.set(wanted());
    for p in app.panes.get_untracked() {
        p.send_threads();
    }
}

pub fn request() -> ToWorker {
    ToWorker::Threads { count: per_pane() }
}

#[component]
pub fn ThreadsControl() -> impl IntoView {
    let app = expect_context::<AppState>();
    let max = max();
    let chosen = app.threads;
    let title = if max > 1 {
        "Threads for the weight products (this page is cross-origin isolated); panes running side by side share the cores"
    } else if isolated() {
        "One thread: this browser reports a single core"
    } else {
        "One thread: threads need a cross-origin isolated page (served with COOP/COEP headers), as `bash scripts/serve.sh` does"
    };
    let on_change = move |ev| {
        let Ok(n) = event_target_value(&ev).parse::<usize>() else {
            return;
        };
        browser::local_set(&browser::own_key(KEY), &n.to_string());
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
