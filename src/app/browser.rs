//! Thin wrappers over browser APIs the components use: fetch, localStorage, the Cache API,
//! the URL and the theme. Failures come back as readable strings.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response};

use crate::protocol::MODEL_CACHE;

fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

fn describe(e: &wasm_bindgen::JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

async fn fetch(url: &str, method: &str) -> Result<Response, String> {
    let w = window().ok_or("no window")?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let p = w.fetch_with_str_and_init(url, &init);
    let r = JsFuture::from(p).await.map_err(|e| describe(&e))?;
    r.dyn_into::<Response>()
        .map_err(|_| "not a response".into())
}

pub async fn fetch_text(url: &str) -> Result<String, String> {
    let resp = fetch(url, "GET").await?;
    if !resp.ok() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let text = JsFuture::from(resp.text().map_err(|e| describe(&e))?)
        .await
        .map_err(|e| describe(&e))?;
    text.as_string().ok_or_else(|| "not text".into())
}

/// Whether the server has a file, without downloading it: `None` when its answer does not
/// say (no network, a server that refuses HEAD or fails), which is not "missing".
pub async fn exists(url: &str) -> Option<bool> {
    match fetch(url, "HEAD").await {
        Ok(r) if r.ok() => Some(true),
        Ok(r) if matches!(r.status(), 404 | 410) => Some(false),
        _ => None,
    }
}

/// Calls `f(key, new value)` when another tab or window of this origin changes localStorage
/// (the browser tells every page but the writer's).
pub fn on_storage_change(f: impl Fn(String, Option<String>) + 'static) {
    let Some(w) = window() else {
        return;
    };
    let cb =
        wasm_bindgen::closure::Closure::<dyn Fn(web_sys::Event)>::new(move |e: web_sys::Event| {
            let get = |k: &str| {
                js_sys::Reflect::get(&e, &k.into())
                    .ok()
                    .and_then(|v| v.as_string())
            };
            if let Some(key) = get("key") {
                f(key, get("newValue"));
            }
        });
    let _ = w.add_event_listener_with_callback("storage", cb.as_ref().unchecked_ref());
    // Listens for the page's lifetime.
    cb.forget();
}

/// A file dragged anywhere but a drop target (a pane, the evaluation panel) is refused, so a
/// missed drop does not make the browser open the file in place of the page (a kiosk's
/// visitor would be left on a raw file, or a download).
pub fn refuse_stray_file_drops() {
    let Some(w) = window() else {
        return;
    };
    let cb = wasm_bindgen::closure::Closure::<dyn Fn(web_sys::DragEvent)>::new(
        move |e: web_sys::DragEvent| {
            if e.default_prevented() || !super::model_loader::drags_files(&e) {
                return;
            }
            e.prevent_default();
            if let Some(dt) = e.data_transfer() {
                dt.set_drop_effect("none");
            }
        },
    );
    for kind in ["dragover", "drop"] {
        let _ = w.add_event_listener_with_callback(kind, cb.as_ref().unchecked_ref());
    }
    // Listens for the page's lifetime.
    cb.forget();
}

/// Calls `f` when this page's window gets the focus back (the user returns from another tab
/// or window, which may have changed what the browser keeps).
pub fn on_focus(f: impl Fn() + 'static) {
    let Some(w) = window() else {
        return;
    };
    let cb = wasm_bindgen::closure::Closure::<dyn Fn()>::new(f);
    let _ = w.add_event_listener_with_callback("focus", cb.as_ref().unchecked_ref());
    // Listens for the page's lifetime.
    cb.forget();
}

/// An Enter that ends an input method's composition (Japanese, Chinese, Korean…) picks the
/// composed text: it must not send or fork. Safari reports it as key code 229 instead.
pub fn composing(ev: &web_sys::KeyboardEvent) -> bool {
    ev.is_composing() || ev.key_code() == 229
}

/// What the browser says of the network (`navigator.onLine`): `false` is sure, `true` is not.
pub fn says_online() -> bool {
    window().is_none_or(|w| w.navigator().on_line())
}

thread_local! {
    static KIOSK: std::cell::OnceCell<bool> = const { std::cell::OnceCell::new() };
}

/// `key`, or kiosk mode's own form of it (`?demo=1`, as the page opened): an event's demos
/// and Reset overwrote the workspace, outputs and evaluation report of the page's usual use in
/// the same browser, and the kiosk opened on the last session's prompt and outputs.
pub fn own_key(key: &str) -> String {
    let kiosk = KIOSK.with(|k| {
        *k.get_or_init(|| {
            location_search()
                .trim_start_matches('?')
                .split('&')
                .any(|p| p == "demo=1")
        })
    });
    if kiosk {
        format!("{key}.kiosk")
    } else {
        key.to_string()
    }
}

/// The origin's lasting storage (localStorage), shared by every tab.
fn local() -> Option<web_sys::Storage> {
    window()?.local_storage().ok()?
}

/// This tab's own (sessionStorage: one per tab, kept through its reloads).
fn session() -> Option<web_sys::Storage> {
    window()?.session_storage().ok()?
}

fn get_in(store: Option<web_sys::Storage>, key: &str) -> Option<String> {
    store?.get_item(key).ok()?
}

/// Whether it was kept: storage full or disabled leaves the page working, only forgetful, and
/// a caller whose older value would then mislead can remove it.
fn set_in(store: Option<web_sys::Storage>, key: &str, value: &str) -> bool {
    store.is_some_and(|s| s.set_item(key, value).is_ok())
}

fn remove_in(store: Option<web_sys::Storage>, key: &str) {
    if let Some(s) = store {
        let _ = s.remove_item(key);
    }
}

pub fn local_get(key: &str) -> Option<String> {
    get_in(local(), key)
}

pub fn local_set(key: &str, value: &str) -> bool {
    set_in(local(), key, value)
}

pub fn local_remove(key: &str) {
    remove_in(local(), key)
}

pub fn session_get(key: &str) -> Option<String> {
    get_in(session(), key)
}

pub fn session_set(key: &str, value: &str) -> bool {
    set_in(session(), key, value)
}

pub fn session_remove(key: &str) {
    remove_in(session(), key)
}

/// What this tab saved under `key` (through its reloads), or else what any tab saved last (a
/// new tab's): with one copy only, two tabs brought back each other's at a reload.
pub fn tab_first_get(key: &str) -> Option<String> {
    session_get(key).or_else(|| local_get(key))
}

/// Saves `value` as this tab's copy and as the lasting one: whether the lasting one was kept,
/// and this tab's. This tab's copy that could not be written goes, or its older value would
/// win over the newer lasting one at the next reload.
pub fn set_both(key: &str, value: &str) -> (bool, bool) {
    let this_tab = session_set(key, value);
    if !this_tab {
        session_remove(key);
    }
    (local_set(key, value), this_tab)
}

pub fn location_search() -> String {
    window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default()
}

/// Sets an attribute on `<html>` (themes and kiosk mode are CSS on it).
pub fn set_root_attr(name: &str, value: &str) {
    if let Some(el) = window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = el.set_attribute(name, value);
    }
}

