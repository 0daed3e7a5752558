//! The figures under a run: tokens, time to first token, speeds, mean entropy, perplexity.

use leptos::prelude::*;

use super::pane_state::Pane;
use crate::ui::format::{duration_ms, num};
use crate::ui::summary::{summarize, RunSummary};

#[component]
pub fn RunStats(pane: Pane) -> impl IntoView {
    let s = Memo::new(move |_| pane.run.with(|r| summarize(&r.tokens, r.timing.as_ref())));
    let stat =
        move |label: &'static str, testid: &'static str, value: fn(&RunSummary) -> String| {
            view! {
                <div class="stat">
                    <dt>{label}</dt>
                    <dd data-testid=testid>{move || s.with(value)}</dd>
                </div>
            }
        };
    view! {
        <dl class="stats">
            {stat("tokens", "stat-tokens", |s| s.tokens.to_string())}
            {stat("first token", "stat-ttft", |s| s.first_token_ms.map(duration_ms).unwrap_or_else(|| "–".into()))}
            {stat("prefill tok/s", "stat-prefill-tps", |s| num(s.prefill_tokens_per_s, 1))}
            {stat("decode tok/s", "stat-decode-tps", |s| num(s.decode_tokens_per_s, 1))}
            {stat("mean entropy", "stat-mean-entropy", |s| num(s.mean_entropy, 3))}
            {stat("perplexity", "stat-perplexity", |s| num(s.perplexity, 2))}
            {stat("GLTR top-10/100/1k/rest", "stat-gltr", |s| {
                format!("{}/{}/{}/{}", s.gltr[0], s.gltr[1], s.gltr[2], s.gltr[3])
            })}
        </dl>
    }
}
