// Deploys: serve build A, visit (the service worker keeps A's files), serve build B on the same
// address, reload: page, model worker and catalog must all be B's. Build B is build A with one
// file changed and stamped again by scripts/sw_manifest.py, as a rebuild would.
// Then the other half of the guard: a page whose build differs from the worker's says so.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import net from 'node:net';
import http from 'node:http';
import { startServer, launch, pane, ROOT, SMOLLM2 } from './harness.mjs';

let browser;
let tmp;
before(async () => { browser = await launch(); tmp = mkdtempSync(join(os.tmpdir(), 'tinylab-deploy-')); });
after(async () => { await browser?.close(); rmSync(tmp, { recursive: true, force: true }); });

const buildOf = (dir) => readFileSync(join(dir, 'index.html'), 'utf8').match(/name="tinylab-build" content="([^"]+)"/)[1];

function makeBuildB(a, b) {
  cpSync(a, b, { recursive: true });
  const css = readdirSync(b).find((f) => f.endsWith('.css'));
  writeFileSync(join(b, css), readFileSync(join(b, css), 'utf8') + '\n/* build B */\n');
  const catalogPath = join(b, 'assets', 'models', 'catalog.json');
  const catalog = JSON.parse(readFileSync(catalogPath, 'utf8'));
  catalog.models[0].name += ' (build B)';
  writeFileSync(catalogPath, JSON.stringify(catalog, null, 2));
  execFileSync('python3', [join(ROOT, 'scripts', 'sw_manifest.py'), b]);
  // A deploy comes later than the build before it: the server's Last-Modified (whole seconds)
  // must not tell the browser its copy of index.html is current.
  const later = Date.now() / 1000 + 60;
  for (const f of readdirSync(b, { recursive: true })) utimesSync(join(b, f), later, later);
}

async function status(p) {
  const s = p.status();
  return { state: await s.getAttribute('data-state'), build: await s.getAttribute('data-worker-build'), text: await s.textContent() };
}

test('after a deploy the page, its worker and its catalog come from the new build', async () => {
  const dirA = join(tmp, 'a');
  const dirB = join(tmp, 'b');
  cpSync(join(ROOT, 'dist'), dirA, { recursive: true });
  makeBuildB(dirA, dirB);
  const [buildA, buildB] = [buildOf(dirA), buildOf(dirB)];
  assert.notEqual(buildA, buildB);
  // The stamps agree inside each build.
  for (const [dir, build] of [[dirA, buildA], [dirB, buildB]]) {
    for (const f of ['tinylab_worker_loader.js', 'threads/tinylab_worker_loader.js', 'threads/tinylab_helper.js']) {
      assert.match(readFileSync(join(dir, f), 'utf8'), new RegExp(`self.TINYLAB_BUILD = "${build}";`), f);
    }
    assert.match(readFileSync(join(dir, 'sw.js'), 'utf8'), new RegExp(`const VERSION = "${build}";`));
  }

  let server = await startServer(['--dist', dirA]);
  const port = new URL(server.url).port;
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(server.url);
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await page.reload();
  assert.ok(await page.evaluate(() => !!navigator.serviceWorker.controller), 'the service worker controls the page');
  const p = pane(page);
  await p.loadCatalog(SMOLLM2);
  assert.deepEqual((await status(p)).build, buildA);

  // Deploy B at the same address.
  server.close();
  await new Promise((r) => setTimeout(r, 300));
  server = await startServer(['--dist', dirB, '--port', port]);
  await page.reload();
  await page.waitForSelector(`[data-testid=model-select] option[value="${SMOLLM2}"]`, { state: 'attached', timeout: 30000 });
  assert.equal(await page.getAttribute('meta[name=tinylab-build]', 'content'), buildB, 'the page is build B');
  await p.root.locator('[data-testid=model-status]:is([data-state=ready],[data-state=error])').waitFor({ timeout: 120000 });
  const s = await status(p);
  assert.equal(s.state, 'ready', s.text);
  assert.equal(s.build, buildB, 'the worker is build B');
  const label = await p.root.locator(`[data-testid=model-select] option[value="${SMOLLM2}"]`).textContent();
  assert.match(label, /\(build B\)/, 'the catalog is build B');
  // Offline before the browser restarts, as at an event after updating the bundle: the page
  // is B while A's service worker still controls it (B's waits for A's pages to close), and
  // B's files are in B's cache. A new pane's worker starts from there, as build B.
  const installed = (b) => page.evaluate(async (build) => (await (await caches.open(`tinylab-shell-${build}`)).keys())
    .some((r) => r.url.includes('tinylab_worker_loader')) && !!(await navigator.serviceWorker.getRegistration())?.waiting, b);
  for (let t0 = Date.now(); !(await installed(buildB)); await new Promise((r) => setTimeout(r, 250))) {
    assert.ok(Date.now() - t0 < 60000, "build B's service worker installed");
  }
  await ctx.setOffline(true);
  await page.click('[data-testid=add-pane]');
  const p2 = pane(page, 1);
  await p2.loadCatalog(SMOLLM2, 60000).catch(async (e) => { throw new Error(`${e.message}: ${(await status(p2)).text}`); });
  const s2 = await status(p2);
  assert.equal(s2.state, 'ready', s2.text);
  assert.equal(s2.build, buildB, 'the offline worker is build B');
  await ctx.setOffline(false);
  assert.deepEqual(errors, []);
  await ctx.close();
  server.close();
});

