//! The evaluation tab: choose a task (or drop an item file) and conditions, run them on every
//! loaded pane, watch the progress, and read accuracies with intervals, paired tests and one
//! sentence on what the run shows. The numbers come from `crate::eval` via each pane's worker;
//! the report (`ui::eval_report`) is kept in localStorage so a reload loses nothing.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::browser;
use super::AppState;
use crate::eval::stats::Verdict;
use crate::eval::tasks::{parse_items, Task};
use crate::eval::{Condition, Item, Order};
use crate::ui::eval_report::{EvalReport, PaneReport};
use crate::ui::pane::{ModelPhase, OutputPhase};

pub const REPORT_KEY: &str = "tinylab.eval.v1";
/// The task value that means "the item file".
const FILE_TASK: &str = "file";
const CONDITIONS: [(&str, &str); 6] = [
    ("baseline", "Baseline"),
    ("repeat-2", "Query twice"),
    ("repeat-3", "Query three times"),
    ("options-first", "Options first"),
    ("chat", "Chat template"),
    ("generate", "Generated answer"),
];

/// An item file the user chose: its name and items (it stays in this page).
#[derive(Clone, Default)]
pub struct ItemFile {
    pub name: String,
    pub items: Vec<Item>,
}

/// Starts an evaluation on every loaded pane with the same items.
/// `file_error`: why the last file chosen was refused, said again when Run finds no file
/// (rather than running something the user did not choose).
/// `queued` is set while the models the panes chose load (`load_missing`: Run loads them, as
/// Generate's Run does); the panel runs again, without loading, once none is loading.
pub fn run(
    state: AppState,
    file: Option<ItemFile>,
    file_error: Option<String>,
    message: RwSignal<String>,
    queued: RwSignal<bool>,
    load_missing: bool,
) {
    queued.set(false);
    let setup = state.eval.get_untracked();
    let (items, source) = if setup.task == FILE_TASK {
        match file {
            Some(f) => (f.items, f.name),
            None => {
                message.set(match file_error {
                    Some(e) => format!("{e} Choose a corrected file, or a built-in task."),
                    None => "Choose an item file first.".into(),
                });
                return;
            }
        }
    } else {
        match setup.items() {
            Ok(items) => (
                items,
                format!(
                    "{} · {} items · seed {}{}",
                    setup.task,
                    setup.n,
                    setup.seed,
                    if has_options(&setup.task) {
                        String::new()
                    } else {
                        format!(" · lists of {}", setup.list_len)
                    }
                ),
            ),
            Err(e) => {
                message.set(e);
                return;
            }
        }
    };
    let conditions: Vec<Condition> = setup.parsed_conditions();
    if conditions.is_empty() {
        message.set("Tick at least one condition.".into());
        return;
    }
    if !has_options(&setup.task) && conditions.iter().any(|c| c.order == Order::OptionsFirst) {
        // It would be scored and labelled, and be the baseline under another name.
        message.set(
            "\"Options first\" applies to the multiple-choice task only: these items have no \
             lettered options to move. Untick it, or choose that task."
                .into(),
        );
        return;
    }
    if load_missing {
        // A model chosen but not loaded (a first visit's default, a failed load) is loaded
        // first, and one loading is waited for: the run then has every pane the user set up.
        let hidden = state
            .arena
            .with_untracked(|a| a.active && a.voted.is_none());
        let mut waiting = Vec::new();
        for p in state.panes.get_untracked() {
            match p.model_untracked(|m| m.phase) {
                ModelPhase::Loading => waiting.push(p.model_untracked(|m| m.label.clone())),
                ModelPhase::Empty | ModelPhase::Error => {
                    if let Some(m) = state.chosen_model_untracked(p) {
                        p.load_catalog(&m);
                        waiting.push(m.name.clone());
                    }
                }
                ModelPhase::Ready => {}
            }
        }
        if !waiting.is_empty() {
            let what = if hidden {
                "the models".to_string()
            } else {
                waiting.join(", ")
            };
            message.set(format!(
                "Loading {what} first; the evaluation starts when {} ready.",
                if waiting.len() == 1 && !hidden {
                    "it is"
                } else {
                    "they are"
                }
            ));
            queued.set(true);
            return;
        }
    }
    let panes: Vec<_> = state
        .panes
        .get_untracked()
        .into_iter()
        .filter(|p| p.is_ready())
        .collect();
    let failed: Vec<String> = state
        .panes
        .get_untracked()
        .iter()
        .filter(|p| p.model_untracked(|m| m.phase == ModelPhase::Error))
        .map(|p| p.model_untracked(|m| m.label.clone()))
        .collect();
    if panes.is_empty() {
        message.set(if failed.is_empty() {
            "Choose a model in a pane first.".into()
        } else {
            format!(
                "{} could not be loaded (the pane says why), so the evaluation did not start.",
                failed.join(", ")
            )
        });
        return;
    }
    if panes.iter().any(|p| p.is_running()) {
        message.set("A pane is busy; stop it first.".into());
        return;
    }
    // A pane whose model could not be loaded is left out, and said to be.
    message.set(if failed.is_empty() {
        String::new()
    } else {
        format!(
            "{} could not be loaded (the pane says why); the evaluation runs on the other panes.",
            failed.join(", ")
        )
    });
    // The last run's report goes now: this one is saved as it runs.
    browser::local_remove(&browser::own_key(REPORT_KEY));
    let places: Vec<(usize, String)> = panes
        .iter()
        .map(|p| {
            let index = state
                .panes
                .with_untracked(|all| all.iter().position(|q| q.id == p.id))
                .unwrap_or_default();
            (index, p.label())
        })
        .collect();
    let names = crate::ui::eval_report::pane_names(&places);
    state.eval_report.set(Some(EvalReport {
        source,
        conditions: conditions.iter().map(Condition::id).collect(),
        n: items.len(),
        panes: panes
            .iter()
            .zip(places.into_iter().zip(names))
            .map(|(p, ((index, _), model))| PaneReport {
                index,
                pane_id: p.id,
                model,
                results: vec![],
            })
            .collect(),
        partial: false,
        failures: Vec::new(),
        running: true,
        saved_at_ms: 0.0,
        unsaved: false,
    }));
    state.eval_started.set_value(browser::now_ms());
    state.eval_live.set(true);
    for p in panes {
        p.start_eval(items.clone(), conditions.clone());
    }
}

