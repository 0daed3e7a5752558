//! Numbers about a next-token distribution: entropy, surprisal, rank, top alternatives, and the
//! text-level measures built from them (perplexity, GLTR buckets, Fast-DetectGPT).
//! All in natural-log nats, computed in f64 from raw logits at temperature 1.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alternative {
    pub id: u32,
    pub text: String,
    #[serde(with = "super::explicit_f64")]
    pub p: f64,
}

/// What the full distribution at one position says about the token that followed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenStats {
    /// Shannon entropy of the distribution.
    pub entropy: f64,
    /// −ln p of the chosen token.
    pub surprisal: f64,
    /// 0 for the most likely token.
    pub rank: usize,
    /// Σ p (ln p)², for the variance term of Fast-DetectGPT.
    pub second_moment: f64,
}

/// Log-softmax helper: the maximum logit and ln Σ exp(logit − max).
pub fn log_norm(logits: &[f32]) -> (f64, f64) {
    let max = max_logit(logits) as f64;
    let (sum, ..) = moments(logits, max as f32, f32::INFINITY);
    (max, libm::log(sum))
}

pub fn token_stats(logits: &[f32], chosen: u32) -> TokenStats {
    stats_and_top(logits, chosen, 0).0
}

/// A token's numbers and the `k` most likely ids, from one pass of `exp` over the vocabulary
/// (Gemma 3's is 262,144 wide, and f64 `exp` is software on wasm: three passes per token used
/// to cost more than a fifth of a decode step).
///
/// With d = logit − max, S0 = Σe^d, S1 = Σe^d·d, S2 = Σe^d·d² and L = ln S0:
/// entropy = L − S1/S0 and Σp·ln²p = S2/S0 − 2L·S1/S0 + L².
pub fn stats_and_top(logits: &[f32], chosen: u32, k: usize) -> (TokenStats, Vec<(u32, f64)>) {
    let max = max_logit(logits) as f64;
    let c = logits
        .get(chosen as usize)
        .copied()
        .unwrap_or(f32::NEG_INFINITY);
    let (s0, s1, s2, rank) = moments(logits, max as f32, c);
    // libm, not std: glibc's log is not the code wasm runs, and the numbers should agree.
    let lse = libm::log(s0);
    let entropy = lse - s1 / s0;
    let second = s2 / s0 - 2.0 * lse * s1 / s0 + lse * lse;
    let surprisal = -((c as f64) - max - lse);
    let stats = TokenStats {
        entropy,
        surprisal,
        rank,
        second_moment: second,
    };
    let top = top_ids(logits, k)
        .into_iter()
        .map(|i| (i, libm::exp((logits[i as usize] as f64) - max - lse)))
        .collect();
    (stats, top)
}

/// The largest logit, NaNs skipped (−∞ when there is none). In lanes, so that it vectorizes:
/// `f32::max` over a 262k vocabulary is a scalar loop with NaN checks on wasm.
pub fn max_logit(logits: &[f32]) -> f32 {
    let mut m = [f32::NEG_INFINITY; LANES];
    let mut groups = logits.chunks_exact(LANES);
    for g in &mut groups {
        for j in 0..LANES {
            if g[j] > m[j] {
                m[j] = g[j];
            }
        }
    }
    for &l in groups.remainder() {
        if l > m[0] {
            m[0] = l;
        }
    }
    m.into_iter()
        .fold(f32::NEG_INFINITY, |a, b| if b > a { b } else { a })
}

/// Lanes of the moment sums: eight independent accumulators, so the compiler turns the loop
/// into SIMD (two f32x4 on wasm) without reassociating anything.
const LANES: usize = 8;
/// Logits per f32 partial sum before it is added into f64: keeps the f32 rounding of a sum to
/// a few parts in 10⁷ however large the vocabulary.
const CHUNK: usize = 512;

