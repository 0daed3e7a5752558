// Two tabs of the page at once, and a cache changed behind a page's back, in headless Chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, pane, screenshot, SMOLLM2 } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const GEMMA = 'gemma3-270m-q4_k_m';
const cacheKeys = (page) => page.evaluate(async () => (await (await caches.open('tinylab-models-v1')).keys()).map((r) => r.url));

test('a vote cast in another tab stays in the tally when this tab next writes it', async () => {
  const ctx = await browser.newContext();
  const { page: a, errors } = await openPage(ctx, server.url);
  const { page: b } = await openPage(ctx, server.url);
  // Tab B, in the arena, records a battle (as its vote would), after tab A has read the tally.
  await b.evaluate(([x, y]) => localStorage.setItem('tinylab.arena', JSON.stringify({
    active: true, battles: [{ a: x, b: y, vote: 'a' }],
  })), [SMOLLM2, GEMMA]);
  // Tab A takes the tally and writes nothing back: its own record (arena off) would turn tab
  // B's arena off, and lose the panes B keeps for when it leaves.
  await a.waitForTimeout(500);
  assert.equal((await a.evaluate(() => JSON.parse(localStorage.getItem('tinylab.arena')))).active, true, 'tab A wrote its record over tab B\'s');
  // Tab A then changes its arena (turns it on), which writes its whole record.
  await a.click('[data-testid=arena-mode]');
  await a.locator('[data-testid=arena-tally]').waitFor({ timeout: 10000 });
  const stored = await a.evaluate(() => JSON.parse(localStorage.getItem('tinylab.arena')));
  assert.equal(stored.active, true);
  assert.deepEqual(stored.battles, [{ a: SMOLLM2, b: GEMMA, vote: 'a' }], 'the other tab\'s vote was written away');
  assert.equal(await a.locator(`[data-testid=arena-tally] tr[data-model-id="${SMOLLM2}"]`).count(), 1);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test("two tabs each keep their own prompt and settings through a reload; a new tab opens the one saved last", async () => {
  const ctx = await browser.newContext();
  const { page: a, errors } = await openPage(ctx, server.url);
  const { page: b } = await openPage(ctx, server.url);
  const saved = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('tinylab.workspace.v1') ?? '{}'));
  await a.fill('[data-testid=prompt]', 'Tab A asks this.');
  await b.fill('[data-testid=prompt]', 'Tab B asks that.');
  await pane(b).set('seed', 777);
  await b.waitForFunction(() => (localStorage.getItem('tinylab.workspace.v1') ?? '').includes('Tab B'));
  // Tab A writes last: every save is a whole workspace.
  await pane(a).set('max-tokens', 77);
  await a.waitForFunction(() => /"max_tokens":77/.test(localStorage.getItem('tinylab.workspace.v1') ?? ''));
  assert.equal((await saved(a)).prompt, 'Tab A asks this.');
  const { page: c } = await openPage(ctx, server.url);
  assert.equal(await c.inputValue('[data-testid=prompt]'), 'Tab A asks this.', 'a new tab: the workspace saved last');
  assert.equal(await pane(c).get('max-tokens').inputValue(), '77');
  await b.reload();
  await pane(b).get('seed').waitFor();
  assert.equal(await b.inputValue('[data-testid=prompt]'), 'Tab B asks that.', "tab B's prompt after its reload");
  assert.equal(await pane(b).get('seed').inputValue(), '777');
  assert.notEqual(await pane(b).get('max-tokens').inputValue(), '77', "tab A's setting is not tab B's");
  assert.deepEqual(errors, []);
  await ctx.close();
});

