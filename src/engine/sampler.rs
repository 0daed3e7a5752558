//! Choosing the next token. The order follows llama.cpp's default chain: repetition penalty,
//! top-k, top-p, min-p, temperature, then a draw. Temperature 0 is greedy (first maximum).
//! The random source is our own SplitMix64 so that a seed gives the same tokens natively and
//! in wasm, whatever the platform's RNG.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    pub temperature: f32,
    /// 0 disables top-k.
    pub top_k: usize,
    /// 1.0 disables top-p.
    pub top_p: f32,
    /// 0.0 disables min-p.
    pub min_p: f32,
    /// 1.0 disables the penalty.
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 42,
        }
    }
}

impl SamplingParams {
    pub fn validate(&self) -> Result<(), String> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(format!(
                "temperature must be a finite number, 0 or more, got {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top-p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(format!("min-p must be in [0, 1], got {}", self.min_p));
        }
        // As llama.cpp, whose logits are f32 as these: a penalty whose inverse is
        // infinite in f32 (1e-40) would divide a logit into infinity.
        if !self.repeat_penalty.is_finite()
            || self.repeat_penalty <= 0.0
            || !(1.0 / self.repeat_penalty).is_finite()
        {
            return Err(format!(
                "repeat penalty must be more than 0 and its inverse a finite number, got {}",
                self.repeat_penalty
            ));
        }
        Ok(())
    }
}

/// SplitMix64: tiny, fast, and identical on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The first index of the largest logit (0 when the first logit is NaN or there is none).
pub fn argmax(logits: &[f32]) -> u32 {
    if logits.first().is_none_or(|l| l.is_nan()) {
        return 0;
    }
    // Two vectorizable scans instead of one loop whose every step waits on the last.
    let max = super::stats::max_logit(logits);
    logits.iter().position(|&l| l == max).unwrap_or(0) as u32
}

/// Applies llama.cpp's repetition penalty in place.
pub fn apply_repeat_penalty(logits: &mut [f32], recent: &[u32], penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    for &id in recent {
        if !seen.insert(id) {
            continue;
        }
        if let Some(l) = logits.get_mut(id as usize) {
            // Kept finite: an infinite logit made the distribution NaN (infinity minus
            // itself) for penalties near the smallest allowed.
            let v = if *l > 0.0 { *l / penalty } else { *l * penalty };
            *l = v.clamp(f32::MIN, f32::MAX);
        }
    }
}

