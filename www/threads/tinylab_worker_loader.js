importScripts("./tinylab_worker.js");wasm_bindgen("./tinylab_worker_bg.wasm");