/// S0 = Σe^d, S1 = Σe^d·d, S2 = Σe^d·d² over d = logit − max, and how many logits exceed
/// `chosen`. In f32 with a polynomial `exp`, chunk sums in f64: libm's f64 `exp` is software
/// on wasm, and 262,144 of them per token (Gemma 3) took a fifth of a decode step. The error
/// (about 1e-7 relative per term) is far below what the page shows or the llama.cpp
/// comparison allows.
///
/// Each chunk's sums are its own, and they are added in chunk order, so running the chunks on
/// the pool changes no bit (serially they were 6% of Gemma 3's decoding on two threads).
fn moments(logits: &[f32], max: f32, chosen: f32) -> (f64, f64, f64, usize) {
    let mut parts = vec![[0f64; 4]; logits.len().div_ceil(CHUNK)];
    super::parallel::for_each_row_of_work(&mut parts, 1, logits.len(), &|c, part| {
        let end = logits.len().min((c + 1) * CHUNK);
        part[0] = chunk_moments(&logits[c * CHUNK..end], max, chosen);
    });
    let (mut s0, mut s1, mut s2) = (0f64, 0f64, 0f64);
    let mut rank = 0usize;
    for [a0, a1, a2, above] in parts {
        s0 += a0;
        s1 += a1;
        s2 += a2;
        rank += above as usize;
    }
    (s0, s1, s2, rank)
}

/// One chunk's S0, S1, S2 (each its lanes summed in f64) and its count above `chosen`: in
/// f32x4 lanes where the build has wasm's simd128 (both wasm builds), else the portable loop;
/// the same bits either way (`kernel_check`).
pub fn chunk_moments(chunk: &[f32], max: f32, chosen: f32) -> [f64; 4] {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        lanes::chunk_moments(chunk, max, chosen)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        chunk_moments_portable(chunk, max, chosen)
    }
}

/// The reference: eight independent f32 lanes, the tail added to lane 0, each lane's sums
/// added in f64 at the end.
pub fn chunk_moments_portable(chunk: &[f32], max: f32, chosen: f32) -> [f64; 4] {
    let mut a0 = [0f32; LANES];
    let mut a1 = [0f32; LANES];
    let mut a2 = [0f32; LANES];
    let mut above = [0u32; LANES];
    let mut lanes = chunk.chunks_exact(LANES);
    for group in &mut lanes {
        for j in 0..LANES {
            let l = group[j];
            above[j] += u32::from(l > chosen);
            let d = l - max;
            // Terms under e^-87 vanish in f32; NaN logits fail the test and drop out.
            let keep = d >= -87.0;
            let d = if keep { d } else { 0.0 };
            let e = if keep { super::fast_exp::exp(d) } else { 0.0 };
            a0[j] += e;
            a1[j] += e * d;
            a2[j] += e * d * d;
        }
    }
    tail_and_total(lanes.remainder(), max, chosen, [a0, a1, a2], above)
}

/// Adds the values past the last group of eight to lane 0, then sums the lanes in f64.
fn tail_and_total(
    tail: &[f32],
    max: f32,
    chosen: f32,
    [mut a0, mut a1, mut a2]: [[f32; LANES]; 3],
    mut above: [u32; LANES],
) -> [f64; 4] {
    for &l in tail {
        above[0] += u32::from(l > chosen);
        let d = l - max;
        if d >= -87.0 {
            let e = super::fast_exp::exp(d);
            a0[0] += e;
            a1[0] += e * d;
            a2[0] += e * d * d;
        }
    }
    let sum = |a: [f32; LANES]| a.iter().map(|&v| v as f64).sum::<f64>();
    [
        sum(a0),
        sum(a1),
        sum(a2),
        above.iter().map(|&v| v as f64).sum::<f64>(),
    ]
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use super::LANES;
    use core::arch::wasm32::*;

    /// `chunk_moments_portable` with its eight lanes as two f32x4: lane j of vector h is the
    /// portable form's lane 4h + j, step for step (a kept value is the mask's and, a dropped
    /// one 0), so every lane has the portable bits.
    pub fn chunk_moments(chunk: &[f32], max: f32, chosen: f32) -> [f64; 4] {
        let zero = f32x4_splat(0.0);
        let (mut a0, mut a1, mut a2, mut above) = ([zero; 2], [zero; 2], [zero; 2], [zero; 2]);
        let (max4, chosen4, floor) = (f32x4_splat(max), f32x4_splat(chosen), f32x4_splat(-87.0));
        let mut groups = chunk.chunks_exact(LANES);
        for group in &mut groups {
            for h in 0..2 {
                // SAFETY: a group has eight values, so four start at 0 and at 4.
                let l = unsafe { v128_load(group.as_ptr().add(4 * h) as *const v128) };
                // A true comparison is −1 in every bit: subtracting it counts one.
                above[h] = i32x4_sub(above[h], f32x4_gt(l, chosen4));
                let d = f32x4_sub(l, max4);
                let keep = f32x4_ge(d, floor);
                let d = v128_and(d, keep);
                let e = v128_and(super::super::fast_exp::exp4(d), keep);
                a0[h] = f32x4_add(a0[h], e);
                let ed = f32x4_mul(e, d);
                a1[h] = f32x4_add(a1[h], ed);
                a2[h] = f32x4_add(a2[h], f32x4_mul(ed, d));
            }
        }
        let f = |v: [v128; 2]| -> [f32; LANES] {
            let mut out = [0f32; LANES];
            // SAFETY: two v128 are eight f32 lanes in order.
            unsafe {
                v128_store(out.as_mut_ptr() as *mut v128, v[0]);
                v128_store(out.as_mut_ptr().add(4) as *mut v128, v[1]);
            }
            out
        };
        let mut counts = [0u32; LANES];
        // SAFETY: as above, eight u32 lanes.
        unsafe {
            v128_store(counts.as_mut_ptr() as *mut v128, above[0]);
            v128_store(counts.as_mut_ptr().add(4) as *mut v128, above[1]);
        }
        super::tail_and_total(
            groups.remainder(),
            max,
            chosen,
            [f(a0), f(a1), f(a2)],
            counts,
        )
    }
}

