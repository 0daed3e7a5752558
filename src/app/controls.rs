//! A pane's generation settings: sampling, max tokens, seed, chat mode, prompt repetition.

use leptos::prelude::*;

use super::pane_state::Pane;
use crate::ui::settings::PaneSettings;

/// A number input bound to one settings field. A value that does not parse leaves the setting
/// as it was, marks the field invalid and says so under it: the box shows the kept value
/// again, and without the note the typed one would seem taken.
#[component]
fn NumberField(
    pane: Pane,
    label: &'static str,
    testid: &'static str,
    step: &'static str,
    min: &'static str,
    max: &'static str,
    get: fn(&PaneSettings) -> String,
    set: fn(&mut PaneSettings, &str) -> bool,
    #[prop(optional)] title: &'static str,
) -> impl IntoView {
    let refused = RwSignal::new(None::<String>);
    let invalid = move || refused.with(Option::is_some);
    view! {
        <label class="field" title=title>
            <span>{label}</span>
            <input
                type="number"
                data-testid=testid
                step=step
                min=min
                max=max
                class:invalid=invalid
                aria-invalid=move || invalid().to_string()
                prop:value=move || pane.settings.with(get)
                on:change=move |ev| {
                    let v = event_target_value(&ev);
                    // A number box reports what it cannot read as a number (`1e309`, `1e`,
                    // `--1`) as empty: its validity says which it was (read before the box is
                    // set back to the value in use, which clears it).
                    let unreadable = {
                        let input: wasm_bindgen::JsValue = event_target::<web_sys::HtmlInputElement>(&ev).into();
                        js_sys::Reflect::get(&input, &"validity".into())
                            .and_then(|v| js_sys::Reflect::get(&v, &"badInput".into()))
                            .is_ok_and(|b| b.as_bool() == Some(true))
                    };

                    // The box's own range too: a value past it would run now and be clamped
                    // after a reload (`PaneSettings::clamp`), so the two would disagree.
                    let bound = |b: &str, or: f64| b.parse::<f64>().unwrap_or(or);
                    let in_range = v.trim().parse::<f64>().map_or(true, |x| {
                        x >= bound(min, f64::MIN) && x <= bound(max, f64::MAX)
                    });
                    let mut ok = false;
                    if in_range {
                        pane.settings.update(|s| ok = set(s, v.trim()));
                    }
                    if !ok {
                        // The box shows the value in use again, as the note says.
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        input.set_value(&pane.settings.with_untracked(get));
                    }
                    refused.set((!ok).then(|| {
                        let typed = if unreadable {
                            "What was typed".to_string()
                        } else if v.trim().is_empty() {
                            "An empty box".to_string()
                        } else {
                            let shown: String = v.trim().chars().take(24).collect();
                            format!("“{shown}”")
                        };
                        format!(
                            "{typed} is not a {label} value ({}); kept {}.",
                            if min.starts_with('-') || step.contains('.') {
                                format!("a number from {min} to {max}")
                            } else {
                                format!("a whole number from {min} to {max}")
                            },
                            pane.settings.with_untracked(get)
                        )
                    }));
                }
            />
            <Show when=invalid>
                <span class="field-error" data-testid="field-error" role="alert">
                    {move || refused.get().unwrap_or_default()}
                </span>
            </Show>
        </label>
    }
}

fn parse_into<T: std::str::FromStr>(slot: &mut T, v: &str) -> bool {
    match v.parse() {
        Ok(x) => {
            *slot = x;
            true
        }
        Err(_) => false,
    }
}

/// As `parse_into` for a whole number, also written as a number box takes one (`1e1`, `40.0`),
/// read as a link's is.
fn parse_whole_into<T: std::str::FromStr + TryFrom<u64>>(slot: &mut T, v: &str) -> bool {
    if parse_into(slot, v) {
        return true;
    }
    let whole = crate::ui::settings::whole_number(v).and_then(|x| T::try_from(x).ok());
    whole.map(|x| *slot = x).is_some()
}

/// As `parse_into`, with `-0` read as 0, so the box and the link show "0", not "-0".
fn parse_float_into(slot: &mut f32, v: &str) -> bool {
    parse_into(slot, v) && {
        *slot += 0.0;
        true
    }
}

#[component]
pub fn Controls(pane: Pane) -> impl IntoView {
    view! {
        <div class="controls">
            <NumberField pane label="Temperature" testid="temperature" step="0.05" min="0" max="5"
                title="0 is greedy: always the most likely token"
                get=|s| s.temperature.to_string()
                set=|s, v| parse_float_into(&mut s.temperature, v) />
            <NumberField pane label="Top-k" testid="top-k" step="1" min="0" max="100000"
                title="Keep the k most likely tokens (0 = off)"
                get=|s| s.top_k.to_string()
                set=|s, v| parse_whole_into(&mut s.top_k, v) />
            <NumberField pane label="Top-p" testid="top-p" step="0.01" min="0.01" max="1"
                title="Keep the smallest set with this much probability (1 = off)"
                get=|s| s.top_p.to_string()
                set=|s, v| parse_float_into(&mut s.top_p, v) />
            <NumberField pane label="Min-p" testid="min-p" step="0.01" min="0" max="1"
                title="Drop tokens less likely than this fraction of the best (0 = off)"
                get=|s| s.min_p.to_string()
                set=|s, v| parse_float_into(&mut s.min_p, v) />
            <NumberField pane label="Repeat penalty" testid="repeat-penalty" step="0.05" min="0.5" max="2"
                title="Penalise recently used tokens (1 = off)"
                get=|s| s.repeat_penalty.to_string()
                set=|s, v| parse_float_into(&mut s.repeat_penalty, v) />
            <NumberField pane label="Max tokens" testid="max-tokens" step="1" min="1" max="4096"
                get=|s| s.max_tokens.to_string()
                set=|s, v| parse_whole_into(&mut s.max_tokens, v) />
            <NumberField pane label="Seed" testid="seed" step="1" min="0" max="18446744073709551615"
                title="The same seed and settings give the same tokens"
                get=|s| s.seed.to_string()
                set=|s, v| parse_whole_into(&mut s.seed, v) />
            <label class="check" title="Wrap the prompt in the model's own chat template">
                <input
                    type="checkbox"
                    data-testid="chat-mode"
                    prop:checked=move || pane.settings.with(|s| s.chat)
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        pane.settings.update(|s| s.chat = on);
                    }
                />
                "Chat mode"
            </label>
            <label class="check" title="Send the prompt twice (Leviathan et al., prompt repetition)">
                <input
                    type="checkbox"
                    data-testid="repeat-prompt"
                    prop:checked=move || pane.settings.with(|s| s.repeat_prompt)
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        pane.settings.update(|s| s.repeat_prompt = on);
                    }
                />
                "Repeat prompt"
            </label>
        </div>
    }
}
