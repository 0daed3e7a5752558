//! Entropy and surprisal over token position, as an SVG line chart.

use leptos::prelude::*;

use super::pane_state::Pane;
use crate::ui::summary::{nice_max, polyline, series};

const W: f64 = 600.0;
const H: f64 = 120.0;

#[component]
pub fn EntropyChart(pane: Pane) -> impl IntoView {
    // Computed once per change and read by the caption and both lines.
    let units = expect_context::<super::AppState>().units;
    let data = Memo::new(move |_| {
        let u = units.get();
        pane.shown(|r| {
            let n = r.tokens.len();
            let ent = series(&r.tokens, |t| u.of(t.entropy));
            let sur = series(&r.tokens, |t| u.of(t.surprisal));
            let top = nice_max(ent.iter().chain(sur.iter()).map(|p| p.1));
            (
                n,
                polyline(&ent, n, W, H, top),
                polyline(&sur, n, W, H, top),
                top,
            )
        })
    });
    let marker = move || {
        let n = pane.shown(|r| r.tokens.len());
        pane.inspected().filter(|_| n > 1).map(|i| {
            let x = i as f64 * W / (n - 1) as f64;
            view! { <line class="marker" x1=x x2=x y1="0" y2=H /> }
        })
    };
    view! {
        <figure class="chart" data-testid="entropy-chart">
            <figcaption>
                <span class="key entropy">"entropy"</span>
                <span class="key surprisal">"surprisal"</span>
                <span class="muted">{move || format!("{}, 0–{:.0}, by token position", units.get().id(), data.with(|d| d.3))}</span>
            </figcaption>
            <svg
                viewBox=format!("0 0 {W} {H}")
                preserveAspectRatio="none"
                role="img"
                aria-label="Entropy and surprisal per token"
            >
                <line class="axis" x1="0" x2=W y1=H y2=H />
                <line class="grid" x1="0" x2=W y1=H / 2.0 y2=H / 2.0 />
                <polyline class="line entropy" points=move || data.with(|d| d.1.clone()) />
                <polyline class="line surprisal" points=move || data.with(|d| d.2.clone()) />
                {marker}
            </svg>
        </figure>
    }
}
