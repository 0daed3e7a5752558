// The model worker's loader. `scripts/sw_manifest.py` stamps the deploy's build into the first
// line, and the worker reports it in `Ready`; the build rides on the imports as `?build=`, so a
// service worker holding another deploy's files sends these requests to the network.
self.TINYLAB_BUILD = self.TINYLAB_BUILD || '';
(function () {
  const q = self.TINYLAB_BUILD ? '?build=' + self.TINYLAB_BUILD : '';
  importScripts('./tinylab_worker.js' + q);
  // A wasm that cannot be fetched or compiled rejects a promise, which the page never hears
  // of; thrown from a task of its own it becomes the worker's error event there, at once.
  wasm_bindgen({ module_or_path: './tinylab_worker_bg.wasm' + q }).catch((e) => {
    setTimeout(() => { throw new Error('the model worker could not start: ' + e); });
  });
})();
