// The browser half of the benchmark, and the combined table. scripts/bench.sh runs the native
// half first (docs/bench-native.json: tinylab CLI and llama.cpp), then this:
// - TinyLab's own model worker (the page's engine, wasm32 + simd128, one thread) doing the
//   `Bench` workload of src/bench.rs: 128-token prompt, warm-up, prefill, 64 greedy steps;
// - @wllama/wllama (llama.cpp in wasm) on the same GGUF in the same Chromium, single thread,
//   given the same prompt text, 64 tokens, EOS ignored, after a warm-up;
// - paired rounds (`pairedRounds`): llama.cpp natively and the page back to back, each at one
//   and two threads, three times;
// then prints one table with ratios and writes docs/bench.json and docs/bench-latest.md.

import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const PROMPT_TOKENS = 128;
const GEN_TOKENS = 64;
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // BENCH_JSFLAGS: V8's flags, for finding where the page's time goes, e.g. `--prof`, whose
  // per-isolate logs (written in the working directory) `node --prof-process` reads into
  // ticks per wasm function: the worker keeps its name section.
  ...(process.env.BENCH_JSFLAGS ? [`--js-flags=${process.env.BENCH_JSFLAGS}`] : [])];

async function serve() {
  const proc = spawn('python3', [join(ROOT, 'scripts', 'serve.py'), '--port', '0', '--quiet',
    '--mount', `/bench/=${join(HERE, 'page')}`,
    '--mount', `/wllama/=${join(HERE, 'node_modules', '@wllama', 'wllama', 'esm')}`],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => { out += d; const m = out.match(/served at (http:\/\/\S+)/); if (m) resolve(m[1]); });
    proc.on('exit', (c) => reject(new Error(`serve.py exited ${c}`)));
  });
  return { url, close: () => proc.kill() };
}

