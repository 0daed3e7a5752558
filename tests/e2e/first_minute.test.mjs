// The first minute, as a new user has it after the serve command: the default model is chosen
// in pane 1 and one click on Run loads and runs it; a fresh page logs no error in the console
// (no 404 probes for models the server lacks); kiosk mode names no chooser it hides.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, symlinkSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  startServer, launch, pane, screenshot, nativeGenerate, sameGreedy, MODELS, SMOLLM2,
  SMOLLM2_FILE, recordCacheStates, cacheStates, TINYLAB,
} from './harness.mjs';

const catalog = JSON.parse(readFileSync(join(MODELS, 'catalog.json'), 'utf8'));
let server;
let browser;
let models;
before(async () => {
  // A server with only the default model, as after `python3 scripts/fetch_models.py`.
  models = mkdtempSync(join(tmpdir(), 'tinylab-models-'));
  symlinkSync(join(MODELS, 'catalog.json'), join(models, 'catalog.json'));
  symlinkSync(SMOLLM2_FILE, join(models, 'SmolLM2-135M-Instruct.Q4_1.gguf'));
  server = await startServer(['--models', models]);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  server?.close();
  rmSync(models, { recursive: true, force: true });
});

// Console messages of type error (a failed request is one), besides uncaught page errors.
function consoleErrors(page) {
  const out = [];
  // And deprecation warnings: one from our own glue (wasm-bindgen's init called the old way)
  // is a defect. (Chromium's notice that it ignores `integrity` on Trunk's preload is not.)
  page.on('console', (m) => {
    if (m.type() === 'error' || (m.type() === 'warning' && /deprecated/i.test(m.text()))) out.push(`${m.type()}: ${m.text()}`);
  });
  return out;
}

test('a fresh page has the default model chosen, one click on Run loads and runs it, and the console stays clean', async () => {
  assert.equal(catalog.default, SMOLLM2);
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const logged = consoleErrors(page);
  const errors = [];
  const requests = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => requests.push(r.url()));
  await page.addInitScript(recordCacheStates);
  await page.goto(server.url);
  const p = pane(page);
  // The server's model list has arrived when the missing models say so.
  const gemma = catalog.models.find((m) => m.id !== SMOLLM2);
  await page.locator(`[data-testid=model-select] option[value="${gemma.id}"]`, { hasText: 'not on this server' })
    .waitFor({ state: 'attached', timeout: 30000 });
  assert.equal(await p.get('model-select').inputValue(), SMOLLM2);
  assert.equal(await p.status().getAttribute('data-state'), 'empty');
  assert.match(await p.status().textContent(), /is chosen \(98\.4 MB\); Run loads it from this server and runs \(Score and Send load it too\)/);
  assert.ok(await p.get('run').isEnabled(), 'Run is enabled before any model is loaded');
  assert.deepEqual(requests.filter((u) => u.includes('.gguf')), [], 'a model was requested before Run');
  await screenshot(page, 'first-minute-fresh');

  const prompt = 'The three primary colors are';
  await page.fill('[data-testid=prompt]', prompt);
  await p.set('temperature', 0);
  await p.set('max-tokens', 12);
  await p.get('chat-mode').uncheck();
  await p.get('run').click();
  await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])').waitFor({ timeout: 180000 });
  assert.equal(await p.output().getAttribute('data-state'), 'done');
  assert.equal(await p.status().getAttribute('data-state'), 'ready');
  sameGreedy((await p.tokens()).map((t) => t.id), nativeGenerate(SMOLLM2_FILE, prompt, 12), 'first run');
  // The model was ready, and the run under way, before its bytes were in the browser cache;
  // the put ends on its own and says how it went. (This context's storage may refuse it.)
  await p.settled();
  const states = (await cacheStates(page))['0'];
  assert.equal(states[0], 'keeping', `cache states ${states}`);
  assert.match(states[states.length - 1], /^(kept|not-kept)$/, `cache states ${states}`);
  assert.match(await p.status().textContent(), /ready · .* · (kept in the browser cache|not kept for offline use)/);
  await screenshot(page, 'first-minute-run');

  assert.deepEqual(errors, []);
  assert.deepEqual(logged, [], 'the console logged errors');
  // No HEAD probe for the models the server lacks: their presence came from one list.
  assert.deepEqual(requests.filter((u) => catalog.models.some((m) => m.id !== SMOLLM2 && u.includes(m.file))), []);
  await ctx.close();
});

/// A fresh context on the server's page, once the default model is said to be chosen (not
/// loaded); uncaught page errors go to `errors`.
async function freshPage(errors) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(server.url);
  const p = pane(page);
  await p.root.locator('[data-testid=model-status]', { hasText: 'is chosen' }).waitFor({ timeout: 30000 });
  return { ctx, page, p };
}

