//! The figures under a run: tokens, time to first token, speeds, mean entropy and surprisal,
//! perplexity, bits per byte and Fast-DetectGPT (score mode), and the GLTR bucket bar.

use leptos::prelude::*;

use super::pane_state::Pane;
use crate::ui::colors::RankBucket;
use crate::ui::format::{duration_ms, num, simd_title};
use crate::ui::settings::Mode;
use crate::ui::summary::{shares, RunSummary};

#[component]
pub fn RunStats(pane: Pane) -> impl IntoView {
    let app = expect_context::<super::AppState>();
    let s = Memo::new(move |_| pane.shown(|r| r.summary_now()));
    let fdg = move || pane.shown(|r| r.summary.as_ref().and_then(|s| s.fast_detectgpt));
    let generating = move || matches!(app.mode.get(), Mode::Generate | Mode::Chat);
    let stat =
        move |label: &'static str, testid: &'static str, value: fn(&RunSummary) -> String| {
            view! {
                <div class="stat">
                    <dt>{label}</dt>
                    <dd data-testid=testid>{move || s.with(value)}</dd>
                </div>
            }
        };
    // Entropy and surprisal in the page's units (`Units`), which the label names.
    let per_token =
        move |label: &'static str, testid: &'static str, value: fn(&RunSummary) -> Option<f64>| {
            view! {
                <div class="stat">
                    <dt>{move || format!("{label}, {}", app.units.get().id())}</dt>
                    <dd data-testid=testid>{move || app.units.get().num(s.with(value), 3)}</dd>
                </div>
            }
        };
    view! {
        <dl class="stats">
            {stat("tokens", "stat-tokens", |s| s.tokens.to_string())}
            <Show when=generating>
                {stat("first token", "stat-ttft", |s| {
                    s.first_token_ms.map(duration_ms).unwrap_or_else(|| "–".into())
                })}
                {stat("prefill tok/s", "stat-prefill-tps", |s| num(s.prefill_tokens_per_s, 1))}
                {stat("decode tok/s", "stat-decode-tps", |s| num(s.decode_tokens_per_s, 1))}
                <div class="stat" title="Threads this pane's worker uses for the weight products">
                    <dt>"threads"</dt>
                    <dd data-testid="stat-threads">
                        {move || pane.threads().map(|t| t.to_string()).unwrap_or_else(|| "–".into())}
                    </dd>
                </div>
                <div class="stat" title=move || simd_title(pane.dot().as_ref())>
                    <dt>"SIMD"</dt>
                    <dd
                        data-testid="stat-simd"
                        data-dot=move || pane.dot().map(|d| d.form)
                        data-dot-source=move || pane.dot().map(|d| crate::ui::format::dot_source(&d))
                    >
                        {move || match pane.kernels().as_str() {
                            "relaxed-simd" => "relaxed".to_string(),
                            "" => "–".to_string(),
                            other => other.to_string(),
                        }}
                    </dd>
                </div>
            </Show>
            <Show when=move || !generating()>
                <div class="stat" title="Tokens scored a second: the whole text goes through the model as one prefill">
                    <dt>"scored tok/s"</dt>
                    <dd data-testid="stat-prefill-tps">{move || s.with(|s| num(s.prefill_tokens_per_s, 1))}</dd>
                </div>
            </Show>
            {per_token("mean entropy", "stat-mean-entropy", |s| s.mean_entropy)}
            {per_token("mean surprisal", "stat-mean-surprisal", |s| s.mean_surprisal)}
            {stat("perplexity", "stat-perplexity", |s| num(s.perplexity, 2))}
            <Show when=move || !generating()>
                <div class="stat" title="Surprisal in bits per UTF-8 byte of the scored text: unlike the per-token figures, comparable between models with different vocabularies">
                    <dt>"bits/byte"</dt>
                    <dd data-testid="stat-bits-per-byte">{move || s.with(|s| num(s.bits_per_byte, 3))}</dd>
                </div>
                <div class="stat" title="Fast-DetectGPT (Bao et al., 2024), analytic, this model as sampler and scorer: higher reads more machine-like">
                    <dt>"Fast-DetectGPT"</dt>
                    <dd data-testid="stat-fast-detectgpt">{move || num(fdg(), 2)}</dd>
                </div>
            </Show>
        </dl>
        <GltrBar counts=Signal::derive(move || s.with(|s| s.gltr)) />
    }
}

/// GLTR's four buckets as one stacked bar with shares.
#[component]
pub fn GltrBar(counts: Signal<[usize; 4]>) -> impl IntoView {
    const BUCKETS: [RankBucket; 4] = [
        RankBucket::Top10,
        RankBucket::Top100,
        RankBucket::Top1000,
        RankBucket::Rest,
    ];
    view! {
        <div class="gltr" data-testid="gltr-histogram" aria-label="GLTR rank buckets">
            {move || {
                let c = counts.get();
                let sh = shares(&c);
                BUCKETS
                    .iter()
                    .zip(sh)
                    .zip(c)
                    .map(|((b, share), count)| {
                        view! {
                            <span
                                class="gltr-seg"
                                style:flex-grow=format!("{share:.4}")
                                style:background-color=b.color()
                                title=format!("{}: {count} tokens ({:.0}%)", b.label(), share * 100.0)
                            >
                                {(share >= 0.06).then(|| format!("{} {:.0}%", b.label(), share * 100.0))}
                            </span>
                        }
                    })
                    .collect_view()
            }}
        </div>
    }
}
