//! The generated text as coloured tokens, the colour legend, and the token inspector.
//! Token text is inserted as text nodes, never as HTML.

use leptos::prelude::*;

use super::pane_state::Pane;
use crate::protocol::TokenEvent;
use crate::ui::colors::{frac_p, legend, token_color, ColorMode, RankBucket, TokenNumbers};
use crate::ui::format;
use crate::ui::keys::arrow_target;

#[component]
pub fn ColorSwitch(pane: Pane) -> impl IntoView {
    let app = expect_context::<super::AppState>();
    let mode = move || pane.settings.with(|s| s.color_mode);
    view! {
        // The ARIA radio-group pattern: one Tab stop (the checked one); arrow keys, Home and
        // End move and check.
        <div
            class="color-switch"
            role="radiogroup"
            aria-label="Colour tokens by"
            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                let all = ColorMode::ALL;
                let at = all.iter().position(|m| *m == pane.settings.with_untracked(|s| s.color_mode));
                if let Some(next) = arrow_target(&ev.key(), at.unwrap_or(0), all.len()) {
                    ev.prevent_default();
                    pane.settings.update(|s| s.color_mode = all[next]);
                    if let Some(group) = ev
                        .current_target()
                        .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
                    {
                        let radio = format!("[data-testid=color-{}]", all[next].id());
                        if let Some(el) = group.query_selector(&radio).ok().flatten().and_then(|e| {
                            wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok()
                        }) {
                            let _ = el.focus();
                        }
                    }
                }
            }
        >
            <span class="muted">"Colour by"</span>
            {ColorMode::ALL
                .into_iter()
                .map(|m| {
                    view! {
                        <button
                            type="button"
                            role="radio"
                            data-testid=format!("color-{}", m.id())
                            aria-checked=move || (mode() == m).to_string()
                            tabindex=move || if mode() == m { "0" } else { "-1" }
                            class:active=move || mode() == m
                            on:click=move |_| pane.settings.update(|s| s.color_mode = m)
                        >
                            {m.label()}
                        </button>
                    }
                })
                .collect_view()}
            <span class="legend" aria-label="legend">
                {move || {
                    legend(mode(), app.units.get())
                        .into_iter()
                        .map(|(color, label)| {
                            view! {
                                <span class="legend-item">
                                    <span class="swatch" style:background-color=color></span>
                                    {label}
                                </span>
                            }
                        })
                        .collect_view()
                }}
            </span>
        </div>
    }
}

#[component]
pub fn TokenOutput(pane: Pane) -> impl IntoView {
    let app = expect_context::<super::AppState>();
    // Keys only: a new token must not clone every token before it (long runs are thousands).
    let items = move || {
        pane.shown(|r| {
            (0..r.tokens.len())
                .map(|i| (r.run_id, i))
                .collect::<Vec<_>>()
        })
    };
    let list = NodeRef::<leptos::html::Span>::new();
    follow_marks(pane, list);
    let color_mode = Memo::new(move |_| pane.settings.with(|s| s.color_mode));
    follow_colors(pane, list, color_mode);
    // A scope of its own for each run's spans, dropped when another run is shown: the list's
    // parent keeps an entry for each row it ever had while it lives (72 bytes a token).
    let run = Memo::new(move |_| pane.shown(|r| r.run_id));
    let spans = move || {
        // Read, not only tracked: a memo that is never read is never computed, and so never
        // changes (`track` alone left every run in the one scope).
        let _this_run = run.get();
        view! {
            <For each=items key=|k| *k let:item>
                {pane
                    .shown_untracked(|r| r.tokens.get(item.1).cloned())
                    .map(|token| {
                        let mode = color_mode.get_untracked();
                        view! { <TokenSpan pane mode index=item.1 token /> }
                    })}
            </For>
        }
    };
    view! {
        <div
            class="output"
            data-testid="output"
            data-state=move || pane.shown(|r| r.phase.id())
            data-prompt-tokens=move || pane.shown(|r| r.prompt_ids.len().to_string())
            data-partial=move || pane.shown(|r| r.partial.to_string())
            aria-live="off"
            on:mouseleave=move |_| pane.hovered.set(None)
            on:scroll=move |ev| {
                if app.sync_scroll.get_untracked() {
                    super::browser::sync_scroll(&event_target::<web_sys::Element>(&ev), ".output");
                }
            }
        >
            <span class="context" data-testid="context">{move || pane.shown(|r| r.prefix.clone())}</span>
            <span class="tokens" node_ref=list>{spans}</span>
            <span
                class="caret"
                class:hidden=move || pane.shown(|r| r.phase != super::pane_state::OutputPhase::Running)
            ></span>
        </div>
    }
}

