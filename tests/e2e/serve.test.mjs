// scripts/serve.py against odd and hostile paths: a clear 400 or 404, never a traceback, no
// folder listings, nothing outside dist/ and assets/models/, and it keeps serving afterwards.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(() => server?.close());

/// Status of a GET for `path` sent exactly as written (no URL normalising).
function status(path) {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, path, method: 'GET' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}

test('odd paths get 400 or 404 and the server keeps serving', async () => {
  const cases = [
    ['/%00', 400],
    ['/index.html%00.txt', 400],
    ['/assets/models/%00x.gguf', 400],
    ['/%ff%fe', 400],
    ['/a%0ab', 400],
    ['/icons/', 404],
    ['/threads/', 404],
    ['/assets/models/', 404],
    ['/../../etc/passwd', 404],
    ['/assets/models/..%2f..%2fCargo.toml', 404],
    // Over the server's 64 KB request line: refused with its status (the error page used to
    // fail before it was sent, and the browser saw an empty response).
    [`/?text=${'a'.repeat(70000)}`, 414],
  ];
  for (const [path, want] of cases) {
    assert.equal(await status(path), want, path.slice(0, 60));
  }
  assert.equal(await status('/index.html'), 200);
  assert.equal(await status('/assets/models/catalog.json'), 200);
});
