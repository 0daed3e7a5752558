// The blind arena: two models drawn at random and hidden as A and B answer one prompt; a vote
// reveals them; the tally (wins and a Bradley-Terry rating) survives a reload, exports and
// resets. The kiosk variant asks which answer came from the bigger model.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launch, openPage, pane, screenshot, MODELS, SMOLLM2, SMOLLM2_FILE } from './harness.mjs';

const catalog = JSON.parse(readFileSync(join(MODELS, 'catalog.json'), 'utf8'));
const names = catalog.models.map((m) => m.name);

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

async function battle(page) {
  await page.fill('[data-testid=prompt]', 'Name a fruit.');
  await page.click('[data-testid=arena-run]');
  // While the hidden models load and answer, nothing on the panes names them: the run
  // messages that say a model is loading first included.
  for (let looks = 0; ; looks++) {
    const text = await page.locator('.panes').innerText();
    for (const n of names) assert.ok(!text.includes(n), `${n} shows during the battle (look ${looks}): ${text.slice(0, 400)}`);
    const states = await Promise.all([0, 1].map((i) => pane(page, i).output().getAttribute('data-state')));
    if (states.every((st) => st === 'done' || st === 'error')) break;
    // Neither answer shows before both are in: the smaller model's came first, and the
    // bigger one's streamed visibly slower. (States and tokens read at one moment.)
    const look = await page.evaluate(() => [...document.querySelectorAll('[data-testid=pane]')].map((p) => ({
      state: p.querySelector('[data-testid=output]')?.dataset.state,
      shown: [...p.querySelectorAll('[data-testid=token]')].filter((e) => e.checkVisibility()).length,
      runOff: p.querySelector('[data-testid=run]')?.disabled,
      stopOff: p.querySelector('[data-testid=stop]')?.disabled,
    })));
    if (!look.every((l) => l.state === 'done' || l.state === 'error')) {
      for (const [i, l] of look.entries()) {
        assert.equal(l.shown, 0, `pane ${i} shows tokens while the battle runs: ${JSON.stringify(look)}`);
      }
    }
    // While one answers, both panes' buttons say the battle runs: a pane whose Run came back
    // first would name the faster (smaller) model.
    if (look.some((l) => l.state === 'running')) {
      for (const [i, l] of look.entries()) {
        assert.ok(l.runOff && !l.stopOff, `pane ${i}'s Run/Stop during the battle: ${JSON.stringify(look)}`);
      }
    }
    await page.waitForTimeout(100);
  }
  for (const i of [0, 1]) {
    await pane(page, i).root.locator('[data-testid=output]:is([data-state=done],[data-state=error])')
      .waitFor({ timeout: 240000 });
    assert.equal(await pane(page, i).output().getAttribute('data-state'), 'done');
    await pane(page, i).get('token').first().waitFor({ state: 'visible', timeout: 10000 });
  }
}

