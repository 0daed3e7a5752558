// Every build of the model worker checks its own kernels against their portable reference in
// this browser (engine::kernel_check, `Work::KernelCheck`): the simd128 and relaxed-SIMD forms
// of Q8_0, Q4_1, Q5_0, Q4_K and Q6_K on random blocks of several sizes, one to four activation
// rows per pass, must give the reference's bits exactly. Native tests cannot run these forms.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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

/// Starts the worker at `url` in `page`, asks it for its kernel check, and returns its `Ready`
/// and the check's event.
function kernelCheck(page, url) {
  return page.evaluate(async (url) => {
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
  }, url);
}

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
      const r = await kernelCheck(page, `${server.url}${loader}`);
      assert.equal(r.ready.kernels, want, loader);
      assert.equal(r.event.kind, 'kernel_check', JSON.stringify(r.event));
      assert.equal(r.event.kernels, want);
      const names = r.event.checks.map((c) => c.kernel);
      const integer = ['Q8_0', 'Q4_1', 'Q5_0', 'Q4_K', 'Q6_K'];
      // The relaxed build sums byte products in one of two ways (engine::dot_form), chosen
      // when the worker starts; both are checked, whichever it chose.
      const forms = want === 'relaxed-simd' ? [...integer, ...integer.map((k) => `${k} · dot-add`)] : integer;
      assert.deepEqual(names, [...forms, 'f32 attention', 'token statistics', 'activation quantization']);
      if (want === 'relaxed-simd') {
        const dot = r.ready.dot;
        assert.ok(['pairs', 'dot-add'].includes(dot?.form), JSON.stringify(r.ready));
        assert.equal(dot.forced, false);
        // The faster form was kept: above 1, dot-add was the faster.
        assert.equal(dot.form, dot.ratio > 1 ? 'dot-add' : 'pairs', JSON.stringify(dot));
        assert.ok(dot.ms > 0, `calibration took ${dot.ms} ms`);
      } else {
        assert.equal(r.ready.dot ?? null, null, JSON.stringify(r.ready));
      }
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

// Which of its two forms the relaxed worker keeps (engine::dot_form) is measured, so this test
// holds each worker to its own measurement (the form its ratio names, every kernel exact
// under both) with V8's AVX-VNNI on and off, and prints the choices. On x86-64 the answer is
// also known: V8 makes `i32x4.relaxed_dot_i8x16_i7x16_add` one instruction only where the CPU
// has AVX-VNNI, and five elsewhere, so a CPU with it should get `dot-add`, and the same CPU with
// `--no-enable-avx-vnni` `pairs` (majority of three workers). That depends on the machine's
// timing, so it is asserted only with TINYLAB_TIMING_TESTS=1 (this VM: 1.03-1.28 against
// 0.58-0.82 over the twenty-second stop's runs).
test('the relaxed worker keeps the form its own measurement found faster', async () => {
  const x64 = process.arch === 'x64';
  const vnni = x64 && /\bavx_vnni\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  for (const [flags, want] of [[[], vnni ? 'dot-add' : 'pairs'], [['--js-flags=--no-enable-avx-vnni'], 'pairs']]) {
    const b = flags.length ? await launch(flags) : browser;
    try {
      const page = await b.newPage();
      await page.goto(server.url);
      const forms = [];
      for (let i = 0; i < 3; i++) {
        const r = await kernelCheck(page, `${server.url}relaxed/tinylab_worker_loader.js`);
        const dot = r.ready.dot;
        assert.equal(dot.forced, false);
        assert.equal(dot.form, dot.ratio > 1 ? 'dot-add' : 'pairs', JSON.stringify(dot));
        forms.push(`${dot.form} (${dot.ratio.toFixed(2)})`);
        // Whichever it keeps, both forms still give the reference's bits.
        assert.ok(r.event.checks.every((c) => c.equal === c.products), JSON.stringify(r.event.checks));
      }
      console.log(`dot form, ${flags.join(' ') || 'default flags'}: ${forms.join(', ')}${x64 ? ` (expected ${want})` : ''}`);
      if (x64 && process.env.TINYLAB_TIMING_TESTS === '1') {
        const votes = forms.filter((f) => f.startsWith(`${want} `)).length;
        assert.ok(votes >= 2, `${flags.join(' ') || 'default flags'}: want ${want}, got ${forms.join(', ')}`);
      }
      await page.close();
    } finally {
      if (b !== browser) await b.close();
    }
  }
});
