//! The blind arena: two panes whose models are drawn at random and hidden as A and B, one
//! prompt on both, a vote (A, B, tie, both bad), then the reveal; a tally per browser with
//! Bradley-Terry ratings (`ui::arena`), kept across reloads, exportable and resettable. The
//! panes as they were before the arena come back when it is turned off. In kiosk mode the same flow asks "Which answer came from the bigger model?".

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::{browser, AppState, Presence};
use crate::ui::arena::{draw_pair, standings, Battle, Standing, Vote};
use crate::ui::pane::{ModelPhase, OutputPhase, SavedOutput};
use crate::ui::settings::{Mode, PaneSettings};

/// Where the arena is kept: kiosk mode asks another question ("which came from the bigger
/// model?", not "which is better?"), so its votes make a tally of their own.
pub fn arena_key(demo: bool) -> &'static str {
    if demo {
        "tinylab.arena.kiosk"
    } else {
        "tinylab.arena"
    }
}

/// What the arena keeps (localStorage): whether it is on, the hidden pair, the vote on it,
/// and every vote so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArenaState {
    pub active: bool,
    pub pair: Option<(String, String)>,
    /// Which battle this is (its seed): two tabs show the same battle only where it agrees,
    /// as the same pair is drawn again for a new battle.
    pub battle: u64,
    pub voted: Option<Vote>,
    pub battles: Vec<Battle>,
    /// The panes' settings from before the arena took the panes over, put back when it is
    /// turned off (their outputs are kept beside, under `ARENA_OUTPUTS_KEY`, while there is
    /// room).
    pub workspace: Option<Vec<PaneSettings>>,
    /// What the saved record held that could not be read, said under the toggle.
    #[serde(skip)]
    pub load_note: String,
    /// Models whose load failed in this page's battles (missing from the server and the
    /// cache, say): not drawn again until a reload.
    #[serde(skip)]
    pub failed: Vec<String>,
}

/// The panes' outputs from before the arena, as `saved_outputs` keeps them.
const ARENA_OUTPUTS_KEY: &str = "tinylab.arena.outputs";
/// As for the kept outputs: localStorage is shared by everything the page keeps.
const MAX_KEPT_OUTPUT_BYTES: usize = 1 << 20;

/// Keeps what the panes are before the arena sets two of them up for battles.
fn keep_workspace(app: AppState) {
    let panes = app.panes.get_untracked();
    // Kept beside the tally in localStorage: conversations without their per-token numbers
    // (their text comes back, uncoloured), so the copy stays small.
    let settings: Vec<PaneSettings> = panes
        .iter()
        .map(|p| {
            let mut s = p.settings.get_untracked();
            s.conversation
                .turns
                .iter_mut()
                .for_each(|t| t.tokens.clear());
            s
        })
        .collect();
    let outputs: Vec<Option<SavedOutput>> = panes
        .iter()
        .map(|p| p.state.with_untracked(|s| s.saved_output()))
        .collect();
    app.arena.update(|s| s.workspace = Some(settings));
    match serde_json::to_string(&outputs) {
        Ok(json) if json.len() <= MAX_KEPT_OUTPUT_BYTES => {
            browser::local_set(&browser::own_key(ARENA_OUTPUTS_KEY), &json);
        }
        _ => browser::local_remove(&browser::own_key(ARENA_OUTPUTS_KEY)),
    }
}