/// What marks one token among the others: the one inspected, the one kept, the fork point,
/// and the one tab stop (the token inspected, else the first).
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Marks {
    inspected: Option<usize>,
    pinned: Option<usize>,
    fork_at: Option<usize>,
    tab_stop: usize,
}

impl Marks {
    /// Read reactively: an effect that calls this runs again when a mark moves.
    fn read(pane: Pane) -> Self {
        let inspected = pane.inspected();
        Marks {
            inspected,
            pinned: pane.pinned.get(),
            fork_at: pane.shown(|r| r.fork.as_ref().map(|f| f.at)),
            tab_stop: inspected.unwrap_or(0),
        }
    }

    pub fn now(pane: Pane) -> Self {
        untrack(|| Self::read(pane))
    }

    fn classes(&self, index: usize) -> [(&'static str, bool); 3] {
        [
            ("selected", self.inspected == Some(index)),
            ("pinned", self.pinned == Some(index)),
            ("fork-point", self.fork_at == Some(index)),
        ]
    }

    fn tabindex(&self, index: usize) -> &'static str {
        if self.tab_stop == index {
            "0"
        } else {
            "-1"
        }
    }

    /// The tokens these marks set apart from the rest.
    fn indices(&self) -> impl Iterator<Item = usize> {
        [
            self.inspected,
            self.pinned,
            self.fork_at,
            Some(self.tab_stop),
        ]
        .into_iter()
        .flatten()
    }

    fn apply(&self, span: &web_sys::Element, index: usize) {
        let classes = span.class_list();
        for (name, on) in self.classes(index) {
            let _ = classes.toggle_with_force(name, on);
        }
        let _ = span.set_attribute("tabindex", self.tabindex(index));
    }
}

/// Keeps the marks on the token spans in `list` (its children, in token order), from one
/// effect for the whole output that touches only the tokens whose marks moved. A reactive
/// class on each span was five effects a token, and each stayed in the page's memory after
/// its span had gone (about 0.5 KB a token, for every token shown since the page opened).
pub fn follow_marks(pane: Pane, list: NodeRef<leptos::html::Span>) {
    Effect::new(move |before: Option<Marks>| {
        let now = Marks::read(pane);
        // Spans are drawn with the marks of their moment, so only a move needs work here (the
        // effect also runs at every token streamed, which moves nothing).
        if before == Some(now) {
            return now;
        }
        if let Some(list) = list.get() {
            let spans = list.children();
            for index in before.iter().flat_map(Marks::indices).chain(now.indices()) {
                if let Some(span) = u32::try_from(index).ok().and_then(|i| spans.item(i)) {
                    now.apply(&span, index);
                }
            }
        }
        now
    });
}