test('a blind battle: hidden models, a vote, the reveal, and a tally that persists, exports and resets', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const { page, errors } = await openPage(ctx, server.url);
  await page.click('[data-testid=arena-mode]');
  assert.equal(await page.locator('[data-testid=pane]').count(), 2);
  // Who is who stays hidden: no model chooser, name or status shows.
  for (const i of [0, 1]) {
    const p = pane(page, i);
    assert.equal(await p.root.locator('h2').textContent(), `Model ${i === 0 ? 'A' : 'B'}`);
    assert.equal(await p.get('model-select').isVisible(), false);
    assert.equal(await p.get('model-status').isVisible(), false);
  }
  const ids = await Promise.all([0, 1].map((i) => pane(page, i).get('model-select').inputValue()));
  assert.notEqual(ids[0], ids[1], 'two different models');
  const visible = await page.locator('.panes').innerText();
  for (const n of names) assert.ok(!visible.includes(n), `${n} shows before the vote`);
  assert.ok(await page.locator('[data-testid=arena-vote-a]').isDisabled(), 'no vote before the answers');
  // A battle is its two panes: none can be added or removed while the arena is on.
  assert.ok(await page.locator('[data-testid=add-pane]').isDisabled());
  for (const i of [0, 1]) assert.ok(await pane(page, i).get('remove-pane').isDisabled());

  await battle(page);
  // Speeds, prompt sizes (each model's template and tokenizer) and token ids tell the models
  // apart as surely as their names: none shows before the vote.
  for (const i of [0, 1]) {
    const p = pane(page, i);
    assert.equal(await p.get('stat-decode-tps').isVisible(), false);
    assert.equal((await p.get('run-message').textContent()).trim(), '');
    await p.get('token').first().hover();
    assert.doesNotMatch(await p.get('token-inspector').textContent(), /id \d+/);
  }
  // What the cache gained while the battle loaded its models would name them (each size, and
  // each sum of two, is its own): the header does not count them before the vote.
  assert.match(await page.textContent('[data-testid=offline-status]'), /cached models not shown until the vote/);
  assert.doesNotMatch(await page.textContent('[data-testid=offline-status]'), /MB|GB/);
  // A link or an export would name the models, and a preset would replace the battle's panes.
  for (const id of ['permalink', 'export-json', 'export-csv', 'preset-models', 'preset-repetition', 'preset-temperature']) {
    assert.ok(await page.locator(`[data-testid=${id}]`).isDisabled(), `${id} before the vote`);
  }
  // Nor does any other tab before the vote (Binoculars' reason named both loaded models).
  for (const tab of ['tab-score', 'tab-eval', 'tab-chat', 'tab-generate']) {
    await page.click(`[data-testid=${tab}]`);
    await page.waitForTimeout(300);
    const all = await page.locator('body').innerText();
    for (const n of names) assert.ok(!all.includes(n), `${n} shows on ${tab} before the vote`);
  }
  // The same battle in a second tab of this browser: a vote in one is the vote in both, so
  // the battle is not voted, and counted, twice.
  const { page: other } = await openPage(ctx, server.url);
  await other.locator('[data-testid=arena-vote-b]:not([disabled])').waitFor({ timeout: 60000 });
  await page.click('[data-testid=arena-vote-a]');
  await other.locator('[data-testid=arena-vote-b][disabled]').waitFor({ timeout: 10000 });
  assert.match(await other.locator('[data-testid=arena-reveal]').textContent(), /A was .*, B was /);
  await other.close();
  assert.equal((await page.evaluate(() => JSON.parse(localStorage.getItem('tinylab.arena')))).battles.length, 1);
  const reveal = await page.locator('[data-testid=arena-reveal]').textContent();
  const nameOf = (id) => catalog.models.find((m) => m.id === id).name;
  assert.ok(reveal.includes(`A was ${nameOf(ids[0])}`) && reveal.includes(`B was ${nameOf(ids[1])}`), reveal);
  assert.ok(await page.locator('[data-testid=arena-vote-b]').isDisabled(), 'one vote per battle');
  // The first token: a one-token answer ("Banana", then the end) has no second (the pointer
  // was last on the vote button, so this is a move).
  await pane(page, 0).get('token').first().hover();
  assert.match(await pane(page, 0).get('token-inspector').textContent(), /id \d+/);
  assert.equal(await pane(page, 0).get('stat-decode-tps').isVisible(), true);
  for (const id of ['permalink', 'export-json']) {
    assert.ok(await page.locator(`[data-testid=${id}]`).isEnabled(), `${id} after the vote`);
  }
  assert.ok(await page.locator('[data-testid=preset-models]').isDisabled(), 'presets while the arena is on');
  const rows = page.locator('[data-testid=arena-tally] tbody tr');
  assert.equal(await rows.count(), 2);
  const row = (id) => page.locator(`[data-testid=arena-tally] tr[data-model-id="${id}"]`);
  assert.equal(await row(ids[0]).getAttribute('data-wins'), '1');
  assert.equal(await row(ids[1]).getAttribute('data-wins'), '0');
  // One win and the virtual tie: 1.5 of 2 → 3:1 → ±400·log10(3)/2 around 1000.
  const gap = 200 * Math.log10(3);
  assert.ok(Math.abs(Number(await row(ids[0]).getAttribute('data-rating')) - (1000 + gap)) < 0.01);
  await screenshot(page, 'arena');

  // A second battle: a new hidden pair; then the tally survives a reload.
  await battle(page);
  await page.click('[data-testid=arena-vote-tie]');
  await page.reload();
  await page.locator('[data-testid=arena-tally]').waitFor();
  const total = async () => (await page.locator('[data-testid=arena-tally] tbody tr').evaluateAll(
    (els) => els.map((e) => Number(e.querySelectorAll('td')[1].textContent)))).reduce((a, b) => a + b, 0);
  assert.equal(await total(), 4, 'two battles, two models each');
  // Named once the catalog has come (they were ids after a reload).
  await page.waitForFunction((name) => document.querySelector('[data-testid=arena-tally] tbody').innerText.includes(name),
    nameOf(ids[0]), { timeout: 10000 });
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=arena-export]')]);
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(exported.battles.length, 2);
  assert.deepEqual(exported.battles.map((b) => b.vote), ['a', 'tie']);
  assert.equal(exported.battles[0].a, ids[0]);
  // A first click asks; the second deletes. (Two battles may have drawn two or three models.)
  const models = await page.locator('[data-testid=arena-tally] tbody tr').count();
  await page.click('[data-testid=arena-reset]');
  assert.match(await page.locator('[data-testid=arena-reset]').textContent(), /Delete 2 votes\? Click again/);
  assert.equal(await page.locator('[data-testid=arena-tally] tbody tr').count(), models);
  await page.click('[data-testid=arena-reset]');
  assert.equal(await page.locator('[data-testid=arena-tally] tbody tr').count(), 0);
  // The battle's panes were made from the arena bar, which only the Generate tab shows: they
  // outlive it (they were disposed with it, and the next read of a pane panicked).
  await page.click('[data-testid=arena-mode]');
  await page.click('[data-testid=arena-mode]');
  for (const tab of ['tab-eval', 'tab-score', 'tab-chat', 'tab-generate']) {
    await page.click(`[data-testid=${tab}]`);
    await page.waitForTimeout(200);
  }
  assert.equal(await page.locator('[data-testid=pane]').count(), 2);
  assert.equal(await pane(page, 0).output().getAttribute('data-state'), 'idle');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('turning the arena off puts the panes back as they were, and hides a battle not voted on', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const { page, errors } = await openPage(ctx, server.url);
  const p0 = pane(page, 0);
  await p0.loadCatalog(SMOLLM2);
  await p0.set('temperature', 0.33);
  await p0.set('seed', 1234);
  await p0.set('max-tokens', 6);
  await page.fill('[data-testid=prompt]', 'The sea is');
  await p0.get('run').click();
  await p0.root.locator('[data-testid=output][data-state=done]').waitFor({ timeout: 120000 });
  const before = await p0.tokens();
  await page.click('[data-testid=add-pane]');
  await pane(page, 1).set('temperature', 1.5);
  await pane(page, 1).set('top-k', 7);
  const settings = async () => Promise.all([0, 1].map(async (i) => {
    const p = pane(page, i);
    return Promise.all(['model-select', 'temperature', 'top-k', 'seed', 'max-tokens'].map((t) => p.get(t).inputValue()));
  }));
  const kept = await settings();

  await page.click('[data-testid=arena-mode]');
  assert.notDeepEqual(await settings(), kept, 'the arena sets the panes up its own way');
  await battle(page);
  // Off before the vote: the battle's answers go with it (a peek would spoil the vote), and
  // the panes are as they were, the first one's output too, after a reload as well.
  await page.click('[data-testid=arena-mode]');
  for (const look of ['now', 'after a reload']) {
    assert.equal(await page.locator('[data-testid=pane]').count(), 2, look);
    assert.deepEqual(await settings(), kept, look);
    assert.deepEqual(await p0.tokens(), before, look);
    assert.equal(await pane(page, 1).output().getAttribute('data-state'), 'idle', look);
    assert.equal(await pane(page, 1).get('token').count(), 0, look);
    // The second pane had no model: it does not keep the battle's (whose name it showed).
    assert.equal(await pane(page, 1).status().getAttribute('data-state'), 'empty', look);
    // (The chooser lists every model; its status and header name none.)
    const said = `${await pane(page, 1).status().textContent()} ${await pane(page, 1).root.locator('.model-meta').textContent()}`;
    for (const n of names) assert.ok(!said.includes(n), `${n} in pane 2 ${look}: ${said}`);
    if (look === 'now') {
      await page.reload();
      await p0.root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 60000 });
    }
  }
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('the kiosk arena asks which answer came from the bigger model, with no settings', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await ctx.newPage();
  await page.goto(`${server.url}?demo=1`);
  await page.locator('[data-testid=arena-mode]').waitFor();
  assert.match(await page.locator('.arena-toggle').textContent(), /Which answer came from the bigger model\?/);
  await page.click('[data-testid=arena-mode]');
  assert.equal(await pane(page, 0).root.locator('.settings').isVisible(), false);
  assert.match(await page.locator('[data-testid=arena-vote-a]').textContent(), /A is the bigger model/);
  await battle(page);
  // A tie names neither model: the reveal says which was bigger, not that the pick missed.
  await page.click('[data-testid=arena-vote-tie]');
  assert.match(await page.locator('[data-testid=arena-reveal]').textContent(),
    /A was .*, B was .*\. The bigger one was [AB]\.$/);
  await screenshot(page, 'arena-kiosk');
  // A visitor cannot delete the event's votes, nor save files on its laptop.
  assert.ok(await page.locator('[data-testid=arena-tally]').isVisible(), 'the tally shows');
  for (const id of ['arena-reset', 'arena-export']) {
    assert.equal(await page.locator(`[data-testid=${id}]`).isVisible(), false, `${id} in the kiosk`);
  }
  // Its votes answer another question, so they make a tally of their own: the page without
  // kiosk mode, in the same browser, has none of them.
  const kept = (key) => page.evaluate((k) => JSON.parse(localStorage.getItem(k) ?? '{"battles":[]}').battles.length, key);
  assert.equal(await kept('tinylab.arena.kiosk'), 1);
  assert.equal(await kept('tinylab.arena'), 0);
  await page.goto(server.url);
  await page.locator('[data-testid=arena-mode]').waitFor();
  await page.click('[data-testid=arena-mode]');
  assert.match(await page.textContent('.arena-tally-box summary'), /Tally \(0 votes\)/, 'the kiosk vote is not in the tally');
  await ctx.close();
});

