//! One pane's state machine: the jobs it waits for, what each worker reply does to it, and the
//! requests it asks the app to send. Plain Rust with no browser types, so every ordering of
//! replies is unit-tested natively; `app::pane_state` holds a `PaneModel` in a signal, sends
//! what it returns and carries out its `Effect`s.
//!
//! Each activity (model load, generation, score, human vs model, Binoculars) remembers the id of
//! the job it waits for. A reply whose job no activity waits for is stale (a run cleared while
//! still going, a load replaced) and is dropped, so nothing has to guess what a failure belongs
//! to.

use serde::{Deserialize, Serialize};

use crate::engine::{GenerateRequest, StopReason, Summary};
use crate::protocol::{
    BinocularsResult, Event, FromWorker, HumanVsModelResult, JobId, LoadProgress, LoadedModel,
    Timing, ToWorker, TokenEvent, Work,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelPhase {
    #[default]
    Empty,
    Loading,
    Ready,
    Error,
}

impl ModelPhase {
    pub fn id(self) -> &'static str {
        match self {
            ModelPhase::Empty => "empty",
            ModelPhase::Loading => "loading",
            ModelPhase::Ready => "ready",
            ModelPhase::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelState {
    pub phase: ModelPhase,
    /// What is being (or was last) loaded: a catalog name or a file name.
    pub label: String,
    pub message: String,
    pub loaded: Option<LoadedModel>,
    pub progress: Option<LoadProgress>,
    job: Option<JobId>,
    /// The load job whose bytes the worker is putting in the browser cache after `Loaded`
    /// (`Event::Kept` ends it). A new load does not clear it: the worker finishes the put
    /// before it reads the next model, and the cache list must know until then.
    keeping: Option<JobId>,
}

impl ModelState {
    /// What tells one loaded model from another whatever it is called (a catalog name, or a
    /// file name that two files may share): its vocabulary, size and shape. Empty when none is
    /// loaded. The vocabulary is its second field (`RunState::vocabulary`).
    pub fn identity(&self) -> String {
        self.loaded.as_ref().map_or_else(String::new, |l| {
            let i = &l.info;
            format!(
                "{}:{}:{}:{}:{}",
                i.architecture, i.vocab_fingerprint, i.parameters, i.n_layer, i.n_embd
            )
        })
    }

    /// The worker is putting a model's bytes in the browser cache: removing or clearing entries
    /// now could be undone by the put, or leave the pane saying "kept" for bytes that are gone.
    pub fn is_keeping(&self) -> bool {
        self.keeping.is_some()
    }

    /// Whether the next load (of `next_bytes`, when known) should start in a fresh worker. A
    /// wasm heap never shrinks: the worker that held Qwen2.5 kept its 541 MB for SmolLM2's
    /// 114. A fresh worker costs about half a second, so only where it gives memory back:
    /// the heap held (as of the last job's end) is well over what the next model takes (its
    /// file and a half, and 64 MB), or unknown after a failed load. Never while the last model is still being put in the
    /// browser cache: that worker finishes the copy, which the next load waits for.
    pub fn wants_fresh_worker(&self, next_bytes: Option<u64>) -> bool {
        const SPARE: u64 = 64 << 20;
        const UNKNOWN_NEXT: u64 = 256 << 20;
        if self.is_keeping() {
            return false;
        }
        match (self.phase, &self.loaded) {
            (ModelPhase::Error, _) => true,
            (_, Some(l)) => match next_bytes {
                Some(n) => l.wasm_memory_bytes > n.saturating_add(n / 2).saturating_add(SPARE),
                None => l.wasm_memory_bytes > UNKNOWN_NEXT,
            },
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OutputPhase {
    #[default]
    Idle,
    Running,
    Done,
    Error,
}

impl OutputPhase {
    pub fn id(self) -> &'static str {
        match self {
            OutputPhase::Idle => "idle",
            OutputPhase::Running => "running",
            OutputPhase::Done => "done",
            OutputPhase::Error => "error",
        }
    }
}

/// A generation, or a scored text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunState {
    pub phase: OutputPhase,
    /// Changes per run so token views from an old run are never reused for a new one.
    pub run_id: u64,
    pub prompt_ids: Vec<u32>,
    pub tokens: Vec<TokenEvent>,
    pub timing: Option<Timing>,
    pub finish: Option<StopReason>,
    pub message: String,
    /// Score mode: text that was context only (shown unscored before the tokens).
    pub prefix: String,
    /// Score mode: that context's bytes (`ScoredText::prefix_bytes`).
    pub prefix_bytes: Option<usize>,
    /// Score mode: the engine's summary, with Fast-DetectGPT.
    pub summary: Option<Summary>,
    /// Score mode: stopped part way; the tokens and figures cover only what was scored.
    pub partial: bool,
    /// Score mode: the text this result measures (the box may say something else since).
    pub scored_text: String,
    /// Generate mode: the request this run was made from, so a fork of it replays the same
    /// prompt and settings whatever the page's boxes say now.
    pub request: Option<GenerateRequest>,
    /// Generate mode: where this run branched from its parent, if it is a fork.
    pub fork: Option<ForkPoint>,
    /// Chat: a reply asked for again (Regenerate), with the seed it drew from. It takes the
    /// place of the conversation's last reply, which stays there until it is done.
    pub again: Option<u64>,
    /// Prompt tokens the worker took from its KV cache instead of recomputing.
    pub reused: usize,
    /// Oldest conversation turns the worker left out to fit the context.
    pub left_out: usize,
    /// The loaded model's label when this run started: another model loaded since leaves
    /// the run shown, and an export must still name the one that made it.
    pub model: String,
    /// `ModelState::identity` of that model: a fork replays this run's token ids, which only
    /// that model's vocabulary reads as these tokens.
    pub model_identity: String,
    #[serde(skip)]
    job: Option<JobId>,
}

impl RunState {
    /// Bytes of the unscored first token that open the first scored token's piece (that
    /// token was part of a character): in the pieces, yet not measured.
    pub fn held_bytes(&self) -> usize {
        self.prefix_bytes
            .map_or(0, |b| b.saturating_sub(self.prefix.len()))
    }

    /// The figures of what the run shows, bits per byte over the bytes measured.
    pub fn summary_now(&self) -> crate::ui::summary::RunSummary {
        crate::ui::summary::summarize_measured(
            &self.tokens,
            self.timing.as_ref(),
            self.held_bytes(),
        )
    }

    /// The vocabulary of the model that made this run (from `model_identity`): runs of one
    /// vocabulary count the same tokens.
    pub fn vocabulary(&self) -> &str {
        self.model_identity.split(':').nth(1).unwrap_or_default()
    }

    /// A score shown for another text than `current` (the box was edited since): its figures
    /// are not the text's the user now sees. Not while it runs, nor after a refused Score,
    /// whose message already says the result is the previous one.
    pub fn measures_other_text(&self, current: &str) -> bool {
        self.phase == OutputPhase::Done
            && !self.tokens.is_empty()
            && !self.scored_text.is_empty()
            && self.scored_text != current
    }

    /// Made by another model than the one loaded now (`identity`); unknown when either side
    /// has none.
    fn made_by_other_model(&self, identity: &str) -> bool {
        !self.model_identity.is_empty() && !identity.is_empty() && self.model_identity != identity
    }

    /// Why this score is not what Score would give now, if it is not: another model is loaded
    /// (its figures stood under the new model's name), or the text has changed.
    pub fn stale_score(&self, identity: &str, label: &str, text: &str) -> Option<String> {
        if self.phase != OutputPhase::Done || self.tokens.is_empty() {
            return None;
        }
        if self.made_by_other_model(identity) {
            return Some(format!(
                "This result was measured by {}; {label} is loaded now. Press Score to measure \
                 the text with it.",
                self.model
            ));
        }
        self.measures_other_text(text).then(|| {
            "This result is for an earlier text: the text above has changed since. Press Score \
             to measure it."
                .to_string()
        })
    }

    /// Why this generation is not what Run would make now, if it is not: another model is
    /// loaded (its figures were shown under the new model's name), the prompt has changed, or
    /// the pane's settings have (the header shows the boxes' values, not the run's).
    pub fn stale_generation(
        &self,
        identity: &str,
        label: &str,
        prompt: &str,
        settings: &super::settings::PaneSettings,
    ) -> Option<String> {
        if self.phase != OutputPhase::Done || self.tokens.is_empty() {
            return None;
        }
        if self.made_by_other_model(identity) {
            return Some(format!(
                "This output was made by {}; {label} is loaded now. Press Run to generate with it.",
                self.model
            ));
        }
        let q = self.request.as_ref()?;
        if !q.messages.is_empty() {
            return None;
        }
        if q.prompt != prompt {
            return Some(
                "This output is for an earlier prompt: the prompt above has changed since. \
                 Press Run to generate for it."
                    .to_string(),
            );
        }
        // Ended by the model short of both lengths: another length makes the same output.
        let length_matters = self.fork.is_none()
            && !(self.finish == Some(StopReason::Eos)
                && self.tokens.len() < q.max_tokens.min(settings.max_tokens));
        let changed = changed_settings(q, settings, length_matters);
        (!changed.is_empty()).then(|| {
            format!(
                "This output was made with other settings ({}). Press Run to generate with \
                 the ones set now.",
                changed.join(", ")
            )
        })
    }

    /// Ended by the model or a Stop with tokens to show (a refused next request may since
    /// have set its phase to `Error`, leaving it as it was): what a fork can be made of.
    pub fn finished_with_tokens(&self) -> bool {
        self.finished() && !self.tokens.is_empty()
    }

    /// Ended, by the model or a Stop, with tokens or none (a reply whose model ended its turn
    /// at once is an empty turn of the conversation).
    pub fn finished(&self) -> bool {
        self.finish.is_some() && self.job.is_none()
    }

    /// A chat fork or a regenerated reply: it replaces the conversation's last turn when done,
    /// and the turn stays as it was if it fails or is stopped before its first token.
    pub fn replaces_reply(&self) -> bool {
        self.fork.is_some() || self.again.is_some()
    }
}

/// The settings in `now` that would make another output than `made` was made with, as
/// "temperature 0 → 1.5". At temperature 0 on both sides the draw's settings change nothing
/// (greedy takes the first maximum); the length counts only where `length_matters` (not for a
/// fork, whose length was its own, nor an output the model ended short of both lengths).
fn changed_settings(
    made: &GenerateRequest,
    now: &super::settings::PaneSettings,
    length_matters: bool,
) -> Vec<String> {
    let was = &made.sampling;
    let on_off = |b: bool| if b { "on" } else { "off" };
    let mut changed = vec![];
    let mut differs = |name: &str, a: String, b: String| {
        if a != b {
            changed.push(format!("{name} {a} → {b}"));
        }
    };
    differs(
        "chat mode",
        on_off(made.chat).into(),
        on_off(now.chat).into(),
    );
    differs(
        "repeat prompt",
        on_off(made.repeat_prompt).into(),
        on_off(now.repeat_prompt).into(),
    );
    if length_matters {
        differs(
            "max tokens",
            made.max_tokens.to_string(),
            now.max_tokens.to_string(),
        );
    }
    differs(
        "temperature",
        was.temperature.to_string(),
        now.temperature.to_string(),
    );
    differs(
        "repeat penalty",
        was.repeat_penalty.to_string(),
        now.repeat_penalty.to_string(),
    );
    if was.temperature > 0.0 && now.temperature > 0.0 {
        differs("top-k", was.top_k.to_string(), now.top_k.to_string());
        differs("top-p", was.top_p.to_string(), now.top_p.to_string());
        differs("min-p", was.min_p.to_string(), now.min_p.to_string());
        differs("seed", was.seed.to_string(), now.seed.to_string());
    }
    changed
}

/// The token a fork put in place of its parent's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForkPoint {
    /// Index of the replaced token in the output.
    pub at: usize,
    /// The token taken there instead, as shown.
    pub text: String,
}

/// A generation and its forks: the runs made from one prompt, the original first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Branches {
    /// Every branch but the shown one is kept here as it was last shown; the shown one lives
    /// in `PaneModel::run` (see `PaneModel::branch`).
    runs: Vec<RunState>,
    current: usize,
    /// While a fork runs: the branch it was made from, shown again if the fork is stopped
    /// before its chosen token (a branch that never reached its fork is not kept).
    #[serde(skip)]
    forked_from: Option<usize>,
}

/// `message`, and when an earlier result stays shown under it, `that` (a sentence saying it
/// is the earlier one).
fn with_previous(message: String, shown: bool, that: &str) -> String {
    if !shown {
        message
    } else if message.ends_with(['.', '!', '?']) {
        format!("{message} {that}")
    } else {
        format!("{message}. {that}")
    }
}

/// What a human-vs-model message adds when the last result stays shown under it.
const LAB_PREVIOUS: &str = "The result below is the previous one.";

/// The line over a human-vs-model result.
fn lab_message(res: &HumanVsModelResult) -> String {
    let compared = res.human.tokens.len();
    let human = if res.human_total > compared {
        format!(
            "the first {compared} of the human text's {} tokens (at most {} are compared)",
            res.human_total,
            crate::lab::MAX_CONTINUATION
        )
    } else {
        format!("{compared} human tokens")
    };
    format!(
        "Prompt: the first {} tokens; compared {human} with {} model tokens.",
        res.prompt_tokens,
        res.model.tokens.len()
    )
}

/// Which output a fork is made of: the Generate tab's run, or the Chat tab's last reply
/// (whose branches take turns being the conversation's last turn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    Run,
    Chat,
}

/// One line of the branch chooser.
#[derive(Debug, Clone, PartialEq)]
pub struct BranchInfo {
    pub label: String,
    pub tokens: usize,
    pub mean_surprisal: Option<f64>,
    pub mean_entropy: Option<f64>,
}

/// The entropy lab's human-vs-model run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabState {
    pub phase: OutputPhase,
    pub message: String,
    pub result: Option<HumanVsModelResult>,
    job: Option<JobId>,
    /// The last result while a new run goes: shown again if that run fails or is stopped.
    previous: Option<HumanVsModelResult>,
}

/// How long a stopped job may take to end before its worker is taken for stuck and ended:
/// `least`, or four times the longest step the pane has seen (`longest_step_ms`), whichever is
/// longer, up to ten minutes. The worker hears Stop between steps, and a step (a 256-token
/// prompt chunk of a 0.5B model on one thread of a slow laptop, an evaluation item) can take
/// longer than `least`: ending the worker then cost the model's load for nothing.
pub fn stop_deadline(least: std::time::Duration, longest_step_ms: f64) -> std::time::Duration {
    let scaled = if longest_step_ms.is_finite() {
        (4.0 * longest_step_ms / 1000.0).clamp(0.0, 600.0)
    } else {
        0.0
    };
    least.max(std::time::Duration::from_secs_f64(scaled))
}

/// This pane's part in a Binoculars run (observer or performer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BinoState {
    pub phase: OutputPhase,
    pub message: String,
    pub result: Option<BinocularsResult>,
    /// On the performer's pane: whose distributions it was given, so that an export of the
    /// score names both models.
    pub observer: Option<BinoObserver>,
    job: Option<JobId>,
}

/// The observer of a performer's Binoculars run.
#[derive(Debug, Clone, PartialEq)]
pub struct BinoObserver {
    /// The observer pane's id (not its place: panes before it may be removed later).
    pub pane: usize,
    /// The observer's model, as its pane named it.
    pub model: String,
    /// The performer's model (this pane's, at the time of the run).
    pub performer_model: String,
}

/// This pane's part in an evaluation run: every (condition, item) result so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalState {
    pub phase: OutputPhase,
    pub message: String,
    /// (condition id, result), in the order they came.
    pub results: Vec<(String, crate::eval::ItemResult)>,
    /// Results the run will have when complete.
    pub total: usize,
    /// Stopped before the end: the results are partial.
    pub stopped: bool,
    /// Items checked before the first is scored (`Event::EvalChecked`).
    pub checked: usize,
    job: Option<JobId>,
}

/// What the app must do besides showing the new state.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The observer's rows arrived beside this reply: keep its buffer for the performer.
    KeepRows(Vec<u32>),
    /// The worker died: drop it; the next job starts a fresh one.
    DropWorker,
    /// A conversation's reply is complete (or was stopped): add it to the conversation.
    ChatReply(Vec<TokenEvent>),
    /// A fork of the conversation's last reply is complete (or was stopped): it takes that
    /// reply's place as the conversation's last turn.
    ChatBranch(Vec<TokenEvent>),
    /// A conversation's reply failed before its first token (the conversation no longer fits
    /// the context, the worker died): its last message goes back to the input box, so the
    /// next one is not joined to a message that cannot be answered.
    ChatUnanswered,
}

