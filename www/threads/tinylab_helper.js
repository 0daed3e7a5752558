// A helper thread of the shared-memory model worker (src/worker/threads.rs): it instantiates
// the same wasm module on the same memory and then serves the engine's parallel products
// until the model worker goes away. If the helper's code traps, the pool is told, so the
// model worker's job fails with a message instead of waiting for this thread for ever.
self.TINYLAB_BUILD = self.TINYLAB_BUILD || '';
self.onmessage = (event) => {
  const [module, memory, index] = event.data;
  importScripts('./tinylab_worker.js' + (self.TINYLAB_BUILD ? '?build=' + self.TINYLAB_BUILD : ''));
  wasm_bindgen.initSync({ module, memory });
  try {
    wasm_bindgen.tinylab_helper_main(index);
  } catch (e) {
    try { wasm_bindgen.tinylab_helper_died(index, String(e && e.message || e)); } catch (_) { /* nothing more to do */ }
    throw e;
  }
};
