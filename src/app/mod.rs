//! The page: Leptos, client-side rendered, built by Trunk from `www/index.html`.
//!
//! `App` owns the workspace (prompt and panes) and keeps it in localStorage; each pane
//! (`pane.rs`, state in `pane_state.rs`) owns a Web Worker running the engine
//! (`worker_client.rs` speaks `crate::protocol`). Nothing here computes model numbers: figures
//! come from the worker, formatting and colours from `crate::ui`.

mod browser;
mod catalog_panel;
mod chart;
mod controls;
mod model_loader;
mod pane;
mod pane_state;
mod stats;
mod tokens;
mod worker_client;

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;

use catalog_panel::CatalogPanel;
use pane::PaneView;
use pane_state::Pane;

use crate::ui::catalog::{Catalog, CATALOG_URL};
use crate::ui::settings::{Mode, Workspace};

const WORKSPACE_KEY: &str = "tinylab.workspace.v1";
const THEME_KEY: &str = "tinylab.theme";

/// Where a catalog model can be had from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Cached,
    OnServer,
    Missing,
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub catalog: RwSignal<Option<Result<Catalog, String>>>,
    pub present: RwSignal<HashMap<String, Presence>>,
    pub prompt: RwSignal<String>,
    pub panes: RwSignal<Vec<Pane>>,
    pub mode: RwSignal<Mode>,
}

impl AppState {
    /// Re-checks which catalog models are cached or on the server.
    pub fn refresh_presence(self) {
        let Some(Ok(catalog)) = self.catalog.get_untracked() else {
            return;
        };
        spawn_local(async move {
            let cached: Vec<String> = browser::cached_models()
                .await
                .map(|v| v.into_iter().map(|m| m.url).collect())
                .unwrap_or_default();
            let mut found = HashMap::new();
            for m in &catalog.models {
                let url = browser::absolute(&m.url());
                let p = if cached.contains(&url) {
                    Presence::Cached
                } else if browser::exists(&m.url()).await {
                    Presence::OnServer
                } else {
                    Presence::Missing
                };
                found.insert(m.id.clone(), p);
            }
            self.present.set(found);
        });
    }

    pub fn run_all(self) {
        let prompt = self.prompt.get_untracked();
        for p in self.panes.get_untracked() {
            p.start_run(&prompt);
        }
    }

    pub fn stop_all(self) {
        for p in self.panes.get_untracked() {
            p.stop();
        }
    }
}

pub fn mount() {
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let mut ws = Workspace::from_saved(browser::local_get(WORKSPACE_KEY).as_deref());
    ws.apply_query(&browser::location_search());
    let state = AppState {
        catalog: RwSignal::new(None),
        present: RwSignal::new(HashMap::new()),
        prompt: RwSignal::new(ws.prompt.clone()),
        panes: RwSignal::new(
            ws.panes
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, s)| Pane::new(i, s))
                .collect(),
        ),
        mode: RwSignal::new(ws.mode),
    };
    provide_context(state);

    // Save the workspace on every change, so a reload loses nothing.
    Effect::new(move |_| {
        let ws = Workspace {
            prompt: state.prompt.get(),
            panes: state.panes.get().iter().map(|p| p.settings.get()).collect(),
            mode: state.mode.get(),
        };
        browser::local_set(WORKSPACE_KEY, &ws.to_saved());
    });

    // Read the catalog; then reload the models the workspace names.
    spawn_local(async move {
        let catalog = browser::fetch_text(CATALOG_URL)
            .await
            .map_err(|e| format!("Could not read the model catalog ({e})."))
            .and_then(|t| Catalog::parse(&t));
        state.catalog.set(Some(catalog.clone()));
        state.refresh_presence();
        if let Ok(c) = catalog {
            for p in state.panes.get_untracked() {
                let id = p.settings.with_untracked(|s| s.model_id.clone());
                if let Some(m) = c.get(&id) {
                    p.load_catalog(m);
                }
            }
        }
    });

    let theme = RwSignal::new(browser::local_get(THEME_KEY).unwrap_or_else(|| "auto".into()));
    Effect::new(move |_| {
        let t = theme.get();
        browser::set_theme(&t);
        browser::local_set(THEME_KEY, &t);
    });

    let on_prompt_key = move |ev: web_sys::KeyboardEvent| {
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            ev.prevent_default();
            state.run_all();
        }
    };
    let any_running = move || {
        state.panes.with(|ps| {
            ps.iter()
                .any(|p| p.run.with(|r| r.phase == pane_state::OutputPhase::Running))
        })
    };

    view! {
        <header class="top">
            <h1>"TinyLab"</h1>
            <p class="tagline">"Small language models, run in your browser, measured token by token."</p>
            <label class="theme">
                <span class="muted">"Theme"</span>
                <select
                    data-testid="theme"
                    prop:value=move || theme.get()
                    on:change=move |ev| theme.set(event_target_value(&ev))
                >
                    <option value="auto">"System"</option>
                    <option value="light">"Light"</option>
                    <option value="dark">"Dark"</option>
                </select>
            </label>
        </header>
        <main>
            <CatalogPanel />
            <nav class="tabs" role="tablist">
                <button type="button" role="tab" data-testid="tab-generate" aria-selected="true" class="active">
                    "Generate"
                </button>
            </nav>
            <section class="prompt-box" aria-label="Prompt">
                <label for="prompt">"Prompt"</label>
                <textarea
                    id="prompt"
                    data-testid="prompt"
                    rows="4"
                    spellcheck="false"
                    prop:value=move || state.prompt.get()
                    on:input=move |ev| state.prompt.set(event_target_value(&ev))
                    on:keydown=on_prompt_key
                ></textarea>
                <div class="prompt-actions">
                    <button
                        type="button"
                        class="primary"
                        data-testid="run-all"
                        prop:disabled=any_running
                        on:click=move |_| state.run_all()
                    >
                        "Run"
                    </button>
                    <button
                        type="button"
                        data-testid="stop-all"
                        prop:disabled=move || !any_running()
                        on:click=move |_| state.stop_all()
                    >
                        "Stop"
                    </button>
                    <span class="muted">"Ctrl+Enter (⌘+Enter) runs."</span>
                </div>
            </section>
            <div class="panes">
                <For each=move || state.panes.get() key=|p| p.index let:pane>
                    <PaneView pane />
                </For>
            </div>
        </main>
        <footer class="muted">
            "Everything runs on this device: no server computes anything, and your files never leave it."
        </footer>
    }
}