/// Work asked of a pane whose chosen model is not loaded yet: it waits for the load the
/// asking started, and begins once the model is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaiting {
    Run,
    Score,
    Chat,
    /// "Human vs model" (the Score tab's lab).
    Lab,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    Load,
    Run,
    /// A conversation's reply (the Chat tab): its own output, so that chatting leaves the
    /// Generate tab's run and its forks as they were.
    Chat,
    Score,
    Lab,
    Bino,
    Eval,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaneModel {
    pub model: ModelState,
    pub run: RunState,
    /// The Chat tab's last reply, streaming or done (the conversation itself is in the
    /// settings).
    pub chat: RunState,
    pub score: RunState,
    pub lab: LabState,
    pub bino: BinoState,
    pub eval: EvalState,
    /// The shown generation's forks.
    pub branches: Branches,
    /// The forks of the chat's last reply.
    pub chat_branches: Branches,
    /// The chat's reply and branches as they were before the reply (or fork) now running:
    /// put back when it ends without a token to show (a message the context cannot hold, a
    /// Stop before the first token) or a fork fails, so that the last finished reply and its
    /// forks are not lost to an attempt that produced nothing.
    chat_before: Option<Box<(RunState, Branches)>>,
    /// Threads the worker's products use, once it has said.
    pub threads: Option<usize>,
    /// Why the worker uses fewer threads than asked, when it said so.
    pub threads_note: Option<String>,
    /// The deploy the worker's files came from, as its `Ready` said.
    pub worker_build: String,
    /// The worker's SIMD form (`engine::KERNELS`), from `Ready`.
    pub kernels: String,
    /// How a relaxed-SIMD worker sums its byte products, from `Ready`.
    pub dot: Option<crate::protocol::DotChoice>,
    /// Jobs stopped and then forgotten by `clear_output` (the arena, the kiosk's Reset) that
    /// the worker has not ended yet: it refuses new work until it does, so the pane stays busy.
    ending: Vec<JobId>,
    last_job: JobId,
}

/// What a pane shows that a reload should not lose: the last generation with its forks, the
/// chat's last reply (its conversation is kept with the settings) and the last scored text
/// (kept in localStorage by `app`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SavedOutput {
    pub run: RunState,
    pub chat: RunState,
    pub score: RunState,
    pub branches: Branches,
    pub chat_branches: Branches,
    /// The entropy lab's last human-vs-model comparison.
    pub lab: Option<HumanVsModelResult>,
    /// A generation or a score was under way when these were kept last: the page went with
    /// it, and what is kept is the one before (said after the reload, not shown as current).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub run_cut_off: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub score_cut_off: bool,
    /// A chat reply (a Regenerate, a fork) was under way: the reply shown is the one before.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub chat_cut_off: bool,
}

impl PaneModel {
    /// Neither the generation nor the scored text is still coming in.
    pub fn outputs_settled(&self) -> bool {
        [&self.run, &self.chat, &self.score]
            .iter()
            .all(|r| r.phase != OutputPhase::Running)
    }

    /// The outputs to keep, or `None` while one is still coming in (it is kept once it ends).
    pub fn saved_output(&self) -> Option<SavedOutput> {
        // The chat's branches all answer the conversation the shown reply answers: kept once
        // (a long conversation times each branch would soon be too much to keep).
        let mut chat_branches = self.chat_branches.clone();
        for r in &mut chat_branches.runs {
            if let Some(q) = r.request.as_mut() {
                q.messages.clear();
            }
        }
        self.outputs_settled().then(|| SavedOutput {
            run: self.run.clone(),
            chat: self.chat.clone(),
            score: self.score.clone(),
            branches: self.branches.clone(),
            chat_branches,
            // Mid-run, the last result (a reload ends the run).
            lab: self
                .lab
                .result
                .clone()
                .or_else(|| self.lab.previous.clone()),
            run_cut_off: false,
            score_cut_off: false,
            chat_cut_off: false,
        })
    }

    /// Marks what a kept output would lose if the page went now: the run or score under way.
    pub fn mark_cut_off(&self, kept: &mut SavedOutput) {
        kept.run_cut_off = self.run.phase == OutputPhase::Running;
        kept.score_cut_off = self.score.phase == OutputPhase::Running;
        kept.chat_cut_off = self.chat.phase == OutputPhase::Running;
    }

    /// Shows outputs kept before a reload. A run that was still going then ended there, so it
    /// shows as stopped. The kept runs get new job ids (what they carried is localStorage's
    /// word, and no new run's views may be taken for a kept one's); a shown branch past the
    /// branches is dropped.
    pub fn restore_output(&mut self, saved: SavedOutput) {
        let SavedOutput {
            mut run,
            mut chat,
            mut score,
            mut branches,
            mut chat_branches,
            lab,
            run_cut_off,
            score_cut_off,
            chat_cut_off,
        } = saved;
        // Kept by a page from before the chat had its own output: a conversation's reply in
        // `run` belongs to the Chat tab.
        let is_reply = |r: &RunState| r.request.as_ref().is_some_and(|q| !q.messages.is_empty());
        if is_reply(&run) && chat == RunState::default() {
            chat = std::mem::take(&mut run);
            branches = Branches::default();
        }
        for r in [&mut run, &mut chat, &mut score]
            .into_iter()
            .chain(branches.runs.iter_mut())
            .chain(chat_branches.runs.iter_mut())
        {
            r.job = None;
            r.run_id = self.new_job();
            match r.phase {
                OutputPhase::Running => r.phase = OutputPhase::Done,
                // "Loading X first; the run starts as soon as it is ready": that run went
                // with the page.
                OutputPhase::Idle => r.message.clear(),
                _ => {}
            }
        }
        for b in [&mut branches, &mut chat_branches] {
            if b.current >= b.runs.len() {
                *b = Branches::default();
            }
        }
        // Their conversation, kept once with the shown reply (`saved_output`).
        let asked = chat.request.as_ref().map(|q| q.messages.clone());
        for q in chat_branches
            .runs
            .iter_mut()
            .filter_map(|r| r.request.as_mut())
        {
            if q.messages.is_empty() {
                if let Some(asked) = &asked {
                    q.messages = asked.clone();
                }
            }
        }
        let cut = |r: &mut RunState, what: &str| {
            r.message = if r.tokens.is_empty() {
                format!("The page was reloaded during a {what}; it was not kept.")
            } else {
                format!(
                    "The page was reloaded during a {what}; it was not kept. What is shown is the \
                     one before it."
                )
            };
        };
        if run_cut_off {
            cut(&mut run, "run");
        }
        if score_cut_off {
            cut(&mut score, "score");
        }
        if chat_cut_off {
            cut(&mut chat, "reply");
        }
        self.run = run;
        self.chat = chat;
        self.score = score;
        self.branches = branches;
        self.chat_branches = chat_branches;
        if let Some(res) = lab {
            self.lab = LabState {
                phase: OutputPhase::Done,
                message: lab_message(&res),
                result: Some(res),
                ..LabState::default()
            };
        }
    }

    fn new_job(&mut self) -> JobId {
        self.last_job += 1;
        self.last_job
    }

    pub fn is_running(&self) -> bool {
        !self.ending.is_empty() || !self.running_jobs().is_empty()
    }

    /// The jobs of the outputs still running.
    fn running_jobs(&self) -> Vec<JobId> {
        [
            (self.run.phase, self.run.job),
            (self.chat.phase, self.chat.job),
            (self.score.phase, self.score.job),
            (self.lab.phase, self.lab.job),
            (self.bino.phase, self.bino.job),
            (self.eval.phase, self.eval.job),
        ]
        .into_iter()
        .filter(|(phase, _)| *phase == OutputPhase::Running)
        .filter_map(|(_, job)| job)
        .collect()
    }

    pub fn is_busy(&self) -> bool {
        self.model.phase == ModelPhase::Loading || self.is_running()
    }

    pub fn is_ready(&self) -> bool {
        self.model.phase == ModelPhase::Ready
    }

    /// Starts loading a model (`Work::LoadUrl` or `Work::LoadFile`) shown as `label`. `None`
    /// while the pane is busy: the worker would refuse it, and the pickers are locked then.
    pub fn load(&mut self, work: Work, label: &str) -> Option<ToWorker> {
        if self.is_busy() {
            return None;
        }
        let job = self.new_job();
        // The worker reads the new model only once the last one's copy into the browser cache
        // has ended (`Event::Kept`, which puts back the plain message), which can take seconds.
        let message = if self.model.keeping.is_some() {
            format!("Loading {label}… once the last model's copy into the browser cache ends")
        } else {
            format!("Loading {label}…")
        };
        self.model = ModelState {
            phase: ModelPhase::Loading,
            label: label.to_string(),
            message,
            loaded: None,
            progress: None,
            job: Some(job),
            keeping: self.model.keeping,
        };
        Some(ToWorker::Job { job, work })
    }

    /// Whether new work may start: `Err(Some(why))` to show in the activity, `Err(None)`
    /// while another job runs (the buttons are disabled then, so there is nothing to say).
    fn may_start<T>(&self, input: Result<T, String>) -> Result<T, Option<String>> {
        if self.model.phase == ModelPhase::Loading {
            return Err(Some(format!(
                "{} is still loading: try again when it is ready.",
                self.model.label
            )));
        }
        if !self.is_ready() {
            return Err(Some("Load a model first.".into()));
        }
        if self.is_running() {
            return Err(None);
        }
        input.map_err(Some)
    }

    /// Starts a job in the output `activity` shows (Run or Score): checks it may start, and
    /// then clears that output for the new job; `Err` shows in that output instead.
    fn start_output<T>(
        &mut self,
        activity: Activity,
        input: Result<T, String>,
        message: &str,
    ) -> Option<(JobId, T)> {
        let input = match self.may_start(input) {
            Ok(t) => t,
            Err(why) => {
                if let Some(message) = why {
                    let out = self.output(activity);
                    out.phase = OutputPhase::Error;
                    // What is still shown is kept (nothing is lost to a slip), and said to be
                    // the last result rather than this one's.
                    out.message = with_previous(
                        message,
                        !out.tokens.is_empty(),
                        "What is shown below is the previous result.",
                    );
                    out.job = None;
                }
                return None;
            }
        };
        let job = self.new_job();
        *self.output(activity) = RunState {
            phase: OutputPhase::Running,
            run_id: job,
            message: message.into(),
            job: Some(job),
            model: self.model.label.clone(),
            model_identity: self.model.identity(),
            ..RunState::default()
        };
        Some((job, input))
    }

    /// Starts a generation; `request` is the pane's settings made into one, or why they cannot.
    /// A new generation is a new tree: earlier forks are forgotten.
    pub fn start_run(&mut self, request: Result<GenerateRequest, String>) -> Option<ToWorker> {
        let msg = self.start_generation(request, "Reading the prompt…")?;
        self.branches = Branches::default();
        Some(msg)
    }

    /// Starts the reply to a conversation (`request.messages`), shown in the Chat tab only.
    /// A new reply is a new tree: the last one's forks are forgotten.
    pub fn start_chat(&mut self, request: Result<GenerateRequest, String>) -> Option<ToWorker> {
        let before = Box::new((self.chat.clone(), self.chat_branches.clone()));
        let (job, request) =
            self.start_output(Activity::Chat, request, "Reading the conversation…")?;
        self.chat_before = Some(before);
        self.chat.request = Some(request.clone());
        self.chat_branches = Branches::default();
        Some(ToWorker::Job {
            job,
            work: Work::Generate { request },
        })
    }

    /// Asks for the conversation's last reply again (`request.messages` end with the user's
    /// turn it answered), drawing from the next seed so that a sampled reply differs and the
    /// same button presses give the same replies. The reply shown stays the conversation's
    /// last turn until the new one is done; both are kept as branches when they answer the
    /// same messages with the same model, else the new one starts a new tree.
    pub fn start_chat_again(
        &mut self,
        request: Result<GenerateRequest, String>,
    ) -> Option<ToWorker> {
        let before = Box::new((self.chat.clone(), self.chat_branches.clone()));
        let old = &self.chat;
        // Finished, with tokens or not (a model may end its turn at once): an empty reply is
        // a sibling too, or the next press would draw from its seed again.
        let siblings = old.finish.is_some()
            && old.job.is_none()
            && old.model_identity == self.model.identity()
            && old
                .request
                .as_ref()
                .zip(request.as_ref().ok())
                .is_some_and(|(a, b)| a.messages == b.messages);
        // The seed after the highest drawn in this tree (the shown reply may be a regenerated
        // one not yet filed as a branch), or after the pane's own.
        let drawn: Vec<u64> = if siblings {
            self.chat_branches
                .runs
                .iter()
                .chain([old])
                .filter_map(|r| r.again)
                .collect()
        } else {
            Vec::new()
        };
        let request = request.map(|mut q| {
            q.sampling.seed = next_seed(q.sampling.seed, drawn);
            q
        });
        let (job, request) = self.start_output(Activity::Chat, request, "Asking again…")?;
        let seed = request.sampling.seed;
        self.chat_before = Some(before.clone());
        self.chat.request = Some(request.clone());
        self.chat.again = Some(seed);
        let branches = &mut self.chat_branches;
        if siblings {
            let (old, _) = *before;
            if branches.runs.is_empty() {
                branches.runs.push(old);
            } else {
                branches.runs[branches.current] = old;
            }
            branches.runs.push(self.chat.clone());
            branches.current = branches.runs.len() - 1;
        } else {
            *branches = Branches::default();
        }
        Some(ToWorker::Job {
            job,
            work: Work::Generate { request },
        })
    }

    fn start_generation(
        &mut self,
        request: Result<GenerateRequest, String>,
        message: &str,
    ) -> Option<ToWorker> {
        let (job, request) = self.start_output(Activity::Run, request, message)?;
        self.run.request = Some(request.clone());
        Some(ToWorker::Job {
            job,
            work: Work::Generate { request },
        })
    }

    /// The output `tree` forks, and its branches.
    fn tree(&mut self, tree: Tree) -> (&mut RunState, &mut Branches) {
        match tree {
            Tree::Run => (&mut self.run, &mut self.branches),
            Tree::Chat => (&mut self.chat, &mut self.chat_branches),
        }
    }

    fn tree_ref(&self, tree: Tree) -> (&RunState, &Branches) {
        match tree {
            Tree::Run => (&self.run, &self.branches),
            Tree::Chat => (&self.chat, &self.chat_branches),
        }
    }

    /// Forks the shown generation (or reply) at output token `at`: its tokens before `at` are
    /// replayed, `token` is taken there instead (one of the alternatives the inspector shows),
    /// and sampling goes on from it with the run's own prompt (or conversation) and settings.
    pub fn start_fork(
        &mut self,
        tree: Tree,
        at: usize,
        token: u32,
        text: &str,
    ) -> Option<ToWorker> {
        if self
            .tree_ref(tree)
            .0
            .tokens
            .get(at)
            .is_none_or(|t| t.id == token)
        {
            return None;
        }
        self.fork_with(tree, at, Ok(token), text)
    }

    /// Forks at output token `at` to a continuation the user typed instead of choosing one
    /// of the alternatives: the worker tokenizes it and takes all of it as given.
    pub fn start_fork_text(&mut self, tree: Tree, at: usize, typed: &str) -> Option<ToWorker> {
        if typed.is_empty() || at >= self.tree_ref(tree).0.tokens.len() {
            return None;
        }
        self.fork_with(tree, at, Err(typed.to_string()), typed)
    }

