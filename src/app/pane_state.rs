//! One pane in the page: its settings, its state (`ui::pane::PaneModel`, where every rule about
//! jobs and replies lives) in a signal, and its worker. This file only wires the two: it asks
//! the model for a request, sends it, and hands the worker's replies back. All fields are arena
//! handles, so a `Pane` is `Copy` and moves freely into view closures.

use leptos::prelude::*;

use super::browser;
use super::worker_client::WorkerClient;
use crate::protocol::{FromWorker, JobId, ToWorker, Work};
use crate::ui::catalog::{local_cache_key, CatalogModel};
pub use crate::ui::pane::{
    Awaiting, BinoState, Effect, LabState, ModelPhase, ModelState, OutputPhase, PaneModel,
    RunState, Tree,
};
use crate::ui::settings::{LocalModel, Mode, PaneSettings, Turn, TurnToken};

fn shown_in(s: &PaneModel, mode: Mode) -> &RunState {
    match mode {
        Mode::Score => &s.score,
        Mode::Chat => &s.chat,
        _ => &s.run,
    }
}

/// How long a stopped job may take to end before its worker is ended (`Pane::end_if_stuck`):
/// far above the longest step of a generation, score or lab run (a prompt chunk of 256
/// tokens, a few seconds at most).
const STOP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// The same for an evaluation, whose step is a whole item: a 4,096-token item on one thread
/// of a 0.5B model takes tens of seconds, and ending the worker would cost the model's load.
const EVAL_STOP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(90);

/// Work that waits for the pane's model to load (see `Pane::start_when_loaded`).
#[derive(Debug, Clone)]
pub enum Queued {
    Run(String),
    Score(String),
    /// "Human vs model": the text and how many of its sentences make the prompt.
    Lab(String, usize),
    /// A chat message, sent as the next user turn: what the box holds once the model is
    /// ready (what is typed meanwhile goes with it; a box emptied meanwhile sends nothing).
    Chat,
}

impl Queued {
    fn awaiting(&self) -> Awaiting {
        match self {
            Queued::Run(_) => Awaiting::Run,
            Queued::Score(_) => Awaiting::Score,
            Queued::Lab(..) => Awaiting::Lab,
            Queued::Chat => Awaiting::Chat,
        }
    }
}

#[derive(Clone, Copy)]
pub struct Pane {
    /// Stable identity (keys, not position: panes can be removed).
    pub id: usize,
    pub settings: RwSignal<PaneSettings>,
    pub state: RwSignal<PaneModel>,
    /// Observer rows waiting to go to the performer: the ids and the transferred buffer.
    pub rows: StoredValue<Option<(Vec<u32>, wasm_bindgen::JsValue)>, LocalStorage>,
    /// Set once the pane is removed: no worker may start for it again.
    closed: StoredValue<bool>,
    mode: RwSignal<Mode>,
    /// The token under the pointer or keyboard focus, for the inspector.
    pub hovered: RwSignal<Option<usize>>,
    /// The token last clicked: the inspector keeps showing it when the pointer moves on (to
    /// its alternatives, to fork there).
    pub pinned: RwSignal<Option<usize>>,
    worker: StoredValue<Option<WorkerClient>, LocalStorage>,
    /// Counts the workers started, so that a drop asked for one (`Effect::DropWorker`, run
    /// later) never ends the one a load started meanwhile.
    worker_started: StoredValue<u64>,
    /// Work to start as soon as the model being loaded is ready (Run, Score, Send or
    /// "Human vs model" pressed before it was loaded).
    queued: StoredValue<Option<Queued>>,
    /// The catalog model the pane had chosen before a file was opened on it: a file that does
    /// not load gives it back, so Run loads the model that worked instead of nothing.
    before_file: StoredValue<Option<String>>,
    /// When the worker was last heard from during a job (ms; `None` between jobs), and the
    /// longest silence inside a job so far: a Stop waits for a step that long to end.
    heard: StoredValue<(Option<f64>, f64)>,
    /// Whether the chat's reply and its branches are the conversation's last turn (see
    /// `chat_tree_is_current`): a memo, as the views ask at every state change.
    chat_current: Memo<bool>,
}

