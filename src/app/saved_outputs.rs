//! Each pane's last generation (with its forks) and last scored text, kept so that a reload
//! shows them again, as the prompt, the settings and chat conversations are; like the
//! workspace they go with, in two copies: this tab's own (sessionStorage) and the one a new tab
//! opens (localStorage).

use std::collections::HashMap;

use leptos::prelude::*;

use super::{browser, AppState};
use crate::ui::kept_outputs;
use crate::ui::pane::{SavedOutput, Tree};

const OUTPUTS_KEY: &str = "tinylab.outputs.v1";
/// localStorage holds about 5 MB for the whole page (the workspace, conversations and the
/// evaluation report too): outputs larger than this are not kept.
const MAX_KEPT_BYTES: usize = 2_000_000;

/// The kept outputs as stored, to show or to put back later (`put_back`) with the workspace
/// they go with: this tab's own (through its reloads), or else those any tab kept last. With
/// one copy only, a reload showed another tab's outputs under this tab's prompt.
pub fn saved() -> Option<String> {
    browser::tab_first_get(&browser::own_key(OUTPUTS_KEY))
}

/// Writes both copies: whether the lasting one was kept, and this tab's own. A copy that could
/// not be written goes: a reload then shows empty outputs, not older ones as if they were these.
fn store(json: &str) -> (bool, bool) {
    let key = browser::own_key(OUTPUTS_KEY);
    let (lasting, this_tab) = browser::set_both(&key, json);
    if !lasting {
        browser::local_remove(&key);
    }
    (lasting, this_tab)
}

/// Whether kept outputs (as `saved` gives them) hold anything a user made: a pane that never
/// ran is kept too, as empty runs.
pub fn holds_any(json: &str) -> bool {
    let Ok(kept) = serde_json::from_str::<Vec<Option<serde_json::Value>>>(json) else {
        return false;
    };
    let tokens = |o: &serde_json::Value, run: &str| {
        o[run]["tokens"].as_array().is_some_and(|t| !t.is_empty())
    };
    kept.iter().flatten().any(|o| {
        ["run", "chat", "score"].iter().any(|r| tokens(o, r))
            || !o["lab"].is_null()
            || o["branches"]["runs"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
    })
}

/// Stores outputs taken with `saved` again (none: none are kept).
pub fn put_back(json: Option<&str>) {
    match json {
        Some(j) => {
            store(j);
        }
        None => forget(),
    }
}

/// Drops both copies of the kept outputs.
pub fn forget() {
    let key = browser::own_key(OUTPUTS_KEY);
    browser::session_remove(&key);
    browser::local_remove(&key);
}

/// Drops the lasting copy, to make room there for the workspace. This tab's own stays: its
/// storage is apart, and it goes with this tab's own copy of the workspace.
pub fn make_room() {
    browser::local_remove(&browser::own_key(OUTPUTS_KEY));
}

/// Shows what the panes showed before the reload, pane by pane. Not when a link set up other
/// panes than the saved ones (`models=` or `panes=` that changed them): those are not the
/// panes the outputs came from. (A link of the same settings gets them, with the notes an
/// output shown under another prompt always has.)
pub fn restore(state: AppState, linked: bool) {
    if linked {
        return;
    }
    let Some(saved) =
        saved().and_then(|j| serde_json::from_str::<Vec<Option<SavedOutput>>>(&j).ok())
    else {
        return;
    };
    for (p, o) in state.panes.get_untracked().iter().zip(saved) {
        if let Some(o) = o {
            p.state.update(|s| s.restore_output(o));
        }
    }
}

/// Keeps each pane's outputs whenever one of its runs or scores ends (not on every token). A
/// pane still running keeps what it had before, while the others' new outputs are kept: one
/// long run does not hold back the rest. What does not fit is said in `notes` while it does
/// not, before a reload would lose it.
pub fn keep(state: AppState, notes: RwSignal<Vec<String>>) {
    let said = StoredValue::new(String::new());
    let last = StoredValue::new(String::new());
    let kept = StoredValue::new(HashMap::<usize, SavedOutput>::new());
    Effect::new(move |_| {
        let panes = state.panes.get();
        // A cheap summary first: most state changes (a load's progress, an evaluation's items,
        // a running pane's tokens) leave the outputs to keep as they were, and the whole set
        // need not be written again.
        let mut shape = String::new();
        for p in &panes {
            p.state.with(|s| {
                if !s.outputs_settled() {
                    shape.push_str(&format!("{}:running|", p.id));
                    return;
                }
                shape.push_str(&format!("{}:", p.id));
                for r in [&s.run, &s.chat, &s.score] {
                    shape.push_str(&format!(
                        "{}:{:?}:{}:{}/",
                        r.run_id,
                        r.phase,
                        r.tokens.len(),
                        r.message.len()
                    ));
                }
                let lab = s.lab.result.as_ref().map(|r| {
                    (
                        r.prompt.len(),
                        r.prompt_tokens,
                        r.human.tokens.len(),
                        r.model.tokens.len(),
                    )
                });
                shape.push_str(&format!("{lab:?}|"));
                for t in [Tree::Run, Tree::Chat] {
                    shape.push_str(&format!("{}:{}|", s.branch_count(t), s.current_branch(t)));
                }
            });
        }
        if last.with_value(|l| *l == shape) {
            return;
        }
        last.set_value(shape);
        kept.update_value(|k| {
            k.retain(|id, _| panes.iter().any(|p| p.id == *id));
            for p in &panes {
                p.state.with_untracked(|s| match s.saved_output() {
                    Some(o) => {
                        k.insert(p.id, o);
                    }
                    None => {
                        if let Some(o) = k.get_mut(&p.id) {
                            s.mark_cut_off(o);
                        }
                    }
                });
            }
        });
        let outputs: Vec<Option<SavedOutput>> =
            kept.with_value(|k| panes.iter().map(|p| k.get(&p.id).cloned()).collect());
        let (json, left_out) = kept_outputs::fitting(outputs, MAX_KEPT_BYTES);
        let (lasting, this_tab) = match json {
            Some(j) => store(&j),
            None => {
                forget();
                (false, false)
            }
        };
        let note = if lasting {
            kept_outputs::too_large_note(&left_out, MAX_KEPT_BYTES)
        } else {
            NO_ROOM_NOTES[usize::from(this_tab)].to_string()
        };
        let before = said.with_value(|s| s.clone());
        if note != before {
            notes.update(|n| {
                n.retain(|x| *x != before);
                if !note.is_empty() {
                    n.push(note.clone());
                }
            });
            said.set_value(note);
        }
    });
}

/// What is said while the outputs cannot be kept, as this tab's own copy still is or not.
const NO_ROOM_NOTES: [&str; 2] = [
    "This browser's storage has no room for the panes' outputs, so they will not come back \
     after a reload: Export keeps one.",
    "This browser's storage has no room for the panes' outputs beside the rest, so they are \
     kept for this tab only: a new tab, or this one once closed, will not show them. Export \
     keeps one.",
];