    fn fork_with(
        &mut self,
        tree: Tree,
        at: usize,
        with: Result<u32, String>,
        text: &str,
    ) -> Option<ToWorker> {
        if self.is_busy() {
            return None;
        }
        if !self.is_ready() {
            // A run kept from before a reload, on a pane whose model is not loaded (yet): no
            // branch is filed for a fork that cannot run.
            self.tree(tree).0.message =
                "Load the model first: a fork runs it again up to the chosen token.".into();
            return None;
        }
        let identity = self.model.identity();
        let label = self.model.label.clone();
        let (parent, _) = self.tree(tree);
        // By identity where the run recorded one (a run kept from an older page did not).
        let other_model = if parent.model_identity.is_empty() {
            parent.model != label
        } else {
            parent.model_identity != identity
        };
        if other_model {
            // Its token ids are the other model's vocabulary: replayed here they would be
            // other tokens, or none.
            parent.message = if parent.model == label {
                format!(
                    "This output was made by another model than the {} loaded now: load that \
                     one again to fork it.",
                    parent.model
                )
            } else {
                format!(
                    "This output was made by {}, and {label} is loaded now: load {} again to fork \
                     it.",
                    parent.model, parent.model
                )
            };
            return None;
        }
        let mut request = parent.request.clone()?;
        let mut forced: Vec<u32> = parent.tokens[..at].iter().map(|t| t.id).collect();
        match with {
            Ok(token) => {
                forced.push(token);
                // A branch made from typed text holds that text's tokens among its own: taken
                // again after the chosen token, it was written twice.
                request.forced_text.clear();
            }
            Err(typed) => request.forced_text = typed,
        }
        // The branch may run as long as its parent did (the engine adds room past the fork).
        request.max_tokens = request.max_tokens.max(forced.len() + 1);
        if request.reuse_cache {
            // What the parent reused, and the rest computed as it was: the replayed tokens
            // then get the parent's own numbers.
            request.reuse_at_most = Some(parent.reused);
        }
        request.forced = forced;
        let before = Box::new((self.chat.clone(), self.chat_branches.clone()));
        self.keep_shown(tree);
        let activity = match tree {
            Tree::Run => Activity::Run,
            Tree::Chat => Activity::Chat,
        };
        let (job, request) =
            self.start_output(activity, Ok(request), "Replaying up to the fork…")?;
        if tree == Tree::Chat {
            self.chat_before = Some(before);
        }
        let (shown, branches) = self.tree(tree);
        shown.request = Some(request.clone());
        shown.fork = Some(ForkPoint {
            at,
            text: text.to_string(),
        });
        branches.forked_from = Some(branches.current);
        branches.runs.push(shown.clone());
        branches.current = branches.runs.len() - 1;
        Some(ToWorker::Job {
            job,
            work: Work::Generate { request },
        })
    }

    /// A Generate fork stopped before its chosen token: its branch goes, and the one it was
    /// made from is shown again (with the stopped job's id until the caller ends it).
    fn drop_unreached_fork(&mut self) {
        let (shown, branches) = self.tree(Tree::Run);
        let Some(from) = branches.forked_from.take() else {
            return;
        };
        if from + 1 >= branches.runs.len() {
            return;
        }
        branches.runs.pop();
        let job = shown.job;
        *shown = branches.runs[from].clone();
        shown.job = job;
        if branches.runs.len() == 1 {
            // The original alone is no branch to choose: no chooser, as before any fork.
            *branches = Branches::default();
        } else {
            branches.current = from;
        }
        shown.message = "Stopped before the fork's token; the branch was not kept.".into();
    }

    /// Files the shown run under its branch (the first time, as the original).
    fn keep_shown(&mut self, tree: Tree) {
        let (shown, branches) = self.tree(tree);
        if branches.runs.is_empty() {
            branches.runs.push(shown.clone());
            branches.current = 0;
        } else {
            branches.runs[branches.current] = shown.clone();
        }
    }

    /// Shows branch `i` (0 is the original); not while the pane is running something.
    pub fn show_branch(&mut self, tree: Tree, i: usize) {
        if self.is_running() || i >= self.tree_ref(tree).1.runs.len() {
            return;
        }
        self.keep_shown(tree);
        let (shown, branches) = self.tree(tree);
        *shown = branches.runs[i].clone();
        branches.current = i;
    }

    /// Branches kept (0 before any fork), without working out their figures.
    pub fn branch_count(&self, tree: Tree) -> usize {
        self.tree_ref(tree).1.runs.len()
    }

    pub fn current_branch(&self, tree: Tree) -> usize {
        self.tree_ref(tree).1.current
    }

    /// Every branch with its figures, for the chooser: empty until the first fork.
    pub fn branch_infos(&self, tree: Tree) -> Vec<BranchInfo> {
        let (shown, branches) = self.tree_ref(tree);
        let n = branches.runs.len();
        (0..n)
            .map(|i| {
                let r = if i == branches.current {
                    shown
                } else {
                    &branches.runs[i]
                };
                let mean = |f: fn(&TokenEvent) -> f64| {
                    (!r.tokens.is_empty())
                        .then(|| r.tokens.iter().map(f).sum::<f64>() / r.tokens.len() as f64)
                };
                let label = match (&r.fork, r.again) {
                    (None, Some(seed)) => format!("regenerated (seed {seed})"),
                    (None, None) => "original".to_string(),
                    // A continuation of only spaces or line breaks would read as nothing.
                    (Some(f), _) if f.text.trim().is_empty() => format!(
                        "fork at #{} → {}",
                        f.at.saturating_add(1),
                        super::format::visible_token(&f.text)
                    ),
                    (Some(f), _) => format!("fork at #{} → {}", f.at.saturating_add(1), f.text),
                };
                BranchInfo {
                    label,
                    tokens: r.tokens.len(),
                    mean_surprisal: mean(|t| t.surprisal),
                    mean_entropy: mean(|t| t.entropy),
                }
            })
            .collect()
    }

    pub fn start_score(&mut self, text: &str) -> Option<ToWorker> {
        let text = if text.is_empty() {
            Err("Paste or type a text to score first.".to_string())
        } else {
            Ok(text.to_string())
        };
        let (job, text) = self.start_output(Activity::Score, text, "Scoring…")?;
        self.score.scored_text = text.clone();
        Some(ToWorker::Job {
            job,
            work: Work::Score { text },
        })
    }

    pub fn start_lab(
        &mut self,
        text: &str,
        sentences: usize,
        request: Result<GenerateRequest, String>,
    ) -> Option<ToWorker> {
        // The text is the lab's own box, not the Generate prompt the request would name.
        let request = if text.is_empty() {
            Err("Paste or type a text to compare first.".to_string())
        } else {
            request
        };
        let request = match self.may_start(request) {
            Ok(r) => r,
            Err(why) => {
                if let Some(message) = why {
                    self.lab.phase = OutputPhase::Error;
                    self.lab.message =
                        with_previous(message, self.lab.result.is_some(), LAB_PREVIOUS);
                }
                return None;
            }
        };
        let job = self.new_job();
        self.lab = LabState {
            phase: OutputPhase::Running,
            message: "Writing the model's continuation…".into(),
            result: None,
            job: Some(job),
            previous: self.lab.result.take(),
        };
        Some(ToWorker::Job {
            job,
            work: Work::HumanVsModel {
                text: text.to_string(),
                sentences,
                request,
            },
        })
    }

    /// Starts scoring `items` under `conditions`.
    pub fn start_eval(
        &mut self,
        items: Vec<crate::eval::Item>,
        conditions: Vec<crate::eval::Condition>,
    ) -> Option<ToWorker> {
        let input = if items.is_empty() || conditions.is_empty() {
            Err("Choose a task and at least one condition.".to_string())
        } else {
            Ok((items, conditions))
        };
        let (items, conditions) = match self.may_start(input) {
            Ok(x) => x,
            Err(why) => {
                if let Some(message) = why {
                    self.eval = EvalState {
                        phase: OutputPhase::Error,
                        message,
                        ..EvalState::default()
                    };
                }
                return None;
            }
        };
        let job = self.new_job();
        self.eval = EvalState {
            phase: OutputPhase::Running,
            message: "Evaluating…".into(),
            total: items.len() * conditions.len(),
            job: Some(job),
            ..EvalState::default()
        };
        Some(ToWorker::Job {
            job,
            work: Work::Eval { items, conditions },
        })
    }

    /// Binoculars, observer side.
    pub fn request_distributions(&mut self, text: &str) -> ToWorker {
        let job = self.start_bino("Observing…");
        ToWorker::Job {
            job,
            work: Work::Distributions {
                text: text.to_string(),
            },
        }
    }

    /// Binoculars, performer side (the observer's rows travel beside the message).
    pub fn send_binoculars(&mut self, ids: Vec<u32>, observer: BinoObserver) -> ToWorker {
        let job = self.start_bino("Performing…");
        self.bino.observer = Some(observer);
        ToWorker::Job {
            job,
            work: Work::Binoculars { ids },
        }
    }

    fn start_bino(&mut self, message: &str) -> JobId {
        let job = self.new_job();
        self.bino = BinoState {
            phase: OutputPhase::Running,
            message: message.into(),
            result: None,
            observer: None,
            job: Some(job),
        };
        job
    }

    /// Stop requests for every job that streams (the others end by themselves).
    pub fn stop(&self) -> Vec<ToWorker> {
        [
            self.run.job,
            self.chat.job,
            self.score.job,
            self.lab.job,
            self.bino.job,
            self.eval.job,
        ]
        .into_iter()
        .flatten()
        .chain(self.ending.iter().copied())
        .map(|job| ToWorker::Stop { job })
        .collect()
    }

    /// What the pane is doing for another tab than `here`, for the tab whose buttons that
    /// work disables: "This pane is writing a chat reply (Chat tab); Stop ends it."
    pub fn busy_elsewhere(&self, here: crate::ui::settings::Mode) -> Option<String> {
        use crate::ui::settings::Mode;
        let running = |p: OutputPhase| p == OutputPhase::Running;
        let what = [
            (
                running(self.run.phase),
                Mode::Generate,
                "generating (Generate tab)",
            ),
            (
                running(self.chat.phase),
                Mode::Chat,
                "writing a chat reply (Chat tab)",
            ),
            (
                running(self.score.phase),
                Mode::Score,
                "scoring a text (Entropy lab)",
            ),
            (
                running(self.lab.phase),
                Mode::Score,
                "running human vs model (Entropy lab)",
            ),
            (
                running(self.bino.phase),
                Mode::Score,
                "running Binoculars (Entropy lab)",
            ),
            (
                running(self.eval.phase),
                Mode::Eval,
                "evaluating (Evaluate tab)",
            ),
        ]
        .into_iter()
        .find(|(on, mode, _)| *on && *mode != here)?
        .2;
        Some(format!("This pane is {what}; Stop ends it."))
    }

    /// Run was pressed while the pane's chosen model is not loaded yet: say so in the run's
    /// output; the run itself starts when the model is ready (`app::pane_state`).
    pub fn waiting_for_model(&mut self, name: &str, work: Awaiting) {
        let message = format!(
            "Loading {name} first; {} as soon as it is ready.",
            match work {
                Awaiting::Run | Awaiting::Lab => "the run starts",
                Awaiting::Score => "scoring starts",
                Awaiting::Chat => "the reply starts",
            }
        );
        let next = self.new_job();
        let fresh = RunState {
            run_id: next,
            message,
            ..RunState::default()
        };
        match work {
            Awaiting::Run => self.run = fresh,
            Awaiting::Score => self.score = fresh,
            Awaiting::Chat => self.chat = fresh,
            Awaiting::Lab => {
                self.lab.phase = OutputPhase::Idle;
                self.lab.message = fresh.message;
            }
        }
    }

    /// Work that waited for the model will not start (Stop, or the load failed): `why` takes
    /// the place of the promise `waiting_for_model` showed.
    pub fn awaited_ended(&mut self, work: Awaiting, why: &str) {
        let message = match work {
            Awaiting::Run => &mut self.run.message,
            Awaiting::Score => &mut self.score.message,
            Awaiting::Chat => &mut self.chat.message,
            Awaiting::Lab => &mut self.lab.message,
        };
        *message = why.to_string();
    }

    /// The browser cache no longer holds the loaded model's bytes (Clear cache, or its
    /// Remove; `label` None for all): the status stops saying they are kept there.
    pub fn cache_removed(&mut self, label: Option<&str>) {
        let Some(l) = self.model.loaded.as_mut() else {
            return;
        };
        if label.is_some_and(|n| n != l.label) || !(l.cached_now || l.from_cache) {
            return;
        }
        l.cached_now = false;
        l.cache_note = Some("since removed from the browser cache".into());
        if self.model.phase == ModelPhase::Ready {
            self.model.message = loaded_message(l);
        }
    }

    /// Forgets the conversation's last reply only (Chat's Clear): the Generate tab's run and
    /// its forks, what was scored, the entropy lab's results and an evaluation stay.
    pub fn clear_chat(&mut self) {
        self.chat = RunState {
            run_id: self.new_job(),
            ..RunState::default()
        };
        self.chat_branches = Branches::default();
        self.chat_before = None;
    }

    /// Forgets the pane's runs (the demo's reset). Replies still on their way for them are
    /// stale from now on and dropped by id.
    pub fn clear_output(&mut self) {
        let running = self.running_jobs();
        self.ending.extend(running);
        self.branches = Branches::default();
        self.chat_branches = Branches::default();
        self.chat_before = None;
        let next = self.new_job();
        self.run = RunState {
            run_id: next,
            ..RunState::default()
        };
        self.chat = RunState {
            run_id: next,
            ..RunState::default()
        };
        self.score = RunState {
            run_id: next,
            ..RunState::default()
        };
        self.lab = LabState::default();
        self.bino = BinoState::default();
        self.eval = EvalState::default();
    }

    /// The request for `job` never reached the worker (`postMessage` threw, or no worker could
    /// start): that job fails with `message` instead of waiting for ever.
    pub fn send_failed(&mut self, job: JobId, message: &str) -> Vec<Effect> {
        match self.waiting_for(job) {
            Some(activity) => self
                .fail(activity, message.to_string())
                .into_iter()
                .collect(),
            None => vec![],
        }
    }

    /// The worker could not be started or stopped answering: every job of this pane is over.
    pub fn worker_lost(&mut self, message: &str) -> Vec<Effect> {
        let mut effects = vec![];
        for activity in self.waiting() {
            effects.extend(self.fail(activity, format!("{message}. Load the model again.")));
        }
        if self.model.phase != ModelPhase::Error {
            self.model.phase = ModelPhase::Error;
            self.model.message = format!("{message}. Load the model again.");
            self.model.loaded = None;
        }
        effects
    }

    /// Applies one message from the worker.
    pub fn apply(&mut self, msg: FromWorker) -> Vec<Effect> {
        match msg {
            FromWorker::Ready {
                build,
                kernels,
                dot,
            } => {
                self.worker_build = build;
                self.kernels = kernels;
                self.dot = dot;
                vec![]
            }
            FromWorker::Threads { active, note, .. } => {
                self.threads = Some(active);
                self.threads_note = note;
                vec![]
            }
            FromWorker::Memory { wasm_memory_bytes } => {
                let phase = self.model.phase;
                if let Some(l) = self.model.loaded.as_mut() {
                    if wasm_memory_bytes > l.wasm_memory_bytes {
                        l.wasm_memory_bytes = wasm_memory_bytes;
                        if phase == ModelPhase::Ready {
                            self.model.message = loaded_message(l);
                        }
                    }
                }
                vec![]
            }
            FromWorker::Unreadable { message } => {
                // The page sent something the worker cannot parse; whatever waits for an
                // answer would wait for ever.
                let mut effects = vec![];
                for activity in self.waiting() {
                    effects.extend(self.fail(activity, message.clone()));
                }
                effects
            }
            FromWorker::Crashed { message } => {
                // The worker's memory can no longer be trusted: every job ends with it.
                self.ending.clear();
                let mut effects = vec![];
                for activity in self.waiting() {
                    if activity != Activity::Load {
                        effects
                            .extend(self.fail(activity, "the worker stopped while working".into()));
                    }
                }
                self.model.phase = ModelPhase::Error;
                self.model.message = format!("{message}. Load the model again.");
                self.model.loaded = None;
                self.model.job = None;
                // The put died with the worker.
                self.model.keeping = None;
                effects.push(Effect::DropWorker);
                effects
            }
            FromWorker::Job {
                job,
                event:
                    Event::Kept {
                        cached_now,
                        cache_note,
                    },
            } => {
                let m = &mut self.model;
                if m.keeping == Some(job) {
                    m.keeping = None;
                    if m.phase == ModelPhase::Loading {
                        m.message = format!("Loading {}…", m.label);
                    }
                    // Only the load that is keeping: a later load from the cache may be shown
                    // by now (after the worker gave up waiting for this put).
                    if let Some(l) = m.loaded.as_mut().filter(|l| l.keeping) {
                        l.keeping = false;
                        l.cached_now = cached_now;
                        l.cache_note = cache_note;
                        m.message = loaded_message(l);
                    }
                }
                vec![]
            }
            FromWorker::Job { job, event } => {
                if event.ends_job() {
                    self.ending.retain(|&j| j != job);
                }
                if let Event::Loaded(l) = &event {
                    if self.waiting_for(job) == Some(Activity::Load) && l.keeping {
                        self.model.keeping = Some(job);
                    }
                }
                match self.waiting_for(job) {
                    Some(activity) => self.on_event(activity, event),
                    None => vec![],
                }
            }
        }
    }

