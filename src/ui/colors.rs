//! Token colouring: by entropy, by surprisal, by GLTR rank bucket, or by GLTR's frac(p) (the
//! chosen token's probability over the most likely token's); and GLTR's two histograms.
//!
//! Continuous measures map onto a fixed scale (not one stretched to each run), so colours mean
//! the same thing from run to run and from pane to pane.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ColorMode {
    #[default]
    Entropy,
    Surprisal,
    Rank,
    #[serde(rename = "fracp")]
    FracP,
}

impl ColorMode {
    pub const ALL: [ColorMode; 4] = [
        ColorMode::Entropy,
        ColorMode::Surprisal,
        ColorMode::Rank,
        ColorMode::FracP,
    ];

    pub fn id(self) -> &'static str {
        match self {
            ColorMode::Entropy => "entropy",
            ColorMode::Surprisal => "surprisal",
            ColorMode::Rank => "rank",
            ColorMode::FracP => "fracp",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ColorMode::Entropy => "Entropy",
            ColorMode::Surprisal => "Surprisal",
            ColorMode::Rank => "GLTR rank",
            ColorMode::FracP => "frac(p)",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.id() == s)
    }
}

/// Top of the continuous scales, in nats. Entropy of a 50k vocabulary can reach ~10.8, but
/// small models rarely pass 6 on real text; surprisal above 8 (p < 0.03%) is all "very".
pub const ENTROPY_MAX: f64 = 6.0;
pub const SURPRISAL_MAX: f64 = 8.0;

/// GLTR's buckets (Gehrmann et al., 2019): top-10, top-100, top-1000, the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankBucket {
    Top10,
    Top100,
    Top1000,
    Rest,
}

impl RankBucket {
    pub const ALL: [RankBucket; 4] = [
        RankBucket::Top10,
        RankBucket::Top100,
        RankBucket::Top1000,
        RankBucket::Rest,
    ];

    pub fn of(rank: usize) -> Self {
        match rank {
            0..=9 => RankBucket::Top10,
            10..=99 => RankBucket::Top100,
            100..=999 => RankBucket::Top1000,
            _ => RankBucket::Rest,
        }
    }

    /// GLTR's colours: green, yellow, red, purple.
    pub fn color(self) -> &'static str {
        match self {
            RankBucket::Top10 => "#6fcf6f",
            RankBucket::Top100 => "#f2d14b",
            RankBucket::Top1000 => "#f07b6b",
            RankBucket::Rest => "#b58cf0",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RankBucket::Top10 => "top 10",
            RankBucket::Top100 => "top 100",
            RankBucket::Top1000 => "top 1000",
            RankBucket::Rest => "beyond",
        }
    }
}

/// Position on a 0..1 scale, clamped; NaN counts as the top (something is wrong: make it loud).
pub fn unit(value: f64, max: f64) -> f64 {
    if value.is_nan() {
        return 1.0;
    }
    (value / max).clamp(0.0, 1.0)
}

/// A colour from cool/confident (blue-green) to hot/uncertain (orange-red), as an `hsl()` that
/// reads on both light and dark backgrounds (text stays dark on it).
pub fn heat(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let hue = 190.0 - 185.0 * t;
    let light = 82.0 - 18.0 * t;
    format!("hsl({hue:.0}, 85%, {light:.0}%)")
}

/// GLTR's frac(p): the chosen token's probability over the most likely token's, from 0 (the
/// model all but ruled it out) to 1 (its first choice). `top_p` is the first alternative's
/// probability; the rank decides when it is missing or when rounding would put the ratio
/// above 1.
pub fn frac_p(surprisal: f64, rank: usize, top_p: Option<f64>) -> f64 {
    if rank == 0 {
        return 1.0;
    }
    match top_p {
        Some(top) if top > 0.0 => ((-surprisal).exp() / top).clamp(0.0, 1.0),
        _ => f64::NAN,
    }
}

/// The numbers a token is coloured by.
#[derive(Debug, Clone, Copy)]
pub struct TokenNumbers {
    pub entropy: f64,
    pub surprisal: f64,
    pub rank: usize,
    pub frac_p: f64,
}

/// The background colour for a token.
pub fn token_color(mode: ColorMode, t: TokenNumbers) -> String {
    match mode {
        ColorMode::Entropy => heat(unit(t.entropy, ENTROPY_MAX)),
        ColorMode::Surprisal => heat(unit(t.surprisal, SURPRISAL_MAX)),
        ColorMode::Rank => RankBucket::of(t.rank).color().to_string(),
        // The first choice is cool, an all-but-ruled-out token hot (the direction of the
        // other views); NaN (no alternatives known) shows hot, as `unit` makes it.
        ColorMode::FracP => heat(unit(1.0 - t.frac_p, 1.0)),
    }
}

/// Bins of GLTR's frac(p) histogram: tenths, the last one closed (frac 1 is the top token).
pub const FRAC_BINS: usize = 10;

pub fn frac_bin(frac: f64) -> Option<usize> {
    frac.is_finite()
        .then(|| ((frac.clamp(0.0, 1.0) * FRAC_BINS as f64) as usize).min(FRAC_BINS - 1))
}

/// Token counts per frac(p) bin.
pub fn frac_histogram(fracs: impl IntoIterator<Item = f64>) -> [usize; FRAC_BINS] {
    let mut out = [0; FRAC_BINS];
    for f in fracs {
        if let Some(b) = frac_bin(f) {
            out[b] += 1;
        }
    }
    out
}

