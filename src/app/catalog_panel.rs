//! The catalog as a table (name, parameters, quantization, size, license, availability), and
//! the models the browser cache holds, with remove and clear.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::browser::{self, CachedModel};
use super::{AppState, Presence};
use crate::ui::format;

#[component]
pub fn CatalogPanel() -> impl IntoView {
    let app = expect_context::<AppState>();
    let rows = move || {
        app.catalog.with(|c| match c {
            None => view! { <tr><td colspan="6">"Reading the catalog…"</td></tr> }.into_any(),
            Some(Err(e)) => {
                view! { <tr><td colspan="6" class="error">{e.clone()}</td></tr> }.into_any()
            }
            Some(Ok(c)) => c
                .models
                .iter()
                .map(|m| {
                    let id = m.id.clone();
                    let availability = move || match app.present.with(|p| p.get(&id).copied()) {
                        Some(Presence::Cached) => "in browser cache",
                        Some(Presence::OnServer) => "on server",
                        Some(Presence::Missing) => "not fetched",
                        None => "checking…",
                    };
                    view! {
                        <tr data-testid="catalog-row" data-model-id=m.id.clone()>
                            <td>{m.name.clone()}</td>
                            <td>{m.parameters.clone()}</td>
                            <td>{m.quantization.clone()}</td>
                            <td class="num">{format::bytes(m.bytes)}</td>
                            <td>{m.license.clone()}</td>
                            <td>{availability}</td>
                        </tr>
                    }
                })
                .collect_view()
                .into_any(),
        })
    };
    view! {
        <details class="catalog" data-testid="catalog">
            <summary>"Models"</summary>
            <table>
                <thead>
                    <tr>
                        <th>"Model"</th>
                        <th>"Parameters"</th>
                        <th>"Quantization"</th>
                        <th>"Size"</th>
                        <th>"License"</th>
                        <th>"Available"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
            <p class="muted">
                "Models are read from this server's assets/models/ folder and kept in the browser cache after the first load. \
                 Your own .gguf files are read in the browser and never uploaded."
            </p>
            <CachePanel />
        </details>
    }
}

