// The model worker's loader. `scripts/sw_manifest.py` stamps the deploy's build into the first
// line, and the worker reports it in `Ready`; the build rides on the imports as `?build=`, so a
// service worker holding another deploy's files sends these requests to the network.
self.TINYLAB_BUILD = self.TINYLAB_BUILD || '';
(function () {
  const q = self.TINYLAB_BUILD ? '?build=' + self.TINYLAB_BUILD : '';
  importScripts('./tinylab_worker.js' + q);
  wasm_bindgen({ module_or_path: './tinylab_worker_bg.wasm' + q });
})();