    fn waiting_for(&self, job: JobId) -> Option<Activity> {
        let jobs = [
            (Activity::Load, self.model.job),
            (Activity::Run, self.run.job),
            (Activity::Chat, self.chat.job),
            (Activity::Score, self.score.job),
            (Activity::Lab, self.lab.job),
            (Activity::Bino, self.bino.job),
            (Activity::Eval, self.eval.job),
        ];
        jobs.into_iter()
            .find(|(_, j)| *j == Some(job))
            .map(|(a, _)| a)
    }

    fn waiting(&self) -> Vec<Activity> {
        [
            (Activity::Load, self.model.job),
            (Activity::Run, self.run.job),
            (Activity::Chat, self.chat.job),
            (Activity::Score, self.score.job),
            (Activity::Lab, self.lab.job),
            (Activity::Bino, self.bino.job),
            (Activity::Eval, self.eval.job),
        ]
        .into_iter()
        .filter(|(_, j)| j.is_some())
        .map(|(a, _)| a)
        .collect()
    }

    /// Ends `activity`'s job with `message`; a conversation's reply that failed before its
    /// first token (a message the context cannot hold, a worker that died or could not be
    /// reached) hands its message back (`Effect::ChatUnanswered`).
    fn fail(&mut self, activity: Activity, message: String) -> Option<Effect> {
        let forked = self.chat.replaces_reply();
        let unanswered = activity == Activity::Chat && self.chat.tokens.is_empty() && !forked;
        // Nothing to show for it (or a fork, whose branch would disagree with the
        // conversation): the last finished reply and its forks come back, with the failure.
        if activity == Activity::Chat && (self.chat.tokens.is_empty() || forked) {
            self.put_chat_back();
        }
        match activity {
            Activity::Load => {
                let m = &mut self.model;
                m.phase = ModelPhase::Error;
                m.message = format!("Could not load {}: {message}", m.label);
                m.loaded = None;
                m.job = None;
            }
            Activity::Run | Activity::Chat | Activity::Score => {
                // A Generate fork that failed before its chosen token (its prompt and
                // replayed tokens past the context, a dead worker) is no branch: the one it
                // was made from comes back, with the failure, as a Chat fork's reply does.
                let unreached_fork = activity == Activity::Run
                    && (self.run.fork.as_ref()).is_some_and(|f| self.run.tokens.len() <= f.at);
                if unreached_fork {
                    self.drop_unreached_fork();
                }
                let r = self.output(activity);
                r.phase = OutputPhase::Error;
                r.message = if unreached_fork {
                    format!("The fork was not made: {message}")
                } else {
                    crate::ui::format::sentence(&message)
                };
                r.job = None;
                if activity == Activity::Chat {
                    self.chat_before = None;
                }
            }
            Activity::Lab => {
                let l = &mut self.lab;
                l.phase = OutputPhase::Error;
                if l.result.is_none() {
                    l.result = l.previous.take();
                }
                l.message = with_previous(
                    format!("Human vs model: {message}"),
                    l.result.is_some(),
                    LAB_PREVIOUS,
                );
                l.job = None;
            }
            Activity::Bino => {
                self.bino.phase = OutputPhase::Error;
                self.bino.message = crate::ui::format::sentence(&message);
                self.bino.job = None;
            }
            Activity::Eval => {
                // What was scored before the failure stays, marked partial.
                self.eval.phase = OutputPhase::Error;
                self.eval.message = message;
                self.eval.stopped = true;
                self.eval.job = None;
            }
        }
        unanswered.then_some(Effect::ChatUnanswered)
    }

    /// Puts back the chat's reply and branches from before the reply (or fork) that just
    /// ended with nothing to show (`chat_before`); false when there was none.
    fn put_chat_back(&mut self) -> bool {
        let Some(before) = self.chat_before.take() else {
            return false;
        };
        let job = self.chat.job;
        (self.chat, self.chat_branches) = *before;
        // Still the ending job's until the caller ends it.
        self.chat.job = job;
        true
    }

    fn output(&mut self, activity: Activity) -> &mut RunState {
        match activity {
            Activity::Score => &mut self.score,
            Activity::Chat => &mut self.chat,
            _ => &mut self.run,
        }
    }

    fn on_event(&mut self, activity: Activity, event: Event) -> Vec<Effect> {
        let ends = event.ends_job();
        let mut effects = vec![];
        match (activity, event) {
            (a, Event::Failed { message }) => effects.extend(self.fail(a, message)),
            (Activity::Load, Event::Progress(p)) => self.model.progress = Some(p),
            (Activity::Load, Event::Loaded(l)) => {
                let m = &mut self.model;
                m.phase = ModelPhase::Ready;
                m.message = loaded_message(&l);
                m.loaded = Some(l);
            }
            (
                a @ (Activity::Run | Activity::Chat),
                Event::Started {
                    prompt_ids,
                    prefill_ms,
                    reused,
                    left_out,
                },
            ) => {
                let cached = if reused > 0 {
                    format!(" ({reused} from the cache)")
                } else {
                    String::new()
                };
                let r = self.output(a);
                r.message = format!(
                    "Prompt: {} tokens{cached} in {}",
                    prompt_ids.len(),
                    super::format::duration_ms(prefill_ms)
                );
                r.prompt_ids = prompt_ids;
                r.reused = reused;
                r.left_out = left_out;
            }
            (a @ (Activity::Run | Activity::Chat), Event::Token(t)) => {
                self.output(a).tokens.push(t)
            }
            (a @ (Activity::Run | Activity::Chat), Event::Advanced { done, total }) => {
                self.output(a).message = format!("Reading the prompt: {done} of {total} tokens…");
            }
            (Activity::Score, Event::Advanced { done, total }) => {
                self.score.message = format!("Scoring: {done} of {total} tokens…");
            }
            (Activity::Lab, Event::Advanced { done, total }) => {
                self.lab.message = format!("Reading: {done} of {total} tokens…");
            }
            (Activity::Bino, Event::Advanced { done, total }) => {
                self.bino.message = format!("Reading: {done} of {total} tokens…");
            }
            (
                a @ (Activity::Run | Activity::Chat),
                Event::Finished {
                    reason,
                    timing,
                    tail,
                },
            ) => {
                let r = self.output(a);
                // An incomplete character at the very end still shows, as U+FFFD.
                if let Some(last) = r.tokens.last_mut() {
                    last.token.piece.push_str(&tail);
                }
                r.phase = OutputPhase::Done;
                r.finish = Some(reason);
                r.timing = Some(timing);
                r.message = format!("Done: {}.", reason.describe());
                // A fork stopped while it still replayed its parent holds none of its own.
                let short_of_fork = r.fork.as_ref().is_some_and(|f| r.tokens.len() <= f.at);
                // A chat's reply is a turn (an empty one too, when the model ended its turn at
                // once); not when Stop came before its first token.
                let stopped_empty =
                    (r.tokens.is_empty() || short_of_fork) && reason == StopReason::Stopped;
                if a == Activity::Chat && !stopped_empty {
                    effects.push(if r.replaces_reply() {
                        Effect::ChatBranch(r.tokens.clone())
                    } else {
                        Effect::ChatReply(r.tokens.clone())
                    });
                }
                if a == Activity::Chat {
                    if stopped_empty && self.put_chat_back() {
                        self.chat.message = if short_of_fork {
                            "Stopped before the fork's token; the last reply is as it was."
                        } else {
                            "Stopped before the first token; the last reply is as it was."
                        }
                        .into();
                    }
                    self.chat_before = None;
                }
                if a == Activity::Run && stopped_empty && short_of_fork {
                    self.drop_unreached_fork();
                }
            }
            (Activity::Score, Event::Scored(s)) => {
                // The worker's window: a model trained on fewer positions scores in windows
                // of those.
                let window = self
                    .model
                    .loaded
                    .as_ref()
                    .map_or(crate::engine::SCORE_WINDOW, |l| {
                        crate::engine::SCORE_WINDOW.min(l.info.max_positions)
                    });
                let r = &mut self.score;
                r.phase = OutputPhase::Done;
                r.message = if s.partial() {
                    format!(
                        "Stopped: scored {} of {} tokens in {} (partial: the figures cover \
                         only these).",
                        s.tokens.len(),
                        s.total,
                        super::format::duration_ms(s.ms)
                    )
                } else {
                    // Past one window the text is scored in half-overlapping windows: say so,
                    // as a token's figures then rest on less than the whole text before it.
                    let windows = if s.tokens.len() + 1 > window {
                        format!(
                            " in windows of {window} tokens, each token seeing at least the {} \
                             tokens before it (all of them in the first window)",
                            window / 2
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        "Scored {}{windows} in {}.",
                        super::format::tokens(s.tokens.len()),
                        super::format::duration_ms(s.ms)
                    )
                };
                r.partial = s.partial();
                // Scoring is one prefill over the text: its speed is the Score tab's
                // `stat-prefill-tps`, tokens scored a second.
                r.timing = Some(Timing {
                    prompt_tokens: s.tokens.len(),
                    prefill_ms: s.ms,
                    ..Timing::default()
                });
                r.prompt_ids = s.context_ids;
                r.prefix = s.prefix;
                r.prefix_bytes = s.prefix_bytes;
                r.tokens = s.tokens;
                r.summary = Some(s.summary);
            }
            (Activity::Lab, Event::LabProgress { done, total }) => {
                self.lab.message = if done < total {
                    format!("Writing the model's continuation: {done} of {total} tokens…")
                } else {
                    "Scoring both continuations…".into()
                };
            }
            (Activity::Lab, Event::HumanVsModel(res)) => {
                self.lab.previous = None;
                self.lab.phase = OutputPhase::Done;
                self.lab.message = lab_message(&res);
                self.lab.result = Some(res);
            }
            (Activity::Bino, Event::Distributions { ids, .. }) => {
                self.bino.phase = OutputPhase::Done;
                self.bino.message = "Observed.".into();
                effects.push(Effect::KeepRows(ids));
            }
            (Activity::Bino, Event::Binoculars(r)) => {
                self.bino.phase = OutputPhase::Done;
                self.bino.message = String::new();
                self.bino.result = Some(r);
            }
            (Activity::Eval, Event::EvalChecked { items }) => {
                self.eval.checked = items;
            }
            (Activity::Eval, Event::EvalItem { condition, result }) => {
                self.eval.results.push((condition, result));
            }
            (Activity::Eval, Event::EvalDone { stopped }) => {
                let e = &mut self.eval;
                e.phase = OutputPhase::Done;
                e.stopped = stopped;
                e.message = if stopped {
                    format!("Stopped: {} of {} scored.", e.results.len(), e.total)
                } else {
                    format!("Done: {} scored.", e.results.len())
                };
            }
            (a, other) => {
                // A reply of another kind than the job asked for: a worker bug, shown rather
                // than left running.
                if other.ends_job() {
                    effects.extend(
                        self.fail(a, "the worker answered with something unexpected".into()),
                    );
                }
                return effects;
            }
        }
        if ends {
            self.clear_job(activity);
        }
        effects
    }

    fn clear_job(&mut self, activity: Activity) {
        match activity {
            Activity::Load => self.model.job = None,
            Activity::Run => self.run.job = None,
            Activity::Chat => self.chat.job = None,
            Activity::Score => self.score.job = None,
            Activity::Lab => self.lab.job = None,
            Activity::Bino => self.bino.job = None,
            Activity::Eval => self.eval.job = None,
        }
    }
}

/// Where a loaded model's bytes stand with the browser cache, for the status's `data-cache`:
/// `from-cache`, `kept` (put there by this load), `keeping` (being put there) or `not-kept`.
pub fn cache_state(l: &LoadedModel) -> &'static str {
    match (l.from_cache, l.cached_now, l.keeping) {
        (true, _, _) => "from-cache",
        (false, true, _) => "kept",
        (false, false, true) => "keeping",
        (false, false, false) => "not-kept",
    }
}

fn loaded_message(l: &LoadedModel) -> String {
    // Under a millisecond is the worker finding the last put already over.
    let waited = if l.waited_ms >= f64::from(crate::protocol::PUT_WAIT_MS) {
        format!(
            ", after giving up at {} on the last model's cache copy",
            super::format::duration_ms(l.waited_ms)
        )
    } else if l.waited_ms >= 1.0 {
        format!(
            ", after {} waiting for the last model's cache copy",
            super::format::duration_ms(l.waited_ms)
        )
    } else {
        String::new()
    };
    // Where the bytes came from, then (for bytes read elsewhere) what became of them in the cache.
    let (from, kept) = if l.from_cache {
        let note = l.cache_note.as_ref().map(|n| format!(" · {n}"));
        (" from the browser cache", note.unwrap_or_default())
    } else if l.cached_now {
        ("", " · kept in the browser cache".to_string())
    } else if l.keeping {
        ("", " · keeping it in the browser cache…".to_string())
    } else {
        let note = l.cache_note.as_ref().map(|n| format!(" · {n}"));
        ("", note.unwrap_or_default())
    };
    let twin = if l.catalog_twin.is_some() {
        " · the catalog's model, byte for byte (kept once, under its name)"
    } else {
        ""
    };
    // The worker's heap is what the model costs the tab, which readers comparing a 135M with
    // a 0.5B model want next to the file's size (0: a worker that could not tell).
    let memory = if l.wasm_memory_bytes > 0 {
        format!(
            " file, {} in memory",
            super::format::bytes(l.wasm_memory_bytes)
        )
    } else {
        String::new()
    };
    format!(
        "{} ready · {}{memory} · loaded in {}{from}{waited}{kept}{twin}",
        l.label,
        super::format::bytes(l.bytes),
        super::format::duration_ms(l.read_ms + l.build_ms),
    )
}

