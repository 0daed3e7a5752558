// The architectures without a catalog model (qwen3, gpt2), dropped on a pane as a user drops a
// file: the tiny models of scripts/tiny_fixtures.py load, generate and score in the page as
// llama.cpp and the CLI do on the same file.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  startServer, launch, openPage, pane, screenshot, nativeGenerate, sameGreedy, ROOT, TINYLAB,
} from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const tiny = (arch, ext) => join(ROOT, 'tests', 'fixtures', 'tiny', `${arch}.${ext}`);

// Drops `file` on the pane the way a file manager does: a DataTransfer with the file in it.
async function dropFile(page, p, file) {
  const bytes = readFileSync(file).toString('base64');
  const name = file.split('/').pop();
  const handle = await page.evaluateHandle(({ bytes, name }) => {
    const raw = Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([raw], name, { type: 'application/octet-stream' }));
    return dt;
  }, { bytes, name });
  await p.root.dispatchEvent('dragover', { dataTransfer: handle });
  await p.root.dispatchEvent('drop', { dataTransfer: handle });
}

// qwen2-addeos: a file that closes every text with EOS, and has tokens typed unused, unknown or
// undefined (llama.cpp's pieces for them are empty).
for (const arch of ['qwen3', 'gpt2', 'qwen2-addeos', 'llama-iq4xs']) {
  test(`a tiny ${arch} dropped on a pane loads, generates and scores as llama.cpp does`, async () => {
    const fx = JSON.parse(readFileSync(tiny(arch, 'json'), 'utf8'));
    const file = tiny(arch, 'gguf');
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const { page, errors } = await openPage(ctx, server.url);
    const p = pane(page);
    // An empty pane says what it can run.
    const formats = await p.get('supported-formats').textContent();
    for (const name of ['llama', 'qwen2', 'qwen3', 'gemma3', 'gpt2', 'Q4_K', 'Q8_0', 'IQ4_XS']) {
      assert.ok(formats.includes(name), `supported formats lack ${name}: ${formats}`);
    }

    await dropFile(page, p, file);
    await p.root.locator('[data-testid=model-status]:is([data-state=ready],[data-state=error])')
      .waitFor({ timeout: 60000 });
    const status = await p.status().textContent();
    assert.equal(await p.status().getAttribute('data-state'), 'ready', status);
    assert.ok(status.includes(`${arch}.gguf`), status);
    assert.ok(!(await p.get('supported-formats').isVisible()), 'the hint stays once a model is ready');

    // Generate: greedy ids as the CLI gives them on the same file, and as llama.cpp gives them
    // up to the first near tie.
    const { prompt, ids: llamaIds } = fx.greedy[0];
    const n = 24;
    const native = nativeGenerate(file, prompt, n);
    await page.fill('[data-testid=prompt]', prompt);
    await p.set('temperature', 0);
    await p.set('max-tokens', n);
    await p.get('chat-mode').uncheck();
    await p.get('run').click();
    await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])').waitFor({ timeout: 60000 });
    assert.equal(await p.output().getAttribute('data-state'), 'done');
    const pageIds = (await p.tokens()).map((t) => t.id);
    assert.ok(pageIds.length > 0);
    sameGreedy(pageIds, native, `${arch} page`);
    const sameAsLlama = pageIds.findIndex((id, i) => id !== llamaIds[i]);
    console.log(`${arch}: page greedy equals llama.cpp's for ${sameAsLlama < 0 ? pageIds.length : sameAsLlama} of ${pageIds.length} tokens`);
    await screenshot(page, `tiny-${arch}-generate`);

    // Score llama.cpp's paragraph: the same ids, surprisal within twice llama.cpp's own spread.
    const score = fx.score;
    await page.click('[data-testid=tab-score]');
    await page.fill('[data-testid=score-text]', score.text);
    await page.click('[data-testid=score-all]');
    await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])').waitFor({ timeout: 60000 });
    assert.equal(await p.output().getAttribute('data-state'), 'done');
    const toks = await p.tokens();
    assert.deepEqual(toks.map((t) => t.id), score.ids.slice(1));
    const cli = JSON.parse(execFileSync(TINYLAB, ['score', '--model', file, '--text', score.text, '--json'], { encoding: 'utf8' }));
    assert.deepEqual(cli.tokens.map((t) => t.id), score.ids.slice(1));
    const mae = (xs, ys) => xs.reduce((a, x, i) => a + Math.abs(x - ys[i]), 0) / xs.length;
    const spread = Math.max(score.self_noise.surprisal_mae, score.kv_f16_noise.surprisal_mae);
    const pageVsLlama = mae(toks.map((t) => t.surprisal), score.surprisal);
    const pageVsCli = mae(toks.map((t) => t.surprisal), cli.tokens.map((t) => t.surprisal));
    console.log(`${arch}: surprisal MAE page vs llama.cpp ${pageVsLlama.toFixed(4)}, page vs CLI ${pageVsCli.toFixed(4)}, llama.cpp's own spread ${spread.toFixed(4)}`);
    assert.ok(pageVsLlama < Math.max(2 * spread, 0.05), `${arch}: page vs llama.cpp ${pageVsLlama}`);
    if (fx.add_eos) {
      // The EOS the file closes the text with is scored, and shown by its name, which stays
      // out of the text itself.
      const last = p.root.locator('[data-testid=token]').last();
      assert.ok((await last.getAttribute('data-special')).length > 0, 'the closing EOS is named');
      assert.equal(await last.textContent(), '');
    }
    await screenshot(page, `tiny-${arch}-score`);
    assert.deepEqual(errors, []);
    await ctx.close();
  });
}

