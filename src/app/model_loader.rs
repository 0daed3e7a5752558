//! Choosing a model for a pane: the catalog select, a local file, or a file dropped on the pane;
//! then its status and load progress.

use leptos::prelude::*;

use super::pane_state::{ModelPhase, Pane};
use super::AppState;
use crate::ui::format;

#[component]
pub fn ModelLoader(pane: Pane) -> impl IntoView {
    let app = expect_context::<AppState>();
    let on_select = move |ev: leptos::ev::Event| {
        let id = event_target_value(&ev);
        let model = app.catalog.with_untracked(|c| {
            c.as_ref()
                .and_then(|c| c.as_ref().ok())
                .and_then(|c| c.get(&id).cloned())
        });
        if let Some(m) = model {
            pane.load_catalog(&m);
        }
    };
    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            let twins = app.twins_of_size(file.size() as u64);
            pane.load_file(file, twins);
        }
        // Choosing the same file again should load it again.
        input.set_value("");
    };
    let options = move || {
        app.catalog.with(|c| match c {
            Some(Ok(c)) => c
                .models
                .iter()
                .map(|m| {
                    let present = app.present.with(|p| p.get(&m.id).copied());
                    let suffix = match present {
                        Some(super::Presence::Cached) => " · cached",
                        Some(super::Presence::OnServer) => "",
                        Some(super::Presence::Missing) => " · not on this server",
                        None => "",
                    };
                    let label = format!("{}{suffix}", m.describe());
                    view! { <option value=m.id.clone()>{label}</option> }
                })
                .collect_view()
                .into_any(),
            _ => ().into_any(),
        })
    };
    let busy = move || pane.model(|m| m.phase == ModelPhase::Loading);
    let progress_value = move || {
        pane.model(|m| {
            m.progress
                .and_then(|p| format::percent(p.loaded, p.total))
                .unwrap_or(0.0)
        })
    };
    let progress_text = move || {
        pane.model(|m| {
            m.progress
                .map(|p| {
                    let from = if p.from_cache {
                        "from cache"
                    } else {
                        "reading"
                    };
                    format!(
                        "{from}: {}",
                        format::progress(p.loaded, p.total, p.elapsed_ms)
                    )
                })
                .unwrap_or_default()
        })
    };
    view! {
        <div class="model-loader">
            <label class="field grow">
                <span>"Model"</span>
                <select
                    data-testid="model-select"
                    prop:value=move || pane.settings.with(|s| s.model_id.clone())
                    prop:disabled=move || pane.is_busy()
                    on:change=on_select
                >
                    <option value="">"— choose a model —"</option>
                    {options}
                </select>
            </label>
            <label class="file-button">
                "Open .gguf…"
                <input
                    type="file"
                    accept=".gguf"
                    data-testid="model-file"
                    prop:disabled=move || pane.is_busy()
                    on:change=on_file
                />
            </label>
        </div>
        <div class="model-status-row">
            <p
                class="model-status"
                data-testid="model-status"
                data-worker-build=move || pane.state.with(|s| s.worker_build.clone())
                data-state=move || pane.model(|m| m.phase.id())
                data-cache=move || pane.model(|m| m.loaded.as_ref().map(crate::ui::pane::cache_state))
                data-memory=move || pane.model(|m| m.loaded.as_ref().map(|l| l.wasm_memory_bytes.to_string()))
                role="status"
                aria-live="polite"
            >
                {move || {
                    if pane.model(|m| m.phase != ModelPhase::Empty) {
                        return pane.model(|m| m.message.clone());
                    }
                    if app.demo {
                        // Kiosk mode hides the choosers: only the demo buttons load models.
                        return "No model loaded yet: press one of the demos above.".to_string();
                    }
                    match app.chosen_model(pane) {
                        Some(m) if app.present.with(|p| p.get(&m.id) == Some(&super::Presence::Missing)) => {
                            format!(
                                "{} is chosen, but this server does not have it (with \
                                 scripts/serve.py, python3 scripts/fetch_models.py --all fetches \
                                 it; another server needs the file in assets/models/); choose \
                                 another model or drop a .gguf file on this pane.",
                                m.name
                            )
                        }
                        Some(m) => format!(
                            "{} is chosen ({}); Run loads it from this server and runs \
                             (Score and Send load it too).",
                            m.name,
                            format::bytes(m.bytes)
                        ),
                        None => {
                            // A link (or a saved page) may have named a model this catalog
                            // lacks: the app said so in the model's message.
                            let note = pane.model(|m| m.message.clone());
                            if note.is_empty() {
                                "No model loaded. Choose one above, or drop a .gguf file on this pane."
                                    .to_string()
                            } else {
                                note
                            }
                        }
                    }
                }}
            </p>
            <p
                class="muted supported-formats"
                data-testid="supported-formats"
                class:hidden=move || {
                    pane.model(|m| !matches!(m.phase, ModelPhase::Empty | ModelPhase::Error))
                }
            >
                {format!(
                    "Runs GGUF models of these architectures: {}. Weights: {}.",
                    crate::engine::model::SUPPORTED_ARCHITECTURES,
                    crate::engine::gguf::SUPPORTED_QUANTIZATIONS,
                )}
            </p>
            <div class="progress" class:hidden=move || !busy()>
                <progress data-testid="load-progress" aria-label="Model loaded" max="100" prop:value=progress_value></progress>
                <span class="progress-text">{progress_text}</span>
                // A download that stalls never ends by itself, and Stop leaves a load going
                // (the next run needs it): this ends it, and the worker with it.
                <button type="button" data-testid="cancel-load" on:click=move |_| pane.cancel_load()>
                    "Cancel"
                </button>
            </div>
        </div>
    }
}

/// Pulls the first file out of a drop event.
pub fn dropped_file(ev: &web_sys::DragEvent) -> Option<web_sys::File> {
    ev.data_transfer()?.files()?.get(0)
}

/// Whether the first thing dropped is a folder. Browsers hand a dropped folder over as a File
/// whose reading then fails with an error that names no folder; its entry says what it is. Only
/// readable while the drop event is being handled.
pub fn dropped_folder(ev: &web_sys::DragEvent) -> bool {
    use wasm_bindgen::JsCast;
    let get = |target: &wasm_bindgen::JsValue, key: &str| {
        js_sys::Reflect::get(target, &key.into()).unwrap_or(wasm_bindgen::JsValue::UNDEFINED)
    };
    let Some(dt) = ev.data_transfer() else {
        return false;
    };
    let first = get(&get(&dt, "items"), "0");
    let Some(entry_of) = get(&first, "webkitGetAsEntry")
        .dyn_into::<js_sys::Function>()
        .ok()
    else {
        return false;
    };
    entry_of
        .call0(&first)
        .map(|entry| get(&entry, "isDirectory").as_bool() == Some(true))
        .unwrap_or(false)
}

/// What a dropped folder is told; `wanted` names the file it should have been.
pub fn folder_note(name: &str, wanted: &str) -> String {
    format!("{name} is a folder: open it and drop {wanted} itself.")
}

/// Whether a drag carries files (and not, say, selected text).
pub fn drags_files(ev: &web_sys::DragEvent) -> bool {
    ev.data_transfer()
        .map(|dt| {
            dt.types()
                .iter()
                .any(|t| t.as_string().as_deref() == Some("Files"))
        })
        .unwrap_or(false)
}
