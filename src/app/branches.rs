//! A generation's (or a chat reply's) forks: choose which branch the pane shows, and compare
//! the branches' mean surprisal and entropy (how far off the model's own path each fork went).

use leptos::prelude::*;

use super::pane_state::{Pane, Tree};

#[component]
pub fn Branches(pane: Pane) -> impl IntoView {
    let units = expect_context::<super::AppState>().units;
    // The chat's branches are listed while its reply is the conversation's last turn.
    let tree = move || {
        pane.tree()
            .filter(|t| *t == Tree::Run || pane.chat_tree_is_current())
    };
    let infos = move || tree().map_or_else(Vec::new, |t| pane.state.with(|s| s.branch_infos(t)));
    let current = move || tree().map_or(0, |t| pane.state.with(|s| s.current_branch(t)));
    view! {
        <Show when=move || !infos().is_empty()>
            <div class="branches">
                <label class="field">
                    <span>"Branch"</span>
                    <select
                        data-testid="branch-select"
                        prop:value=move || current().to_string()
                        prop:disabled=move || pane.is_running()
                        on:change=move |ev| {
                            if let Ok(i) = event_target_value(&ev).parse::<usize>() {
                                pane.show_branch(i);
                            }
                        }
                    >
                        {move || {
                            infos()
                                .into_iter()
                                .enumerate()
                                .map(|(i, b)| view! { <option value=i.to_string()>{b.label}</option> })
                                .collect_view()
                        }}
                    </select>
                </label>
                <table class="branch-compare" data-testid="branch-compare">
                    <thead>
                        <tr>
                            <th>"branch"</th>
                            <th>"tokens"</th>
                            <th>{move || format!("mean surprisal, {}", units.get().id())}</th>
                            <th>{move || format!("mean entropy, {}", units.get().id())}</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || {
                            let shown = current();
                            infos()
                                .into_iter()
                                .enumerate()
                                .map(|(i, b)| {
                                    view! {
                                        <tr
                                            class:current=i == shown
                                            data-branch=i.to_string()
                                            data-mean-surprisal=b.mean_surprisal.map(|v| v.to_string()).unwrap_or_default()
                                            data-mean-entropy=b.mean_entropy.map(|v| v.to_string()).unwrap_or_default()
                                        >
                                            <td>{b.label}</td>
                                            <td>{b.tokens}</td>
                                            <td>{units.get().num(b.mean_surprisal, 3)}</td>
                                            <td>{units.get().num(b.mean_entropy, 3)}</td>
                                        </tr>
                                    }
                                })
                                .collect_view()
                        }}
                    </tbody>
                </table>
            </div>
        </Show>
    }
}