test("two tabs each get their own outputs back after a reload; a new tab shows those kept last", async () => {
  // Each tab kept its own prompt, while the outputs were one copy for all: a reload showed the
  // other tab's run under this tab's prompt (with a note that it came from another prompt).
  const ctx = await browser.newContext();
  const { page: a, errors } = await openPage(ctx, server.url);
  const { page: b } = await openPage(ctx, server.url);
  const run = async (page, prompt) => {
    const p = pane(page);
    await p.loadCatalog(SMOLLM2);
    await page.fill('[data-testid=prompt]', prompt);
    await p.set('temperature', 0);
    await p.set('max-tokens', 6);
    await p.get('chat-mode').uncheck();
    await p.get('run').click();
    await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])').waitFor({ timeout: 60000 });
    assert.equal(await p.output().getAttribute('data-state'), 'done');
    return (await p.tokens()).map((t) => t.id);
  };
  const shown = async (page) => {
    await pane(page).root.locator('[data-testid=token]').first().waitFor({ timeout: 30000 });
    return (await pane(page).tokens()).map((t) => t.id);
  };
  const ofA = await run(a, 'The capital of France is');
  const ofB = await run(b, 'def fibonacci(n):');
  assert.notDeepEqual(ofA, ofB);
  await b.waitForFunction((ids) => JSON.stringify(JSON.parse(localStorage.getItem('tinylab.outputs.v1') ?? '[]')[0]?.run?.tokens?.map((t) => t.id)) === JSON.stringify(ids), ofB);
  const { page: c } = await openPage(ctx, server.url);
  assert.equal(await c.inputValue('[data-testid=prompt]'), 'def fibonacci(n):');
  assert.deepEqual(await shown(c), ofB, 'a new tab: the outputs kept last');
  await a.reload();
  assert.equal(await a.inputValue('[data-testid=prompt]'), 'The capital of France is');
  assert.deepEqual(await shown(a), ofA, "tab A's run after its reload");
  await screenshot(a, 'tabs-own-outputs-after-reload');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a vote in another tab is taken for the battle it was cast in, not for a new one of the same pair', async () => {
  const ctx = await browser.newContext();
  const { page: a, errors } = await openPage(ctx, server.url);
  const { page: b } = await openPage(ctx, server.url);
  await a.click('[data-testid=arena-mode]');
  await a.waitForFunction(() => JSON.parse(localStorage.getItem('tinylab.arena') ?? '{}').pair);
  const mine = await a.evaluate(() => JSON.parse(localStorage.getItem('tinylab.arena')));
  assert.equal(await a.getAttribute('html', 'data-arena'), 'hidden');
  // Tab B voted on its own battle that drew the same pair: tab A's stays hidden and open.
  const voted = (battle) => b.evaluate(([m, n]) => localStorage.setItem('tinylab.arena', JSON.stringify({
    ...m, battle: n, voted: 'a', battles: [{ a: m.pair[0], b: m.pair[1], vote: 'a' }],
  })), [mine, battle]);
  await voted(mine.battle + 1);
  await a.waitForTimeout(500);
  assert.equal(await a.getAttribute('html', 'data-arena'), 'hidden', 'another battle\'s vote was taken');
  // The same battle, voted there: taken here, names shown.
  await voted(mine.battle);
  await a.waitForFunction(() => document.documentElement.dataset.arena === '', null, { timeout: 5000 });
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('Clear while a model downloads: the model is still kept, as its pane says', async () => {
  const ctx = await browser.newContext();
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  // Clear (two clicks) once the bytes flow: the worker has opened the cache by then. Gemma 3,
  // whose 253 MB take long enough to read for the clicks to land in the middle.
  const cleared = page.evaluate(() => new Promise((resolve) => {
    const poll = setInterval(() => {
      const root = document.querySelector('[data-pane-index="0"]');
      const bar = root?.querySelector('[data-testid=load-progress]');
      if (root?.querySelector('[data-testid=model-status]')?.dataset.state !== 'loading' || !(bar?.value > 0)) return;
      clearInterval(poll);
      const clear = document.querySelector('[data-testid=clear-cache]');
      clear.click();
      clear.click();
      resolve({ locked: clear.disabled, at: bar.value });
    }, 1);
  }));
  await p.get('model-select').selectOption(GEMMA);
  const at = await cleared;
  assert.equal(at.locked, false, 'Clear was locked');
  await p.root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 120000 });
  await p.settled(120000);
  assert.equal(await p.status().getAttribute('data-cache'), 'kept', await p.status().textContent());
  assert.equal((await cacheKeys(page)).length, 1, `the pane says kept, but the cache is empty (cleared at ${at.at}%)`);
  await page.locator('[data-testid=offline-status]', { hasText: '1 model cached' }).waitFor({ timeout: 10000 });
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('Clear in another tab while a model is being copied into the cache: the model is still kept, as its pane says', async () => {
  const ctx = await browser.newContext();
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  // What another tab's Clear does, the moment this tab's copy starts.
  const cleared = page.evaluate(() => new Promise((resolve) => {
    const poll = setInterval(async () => {
      const status = document.querySelector('[data-pane-index="0"] [data-testid=model-status]');
      if (status?.dataset.cache !== 'keeping') return;
      clearInterval(poll);
      resolve(await caches.delete('tinylab-models-v1'));
    }, 1);
  }));
  await p.get('model-select').selectOption(SMOLLM2);
  await cleared;
  await p.root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 60000 });
  await p.settled();
  assert.equal(await p.status().getAttribute('data-cache'), 'kept', await p.status().textContent());
  assert.equal((await cacheKeys(page)).length, 1, 'the pane says kept, but the cache is empty');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a model removed in another tab: this tab\'s header says so once it has the focus again', async () => {
  const ctx = await browser.newContext();
  const { page: a, errors } = await openPage(ctx, server.url);
  await pane(a).loadCatalog(SMOLLM2);
  const header = a.locator('[data-testid=offline-status]');
  await a.locator('[data-testid=offline-status]', { hasText: '1 model cached' }).waitFor({ timeout: 30000 });
  const { page: b } = await openPage(ctx, server.url);
  await b.evaluate(async () => {
    const cache = await caches.open('tinylab-models-v1');
    for (const r of await cache.keys()) await cache.delete(r);
  });
  await a.evaluate(() => window.dispatchEvent(new Event('focus')));
  await a.locator('[data-testid=offline-status]', { hasText: 'no models cached yet' }).waitFor({ timeout: 10000 });
  assert.doesNotMatch(await header.textContent(), /1 model cached/);
  assert.equal(await a.locator('[data-testid=cached-model]').count(), 0);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a second tab opened during an evaluation says the run is still going elsewhere, not that a reload ended it', async () => {
  const ctx = await browser.newContext();
  const { page: a, errors } = await openPage(ctx, server.url);
  await a.click('[data-testid=tab-eval]');
  await a.selectOption('[data-testid=eval-task]', 'name-index');
  // As many items as a run takes, so that it is still going on the fastest machine.
  await a.fill('[data-testid=eval-n]', '2000');
  await a.dispatchEvent('[data-testid=eval-n]', 'change');
  await a.click('[data-testid=eval-run]');
  // Once tab A has saved its report mid-run (every 5 s while it runs).
  await a.waitForFunction(() => JSON.parse(localStorage.getItem('tinylab.eval.v1') ?? '{}').panes?.[0]?.results?.length > 0, null, { timeout: 120000 });
  const { page: b } = await openPage(ctx, server.url);
  await b.click('[data-testid=tab-eval]');
  await b.locator('[data-testid=eval-source]').waitFor();
  const said = await b.textContent('[data-testid=eval-source]');
  assert.match(said, /partial: the run was still going in another tab or window/);
  assert.doesNotMatch(said, /reloaded/);
  await a.click('[data-testid=eval-stop]');
  assert.deepEqual(errors, []);
  await ctx.close();
});