test('on a fresh page the Entropy lab and Chat load the chosen model too: Score and Send, as Run does', async () => {
  const errors = [];
  const { ctx, page, p } = await freshPage(errors);
  assert.match(await p.status().textContent(), /Score and Send load it too/);
  await page.click('[data-testid=tab-score]');
  const text = 'The quick brown fox jumps over the lazy dog.';
  await page.fill('[data-testid=score-text]', text);
  assert.ok(await p.get('score').isEnabled(), "the pane's Score is enabled before any model is loaded");
  await page.click('[data-testid=score-all]');
  await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])').waitFor({ timeout: 120000 });
  assert.equal(await p.output().getAttribute('data-state'), 'done', await p.get('run-message').textContent());
  const cli = JSON.parse(execFileSync(TINYLAB, ['score', '--model', SMOLLM2_FILE, '--text', text, '--json'], { encoding: 'utf8' }));
  assert.deepEqual((await p.tokens()).map((t) => t.id), cli.tokens.map((t) => t.id));
  // White space alone is text too, measured as the command line measures it.
  const blank = '  \n\t  \n\n  ';
  await page.fill('[data-testid=score-text]', blank);
  await page.click('[data-testid=score-all]');
  await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])').waitFor({ timeout: 60000 });
  assert.equal(await p.output().getAttribute('data-state'), 'done', await p.get('run-message').textContent());
  const cliBlank = JSON.parse(execFileSync(TINYLAB, ['score', '--model', SMOLLM2_FILE, '--text', blank, '--json'], { encoding: 'utf8' }));
  assert.ok(cliBlank.tokens.length > 0);
  assert.deepEqual((await p.tokens()).map((t) => t.id), cliBlank.tokens.map((t) => t.id));
  await ctx.close();

  // Chat: typing and Enter on a fresh page loads the model, then the reply comes.
  const { ctx: ctx2, page: page2, p: c } = await freshPage(errors);
  await page2.click('[data-testid=tab-chat]');
  await c.set('temperature', 0);
  await c.set('max-tokens', 8);
  assert.ok(await c.get('chat-send').isDisabled(), 'nothing to send yet');
  await c.get('chat-input').fill('  \n ');
  assert.ok(await c.get('chat-send').isDisabled(), 'only blanks: nothing to send');
  await c.get('chat-input').fill('Hello!');
  assert.ok(await c.get('chat-send').isEnabled(), 'Send is enabled before any model is loaded');
  // The Enter that ends an input method's composition picks the text; it does not send.
  await c.get('chat-input').dispatchEvent('keydown', { key: 'Enter', isComposing: true, bubbles: true, cancelable: true });
  await page2.waitForTimeout(300);
  assert.equal(await c.get('chat-input').inputValue(), 'Hello!');
  assert.equal(await c.status().getAttribute('data-state'), 'empty', 'a composing Enter sent the message');
  // The model's bytes are held back until the box has been edited, so the message is still
  // waiting for its model when the user adds to it.
  let release;
  const held = new Promise((r) => { release = r; });
  await ctx2.route((url) => url.pathname.endsWith('.gguf'), async (route) => { await held; await route.continue(); });
  await c.get('chat-input').press('Enter');
  await c.root.locator('[data-testid=model-status][data-state=loading]').waitFor({ timeout: 30000 });
  assert.ok(await c.get('chat-send').isDisabled(), 'Send is off while the model loads');
  // What is typed meanwhile goes with the message, not away with the box.
  await c.get('chat-input').fill('Hello! Who are you?');
  await c.get('chat-input').press('Enter');
  release();
  await c.root.locator('[data-testid=chat]:is([data-state=done],[data-state=error])').waitFor({ timeout: 120000 });
  assert.equal(await c.get('chat').getAttribute('data-state'), 'done', await c.get('chat-message').textContent());
  assert.equal(await c.status().getAttribute('data-state'), 'ready');
  assert.equal(await c.root.locator('[data-testid=chat-turn][data-role=assistant]').count(), 1);
  const asked = c.root.locator('[data-testid=chat-turn][data-role=user]');
  assert.equal(await asked.count(), 1);
  assert.equal(await asked.locator('.text').first().textContent(), 'Hello! Who are you?');
  assert.equal(await c.get('chat-input').inputValue(), '', 'the message was taken');
  assert.deepEqual(errors, []);
  await ctx2.close();

  // A message deleted from the box while its model loads is not sent.
  const { ctx: ctx3, page: page3, p: d } = await freshPage(errors);
  await page3.click('[data-testid=tab-chat]');
  let release3;
  const held3 = new Promise((r) => { release3 = r; });
  await ctx3.route((url) => url.pathname.endsWith('.gguf'), async (route) => { await held3; await route.continue(); });
  await d.get('chat-input').fill('Never mind');
  await d.get('chat-input').press('Enter');
  await d.root.locator('[data-testid=model-status][data-state=loading]').waitFor({ timeout: 30000 });
  await d.get('chat-input').fill('');
  release3();
  await d.root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 60000 });
  await d.root.locator('[data-testid=chat-message]', { hasText: 'Nothing was sent' }).waitFor({ timeout: 10000 });
  assert.equal(await d.root.locator('[data-testid=chat-turn]').count(), 0);
  assert.deepEqual(errors, []);
  await ctx3.close();
});