/// A number box holding something that is not its kind of number: it shows the value in
/// use again, and the message says what it takes (a Run would otherwise use the old value
/// while the box showed another).
fn refuse(ev: &web_sys::Event, current: String, what: String, message: RwSignal<String>) {
    event_target::<web_sys::HtmlInputElement>(ev).set_value(&current);
    message.set(format!("{what}; kept {current}."));
}

/// A whole number typed in a box (`7`, `7.0`, `1e3`, `-3`, one too big for any integer type),
/// within `lo..=hi`: a value outside is brought in with a word (the box then shows the value
/// in use, which would otherwise change without one). `None` for what is not a whole number.
fn in_range(
    typed: &str,
    lo: usize,
    hi: usize,
    what: &str,
    message: RwSignal<String>,
) -> Option<usize> {
    let typed = typed.trim();
    let n = typed
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && n.fract() == 0.0)?;
    let kept = n.clamp(lo as f64, hi as f64) as usize;
    message.set(if kept as f64 == n {
        String::new()
    } else {
        format!("{what}: from {lo} to {hi}; {typed} became {kept}.")
    });
    Some(kept)
}

/// Whether a task's items have lettered options (so "options first" and not list length
/// applies); an item file's do not.
fn has_options(task: &str) -> bool {
    Task::from_id(task).is_some_and(Task::has_options)
}

