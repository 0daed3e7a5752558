// Runs the decode-stream module built by scripts/decode_stream.sh: for each case, ms per pass
// (best of five) and GB/s of weight read. CASES=type:rows:k,… (type q8|q5|q41). STREAMS=n reads
// the rows from n runs in turn (`weight::decode_streams`); STREAMS=pair times 1, 2 and 4 runs
// in alternation, eight rounds, and prints the paired ratios to the first (STREAMS=pair:1,4,8
// names the counts).
//
// DOT=add sums the relaxed build's byte products with chained i32x4 relaxed dots instead of
// the i16 pairs (engine::dot_form; the page's worker measures both and keeps the faster).
//
// IN=chromium runs the module inside headless Chromium (Debian's, through the e2e tests'
// playwright-core) instead of node. The two V8s compile the same kernels differently: a
// change that kept node 20's V8 from spilling about 30 vectors per Q8_0 pass of four blocks
// ran 10-25% faster in node and within the noise in Chromium 148 and in the page
// (docs/BENCHMARKS.md, tenth stop). Judge kernels in the browser the page runs in.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
const [file, label] = process.argv.slice(2);
const cases = (process.env.CASES || [
  // Gemma 3's output matrix (178 MB) and a small one that stays in cache, each also summed
  // without a kernel (`stream`); Qwen2.5's and SmolLM2's shapes at 100k rows.
  'stream:262144:640', 'stream:1024:640', 'q8:262144:640', 'q8:1024:640', 'q8a:262144:640',
  'q8a:1024:640', 'q5:100000:896', 'q5:256:896', 'q41:100000:576', 'q41:256:576',
].join(',')).split(',')
  // The simd128 build requantizes Q5_0 to Q8_0 at load; its Q5_0 code is the portable form.
  .filter((c) => !(c.startsWith('q5:') && label === 'simd128' && !process.env.CASES));

/// Times every case on the module (`bytes`, or in the page its base64 `b64`); runs in node
/// or, passed to `page.evaluate`, in the page.
async function measure({ bytes, b64, cases, label, STREAMS, DOT }) {
  bytes ??= Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const { instance } = await WebAssembly.instantiate(bytes, { env: { now: () => performance.now() } });
  instance.exports.set_dot(DOT === 'add' ? 1 : 0);
  const bench = instance.exports.bench;
  if (!STREAMS.startsWith('pair')) instance.exports.set_streams(Number(STREAMS));
  // q8a (Q8_0 as the relaxed build lays it out) counts the stored bytes, 34 a block, so that its
  // GB/s compare with q8's as time for the same matrix.
  const BLOCK_BYTES = { q8: 34, q5: 22, q41: 20, stream: 34, q8a: 34 };
  const KIND = { q8: 0, q5: 1, q41: 2, stream: 3, q8a: 4 };
  const lines = [];
  if (STREAMS.startsWith('pair')) {
    const counts = STREAMS === 'pair' ? [1, 2, 4] : STREAMS.slice(5).split(',').map(Number);
    const med = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
    for (const c of cases) {
      const [type, rows, k] = c.split(':');
      const size = (rows * k / 32) * BLOCK_BYTES[type];
      const rates = counts.map(() => []);
      bench(KIND[type], +rows, +k, 1);
      for (let round = 0; round < 8; round++) {
        counts.forEach((st, j) => {
          instance.exports.set_streams(st);
          const ms = Math.min(bench(KIND[type], +rows, +k, 3), bench(KIND[type], +rows, +k, 3));
          rates[j].push(size / ms / 1e6);
        });
      }
      const medians = counts.map((st, j) => `${st} ${med(rates[j]).toFixed(2)}`).join(', ');
      const ratios = counts.slice(1).map((st, j) => {
        const r = rates[j + 1].map((v, i) => v / rates[0][i]);
        return `${st}/${counts[0]} ${med(r).toFixed(2)} (${Math.min(...r).toFixed(2)}-${Math.max(...r).toFixed(2)})`;
      }).join(', ');
      lines.push(`${c}: GB/s medians, runs ${medians}; paired ${ratios}`);
    }
    return lines;
  }
  for (const c of cases) {
    const [type, rows, k] = c.split(':');
    const size = (rows * k / 32) * BLOCK_BYTES[type];
    const reps = Math.max(3, Math.round(2e9 / size));
    bench(KIND[type], +rows, +k, 1);
    const ms = [];
    for (let i = 0; i < 5; i++) ms.push(bench(KIND[type], +rows, +k, reps));
    ms.sort((a, b) => a - b);
    lines.push(`${label} ${c}: ${ms[0].toFixed(3)} ms a pass (median ${ms[2].toFixed(3)}), ${(size / ms[0] / 1e6).toFixed(2)} GB/s`);
  }
  return lines;
}

const bytes = readFileSync(file);
let lines;
if (process.env.IN === 'chromium') {
  const e2e = fileURLToPath(new URL('../../tests/e2e/', import.meta.url));
  const { chromium } = createRequire(e2e)('playwright-core');
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium' });
  try {
    const page = await browser.newPage();
    await page.goto('about:blank');
    lines = await page.evaluate(measure, {
      b64: bytes.toString('base64'), cases, label: `${label} (chromium)`, STREAMS: process.env.STREAMS || '1', DOT: process.env.DOT,
    });
  } finally {
    await browser.close();
  }
} else {
  lines = await measure({ bytes, cases, label, STREAMS: process.env.STREAMS || '1', DOT: process.env.DOT });
}
for (const line of lines) console.log(line);
