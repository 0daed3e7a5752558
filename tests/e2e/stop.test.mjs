// Stop during long work: a long prompt is read in chunks and a long text is scored in chunks,
// so Stop lands within a chunk instead of after all of it (shown by what was left undone, not
// by timing); a stopped score
// keeps what was scored, marked partial; a text beyond the page's limit is refused up front.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, pane, screenshot, SMOLLM2 } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

/// About `n` × 20 tokens of varied English.
const longText = (n) => Array.from({ length: n }, (_, i) =>
  `Line ${i}: the river ran past the mill, and the miller counted ${i * 7 + 3} sacks of grain.`).join(' ');

/// Waits until `locator`'s text matches `re` and returns the match.
async function waitText(locator, re, timeout = 120000) {
  const t0 = Date.now();
  for (;;) {
    const m = ((await locator.textContent()) || '').match(re);
    if (m) return m;
    if (Date.now() - t0 > timeout) assert.fail(`no ${re} in: ${await locator.textContent()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('Stop ends a long prefill and a long score within a chunk, keeping what was scored', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  await p.loadCatalog(SMOLLM2);
  await p.get('chat-mode').uncheck();
  await p.set('max-tokens', 8);

  // A prompt of about 3,400 tokens: many chunks of prefill.
  await page.fill('[data-testid=prompt]', longText(130));
  await p.get('run').click();
  const [, done0, total] = await waitText(p.get('run-message'), /Reading the prompt: (\d+) of (\d+) tokens/);
  assert.ok(Number(total) > 3000, `prompt of ${total} tokens`);
  assert.ok(Number(done0) < Number(total));
  const t0 = Date.now();
  await p.get('stop').click();
  await p.root.locator('[data-testid=output][data-state=done]').waitFor({ timeout: 60000 });
  const prefillStopMs = Date.now() - t0;
  assert.equal(await p.get('token').count(), 0, 'no token after a stopped prefill');
  assert.match(await p.get('run-message').textContent(), /stopped/i);
  // The prompt never finished: the run ended without `Started` (which carries the prompt ids).
  // Before chunked prefill, Stop was only heard after the whole prompt, with `Started` sent.
  assert.equal(await p.output().getAttribute('data-prompt-tokens'), '0', 'stopped inside the prompt');
  console.log(`prefill stopped ${prefillStopMs} ms after Stop (prompt ${total} tokens)`);

  // The pane works again at once.
  await page.fill('[data-testid=prompt]', 'Once upon a time');
  await p.get('run').click();
  await p.root.locator('[data-testid=output][data-state=done]').waitFor({ timeout: 60000 });
  assert.ok(await p.get('token').count() > 0);

  // A long text to score: stopped after the first window, the scored part stays, marked partial.
  await page.click('[data-testid=tab-score]');
  await page.fill('[data-testid=score-text]', longText(260));
  await p.get('score').click();
  let m;
  do {
    m = await waitText(p.get('run-message'), /Scoring: (\d+) of (\d+) tokens/);
  } while (Number(m[1]) < 1100);
  const scoreTotal = Number(m[2]);
  const t1 = Date.now();
  await p.get('stop').click();
  await p.root.locator('[data-testid=output][data-state=done]').waitFor({ timeout: 60000 });
  const scoreStopMs = Date.now() - t1;
  console.log(`score stopped ${scoreStopMs} ms after Stop (text ${scoreTotal} tokens)`);
  assert.equal(await p.output().getAttribute('data-partial'), 'true');
  const scored = await p.get('token').count();
  assert.ok(scored >= 1023 && scored < scoreTotal, `${scored} of ${scoreTotal} scored`);
  const message = await p.get('run-message').textContent();
  assert.match(message, new RegExp(`Stopped: scored ${scored} of ${scoreTotal} tokens.*partial`));
  assert.ok(Number(await p.get('stat-perplexity').textContent().then((t) => t.replace(/[^0-9.]/g, ''))) > 1);
  await screenshot(page, 'score-stopped-partial');

  // Beyond the page's limit: refused with a message, in well under a second of work.
  await page.fill('[data-testid=score-text]', longText(500));
  await p.get('score').click();
  await p.root.locator('[data-testid=output][data-state=error]').waitFor({ timeout: 30000 });
  assert.match(await p.get('run-message').textContent(), /at most 8192/);
  assert.deepEqual(errors, []);
  await ctx.close();
});
