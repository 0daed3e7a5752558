//! Token colouring: by entropy, by surprisal, or by GLTR rank bucket.
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
}

impl ColorMode {
    pub const ALL: [ColorMode; 3] = [ColorMode::Entropy, ColorMode::Surprisal, ColorMode::Rank];

    pub fn id(self) -> &'static str {
        match self {
            ColorMode::Entropy => "entropy",
            ColorMode::Surprisal => "surprisal",
            ColorMode::Rank => "rank",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ColorMode::Entropy => "Entropy",
            ColorMode::Surprisal => "Surprisal",
            ColorMode::Rank => "GLTR rank",
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

/// The background colour for a token.
pub fn token_color(mode: ColorMode, entropy: f64, surprisal: f64, rank: usize) -> String {
    match mode {
        ColorMode::Entropy => heat(unit(entropy, ENTROPY_MAX)),
        ColorMode::Surprisal => heat(unit(surprisal, SURPRISAL_MAX)),
        ColorMode::Rank => RankBucket::of(rank).color().to_string(),
    }
}

/// Legend entries (colour, label) for a mode.
pub fn legend(mode: ColorMode) -> Vec<(String, String)> {
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
        ColorMode::Entropy | ColorMode::Surprisal => {
            let max = if mode == ColorMode::Entropy {
                ENTROPY_MAX
            } else {
                SURPRISAL_MAX
            };
            (0..=4)
                .map(|i| {
                    let v = max * i as f64 / 4.0;
                    let label = if i == 4 {
                        format!("≥{v:.0} nats")
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
        // The same entropy gives the same colour whatever else is in the run.
        assert_eq!(
            token_color(ColorMode::Entropy, 2.0, 0.1, 0),
            token_color(ColorMode::Entropy, 2.0, 7.0, 5000)
        );
        assert_ne!(
            token_color(ColorMode::Surprisal, 2.0, 0.1, 0),
            token_color(ColorMode::Surprisal, 2.0, 7.0, 0)
        );
        assert_eq!(token_color(ColorMode::Rank, 9.0, 9.0, 50), "#f2d14b");
    }

    #[test]
    fn legends_and_ids() {
        assert_eq!(legend(ColorMode::Rank).len(), 4);
        assert_eq!(legend(ColorMode::Entropy).last().unwrap().1, "≥6 nats");
        for m in ColorMode::ALL {
            assert_eq!(ColorMode::parse(m.id()), Some(m));
        }
        assert_eq!(ColorMode::parse("nope"), None);
    }
}