/// The `k` most likely ids with their probabilities, most likely first.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f64)> {
    stats_and_top(logits, 0, k).1
}

/// An integer whose order is `f32::total_cmp`'s (the same bit trick as its implementation).
#[inline(always)]
fn total_key(x: f32) -> i32 {
    let b = x.to_bits() as i32;
    b ^ ((((b >> 31) as u32) >> 1) as i32)
}

/// The `k` largest logits' ids, best first (ties: lower id first), in one pass that keeps a
/// short sorted list instead of sorting or partitioning the vocabulary.
fn top_ids(logits: &[f32], k: usize) -> Vec<u32> {
    let mut best: Vec<u32> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    let before = |a: u32, b: u32| {
        logits[a as usize]
            .total_cmp(&logits[b as usize])
            .then(b.cmp(&a))
            .is_gt()
    };
    let consider = |i: u32, best: &mut Vec<u32>| {
        if best.len() == k && !before(i, best[k - 1]) {
            return;
        }
        let at = best
            .iter()
            .position(|&b| before(i, b))
            .unwrap_or(best.len());
        best.insert(at, i);
        best.truncate(k);
    };
    // Once the list is full, a group of logits none of which beats its last entry is skipped
    // whole: a later id needs a strictly larger logit in `total_cmp`'s order to get in. The
    // test compares `total_key`s, integers in that same order (NaNs of either sign, −0 below
    // +0), and is branch-free over the group, so it vectorizes.
    for (g, group) in logits.chunks(LANES).enumerate() {
        let base = (g * LANES) as u32;
        if best.len() == k {
            let bar = total_key(logits[best[k - 1] as usize]);
            if !group
                .iter()
                .fold(false, |any, &x| any | (total_key(x) > bar))
            {
                continue;
            }
        }
        for j in 0..group.len() as u32 {
            consider(base + j, &mut best);
        }
    }
    best
}

/// GLTR's rank buckets: top-10, top-100, top-1000, the rest.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct RankBuckets {
    pub top10: usize,
    pub top100: usize,
    pub top1000: usize,
    pub rest: usize,
}

impl RankBuckets {
    pub fn add(&mut self, rank: usize) {
        match rank {
            0..=9 => self.top10 += 1,
            10..=99 => self.top100 += 1,
            100..=999 => self.top1000 += 1,
            _ => self.rest += 1,
        }
    }
}

/// Summary of a sequence of scored tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Summary {
    pub count: usize,
    #[serde(with = "super::explicit_f64")]
    pub perplexity: f64,
    #[serde(with = "super::explicit_f64")]
    pub mean_entropy: f64,
    #[serde(with = "super::explicit_f64")]
    pub mean_surprisal: f64,
    pub gltr: RankBuckets,
    /// Fast-DetectGPT's analytic criterion with one model as both sampler and scorer
    /// (Bao et al., 2024): (log-likelihood − expected log-likelihood) / its standard deviation.
    /// Higher means more machine-like. `None` for fewer than two tokens.
    #[serde(with = "super::explicit_f64::option")]
    pub fast_detectgpt: Option<f64>,
}