/// The seed a Regenerate draws from: the one after the furthest already drawn past the pane's
/// `seed`, counted round from it, so the seeds run on past 2^64 - 1 to 0, 1, 2 (compared as
/// plain numbers, 0 fell below the pane's seed and each press drew 0 again). A seed drawn
/// before the pane's seed was raised past it is not after it, and is passed over.
fn next_seed(seed: u64, drawn: impl IntoIterator<Item = u64>) -> u64 {
    let furthest = drawn
        .into_iter()
        .map(|d| d.wrapping_sub(seed))
        .filter(|&ahead| ahead <= u64::MAX / 2)
        .max()
        .unwrap_or(0);
    seed.wrapping_add(furthest).wrapping_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ModelInfo, Token};
    use crate::protocol::ScoredText;

    fn info() -> ModelInfo {
        ModelInfo {
            architecture: "llama".into(),
            name: "m".into(),
            parameters: 1,
            tensor_types: String::new(),
            vocab_size: 10,
            context_length: 64,
            max_positions: 64,
            n_layer: 1,
            n_embd: 8,
            add_bos: false,
            bos_token: None,
            eos_token: None,
            chat_template_source: "gguf".into(),
            vocab_fingerprint: String::new(),
        }
    }

    fn loaded() -> Event {
        Event::Loaded(LoadedModel {
            label: "M".into(),
            info: info(),
            bytes: 1000,
            from_cache: false,
            read_ms: 1.0,
            build_ms: 2.0,
            waited_ms: 0.0,
            cached_now: true,
            keeping: false,
            cache_note: None,
            wasm_memory_bytes: 0,
            catalog_twin: None,
        })
    }

    fn job_of(msg: &Option<ToWorker>) -> JobId {
        match msg {
            Some(ToWorker::Job { job, .. }) => *job,
            other => panic!("no job in {other:?}"),
        }
    }

    fn reply(job: JobId, event: Event) -> FromWorker {
        FromWorker::Job { job, event }
    }

    fn token(id: u32, piece: &str) -> Event {
        Event::Token(TokenEvent::from(Token {
            id,
            piece: piece.into(),
            ..Token::default()
        }))
    }

    fn failed(message: &str) -> Event {
        Event::Failed {
            message: message.into(),
        }
    }

    fn finished(tail: &str) -> Event {
        Event::Finished {
            reason: StopReason::Length,
            timing: Timing::default(),
            tail: tail.into(),
        }
    }

    /// A generation's end for `reason`, with no character left over.
    fn ended(reason: StopReason) -> Event {
        Event::Finished {
            reason,
            timing: Timing::default(),
            tail: String::new(),
        }
    }

    fn url() -> Work {
        Work::LoadUrl {
            url: "u".into(),
            label: "M".into(),
        }
    }

    /// A pane with a model loaded, and the job id that loaded it.
    fn ready() -> (PaneModel, JobId) {
        let mut p = PaneModel::default();
        let load = job_of(&p.load(url(), "M"));
        assert_eq!(p.model.phase, ModelPhase::Loading);
        p.apply(reply(load, loaded()));
        assert_eq!(p.model.phase, ModelPhase::Ready);
        (p, load)
    }

    fn run(p: &mut PaneModel) -> JobId {
        job_of(&p.start_run(Ok(GenerateRequest::default())))
    }

    #[test]
    fn a_stop_waits_for_a_step_as_long_as_the_longest_seen() {
        use std::time::Duration;
        let least = Duration::from_secs(15);
        assert_eq!(stop_deadline(least, 0.0), least);
        assert_eq!(stop_deadline(least, 2_000.0), least);
        // A 256-token chunk of 8.5 s: a Stop during the next waits 34 s.
        assert_eq!(stop_deadline(least, 8_500.0), Duration::from_secs(34));
        assert_eq!(stop_deadline(least, 1e9), Duration::from_secs(600));
        assert_eq!(stop_deadline(least, f64::NAN), least);
    }

    /// A chat reply becomes a turn unless Stop came before its first token; a generation
    /// with the same request (Generate's run) is not one.
    #[test]
    fn only_a_chats_own_reply_is_a_turn() {
        let is_turn =
            |effects: &[Effect]| effects.iter().any(|e| matches!(e, Effect::ChatReply(_)));
        let (mut p, _) = ready();
        let chat = || GenerateRequest {
            messages: vec![crate::engine::chat::Message::user("hi")],
            chat: true,
            ..GenerateRequest::default()
        };
        // Stopped before its first token; ended by the model at once (an empty answer).
        let job = job_of(&p.start_chat(Ok(chat())));
        let stopped = ended(StopReason::Stopped);
        assert!(!is_turn(&p.apply(reply(job, stopped))));
        let job = job_of(&p.start_chat(Ok(chat())));
        assert!(is_turn(&p.apply(reply(job, finished("")))));
        let job = job_of(&p.start_chat(Ok(chat())));
        p.apply(reply(job, token(1, "a")));
        p.apply(reply(job, token(2, "b")));
        assert!(is_turn(&p.apply(reply(job, finished("")))));
        let job = job_of(&p.start_run(Ok(chat())));
        p.apply(reply(job, token(1, "a")));
        assert!(!is_turn(&p.apply(reply(job, finished("")))));
    }

    /// Chatting leaves the Generate tab's run and its forks as they were (a reply used to take
    /// the run's place and drop its branches), and a reply that fails before its first token
    /// hands its message back.
    #[test]
    fn a_conversation_has_its_own_output() {
        let (mut p, _) = ready();
        let job = run(&mut p);
        p.apply(reply(job, token(1, "a")));
        p.apply(reply(job, token(2, "b")));
        p.apply(reply(job, finished("")));
        let fork = job_of(&p.start_fork(Tree::Run, 1, 9, "z"));
        p.apply(reply(fork, token(1, "a")));
        p.apply(reply(fork, token(9, "z")));
        p.apply(reply(fork, finished("")));
        let (generated, branches) = (p.run.clone(), p.branch_count(Tree::Run));
        assert_eq!(branches, 2);
        let chat = GenerateRequest {
            messages: vec![crate::engine::chat::Message::user("hi")],
            chat: true,
            ..GenerateRequest::default()
        };
        let job = job_of(&p.start_chat(Ok(chat.clone())));
        assert!(p.is_running());
        p.apply(reply(job, token(5, "hello")));
        assert_eq!(p.chat.tokens.len(), 1);
        let effects = p.apply(reply(job, finished("")));
        assert!(effects.iter().any(|e| matches!(e, Effect::ChatReply(_))));
        assert_eq!(p.run, generated);
        assert_eq!(p.branch_count(Tree::Run), branches);
        let failed = |message: &str| Event::Failed {
            message: message.into(),
        };
        let job = job_of(&p.start_chat(Ok(chat.clone())));
        let effects = p.apply(reply(job, failed("the conversation needs 5000 positions")));
        assert_eq!(effects, vec![Effect::ChatUnanswered]);
        assert_eq!(p.chat.phase, OutputPhase::Error);
        // Not after a token: what came is kept as the reply so far.
        let job = job_of(&p.start_chat(Ok(chat)));
        p.apply(reply(job, token(5, "hel")));
        assert!(p.apply(reply(job, failed("crashed"))).is_empty());
        assert_eq!(p.run, generated);
        // The kept outputs carry both.
        let saved = p.saved_output().unwrap();
        let mut q = PaneModel::default();
        q.restore_output(saved);
        assert_eq!(q.run.tokens, generated.tokens);
        assert_eq!(q.chat.tokens.len(), 1);
        p.clear_chat();
        assert!(p.chat.tokens.is_empty());
        assert_eq!(p.run, generated);
        // Kept by an older page, where the reply sat in `run`: it comes back in the chat.
        let mut reply = q.chat.clone();
        reply.phase = OutputPhase::Done;
        let older = SavedOutput {
            run: reply.clone(),
            ..SavedOutput::default()
        };
        let mut r = PaneModel::default();
        r.restore_output(older);
        assert_eq!(r.chat.tokens, reply.tokens);
        assert!(r.run.tokens.is_empty());
        // The worker dying mid-reply, before its first token, hands the message back too.
        let (mut p, _) = ready();
        let job = job_of(&p.start_chat(Ok(GenerateRequest {
            messages: vec![crate::engine::chat::Message::user("hi")],
            ..GenerateRequest::default()
        })));
        let _ = job;
        assert_eq!(
            p.worker_lost("the worker stopped"),
            vec![Effect::ChatUnanswered]
        );
    }

    /// A fork of the chat's reply replays the reply up to the fork with the same conversation,
    /// and ends as a branch that takes the reply's place (not a new turn); the Generate run's
    /// branches are not touched, a new reply starts a new tree, and a reload keeps both.
    #[test]
    fn a_chat_reply_forks_into_branches_of_its_own() {
        let (mut p, _) = ready();
        let job = run(&mut p);
        p.apply(reply(job, token(1, "a")));
        p.apply(reply(job, finished("")));
        let chat = GenerateRequest {
            messages: vec![crate::engine::chat::Message::user("hi")],
            chat: true,
            reuse_cache: true,
            max_tokens: 2,
            ..GenerateRequest::default()
        };
        let job = job_of(&p.start_chat(Ok(chat.clone())));
        for (id, piece) in [(5, "x"), (6, "y"), (7, "z")] {
            p.apply(reply(job, token(id, piece)));
        }
        p.apply(reply(job, finished("")));
        assert!(
            p.start_fork(Tree::Chat, 1, 6, "y").is_none(),
            "the token it took"
        );
        let fork = p.start_fork(Tree::Chat, 1, 8, "w");
        let Some(ToWorker::Job {
            job: fork,
            work: Work::Generate { request },
        }) = fork
        else {
            panic!("no fork: {fork:?}")
        };
        assert_eq!(request.messages, chat.messages);
        assert!(request.chat && request.reuse_cache);
        assert_eq!(request.forced, vec![5, 8]);
        assert_eq!(request.reuse_at_most, Some(0), "what the reply reused");
        assert_eq!(request.max_tokens, 3, "room past the fork");
        assert!(
            p.start_fork(Tree::Chat, 0, 9, "v").is_none(),
            "not while running"
        );
        assert_eq!(p.chat.phase, OutputPhase::Running);
        assert_eq!(p.branch_count(Tree::Chat), 2);
        assert_eq!(p.branch_count(Tree::Run), 0);
        p.apply(reply(fork, token(5, "x")));
        p.apply(reply(fork, token(8, "w")));
        let effects = p.apply(reply(fork, finished("")));
        let ids = |e: &Effect| match e {
            Effect::ChatBranch(t) => Some(t.iter().map(|t| t.id).collect::<Vec<_>>()),
            _ => None,
        };
        assert_eq!(
            effects.iter().filter_map(ids).collect::<Vec<_>>(),
            vec![vec![5, 8]]
        );
        assert!(!effects.iter().any(|e| matches!(e, Effect::ChatReply(_))));
        let infos = p.branch_infos(Tree::Chat);
        assert_eq!(infos[0].label, "original");
        assert_eq!(infos[1].label, "fork at #2 → w");
        p.show_branch(Tree::Chat, 0);
        assert_eq!(p.chat.tokens.len(), 3);
        assert!(p.chat.fork.is_none());
        // Kept across a reload.
        let mut q = PaneModel::default();
        q.restore_output(p.saved_output().unwrap());
        assert_eq!(q.branch_infos(Tree::Chat), p.branch_infos(Tree::Chat));
        assert_eq!(q.current_branch(Tree::Chat), 0);
        // The branches are kept with the conversation once, not once each.
        let saved = p.saved_output().unwrap();
        assert!(saved.chat_branches.runs.iter().all(|r| r
            .request
            .as_ref()
            .unwrap()
            .messages
            .is_empty()));
        assert_eq!(
            q.chat_branches.runs[1].request.as_ref().unwrap().messages,
            chat.messages
        );
        // A fork that fails, or is stopped before its first token, leaves the reply and its
        // branches as they were (the conversation still holds the shown one).
        let shown = p.chat.clone();
        let doomed = job_of(&p.start_fork(Tree::Chat, 1, 9, "v"));
        p.apply(reply(doomed, token(5, "x")));
        p.apply(reply(doomed, failed("crashed")));
        assert_eq!(p.branch_count(Tree::Chat), 2);
        assert_eq!(p.current_branch(Tree::Chat), 0);
        assert_eq!(p.chat.tokens, shown.tokens);
        assert_eq!(
            (p.chat.phase, p.chat.message.as_str()),
            (OutputPhase::Error, "Crashed")
        );
        assert!(p.chat.finished_with_tokens(), "still forkable");
        // A next message refused, or failed before its first token, does not cost the reply
        // its forks either.
        assert!(p.start_chat(Err("top-p must be above 0".into())).is_none());
        assert!(p.chat.finished_with_tokens());
        assert_eq!(p.branch_count(Tree::Chat), 2);
        let long = job_of(&p.start_chat(Ok(chat.clone())));
        assert_eq!(p.branch_count(Tree::Chat), 0);
        assert_eq!(
            p.apply(reply(long, failed("needs 5000 positions"))),
            vec![Effect::ChatUnanswered]
        );
        assert_eq!(p.branch_count(Tree::Chat), 2);
        assert_eq!(p.chat.tokens, shown.tokens);
        assert_eq!(p.chat.message, "Needs 5000 positions");
        let stopped = job_of(&p.start_chat(Ok(chat.clone())));
        let effects = p.apply(reply(stopped, ended(StopReason::Stopped)));
        assert!(effects.is_empty());
        assert_eq!(p.branch_count(Tree::Chat), 2);
        assert_eq!(p.chat.tokens, shown.tokens);
        assert!(p.chat.finished_with_tokens());
        // A typed continuation; then a new reply forgets the tree, and so does Clear.
        let typed = job_of(&p.start_fork_text(Tree::Chat, 2, " ok"));
        p.apply(reply(typed, token(5, "x")));
        p.apply(reply(typed, finished("")));
        assert_eq!(p.branch_count(Tree::Chat), 3);
        let job = job_of(&p.start_chat(Ok(chat)));
        assert_eq!(p.branch_count(Tree::Chat), 0);
        p.apply(reply(job, token(5, "x")));
        p.apply(reply(job, finished("")));
        let again = job_of(&p.start_fork(Tree::Chat, 0, 8, "w"));
        p.apply(reply(again, token(8, "w")));
        p.apply(reply(again, finished("")));
        assert_eq!(p.branch_count(Tree::Chat), 2);
        p.clear_chat();
        assert_eq!(p.branch_count(Tree::Chat), 0);
        assert_eq!(p.run.tokens.len(), 1, "the Generate run stays");
    }

    #[test]
    fn regenerate_seeds_run_on_past_the_largest() {
        assert_eq!(next_seed(7, []), 8);
        assert_eq!(next_seed(7, [8, 9]), 10);
        assert_eq!(next_seed(u64::MAX, []), 0);
        assert_eq!(next_seed(u64::MAX, [0]), 1);
        assert_eq!(next_seed(u64::MAX - 1, [u64::MAX, 0, 1]), 2);
        // Drawn before the pane's seed was raised past them: counted from the new seed.
        assert_eq!(next_seed(100, [8, 9]), 101);
        // The seed lowered under what was drawn: on from the furthest drawn.
        assert_eq!(next_seed(4, [8, 9]), 10);
    }

    /// Regenerate draws from the next seed each time (a sampled reply comes out different, and
    /// the same presses give the same replies), keeps every reply to the same messages as a
    /// branch, and leaves the conversation's reply in place when it fails or is stopped early.
    #[test]
    fn a_regenerated_reply_is_a_branch_with_its_own_seed() {
        let (mut p, _) = ready();
        let chat = GenerateRequest {
            messages: vec![crate::engine::chat::Message::user("hi")],
            chat: true,
            reuse_cache: true,
            sampling: crate::engine::SamplingParams {
                seed: 7,
                temperature: 0.8,
                ..crate::engine::SamplingParams::default()
            },
            ..GenerateRequest::default()
        };
        let job = job_of(&p.start_chat(Ok(chat.clone())));
        p.apply(reply(job, token(5, "x")));
        p.apply(reply(job, finished("")));
        let seed_of = |m: &Option<ToWorker>| match m {
            Some(ToWorker::Job {
                work: Work::Generate { request },
                ..
            }) => request.sampling.seed,
            m => panic!("no generation: {m:?}"),
        };
        let msg = p.start_chat_again(Ok(chat.clone()));
        assert_eq!(seed_of(&msg), 8);
        assert_eq!(p.branch_count(Tree::Chat), 2);
        let job = job_of(&msg);
        p.apply(reply(job, token(6, "y")));
        let effects = p.apply(reply(job, finished("")));
        assert!(
            matches!(&effects[..], [Effect::ChatBranch(t)] if t[0].id == 6),
            "{effects:?}"
        );
        let labels = |p: &PaneModel| {
            p.branch_infos(Tree::Chat)
                .into_iter()
                .map(|b| b.label)
                .collect::<Vec<_>>()
        };
        assert_eq!(labels(&p), ["original", "regenerated (seed 8)"]);
        // A fork of the regenerated reply replays it with its own seed.
        let fork = p.start_fork(Tree::Chat, 0, 9, "v");
        assert_eq!(seed_of(&fork), 8);
        let fork = job_of(&fork);
        p.apply(reply(fork, token(9, "v")));
        p.apply(reply(fork, finished("")));
        let msg = p.start_chat_again(Ok(chat.clone()));
        assert_eq!(seed_of(&msg), 9, "the next seed not yet drawn");
        // Stopped before its first token: the reply shown and its branches come back, and the
        // conversation keeps its turn (no message goes back to the input box).
        let effects = p.apply(reply(job_of(&msg), ended(StopReason::Stopped)));
        assert!(effects.is_empty(), "{effects:?}");
        assert_eq!(p.branch_count(Tree::Chat), 3);
        assert_eq!(p.chat.tokens[0].id, 9);
        let msg = p.start_chat_again(Ok(chat.clone()));
        assert_eq!(seed_of(&msg), 9);
        assert_eq!(
            p.apply(reply(job_of(&msg), failed("the worker stopped"))),
            vec![]
        );
        assert_eq!(p.chat.tokens[0].id, 9);
        assert_eq!(p.branch_count(Tree::Chat), 3);
        // Refused: nothing filed.
        assert!(p
            .start_chat_again(Err("top-p must be above 0".into()))
            .is_none());
        assert_eq!(p.branch_count(Tree::Chat), 3);
        assert!(p.chat.finished_with_tokens());
        // Other messages (a changed system prompt): a new tree, from the next seed still.
        let mut other = chat.clone();
        other.messages.insert(
            0,
            crate::engine::chat::Message {
                role: "system".into(),
                content: "be brief".into(),
            },
        );
        let msg = p.start_chat_again(Ok(other.clone()));
        assert_eq!(seed_of(&msg), 8);
        assert_eq!(p.branch_count(Tree::Chat), 0);
        let job = job_of(&msg);
        p.apply(reply(job, token(5, "x")));
        let effects = p.apply(reply(job, finished("")));
        assert!(matches!(&effects[..], [Effect::ChatBranch(_)]));
        // Its next regenerate is its sibling, on the seed after its own.
        let msg = p.start_chat_again(Ok(other.clone()));
        assert_eq!(seed_of(&msg), 9);
        assert_eq!(labels(&p), ["regenerated (seed 8)", "regenerated (seed 9)"]);
        // A regenerated reply the model ended at once (no tokens) is a branch too, and the
        // next press draws from the seed after it (it drew from the same one for ever).
        let effects = p.apply(reply(job_of(&msg), finished("")));
        assert!(matches!(&effects[..], [Effect::ChatBranch(t)] if t.is_empty()));
        let msg = p.start_chat_again(Ok(other));
        assert_eq!(seed_of(&msg), 10);
        assert_eq!(p.branch_count(Tree::Chat), 3);
        // Kept across a reload.
        let mut q = PaneModel::default();
        p.apply(reply(job_of(&msg), token(5, "x")));
        p.apply(reply(job_of(&msg), finished("")));
        q.restore_output(p.saved_output().unwrap());
        assert_eq!(labels(&q), labels(&p));
    }

    /// A tab whose buttons another tab's work disables says what that work is.
    #[test]
    fn a_pane_busy_for_another_tab_says_so() {
        use crate::ui::settings::Mode;
        let (mut p, _) = ready();
        assert_eq!(p.busy_elsewhere(Mode::Generate), None);
        let chat = GenerateRequest {
            messages: vec![crate::engine::chat::Message::user("hi")],
            ..GenerateRequest::default()
        };
        let job = job_of(&p.start_chat(Ok(chat)));
        assert_eq!(p.busy_elsewhere(Mode::Chat), None);
        assert_eq!(
            p.busy_elsewhere(Mode::Generate).as_deref(),
            Some("This pane is writing a chat reply (Chat tab); Stop ends it.")
        );
        p.apply(reply(job, finished("")));
        assert_eq!(p.busy_elsewhere(Mode::Generate), None);
        run(&mut p);
        assert!(p
            .busy_elsewhere(Mode::Eval)
            .is_some_and(|m| m.contains("generating (Generate tab)")));
    }

    /// An output made by another model than the one loaded now is not forked: its token ids
    /// mean other tokens in this vocabulary.
    #[test]
    fn a_fork_runs_only_on_the_model_that_made_the_output() {
        let (mut p, _) = ready();
        let job = run(&mut p);
        p.apply(reply(job, token(1, "a")));
        p.apply(reply(job, finished("")));
        let other = |label: &str| {
            let Event::Loaded(mut l) = loaded() else {
                unreachable!()
            };
            l.label = label.into();
            l.info.vocab_fingerprint = "another vocabulary".into();
            Event::Loaded(l)
        };
        let load = job_of(&p.load(url(), "N"));
        p.apply(reply(load, other("N")));
        assert!(p.is_ready());
        assert!(p.start_fork(Tree::Run, 0, 9, "z").is_none());
        assert!(p.start_fork_text(Tree::Run, 0, "zz").is_none());
        assert!(p.branch_infos(Tree::Run).is_empty(), "no branch filed");
        assert_eq!(
            p.run.message,
            "This output was made by M, and N is loaded now: load M again to fork it."
        );
        // Another file of the same name is another model too.
        let load = job_of(&p.load(url(), "M"));
        p.apply(reply(load, other("M")));
        assert!(p.start_fork(Tree::Run, 0, 9, "z").is_none());
        assert!(p
            .run
            .message
            .starts_with("This output was made by another model than the M"));
        let load = job_of(&p.load(url(), "M"));
        p.apply(reply(load, loaded()));
        assert!(p.start_fork(Tree::Run, 0, 9, "z").is_some());
    }

    /// A fork replays the shown run's tokens before the fork point with its own request, keeps
    /// the parent as a branch to go back to, and a new Run forgets the tree.
    /// The job and request of a message that starts a generation.
    fn generation_of(msg: Option<ToWorker>) -> (JobId, GenerateRequest) {
        match msg {
            Some(ToWorker::Job {
                job,
                work: Work::Generate { request },
            }) => (job, request),
            other => panic!("no generation: {other:?}"),
        }
    }

    /// Starts a run of `prompt` and sends it `tokens`; finishes it unless `running`.
    fn run_of(
        p: &mut PaneModel,
        prompt: &str,
        max_tokens: usize,
        tokens: &[(u32, &str)],
        running: bool,
    ) -> JobId {
        let request = GenerateRequest {
            prompt: prompt.into(),
            max_tokens,
            ..GenerateRequest::default()
        };
        let job = job_of(&p.start_run(Ok(request)));
        for &(id, piece) in tokens {
            p.apply(reply(job, token(id, piece)));
        }
        if !running {
            p.apply(reply(job, finished("")));
        }
        job
    }

    #[test]
    fn a_run_under_way_at_a_reload_is_said_not_shown_as_current() {
        let (mut p, _) = ready();
        run_of(&mut p, "p", 2, &[(1, "a")], false);
        let mut kept = p.saved_output().unwrap();
        run_of(&mut p, "p", 2, &[(2, "b")], true);
        assert!(p.saved_output().is_none(), "not kept while running");
        p.mark_cut_off(&mut kept);
        let json = serde_json::to_string(&kept).unwrap();
        let mut q = PaneModel::default();
        q.restore_output(serde_json::from_str(&json).unwrap());
        assert_eq!(q.run.tokens.len(), 1, "the run before it");
        assert!(
            q.run.message.contains("reloaded during a run") && q.run.message.contains("one before"),
            "{}",
            q.run.message
        );
        // A chat reply under way (a Regenerate): the reply before it is shown, and said to be.
        let (mut c, _) = ready();
        c.chat.tokens = q.run.tokens.clone();
        c.chat.phase = OutputPhase::Done;
        c.chat.message = "Done: reached max tokens.".into();
        let mut kept = c.saved_output().unwrap();
        c.chat.phase = OutputPhase::Running;
        c.mark_cut_off(&mut kept);
        let mut r = PaneModel::default();
        r.restore_output(serde_json::from_str(&serde_json::to_string(&kept).unwrap()).unwrap());
        assert_eq!(r.chat.tokens.len(), 1);
        assert!(
            r.chat.message.contains("reloaded during a reply")
                && r.chat.message.contains("one before"),
            "{}",
            r.chat.message
        );
        // A save that ran to its end writes no flag.
        let plain = serde_json::to_string(&PaneModel::default().saved_output().unwrap()).unwrap();
        assert!(!plain.contains("cut_off"), "{plain}");
    }

    /// The pane's boxes as `q` was made from them.
    fn settings_of(q: &GenerateRequest) -> crate::ui::settings::PaneSettings {
        let s = &q.sampling;
        crate::ui::settings::PaneSettings {
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            min_p: s.min_p,
            repeat_penalty: s.repeat_penalty,
            seed: s.seed,
            max_tokens: q.max_tokens,
            chat: q.chat,
            repeat_prompt: q.repeat_prompt,
            ..Default::default()
        }
    }

    #[test]
    fn a_generation_says_when_another_model_prompt_or_setting_would_make_another() {
        let (mut p, _) = ready();
        let job = run_of(&mut p, "the prompt", 2, &[(1, "a")], true);
        let (id, label) = (p.model.identity(), p.model.label.clone());
        let same = settings_of(p.run.request.as_ref().unwrap());
        assert_eq!(
            p.run.stale_generation(&id, &label, "edited", &same),
            None,
            "not while running"
        );
        p.apply(reply(job, finished("")));
        assert_eq!(
            p.run.stale_generation(&id, &label, "the prompt", &same),
            None
        );
        let prompt_note = p
            .run
            .stale_generation(&id, &label, "edited", &same)
            .unwrap();
        assert!(prompt_note.contains("earlier prompt"), "{prompt_note}");
        let model_note = p
            .run
            .stale_generation("other:identity", "Gemma 3", "the prompt", &same)
            .unwrap();
        assert!(
            model_note.contains("; Gemma 3 is loaded now"),
            "{model_note}"
        );
        // No model loaded now: nothing to compare with.
        assert_eq!(p.run.stale_generation("", "", "the prompt", &same), None);
        // Settings changed after the run: the header shows the new ones, the output is the
        // old ones'.
        let changed = crate::ui::settings::PaneSettings {
            temperature: 1.5,
            seed: same.seed + 1,
            max_tokens: 9,
            ..same.clone()
        };
        let note = p
            .run
            .stale_generation(&id, &label, "the prompt", &changed)
            .unwrap();
        assert!(
            note.contains("temperature 0.8 → 1.5")
                && note.contains("seed")
                && note.contains("max tokens 2 → 9"),
            "{note}"
        );
    }

    /// An output the model ended (EOS) short of both lengths is the same at either.
    #[test]
    fn a_longer_length_after_an_ended_answer_is_not_stale() {
        let (mut p, _) = ready();
        let request = GenerateRequest {
            prompt: "q".into(),
            max_tokens: 100,
            ..GenerateRequest::default()
        };
        let job = job_of(&p.start_run(Ok(request.clone())));
        p.apply(reply(job, token(1, "yes")));
        p.apply(reply(job, ended(StopReason::Eos)));
        let (id, label) = (p.model.identity(), p.model.label.clone());
        let mut now = settings_of(&request);
        now.max_tokens = 200;
        assert_eq!(p.run.stale_generation(&id, &label, "q", &now), None);
        // Shorter than the answer was: another output.
        now.max_tokens = 1;
        assert!(p.run.stale_generation(&id, &label, "q", &now).is_some());
    }

    /// At temperature 0 on both sides the draw's settings make no other output.
    #[test]
    fn greedy_runs_are_not_stale_for_a_new_seed_or_top_k() {
        let (mut p, _) = ready();
        let request = GenerateRequest {
            prompt: "q".into(),
            max_tokens: 1,
            sampling: crate::engine::SamplingParams {
                temperature: 0.0,
                ..Default::default()
            },
            ..GenerateRequest::default()
        };
        let job = job_of(&p.start_run(Ok(request.clone())));
        p.apply(reply(job, token(1, "a")));
        p.apply(reply(job, finished("")));
        let (id, label) = (p.model.identity(), p.model.label.clone());
        let mut now = settings_of(&request);
        now.seed += 7;
        now.top_k = 3;
        assert_eq!(p.run.stale_generation(&id, &label, "q", &now), None);
        now.repeat_penalty = 1.3;
        let note = p.run.stale_generation(&id, &label, "q", &now).unwrap();
        assert!(note.contains("repeat penalty 1 → 1.3"), "{note}");
    }

    #[test]
    fn a_fork_of_a_typed_branch_does_not_take_the_typed_text_again() {
        let (mut p, _) = ready();
        run_of(&mut p, "p", 4, &[(1, "a"), (2, "b"), (3, "c")], false);
        let typed = job_of(&p.start_fork_text(Tree::Run, 1, " zz"));
        for (id, piece) in [(1, "a"), (5, " zz"), (6, "e"), (7, "f")] {
            p.apply(reply(typed, token(id, piece)));
        }
        p.apply(reply(typed, finished("")));
        let (fork_job, request) = generation_of(p.start_fork(Tree::Run, 3, 9, "z"));
        assert_eq!(
            (request.forced, request.forced_text.as_str()),
            (vec![1, 5, 6, 9], "")
        );
        p.apply(reply(fork_job, finished("")));
        // A typed fork of it takes its own text.
        p.show_branch(Tree::Run, 1);
        let (_, request) = generation_of(p.start_fork_text(Tree::Run, 2, " yy"));
        assert_eq!(
            (request.forced, request.forced_text.as_str()),
            (vec![1, 5], " yy")
        );
    }

    /// Stop while a fork still replays its parent: no branch of the parent's first tokens
    /// under the fork's label; the parent is shown again. Stopped past its token, it stays.
    #[test]
    fn a_fork_stopped_before_its_token_is_not_kept() {
        let (mut p, _) = ready();
        run_of(&mut p, "q", 3, &[(1, "a"), (2, "b"), (3, "c")], false);
        let stopped = || ended(StopReason::Stopped);
        let ids = |p: &PaneModel| p.run.tokens.iter().map(|t| t.id).collect::<Vec<_>>();
        let early = job_of(&p.start_fork(Tree::Run, 2, 9, "z"));
        p.apply(reply(early, token(1, "a")));
        p.apply(reply(early, stopped()));
        assert_eq!(ids(&p), vec![1, 2, 3]);
        assert_eq!(
            p.branch_count(Tree::Run),
            0,
            "no chooser for the original alone"
        );
        assert!(p.run.message.contains("not kept"), "{}", p.run.message);
        assert!(!p.is_running());
        let late = job_of(&p.start_fork(Tree::Run, 1, 9, "z"));
        p.apply(reply(late, token(1, "a")));
        p.apply(reply(late, token(9, "z")));
        p.apply(reply(late, stopped()));
        assert_eq!(ids(&p), vec![1, 9]);
        assert_eq!(p.branch_count(Tree::Run), 2);
        assert_eq!(p.current_branch(Tree::Run), 1);
    }

    /// A fork the worker refuses (its replayed tokens past the context) or loses is no
    /// branch either: the parent comes back, with the failure said. One that failed past its
    /// token keeps what it made.
    #[test]
    fn a_fork_that_fails_before_its_token_is_not_kept() {
        let (mut p, _) = ready();
        run_of(&mut p, "q", 3, &[(1, "a"), (2, "b"), (3, "c")], false);
        let ids = |p: &PaneModel| p.run.tokens.iter().map(|t| t.id).collect::<Vec<_>>();
        let failed = Event::Failed {
            message: "the prompt and given tokens need 4097 positions".into(),
        };
        let refused = job_of(&p.start_fork(Tree::Run, 2, 9, "z"));
        p.apply(reply(refused, failed.clone()));
        assert_eq!(ids(&p), vec![1, 2, 3]);
        assert_eq!(p.branch_count(Tree::Run), 0);
        assert_eq!(p.run.phase, OutputPhase::Error);
        assert_eq!(
            p.run.message,
            "The fork was not made: the prompt and given tokens need 4097 positions"
        );
        assert!(!p.is_running());
        assert!(
            p.start_fork(Tree::Run, 1, 9, "z").is_some(),
            "the parent forks again"
        );
    }

    #[test]
    fn forks_replay_the_parent_and_keep_every_branch() {
        let (mut p, _) = ready();
        let job = run_of(
            &mut p,
            "original prompt",
            3,
            &[(1, "a"), (2, "b"), (3, "c")],
            true,
        );
        assert!(
            p.start_fork(Tree::Run, 1, 9, "z").is_none(),
            "not while running"
        );
        p.apply(reply(job, finished("")));
        assert!(
            p.branch_infos(Tree::Run).is_empty(),
            "no branches before a fork"
        );
        assert!(
            p.start_fork(Tree::Run, 1, 2, "b").is_none(),
            "the token already there is no fork"
        );
        assert!(p.start_fork(Tree::Run, 7, 9, "z").is_none(), "past the end");
        let (fork_job, request) = generation_of(p.start_fork(Tree::Run, 1, 9, "z"));
        assert_eq!(request.prompt, "original prompt");
        assert_eq!(request.forced, vec![1, 9]);
        assert_eq!(request.max_tokens, 3);
        for (id, piece) in [(1, "a"), (9, "z"), (4, "d")] {
            p.apply(reply(fork_job, token(id, piece)));
        }
        p.apply(reply(fork_job, finished("")));
        let infos = p.branch_infos(Tree::Run);
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[0].label, "original");
        assert_eq!(infos[1].label, "fork at #2 → z");
        assert_eq!(p.current_branch(Tree::Run), 1);
        let ids = |p: &PaneModel| p.run.tokens.iter().map(|t| t.id).collect::<Vec<_>>();
        assert_eq!(ids(&p), vec![1, 9, 4]);
        p.show_branch(Tree::Run, 0);
        assert_eq!(ids(&p), vec![1, 2, 3]);
        assert_eq!(p.run.request.as_ref().map(|r| r.forced.len()), Some(0));
        // A fork of the original, while the first fork stays.
        let second = job_of(&p.start_fork(Tree::Run, 2, 8, "y"));
        p.apply(reply(second, finished("")));
        assert_eq!(p.branch_infos(Tree::Run).len(), 3);
        p.show_branch(Tree::Run, 1);
        assert_eq!(ids(&p), vec![1, 9, 4]);
        // A typed continuation: the parent's tokens before, the text for the worker to take.
        let (typed_job, request) = generation_of(p.start_fork_text(Tree::Run, 1, " zz"));
        assert_eq!(
            (request.forced, request.forced_text.as_str()),
            (vec![1], " zz")
        );
        p.apply(reply(typed_job, finished("")));
        assert_eq!(p.branch_infos(Tree::Run).len(), 4);
        // A continuation of only whitespace is labelled so that it can be seen.
        p.show_branch(Tree::Run, 0);
        let spaces = job_of(&p.start_fork_text(Tree::Run, 1, "  \n"));
        p.apply(reply(spaces, finished("")));
        assert_eq!(p.branch_infos(Tree::Run)[4].label, "fork at #2 → ␣␣↵");
        // A run refused for its input keeps what is shown, and says whose it is.
        p.show_branch(Tree::Run, 0);
        let shown = p.run.tokens.clone();
        assert_eq!(shown.len(), 3);
        assert!(p
            .start_run(Err("temperature must be 0 or more".into()))
            .is_none());
        assert_eq!(p.run.tokens, shown);
        assert_eq!(
            p.run.message,
            "temperature must be 0 or more. What is shown below is the previous result."
        );
        // What a reload keeps: the shown run, every branch and the one shown, through JSON;
        // new jobs go on past the kept runs' ids.
        let kept = serde_json::to_string(&p.saved_output().unwrap()).unwrap();
        let mut back = PaneModel::default();
        back.restore_output(serde_json::from_str(&kept).unwrap());
        assert_eq!(back.branch_infos(Tree::Run), p.branch_infos(Tree::Run));
        assert_eq!(back.current_branch(Tree::Run), p.current_branch(Tree::Run));
        assert_eq!(back.run.tokens, p.run.tokens);
        let kept_ids: Vec<u64> = std::iter::once(&back.run)
            .chain([&back.score])
            .chain(&back.branches.runs)
            .map(|r| r.run_id)
            .collect();
        assert!(back.new_job() > *kept_ids.iter().max().unwrap());
        // Its model is not loaded yet: a fork says so and files no branch.
        let before = back.branch_count(Tree::Run);
        let at = back.run.tokens.len() - 1;
        assert!(back.start_fork(Tree::Run, at, 9999, "q").is_none());
        assert_eq!(back.branch_count(Tree::Run), before);
        assert!(
            back.run.message.starts_with("Load the model first"),
            "{}",
            back.run.message
        );
        run(&mut p);
        assert!(
            p.branch_infos(Tree::Run).is_empty(),
            "a new run is a new tree"
        );
        // Nothing is kept while a run is coming in; one that was cut off shows as ended.
        assert!(p.saved_output().is_none());
        let mut cut = SavedOutput {
            run: p.run.clone(),
            ..SavedOutput::default()
        };
        cut.branches.current = 3;
        // What localStorage says is not trusted: an id at the top of the range, a fork point
        // past the tokens.
        cut.run.run_id = u64::MAX;
        cut.run.fork = Some(ForkPoint {
            at: usize::MAX,
            text: "x".into(),
        });
        cut.score.message = "Loading M first; the run starts as soon as it is ready.".into();
        let mut back = PaneModel::default();
        back.restore_output(cut);
        assert_eq!(back.run.phase, OutputPhase::Done);
        assert_eq!(
            back.score.message, "",
            "the run it promised went with the page"
        );
        assert!(back.run.run_id < 10);
        assert!(back.new_job() > back.run.run_id);
        assert!(
            back.branch_infos(Tree::Run).is_empty(),
            "a branch index past the branches is dropped"
        );
        // The kept fork point is only read, never used to index: its label still reads.
        back.branches.runs.push(back.run.clone());
        assert!(back.branch_infos(Tree::Run)[0]
            .label
            .starts_with("fork at #"));
    }

    #[test]
    fn a_load_reports_progress_then_ready() {
        let mut p = PaneModel::default();
        let job = job_of(&p.load(url(), "M"));
        let progress = LoadProgress {
            loaded: 5,
            total: Some(10),
            from_cache: false,
            elapsed_ms: 1.0,
        };
        p.apply(reply(job, Event::Progress(progress)));
        assert_eq!(p.model.progress, Some(progress));
        assert!(p.is_busy());
        p.apply(reply(job, loaded()));
        assert!(p.is_ready() && !p.is_busy());
        assert!(
            p.model.message.starts_with("M ready"),
            "{}",
            p.model.message
        );
        // A second Loaded for the finished job changes nothing.
        let before = p.clone();
        p.apply(reply(job, failed("late")));
        assert_eq!(p, before);
    }

    fn loaded_keeping() -> Event {
        let Event::Loaded(mut l) = loaded() else {
            unreachable!()
        };
        (l.cached_now, l.keeping) = (false, true);
        Event::Loaded(l)
    }

    /// A load starts a fresh worker where the last one's heap is well over the next model's
    /// need (Qwen2.5's 541 MB before SmolLM2's 98 MB file), not for a model as large or larger
    /// (the heap grows anyway, and a worker costs half a second), nor while a put goes on.
    #[test]
    fn a_fresh_worker_is_started_where_it_gives_memory_back() {
        const MB: u64 = 1 << 20;
        let mut p = PaneModel::default();
        assert!(
            !p.model.wants_fresh_worker(Some(98 * MB)),
            "no model held yet"
        );
        let job = job_of(&p.load(url(), "Qwen"));
        let Event::Loaded(mut l) = loaded() else {
            unreachable!()
        };
        l.wasm_memory_bytes = 541 * MB;
        p.apply(reply(job, Event::Loaded(l.clone())));
        assert!(p.model.wants_fresh_worker(Some(98 * MB)));
        assert!(p.model.wants_fresh_worker(Some(253 * MB)));
        assert!(!p.model.wants_fresh_worker(Some(491 * MB)));
        assert!(
            p.model.wants_fresh_worker(None),
            "an unknown size after 541 MB"
        );
        l.wasm_memory_bytes = 114 * MB;
        let job = job_of(&p.load(url(), "SmolLM2"));
        p.apply(reply(job, Event::Loaded(l.clone())));
        assert!(
            !p.model.wants_fresh_worker(Some(98 * MB)),
            "the same model again"
        );
        assert!(!p.model.wants_fresh_worker(None));
        // The heap a job left behind (Binoculars' rows, a long score) counts, and is shown;
        // a smaller figure never undoes a larger.
        let before = p.model.message.clone();
        p.apply(FromWorker::Memory {
            wasm_memory_bytes: 400 * MB,
        });
        assert!(
            p.model.message.contains("419 MB in memory"),
            "{}",
            p.model.message
        );
        assert_ne!(p.model.message, before);
        p.apply(FromWorker::Memory {
            wasm_memory_bytes: 114 * MB,
        });
        assert!(p.model.message.contains("419 MB in memory"));
        assert!(p.model.wants_fresh_worker(Some(98 * MB)));
        l.wasm_memory_bytes = 114 * MB;
        let job = job_of(&p.load(url(), "SmolLM2"));
        p.apply(reply(job, Event::Loaded(l.clone())));
        // Still putting the last model in the cache: that worker goes on.
        (l.wasm_memory_bytes, l.cached_now, l.keeping) = (541 * MB, false, true);
        let job = job_of(&p.load(url(), "Qwen"));
        p.apply(reply(job, Event::Loaded(l)));
        assert!(p.model.is_keeping());
        assert!(!p.model.wants_fresh_worker(Some(98 * MB)));
        p.apply(reply(job, kept(true, None)));
        assert!(p.model.wants_fresh_worker(Some(98 * MB)));
        // A load that failed leaves a heap of unknown size behind.
        let job = job_of(&p.load(url(), "Bad"));
        p.apply(reply(
            job,
            Event::Failed {
                message: "not a GGUF file".into(),
            },
        ));
        assert_eq!(p.model.phase, ModelPhase::Error);
        assert!(p.model.wants_fresh_worker(Some(98 * MB)));
    }

    fn kept(cached_now: bool, note: Option<&str>) -> Event {
        Event::Kept {
            cached_now,
            cache_note: note.map(String::from),
        }
    }

    #[test]
    fn a_model_is_ready_before_its_bytes_are_kept() {
        let mut p = PaneModel::default();
        let job = job_of(&p.load(url(), "M"));
        p.apply(reply(job, loaded_keeping()));
        assert!(p.is_ready() && !p.is_busy());
        let l = p.model.loaded.clone().expect("loaded");
        assert_eq!(cache_state(&l), "keeping");
        assert!(p
            .model
            .message
            .ends_with("keeping it in the browser cache…"));
        p.apply(reply(job, kept(true, None)));
        let l = p.model.loaded.clone().expect("loaded");
        assert_eq!(cache_state(&l), "kept");
        assert!(
            p.model.message.starts_with("M ready")
                && p.model.message.ends_with("kept in the browser cache"),
            "{}",
            p.model.message
        );
        // A second answer for the same job changes nothing.
        let before = p.clone();
        p.apply(reply(job, kept(false, Some("late"))));
        assert_eq!(p, before);
    }

    /// The pane's status says `part`.
    fn assert_says(p: &PaneModel, part: &str) {
        assert!(
            p.model.message.contains(part),
            "{:?} does not say {part:?}",
            p.model.message
        );
    }

    #[test]
    fn a_load_that_waited_for_the_last_put_says_so() {
        let mut p = PaneModel::default();
        let job = job_of(&p.load(url(), "M"));
        let Event::Loaded(mut l) = loaded() else {
            unreachable!()
        };
        (l.from_cache, l.waited_ms) = (true, 1250.0);
        p.apply(reply(job, Event::Loaded(l.clone())));
        assert_says(
            &p,
            "loaded in 3 ms from the browser cache, after 1.25 s waiting for the last model's cache copy",
        );
        // A load from the network: the wait comes before what happens to its own bytes.
        (l.from_cache, l.cached_now, l.keeping) = (false, false, true);
        let job = job_of(&p.load(url(), "M"));
        p.apply(reply(job, Event::Loaded(l.clone())));
        assert_says(
            &p,
            "loaded in 3 ms, after 1.25 s waiting for the last model's cache copy · keeping it in the browser cache…",
        );
        p.apply(reply(job, kept(true, None)));
        // The worker gave up on the put: the status says so, not that it waited for its end.
        l.waited_ms = 120_004.0;
        let job = job_of(&p.load(url(), "M"));
        assert_eq!(p.model.message, "Loading M…");
        p.apply(reply(job, Event::Loaded(l.clone())));
        assert_says(
            &p,
            "loaded in 3 ms, after giving up at 120.00 s on the last model's cache copy ·",
        );
        l.waited_ms = 0.2;
        let job = job_of(&p.load(url(), "M"));
        assert_says(
            &p,
            "M… once the last model's copy into the browser cache ends",
        );
        p.apply(reply(job, Event::Loaded(l.clone())));
        assert!(!p.model.message.contains("waiting"), "{}", p.model.message);
        // A local file that is a catalog model: said, with where it is kept.
        (l.from_cache, l.cached_now, l.keeping, l.waited_ms) = (false, true, false, 0.0);
        l.catalog_twin = Some("m".into());
        let job = job_of(&p.load(url(), "M"));
        p.apply(reply(job, Event::Loaded(l)));
        assert_says(
            &p,
            "loaded in 3 ms · kept in the browser cache · the catalog's model, byte for byte (kept once, under its name)",
        );
    }

    #[test]
    fn a_put_is_followed_across_the_next_load_until_it_ends() {
        let mut p = PaneModel::default();
        let first = job_of(&p.load(url(), "M"));
        assert!(!p.model.is_keeping());
        p.apply(reply(first, loaded_keeping()));
        assert!(p.model.is_keeping());
        // The worker finishes the put before it reads the next model: the cache list must
        // still wait.
        let second = job_of(&p.load(url(), "N"));
        assert!(p.model.is_keeping());
        // The worker gave up waiting; the next model came from the cache, and then the old
        // put ended: that answer ends the wait and leaves the new model's status alone.
        let Event::Loaded(mut l) = loaded() else {
            unreachable!()
        };
        (l.from_cache, l.label) = (true, "N".into());
        p.apply(reply(second, Event::Loaded(l)));
        let shown = p.model.clone();
        p.apply(reply(first, kept(false, Some("not kept: storage is full"))));
        assert!(!p.model.is_keeping());
        assert_eq!(p.model.loaded, shown.loaded);
        assert_eq!(p.model.message, shown.message);
        assert_eq!(
            cache_state(p.model.loaded.as_ref().expect("loaded")),
            "from-cache"
        );
        // A worker that dies takes its put with it.
        let third = job_of(&p.load(url(), "M"));
        p.apply(reply(third, loaded_keeping()));
        assert!(p.model.is_keeping());
        p.apply(FromWorker::Crashed {
            message: "out of memory".into(),
        });
        assert!(!p.model.is_keeping());
    }

    #[test]
    fn a_refused_put_says_why_and_an_old_loads_answer_is_ignored() {
        let mut p = PaneModel::default();
        let job = job_of(&p.load(url(), "M"));
        p.apply(reply(job, loaded_keeping()));
        p.apply(reply(job, kept(false, Some("not kept: storage is full"))));
        assert_eq!(
            cache_state(p.model.loaded.as_ref().expect("loaded")),
            "not-kept"
        );
        assert!(p.model.message.ends_with("· not kept: storage is full"));
        // A new load before the first one's put ends: the late answer is not for this model.
        let first = job_of(&p.load(url(), "M"));
        p.apply(reply(first, loaded_keeping()));
        let second = job_of(&p.load(url(), "N"));
        assert!(p
            .model
            .message
            .ends_with("copy into the browser cache ends"));
        p.apply(reply(first, kept(true, None)));
        assert_eq!(p.model.message, "Loading N…");
        assert_eq!(p.model.label, "N");
        assert!(p.model.loaded.is_none() && p.is_busy());
        p.apply(reply(second, loaded()));
        let before = p.clone();
        p.apply(reply(first, kept(false, Some("late"))));
        assert_eq!(p, before);
        // A model read from the cache was never kept by this load.
        let job = job_of(&p.load(url(), "M"));
        let Event::Loaded(mut l) = loaded() else {
            unreachable!()
        };
        l.from_cache = true;
        p.apply(reply(job, Event::Loaded(l)));
        assert_eq!(
            cache_state(p.model.loaded.as_ref().expect("loaded")),
            "from-cache"
        );
    }

    #[test]
    fn a_run_streams_tokens_and_its_tail_lands_on_the_last_token() {
        let (mut p, _) = ready();
        let job = run(&mut p);
        p.apply(reply(
            job,
            Event::Started {
                prompt_ids: vec![1, 2],
                prefill_ms: 3.0,
                reused: 0,
                left_out: 0,
            },
        ));
        p.apply(reply(job, token(5, "a")));
        p.apply(reply(job, token(6, "")));
        assert_eq!(p.run.phase, OutputPhase::Running);
        p.apply(reply(job, finished("\u{FFFD}")));
        assert_eq!(p.run.phase, OutputPhase::Done);
        assert_eq!(p.run.prompt_ids, vec![1, 2]);
        let text: String = p.run.tokens.iter().map(|t| t.piece.as_str()).collect();
        assert_eq!(text, "a\u{FFFD}");
        assert_eq!(p.run.finish, Some(StopReason::Length));
        // Tokens after the end of the job are stale.
        p.apply(reply(job, token(7, "b")));
        assert_eq!(p.run.tokens.len(), 2);
    }

    /// Clear cache (or Remove of this model) ends "kept in the browser cache" in the status;
    /// Remove of another model leaves it.
    #[test]
    fn a_removed_cache_entry_is_no_longer_said_to_be_kept() {
        let (mut p, _) = ready();
        assert!(p.model.message.contains("kept in the browser cache"));
        p.cache_removed(Some("another model"));
        assert!(p.model.message.contains("kept in the browser cache"));
        p.cache_removed(None);
        assert!(!p.model.message.contains("kept in the browser cache"));
        assert!(p
            .model
            .message
            .contains("since removed from the browser cache"));
        assert!(!p.model.loaded.as_ref().unwrap().cached_now);
    }

    /// Chat's Clear forgets the conversation's reply, not the entropy lab's or a score's.
    #[test]
    fn clearing_the_chat_keeps_the_other_activities() {
        let (mut p, _) = ready();
        let chat = GenerateRequest {
            messages: vec![crate::engine::chat::Message::user("hi")],
            ..GenerateRequest::default()
        };
        let job = job_of(&p.start_chat(Ok(chat)));
        p.apply(reply(job, token(1, "x")));
        p.apply(reply(job, finished("")));
        p.score.message = "Scored 3 tokens.".into();
        p.lab.message = "compared".into();
        p.clear_chat();
        assert_eq!(p.chat.phase, OutputPhase::Idle);
        assert!(p.chat.tokens.is_empty());
        assert_eq!(p.score.message, "Scored 3 tokens.");
        assert_eq!(p.lab.message, "compared");
        p.apply(reply(job, token(2, "late")));
        assert!(p.chat.tokens.is_empty(), "a late reply of the cleared chat");
    }

    #[test]
    fn a_cleared_run_ignores_its_late_replies_and_a_new_run_is_unharmed() {
        let (mut p, _) = ready();
        let old = run(&mut p);
        p.apply(reply(old, token(1, "x")));
        p.clear_output();
        assert_eq!(p.run.phase, OutputPhase::Idle);
        // The worker refuses new work until it has ended the forgotten job, so the pane stays
        // busy (Run off, Stop on) instead of sending a request to be refused.
        assert!(p.is_running() && p.is_busy());
        assert!(p.start_run(Ok(GenerateRequest::default())).is_none());
        assert_eq!(p.stop(), vec![ToWorker::Stop { job: old }]);
        p.apply(reply(old, token(2, "late")));
        assert!(p.run.tokens.is_empty());
        assert!(p.is_running());
        p.apply(reply(old, finished("")));
        assert!(!p.is_running());
        let new = run(&mut p);
        assert_ne!(old, new);
        p.apply(reply(old, token(2, "later")));
        assert_eq!(p.run.phase, OutputPhase::Running);
        assert!(p.run.tokens.is_empty());
        p.apply(reply(new, token(3, "y")));
        p.apply(reply(new, finished("")));
        assert_eq!(p.run.tokens.len(), 1);
        assert_eq!(p.run.phase, OutputPhase::Done);
    }

    #[test]
    fn replies_for_no_job_change_nothing() {
        let (mut p, load) = ready();
        let before = p.clone();
        for msg in [
            reply(load + 100, token(1, "x")),
            reply(load + 100, failed("nobody asked")),
            reply(load, failed("the load is long over")),
            FromWorker::Ready {
                build: String::new(),
                kernels: String::new(),
                dot: None,
            },
        ] {
            assert!(p.apply(msg).is_empty());
        }
        assert_eq!(p, before);
    }

    #[test]
    fn each_failure_lands_on_its_own_job() {
        // A load.
        let mut p = PaneModel::default();
        let load = job_of(&p.load(url(), "M"));
        p.apply(reply(load, failed("not a GGUF file")));
        assert_eq!(p.model.phase, ModelPhase::Error);
        assert_eq!(p.model.message, "Could not load M: not a GGUF file");
        assert_eq!(p.run.phase, OutputPhase::Idle);

        // A run: the model stays loaded.
        let (mut p, _) = ready();
        let job = run(&mut p);
        p.apply(reply(job, failed("the prompt is empty")));
        assert_eq!(p.run.phase, OutputPhase::Error);
        assert_eq!(p.run.message, "The prompt is empty");
        assert!(p.is_ready());

        // A score, refused by a worker still busy with a generation the page lost track of:
        // the failure is the score's, not the run's.
        let (mut p, _) = ready();
        let gen = run(&mut p);
        p.apply(reply(gen, finished("")));
        let score = job_of(&p.start_score("some text"));
        p.apply(reply(score, failed("this pane is busy; stop it first")));
        assert_eq!(p.score.phase, OutputPhase::Error);
        assert_eq!(p.run.phase, OutputPhase::Done);

        // A threads change the worker could only partly make: its own answer, no job fails.
        let (mut p, _) = ready();
        let job = run(&mut p);
        p.apply(FromWorker::Threads {
            active: 1,
            max: 4,
            note: Some("could not start helper thread 1".into()),
        });
        assert_eq!(p.threads, Some(1));
        assert!(p.threads_note.is_some());
        assert_eq!(p.run.phase, OutputPhase::Running);
        p.apply(reply(job, token(1, "a")));
        assert_eq!(p.run.tokens.len(), 1);

        // A lab and a Binoculars job.
        let (mut p, _) = ready();
        // An empty lab text is named as such, whatever the Generate prompt is.
        let none = p.start_lab("", 1, Err("Type a prompt first.".into()));
        assert!(none.is_none());
        assert!(
            p.lab.message.contains("Paste or type a text to compare"),
            "{}",
            p.lab.message
        );
        let lab = job_of(&p.start_lab("One. Two.", 1, Ok(GenerateRequest::default())));
        p.apply(reply(lab, failed("stopped")));
        assert_eq!(p.lab.phase, OutputPhase::Error);
        assert_eq!(p.lab.message, "Human vs model: stopped");
        let ToWorker::Job { job: bino, .. } = p.request_distributions("text") else {
            panic!()
        };
        p.apply(reply(bino, failed("too long")));
        assert_eq!(p.bino.phase, OutputPhase::Error);
        assert_eq!(p.lab.phase, OutputPhase::Error);
    }

    #[test]
    fn a_crash_ends_every_job_of_the_pane() {
        let (mut p, _) = ready();
        let job = run(&mut p);
        p.apply(reply(job, token(1, "a")));
        let effects = p.apply(FromWorker::Crashed {
            message: "the model worker crashed: boom".into(),
        });
        assert_eq!(effects, vec![Effect::DropWorker]);
        assert_eq!(p.run.phase, OutputPhase::Error);
        assert_eq!(p.model.phase, ModelPhase::Error);
        assert!(p.model.message.contains("Load the model again"));
        assert!(!p.is_busy());
        // Nothing of the dead worker's can come back to life.
        p.apply(reply(job, token(2, "b")));
        assert_eq!(p.run.tokens.len(), 1);
        // A crash during a load ends the load.
        let mut p = PaneModel::default();
        p.load(url(), "M");
        p.apply(FromWorker::Crashed {
            message: "crashed".into(),
        });
        assert_eq!(p.model.phase, ModelPhase::Error);
        assert!(!p.is_busy());
    }

    #[test]
    fn a_lost_request_fails_its_job_instead_of_running_for_ever() {
        let (mut p, _) = ready();
        let job = run(&mut p);
        p.send_failed(job, "could not send to the worker: DataCloneError");
        assert_eq!(p.run.phase, OutputPhase::Error);
        assert!(!p.is_running());
        let mut p = PaneModel::default();
        let load = job_of(&p.load(url(), "M"));
        p.send_failed(load, "no worker");
        assert_eq!(p.model.phase, ModelPhase::Error);
        let (mut p, _) = ready();
        run(&mut p);
        p.worker_lost("the model worker did not start within 60 s");
        assert_eq!(p.run.phase, OutputPhase::Error);
        assert_eq!(p.model.phase, ModelPhase::Error);
    }

    #[test]
    fn busy_panes_refuse_new_work_and_idle_ones_say_why_not() {
        let mut p = PaneModel::default();
        assert!(p.start_run(Ok(GenerateRequest::default())).is_none());
        assert_eq!(p.run.message, "Load a model first.");
        assert!(p.start_score("x").is_none());
        assert_eq!(p.score.message, "Load a model first.");
        // A load under way is not "no model".
        p.load(url(), "M");
        assert!(p.start_score("x").is_none());
        assert_eq!(
            p.score.message,
            "M is still loading: try again when it is ready."
        );
        let (mut p, _) = ready();
        assert!(p.start_score("").is_none());
        assert_eq!(p.score.phase, OutputPhase::Error);
        // White space alone is text to measure, as the command line takes it.
        let (mut q, _) = ready();
        assert!(q.start_score(" \n").is_some());
        assert!(p
            .start_run(Err("max tokens must be at least 1".into()))
            .is_none());
        assert_eq!(p.run.message, "max tokens must be at least 1");
        run(&mut p);
        assert!(p.start_score("text").is_none());
        assert!(p.load(url(), "M").is_none());
        assert_eq!(p.stop().len(), 1);
    }

    #[test]
    fn score_lab_and_binoculars_results_land() {
        let (mut p, _) = ready();
        let s = job_of(&p.start_score("abc"));
        let summary = Summary::default();
        p.apply(reply(
            s,
            Event::Scored(ScoredText::new(
                "a".into(),
                vec![Token::default()],
                summary,
                1.0,
            )),
        ));
        assert_eq!(p.score.phase, OutputPhase::Done);
        assert_eq!(p.score.prefix, "a");
        assert_eq!(p.score.tokens.len(), 1);
        assert!(!p.score.message.contains("windows"), "{}", p.score.message);
        // Past the model's 64 positions the worker scored in windows of 64, and says so.
        let s = job_of(&p.start_score("abc"));
        p.apply(reply(
            s,
            Event::Scored(ScoredText::new(
                "a".into(),
                vec![Token::default(); 100],
                Summary::default(),
                1.0,
            )),
        ));
        assert!(
            p.score.message.contains("in windows of 64 tokens"),
            "{}",
            p.score.message
        );
        // It says when it no longer measures what the page holds.
        let (id, label) = (p.model.identity(), p.model.label.clone());
        assert_eq!(p.score.stale_score(&id, &label, "abc"), None);
        assert!(p
            .score
            .stale_score(&id, &label, "abcd")
            .unwrap()
            .contains("earlier text"));
        let other = p.score.stale_score("x:y", "Gemma 3", "abc").unwrap();
        assert!(other.contains("; Gemma 3 is loaded now"), "{other}");
        let ToWorker::Job { job: obs, .. } = p.request_distributions("abc") else {
            panic!()
        };
        let effects = p.apply(reply(
            obs,
            Event::Distributions {
                ids: vec![1, 2],
                vocab_fingerprint: "f".into(),
            },
        ));
        assert_eq!(effects, vec![Effect::KeepRows(vec![1, 2])]);
        let observer = BinoObserver {
            pane: 7,
            model: "Observer".into(),
            performer_model: "Performer".into(),
        };
        let ToWorker::Job { job: perf, .. } = p.send_binoculars(vec![1, 2], observer.clone())
        else {
            panic!()
        };
        let r = BinocularsResult {
            score: 0.9,
            log_ppl: 2.0,
            log_x_ppl: 2.2,
            tokens: 1,
        };
        p.apply(reply(perf, Event::Binoculars(r)));
        assert_eq!(p.bino.result, Some(r));
        assert_eq!(p.bino.observer, Some(observer));
        let lab = job_of(&p.start_lab("One. Two.", 1, Ok(GenerateRequest::default())));
        p.apply(reply(lab, Event::LabProgress { done: 1, total: 2 }));
        assert!(p.lab.message.contains("1 of 2"));
        // The wrong kind of answer for a job is shown as an error, not left running.
        p.apply(reply(lab, finished("")));
        assert_eq!(p.lab.phase, OutputPhase::Error);
        // A result is kept across a reload, with its line.
        let lab = job_of(&p.start_lab("One. Two.", 1, Ok(GenerateRequest::default())));
        let scored = |n: usize| {
            ScoredText::new(
                String::new(),
                vec![Token::default(); n],
                Summary::default(),
                1.0,
            )
        };
        let res = HumanVsModelResult {
            prompt: "One.".into(),
            prompt_tokens: 2,
            human: scored(3),
            model: scored(4),
            human_total: 3,
        };
        p.apply(reply(lab, Event::HumanVsModel(res.clone())));
        assert_eq!(p.lab.phase, OutputPhase::Done);
        let mut q = PaneModel::default();
        q.restore_output(p.saved_output().unwrap());
        assert_eq!(q.lab.result, Some(res.clone()));
        assert_eq!(q.lab.phase, OutputPhase::Done);
        assert_eq!(
            q.lab.message,
            "Prompt: the first 2 tokens; compared 3 human tokens with 4 model tokens."
        );
        assert_eq!(q.lab.message, p.lab.message);
        // A human text longer than is compared says so.
        let long = HumanVsModelResult {
            human_total: 900,
            ..res.clone()
        };
        assert_eq!(
            lab_message(&long),
            "Prompt: the first 2 tokens; compared the first 3 of the human text's 900 tokens \
             (at most 256 are compared) with 4 model tokens."
        );
        // A next run that is refused, fails or is stopped leaves this result shown, and says
        // it is the previous one.
        let (mut idle, _) = ready();
        idle.restore_output(p.saved_output().unwrap());
        idle.model = ModelState::default();
        assert!(idle
            .start_lab("One. Two.", 1, Ok(GenerateRequest::default()))
            .is_none());
        assert_eq!(idle.lab.result.as_ref(), Some(&res));
        assert!(idle
            .lab
            .message
            .ends_with("The result below is the previous one."));
        let again = job_of(&p.start_lab("One. Two.", 1, Ok(GenerateRequest::default())));
        assert_eq!(p.lab.result, None, "not shown as the new run's");
        p.apply(reply(again, failed("stopped")));
        assert_eq!(p.lab.result.as_ref(), Some(&res));
        assert_eq!(
            p.lab.message,
            "Human vs model: stopped. The result below is the previous one."
        );
    }

    #[test]
    fn an_evaluation_streams_results_and_a_stop_keeps_them_as_partial() {
        use crate::eval::{Condition, ItemResult};
        let (mut p, _) = ready();
        assert!(p.start_eval(vec![], vec![Condition::default()]).is_none());
        assert_eq!(p.eval.phase, OutputPhase::Error);
        let items = crate::eval::tasks::TaskSpec::new(crate::eval::tasks::Task::NameIndex, 3, 1)
            .generate()
            .unwrap();
        let job = job_of(&p.start_eval(items, vec![Condition::default()]));
        assert_eq!(p.eval.total, 3);
        let result = |index| ItemResult {
            index,
            answer: 0,
            loglik: vec![-1.0, -2.0],
            tokens: vec![1, 1],
            pred: 0,
            pred_norm: 0,
            correct: true,
            correct_norm: true,
            forward_tokens: 3,
            forward_tokens_without_sharing: 4,
            output: None,
        };
        p.apply(reply(
            job,
            Event::EvalItem {
                condition: "baseline".into(),
                result: result(0),
            },
        ));
        assert!(p.is_running());
        assert_eq!(p.stop(), vec![ToWorker::Stop { job }]);
        p.apply(reply(job, Event::EvalDone { stopped: true }));
        assert_eq!(p.eval.phase, OutputPhase::Done);
        assert!(p.eval.stopped);
        assert_eq!(p.eval.results.len(), 1);
        assert_eq!(p.eval.message, "Stopped: 1 of 3 scored.");
    }

    /// Work waiting for its model says so where its output will be, and what ended it there.
    #[test]
    fn work_waiting_for_the_model_says_so_in_its_own_output() {
        let mut p = PaneModel::default();
        p.waiting_for_model("M", Awaiting::Score);
        assert_eq!(
            p.score.message,
            "Loading M first; scoring starts as soon as it is ready."
        );
        assert!(p.run.message.is_empty() && p.chat.message.is_empty());
        p.waiting_for_model("M", Awaiting::Chat);
        assert_eq!(
            p.chat.message,
            "Loading M first; the reply starts as soon as it is ready."
        );
        p.waiting_for_model("M", Awaiting::Lab);
        assert!(p.lab.message.starts_with("Loading M first"));
        p.awaited_ended(Awaiting::Chat, "gone");
        assert_eq!(p.chat.message, "gone");
        assert!(p.score.message.starts_with("Loading M first"));
        p.waiting_for_model("M", Awaiting::Run);
        assert_eq!(
            p.run.message,
            "Loading M first; the run starts as soon as it is ready."
        );
    }
}
