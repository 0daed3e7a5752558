// Runs the decode-stream module built by scripts/decode_stream.sh: for each case, ms per pass
// (best of five) and GB/s of weight read. CASES=type:rows:k,… (type q8|q5|q41).
import { readFileSync } from 'node:fs';
const [file, label] = process.argv.slice(2);
const { instance } = await WebAssembly.instantiate(readFileSync(file), { env: { now: () => performance.now() } });
const bench = instance.exports.bench;
const BLOCK_BYTES = { q8: 34, q5: 22, q41: 20 };
const KIND = { q8: 0, q5: 1, q41: 2 };
const cases = (process.env.CASES || [
  // Gemma 3's output matrix (178 MB) and a small one that stays in cache; Qwen2.5's and
  // SmolLM2's shapes at 100k rows.
  'q8:262144:640', 'q8:1024:640', 'q5:100000:896', 'q5:256:896', 'q41:100000:576', 'q41:256:576',
].join(',')).split(',');
for (const c of cases) {
  const [type, rows, k] = c.split(':');
  // The simd128 build requantizes Q5_0 to Q8_0 at load; its Q5_0 code is the portable form.
  if (type === 'q5' && label === 'simd128' && !process.env.CASES) continue;
  const bytes = (rows * k / 32) * BLOCK_BYTES[type];
  const reps = Math.max(3, Math.round(2e9 / bytes));
  bench(KIND[type], +rows, +k, 1);
  const ms = [];
  for (let i = 0; i < 5; i++) ms.push(bench(KIND[type], +rows, +k, reps));
  ms.sort((a, b) => a - b);
  console.log(`${label} ${c}: ${ms[0].toFixed(3)} ms a pass (median ${ms[2].toFixed(3)}), ${(bytes / ms[0] / 1e6).toFixed(2)} GB/s`);
}
