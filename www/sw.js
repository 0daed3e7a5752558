// TinyLab's service worker: keeps the app shell (HTML, JS, wasm, CSS, catalog, icons) so the
// page opens with no network after one visit. Model files are not handled here: the model
// worker keeps them in its own Cache API bucket (tinylab-models-v1) and reads that first.
// It is plain JavaScript because a service worker must start before any wasm could; the build
// (scripts/sw_manifest.py) fills in the shell list and a version from the files' hashes, and
// stamps the same version into the page and the worker's loaders (see `respond`).
const VERSION = '__TINYLAB_VERSION__';
const SHELL = __TINYLAB_SHELL__;
const SHELL_CACHE = 'tinylab-shell-' + VERSION;
// How long the page's own request may take before this version's copy is shown instead.
const NAVIGATION_WAIT_MS = 4000;

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(SHELL_CACHE)
      // Past the HTTP cache: the worker's files are not content-hashed.
      .then((cache) => cache.addAll(SHELL.map((u) => new Request(u, { cache: 'reload' })))),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys
        .filter((k) => k.startsWith('tinylab-shell-') && k !== SHELL_CACHE)
        .map((k) => caches.delete(k)))),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.endsWith('.gguf')) return;
  event.respondWith(respond(request));
});

async function respond(request) {
  // The page asks for the model worker and the catalog with its own build (`?build=`): a page
  // of another deploy than this cache's gets them from the network, never this build's copy.
  const wanted = new URL(request.url).searchParams.get('build');
  if (wanted && wanted !== VERSION) {
    try {
      return await fetch(request);
    } catch (e) {
      // Offline on a page of a newer deploy: that deploy's service worker is installed and
      // waits for this one's pages to close, and its cache already holds these files.
      const theirs = 'tinylab-shell-' + wanted;
      const kept = (await caches.has(theirs))
        && await (await caches.open(theirs)).match(request, { ignoreSearch: true });
      if (kept) return kept;
      throw e;
    }
  }
  const cache = await caches.open(SHELL_CACHE);
  if (request.mode === 'navigate') {
    // The page itself: the network first, so a new build shows at once; this version's copy
    // when offline. A fresh page is not stored here: it may name files of a newer build that
    // this cache does not hold (the newer service worker caches it with them).
    const kept = await cache.match('./');
    if (!kept) return fetch(request);
    // A network that answers nothing (an event's Wi-Fi behind a login page, a server gone
    // quiet) would otherwise keep the page blank for as long as the browser waits, minutes;
    // a proxy that cannot reach the server answers 502-504. Both get this version's copy.
    const network = fetch(request);
    const late = new Promise((resolve) => setTimeout(() => resolve(null), NAVIGATION_WAIT_MS));
    try {
      const response = await Promise.race([network, late]);
      if (response && response.status < 500) return response;
      if (!response) network.catch(() => {});
    } catch (e) {
      // Offline: this version's copy below.
    }
    return kept;
  }
  const kept = await cache.match(request, { ignoreSearch: true });
  if (kept) return kept;
  try {
    return await fetch(request);
  } catch (e) {
    // A content-hashed file of a newer deploy, offline: kept by its own waiting service worker.
    const any = await caches.match(request);
    if (any) return any;
    throw e;
  }
}