/// TinyLab's worker: load from the network, load again from the cache, then the workload.
/// `threads` > 1 uses a shared-memory build (this page is cross-origin isolated), and so does
/// `shared` on one thread: the build a cross-origin isolated page runs whatever its thread
/// count. `simd` is 'relaxed' (what the page runs in this Chromium) or 'plain' (the simd128
/// fallback).
const WORKERS = {
  plain: ['/tinylab_worker_loader.js', '/threads/tinylab_worker_loader.js'],
  relaxed: ['/relaxed/tinylab_worker_loader.js', '/threads-relaxed/tinylab_worker_loader.js'],
  // For A/B runs only (`BENCH_QUICK=base:1,relaxed:1`): relaxed-SIMD builds of another commit,
  // copied by hand into dist/base/relaxed and dist/base/threads-relaxed.
  base: ['/base/relaxed/tinylab_worker_loader.js', '/base/threads-relaxed/tinylab_worker_loader.js'],
  // …and simd128 builds of it, in dist/base/plain and dist/base/threads.
  'base-plain': ['/base/plain/tinylab_worker_loader.js', '/base/threads/tinylab_worker_loader.js'],
};
///
/// Each run has its own browser profile on disk, empty at the start, as a user's first visit:
/// an in-memory context (`browser.newContext()`) has too small a quota for Qwen2.5's 491 MB, so
/// its second load read the server again instead of the cache. `_browser` is the run's shared
/// Chromium (the same binary and flags are launched here).
async function benchOurs(_browser, base, model, threads = 1, simd = 'relaxed', shared = threads > 1, gen = GEN_TOKENS) {
  // `relaxed+pairs`, `relaxed+add`: the relaxed build with its dot form forced
  // (engine::dot_form) instead of measured when the worker starts.
  const [build, dot] = simd.split('+');
  const workerUrl = WORKERS[build][shared ? 1 : 0] + (dot ? `?dot=${dot}` : '');
  const profile = mkdtempSync(join(os.tmpdir(), 'tinylab-bench-profile-'));
  try {
    const ctx = await chromium.launchPersistentContext(profile, { executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS });
    try {
      return await benchOursIn(ctx, base, model, threads, simd, shared, gen, workerUrl);
    } finally {
      // A failing close must not hide the run's own error, nor keep the profile (a cached
      // model of up to 491 MB) on disk.
      await ctx.close().catch((e) => process.stderr.write(`closing a bench profile's browser: ${e.message}\n`));
    }
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

async function benchOursIn(ctx, base, model, threads, simd, shared, gen, workerUrl) {
  const page = ctx.pages()[0] || await ctx.newPage();
  await page.goto(`${base}bench/`);
  const r = await page.evaluate(async ({ url, label, prompt, gen, threads, workerUrl }) => {
    const worker = new Worker(workerUrl);
    const queue = [];
    let wake = null;
    // Replies about a job come as {type: 'job', job, event: {kind, ...}}; flatten them to
    // their event kind so the waits below read like the protocol.
    worker.onmessage = (e) => {
      const m = JSON.parse(e.data);
      queue.push(m.type === 'job' ? { ...m.event, type: m.event.kind, job: m.job } : m);
      if (wake) wake();
    };
    const next = async (types) => {
      for (;;) {
        const i = queue.findIndex((m) => types.includes(m.type) || m.type === 'failed' || m.type === 'unreadable' || m.type === 'crashed');
        if (i >= 0) {
          const m = queue.splice(i, 1)[0];
          if (!types.includes(m.type)) throw new Error(JSON.stringify(m));
          return m;
        }
        await new Promise((res) => { wake = res; });
      }
    };
    const send = (m) => worker.postMessage({ json: JSON.stringify(m) });
    let jobs = 0;
    const job = (work) => send({ type: 'job', job: ++jobs, work });
    const ready = await next(['ready']);
    send({ type: 'threads', count: threads });
    const active = (await next(['threads'])).active;
    if (active !== threads) throw new Error(`asked for ${threads} threads, the worker runs ${active}`);
    const load = async () => {
      const t0 = performance.now();
      job({ kind: 'load_url', url, label });
      const m = await next(['loaded']);
      const wall_ms = performance.now() - t0;
      // The worker puts a first load's bytes in the cache after `loaded`; the second load
      // must find them there.
      const kept = m.keeping ? await next(['kept']) : null;
      return { wall_ms, ...m, kept };
    };
    const first = await load();
    // The profile starts empty: the first load comes from the server, and its bytes are put in
    // the cache after `loaded`.
    if (first.from_cache || !first.keeping) throw new Error(`the first load did not come from the server, to be put in the cache after: ${JSON.stringify({ from_cache: first.from_cache, keeping: first.keeping })}`);
    const cached = await load();
    job({ kind: 'bench', prompt_tokens: prompt, gen_tokens: gen, repetitions: 1 });
    const b = await next(['bench']);
    worker.terminate();
    return { first, cached, bench: b, threads: active, kernels: ready.kernels, dot: ready.dot ?? null };
  }, { url: `${base}assets/models/${model.file}`, label: model.name, prompt: PROMPT_TOKENS, gen, threads, workerUrl });
  const build = simd.split('+')[0];
  const want = build === 'plain' || build === 'base-plain' ? 'simd128' : 'relaxed-simd';
  if (r.kernels !== want) throw new Error(`${workerUrl} runs ${r.kernels}, not ${want}`);
  const f = r.bench.figures;
  return {
    engine: `tinylab (wasm ${r.kernels}${r.dot ? `, ${r.dot.form}` : ''}, page worker, ${r.threads} thread${r.threads > 1 ? 's' : ''})`,
    kernels: r.kernels,
    // The relaxed build's dot form, and the worker's measurement that chose it.
    dot: r.dot,
    threads: r.threads,
    prompt_tokens: f.prompt_tokens,
    prefill_tokens_per_s: f.prefill_tokens_per_s,
    decode_tokens_per_s: f.decode_tokens_per_s,
    // The run the shares come from, timed with the profile's clock read (the others are not).
    profiled_decode_tokens_per_s: f.profiled_decode_tokens_per_s,
    time_to_first_token_ms: f.prefill_ms,
    load_ms: r.first.read_ms + r.first.build_ms,
    cached_load_ms: r.cached.read_ms + r.cached.build_ms,
    // The fresh worker's heap after its first load: the model as held, before any run.
    heap_after_load_bytes: r.first.wasm_memory_bytes,
    cached_load_from_cache: r.cached.from_cache,
    // Why the first load's bytes were not kept, when they were not (the profile's quota).
    cache_note: r.first.kept?.cache_note ?? null,
    memory_bytes: r.bench.wasm_memory_bytes,
    kv_cache_bytes: f.kv_cache_bytes,
    memory_kind: 'wasm heap',
    decode_product_share: f.decode_product_share,
    decode_helper_share: f.decode_helper_share,
    decode_share_by_type: f.decode_share_by_type,
    prefill_share_by_phase: f.prefill_share_by_phase,
    decode_share_by_phase: f.decode_share_by_phase,
    prefill_share_by_type: f.prefill_share_by_type,
    eval: f.eval,
    // Two threads ÷ one measured in the same runs (src/bench.rs `interleaved`), none on one thread.
    decode_threads_interleaved: f.decode_threads_interleaved ?? null,
    prompt_text: r.bench.prompt_text,
  };
}

/// wllama 3.8.1 on the same file, single thread, CPU.
async function benchWllama(browser, base, model, promptText) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  await page.goto(`${base}bench/`);
  try {
    return await page.evaluate(async ({ url, prompt, gen }) => {
      const { Wllama } = await import('/wllama/index.js');
      const wllama = new Wllama({ default: '/wllama/wasm/wllama.wasm' }, { suppressNativeLog: true });
      const t0 = performance.now();
      const blob = await (await fetch(url)).blob();
      await wllama.loadModel([blob], { n_threads: 1, n_ctx: 1024, n_batch: 512, n_gpu_layers: 0 });
      const loadMs = performance.now() - t0;
      const params = { prompt, temperature: 0, ignore_eos: true, cache_prompt: false };
      await wllama.createCompletion({ ...params, max_tokens: 4 });
      const res = await wllama.createCompletion({ ...params, max_tokens: gen });
      const t = res.timings || {};
      let memory = null;
      if (self.crossOriginIsolated && performance.measureUserAgentSpecificMemory) {
        try { memory = (await performance.measureUserAgentSpecificMemory()).bytes; } catch (e) { memory = null; }
      }
      const threads = wllama.getNumThreads();
      await wllama.exit();
      return {
        engine: 'wllama 3.8.1 (llama.cpp wasm)',
        prompt_tokens: t.prompt_n,
        gen_tokens: t.predicted_n,
        prefill_tokens_per_s: t.prompt_per_second,
        decode_tokens_per_s: t.predicted_per_second,
        time_to_first_token_ms: t.prompt_ms,
        load_ms: loadMs,
        memory_bytes: memory,
        memory_kind: 'page total (measureUserAgentSpecificMemory)',
        threads,
      };
    }, { url: `${base}assets/models/${model.file}`, prompt: promptText, gen: GEN_TOKENS });
  } catch (e) {
    return { engine: 'wllama 3.8.1 (llama.cpp wasm)', error: String(e.message || e).slice(0, 300), log: logs.slice(-5) };
  } finally {
    await ctx.close();
  }
}

/// The table's native figures come from scripts/bench_native.py, minutes before or after the
/// page's, and this VM's speed drifts on that scale (one run measured llama.cpp's SmolLM2
/// decode 37% above the others, TinyLab's native CLI rising with it). So the targets' ratios
/// are also taken in pairs: llama.cpp's run and the page's (relaxed SIMD, one thread) back to
/// back (and each engine's two-thread run beside its one-thread run), the order alternating
/// so that a steady drift does not favour either, `BENCH_ROUNDS` times (7 unless set, 0 with
/// BENCH_SKIP_PEERS unless set; 0 skips them); each round's ratios, and their medians. Seven,
/// not five or three: single rounds on this VM ranged ±15-25%, a median of three still moved by
/// 0.1 between runs of the same code, and one run's SmolLM2 two-thread prefill fell into two
/// groups of rounds (1.59-1.63× and 1.83-1.91×) whose median of five and of seven sat on either
/// side of its target. A round that fails ends the rounds but keeps those before it.
async function pairedRounds(browser, base, model) {
  const rounds = Number(process.env.BENCH_ROUNDS ?? (process.env.BENCH_SKIP_PEERS ? 0 : 7));
  const gguf = join(ROOT, 'assets', 'models', model.file);
  const llamaOnce = (threads) => JSON.parse(execFileSync('python3', [join(ROOT, 'scripts', 'bench_native.py'), '--llama-once', gguf, '--threads', String(threads)], { encoding: 'utf8' }));
  const out = [];
  let error = null;
  for (let i = 0; i < rounds; i++) {
    const llamaFirst = i % 2 === 0;
    process.stderr.write(`  paired round ${i + 1}/${rounds}: ${llamaFirst ? 'llama.cpp, then the page' : 'the page, then llama.cpp'}…\n`);
    let llama;
    let llama2;
    let page;
    let page2;
    // Each engine's two-thread run too, on the outside of the round (llama.cpp 2, 1, page 1,
    // 2, or the mirror), so that the one-thread runs stay back to back and each engine's two
    // runs are neighbours as well: the two-thread targets are ratios to the same engine's one
    // thread, and llama.cpp's own ratio is this VM's reference for what two threads give at
    // all. A failed run ends the rounds, this one included.
    const pageRun = (threads) => benchOurs(browser, base, model, threads);
    try {
      if (llamaFirst) {
        llama2 = llamaOnce(2);
        llama = llamaOnce(1);
        page = await pageRun(1);
        page2 = await pageRun(2);
      } else {
        page2 = await pageRun(2);
        page = await pageRun(1);
        llama = llamaOnce(1);
        llama2 = llamaOnce(2);
      }
    } catch (e) {
      error = `round ${i + 1}: ${String(e.message || e).slice(0, 200)}`;
      break;
    }
    out.push({
      first: llamaFirst ? 'llama.cpp' : 'page',
      llama_cpp_prefill_tokens_per_s: llama.prefill_tokens_per_s,
      llama_cpp_decode_tokens_per_s: llama.decode_tokens_per_s,
      llama_cpp_2_threads_prefill_tokens_per_s: llama2.prefill_tokens_per_s,
      llama_cpp_2_threads_decode_tokens_per_s: llama2.decode_tokens_per_s,
      page_prefill_tokens_per_s: page.prefill_tokens_per_s,
      page_decode_tokens_per_s: page.decode_tokens_per_s,
      page_2_threads_prefill_tokens_per_s: page2.prefill_tokens_per_s,
      page_2_threads_decode_tokens_per_s: page2.decode_tokens_per_s,
      prefill_ratio: page.prefill_tokens_per_s / llama.prefill_tokens_per_s,
      decode_ratio: page.decode_tokens_per_s / llama.decode_tokens_per_s,
      page_threads2_prefill_ratio: page2.prefill_tokens_per_s / page.prefill_tokens_per_s,
      page_threads2_decode_ratio: page2.decode_tokens_per_s / page.decode_tokens_per_s,
      llama_cpp_threads2_prefill_ratio: llama2.prefill_tokens_per_s / llama.prefill_tokens_per_s,
      llama_cpp_threads2_decode_ratio: llama2.decode_tokens_per_s / llama.decode_tokens_per_s,
      page_threads2_decode_interleaved_ratio: page2.decode_threads_interleaved?.ratio_median ?? null,
    });
  }
  const median = (xs) => { const v = [...xs].sort((a, b) => a - b); return v.length ? (v[(v.length - 1) >> 1] + v[v.length >> 1]) / 2 : null; };
  const medianOf = (key) => median(out.map((r) => r[key]));
  return {
    rounds: out,
    error,
    prefill_ratio_median: medianOf('prefill_ratio'),
    decode_ratio_median: medianOf('decode_ratio'),
    page_threads2_prefill_ratio_median: medianOf('page_threads2_prefill_ratio'),
    page_threads2_decode_ratio_median: medianOf('page_threads2_decode_ratio'),
    llama_cpp_threads2_prefill_ratio_median: medianOf('llama_cpp_threads2_prefill_ratio'),
    llama_cpp_threads2_decode_ratio_median: medianOf('llama_cpp_threads2_decode_ratio'),
    page_threads2_decode_interleaved_ratio_median: median(out.map((r) => r.page_threads2_decode_interleaved_ratio).filter((x) => typeof x === 'number')),
  };
}

const fmt = (v, d = 1) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '–');
const mb = (b) => (typeof b === 'number' ? (b / 1e6).toFixed(0) : '–');
const pct = (v) => (typeof v === 'number' ? `${(v * 100).toFixed(0)}%` : '–');
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? (a / b).toFixed(2) : '–');

