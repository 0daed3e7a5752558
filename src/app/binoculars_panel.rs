//! Binoculars (Hans et al., 2024) for two loaded panes that share a vocabulary: the first is the
//! observer, the second the performer. The observer's full next-token distributions go, as a
//! transferred buffer, from its worker through the page to the performer's worker.

use leptos::prelude::*;

use super::pane_state::{OutputPhase, Pane};
use super::AppState;
use crate::ui::format::num;

/// The first two ready panes with the same vocabulary, or why there are none.
fn pair(panes: &[Pane]) -> Result<(Pane, Pane), String> {
    let ready: Vec<(Pane, String, String, usize)> = panes
        .iter()
        .filter_map(|p| {
            p.model(|m| {
                m.loaded.as_ref().map(|l| {
                    (
                        *p,
                        l.info.vocab_fingerprint.clone(),
                        l.label.clone(),
                        l.info.vocab_size,
                    )
                })
            })
        })
        .collect();
    if ready.len() < 2 {
        return Err("Binoculars needs models loaded in two panes.".into());
    }
    for (i, a) in ready.iter().enumerate() {
        if let Some(b) = ready[i + 1..].iter().find(|b| b.1 == a.1) {
            return Ok((a.0, b.0));
        }
    }
    let list = ready
        .iter()
        .map(|r| format!("{} ({} tokens)", r.2, r.3))
        .collect::<Vec<_>>()
        .join(", ");
    Err(format!(
        "Binoculars compares two models' distributions token by token, so they must share a \
         vocabulary; these do not: {list}. Load two models of one family, or one model twice."
    ))
}

#[component]
pub fn BinocularsPanel() -> impl IntoView {
    let app = expect_context::<AppState>();
    let chosen: RwSignal<Option<(Pane, Pane)>, LocalStorage> = RwSignal::new_local(None);
    // The text the shown result measured: once the box holds another, the result says so.
    let measured = RwSignal::new(String::new());
    let available = move || app.panes.with(|ps| pair(ps));
    let start = move |_| {
        if let Ok((obs, perf)) = available() {
            perf.clear_binoculars();
            chosen.set(Some((obs, perf)));
            let text = app.score_text.get_untracked();
            measured.set(text.clone());
            obs.request_distributions(&text);
        }
    };
    // When the observer's rows arrive, hand them to the performer.
    Effect::new(move |_| {
        let Some((obs, perf)) = chosen.get() else {
            return;
        };
        if obs.bino(|b| b.phase) == OutputPhase::Done {
            if let Some((ids, buffer)) = obs.rows.try_update_value(|r| r.take()).flatten() {
                let label = |p: &Pane| {
                    p.model_untracked(|m| {
                        m.loaded
                            .as_ref()
                            .map_or_else(|| m.label.clone(), |l| l.label.clone())
                    })
                };
                let observer = crate::ui::pane::BinoObserver {
                    pane: obs.id,
                    model: label(&obs),
                    performer_model: label(&perf),
                };
                perf.send_binoculars(ids, &buffer, observer);
            }
        }
    });
    // The pair the shown result belongs to, while it still qualifies: a result stays up
    // only while its two panes still share a vocabulary (another model loaded in one of
    // them, or a pane removed, takes it down).
    let shown = move || {
        let (obs, perf) = chosen.get()?;
        match available() {
            Ok((a, b)) if a.id == obs.id && b.id == perf.id => Some((obs, perf)),
            _ if obs.bino(|b| b.phase) == OutputPhase::Running
                || perf.bino(|b| b.phase) == OutputPhase::Running =>
            {
                Some((obs, perf))
            }
            _ => None,
        }
    };
    let status = move || {
        let (obs, perf) = shown()?;
        let gone = |x: &Pane| app.panes.with(|ps| ps.iter().all(|q| q.id != x.id));
        let (o, p) = (obs.bino(|b| b.clone()), perf.bino(|b| b.clone()));
        let pos = |x: &Pane| app.position(x.id) + 1;
        Some(match (o.phase, p.phase, p.result) {
            (OutputPhase::Error, _, _) => format!("Observer failed: {}", o.message),
            (_, OutputPhase::Error, _) => format!("Performer failed: {}", p.message),
            (_, OutputPhase::Done, Some(r)) => {
                // The score is a ratio, the same in any unit; its two terms are not.
                let units = app.units.get();
                format!(
                    "observer pane {}, performer pane {}: log-perplexity {} / log cross-perplexity {} {} over {}",
                    pos(&obs),
                    pos(&perf),
                    num(Some(units.of(r.log_ppl)), 3),
                    num(Some(units.of(r.log_x_ppl)), 3),
                    units.id(),
                    crate::ui::format::tokens(r.tokens)
                )
            }
            _ if gone(&obs) || gone(&perf) => {
                "A pane of this pair was removed before the result came: run it again.".into()
            }
            _ => "Computing…".into(),
        })
    };
    let score = move || {
        shown()
            .and_then(|(_, perf)| perf.bino(|b| b.result))
            .map(|r| num(Some(r.score), 3))
    };
    let stale = move || score().is_some() && app.score_text.with(|t| measured.with(|m| t != m));
    view! {
        <section class="binoculars" aria-label="Binoculars">
            <button
                type="button"
                data-testid="binoculars"
                prop:disabled=move || available().is_err() || app.any_running()
                on:click=start
            >
                "Binoculars"
            </button>
            <span class="muted" data-testid="binoculars-reason">
                {move || available().err().unwrap_or_default()}
            </span>
            {move || score().map(|s| view! {
                <span>"score " <strong data-testid="binoculars-score">{s}</strong></span>
            })}
            <span class="muted" data-testid="binoculars-status">{move || status().unwrap_or_default()}</span>
            <Show when=stale>
                <span class="stale-note" data-testid="binoculars-stale" role="status">
                    "This score is for an earlier text: the text above has changed since. Press Binoculars to measure it."
                </span>
            </Show>
            <span class="muted small-print">
                "Lower reads more machine-like. The authors' thresholds (0.9015 tuned for F1, 0.8536 for a 0.01% false-positive rate) were tuned on Falcon-7B and its instruct model, and do not carry over to these models."
            </span>
        </section>
    }
}
