//! GLTR's two histograms next to the chart: tokens per rank bucket, and tokens per tenth of
//! frac(p) (the chosen token's probability over the most likely one's). Model-written text
//! piles up in the top-10 bucket and at frac(p) near 1; human text spreads out.

use leptos::prelude::*;

use super::pane_state::Pane;
use crate::ui::colors::{frac_histogram, frac_p, heat, RankBucket, FRAC_BINS};

#[component]
pub fn Histograms(pane: Pane) -> impl IntoView {
    let counts = Memo::new(move |_| {
        pane.shown(|r| {
            let mut ranks = [0usize; 4];
            for t in &r.tokens {
                ranks[RankBucket::of(t.rank) as usize] += 1;
            }
            let fracs = frac_histogram(
                r.tokens
                    .iter()
                    .map(|t| frac_p(t.surprisal, t.rank, t.top.first().map(|a| a.p))),
            );
            (ranks, fracs)
        })
    });
    let rank_bars = move || {
        let c = counts.with(|c| c.0);
        let max = c.iter().copied().max().unwrap_or(0).max(1);
        RankBucket::ALL
            .iter()
            .zip(c)
            .map(|(b, n)| bar(n, max, b.color().to_string(), b.label().to_string()))
            .collect_view()
    };
    let frac_bars = move || {
        let c = counts.with(|c| c.1);
        let max = c.iter().copied().max().unwrap_or(0).max(1);
        c.iter()
            .enumerate()
            .map(|(i, &n)| {
                let lo = i as f64 / FRAC_BINS as f64;
                let color = heat(1.0 - (lo + 0.05));
                bar(n, max, color, format!("{lo:.1}"))
            })
            .collect_view()
    };
    // What the bars show, for a screen reader (the counts are otherwise only in tooltips).
    let rank_label = move || {
        let c = counts.with(|c| c.0);
        let parts: Vec<String> = RankBucket::ALL
            .iter()
            .zip(c)
            .map(|(b, n)| format!("{}: {n}", b.label()))
            .collect();
        format!("Tokens by rank bucket: {}", parts.join(", "))
    };
    let frac_label = move || {
        let c = counts.with(|c| c.1);
        let parts: Vec<String> = c
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{:.1}: {n}", i as f64 / FRAC_BINS as f64))
            .collect();
        format!(
            "Tokens by frac(p), the chosen token's probability over the most likely's: {}",
            parts.join(", ")
        )
    };
    let join = |c: &[usize]| {
        c.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    view! {
        <div class="histograms">
            <figure class="hist" data-testid="hist-rank" data-counts=move || counts.with(|c| join(&c.0))>
                <figcaption>"rank bucket"</figcaption>
                <div class="bars" role="img" aria-label=rank_label>{rank_bars}</div>
            </figure>
            <figure class="hist" data-testid="hist-fracp" data-counts=move || counts.with(|c| join(&c.1))>
                <figcaption>"frac(p), 0 → 1"</figcaption>
                <div class="bars" role="img" aria-label=frac_label>{frac_bars}</div>
            </figure>
        </div>
    }
}

/// One bar: its height is the count over the largest count; the count is in the tooltip.
fn bar(n: usize, max: usize, color: String, label: String) -> impl IntoView {
    view! {
        <span class="bar-slot" title=format!("{label}: {n} tokens")>
            <span
                class="bar"
                style:height=format!("{:.1}%", 100.0 * n as f64 / max as f64)
                style:background-color=color
            ></span>
        </span>
    }
}
