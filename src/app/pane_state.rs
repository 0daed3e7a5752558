//! One pane's state and what it does: load a model, run, stop, and apply the worker's replies.
//! All fields are arena handles, so a `Pane` is `Copy` and moves freely into view closures.

use leptos::prelude::*;

use super::browser;
use super::worker_client::WorkerClient;
use crate::protocol::{
    FinishReason, FromWorker, LoadProgress, LoadedModel, Timing, ToWorker, TokenEvent,
};
use crate::ui::catalog::{local_cache_key, CatalogModel};
use crate::ui::settings::PaneSettings;

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
}

#[derive(Clone, Copy)]
pub struct Pane {
    pub index: usize,
    pub settings: RwSignal<PaneSettings>,
    pub model: RwSignal<ModelState>,
    pub run: RwSignal<RunState>,
    /// The token under the pointer or keyboard focus, for the inspector.
    pub hovered: RwSignal<Option<usize>>,
    worker: StoredValue<Option<WorkerClient>, LocalStorage>,
}

impl Pane {
    pub fn new(index: usize, settings: PaneSettings) -> Self {
        Pane {
            index,
            settings: RwSignal::new(settings),
            model: RwSignal::new(ModelState::default()),
            run: RwSignal::new(RunState::default()),
            hovered: RwSignal::new(None),
            worker: StoredValue::new_local(None),
        }
    }

    pub fn is_busy(&self) -> bool {
        self.model.with(|m| m.phase == ModelPhase::Loading)
            || self.run.with(|r| r.phase == OutputPhase::Running)
    }

    fn with_worker(&self, f: impl FnOnce(&WorkerClient)) {
        let pane = *self;
        if self.worker.with_value(|w| w.is_none()) {
            match WorkerClient::spawn(move |msg| pane.apply(msg)) {
                Ok(client) => self.worker.set_value(Some(client)),
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

    fn start_loading(&self, what: &str) {
        self.hovered.set(None);
        self.model.set(ModelState {
            phase: ModelPhase::Loading,
            message: format!("Loading {what}…"),
            loaded: None,
            progress: None,
        });
    }

    pub fn load_catalog(&self, m: &CatalogModel) {
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
        self.settings.update(|s| s.model_id.clear());
        self.start_loading(label);
        let msg = ToWorker::LoadUrl {
            url: url.to_string(),
            label: label.to_string(),
        };
        self.with_worker(|w| w.send(&msg));
    }

    pub fn load_file(&self, file: web_sys::File) {
        let name = file.name();
        self.settings.update(|s| s.model_id.clear());
        self.start_loading(&name);
        let msg = ToWorker::LoadFile {
            cache_key: browser::absolute(&local_cache_key(&name, file.size() as u64)),
            name,
        };
        self.with_worker(|w| w.send_with_file(&msg, &file));
    }

    pub fn start_run(&self, prompt: &str) {
        if self.model.with_untracked(|m| m.phase != ModelPhase::Ready) {
            self.fail_run("Load a model first.".into());
            return;
        }
        if self.run.with_untracked(|r| r.phase == OutputPhase::Running) {
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

    pub fn stop(&self) {
        if self.run.with_untracked(|r| r.phase == OutputPhase::Running) {
            self.with_worker(|w| w.send(&ToWorker::Stop));
        }
    }

    fn fail_run(&self, message: String) {
        self.run.update(|r| {
            r.phase = OutputPhase::Error;
            r.message = message;
        });
    }

    /// Applies one reply from the worker.
    pub fn apply(&self, msg: FromWorker) {
        match msg {
            FromWorker::Ready => {}
            FromWorker::Progress(p) => self.model.update(|m| m.progress = Some(p)),
            FromWorker::Loaded(l) => self.model.update(|m| {
                m.phase = ModelPhase::Ready;
                m.message = format!(
                    "{} ready · {} · loaded in {}{}",
                    l.label,
                    crate::ui::format::bytes(l.bytes),
                    crate::ui::format::duration_ms(l.read_ms + l.build_ms),
                    if l.from_cache {
                        " from the browser cache"
                    } else if l.cached_now {
                        " · kept in the browser cache"
                    } else {
                        ""
                    }
                );
                m.loaded = Some(l);
            }),
            FromWorker::LoadFailed { message } => self.model.update(|m| {
                m.phase = ModelPhase::Error;
                m.message = format!("Could not load the model: {message}");
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
            FromWorker::Failed { message } => {
                if self.run.with_untracked(|r| r.phase == OutputPhase::Running) {
                    self.fail_run(message);
                } else if self
                    .model
                    .with_untracked(|m| m.phase == ModelPhase::Loading)
                {
                    self.model.update(|m| {
                        m.phase = ModelPhase::Error;
                        m.message = message;
                    });
                } else {
                    self.fail_run(message);
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
                self.run.update(|r| {
                    if r.phase == OutputPhase::Running {
                        r.phase = OutputPhase::Error;
                        r.message = "The worker stopped during generation.".into();
                    }
                });
            }
        }
    }
}