/// Keeps the report in step with the panes while a run is live, and saves it when it ends.
/// While it runs the report is rebuilt at most once a second: every result would otherwise
/// copy all results so far and redraw every table (quadratic in a run of thousands).
pub fn follow_panes(state: AppState) {
    const SAVE_EVERY_MS: f64 = 5000.0;
    save_when_the_page_goes(state);
    let last_rebuild = StoredValue::new(f64::NEG_INFINITY);
    let last_save = StoredValue::new(f64::NEG_INFINITY);
    let last_still = StoredValue::new(usize::MAX);
    Effect::new(move |_| {
        if !state.eval_live.get() {
            return;
        }
        let panes = state.panes.get();
        let Some(mut report) = state.eval_report.get_untracked() else {
            return;
        };
        // Read every pane's phase first: that is what this effect follows.
        let ours = |p: &&super::pane_state::Pane| report.panes.iter().any(|r| r.pane_id == p.id);
        let still = panes
            .iter()
            .filter(ours)
            .filter(|p| p.eval(|e| e.phase == OutputPhase::Running))
            .count();
        let running = still > 0;
        let now = browser::now_ms();
        // A pane that has just finished is copied at once, not up to a second later: it may
        // be removed before then, and its last items would be lost.
        if running && now - last_rebuild.get_value() < 1000.0 && still == last_still.get_value() {
            return;
        }
        last_rebuild.set_value(now);
        last_still.set_value(still);
        let mut partial = false;
        let mut failures = Vec::new();
        for pr in &mut report.panes {
            if let Some(p) = panes.iter().find(|p| p.id == pr.pane_id) {
                p.eval(|e| {
                    pr.results = e.results.clone();
                    partial |= e.stopped || e.phase == OutputPhase::Error;
                    if e.phase == OutputPhase::Error {
                        failures.push(format!("{}: {}", pr.model, e.message));
                    }
                });
            } else if pr.results.len() < report.n * report.conditions.len() {
                // Removed before it finished: what it scored (up to the last rebuild) stays,
                // and the run says it is short.
                partial = true;
                failures.push(format!(
                    "{}: its pane was removed before the run finished",
                    pr.model
                ));
            }
        }
        report.partial = partial;
        report.failures = failures;
        report.running = running;
        // Saved while it runs too (every few seconds: a long run's report is megabytes of
        // JSON), so a reload keeps what was scored and says the run was cut off. A report the
        // storage cannot hold is removed, so that an older one never comes back as this one.
        if !running || now - last_save.get_value() >= SAVE_EVERY_MS {
            last_save.set_value(now);
            report.saved_at_ms = js_sys::Date::now();
            let json = serde_json::to_string(&report).unwrap_or_default();
            report.unsaved = !browser::local_set(&browser::own_key(REPORT_KEY), &json);
            if report.unsaved {
                browser::local_remove(&browser::own_key(REPORT_KEY));
            }
        }
        if !running {
            state.eval_live.set(false);
        }
        state.eval_report.set(Some(report));
    });
}

/// Between the saves every few seconds, a reload lost what the last seconds scored (all of it
/// in a run's first seconds, and the report then said nothing was scored): a live run's results
/// are saved once more as the page goes (`pagehide`, which a reload and a closed tab fire).
fn save_when_the_page_goes(state: AppState) {
    use wasm_bindgen::prelude::*;
    let Some(window) = web_sys::window() else {
        return;
    };
    let save = Closure::<dyn FnMut()>::new(move || {
        if !state.eval_live.get_untracked() {
            return;
        }
        let Some(mut report) = state.eval_report.get_untracked() else {
            return;
        };
        let panes = state.panes.get_untracked();
        for pr in &mut report.panes {
            if let Some(p) = panes.iter().find(|p| p.id == pr.pane_id) {
                p.state
                    .with_untracked(|s| pr.results = s.eval.results.clone());
            }
        }
        // The page goes, and its run with it: saved as cut off, so that a page opening next
        // does not take it for a run still going in another tab.
        report.saved_at_ms = js_sys::Date::now();
        let json = serde_json::to_string(&report.interrupted()).unwrap_or_default();
        if !browser::local_set(&browser::own_key(REPORT_KEY), &json) {
            browser::local_remove(&browser::own_key(REPORT_KEY));
        }
    });
    let _ = window.add_event_listener_with_callback("pagehide", save.as_ref().unchecked_ref());
    // Listens for the page's lifetime.
    save.forget();
}

