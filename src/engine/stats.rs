//! Numbers about a next-token distribution: entropy, surprisal, rank, top alternatives, and the
//! text-level measures built from them (perplexity, GLTR buckets, Fast-DetectGPT).
//! All in natural-log nats, computed in f64 from raw logits at temperature 1.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alternative {
    pub id: u32,
    pub text: String,
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
    let max = logits
        .iter()
        .copied()
        .filter(|x| !x.is_nan())
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| ((l as f64) - max).exp()).sum();
    (max, sum.ln())
}

pub fn token_stats(logits: &[f32], chosen: u32) -> TokenStats {
    let (max, lse) = log_norm(logits);
    let mut entropy = 0.0;
    let mut second = 0.0;
    for &l in logits {
        let lp = (l as f64) - max - lse;
        let p = lp.exp();
        if p > 0.0 {
            entropy -= p * lp;
            second += p * lp * lp;
        }
    }
    let c = logits
        .get(chosen as usize)
        .copied()
        .unwrap_or(f32::NEG_INFINITY);
    let surprisal = -((c as f64) - max - lse);
    let rank = logits.iter().filter(|&&l| l > c).count();
    TokenStats {
        entropy,
        surprisal,
        rank,
        second_moment: second,
    }
}

/// The `k` most likely ids with their probabilities, most likely first.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f64)> {
    let (max, lse) = log_norm(logits);
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(idx.len());
    if k == 0 {
        return Vec::new();
    }
    let cmp = |a: &u32, b: &u32| {
        logits[*b as usize]
            .total_cmp(&logits[*a as usize])
            .then(a.cmp(b))
    };
    idx.select_nth_unstable_by(k - 1, cmp);
    idx.truncate(k);
    idx.sort_by(cmp);
    idx.into_iter()
        .map(|i| (i, ((logits[i as usize] as f64) - max - lse).exp()))
        .collect()
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub perplexity: f64,
    pub mean_entropy: f64,
    pub mean_surprisal: f64,
    pub gltr: RankBuckets,
    /// Fast-DetectGPT's analytic criterion with one model as both sampler and scorer
    /// (Bao et al., 2024): (log-likelihood − expected log-likelihood) / its standard deviation.
    /// Higher means more machine-like. `None` for fewer than two tokens.
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
        perplexity: if n == 0 { 0.0 } else { mean_surprisal.exp() },
        mean_entropy: if n == 0 { 0.0 } else { ent / nf },
        mean_surprisal,
        gltr,
        fast_detectgpt: (n >= 2 && var > 0.0).then(|| (ll - mean_ll) / var.sqrt()),
    }
}

/// Binoculars score (Hans et al., 2024): log-perplexity of the text under the performer model
/// over the cross-perplexity between observer and performer distributions. Both slices hold,
/// per position, the observer's surprisal of the actual token and the cross-entropy term
/// −Σ p_performer ln p_observer. Lower means more machine-like.
pub fn binoculars(observer_surprisal: &[f64], cross_entropy: &[f64]) -> Option<f64> {
    if observer_surprisal.is_empty() || observer_surprisal.len() != cross_entropy.len() {
        return None;
    }
    let n = observer_surprisal.len() as f64;
    let lppl = observer_surprisal.iter().sum::<f64>() / n;
    let xppl = cross_entropy.iter().sum::<f64>() / n;
    (xppl > 0.0).then(|| lppl / xppl)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(binoculars(&[1.0], &[1.0, 2.0]).is_none());
    }
}
