// Every build of the model worker checks its own kernels against their portable reference in
// this browser (engine::kernel_check, `Work::KernelCheck`): the simd128 and relaxed-SIMD forms
// of Q8_0, Q4_1, Q5_0, Q4_K and Q6_K on random blocks of several sizes, one to four activation
// rows per pass, must give the reference's bits exactly. Native tests cannot run these forms.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch } from './harness.mjs';

let browser;
let server;

before(async () => {
  browser = await launch();
  server = await startServer();
});

after(async () => {
  await browser?.close();
  server?.close();
});

const BUILDS = [
  ['tinylab_worker_loader.js', 'simd128'],
  ['threads/tinylab_worker_loader.js', 'simd128'],
  ['relaxed/tinylab_worker_loader.js', 'relaxed-simd'],
  ['threads-relaxed/tinylab_worker_loader.js', 'relaxed-simd'],
];

test('every worker build\'s kernels give their portable reference\'s bits', async () => {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(server.url);
    for (const [loader, want] of BUILDS) {
      const r = await page.evaluate(async (url) => {
        const worker = new Worker(url);
        const messages = [];
        const reply = await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no answer from ${url}`)), 60000);
          worker.onmessage = (e) => {
            const m = JSON.parse(e.data);
            messages.push(m);
            if (m.type === 'ready') {
              worker.postMessage({ json: JSON.stringify({ type: 'job', job: 1, work: { kind: 'kernel_check' } }) });
            } else if (m.type === 'job') {
              clearTimeout(timer);
              resolve({ ready: messages[0], event: m.event });
            }
          };
        });
        worker.terminate();
        return reply;
      }, `${server.url}${loader}`);
      assert.equal(r.ready.kernels, want, loader);
      assert.equal(r.event.kind, 'kernel_check', JSON.stringify(r.event));
      assert.equal(r.event.kernels, want);
      const names = r.event.checks.map((c) => c.kernel);
      assert.deepEqual(names, ['Q8_0', 'Q4_1', 'Q5_0', 'Q4_K', 'Q6_K', 'f32 attention', 'token statistics', 'activation quantization']);
      for (const c of r.event.checks) {
        assert.ok(c.products >= 120, `${loader} ${c.kernel}: ${c.products} products`);
        assert.equal(c.exact, true, `${loader} ${c.kernel}`);
        assert.equal(c.equal, c.products, `${loader} ${c.kernel}: ${JSON.stringify(c)}`);
      }
    }
  } finally {
    await ctx.close();
  }
});
