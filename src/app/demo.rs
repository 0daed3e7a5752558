//! Kiosk mode for events (`?demo=1`): large type, no settings, and one-click demos that load
//! what they need and start by themselves once every pane is ready.

use leptos::prelude::*;

use super::pane_state::ModelPhase;
use super::AppState;
use crate::ui::format::Units;
use crate::ui::presets::{self, SMOLLM2};
use crate::ui::settings::{Mode, PaneSettings, Workspace, DEFAULT_PROMPT};

const DEMO_PROMPT: &str = "Name the days of the week.";
/// Darwin, On the Origin of Species (1859): the first sentence is the prompt.
const DEMO_TEXT: &str = "When we look to the individuals of the same variety or sub-variety of \
    our older cultivated plants and animals, one of the first points which strikes us, is, that \
    they generally differ much more from each other, than do the individuals of any one species \
    or variety in a state of nature. When we reflect on the vast diversity of the plants and \
    animals which have been cultivated, and which have varied during all ages under the most \
    different climates and treatment, I think we are driven to conclude that this greater \
    variability is simply due to our domestic productions having been raised under conditions of \
    life not so uniform as, and somewhat different from, those to which the parent-species have \
    been exposed under nature.";

/// What to start once every pane has its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    RunAll,
    LabAll(usize),
    Eval,
}

/// Demo answers are kept short, so a room does not wait for them.
const DEMO_MAX_TOKENS: usize = 48;

fn short(panes: Vec<PaneSettings>) -> Vec<PaneSettings> {
    panes
        .into_iter()
        .map(|p| PaneSettings {
            max_tokens: DEMO_MAX_TOKENS,
            ..p
        })
        .collect()
}

#[component]
pub fn DemoBar() -> impl IntoView {
    let app = expect_context::<AppState>();
    let pending: RwSignal<Option<Then>> = RwSignal::new(None);
    Effect::new(move |_| {
        let Some(then) = pending.get() else {
            return;
        };
        let phases: Vec<ModelPhase> = app
            .panes
            .with(|ps| ps.iter().map(|p| p.model(|m| m.phase)).collect());
        // A pane whose model failed says so itself; the others still run (as Run all does),
        // once every load has ended and the last demo's jobs are over.
        let ended = |p: &ModelPhase| matches!(p, ModelPhase::Ready | ModelPhase::Error);
        if !phases.contains(&ModelPhase::Ready) && phases.iter().all(ended) {
            pending.set(None);
        } else if phases.iter().all(ended) && !app.any_running() {
            pending.set(None);
            match then {
                Then::RunAll => app.run_all(),
                Then::LabAll(n) => app.lab_all(n),
                Then::Eval => super::eval_view::run(
                    app,
                    None,
                    None,
                    RwSignal::new(String::new()),
                    RwSignal::new(false),
                    false,
                ),
            }
        }
    });
    let start = move |panes: Vec<PaneSettings>, mode: Mode, then: Then| {
        app.stop_all();
        super::arena_view::leave(app);
        app.mode.set(mode);
        app.apply_panes(panes);
        // The last demo's answers are not this one's (a pane that cannot load would show
        // them under the new prompt).
        for p in app.panes.get_untracked() {
            p.clear_output();
        }
        pending.set(Some(then));
        // On an event's screen the prompt and the demo buttons fill the first view: what the
        // visitor asked for is brought up, once the page has drawn the demo's panes.
        let target = if mode == Mode::Eval {
            ".eval"
        } else {
            ".panes"
        };
        set_timeout(
            move || super::browser::scroll_to_selector(target),
            std::time::Duration::from_millis(50),
        );
    };
    let compare = move |_| {
        app.prompt.set(DEMO_PROMPT.into());
        start(
            short(presets::model_vs_model()),
            Mode::Generate,
            Then::RunAll,
        );
    };
    let temperature = move |_| {
        app.prompt
            .set("Write a one-line slogan for a bakery.".into());
        let panes = short(presets::temperatures(SMOLLM2, 0.2, 1.2));
        start(panes, Mode::Generate, Then::RunAll);
    };
    let lab = move |_| {
        app.score_text.set(DEMO_TEXT.into());
        start(
            short(vec![PaneSettings {
                temperature: 0.8,
                ..presets::greedy(SMOLLM2)
            }]),
            Mode::Score,
            Then::LabAll(1),
        );
    };
    // About a minute on a laptop: 50 name-index items, asked once and twice.
    let repetition = move |_| {
        app.eval.set(crate::ui::settings::EvalSetup {
            task: "name-index".into(),
            n: 50,
            seed: 1,
            list_len: 5,
            conditions: vec!["baseline".into(), "repeat-2".into()],
        });
        start(vec![presets::greedy(SMOLLM2)], Mode::Eval, Then::Eval);
    };
    let reset = move |_| {
        pending.set(None);
        app.stop_all();
        super::arena_view::leave(app);
        app.prompt.set(DEFAULT_PROMPT.into());
        app.score_text.set(String::new());
        app.mode.set(Mode::Generate);
        app.apply_panes(short(vec![presets::greedy(SMOLLM2)]));
        for p in app.panes.get_untracked() {
            p.clear_output();
        }
        app.eval_report.set(None);
        // Kept apart from the workspace: without this a reload brought the report back.
        super::browser::local_remove(&super::browser::own_key(super::eval_view::REPORT_KEY));
        // Nothing of the last visitor's: the evaluation's set-up (2,000 items on six
        // conditions would be the next visitor's Run), the lab's sentences and the header's
        // choices (one thread would slow every demo after).
        let fresh = Workspace::default();
        app.eval.set(fresh.eval);
        app.lab_sentences.set(fresh.lab_sentences);
        app.units.set(Units::Nats);
        app.theme.set("auto".into());
        super::threads::forget_choice(app);
    };
    view! {
        <section class="demo-bar" aria-label="Demos">
            <button type="button" class="primary" data-testid="demo-compare" prop:disabled=move || app.any_busy() on:click=compare>
                "Three models, one question"
            </button>
            <button type="button" class="primary" data-testid="demo-temperature" prop:disabled=move || app.any_busy() on:click=temperature>
                "Cold vs hot sampling"
            </button>
            <button type="button" class="primary" data-testid="demo-lab" prop:disabled=move || app.any_busy() on:click=lab>
                "Human vs machine text"
            </button>
            <button type="button" class="primary" data-testid="demo-repetition" prop:disabled=move || app.any_busy() on:click=repetition>
                "Does repeating the question help?"
            </button>
            <button type="button" data-testid="demo-reset" on:click=reset>"Reset"</button>
            <span class="demo-note">
                {move || if pending.get().is_some() { "Loading models…" } else { "" }}
            </span>
        </section>
    }
}