/// Focuses the first element `selector` finds, if any.
pub fn focus_selector(selector: &str) {
    use wasm_bindgen::JsCast;
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector(selector).ok().flatten())
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = el.focus();
    }
}

/// Scrolls the page so that the first element `selector` finds starts at the top of the view.
pub fn scroll_to_selector(selector: &str) {
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector(selector).ok().flatten())
    {
        el.scroll_into_view();
    }
}

pub fn set_theme(theme: &str) {
    if let Some(el) = window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = el.set_attribute("data-theme", theme);
    }
}

/// One model kept in the browser cache.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedModel {
    pub url: String,
    pub label: String,
    pub bytes: Option<u64>,
}

async fn open_cache() -> Result<Cache, String> {
    let caches = window().ok_or("no window")?.caches().map_err(|_| {
        "this browser keeps no cache here (it needs https or localhost)".to_string()
    })?;
    let c = JsFuture::from(caches.open(MODEL_CACHE))
        .await
        .map_err(|e| describe(&e))?;
    c.dyn_into::<Cache>().map_err(|_| "not a cache".into())
}

pub async fn cached_models() -> Result<Vec<CachedModel>, String> {
    let cache = open_cache().await?;
    let keys = JsFuture::from(cache.keys())
        .await
        .map_err(|e| describe(&e))?;
    let keys: js_sys::Array = keys.unchecked_into();
    let mut out = Vec::new();
    for k in keys.iter() {
        let req: web_sys::Request = k.unchecked_into();
        let url = req.url();
        let Some(resp) = JsFuture::from(cache.match_with_request(&req))
            .await
            .ok()
            .and_then(|r| r.dyn_into::<Response>().ok())
        else {
            continue;
        };
        let h = resp.headers();
        let bytes = h
            .get("content-length")
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok());
        let label = h
            .get("x-tinylab-label")
            .ok()
            .flatten()
            .and_then(|v| js_sys::decode_uri_component(&v).ok())
            .map(String::from)
            .unwrap_or_else(|| url.rsplit('/').next().unwrap_or(&url).to_string());
        out.push(CachedModel { url, label, bytes });
    }
    Ok(out)
}