#[component]
pub fn EvalPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let (file, file_error) = (state.eval_file, state.eval_file_error);
    let message = RwSignal::new(String::new());
    let running = move || state.eval_live.get();
    // Run pressed while the panes' models load: it goes once none is loading.
    let queued = RwSignal::new(false);
    Effect::new(move |_| {
        if !queued.get() {
            return;
        }
        let loading = state.panes.with(|ps| {
            ps.iter()
                .any(|p| p.model(|m| m.phase == ModelPhase::Loading))
        });
        if !loading {
            run(
                state,
                file.get_untracked(),
                file_error.get_untracked(),
                message,
                queued,
                false,
            );
        }
    });
    let set = move |f: Box<dyn FnOnce(&mut crate::ui::settings::EvalSetup)>| {
        state.eval.update(|e| f(e));
    };
    // Reads are asynchronous: a large file chosen first may finish after a small one chosen
    // next, and must not replace it.
    let picks = StoredValue::new(0u64);
    // The file stays the chosen source, unread: Run then repeats why instead of quietly
    // running a built-in task.
    let unread = move |why: String| {
        message.set(why.clone());
        file.set(None);
        file_error.set(Some(why));
        state.eval.update(|e| e.task = FILE_TASK.into());
    };
    let load_file = move |f: web_sys::File| {
        picks.update_value(|n| *n += 1);
        let pick = picks.get_value();
        spawn_local(async move {
            let name = f.name();
            let max = crate::eval::tasks::MAX_ITEM_FILE_BYTES;
            let text = if f.size() as u64 > max {
                Err(format!("item files may have at most {} MB", max >> 20))
            } else {
                browser::file_bytes(&f)
                    .await
                    .and_then(crate::eval::tasks::item_file_text)
            };
            if picks.get_value() != pick {
                return;
            }
            match text.and_then(|t| parse_items(&t)) {
                Ok(items) => {
                    let warnings = crate::eval::tasks::item_warnings(&items);
                    let warned = if warnings.is_empty() {
                        String::new()
                    } else {
                        format!(" Read, but: {}.", warnings.join("; "))
                    };
                    message.set(format!(
                        "{name}: {}.{warned}",
                        crate::ui::format::count(items.len(), "item", "items")
                    ));
                    file.set(Some(ItemFile { name, items }));
                    file_error.set(None);
                    state.eval.update(|e| e.task = FILE_TASK.into());
                }
                Err(e) => unread(format!("{name} was not read: {e}.")),
            }
        });
    };
    let condition_box = move |(id, label): (&'static str, &'static str)| {
        view! {
            <label class="check">
                <input
                    type="checkbox"
                    data-testid="eval-condition"
                    value=id
                    prop:checked=move || state.eval.with(|e| e.conditions.iter().any(|c| c == id))
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        state.eval.update(|e| {
                            e.conditions.retain(|c| c != id);
                            if on {
                                e.conditions.push(id.to_string());
                            }
                        });
                    }
                />
                {label}
            </label>
        }
    };
    view! {
        <section
            class="eval"
            data-testid="eval-panel"
            on:dragover=move |ev: web_sys::DragEvent| ev.prevent_default()
            on:drop=move |ev: web_sys::DragEvent| {
                ev.prevent_default();
                // Kiosk mode takes no files, dropped or chosen.
                if state.demo {
                    return;
                }
                if let Some(f) = super::model_loader::dropped_file(&ev) {
                    if super::model_loader::dropped_folder(&ev) {
                        // Also ends a slower read of a file picked before.
                        picks.update_value(|n| *n += 1);
                        unread(super::model_loader::folder_note(&f.name(), "the item file (.jsonl or .json)"));
                    } else {
                        load_file(f);
                    }
                }
            }
        >
            <div class="eval-setup">
                <label>
                    "Task "
                    <select
                        data-testid="eval-task"
                        prop:value=move || state.eval.with(|e| e.task.clone())
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            // Middle match needs longer lists than name index's five.
                            set(Box::new(move |e| {
                                e.task = v;
                                e.fit_list_to_task();
                            }));
                        }
                    >
                        {Task::ALL
                            .into_iter()
                            .map(|t| view! { <option value=t.id()>{t.describe()}</option> })
                            .collect_view()}
                        <option value=FILE_TASK hidden=state.demo disabled=move || file.with(|f| f.is_none())>
                            {move || file.with(|f| f.as_ref().map_or("Your item file (choose one)".to_string(), |f| format!("Your file: {}", f.name)))}
                        </option>
                    </select>
                </label>
                // Kiosk mode hides it: a visitor has no business in the event laptop's files.
                <label class="eval-file">
                    "Item file "
                    <input
                        type="file"
                        accept=".jsonl,.json,.txt"
                        data-testid="eval-items-file"
                        on:change=move |ev| {
                            let input = event_target::<web_sys::HtmlInputElement>(&ev);
                            if let Some(f) = input.files().and_then(|f| f.get(0)) {
                                load_file(f);
                            }
                            // Browsers fire no change for the same file chosen twice, and a
                            // refused file is fixed on disk and chosen again.
                            input.set_value("");
                        }
                    />
                </label>
                // A file's items are what it holds: the number and seed are a task's.
                <label class:hidden=move || state.eval.with(|e| e.task == FILE_TASK)>
                    "Items "
                    <input
                        type="number"
                        min="1"
                        max=crate::eval::tasks::MAX_ITEMS
                        data-testid="eval-n"
                        aria-describedby="eval-message"
                        prop:value=move || state.eval.with(|e| e.n.to_string())
                        on:change=move |ev| {
                            let max = crate::eval::tasks::MAX_ITEMS;
                            match in_range(&event_target_value(&ev), 1, max, "Items", message) {
                                Some(n) => set(Box::new(move |e| e.n = n)),
                                None => refuse(&ev, state.eval.with_untracked(|e| e.n.to_string()), format!("Items: a whole number from 1 to {max}"), message),
                            }
                        }
                    />
                </label>
                // A file's items are what it holds: the number and seed are a task's.
                <label class:hidden=move || state.eval.with(|e| e.task == FILE_TASK)>
                    "Seed "
                    <input
                        type="number"
                        min="0"
                        data-testid="eval-seed"
                        aria-describedby="eval-message"
                        prop:value=move || state.eval.with(|e| e.seed.to_string())
                        on:change=move |ev| {
                            match event_target_value(&ev).trim().parse::<u64>() {
                                Ok(n) => {
                                    message.set(String::new());
                                    set(Box::new(move |e| e.seed = n));
                                }
                                Err(_) => refuse(&ev, state.eval.with_untracked(|e| e.seed.to_string()), format!("Seed: a whole number from 0 to {}", u64::MAX), message),
                            }
                        }
                    />
                </label>
                <label class:hidden=move || state.eval.with(|e| has_options(&e.task) || e.task == FILE_TASK)>
                    "List length "
                    <input
                        type="number"
                        min="2"
                        max="50"
                        data-testid="eval-list-len"
                        aria-describedby="eval-message"
                        prop:value=move || state.eval.with(|e| e.list_len.to_string())
                        on:change=move |ev| {
                            match in_range(&event_target_value(&ev), 2, 50, "List length", message) {
                                Some(n) => set(Box::new(move |e| e.list_len = n)),
                                None => refuse(&ev, state.eval.with_untracked(|e| e.list_len.to_string()), "List length: a whole number from 2 to 50".into(), message),
                            }
                        }
                    />
                </label>
                <fieldset class="conditions">
                    <legend>"Conditions (the first ticked is the reference)"</legend>
                    {CONDITIONS.into_iter().map(condition_box).collect_view()}
                </fieldset>
                <p class="muted rule">
                    "Each choice is scored as lm-evaluation-harness scores it: the log-likelihood of \" \" + choice after the context; the pick is the likeliest choice (acc), or the likeliest per character (acc_norm). The query is repeated as <QUERY><QUERY>, then \"Answer:\". "
                    {crate::eval::EXTRACTION_RULE}
                </p>
                <div class="eval-actions">
                    <button
                        type="button"
                        class="primary"
                        data-testid="eval-run"
                        disabled=move || running() || queued.get()
                        on:click=move |_| run(state, file.get_untracked(), file_error.get_untracked(), message, queued, true)
                    >
                        "Run on every pane"
                    </button>
                    <button
                        type="button"
                        data-testid="eval-stop"
                        disabled=move || !running() && !queued.get()
                        on:click=move |_| {
                            if queued.get_untracked() {
                                // The models go on loading; the run does not start.
                                queued.set(false);
                                message.set("Stopped before the evaluation started.".into());
                            }
                            for p in state.panes.get_untracked() {
                                p.stop();
                            }
                        }
                    >
                        "Stop"
                    </button>
                    <EvalProgress />
                </div>
                <p class="muted" id="eval-message" role="status" data-testid="eval-message">{move || message.get()}</p>
            </div>
            {move || state.eval_report.get().map(|r| view! { <EvalResults report=r /> })}
        </section>
    }
}