pub fn sample(logits: &[f32], history: &[u32], p: &SamplingParams, rng: &mut Rng) -> u32 {
    if p.temperature <= 0.0 && p.repeat_penalty == 1.0 {
        // Greedy with nothing to adjust: no copy of the vocabulary.
        return argmax(logits);
    }
    let mut logits = logits.to_vec();
    let recent = &history[history.len().saturating_sub(p.repeat_last_n)..];
    apply_repeat_penalty(&mut logits, recent, p.repeat_penalty);
    if p.temperature <= 0.0 {
        return argmax(&logits);
    }
    let mut cand: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.is_nan())
        .map(|(i, &l)| (i as u32, l))
        .collect();
    if cand.is_empty() {
        return 0;
    }
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    // The order is total, so partitioning out the top k first keeps exactly the set a full
    // sort would keep, without sorting a 262k-token vocabulary on every step.
    if p.top_k > 0 && p.top_k < cand.len() {
        cand.select_nth_unstable_by(p.top_k - 1, order);
        cand.truncate(p.top_k);
    }
    cand.sort_by(order);
    // top-p and min-p work on the distribution at temperature 1 over what is left.
    let max = cand[0].1 as f64;
    // libm throughout: same seed, same tokens, natively and in the browser.
    let probs: Vec<f64> = cand.iter().map(|c| libm::exp(c.1 as f64 - max)).collect();
    let total: f64 = probs.iter().sum();
    if p.top_p < 1.0 {
        let mut acc = 0.0;
        let mut keep = cand.len();
        for (i, q) in probs.iter().enumerate() {
            acc += q / total;
            if acc >= p.top_p as f64 {
                keep = i + 1;
                break;
            }
        }
        cand.truncate(keep);
    }
    if p.min_p > 0.0 {
        // Relative to the most likely token: p_i / p_max = exp(l_i − l_max).
        let floor = libm::log(p.min_p as f64);
        let keep = cand
            .iter()
            .take_while(|c| (c.1 as f64 - max) >= floor)
            .count()
            .max(1);
        cand.truncate(keep);
    }
    let t = p.temperature as f64;
    let weights: Vec<f64> = cand
        .iter()
        .map(|c| libm::exp((c.1 as f64 - max) / t))
        .collect();
    let sum: f64 = weights.iter().sum();
    let mut r = rng.next_f64() * sum;
    for (c, w) in cand.iter().zip(&weights) {
        if r < *w {
            return c.0;
        }
        r -= w;
    }
    // Rounding can leave `r` past every weight: the last token that had any weight, never one
    // whose weight is 0 (a token masked to −∞, such as an end of generation ignored).
    cand.iter()
        .zip(&weights)
        .rev()
        .find(|(_, w)| **w > 0.0)
        .map_or(cand[0].0, |(c, _)| c.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_equal_maxima_and_skips_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 2.0, 3.0]), 1);
        assert_eq!(
            argmax(&[1.0, f32::NAN, 2.0, 0.5, 2.0, 1.0, 1.0, 1.0, 1.0, 2.5]),
            9
        );
        assert_eq!(argmax(&[f32::NAN, 5.0]), 0);
        assert_eq!(argmax(&[]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), 0);
    }

    fn params(t: f32) -> SamplingParams {
        SamplingParams {
            temperature: t,
            ..Default::default()
        }
    }

    #[test]
    fn greedy_takes_first_maximum() {
        let l = [0.1, 3.0, 3.0, -1.0];
        assert_eq!(sample(&l, &[], &params(0.0), &mut Rng::new(1)), 1);
    }

    #[test]
    fn same_seed_same_draws_other_seed_differs() {
        let l: Vec<f32> = (0..100).map(|i| (i % 7) as f32 * 0.3).collect();
        let p = SamplingParams {
            temperature: 1.5,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            ..Default::default()
        };
        let draw = |seed| {
            let mut r = Rng::new(seed);
            (0..50)
                .map(|_| sample(&l, &[], &p, &mut r))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn top_k_one_is_greedy() {
        let l = [0.0, 1.0, 5.0, 2.0];
        let p = SamplingParams {
            temperature: 2.0,
            top_k: 1,
            ..Default::default()
        };
        let mut r = Rng::new(3);
        for _ in 0..20 {
            assert_eq!(sample(&l, &[], &p, &mut r), 2);
        }
    }

    #[test]
    fn min_p_cuts_unlikely_tokens() {
        // p ∝ (1, e^-5): the second is far below 5% of the first.
        let l = [5.0, 0.0];
        let p = SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.05,
            ..Default::default()
        };
        let mut r = Rng::new(9);
        for _ in 0..200 {
            assert_eq!(sample(&l, &[], &p, &mut r), 0);
        }
    }

    #[test]
    fn repeat_penalty_changes_greedy_choice() {
        let l = [2.0, 1.9];
        let mut p = params(0.0);
        p.repeat_penalty = 1.5;
        assert_eq!(sample(&l, &[0], &p, &mut Rng::new(1)), 1);
        assert_eq!(sample(&l, &[], &p, &mut Rng::new(1)), 0);
    }

    #[test]
    fn validation_rejects_nonsense() {
        assert!(params(-1.0).validate().is_err());
        let mut p = params(1.0);
        p.top_p = 0.0;
        assert!(p.validate().is_err());
        assert!(params(0.7).validate().is_ok());
        // llama.cpp's rule: the penalty's inverse must be a finite f32.
        p = params(1.0);
        p.repeat_penalty = 1e-40;
        assert!(p.validate().is_err());
        p.repeat_penalty = 1e-37;
        assert!(p.validate().is_ok());
    }

    /// The smallest penalties divide large logits past f32's range: those stay the largest
    /// numbers there are, and the draw stays a draw between them.
    #[test]
    fn a_tiny_repeat_penalty_keeps_the_distribution_a_distribution() {
        let mut p = params(1.0);
        p.repeat_penalty = 1e-37;
        let l = [40.0, 39.0, 1.0];
        let drawn: Vec<u32> = (0..200)
            .map(|seed| sample(&l, &[0, 1], &p, &mut Rng::new(seed)))
            .collect();
        assert!(drawn.iter().all(|&id| id < 2), "{drawn:?}");
        assert!(drawn.contains(&0) && drawn.contains(&1), "{drawn:?}");
    }
}
