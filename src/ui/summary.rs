//! The figures under a run, recomputed from the tokens the page holds so that they update
//! live while tokens stream in.

use crate::protocol::{Timing, TokenEvent};

use super::colors::RankBucket;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub tokens: usize,
    pub mean_entropy: Option<f64>,
    pub mean_surprisal: Option<f64>,
    /// exp(mean surprisal) of the generated tokens under the model that made them.
    pub perplexity: Option<f64>,
    /// Σ surprisal in bits over the measured tokens' UTF-8 bytes: unlike the per-token
    /// figures, comparable between models with different vocabularies on the same text.
    pub bits_per_byte: Option<f64>,
    /// Counts per GLTR bucket: top-10, top-100, top-1000, rest.
    pub gltr: [usize; 4],
    pub first_token_ms: Option<f64>,
    pub prefill_tokens_per_s: Option<f64>,
    pub decode_tokens_per_s: Option<f64>,
}

pub fn summarize(tokens: &[TokenEvent], timing: Option<&Timing>) -> RunSummary {
    summarize_measured(tokens, timing, 0)
}

/// `summarize`, where the pieces begin with `held` bytes that were not measured (the
/// unscored first token's, when it was part of a character): bits per byte leaves them out.
pub fn summarize_measured(
    tokens: &[TokenEvent],
    timing: Option<&Timing>,
    held: usize,
) -> RunSummary {
    let n = tokens.len();
    let mut s = RunSummary {
        tokens: n,
        ..RunSummary::default()
    };
    for t in tokens {
        let i = match RankBucket::of(t.rank) {
            RankBucket::Top10 => 0,
            RankBucket::Top100 => 1,
            RankBucket::Top1000 => 2,
            RankBucket::Rest => 3,
        };
        s.gltr[i] += 1;
    }
    if n > 0 {
        let nf = n as f64;
        let ent = tokens.iter().map(|t| t.entropy).sum::<f64>() / nf;
        let sur = tokens.iter().map(|t| t.surprisal).sum::<f64>() / nf;
        s.mean_entropy = Some(ent);
        s.mean_surprisal = Some(sur);
        s.perplexity = Some(sur.exp());
        let bytes = tokens
            .iter()
            .map(|t| t.piece.len())
            .sum::<usize>()
            .saturating_sub(held);
        s.bits_per_byte = (bytes > 0).then(|| sur * nf / std::f64::consts::LN_2 / bytes as f64);
    }
    if let Some(t) = timing {
        s.first_token_ms = t.first_token_ms;
        s.prefill_tokens_per_s = t.prefill_tokens_per_s();
        s.decode_tokens_per_s = t.decode_tokens_per_s();
    } else if let Some(first) = tokens.first() {
        // While streaming: the first token's arrival is known before the final timing is.
        s.first_token_ms = Some(first.at_ms);
    }
    s
}

/// Points for the entropy / surprisal chart: (position, value) pairs.
pub fn series(tokens: &[TokenEvent], pick: impl Fn(&TokenEvent) -> f64) -> Vec<(usize, f64)> {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (i, pick(t)))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