#[component]
fn EvalProgress() -> impl IntoView {
    let state = expect_context::<AppState>();
    let counts = move || {
        state
            .eval_report
            .with(|r| r.as_ref().map(|r| r.progress()).unwrap_or((0, 0)))
    };
    // A large file's items are all tokenized and checked before the first is scored, which
    // takes seconds: said, so that "0 scored" does not read as a hung run.
    let checking = move || {
        if !state.eval_live.get() {
            return None;
        }
        // The slowest pane's count, once any pane has said one.
        let counts: Vec<usize> = state.panes.with(|ps| {
            ps.iter()
                .filter(|p| p.eval(|e| e.phase == OutputPhase::Running && e.results.is_empty()))
                .map(|p| p.eval(|e| e.checked))
                .collect()
        });
        counts
            .iter()
            .any(|&c| c > 0)
            .then(|| counts.iter().copied().min().unwrap_or(0))
    };
    let text = move || {
        let (done, total) = counts();
        if total == 0 {
            return String::new();
        }
        let n = state.eval_report.with(|r| r.as_ref().map_or(0, |r| r.n));
        if let (0, Some(checked)) = (done, checking()) {
            if checked < n {
                return format!("checking the items before scoring: {checked} of {n} read");
            }
        }
        let secs = (browser::now_ms() - state.eval_started.get_value()) / 1000.0;
        if !state.eval_live.get() || secs <= 0.0 || done == 0 {
            return format!("{done} of {total} scored");
        }
        let rate = done as f64 / secs;
        let left = (total - done) as f64 / rate;
        format!("{done} of {total} · {rate:.1} items/s · about {left:.0} s left")
    };
    view! {
        <progress
            data-testid="eval-progress"
            aria-label="Items scored"
            max=move || counts().1.max(1).to_string()
            value=move || counts().0.to_string()
        ></progress>
        <span class="muted" data-testid="eval-progress-text">{text}</span>
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}", x * 100.0)
}

