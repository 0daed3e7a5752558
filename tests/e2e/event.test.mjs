// The event laptop: all three catalog models kept for offline use in one real (persistent)
// browser profile, the network cut, a reload, and all three run side by side from the cache.
// (Playwright's default contexts keep storage in memory, and there the third model is refused:
// the page then says so in plain words, see `storage::put_refused`.)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchProfile, pane, screenshot, SMOLLM2, recordCacheStates, cacheStates } from './harness.mjs';

const QWEN = 'qwen2.5-coder-0.5b-instruct';
let server;
let dir;
before(async () => {
  server = await startServer();
  dir = mkdtempSync(join(tmpdir(), 'tinylab-event-profile-'));
});
after(() => { server?.close(); rmSync(dir, { recursive: true, force: true }); });

test('three models kept in a real profile run side by side after the network is cut', async () => {
  const ctx = await launchProfile(dir, { viewport: { width: 1400, height: 1000 } });
  const page = ctx.pages()[0] || await ctx.newPage();
  const errors = [];
  const requests = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => requests.push(r.url()));
  await page.addInitScript(recordCacheStates);
  await page.goto(server.url);
  await page.waitForSelector(`[data-testid=model-select] option[value="${SMOLLM2}"]`, { state: 'attached', timeout: 30000 });
  await page.click('[data-testid=preset-models]');
  for (const i of [0, 1, 2]) {
    const p = pane(page, i);
    await p.root.locator('[data-testid=model-status]:is([data-state=ready],[data-state=error])').waitFor({ timeout: 300000 });
    await p.root.locator('[data-testid=model-status][data-cache=kept]').waitFor({ timeout: 120000 });
    assert.match(await p.status().textContent(), /ready · .* · kept in the browser cache$/, `pane ${i + 1}`);
  }
  // Each model was ready before its bytes were in the cache: the put follows, and the status
  // says so meanwhile.
  const states = await cacheStates(page);
  for (const i of [0, 1, 2]) assert.deepEqual(states[String(i)], ['keeping', 'kept'], `pane ${i + 1}`);
  await page.locator('[data-testid=offline-status][data-state=ready]', { hasText: '3 models cached' }).waitFor({ timeout: 60000 });

  await ctx.setOffline(true);
  await page.reload();
  await page.waitForSelector(`[data-testid=model-select] option[value="${SMOLLM2}"]`, { state: 'attached', timeout: 30000 });
  for (const i of [0, 1, 2]) {
    const p = pane(page, i);
    await p.root.locator('[data-testid=model-status]:is([data-state=ready],[data-state=error])').waitFor({ timeout: 300000 });
    assert.match(await p.status().textContent(), /from the browser cache/, `pane ${i + 1} after the reload`);
  }
  await page.fill('[data-testid=prompt]', 'Name a colour.');
  for (const i of [0, 1, 2]) await pane(page, i).set('max-tokens', 8);
  await page.click('[data-testid=run-all]');
  for (const i of [0, 1, 2]) {
    const p = pane(page, i);
    await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])').waitFor({ timeout: 300000 });
    assert.equal(await p.output().getAttribute('data-state'), 'done', `pane ${i + 1}`);
    assert.ok((await p.tokens()).length > 0);
  }
  await screenshot(page, 'event-offline-three-models');
  await ctx.setOffline(false);
  assert.deepEqual(errors, []);
  const foreign = requests.filter((u) => !u.startsWith(server.url) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(foreign, [], 'requests left the origin');
  await ctx.close();
});

test('a load started while the last one is still being kept waits for it, so the same model then comes from the cache', async () => {
  const own = mkdtempSync(join(tmpdir(), 'tinylab-keep-profile-'));
  const ctx = await launchProfile(own);
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.addInitScript(recordCacheStates);
    // Every value the cache list's Clear button has had, from the page's start.
    await page.addInitScript(() => {
      window.__clearDisabled = [];
      const note = (v) => { const seen = window.__clearDisabled; if (seen[seen.length - 1] !== v) seen.push(v); };
      new MutationObserver((records) => {
        for (const r of records) {
          if (r.target.dataset?.testid !== 'clear-cache') continue;
          note(r.oldValue !== null);
          note(r.target.disabled);
        }
      }).observe(document, { subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['disabled'] });
    });
    await page.goto(server.url);
    await page.waitForSelector(`[data-testid=model-select] option[value="${SMOLLM2}"]`, { state: 'attached', timeout: 30000 });
    const p = pane(page, 0);
    const load = async (id) => {
      await p.get('model-select').selectOption(id);
      await p.root.locator('[data-testid=model-status][data-state=loading]').waitFor({ timeout: 30000 });
      await p.root.locator('[data-testid=model-status]:is([data-state=ready],[data-state=error])').waitFor({ timeout: 300000 });
      return p.status().getAttribute('data-cache');
    };
    // Each next model is chosen the moment the last one is ready, while its bytes may still
    // be going to the cache (Qwen2.5's put took seconds here): the worker finishes that put
    // before it loads, so the third load finds Qwen2.5 in the cache however long it took.
    await load(QWEN);
    await load(SMOLLM2);
    const second = await p.status().textContent();
    assert.equal(await load(QWEN), 'from-cache');
    // The first load was ready while its put ran (a new load hides the old model's status, so
    // what follows depends on how long each put took), and the last came from the cache.
    const states = (await cacheStates(page))['0'];
    assert.equal(states[0], 'keeping', `cache states ${states}`);
    assert.equal(states[states.length - 1], 'from-cache', `cache states ${states}`);
    // Unless Qwen2.5's put ended before SmolLM2 was chosen (its status would then have said
    // "kept"), SmolLM2's load waited for it, and says for how long.
    if (states[1] !== 'kept') assert.match(second, /· waited [\d.]+ m?s first for the last model's copy into the browser cache$/, second);
    await p.settled();
    // Remove and Clear were locked while a put ran (a removal would have come back when the
    // put ended), and are open again now.
    const clear = await page.evaluate(() => window.__clearDisabled);
    assert.deepEqual(clear.slice(0, 2), [false, true], `Clear's disabled states ${clear}`);
    assert.equal(await page.locator('[data-testid=clear-cache]').isDisabled(), false);
    await page.locator('[data-testid=offline-status][data-state=ready]', { hasText: '2 models cached' }).waitFor({ timeout: 60000 });
    assert.deepEqual(errors, []);
  } finally {
    await ctx.close();
    rmSync(own, { recursive: true, force: true });
  }
});