/// Colours the spans in `list` (the shown run's tokens, in order) anew when the colour mode
/// changes. Spans are drawn in the mode of their moment; this one pass stands in for a colour
/// effect on each span (see [`follow_marks`]).
fn follow_colors(pane: Pane, list: NodeRef<leptos::html::Span>, mode: Memo<ColorMode>) {
    use wasm_bindgen::JsCast;
    Effect::new(move |before: Option<ColorMode>| {
        let now = mode.get();
        if before.is_some_and(|b| b != now) {
            if let Some(list) = list.get_untracked() {
                let spans = list.children();
                pane.shown_untracked(|r| {
                    for (i, token) in r.tokens.iter().enumerate() {
                        let span = u32::try_from(i)
                            .ok()
                            .and_then(|i| spans.item(i))
                            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
                        if let Some(span) = span {
                            let color = token_color(now, numbers(token));
                            let _ = span.style().set_property("background-color", &color);
                        }
                    }
                });
            }
        }
        now
    });
}

/// A token's numbers, as its colour reads them.
fn numbers(token: &TokenEvent) -> TokenNumbers {
    TokenNumbers {
        entropy: token.entropy,
        surprisal: token.surprisal,
        rank: token.rank,
        frac_p: frac_p(token.surprisal, token.rank, token.top.first().map(|a| a.p)),
    }
}

/// One token of an output, drawn once: its marks as they are now (then kept by
/// [`follow_marks`]) and its colour in `mode`.
#[component]
pub fn TokenSpan(pane: Pane, mode: ColorMode, index: usize, token: TokenEvent) -> impl IntoView {
    let top_p = token.top.first().map(|a| a.p);
    let numbers = numbers(&token);
    let (e, s, r) = (numbers.entropy, numbers.surprisal, numbers.rank);
    let marks = Marks::now(pane);
    let [(_, selected), (_, pinned), (_, fork_point)] = marks.classes(index);
    // Part of a character that the next token completes has no text of its own, and gets
    // none from the stylesheet either (a sliver of text there split combining marks from
    // their base): the token after it is marked instead, and the arrow keys reach it.
    let shown = token.piece.clone();
    // A token that writes nothing and is no part of a character (an end of text the file adds
    // after a scored text, a control or unused token): its name, drawn by the stylesheet so
    // that it stays out of the text a user copies.
    let special =
        (token.piece.is_empty() && !token.text.is_empty() && !token.text.contains('\u{FFFD}'))
            .then(|| format::visible_token(&token.text));
    view! {
        <span
            class="tok"
            class:partial=token.piece.is_empty() && special.is_none()
            class:special=special.is_some()
            data-special=special
            class:newline=format::is_line_break(&token.piece)
            class:selected=selected
            class:fork-point=fork_point
            class:pinned=pinned
            // One tab stop for the whole output (the token inspected, else the first): a
            // keyboard user crossed every token to reach the next control. The arrow keys move
            // between tokens.
            tabindex=marks.tabindex(index)
            data-testid="token"
            data-token-id=token.id.to_string()
            data-entropy=e.to_string()
            data-surprisal=s.to_string()
            data-rank=r.to_string()
            data-top-p=top_p.map(|p| p.to_string()).unwrap_or_default()
            data-fracp=numbers.frac_p.to_string()
            style:background-color=token_color(mode, numbers)
            on:mouseenter=move |_| pane.hovered.set(Some(index))
            on:focus=move |_| pane.hovered.set(Some(index))
            on:click=move |_| pane.pin(Some(index))
            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                match ev.key().as_str() {
                    "Enter" => pane.pin(Some(index)),
                    "Escape" => pane.pin(None),
                    key @ ("ArrowRight" | "ArrowLeft" | "Home" | "End") => {
                        ev.prevent_default();
                        focus_token(&ev, key);
                    }
                    _ => {}
                }
            }
        >
            {shown}
        </span>
    }
}

