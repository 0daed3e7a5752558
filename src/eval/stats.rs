//! Accuracy with a confidence interval, and the paired test between two conditions or models:
//! what it takes to say "repeating the prompt helps" on a few hundred items.

use serde::{Deserialize, Serialize};

/// The 95% two-sided normal quantile.
const Z95: f64 = 1.959_963_984_540_054;

/// The 95% Wilson score interval of `k` successes in `n` trials (`(0, 1)` when `n` is 0). It
/// stays inside [0, 1] and is honest at 0% and 100%, where the normal interval collapses.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // The interval always holds the observed rate; rounding alone can put a 0% run's lower
    // end a hair above zero.
    ((centre - half).clamp(0.0, p), (centre + half).clamp(p, 1.0))
}

/// A paired comparison of two runs over the same items.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct McNemar {
    /// Items only the first run got right.
    pub b: usize,
    /// Items only the second run got right.
    pub c: usize,
    /// Exact two-sided p-value: the binomial test of b against b + c at one half.
    pub p: f64,
}

/// A p-value as the report writes it: "< 0.001" below that, else three decimals, or more
/// where three would round a p under the verdict's 0.1 up to "0.100" beside "p < 0.1".
pub fn p_text(p: f64) -> String {
    if p < 0.001 {
        return "< 0.001".into();
    }
    (3..=9)
        .map(|decimals| format!("{p:.decimals$}"))
        .find(|text| {
            text.parse::<f64>()
                .map_or(true, |shown| (shown < SIGNIFICANCE) == (p < SIGNIFICANCE))
        })
        .unwrap_or_else(|| format!("{p}"))
}

/// McNemar's exact test on paired outcomes (`a[i]`, `b[i]` for the same item `i`).
pub fn mcnemar(a: &[bool], b: &[bool]) -> McNemar {
    let only_a = a.iter().zip(b).filter(|(x, y)| **x && !**y).count();
    let only_b = a.iter().zip(b).filter(|(x, y)| !**x && **y).count();
    McNemar {
        b: only_a,
        c: only_b,
        p: exact_binomial_two_sided(only_a, only_a + only_b),
    }
}