pub fn summarize(stats: &[TokenStats]) -> Summary {
    let n = stats.len();
    let mut gltr = RankBuckets::default();
    let (mut ll, mut mean_ll, mut var, mut ent) = (0.0, 0.0, 0.0, 0.0);
    for s in stats {
        gltr.add(s.rank);
        ll -= s.surprisal;
        // E[ln p] = −H; Var[ln p] = E[(ln p)²] − H².
        mean_ll -= s.entropy;
        var += (s.second_moment - s.entropy * s.entropy).max(0.0);
        ent += s.entropy;
    }
    let nf = n.max(1) as f64;
    let mean_surprisal = if n == 0 { 0.0 } else { -ll / nf };
    Summary {
        count: n,
        perplexity: if n == 0 {
            0.0
        } else {
            libm::exp(mean_surprisal)
        },
        mean_entropy: if n == 0 { 0.0 } else { ent / nf },
        mean_surprisal,
        gltr,
        fast_detectgpt: (n >= 2 && var > 0.0).then(|| (ll - mean_ll) / var.sqrt()),
    }
}

/// Binoculars score (Hans et al., 2024), as in the authors' code: the mean log-perplexity of
/// the text under the performer model over the mean cross-entropy between the two models. What
/// the callers pass (`Engine::cross_entropy` run on the performer with the observer's
/// `probability_rows`): `performer_surprisal`, −ln p_performer of each token after the first;
/// `cross_entropy`, −Σ_v p_observer(v) ln p_performer(v) at every position, the one after the
/// last token included (one more value, as the authors' `entropy()` averages it). Each is
/// averaged over its own values. Lower means more machine-like.
pub fn binoculars(performer_surprisal: &[f64], cross_entropy: &[f64]) -> Option<f64> {
    if performer_surprisal.is_empty() || cross_entropy.is_empty() {
        return None;
    }
    let lppl = performer_surprisal.iter().sum::<f64>() / performer_surprisal.len() as f64;
    let xppl = cross_entropy.iter().sum::<f64>() / cross_entropy.len() as f64;
    (xppl > 0.0).then(|| lppl / xppl)
}

#[cfg(test)]
mod tests {

