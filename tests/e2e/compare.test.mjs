// Side by side, the entropy lab, permalinks and export, driven in headless Chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  ROOT, startServer, launch, openPage, pane, screenshot, nativeGenerate, sameGreedy, MODELS, SMOLLM2, SMOLLM2_FILE,
  TINYLAB,
} from './harness.mjs';

const GEMMA3 = 'gemma3-270m-q4_k_m';
const GEMMA3_FILE = join(MODELS, 'gemma-3-270m-q4_k_m.gguf');
// Greedy ids are compared with `sameGreedy`: up to the first native near tie (page.test.mjs).
const COUNTING = '1, 2, 3, 4, 5,';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const newContext = () => browser.newContext({ viewport: { width: 1920, height: 1080 }, acceptDownloads: true });

async function waitAll(page, n, testid, states = 'done', timeout = 300000) {
  for (let i = 0; i < n; i++) {
    await page.locator(`[data-testid=pane][data-pane-index="${i}"] [data-testid=${testid}]:is(${states.split(',').map((s) => `[data-state=${s}]`).join(',')})`)
      .waitFor({ timeout });
  }
}

test('two panes generate at once and each equals the CLI; a broken pane does not stop them; export holds the DOM ids', async () => {
  const nativeSmol = nativeGenerate(SMOLLM2_FILE, COUNTING, 24);
  const nativeGemma = nativeGenerate(GEMMA3_FILE, COUNTING, 24);
  const ctx = await newContext();
  const { page, errors } = await openPage(ctx, server.url);
  await page.click('[data-testid=add-pane]');
  await page.click('[data-testid=add-pane]');
  assert.equal(await page.locator('[data-testid=pane]').count(), 3);
  const [a, b, c] = [pane(page, 0), pane(page, 1), pane(page, 2)];
  await a.loadCatalog(SMOLLM2);
  await b.loadCatalog(GEMMA3);
  await c.get('model-file').setInputFiles({ name: 'broken.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from('GGUF\x03\x00\x00\x00garbage') });
  await c.root.locator('[data-testid=model-status][data-state=error]').waitFor({ timeout: 30000 });
  for (const p of [a, b, c]) {
    await p.set('temperature', 0);
    await p.set('max-tokens', 24);
    await p.get('chat-mode').uncheck();
  }
  await page.fill('[data-testid=prompt]', COUNTING);
  await page.click('[data-testid=run-all]');
  // Both good panes stream at the same time; the broken one says why it cannot.
  assert.equal(await a.output().getAttribute('data-state'), 'running');
  assert.equal(await b.output().getAttribute('data-state'), 'running');
  assert.equal(await c.output().getAttribute('data-state'), 'error');
  await waitAll(page, 2, 'output');
  const idsA = (await a.tokens()).map((t) => t.id);
  const idsB = (await b.tokens()).map((t) => t.id);
  sameGreedy(idsA, nativeSmol, 'SmolLM2 pane');
  sameGreedy(idsB, nativeGemma, 'Gemma 3 pane');
  assert.match(await c.get('run-message').textContent(), /Load a model first/);
  assert.match(await c.status().textContent(), /truncated|GGUF/);

  // SmolLM2 and Gemma do not share a vocabulary: Binoculars is off and says why.
  await page.click('[data-testid=tab-score]');
  assert.equal(await page.isDisabled('[data-testid=binoculars]'), true);
  assert.match(await page.textContent('[data-testid=binoculars-reason]'), /share a vocabulary/);
  await page.click('[data-testid=tab-generate]');

  const table = page.locator('[data-testid=compare-table]');
  assert.equal(await table.locator('thead th').count(), 4);
  assert.ok(await table.locator('td.best').count() > 0, 'no best value marked');
  // The ★ of decode speed is on the faster pane, by the numbers the row shows (the broken
  // pane has none).
  const decode = await table.locator('tr[data-row="decode tok/s"] td').evaluateAll((tds) => tds.map((td) => ({
    v: parseFloat(td.textContent), best: td.classList.contains('best'),
  })));
  const speeds = decode.slice(-3);
  const fastest = speeds[0].v >= speeds[1].v ? 0 : 1;
  assert.deepEqual(speeds.map((c) => c.best), [0, 1, 2].map((i) => i === fastest), JSON.stringify(decode));

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-json]')]);
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(exported.panes.length, 3);
  // The export holds what the panes show.
  assert.deepEqual(exported.panes[0].generation.ids, idsA);
  assert.deepEqual(exported.panes[1].generation.ids, idsB);
  assert.equal(exported.panes[0].model.sha256, 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53');
  assert.equal(exported.panes[2].generation, null);
  // Same seed and settings give the same file again.
  await page.click('[data-testid=run-all]');
  await waitAll(page, 2, 'output');
  const [again] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-json]')]);
  assert.equal(readFileSync(await again.path(), 'utf8'), readFileSync(await download.path(), 'utf8'));
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-csv]')]);
  const rows = readFileSync(await csv.path(), 'utf8').trim().split('\n');
  assert.equal(rows.length, 1 + 48);
  // Boxes changed after the run, and another model loaded in its pane (the run stays shown):
  // each generation keeps the prompt, settings and model it was made with.
  // A setting changed after the run: the pane's header shows the new value, so the output
  // says it was made with another.
  await b.set('max-tokens', 30);
  assert.match(await b.get('run-stale').textContent(), /other settings \(max tokens 24 → 30\)/);
  await screenshot(page, 'run-stale-settings');
  await page.fill('[data-testid=prompt]', 'A prompt typed after the run');
  // The outputs say they are for an earlier prompt, and then pane 1's for another model.
  for (const p of [a, b]) assert.match(await p.get('run-stale').textContent(), /earlier prompt/);
  await a.set('temperature', 1.5);
  await a.loadCatalog(GEMMA3);
  assert.match(await a.get('run-stale').textContent(), /made by SmolLM2.*; Gemma 3.* is loaded now/);
  const [later] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-json]')]);
  const after = JSON.parse(readFileSync(await later.path(), 'utf8'));
  assert.equal(after.prompt, 'A prompt typed after the run');
  assert.equal(after.panes[0].settings.temperature, 1.5);
  const made = after.panes[0].generation.request;
  assert.equal(made.prompt, COUNTING);
  assert.equal(made.sampling.temperature, 0);
  assert.equal(made.max_tokens, 24);
  assert.equal(made.chat, false);
  assert.deepEqual(after.panes[0].generation.ids, idsA);
  assert.equal(after.panes[0].model.id, SMOLLM2);
  assert.equal(after.panes[0].model.sha256, 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53');
  assert.equal(after.panes[0].model.architecture, 'llama');

  // Removing a pane keeps the others and renumbers them.
  await c.get('remove-pane').click();
  assert.equal(await page.locator('[data-testid=pane]').count(), 2);
  assert.deepEqual(await page.locator('[data-testid=pane]').evaluateAll((els) => els.map((e) => e.dataset.paneIndex)), ['0', '1']);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('score mode matches llama.cpp and the CLI per token; the repetition preset really doubles the prompt', async () => {
  // The llama.cpp fixture's paragraph (scripts/llama_fixtures.py): the oracle for the numbers.
  const fx = JSON.parse(readFileSync(join(ROOT, 'tests', 'fixtures', `${SMOLLM2}.json`), 'utf8')).score;
  const native = JSON.parse(execFileSync(TINYLAB, ['score', '--model', SMOLLM2_FILE, '--text', fx.text, '--json'], { encoding: 'utf8' }));
  const ctx = await newContext();
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  await p.loadCatalog(SMOLLM2);
  await page.click('[data-testid=tab-score]');
  await page.fill('[data-testid=score-text]', fx.text);
  await page.click('[data-testid=score-all]');
  await waitAll(page, 1, 'output', 'done,error');
  const toks = await p.tokens();
  assert.deepEqual(toks.map((t) => t.id), native.tokens.map((t) => t.id));
  assert.deepEqual(toks.map((t) => t.id), fx.ids.slice(1));
  const mae = (xs, ys) => xs.reduce((a, x, i) => a + Math.abs(x - ys[i]), 0) / xs.length;
  const max = (xs, ys) => Math.max(...xs.map((x, i) => Math.abs(x - ys[i])));
  const pageS = toks.map((t) => t.surprisal);
  const figures = {
    page_vs_llama_mae: mae(pageS, fx.surprisal), page_vs_llama_max: max(pageS, fx.surprisal),
    native_vs_llama_mae: mae(native.tokens.map((t) => t.surprisal), fx.surprisal),
    page_vs_cli_mae: mae(pageS, native.tokens.map((t) => t.surprisal)), page_vs_cli_max: max(pageS, native.tokens.map((t) => t.surprisal)),
    llama_self_noise_mae: fx.self_noise.surprisal_mae,
  };
  // The same rule as tests/llama_parity.rs applies to the browser build: within twice
  // llama.cpp's own batch-vs-single spread of llama.cpp, perplexity within 1% or within what
  // rounding alone moves it by (three standard errors of the mean surprisal at that spread;
  // `perplexity_limit` there), whichever is wider.
  assert.ok(figures.page_vs_llama_mae < 2 * fx.self_noise.surprisal_mae, JSON.stringify(figures));
  const ppl = Number(await p.get('stat-perplexity').textContent());
  figures.page_perplexity = ppl;
  figures.llama_perplexity = fx.perplexity;
  const pplLimit = Math.max(0.01, Math.exp(3 * 1.2533 * fx.self_noise.surprisal_mae / Math.sqrt(fx.surprisal.length)) - 1);
  figures.perplexity_limit = pplLimit;
  assert.ok(Math.abs(ppl / fx.perplexity - 1) < pplLimit, JSON.stringify(figures));
  // wasm and native take different SIMD kernels (simd128 vs AVX2), so they differ by about as
  // much as each differs from llama.cpp, not more.
  assert.ok(figures.page_vs_cli_mae < 2 * fx.self_noise.surprisal_mae, JSON.stringify(figures));
  assert.match(await p.get('stat-fast-detectgpt').textContent(), /^-?\d+\.\d\d$/);
  // Scoring is one prefill: its speed is the contract's stat-prefill-tps in the Score tab too.
  assert.ok(Number(await p.get('stat-prefill-tps').textContent()) > 0);
  assert.equal(await p.get('gltr-histogram').locator('.gltr-seg').count(), 4);
  console.log('score figures', JSON.stringify(figures));
  // The export lists every input id, the unscored first one too, as `tinylab score` does.
  const [scoreDl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-json]')]);
  const scoreExport = JSON.parse(readFileSync(await scoreDl.path(), 'utf8')).panes[0].score;
  assert.deepEqual(scoreExport.ids, native.ids);
  assert.equal(scoreExport.tokens.length, native.tokens.length);

  // Prompt repetition: pane 2 sends <QUERY><QUERY>, as `--repeat-prompt` does.
  await page.click('[data-testid=tab-generate]');
  const query = 'Is the number 17 prime?';
  await page.fill('[data-testid=prompt]', query);
  await page.click('[data-testid=preset-repetition]');
  await waitAll(page, 2, 'model-status', 'ready', 60000);
  for (const i of [0, 1]) await pane(page, i).set('max-tokens', 4);
  await page.click('[data-testid=run-all]');
  await waitAll(page, 2, 'output');
  const once = nativeGenerate(SMOLLM2_FILE, query, 1, ['--chat']).prompt_ids.length;
  const twice = nativeGenerate(SMOLLM2_FILE, query, 1, ['--chat', '--repeat-prompt']).prompt_ids.length;
  assert.ok(twice > once);
  assert.equal(Number(await pane(page, 0).output().getAttribute('data-prompt-tokens')), once);
  assert.equal(Number(await pane(page, 1).output().getAttribute('data-prompt-tokens')), twice);
  assert.equal(await pane(page, 1).get('repeat-prompt').isChecked(), true);

  // Binoculars with SmolLM2 as both observer and performer: the cross term is then the
  // model's own entropy, so the score must equal the CLI's mean surprisal over the tokens
  // after the first / mean entropy over every position of the text, the one after its last
  // token included (as the authors' code averages it): that one is the entropy of the CLI's
  // first generated token after the raw text.
  await page.click('[data-testid=tab-score]');
  assert.equal(await page.isDisabled('[data-testid=binoculars]'), false);
  await page.click('[data-testid=binoculars]');
  await page.locator('[data-testid=binoculars-score]').waitFor({ timeout: 120000 });
  const bino = Number(await page.textContent('[data-testid=binoculars-score]'));
  const summary = native.summary ?? native;
  const scored = native.tokens.length;
  const after = nativeGenerate(SMOLLM2_FILE, fx.text, 1).tokens[0].entropy;
  const expected = summary.mean_surprisal / ((summary.mean_entropy * scored + after) / (scored + 1));
  // The terms as the page prints them (3 decimals) come from batched rows, the CLI's
  // from its own run: 1% covers both, while leaving the last position out moves the score by
  // the last entropy's share (a text of 30 tokens: about 3%).
  assert.ok(Math.abs(bino / expected - 1) < 0.01, `binoculars ${bino} vs ${expected}`);
  console.log('binoculars', JSON.stringify({ page: bino, native_same_model: expected }));
  // Its terms follow the units chosen; the score, a ratio, does not.
  const terms = async () => {
    const t = await page.textContent('[data-testid=binoculars-status]');
    const m = t.match(/log-perplexity ([\d.]+) \/ log cross-perplexity ([\d.]+) (nats|bits)/);
    assert.ok(m, t);
    return [Number(m[1]), Number(m[2]), m[3]];
  };
  const [logPpl, crossPpl, natsId] = await terms();
  assert.equal(natsId, 'nats');
  // The cross term, to the page's 3 decimals: on this 96-token text the position after the
  // last token moves it by 0.009 nats (3.068 without it, 3.077 with).
  const meanCross = (summary.mean_entropy * scored + after) / (scored + 1);
  assert.ok(Math.abs(crossPpl - meanCross) < 0.003, `cross ${crossPpl} vs ${meanCross}`);
  const meanSurprisal = native.summary ? native.summary.mean_surprisal : native.mean_surprisal;
  assert.ok(Math.abs(logPpl / meanSurprisal - 1) < 0.03, `${logPpl} vs ${meanSurprisal}`);
  await page.selectOption('[data-testid=units]', 'bits');
  const [logPplBits, , bitsId] = await terms();
  assert.equal(bitsId, 'bits');
  assert.ok(Math.abs(logPplBits / (logPpl / Math.LN2) - 1) < 0.01, `${logPplBits} vs ${logPpl}`);
  assert.equal(Number(await page.textContent('[data-testid=binoculars-score]')), bino);
  await page.selectOption('[data-testid=units]', 'nats');
  // The export names the observer beside the performer's score.
  const [withBino] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-json]')]);
  const exported = JSON.parse(readFileSync(await withBino.path(), 'utf8')).panes[1].binoculars;
  assert.equal(exported.observer_index, 0, JSON.stringify(exported));
  assert.match(exported.observer_model, /SmolLM2/);
  assert.ok(Math.abs(exported.score - bino) <= 0.0005 + 1e-9, `${exported.score} vs ${bino}`);
  // Edited after, the text is not what the score measured: it says so.
  assert.equal(await page.locator('[data-testid=binoculars-stale]').count(), 0);
  await page.fill('[data-testid=score-text]', (await page.inputValue('[data-testid=score-text]')) + ' More.');
  await page.locator('[data-testid=binoculars-stale]').waitFor({ timeout: 5000 });
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a permalink restores the workspace in a fresh browser', async () => {
  const ctx = await newContext();
  const { page } = await openPage(ctx, server.url);
  await page.fill('[data-testid=prompt]', 'Why & how? 100% sure ✓');
  await page.click('[data-testid=preset-temperature]');
  await waitAll(page, 2, 'model-status', 'ready', 60000);
  await page.click('[data-testid=tab-score]');
  await page.fill('[data-testid=score-text]', 'A text to measure.');
  await page.click('[data-testid=permalink]');
  const url = await page.inputValue('[data-testid=permalink-url]');
  assert.ok(url.startsWith(server.url) && url.includes('models=') && url.includes('mode=score'), url);
  await ctx.close();

  const fresh = await newContext();
  const { page: p2, errors } = await openPage(fresh, url);
  assert.equal(await p2.locator('[data-testid=pane]').count(), 2);
  assert.equal(await p2.inputValue('[data-testid=score-text]'), 'A text to measure.');
  assert.equal(await p2.getAttribute('[data-testid=tab-score]', 'aria-selected'), 'true');
  assert.equal(await pane(p2, 0).get('temperature').inputValue(), '0.2');
  assert.equal(await pane(p2, 1).get('temperature').inputValue(), '1');
  assert.equal(await pane(p2, 1).get('model-select').inputValue(), SMOLLM2);
  // The models named in the link load by themselves.
  await waitAll(p2, 2, 'model-status', 'ready', 60000);
  await p2.click('[data-testid=tab-generate]');
  assert.equal(await p2.inputValue('[data-testid=prompt]'), 'Why & how? 100% sure ✓');
  assert.equal(await p2.locator('[data-testid=permalink-note]').count(), 0, 'a short link has no note');

  // A long text makes a long link: past what most servers take it is said; past what this
  // page's own server reads, no link is made (a reload of it would fail) and Export is named.
  await p2.click('[data-testid=tab-score]');
  for (const [words, shown, note] of [[3000, true, /is \d+ characters long: many servers/], [20000, false, /^Too long for a link: \d+ characters/]]) {
    await p2.fill('[data-testid=score-text]', 'word '.repeat(words));
    await p2.click('[data-testid=permalink]');
    assert.match(await p2.textContent('[data-testid=permalink-note]'), note);
    assert.equal(await p2.locator('[data-testid=permalink-url]').count(), shown ? 1 : 0, `${words} words`);
    // Given to copy, not put in the address bar: a server that refuses it would refuse
    // the next reload of the page.
    const address = await p2.evaluate(() => location.href.length);
    assert.ok(address < 8000, `the address bar holds ${address} characters`);
  }
  await p2.reload();
  assert.match(await p2.inputValue('[data-testid=score-text]'), /^(word ){20000}$/);
  assert.deepEqual(errors, []);
  await fresh.close();
});

test('edits after a permalink survive a reload; the link leaves the address bar, other flags stay', async () => {
  const ctx = await newContext();
  const { page, errors } = await openPage(ctx, `${server.url}?debug=1`);
  await page.fill('[data-testid=prompt]', 'The linked prompt.');
  await page.click('[data-testid=permalink]');
  assert.ok(page.url().includes('prompt=The%20linked%20prompt.'), page.url());
  // A reload straight after keeps the link: it still describes the page.
  await page.reload();
  await page.locator('[data-testid=prompt]').waitFor();
  assert.equal(await page.inputValue('[data-testid=prompt]'), 'The linked prompt.');
  assert.ok(page.url().includes('prompt='), page.url());
  // An edit: the link's parameters go, other flags stay, and a reload keeps the edit.
  await page.fill('[data-testid=prompt]', 'My own prompt.');
  await pane(page, 0).set('temperature', '0.9');
  await page.waitForFunction(() => !location.search.includes('prompt='));
  await page.reload();
  await page.locator('[data-testid=prompt]').waitFor();
  assert.equal(await page.inputValue('[data-testid=prompt]'), 'My own prompt.');
  assert.equal(await pane(page, 0).get('temperature').inputValue(), '0.9');
  // A value a box cannot take is not dropped without a word: the box keeps its value and
  // says what it refused; a good value clears the note.
  const first = pane(page, 0);
  for (const [field, typed, kept] of [['top-k', '-5', /kept 40/], ['seed', '1e30', /kept \d+/], ['temperature', '9', /kept 0\.9/]]) {
    await first.set(field, typed);
    const note = first.get(field).locator('xpath=..').locator('[data-testid=field-error]');
    assert.match(await note.textContent(), kept, field);
    assert.equal(await first.get(field).getAttribute('aria-invalid'), 'true');
    assert.notEqual(await first.get(field).inputValue(), typed);
  }
  // What the box cannot read as a number at all reads back as empty: not called empty.
  const temperature = first.get('temperature');
  await temperature.fill('');
  await temperature.pressSequentially('1e309');
  await temperature.dispatchEvent('change');
  assert.match(await temperature.locator('xpath=..').locator('[data-testid=field-error]').textContent(),
    /^What was typed is not a .* value .*; kept 0\.9\.$/);
  await first.set('temperature', '0.9');
  await first.set('top-k', '40');
  await first.set('seed', '1');
  assert.equal(await first.get('field-error').count(), 0);
  // A link opened with a flag: the flag stays when the link's parameters go.
  await page.goto(`${server.url}?debug=1&prompt=A%20linked%20question`);
  await page.locator('[data-testid=prompt]').waitFor();
  assert.equal(await page.inputValue('[data-testid=prompt]'), 'A linked question');
  await page.fill('[data-testid=prompt]', 'A linked question, edited');
  await page.waitForFunction(() => !location.search.includes('prompt='));
  assert.equal(new URL(page.url()).search, '?debug=1');
  await page.reload();
  await page.locator('[data-testid=prompt]').waitFor();
  assert.equal(await page.inputValue('[data-testid=prompt]'), 'A linked question, edited');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('three models side by side, and human vs model in the entropy lab', async () => {
  const ctx = await newContext();
  const { page, errors } = await openPage(ctx, server.url);
  await page.fill('[data-testid=prompt]', 'Name the days of the week.');
  await page.click('[data-testid=preset-models]');
  await waitAll(page, 3, 'model-status', 'ready', 300000);
  for (let i = 0; i < 3; i++) await pane(page, i).set('max-tokens', 32);
  await page.click('[data-testid=run-all]');
  await waitAll(page, 3, 'output');
  const table = await page.locator('[data-testid=compare-table]').innerText();
  assert.match(table, /SmolLM2[\s\S]*Gemma 3[\s\S]*Qwen2\.5/);
  // Each pane's greedy ids equal the CLI's (native build) up to the first place where the
  // native top two are within 0.3 nats; the wasm build requantizes other weight types, so at
  // such a near tie the two may part (see page.test.mjs).
  const files = [SMOLLM2_FILE, GEMMA3_FILE, join(MODELS, 'qwen2.5-coder-0.5b-instruct.gguf')];
  for (let i = 0; i < 3; i++) {
    const p = pane(page, i);
    const chat = await p.get('chat-mode').isChecked();
    const native = nativeGenerate(files[i], 'Name the days of the week.', 32, chat ? ['--chat'] : []);
    sameGreedy((await p.tokens()).map((t) => t.id), native, `pane ${i}`);
  }
  await screenshot(page, 'compare-three-models');
  console.log('compare table\n' + table);

  await page.click('[data-testid=tab-score]');
  // Darwin's two long sentences: the first is the prompt, the second is compared.
  await page.selectOption('[data-testid=sample-text]', { index: 2 });
  await page.fill('[data-testid=lab-sentences]', '1');
  await page.dispatchEvent('[data-testid=lab-sentences]', 'change');
  await page.click('[data-testid=lab-all]');
  await waitAll(page, 3, 'lab', 'done,error', 600000);
  for (let i = 0; i < 3; i++) {
    const lab = pane(page, i).get('lab');
    assert.equal(await lab.getAttribute('data-state'), 'done', await lab.textContent());
  }
  const figures = [];
  for (let i = 0; i < 3; i++) {
    const p = pane(page, i);
    const n = async (id) => Number(await p.get(id).textContent());
    figures.push({
      human_surprisal: await n('lab-human-surprisal'), model_surprisal: await n('lab-model-surprisal'),
      human_entropy: await n('lab-human-entropy'), model_entropy: await n('lab-model-entropy'),
    });
    assert.ok(Object.values(figures[i]).every(Number.isFinite));
    assert.ok((await p.get('lab-model-text').textContent()).length > 0);
  }
  await screenshot(page, 'human-vs-model');
  console.log('lab figures', JSON.stringify(figures));
  // A reload keeps each pane's comparison, with its figures and the model's text.
  const texts = [];
  for (let i = 0; i < 3; i++) texts.push(await pane(page, i).get('lab-model-text').textContent());
  await page.reload();
  assert.equal(await page.inputValue('[data-testid=lab-sentences]'), '1', 'the sentence count is a setting');
  for (let i = 0; i < 3; i++) {
    const p = pane(page, i);
    await p.get('lab-human-surprisal').waitFor({ timeout: 30000 });
    assert.equal(await p.get('lab').getAttribute('data-state'), 'done');
    assert.equal(Number(await p.get('lab-model-surprisal').textContent()), figures[i].model_surprisal);
    assert.equal(Number(await p.get('lab-human-entropy').textContent()), figures[i].human_entropy);
    assert.equal(await p.get('lab-model-text').textContent(), texts[i]);
  }
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('score across vocabularies: bits per byte is the figure compared, a result for an earlier text says so, copied text has no hidden characters', async () => {
  // CJK and emoji: SmolLM2's byte-level tokens split characters, so some tokens carry no text
  // of their own (their sliver used to be a zero-width space, copied with the text).
  const text = 'Tokyo (東京) is the capital of Japan 🙂. 日本の首都は東京です。';
  const ctx = await newContext();
  const { page, errors } = await openPage(ctx, server.url);
  await pane(page, 0).loadCatalog(SMOLLM2);
  await page.click('[data-testid=add-pane]');
  await pane(page, 1).loadCatalog(GEMMA3);
  await page.click('[data-testid=tab-score]');
  await page.fill('[data-testid=score-text]', text);
  await page.click('[data-testid=score-all]');
  await waitAll(page, 2, 'output', 'done,error');
  const enc = new TextEncoder();
  for (const [i, file] of [[0, SMOLLM2_FILE], [1, GEMMA3_FILE]]) {
    const p = pane(page, i);
    const cli = JSON.parse(execFileSync(TINYLAB, ['score', '--model', file, '--text', text, '--json'], { encoding: 'utf8' }));
    // Σ surprisal in bits over the UTF-8 bytes after the unscored first token.
    const bytes = enc.encode(text).length - enc.encode(cli.prefix).length;
    const expected = cli.tokens.reduce((a, t) => a + t.surprisal, 0) / Math.LN2 / bytes;
    const shown = Number(await p.get('stat-bits-per-byte').textContent());
    assert.ok(Math.abs(shown / expected - 1) < 0.03, `pane ${i}: ${shown} vs the CLI's ${expected}`);
    assert.equal(await p.get('score-stale').count(), 0);
    assert.ok(!(await p.output().textContent()).includes('\u200b'), `pane ${i}`);
  }
  assert.ok(await pane(page, 0).output().locator('.tok.partial').count() > 0, 'SmolLM2 splits a character');
  // The inspector says what such a token is rather than show a bare "�".
  // Such a token writes nothing, not even from the stylesheet: a sliver of text there split
  // combining marks from their base.
  assert.ok(['none', 'normal'].includes(await pane(page, 0).output().locator('.tok.partial').first()
    .evaluate((el) => getComputedStyle(el, '::before').content)));
  await pane(page, 0).output().locator('.tok.partial').first().focus();
  assert.match(await pane(page, 0).get('token-bytes-note').textContent(), /bytes of a character split across tokens: a later token completes it/);
  // Per-token figures of two vocabularies count different tokens: no star. Bits per byte
  // would compare them, but over one span: SmolLM2 leaves its first token unscored, Gemma 3
  // (after a BOS) does not, so here neither gets one either.
  const table = page.locator('[data-testid=compare-table]');
  for (const row of ['perplexity', 'mean surprisal', 'mean entropy', 'bits per byte']) {
    assert.equal(await table.locator(`tr[data-row="${row}"] td.best`).count(), 0, row);
  }
  assert.equal(await table.locator('tr[data-row="bits per byte"] td').count(), 2);
  // Bits are a view: the shown means ÷ ln 2, the token attributes still in nats, kept over a
  // reload.
  const natsShown = Number(await pane(page, 0).get('stat-mean-entropy').textContent());
  const natsAttr = await pane(page, 0).get('token').first().getAttribute('data-entropy');
  await page.selectOption('[data-testid=units]', 'bits');
  const bitsShown = Number(await pane(page, 0).get('stat-mean-entropy').textContent());
  assert.ok(Math.abs(bitsShown - natsShown / Math.LN2) < 0.002, `${bitsShown} bits vs ${natsShown} nats`);
  assert.equal(await pane(page, 0).get('token').first().getAttribute('data-entropy'), natsAttr);
  await page.reload();
  await page.locator('[data-testid=units]').waitFor();
  assert.equal(await page.inputValue('[data-testid=units]'), 'bits');
  await page.selectOption('[data-testid=units]', 'nats');
  await waitAll(page, 2, 'model-status', 'ready', 120000);
  await page.click('[data-testid=tab-score]');
  await page.fill('[data-testid=score-text]', text);
  await page.click('[data-testid=score-all]');
  await waitAll(page, 2, 'output', 'done,error');
  // Another text in the box: both results say they are for an earlier one, until scored.
  await page.fill('[data-testid=score-text]', 'A different text altogether.');
  for (const i of [0, 1]) {
    await pane(page, i).get('score-stale').waitFor({ timeout: 5000 });
    assert.match(await pane(page, i).get('score-stale').textContent(), /earlier text/);
  }
  await screenshot(page, 'score-stale');
  await page.click('[data-testid=score-all]');
  await waitAll(page, 2, 'output', 'done,error');
  for (const i of [0, 1]) assert.equal(await pane(page, i).get('score-stale').count(), 0);
  // A text whose first character SmolLM2 splits: its unscored first token holds part of it,
  // so the spans measured differ (both contexts show as empty text), and no star.
  await page.fill('[data-testid=score-text]', '我喜欢在早上喝咖啡。Coffee is good for me.');
  await page.click('[data-testid=score-all]');
  await waitAll(page, 2, 'output', 'done,error');
  assert.equal(await table.locator('tr[data-row="bits per byte"] td.best').count(), 0);
  // One vocabulary: the per-token figures of one text are starred, of two texts not.
  await pane(page, 1).loadCatalog(SMOLLM2);
  await page.fill('[data-testid=score-text]', 'The cat sat on the mat. The cat sat on the mat.');
  await page.click('[data-testid=score-all]');
  await waitAll(page, 2, 'output', 'done,error');
  await table.locator('tr[data-row="perplexity"] td.best').first().waitFor({ timeout: 60000 });
  await page.fill('[data-testid=score-text]', 'Colorless green ideas sleep furiously beneath quantum bananas.');
  await pane(page, 1).get('score-stale').waitFor({ timeout: 5000 });
  await pane(page, 1).get('score').click();
  // Pane 2's result is for the box's text once its new score is in; pane 1's is not.
  await pane(page, 1).get('score-stale').waitFor({ state: 'detached', timeout: 60000 });
  await pane(page, 1).root.locator('[data-testid=output][data-state=done]').waitFor({ timeout: 60000 });
  await pane(page, 0).get('score-stale').waitFor({ timeout: 5000 });
  for (const row of ['perplexity', 'mean surprisal', 'mean entropy', 'bits per byte']) {
    assert.equal(await table.locator(`tr[data-row="${row}"] td.best`).count(), 0, row);
  }
  // Human vs model on Chinese, whose sentences end in "。" with no space after it.
  await page.fill('[data-testid=score-text]', '我今天早上去了市场。我买了很多新鲜的水果和蔬菜。然后我回家做了午饭。');
  await page.fill('[data-testid=lab-sentences]', '1');
  await page.dispatchEvent('[data-testid=lab-sentences]', 'change');
  await page.click('[data-testid=lab-all]');
  await waitAll(page, 2, 'lab', 'done,error', 300000);
  assert.equal(await pane(page, 0).get('lab').getAttribute('data-state'), 'done', await pane(page, 0).get('lab').textContent());
  // The export holds what the panes show: the comparison, and bits per byte.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-json]')]);
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(exported.panes[0].human_vs_model.prompt, '我今天早上去了市场。');
  assert.ok(exported.panes[0].human_vs_model.human.tokens.length > 1);
  assert.equal(exported.panes[0].human_vs_model.human_total, exported.panes[0].human_vs_model.human.tokens.length);
  for (const i of [0, 1]) {
    const shown = Number(await pane(page, i).get('stat-bits-per-byte').textContent());
    assert.ok(Math.abs(exported.panes[i].score.bits_per_byte - shown) < 0.0006, `pane ${i}: ${exported.panes[i].score.bits_per_byte} vs ${shown}`);
  }
  assert.deepEqual(errors, []);
  await ctx.close();
});