#[component]
pub fn Inspector(pane: Pane) -> impl IntoView {
    let app = expect_context::<super::AppState>();
    let units = app.units;
    // A memo: the view below is rebuilt only when the token shown changes, not on every move
    // of the pointer, so what is typed in its fork box stays there.
    let current = Memo::new(move |_| {
        pane.inspected()
            .and_then(|i| pane.shown(|r| r.tokens.get(i).cloned().map(|t| (i, t))))
    });
    // Forks are of generations and of the conversation's last reply, once they are done: a
    // click on an alternative goes on from there with that token instead.
    // Memos, read when the view below is drawn, and no reactive attribute inside it: it is
    // drawn anew for each token pointed at, and each effect drawn there that read the pane's
    // state or the units stayed in the page's memory after it (about 1 KB a token pointed at).
    let can_fork = Memo::new(move |_| pane.can_fork());
    let in_chat = Memo::new(move |_| app.mode.get() == crate::ui::settings::Mode::Chat);
    view! {
        // Escape lets a kept token go from the inspector's own buttons too, where Tab goes
        // from the output.
        // Not a live region itself: it rewrites some 300 characters on each move. A screen
        // reader hears the one line below instead (token, probability, rank, surprisal).
        <div
            class="inspector"
            data-testid="token-inspector"
            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                if ev.key() == "Escape" {
                    pane.pin(None);
                }
            }
        >
            <p class="sr-only" aria-live="polite" data-testid="token-inspector-said">
                {move || current.get().map(|(i, t)| {
                    format!(
                        "{} (#{}): probability {}, rank {}, surprisal {:.2} {}",
                        format::visible_token(&t.text),
                        i + 1,
                        format::probability((-t.surprisal).exp()),
                        t.rank,
                        units.get().of(t.surprisal),
                        units.get().id()
                    )
                })}
            </p>
            {move || match current.get() {
                None => {
                    view! {
                        <p class="muted">
                            "Point at a token, or Tab to the output and move with the arrow keys, to see how sure the model was; a click (or Enter) keeps it here, Escape lets it go."
                        </p>
                    }
                        .into_any()
                }
                Some((i, t)) => {
                    let (can_fork, unit) = (can_fork.get(), units.get());
                    // A blind battle's ids would tell the vocabularies, so the models, apart.
                    let blind = app.arena_hidden_untracked();
                    let cannot_fork = if in_chat.get() {
                        "Forks are made from the conversation's last reply, once it is done"
                    } else {
                        "Forks are made from a finished generation"
                    };
                    let p = (-t.surprisal).exp();
                    let (entropy, surprisal) = (t.entropy, t.surprisal);
                    let bucket = RankBucket::of(t.rank);
                    view! {
                        <div class="inspector-head">
                            <code class="tok-text">{format::visible_token(&t.text)}</code>
                            {format::byte_piece_note(&t.text, &t.piece).map(|note| view! {
                                <span class="muted" data-testid="token-bytes-note">{note}</span>
                            })}
                            <span title="the token's place in the output, counted from 1">
                                {if blind {
                                    format!("#{}", i + 1)
                                } else {
                                    format!("#{} · id {}", i + 1, t.id)
                                }}
                            </span>
                        </div>
                        <dl class="inspector-stats">
                            <dt>"probability"</dt>
                            <dd>{format::probability(p)}</dd>
                            <dt>"rank"</dt>
                            // Counted from 0, as the data, the export and the CLI count it.
                            <dd>{match t.rank {
                                0 => format!("0: the most likely ({})", bucket.label()),
                                r => format!(
                                    "{r}: the {} most likely ({})",
                                    crate::eval::tasks::ordinal(r + 1),
                                    bucket.label()
                                ),
                            }}</dd>
                            <dt title="GLTR: this token's probability over the most likely token's">"frac(p)"</dt>
                            <dd>{format!("{:.3}", frac_p(t.surprisal, t.rank, t.top.first().map(|a| a.p)))}</dd>
                            <dt>"entropy"</dt>
                            <dd>{format!("{:.3} {}", unit.of(entropy), unit.id())}</dd>
                            <dt>"surprisal"</dt>
                            <dd>{format!("{:.3} {}", unit.of(surprisal), unit.id())}</dd>
                        </dl>
                        <ol class="alternatives">
                            {t
                                .top
                                .iter()
                                .map(|a| {
                                    let chosen = a.id == t.id;
                                    let (id, text) = (a.id, format::visible_token(&a.text));
                                    let label = text.clone();
                                    view! {
                                        <li class:chosen=chosen>
                                            <button
                                                type="button"
                                                class="alternative"
                                                data-testid="token-alternative"
                                                data-token-id=id.to_string()
                                                title=if chosen {
                                                    "the token the run took".to_string()
                                                } else if can_fork {
                                                    format!("Fork here: continue with {label} instead")
                                                } else {
                                                    cannot_fork.to_string()
                                                }
                                                prop:disabled=chosen || !can_fork
                                                on:click={
                                                    let text = text.clone();
                                                    move |_| pane.fork(i, id, &text)
                                                }
                                            >
                                                <code>{text.clone()}</code>
                                                <span class="bar" style:width=format!("{:.1}%", a.p * 100.0)></span>
                                                <span class="p">{format::probability(a.p)}</span>
                                            </button>
                                        </li>
                                    }
                                })
                                .collect_view()}
                        </ol>
                        <ForkText pane at=i can_fork />
                        <p class="muted fork-settings" data-testid="fork-settings" class:hidden=!can_fork>
                            {pane.shown_untracked(|r| r.request.as_ref().map(fork_settings)).unwrap_or_default()}
                        </p>
                    }
                        .into_any()
                }
            }}
        </div>
    }
}

