//! One model pane: loader, settings, run/stop, coloured output, inspector, chart and stats.
//! Dropping a .gguf anywhere on the pane loads it.

use leptos::prelude::*;

use super::branches::Branches;
use super::chart::EntropyChart;
use super::chat_view::ChatView;
use super::controls::Controls;
use super::histograms::Histograms;
use super::lab_view::LabView;
use super::model_loader::{drags_files, dropped_file, dropped_folder, folder_note, ModelLoader};
use super::pane_state::{ModelPhase, Pane, Queued};
use super::stats::RunStats;
use super::tokens::{ColorSwitch, Inspector, TokenOutput};
use super::AppState;
use crate::ui::settings::Mode;

#[component]
pub fn PaneView(pane: Pane) -> impl IntoView {
    let app = expect_context::<AppState>();
    let dragging = RwSignal::new(false);
    let drop_note = RwSignal::new(None::<String>);
    // The note is about the load or run it met: it goes when another model starts loading
    // (chosen in the list, opened or dropped).
    let noted_model = StoredValue::new(String::new());
    Effect::new(move |_| {
        let (loading, label) = pane.model(|m| (m.phase == ModelPhase::Loading, m.label.clone()));
        if loading
            && drop_note.with_untracked(Option::is_some)
            && noted_model.with_value(|l| *l != label)
        {
            drop_note.set(None);
        }
    });
    let running = move || pane.is_running();
    let ready = move || pane.model(|m| m.phase == ModelPhase::Ready);
    let chosen_not_loaded = move || app.chosen_not_loaded(pane);
    let index = move || app.position(pane.id);
    let generating = move || app.mode.get() == Mode::Generate;
    view! {
        <section
            class="pane"
            class:dragging=move || dragging.get()
            data-testid="pane"
            data-pane-index=move || index().to_string()
            aria-label=move || format!("Model pane {}", index() + 1)
            on:dragover=move |ev: web_sys::DragEvent| {
                // Kiosk mode takes no files, dropped or chosen: no drop target is shown, and
                // the browser's own handling is left alone (as on the evaluation panel).
                if drags_files(&ev) && !app.demo {
                    ev.prevent_default();
                    dragging.set(true);
                }
            }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |ev: web_sys::DragEvent| {
                ev.prevent_default();
                dragging.set(false);
                if app.demo {
                    return;
                }
                if let Some(file) = dropped_file(&ev) {
                    if dropped_folder(&ev) {
                        noted_model.set_value(pane.model_untracked(|m| m.label.clone()));
                        drop_note.set(Some(folder_note(&file.name(), "the .gguf file")));
                    } else if pane.is_busy() {
                        // The pickers are locked while busy; a drop has no lock to show, so
                        // it says why nothing happened.
                        noted_model.set_value(pane.model_untracked(|m| m.label.clone()));
                        drop_note.set(Some(format!(
                            "{} was not opened: this pane is busy. Drop it again once the \
                             load or run ends (Stop ends a run), or on another pane.",
                            file.name()
                        )));
                    } else {
                        drop_note.set(None);
                        let twins = app.twins_of_size(file.size() as u64);
                        pane.load_file(file, twins);
                    }
                }
            }
        >
            <header class="pane-head">
                <h2>
                    {move || {
                        // The arena's panes are the hidden models A and B.
                        if app.arena.with(|s| s.active) && app.panes.with(|p| p.len() == 2) {
                            format!("Model {}", if index() == 0 { "A" } else { "B" })
                        } else {
                            format!("Pane {}", index() + 1)
                        }
                    }}
                </h2>
                <span class="pane-settings" data-testid="pane-settings">
                    {move || {
                        pane.settings.with(|s| {
                            format!(
                                "T {} · seed {}{}{}",
                                s.temperature,
                                s.seed,
                                if s.chat { " · chat" } else { " · raw" },
                                if s.repeat_prompt { " · prompt ×2" } else { "" }
                            )
                        })
                    }}
                </span>
                <span class="muted model-meta">
                    {move || {
                        pane.model(|m| {
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
                <button
                    type="button"
                    class="remove"
                    data-testid="remove-pane"
                    title=move || if app.arena.with(|s| s.active) {
                        "The blind arena needs both its panes: leave the arena to remove one"
                    } else {
                        "Remove this pane"
                    }
                    aria-label=move || format!("Remove pane {}", index() + 1)
                    prop:disabled=move || app.panes.with(|p| p.len() <= 1) || app.arena.with(|s| s.active)
                    on:click=move |_| app.remove_pane(pane.id)
                >
                    "×"
                </button>
            </header>
            <ModelLoader pane />
            <Show when=move || drop_note.with(Option::is_some)>
                <p class="muted drop-note" data-testid="drop-note" role="status">
                    {move || drop_note.get().unwrap_or_default()}
                </p>
            </Show>
            // The Evaluate tab scores every pane's model in its own panel, with its own
            // conditions: the pane's sampling settings, run, output and figures do not apply.
            <Show
                when=move || app.mode.get() != Mode::Eval
                fallback=|| view! {
                    <p class="muted pane-eval-note" data-testid="pane-eval-note">
                        "The Evaluate panel above scores this pane's model, with its own conditions; the results are there."
                    </p>
                }
            >
            <details class="settings" open>
                <summary>"Settings"</summary>
                <Controls pane />
            </details>
            <Show when=move || app.mode.get() != Mode::Chat fallback=move || view! { <ChatView pane /> }>
            <div class="run-row">
                <Show
                    when=generating
                    fallback=move || view! {
                        <button
                            type="button"
                            class="primary"
                            data-testid="score"
                            prop:disabled=move || running() || !(ready() || chosen_not_loaded())
                            on:click=move |_| app.start_on(pane, Queued::Score(app.score_text.get_untracked()))
                        >
                            "Score"
                        </button>
                    }
                >
                    <button
                        type="button"
                        class="primary"
                        data-testid="run"
                        prop:disabled=move || running() || app.arena_waiting() || !(ready() || chosen_not_loaded())
                        on:click=move |_| app.run_pane(pane, &app.prompt.get_untracked())
                    >
                        "Run"
                    </button>
                </Show>
                <button
                    type="button"
                    data-testid="stop"
                    // Also for a run waiting on its model's load (which goes on).
                    prop:disabled=move || !running() && !pane.has_queued() && !app.arena_waiting()
                    on:click=move |_| pane.stop()
                >
                    "Stop"
                </button>
                <Show when=move || app.debug>
                    <button type="button" data-testid="debug-crash" on:click=move |_| pane.crash_worker()>
                        "Crash worker"
                    </button>
                </Show>
                <span class="run-message" data-testid="run-message" role="status">
                    {move || {
                        let busy = pane.state.with(|s| s.busy_elsewhere(app.mode.get()));
                        // A blind battle says only what went wrong: prompt sizes (each
                        // model's template and tokenizer) and progress tell the models apart.
                        let blind = app.arena_hidden();
                        busy.unwrap_or_else(|| {
                            pane.shown(|r| {
                                if blind && r.phase != crate::ui::pane::OutputPhase::Error {
                                    String::new()
                                } else {
                                    r.message.clone()
                                }
                            })
                        })
                    }}
                </span>
                {move || {
                    (app.mode.get() == Mode::Score)
                        .then(|| {
                            app.score_text.with(|t| {
                                pane.state.with(|s| {
                                    s.score.stale_score(&s.model.identity(), &s.model.label, t)
                                })
                            })
                        })
                        .flatten()
                        .map(|why| view! {
                            <span class="stale-note" data-testid="score-stale" role="status">{why}</span>
                        })
                }}
                {move || {
                    generating()
                        .then(|| {
                            let prompt = app.prompt.get();
                            pane.settings.with(|settings| {
                                pane.state.with(|s| {
                                    s.run.stale_generation(
                                        &s.model.identity(),
                                        &s.model.label,
                                        &prompt,
                                        settings,
                                    )
                                })
                            })
                        })
                        .flatten()
                        .map(|why| view! {
                            <span class="stale-note" data-testid="run-stale" role="status">{why}</span>
                        })
                }}
            </div>
            </Show>
            <ColorSwitch pane />
            <Show when=move || app.mode.get() != Mode::Chat>
                <Show when=generating>
                    <Branches pane />
                </Show>
                <TokenOutput pane />
            </Show>
            <Inspector pane />
            <div class="chart-row">
                <EntropyChart pane />
                <Histograms pane />
            </div>
            <RunStats pane />
            <Show when=move || !generating()>
                <LabView pane />
            </Show>
            </Show>
        </section>
    }
}
