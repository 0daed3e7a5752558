// A hostile saved workspace (10 panes, absurd values, odd model ids) and a hostile permalink:
// the page opens with at most 4 panes and 4 model workers, every value within its control.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, pane, SMOLLM2 } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

test('a 10-pane saved workspace and a 7-model permalink are clamped to 4 panes', async () => {
  const panes = Array.from({ length: 10 }, (_, i) => ({
    model_id: i % 3 === 2 ? '../../../etc/passwd' : SMOLLM2,
    temperature: 1e30,
    top_p: -4,
    max_tokens: 1e12,
    seed: i,
  }));
  const saved = JSON.stringify({ prompt: 'x'.repeat(300000), panes, mode: 'generate' });
  const ctx = await browser.newContext();
  await ctx.addInitScript((ws) => {
    if (!sessionStorage.getItem('seeded')) {
      localStorage.setItem('tinylab.workspace.v1', ws);
      sessionStorage.setItem('seeded', '1');
    }
  }, saved);
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(server.url);
  await page.waitForSelector(`[data-testid=model-select] option[value="${SMOLLM2}"]`, { state: 'attached', timeout: 30000 });
  await pane(page, 0).root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 180000 });
  assert.equal(await page.locator('[data-testid=pane]').count(), 4);
  // Panes 0, 1 and 3 name the model; pane 2's id cannot be a catalog id and is dropped.
  for (const i of [1, 3]) {
    await pane(page, i).root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 180000 });
  }
  assert.equal(await pane(page, 2).status().getAttribute('data-state'), 'empty');

  assert.ok(page.workers().length <= 4, `${page.workers().length} workers`);
  const p = pane(page, 0);
  assert.equal(Number(await p.get('temperature').inputValue()), 5);
  assert.equal(Number(await p.get('max-tokens').inputValue()), 4096);
  assert.equal(Number(await p.get('top-p').inputValue()), 0.01);
  assert.equal((await page.inputValue('[data-testid=prompt]')).length, 200000);

  // A permalink naming seven models.
  const page2 = await ctx.newPage();
  const ids = Array(7).fill(SMOLLM2).join(',');
  await page2.goto(`${server.url}?models=${ids}&temperature=NaN&max_tokens=99999999`);
  await page2.waitForSelector(`[data-testid=model-select] option[value="${SMOLLM2}"]`, { state: 'attached', timeout: 30000 });
  assert.equal(await page2.locator('[data-testid=pane]').count(), 4);
  await page2.waitForTimeout(3000);
  assert.ok(page2.workers().length <= 4, `${page2.workers().length} workers`);
  assert.equal(Number(await pane(page2, 0).get('max-tokens').inputValue()), 4096);
  // What the link asked for and did not get is said, once, above the tabs.
  const said = await page2.textContent('[data-testid=link-note]');
  for (const part of [/names 7 models; a page holds 4 panes/, /temperature=NaN is not a number/, /max_tokens=99999999 is out of range \(1 to 4096\); 4096 is used/]) {
    assert.match(said, part);
  }
  await page2.locator('[data-testid=link-note] button').click();
  assert.equal(await page2.locator('[data-testid=link-note]').count(), 0);
  // A link naming a model this catalog lacks: that pane says which id it could not find.
  const page3 = await ctx.newPage();
  await page3.goto(`${server.url}?models=no-such-model,${SMOLLM2}`);
  await pane(page3, 1).root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 180000 });
  assert.equal(await pane(page3, 0).status().getAttribute('data-state'), 'empty');
  assert.match(await pane(page3, 0).status().textContent(), /"no-such-model" is not a model of this page's catalog/);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a link says what it could not use, and an unreadable save is said', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const open = async (query) => {
    await page.goto(`${server.url}?${query}`);
    await page.waitForSelector(`[data-testid=model-select] option[value="${SMOLLM2}"]`, { state: 'attached', timeout: 30000 });
  };
  // A model id that can name no model used to be dropped without a word.
  await open(`models=${encodeURIComponent('<img src=x onerror=alert(1)>')},${SMOLLM2}`);
  assert.match(await page.textContent('[data-testid=link-note]'), /names "<img src=x onerror=alert…", which is not a model id/);
  assert.equal(await page.locator('[data-testid=link-note] img').count(), 0);
  // panes= overrides models= and temperature=, and its own out-of-range values are said.
  const panes = JSON.stringify([{ model_id: SMOLLM2, temperature: 1e9, max_tokens: 5 }]);
  await open(`models=gemma3-270m-q4_k_m&temperature=0.9&panes=${encodeURIComponent(panes)}`);
  const said = await page.textContent('[data-testid=link-note]');
  assert.match(said, /panes= gives every pane's settings, so its models=, temperature= were not used/);
  assert.match(said, /panes= for pane 1: temperature 1000000000(\.0)? → 5\b/);
  assert.equal(Number(await pane(page, 0).get('temperature').inputValue()), 5);
  // CONTRACT.md's mode=score with prompt=: the text to measure.
  await open('mode=score&prompt=Measure%20this%20sentence.');
  assert.equal(await page.inputValue('[data-testid=score-text]'), 'Measure this sentence.');
  await ctx.close();
  // A save that cannot be read: the defaults, said.
  const ctx2 = await browser.newContext();
  await ctx2.addInitScript(() => {
    if (!sessionStorage.getItem('seeded')) {
      localStorage.setItem('tinylab.workspace.v1', '{not json');
      sessionStorage.setItem('seeded', '1');
    }
  });
  const page2 = await ctx2.newPage();
  await page2.goto(server.url);
  await page2.waitForSelector(`[data-testid=model-select] option[value="${SMOLLM2}"]`, { state: 'attached', timeout: 30000 });
  assert.match(await page2.textContent('[data-testid=link-note]'), /saved workspace could not be read/);
  await ctx2.close();
});