/// Puts the panes back as they were before the arena. The battle's answers go first: a
/// battle not voted on must not be revealed by turning the arena off.
fn restore_workspace(app: AppState, settings: Option<Vec<PaneSettings>>) {
    for p in app.panes.get_untracked() {
        p.clear_output();
    }
    let Some(mut settings) = settings else {
        return;
    };
    // Read back from localStorage: brought into range as a saved workspace is.
    settings.truncate(super::MAX_PANES);
    settings.iter_mut().for_each(PaneSettings::clamp);
    if settings.is_empty() {
        settings.push(PaneSettings::default());
    }
    app.apply_panes(settings.clone());
    // A pane whose own model the page cannot load again (none chosen, or a local file) would
    // keep the battle's, and name it: it starts afresh instead.
    let known = |id: &str| {
        app.catalog.with_untracked(|c| {
            c.as_ref()
                .and_then(|c| c.as_ref().ok())
                .is_some_and(|c| c.get(id).is_some())
        })
    };
    let panes: Vec<_> = app
        .panes
        .get_untracked()
        .into_iter()
        .zip(&settings)
        .map(|(p, s)| {
            // A pane still loading or running (the arena can be left at any time) cannot
            // take a load now: it starts afresh too.
            let loaded = p.model_untracked(|m| m.phase != ModelPhase::Empty);
            if p.is_busy() || (loaded && !known(&s.model_id)) {
                p.shut_down();
                app.new_pane(s.clone())
            } else {
                p
            }
        })
        .collect();
    app.panes.set(panes);
    // The fresh panes load their catalog models.
    app.apply_panes(settings);
    let outputs = browser::local_get(&browser::own_key(ARENA_OUTPUTS_KEY))
        .and_then(|j| serde_json::from_str::<Vec<Option<SavedOutput>>>(&j).ok())
        .unwrap_or_default();
    browser::local_remove(&browser::own_key(ARENA_OUTPUTS_KEY));
    for (p, o) in app.panes.get_untracked().iter().zip(outputs) {
        if let Some(o) = o {
            p.state.update(|s| s.restore_output(o));
        }
    }
}

impl ArenaState {
    pub fn load(demo: bool) -> Self {
        let Some(json) = browser::local_get(arena_key(demo)) else {
            return ArenaState::default();
        };
        Self::read(&json)
    }

    /// A saved record, each field read on its own, so that one unreadable value (a battle
    /// edited by hand) costs that value and not every vote; what was left out is said.
    pub fn read(json: &str) -> Self {
        let Ok(serde_json::Value::Object(saved)) = serde_json::from_str(json) else {
            return ArenaState {
                load_note: "The arena's saved tally could not be read, so it starts afresh.".into(),
                ..ArenaState::default()
            };
        };
        fn field<T: serde::de::DeserializeOwned + Default>(
            saved: &serde_json::Map<String, serde_json::Value>,
            key: &str,
        ) -> T {
            saved
                .get(key)
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default()
        }
        let (battles, load_note) = match crate::ui::arena::battles_from(saved.get("battles")) {
            Some(crate::ui::arena::SavedBattles {
                battles,
                unreadable,
                left_out: trimmed,
            }) => {
                let mut said = vec![];
                if unreadable > 0 {
                    said.push(format!(
                        "{unreadable} saved battle{} could not be read and {} left out of the \
                         tally.",
                        if unreadable == 1 { "" } else { "s" },
                        if unreadable == 1 { "was" } else { "were" }
                    ));
                }
                if trimmed > 0 {
                    said.push(format!(
                        "{trimmed} saved battle{} left out: a model against itself or an odd \
                         id, or past the tally's limits (the latest {} battles among {} \
                         models).",
                        if trimmed == 1 { " was" } else { "s were" },
                        crate::ui::arena::MAX_BATTLES,
                        crate::ui::arena::MAX_MODELS
                    ));
                }
                (battles, said.join(" "))
            }
            None => (
                vec![],
                "The arena's saved battles could not be read, so the tally starts afresh.".into(),
            ),
        };
        ArenaState {
            active: field(&saved, "active"),
            pair: field(&saved, "pair"),
            battle: field(&saved, "battle"),
            voted: field(&saved, "voted"),
            battles,
            workspace: field(&saved, "workspace"),
            load_note,
            failed: Vec::new(),
        }
    }
}

/// Arena answers are short, so a vote comes quickly.
const ARENA_MAX_TOKENS: usize = 64;

/// Draws a new hidden pair from the models this page can load, and sets the two panes up.
/// Turns the arena off for a kiosk demo or Reset, which set panes of their own: the battle
/// and its reveal go (the next visitor must not see them), the panes from before it are not
/// put back, and the tally stays.
pub fn leave(app: AppState) {
    if app.arena.with_untracked(|s| s.active) {
        app.arena.update(|s| {
            s.active = false;
            s.pair = None;
            s.voted = None;
            s.workspace = None;
        });
        browser::local_remove(&browser::own_key(ARENA_OUTPUTS_KEY));
    }
}

/// What to say when the votes form groups of models that never met, directly or through
/// others: their ratings cannot be compared (empty when all are linked).
fn separate_groups(app: AppState, rows: &[Standing]) -> String {
    let count = rows.iter().map(|r| r.group + 1).max().unwrap_or(0);
    if count < 2 {
        return String::new();
    }
    let named: Vec<String> = (0..count)
        .map(|g| {
            let names: Vec<String> = rows
                .iter()
                .filter(|r| r.group == g)
                .map(|r| name_of(app, &r.model))
                .collect();
            names.join(", ")
        })
        .collect();
    format!(
        "These votes form {count} groups that never met, directly or through another model \
         ({}): a rating compares only within its group, each centred on 1000. Battles \
         between the groups link them.",
        named.join(" | ")
    )
}

