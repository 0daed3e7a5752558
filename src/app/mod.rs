//! The page: Leptos, client-side rendered, built by Trunk from `www/index.html`.
//!
//! `App` owns the workspace (prompt and panes) and keeps it in localStorage; each pane
//! (`pane.rs`, state in `pane_state.rs`) owns a Web Worker running the engine
//! (`worker_client.rs` speaks `crate::protocol`). Nothing here computes model numbers: figures
//! come from the worker, formatting and colours from `crate::ui`.

mod arena_view;
mod binoculars_panel;
mod branches;
mod browser;
mod catalog_panel;
mod chart;
mod chat_view;
mod compare_table;
mod controls;
mod demo;
mod eval_view;
mod focus_keeper;
mod histograms;
mod lab_view;
mod link_banner;
mod model_loader;
mod offline;
mod pane;
mod pane_state;
mod prompt_box;
mod saved_outputs;
mod stats;
mod threads;
mod tokens;
mod toolbar;
mod worker_client;

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;

use binoculars_panel::BinocularsPanel;
use catalog_panel::CatalogPanel;
use compare_table::CompareTable;
use demo::DemoBar;
use link_banner::{LinkNotes, LinkReplaced};
use offline::{OfflineStatus, SwState};
use pane::PaneView;
use pane_state::{ModelPhase, Pane, Queued};
use prompt_box::{PromptBox, ScoreBox};
use toolbar::Toolbar;

use crate::ui::catalog::{self, Catalog, CatalogModel, CATALOG_URL, PRESENT_URL};
use crate::ui::eval_report::EvalReport;
use crate::ui::format::Units;
use crate::ui::keys::arrow_target;
use crate::ui::settings::{EvalSetup, Mode, PaneSettings, Workspace};

/// The most panes side by side (each holds a worker and a model in memory).
pub use crate::ui::settings::MAX_PANES;

/// The tabs: mode, test id (and element id), label.
const TABS: [(Mode, &str, &str); 4] = [
    (Mode::Generate, "tab-generate", "Generate"),
    (Mode::Score, "tab-score", "Entropy lab"),
    (Mode::Chat, "tab-chat", "Chat"),
    (Mode::Eval, "tab-eval", "Evaluate"),
];

const WORKSPACE_KEY: &str = "tinylab.workspace.v1";
/// What is said while the workspace cannot be saved, as this tab's own copy still is or not.
const STORAGE_FULL_NOTES: [&str; 2] = [
    "This browser's storage for TinyLab is full, so your latest changes (prompt, settings, \
     conversations) will not survive a reload. Clear a long conversation (export it first) to \
     make room.",
    "This browser's storage for TinyLab is full, so your latest changes (prompt, settings, \
     conversations) are kept for this tab only: a new tab, or this one once closed, will not \
     have them. Clear a long conversation (export it first) to make room.",
];
const THEME_KEY: &str = "tinylab.theme";
const UNITS_KEY: &str = "tinylab.units";

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
    pub score_text: RwSignal<String>,
    /// Human vs model's prompt: the text's first this many sentences.
    pub lab_sentences: RwSignal<usize>,
    pub panes: RwSignal<Vec<Pane>>,
    pub mode: RwSignal<Mode>,
    pub sync_scroll: RwSignal<bool>,
    /// Models in the browser cache (refreshed with `refresh_presence`).
    pub cached: RwSignal<Vec<browser::CachedModel>>,
    /// Bumped when the cache may have changed behind this page's back (another tab); the
    /// cache list reads it again.
    pub cache_checked: RwSignal<u32>,
    pub sw: RwSignal<SwState>,
    pub online: RwSignal<bool>,
    /// Kiosk mode: whether the browser agreed to keep this site's storage when short of disk
    /// (`offline::ask_to_keep_storage`); `None` before it answers, or not asked.
    pub persisted: RwSignal<Option<bool>>,
    /// `?debug=1`: shows a button per pane that crashes its worker (for tests).
    pub debug: bool,
    /// `?demo=1`: kiosk mode for events.
    pub demo: bool,
    /// The evaluation tab's set-up (saved with the workspace) and its last report (saved on
    /// its own, `eval_view::REPORT_KEY`).
    pub eval: RwSignal<EvalSetup>,
    pub eval_report: RwSignal<Option<EvalReport>>,
    /// An evaluation is running in this page (the report follows the panes).
    pub eval_live: RwSignal<bool>,
    pub eval_started: StoredValue<f64>,
    /// The item file chosen in the Evaluate tab, and why the last one was refused: the app's,
    /// not the tab's, so that they outlive a look at another tab.
    pub eval_file: RwSignal<Option<eval_view::ItemFile>, LocalStorage>,
    pub eval_file_error: RwSignal<Option<String>>,
    /// The blind arena (`arena_view`), kept in localStorage.
    pub arena: RwSignal<arena_view::ArenaState>,
    /// Entropy and surprisal shown in nats or bits (kept in localStorage, as the theme is).
    pub units: RwSignal<Units>,
    /// `auto`, `light` or `dark` (kept in localStorage).
    pub theme: RwSignal<String>,
    /// The thread-count control's choice (`threads::wanted`, kept in localStorage).
    pub threads: RwSignal<usize>,
    next_id: StoredValue<usize>,
    /// The app's own reactive owner. Panes are made under it: made under the owner current
    /// in a click handler (the arena bar's, which the Generate tab alone shows), their signals
    /// went when that part of the page did, and the next read of a pane panicked.
    root: StoredValue<Option<Owner>, LocalStorage>,
}