/// Legend entries (colour, label) for a mode, entropy and surprisal in `units` (the scales
/// themselves are fixed in nats).
pub fn legend(mode: ColorMode, units: super::format::Units) -> Vec<(String, String)> {
    match mode {
        ColorMode::Rank => [
            RankBucket::Top10,
            RankBucket::Top100,
            RankBucket::Top1000,
            RankBucket::Rest,
        ]
        .into_iter()
        .map(|b| (b.color().to_string(), b.label().to_string()))
        .collect(),
        ColorMode::FracP => (0..=4)
            .rev()
            .map(|i| {
                let v = i as f64 / 4.0;
                (heat(1.0 - v), format!("{v:.2}"))
            })
            .collect(),
        ColorMode::Entropy | ColorMode::Surprisal => {
            let max = if mode == ColorMode::Entropy {
                ENTROPY_MAX
            } else {
                SURPRISAL_MAX
            };
            (0..=4)
                .map(|i| {
                    let v = units.of(max * i as f64 / 4.0);
                    let label = if i == 4 {
                        format!(
                            "≥{} {}",
                            super::format::num(Some(v), 1).trim_end_matches(".0"),
                            units.id()
                        )
                    } else {
                        format!("{v:.1}")
                    };
                    (heat(i as f64 / 4.0), label)
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legend_nats(mode: ColorMode) -> Vec<(String, String)> {
        legend(mode, super::super::format::Units::Nats)
    }

    #[test]
    fn buckets_follow_gltr_edges() {
        assert_eq!(RankBucket::of(0), RankBucket::Top10);
        assert_eq!(RankBucket::of(9), RankBucket::Top10);
        assert_eq!(RankBucket::of(10), RankBucket::Top100);
        assert_eq!(RankBucket::of(99), RankBucket::Top100);
        assert_eq!(RankBucket::of(100), RankBucket::Top1000);
        assert_eq!(RankBucket::of(999), RankBucket::Top1000);
        assert_eq!(RankBucket::of(1000), RankBucket::Rest);
    }

    #[test]
    fn scale_is_fixed_and_clamped() {
        assert_eq!(unit(0.0, 6.0), 0.0);
        assert_eq!(unit(3.0, 6.0), 0.5);
        assert_eq!(unit(60.0, 6.0), 1.0);
        assert_eq!(unit(-1.0, 6.0), 0.0);
        assert_eq!(unit(f64::NAN, 6.0), 1.0);
        assert_eq!(heat(0.0), "hsl(190, 85%, 82%)");
        assert_eq!(heat(1.0), "hsl(5, 85%, 64%)");
        let t = |entropy, surprisal, rank, frac_p| TokenNumbers {
            entropy,
            surprisal,
            rank,
            frac_p,
        };
        // The same entropy gives the same colour whatever else is in the run.
        assert_eq!(
            token_color(ColorMode::Entropy, t(2.0, 0.1, 0, 1.0)),
            token_color(ColorMode::Entropy, t(2.0, 7.0, 5000, 0.01))
        );
        assert_ne!(
            token_color(ColorMode::Surprisal, t(2.0, 0.1, 0, 1.0)),
            token_color(ColorMode::Surprisal, t(2.0, 7.0, 0, 1.0))
        );
        assert_eq!(
            token_color(ColorMode::Rank, t(9.0, 9.0, 50, 0.5)),
            "#f2d14b"
        );
        assert_eq!(
            token_color(ColorMode::FracP, t(0.0, 0.0, 0, 1.0)),
            heat(0.0)
        );
        assert_eq!(
            token_color(ColorMode::FracP, t(0.0, 9.0, 7, 0.0)),
            heat(1.0)
        );
        assert_eq!(
            token_color(ColorMode::FracP, t(0.0, 9.0, 7, f64::NAN)),
            heat(1.0)
        );
    }

    /// Worked by hand: p = e^-2 = 0.1353, top 0.5 → 0.2707; the top token is 1 whatever the
    /// rounding of its own surprisal; bins are tenths with 1.0 in the last.
    #[test]
    fn frac_p_and_its_histogram() {
        assert!((frac_p(2.0, 3, Some(0.5)) - 0.270_670_566).abs() < 1e-9);
        assert_eq!(frac_p(0.693, 0, Some(0.4)), 1.0);
        assert_eq!(
            frac_p(0.1, 2, Some(0.5)),
            1.0,
            "clamped: rounding cannot pass the top"
        );
        assert!(frac_p(2.0, 1, None).is_nan());
        assert!(frac_p(2.0, 1, Some(0.0)).is_nan());
        assert_eq!(frac_bin(0.0), Some(0));
        assert_eq!(frac_bin(0.0999), Some(0));
        assert_eq!(frac_bin(0.1), Some(1));
        assert_eq!(frac_bin(0.95), Some(9));
        assert_eq!(frac_bin(1.0), Some(9));
        assert_eq!(frac_bin(f64::NAN), None);
        assert_eq!(
            frac_histogram([1.0, 1.0, 0.27, 0.05, f64::NAN]),
            [1, 0, 1, 0, 0, 0, 0, 0, 0, 2]
        );
        assert_eq!(legend_nats(ColorMode::FracP).first().unwrap().1, "1.00");
    }

    #[test]
    fn legends_and_ids() {
        assert_eq!(legend_nats(ColorMode::Rank).len(), 4);
        assert_eq!(legend_nats(ColorMode::Entropy).last().unwrap().1, "≥6 nats");
        let bits = legend(ColorMode::Entropy, super::super::format::Units::Bits);
        assert_eq!(bits.last().unwrap().1, "≥8.7 bits");
        assert_eq!(bits[2].1, format!("{:.1}", 3.0 / std::f64::consts::LN_2));
        for m in ColorMode::ALL {
            assert_eq!(ColorMode::parse(m.id()), Some(m));
        }
        assert_eq!(ColorMode::parse("nope"), None);
    }
}
