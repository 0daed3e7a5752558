import assert from 'node:assert/strict';
// Shared set-up for the end-to-end tests: serve dist/ (scripts/serve.py), launch Debian's
// Chromium headless through playwright-core, run the native CLI for reference numbers, and keep
// screenshots under tests/artifacts/ (git-ignored).

import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { chromium } from 'playwright-core';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = join(ROOT, 'tests', 'artifacts');
export const MODELS = join(ROOT, 'assets', 'models');
export const SMOLLM2 = 'smollm2-135m-instruct-q4_1';
export const SMOLLM2_FILE = join(MODELS, 'SmolLM2-135M-Instruct.Q4_1.gguf');

const TARGET = process.env.CARGO_TARGET_DIR || join(os.homedir(), '.cache', 'tinylab', 'target');
export const TINYLAB = process.env.TINYLAB_BIN || join(TARGET, 'release', 'tinylab');

// The flags keep Chromium from calling home: this machine's network is closed, and a test that
// records every request must see only the page's own.
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/// `extra`: more serve.py flags (`--no-isolation` for the single-thread fallback).
export async function startServer(extra = []) {
  if (!existsSync(join(ROOT, 'dist', 'index.html'))) {
    throw new Error('dist/index.html is missing: run scripts/build_web.sh first');
  }
  const proc = spawn('python3', [join(ROOT, 'scripts', 'serve.py'), '--port', '0', '--quiet', ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/served at (http:\/\/[^\s]+)/);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`serve.py exited with ${code}`)));
  });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  // `closed`: resolves once the server's process has ended (its port is free again).
  return { url, close: () => proc.kill(), closed: exited };
}

/// A real, persistent browser profile in `dir` (what an event laptop uses), instead of the
/// in-memory profile of `launch().newContext()`, whose storage refuses large models.
export async function launchProfile(dir, options = {}) {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  return chromium.launchPersistentContext(dir, { executablePath, args: CHROMIUM_ARGS, ...options });
}

/// `extra`: more Chromium flags (`--js-flags=…` for V8's).
export async function launch(extra = []) {
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  return chromium.launch({ executablePath, args: [...CHROMIUM_ARGS, ...extra] });
}

/// A new page that fails the test on any uncaught page error, and records requests.
/// `init`, when given, runs in the page before its own scripts (`page.addInitScript`).
export async function openPage(context, url, init) {
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => requests.push(r.url()));
  if (init) await page.addInitScript(init);
  await page.goto(url);
  await page.waitForSelector(
    `[data-testid=model-select] option[value="${SMOLLM2}"]`,
    { state: 'attached', timeout: 30000 },
  );
  return { page, errors, requests };
}