/// How long a page whose server did not answer waits before asking again.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

thread_local! {
    /// The server answered 404 for `present.json` (it is not `scripts/serve.py`).
    static NO_PRESENT_LIST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// A re-ask of an unanswered server is pending.
    static RECHECK_PENDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl AppState {
    /// Re-checks which catalog models are cached or on the server.
    pub fn refresh_presence(self) {
        let Some(Ok(catalog)) = self.catalog.get_untracked() else {
            return;
        };
        spawn_local(async move {
            let list = browser::cached_models().await.unwrap_or_default();
            let cached: Vec<String> = list.iter().map(|m| m.url.clone()).collect();
            self.cached.set(list);
            // serve.py lists the model files it has in one document; other static hosts do
            // not, and then each model is asked for with HEAD (a missing one logs a 404 in the
            // browser's console, which the list avoids).
            // Asked once per page where the server has no such list, so that its 404 is
            // not logged again at every refresh. Asked even when the browser says it is
            // offline: the server may be this machine's own.
            let mut reachable = true;
            let listed = if NO_PRESENT_LIST.get() {
                None
            } else {
                match browser::fetch_text(PRESENT_URL).await {
                    Ok(t) => {
                        self.online.set(true);
                        catalog::parse_present(&t)
                    }
                    Err(e) if e.contains("HTTP ") => {
                        self.online.set(true);
                        NO_PRESENT_LIST.set(e.ends_with("HTTP 404"));
                        None
                    }
                    // No answer at all: the network is down even where the browser has not
                    // noticed (it says "online" on a network that reaches nothing), and the
                    // header says so, as it does when the browser has. Each model is then not
                    // asked for (each ask would fail and log an error), and the list is asked
                    // again in a while, as no 'online' event will say when it is back.
                    Err(_) => {
                        reachable = false;
                        self.online.set(false);
                        // One re-ask pending at a time, however many refreshes failed.
                        if browser::says_online() && !RECHECK_PENDING.replace(true) {
                            set_timeout(
                                move || {
                                    RECHECK_PENDING.set(false);
                                    self.refresh_presence();
                                },
                                RECHECK,
                            );
                        }
                        None
                    }
                }
            };
            let mut found = HashMap::new();
            for m in &catalog.models {
                let url = browser::absolute(&m.url());
                if cached.contains(&url) {
                    found.insert(m.id.clone(), Presence::Cached);
                    continue;
                }
                let on_server = match &listed {
                    Some(files) => Some(files.contains(&m.file)),
                    None if reachable => browser::exists(&m.url()).await,
                    None => None,
                };
                // An answer that does not say (offline, HEAD refused) leaves it unknown.
                match on_server {
                    Some(true) => found.insert(m.id.clone(), Presence::OnServer),
                    Some(false) => found.insert(m.id.clone(), Presence::Missing),
                    None => None,
                };
            }
            self.present.set(found);
        });
    }

    pub fn run_all(self) {
        let prompt = self.prompt.get_untracked();
        for p in self.panes.get_untracked() {
            self.run_pane(p, &prompt);
        }
    }

    /// Runs one pane, loading its chosen catalog model first if it is not loaded yet.
    pub fn run_pane(self, p: Pane, prompt: &str) {
        self.start_on(p, Queued::Run(prompt.to_string()));
    }

    /// Whether a blind battle hides who is who (until the vote).
    pub fn arena_hidden(self) -> bool {
        self.arena.with(|s| s.active && s.voted.is_none())
    }

    /// A blind battle with a pane still loading or answering: neither answer shows, and each
    /// pane's buttons show the battle's state, not its own (the first pane done gave itself
    /// away by its Run button coming back).
    pub fn arena_waiting(self) -> bool {
        self.arena_hidden() && self.panes.with(|ps| ps.iter().any(|p| p.is_busy()))
    }

    pub fn arena_waiting_untracked(self) -> bool {
        self.arena_hidden_untracked()
            && self
                .panes
                .with_untracked(|ps| ps.iter().any(|p| p.is_busy_untracked()))
    }

    pub fn arena_hidden_untracked(self) -> bool {
        self.arena.with_untracked(|s| s.active && s.voted.is_none())
    }

    /// Starts `work` on pane `p`, loading its chosen catalog model first where it is not
    /// loaded (a fresh page's default, a failed load, a crashed worker).
    pub fn start_on(self, p: Pane, work: Queued) {
        let model = self.chosen_model_untracked(p);
        // A blind battle's models stay unnamed until the vote, loading messages included.
        let hidden = self.arena_hidden_untracked();
        p.start_when_loaded(model.as_ref(), work, hidden);
    }

    /// The catalog entry a pane has chosen, if any.
    pub fn chosen_model(self, p: Pane) -> Option<CatalogModel> {
        let id = p.settings.with(|s| s.model_id.clone());
        self.catalog
            .with(|c| c.as_ref().and_then(|c| c.as_ref().ok()?.get(&id).cloned()))
    }

    /// A catalog model chosen but not loaded (a first visit's default, or one whose load failed
    /// or whose worker died): Run, Score and Send load it first (`start_on`). Choosing it again
    /// in the list would not: the list fires no change for the option already selected.
    pub fn chosen_not_loaded(self, p: Pane) -> bool {
        p.model(|m| matches!(m.phase, ModelPhase::Empty | ModelPhase::Error))
            && self.chosen_model(p).is_some()
    }

    /// The catalog models of `size` bytes: a local file of that size may be a copy of one.
    pub fn twins_of_size(self, size: u64) -> Vec<crate::protocol::CatalogTwin> {
        self.catalog.with_untracked(|c| {
            let Some(Ok(c)) = c else {
                return vec![];
            };
            c.models
                .iter()
                .filter(|m| m.bytes == size)
                .map(|m| crate::protocol::CatalogTwin {
                    id: m.id.clone(),
                    url: browser::absolute(&m.url()),
                    sha256: m.sha256.clone(),
                })
                .collect()
        })
    }

    /// [`AppState::chosen_model`] without subscribing.
    pub fn chosen_model_untracked(self, p: Pane) -> Option<CatalogModel> {
        let id = p.settings.with_untracked(|s| s.model_id.clone());
        self.catalog
            .with_untracked(|c| c.as_ref().and_then(|c| c.as_ref().ok()?.get(&id).cloned()))
    }

    pub fn score_all(self) {
        let text = self.score_text.get_untracked();
        for p in self.panes.get_untracked() {
            self.start_on(p, Queued::Score(text.clone()));
        }
    }

    pub fn lab_all(self, sentences: usize) {
        let text = self.score_text.get_untracked();
        for p in self.panes.get_untracked() {
            self.start_on(p, Queued::Lab(text.clone(), sentences));
        }
    }

    pub fn stop_all(self) {
        for p in self.panes.get_untracked() {
            p.stop();
        }
    }

    pub fn any_running(self) -> bool {
        self.panes.with(|ps| ps.iter().any(|p| p.is_running()))
    }

    /// A run waiting for its pane's model to load, anywhere (Stop cancels it).
    pub fn any_queued(self) -> bool {
        self.panes
            .with(|ps| ps.iter().any(|p| p.is_busy() && p.has_queued()))
    }

    /// Loading or running anywhere: presets and demos wait, since a busy worker refuses.
    pub fn any_busy(self) -> bool {
        self.panes.with(|ps| ps.iter().any(|p| p.is_busy()))
    }

    fn new_pane(self, settings: PaneSettings) -> Pane {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        let make = || Pane::new(id, settings, self.mode);
        match self.root.get_value() {
            Some(owner) => owner.with(make),
            None => make(),
        }
    }

    /// Adds a pane with the last pane's settings but no model.
    pub fn add_pane(self) {
        if self.panes.with_untracked(|p| p.len()) >= MAX_PANES {
            return;
        }
        let settings = self
            .panes
            .with_untracked(|ps| ps.last().map(|p| p.settings.get_untracked()))
            .map(|s| s.settings_only())
            .unwrap_or_default();
        let pane = self.new_pane(settings);
        self.panes.update(|ps| ps.push(pane));
    }

    pub fn remove_pane(self, id: usize) {
        if self.panes.with_untracked(|p| p.len()) <= 1 {
            return;
        }
        self.panes.update(|ps| {
            if let Some(i) = ps.iter().position(|p| p.id == id) {
                ps.remove(i).shut_down();
            }
        });
    }

    /// The 0-based position of a pane (what `data-pane-index` shows).
    pub fn position(self, id: usize) -> usize {
        self.panes
            .with(|ps| ps.iter().position(|p| p.id == id))
            .unwrap_or(0)
    }

    /// Makes the panes match `settings` (one pane each), loading models that changed.
    pub fn apply_panes(self, settings: Vec<PaneSettings>) {
        let catalog = self.catalog.get_untracked().and_then(|c| c.ok());
        let mut panes = self.panes.get_untracked();
        while panes.len() > settings.len() {
            if let Some(p) = panes.pop() {
                p.shut_down();
            }
        }
        while panes.len() < settings.len() {
            panes.push(self.new_pane(PaneSettings::default()));
        }
        let panes: Vec<Pane> = panes
            .into_iter()
            .zip(settings)
            .map(|(p, s)| {
                let (old, old_local) = p
                    .settings
                    .with_untracked(|o| (o.model_id.clone(), o.local_model.clone()));
                let other_model = old != s.model_id || old_local != s.local_model;
                // A pane still loading or running another model (a kiosk's Reset right after
                // its Stop) takes no load: it kept that model under the new one's name, and
                // the next demo ran it. A fresh pane takes its place.
                let p = if other_model && p.is_busy() {
                    p.shut_down();
                    self.new_pane(s.clone())
                } else {
                    p
                };
                p.settings.set(s.clone());
                if other_model || !p.is_ready() {
                    match (
                        catalog.as_ref().and_then(|c| c.get(&s.model_id)),
                        &s.local_model,
                    ) {
                        (Some(m), _) => p.load_catalog(m),
                        // A model from a file, kept in this browser's cache when it was opened.
                        (None, Some(l)) => p.load_cached(&l.url, &l.label),
                        (None, None) => {}
                    }
                }
                p
            })
            .collect();
        self.panes.set(panes);
    }

    pub fn workspace(self) -> Workspace {
        Workspace {
            prompt: self.prompt.get(),
            panes: self.panes.get().iter().map(|p| p.settings.get()).collect(),
            mode: self.mode.get(),
            score_text: self.score_text.get(),
            lab_sentences: self.lab_sentences.get(),
            eval: self.eval.get(),
        }
    }
}

/// Whether the URL has `name=1`.
fn flag(name: &str) -> bool {
    browser::location_search()
        .trim_start_matches('?')
        .split('&')
        .any(|p| p == format!("{name}=1"))
}

/// The workspace this tab saved last (through its reloads), or else the one any tab saved last
/// (a new tab's). Two tabs each write theirs: with one copy only, a reload brought back the
/// other tab's prompt and settings over what was typed here.
fn saved_workspace() -> Option<String> {
    browser::tab_first_get(&browser::own_key(WORKSPACE_KEY))
}

/// Saves both copies: whether the lasting one (localStorage) was kept, and this tab's own.
pub(crate) fn save_workspace(json: &str) -> (bool, bool) {
    browser::set_both(&browser::own_key(WORKSPACE_KEY), json)
}

pub fn mount() {
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let saved = saved_workspace();
    // A first visit: no saved workspace, and no link that names models (one with only a
    // prompt, a mode or a seed, or a tracking parameter, still counts). Pane 1 then shows the
    // catalog's default model, chosen but not loaded, so one click on Run loads and runs it.
    let linked = browser::location_search()
        .trim_start_matches('?')
        .split('&')
        .any(|p| matches!(p.split('=').next(), Some("models" | "panes")));
    let (mut ws, save_note) = Workspace::from_saved_noting(saved.as_deref());
    // What a save or a link asked for that could not be used is said once, above the tabs.
    let mut notes: Vec<String> = save_note.into_iter().collect();
    let own = ws.to_saved();
    let own_panes = ws.panes.clone();
    notes.extend(ws.apply_query(&browser::location_search()));
    // The outputs kept belong to the panes they came from: a link that set up other panes
    // does not get them, while the page's own link, reloaded, leaves the panes as they were
    // (every reload after Permalink used to drop them).
    let linked = linked && ws.panes != own_panes;
    // A link opened where a workspace was saved replaces it, and the page saves the link's
    // at once: the one it replaced is kept aside, and can be brought back in one click.
    // Held here, with the outputs saved beside it, which the page also replaces at once;
    // not for a workspace never edited (a first visit's), nor in kiosk mode, where the last
    // visitor's is not to be shown.
    let replaced = match &saved {
        Some(kept) if ws.to_saved() != own && !flag("demo") => {
            let theirs = Workspace::from_saved(Some(kept.as_str()));
            let untouched = Workspace::default();
            let outputs = saved_outputs::saved();
            // Anything a first visit would not have saved: runs on the default prompt with
            // several panes or other settings were replaced without a word.
            let first_pane = PaneSettings {
                model_id: String::new(),
                ..PaneSettings::default()
            };
            let edited = theirs.prompt != untouched.prompt
                || !theirs.score_text.is_empty()
                || theirs.panes.len() > 1
                || theirs.panes.iter().any(|p| {
                    PaneSettings {
                        model_id: String::new(),
                        ..p.clone()
                    } != first_pane
                })
                || theirs.mode != untouched.mode
                || theirs.eval != untouched.eval
                || theirs.lab_sentences != untouched.lab_sentences
                || outputs.as_deref().is_some_and(saved_outputs::holds_any);
            // The saved prompt is named only where the link replaced it: a link of a few
            // settings was said to have replaced the prompt still in the box.
            let prompt = (theirs.prompt != ws.prompt).then(|| theirs.prompt.clone());
            edited.then(|| (prompt, kept.clone(), outputs))
        }
        _ => None,
    };
    let link_notes = RwSignal::new(notes);
    // A link whose `models=` or `panes=` names no model it can use (`models=,,`, a `panes=`
    // that is not JSON) is a first visit too.
    let first_visit = saved.is_none() && ws.panes.iter().all(|p| p.model_id.is_empty());
    let mode = RwSignal::new(ws.mode);
    let state = AppState {
        catalog: RwSignal::new(None),
        present: RwSignal::new(HashMap::new()),
        prompt: RwSignal::new(ws.prompt.clone()),
        score_text: RwSignal::new(ws.score_text.clone()),
        lab_sentences: RwSignal::new(ws.lab_sentences),
        panes: RwSignal::new(
            ws.panes
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, s)| Pane::new(i, s, mode))
                .collect(),
        ),
        mode,
        sync_scroll: RwSignal::new(true),
        cached: RwSignal::new(vec![]),
        cache_checked: RwSignal::new(0),
        sw: RwSignal::new(SwState::Starting),
        online: RwSignal::new(true),
        persisted: RwSignal::new(None),
        debug: flag("debug"),
        demo: flag("demo"),
        eval: RwSignal::new(ws.eval.clone()),
        eval_report: RwSignal::new(
            browser::local_get(&browser::own_key(eval_view::REPORT_KEY))
                .and_then(|j| serde_json::from_str::<EvalReport>(&j).ok())
                .map(|r| r.read_back(js_sys::Date::now())),
        ),
        eval_live: RwSignal::new(false),
        eval_started: StoredValue::new(0.0),
        eval_file: RwSignal::new_local(None),
        eval_file_error: RwSignal::new(None),
        arena: RwSignal::new(arena_view::ArenaState::load(flag("demo"))),
        // The header's preferences, as the workspace, are the kiosk's own in demo mode: a
        // visitor's choice must not reach the owner's page, and Reset puts them back.
        units: RwSignal::new(Units::from_id(
            &browser::local_get(&browser::own_key(UNITS_KEY)).unwrap_or_default(),
        )),
        theme: RwSignal::new(
            browser::local_get(&browser::own_key(THEME_KEY)).unwrap_or_else(|| "auto".into()),
        ),
        threads: RwSignal::new(threads::wanted()),
        next_id: StoredValue::new(ws.panes.len()),
        root: StoredValue::new_local(Owner::current()),
    };
    provide_context(state);
    offline::start(state);
    focus_keeper::start();
    eval_view::follow_panes(state);
    if state.demo {
        browser::set_root_attr("data-demo", "1");
    }

    // Each pane's worker gets its share of the cores; a new pane count re-divides them.
    Effect::new(move |_| {
        let n = state.panes.with(|p| p.len());
        threads::set_panes(n);
        for p in state.panes.get_untracked() {
            p.send_threads();
        }
    });

    // Until both answers of a blind battle are in, neither shows (CSS on the root): the
    // smaller model's answer came first, and the bigger one's streamed visibly slower.
    Effect::new(move |_| {
        let wait = state.arena_waiting();
        browser::set_root_attr("data-arena-wait", if wait { "both" } else { "" });
    });

    // The arena hides who is who until the vote (CSS on the root), and is kept like the
    // workspace.
    let heard_tally = StoredValue::new(false);
    Effect::new(move |_| {
        let s = state.arena.get();
        let hidden = s.active && s.voted.is_none();
        browser::set_root_attr("data-arena", if hidden { "hidden" } else { "" });
        // A tally heard from another tab is already stored: writing this tab's whole record
        // back would turn that tab's arena off and lose the panes it keeps.
        if heard_tally.get_value() {
            heard_tally.set_value(false);
            return;
        }
        browser::local_set(
            arena_view::arena_key(state.demo),
            &serde_json::to_string(&s).unwrap_or_default(),
        );
    });

    browser::refuse_stray_file_drops();

    // Votes cast in another tab join this tab's tally at once: each tab writes its whole
    // record, so a tab that had not heard of them would write them away with its next vote.
    browser::on_storage_change(move |key, value| {
        if key != arena_view::arena_key(state.demo) {
            return;
        }
        let theirs = value.map(|v| arena_view::ArenaState::read(&v));
        let (battles, pair, battle, voted) = match theirs {
            Some(t) => (t.battles, t.pair, t.battle, t.voted),
            None => (Vec::new(), None, 0, None),
        };
        // The battle this tab shows, voted in the other: its vote is taken (and the names
        // shown) here too, so that it is not voted, and counted, twice.
        let same_battle_voted = state.arena.with_untracked(|s| {
            s.voted.is_none()
                && s.pair.is_some()
                && s.pair == pair
                && s.battle == battle
                && voted.is_some()
        });
        if same_battle_voted || state.arena.with_untracked(|s| s.battles != battles) {
            heard_tally.set_value(true);
            state.arena.update(|s| {
                s.battles = battles;
                if same_battle_voted {
                    s.voted = voted;
                }
            });
        }
    });
    // Another tab may have kept or removed models meanwhile: the header and the list say what
    // the cache holds now.
    browser::on_focus(move || state.cache_checked.update(|n| *n += 1));

    // Save the workspace on every change, so a reload loses nothing; a link in the address
    // bar that no longer describes it goes, or the reload would bring the link back.
    Effect::new(move |_| {
        let ws = state.workspace();
        let saved = ws.to_saved();
        let mut kept = save_workspace(&saved);
        if !kept.0 {
            // The storage is full: the prompt and settings matter more than the kept outputs
            // (which a reload would show next to an older prompt anyway).
            saved_outputs::make_room();
            kept = save_workspace(&saved);
        }
        // Still no room (a long conversation keeps every token's numbers): said, not lost
        // in silence, until a save fits again.
        let (lasting, this_tab) = kept;
        let note = (!lasting).then(|| STORAGE_FULL_NOTES[usize::from(this_tab)].to_string());
        let shown: Option<String> = link_notes.with_untracked(|n| {
            n.iter()
                .find(|x| STORAGE_FULL_NOTES.contains(&x.as_str()))
                .cloned()
        });
        if note != shown {
            link_notes.update(|n| {
                n.retain(|x| !STORAGE_FULL_NOTES.contains(&x.as_str()));
                n.extend(note);
            });
        }
        if let Some(query) = ws.query_after_edit(&browser::location_search()) {
            let sep = if query.is_empty() { "" } else { "?" };
            browser::replace_url(&format!("{}{sep}{query}", browser::page_base()));
        }
    });
    saved_outputs::restore(state, linked);
    saved_outputs::keep(state, link_notes);

    // Read the catalog; then reload the models the workspace names.
    spawn_local(async move {
        let catalog = browser::fetch_text(&browser::with_build(CATALOG_URL))
            .await
            .map_err(|e| format!("Could not read the model catalog ({e})."))
            .and_then(|t| Catalog::parse(&t));
        state.catalog.set(Some(catalog.clone()));
        state.refresh_presence();
        if let Ok(c) = catalog {
            // What the browser's model cache holds: a pane's model from a file is loaded again
            // from there, and only from there.
            let cached = browser::cached_models().await.unwrap_or_default();
            for p in state.panes.get_untracked() {
                let id = p.settings.with_untracked(|s| s.model_id.clone());
                let local = p.settings.with_untracked(|s| s.local_model.clone());
                match (c.get(&id), local) {
                    (Some(m), _) => p.load_catalog(m),
                    (None, Some(l)) if id.is_empty() => {
                        if cached.iter().any(|k| k.url == l.url) {
                            p.load_cached(&l.url, &l.label);
                        } else {
                            p.settings.update(|s| s.local_model = None);
                            p.state.update(|s| {
                                s.model.message = format!(
                                    "No model loaded: {} came from a file on this machine and \
                                     is not in this browser's cache. Choose the file again, or \
                                     drop it on this pane.",
                                    crate::engine::error::one_line(&l.label)
                                )
                            });
                        }
                    }
                    // A saved or linked id this catalog does not have: the pane starts empty,
                    // and says which id it was.
                    (None, _) => {
                        p.settings.update(|s| s.model_id.clear());
                        if !id.is_empty() {
                            p.state.update(|s| {
                                s.model.message = format!(
                                    "No model loaded: \"{}\" is not a model of this page's \
                                     catalog. Choose one above, or drop a .gguf file on this \
                                     pane.",
                                    crate::engine::error::one_line(&id)
                                )
                            });
                        }
                    }
                }
            }
            if first_visit && !state.demo {
                if let (Some(p), Some(m)) = (state.panes.get_untracked().first(), c.get(&c.default))
                {
                    // Not over a model the user gave before the catalog came (a file dropped
                    // at once, a model picked): the pane named the default while it held that.
                    let untouched = p
                        .settings
                        .with_untracked(|s| s.model_id.is_empty() && s.local_model.is_none())
                        && p.model_untracked(|m| m.phase == ModelPhase::Empty);
                    if untouched {
                        p.settings.update(|s| s.model_id = m.id.clone());
                    }
                }
            }
        }
    });

    let theme = state.theme;
    Effect::new(move |_| {
        let t = theme.get();
        browser::set_theme(&t);
        browser::local_set(&browser::own_key(THEME_KEY), &t);
    });

    let units = state.units;
    Effect::new(move |_| browser::local_set(&browser::own_key(UNITS_KEY), units.get().id()));

    view! {
        <header class="top">
            <h1>"TinyLab"</h1>
            <p class="tagline">"Small language models, run in your browser, measured token by token."</p>
            <OfflineStatus />
            <threads::ThreadsControl />
            <label class="units" title="Entropy and surprisal in nats (natural log) or bits (log base 2); exports and the command line stay in nats">
                <span class="muted">"Units"</span>
                <select
                    data-testid="units"
                    prop:value=move || units.get().id()
                    on:change=move |ev| units.set(Units::from_id(&event_target_value(&ev)))
                >
                    <option value="nats">"nats"</option>
                    <option value="bits">"bits"</option>
                </select>
            </label>
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
            <LinkNotes notes=link_notes />
            {replaced.map(|(prompt, kept, outputs)| view! { <LinkReplaced prompt kept outputs /> })}
            <CatalogPanel />
            // The ARIA tabs pattern: one Tab stop (the selected tab), arrow keys, Home and End
            // move between tabs and select them.
            <nav
                class="tabs"
                role="tablist"
                aria-label="Mode"
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    let at = TABS.iter().position(|t| t.0 == state.mode.get_untracked()).unwrap_or(0);
                    if let Some(next) = arrow_target(&ev.key(), at, TABS.len()) {
                        ev.prevent_default();
                        state.mode.set(TABS[next].0);
                        browser::focus_selector(&format!("[data-testid={}]", TABS[next].1));
                    }
                }
            >
                {TABS
                    .into_iter()
                    .map(|(mode, testid, label)| {
                        view! {
                            <button
                                type="button"
                                role="tab"
                                id=testid
                                aria-controls="mode-panel"
                                tabindex=move || if state.mode.get() == mode { "0" } else { "-1" }
                                data-testid=testid
                                aria-selected=move || (state.mode.get() == mode).to_string()
                                class:active=move || state.mode.get() == mode
                                on:click=move |_| state.mode.set(mode)
                            >
                                {label}
                            </button>
                        }
                    })
                    .collect_view()}
            </nav>
            <div
                role="tabpanel"
                id="mode-panel"
                aria-labelledby=move || TABS.iter().find(|t| t.0 == state.mode.get()).map_or("", |t| t.1)
            >
            {move || match state.mode.get() {
                Mode::Generate => view! { <PromptBox /> }.into_any(),
                Mode::Score => view! { <ScoreBox /> }.into_any(),
                Mode::Eval => view! { <eval_view::EvalPanel /> }.into_any(),
                Mode::Chat => view! {
                    <p class="muted chat-intro">
                        "Each pane holds its own conversation with its model. Turns reuse the model's memory of the history, so a new message costs only its own tokens."
                    </p>
                }
                .into_any(),
            }}
            </div>
            <Show when=move || state.demo fallback=|| view! { <Toolbar /> }>
                <DemoBar />
            </Show>
            <Show when=move || state.mode.get() == Mode::Generate>
                <arena_view::ArenaBar />
            </Show>
            <Show when=move || state.mode.get() == Mode::Score>
                <BinocularsPanel />
            </Show>
            <div class="panes" class:many=move || state.panes.with(|p| p.len() > 2)>
                <For each=move || state.panes.get() key=|p| p.id let:pane>
                    <PaneView pane />
                </For>
            </div>
            // The evaluation report is that tab's comparison.
            <Show when=move || state.mode.get() != Mode::Eval>
                <CompareTable />
            </Show>
        </main>
        <footer class="muted">
            "Everything runs on this device: no server computes anything, and your files never leave it."
        </footer>
    }
}
