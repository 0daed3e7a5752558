// A conversation in a pane (the Chat tab): three turns whose prompt ids equal the CLI's
// rendering of the same conversation, with the history's KV cache reused (the worker says how
// many prompt tokens it took from the cache); edit a turn and send it again; the conversation
// survives a reload and goes into the JSON export; Clear empties it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startServer, launch, openPage, pane, screenshot, nativeGenerate, sameGreedy, SMOLLM2, SMOLLM2_FILE, ROOT,
} from './harness.mjs';

let server;
let browser;
before(async () => { server = await startServer(); browser = await launch(); });
after(async () => { await browser?.close(); server?.close(); });

const N = 12;
const dir = mkdtempSync(join(tmpdir(), 'tinylab-chat-'));

async function send(p, text) {
  await p.get('chat-input').fill(text);
  await p.get('chat-send').click();
  await p.root.locator('[data-testid=chat]:is([data-state=done],[data-state=error])').waitFor({ timeout: 120000 });
  assert.equal(await p.get('chat').getAttribute('data-state'), 'done', await p.get('chat-message').textContent());
}

// The conversation as the page holds it, in the CLI's --messages form.
async function messages(p) {
  return p.root.locator('[data-testid=chat-turn]').evaluateAll((els) => els.map((e) => ({
    role: e.dataset.role,
    // Less the zero-width space a token that is part of a character shows as.
    content: e.querySelector('.text').textContent.replaceAll('\u200b', ''),
  })));
}

// The CLI's prompt ids and greedy reply for a conversation that ends with a user message.
function cli(msgs, name) {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(msgs));
  return nativeGenerate(SMOLLM2_FILE, '', N, ['--messages', file]);
}

const figures = async (p) => ({
  prompt: Number(await p.get('chat').getAttribute('data-prompt-tokens')),
  reused: Number(await p.get('chat').getAttribute('data-reused-tokens')),
  ids: (await p.get('chat').getAttribute('data-prompt-ids')).split(',').map(Number),
});

// A page with SmolLM2 loaded in pane 1, greedy, N tokens, on the Chat tab.
async function chatTab() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1100 } });
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  await p.loadCatalog(SMOLLM2);
  await p.set('temperature', 0);
  await p.set('max-tokens', N);
  await page.click('[data-testid=tab-chat]');
  return { ctx, page, errors, p };
}

