//! Native speed of the engine, measured the way the benchmark issue asks: a fixed prompt of
//! `prompt_tokens` tokens, a warm-up, then prefill and `gen_tokens` greedy decode steps with EOS
//! ignored.

use std::time::Instant;

use clap::Args;
use serde_json::json;
use tinylab::bench;

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

fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A capture-free clock for `engine::profile`.
fn profile_clock_ms() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

/// Most timed repetitions (each is a whole prefill and decode).
const MAX_REPETITIONS: usize = 1000;

pub fn run(a: BenchArgs) -> Result<(), String> {
    if !(1..=MAX_REPETITIONS).contains(&a.repetitions) {
        return Err(format!(
            "--repetitions is {}; give 1 to {MAX_REPETITIONS}",
            a.repetitions
        ));
    }
    for (n, flag) in [
        (a.prompt_tokens, "--prompt-tokens"),
        (a.gen_tokens, "--gen-tokens"),
    ] {
        if n == 0 {
            return Err(format!("{flag} is 0; give at least 1"));
        }
    }
    let loaded = load(&a.common)?;
    let mut engine = loaded.engine;
    let info = engine.info();
    // Raising --context helps only up to the model's own length.
    let advice = if info.max_positions < info.context_length {
        format!(
            "raise --context (this model takes up to {}) or lower --prompt-tokens / --gen-tokens",
            info.context_length
        )
    } else {
        "lower --prompt-tokens / --gen-tokens: that is this model's own length".to_string()
    };
    // The decode figures are per token decoded: a run cut short by the context would report
    // tokens it never made. Checked before the prompt is made too (it is built token by
    // token, and a trillion would never end).
    let cap = engine.info().max_positions;
    // One token is drawn past the timed ones (`bench::run`).
    let asked = a
        .prompt_tokens
        .saturating_add(a.gen_tokens)
        .saturating_add(1);
    if asked > cap {
        return Err(format!(
            "{} prompt tokens and {} generated need {asked} positions (one token is drawn past \
             the timed ones); the context holds {cap} ({advice})",
            a.prompt_tokens, a.gen_tokens
        ));
    }
    let ids = bench::prompt_ids(&engine, a.prompt_tokens).map_err(|e| e.to_string())?;
    if ids.len() + a.gen_tokens + 1 > cap {
        return Err(format!(
            "{} prompt tokens and {} generated need {} positions (one token is drawn past the \
             timed ones); the context holds {cap} ({advice})",
            ids.len(),
            a.gen_tokens,
            ids.len() + a.gen_tokens + 1
        ));
    }
    let clock = Instant::now();
    let now_ms = || clock.elapsed().as_secs_f64() * 1000.0;
    tinylab::engine::profile::set_clock(profile_clock_ms);
    let f = bench::run(&mut engine, &ids, a.gen_tokens, a.repetitions, &now_ms)
        .map_err(|e| e.to_string())?;
    let (prefill_tps, decode_tps) = (f.prefill_tokens_per_s, f.decode_tokens_per_s);
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
        "profiled_decode_tokens_per_s": f.profiled_decode_tokens_per_s,
        "time_to_first_token_ms": f.prefill_ms,
        "peak_memory_bytes": peak_rss_bytes(),
        "decode_product_share": f.decode_product_share,
        "decode_share_by_type": f.decode_share_by_type,
        "decode_share_by_phase": f.decode_share_by_phase,
        "prefill_share_by_phase": f.prefill_share_by_phase,
        "prefill_share_by_type": f.prefill_share_by_type,
        "eval": f.eval,
    });
    if a.common.json {
        print_json(&v)
    } else {
        let mut lines = format!(
            "prefill {prefill_tps:.1} tok/s  decode {decode_tps:.1} tok/s  load {:.0} ms  peak {} \
             MB\n",
            loaded.load_seconds * 1000.0,
            peak_rss_bytes().map(|b| b / (1 << 20)).unwrap_or(0)
        );
        if let Some(e) = f.eval {
            lines += &format!(
                "eval (name-index): {:.2} items/s asked once, {:.2} twice; {} forward tokens, \
                 {} without sharing the context\n",
                e.items_per_s_baseline,
                e.items_per_s_repeat_2,
                e.forward_tokens,
                e.forward_tokens_without_sharing
            );
        }
        super::write_out(&lines)
    }
}
