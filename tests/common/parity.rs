//! The engine's numbers against llama.cpp's fixtures, shared by the real-model parity tests
//! (`llama_parity.rs`) and the tiny-model ones (`tiny_parity.rs`): tokenization, greedy ids up
//! to a near tie, per-token entropy and surprisal, and a scored paragraph, each within
//! llama.cpp's own noise floor as the fixture records it.

use serde_json::Value;
use tinylab::engine::model::Kernels;
use tinylab::engine::{Engine, GenerateRequest, SamplingParams};

use super::{floats, ids};

/// Per-token tolerance, as a multiple of llama.cpp's own batch-vs-single spread on the same
/// paragraph (stored in each fixture). 2x, not 1.5x, since weights without a fast kernel are
/// requantized to Q8_0 at load (`model::weight_matmul`): that moved SmolLM2's surprisal MAE
/// from 0.075 to 0.094 nats (llama.cpp's spread: 0.060) while its perplexity gap fell from 1.82%
/// to 0.40%, and made prefill 2.4x faster. See issue 6's note.
pub const NOISE_FACTOR: f64 = 2.0;

/// How a model was loaded for a check, and the tolerance that follows from it.
#[derive(Clone, Copy)]
pub struct Weights {
    /// The build whose weight preparation was used (`Kernels::requantizes`).
    pub kernels: Kernels,
    /// Times llama.cpp's own spread allowed (`NOISE_FACTOR` unless a caller says why not).
    pub noise_factor: f64,
    /// The least perplexity gap allowed (`PERPLEXITY_TOLERANCE` unless a caller says why not).
    pub perplexity_floor: f64,
}

impl Weights {
    pub fn of(kernels: Kernels) -> Self {
        Weights {
            kernels,
            noise_factor: NOISE_FACTOR,
            perplexity_floor: PERPLEXITY_TOLERANCE,
        }
    }
}
/// Perplexity of the scored paragraph, relative to llama.cpp's: 1%, or what rounding alone can
/// move it by, whichever is wider (`perplexity_limit`).
pub const PERPLEXITY_TOLERANCE: f64 = 0.01;

/// How far rounding alone can move the paragraph's perplexity. Perplexity is exp(mean
/// surprisal), and with 8-bit activations in every product a change of summation order moves
/// each token's surprisal by about llama.cpp's own batch-vs-single spread (mean absolute
/// difference `noise`, 0.04-0.09 nats): replacing candle's `gemm` in attention alone moved
/// SmolLM2's surprisals by 0.089 on average, Gemma 3's perplexity by 2.6% (issue 11). The mean
/// of `n` such differences has a standard error of about 1.25·noise/√n (1.25 ≈ √(π/2), the
/// ratio of a normal spread's deviation to its mean absolute value); three of those is the
/// bound. On the 96-token paragraph: 2.3% for SmolLM2, 3.5% for Gemma 3, 1.4% for Qwen2.5.
fn perplexity_limit(noise: f64, n: usize, floor: f64) -> f64 {
    let bound = 3.0 * 1.2533 * noise / (n.max(1) as f64).sqrt();
    floor.max(bound.exp() - 1.0)
}

/// llama.cpp's own spread on the scored paragraph, the widest of those the fixture records:
/// batch against one token at a time (`self_noise`), and F32 against F16 KV cache
/// (`kv_f16_noise`, in fixtures written since the tiny models). On a tiny model batch and
/// single take the same kernels and agree to the bit, so only the cache's rounding shows
/// llama.cpp's sensitivity there.
fn llama_spread(score: &Value, what: &str) -> f64 {
    ["self_noise", "kv_f16_noise"]
        .iter()
        .filter_map(|k| score[k][what].as_f64())
        .fold(0.0, f64::max)
}