impl Pane {
    pub fn new(id: usize, settings: PaneSettings, mode: RwSignal<Mode>) -> Self {
        let (hovered, pinned) = (RwSignal::new(None), RwSignal::new(None));
        let settings = RwSignal::new(settings);
        let state = RwSignal::new(PaneModel::default());
        let chat_current = Memo::new(move |_| {
            state.with(|s| {
                s.chat.request.as_ref().is_some_and(|q| {
                    !q.messages.is_empty()
                        && settings.with(|st| st.conversation.answers(&q.messages))
                })
            })
        });
        // A token pointed at in one tab is not inspected (or forked) in another: its index
        // would stand for another output's token there.
        leptos::prelude::Effect::new(move |last: Option<Mode>| {
            let now = mode.get();
            if last.is_some_and(|m| m != now) {
                hovered.set(None);
                pinned.set(None);
            }
            now
        });
        Pane {
            id,
            settings,
            state,
            rows: StoredValue::new_local(None),
            closed: StoredValue::new(false),
            mode,
            hovered,
            pinned,
            worker: StoredValue::new_local(None),
            worker_started: StoredValue::new(0),
            queued: StoredValue::new(None),
            before_file: StoredValue::new(None),
            heard: StoredValue::new((None, 0.0)),
            chat_current,
        }
    }

    pub fn model<R>(&self, f: impl FnOnce(&ModelState) -> R) -> R {
        self.state.with(|s| f(&s.model))
    }

    pub fn model_untracked<R>(&self, f: impl FnOnce(&ModelState) -> R) -> R {
        self.state.with_untracked(|s| f(&s.model))
    }