/// 2 · P(X ≤ min(k, n − k)) for X ~ Binomial(n, 1/2), capped at 1; 1 when n is 0. Summed in
/// log space, so hundreds of discordant pairs do not underflow.
pub fn exact_binomial_two_sided(k: usize, n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let m = k.min(n - k);
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=m {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// The chance that a comparison resting on `n` items where only one side was right comes out
/// a win or a loss (p < `SIGNIFICANCE`) when neither side is better. The exact test is
/// discrete, so this is at most `SIGNIFICANCE` and often well under it: with fewer than 5
/// such items no result reaches it at all.
pub fn chance_of_a_verdict(n: usize) -> f64 {
    // The two-sided p grows with k up to n/2, so the verdicts are the k at both ends up to
    // the last k whose p is under the line; the chance is then that p itself.
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0;
    let mut tail = 0.0;
    let mut chance = 0.0;
    for k in 0..n.div_ceil(2) {
        if k > 0 {
            ln_choose += ((n - k + 1) as f64).ln() - (k as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
        if 2.0 * tail >= SIGNIFICANCE {
            break;
        }
        chance = 2.0 * tail;
    }
    chance
}

/// Win, loss or neither for the second run against the first, as the prompt-repetition paper
/// counts them: a difference only counts at p < 0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Win,
    Loss,
    Neutral,
}

pub const SIGNIFICANCE: f64 = 0.1;

impl McNemar {
    pub fn verdict(&self) -> Verdict {
        if self.p >= SIGNIFICANCE || self.b == self.c {
            Verdict::Neutral
        } else if self.c > self.b {
            Verdict::Win
        } else {
            Verdict::Loss
        }
    }
}

#[cfg(test)]
mod tests {
    /// n = 300 items, 78 only A right and 101 only B: p = 0.0998 (scipy's binomtest), which
    /// three decimals wrote "0.100" beside "a real difference at p < 0.1".
    #[test]
    fn a_p_under_the_line_never_reads_as_on_it() {
        let p = super::exact_binomial_two_sided(78, 179);
        assert!((p - 0.0998).abs() < 5e-5, "{p}");
        assert_eq!(super::p_text(p), "0.0998");
        assert_eq!(super::p_text(0.099_996), "0.099996");
        assert_eq!(super::p_text(0.1), "0.100");
        assert_eq!(super::p_text(0.042_4), "0.042");
        assert_eq!(super::p_text(1.0), "1.000");
        // b = 0, c = 30: p = 1.9e-9, which read "0.000".
        assert_eq!(
            super::p_text(super::exact_binomial_two_sided(0, 30)),
            "< 0.001"
        );
        for k in 0..3000 {
            let p = 0.0990 + k as f64 * 4e-7;
            let shown: f64 = super::p_text(p).parse().unwrap();
            assert_eq!(shown < 0.1, p < 0.1, "{p}");
        }
    }

    use super::*;

    #[test]
    fn wilson_by_hand() {
        // 8 of 10: centre (0.8 + 0.19207)/1.38415 = 0.71674, half 0.22658 → [0.4902, 0.9433].
        let (lo, hi) = wilson(8, 10);
        assert!((lo - 0.4902).abs() < 1e-4, "{lo}");
        assert!((hi - 0.9433).abs() < 1e-4, "{hi}");
        // 0 of 20: [0, 0.1611]; 20 of 20: [0.8389, 1].
        let (lo, hi) = wilson(0, 20);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.16113).abs() < 1e-4, "{hi}");
        let (lo, hi) = wilson(20, 20);
        assert!((lo - 0.83887).abs() < 1e-4, "{lo}");
        assert_eq!(hi, 1.0);
        assert_eq!(wilson(0, 0), (0.0, 1.0));
        for n in 1..200 {
            let (lo, hi) = wilson(0, n);
            assert_eq!(lo, 0.0, "0 of {n}");
            assert!(hi > 0.0);
            let (lo, hi) = wilson(n, n);
            assert_eq!(hi, 1.0, "{n} of {n}");
            assert!(lo < 1.0);
        }
    }

    #[test]
    fn chance_of_a_verdict_by_hand() {
        // Under 5 items that differ, even all on one side gives p ≥ 0.125.
        for n in 0..5 {
            assert_eq!(chance_of_a_verdict(n), 0.0, "{n}");
        }
        // 5: only 0 or 5 of them, 2/32. 8: k ≤ 1 or ≥ 7, 2 · 9/256.
        assert!((chance_of_a_verdict(5) - 2.0 / 32.0).abs() < 1e-12);
        assert!((chance_of_a_verdict(8) - 18.0 / 256.0).abs() < 1e-12);
        // It agrees with the test's own p, summed over every outcome, and stays under 0.1.
        for n in [9, 17, 40, 333, 2000] {
            let mut by_outcome = 0.0;
            for k in 0..=n {
                let t = McNemar {
                    b: k,
                    c: n - k,
                    p: exact_binomial_two_sided(k, n),
                };
                if t.verdict() != Verdict::Neutral {
                    by_outcome += (ln_choose(n, k) + n as f64 * 0.5f64.ln()).exp();
                }
            }
            let c = chance_of_a_verdict(n);
            assert!((c - by_outcome).abs() < 1e-9, "{n}: {c} vs {by_outcome}");
            assert!(c < SIGNIFICANCE, "{n}: {c}");
            assert!(n < 40 || c > 0.05, "{n}: {c}");
        }
    }

    fn ln_choose(n: usize, k: usize) -> f64 {
        (1..=k)
            .map(|i| ((n - k + i) as f64).ln() - (i as f64).ln())
            .sum()
    }

    #[test]
    fn exact_mcnemar_by_hand() {
        // b = 1, c = 9: 2 · (1 + 10) / 1024 = 0.021484375.
        let a = [
            true, false, false, false, false, false, false, false, false, false, true,
        ];
        let b = [
            false, true, true, true, true, true, true, true, true, true, true,
        ];
        let m = mcnemar(&a, &b);
        assert_eq!((m.b, m.c), (1, 9));
        assert!((m.p - 0.021484375).abs() < 1e-12, "{}", m.p);
        assert_eq!(m.verdict(), Verdict::Win);
        // b = 3, c = 5: 2 · (1 + 8 + 28 + 56) / 256 = 0.7265625.
        assert!((exact_binomial_two_sided(3, 8) - 0.7265625).abs() < 1e-12);
        assert!((exact_binomial_two_sided(5, 8) - 0.7265625).abs() < 1e-12);
        // Balanced: capped at 1. None discordant: 1.
        assert_eq!(exact_binomial_two_sided(4, 8), 1.0);
        assert_eq!(exact_binomial_two_sided(0, 0), 1.0);
        // b = 0, c = 6: 2/64 = 0.03125; the other way round a loss.
        assert!((exact_binomial_two_sided(0, 6) - 0.03125).abs() < 1e-12);
        let m = McNemar {
            b: 6,
            c: 0,
            p: 0.03125,
        };
        assert_eq!(m.verdict(), Verdict::Loss);
        // Thousands of pairs stay finite.
        let p = exact_binomial_two_sided(900, 2000);
        assert!(p > 0.0 && p < 1e-5, "{p}");
    }
}
