//! One pane's state and what it does: load a model, run, stop, and apply the worker's replies.
//! All fields are arena handles, so a `Pane` is `Copy` and moves freely into view closures.

use leptos::prelude::*;

use super::browser;
use super::worker_client::WorkerClient;
use crate::engine::Summary;
use crate::protocol::{
    BinocularsResult, FinishReason, FromWorker, HumanVsModelResult, LoadProgress, LoadedModel,
    Timing, ToWorker, TokenEvent,
};
use crate::ui::catalog::{local_cache_key, CatalogModel};
use crate::ui::settings::{Mode, PaneSettings};

/// Tokens of context a scored text gets at most (longer texts are scored in half-overlapping
/// windows of this size).
pub const SCORE_WINDOW: usize = 1024;

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunState {
    pub phase: OutputPhase,
    /// Bumped per run so token views from an old run are never reused for a new one.
    pub run_id: u64,
    pub prompt_ids: Vec<u32>,
    pub tokens: Vec<TokenEvent>,
    pub timing: Option<Timing>,
    pub finish: Option<FinishReason>,
    pub message: String,
    /// Score mode: text that was context only (shown unscored before the tokens).
    pub prefix: String,
    /// Score mode: the engine's summary, with Fast-DetectGPT.
    pub summary: Option<Summary>,
}

/// The entropy lab's human-vs-model run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabState {
    pub phase: OutputPhase,
    pub message: String,
    pub result: Option<HumanVsModelResult>,
}

/// This pane's part in a Binoculars run (observer or performer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BinoState {
    pub phase: OutputPhase,
    pub message: String,
    pub result: Option<BinocularsResult>,
}

#[derive(Clone, Copy)]
pub struct Pane {
    /// Stable identity (keys, not position: panes can be removed).
    pub id: usize,
    pub settings: RwSignal<PaneSettings>,
    pub model: RwSignal<ModelState>,
    pub run: RwSignal<RunState>,
    pub score: RwSignal<RunState>,
    pub lab: RwSignal<LabState>,
    pub bino: RwSignal<BinoState>,
    /// Observer rows waiting to go to the performer: the ids and the transferred buffer.
    pub rows: StoredValue<Option<(Vec<u32>, wasm_bindgen::JsValue)>, LocalStorage>,
    /// Set once the pane is removed: no worker may start for it again.
    closed: StoredValue<bool>,
    /// Replies of a run the user cleared while it was still going are dropped until its last.
    discard: StoredValue<bool>,
    mode: RwSignal<Mode>,
    /// The token under the pointer or keyboard focus, for the inspector.
    pub hovered: RwSignal<Option<usize>>,
    /// Threads the worker's products use, once it has said.
    pub threads: RwSignal<Option<usize>>,
    worker: StoredValue<Option<WorkerClient>, LocalStorage>,
}

impl Pane {
    pub fn new(id: usize, settings: PaneSettings, mode: RwSignal<Mode>) -> Self {
        Pane {
            id,
            settings: RwSignal::new(settings),
            model: RwSignal::new(ModelState::default()),
            run: RwSignal::new(RunState::default()),
            score: RwSignal::new(RunState::default()),
            lab: RwSignal::new(LabState::default()),
            bino: RwSignal::new(BinoState::default()),
            rows: StoredValue::new_local(None),
            closed: StoredValue::new(false),
            discard: StoredValue::new(false),
            mode,
            hovered: RwSignal::new(None),
            threads: RwSignal::new(None),
            worker: StoredValue::new_local(None),
        }
    }

    /// The run the page shows: the generation, or the scored text in score mode.
    pub fn shown(&self) -> RwSignal<RunState> {
        if self.mode.get() == Mode::Score {
            self.score
        } else {
            self.run
        }
    }

    /// [`Pane::shown`] without subscribing to the mode.
    pub fn shown_untracked(&self) -> RwSignal<RunState> {
        if self.mode.get_untracked() == Mode::Score {
            self.score
        } else {
            self.run
        }
    }

    pub fn is_running(&self) -> bool {
        self.run.with(|r| r.phase == OutputPhase::Running)
            || self.score.with(|r| r.phase == OutputPhase::Running)
            || self.lab.with(|r| r.phase == OutputPhase::Running)
            || self.bino.with(|r| r.phase == OutputPhase::Running)
    }

    pub fn is_busy(&self) -> bool {
        self.model.with(|m| m.phase == ModelPhase::Loading) || self.is_running()
    }