test('three turns render as the CLI renders them, reuse the history\'s cache, and can be edited', async () => {
  const { ctx, page, errors, p } = await chatTab();
  await p.get('chat-system').fill('You are a terse assistant.');

  const said = [];
  for (const [turn, text] of ['Name a colour.', 'Name another one.', 'Which of the two is warmer?'].entries()) {
    const before = await messages(p);
    await send(p, text);
    const f = await figures(p);
    const all = await messages(p);
    assert.equal(all.length, before.length + 2, 'a user turn and a reply each');
    assert.equal(all[0].role, 'system');
    assert.deepEqual(all.map((m) => m.role).slice(-2), ['user', 'assistant']);
    const asked = all.slice(0, -1);
    const ref = cli(asked, `turn${turn}`);
    assert.deepEqual(f.ids, ref.prompt_ids, `turn ${turn + 1}: prompt ids differ from the CLI's rendering`);
    const reply = await p.root.locator('[data-testid=chat-turn][data-role=assistant]').last()
      .locator('.tok').evaluateAll((els) => els.map((e) => Number(e.dataset.tokenId)));
    sameGreedy(reply, ref, `turn ${turn + 1} reply`);
    if (turn === 0) assert.equal(f.reused, 0);
    else assert.ok(f.reused > f.prompt / 2, `turn ${turn + 1}: only ${f.reused} of ${f.prompt} prompt tokens came from the cache`);
    said.push(f);
    const ttft = await p.get('stat-ttft').textContent();
    console.log(`turn ${turn + 1}: prompt ${f.prompt} tokens, ${f.reused} from the cache (computed ${f.prompt - f.reused}); first token ${ttft}`);
  }
  assert.deepEqual((await messages(p)).map((m) => m.role),
    ['system', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
  await screenshot(page, 'chat');

  // Colour by frac(p): each greedy reply took the most likely token every time (frac 1), so
  // an earlier reply's tokens are all painted the scale's coolest colour (they were painted
  // its hottest: the saved turns had no most-likely probability to divide by).
  const colour = await p.root.locator('.color-switch [role=radio][aria-checked=true]').getAttribute('data-testid');
  await p.get('color-fracp').click();
  const painted = await p.root.locator('[data-testid=chat-turn][data-role=assistant]').first().locator('.tok')
    .evaluateAll((els) => {
      const probe = document.createElement('span');
      probe.style.backgroundColor = 'hsl(190, 85%, 82%)';
      document.body.appendChild(probe);
      const coolest = getComputedStyle(probe).backgroundColor;
      probe.remove();
      return els.map((e) => [getComputedStyle(e).backgroundColor, coolest]);
    });
  assert.ok(painted.length > 0);
  for (const [got, coolest] of painted) assert.equal(got, coolest);
  await p.get(colour).click();

  // Edit the second question: it and what follows leave the conversation, its text returns
  // to the input, and the edited turn runs as the CLI renders it.
  await p.root.locator('[data-testid=chat-turn][data-turn-index="3"] [data-testid=chat-edit]').click();
  assert.equal(await p.get('chat-input').inputValue(), 'Name another one.');
  assert.equal(await p.root.locator('[data-testid=chat-turn]').count(), 3);
  // The last reply went with it: nothing is said to be done, and its figures went too.
  assert.equal(await p.get('chat').getAttribute('data-state'), 'idle');
  assert.equal((await p.get('chat-message').textContent()).trim(), '');
  // The message taken back to the box (a draft, as anything typed there) survives a reload.
  await page.reload();
  await p.root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 60000 });
  assert.equal(await p.get('chat-input').inputValue(), 'Name another one.');
  assert.equal(await p.root.locator('[data-testid=chat-turn]').count(), 3);
  await send(p, 'Name a fruit instead.');
  const edited = await messages(p);
  assert.equal(edited.length, 5);
  assert.deepEqual((await figures(p)).ids, cli(edited.slice(0, -1), 'edited').prompt_ids);

  // Regenerate asks for the last reply again: the same prompt, and (greedy) the CLI's reply
  // by the near-tie rule.
  await p.get('chat-regenerate').click();
  await p.root.locator('[data-testid=chat]:is([data-state=done],[data-state=error])').waitFor({ timeout: 120000 });
  const again = await messages(p);
  assert.equal(again.length, 5);
  const regenerated = cli(again.slice(0, -1), 'regenerated');
  assert.deepEqual((await figures(p)).ids, regenerated.prompt_ids);
  const replyIds = await p.root.locator('[data-testid=chat-turn][data-role=assistant]').last()
    .locator('.tok').evaluateAll((els) => els.map((e) => Number(e.dataset.tokenId)));
  sameGreedy(replyIds, regenerated, 'regenerated reply');

  // The export holds the conversation; a reload keeps it; Clear empties it.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-json]')]);
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  const conv = exported.panes[0].settings.conversation;
  assert.equal(conv.system, 'You are a terse assistant.');
  assert.deepEqual(conv.turns.map((t) => t.content), again.slice(1).map((m) => m.content));
  // With the page's own link in the address bar too: a link carries neither the replies'
  // numbers nor a draft, and reloading it over the workspace it describes kept neither.
  await page.click('[data-testid=permalink]');
  await p.get('chat-input').fill('Half a mess');
  await page.waitForFunction(() => (localStorage.getItem('tinylab.workspace.v1') ?? '').includes('Half a mess'));
  assert.ok(page.url().includes('panes='), page.url());
  await page.reload();
  await p.root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 60000 });
  assert.deepEqual(await messages(p), again);
  assert.ok(await p.root.locator('[data-testid=chat-turn][data-role=assistant] .tok').count() > 0, 'replies stay coloured');
  assert.equal(await p.get('chat-input').inputValue(), 'Half a mess');
  await p.get('chat-input').fill('');
  await p.get('chat-clear').click();
  assert.deepEqual((await messages(p)).map((m) => m.role), ['system']);

  // A reload while a reply streams leaves the question unanswered: Reply asks for its answer,
  // and a new message sent instead joins it (the template wants the roles to alternate). The
  // saved workspace is given that state directly, then the page reloaded: racing a reload
  // against a streaming reply would depend on the machine's speed.
  const cutOff = async (text) => {
    await page.evaluate((t) => {
      // The tab's own copy, which its reload reads first, and the lasting one.
      const ws = JSON.parse(sessionStorage.getItem('tinylab.workspace.v1'));
      ws.panes[0].conversation.turns.push({ role: 'user', content: t, tokens: [] });
      sessionStorage.setItem('tinylab.workspace.v1', JSON.stringify(ws));
      localStorage.setItem('tinylab.workspace.v1', JSON.stringify(ws));
    }, text);
    await page.reload();
    await p.root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 60000 });
  };
  await cutOff('Tell me a long story about the sea.');
  assert.deepEqual((await messages(p)).map((m) => m.role), ['system', 'user']);
  // Not the last reply's "Done: …" (before the reload) as if this one had ended.
  assert.match(await p.get('chat-message').textContent(), /has no reply yet/);
  await p.get('chat-answer').click();
  await p.root.locator('[data-testid=chat]:is([data-state=done],[data-state=error])').waitFor({ timeout: 120000 });
  assert.equal(await p.get('chat').getAttribute('data-state'), 'done', await p.get('chat-message').textContent());
  assert.deepEqual((await messages(p)).map((m) => m.role), ['system', 'user', 'assistant']);
  assert.equal(await p.get('chat-answer').count(), 0, 'a message with its reply offers none');
  await cutOff('Another long story, please.');
  await send(p, 'Shorter.');
  const joined = await messages(p);
  assert.deepEqual(joined.map((m) => m.role), ['system', 'user', 'assistant', 'user', 'assistant']);
  assert.equal(joined[3].content, 'Another long story, please.\n\nShorter.');
  assert.deepEqual((await figures(p)).ids, cli(joined.slice(0, -1), 'joined').prompt_ids);
  // Edit on a last message that never got its reply drops only that message: the reply before
  // it is the conversation's last again, with its tokens to inspect and fork.
  await cutOff('A message the page lost the reply to.');
  assert.equal(await p.root.locator('[data-testid=chat] [data-testid=token]').count(), 0);
  await p.root.locator('[data-testid=chat-turn][data-turn-index="5"] [data-testid=chat-edit]').click();
  assert.deepEqual(await messages(p), joined);
  assert.ok(await p.root.locator('[data-testid=chat] [data-testid=token]').count() > 0, 'the last reply is inspectable again');
  assert.equal(await p.get('chat').getAttribute('data-state'), 'done');
  // Edit on the first message empties the conversation: nothing is said to be done.
  await p.root.locator('[data-testid=chat-turn][data-turn-index="1"] [data-testid=chat-edit]').click();
  assert.deepEqual((await messages(p)).map((m) => m.role), ['system']);
  assert.equal(await p.get('chat').getAttribute('data-state'), 'idle');
  assert.equal((await p.get('chat-message').textContent()).trim(), '');
  // The message goes back before what the box held (the first Edit's message): nothing in the
  // box is lost (Edit replaced a half-written message).
  assert.equal(await p.get('chat-input').inputValue(), 'Tell me a long story about the sea.\n\nA message the page lost the reply to.');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('chatting leaves the Generate run and its forks alone; a message too long for the context comes back to the input', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1100 } });
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  await p.loadCatalog(SMOLLM2);
  await p.set('temperature', 0);
  await p.set('max-tokens', 6);
  await p.get('chat-mode').uncheck();
  await page.fill('[data-testid=prompt]', 'The three primary colors are');
  await p.get('run').click();
  const finished = async () => {
    await p.root.locator('[data-testid=output]:is([data-state=done],[data-state=error])').waitFor({ timeout: 120000 });
    assert.equal(await p.output().getAttribute('data-state'), 'done');
  };
  await finished();
  await p.root.locator('[data-testid=token]').nth(2).click();
  await page.mouse.move(0, 0);
  await p.root.locator('[data-testid=token-alternative]:not([disabled])').first().click();
  await finished();
  const generated = {
    tokens: (await p.tokens()).map((t) => t.id),
    branches: await p.get('branch-select').locator('option').allTextContents(),
  };
  assert.equal(generated.branches.length, 2);

  await page.click('[data-testid=tab-chat]');
  assert.equal(await p.get('stat-tokens').textContent(), '0', 'no Generate figures under the chat');
  await send(p, 'Hi.');
  assert.ok((await p.tokens()).length > 1, 'a reply long enough to point into');
  // A token pinned in Generate is not shown against the chat's reply (its alternatives would
  // fork the reply with the Generate run's token ids), nor the other way round.
  await page.click('[data-testid=tab-generate]');
  await p.root.locator('[data-testid=token]').nth(1).click();
  assert.match(await p.get('token-inspector').textContent(), /#2 · id/);
  await page.click('[data-testid=tab-chat]');
  assert.doesNotMatch(await p.get('token-inspector').textContent(), /· id/);
  await p.root.locator('[data-testid=token]').nth(1).click();
  assert.match(await p.get('token-inspector').textContent(), /#2 · id/);
  await page.click('[data-testid=tab-generate]');
  assert.doesNotMatch(await p.get('token-inspector').textContent(), /· id/);
  await page.click('[data-testid=tab-chat]');
  // A message the context cannot hold fails before its first token: its text comes back to
  // the input, and the conversation is as it was, so the next message is not joined to it.
  const huge = 'lorem ipsum dolor sit amet '.repeat(1500);
  await p.get('chat-input').fill(huge);
  await p.get('chat-send').click();
  await p.root.locator('[data-testid=chat][data-state=error]').waitFor({ timeout: 120000 });
  assert.match(await p.get('chat-message').textContent(), /positions/);
  assert.equal(await p.get('chat-input').inputValue(), huge);
  assert.deepEqual((await messages(p)).map((m) => m.role), ['user', 'assistant']);
  await send(p, 'What is two plus two?');
  const after = await messages(p);
  assert.deepEqual(after.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
  assert.equal(after[2].content, 'What is two plus two?');

  await page.click('[data-testid=tab-generate]');
  assert.deepEqual((await p.tokens()).map((t) => t.id), generated.tokens);
  assert.deepEqual(await p.get('branch-select').locator('option').allTextContents(), generated.branches);
  assert.deepEqual(errors, []);
  await ctx.close();
});

// The chat's last reply is inspected and forked as a generation is: the fork replays the reply
// up to the chosen token with the same conversation (as `tinylab generate --messages
// --force-ids` does), takes the reply's place as the conversation's last turn, and the branch
// chooser switches the turn between the branches; the next message continues the branch shown.
test('a chat reply forks at any token, and the branch shown is the conversation\'s last turn', async () => {
  const { ctx, page, errors, p } = await chatTab();
  await send(p, 'Name three colors.');
  const asked = (await messages(p)).slice(0, 1);
  const ids = async () => (await p.tokens()).map((t) => t.id);
  const parentTokens = await p.tokens();
  const parent = parentTokens.map((t) => t.id);
  const text = (await messages(p))[1].content;
  assert.equal(parent.length > 3, true, `a reply of ${parent.length} tokens`);
  assert.equal(await p.get('branch-select').count(), 0, 'no branch chooser before a fork');

  const at = 2;
  await p.root.locator('[data-testid=token]').nth(at).click();
  await page.mouse.move(0, 0);
  assert.match(await p.get('token-inspector').textContent(), new RegExp(`#${at + 1} · id ${parent[at]}`));
  const alt = p.root.locator('[data-testid=token-alternative]:not([disabled])').first();
  const altId = Number(await alt.getAttribute('data-token-id'));
  await alt.click();
  await p.root.locator('[data-testid=chat]:is([data-state=done],[data-state=error])').waitFor({ timeout: 120000 });
  assert.equal(await p.get('chat').getAttribute('data-state'), 'done', await p.get('chat-message').textContent());
  const branchTokens = await p.tokens();
  const branch = branchTokens.map((t) => t.id);
  assert.deepEqual(branch.slice(0, at), parent.slice(0, at));
  assert.equal(branch[at], altId);
  // The replayed tokens are computed as the reply computed them (the fork reuses only what
  // the reply reused from the cache): the same numbers, to the bit, up to the fork; the
  // alternative comes from the same distribution as the token it replaced.
  const numbers = (ts) => ts.map((t) => [t.surprisal, t.entropy]);
  assert.deepEqual(numbers(branchTokens.slice(0, at)), numbers(parentTokens.slice(0, at)));
  assert.equal(branchTokens[at].entropy, parentTokens[at].entropy);
  const file = join(dir, 'fork.json');
  writeFileSync(file, JSON.stringify(asked));
  const forced = [...parent.slice(0, at), altId];
  sameGreedy(branch, nativeGenerate(SMOLLM2_FILE, '', N, ['--messages', file, '--force-ids', forced.join(',')]), 'chat fork');
  assert.equal(await p.root.locator('[data-testid=token].fork-point').count(), 1);
  // The branch took the reply's place: still one user and one assistant turn.
  const forked = await messages(p);
  assert.deepEqual(forked.map((m) => m.role), ['user', 'assistant']);
  assert.notEqual(forked[1].content, text);
  const options = await p.get('branch-select').locator('option').allTextContents();
  assert.equal(options.length, 2);
  assert.match(options[1], /^fork at #3 → /);
  await screenshot(page, 'chat-fork');

  // Back to the original and forth again: the turn follows the chooser.
  await p.get('branch-select').selectOption('0');
  assert.deepEqual(await ids(), parent);
  assert.equal((await messages(p))[1].content, text);
  await p.get('branch-select').selectOption('1');
  assert.deepEqual(await ids(), branch);
  assert.equal((await messages(p))[1].content, forked[1].content);
  // A changed system prompt takes the reply's tokens and branches away, and says why; put
  // back, they return.
  await p.get('chat-system').fill('Be terse.');
  await p.get('chat-fork-note').waitFor();
  assert.equal(await p.root.locator('[data-testid=token]').count(), 0);
  assert.equal(await p.get('branch-select').count(), 0);
  await p.get('chat-system').fill('');
  await p.get('branch-select').waitFor();
  assert.equal(await p.get('chat-fork-note').count(), 0);
  assert.deepEqual(await ids(), branch);

  // The next message continues the branch shown: its prompt is the CLI's rendering of the
  // conversation with the branch's text, and the new reply starts a new tree.
  const next = 'And two more?';
  await send(p, next);
  const cliNext = cli([...forked, { role: 'user', content: next }], 'after-fork');
  assert.deepEqual((await figures(p)).ids, cliNext.prompt_ids);
  assert.equal(await p.get('branch-select').count(), 0);
  // An earlier reply is not forked (its turn has no alternatives kept): only the last one's
  // tokens can be inspected.
  assert.equal(await p.root.locator('[data-testid=chat-turn][data-role=assistant]').first().locator('[data-testid=token]').count(), 0);
  assert.deepEqual(errors, []);
  await ctx.close();
});

// A sampled reply from the page against the CLI's with the same seed: equal up to the first
// place where they part, and there the page's token is one the CLI's distribution ranks in its
// top five. A draw that lands within rounding of two tokens' boundary may fall either way in
// the wasm kernels; nothing after that point is compared.
function sameSampled(pageIds, native, label) {
  let k = 0;
  while (k < pageIds.length && pageIds[k] === native.ids[k]) k++;
  if (k < Math.max(pageIds.length, native.ids.length)) {
    assert.ok(k < pageIds.length && k < native.tokens.length
      && native.tokens[k].top.some((t) => t.id === pageIds[k]),
      `${label}: parts from the CLI at token ${k}\n page ${pageIds}\n cli  ${native.ids}`);
  }
  console.log(`${label}: ${k}/${native.ids.length} sampled ids equal the CLI's`);
}

test('Regenerate draws from the next seed, keeps both replies as branches, and the chooser swaps the turn', async () => {
  const { ctx, page, errors, p } = await chatTab();
  const SEED = 5;
  await p.set('temperature', 0.9);
  await p.set('seed', SEED);
  await send(p, 'Write one sentence about the sea.');
  const asked = (await messages(p)).slice(0, 1);
  const file = join(dir, 'sampled.json');
  writeFileSync(file, JSON.stringify(asked));
  const sampled = (seed) => nativeGenerate(SMOLLM2_FILE, '', N,
    ['--messages', file, '--temperature', '0.9', '--seed', String(seed)]);
  const tokenIds = async () => (await p.tokens()).map((t) => t.id);
  const first = await tokenIds();
  const firstText = (await messages(p))[1].content;
  sameSampled(first, sampled(SEED), 'first reply');
  assert.equal(await p.get('branch-select').count(), 0, 'no chooser for one reply');

  for (const k of [1, 2]) {
    await p.get('chat-regenerate').click();
    await p.root.locator('[data-testid=chat]:is([data-state=done],[data-state=error])').waitFor({ timeout: 120000 });
    assert.equal(await p.get('chat').getAttribute('data-state'), 'done', await p.get('chat-message').textContent());
    const again = await messages(p);
    // Still one question and one reply: the regenerated reply took the old one's place.
    assert.deepEqual(again.map((m) => m.role), ['user', 'assistant']);
    sameSampled(await tokenIds(), sampled(SEED + k), `regenerated reply ${k}`);
    const options = await p.get('branch-select').locator('option').allTextContents();
    assert.deepEqual(options.slice(1), [1, 2].slice(0, k).map((j) => `regenerated (seed ${SEED + j})`));
    assert.equal(options[0], 'original');
    assert.equal(await p.get('branch-select').inputValue(), String(k));
  }
  const third = await tokenIds();
  const thirdText = (await messages(p))[1].content;
  await screenshot(page, 'chat-regenerate');

  // The chooser puts each reply back as the conversation's last turn, and a reload keeps them.
  await p.get('branch-select').selectOption('0');
  assert.deepEqual(await tokenIds(), first);
  assert.equal((await messages(p))[1].content, firstText);
  await page.reload();
  await p.root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 60000 });
  await page.click('[data-testid=tab-chat]');
  assert.equal((await messages(p))[1].content, firstText);
  assert.equal(await p.get('branch-select').locator('option').count(), 3);
  await p.get('branch-select').selectOption('2');
  assert.deepEqual(await tokenIds(), third);
  assert.equal((await messages(p))[1].content, thirdText);

  // Coloured by frac(p), a sampled reply keeps its colours once it is an earlier turn: its
  // tokens below the top need the most likely token's probability, which the saved turn
  // keeps (it had none, and every token was painted the hottest colour). Sampled at 5, so
  // that on any machine the reply has tokens below the top (at 0.9 all twelve can be first).
  await p.get('color-fracp').click();
  await p.set('temperature', 5);
  await send(p, 'Thanks.');
  const paint = (els) => els.map((e) => getComputedStyle(e).backgroundColor);
  const live = await p.root.locator('[data-testid=chat] [data-testid=token]').evaluateAll(paint);
  assert.ok(new Set(live).size > 1, `a reply sampled at 5 has tokens below the top: ${live}`);
  await send(p, 'Bye.');
  const kept = await p.root.locator('[data-testid=chat-turn][data-role=assistant]').nth(1).locator('.tok').evaluateAll(paint);
  assert.deepEqual(kept, live);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a reload during a Regenerate says the new reply was lost, and shows the one before as such', async () => {
  const ctx = await browser.newContext();
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  await p.loadCatalog(SMOLLM2);
  await page.click('[data-testid=tab-chat]');
  await p.set('temperature', 0);
  await p.set('max-tokens', 6);
  await send(p, 'Write a long story about a dragon who guards a library.');
  await p.set('max-tokens', 1000);
  await p.set('temperature', 0.8);
  await p.get('chat-regenerate').click();
  await p.root.locator('[data-testid=chat][data-state=running]').waitFor({ timeout: 30000 });
  await page.waitForTimeout(300);
  assert.equal(await p.get('chat').getAttribute('data-state'), 'running', 'the reply ended before the reload');
  await page.reload();
  await p.root.locator('[data-testid=model-status][data-state=ready]').waitFor({ timeout: 60000 });
  // Not the last reply's "Done: …", as if the Regenerate had ended.
  assert.match(await p.get('chat-message').textContent(), /reloaded during a reply; it was not kept\. What is shown is the one before it/);
  assert.deepEqual(errors, []);
  await ctx.close();
});

