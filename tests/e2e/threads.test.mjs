// Threads: on a cross-origin isolated page (serve.py's default) the page runs the shared-memory
// model worker and the thread-count control works; on a plain host (no COOP/COEP) it falls
// back to the single-threaded worker. Either way greedy tokens equal the native CLI's up to the
// first near tie (`sameGreedy`), and the thread count never changes a token.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launch, openPage, pane, nativeGenerate, sameGreedy, screenshot, SMOLLM2, SMOLLM2_FILE,
} from './harness.mjs';

// The same prompt as page.test.mjs.
const PROMPT = 'Name the days of the week.';
const TOKENS = 24;

let browser;
let native;

before(async () => {
  browser = await launch();
  native = nativeGenerate(SMOLLM2_FILE, PROMPT, TOKENS, ['--chat']);
});

after(async () => {
  await browser?.close();
});

async function run(page, p) {
  await page.fill('[data-testid=prompt]', PROMPT);
  await p.set('temperature', 0);
  await p.set('max-tokens', TOKENS);
  await p.get('chat-mode').check();
  await p.get('run').click();
  await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])')
    .waitFor({ timeout: 120000 });
  assert.equal(await p.output().getAttribute('data-state'), 'done');
  return (await p.tokens()).map((t) => t.id);
}

test('isolated page: two threads give the CLI\'s tokens, the count can change mid-session and survives a reload', async () => {
  const server = await startServer();
  const ctx = await browser.newContext();
  try {
    const { page, errors, requests } = await openPage(ctx, server.url);
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true);
    const control = page.locator('[data-testid=threads]');
    assert.equal(await control.isDisabled(), false);
    const options = await control.locator('option').count();
    assert.ok(options >= 2, `only ${options} thread option(s) on a ${await page.evaluate(() => navigator.hardwareConcurrency)}-core machine`);
    await control.selectOption('2');

    const p = pane(page);
    await p.loadCatalog(SMOLLM2);
    assert.equal(await p.status().getAttribute('data-state'), 'ready', await p.status().textContent());
    const two = await run(page, p);
    sameGreedy(two, native, 'two threads');
    assert.equal((await p.get('stat-threads').textContent()).trim(), '2');
    await screenshot(page, 'threads-2');
    // This Chromium has relaxed SIMD: the threaded relaxed build (simd.test.mjs covers both).
    assert.ok(requests.some((u) => u.includes('/threads-relaxed/tinylab_worker_bg.wasm')), 'the threaded worker was not used');
    // The helper is asked for with the page's build, so a cached helper of another deploy
    // can never join this worker.
    const build = await page.getAttribute('meta[name=tinylab-build]', 'content');
    assert.ok(requests.some((u) => u.endsWith(`/threads-relaxed/tinylab_helper.js?build=${build}`)), 'no helper thread started');

    // Down to one thread on the running worker: same tokens.
    await control.selectOption('1');
    await page.waitForFunction(() => document.querySelector('[data-testid=stat-threads]')?.textContent.trim() === '1');
    // Columns are split among threads, never sums: the very same ids.
    assert.deepEqual(await run(page, p), two, 'one thread gives other ids than two');

    await control.selectOption('2');
    await page.reload();
    await page.locator('[data-testid=pane][data-pane-index="0"] [data-testid=model-status][data-state=ready]').waitFor({ timeout: 60000 });
    assert.equal(await page.locator('[data-testid=threads]').inputValue(), '2');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    server.close();
  }
});

test('plain host without COOP/COEP: one thread, the single-threaded worker, same tokens', async () => {
  const server = await startServer(['--no-isolation']);
  const ctx = await browser.newContext();
  try {
    const { page, errors, requests } = await openPage(ctx, server.url);
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), false);
    const control = page.locator('[data-testid=threads]');
    assert.equal(await control.isDisabled(), true);
    assert.match(await page.locator('label.threads').getAttribute('title'), /cross-origin isolated/);
    const p = pane(page);
    await p.loadCatalog(SMOLLM2);
    sameGreedy(await run(page, p), native, 'single-threaded worker');
    assert.equal((await p.get('stat-threads').textContent()).trim(), '1');
    assert.ok(!requests.some((u) => u.includes('/threads')), 'a threaded worker was requested without isolation');
    assert.ok(requests.some((u) => u.includes('/relaxed/tinylab_worker_bg.wasm')), 'the single-threaded relaxed worker was not used');
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    server.close();
  }
});
