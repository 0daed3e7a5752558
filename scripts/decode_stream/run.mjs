// Runs the decode-stream module built by scripts/decode_stream.sh: for each case, ms per pass
// (best of five) and GB/s of weight read. CASES=type:rows:k,… (type q8|q8a|q5|q41|q41a|q6k; q8a
// and q41a: Q8_0 and Q4_1 as the relaxed build lays them out at load; q6k: Q6_K widened as the
// engine keeps it, k a multiple of 256). STREAMS=n reads the rows
// from n runs in turn (`weight::decode_streams`); STREAMS=pair times 1, 2 and 4 runs
// in alternation, eight rounds, and prints the paired ratios to the first (STREAMS=pair:1,4,8
// names the counts).
//
// DOT=add sums the relaxed build's byte products with chained i32x4 relaxed dots instead of
// the i16 pairs (engine::dot_form; the page's worker measures both and keeps the faster).
//
// AB=<other.wasm> times the module against another build of the harness (another commit's, say)
// in one instance each, alternating, fifteen paired rounds per case, and prints both medians
// and the paired ratio (this ÷ other, time; below 1 this module is faster). VS=type runs the
// other side's cases as that type (AB=this.wasm VS=q41 CASES=q41a:…: the two layouts, one build).
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
  .filter((c) => !(c.startsWith('q5:') && label === 'simd128' && !process.env.CASES))
  // Only the relaxed build lays Q4_1 out (its harness has no such case elsewhere).
  .filter((c) => !(c.startsWith('q41a:') && label === 'simd128'));

/// Times every case on the module (`bytes`, or in the page its base64 `b64`); runs in node
/// or, passed to `page.evaluate`, in the page.
async function measure({ bytes, b64, otherB64, cases, label, STREAMS, DOT, VS }) {
  const decode = (b) => Uint8Array.from(atob(b), (ch) => ch.charCodeAt(0));
  bytes ??= decode(b64);
  const start = async (b) => {
    const { instance } = await WebAssembly.instantiate(b, { env: { now: () => performance.now() } });
    // A build from before the dot forms (issue 15's twenty-second stop) has no `set_dot`.
    instance.exports.set_dot?.(DOT === 'add' ? 1 : 0);
    return instance;
  };
  const instance = await start(bytes);
  const bench = instance.exports.bench;
  if (!STREAMS.startsWith('pair')) instance.exports.set_streams(Number(STREAMS));
  // q8a (Q8_0 as the relaxed build lays it out) counts the stored bytes, 34 a block, so that its
  // GB/s compare with q8's as time for the same matrix.
  const BLOCK_BYTES = { q8: 34, q5: 22, q41: 20, stream: 34, q8a: 34, q41a: 20, q6k: 210 / 8 };
  const KIND = { q8: 0, q5: 1, q41: 2, stream: 3, q8a: 4, q41a: 5, q6k: 6 };
  const lines = [];
  const med = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
  if (otherB64) {
    const other = (await start(decode(otherB64))).exports;
    other.set_streams(Number(STREAMS));
    for (const c of cases) {
      const [type, rows, k] = c.split(':');
      const size = (rows * k / 32) * BLOCK_BYTES[type];
      const reps = Math.max(2, Math.round(3e8 / size));
      const time = (b, t) => Math.min(b(KIND[t], +rows, +k, reps), b(KIND[t], +rows, +k, reps));
      const ours = () => time(bench, type);
      const theirs_ = () => time(other.bench, VS || type);
      ours(); theirs_();
      const [mine, theirs, ratio] = [[], [], []];
      for (let round = 0; round < 15; round++) {
        const [a, b] = round % 2 ? [theirs_(), ours()].reverse() : [ours(), theirs_()];
        mine.push(a); theirs.push(b); ratio.push(a / b);
      }
      lines.push(`${label} ${c}: GB/s ${(size / med(mine) / 1e6).toFixed(2)} against ${(size / med(theirs) / 1e6).toFixed(2)}; `
        + `time ratio ${med(ratio).toFixed(3)} (${Math.min(...ratio).toFixed(3)}-${Math.max(...ratio).toFixed(3)})`);
    }
    return lines;
  }
  if (STREAMS.startsWith('pair')) {
    const counts = STREAMS === 'pair' ? [1, 2, 4] : STREAMS.slice(5).split(',').map(Number);
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
const otherB64 = process.env.AB ? readFileSync(process.env.AB).toString('base64') : undefined;
let lines;
if (process.env.IN === 'chromium') {
  const e2e = fileURLToPath(new URL('../../tests/e2e/', import.meta.url));
  const { chromium } = createRequire(e2e)('playwright-core');
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium' });
  try {
    const page = await browser.newPage();
    await page.goto('about:blank');
    lines = await page.evaluate(measure, {
      b64: bytes.toString('base64'), otherB64, cases, label: `${label} (chromium)`, STREAMS: process.env.STREAMS || '1', DOT: process.env.DOT, VS: process.env.VS,
    });
  } finally {
    await browser.close();
  }
} else {
  lines = await measure({ bytes, otherB64, cases, label, STREAMS: process.env.STREAMS || '1', DOT: process.env.DOT, VS: process.env.VS });
}
for (const line of lines) console.log(line);