#[component]
fn EvalResults(report: EvalReport) -> impl IntoView {
    let rows: Vec<_> = report
        .panes
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            report
                .conditions
                .iter()
                .map(move |c| (i, p.index, p.model.clone(), c.clone()))
        })
        .map(|(i, pane, model, c)| (pane, model, c.clone(), report.accuracy(i, &c)))
        .collect();
    let chance = report.chance();
    let chart = bar_chart(&rows, chance);
    let comparisons = report.comparisons();
    // One model under one condition: nothing to compare, and no empty table either.
    let no_comparisons = comparisons.is_empty();
    let near_ties = report.near_tie_note();
    let many = report.many_comparisons_note();
    let headline = if report.running {
        // Nothing is concluded while items are still coming in.
        let (done, total) = report.progress();
        format!("So far ({done} of {total} scored): {}", report.headline())
    } else {
        report.headline()
    };
    // When the page saved it is no part of the export.
    let json = serde_json::to_string_pretty(&EvalReport {
        saved_at_ms: 0.0,
        ..report.clone()
    })
    .unwrap_or_default();
    let csv = report.csv();
    let items: Vec<_> = report
        .panes
        .iter()
        .flat_map(|p| {
            p.results
                .iter()
                .map(move |(c, r)| (p.index, p.model.clone(), c.clone(), r.clone()))
        })
        .collect();
    view! {
        <div class="eval-results">
            <p class="headline" data-testid="eval-headline" role="status">{headline}</p>
            <p class="muted" data-testid="eval-source">
                {report.source.clone()}
                {report.partial_note()}
            </p>
            {report.unsaved.then(|| view! {
                <p class="stale-note" data-testid="eval-unsaved" role="status">
                    "These results are too large for this browser's storage: a reload will lose \
                     them. Export them (JSON or CSV) to keep them."
                </p>
            })}
            {chart}
            <table class="eval-table">
                <thead>
                    <tr><th>"Model"</th><th>"Condition"</th><th>"Items"</th><th>"Accuracy"</th><th title="The Wilson score interval: where the true accuracy on items like these lies, at 95% confidence, given this many items">"95% interval"</th><th>"acc_norm"</th></tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|(pane, model, c, a)| {
                            let cond = c.clone();
                            view! {
                                <tr
                                    data-testid="eval-result"
                                    data-pane-index=pane
                                    data-condition=cond
                                    data-n=a.n
                                    data-accuracy=a.accuracy
                                    data-ci-low=a.ci95.0
                                    data-ci-high=a.ci95.1
                                >
                                    <td>{model}</td>
                                    <td>{c}</td>
                                    <td>{a.n}</td>
                                    // Nothing scored is no accuracy, not 0% over 0–100%.
                                    <td>{if a.n == 0 { "–".to_string() } else { format!("{}%", pct(a.accuracy)) }}</td>
                                    <td>{if a.n == 0 { "nothing scored".to_string() } else { format!("{}–{}%", pct(a.ci95.0), pct(a.ci95.1)) }}</td>
                                    <td>{if a.n == 0 { "–".to_string() } else { format!("{}%", pct(a.accuracy_norm)) }}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
            {chance.map(|c| view! {
                <p class="muted eval-note" data-testid="eval-chance" data-chance=c>
                    {format!(
                        "Chance: {}%, what picking one of each item's choices at random would score on average (the red line); an accuracy whose interval reaches down to it does not show the model doing better than that.",
                        pct(c)
                    )}
                </p>
            })}
            {(!near_ties.is_empty()).then(|| view! {
                <p class="muted eval-note" data-testid="eval-near-ties">{near_ties}</p>
            })}
            <p class="muted eval-note">
                "95% interval: the Wilson score interval of the accuracy, where the accuracy on many more items like these would lie. Two runs on the same items are compared below item by item (McNemar's test), which tells more than whether their intervals overlap."
            </p>
            <table class="eval-table" data-testid="eval-comparisons" class:hidden=no_comparisons>
                <thead>
                    <tr><th>"Comparison"</th><th>"only first right (b)"</th><th>"only second right (c)"</th><th>"McNemar p"</th><th>"at p < 0.1"</th></tr>
                </thead>
                <tbody>
                    {comparisons
                        .into_iter()
                        .map(|c| {
                            let verdict = match c.verdict {
                                Verdict::Win => "win",
                                Verdict::Loss => "loss",
                                Verdict::Neutral => "neutral",
                            };
                            view! {
                                <tr data-testid="eval-comparison" data-verdict=verdict title=c.sentence>
                                    <td>{c.label}</td>
                                    <td>{c.test.b}</td>
                                    <td>{c.test.c}</td>
                                    <td>{crate::eval::stats::p_text(c.test.p)}</td>
                                    <td>{verdict}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
            {(!many.is_empty()).then(|| view! {
                <p class="muted eval-note" data-testid="eval-many-comparisons">{many}</p>
            })}
            <div class="eval-actions eval-exports">
                <button
                    type="button"
                    data-testid="eval-export-json"
                    on:click=move |_| {
                        let _ = browser::download("tinylab-eval.json", "application/json", &json);
                    }
                >
                    "Export results JSON"
                </button>
                <button
                    type="button"
                    data-testid="eval-export-csv"
                    on:click=move |_| {
                        let _ = browser::download("tinylab-eval.csv", "text/csv", &csv);
                    }
                >
                    "Export results CSV"
                </button>
            </div>
            <details class="eval-items">
                <summary>"Every item: each choice's log-likelihood and the pick"</summary>
                <table class="eval-table">
                    <thead>
                        <tr><th>"Model"</th><th>"Condition"</th><th>"Item"</th><th>"Answer"</th><th>"Pick"</th><th>"Log-likelihoods"</th></tr>
                    </thead>
                    <tbody>
                        {items
                            .into_iter()
                            .map(|(pane, model, c, r)| {
                                let ll = r
                                    .loglik
                                    .iter()
                                    .map(|l| format!("{l:.2}"))
                                    .collect::<Vec<_>>()
                                    .join("  ");
                                let cond = c.clone();
                                view! {
                                    <tr
                                        data-testid="eval-item"
                                        data-pane-index=pane
                                        data-condition=cond
                                        data-index=r.index
                                        data-pred=r.pred
                                        data-correct=r.correct.to_string()
                                        class:wrong=!r.correct
                                    >
                                        <td>{model}</td>
                                        <td>{c}</td>
                                        <td>{r.index}</td>
                                        <td>{r.answer}</td>
                                        <td>{r.pred}</td>
                                        <td class="mono">{ll}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </details>
        </div>
    }
}

/// A model's name cut to its first word or two ("SmolLM2", "Gemma 3", "Qwen2.5"), for labels.
fn short_name(model: &str) -> String {
    let mut out = String::new();
    for w in model.split_whitespace() {
        if !out.is_empty() {
            if out.len() >= 6 {
                break;
            }
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Accuracy bars with their 95% intervals as whiskers, one per model and condition.
fn bar_chart(
    rows: &[(usize, String, String, crate::eval::Accuracy)],
    chance: Option<f64>,
) -> impl IntoView {
    // A narrower drawing than the space it fills, so that its text, which scales with it,
    // stays readable on a phone; a left margin for the accuracy scale.
    const W: f64 = 560.0;
    const H: f64 = 180.0;
    const LEFT: f64 = 36.0;
    let n = rows.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let bar = (slot * 0.6).min(60.0);
    // A label ("SmolLM2 · options-first", about 23 characters of some 0.55 em) stays within
    // its slot: smaller type where many bars share the width.
    let label_px = (slot / 13.0).clamp(7.0, 12.0);
    let y = |v: f64| H - v * (H - 20.0) - 10.0;
    let mut conditions: Vec<&str> = Vec::new();
    for (_, _, c, _) in rows {
        if !conditions.contains(&c.as_str()) {
            conditions.push(c);
        }
    }
    let bars = rows
        .iter()
        .enumerate()
        .map(|(i, (_, model, c, a))| {
            let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
            let mid = x + bar / 2.0;
            let shade = format!(
                "bar cond-{}",
                conditions.iter().position(|k| k == c).unwrap_or(0) % 4
            );
            // Nothing scored: a label and no bar or whiskers (a 0–100% whisker would read as
            // a measurement).
            let scored = a.n > 0;
            let title = if scored {
                format!("{model} · {c}: {}% [{}–{}%]", pct(a.accuracy), pct(a.ci95.0), pct(a.ci95.1))
            } else {
                format!("{model} · {c}: nothing scored")
            };
            view! {
                <g>
                    <title>{title}</title>
                    {scored.then(|| view! {
                        <rect class=shade x=x y=y(a.accuracy) width=bar height=(y(0.0) - y(a.accuracy)).max(0.0)></rect>
                        <line class="whisker" x1=mid x2=mid y1=y(a.ci95.0) y2=y(a.ci95.1)></line>
                        <line class="whisker" x1=mid - 6.0 x2=mid + 6.0 y1=y(a.ci95.0) y2=y(a.ci95.0)></line>
                        <line class="whisker" x1=mid - 6.0 x2=mid + 6.0 y1=y(a.ci95.1) y2=y(a.ci95.1)></line>
                    })}
                    <text x=mid y=H - 0.5 text-anchor="middle" class="bar-label" style:font-size=format!("{label_px:.1}px")>{format!("{} · {c}", short_name(model))}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="eval-chart" data-testid="eval-chart" viewBox=format!("0 0 {W} {}", H + 12.0) role="img" aria-label="Accuracy with 95% intervals">
            <line class="axis" x1=LEFT x2=W y1=y(0.0) y2=y(0.0)></line>
            <line class="axis faint" x1=LEFT x2=W y1=y(0.5) y2=y(0.5)></line>
            <line class="axis faint" x1=LEFT x2=W y1=y(1.0) y2=y(1.0)></line>
            {[0u32, 50, 100]
                .into_iter()
                .map(|v| view! {
                    <text class="tick-label" x=LEFT - 4.0 y=y(f64::from(v) / 100.0) + 4.0 text-anchor="end">{format!("{v}%")}</text>
                })
                .collect_view()}
            {bars}
            {chance.map(|c| view! {
                <line class="chance" x1=LEFT x2=W y1=y(c) y2=y(c)>
                    <title>{format!("chance: {}%", pct(c))}</title>
                </line>
                <text class="bar-label" x=W - 2.0 y=y(c) - 3.0 text-anchor="end">{format!("chance {}%", pct(c))}</text>
            })}
        </svg>
    }
}
