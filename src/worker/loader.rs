//! Getting model bytes into the worker: from the browser cache when it has them, else from the
//! network (same origin) or a local file, with progress; then building the engine. Bytes are
//! put in the cache only after the engine accepted them, so a bad file is never kept, and only
//! after the page was told the model is ready (`Event::Kept` follows), so the copy to disk does
//! not hold up a first load.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, Cache, ReadableStream, ReadableStreamDefaultReader, Response, WorkerGlobalScope,
};

use super::js::{describe, now_ms};
use super::{post_event, Busy, State};
use crate::engine::{Engine, DEFAULT_MAX_POSITIONS};
use crate::protocol::{
    CatalogTwin, Event, JobId, LoadProgress, LoadedModel, MODEL_CACHE, PUT_WAIT_MS,
};

/// wasm32 memory tops out at 4 GiB and building the model can enlarge it (requantizing to Q8_0
/// takes up to 1.7× the bytes), so refuse before reading anything bigger than this.
pub const MAX_MODEL_BYTES: u64 = 1_800_000_000;

pub enum Source {
    Url {
        url: String,
        label: String,
    },
    File {
        blob: Blob,
        name: String,
        cache_key: String,
        twins: Vec<CatalogTwin>,
    },
}

impl Source {
    fn cache_key(&self) -> &str {
        match self {
            Source::Url { url, .. } => url,
            Source::File { cache_key, .. } => cache_key,
        }
    }

    fn label(&self) -> &str {
        match self {
            Source::Url { label, .. } => label,
            Source::File { name, .. } => name,
        }
    }
}

pub async fn load(state: &State, job: JobId, src: Source) {
    state.begin(job, Busy::Loading);
    // Free the old model first: two models at once may not fit in wasm memory.
    state.engine.borrow_mut().take();
    let pending = state.keeping.borrow_mut().take();
    let waited_ms = match pending {
        Some((kept_job, put)) => {
            let t0 = now_ms();
            // Bounded: a browser whose put never ended would otherwise block every later load.
            let race = js_sys::Array::of2(&put, &super::js::sleep(PUT_WAIT_MS as i32));
            let ended = JsFuture::from(js_sys::Promise::race(&race))
                .await
                .ok()
                .and_then(|v| v.as_bool())
                == Some(true);
            if !ended {
                // The page holds its cache list's Remove and Clear until that job's `Kept`; a
                // late `Kept` from the put itself is then for a job it no longer follows.
                post_event(
                    kept_job,
                    Event::Kept {
                        cached_now: false,
                        cache_note: Some(format!(
                            "not known whether kept: the copy into the browser cache had not \
                             ended after {} s",
                            PUT_WAIT_MS / 1000
                        )),
                    },
                );
            }
            now_ms() - t0
        }
        None => 0.0,
    };
    let outcome = load_engine(job, &src).await;
    match outcome {
        Ok((engine, mut loaded, keep)) => {
            loaded.waited_ms = waited_ms;
            *state.engine.borrow_mut() = Some(engine);
            post_event(job, Event::Loaded(loaded));
            // The model is ready and the worker takes jobs while the bytes are written to the
            // cache (for Qwen2.5, 2.5 s from the select to ready), so a first load no longer
            // waits for it.
            let Some(keep) = keep else {
                state.end();
                return;
            };
            let mut resolve = None;
            let put = js_sys::Promise::new(&mut |r, _| resolve = Some(r));
            *state.keeping.borrow_mut() = Some((job, put));
            state.end();
            let (cached_now, cache_note) = keep.run(&src).await;
            if let Some(r) = resolve {
                // `true`: what tells the waiting load that the put, not its timer, won.
                let _ = r.call1(&JsValue::NULL, &JsValue::TRUE);
            }
            post_event(
                job,
                Event::Kept {
                    cached_now,
                    cache_note,
                },
            );
        }
        Err(message) => {
            post_event(job, Event::Failed { message });
            state.end();
        }
    }
}

/// Bytes read from the network or a file, still to be put in the browser cache.
struct Keep {
    cache: Cache,
    bytes: Uint8Array,
    key: String,
}