// A template that dates its system prompt (as Llama 3.2's, Granite's and gpt-oss's do, with
// `strftime_now`): the worker gives it the browser's date, and the prompt is the CLI's.
test('a chat template that writes today\'s date gets the page\'s date, as the CLI renders it', async () => {
  // The tiny llama file (SmolLM2's template) with its template overwritten in place by one of
  // the same length, padded by a comment, so no offset in the file moves.
  const src = readFileSync(join(ROOT, 'tests', 'fixtures', 'tiny', 'llama.gguf'));
  const at = src.indexOf(Buffer.from("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"));
  assert.ok(at > 8, 'the tiny llama file has SmolLM2\'s template');
  const length = Number(src.readBigUInt64LE(at - 8));
  const withTemplate = (name, date) => {
    const t = `{% for m in messages %}<|im_start|>{{ m['role'] }}\nDate: {{ ${date} }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}`;
    const filler = length - Buffer.byteLength(t) - 4;
    assert.ok(filler >= 0, `a template of ${Buffer.byteLength(t)} bytes does not fit in ${length}`);
    const out = Buffer.from(src);
    Buffer.from(`${t}{#${'x'.repeat(filler)}#}`).copy(out, at);
    const file = join(dir, `${name}.gguf`);
    writeFileSync(file, out);
    return file;
  };
  const file = withTemplate('llama-dated', "strftime_now('%d %b %Y') if strftime_now is defined else 'no clock'");
  // The same conversation as a template with no clock would render it.
  const undated = withTemplate('llama-undated', "'no clock'");
  const cliIds = (f) => nativeGenerate(f, 'What day is it?', 1, ['--chat']).prompt_ids.join(',');

  // The CLI's date is UTC's; so is this browser's.
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1100 }, timezoneId: 'UTC' });
  const { page, errors } = await openPage(ctx, server.url);
  const p = pane(page);
  await p.get('model-file').setInputFiles(file);
  await p.root.locator('[data-testid=model-status]:is([data-state=ready],[data-state=error])').waitFor({ timeout: 60000 });
  assert.equal(await p.status().getAttribute('data-state'), 'ready', await p.status().textContent());
  await p.set('temperature', 0);
  await p.set('max-tokens', 2);
  await page.click('[data-testid=tab-chat]');
  const before = cliIds(file);
  await send(p, 'What day is it?');
  const pageIds = await p.get('chat').getAttribute('data-prompt-ids');
  // The CLI runs again after: a test that crosses midnight matches one of the two.
  assert.ok([before, cliIds(file)].includes(pageIds), `page ${pageIds}, CLI ${before}`);
  assert.notEqual(pageIds, cliIds(undated), 'the page rendered the template without a clock');
  assert.deepEqual(errors, []);
  await ctx.close();
});
