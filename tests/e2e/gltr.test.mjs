// GLTR's other views: colour by frac(p) (the chosen token's probability over the most likely
// token's) and the rank-bucket and frac(p) histograms next to the chart, each checked against
// the tokens' own numbers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launch, openPage, pane, screenshot, SMOLLM2 } from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const TEXT = 'My grandmother kept bees behind the chapel, forty hives in crooked rows, and every August '
  + 'she sold the honey from a card table with a hand-lettered sign that misspelled "organic".';

test('frac(p) colours and the two histograms follow each token\'s own numbers', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  await p.loadCatalog(SMOLLM2);
  await page.click('[data-testid=tab-score]');
  await page.fill('[data-testid=score-text]', TEXT);
  await page.click('[data-testid=score-all]');
  await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])').waitFor({ timeout: 120000 });
  await p.get('color-fracp').click();

  const toks = await p.root.locator('[data-testid=token]').evaluateAll((els) => els.map((e) => {
    // The colour the browser paints, and the one the frac(p) scale gives (heat(1 - frac)).
    const probe = document.createElement('span');
    const frac = Number(e.dataset.fracp);
    const t = 1 - frac;
    probe.style.backgroundColor = `hsl(${(190 - 185 * t).toFixed(0)}, 85%, ${(82 - 18 * t).toFixed(0)}%)`;
    document.body.appendChild(probe);
    const want = getComputedStyle(probe).backgroundColor;
    probe.remove();
    return {
      rank: Number(e.dataset.rank),
      surprisal: Number(e.dataset.surprisal),
      topP: e.dataset.topP === '' ? null : Number(e.dataset.topP),
      frac,
      painted: getComputedStyle(e).backgroundColor,
      want,
    };
  }));
  assert.ok(toks.length > 30, `only ${toks.length} tokens`);
  const notTop = toks.filter((t) => t.rank > 0);
  assert.ok(notTop.length > 5, 'a human text has tokens the model did not put first');
  for (const [i, t] of toks.entries()) {
    const want = t.rank === 0 ? 1 : Math.min(1, Math.exp(-t.surprisal) / t.topP);
    assert.ok(Math.abs(t.frac - want) <= 1e-9 * Math.max(1, want), `token ${i}: frac(p) ${t.frac}, its numbers give ${want}`);
    assert.ok(t.frac >= 0 && t.frac <= 1);
    assert.equal(t.painted, t.want, `token ${i} is painted ${t.painted}, frac(p) ${t.frac} wants ${t.want}`);
  }
  // Two tokens with different frac(p) get different colours: the scale is not flat.
  const lo = notTop.reduce((a, b) => (a.frac < b.frac ? a : b));
  assert.notEqual(lo.painted, toks.find((t) => t.rank === 0).painted);

  const counts = async (id) => (await p.get(id).getAttribute('data-counts')).split(',').map(Number);
  const bucket = (r) => (r < 10 ? 0 : r < 100 ? 1 : r < 1000 ? 2 : 3);
  const ranks = [0, 0, 0, 0];
  toks.forEach((t) => { ranks[bucket(t.rank)] += 1; });
  assert.deepEqual(await counts('hist-rank'), ranks);
  const fracs = Array(10).fill(0);
  toks.forEach((t) => { fracs[Math.min(9, Math.floor(t.frac * 10))] += 1; });
  assert.deepEqual(await counts('hist-fracp'), fracs);
  assert.equal(fracs.reduce((a, b) => a + b), toks.length);
  console.log(`frac(p): ${toks.length} tokens, histogram ${fracs.join(' ')}; ranks ${ranks.join(' ')}`);

  // The inspector shows the pointed token's frac(p).
  const k = toks.indexOf(lo);
  await p.root.locator('[data-testid=token]').nth(k).hover();
  assert.match(await p.get('token-inspector').textContent(), new RegExp(`frac\\(p\\)${lo.frac.toFixed(3)}`));
  await screenshot(page, 'gltr-fracp');
  assert.deepEqual(errors, []);
  await ctx.close();
});