impl Keep {
    /// Puts the bytes in the cache when the browser's storage has room: whether they are
    /// there now, and why not when they are not.
    async fn run(self, src: &Source) -> (bool, Option<String>) {
        let size = self.bytes.length() as u64;
        if let Some((usage, quota)) = storage_estimate().await {
            if let Err(note) = crate::storage::check_fits(size, usage, quota) {
                return (false, Some(note));
            }
        }
        // The cache as it is now: one cleared since the load began (the cache list's Clear,
        // in this tab or another) is a new cache, and a put into the old one kept nothing.
        let cache = open_cache().await.unwrap_or(self.cache);
        if let Err(e) = cache_put(&cache, &self.key, src.label(), &self.bytes).await {
            return (false, Some(crate::storage::put_refused(&e)));
        }
        // A Clear in another tab while the copy ran deleted the cache it went into: once
        // more, into the cache there is now, so that "kept" is true.
        match open_cache().await {
            Some(now) if cache_match(&now, &self.key).await.is_none() => {
                match cache_put(&now, &self.key, src.label(), &self.bytes).await {
                    Ok(()) => (true, None),
                    Err(e) => (false, Some(crate::storage::put_refused(&e))),
                }
            }
            _ => (true, None),
        }
    }
}

/// The engine, what to tell the page, and the bytes to keep once the page has been told (none
/// when they came from the cache or there is no cache).
async fn load_engine(
    job: JobId,
    src: &Source,
) -> Result<(Engine, LoadedModel, Option<Keep>), String> {
    let t0 = now_ms();
    let cache = open_cache().await;
    // A local file is always read from the file: two files may share a name and size, and the
    // user chose this one. Its bytes are still cached, for a later load from the cache list.
    let hit = match (&cache, src) {
        (Some(c), Source::Url { .. }) => cache_match(c, src.cache_key()).await,
        _ => None,
    };
    let from_cache = hit.is_some();
    let (stream, total) = match (hit, src) {
        (Some(resp), _) => body_of(&resp)?,
        // A file of this machine, kept in the cache, that the cache no longer has (removed
        // in another tab, or by the browser for room): asking the server for it would send
        // the file's name there, and the server never had it.
        (None, Source::Url { url, .. }) if crate::ui::catalog::is_local_key(url) => {
            return Err(
                "it is no longer in this browser's cache (removed in another tab, or \
                        by the browser to free space); choose the file again"
                    .into(),
            );
        }
        (None, Source::Url { url, .. }) => {
            let resp = fetch(url).await?;
            if !resp.ok() {
                // Only a missing file is the model's absence; another status is the server's.
                let why = if matches!(resp.status(), 404 | 410) {
                    " (this server does not have the model: with `scripts/serve.py`, \
                     `python3 scripts/fetch_models.py --all` fetches the catalog's models; \
                     another server needs the .gguf file in the page's `assets/models/`)"
                } else {
                    " (the server could not give the file)"
                };
                return Err(format!(
                    "could not fetch {url}: HTTP {} {}{why}",
                    resp.status(),
                    resp.status_text()
                ));
            }
            body_of(&resp)?
        }
        (None, Source::File { blob, .. }) => {
            // Its first bytes first: a dropped video or archive of a gigabyte or two was read
            // whole (and the worker could run out of memory) before being called no model.
            if blob.size() >= 4.0 {
                let head = blob
                    .slice_with_f64_and_f64(0.0, 4.0)
                    .map_err(|e| format!("reading the file failed: {}", describe(&e)))?;
                let buf = JsFuture::from(head.array_buffer())
                    .await
                    .map_err(|e| format!("reading the file failed: {}", describe(&e)))?;
                crate::engine::gguf::check_magic(&Uint8Array::new(&buf).to_vec())
                    .map_err(|e| e.to_string())?;
            }
            (blob.stream(), Some(blob.size() as u64))
        }
    };
    if let Some(t) = total.filter(|&t| t > MAX_MODEL_BYTES) {
        return Err(format!(
            "the file is {:.2} GB; the browser engine takes models up to {:.1} GB \
             (wasm memory is 4 GB and the model can grow as it is built)",
            t as f64 / 1e9,
            MAX_MODEL_BYTES as f64 / 1e9
        ));
    }
    let bytes = read_all(job, stream, total, from_cache, t0).await?;
    let read_ms = now_ms() - t0;

    let t1 = now_ms();
    let size = bytes.length() as u64;
    // A download of a catalog model is checked against the catalog's checksum; the browser
    // hashes it while the engine is built (it still added about 0.7 s to Qwen2.5's 2.8 s
    // first load here, and copies the file once while it runs).
    // A local file of a catalog model's size is hashed the same way, to keep it once.
    let checksum = match src {
        Source::Url { url, .. } if !from_cache => crate::ui::catalog::url_checksum(url),
        _ => None,
    };
    let twins = match src {
        Source::File { twins, .. } => twins.as_slice(),
        Source::Url { .. } => &[],
    };
    let digest = (checksum.is_some() || !twins.is_empty())
        .then(|| sha256_of(&bytes))
        .flatten();
    let engine = Engine::from_source(&JsBytes(bytes.clone()), DEFAULT_MAX_POSITIONS);
    // A browser that cannot hash (no secure context) leaves the file unchecked, as it then
    // has no cache to keep a bad copy in either.
    let got = match digest {
        Some(d) => JsFuture::from(d)
            .await
            .ok()
            .map(|buf| crate::ui::catalog::hex(&Uint8Array::new(&buf).to_vec())),
        None => None,
    };
    let twin = got
        .as_ref()
        .and_then(|got| twins.iter().find(|t| t.sha256.eq_ignore_ascii_case(got)));
    // The engine's own word comes first: a web page, a Git LFS pointer or a cut-short body
    // is better named by what it is than by its checksum.
    let engine = engine.map_err(|e| e.to_string())?;
    if let (Some(want), Some(got)) = (checksum, &got) {
        if !got.starts_with(&want) {
            return Err(format!(
                "the downloaded {} is not the catalog's file: its sha256 begins {}, the \
                 catalog's {want} (the server's copy is damaged or another file; with \
                 `scripts/serve.py`, `python3 scripts/fetch_models.py` fetches and checks \
                 it again). It was not used or kept.",
                src.label(),
                &got[..want.len()]
            ));
        }
    }
    let build_ms = now_ms() - t1;

    let key = twin.map_or(src.cache_key(), |t| t.url.as_str()).to_string();
    // The catalog's copy is already kept: this file is that one, so nothing more is kept.
    let twin_kept = match (&cache, twin) {
        (Some(c), Some(_)) => cache_match(c, &key).await.is_some(),
        _ => false,
    };
    let (keep, cache_note) = match (from_cache || twin_kept, cache) {
        (true, _) => (None, None),
        (false, None) => (
            None,
            Some(
                "not kept: this browser offers no cache here (it needs https or localhost)".into(),
            ),
        ),
        (false, Some(cache)) => (Some(Keep { cache, bytes, key }), None),
    };
    let info = engine.info().clone();
    let loaded = LoadedModel {
        label: src.label().to_string(),
        info,
        bytes: size,
        from_cache,
        read_ms,
        build_ms,
        waited_ms: 0.0,
        cached_now: from_cache || twin_kept,
        keeping: keep.is_some(),
        cache_note,
        wasm_memory_bytes: super::wasm_memory_bytes(),
        catalog_twin: twin.map(|t| t.id.clone()),
    };
    Ok((engine, loaded, keep))
}

