//! What the page says above the tabs about the link it was opened with: what the link asked
//! for that could not be used, and the saved workspace the link replaced, with a way back.

use leptos::prelude::*;

use super::{browser, saved_outputs};

/// Notes on what a link or a save asked for that could not be used, until dismissed.
#[component]
pub fn LinkNotes(notes: RwSignal<Vec<String>>) -> impl IntoView {
    view! {
        <Show when=move || notes.with(|n| !n.is_empty())>
            <p class="link-note" data-testid="link-note" role="status">
                {move || notes.get().join(" ")}
                " "
                <button type="button" class="small" on:click=move |_| notes.set(Vec::new())>
                    "OK"
                </button>
            </p>
        </Show>
    }
}

/// The workspace a link replaced: `kept` is its saved form and `outputs` the outputs saved
/// beside it, both held in memory because the page has already saved the link's over them.
/// `prompt`: the saved prompt, where the link replaced it.
#[component]
pub fn LinkReplaced(
    prompt: Option<String>,
    kept: String,
    outputs: Option<String>,
) -> impl IntoView {
    let shown = RwSignal::new(true);
    let said = match prompt.map(|p| crate::ui::format::excerpt(&p, 60)) {
        None => "This link changed the settings this browser had saved; the prompt is as it was."
            .to_string(),
        Some(quoted) if quoted.is_empty() => {
            "This link replaced the workspace this browser had saved.".to_string()
        }
        Some(quoted) => format!(
            "This link replaced the workspace this browser had saved (prompt \"{quoted}\")."
        ),
    };
    let bring_back = move |_| {
        super::save_workspace(&kept);
        saved_outputs::put_back(outputs.as_deref());
        // The link's own parameters go, its page flags (kiosk, threads, ...) stay.
        let flags =
            crate::ui::settings::address_flags(browser::location_search().trim_start_matches('?'));
        let sep = if flags.is_empty() { "" } else { "?" };
        browser::go_to(&format!("{}{sep}{flags}", browser::page_base()));
    };
    view! {
        <Show when=move || shown.get()>
            <p class="link-note" data-testid="link-replaced" role="status">
                {said.clone()}
                " "
                <button type="button" class="small" data-testid="restore-workspace" on:click=bring_back.clone()>
                    "Bring mine back"
                </button>
                " "
                <button type="button" class="small" on:click=move |_| shown.set(false)>
                    "Keep the link's"
                </button>
            </p>
        </Show>
    }
}