    pub fn is_ready(&self) -> bool {
        self.model.with(|m| m.phase == ModelPhase::Ready)
    }

    /// Ends the pane's worker (the pane is being removed).
    pub fn shut_down(&self) {
        self.closed.set_value(true);
        self.worker.set_value(None);
        self.rows.set_value(None);
    }

    fn with_worker(&self, f: impl FnOnce(&WorkerClient)) {
        let pane = *self;
        if self.closed.get_value() {
            return;
        }
        if self.worker.with_value(|w| w.is_none()) {
            match WorkerClient::spawn(move |msg, data| pane.apply(msg, data)) {
                Ok(client) => {
                    client.send(&super::threads::request());
                    self.worker.set_value(Some(client));
                }
                Err(message) => {
                    self.model.update(|m| {
                        m.phase = ModelPhase::Error;
                        m.message = message;
                    });
                    return;
                }
            }
        }
        self.worker.with_value(|w| {
            if let Some(w) = w {
                f(w)
            }
        });
    }

    /// Passes the page's thread count to a running worker (a new one gets it at start).
    pub fn send_threads(&self) {
        self.worker.with_value(|w| {
            if let Some(w) = w {
                w.send(&super::threads::request());
            }
        });
    }

    fn start_loading(&self, what: &str) {
        self.hovered.set(None);
        self.model.set(ModelState {
            phase: ModelPhase::Loading,
            label: what.to_string(),
            message: format!("Loading {what}…"),
            loaded: None,
            progress: None,
        });
    }

    pub fn load_catalog(&self, m: &CatalogModel) {
        // The worker refuses a load while busy; the pickers are locked then too.
        if self.is_busy() {
            return;
        }
        self.settings.update(|s| s.model_id = m.id.clone());
        self.start_loading(&m.name);
        let msg = ToWorker::LoadUrl {
            url: browser::absolute(&m.url()),
            label: m.name.clone(),
        };
        self.with_worker(|w| w.send(&msg));
    }

    /// Loads a model the browser cache holds (a local file kept from an earlier visit).
    pub fn load_cached(&self, url: &str, label: &str) {
        // The worker refuses a load while busy; the pickers are locked then too.
        if self.is_busy() {
            return;
        }
        self.settings.update(|s| s.model_id.clear());
        self.start_loading(label);
        let msg = ToWorker::LoadUrl {
            url: url.to_string(),
            label: label.to_string(),
        };
        self.with_worker(|w| w.send(&msg));
    }

    pub fn load_file(&self, file: web_sys::File) {
        if self.is_busy() {
            return;
        }
        let name = file.name();
        self.settings.update(|s| s.model_id.clear());
        self.start_loading(&name);
        let msg = ToWorker::LoadFile {
            cache_key: browser::absolute(&local_cache_key(
                &name,
                file.size() as u64,
                file.last_modified() as u64,
            )),
            name,
        };
        self.with_worker(|w| w.send_with_file(&msg, &file));
    }

    pub fn start_run(&self, prompt: &str) {
        if self.model.with_untracked(|m| m.phase != ModelPhase::Ready) {
            self.fail_run("Load a model first.".into());
            return;
        }
        if self.is_running() {
            return;
        }
        let request = match self.settings.with_untracked(|s| s.request(prompt)) {
            Ok(r) => r,
            Err(message) => return self.fail_run(message),
        };
        self.hovered.set(None);
        self.run.update(|r| {
            *r = RunState {
                phase: OutputPhase::Running,
                run_id: r.run_id + 1,
                message: "Reading the prompt…".into(),
                ..RunState::default()
            }
        });
        self.with_worker(|w| w.send(&ToWorker::Generate { request }));
    }

    pub fn start_score(&self, text: &str) {
        let fail = |message: &str| {
            self.score.update(|r| {
                r.phase = OutputPhase::Error;
                r.message = message.to_string();
            })
        };
        if self.model.with_untracked(|m| m.phase != ModelPhase::Ready) {
            return fail("Load a model first.");
        }
        if self.is_running() {
            return;
        }
        if text.trim().is_empty() {
            return fail("Paste or type a text to score first.");
        }
        self.hovered.set(None);
        self.score.update(|r| {
            *r = RunState {
                phase: OutputPhase::Running,
                run_id: r.run_id + 1,
                message: "Scoring…".into(),
                ..RunState::default()
            }
        });
        let msg = ToWorker::Score {
            text: text.to_string(),
            window: SCORE_WINDOW,
        };
        self.with_worker(|w| w.send(&msg));
    }