/// What to say of intervals with no width as shown: votes that all agree resample to the
/// same tally every time, which is few votes, not certainty (empty when there are none).
fn no_width(app: AppState, rows: &[Standing]) -> String {
    let flat: Vec<String> = rows
        .iter()
        .filter(|r| r.interval.is_some_and(|(lo, hi)| hi.round() == lo.round()))
        .map(|r| name_of(app, &r.model))
        .collect();
    if flat.is_empty() {
        return String::new();
    }
    format!(
        "An interval with no width ({}) comes from votes that every resample repeats, such as \
         votes that all agree: it says there are few votes of another kind, not that the \
         rating is certain.",
        flat.join(", ")
    )
}

pub fn new_battle(app: AppState) -> bool {
    // A pane still loading or running keeps its model (a busy worker refuses a load), and its
    // answer would be counted for the drawn one.
    if app.any_busy() {
        return false;
    }
    let pool: Vec<String> = app
        .catalog
        .with_untracked(|c| c.as_ref().and_then(|c| c.as_ref().ok()).cloned())
        .map(|c| {
            let present = app.present.get_untracked();
            let failed = app.arena.with_untracked(|s| s.failed.clone());
            // Only models this page can load: a battle with one it cannot would wait for ever.
            c.models
                .iter()
                .filter(|m| present.get(&m.id) != Some(&Presence::Missing))
                .filter(|m| !failed.contains(&m.id))
                .map(|m| m.id.clone())
                .fold(Vec::<String>::new(), |mut pool, id| {
                    // A catalog listing an id twice would pit that model against itself.
                    if !pool.contains(&id) {
                        pool.push(id);
                    }
                    pool
                })
        })
        .unwrap_or_default();
    let Some((a, b)) = draw_pair(&pool, |n| (js_sys::Math::random() * n as f64) as usize % n)
    else {
        return false;
    };
    let seed = (js_sys::Math::random() * 1e9) as u64;
    let settings = |id: &str| PaneSettings {
        model_id: id.to_string(),
        temperature: 0.7,
        max_tokens: ARENA_MAX_TOKENS,
        seed,
        ..PaneSettings::default()
    };
    app.stop_all();
    app.mode.set(Mode::Generate);
    app.apply_panes(vec![settings(&a), settings(&b)]);
    for p in app.panes.get_untracked() {
        p.clear_output();
    }
    app.arena.update(|s| {
        s.pair = Some((a, b));
        s.battle = seed;
        s.voted = None;
    });
    true
}

/// The catalog's name for a model id, as a run records the model that made it.
fn catalog_name(app: AppState, id: &str) -> Option<String> {
    app.catalog.with(|c| {
        c.as_ref()
            .and_then(|c| c.as_ref().ok())
            .and_then(|c| c.get(id).map(|m| m.name.clone()))
    })
}

fn name_of(app: AppState, id: &str) -> String {
    // Tracked: after a reload the tally is drawn before the catalog arrives.
    app.catalog
        .with(|c| {
            c.as_ref()
                .and_then(|c| c.as_ref().ok())
                .and_then(|c| c.get(id).map(|m| format!("{} ({})", m.name, m.parameters)))
        })
        .unwrap_or_else(|| id.to_string())
}

/// Whether two runs answered the same prompt with the same settings (what each reused of its
/// own cache aside).
fn same_question(a: &crate::engine::GenerateRequest, b: &crate::engine::GenerateRequest) -> bool {
    let mut b = b.clone();
    b.reuse_cache = a.reuse_cache;
    b.reuse_at_most = a.reuse_at_most;
    *a == b
}

/// Parameters as a number ("135M" → 135e6), to say which model is bigger.
fn parameters_of(app: AppState, id: &str) -> Option<f64> {
    let p = app.catalog.with(|c| {
        c.as_ref()
            .and_then(|c| c.as_ref().ok())
            .and_then(|c| c.get(id).map(|m| m.parameters.clone()))
    })?;
    let p = p.trim();
    let (num, scale) = match p.chars().last()? {
        'M' | 'm' => (&p[..p.len() - 1], 1e6),
        'B' | 'b' => (&p[..p.len() - 1], 1e9),
        'K' | 'k' => (&p[..p.len() - 1], 1e3),
        _ => (p, 1.0),
    };
    num.trim().parse::<f64>().ok().map(|x| x * scale)
}