/// What a fork keeps of the output it forks: its settings, not the boxes' values now, so that
/// branches differ only where they were forked.
fn fork_settings(q: &crate::engine::GenerateRequest) -> String {
    let s = &q.sampling;
    let how = if s.temperature == 0.0 {
        "greedy".to_string()
    } else {
        format!("temperature {}, seed {}", s.temperature, s.seed)
    };
    format!(
        "A fork goes on with this output's own settings ({how}, up to {} tokens), not the boxes' values now.",
        q.max_tokens
    )
}

/// "Or type a continuation": forks at token `at` to the typed text, which the worker
/// tokenizes and takes as given (for a continuation none of the five alternatives is).
#[component]
fn ForkText(pane: Pane, at: usize, can_fork: bool) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let go = move || {
        let t = text.get_untracked();
        if !t.is_empty() {
            pane.fork_text(at, &t);
            text.set(String::new());
        }
    };
    view! {
        <div class="fork-text" class:hidden=!can_fork>
            <input
                type="text"
                data-testid="fork-text"
                aria-label="A continuation to fork the output with, at this token"
                placeholder="or type a continuation to fork here"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" && !super::browser::composing(&ev) {
                        go();
                    }
                }
            />
            <button
                type="button"
                data-testid="fork-text-go"
                prop:disabled=move || text.with(String::is_empty)
                on:click=move |_| go()
            >
                "Fork"
            </button>
        </div>
    }
}

/// Moves the focus from the token an arrow key (or Home, End) was pressed on to the next, the
/// previous, the first or the last token of its output.
fn focus_token(ev: &leptos::ev::KeyboardEvent, key: &str) {
    use wasm_bindgen::JsCast;
    let Some(here) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
    else {
        return;
    };
    let is_token = |e: &web_sys::Element| e.class_list().contains("tok");
    let to = match key {
        "ArrowRight" => {
            std::iter::successors(here.next_element_sibling(), |e| e.next_element_sibling())
                .find(is_token)
        }
        "ArrowLeft" => std::iter::successors(here.previous_element_sibling(), |e| {
            e.previous_element_sibling()
        })
        .find(is_token),
        _ => here.parent_element().and_then(|output| {
            let all = output.query_selector_all(".tok").ok()?;
            let at = if key == "Home" {
                0
            } else {
                all.length().checked_sub(1)?
            };
            all.item(at)
                .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
        }),
    };
    if let Some(el) = to.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
        let _ = el.focus();
    }
}