    pub fn start_lab(&self, text: &str, sentences: usize) {
        let fail = |message: String| {
            self.lab.set(LabState {
                phase: OutputPhase::Error,
                message,
                result: None,
            })
        };
        if self.model.with_untracked(|m| m.phase != ModelPhase::Ready) {
            return fail("Load a model first.".into());
        }
        if self.is_running() {
            return;
        }
        let request = match self.settings.with_untracked(|s| s.request(text)) {
            Ok(r) => r,
            Err(message) => return fail(message),
        };
        self.lab.set(LabState {
            phase: OutputPhase::Running,
            message: "Writing the model's continuation…".into(),
            result: None,
        });
        let msg = ToWorker::HumanVsModel {
            text: text.to_string(),
            sentences,
            request,
        };
        self.with_worker(|w| w.send(&msg));
    }

    /// Binoculars, observer side.
    pub fn request_distributions(&self, text: &str) {
        self.rows.set_value(None);
        self.bino.set(BinoState {
            phase: OutputPhase::Running,
            message: "Observing…".into(),
            result: None,
        });
        let msg = ToWorker::Distributions {
            text: text.to_string(),
            window: SCORE_WINDOW,
        };
        self.with_worker(|w| w.send(&msg));
    }

    /// Binoculars, performer side.
    pub fn send_binoculars(&self, ids: Vec<u32>, buffer: &wasm_bindgen::JsValue) {
        self.bino.set(BinoState {
            phase: OutputPhase::Running,
            message: "Performing…".into(),
            result: None,
        });
        let msg = ToWorker::Binoculars {
            ids,
            window: SCORE_WINDOW,
        };
        self.with_worker(|w| w.send_with_buffer(&msg, buffer));
    }

    pub fn stop(&self) {
        if self.is_running() {
            self.with_worker(|w| w.send(&ToWorker::Stop));
        }
    }

    /// Forgets the pane's runs (the demo's reset).
    pub fn clear_output(&self) {
        if self.is_running() {
            // Its Token/Finished replies are still on the way; do not let them refill the pane.
            self.discard.set_value(true);
        }
        self.hovered.set(None);
        self.run.update(|r| {
            *r = RunState {
                run_id: r.run_id + 1,
                ..RunState::default()
            }
        });
        self.score.update(|r| {
            *r = RunState {
                run_id: r.run_id + 1,
                ..RunState::default()
            }
        });
        self.lab.set(LabState::default());
        self.bino.set(BinoState::default());
    }

    /// Makes the worker panic (debug builds of the page: `?debug=1`).
    pub fn crash_worker(&self) {
        self.with_worker(|w| w.send(&ToWorker::Crash));
    }

    fn fail_run(&self, message: String) {
        self.run.update(|r| {
            r.phase = OutputPhase::Error;
            r.message = message;
        });
    }

    /// Puts a failure on whichever activity was running.
    fn fail_running(&self, message: String) {
        let set = |sig: RwSignal<RunState>| {
            sig.update(|r| {
                r.phase = OutputPhase::Error;
                r.message = message.clone();
            })
        };
        if self
            .bino
            .with_untracked(|r| r.phase == OutputPhase::Running)
        {
            self.bino.update(|b| {
                b.phase = OutputPhase::Error;
                b.message = message.clone();
            });
        } else if self
            .score
            .with_untracked(|r| r.phase == OutputPhase::Running)
        {
            set(self.score);
        } else if self.lab.with_untracked(|r| r.phase == OutputPhase::Running) {
            self.lab.update(|l| {
                l.phase = OutputPhase::Error;
                l.message = format!("Human vs model: {message}");
            });
        } else {
            set(self.run);
        }
    }