#[component]
fn CachePanel() -> impl IntoView {
    let app = expect_context::<AppState>();
    let entries: RwSignal<Result<Vec<CachedModel>, String>> = RwSignal::new(Ok(vec![]));
    let refresh = move || {
        spawn_local(async move {
            entries.set(browser::cached_models().await);
            app.refresh_presence();
        })
    };
    // Refresh when a pane finishes loading, or its worker has put the model in the cache
    // (`Event::Kept`, after the model is ready).
    // A memo, because a pane's state is one signal: without it every token of a run would
    // re-read the cache.
    let loads = Memo::new(move |_| {
        app.panes.with(|ps| {
            ps.iter()
                .map(|p| {
                    p.model(|m| {
                        (
                            m.phase,
                            m.loaded.as_ref().map(|l| l.cached_now),
                            // A put that ends during the next load changes neither of the above.
                            m.is_keeping(),
                        )
                    })
                })
                .collect::<Vec<_>>()
        })
    });
    Effect::new(move |_| {
        // Read, not just tracked: a memo nobody reads never computes, so never learns of its
        // sources' changes.
        loads.with(|_| ());
        app.cache_checked.track();
        refresh();
    });
    // While a worker puts a model in the cache, a removal could be undone when the put ends,
    // and a cleared cache would leave that pane saying "kept": both wait for the put.
    let keeping = Memo::new(move |_| {
        app.panes
            .with(|ps| ps.iter().any(|p| p.model(|m| m.is_keeping())))
    });
    let armed = RwSignal::new(false);
    let armings = StoredValue::new(0u32);
    let total = move || {
        entries.with(|e| {
            e.as_ref()
                .map(|v| v.iter().filter_map(|m| m.bytes).sum::<u64>())
                .unwrap_or(0)
        })
    };
    view! {
        <div class="cache" data-testid="cache-panel">
            <h2>
                "Browser cache "
                <span class="muted">{move || format::bytes(total())}</span>
            </h2>
            {move || match entries.get() {
                Err(e) => view! { <p class="muted">{e}</p> }.into_any(),
                Ok(v) if v.is_empty() => view! { <p class="muted">"Nothing cached yet."</p> }.into_any(),
                Ok(v) => view! {
                    <ul>
                        {v.into_iter()
                            .map(|m| {
                                let url = m.url.clone();
                                let (load_url, label) = (m.url.clone(), m.label.clone());
                                // Catalog models load from the select (which also reads the
                                // cache); a local file can only come back from here.
                                let local = m.url.contains("/local-models/");
                                view! {
                                    <li data-testid="cached-model">
                                        <span>{m.label.clone()}</span>
                                        <span class="muted">{m.bytes.map(format::bytes).unwrap_or_default()}</span>
                                        <Show when=move || local>
                                            <button
                                                type="button"
                                                data-testid="cached-load"
                                                title="Load into the first pane without a model (else the first idle one)"
                                                on:click={
                                                    let (u, l) = (load_url.clone(), label.clone());
                                                    move |_| {
                                                        // A pane with no model first, then any idle one.
                                                        let panes = app.panes.get_untracked();
                                                        let idle = |p: &&super::pane_state::Pane| !p.is_busy();
                                                        let free = panes
                                                            .iter()
                                                            .filter(idle)
                                                            .find(|p| !p.is_ready())
                                                            .or_else(|| panes.iter().find(idle));
                                                        if let Some(p) = free {
                                                            p.load_cached(&u, &l);
                                                        }
                                                    }
                                                }
                                            >
                                                "Load"
                                            </button>
                                        </Show>
                                        <button
                                            type="button"
                                            disabled=move || keeping.get()
                                            on:click={
                                            let label = m.label.clone();
                                            move |_| {
                                            let (url, label) = (url.clone(), label.clone());
                                            spawn_local(async move {
                                                if browser::remove_cached(&url).await.is_ok() {
                                                    app.panes.with_untracked(|ps| {
                                                        ps.iter().for_each(|p| {
                                                            p.state.update(|s| s.cache_removed(Some(&label)))
                                                        })
                                                    });
                                                }
                                                refresh();
                                            });
                                        }}>"Remove"</button>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                }
                    .into_any(),
            }}
            <Show when=move || keeping.get()>
                <p class="muted" data-testid="cache-busy">
                    "A model is being copied into the cache; Remove and Clear are unavailable until the copy ends."
                </p>
            </Show>
            <button
                type="button"
                data-testid="clear-cache"
                data-confirming=move || armed.get().to_string()
                disabled=move || keeping.get()
                on:click=move |_| {
                    // A first click asks (the models take minutes to read again, and a page
                    // at an event has no network); a second within a few seconds clears.
                    if !armed.get_untracked() {
                        armed.set(true);
                        // Only this arming's timer disarms it: an earlier one, still pending
                        // after a clear and a new first click, must not cut the new one short.
                        let arming = armings.get_value() + 1;
                        armings.set_value(arming);
                        set_timeout(
                            move || {
                                if armings.try_get_value() == Some(arming) {
                                    armed.try_set(false);
                                }
                            },
                            std::time::Duration::from_secs(6),
                        );
                        return;
                    }
                    armed.set(false);
                    spawn_local(async move {
                        if browser::clear_cache().await.is_ok() {
                            app.panes.with_untracked(|ps| {
                                ps.iter().for_each(|p| p.state.update(|s| s.cache_removed(None)))
                            });
                        }
                        refresh();
                    })
                }
            >
                {move || {
                    if armed.get() {
                        let n = entries.with(|e| e.as_ref().map_or(0, Vec::len));
                        let what = if n == 1 {
                            "the cached model".to_string()
                        } else {
                            format!("all {n} cached models")
                        };
                        format!("Remove {what} ({})? Click again", format::bytes(total()))
                    } else {
                        "Clear cache".to_string()
                    }
                }}
            </button>
        </div>
    }
}
