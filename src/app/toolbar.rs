//! Above the panes: add a pane, one-click presets, synced scrolling, permalink and export.

use leptos::prelude::*;

use super::browser;
use super::AppState;
use super::MAX_PANES;
use crate::ui::export::{Export, ModelRef, PaneExport, RunExport};
use crate::ui::presets::{self, SMOLLM2};

/// The longest request line this page's own server reads (Python's `http.server`, 64 KiB):
/// a longer link could not even be reloaded.
const MAX_LINK_CHARS: usize = 65_000;
/// Where common servers and apps start refusing links (about 8 KB).
const SHORT_LINK_CHARS: usize = 8_000;

#[component]
pub fn Toolbar() -> impl IntoView {
    let app = expect_context::<AppState>();
    let link = RwSignal::new(String::new());
    // Pane 1's model, a file's included (the presets compare one model with itself); the
    // default model where pane 1 has none.
    let first_model = move || {
        let (id, local) = app
            .panes
            .with_untracked(|ps| {
                ps.first().map(|p| {
                    p.settings
                        .with_untracked(|s| (s.model_id.clone(), s.local_model.clone()))
                })
            })
            .unwrap_or_default();
        match (id.is_empty(), local) {
            (true, Some(l)) => (String::new(), Some(l)),
            (true, None) => (SMOLLM2.to_string(), None),
            (false, _) => (id, None),
        }
    };
    let with_first_model = move |panes: fn(&str) -> Vec<crate::ui::settings::PaneSettings>| {
        let (id, local) = first_model();
        let mut panes = panes(&id);
        for p in &mut panes {
            p.local_model = local.clone();
        }
        app.apply_panes(panes);
    };
    let preset_models = move |_| {
        app.apply_panes(presets::model_vs_model());
    };
    let preset_repetition = move |_| with_first_model(presets::prompt_repetition);
    let preset_temperature = move |_| with_first_model(|m| presets::temperatures(m, 0.2, 1.0));
    let link_note = RwSignal::new(String::new());
    let permalink = move |_| {
        let ws = app.workspace();
        let query = ws.permalink_query(&browser::location_search());
        let url = format!("{}?{query}", browser::page_base());
        let n = url.chars().count();
        if n > MAX_LINK_CHARS {
            // In the address bar it would break the next reload (the server refuses it).
            link.set(String::new());
            link_note.set(format!(
                "Too long for a link: {n} characters, where servers take at most {MAX_LINK_CHARS} \
                 ({} makes most of it). Export JSON keeps the whole workspace.",
                ws.longest_link_part()
            ));
            return;
        }
        // A model from a file is on this machine only: the link names none for its pane.
        let local: Vec<String> = app
            .panes
            .get_untracked()
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let label = p.model_untracked(|m| m.loaded.as_ref().map(|l| l.label.clone()))?;
                p.settings
                    .with_untracked(|s| s.model_id.is_empty())
                    .then(|| format!("pane {} ({label})", i + 1))
            })
            .collect();
        let mut notes = Vec::new();
        if !local.is_empty() {
            notes.push(format!(
                "A link cannot carry a model loaded from a file: {} will open without one.",
                local.join(", ")
            ));
        }
        if n > SHORT_LINK_CHARS {
            notes.push(format!(
                "This link is {n} characters long: many servers, chat apps and mail programs cut \
                 or refuse links over {SHORT_LINK_CHARS}. Export JSON keeps the whole workspace."
            ));
        }
        link_note.set(notes.join(" "));
        // A long link is given to copy, not put in the address bar: a server that refuses it
        // (many stop at 8 KB) would refuse the next reload of the page itself.
        if n <= SHORT_LINK_CHARS {
            browser::replace_url(&url);
        }
        link.set(url);
    };
    let export = move || {
        let catalog = app.catalog.get_untracked().and_then(|c| c.ok());
        let panes = app
            .panes
            .get_untracked()
            .iter()
            .enumerate()
            .map(|(index, p)| {
                let settings = p.settings.get_untracked();
                let loaded = p.model_untracked(|m| m.loaded.clone());
                // The Generate run in every tab: a conversation, its replies' tokens and numbers
                // included, goes out with the settings.
                let run = p.run_untracked(|r| r.clone());
                let score = p.score_untracked(|r| r.clone());
                // The model that made the outputs (another may have been loaded since), else
                // the loaded one, found by its catalog name; a local file matches no entry,
                // so it has no id or sum.
                let made_by = [&run, &score]
                    .into_iter()
                    .find(|r| (!r.tokens.is_empty() || r.finish.is_some()) && !r.model.is_empty())
                    .map(|r| r.model.clone())
                    .or_else(|| loaded.as_ref().map(|l| l.label.clone()));
                let entry = catalog.as_ref().and_then(|c| match &made_by {
                    Some(label) => c.models.iter().find(|m| &m.name == label).cloned(),
                    None => c.get(&settings.model_id).cloned(),
                });
                let same_model =
                    made_by.is_none() || loaded.as_ref().map(|l| &l.label) == made_by.as_ref();
                let loaded = loaded.filter(|_| same_model);
                let model = ModelRef {
                    id: entry.as_ref().map(|e| e.id.clone()),
                    name: made_by.unwrap_or_default(),
                    sha256: entry.as_ref().map(|e| e.sha256.clone()),
                    architecture: loaded
                        .as_ref()
                        .map(|l| l.info.architecture.clone())
                        .or_else(|| entry.as_ref().map(|e| e.architecture.clone()))
                        .unwrap_or_default(),
                    bytes: loaded
                        .as_ref()
                        .map(|l| l.bytes)
                        .or_else(|| entry.as_ref().map(|e| e.bytes))
                        .unwrap_or(0),
                };
                let pane_model = model.name.clone();
                PaneExport {
                    index,
                    model,
                    settings,
                    // A run that ended before its first token (the model's end at once) is
                    // still a run, with its stop reason, as `tinylab generate --json` has it.
                    generation: (!run.tokens.is_empty() || run.finish.is_some()).then(|| {
                        RunExport::new(run.prompt_ids.clone(), "", &run.tokens, run.finish)
                            .made_from(run.request.clone())
                            .made_by(&run.model, &pane_model)
                    }),
                    score: (!score.tokens.is_empty()).then(|| {
                        RunExport::new(score.prompt_ids.clone(), &score.prefix, &score.tokens, None)
                            .scored(
                                score.summary.clone(),
                                score.partial,
                                score.summary_now().bits_per_byte,
                            )
                            .made_by(&score.model, &pane_model)
                    }),
                    human_vs_model: p.state.with_untracked(|s| {
                        s.lab
                            .result
                            .as_ref()
                            .and_then(crate::ui::export::human_vs_model)
                    }),
                    binoculars: p.state.with_untracked(|s| {
                        let observer = s.bino.observer.as_ref()?;
                        Some(crate::ui::export::BinocularsExport {
                            observer_index: app
                                .panes
                                .with_untracked(|ps| ps.iter().position(|q| q.id == observer.pane)),
                            observer_model: observer.model.clone(),
                            performer_model: observer.performer_model.clone(),
                            result: s.bino.result?,
                        })
                    }),
                }
            })
            .collect();
        Export {
            tinylab: env!("CARGO_PKG_VERSION"),
            mode: app.mode.get_untracked(),
            prompt: app.prompt.get_untracked(),
            score_text: app.score_text.get_untracked(),
            panes,
        }
    };
    // The blind arena's panes are its battle: a preset replaced them (three panes, the battle
    // gone without a word), and before the vote a link or an export named the models.
    let arena_on = move || app.arena.with(|s| s.active);
    let unvoted = move || app.arena.with(|s| s.active && s.voted.is_none());
    let hidden_title = move |what: &str| {
        if unvoted() {
            format!("The blind arena's models stay hidden until the vote: no {what} before it")
        } else {
            String::new()
        }
    };
    view! {
        <div class="toolbar" role="toolbar" aria-label="Panes">
            <button
                type="button"
                data-testid="add-pane"
                // The blind arena is two hidden panes; a third would stand outside the battle.
                prop:disabled=move || app.panes.with(|p| p.len() >= MAX_PANES) || app.arena.with(|s| s.active)
                on:click=move |_| app.add_pane()
            >
                "+ Add pane"
            </button>
            <span class="muted">"Presets:"</span>
            <button type="button" data-testid="preset-models" prop:disabled=move || app.any_busy() || arena_on() on:click=preset_models
                title="SmolLM2-135M, Gemma 3 270M and Qwen2.5-0.5B on the same prompt, greedy">
                "Model vs model"
            </button>
            <button type="button" data-testid="preset-repetition" prop:disabled=move || app.any_busy() || arena_on() on:click=preset_repetition
                title="The same model with the prompt once and twice">
                "Prompt repetition"
            </button>
            <button type="button" data-testid="preset-temperature" prop:disabled=move || app.any_busy() || arena_on() on:click=preset_temperature
                title="The same model at temperature 0.2 and 1.0, same seed">
                "Temperature"
            </button>
            <label class="check">
                <input
                    type="checkbox"
                    data-testid="sync-scroll"
                    prop:checked=move || app.sync_scroll.get()
                    on:change=move |ev| app.sync_scroll.set(event_target_checked(&ev))
                />
                "Scroll panes together"
            </label>
            <span class="spacer"></span>
            <button type="button" data-testid="permalink" on:click=permalink
                prop:disabled=unvoted title=move || hidden_title("link")>"Permalink"</button>
            <button
                type="button"
                data-testid="export-json"
                prop:disabled=unvoted
                title=move || hidden_title("export")
                on:click=move |_| {
                    let _ = browser::download("tinylab-run.json", "application/json", &export().to_json());
                }
            >
                "Export JSON"
            </button>
            <button
                type="button"
                data-testid="export-csv"
                prop:disabled=unvoted
                title=move || hidden_title("export")
                on:click=move |_| {
                    let _ = browser::download("tinylab-tokens.csv", "text/csv", &export().to_csv());
                }
            >
                "Export CSV"
            </button>
        </div>
        <Show when=move || !link.get().is_empty()>
            <p class="permalink">
                <label>
                    "Link to this workspace: "
                    <input type="text" readonly data-testid="permalink-url" prop:value=move || link.get()
                        on:focus=move |ev| {
                            event_target::<web_sys::HtmlInputElement>(&ev).select();
                        } />
                </label>
            </p>
        </Show>
        <Show when=move || !link_note.get().is_empty()>
            <p class="muted" data-testid="permalink-note" role="status">{move || link_note.get()}</p>
        </Show>
    }
}