test('a pane whose model came from a file that the cache no longer holds says so after a reload', async () => {
  const ws = JSON.stringify({
    prompt: 'kept',
    panes: [{ local_model: { url: `${server.url}local/gone.gguf`, label: 'gone.gguf' } }],
  });
  const ctx = await browser.newContext();
  await ctx.addInitScript((saved) => {
    if (!sessionStorage.getItem('seeded')) {
      localStorage.setItem('tinylab.workspace.v1', saved);
      sessionStorage.setItem('seeded', '1');
    }
  }, ws);
  const page = await ctx.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(server.url);
  const status = pane(page, 0).status();
  await page.waitForFunction(() => /came from a file/.test(document.querySelector('[data-testid=model-status]')?.textContent ?? ''), null, { timeout: 30000 });
  assert.match(await status.textContent(), /gone\.gguf came from a file on this machine and is not in this browser's cache/);
  assert.equal(await status.getAttribute('data-state'), 'empty');
  assert.ok(!requests.some((u) => u.includes('gone.gguf')), 'nothing is fetched for it');
  assert.equal(await page.inputValue('[data-testid=prompt]'), 'kept');
  // A file that failed to load is not a model to bring back: after a reload the pane says
  // nothing of a file the cache lost.
  await pane(page, 0).get('model-file').setInputFiles({ name: 'junk.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from('<html>not a model</html>') });
  await page.locator('[data-testid=model-status][data-state=error]').waitFor({ timeout: 30000 });
  await page.reload();
  await page.locator('[data-testid=model-select] option').nth(1).waitFor({ state: 'attached', timeout: 30000 });
  await page.waitForTimeout(1000);
  assert.doesNotMatch(await status.textContent(), /came from a file/);
  await ctx.close();
});

test('a link opened where a workspace was saved can give that workspace back', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(server.url);
  await page.locator('[data-testid=prompt]').waitFor();
  await page.fill('[data-testid=prompt]', 'My own careful prompt,\nover two lines');
  await pane(page).set('seed', 777);
  // A colleague's link, in the same browser: it replaces the saved workspace.
  await page.goto(`${server.url}/?models=${SMOLLM2}&prompt=Shared%20prompt&temperature=0.9`);
  await page.locator('[data-testid=link-replaced]').waitFor({ timeout: 10000 });
  assert.equal(await page.inputValue('[data-testid=prompt]'), 'Shared prompt');
  assert.match(await page.textContent('[data-testid=link-replaced]'), /replaced the workspace this browser had saved \(prompt "My own careful prompt, over two lines"\)\./);
  // Another link opened in another tab meanwhile: the button still gives back the user's own.
  const other = await ctx.newPage();
  await other.goto(`${server.url}/?prompt=Link%20two`);
  await other.locator('[data-testid=link-replaced]').waitFor({ timeout: 10000 });
  await other.close();
  await page.click('[data-testid=restore-workspace]');
  await page.waitForURL((u) => !u.search.includes('prompt='));
  await page.locator('[data-testid=prompt]').waitFor();
  await page.waitForFunction(() => document.querySelector('[data-testid=prompt]')?.value === 'My own careful prompt,\nover two lines');
  assert.equal(await pane(page).get('seed').inputValue(), '777');
  assert.equal(await page.locator('[data-testid=link-replaced]').count(), 0);
  // The page as it opens with no link: nothing said of one.
  await page.reload();
  await page.locator('[data-testid=prompt]').waitFor();
  assert.equal(await page.inputValue('[data-testid=prompt]'), 'My own careful prompt,\nover two lines');
  assert.equal(await page.locator('[data-testid=link-replaced]').count(), 0);

  // A workspace on the default prompt, with two panes of its own settings (a preset run on
  // the prompt the page opens with), is the user's too: a link says it replaced it. A first
  // visit's is not.
  const fresh = await browser.newContext();
  // Saved before the page opens (written while it runs, the page's own save could land after).
  await fresh.addInitScript((m) => {
    if (sessionStorage.getItem('seeded')) return;
    sessionStorage.setItem('seeded', '1');
    localStorage.setItem('tinylab.workspace.v1', JSON.stringify({
      panes: [{ model_id: m, temperature: 0.2 }, { model_id: 'gemma3-270m-q4_k_m', temperature: 1 }],
    }));
  }, SMOLLM2);
  const own = await fresh.newPage();
  await own.goto(`${server.url}/?models=${SMOLLM2}&temperature=0.9`);
  await own.locator('[data-testid=link-replaced]').waitFor({ timeout: 10000 });
  // A link that sets no prompt leaves the saved one, and says so (it said it had replaced it).
  assert.match(await own.textContent('[data-testid=link-replaced]'), /changed the settings this browser had saved; the prompt is as it was\./);
  const first = await browser.newContext();
  const visitor = await first.newPage();
  await visitor.goto(server.url);
  await visitor.locator('[data-testid=prompt]').waitFor();
  await visitor.waitForFunction(() => localStorage.getItem('tinylab.workspace.v1') !== null);
  await visitor.goto(`${server.url}/?models=${SMOLLM2}&temperature=0.9`);
  await visitor.locator('[data-testid=prompt]').waitFor();
  assert.equal(await visitor.locator('[data-testid=link-replaced]').count(), 0, 'a first visit\'s workspace is not said to be replaced');
  await fresh.close();
  await first.close();
  await ctx.close();
});

test('Add pane takes the last pane\'s settings, not its conversation or its model from a file', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await ctx.addInitScript((m) => {
    if (sessionStorage.getItem('seeded')) return;
    sessionStorage.setItem('seeded', '1');
    localStorage.setItem('tinylab.workspace.v1', JSON.stringify({
      mode: 'chat',
      panes: [{
        model_id: m,
        temperature: 0.3,
        local_model: { url: 'tinylab-local:mine.gguf', label: 'mine.gguf' },
        conversation: { system: '', turns: [{ role: 'user', content: 'Only for pane 1.' }], left_out: 0, draft: '' },
      }],
    }));
  }, SMOLLM2);
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(server.url);
  await pane(page, 0).root.locator('[data-testid=chat-turn]').first().waitFor();
  await page.click('[data-testid=add-pane]');
  const p2 = pane(page, 1);
  await p2.root.waitFor();
  assert.equal(await p2.root.locator('[data-testid=chat-turn]').count(), 0, 'pane 1\'s conversation in pane 2');
  assert.equal(await p2.get('temperature').inputValue(), '0.3');
  const saved = await page.evaluate(() => JSON.parse(localStorage.getItem('tinylab.workspace.v1')).panes[1]);
  assert.equal(saved.local_model, null);
  assert.equal(saved.model_id, '');
  assert.deepEqual(errors, []);
  await ctx.close();
});
