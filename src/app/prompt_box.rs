//! The shared inputs: the prompt (generate mode) and the text to measure (entropy lab).

use leptos::prelude::*;

use super::AppState;

/// Ctrl/⌘+Enter runs `action`.
fn on_ctrl_enter(action: impl Fn() + 'static) -> impl Fn(web_sys::KeyboardEvent) {
    move |ev: web_sys::KeyboardEvent| {
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            ev.prevent_default();
            action();
        }
    }
}

#[component]
pub fn PromptBox() -> impl IntoView {
    let app = expect_context::<AppState>();
    view! {
        <section class="prompt-box" aria-label="Prompt">
            <label for="prompt">"Prompt"</label>
            <textarea
                id="prompt"
                data-testid="prompt"
                rows="4"
                spellcheck="false"
                prop:value=move || app.prompt.get()
                on:input=move |ev| app.prompt.set(event_target_value(&ev))
                on:keydown=on_ctrl_enter(move || app.run_all())
            ></textarea>
            <div class="prompt-actions">
                <button
                    type="button"
                    class="primary"
                    data-testid="run-all"
                    prop:disabled=move || app.any_running()
                    on:click=move |_| app.run_all()
                >
                    {move || if app.panes.with(|p| p.len() > 1) { "Run all" } else { "Run" }}
                </button>
                <button
                    type="button"
                    data-testid="stop-all"
                    prop:disabled=move || !app.any_running() && !app.any_queued()
                    on:click=move |_| app.stop_all()
                >
                    "Stop"
                </button>
                <span class="muted">"Ctrl+Enter (⌘+Enter) runs every pane."</span>
            </div>
        </section>
    }
}

/// Paragraphs to try the lab on: one by a person, one written by a small model.
const SAMPLES: [(&str, &str); 2] = [
    (
        "Human: Jane Austen, Pride and Prejudice (1813)",
        "It is a truth universally acknowledged, that a single man in possession of a good \
         fortune, must be in want of a wife. However little known the feelings or views of such a \
         man may be on his first entering a neighbourhood, this truth is so well fixed in the \
         minds of the surrounding families, that he is considered as the rightful property of \
         some one or other of their daughters. \"My dear Mr. Bennet,\" said his lady to him one \
         day, \"have you heard that Netherfield Park is let at last?\" Mr. Bennet replied that he \
         had not.",
    ),
    (
        "Human: Charles Darwin, On the Origin of Species (1859)",
        "When we look to the individuals of the same variety or sub-variety of our older \
         cultivated plants and animals, one of the first points which strikes us, is, that they \
         generally differ much more from each other, than do the individuals of any one species \
         or variety in a state of nature. When we reflect on the vast diversity of the plants \
         and animals which have been cultivated, and which have varied during all ages under the \
         most different climates and treatment, I think we are driven to conclude that this \
         greater variability is simply due to our domestic productions having been raised under \
         conditions of life not so uniform as, and somewhat different from, those to which the \
         parent-species have been exposed under nature. There is also, I think, some probability \
         in the view propounded by Andrew Knight, that this variability may be partly connected \
         with excess of food.",
    ),
];

#[component]
pub fn ScoreBox() -> impl IntoView {
    let app = expect_context::<AppState>();
    let sentences = app.lab_sentences;
    view! {
        <section class="prompt-box" aria-label="Text to measure">
            <label for="score-text">"Text to measure"</label>
            <textarea
                id="score-text"
                data-testid="score-text"
                rows="6"
                spellcheck="false"
                placeholder="Paste any text: every loaded pane scores it with its model."
                prop:value=move || app.score_text.get()
                on:input=move |ev| app.score_text.set(event_target_value(&ev))
                on:keydown=on_ctrl_enter(move || app.score_all())
            ></textarea>
            <div class="prompt-actions">
                <button
                    type="button"
                    class="primary"
                    data-testid="score-all"
                    prop:disabled=move || app.any_running()
                    on:click=move |_| app.score_all()
                >
                    "Score"
                </button>
                <button
                    type="button"
                    data-testid="lab-all"
                    title="The first sentences become a prompt; the model continues it; both continuations are scored"
                    prop:disabled=move || app.any_running()
                    on:click=move |_| app.lab_all(sentences.get_untracked())
                >
                    "Human vs model"
                </button>
                <label class="check lab-sentences" title="How many of the text's first sentences Human vs model gives the model as its prompt">
                    "its prompt: the first"
                    <input
                        type="number"
                        min="1"
                        max="20"
                        data-testid="lab-sentences"
                        class="small"
                        prop:value=move || sentences.get().to_string()
                        on:change=move |ev| {
                            if let Ok(n) = event_target_value(&ev).trim().parse::<usize>() {
                                sentences.set(n.clamp(1, crate::ui::settings::MAX_LAB_SENTENCES));
                            }
                            // The box shows the number in use: "1.5", "-1" or 99 would
                            // otherwise stay in it while 2 or 20 was used.
                            event_target::<web_sys::HtmlInputElement>(&ev)
                                .set_value(&sentences.get_untracked().to_string());
                        }
                    />
                    "sentences"
                </label>
                <button
                    type="button"
                    data-testid="stop-all"
                    prop:disabled=move || !app.any_running() && !app.any_queued()
                    on:click=move |_| app.stop_all()
                >
                    "Stop"
                </button>
                <select
                    data-testid="sample-text"
                    aria-label="Sample texts"
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        if let Some((_, text)) = SAMPLES.iter().find(|(name, _)| *name == v) {
                            app.score_text.set(text.to_string());
                        }
                    }
                >
                    <option value="">"Try a sample text…"</option>
                    {SAMPLES.iter().map(|(name, _)| view! { <option value=*name>{*name}</option> }).collect_view()}
                </select>
            </div>
        </section>
    }
}