test('the repetition and temperature presets keep pane 1\'s model from a file, in both panes', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  await dropFile(page, p, tiny('qwen3', 'gguf'));
  await p.root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 60000 });
  await p.settled();
  for (const [preset, differ] of [['preset-repetition', 'repeat-prompt'], ['preset-temperature', 'temperature']]) {
    await page.click(`[data-testid=${preset}]`);
    assert.equal(await page.locator('[data-testid=pane]').count(), 2, preset);
    for (const i of [0, 1]) {
      const s = pane(page, i).status();
      await pane(page, i).root.locator('[data-testid=model-status]:is([data-state=ready],[data-state=error])')
        .waitFor({ timeout: 60000 });
      const text = await s.textContent();
      assert.equal(await s.getAttribute('data-state'), 'ready', `${preset}, pane ${i + 1}: ${text}`);
      assert.ok(text.includes('qwen3.gguf'), `${preset}, pane ${i + 1}: ${text}`);
    }
    if (differ === 'repeat-prompt') {
      assert.equal(await pane(page, 1).get('repeat-prompt').isChecked(), true);
    } else {
      assert.notEqual(await pane(page, 0).get('temperature').inputValue(), await pane(page, 1).get('temperature').inputValue());
    }
  }
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a file dropped before the catalog has come keeps its pane: Run runs it, not the default model', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // The catalog held back until the file is in (a slow server, a quick hand).
  let release;
  const held = new Promise((r) => { release = r; });
  await page.route('**/catalog.json', async (route) => { await held; await route.continue(); });
  await page.goto(server.url);
  const p = pane(page);
  await p.root.waitFor();
  await dropFile(page, p, tiny('qwen3', 'gguf'));
  await p.root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 60000 });
  release();
  await page.waitForSelector('[data-testid=model-select] option[value="smollm2-135m-instruct-q4_1"]', { state: 'attached', timeout: 30000 });
  await page.waitForTimeout(500);
  assert.notEqual(await p.get('model-select').inputValue(), 'smollm2-135m-instruct-q4_1', 'the default took the dropped file\'s place');
  await page.fill('[data-testid=prompt]', 'hello');
  await p.set('max-tokens', 4);
  await p.get('run').click();
  await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])').waitFor({ timeout: 60000 });
  assert.ok((await p.status().textContent()).includes('qwen3.gguf'), await p.status().textContent());
  assert.deepEqual(errors, []);
  await ctx.close();
});