test('a keyboard user keeps their place: Run hands focus to Stop and back, the tabs and colour radios move with the arrow keys', async () => {
  const errors = [];
  const { ctx, page, p } = await freshPage(errors);
  const focused = () => page.evaluate(() => document.activeElement?.dataset?.testid ?? document.activeElement?.tagName);
  await p.set('max-tokens', 6);
  await p.get('run').focus();
  await page.keyboard.press('Enter');
  // Run is off while the model loads and runs: focus goes to Stop, not to the page's body.
  await page.waitForFunction(() => document.activeElement?.dataset?.testid === 'stop', null, { timeout: 30000 });
  await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])').waitFor({ timeout: 120000 });
  await page.waitForFunction(() => document.activeElement?.dataset?.testid === 'run', null, { timeout: 10000 });
  assert.equal(await focused(), 'run');

  // A screen reader hears one short line per token moved to, not the inspector's whole panel.
  await p.get('token').first().focus();
  await page.keyboard.press('ArrowRight');
  const said = p.get('token-inspector-said');
  await page.waitForFunction((el) => /#2\)/.test(el.textContent), await said.elementHandle());
  assert.match(await said.textContent(), /^.+ \(#2\): probability [\d.<]+%?, rank \d+, surprisal \d+\.\d\d (nats|bits)$/);
  assert.equal(await said.getAttribute('aria-live'), 'polite');
  assert.equal(await p.get('token-inspector').getAttribute('aria-live'), null);

  // The tabs: one Tab stop, the arrow keys select.
  await page.locator('[data-testid=tab-generate]').focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await focused(), 'tab-score');
  assert.equal(await page.getAttribute('[data-testid=tab-score]', 'aria-selected'), 'true');
  assert.equal(await page.getAttribute('[data-testid=tab-generate]', 'tabindex'), '-1');
  await page.keyboard.press('End');
  assert.equal(await focused(), 'tab-eval');
  // The evaluation's number boxes point at the line that says what was wrong with a value.
  const describedBy = await page.getAttribute('[data-testid=eval-n]', 'aria-describedby');
  assert.equal(await page.getAttribute(`#${describedBy}`, 'role'), 'status');
  await page.keyboard.press('ArrowRight');
  assert.equal(await focused(), 'tab-generate', 'wraps around');
  assert.equal(await page.getAttribute('#mode-panel', 'aria-labelledby'), 'tab-generate');

  // The colour radios likewise.
  const checked = p.root.locator('.color-switch [role=radio][aria-checked=true]');
  const first = await checked.getAttribute('data-testid');
  await checked.focus();
  await page.keyboard.press('ArrowRight');
  const second = await checked.getAttribute('data-testid');
  assert.notEqual(second, first);
  assert.equal(await focused(), second);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('kiosk mode names no chooser it hides, and a first visit there chooses nothing', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const logged = consoleErrors(page);
  await page.goto(`${server.url}?demo=1`);
  await page.locator('[data-testid=model-select] option[value="' + SMOLLM2 + '"]').waitFor({ state: 'attached', timeout: 30000 });
  const p = pane(page);
  assert.match(await p.status().textContent(), /press one of the demos above/);
  // innerText leaves out what CSS hides, as a visitor reads the page.
  const visible = await page.locator('body').innerText();
  for (const hidden of [/choose one above/i, /drop a \.gguf/i, /Open \.gguf/, /under Models/, /is chosen/, /Runs GGUF models/]) {
    assert.doesNotMatch(visible, hidden);
  }
  assert.deepEqual(logged, []);
  await screenshot(page, 'first-minute-kiosk');
  await ctx.close();
});

test('a first visit through a link that names no model (a shared prompt, a tracking parameter) still has the default chosen', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const logged = consoleErrors(page);
  await page.goto(`${server.url}?prompt=Why%20is%20the%20sky%20blue%3F&seed=5&utm_source=x`);
  const p = pane(page);
  await p.root.locator('[data-testid=model-status]', { hasText: 'is chosen' }).waitFor({ timeout: 30000 });
  assert.equal(await p.get('model-select').inputValue(), SMOLLM2);
  assert.equal(await page.inputValue('[data-testid=prompt]'), 'Why is the sky blue?');
  assert.equal(await p.get('seed').inputValue(), '5');
  // Nor do links whose models= or panes= name no model it can use.
  for (const query of ['models=,,,', 'panes=garbage', 'panes=%7B%7D', 'panes=%5Bnull%2C5%2C%22x%22%5D']) {
    const fresh = await browser.newContext();
    const page2 = await fresh.newPage();
    await page2.goto(`${server.url}?${query}`);
    await pane(page2).root.locator('[data-testid=model-status]', { hasText: 'is chosen' }).waitFor({ timeout: 30000 });
    assert.equal(await pane(page2).get('model-select').inputValue(), SMOLLM2, query);
    await fresh.close();
  }
  assert.deepEqual(logged, []);
  await ctx.close();
});