test('a page left open across a deploy says to reload instead of running another build', async () => {
  // No service worker in this context: the server alone changes under an open page.
  const dirC = join(tmp, 'c');
  const dirD = join(tmp, 'd');
  cpSync(join(ROOT, 'dist'), dirC, { recursive: true });
  makeBuildB(dirC, dirD);
  let server = await startServer(['--dist', dirC]);
  const port = new URL(server.url).port;
  const ctx = await browser.newContext({ serviceWorkers: 'block' });
  const page = await ctx.newPage();
  await page.goto(server.url);
  await page.waitForSelector(`[data-testid=model-select] option[value="${SMOLLM2}"]`, { state: 'attached', timeout: 30000 });
  server.close();
  await new Promise((r) => setTimeout(r, 300));
  server = await startServer(['--dist', dirD, '--port', port]);
  // The open page (build C) starts a worker: the server hands out build D's files. A browser
  // may still have build C's worker in its HTTP cache, but `?build=` makes it ask for C's URL,
  // which the server answers with D: the worker reports D.
  const p = pane(page);
  await p.root.locator('[data-testid=model-select]').selectOption(SMOLLM2);
  await p.root.locator('[data-testid=model-status][data-state=error]').waitFor({ timeout: 60000 });
  assert.match(await p.status().textContent(), /updated on the server.*reload the page/);
  await ctx.close();
  server.close();
});

test('a server that answers nothing, or a proxy\'s 502, still opens the kept page', async () => {
  // An event's Wi-Fi behind a login page, or a server gone quiet: the page's own request hangs
  // (here: a socket that accepts and never answers), where the browser would wait minutes.
  const server = await startServer();
  const { hostname, port } = new URL(server.url);
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(server.url);
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await page.reload();
  assert.ok(await page.evaluate(() => !!navigator.serviceWorker.controller), 'the service worker controls the page');
  server.close();
  await server.closed;

  const held = [];
  const quiet = net.createServer((socket) => { held.push(socket); socket.on('error', () => {}); });
  await new Promise((r) => quiet.listen(Number(port), hostname, r));
  const opened = async (what) => {
    await page.reload({ timeout: 60000 });
    await page.waitForSelector(`[data-testid=model-select] option[value="${SMOLLM2}"]`, { state: 'attached', timeout: 30000 })
      .catch((e) => { throw new Error(`${what}: the page did not open from its kept copy (${e.message})`); });
  };
  await opened('a server that answers nothing');
  for (const s of held) s.destroy();
  await new Promise((r) => quiet.close(r));

  const proxy = http.createServer((req, res) => { res.writeHead(502, { 'content-type': 'text/plain' }); res.end('Bad Gateway'); });
  await new Promise((r) => proxy.listen(Number(port), hostname, r));
  await opened('a 502 from a proxy');
  assert.doesNotMatch(await page.textContent('body'), /Bad Gateway/);
  proxy.closeAllConnections();
  await new Promise((r) => proxy.close(r));
  await ctx.close();
});
