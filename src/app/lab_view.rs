//! "Human vs model": the entropy distributions of the human continuation and the model's, side
//! by side, with the difference in means.

use leptos::prelude::*;

use super::pane_state::{OutputPhase, Pane};
use crate::protocol::HumanVsModelResult;
use crate::ui::format::num;
use crate::ui::summary::{histogram, shares};

const BINS: usize = 12;
const MAX_NATS: f64 = 6.0;
const W: f64 = 480.0;
const H: f64 = 110.0;

#[component]
pub fn LabView(pane: Pane) -> impl IntoView {
    let shown = move || pane.lab(|l| l.phase != OutputPhase::Idle);
    view! {
        <Show when=shown>
            <section class="lab" data-testid="lab" data-state=move || pane.lab(|l| l.phase.id())>
                <h3>"Human vs model"</h3>
                <p class="muted" data-testid="lab-message">{move || pane.lab(|l| l.message.clone())}</p>
                {move || pane.lab(|l| l.result.clone()).map(|r| view! { <LabResult r /> })}
            </section>
        </Show>
    }
}

/// One histogram pair (human vs model) of a per-token measure.
fn histogram_svg(human: &[f64], model: &[f64], label: &'static str) -> impl IntoView {
    let units = expect_context::<super::AppState>().units;
    let hs = shares(&histogram(human.iter().copied(), BINS, MAX_NATS));
    let ms = shares(&histogram(model.iter().copied(), BINS, MAX_NATS));
    let top = hs.iter().chain(&ms).copied().fold(0.01, f64::max);
    let bw = W / BINS as f64;
    let bars = (0..BINS)
        .flat_map(|i| {
            let x = i as f64 * bw;
            [(x + 2.0, hs[i], "human"), (x + bw / 2.0, ms[i], "model")]
        })
        .map(|(x, v, class)| {
            let h = v / top * H;
            view! { <rect class=class x=x y=H - h width=bw / 2.0 - 2.0 height=h /> }
        })
        .collect_view();
    view! {
        <figure class="lab-chart">
            <figcaption>
                <strong>{label}</strong>
                <span class="key human">"human"</span>
                <span class="key model">"model"</span>
                <span class="muted">
                    {move || {
                        let u = units.get();
                        // The last bar holds every token past the range (human text has many).
                        let top = crate::ui::format::num(Some(u.of(MAX_NATS)), 1);
                        let last = crate::ui::format::num(Some(u.of(MAX_NATS * (BINS - 1) as f64 / BINS as f64)), 1);
                        format!(
                            "share of tokens, 0–{} {}; the last bar: {} and more",
                            top.trim_end_matches(".0"),
                            u.id(),
                            last.trim_end_matches(".0")
                        )
                    }}
                </span>
            </figcaption>
            <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img" aria-label=label>
                {bars}
                <line class="axis" x1="0" x2=W y1=H y2=H />
            </svg>
        </figure>
    }
}

#[component]
fn LabResult(r: HumanVsModelResult) -> impl IntoView {
    let units = expect_context::<super::AppState>().units;
    let pick = |t: &crate::protocol::ScoredText, f: fn(&crate::protocol::TokenEvent) -> f64| {
        t.tokens.iter().map(f).collect::<Vec<f64>>()
    };
    let (hs, ms) = (
        pick(&r.human, |t| t.surprisal),
        pick(&r.model, |t| t.surprisal),
    );
    let (he, me) = (pick(&r.human, |t| t.entropy), pick(&r.model, |t| t.entropy));
    let (h_sur, m_sur) = (
        r.human.summary.mean_surprisal,
        r.model.summary.mean_surprisal,
    );
    let (h_ent, m_ent) = (r.human.summary.mean_entropy, r.model.summary.mean_entropy);
    let diff = h_sur - m_sur;
    // The model's continuation was sampled with the pane's settings, which may favour likely
    // tokens: part of a gap can be the sampling's, which is said.
    let verdict = if diff > 0.0 {
        "The human text is harder for this model to predict than its own continuation \
         (sampled with this pane's settings: a temperature under 1, top-k or top-p favour \
         likely tokens and widen the gap by themselves)."
    } else if diff < 0.0 {
        "Here the model's own continuation was the harder one to predict."
    } else {
        "Both were exactly as hard for this model to predict."
    };
    let model_text: String = r.model.tokens.iter().map(|t| t.piece.as_str()).collect();
    let human_text: String = r.human.tokens.iter().map(|t| t.piece.as_str()).collect();
    view! {
        <p class="lab-diff">
            "Text entropy (mean surprisal), human − model: "
            <strong data-testid="lab-surprisal-diff">
                {move || format!("{:+.3} {}/token", units.get().of(diff), units.get().id())}
            </strong>
            ". " {verdict}
        </p>
        {histogram_svg(&hs, &ms, "Surprisal of each token (the text's entropy under the model)")}
        {histogram_svg(&he, &me, "Entropy of the model's next-token distribution")}
        <table class="lab-table">
            <thead><tr><th></th><th>"human"</th><th>"model"</th></tr></thead>
            <tbody>
                <tr><th>"tokens"</th><td>{r.human.tokens.len()}</td><td>{r.model.tokens.len()}</td></tr>
                <tr>
                    <th>"mean surprisal"</th>
                    <td data-testid="lab-human-surprisal">{move || units.get().num(Some(h_sur), 3)}</td>
                    <td data-testid="lab-model-surprisal">{move || units.get().num(Some(m_sur), 3)}</td>
                </tr>
                <tr>
                    <th>"mean entropy"</th>
                    <td data-testid="lab-human-entropy">{move || units.get().num(Some(h_ent), 3)}</td>
                    <td data-testid="lab-model-entropy">{move || units.get().num(Some(m_ent), 3)}</td>
                </tr>
                <tr>
                    <th>"perplexity"</th>
                    <td>{num(Some(r.human.summary.perplexity), 2)}</td>
                    <td>{num(Some(r.model.summary.perplexity), 2)}</td>
                </tr>
                <tr>
                    <th>"Fast-DetectGPT"</th>
                    <td>{num(r.human.summary.fast_detectgpt, 2)}</td>
                    <td>{num(r.model.summary.fast_detectgpt, 2)}</td>
                </tr>
            </tbody>
        </table>
        <p class="muted">
            {move || format!(
                "Mean entropy of the distribution, human − model: {:+.3} {}. ",
                units.get().of(h_ent - m_ent),
                units.get().id()
            )}
            "Surprisal is how unexpected each actual token was; entropy is how spread the model's guess was before it."
        </p>
        <details>
            <summary>"The texts"</summary>
            <p class="muted">"Prompt"</p>
            <blockquote>{r.prompt.clone()}</blockquote>
            <p class="muted">"Human continuation"</p>
            <blockquote>{human_text}</blockquote>
            <p class="muted">"Model continuation"</p>
            <blockquote data-testid="lab-model-text">{model_text}</blockquote>
        </details>
    }
}