    /// The one-pass figures against the textbook two-pass ones, and the one-pass top-k
    /// against a full sort, on logits with ties, -inf and a wide range.
    #[test]
    fn one_pass_statistics_equal_the_two_pass_definitions() {
        for n in [1usize, 7, 1000, 50_000] {
            let mut l: Vec<f32> = crate::engine::test_data::values(n, 9 + n as u32)
                .iter()
                .map(|v| v * 40.0)
                .collect();
            if n > 10 {
                l[3] = f32::NEG_INFINITY;
                l[5] = l[4];
                // A NaN logit: dropped from the sums, first in the top list (as `total_cmp`).
                l[n - 9] = f32::NAN;
            }
            let chosen = (n / 2) as u32;
            let (s, top) = stats_and_top(&l, chosen, 5);
            // The reference in f64 throughout, independent of `moments`.
            let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = l
                .iter()
                .filter(|x| !x.is_nan())
                .map(|&x| ((x as f64) - max).exp())
                .sum::<f64>()
                .ln();
            let (mut h, mut m2) = (0.0, 0.0);
            for &x in &l {
                let lp = (x as f64) - max - lse;
                let p = lp.exp();
                if p > 0.0 {
                    h -= p * lp;
                    m2 += p * lp * lp;
                }
            }
            assert!(
                // f32 terms (`moments`): a few parts in 10⁷ of the f64 definition.
                (s.entropy - h).abs() < 2e-6 * h.abs().max(1.0),
                "n={n}: {} vs {h}",
                s.entropy
            );
            assert!(
                (s.second_moment - m2).abs() < 2e-6 * m2.abs().max(1.0),
                "n={n}"
            );
            let mut ids: Vec<u32> = (0..n as u32).collect();
            ids.sort_by(|&a, &b| l[b as usize].total_cmp(&l[a as usize]).then(a.cmp(&b)));
            let want: Vec<u32> = ids.into_iter().take(5).collect();
            assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), want, "n={n}");
        }
    }

    use super::*;

    /// The top list skips whole groups of logits; with NaNs of both signs and signed zeros at
    /// the cut-off it must still equal a full sort in `total_cmp` order.
    #[test]
    fn top_ids_equal_a_full_sort_with_special_values() {
        let neg_nan = f32::from_bits(0xffc0_0000);
        let cases: Vec<Vec<f32>> = vec![
            [vec![neg_nan; 8], (1..=8).map(|i| i as f32).collect()].concat(),
            [vec![-0.0; 8], vec![0.0; 8]].concat(),
            [vec![1.0; 9], vec![f32::NAN], vec![f32::INFINITY; 3]].concat(),
            [vec![f32::NEG_INFINITY; 17], vec![-1e30]].concat(),
        ];
        for (c, l) in cases.iter().enumerate() {
            for k in [1, 5] {
                let mut ids: Vec<u32> = (0..l.len() as u32).collect();
                ids.sort_by(|&a, &b| l[b as usize].total_cmp(&l[a as usize]).then(a.cmp(&b)));
                ids.truncate(k);
                assert_eq!(top_ids(l, k), ids, "case {c}, k={k}");
            }
        }
    }

    #[test]
    fn uniform_has_entropy_ln_v() {
        let v = 1000;
        let s = token_stats(&vec![0.5; v], 3);
        assert!((s.entropy - (v as f64).ln()).abs() < 1e-9);
        assert!((s.surprisal - (v as f64).ln()).abs() < 1e-9);
        assert_eq!(s.rank, 0);
    }

    #[test]
    fn one_hot_has_zero_entropy() {
        let mut l = vec![-1e4f32; 50];
        l[7] = 10.0;
        let s = token_stats(&l, 7);
        assert!(s.entropy.abs() < 1e-9, "{}", s.entropy);
        assert!(s.surprisal.abs() < 1e-9);
        let other = token_stats(&l, 8);
        assert_eq!(other.rank, 1);
        assert!(other.surprisal > 1e3);
    }

    #[test]
    fn two_way_split_by_hand() {
        // p = (0.75, 0.25): H = −0.75 ln 0.75 − 0.25 ln 0.25 = 0.5623351446...
        let l = [0.75f32.ln(), 0.25f32.ln()];
        let s = token_stats(&l, 1);
        assert!((s.entropy - 0.562_335_144_618_808_3).abs() < 1e-6);
        assert!((s.surprisal - 4f64.ln()).abs() < 1e-6);
        assert_eq!(s.rank, 1);
        let top = top_k(&l, 5);
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].0, 0);
        assert!((top[0].1 - 0.75).abs() < 1e-6);
    }

    #[test]
    fn gltr_bucket_edges() {
        let mut b = RankBuckets::default();
        for r in [0, 9, 10, 99, 100, 999, 1000, 50_000] {
            b.add(r);
        }
        assert_eq!(
            b,
            RankBuckets {
                top10: 2,
                top100: 2,
                top1000: 2,
                rest: 2
            }
        );
    }

    #[test]
    fn summary_by_hand() {
        let s = [
            TokenStats {
                entropy: 1.0,
                surprisal: 2.0,
                rank: 3,
                second_moment: 2.0,
            },
            TokenStats {
                entropy: 0.5,
                surprisal: 1.0,
                rank: 200,
                second_moment: 0.5,
            },
        ];
        let m = summarize(&s);
        assert!((m.mean_surprisal - 1.5).abs() < 1e-12);
        assert!((m.perplexity - 1.5f64.exp()).abs() < 1e-12);
        assert!((m.mean_entropy - 0.75).abs() < 1e-12);
        // ll = −3, E[ll] = −1.5, Var = (2 − 1) + (0.5 − 0.25) = 1.25.
        let expected = (-3.0 + 1.5) / 1.25f64.sqrt();
        assert!((m.fast_detectgpt.unwrap() - expected).abs() < 1e-12);
        assert_eq!(m.gltr.top10, 1);
        assert_eq!(m.gltr.top1000, 1);
    }

    #[test]
    fn binoculars_by_hand() {
        let b = binoculars(&[2.0, 4.0], &[1.5, 2.5]).unwrap();
        assert!((b - 1.5).abs() < 1e-12);
        assert!(binoculars(&[], &[]).is_none());
        assert!(binoculars(&[1.0], &[]).is_none());
        // The authors' averages: log-ppl over the 2 tokens after the first, x-ppl over all 3
        // positions (mean 2), not over the first 2 (mean 1.5).
        let b = binoculars(&[2.0, 4.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((b - 1.5).abs() < 1e-12);
    }
}