#[component]
pub fn ArenaBar() -> impl IntoView {
    let app = expect_context::<AppState>();
    let arena = app.arena;
    let active = move || arena.with(|s| s.active);
    // Once per change of the votes (not of the pair drawn or the vote buttons): the table and
    // its notes read it, and the bootstrap is 40 ms at 10,000 votes.
    let battles = Memo::new(move |_| arena.with(|s| s.battles.clone()));
    let tally = Memo::new(move |_| battles.with(|b| standings(b)));
    // Both answered, each by the model drawn for it (by catalog name, as runs record their
    // model): a vote is never counted for a model that did not answer.
    let both_done = move || {
        let panes = app.panes.get();
        let pair = arena.with(|s| s.pair.clone());
        let names = pair.map(|(a, b)| [catalog_name(app, &a), catalog_name(app, &b)]);
        panes.len() == 2
            && panes.iter().enumerate().all(|(i, p)| {
                p.run(|r| {
                    r.phase == OutputPhase::Done
                        && names
                            .as_ref()
                            .and_then(|n| n[i].as_ref())
                            .is_none_or(|name| &r.model == name)
                })
            })
    };
    // Why the two answers cannot be compared fairly, if they cannot: one stopped part way,
    // or one run again alone with other settings.
    let unfair = move || {
        let panes = app.panes.get();
        let runs: Vec<_> = panes
            .iter()
            .map(|p| p.run(|r| (r.finish, r.request.clone())))
            .collect();
        if runs
            .iter()
            .any(|(f, _)| *f == Some(crate::engine::StopReason::Stopped))
        {
            return Some("An answer was stopped part way: Run both again for a fair battle.");
        }
        match &runs[..] {
            [(_, Some(a)), (_, Some(b))] if !same_question(a, b) => Some(
                "A and B answered with different prompts or settings: Run both again for a fair battle.",
            ),
            _ => None,
        }
    };
    // The side whose drawn model failed (not on this server nor in this browser's cache, or
    // its worker died): its status is hidden until the vote, so the bar says it.
    let failed_sides = move || -> Vec<usize> {
        if !active() {
            return vec![];
        }
        app.panes
            .get()
            .iter()
            .enumerate()
            .filter(|(_, p)| p.model(|m| m.phase == ModelPhase::Error))
            .map(|(i, _)| i)
            .collect()
    };
    let failed_side = move || failed_sides().first().copied();
    Effect::new(move |_| {
        let sides = failed_sides();
        let Some((a, b)) = arena.with_untracked(|s| s.pair.clone()) else {
            return;
        };
        for i in sides {
            let id = if i == 0 { a.clone() } else { b.clone() };
            if arena.with_untracked(|s| !s.failed.contains(&id)) {
                arena.update(|s| s.failed.push(id));
            }
        }
    });
    let can_vote = move || {
        active()
            && both_done()
            && unfair().is_none()
            && arena.with(|s| s.voted.is_none() && s.pair.is_some())
    };
    // Why Run both (or turning the arena on) did nothing, until it does something.
    let note = RwSignal::new(String::new());
    let toggle = move |_| {
        // On, not while a pane loads or runs (the battle needs both); off at any time: a pane
        // still busy is stopped, or started afresh if it is loading.
        if !active() && app.any_busy() {
            return;
        }
        if active() {
            app.stop_all();
            let mut kept = None;
            arena.update(|s| {
                s.active = false;
                s.pair = None;
                s.voted = None;
                kept = s.workspace.take();
            });
            restore_workspace(app, kept);
            note.set(String::new());
        } else {
            keep_workspace(app);
            arena.update(|s| s.active = true);
            // Said at once, not after a Run both that cannot start.
            note.set(if new_battle(app) {
                String::new()
            } else {
                "A battle needs two models this page can load.".into()
            });
        }
    };
    let run = move |_| {
        // A battle is exactly its two panes: if the page holds another number (a workspace
        // restored from before the arena), the pair is drawn and set up again.
        let two = app.panes.with_untracked(|p| p.len() == 2);
        let redraw = !two
            || failed_side().is_some()
            || arena.with_untracked(|s| s.voted.is_some() || s.pair.is_none());
        if redraw && !new_battle(app) {
            note.set(if app.any_busy() {
                "A pane is still loading or running: wait for it (or stop it), then run again."
                    .into()
            } else {
                "A battle needs two models this page can load.".into()
            });
            return;
        }
        note.set(String::new());
        app.run_all();
    };
    let reset_armed = RwSignal::new(false);
    let vote = move |v: Vote| {
        arena.update(|s| {
            if let (Some((a, b)), None) = (s.pair.clone(), s.voted) {
                s.battles.push(Battle { a, b, vote: v });
                crate::ui::arena::sanitize(&mut s.battles);
                s.voted = Some(v);
            }
        });
    };
    let reveal = move || {
        let s = arena.get();
        let ((a, b), v) = (s.pair?, s.voted?);
        let mut text = format!("A was {}, B was {}.", name_of(app, &a), name_of(app, &b));
        if app.demo {
            if let (Some(pa), Some(pb)) = (parameters_of(app, &a), parameters_of(app, &b)) {
                let bigger = if pa >= pb { Vote::A } else { Vote::B };
                // A tie or "both bad" named neither: told which was bigger, not that it missed.
                text.push_str(match v {
                    _ if pa == pb => " They are the same size.",
                    Vote::A | Vote::B if v == bigger => " You picked the bigger model!",
                    Vote::A | Vote::B => " The bigger one was the other.",
                    _ if bigger == Vote::A => " The bigger one was A.",
                    _ => " The bigger one was B.",
                });
            }
        }
        Some(text)
    };
    let export = move |_| {
        let s = arena.get_untracked();
        let table: Vec<serde_json::Value> = standings(&s.battles)
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "model": r.model, "battles": r.battles, "wins": r.wins, "losses": r.losses,
                    "ties": r.ties, "rating": r.rating, "interval95": r.interval,
                })
            })
            .collect();
        let doc = serde_json::json!({ "battles": s.battles, "standings": table });
        let _ = browser::download(
            "tinylab-arena.json",
            "application/json",
            &serde_json::to_string_pretty(&doc).unwrap_or_default(),
        );
    };
    let (label_a, label_b) = if app.demo {
        ("A is the bigger model", "B is the bigger model")
    } else {
        ("A is better", "B is better")
    };
    view! {
        <section class="arena" class:kiosk=app.demo aria-label="Blind arena">
            <div class="arena-head">
                <label class="arena-toggle">
                    <input
                        type="checkbox"
                        data-testid="arena-mode"
                        prop:checked=active
                        // Turning it on sets both panes up for a battle, and off puts the
                        // panes back: not while one is still loading or running.
                        prop:disabled=move || !active() && app.any_busy()
                        title=move || if !active() && app.any_busy() { "Stop the runs first" } else { "" }
                        on:change=toggle
                    />
                    {if app.demo { "Which answer came from the bigger model?" } else { "Blind arena" }}
                </label>
                <Show when=active>
                    <button
                        type="button"
                        class="primary"
                        data-testid="arena-run"
                        prop:disabled=move || app.any_running()
                        on:click=run
                    >
                        {move || if arena.with(|s| s.voted.is_some()) || failed_side().is_some() { "New battle" } else { "Run both" }}
                    </button>
                    <span class="muted" data-testid="arena-note" role="status">
                        {move || if !note.get().is_empty() {
                            note.get()
                        } else if failed_side().is_some() {
                            let sides = failed_sides();
                            let who = match sides[..] {
                                [0] => "Model A",
                                [1] => "Model B",
                                _ => "Models A and B",
                            };
                            format!(
                                "{who} could not be loaded on this page (not on this server or in this browser's cache), or the worker stopped: press New battle to draw another pair."
                            )
                        } else if let Some(why) = unfair().filter(|_| active() && both_done() && arena.with(|s| s.voted.is_none())) {
                            why.to_string()
                        } else if can_vote() {
                            if app.demo {
                                "Which answer came from the bigger model? Vote, then see who was who.".to_string()
                            } else {
                                "Which answer is better? Vote, then see who was who.".to_string()
                            }
                        } else if arena.with(|s| s.voted.is_some()) {
                            String::new()
                        } else {
                            "Two models, drawn at random and hidden as A and B, answer the prompt.".to_string()
                        }}
                    </span>
                </Show>
            </div>
            <Show when=move || arena.with(|s| !s.load_note.is_empty())>
                <p class="muted" data-testid="arena-load-note" role="status">
                    {move || arena.with(|s| s.load_note.clone())}
                </p>
            </Show>
            <Show when=active>
                <div class="arena-votes">
                    <button type="button" data-testid="arena-vote-a" prop:disabled=move || !can_vote() on:click=move |_| vote(Vote::A)>{label_a}</button>
                    <button type="button" data-testid="arena-vote-b" prop:disabled=move || !can_vote() on:click=move |_| vote(Vote::B)>{label_b}</button>
                    <button type="button" data-testid="arena-vote-tie" prop:disabled=move || !can_vote() on:click=move |_| vote(Vote::Tie)>"Tie"</button>
                    <button type="button" data-testid="arena-vote-bad" prop:disabled=move || !can_vote() on:click=move |_| vote(Vote::Bad)>"Both bad"</button>
                </div>
                <p class="arena-reveal" data-testid="arena-reveal" role="status" class:hidden=move || reveal().is_none()>
                    {move || reveal().unwrap_or_default()}
                </p>
                <details class="arena-tally-box" open>
                    <summary>
                        {move || match arena.with(|s| s.battles.len()) {
                            1 => "Tally (1 vote)".to_string(),
                            n => format!("Tally ({n} votes)"),
                        }}
                    </summary>
                    <table class="arena-tally" data-testid="arena-tally">
                        <thead>
                            <tr>
                                <th>"model"</th><th>"battles"</th><th>"wins"</th><th>"losses"</th>
                                <th>"ties"</th><th>"rating"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {move || {
                                tally
                                    .get()
                                    .into_iter()
                                    .map(|r| {
                                        let rating = match r.interval {
                                            Some((lo, hi)) => format!("{:.0} ({:.0}–{:.0})", r.rating, lo, hi),
                                            None => format!("{:.0}", r.rating),
                                        };
                                        view! {
                                            <tr
                                                data-model-id=r.model.clone()
                                                data-group=r.group.to_string()
                                                data-wins=r.wins.to_string()
                                                data-rating=format!("{:.2}", r.rating)
                                            >
                                                <td>{name_of(app, &r.model)}</td>
                                                <td>{r.battles}</td>
                                                <td>{r.wins}</td>
                                                <td>{r.losses}</td>
                                                <td>{r.ties}</td>
                                                <td>{rating}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()
                            }}
                        </tbody>
                    </table>
                    {move || tally.with(|rows| rows.is_empty()).then(|| view! {
                        <p class="muted" data-testid="arena-no-votes">"No votes yet: run a battle, then vote."</p>
                    })}
                    <p class="muted">
                        "Ratings are Bradley-Terry strengths on the Elo scale (mean 1000); the range in brackets (from 10 votes, where at least a quarter of the resamples hold a model's group whole) is a 95% bootstrap interval."
                    </p>
                    {move || {
                        let groups = tally.with(|rows| separate_groups(app, rows));
                        (!groups.is_empty()).then(|| view! {
                            <p class="muted" data-testid="arena-groups">{groups}</p>
                        })
                    }}
                    {move || {
                        let flat = tally.with(|rows| no_width(app, rows));
                        (!flat.is_empty()).then(|| view! {
                            <p class="muted" data-testid="arena-no-width">{flat}</p>
                        })
                    }}
                    <div class="arena-tally-actions">
                    <button type="button" data-testid="arena-export" on:click=export>"Export votes"</button>
                    // A first click asks, as Clear cache does: the votes cannot be brought back.
                    <button
                        type="button"
                        data-testid="arena-reset"
                        data-confirming=move || reset_armed.get().to_string()
                        on:click=move |_| {
                            if !reset_armed.get_untracked() {
                                reset_armed.set(true);
                                set_timeout(
                                    move || {
                                        reset_armed.try_set(false);
                                    },
                                    std::time::Duration::from_secs(6),
                                );
                                return;
                            }
                            reset_armed.set(false);
                            arena.update(|s| s.battles.clear());
                        }
                    >
                        {move || if reset_armed.get() {
                            let n = arena.with(|s| s.battles.len());
                            format!("Delete {n} vote{}? Click again", if n == 1 { "" } else { "s" })
                        } else {
                            "Reset tally".to_string()
                        }}
                    </button>
                    </div>
                </details>
            </Show>
        </section>
    }
}