/// Records every `data-cache` value each pane's model status takes, in order, from the page's
/// start (`page.addInitScript(recordCacheStates)`, read back with `cacheStates(page)`): the
/// states between two awaits of a test can come and go unseen.
export function recordCacheStates() {
  window.__cacheStates = {};
  const note = (i, v) => {
    const seen = (window.__cacheStates[i] ||= []);
    if (v != null && seen[seen.length - 1] !== v) seen.push(v);
  };
  new MutationObserver((records) => {
    // Each record's old value, then the value now: no state is lost when several changes
    // come in one batch.
    const last = new Map();
    for (const r of records) {
      const el = r.target;
      if (el.dataset?.testid !== 'model-status') continue;
      const i = el.closest('[data-pane-index]')?.dataset.paneIndex ?? '?';
      note(i, r.oldValue);
      last.set(el, i);
    }
    for (const [el, i] of last) note(i, el.dataset.cache);
  }).observe(document, { subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-cache'] });
}

export async function cacheStates(page) {
  return page.evaluate(() => window.__cacheStates);
}

export function pane(page, index = 0) {
  const root = page.locator(`[data-testid=pane][data-pane-index="${index}"]`);
  return {
    root,
    get: (testid) => root.locator(`[data-testid=${testid}]`),
    async set(testid, value) {
      const el = root.locator(`[data-testid=${testid}]`);
      await el.fill(String(value));
      await el.dispatchEvent('change');
    },
    async loadCatalog(id, timeout = 180000) {
      const t0 = Date.now();
      await root.locator('[data-testid=model-select]').selectOption(id);
      await root.locator('[data-testid=model-status]:is([data-state=ready],[data-state=error])')
        .waitFor({ timeout });
      const ms = Date.now() - t0;
      await this.settled(timeout);
      return ms;
    },
    /// Waits until the worker is done putting the loaded model in the browser cache, which it
    /// does after the model is ready (`data-cache=keeping` until then), so that a reload or a
    /// cut network afterwards finds it there.
    async settled(timeout = 60000) {
      await root.locator('[data-testid=model-status]:not([data-cache=keeping])').waitFor({ timeout });
    },
    status: () => root.locator('[data-testid=model-status]'),
    output: () => root.locator('[data-testid=output]'),
    async tokens() {
      return root.locator('[data-testid=token]').evaluateAll((els) => els.map((e) => ({
        id: Number(e.dataset.tokenId),
        entropy: Number(e.dataset.entropy),
        surprisal: Number(e.dataset.surprisal),
        rank: Number(e.dataset.rank),
      })));
    },
  };
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/// The native CLI's generation, the reference the page must match: greedy unless `extra`
/// names a temperature.
export function nativeGenerate(model, prompt, maxTokens, extra = []) {
  const greedy = extra.includes('--temperature') ? [] : ['--temperature', '0'];
  const out = execFileSync(TINYLAB, [
    'generate', '--model', model, '--prompt', prompt, '--max-tokens', String(maxTokens),
    ...greedy, '--json', ...extra,
  ], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(out);
}

/// Where to patch a GGUF: the bytes of `general.architecture`'s value and of the first tensor's
/// ggml type. A minimal reader of the GGUF v3 layout (enough to write the bad files the
/// robustness test drops on the page).
export function ggufLayout(buf) {
  let o = 4 + 4;
  const u32 = () => { const v = buf.readUInt32LE(o); o += 4; return v; };
  const u64 = () => { const v = Number(buf.readBigUInt64LE(o)); o += 8; return v; };
  const str = () => { const n = u64(); const s = buf.toString('utf8', o, o + n); o += n; return s; };
  const SIZES = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skip = (t) => {
    if (t === 8) { str(); return; }
    if (t === 9) { const it = u32(); const n = u64(); for (let i = 0; i < n; i++) skip(it); return; }
    o += SIZES[t];
  };
  const nTensors = u64();
  const nKv = u64();
  let arch = null;
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const t = u32();
    if (key === 'general.architecture') {
      const n = u64();
      arch = { offset: o, length: n };
      o += n;
    } else {
      skip(t);
    }
  }
  str();
  const dims = u32();
  o += 8 * dims;
  return { arch, firstTensorType: o, nTensors };
}

// Greedy ids from the page against the native CLI's, by the rule the Rust parity tests use:
// equal up to the first place where they part, and they may part only where the native top two
// are within NEAR_TIE nats, with the page's token among native's top five there. Nothing after
// that point is compared: which side of a near tie a token falls on is rounding (the wasm
// kernels round differently from AVX2), so no prompt is "safe" on every machine. Returns how
// many ids agree, so callers compare numbers only over tokens with the same context.
export const NEAR_TIE = 0.3;
export function sameGreedy(pageIds, native, label = 'page') {
  // An empty output agrees with anything by the rule below: it must be the CLI's too.
  assert.ok(pageIds.length > 0 || native.ids.length === 0, `${label}: no tokens, where the CLI gave ${native.ids.length}`);
  const n = Math.max(pageIds.length, native.ids.length);
  let k = 0;
  while (k < n && pageIds[k] === native.ids[k]) k++;
  if (k < n && k < native.tokens.length) {
    const top = native.tokens[k].top;
    const margin = Math.log(top[0].p) - Math.log(top[1].p);
    assert.ok(margin < NEAR_TIE,
      `${label}: parts from the CLI at token ${k}, where the native margin is ${margin.toFixed(3)} nats\n page ${pageIds}\n cli  ${native.ids}`);
    if (k < pageIds.length) {
      assert.ok(top.some((t) => t.id === pageIds[k]),
        `${label}: token ${k} (${pageIds[k]}) is not among the CLI's top five there`);
    }
  } else if (k < n) {
    assert.fail(`${label}: the CLI stopped at ${native.ids.length} tokens, the page went on to ${pageIds.length}`);
  }
  console.log(`${label}: ${k}/${native.ids.length} greedy ids equal the CLI's`);
  return k;
}
