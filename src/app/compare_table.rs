//! The comparison table under the panes (shown with two panes or more).

use leptos::prelude::*;

use super::AppState;
use crate::ui::compare::{rows, settings_label, Column};
use crate::ui::settings::Mode;

#[component]
pub fn CompareTable() -> impl IntoView {
    let app = expect_context::<AppState>();
    let data = move || {
        // A chat reply is a generation: its speeds and settings, as the pane's stats show.
        let generating = matches!(app.mode.get(), Mode::Generate | Mode::Chat);
        let units = app.units.get();
        let catalog = app.catalog.get().and_then(|c| c.ok());
        let cols: Vec<Column> = app
            .panes
            .get()
            .iter()
            .map(|p| {
                let s = p.settings.get();
                // The model and settings that made the numbers in this column: another model
                // loaded or a setting changed since does not change what they were made with.
                let (made_by, request) = p.shown(|r| {
                    let made = !r.tokens.is_empty() && !r.model.is_empty();
                    (made.then(|| r.model.clone()), r.request.clone())
                });
                let loaded = p.model(|m| m.loaded.as_ref().map(|l| l.label.clone()));
                let model = made_by.or(loaded);
                let entry = catalog.as_ref().and_then(|c| match &model {
                    Some(name) => c.models.iter().find(|m| &m.name == name).cloned(),
                    None => c.get(&s.model_id).cloned(),
                });
                Column {
                    model: model.unwrap_or_else(|| "–".into()),
                    parameters: entry.map(|e| e.parameters).unwrap_or_else(|| "–".into()),
                    settings: if app.mode.get() == Mode::Score {
                        String::new()
                    } else {
                        settings_label(request.as_ref().filter(|_| generating), &s)
                    },
                    summary: {
                        // Entropy and surprisal in the page's units; perplexity stays as it is.
                        let mut s = p.shown(|r| r.summary_now());
                        s.mean_entropy = s.mean_entropy.map(|v| units.of(v));
                        s.mean_surprisal = s.mean_surprisal.map(|v| units.of(v));
                        s
                    },
                    // What the model read before its first token: a chat reply's
                    // conversation, a prompt read twice, a fork's replayed tokens and a cache
                    // taken over all change it.
                    prompt: request
                        .as_ref()
                        .filter(|_| generating)
                        .map(|q| {
                            let text = match q.messages.is_empty() {
                                true => q.prompt.clone(),
                                false => serde_json::to_string(&q.messages).unwrap_or_default(),
                            };
                            format!(
                                "{text}\u{1}{}{}{}{}",
                                q.chat,
                                q.repeat_prompt,
                                q.forced.len(),
                                q.reuse_cache
                            )
                        })
                        .unwrap_or_default(),
                    fast_detectgpt: p.shown(|r| r.summary.as_ref().and_then(|s| s.fast_detectgpt)),
                    vocabulary: p.shown(|r| r.vocabulary().to_string()),
                    // The span measured: after the unscored first token (`prefix`), or all of
                    // the text after a BOS; a score stopped part way measured a part of that.
                    // The bytes of a first token that was part of a character open the next
                    // token's piece, unmeasured: the span starts after them.
                    text: p.shown(|r| {
                        let span = match r.scored_text.strip_prefix(r.prefix.as_str()) {
                            Some(rest) => format!("{}\u{0}{rest}", r.held_bytes()),
                            None => format!("{}\u{0}{}", r.prefix, r.scored_text),
                        };
                        match (app.mode.get() == Mode::Score, r.partial) {
                            (false, _) => String::new(),
                            (true, false) => span.to_string(),
                            (true, true) => format!("{} tokens of {span}", r.tokens.len()),
                        }
                    }),
                }
            })
            .collect();
        (cols.len(), rows(&cols, generating))
    };
    view! {
        <Show when=move || app.panes.with(|p| p.len() > 1)>
            <section class="compare" aria-label="Comparison">
                <h2>"Comparison"</h2>
                <p class="muted">{move || format!("Entropy and surprisal in {}.", app.units.get().id())}</p>
                <table data-testid="compare-table">
                    <thead>
                        <tr>
                            <th></th>
                            {move || (0..data().0).map(|i| view! { <th>{format!("Pane {}", i + 1)}</th> }).collect_view()}
                        </tr>
                    </thead>
                    <tbody>
                        {move || {
                            data().1
                                .into_iter()
                                .map(|r| {
                                    let best = r.best.clone();
                                    view! {
                                        <tr data-row=r.label>
                                            <th>{r.label}</th>
                                            {r.cells
                                                .into_iter()
                                                .enumerate()
                                                .map(|(i, c)| {
                                                    let is_best = best.contains(&i);
                                                    view! {
                                                        <td class:best=is_best title=if is_best { "best in this row" } else { "" }>
                                                            {c}
                                                            {is_best.then_some(" ★")}
                                                        </td>
                                                    }
                                                })
                                                .collect_view()}
                                        </tr>
                                    }
                                })
                                .collect_view()
                        }}
                    </tbody>
                </table>
                <p class="muted">"★ marks the lowest time, entropy, surprisal, perplexity and bits per byte and the highest speed: the per-token figures only for one text scored by models of one vocabulary (others count other tokens; each generation is its own text), bits per byte only over the same span of one text."</p>
            </section>
        </Show>
    }
}