/// `BENCH_QUICK=relaxed:1,relaxed:2,plain:1` (SIMD form : threads, a list): only those page
/// runs, one line each with the figures an A/B of a change needs (prefill, decode, load times,
/// attention's and each weight type's share of decoding), for every model (or `BENCH_MODELS`), `BENCH_REPS`
/// times (1 unless set); no peers, no table, nothing written. What each step in
/// docs/BENCHMARKS.md's latest section was measured with. `BENCH_GEN=n` decodes n tokens
/// instead of 64 (attention's share grows with the positions it reads).
async function quick(spec) {
  const gen = Number(process.env.BENCH_GEN ?? GEN_TOKENS);
  if (!Number.isInteger(gen) || gen < 1) throw new Error(`BENCH_GEN=${process.env.BENCH_GEN}: a number of tokens, 1 or more`);
  const catalog = JSON.parse(readFileSync(join(ROOT, 'assets', 'models', 'catalog.json'), 'utf8'));
  const server = await serve();
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS });
  const reps = Number(process.env.BENCH_REPS || 1);
  try {
    for (const model of catalog.models) {
      if (!existsSync(join(ROOT, 'assets', 'models', model.file))) continue;
      if (process.env.BENCH_MODELS && !process.env.BENCH_MODELS.split(',').includes(model.id)) continue;
      for (let rep = 0; rep < reps; rep++) {
        for (const run of spec.split(',')) {
          // `relaxed:1s`: the shared-memory build on one thread (what a cross-origin isolated
          // page runs when its thread control says one).
          const [simd, spec2 = '1'] = run.split(':');
          const threads = parseInt(spec2, 10) || 1;
          const r = await benchOurs(browser, server.url, model, threads, simd, threads > 1 || spec2.endsWith('s'), gen);
          const attention = (r.decode_share_by_phase || []).filter(([k]) => k === 'attention').map(([, v]) => pct(v)).join('') || '–';
          const types = (r.decode_share_by_type || []).map(([k, v]) => `${k} ${pct(v)}`).join(', ');
          const profiled = r.profiled_decode_tokens_per_s ? ` (profiled ${fmt(r.profiled_decode_tokens_per_s)})` : '';
          const dot = r.dot ? ` [${r.dot.form}${r.dot.forced ? ', forced' : `, ${fmt(r.dot.ratio, 2)}× in ${fmt(r.dot.ms, 0)} ms`}]` : '';
          const il = r.decode_threads_interleaved;
          const inter = il ? `; interleaved ${il.threads} threads ÷ 1 ${fmt(il.ratio_median, 2)}× (rounds ${il.ratios.map((x) => fmt(x, 2)).join(', ')}; ${fmt(il.one_thread_tokens_per_s)} / ${fmt(il.threads_tokens_per_s)} tok/s)` : '';
          console.log(`${model.id} ${run}${dot}: prefill ${fmt(r.prefill_tokens_per_s)} decode ${fmt(r.decode_tokens_per_s)}${profiled} tok/s; load ${fmt(r.load_ms, 0)} ms, ${r.cached_load_from_cache ? 'from the cache' : 'again (not kept in the cache)'} ${fmt(r.cached_load_ms, 0)} ms; decode shares: attention ${attention}, ${types}${inter}`);
          // BENCH_PHASES=1: every phase's share of decoding and of prefill, for finding what
          // does not scale with threads.
          if (process.env.BENCH_PHASES) {
            for (const key of ['decode_share_by_phase', 'prefill_share_by_phase']) {
              console.log(`  ${key}: ${(r[key] || []).map(([k, v]) => `${k} ${pct(v)}`).join(', ')}`);
            }
          }
        }
      }
    }
  } finally {
    await browser.close();
    server.close();
  }
}