/// The browser's own SHA-256 of `bytes` (`crypto.subtle.digest`, which copies them at the
/// call and hashes off this thread), or `None` where the browser offers no such thing.
fn sha256_of(bytes: &Uint8Array) -> Option<js_sys::Promise> {
    let subtle = Reflect::get(
        &Reflect::get(&js_sys::global(), &"crypto".into()).ok()?,
        &"subtle".into(),
    )
    .ok()?;
    let digest: js_sys::Function = Reflect::get(&subtle, &"digest".into())
        .ok()?
        .dyn_into()
        .ok()?;
    digest
        .call2(&subtle, &"SHA-256".into(), bytes)
        .ok()?
        .dyn_into()
        .ok()
}

fn scope() -> Result<WorkerGlobalScope, String> {
    js_sys::global()
        .dyn_into::<WorkerGlobalScope>()
        .map_err(|_| "not running in a worker".to_string())
}

/// (usage, quota) in bytes from `navigator.storage.estimate()`, when the browser tells.
async fn storage_estimate() -> Option<(u64, u64)> {
    let nav = scope().ok()?.navigator();
    let est = JsFuture::from(nav.storage().estimate().ok()?).await.ok()?;
    let get = |k: &str| {
        Reflect::get(&est, &JsValue::from_str(k))
            .ok()
            .and_then(|v| v.as_f64())
    };
    Some((get("usage")? as u64, get("quota")? as u64))
}