    /// Applies one reply from the worker.
    pub fn apply(&self, msg: FromWorker, data: wasm_bindgen::JsValue) {
        if self.discard.get_value() {
            let last = matches!(
                msg,
                FromWorker::Finished { .. }
                    | FromWorker::Failed { .. }
                    | FromWorker::Scored(_)
                    | FromWorker::HumanVsModel(_)
                    | FromWorker::Distributions { .. }
                    | FromWorker::Binoculars(_)
            );
            if last {
                self.discard.set_value(false);
            }
            if !matches!(
                msg,
                FromWorker::Crashed { .. }
                    | FromWorker::Progress(_)
                    | FromWorker::Loaded(_)
                    | FromWorker::LoadFailed { .. }
            ) {
                return;
            }
        }
        match msg {
            FromWorker::Distributions { ids, .. } => {
                let buffer = js_sys::Reflect::get(&data, &"buffer".into()).unwrap_or_default();
                self.rows.set_value(Some((ids, buffer)));
                self.bino.set(BinoState {
                    phase: OutputPhase::Done,
                    message: "Observed.".into(),
                    result: None,
                });
            }
            FromWorker::Binoculars(r) => self.bino.set(BinoState {
                phase: OutputPhase::Done,
                message: String::new(),
                result: Some(r),
            }),
            // The page never asks for a benchmark; scripts/bench.sh talks to the worker itself.
            FromWorker::Ready | FromWorker::Bench(_) => {}
            FromWorker::Threads { active, .. } => self.threads.set(Some(active)),
            FromWorker::Progress(p) => self.model.update(|m| m.progress = Some(p)),
            FromWorker::Loaded(l) => self.model.update(|m| {
                m.phase = ModelPhase::Ready;
                m.message = format!(
                    "{} ready · {} · loaded in {}{}",
                    l.label,
                    crate::ui::format::bytes(l.bytes),
                    crate::ui::format::duration_ms(l.read_ms + l.build_ms),
                    if l.from_cache {
                        " from the browser cache".to_string()
                    } else if l.cached_now {
                        " · kept in the browser cache".to_string()
                    } else {
                        l.cache_note
                            .as_ref()
                            .map(|n| format!(" · {n}"))
                            .unwrap_or_default()
                    }
                );
                m.loaded = Some(l);
            }),
            FromWorker::LoadFailed { message } => self.model.update(|m| {
                m.phase = ModelPhase::Error;
                m.message = format!("Could not load {}: {message}", m.label);
                m.loaded = None;
            }),
            FromWorker::Started {
                prompt_ids,
                prefill_ms,
            } => self.run.update(|r| {
                r.message = format!(
                    "Prompt: {} tokens in {}",
                    prompt_ids.len(),
                    crate::ui::format::duration_ms(prefill_ms)
                );
                r.prompt_ids = prompt_ids;
            }),
            FromWorker::Token(t) => self.run.update(|r| r.tokens.push(t)),
            FromWorker::Finished { reason, timing } => self.run.update(|r| {
                r.phase = OutputPhase::Done;
                r.finish = Some(reason);
                r.timing = Some(timing);
                r.message = format!("Done: {}.", reason.describe());
            }),
            FromWorker::Scored(s) => self.score.update(|r| {
                r.phase = OutputPhase::Done;
                r.message = format!(
                    "Scored {} tokens in {}.",
                    s.tokens.len(),
                    crate::ui::format::duration_ms(s.ms)
                );
                r.prefix = s.prefix;
                r.tokens = s.tokens;
                r.summary = Some(s.summary);
            }),
            FromWorker::LabProgress { done, total } => self.lab.update(|l| {
                l.message = if done < total {
                    format!("Writing the model's continuation: {done} of {total} tokens…")
                } else {
                    "Scoring both continuations…".into()
                };
            }),
            FromWorker::HumanVsModel(res) => self.lab.set(LabState {
                phase: OutputPhase::Done,
                message: format!(
                    "Prompt: the first {} tokens; compared {} human tokens with {} model tokens.",
                    res.prompt_tokens,
                    res.human.tokens.len(),
                    res.model.tokens.len()
                ),
                result: Some(res),
            }),
            FromWorker::Failed { message } => {
                if self
                    .model
                    .with_untracked(|m| m.phase == ModelPhase::Loading)
                {
                    self.model.update(|m| {
                        m.phase = ModelPhase::Error;
                        m.message = message;
                    });
                } else {
                    self.fail_running(message);
                }
            }
            FromWorker::Crashed { message } => {
                // The worker's memory can no longer be trusted: drop it; the next load
                // starts a fresh one.
                // Dropped later: this very message may be running inside the worker's handler.
                let worker = self.worker;
                leptos::task::spawn_local(async move { worker.set_value(None) });
                self.model.update(|m| {
                    m.phase = ModelPhase::Error;
                    m.message = format!("{message}. Load the model again.");
                    m.loaded = None;
                });
                if self.is_running() {
                    self.fail_running("the worker stopped while working".into());
                }
            }
        }
    }
}