async function main() {
  if (process.env.BENCH_QUICK) return quick(process.env.BENCH_QUICK);
  // The full run writes the docs' figures: none of them may come from a profiled browser.
  if (process.env.BENCH_JSFLAGS) throw new Error('BENCH_JSFLAGS is for quick runs (BENCH_QUICK) only');
  const native = JSON.parse(readFileSync(join(ROOT, 'docs', 'bench-native.json'), 'utf8'));
  const catalog = JSON.parse(readFileSync(join(ROOT, 'assets', 'models', 'catalog.json'), 'utf8'));
  const server = await serve();
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS });
  const version = browser.version();
  const rows = [];
  for (const model of catalog.models) {
    if (!existsSync(join(ROOT, 'assets', 'models', model.file))) continue;
    // For quick runs while working: BENCH_MODELS=id,id and BENCH_SKIP_PEERS=1.
    if (process.env.BENCH_MODELS && !process.env.BENCH_MODELS.split(',').includes(model.id)) continue;
    process.stderr.write(`benchmarking ${model.id} in the browser…\n`);
    const ours = await benchOurs(browser, server.url, model);
    const ours2 = await benchOurs(browser, server.url, model, 2);
    const shared1 = await benchOurs(browser, server.url, model, 1, 'relaxed', true);
    const plain = await benchOurs(browser, server.url, model, 1, 'plain');
    delete ours2.prompt_text;
    delete shared1.prompt_text;
    delete plain.prompt_text;
    const wl = process.env.BENCH_SKIP_PEERS ? { error: 'skipped' } : await benchWllama(browser, server.url, model, ours.prompt_text);
    delete ours.prompt_text;
    const nat = native.rows.find((r) => r.model === model.id) || {};
    const paired = await pairedRounds(browser, server.url, model);
    rows.push({ model: model.id, file_bytes: model.bytes, tinylab_wasm: ours, tinylab_wasm_2_threads: ours2, tinylab_wasm_shared_1_thread: shared1, tinylab_wasm_simd128: plain, wllama: wl, tinylab_native: nat.tinylab, llama_cpp_native: nat.llama_cpp, paired });
  }
  await browser.close();
  server.close();

  const lines = [];
  lines.push(`Benchmark ${new Date().toISOString().slice(0, 10)} · ${os.cpus().length} cores (${os.cpus()[0]?.model || 'cpu'}) · Chromium ${version} headless · one thread everywhere except the row that says 2 threads · TinyLab wasm = the relaxed-SIMD build this Chromium runs, unless a row says simd128 · ${PROMPT_TOKENS}-token prompt, ${GEN_TOKENS} greedy tokens, EOS ignored, warm-up first`);
  lines.push('');
  lines.push('| model | engine | prefill tok/s | decode tok/s | first token ms | load ms | memory MB |');
  lines.push('|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const engines = [
      ['TinyLab wasm (page)', r.tinylab_wasm, r.tinylab_wasm.memory_bytes],
      ['TinyLab wasm, 2 threads', r.tinylab_wasm_2_threads, r.tinylab_wasm_2_threads.memory_bytes],
      ['TinyLab wasm, shared-memory build, 1 thread', r.tinylab_wasm_shared_1_thread, r.tinylab_wasm_shared_1_thread.memory_bytes],
      ['TinyLab wasm simd128 (fallback build)', r.tinylab_wasm_simd128, r.tinylab_wasm_simd128.memory_bytes],
      ['wllama 3.8.1 wasm', r.wllama, r.wllama.memory_bytes],
      ['TinyLab native', r.tinylab_native, r.tinylab_native?.peak_memory_bytes],
      ['llama.cpp native', r.llama_cpp_native, r.llama_cpp_native?.peak_memory_bytes],
    ];
    for (const [name, v, mem] of engines) {
      if (!v) continue;
      if (v.error) { lines.push(`| ${r.model} | ${name} | error: ${v.error} | | | | |`); continue; }
      lines.push(`| ${r.model} | ${name} | ${fmt(v.prefill_tokens_per_s)} | ${fmt(v.decode_tokens_per_s)} | ${fmt(v.time_to_first_token_ms, 0)} | ${fmt(v.load_ms, 0)} | ${mb(mem)} |`);
    }
    const w = r.tinylab_wasm;
    r.ratios = {
      prefill_vs_wllama: ratio(w.prefill_tokens_per_s, r.wllama.prefill_tokens_per_s),
      decode_vs_wllama: ratio(w.decode_tokens_per_s, r.wllama.decode_tokens_per_s),
      prefill_vs_llama_native: ratio(w.prefill_tokens_per_s, r.llama_cpp_native?.prefill_tokens_per_s),
      decode_vs_llama_native: ratio(w.decode_tokens_per_s, r.llama_cpp_native?.decode_tokens_per_s),
      memory_vs_file: ratio(w.memory_bytes, r.file_bytes),
      // The issue's heap target: the peak against the file plus the KV cache it held.
      memory_vs_file_and_kv: ratio(w.memory_bytes, r.file_bytes + (w.kv_cache_bytes || 0)),
      threads2_prefill_vs_1: ratio(r.tinylab_wasm_2_threads.prefill_tokens_per_s, w.prefill_tokens_per_s),
      threads2_decode_vs_1: ratio(r.tinylab_wasm_2_threads.decode_tokens_per_s, w.decode_tokens_per_s),
      threads2_prefill_vs_shared_1: ratio(r.tinylab_wasm_2_threads.prefill_tokens_per_s, r.tinylab_wasm_shared_1_thread.prefill_tokens_per_s),
      threads2_decode_vs_shared_1: ratio(r.tinylab_wasm_2_threads.decode_tokens_per_s, r.tinylab_wasm_shared_1_thread.decode_tokens_per_s),
    };
    lines.push(`| ${r.model} | *TinyLab wasm ÷ wllama* | ${r.ratios.prefill_vs_wllama}× | ${r.ratios.decode_vs_wllama}× | | | |`);
    lines.push(`| ${r.model} | *TinyLab wasm ÷ llama.cpp native* | ${r.ratios.prefill_vs_llama_native}× | ${r.ratios.decode_vs_llama_native}× | | | ${r.ratios.memory_vs_file}× file, ${r.ratios.memory_vs_file_and_kv}× file + KV |`);
    lines.push(`| ${r.model} | *TinyLab wasm 2 threads ÷ 1 thread* | ${r.ratios.threads2_prefill_vs_1}× | ${r.ratios.threads2_decode_vs_1}× | | | |`);
    lines.push(`| ${r.model} | *2 threads ÷ the shared-memory build's 1 thread (the page's thread control)* | ${r.ratios.threads2_prefill_vs_shared_1}× | ${r.ratios.threads2_decode_vs_shared_1}× | | | |`);
  }
  lines.push('');
  const range = (xs) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;
  const pairedLine = (r) => {
    const p = r.paired;
    if (!p) return `${r.model} –`;
    if (!p.rounds.length) return `${r.model} ${p.error || 'skipped'}`;
    const rs = p.rounds;
    return `${r.model} decode ${fmt(p.decode_ratio_median, 2)}× (rounds ${range(rs.map((x) => x.decode_ratio))}; llama.cpp ${rs.map((x) => fmt(x.llama_cpp_decode_tokens_per_s)).join(', ')}, page ${rs.map((x) => fmt(x.page_decode_tokens_per_s)).join(', ')} tokens/s), prefill ${fmt(p.prefill_ratio_median, 2)}× (rounds ${range(rs.map((x) => x.prefill_ratio))})${p.error ? `; then ${p.error}` : ''}`;
  };
  lines.push('TinyLab wasm ÷ llama.cpp native, paired (median of rounds, llama.cpp\'s run and the page\'s one-thread run back to back, in alternating order, so both see the VM at the same speed): '
    + rows.map(pairedLine).join('; ') + '.');
  const threadsLine = (r) => {
    const p = r.paired;
    if (!p?.rounds.length) return `${r.model} –`;
    const rs = p.rounds;
    return `${r.model} page prefill ${fmt(p.page_threads2_prefill_ratio_median, 2)}× (rounds ${range(rs.map((x) => x.page_threads2_prefill_ratio))}), decode ${fmt(p.page_threads2_decode_ratio_median, 2)}× (rounds ${range(rs.map((x) => x.page_threads2_decode_ratio))}); llama.cpp prefill ${fmt(p.llama_cpp_threads2_prefill_ratio_median, 2)}× (rounds ${range(rs.map((x) => x.llama_cpp_threads2_prefill_ratio))}), decode ${fmt(p.llama_cpp_threads2_decode_ratio_median, 2)}× (rounds ${range(rs.map((x) => x.llama_cpp_threads2_decode_ratio))})`;
  };
  lines.push('Two threads ÷ one, paired (each engine\'s one- and two-thread runs back to back in the same rounds; the page\'s two threads run the shared-memory build, its one thread the build a page without cross-origin isolation runs, as the table\'s row of that name; llama.cpp\'s own ratio is what two threads give natively on this machine): '
    + rows.map(threadsLine).join('; ') + '.');
  const interleavedLine = (r) => {
    const rs = (r.paired?.rounds || []).map((x) => x.page_threads2_decode_interleaved_ratio).filter((x) => typeof x === 'number');
    if (!rs.length) return `${r.model} –`;
    return `${r.model} ${fmt(r.paired.page_threads2_decode_interleaved_ratio_median, 2)}× (rounds ${range(rs)})`;
  };
  lines.push('Two threads ÷ one on decode, interleaved (the page\'s two-thread run of each paired round also decodes blocks of 8 tokens at one thread and at two in the same generations, 1-2-2-1, six generations, and gives the median of their ratios: the shared-memory build against itself, with the VM\'s drift between runs taken out): '
    + rows.map(interleavedLine).join('; ') + '.');
  lines.push('TinyLab wasm load: first from the server, then again, from the browser cache (each page run has its own new browser profile on disk): '
    + rows.map((r) => `${r.model} ${fmt(r.tinylab_wasm.load_ms, 0)} / ${fmt(r.tinylab_wasm.cached_load_ms, 0)} ms${r.tinylab_wasm.cached_load_from_cache ? '' : ' (not kept: the second load read the server too)'}`).join('; ') + '.');
  lines.push('TinyLab wasm heap right after loading (the model as held, before any run; the table\'s memory column is the peak after the workload): '
    + rows.map((r) => `${r.model} ${mb(r.tinylab_wasm.heap_after_load_bytes)} MB (${ratio(r.tinylab_wasm.heap_after_load_bytes, r.file_bytes)}× file), simd128 build ${mb(r.tinylab_wasm_simd128?.heap_after_load_bytes)} MB`).join('; ') + '.');
  lines.push('TinyLab wasm KV cache at the workload\'s longest context (prompt and generated tokens, f32, in pages of 32 positions): '
    + rows.map((r) => `${r.model} ${mb(r.tinylab_wasm.kv_cache_bytes)} MB`).join('; ') + '.');
  lines.push('Where TinyLab\'s decode time goes, share in weight products (engine::profile): '
    + rows.map((r) => `${r.model} ${pct(r.tinylab_wasm.decode_product_share)} at 1 thread, ${pct(r.tinylab_wasm_2_threads.decode_product_share)} at 2 (wasm; helpers ran ${pct(r.tinylab_wasm_2_threads.decode_helper_share)} of the parallel work), ${pct(r.tinylab_native?.decode_product_share)} native`).join('; ') + '.');
  const byType = (f) => (f?.decode_share_by_type || []).map(([k, v]) => `${k} ${pct(v)}`).join(', ') || '–';
  lines.push('The same by weight type, as stored after load (TinyLab wasm, 1 thread): '
    + rows.map((r) => `${r.model} ${byType(r.tinylab_wasm)}`).join('; ') + '.');
  const byPhase = (f) => (f?.prefill_share_by_phase || []).map(([k, v]) => `${k} ${pct(v)}`).join(', ') || '–';
  lines.push('Where TinyLab\'s prefill time goes (engine::profile; what stays on one thread at 2 threads shows as a larger share there): '
    + rows.map((r) => `${r.model} 1 thread: ${byPhase(r.tinylab_wasm)}; 2 threads: ${byPhase(r.tinylab_wasm_2_threads)}`).join('. ') + '.');
  const byDecodePhase = (f) => (f?.decode_share_by_phase || []).map(([k, v]) => `${k} ${pct(v)}`).join(', ') || '–';
  lines.push('Where TinyLab\'s decode time goes, by phase: '
    + rows.map((r) => `${r.model} 1 thread: ${byDecodePhase(r.tinylab_wasm)}; 2 threads: ${byDecodePhase(r.tinylab_wasm_2_threads)}`).join('. ') + '.');
  const prefillByType = (f) => (f?.prefill_share_by_type || []).map(([k, v]) => `${k} ${pct(v)}`).join(', ') || '–';
  lines.push('Prefill\'s products by weight type (TinyLab wasm, 1 thread, share of prefill time): '
    + rows.map((r) => `${r.model} ${prefillByType(r.tinylab_wasm)}`).join('; ') + '.');
  const ev = (v) => (v?.eval ? `${fmt(v.eval.items_per_s_baseline, 2)} / ${fmt(v.eval.items_per_s_repeat_2, 2)}` : '–');
  lines.push('Evaluation, name-index items/s asked once / twice (10 items; the context\'s KV shared among the choices): '
    + rows.map((r) => `${r.model} wasm ${ev(r.tinylab_wasm)}, 2 threads ${ev(r.tinylab_wasm_2_threads)}, native ${ev(r.tinylab_native)}`
      + (r.tinylab_wasm?.eval ? ` (forward tokens ${r.tinylab_wasm.eval.forward_tokens} against ${r.tinylab_wasm.eval.forward_tokens_without_sharing} without sharing)` : '')).join('; ') + '.');
  lines.push('Memory: TinyLab wasm = the worker\'s wasm heap; wllama = the page\'s total from measureUserAgentSpecificMemory (null when the browser does not say); native = peak RSS.');
  const table = lines.join('\n');
  console.log(table);
  writeFileSync(join(ROOT, 'docs', 'bench.json'), JSON.stringify({ date: new Date().toISOString(), chromium: version, cores: os.cpus().length, prompt_tokens: PROMPT_TOKENS, gen_tokens: GEN_TOKENS, rows }, null, 1));
  writeFileSync(join(ROOT, 'docs', 'bench-latest.md'), table + '\n');
}

main().catch((e) => { console.error(e); process.exit(1); });
