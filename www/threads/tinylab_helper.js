// A helper thread of the shared-memory model worker (src/worker/threads.rs): it instantiates
// the same wasm module on the same memory and then serves the engine's parallel products
// until the model worker goes away.
self.onmessage = (event) => {
  const [module, memory, index] = event.data;
  importScripts('./tinylab_worker.js');
  wasm_bindgen.initSync({ module, memory });
  wasm_bindgen.tinylab_helper_main(index);
};