/// An SVG polyline `points` attribute for `values` in a `width`×`height` box with `y_max` at
/// the top. One point sits alone at the left edge rather than vanishing.
pub fn polyline(
    values: &[(usize, f64)],
    count: usize,
    width: f64,
    height: f64,
    y_max: f64,
) -> String {
    let span = count.saturating_sub(1).max(1) as f64;
    values
        .iter()
        .map(|&(i, v)| {
            let x = i as f64 * width / span;
            let y = height - (v / y_max).clamp(0.0, 1.0) * height;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A y-axis top that fits the data and is a round number.
pub fn nice_max(values: impl Iterator<Item = f64>) -> f64 {
    let m = values.filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    if m <= 2.0 {
        2.0
    } else {
        (m / 2.0).ceil() * 2.0
    }
}

/// Counts of `values` in `bins` equal bins over 0..`max`; values at or above `max` go in the
/// last bin (+∞ too: a token the model gave no chance is the least expected, not the most),
/// negative or NaN ones in the first.
pub fn histogram(values: impl Iterator<Item = f64>, bins: usize, max: f64) -> Vec<usize> {
    let bins = bins.max(1);
    let mut out = vec![0; bins];
    for v in values {
        let i = if v > 0.0 {
            // `as usize` saturates: +∞ lands past the end, then in the last bin.
            ((v / max * bins as f64) as usize).min(bins - 1)
        } else {
            0
        };
        out[i] += 1;
    }
    out
}

/// Shares (0..1) of each count in a total.
pub fn shares(counts: &[usize]) -> Vec<f64> {
    let total: usize = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(entropy: f64, surprisal: f64, rank: usize, at_ms: f64) -> TokenEvent {
        let token = crate::engine::Token {
            id: 1,
            text: "x".into(),
            piece: "x".into(),
            entropy,
            surprisal,
            rank,
            ..Default::default()
        };
        TokenEvent::from((token, at_ms))
    }

    #[test]
    fn summary_by_hand() {
        let toks = [
            tok(1.0, 0.5, 0, 100.0),
            tok(3.0, 1.5, 12, 150.0),
            tok(2.0, 1.0, 2000, 200.0),
        ];
        let s = summarize(&toks, None);
        assert_eq!(s.tokens, 3);
        assert_eq!(s.mean_entropy, Some(2.0));
        assert_eq!(s.mean_surprisal, Some(1.0));
        assert!((s.perplexity.unwrap() - std::f64::consts::E).abs() < 1e-12);
        assert_eq!(s.gltr, [1, 1, 0, 1]);
        assert_eq!(s.first_token_ms, Some(100.0));
        assert_eq!(s.decode_tokens_per_s, None);

        let timing = Timing {
            prompt_tokens: 10,
            prefill_ms: 100.0,
            first_token_ms: Some(90.0),
            decode_forwards: 2,
            decode_ms: 100.0,
        };
        // Three bytes, 3 nats in all: 3 / ln 2 / 3 bits a byte; with two of the bytes the
        // unscored first token's, over the one left.
        let bpb = s.bits_per_byte.unwrap();
        assert!((bpb - 1.0 / std::f64::consts::LN_2).abs() < 1e-12, "{bpb}");
        let held = summarize_measured(&toks, None, 2).bits_per_byte.unwrap();
        assert!(
            (held - 3.0 / std::f64::consts::LN_2).abs() < 1e-12,
            "{held}"
        );
        let s = summarize(&toks, Some(&timing));
        assert_eq!(s.first_token_ms, Some(90.0));
        assert_eq!(s.prefill_tokens_per_s, Some(100.0));
        assert_eq!(s.decode_tokens_per_s, Some(20.0));
    }

    #[test]
    fn histogram_bins() {
        let h = histogram(
            [0.0, 0.5, 1.0, 2.9, 3.0, 99.0, f64::NAN, -1.0].into_iter(),
            3,
            3.0,
        );
        assert_eq!(h, vec![4, 1, 3]);
        let h = histogram([f64::INFINITY, f64::NEG_INFINITY].into_iter(), 3, 3.0);
        assert_eq!(h, vec![1, 0, 1]);
        let h = histogram([1.5].into_iter(), 3, 3.0);
        assert_eq!(h, vec![0, 1, 0]);
        assert_eq!(shares(&[1, 3]), vec![0.25, 0.75]);
        assert_eq!(shares(&[0, 0]), vec![0.0, 0.0]);
    }

    #[test]
    fn empty_run_has_no_means() {
        let s = summarize(&[], None);
        assert_eq!(s.tokens, 0);
        assert_eq!(s.perplexity, None);
        assert_eq!(s.mean_entropy, None);
    }

    #[test]
    fn chart_points() {
        let toks = [
            tok(0.0, 4.0, 0, 0.0),
            tok(2.0, f64::NAN, 0, 0.0),
            tok(4.0, 0.0, 0, 0.0),
        ];
        let ent = series(&toks, |t| t.entropy);
        assert_eq!(
            polyline(&ent, 3, 100.0, 50.0, 4.0),
            "0.0,50.0 50.0,25.0 100.0,0.0"
        );
        // NaN points are dropped rather than drawn at a made-up height.
        assert_eq!(series(&toks, |t| t.surprisal).len(), 2);
        assert_eq!(polyline(&[(0, 1.0)], 1, 100.0, 50.0, 2.0), "0.0,25.0");
        assert_eq!(nice_max([0.5, 1.0].into_iter()), 2.0);
        assert_eq!(nice_max([5.1, 1.0].into_iter()), 6.0);
    }
}
