//! The benchmark's fixed workload, shared by the CLI (`tinylab bench`) and the page's worker so
//! both builds do exactly the same work: a prompt of `prompt_tokens` tokens cut from a fixed
//! English passage, a warm-up, then prefill and `gen_tokens` greedy decode steps with EOS
//! ignored. The caller supplies the clock (`Instant` natively, `performance.now()` in wasm).

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, GenerateRequest, Result, SamplingParams};
use crate::timed_run::TimedRun;

/// A fixed English passage, repeated as needed and cut to the requested token count.
pub const BENCH_TEXT: &str = "The history of computing is a story of people trying to make \
machines that help them think. Early calculators moved gears and levers; later machines used \
relays, then vacuum tubes, then transistors printed by the million onto slices of silicon. Each \
step made computers smaller, cheaper and faster, and each step changed who could use them. ";

/// The benchmark prompt: BOS when the model adds one, then the passage, cut to `n` tokens.
pub fn prompt_ids(engine: &Engine, n: usize) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    if engine.info().add_bos {
        ids.extend(engine.info().bos_token);
    }
    while ids.len() < n {
        ids.extend(engine.tokenize(BENCH_TEXT)?);
    }
    ids.truncate(n.max(1));
    Ok(ids)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub prompt_tokens: usize,
    pub gen_tokens: usize,
    /// Best of the repetitions, timed with the profile's clock off.
    pub prefill_ms: f64,
    pub decode_ms: f64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    /// Forward passes in the reported decode (`timed_run::Timing::decode_forwards`).
    #[serde(default)]
    pub decode_forwards: usize,
    /// Share of the decode time spent in weight products (`engine::profile`), when a clock
    /// was installed. This and the other shares come from one more run of the workload,
    /// profiled (the timed ones are not).
    #[serde(default)]
    pub decode_product_share: Option<f64>,
    /// Share of the pool's work items that helper threads ran during decoding (none on one
    /// thread): near 1/threads when the helpers keep up.
    #[serde(default)]
    pub decode_helper_share: Option<f64>,
    /// Share of the decode time in products, by weight type, largest first.
    #[serde(default)]
    pub decode_share_by_type: Vec<(String, f64)>,
    /// Where the profiled run's prefill time went: weight products, then each other phase
    /// (`profile::time_phase`), then what no phase covers, as shares of the prefill time.
    #[serde(default)]
    pub prefill_share_by_phase: Vec<(String, f64)>,
    /// The same for the reported decode.
    #[serde(default)]
    pub decode_share_by_phase: Vec<(String, f64)>,
    /// The same prefill's products by weight type, as shares of the prefill time.
    #[serde(default)]
    pub prefill_share_by_type: Vec<(String, f64)>,
    /// Evaluation throughput (name-index, `EVAL_ITEMS` items), asked once and twice.
    #[serde(default)]
    pub eval: Option<EvalSpeed>,
    /// The profiled run's decode speed (none without a clock): beside `decode_tokens_per_s`,
    /// what reading the profile's clock costs.
    #[serde(default)]
    pub profiled_decode_tokens_per_s: Option<f64>,
    /// The KV cache's heap after the timed generation, the workload's longest context: what
    /// the heap may hold beyond the model itself.
    #[serde(default)]
    pub kv_cache_bytes: usize,
    /// With helper threads: decoding at one thread and at all of them, interleaved in one run
    /// (`interleaved`).
    #[serde(default)]
    pub decode_threads_interleaved: Option<Interleaved>,
}

/// Decoding at one thread against decoding at `threads`, measured in the same runs: each round
/// prefills the prompt, then decodes `block_tokens` tokens at one thread, two blocks at
/// `threads`, and one more at one thread (ABBA, so that the positions' growing cost falls
/// alike on both). Separate runs a minute apart see a shared VM's memory at different speeds
/// (a plain read of memory moved by up to 2× between runs here); blocks a fraction of a
/// second apart see it at nearly the same speed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interleaved {
    pub threads: usize,
    pub block_tokens: usize,
    /// Per round, the one-thread blocks' time over the `threads` blocks' time.
    pub ratios: Vec<f64>,
    /// The median of `ratios`.
    pub ratio_median: f64,
    pub one_thread_tokens_per_s: f64,
    pub threads_tokens_per_s: f64,
}

/// Rounds and tokens per block of `interleaved`: 32 positions past the prompt, as many as the
/// timed runs' first half.
pub const INTERLEAVED_ROUNDS: usize = 6;
pub const INTERLEAVED_BLOCK: usize = 8;