test('a drawn model that cannot load is said without its name and not drawn again; an unreadable saved battle costs only itself', async () => {
  // A server with SmolLM2 and a Gemma 3 file cut short (there, but no model): the only pair.
  const dir = mkdtempSync(join(tmpdir(), 'tinylab-arena-'));
  const smol = catalog.models.find((m) => m.id === SMOLLM2);
  const broken = catalog.models.find((m) => m.id !== SMOLLM2);
  symlinkSync(SMOLLM2_FILE, join(dir, smol.file));
  writeFileSync(join(dir, broken.file), readFileSync(join(MODELS, broken.file)).subarray(0, 1 << 20));
  const few = await startServer(['--models', dir]);
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const { page, errors } = await openPage(ctx, few.url);
    await page.click('[data-testid=arena-mode]');
    await page.fill('[data-testid=prompt]', 'Name a fruit.');
    await page.click('[data-testid=arena-run]');
    const note = page.locator('[data-testid=arena-note]');
    await page.waitForFunction(() => /could not be loaded/.test(document.querySelector('[data-testid=arena-note]')?.textContent ?? ''), null, { timeout: 120000 });
    const said = `${await note.textContent()} ${await page.locator('.panes').innerText()}`;
    assert.match(said, /Model [AB] could not be loaded on this page/);
    for (const n of names) assert.ok(!said.includes(n), `${n} named before the vote: ${said}`);
    assert.equal(await page.textContent('[data-testid=arena-run]'), 'New battle');
    await screenshot(page, 'arena-cannot-load');
    assert.ok(await page.locator('[data-testid=arena-vote-a]').isDisabled());
    // The broken model is not drawn again: one loadable model is no battle, and that is said
    // (once the other pane has loaded and answered; till then New battle asks to wait).
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=pane]')].every((p) =>
      p.querySelector('[data-testid=model-status]').dataset.state !== 'loading'
      && p.querySelector('[data-testid=output]').dataset.state !== 'running'), null, { timeout: 120000 });
    await page.click('[data-testid=arena-run]');
    assert.match(await note.textContent(), /two models this page can load/);

    // A saved tally with one battle the page cannot read keeps the others, and says so.
    await page.click('[data-testid=arena-mode]');
    await page.evaluate(([a, b]) => localStorage.setItem('tinylab.arena', JSON.stringify({
      active: false,
      battles: [{ a, b, vote: 'a' }, { a, b, vote: 'skip' }, { a: b, b: a, vote: 'tie' }],
    })), [SMOLLM2, broken.id]);
    await page.reload();
    await page.locator('[data-testid=arena-load-note]').waitFor();
    assert.match(await page.textContent('[data-testid=arena-load-note]'), /^1 saved battle could not be read/);
    const kept = await page.evaluate(() => JSON.parse(localStorage.getItem('tinylab.arena')).battles.length);
    assert.equal(kept, 2);
    assert.ok(!errors.some((e) => /panicked|unreachable/.test(e)), errors.join('\n'));
    await ctx.close();
  } finally {
    few.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('votes that form groups of models that never met are said to, each group centred on 1000', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const { page, errors } = await openPage(ctx, server.url);
  const [x, y] = catalog.models.map((m) => m.id);
  // x beat y three times; two models this catalog lacks met once, and never x or y.
  await page.evaluate(([x, y]) => localStorage.setItem('tinylab.arena', JSON.stringify({
    active: true,
    battles: [...Array(3).fill({ a: x, b: y, vote: 'a' }), { a: 'other-1', b: 'other-2', vote: 'b' }],
  })), [x, y]);
  await page.reload();
  const note = page.locator('[data-testid=arena-groups]');
  await note.waitFor({ timeout: 30000 });
  assert.match(await note.textContent(), /form 2 groups that never met/);
  assert.match(await note.textContent(), /\| other-2, other-1\)/, "each group best first");
  const rows = await page.locator('[data-testid=arena-tally] tbody tr').evaluateAll((els) => els.map((e) => ({
    id: e.dataset.modelId, group: Number(e.dataset.group), rating: Number(e.dataset.rating),
  })));
  assert.deepEqual(rows.map((r) => [r.id, r.group]), [[x, 0], [y, 0], ['other-2', 1], ['other-1', 1]]);
  // Three wins and one virtual tie: 3.5 wins of 4 against 0.5, so 400·log10(7) apart; each
  // group's mean is 1000.
  assert.ok(Math.abs(rows[0].rating - rows[1].rating - 400 * Math.log10(7)) < 0.01, JSON.stringify(rows));
  for (const [a, b] of [[0, 1], [2, 3]]) assert.ok(Math.abs(rows[a].rating + rows[b].rating - 2000) < 0.02, JSON.stringify(rows));
  // A battle between the groups links them: the note goes.
  await page.evaluate(([y]) => {
    const saved = JSON.parse(localStorage.getItem('tinylab.arena'));
    saved.battles.push({ a: y, b: 'other-1', vote: 'tie' });
    localStorage.setItem('tinylab.arena', JSON.stringify(saved));
  }, [y]);
  await page.reload();
  await page.locator('[data-testid=arena-tally] tbody tr').first().waitFor();
  assert.equal(await note.count(), 0);
  assert.equal(await page.locator('[data-testid=arena-no-width]').count(), 0);
  // Ten votes that all agree: every resample is the same, and the interval has no width,
  // which is said to be few votes rather than certainty.
  await page.evaluate(([x, y]) => localStorage.setItem('tinylab.arena', JSON.stringify({
    active: true, battles: Array(10).fill({ a: x, b: y, vote: 'a' }),
  })), [x, y]);
  await page.reload();
  await page.locator('[data-testid=arena-no-width]').waitFor({ timeout: 30000 });
  assert.match(await page.textContent('[data-testid=arena-tally] tbody'), /(\d+) \(\1–\1\)/);
  assert.match(await page.textContent('[data-testid=arena-no-width]'), /few votes of another kind, not that the rating is certain/);
  assert.deepEqual(errors, []);
  await ctx.close();
});
