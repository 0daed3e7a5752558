//! One model pane: loader, settings, run/stop, coloured output, inspector, chart and stats.
//! Dropping a .gguf anywhere on the pane loads it.

use leptos::prelude::*;

use super::chart::EntropyChart;
use super::controls::Controls;
use super::model_loader::{drags_files, dropped_file, ModelLoader};
use super::pane_state::{ModelPhase, OutputPhase, Pane};
use super::stats::RunStats;
use super::tokens::{ColorSwitch, Inspector, TokenOutput};
use super::AppState;

#[component]
pub fn PaneView(pane: Pane) -> impl IntoView {
    let app = expect_context::<AppState>();
    let dragging = RwSignal::new(false);
    let running = move || pane.run.with(|r| r.phase == OutputPhase::Running);
    let ready = move || pane.model.with(|m| m.phase == ModelPhase::Ready);
    view! {
        <section
            class="pane"
            class:dragging=move || dragging.get()
            data-testid="pane"
            data-pane-index=pane.index.to_string()
            aria-label=format!("Model pane {}", pane.index + 1)
            on:dragover=move |ev: web_sys::DragEvent| {
                if drags_files(&ev) {
                    ev.prevent_default();
                    dragging.set(true);
                }
            }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |ev: web_sys::DragEvent| {
                ev.prevent_default();
                dragging.set(false);
                if let Some(file) = dropped_file(&ev) {
                    if !pane.is_busy() {
                        pane.load_file(file);
                    }
                }
            }
        >
            <header class="pane-head">
                <h2>{format!("Pane {}", pane.index + 1)}</h2>
                <span class="muted model-meta">
                    {move || {
                        pane.model.with(|m| {
                            m.loaded
                                .as_ref()
                                .map(|l| {
                                    format!(
                                        "{} · {} · {} layers · vocab {} · chat template: {}",
                                        l.info.architecture,
                                        l.info.tensor_types,
                                        l.info.n_layer,
                                        l.info.vocab_size,
                                        l.info.chat_template_source,
                                    )
                                })
                                .unwrap_or_default()
                        })
                    }}
                </span>
            </header>
            <ModelLoader pane />
            <details class="settings" open>
                <summary>"Settings"</summary>
                <Controls pane />
            </details>
            <div class="run-row">
                <button
                    type="button"
                    class="primary"
                    data-testid="run"
                    prop:disabled=move || running() || !ready()
                    on:click=move |_| pane.start_run(&app.prompt.get_untracked())
                >
                    "Run"
                </button>
                <button
                    type="button"
                    data-testid="stop"
                    prop:disabled=move || !running()
                    on:click=move |_| pane.stop()
                >
                    "Stop"
                </button>
                <span class="run-message" data-testid="run-message" role="status">
                    {move || pane.run.with(|r| r.message.clone())}
                </span>
            </div>
            <ColorSwitch pane />
            <TokenOutput pane />
            <Inspector pane />
            <EntropyChart pane />
            <RunStats pane />
        </section>
    }
}