/// `Interleaved` for the pool's current thread count; `None` on one thread. The cap is set
/// back to what it was, whatever happens.
pub fn interleaved(
    engine: &mut Engine,
    ids: &[u32],
    rounds: usize,
    block_tokens: usize,
    now_ms: &dyn Fn() -> f64,
) -> Result<Option<Interleaved>> {
    use crate::engine::parallel;
    let threads = parallel::threads();
    if threads < 2 || rounds == 0 || block_tokens == 0 {
        return Ok(None);
    }
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            parallel::set_threads(self.0);
        }
    }
    let _restore = Restore(parallel::wanted_threads());
    let req = GenerateRequest {
        // Each timed step makes one forward pass; the one after the last block is not taken.
        max_tokens: 4 * block_tokens + 1,
        ignore_eos: true,
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        ..GenerateRequest::default()
    };
    let mut ratios = Vec::with_capacity(rounds);
    let (mut one_ms, mut many_ms) = (0.0, 0.0);
    let (mut one_tokens, mut many_tokens) = (0, 0);
    for _ in 0..rounds {
        parallel::set_threads(threads);
        let mut run = TimedRun::start_with_ids(engine, ids.to_vec(), &req, now_ms)?;
        // Per block, its decode time and forward passes (`TimedRun`'s own count).
        let mut blocks = [(0.0, 0); 4];
        for (block, n) in blocks.iter_mut().zip([1, threads, threads, 1]) {
            parallel::set_threads(n);
            let before = *run.timing();
            for _ in 0..block_tokens {
                run.step(engine)?;
            }
            let after = run.timing();
            *block = (
                after.decode_ms - before.decode_ms,
                after.decode_forwards - before.decode_forwards,
            );
        }
        // A short block would leave the ABBA order lopsided (and an empty one no time per
        // token at all): the run ended early, for lack of context.
        if blocks.iter().any(|b| b.1 != block_tokens) {
            return Err(crate::engine::EngineError::InvalidInput(
                "the interleaved benchmark's run ended before its blocks".into(),
            ));
        }
        let [a, b, c, d] = blocks;
        let ((one, n1), (many, n2)) = ((a.0 + d.0, a.1 + d.1), (b.0 + c.0, b.1 + c.1));
        ratios.push((one / n1 as f64) / (many / n2 as f64).max(1e-9));
        one_ms += one;
        many_ms += many;
        (one_tokens, many_tokens) = (one_tokens + n1, many_tokens + n2);
    }
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let ratio_median = (sorted[(rounds - 1) / 2] + sorted[rounds / 2]) / 2.0;
    Ok(Some(Interleaved {
        threads,
        block_tokens,
        ratios,
        ratio_median,
        one_thread_tokens_per_s: one_tokens as f64 * 1000.0 / one_ms.max(1e-9),
        threads_tokens_per_s: many_tokens as f64 * 1000.0 / many_ms.max(1e-9),
    }))
}

/// Items of the evaluation part of the workload.
pub const EVAL_ITEMS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalSpeed {
    pub items_per_s_baseline: f64,
    pub items_per_s_repeat_2: f64,
    /// Positions run through the model for both conditions, and without sharing each item's
    /// context among its choices.
    pub forward_tokens: usize,
    pub forward_tokens_without_sharing: usize,
}

/// Name-index items per second, the query once and twice: evaluation is prefill-bound, and
/// this is the figure a user of the Evaluate tab waits on.
/// `None` where the items do not fit the positions the engine holds (a small `--context`):
/// the speed figures do not need them.
pub fn eval_speed(engine: &mut Engine, now_ms: &dyn Fn() -> f64) -> Result<Option<EvalSpeed>> {
    use crate::eval::{check_item, score_item, tasks, Condition};
    let items = tasks::TaskSpec::new(tasks::Task::NameIndex, EVAL_ITEMS, 1)
        .generate()
        .map_err(crate::engine::EngineError::InvalidInput)?;
    let conditions = [1, 2].map(|repeat| Condition {
        repeat,
        ..Condition::default()
    });
    let fits = items
        .iter()
        .enumerate()
        .all(|(i, item)| check_item(engine, i, item, &conditions, None).is_ok());
    if !fits {
        return Ok(None);
    }
    let mut rates = [0.0; 2];
    let (mut forward, mut unshared) = (0, 0);
    for (k, c) in conditions.iter().enumerate() {
        let t0 = now_ms();
        for (i, item) in items.iter().enumerate() {
            let r = score_item(engine, i, item, c)?;
            forward += r.forward_tokens;
            unshared += r.forward_tokens_without_sharing;
        }
        rates[k] = items.len() as f64 * 1000.0 / (now_ms() - t0).max(1e-9);
    }
    Ok(Some(EvalSpeed {
        items_per_s_baseline: rates[0],
        items_per_s_repeat_2: rates[1],
        forward_tokens: forward,
        forward_tokens_without_sharing: unshared,
    }))
}

