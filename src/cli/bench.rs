//! Native speed of the engine, measured the way the benchmark issue asks: a fixed prompt of
//! `prompt_tokens` tokens, a warm-up, then prefill and `gen_tokens` greedy decode steps with EOS
//! ignored.

use std::time::Instant;

use clap::Args;
use serde_json::json;
use tinylab::engine::{GenerateRequest, SamplingParams};

use super::{load, print_json, Common};

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    #[arg(long, default_value_t = 64)]
    gen_tokens: usize,
    /// Timed repetitions; the best is reported.
    #[arg(long, default_value_t = 1)]
    repetitions: usize,
}

/// A fixed English passage, repeated as needed and cut to the requested token count.
pub const BENCH_TEXT: &str = "The history of computing is a story of people trying to make \
machines that help them think. Early calculators moved gears and levers; later machines used \
relays, then vacuum tubes, then transistors printed by the million onto slices of silicon. Each \
step made computers smaller, cheaper and faster, and each step changed who could use them. ";

fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn run(a: BenchArgs) -> Result<(), String> {
    let loaded = load(&a.common)?;
    let mut engine = loaded.engine;
    let mut ids = Vec::new();
    if engine.info().add_bos {
        ids.extend(engine.info().bos_token);
    }
    while ids.len() < a.prompt_tokens {
        ids.extend(engine.tokenize(BENCH_TEXT).map_err(|e| e.to_string())?);
    }
    ids.truncate(a.prompt_tokens.max(1));
    let req = GenerateRequest {
        max_tokens: a.gen_tokens + 1,
        ignore_eos: true,
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        ..GenerateRequest::default()
    };
    let mut run_once = |gen: usize| -> Result<(f64, f64), String> {
        let mut req = req.clone();
        req.max_tokens = gen + 1;
        let t0 = Instant::now();
        let mut g = engine
            .start_with_ids(ids.clone(), &req)
            .map_err(|e| e.to_string())?;
        let prefill = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        while engine.step(&mut g).map_err(|e| e.to_string())?.is_some() {}
        Ok((prefill, t1.elapsed().as_secs_f64()))
    };
    run_once(4)?; // warm-up: first-touch of weights, allocator growth
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..a.repetitions.max(1) {
        let (p, d) = run_once(a.gen_tokens)?;
        best = (best.0.min(p), best.1.min(d));
    }
    let prefill_tps = ids.len() as f64 / best.0;
    let decode_tps = a.gen_tokens as f64 / best.1;
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    let v = json!({
        "engine": "tinylab-native",
        "model": a.common.model.display().to_string(),
        "file_bytes": loaded.file_bytes,
        "threads": threads,
        "prompt_tokens": ids.len(),
        "gen_tokens": a.gen_tokens,
        "load_ms": loaded.load_seconds * 1000.0,
        "prefill_tokens_per_s": prefill_tps,
        "decode_tokens_per_s": decode_tps,
        "time_to_first_token_ms": best.0 * 1000.0,
        "peak_memory_bytes": peak_rss_bytes(),
    });
    if a.common.json {
        print_json(&v)
    } else {
        println!(
            "prefill {prefill_tps:.1} tok/s  decode {decode_tps:.1} tok/s  load {:.0} ms  peak {} MB",
            loaded.load_seconds * 1000.0,
            peak_rss_bytes().map(|b| b / (1 << 20)).unwrap_or(0)
        );
        Ok(())
    }
}