async fn open_cache() -> Option<Cache> {
    // The Cache API exists only in secure contexts (https or localhost); without it models
    // still load, they are just not kept.
    let caches = scope().ok()?.caches().ok()?;
    let c = JsFuture::from(caches.open(MODEL_CACHE)).await.ok()?;
    c.dyn_into::<Cache>().ok()
}

async fn cache_match(cache: &Cache, key: &str) -> Option<Response> {
    let r = JsFuture::from(cache.match_with_str(key)).await.ok()?;
    r.dyn_into::<Response>().ok()
}

async fn cache_put(
    cache: &Cache,
    key: &str,
    label: &str,
    bytes: &Uint8Array,
) -> Result<(), String> {
    let headers = web_sys::Headers::new().map_err(|e| describe(&e))?;
    let _ = headers.set("content-type", "application/octet-stream");
    let _ = headers.set("content-length", &bytes.length().to_string());
    // Header values must be ISO-8859-1; keep the label readable by encoding it.
    let _ = headers.set(
        "x-tinylab-label",
        &String::from(js_sys::encode_uri_component(label)),
    );
    let init = web_sys::ResponseInit::new();
    init.set_headers(&headers);
    let (body, _pull) = stream_of(bytes)?;
    let resp = Response::new_with_opt_readable_stream_and_init(Some(&body), &init)
        .map_err(|e| describe(&e))?;
    JsFuture::from(cache.put_with_str(key, &resp))
        .await
        .map_err(|e| describe(&e))?;
    Ok(())
}

/// The bytes as a stream of views into them, `PUT_CHUNK` bytes a pull, which the cache reads
/// as it writes. A `Response` made from the bytes themselves copies the whole file on the
/// worker's thread first: a second copy of the model in memory, and a pause in whatever run
/// started when the model became ready. The closure must outlive the put.
fn stream_of(bytes: &Uint8Array) -> Result<(ReadableStream, Pull), String> {
    let bytes = bytes.clone();
    let mut at: u32 = 0;
    let pull = Closure::<dyn FnMut(JsValue)>::new(move |controller: JsValue| {
        let call = |name: &str, arg: Option<&JsValue>| {
            let f = Reflect::get(&controller, &JsValue::from_str(name))
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
            if let Some(f) = f {
                let _ = match arg {
                    Some(a) => f.call1(&controller, a),
                    None => f.call0(&controller),
                };
            }
        };
        let len = bytes.length();
        if at >= len {
            call("close", None);
            return;
        }
        let end = len.min(at.saturating_add(PUT_CHUNK));
        call("enqueue", Some(&bytes.subarray(at, end).into()));
        at = end;
    });
    let source = js_sys::Object::new();
    Reflect::set(&source, &JsValue::from_str("pull"), pull.as_ref()).map_err(|e| describe(&e))?;
    let stream = ReadableStream::new_with_underlying_source(&source).map_err(|e| describe(&e))?;
    Ok((stream, pull))
}

/// The stream's `pull(controller)`.
type Pull = Closure<dyn FnMut(JsValue)>;