pub fn tokenization_matches(id: &str, engine: &Engine, fx: &Value) {
    let mut failures = Vec::new();
    for case in fx["tokenize"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["ids"]);
        let got = engine.tokenize(text).unwrap();
        if got != want {
            failures.push(format!(
                "{text:?}\n  llama.cpp {want:?}\n  tinylab   {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{id}: tokenization differs:\n{}",
        failures.join("\n")
    );
    for case in fx["chat"].as_array().unwrap() {
        let got = engine
            .prompt_ids(case["prompt"].as_str().unwrap(), true, false)
            .unwrap();
        assert_eq!(
            got,
            ids(&case["prompt_ids"]),
            "{id}: chat prompt ids differ"
        );
    }
}

/// Logit gap (nats) under which two correct engines may pick different greedy tokens.
/// llama.cpp disagrees with itself at such points: the same prompt and model give other greedy
/// ids with its default F16 KV cache than with an F32 one, or when the prompt is fed one token
/// at a time (SmolLM2 "The three primary colors are" parts at token 8, where the gap is 0.002);
/// its own per-token surprisal moves by up to 0.35 nats between those runs (fixture
/// `self_noise.surprisal_max`). The gap allowed is that model's own largest move, at least
/// 0.25: a rounding change alone (issue 11: candle's `gemm` out of attention) moved Gemma 3's
/// token 10 of a story prompt by 0.28 nats; a real bug shows up at a clear choice instead.
const NEAR_TIE: f64 = 0.25;

fn near_tie(fx: &Value) -> f64 {
    NEAR_TIE.max(llama_spread(&fx["score"], "surprisal_max"))
}

/// Greedy ids must equal llama.cpp's exactly up to the first near tie; at that point ours must
/// be one of the tokens llama.cpp itself rated within `near_tie` of its choice. Later tokens follow a different context and are not compared.
/// Entropy and surprisal over the compared tokens must agree within the noise-floor limit.
pub fn greedy_matches(id: &str, engine: &mut Engine, fx: &Value, weights: Weights) {
    let kernels = weights.kernels;
    let mut exact_total = 0;
    let mut compared_total = 0;
    // Absolute differences over every prompt's compared tokens, judged together: a prompt that
    // parts at token 5 gives six values, too few for a mean to mean much.
    let mut ent_diffs = Vec::new();
    let mut sur_diffs = Vec::new();
    for case in fx["greedy"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let want_prompt = ids(&case["prompt_ids"]);
        assert_eq!(
            engine.prompt_ids(prompt, false, false).unwrap(),
            want_prompt,
            "{id}: prompt ids for {prompt:?}"
        );
        let want = ids(&case["ids"]);
        let margin = floats(&case["margin"]);
        let tie = near_tie(fx);
        // Per step: the other ids whose logit came within 0.5 of llama.cpp's choice, with gaps.
        let close = case["close"].as_array().unwrap();
        let gap_of = |k: usize, id: u32| -> Option<f64> {
            close[k].as_array()?.iter().find_map(|pair| {
                (pair[0].as_u64()? as u32 == id)
                    .then(|| pair[1].as_f64())
                    .flatten()
            })
        };
        let req = GenerateRequest {
            prompt: prompt.to_string(),
            max_tokens: want.len().max(1),
            sampling: SamplingParams {
                temperature: 0.0,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut g = engine.start(&req).unwrap();
        let mut got = Vec::new();
        let mut ent = Vec::new();
        let mut sur = Vec::new();
        while let Some(t) = engine.step(&mut g).unwrap() {
            got.push(t.id);
            ent.push(t.entropy);
            sur.push(t.surprisal);
        }
        let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
        let same = match first_diff {
            None => {
                assert_eq!(
                    got.len(),
                    want.len(),
                    "{id}: {prompt:?} stopped at another place"
                );
                want.len()
            }
            Some(k) => {
                let gap = gap_of(k, got[k]);
                assert!(
                    gap.is_some_and(|g| g < tie),
                    "{id}: greedy ids for {prompt:?} part at token {k} where llama.cpp's choice \
                     was clear (ours {} is {gap:?} nats behind llama.cpp's {})\n  llama.cpp {want:?}\n  tinylab   {got:?}",
                    got[k], want[k]
                );
                k
            }
        };
        exact_total += same;
        compared_total += want.len();
        let mae = |a: &[f64], b: &[f64]| {
            a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len().max(1) as f64
        };
        // Up to and including the first parting, both engines saw the same context.
        let upto = (same + 1).min(got.len()).min(want.len());
        let e = mae(&ent[..upto], &floats(&case["entropy"])[..upto]);
        let s = mae(&sur[..upto], &floats(&case["surprisal"])[..upto]);
        let diffs = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .collect::<Vec<_>>()
        };
        ent_diffs.extend(diffs(&ent[..upto], &floats(&case["entropy"])[..upto]));
        sur_diffs.extend(diffs(&sur[..upto], &floats(&case["surprisal"])[..upto]));
        eprintln!(
            "{id} ({kernels:?} weights) {prompt:?}: {same}/{} ids exact{}; entropy MAE {e:.4}, surprisal MAE {s:.4}",
            want.len(),
            first_diff
                .map(|k| format!(" (near tie at {k}, gap {:.3})", margin[k]))
                .unwrap_or_default()
        );
    }
    eprintln!("{id}: {exact_total}/{compared_total} greedy ids exact before a near tie");
    // Same noise-floor rule as scoring, below, over all prompts' compared tokens.
    let limit = (weights.noise_factor * llama_spread(&fx["score"], "surprisal_mae")).max(0.05);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (e, s) = (mean(&ent_diffs), mean(&sur_diffs));
    eprintln!(
        "{id} ({kernels:?} weights): over {} compared tokens, entropy MAE {e:.4}, surprisal MAE {s:.4} (limit {limit:.4})",
        sur_diffs.len()
    );
    assert!(e < limit, "{id}: entropy mean abs diff {e}");
    assert!(s < limit, "{id}: surprisal mean abs diff {s}");
}

/// Scoring a paragraph against llama.cpp. The tolerance is llama.cpp's own noise floor, stored
/// in the fixture: the same text fed in one batch versus one token at a time gives surprisals
/// that differ by 0.04-0.09 nats on average (activations are quantised to 8 bits in every
/// matrix product, and other kernels round differently). We allow `noise_factor` times that, at least
/// 0.05; perplexity within `PERPLEXITY_TOLERANCE`; GLTR buckets equal for 90% of tokens.
pub fn scoring_matches(id: &str, engine: &mut Engine, fx: &Value, weights: Weights) {
    let kernels = weights.kernels;
    let fx = &fx["score"];
    let r = engine.score(fx["text"].as_str().unwrap(), 1024).unwrap();
    assert_eq!(r.ids, ids(&fx["ids"]), "{id}: score ids");
    let want_s = floats(&fx["surprisal"]);
    let want_e = floats(&fx["entropy"]);
    assert_eq!(r.tokens.len(), want_s.len());
    let n = want_s.len() as f64;
    let diffs: Vec<f64> = r
        .tokens
        .iter()
        .zip(&want_s)
        .map(|(t, w)| (t.surprisal - w).abs())
        .collect();
    let s_mae = diffs.iter().sum::<f64>() / n;
    let s_max = diffs.iter().copied().fold(0.0, f64::max);
    let e_mae = r
        .tokens
        .iter()
        .zip(&want_e)
        .map(|(t, w)| (t.entropy - w).abs())
        .sum::<f64>()
        / n;
    let want_ppl = fx["perplexity"].as_f64().unwrap();
    let ppl_rel = (r.summary.perplexity - want_ppl).abs() / want_ppl;
    let noise = llama_spread(fx, "surprisal_mae");
    let bucket = |r: u64| match r {
        0..=9 => 0,
        10..=99 => 1,
        100..=999 => 2,
        _ => 3,
    };
    let buckets_equal = r
        .tokens
        .iter()
        .zip(fx["rank"].as_array().unwrap())
        .filter(|(t, w)| bucket(t.rank as u64) == bucket(w.as_u64().unwrap()))
        .count();
    eprintln!(
        "{id} ({kernels:?} weights): surprisal MAE {s_mae:.4} (max {s_max:.3}; llama.cpp's own spread {noise:.4}), \
         entropy MAE {e_mae:.4}, perplexity {:.3} vs {want_ppl:.3} ({:.2}%), GLTR buckets equal \
         {buckets_equal}/{}",
        r.summary.perplexity,
        ppl_rel * 100.0,
        want_s.len()
    );
    let ppl_limit = perplexity_limit(noise, want_s.len(), weights.perplexity_floor);
    let limit = (weights.noise_factor * noise).max(0.05);
    assert!(s_mae < limit, "{id}: surprisal MAE {s_mae} over {limit}");
    assert!(e_mae < limit, "{id}: entropy MAE {e_mae} over {limit}");
    assert!(
        ppl_rel < ppl_limit,
        "{id}: perplexity off by {:.3}% (limit {:.2}%)",
        ppl_rel * 100.0,
        ppl_limit * 100.0
    );
    assert!(
        buckets_equal as f64 >= 0.9 * n,
        "{id}: only {buckets_equal} GLTR buckets equal"
    );
}

/// Mean absolute difference of two surprisal sequences, and their perplexities' relative gap.
fn distance(a: &[f64], b: &[f64]) -> (f64, f64) {
    let n = a.len().max(1) as f64;
    let mae = a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / n;
    let ppl = |s: &[f64]| (s.iter().sum::<f64>() / n).exp();
    let (pa, pb) = (ppl(a), ppl(b));
    (mae, (pa - pb).abs() / pb)
}

/// Fidelity on held-out text (the fixture's `fidelity`): the engine's per-token surprisal is
/// no farther from the nearest of llama.cpp's configurations (F32 or F16 KV cache, one batch or
/// one token at a time) than those configurations are from each other, in mean absolute
/// difference (no factor: llama.cpp's own spread is the whole allowance) and in perplexity
/// (that spread, or what rounding alone can move a mean of this many tokens by).
/// Returns (nearest MAE, spread MAE, nearest perplexity gap, spread perplexity gap).
pub fn fidelity_holds(id: &str, engine: &mut Engine, fx: &Value, kernels: Kernels) -> [f64; 4] {
    let fx = &fx["fidelity"];
    let r = engine.score(fx["text"].as_str().unwrap(), 1024).unwrap();
    assert_eq!(r.ids, ids(&fx["ids"]), "{id}: fidelity ids");
    let ours: Vec<f64> = r.tokens.iter().map(|t| t.surprisal).collect();
    let configs: Vec<(&String, Vec<f64>)> = fx["surprisal"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k, floats(v)))
        .collect();
    assert!(
        configs.len() >= 2,
        "{id}: the fixture has too few configurations"
    );
    let mut spread = (0f64, 0f64);
    for (i, (_, a)) in configs.iter().enumerate() {
        assert_eq!(a.len(), ours.len(), "{id}: fidelity lengths");
        for (_, b) in &configs[i + 1..] {
            let (m, p) = distance(a, b);
            let (m2, p2) = distance(b, a);
            spread = (spread.0.max(m).max(m2), spread.1.max(p).max(p2));
        }
    }
    let mut near = (f64::MAX, f64::MAX, "", "");
    for (name, c) in &configs {
        let (m, p) = distance(&ours, c);
        if m < near.0 {
            (near.0, near.2) = (m, name.as_str());
        }
        if p < near.1 {
            (near.1, near.3) = (p, name.as_str());
        }
    }
    eprintln!(
        "{id} ({kernels:?} weights) fidelity: surprisal MAE to the nearest llama.cpp configuration \
         {:.4} ({}), between configurations up to {:.4}; perplexity {:.2}% from the nearest ({}), \
         between configurations up to {:.2}%",
        near.0,
        near.2,
        spread.0,
        near.1 * 100.0,
        near.3,
        spread.1 * 100.0
    );
    assert!(
        near.0 <= spread.0,
        "{id} ({kernels:?}): surprisal MAE {:.4} to the nearest llama.cpp configuration ({}) is over \
         their own spread {:.4}",
        near.0,
        near.2,
        spread.0
    );
    // Perplexity is exp(mean surprisal), and on 90 tokens the mean moves with rounding alone:
    // changing only the order in which the native Q4_1 kernel sums its eight lanes moved
    // SmolLM2's gap from 0.65% to 1.01%. So the gap may also be what rounding can do on this
    // many tokens at the measured per-token spread (`perplexity_limit`, three standard errors).
    let noise_bound = perplexity_limit(spread.0, ours.len(), 0.0);
    assert!(
        near.1 <= spread.1.max(noise_bound),
        "{id} ({kernels:?}): perplexity {:.2}% from the nearest llama.cpp configuration ({}) is over \
         their own spread {:.2}% and what rounding can move it by ({:.2}%)",
        near.1 * 100.0,
        near.3,
        spread.1 * 100.0,
        noise_bound * 100.0
    );
    [near.0, spread.0, near.1, spread.1]
}
