//! A pane's conversation (the Chat tab): the system prompt, the turns as bubbles (the model's
//! coloured token by token, as in Generate), the reply as it streams, and the input. Each
//! turn reuses the KV cache of the history, so only the new message is computed; the line
//! under the bubbles says how much was reused and whether old turns had to be left out. The
//! last reply's tokens are inspected as Generate's are, and a fork from the inspector replaces
//! that reply with its branch (the branch chooser switches between them).

use leptos::prelude::*;

use super::branches::Branches;
use super::pane_state::{OutputPhase, Pane, Queued};
use super::tokens::{follow_marks, TokenSpan};
use super::AppState;
use crate::ui::colors::{token_color, TokenNumbers};
use crate::ui::settings::TurnToken;

#[component]
pub fn ChatView(pane: Pane) -> impl IntoView {
    let app = expect_context::<AppState>();
    // The model chosen but not loaded (a fresh page's default): Send loads it first.
    let chosen_not_loaded = move || app.chosen_not_loaded(pane);
    // Memos: the bubbles are redrawn when these change, not at every token of the reply.
    let running = Memo::new(move |_| pane.chat(|r| r.phase == OutputPhase::Running));
    let running = move || running.get();
    // The last reply shows its tokens as Generate does (to inspect, and fork from the
    // inspector) while it is the conversation's last turn; while one of its forks (or a
    // regenerated reply) runs, that streams in its place.
    let reply = NodeRef::<leptos::html::Span>::new();
    follow_marks(pane, reply);
    let inspectable =
        Memo::new(move |_| pane.chat(|r| r.finished_with_tokens()) && pane.chat_tree_is_current());
    let forking =
        Memo::new(move |_| pane.chat(|r| r.phase == OutputPhase::Running && r.replaces_reply()));
    // A changed system prompt takes the reply's tokens and forks away until it is put back.
    let system_changed = Memo::new(move |_| {
        pane.chat(|r| {
            r.finished_with_tokens()
                && r.request.as_ref().is_some_and(|q| {
                    pane.settings
                        .with(|s| s.conversation.system_changed_since(&q.messages))
                })
        })
    });
    let send = move || {
        let text = pane
            .settings
            .with_untracked(|s| s.conversation.draft.clone());
        if text.trim().is_empty() || pane.is_running() || app.arena_waiting_untracked() {
            return;
        }
        if pane.is_ready() {
            pane.send_chat(&text);
        } else if chosen_not_loaded() {
            app.start_on(pane, Queued::Chat);
        }
    };
    // Memos: typing in the input box (the draft is kept with the settings) does not redraw
    // the bubbles.
    let system = Memo::new(move |_| pane.settings.with(|s| s.conversation.system.clone()));
    let system = move || system.get();
    let turns = Memo::new(move |_| pane.settings.with(|s| s.conversation.turns.clone()));
    let turns = move || turns.get();
    let has_system = move || !system().trim().is_empty();
    // Turns the last run left out (the oldest ones), counted in the conversation's turns.
    // The running (or last) reply's, else the saved conversation's (after a reload).
    let saved_left_out = Memo::new(move |_| pane.settings.with(|s| s.conversation.left_out));
    let left_out = move || {
        pane.chat(|r| {
            r.request
                .as_ref()
                .is_some_and(|q| !q.messages.is_empty())
                .then_some(r.left_out)
        })
        .unwrap_or_else(|| saved_left_out.get())
    };
    let color_mode = Memo::new(move |_| pane.settings.with(|s| s.color_mode));
    let color = move |t: &TurnToken| {
        let n = TokenNumbers {
            entropy: t.entropy,
            surprisal: t.surprisal,
            rank: t.rank,
            frac_p: crate::ui::colors::frac_p(t.surprisal, t.rank, t.best_p),
        };
        token_color(color_mode.get(), n)
    };
    // Follow the conversation: a new turn or a new token of the reply scrolls to the bottom.
    let list: NodeRef<leptos::html::Ol> = NodeRef::new();
    Effect::new(move |_| {
        let _ = turns().len();
        let _ = pane.chat(|r| r.tokens.len());
        if let Some(el) = list.get() {
            el.set_scroll_top(el.scroll_height());
        }
    });
    view! {
        <section
            class="chat"
            data-testid="chat"
            data-state=move || pane.chat(|r| r.phase.id())
            data-prompt-tokens=move || pane.chat(|r| r.prompt_ids.len().to_string())
            data-reused-tokens=move || pane.chat(|r| r.reused.to_string())
            data-prompt-ids=move || {
                pane.chat(|r| r.prompt_ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(","))
            }
            data-left-out=move || left_out().to_string()
        >
            <label class="field chat-system">
                <span>"System prompt"</span>
                <textarea
                    data-testid="chat-system"
                    rows="2"
                    placeholder="Optional: how the model should behave"
                    prop:value=system
                    prop:disabled=running
                    on:input=move |ev| {
                        let v = event_target_value(&ev);
                        pane.settings.update(|s| s.conversation.system = v);
                    }
                ></textarea>
            </label>
            <Show when=move || { left_out() > 0 }>
                <p class="chat-note" data-testid="chat-left-out">
                    {move || format!(
                        "The {} oldest messages no longer fit the model's context and were left out of the last reply's prompt (shown faded).",
                        left_out()
                    )}
                </p>
            </Show>
            <ol class="chat-turns" node_ref=list on:mouseleave=move |_| pane.hovered.set(None)>
                <Show when=has_system>
                    <li class="bubble system" data-testid="chat-turn" data-role="system" data-turn-index="0">
                        <span class="who">"system"</span>
                        <span class="text">{system}</span>
                    </li>
                </Show>
                {move || {
                    let offset = usize::from(has_system());
                    let all = turns();
                    let last = all.len().saturating_sub(1);
                    all.into_iter()
                        .enumerate()
                        .map(|(i, t)| {
                            let user = t.role == "user";
                            if !user && i == last && forking.get() {
                                return ().into_any();
                            }
                            let body = if !user && i == last && inspectable.get() {
                                let mode = color_mode.get();
                                let spans = pane
                                    .chat_untracked(|r| r.tokens.clone())
                                    .into_iter()
                                    .enumerate()
                                    .map(|(index, token)| view! { <TokenSpan pane mode index token /> })
                                    .collect_view();
                                view! { <span class="tokens" node_ref=reply>{spans}</span> }.into_any()
                            } else if t.tokens.is_empty() {
                                view! { <span class="text">{t.content.clone()}</span> }.into_any()
                            } else {
                                t.tokens
                                    .iter()
                                    .map(|k| {
                                        let c = color(k);
                                        view! {
                                            <span class="tok" data-token-id=k.id.to_string() style:background-color=c>
                                                {k.piece.clone()}
                                            </span>
                                        }
                                    })
                                    .collect_view()
                                    .into_any()
                            };
                            let action = if user {
                                // The last message has no reply when a reload or a failure cut
                                // it off: it can be answered as it is.
                                let unanswered = (i == last && !running()).then(|| view! {
                                    <AskAgain pane testid="chat-answer" title="This message has no reply yet: ask for one" label="Reply" />
                                });
                                view! {
                                    <button
                                        type="button"
                                        class="small"
                                        data-testid="chat-edit"
                                        title="Edit this message and send it again: the turns after it are dropped"
                                        prop:disabled=running
                                        on:click=move |_| {
                                            if let Some(text) = pane.edit_turn(i) {
                                                pane.return_to_draft(text);
                                            }
                                        }
                                    >
                                        "Edit"
                                    </button>
                                    {unanswered}
                                }
                                    .into_any()
                            } else if i == last {
                                view! {
                                    <AskAgain pane testid="chat-regenerate" title="Ask for this reply again, from the next seed (greedy, at temperature 0, gives the same reply); both are kept as branches" label="Regenerate" />
                                }
                                    .into_any()
                            } else {
                                ().into_any()
                            };
                            view! {
                                <li
                                    class="bubble"
                                    class:user=user
                                    class:assistant=!user
                                    class:left-out=move || i < left_out()
                                    data-testid="chat-turn"
                                    data-role=t.role.clone()
                                    data-turn-index=(i + offset).to_string()
                                >
                                    <span class="who">{if user { "you" } else { "model" }}</span>
                                    <span class="text">{body}</span>
                                    {action}
                                </li>
                            }
                                .into_any()
                        })
                        .collect_view()
                }}
                <Show when=running>
                    <li class="bubble assistant live" data-testid="chat-live">
                        <span class="who">"model"</span>
                        <span class="text">
                            {move || pane.chat(|r| r.tokens.iter().map(|t| t.piece.clone()).collect::<String>())}
                        </span>
                    </li>
                </Show>
            </ol>
            <Show when=move || system_changed.get()>
                <p class="chat-note" data-testid="chat-fork-note">
                    "The system prompt has changed since this reply: its tokens and branches come back with the one it answered. A new message or Regenerate uses the new one."
                </p>
            </Show>
            <Branches pane />
            <div class="chat-input-row">
                <textarea
                    data-testid="chat-input"
                    aria-label="Message"
                    rows="2"
                    placeholder="Message (Enter sends, Shift+Enter for a new line)"
                    prop:value=move || pane.chat_draft()
                    on:input=move |ev| pane.set_chat_draft(event_target_value(&ev))
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if ev.key() == "Enter" && !ev.shift_key() && !super::browser::composing(&ev) {
                            ev.prevent_default();
                            send();
                        }
                    }
                ></textarea>
                <button
                    type="button"
                    class="primary"
                    data-testid="chat-send"
                    // Nothing to send: off, as in any chat, rather than a click that does nothing.
                    prop:disabled=move || {
                        running()
                            || app.arena_waiting()
                            || !(pane.is_ready() || chosen_not_loaded())
                            || pane.chat_draft().trim().is_empty()
                    }
                    on:click=move |_| send()
                >
                    "Send"
                </button>
                // Whatever the pane runs (a generation or an evaluation too, as the line below
                // says): Stop ends it.
                // A blind battle's panes show the battle's state, as on the Generate tab.
                <button
                    type="button"
                    data-testid="stop"
                    prop:disabled=move || !pane.is_running() && !pane.has_queued() && !app.arena_waiting()
                    on:click=move |_| pane.stop()
                >
                    "Stop"
                </button>
                <button
                    type="button"
                    data-testid="chat-clear"
                    prop:disabled=running
                    on:click=move |_| pane.clear_chat()
                >
                    "Clear"
                </button>
            </div>
            <p class="run-message muted" data-testid="chat-message" role="status">
                {move || {
                    // A message left without its reply (the page was reloaded while it came)
                    // is not "done", whatever the last reply before it said.
                    let unanswered = pane.settings.with(|s| {
                        s.conversation.turns.last().is_some_and(|t| t.role == "user")
                    });
                    let busy = pane.state.with(|s| s.busy_elsewhere(crate::ui::settings::Mode::Chat));
                    if let Some(busy) = busy {
                        return busy;
                    }
                    // As the Generate tab's: a blind battle's prompt sizes and speeds name
                    // its models.
                    let blind = app.arena_hidden();
                    pane.chat(|r| match r.phase {
                        OutputPhase::Running | OutputPhase::Done if blind => String::new(),
                        OutputPhase::Running | OutputPhase::Error => r.message.clone(),
                        _ if unanswered => "Your last message has no reply yet: Reply asks for one.".into(),
                        _ => r.message.clone(),
                    })
                }}
            </p>
        </section>
    }
}

/// Regenerate on the last reply, Reply on a last message that never got one: both ask the
/// model for the conversation's last reply (`Pane::regenerate`).
#[component]
fn AskAgain(
    pane: Pane,
    testid: &'static str,
    title: &'static str,
    label: &'static str,
) -> impl IntoView {
    let running = move || pane.chat(|r| r.phase == OutputPhase::Running);
    view! {
        <button
            type="button"
            class="small"
            data-testid=testid
            title=title
            prop:disabled=running
            on:click=move |_| pane.regenerate()
        >
            {label}
        </button>
    }
}
