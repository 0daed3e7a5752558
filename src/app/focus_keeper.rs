//! Keeps keyboard focus on the page when the control that had it is disabled or removed: Run
//! while its run goes, Stop when the run ends, a vote, a preset, a removed pane, a fork's
//! alternative. The browser sends focus to the body then, and a keyboard or screen-reader user
//! loses their place. Focus goes instead to the first usable control in the nearest enclosing
//! element that still has one: Stop after Run, Run after Stop, the next pane after a removal.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Element, HtmlElement};

const USABLE: &str = "button:not([disabled]), input:not([disabled]), select:not([disabled]), \
                      textarea:not([disabled]), [tabindex=\"0\"], a[href]";

pub fn start() {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    // The focused element and its ancestors, taken when it got focus: once it is gone from
    // the page, its ancestors still say where it was.
    let path: Rc<RefCell<Vec<Element>>> = Rc::default();
    let on_focus = {
        let path = path.clone();
        Closure::<dyn FnMut(web_sys::FocusEvent)>::new(move |ev: web_sys::FocusEvent| {
            let Some(el) = ev.target().and_then(|t| t.dyn_into::<Element>().ok()) else {
                return;
            };
            let mut chain = vec![el.clone()];
            let mut at = el.parent_element();
            while let Some(p) = at {
                at = p.parent_element();
                chain.push(p);
            }
            *path.borrow_mut() = chain;
        })
    };
    let _ = document.add_event_listener_with_callback_and_bool(
        "focusin",
        on_focus.as_ref().unchecked_ref(),
        true,
    );
    on_focus.forget();
    let doc = document.clone();
    let on_change = Closure::<dyn FnMut()>::new(move || {
        // A copy: the focus the rescue moves fires `focusin` at once, which writes the path.
        let lost = path.borrow().clone();
        rescue(&doc, &lost);
    });
    let Ok(observer) = web_sys::MutationObserver::new(on_change.as_ref().unchecked_ref()) else {
        return;
    };
    on_change.forget();
    let options = web_sys::MutationObserverInit::new();
    options.set_subtree(true);
    options.set_child_list(true);
    options.set_attributes(true);
    options.set_attribute_filter(&js_sys::Array::of1(&"disabled".into()));
    if let Some(body) = document.body() {
        let _ = observer.observe_with_options(&body, &options);
    }
}

fn rescue(document: &web_sys::Document, path: &[Element]) {
    let Some(lost) = path.first() else {
        return;
    };
    let disabled = |e: &Element| e.has_attribute("disabled");
    let on_body = match document.active_element() {
        None => true,
        Some(a) => {
            document.body().is_some_and(|b| a == *b.as_ref()) || (a == *lost && disabled(lost))
        }
    };
    // Focus left for a reason of its own (a click on plain text): the control is still there.
    if !on_body || (lost.is_connected() && !disabled(lost)) {
        return;
    }
    for outer in path.iter().skip(1).filter(|e| e.is_connected()) {
        let Ok(found) = outer.query_selector_all(USABLE) else {
            continue;
        };
        for i in 0..found.length() {
            let Some(el) = found.item(i).and_then(|n| n.dyn_into::<HtmlElement>().ok()) else {
                continue;
            };
            // Hidden ones (display: none) have no offset parent and take no focus.
            if el.offset_parent().is_some() {
                let _ = el.focus();
                return;
            }
        }
    }
}