/// Runs the workload: a 4-token warm-up, then `repetitions` timed runs (best kept), then,
/// when a profile clock is installed, one profiled run for the shares.
pub fn run(
    engine: &mut Engine,
    ids: &[u32],
    gen_tokens: usize,
    repetitions: usize,
    now_ms: &dyn Fn() -> f64,
) -> Result<Figures> {
    if gen_tokens == 0 || repetitions == 0 {
        // Decoding speed and its shares are per generated token: there would be nothing to
        // divide by.
        return Err(crate::engine::EngineError::InvalidInput(format!(
            "the benchmark needs at least 1 generated token and 1 repetition \
             (got {gen_tokens} and {repetitions})"
        )));
    }
    // A run draws one token past the timed ones, and the prompt and every token drawn hold a
    // position each: with one fewer, the last timed step never ran and decoding read 0 tok/s.
    let cap = engine.info().max_positions;
    let needed = ids.len().saturating_add(gen_tokens).saturating_add(1);
    if needed > cap {
        return Err(crate::engine::EngineError::InvalidInput(format!(
            "{} prompt tokens and {gen_tokens} generated need {needed} positions (one token is \
             drawn past the timed ones); the context holds {cap}",
            ids.len()
        )));
    }
    let mut helper_share = None;
    let mut kv_cache_bytes = 0;
    let mut once = |engine: &mut Engine, gen: usize| -> Result<Run> {
        let req = GenerateRequest {
            // One more than timed: the last step of a run makes no forward pass.
            max_tokens: gen + 1,
            ignore_eos: true,
            sampling: SamplingParams {
                temperature: 0.0,
                ..SamplingParams::default()
            },
            ..GenerateRequest::default()
        };
        let before = Totals::now();
        let mut run = TimedRun::start_with_ids(engine, ids.to_vec(), &req, now_ms)?;
        let prefill_ms = run.timing().prefill_ms.max(1e-9);
        let (prefill_phases, prefill_types) = before.shares(prefill_ms);
        let before = Totals::now();
        let (all1, helpers1) = crate::engine::parallel::item_counts();
        while run.step(engine)?.is_some() {}
        let timing = *run.timing();
        kv_cache_bytes = kv_cache_bytes.max(engine.kv_cache_bytes());
        let decode_ms = timing.decode_ms.max(1e-9);
        let (all2, helpers2) = crate::engine::parallel::item_counts();
        helper_share = (all2 > all1).then(|| (helpers2 - helpers1) as f64 / (all2 - all1) as f64);
        let (decode_phases, decode_types) = before.shares(decode_ms);
        Ok(Run {
            prefill_ms: timing.prefill_ms,
            decode_ms: timing.decode_ms,
            passes: timing.decode_forwards,
            prefill_phases,
            prefill_types,
            decode_phases,
            decode_types,
        })
    };
    // Timed with the profile's clock off: its readings (about a thousand per decoded token,
    // each a call out of wasm in the browser) are no part of what a user's run costs. One more
    // run, profiled, gives the shares.
    let profiled = crate::engine::profile::enabled();
    struct ClockBackOn;
    impl Drop for ClockBackOn {
        fn drop(&mut self) {
            crate::engine::profile::set_on(true);
        }
    }
    let clock_back_on = ClockBackOn;
    crate::engine::profile::set_on(false);
    once(engine, 4)?;
    let mut best_prefill: Option<Run> = None;
    let mut best_decode: Option<Run> = None;
    for _ in 0..repetitions {
        let r = once(engine, gen_tokens)?;
        if best_prefill
            .as_ref()
            .is_none_or(|b| r.prefill_ms < b.prefill_ms)
        {
            best_prefill = Some(r.clone());
        }
        if best_decode
            .as_ref()
            .is_none_or(|b| r.decode_ms < b.decode_ms)
        {
            best_decode = Some(r);
        }
    }
    let (Some(p), Some(d)) = (best_prefill, best_decode) else {
        unreachable!("at least one repetition ran");
    };
    let eval = eval_speed(engine, now_ms)?;
    // The comparison decodes its own blocks past the prompt, whatever `gen_tokens` is; where
    // they do not fit, the figures asked for still come out, without it.
    let decode_threads_interleaved =
        if ids.len() + 4 * INTERLEAVED_BLOCK < engine.info().max_positions {
            interleaved(engine, ids, INTERLEAVED_ROUNDS, INTERLEAVED_BLOCK, now_ms)?
        } else {
            None
        };
    drop(clock_back_on);
    let shares = if profiled {
        Some(once(engine, gen_tokens)?)
    } else {
        None
    };
    let profiled_decode_tokens_per_s = shares
        .as_ref()
        .map(|s| s.passes as f64 * 1000.0 / s.decode_ms.max(1e-9));
    let shares = shares.unwrap_or_else(|| d.clone());
    let product_share = shares
        .decode_phases
        .iter()
        .find(|(k, _)| k == "products")
        .map(|x| x.1)
        .filter(|&share| share > 0.0);
    Ok(Figures {
        prompt_tokens: ids.len(),
        gen_tokens,
        prefill_ms: p.prefill_ms,
        decode_ms: d.decode_ms,
        prefill_tokens_per_s: ids.len() as f64 * 1000.0 / p.prefill_ms.max(1e-9),
        decode_tokens_per_s: d.passes as f64 * 1000.0 / d.decode_ms.max(1e-9),
        decode_forwards: d.passes,
        decode_product_share: product_share,
        decode_helper_share: helper_share,
        decode_share_by_type: shares.decode_types,
        decode_share_by_phase: shares.decode_phases,
        prefill_share_by_phase: shares.prefill_phases,
        prefill_share_by_type: shares.prefill_types,
        eval,
        profiled_decode_tokens_per_s,
        kv_cache_bytes,
        decode_threads_interleaved,
    })
}

