// Forks at any token: click a token, then one of its alternatives in the inspector; the pane
// goes on from there with that token instead, keeps every branch to switch between, and
// compares their mean surprisal and entropy. The branch equals `tinylab generate` forced
// through the same prefix, and the same seed gives the same branch.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launch, openPage, pane, screenshot, nativeGenerate, sameGreedy, SMOLLM2, SMOLLM2_FILE,
} from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const PROMPT = 'The three primary colors are';
const N = 16;

async function done(p) {
  await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])').waitFor({ timeout: 120000 });
  assert.equal(await p.output().getAttribute('data-state'), 'done');
}

// Clicks token `at`, then the inspector's first alternative that is not the token itself.
async function forkAt(page, p, at) {
  await p.root.locator('[data-testid=token]').nth(at).click();
  await page.mouse.move(0, 0);
  const alt = p.root.locator('[data-testid=token-alternative]:not([disabled])').first();
  const id = Number(await alt.getAttribute('data-token-id'));
  await alt.click();
  await done(p);
  return id;
}

const ids = async (p) => (await p.tokens()).map((t) => t.id);

test('a fork goes on from the chosen alternative, as the CLI does through the same prefix', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  await p.loadCatalog(SMOLLM2);
  await page.fill('[data-testid=prompt]', PROMPT);
  await p.set('temperature', 0);
  await p.set('max-tokens', N);
  await p.get('chat-mode').uncheck();
  await p.get('run').click();
  await done(p);
  const parent = await ids(p);
  assert.equal(await p.get('branch-select').count(), 0, 'no branch chooser before a fork');
  // The chosen token's own alternative cannot be forked to.
  await p.root.locator('[data-testid=token]').nth(2).click();
  assert.ok(await p.root.locator('[data-testid=token-alternative]').nth(0).isDisabled());

  const at = 2;
  const alt = await forkAt(page, p, at);
  const branch = await ids(p);
  assert.deepEqual(branch.slice(0, at), parent.slice(0, at), 'the tokens before the fork are the parent\'s');
  assert.equal(branch[at], alt);
  const forced = [...parent.slice(0, at), alt];
  const cli = nativeGenerate(SMOLLM2_FILE, PROMPT, N, ['--force-ids', forced.join(',')]);
  sameGreedy(branch, cli, 'fork');
  assert.equal(await p.root.locator('.tok.fork-point').count(), 1);
  assert.equal(await p.root.locator('[data-testid=token]').nth(at).getAttribute('class').then((c) => c.includes('fork-point')), true);

  // Both branches are kept, with their figures; switching shows each again.
  const options = await p.get('branch-select').locator('option').allTextContents();
  assert.equal(options.length, 2);
  assert.equal(options[0], 'original');
  assert.match(options[1], /^fork at #3 → /);
  const rows = p.get('branch-compare').locator('tbody tr');
  assert.equal(await rows.count(), 2);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const branchToks = await p.tokens();
  assert.ok(Math.abs(Number(await rows.nth(1).getAttribute('data-mean-surprisal')) - mean(branchToks.map((t) => t.surprisal))) < 1e-9);
  await p.get('branch-select').selectOption('0');
  assert.deepEqual(await ids(p), parent);
  assert.ok(Math.abs(Number(await rows.nth(0).getAttribute('data-mean-entropy')) - mean((await p.tokens()).map((t) => t.entropy))) < 1e-9);
  await p.get('branch-select').selectOption('1');
  assert.deepEqual(await ids(p), branch);
  await screenshot(page, 'fork');

  // A typed continuation instead of a listed alternative: the worker tokenizes it and takes
  // all of it as given, as `tinylab generate --force-text` does.
  await p.get('branch-select').selectOption('0');
  await p.root.locator('[data-testid=token]').nth(at).click();
  assert.ok(await p.get('fork-text-go').isDisabled(), 'nothing typed, nothing to fork to');
  // A fork keeps the output's own settings, and says so.
  assert.match(await p.get('fork-settings').textContent(), new RegExp(`\\(greedy, up to ${N} tokens\\)`));
  await p.get('fork-text').fill(' yellow and');
  // The pointer crosses other tokens on its way to the button: the clicked token stays in
  // the inspector, and the typed text with it.
  await p.root.locator('[data-testid=token]').nth(at + 2).hover();
  assert.match(await p.get('token-inspector').textContent(), new RegExp(`#${at + 1} · id`));
  // The rank counted from 0, as the token's data-rank (and the export and CLI) count it.
  const rank = Number(await p.root.locator('[data-testid=token]').nth(at).getAttribute('data-rank'));
  assert.match(await p.get('token-inspector').textContent(),
    rank === 0 ? /rank0: the most likely \(/ : new RegExp(`rank${rank}: the ${rank + 1}(st|nd|rd|th) most likely \\(`));
  assert.equal(await p.get('fork-text').inputValue(), ' yellow and');
  await p.get('fork-text-go').click();
  await done(p);
  const typed = await ids(p);
  assert.deepEqual(typed.slice(0, at), parent.slice(0, at));
  const typedCli = nativeGenerate(SMOLLM2_FILE, PROMPT, N, ['--force-ids', parent.slice(0, at).join(','), '--force-text', ' yellow and']);
  sameGreedy(typed, typedCli, 'typed fork');
  assert.match((await p.get('branch-select').locator('option').allTextContents())[2], /^fork at #3 → /);

  // From the keyboard: Enter keeps a token in the inspector while Tab moves on; Escape lets
  // it go, and the inspector follows the focus again.
  const tok = (k) => p.root.locator('[data-testid=token]').nth(k);
  await tok(1).focus();
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.match(await p.get('token-inspector').textContent(), /#2 · id/);
  await page.keyboard.press('Escape');
  await tok(4).focus();
  assert.match(await p.get('token-inspector').textContent(), /#5 · id/);
  // The output is one tab stop, the token inspected; the arrow keys move between tokens.
  const stops = await p.root.locator('[data-testid=token][tabindex="0"]').count();
  assert.equal(stops, 1);
  await page.keyboard.press('ArrowRight');
  assert.match(await p.get('token-inspector').textContent(), /#6 · id/);
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  assert.match(await p.get('token-inspector').textContent(), /#4 · id/);
  await page.keyboard.press('Home');
  assert.match(await p.get('token-inspector').textContent(), /#1 · id/);

  // Sampling: the same seed gives the same branch.
  await p.set('temperature', 0.9);
  await p.set('seed', 7);
  await p.get('run').click();
  await done(p);
  assert.equal(await p.get('branch-select').count(), 0, 'a new run starts a new tree');
  const sampled = await ids(p);
  const alt2 = await forkAt(page, p, 4);
  const first = await ids(p);
  await p.get('branch-select').selectOption('0');
  assert.deepEqual(await ids(p), sampled);
  const again = await forkAt(page, p, 4);
  assert.equal(again, alt2);
  assert.deepEqual(await ids(p), first, 'the same fork with the same seed');
  assert.equal(await p.get('branch-select').locator('option').count(), 3);

  // A reload keeps the run, its branches and the one shown (the model is loaded again by
  // Run, or by the next fork's model load).
  const shown = await p.tokens();
  const labels = await p.get('branch-select').locator('option').allTextContents();
  const chosen = await p.get('branch-select').inputValue();
  await page.reload();
  await p.get('branch-select').waitFor();
  assert.deepEqual(await p.get('branch-select').locator('option').allTextContents(), labels);
  assert.equal(await p.get('branch-select').inputValue(), chosen);
  assert.deepEqual(await p.tokens(), shown);
  await p.get('branch-select').selectOption('0');
  assert.deepEqual(await ids(p), sampled);
  assert.equal(await p.output().getAttribute('data-state'), 'done');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('hovering a token never moves the page: on a page scrolled down the inspector stays still', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  await p.loadCatalog(SMOLLM2);
  await page.fill('[data-testid=prompt]', 'The best way to learn a language is');
  await p.set('temperature', 0);
  await p.set('max-tokens', 20);
  await p.get('chat-mode').uncheck();
  await p.get('run').click();
  await done(p);
  // After a fork, with the page scrolled to its end, the inspector's and the charts' changing
  // height made the browser's scroll anchoring move the page: the token slid from under the
  // pointer and back, and the inspector was rebuilt hundreds of times a second.
  await forkAt(page, p, 0);
  await page.mouse.move(0, 0);
  await page.mouse.wheel(0, 3000);
  await page.waitForTimeout(400);
  assert.ok(await page.evaluate(() => window.scrollY) > 0, 'the page scrolled down');
  const tokens = p.root.locator('[data-testid=token]');
  const n = await tokens.count();
  assert.ok(n > 0);
  for (let i = 0; i < n; i++) {
    await page.mouse.move(0, 0);
    await page.waitForTimeout(100);
    const box = await tokens.nth(i).boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const { changes, ys } = await page.evaluate(() => new Promise((resolve) => {
      let changes = 0;
      const ys = [];
      const seen = new MutationObserver((r) => { changes += r.length; });
      seen.observe(document.querySelector('[data-testid=token-inspector]'), { subtree: true, childList: true });
      const every = setInterval(() => ys.push(Math.round(window.scrollY)), 50);
      setTimeout(() => { seen.disconnect(); clearInterval(every); resolve({ changes, ys }); }, 700);
    }));
    assert.ok(changes < 20, `token ${i}: the inspector changed ${changes} times under a resting pointer`);
    assert.ok(ys.every((y) => y === ys[0]), `token ${i}: the page moved under a resting pointer: ${ys}`);
  }
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('one click on Run after a settings edit runs, on a page scrolled down', async () => {
  // A number box takes its value when it loses the focus, which the press on Run does; the
  // note that the output was made with other settings then appeared above Run, and scroll
  // anchoring moved the page: Run slid from under the pointer, and the click was lost.
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 700 } });
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  await p.loadCatalog(SMOLLM2);
  await page.fill('[data-testid=prompt]', 'List the planets of the solar system.');
  await p.set('max-tokens', 12);
  await p.get('chat-mode').uncheck();
  await p.get('run').click();
  await done(p);
  const box = p.get('max-tokens');
  await box.click();
  await box.press('Control+a');
  await page.keyboard.type('5');
  assert.ok(await page.evaluate(() => window.scrollY) > 0, 'the page scrolled down to the box');
  const run = await p.get('run').boundingBox();
  await page.mouse.move(run.x + run.width / 2, run.y + run.height / 2);
  await page.mouse.down();
  await page.mouse.up();
  // The note goes once a run with the settings shown starts; a lost click leaves it.
  await p.get('run-stale').waitFor({ state: 'detached', timeout: 10000 });
  await done(p);
  const n = await p.get('token').count();
  assert.ok(n >= 1 && n <= 5, `${n} tokens`);
  assert.deepEqual(errors, []);
  await ctx.close();
});