/// Bytes per pull of `stream_of`: large enough that the pulls cost nothing, small enough that
/// each copy the cache makes is a short pause in a run.
const PUT_CHUNK: u32 = 8 << 20;

async fn fetch(url: &str) -> Result<Response, String> {
    // Asked of the server each time (`no-cache`): the Cache API is the page's model cache,
    // and a copy in the browser's HTTP cache could be one the checksum refused, kept there
    // for hours after the server's file was mended.
    let init = web_sys::RequestInit::new();
    let _ = Reflect::set(&init, &"cache".into(), &"no-cache".into());
    let p = scope()?.fetch_with_str_and_init(url, &init);
    let r = JsFuture::from(p).await.map_err(|e| {
        // Offline, a model the browser has not kept cannot be had: say that, not only the
        // browser's "Failed to fetch".
        let offline = scope().is_ok_and(|s| !s.navigator().on_line());
        let why = if offline {
            " (this browser is offline, and this model was not kept in its cache: load it \
                 once while online to use it offline)"
        } else {
            ""
        };
        format!("could not fetch {url}: {}{why}", describe(&e))
    })?;
    r.dyn_into::<Response>()
        .map_err(|_| "fetch did not return a response".to_string())
}

fn body_of(resp: &Response) -> Result<(ReadableStream, Option<u64>), String> {
    let total = resp
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    let body = resp
        .body()
        .ok_or_else(|| "the response has no body".to_string())?;
    Ok((body, total))
}

/// The model file, kept in JS memory: the engine reads the header and then one tensor at a time
/// from it (`engine::gguf::ByteSource`), so the wasm heap never holds the whole file.
struct JsBytes(Uint8Array);

impl crate::engine::gguf::ByteSource for JsBytes {
    fn len(&self) -> u64 {
        self.0.length() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) {
        let start = offset as u32;
        self.0
            .subarray(start, start + buf.len() as u32)
            .copy_to(buf);
    }
}

async fn read_all(
    job: JobId,
    stream: ReadableStream,
    total: Option<u64>,
    from_cache: bool,
    t0: f64,
) -> Result<Uint8Array, String> {
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    // One buffer of the announced size, filled in place; chunks are kept aside only when the
    // size is unknown or the body turns out longer than announced.
    let mut whole = total.map(|t| Uint8Array::new_with_length(t as u32));
    let chunks = js_sys::Array::new();
    let mut len: u64 = 0;
    let mut last_report = f64::NEG_INFINITY;
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| format!("reading the model failed: {}", describe(&e)))?;
        let done = Reflect::get(&chunk, &JsValue::from_str("done"))
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &JsValue::from_str("value"))
            .map_err(|e| describe(&e))?
            .unchecked_into();
        let n = value.length() as u64;
        if len + n > MAX_MODEL_BYTES {
            return Err(format!(
                "the file is larger than {:.1} GB, the most the browser engine takes",
                MAX_MODEL_BYTES as f64 / 1e9
            ));
        }
        match &whole {
            Some(w) if len + n <= w.length() as u64 => w.set(&value, len as u32),
            _ => {
                if let Some(w) = whole.take() {
                    chunks.push(&w.subarray(0, len as u32));
                }
                chunks.push(&value);
            }
        }
        len += n;
        let now = now_ms();
        if now - last_report > 100.0 {
            last_report = now;
            post_event(
                job,
                Event::Progress(LoadProgress {
                    loaded: len,
                    total,
                    from_cache,
                    elapsed_ms: now - t0,
                }),
            );
        }
    }
    post_event(
        job,
        Event::Progress(LoadProgress {
            loaded: len,
            total: total.or(Some(len)),
            from_cache,
            elapsed_ms: now_ms() - t0,
        }),
    );
    Ok(match whole {
        // A body shorter than announced: what arrived (the engine then says where it ends).
        Some(w) => w.subarray(0, len as u32),
        None => {
            let all = Uint8Array::new_with_length(len as u32);
            let mut at = 0u32;
            for c in chunks.iter() {
                let c: Uint8Array = c.unchecked_into();
                all.set(&c, at);
                at += c.length();
            }
            all
        }
    })
}