/// One timed generation: its prefill and its decode, and where each one's time went.
#[derive(Clone)]
struct Run {
    prefill_ms: f64,
    decode_ms: f64,
    passes: usize,
    prefill_phases: Vec<(String, f64)>,
    prefill_types: Vec<(String, f64)>,
    decode_phases: Vec<(String, f64)>,
    decode_types: Vec<(String, f64)>,
}

/// `engine::profile`'s running totals at one moment.
struct Totals {
    products: f64,
    phases: Vec<(&'static str, f64)>,
    types: Vec<(&'static str, f64)>,
}

impl Totals {
    fn now() -> Self {
        Totals {
            products: crate::engine::profile::product_ms(),
            phases: crate::engine::profile::phase_ms(),
            types: crate::engine::profile::product_ms_by_type(),
        }
    }

    /// Since this moment, as shares of `elapsed_ms`: weight products, then each phase
    /// (`profile::time_phase`), then what no phase covers (empty without a clock); and the
    /// products by weight type.
    #[allow(clippy::type_complexity)]
    fn shares(&self, elapsed_ms: f64) -> (Vec<(String, f64)>, Vec<(String, f64)>) {
        let mut phases = Vec::new();
        if crate::engine::profile::enabled() {
            phases.push((
                "products".to_string(),
                (crate::engine::profile::product_ms() - self.products) / elapsed_ms,
            ));
            phases.extend(shares_since(
                &self.phases,
                crate::engine::profile::phase_ms(),
                elapsed_ms,
            ));
            let covered: f64 = phases.iter().map(|p| p.1).sum();
            phases.push(("other".to_string(), (1.0 - covered).max(0.0)));
        }
        (phases, shares_by_type(&self.types, elapsed_ms))
    }
}

/// What each weight type's products took since `before`, as shares of `elapsed_ms`.
fn shares_by_type(before: &[(&'static str, f64)], elapsed_ms: f64) -> Vec<(String, f64)> {
    shares_since(
        before,
        crate::engine::profile::product_ms_by_type(),
        elapsed_ms,
    )
}

/// The growth of each named total from `before` to `now`, as shares of `elapsed_ms`, largest
/// first.
fn shares_since(
    before: &[(&'static str, f64)],
    now: Vec<(&'static str, f64)>,
    elapsed_ms: f64,
) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = now
        .into_iter()
        .map(|(k, ms)| {
            let was = before.iter().find(|(b, _)| *b == k).map_or(0.0, |b| b.1);
            (k.to_string(), (ms - was) / elapsed_ms)
        })
        .filter(|(_, share)| *share > 0.0)
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}