pub async fn remove_cached(url: &str) -> Result<(), String> {
    let cache = open_cache().await?;
    JsFuture::from(cache.delete_with_str(url))
        .await
        .map_err(|e| describe(&e))?;
    Ok(())
}

pub async fn clear_cache() -> Result<(), String> {
    let caches = window()
        .ok_or("no window")?
        .caches()
        .map_err(|e| describe(&e))?;
    JsFuture::from(caches.delete(MODEL_CACHE))
        .await
        .map_err(|e| describe(&e))?;
    Ok(())
}

/// The absolute form of a page-relative URL, as the Cache API stores keys.
pub fn absolute(url: &str) -> String {
    window()
        .and_then(|w| w.document())
        .and_then(|d| d.base_uri().ok().flatten())
        .and_then(|base| web_sys::Url::new_with_base(url, &base).ok())
        .map(|u| u.href())
        .unwrap_or_else(|| url.to_string())
}

/// Scrolls every element matching `selector` to the same relative position as `source`.
/// Elements already there are left alone, so the scroll events this causes die out.
pub fn sync_scroll(source: &web_sys::Element, selector: &str) {
    let range = (source.scroll_height() - source.client_height()).max(1) as f64;
    let ratio = source.scroll_top() as f64 / range;
    let Some(list) = window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector_all(selector).ok())
    else {
        return;
    };
    for i in 0..list.length() {
        let Some(el) = list
            .item(i)
            .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
        else {
            continue;
        };
        if el == *source {
            continue;
        }
        let target = (ratio * (el.scroll_height() - el.client_height()).max(0) as f64) as i32;
        if (el.scroll_top() - target).abs() > 1 {
            el.set_scroll_top(target);
        }
    }
}

/// Saves `contents` as a download named `name`; nothing leaves the machine.
pub fn download(name: &str, mime: &str, contents: &str) -> Result<(), String> {
    let doc = window().and_then(|w| w.document()).ok_or("no document")?;
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(contents));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts)
        .map_err(|e| describe(&e))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| describe(&e))?;
    let a: web_sys::HtmlAnchorElement = doc
        .create_element("a")
        .map_err(|e| describe(&e))?
        .unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// Puts a URL in the address bar without reloading.
pub fn replace_url(url: &str) {
    if let Some(h) = window().and_then(|w| w.history().ok()) {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(url));
    }
}

/// Opens `url` in place of this page (no history entry).
pub fn go_to(url: &str) {
    if let Some(w) = window() {
        let _ = w.location().replace(url);
    }
}

/// The page's URL without query or fragment.
pub fn page_base() -> String {
    window()
        .and_then(|w| {
            let l = w.location();
            Some(format!("{}{}", l.origin().ok()?, l.pathname().ok()?))
        })
        .unwrap_or_default()
}

/// A local file's contents as text (for item files); it never leaves the page.
/// A (small) file's bytes, for a reader that checks them itself.
pub async fn file_bytes(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| describe(&e))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Milliseconds since the page started (`performance.now()`).
pub fn now_ms() -> f64 {
    window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// What a kept measurement of this browser is valid for (`ui::dot_memory`).
pub fn this_browser() -> crate::ui::dot_memory::Browser {
    let nav = window().map(|w| w.navigator());
    crate::ui::dot_memory::Browser {
        build: page_build(),
        agent: nav
            .as_ref()
            .and_then(|n| n.user_agent().ok())
            .unwrap_or_default(),
        cores: nav.map_or(0, |n| n.hardware_concurrency() as u32),
    }
}

/// This page's deploy: `<meta name="tinylab-build">`, stamped by the build
/// (`scripts/sw_manifest.py`); empty in a development build.
pub fn page_build() -> String {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector("meta[name=tinylab-build]").ok().flatten())
        .and_then(|m| m.get_attribute("content"))
        .unwrap_or_default()
}

/// `url` with `?build=` this page's deploy, so the service worker sends a request for another
/// deploy than its own to the network instead of answering from its cache.
pub fn with_build(url: &str) -> String {
    let build = page_build();
    if build.is_empty() {
        url.to_string()
    } else {
        format!("{url}?build={build}")
    }
}