    pub fn run<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        self.state.with(|s| f(&s.run))
    }

    pub fn run_untracked<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        self.state.with_untracked(|s| f(&s.run))
    }

    /// The conversation's last reply (the Chat tab's output).
    pub fn chat<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        self.state.with(|s| f(&s.chat))
    }

    pub fn chat_untracked<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        self.state.with_untracked(|s| f(&s.chat))
    }

    pub fn score_untracked<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        self.state.with_untracked(|s| f(&s.score))
    }

    pub fn lab<R>(&self, f: impl FnOnce(&LabState) -> R) -> R {
        self.state.with(|s| f(&s.lab))
    }

    pub fn bino<R>(&self, f: impl FnOnce(&BinoState) -> R) -> R {
        self.state.with(|s| f(&s.bino))
    }

    /// The run the page shows: the generation, the scored text in score mode, the last reply
    /// in chat mode.
    pub fn shown<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        let mode = self.mode.get();
        self.state.with(|s| f(shown_in(s, mode)))
    }

    /// [`Pane::shown`] without subscribing.
    pub fn shown_untracked<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        let mode = self.mode.get_untracked();
        self.state.with_untracked(|s| f(shown_in(s, mode)))
    }

    /// Which output the tab shown forks (and lists the branches of): none outside Generate
    /// and Chat.
    pub fn tree(&self) -> Option<Tree> {
        match self.mode.get() {
            Mode::Generate => Some(Tree::Run),
            Mode::Chat => Some(Tree::Chat),
            Mode::Score | Mode::Eval => None,
        }
    }

    /// Whether the chat's last reply, and its branches, are the conversation's last turn
    /// (`Conversation::answers`): only then can it be forked, or a branch shown in its place.
    pub fn chat_tree_is_current(&self) -> bool {
        self.chat_current.get()
    }

    /// Whether the shown tab's output can be forked now: a finished generation, or the
    /// conversation's finished last reply, while the pane does nothing else.
    pub fn can_fork(&self) -> bool {
        if self.is_busy() {
            return false;
        }
        match self.tree() {
            Some(Tree::Run) => self.run(|r| r.request.is_some()),
            Some(Tree::Chat) => {
                self.chat(|r| r.finished_with_tokens()) && self.chat_tree_is_current()
            }
            None => false,
        }
    }

    pub fn threads(&self) -> Option<usize> {
        self.state.with(|s| s.threads)
    }

    /// The SIMD form of this pane's worker build, once it said (`engine::KERNELS`).
    pub fn kernels(&self) -> String {
        self.state.with(|s| s.kernels.clone())
    }

    /// How the worker sums its byte products, when it has two ways (`engine::dot_form`).
    pub fn dot(&self) -> Option<crate::protocol::DotChoice> {
        self.state.with(|s| s.dot.clone())
    }

    pub fn is_running(&self) -> bool {
        self.state.with(|s| s.is_running())
    }

    pub fn is_busy(&self) -> bool {
        self.state.with(|s| s.is_busy())
    }

    pub fn is_busy_untracked(&self) -> bool {
        self.state.with_untracked(|s| s.is_busy())
    }

    pub fn is_ready(&self) -> bool {
        self.state.with(|s| s.is_ready())
    }

    /// Ends the pane's worker (the pane is being removed).
    pub fn shut_down(&self) {
        self.closed.set_value(true);
        self.worker.set_value(None);
        self.rows.set_value(None);
    }

    /// Sends `msg` (made by the state machine) to the worker, starting one when needed. A
    /// request that cannot be delivered fails its job in the pane.
    fn send(&self, msg: ToWorker, how: Beside<'_>) {
        if self.closed.get_value() {
            return;
        }
        let pane = *self;
        if self.worker.with_value(|w| w.is_none()) {
            match WorkerClient::spawn(move |msg, data| pane.apply(msg, data)) {
                Ok(client) => {
                    let _ = client.send(&super::threads::request());
                    self.worker.set_value(Some(client));
                    self.worker_started.update_value(|n| *n += 1);
                }
                Err(message) => {
                    let before = self.state.with_untracked(|s| s.model.phase);
                    let effects = self.state.try_update(|s| s.worker_lost(&message));
                    self.settle(
                        before,
                        effects.unwrap_or_default(),
                        wasm_bindgen::JsValue::UNDEFINED,
                    );
                    return;
                }
            }
        }
        let sent = self.worker.with_value(|w| match (w, how) {
            (Some(w), Beside::Nothing) => w.send(&msg),
            (Some(w), Beside::File(f)) => w.send_with_file(&msg, f),
            (Some(w), Beside::Buffer(b)) => w.send_with_buffer(&msg, b),
            (None, _) => Err("no model worker".into()),
        });
        match (sent, &msg) {
            (Err(message), ToWorker::Job { job, .. }) => {
                let job: JobId = *job;
                let before = self.state.with_untracked(|s| s.model.phase);
                let effects = self.state.try_update(|s| s.send_failed(job, &message));
                self.settle(
                    before,
                    effects.unwrap_or_default(),
                    wasm_bindgen::JsValue::UNDEFINED,
                );
            }
            (Ok(()), ToWorker::Job { .. }) => {
                self.heard.update_value(|h| h.0 = Some(browser::now_ms()))
            }
            _ => {}
        }
    }

    /// Notes a message from the worker, once applied: the longest silence inside a job so far
    /// is how long one of its steps takes on this machine and model (`stop_deadline`). The
    /// time between jobs (`last` is `None` once none runs) and a crash's do not count.
    fn note_heard(&self, step: bool) {
        let busy = self
            .state
            .try_with_untracked(|s| !s.stop().is_empty())
            .unwrap_or(false);
        let now = browser::now_ms();
        self.heard.update_value(|(last, longest)| {
            if let (Some(t), true) = (*last, step) {
                *longest = longest.max(now - t);
            }
            *last = busy.then_some(now);
        });
    }

    /// Passes the page's thread count to a running worker (a new one gets it at start).
    pub fn send_threads(&self) {
        self.worker.with_value(|w| {
            if let Some(w) = w {
                let _ = w.send(&super::threads::request());
            }
        });
    }

    /// `next_bytes`: the size of the model to load, when known (`ModelState::wants_fresh_worker`).
    fn start(&self, work: Work, label: &str, how: Beside<'_>, next_bytes: Option<u64>) {
        self.hovered.set(None);
        let fresh = self
            .state
            .with_untracked(|s| s.model.wants_fresh_worker(next_bytes));
        if let Some(msg) = self.state.try_update(|s| s.load(work, label)).flatten() {
            if fresh {
                self.worker.set_value(None);
            }
            self.send(msg, how);
        }
    }

    /// What a failed load of a file gives back: the catalog model the pane had chosen before
    /// it. A file chosen before is not (it may be the one that failed, at a reload, or one
    /// the cache no longer holds): a failed file leaves no file to load again and again.
    fn remember_choice_before(&self) {
        let before = self.settings.with_untracked(|s| s.model_id.clone());
        self.before_file
            .set_value((!before.is_empty()).then_some(before));
    }

    pub fn load_catalog(&self, m: &CatalogModel) {
        if self.is_busy() {
            return;
        }
        self.before_file.set_value(None);
        self.settings.update(|s| {
            s.model_id = m.id.clone();
            s.local_model = None;
        });
        let work = Work::LoadUrl {
            url: browser::absolute(&m.url()),
            label: m.name.clone(),
        };
        self.start(work, &m.name, Beside::Nothing, Some(m.bytes));
    }

    /// Loads a model the browser cache holds (a local file kept from an earlier visit).
    pub fn load_cached(&self, url: &str, label: &str) {
        if self.is_busy() {
            return;
        }
        self.remember_choice_before();
        self.settings.update(|s| {
            s.model_id.clear();
            s.local_model = Some(LocalModel {
                url: url.to_string(),
                label: label.to_string(),
            });
        });
        let work = Work::LoadUrl {
            url: url.to_string(),
            label: label.to_string(),
        };
        self.start(work, label, Beside::Nothing, None);
    }

    /// `twins`: the catalog models of the file's size (`AppState::twins_of_size`).
    pub fn load_file(&self, file: web_sys::File, twins: Vec<crate::protocol::CatalogTwin>) {
        if self.is_busy() {
            return;
        }
        let name = file.name();
        let cache_key = browser::absolute(&local_cache_key(
            &name,
            file.size() as u64,
            file.last_modified() as u64,
        ));
        self.remember_choice_before();
        self.settings.update(|s| {
            s.model_id.clear();
            s.local_model = Some(LocalModel {
                url: cache_key.clone(),
                label: name.clone(),
            });
        });
        let work = Work::LoadFile {
            cache_key,
            name: name.clone(),
            twins,
        };
        let bytes = file.size() as u64;
        self.start(work, &name, Beside::File(&file), Some(bytes));
    }

    /// Starts `work` with the pane's chosen catalog model `m` loaded first when it is not
    /// loaded yet: the first minute's one click, on every tab (a fresh page has the default
    /// model chosen, not loaded). `hidden`: the model is not to be named (a blind arena battle
    /// before the vote).
    pub fn start_when_loaded(&self, m: Option<&CatalogModel>, work: Queued, hidden: bool) {
        let phase = self.state.with_untracked(|s| s.model.phase);
        match m {
            Some(m) if phase != ModelPhase::Ready => {
                let awaiting = work.awaiting();
                self.queued.set_value(Some(work));
                let name = if hidden { "the hidden model" } else { &m.name };
                self.state.update(|s| s.waiting_for_model(name, awaiting));
                if phase != ModelPhase::Loading {
                    self.load_catalog(m);
                }
            }
            _ => self.start_queued(work),
        }
    }

    fn start_queued(&self, work: Queued) {
        self.queued.set_value(None);
        match work {
            Queued::Run(prompt) => self.start_run(&prompt),
            Queued::Score(text) => self.start_score(&text),
            Queued::Lab(text, sentences) => self.start_lab(&text, sentences),
            // What the box holds now: what was typed while the model loaded joins the
            // message (Send and Enter are off meanwhile), rather than being cleared unsent.
            Queued::Chat => {
                let draft = self
                    .settings
                    .with_untracked(|s| s.conversation.draft.clone());
                if draft.trim().is_empty() {
                    self.state.update(|s| {
                        s.chat.message =
                            "Nothing was sent: the message was deleted while the model loaded."
                                .into()
                    });
                } else {
                    self.send_chat(&draft);
                }
            }
        }
    }

    pub fn start_run(&self, prompt: &str) {
        let request = self.settings.with_untracked(|s| s.request(prompt));
        self.forget_pointer();
        if let Some(msg) = self.state.try_update(|s| s.start_run(request)).flatten() {
            self.send(msg, Beside::Nothing);
        }
    }

    /// The token the inspector shows: the one clicked (kept while the pointer crosses other
    /// tokens on its way to the inspector's buttons and box), else the one pointed at.
    pub fn inspected(&self) -> Option<usize> {
        // The chat's reply is inspected while it is the conversation's last turn (its tokens
        // are shown only then; Edit or a new system prompt take it back).
        if self.mode.get() == Mode::Chat && !self.chat_current.get() {
            return None;
        }
        self.pinned.get().or(self.hovered.get())
    }

    /// A click (or Enter) on a token keeps it in the inspector until another is clicked or
    /// Escape lets it go (`None`).
    pub fn pin(&self, index: Option<usize>) {
        self.pinned.set(index);
    }

    fn forget_pointer(&self) {
        self.hovered.set(None);
        self.pinned.set(None);
    }

    /// The tree the shown tab forks, when a fork may start there now.
    fn fork_tree(&self) -> Option<Tree> {
        let tree = untrack(|| self.tree())?;
        // The reply must still be the conversation's last turn, for its branch to replace it.
        (tree == Tree::Run || self.chat_current.get_untracked()).then_some(tree)
    }

    /// Forks the shown generation (or reply) at token `at` with `token` instead (see
    /// `PaneModel::start_fork`).
    pub fn fork(&self, at: usize, token: u32, text: &str) {
        let Some(tree) = self.fork_tree() else {
            return;
        };
        if let Some(msg) = self
            .state
            .try_update(|s| s.start_fork(tree, at, token, text))
            .flatten()
        {
            self.forget_pointer();
            self.send(msg, Beside::Nothing);
        }
    }

    /// Forks at token `at` to a continuation the user typed.
    pub fn fork_text(&self, at: usize, typed: &str) {
        let Some(tree) = self.fork_tree() else {
            return;
        };
        if let Some(msg) = self
            .state
            .try_update(|s| s.start_fork_text(tree, at, typed))
            .flatten()
        {
            self.forget_pointer();
            self.send(msg, Beside::Nothing);
        }
    }

    /// Shows branch `i` of the shown tab's output; in the Chat tab the branch becomes the
    /// conversation's last turn.
    pub fn show_branch(&self, i: usize) {
        let Some(tree) = self.fork_tree() else {
            return;
        };
        self.forget_pointer();
        self.state.update(|s| s.show_branch(tree, i));
        if tree == Tree::Chat {
            // A branch that failed before its first token leaves the conversation as it was;
            // one the model ended at once is an empty reply, shown as such.
            let shown = self.chat_untracked(|r| {
                let stopped_empty =
                    r.tokens.is_empty() && r.finish == Some(crate::engine::StopReason::Stopped);
                (r.finished() && !stopped_empty).then(|| r.tokens.clone())
            });
            if let Some(tokens) = shown {
                self.replace_reply(&tokens);
            }
        }
    }

    /// Puts `tokens` in the place of the conversation's last reply, while that reply is the
    /// one the chat's branches answer (nothing else changed the conversation meanwhile).
    fn replace_reply(&self, tokens: &[crate::protocol::TokenEvent]) {
        let (left_out, asked) =
            self.chat_untracked(|r| (r.left_out, r.request.as_ref().map(|q| q.messages.clone())));
        self.settings.update(|s| {
            if !asked.is_some_and(|a| s.conversation.answers(&a)) {
                return;
            }
            let turns = &mut s.conversation.turns;
            turns.pop();
            turns.push(reply_turn(tokens));
            s.conversation.left_out = left_out;
        });
    }

    /// Sends `text` as the conversation's next user turn; the reply is added when it is done.
    pub fn send_chat(&self, text: &str) {
        if text.trim().is_empty() || self.state.with_untracked(|s| s.is_busy()) {
            return;
        }
        if !self.state.with_untracked(|s| s.is_ready()) {
            // Shows "Load a model first." where the reply would be; the turn is not taken.
            let _ = self
                .state
                .try_update(|s| s.start_chat(Ok(crate::engine::GenerateRequest::default())));
            return;
        }
        // Settings the engine refuses (top-p 0) are said before the message becomes a turn:
        // it stays in the box, and the conversation as it was.
        if let Err(why) = self
            .settings
            .with_untracked(|s| s.request("(conversation)"))
        {
            let _ = self.state.try_update(|s| s.start_chat(Err(why)));
            return;
        }
        self.settings.update(|s| {
            let turns = &mut s.conversation.turns;
            match turns.last_mut() {
                // The last message never got its reply (a reload, a failure or a crash cut
                // it off): the new one joins it, as the models' templates want user and
                // assistant turns to alternate (Gemma 3's refuses two user turns in a row).
                Some(last) if last.role == "user" => {
                    last.content.push_str("\n\n");
                    last.content.push_str(text);
                }
                _ => turns.push(Turn {
                    role: "user".into(),
                    content: text.to_string(),
                    tokens: vec![],
                }),
            }
        });
        // Taken: the box empties (a reply that fails before its first token fills it again).
        self.set_chat_draft(String::new());
        self.run_chat();
    }

    /// The chat's input box, kept with the settings (`Conversation::draft`): a message whose
    /// reply failed is handed back to it, and a draft outlives a switch of tabs and a reload.
    pub fn chat_draft(&self) -> String {
        self.settings.with(|s| s.conversation.draft.clone())
    }

    pub fn set_chat_draft(&self, text: String) {
        self.settings.update(|s| s.conversation.draft = text);
    }

    /// Puts a message back in the input box, before anything typed there since (Edit
    /// overwrote a half-written message).
    pub fn return_to_draft(&self, text: String) {
        self.settings.update(|s| {
            let d = &mut s.conversation.draft;
            *d = if d.trim().is_empty() {
                text
            } else {
                format!("{text}\n\n{d}")
            }
        });
    }

    /// Runs the conversation as it stands (its last turn is the user's): the history's KV
    /// cache is reused, so only the new turn is computed.
    fn run_chat(&self) {
        let request = self.chat_request(0);
        self.forget_pointer();
        if let Some(msg) = self.state.try_update(|s| s.start_chat(request)).flatten() {
            self.send(msg, Beside::Nothing);
        }
    }

    /// The conversation, less its last `drop` turns, as a request for its next reply.
    fn chat_request(&self, drop: usize) -> Result<crate::engine::GenerateRequest, String> {
        self.settings.with_untracked(|s| {
            s.request("(conversation)").map(|mut r| {
                r.messages = s.conversation.messages();
                r.messages.truncate(r.messages.len().saturating_sub(drop));
                r.chat = true;
                r.reuse_cache = true;
                r
            })
        })
    }

    /// Takes user turn `i` back out to be edited: it and everything after it leave the
    /// conversation, and its text is returned for the input box.
    pub fn edit_turn(&self, i: usize) -> Option<String> {
        if self.is_running() {
            return None;
        }
        self.forget_pointer();
        let mut text = None;
        let mut reply_dropped = false;
        self.settings.update(|s| {
            let turns = &mut s.conversation.turns;
            if turns.get(i).is_some_and(|t| t.role == "user") {
                text = Some(turns[i].content.clone());
                // The last run is the conversation's last reply: dropped with the turns from
                // `i` on, or kept where only a message it never answered goes.
                reply_dropped = turns.iter().rposition(|t| t.role == "assistant") > Some(i);
                turns.truncate(i);
            }
            s.conversation.left_out = s.conversation.left_out.min(s.conversation.turns.len());
        });
        if reply_dropped {
            // Its line, its figures and its forks went with it.
            self.state.update(|s| s.clear_chat());
        }
        text
    }

    /// Asks for the last reply again (the new one takes its place when done, and both are
    /// kept as branches), or for the one the last message never got.
    pub fn regenerate(&self) {
        if self.is_running() || !self.is_ready() {
            return;
        }
        let last_role = self
            .settings
            .with_untracked(|s| s.conversation.turns.last().map(|t| t.role.clone()));
        match last_role.as_deref() {
            Some("assistant") => {
                let request = self.chat_request(1);
                self.forget_pointer();
                if let Some(msg) = self
                    .state
                    .try_update(|s| s.start_chat_again(request))
                    .flatten()
                {
                    self.send(msg, Beside::Nothing);
                }
            }
            Some("user") => self.run_chat(),
            _ => {}
        }
    }

    pub fn clear_chat(&self) {
        if !self.is_running() {
            self.settings.update(|s| {
                s.conversation.turns.clear();
                s.conversation.left_out = 0;
            });
            self.state.update(|s| s.clear_chat());
        }
    }

    pub fn start_score(&self, text: &str) {
        self.hovered.set(None);
        if let Some(msg) = self.state.try_update(|s| s.start_score(text)).flatten() {
            self.send(msg, Beside::Nothing);
        }
    }

    pub fn start_lab(&self, text: &str, sentences: usize) {
        let request = self.settings.with_untracked(|s| s.request(text));
        if let Some(msg) = self
            .state
            .try_update(|s| s.start_lab(text, sentences, request))
            .flatten()
        {
            self.send(msg, Beside::Nothing);
        }
    }

    /// Scores `items` under `conditions` (the evaluation tab; every pane gets the same).
    pub fn start_eval(
        &self,
        items: Vec<crate::eval::Item>,
        conditions: Vec<crate::eval::Condition>,
    ) {
        if let Some(msg) = self
            .state
            .try_update(|s| s.start_eval(items, conditions))
            .flatten()
        {
            self.send(msg, Beside::Nothing);
        }
    }

    pub fn eval<R>(&self, f: impl FnOnce(&crate::ui::pane::EvalState) -> R) -> R {
        self.state.with(|s| f(&s.eval))
    }

    /// The loaded model's name, or the pane's number when none is.
    pub fn label(&self) -> String {
        self.model(|m| m.loaded.as_ref().map(|l| l.label.clone()))
            .unwrap_or_else(|| format!("pane {}", self.id + 1))
    }

    /// Binoculars, observer side.
    pub fn request_distributions(&self, text: &str) {
        self.rows.set_value(None);
        if let Some(msg) = self.state.try_update(|s| s.request_distributions(text)) {
            self.send(msg, Beside::Nothing);
        }
    }

    /// Binoculars, performer side.
    pub fn send_binoculars(
        &self,
        ids: Vec<u32>,
        buffer: &wasm_bindgen::JsValue,
        observer: crate::ui::pane::BinoObserver,
    ) {
        if let Some(msg) = self.state.try_update(|s| s.send_binoculars(ids, observer)) {
            self.send(msg, Beside::Buffer(buffer));
        }
    }

    /// Forgets this pane's Binoculars result (a new pairing starts).
    pub fn clear_binoculars(&self) {
        self.state.update(|s| s.bino = BinoState::default());
    }

    /// Work asked for while the model loads waits for it (`start_when_loaded`). Not a signal:
    /// views that read it (the Stop buttons) are redrawn because every change to it comes with
    /// a change to the pane's state (`waiting_for_model`, `stop`, the work starting or the
    /// load failing).
    pub fn has_queued(&self) -> bool {
        self.queued.with_value(|q| q.is_some())
    }

    /// Drops the work waiting for the model, saying `why` where its output would be.
    fn end_queued(&self, why: &str) {
        if let Some(work) = self.queued.get_value() {
            self.queued.set_value(None);
            self.state.update(|s| s.awaited_ended(work.awaiting(), why));
        }
    }

    pub fn stop(&self) {
        self.end_queued("Stopped before it started; the model goes on loading.");
        let stops = self.state.with_untracked(|s| s.stop());
        let jobs: Vec<JobId> = stops
            .iter()
            .filter_map(|m| match m {
                ToWorker::Stop { job } => Some(*job),
                _ => None,
            })
            .collect();
        for msg in stops {
            self.send(msg, Beside::Nothing);
        }
        if !jobs.is_empty() {
            let evaluating = self
                .state
                .with_untracked(|s| s.eval.phase == OutputPhase::Running);
            let least = if evaluating {
                EVAL_STOP_DEADLINE
            } else {
                STOP_DEADLINE
            };
            let step_ms = self.heard.get_value().1;
            self.end_if_stuck(jobs, crate::ui::pane::stop_deadline(least, step_ms));
        }
    }

    /// Ends a load that is under way (a stalled download, a file chosen by mistake) by ending
    /// the worker: nothing inside it can interrupt a read. Work waiting for the model ends
    /// too, and the next load starts a fresh worker.
    pub fn cancel_load(&self) {
        if self.state.with_untracked(|s| s.model.phase) != ModelPhase::Loading {
            return;
        }
        self.end_queued("Not started: the model's loading was cancelled.");
        // A failed load forgets its file (no model to bring back after a reload); a cancelled
        // one was no failure of the file's, which the cache may still hold.
        let local = self.settings.with_untracked(|s| s.local_model.clone());
        // The file stays the choice: not the one before it, as a failure would give back.
        self.before_file.set_value(None);
        self.apply(
            FromWorker::Crashed {
                message: "Loading was cancelled".into(),
            },
            wasm_bindgen::JsValue::NULL,
        );
        if local.is_some() {
            self.settings.update(|s| s.local_model = local);
        }
    }

    /// A worker answers Stop between two steps. One still working on a stopped job after
    /// `deadline` is stuck inside a step (a chat template looping where minijinja's fuel
    /// does not count, which nothing inside the worker can interrupt): only ending the worker
    /// frees its core, and the pane says so.
    fn end_if_stuck(&self, jobs: Vec<JobId>, deadline: std::time::Duration) {
        let pane = *self;
        set_timeout(
            move || {
                let stuck = pane
                    .state
                    .try_with_untracked(|s| {
                        s.stop()
                            .iter()
                            .any(|m| matches!(m, ToWorker::Stop { job } if jobs.contains(job)))
                    })
                    .unwrap_or(false);
                if stuck {
                    let message = format!(
                        "The model worker did not stop within {} s: a step (the model's chat \
                         template, say) ran on, so the worker was ended",
                        deadline.as_secs()
                    );
                    pane.apply(FromWorker::Crashed { message }, wasm_bindgen::JsValue::NULL);
                }
            },
            deadline,
        );
    }

    /// Forgets the pane's runs (the demo's reset); their late replies are dropped by job id.
    pub fn clear_output(&self) {
        self.hovered.set(None);
        self.state.update(|s| s.clear_output());
    }

    /// Makes the worker panic (debug builds of the page: `?debug=1`).
    pub fn crash_worker(&self) {
        self.send(ToWorker::Crash, Beside::Nothing);
    }

    /// Applies one reply from the worker (`data` is the raw message, for a transferred buffer).
    fn apply(&self, msg: FromWorker, data: wasm_bindgen::JsValue) {
        // A crash, real or declared by `end_if_stuck`, is no step: its silence is not counted.
        let step = !matches!(msg, FromWorker::Crashed { .. });
        let before = self.state.with_untracked(|s| s.model.phase);
        let effects = self.state.try_update(|s| s.apply(msg)).unwrap_or_default();
        self.note_heard(step);
        self.settle(before, effects, data);
    }

    /// What follows a change of the pane's state, whether a reply made it or a request that
    /// could not be delivered (no worker could start): work waiting for the model starts, or
    /// is told it will not.
    fn settle(&self, before: ModelPhase, effects: Vec<Effect>, data: wasm_bindgen::JsValue) {
        match self.state.with_untracked(|s| s.model.phase) {
            ModelPhase::Ready => {
                // A file that is a catalog model byte for byte: the pane has that model
                // chosen, as if picked from the list (a link names it, a reload loads it).
                let twin = self
                    .state
                    .with_untracked(|s| s.model.loaded.as_ref()?.catalog_twin.clone());
                self.before_file.set_value(None);
                if let (ModelPhase::Loading, Some(id)) = (before, twin) {
                    self.settings.update(|s| {
                        s.model_id = id;
                        s.local_model = None;
                    });
                }
                if let Some(work) = self.queued.get_value() {
                    self.start_queued(work);
                }
            }
            ModelPhase::Error => {
                if let Some(work) = self.queued.get_value() {
                    self.queued.set_value(None);
                    // It said the work would start once the model was ready.
                    let awaiting = work.awaiting();
                    let what = match awaiting {
                        Awaiting::Run | Awaiting::Lab => "the run did not start",
                        Awaiting::Score => "scoring did not start",
                        Awaiting::Chat => "the message was not sent",
                    };
                    self.state.update(|s| {
                        s.awaited_ended(
                            awaiting,
                            &format!("The model could not be loaded, so {what}."),
                        )
                    });
                }
                if before == ModelPhase::Loading {
                    // A file that failed to load is no model to bring back after a reload
                    // (the pane then said the cache had lost it, as if it had loaded once);
                    // the choice it replaced is the pane's again, for Run to load.
                    let before_file = self.before_file.get_value();
                    self.before_file.set_value(None);
                    self.settings.update(|s| {
                        s.local_model = None;
                        if let Some(id) = before_file {
                            s.model_id = id;
                        }
                    });
                }
            }
            _ => {}
        }
        self.run_effects(effects, data);
    }

    /// What a reply (or a failure to deliver a request) asks of the app besides the new state.
    fn run_effects(&self, effects: Vec<Effect>, data: wasm_bindgen::JsValue) {
        for effect in effects {
            match effect {
                Effect::KeepRows(ids) => {
                    let buffer = js_sys::Reflect::get(&data, &"buffer".into()).unwrap_or_default();
                    self.rows.set_value(Some((ids, buffer)));
                }
                Effect::ChatReply(tokens) => {
                    let left_out = self.chat_untracked(|r| r.left_out);
                    self.settings.update(|s| {
                        s.conversation.turns.push(reply_turn(&tokens));
                        s.conversation.left_out = left_out;
                    });
                }
                Effect::ChatBranch(tokens) => self.replace_reply(&tokens),
                Effect::ChatUnanswered => {
                    // The message goes back to the input box (before anything typed since),
                    // where it can be shortened or sent again; the conversation is as it was
                    // before it.
                    let mut text = None;
                    self.settings.update(|s| {
                        let turns = &mut s.conversation.turns;
                        if turns.last().is_some_and(|t| t.role == "user") {
                            text = turns.pop().map(|t| t.content);
                        }
                        s.conversation.left_out =
                            s.conversation.left_out.min(s.conversation.turns.len());
                    });
                    if let Some(text) = text {
                        self.return_to_draft(text);
                    }
                }
                Effect::DropWorker => {
                    // Dropped later: this very message may be running inside the worker's
                    // handler. Only if it is still the same worker: an effect woken by this
                    // state change (the demo's Run all) may have started a load, and with it
                    // a fresh worker, meanwhile.
                    let (worker, started) = (self.worker, self.worker_started);
                    let this = started.get_value();
                    leptos::task::spawn_local(async move {
                        if started.get_value() == this {
                            worker.set_value(None);
                        }
                    });
                }
            }
        }
    }
}

/// A reply's tokens as a conversation turn (its numbers kept, so the bubble stays coloured).
fn reply_turn(tokens: &[crate::protocol::TokenEvent]) -> Turn {
    Turn {
        role: "assistant".into(),
        content: tokens.iter().map(|t| t.piece.as_str()).collect(),
        tokens: tokens
            .iter()
            .map(|t| TurnToken {
                id: t.id,
                piece: t.piece.clone(),
                entropy: t.entropy,
                surprisal: t.surprisal,
                rank: t.rank,
                best_p: t.top.first().map(|a| a.p),
            })
            .collect(),
    }
}

/// What rides beside a request.
#[derive(Clone, Copy)]
enum Beside<'a> {
    Nothing,
    File(&'a web_sys::File),
    Buffer(&'a wasm_bindgen::JsValue),
}
