//! The blind arena's record and ratings (plain Rust): battles between two hidden models, the
//! user's vote, and a Bradley-Terry rating per model on the Elo scale, with a bootstrap
//! interval once there are enough votes (as LM Arena reports its leaderboard).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vote {
    A,
    B,
    Tie,
    /// Both answers bad: counted as a tie between the two, as LM Arena counts it.
    Bad,
}

impl Vote {
    pub fn id(self) -> &'static str {
        match self {
            Vote::A => "a",
            Vote::B => "b",
            Vote::Tie => "tie",
            Vote::Bad => "bad",
        }
    }
}

/// One vote: which models were A and B (catalog ids), and what the user chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Battle {
    pub a: String,
    pub b: String,
    pub vote: Vote,
}

/// A model's line in the tally.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub model: String,
    pub battles: usize,
    pub wins: usize,
    pub losses: usize,
    pub ties: usize,
    /// Bradley-Terry strength on the Elo scale (400·log10, mean 1000).
    pub rating: f64,
    /// 95% bootstrap interval of the rating, once there are `MIN_VOTES_FOR_INTERVAL` votes.
    pub interval: Option<(f64, f64)>,
}

/// A saved record is someone's data: at most this many battles are kept ...
pub const MAX_BATTLES: usize = 10_000;
/// ... between at most this many models (the fit is quadratic in them; a catalog has a few).
pub const MAX_MODELS: usize = 16;

/// A saved record's battles, as `battles_from` read them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SavedBattles {
    pub battles: Vec<Battle>,
    /// Entries that could not be read as a battle.
    pub unreadable: usize,
    /// Battles read but left out by `sanitize`.
    pub left_out: usize,
}

/// The battles of a saved record, each read on its own: one that cannot be read (edited by
/// hand, written by another version) costs that battle only, not the tally. `None` when the
/// record's battles are not a list at all.
pub fn battles_from(saved: Option<&serde_json::Value>) -> Option<SavedBattles> {
    let list = match saved {
        Some(serde_json::Value::Array(list)) => list.as_slice(),
        None | Some(serde_json::Value::Null) => &[],
        Some(_) => return None,
    };
    let mut battles: Vec<Battle> = list
        .iter()
        .filter_map(|b| serde_json::from_value(b.clone()).ok())
        .collect();
    let unreadable = list.len() - battles.len();
    let read = battles.len();
    sanitize(&mut battles);
    let left_out = read - battles.len();
    Some(SavedBattles {
        battles,
        unreadable,
        left_out,
    })
}

/// Keeps what a tally can use from a saved record: battles between two different model ids
/// of the catalog's form, the latest `MAX_BATTLES`, among the first `MAX_MODELS` models seen.
pub fn sanitize(battles: &mut Vec<Battle>) {
    let plain = |id: &str| {
        !id.is_empty()
            && id.len() <= 128
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    battles.retain(|b| plain(&b.a) && plain(&b.b) && b.a != b.b);
    if battles.len() > MAX_BATTLES {
        battles.drain(..battles.len() - MAX_BATTLES);
    }
    let mut models: Vec<String> = Vec::new();
    battles.retain(|b| {
        for m in [&b.a, &b.b] {
            if !models.contains(m) {
                if models.len() == MAX_MODELS {
                    return false;
                }
                models.push(m.clone());
            }
        }
        true
    });
}

/// Votes before an interval is shown: fewer say too little to be worth a range.
pub const MIN_VOTES_FOR_INTERVAL: usize = 10;
const BOOTSTRAP_ROUNDS: usize = 200;

/// Bradley-Terry strengths by the MM algorithm (Hunter, 2004). A tie counts half a win to
/// each side, and every pair that met also gets one virtual tie, so a model that never won
/// keeps a finite rating (with one battle lost, 0.5 win against 1.5). Returns Elo-scale
/// ratings (400·log10 strength), centred on 1000, in the order of `models`.
pub fn ratings(models: &[String], battles: &[Battle]) -> Vec<f64> {
    let n = models.len();
    if n == 0 {
        return vec![];
    }
    let index = |m: &str| models.iter().position(|x| x == m);
    // wins[i]: i's (half-)wins; games[i][j]: battles between i and j, virtual ties included.
    let mut wins = vec![0.0f64; n];
    let mut games = vec![vec![0.0f64; n]; n];
    let mut met = vec![vec![false; n]; n];
    for b in battles {
        let (Some(i), Some(j)) = (index(&b.a), index(&b.b)) else {
            continue;
        };
        if i == j {
            continue;
        }
        games[i][j] += 1.0;
        games[j][i] += 1.0;
        met[i][j] = true;
        met[j][i] = true;
        match b.vote {
            Vote::A => wins[i] += 1.0,
            Vote::B => wins[j] += 1.0,
            Vote::Tie | Vote::Bad => {
                wins[i] += 0.5;
                wins[j] += 0.5;
            }
        }
    }
    for i in 0..n {
        for j in 0..n {
            if met[i][j] {
                games[i][j] += 1.0;
                wins[i] += 0.5;
            }
        }
    }
    let mut p = vec![1.0f64; n];
    for _ in 0..10_000 {
        let mut next = p.clone();
        for i in 0..n {
            let denom: f64 = (0..n)
                .filter(|&j| games[i][j] > 0.0)
                .map(|j| games[i][j] / (p[i] + p[j]))
                .sum();
            if denom > 0.0 {
                next[i] = wins[i] / denom;
            }
        }
        // Strengths are defined up to a factor: fix their geometric mean at 1.
        let log_mean = next.iter().map(|x| x.ln()).sum::<f64>() / n as f64;
        for x in &mut next {
            *x /= log_mean.exp();
        }
        let change = p
            .iter()
            .zip(&next)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        p = next;
        if change < 1e-12 {
            break;
        }
    }
    p.iter().map(|x| 1000.0 + 400.0 * x.log10()).collect()
}

/// The tally: one line per model that has battled, best rating first.
pub fn standings(battles: &[Battle]) -> Vec<Standing> {
    let mut models: Vec<String> = Vec::new();
    for b in battles {
        for m in [&b.a, &b.b] {
            if !models.contains(m) {
                models.push(m.clone());
            }
        }
    }
    let rating = ratings(&models, battles);
    let intervals = (battles.len() >= MIN_VOTES_FOR_INTERVAL).then(|| bootstrap(&models, battles));
    let mut out: Vec<Standing> = models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut s = Standing {
                model: m.clone(),
                battles: 0,
                wins: 0,
                losses: 0,
                ties: 0,
                rating: rating[i],
                interval: intervals.as_ref().map(|iv| iv[i]),
            };
            for b in battles {
                let side = if &b.a == m {
                    Vote::A
                } else if &b.b == m {
                    Vote::B
                } else {
                    continue;
                };
                s.battles += 1;
                match b.vote {
                    v if v == side => s.wins += 1,
                    Vote::Tie | Vote::Bad => s.ties += 1,
                    _ => s.losses += 1,
                }
            }
            s
        })
        .collect();
    out.sort_by(|x, y| y.rating.total_cmp(&x.rating));
    out
}

/// 2.5% and 97.5% of the ratings over battles resampled with replacement (a fixed seed, so
/// the same record always shows the same interval).
fn bootstrap(models: &[String], battles: &[Battle]) -> Vec<(f64, f64)> {
    let mut rng = crate::engine::sampler::Rng::new(0x0a7e4a);
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(BOOTSTRAP_ROUNDS); models.len()];
    for _ in 0..BOOTSTRAP_ROUNDS {
        let draw: Vec<Battle> = (0..battles.len())
            .map(|_| battles[(rng.next_u64() % battles.len() as u64) as usize].clone())
            .collect();
        for (i, r) in ratings(models, &draw).into_iter().enumerate() {
            samples[i].push(r);
        }
    }
    samples
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
            (at(0.025), at(0.975))
        })
        .collect()
}

/// Two different models drawn from `pool` in a random order (`r` draws a number below its
/// argument); `None` with fewer than two.
pub fn draw_pair(pool: &[String], mut r: impl FnMut(usize) -> usize) -> Option<(String, String)> {
    if pool.len() < 2 {
        return None;
    }
    let i = r(pool.len());
    let mut j = r(pool.len() - 1);
    if j >= i {
        j += 1;
    }
    Some((pool[i].clone(), pool[j].clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn battle(a: &str, b: &str, vote: Vote) -> Battle {
        Battle {
            a: a.into(),
            b: b.into(),
            vote,
        }
    }

    /// Worked by hand: X beats Y three times and loses once. With the virtual tie, X has 3.5
    /// wins of 5 and Y 1.5, so the strengths are 7:3 and the Elo gap 400·log10(7/3) = 147.19,
    /// centred on 1000: 1073.60 and 926.40.
    #[test]
    fn two_models_match_the_hand_worked_rating() {
        let models = vec!["x".to_string(), "y".to_string()];
        let mut b = vec![battle("x", "y", Vote::A); 2];
        b.push(battle("y", "x", Vote::B));
        b.push(battle("y", "x", Vote::A));
        let r = ratings(&models, &b);
        let gap = 400.0 * (7.0f64 / 3.0).log10();
        assert!((r[0] - (1000.0 + gap / 2.0)).abs() < 1e-6, "{r:?}");
        assert!((r[1] - (1000.0 - gap / 2.0)).abs() < 1e-6, "{r:?}");
        // A tie and "both bad" count alike: half a win each.
        let ties = vec![battle("x", "y", Vote::Tie), battle("x", "y", Vote::Bad)];
        let r = ratings(&models, &ties);
        assert!((r[0] - 1000.0).abs() < 1e-9 && (r[1] - 1000.0).abs() < 1e-9);
    }

    /// Three models: the fitted strengths satisfy the Bradley-Terry equations (each model's
    /// wins equal its expected wins), worked for X>Y twice, Y>Z twice, Z>X once.
    #[test]
    fn three_models_satisfy_the_likelihood_equations() {
        let models: Vec<String> = ["x", "y", "z"].iter().map(|s| s.to_string()).collect();
        let b = vec![
            battle("x", "y", Vote::A),
            battle("x", "y", Vote::A),
            battle("y", "z", Vote::A),
            battle("z", "y", Vote::B),
            battle("z", "x", Vote::A),
        ];
        let r = ratings(&models, &b);
        let p: Vec<f64> = r.iter().map(|x| 10f64.powf((x - 1000.0) / 400.0)).collect();
        // With the virtual tie per pair: games x-y 3, y-z 3, x-z 2; wins x 2 + 0.5 + 0.5,
        // y 2 + 0.5 + 0.5, z 1 + 0.5 + 0.5 (8 in all, as many as the games).
        let games = [[0.0, 3.0, 2.0], [3.0, 0.0, 3.0], [2.0, 3.0, 0.0]];
        let wins = [3.0, 3.0, 2.0];
        for i in 0..3 {
            let expected: f64 = (0..3).map(|j| games[i][j] * p[i] / (p[i] + p[j])).sum();
            assert!(
                (expected - wins[i]).abs() < 1e-6,
                "model {i}: {expected} vs {}",
                wins[i]
            );
        }
        assert!(r[2] < r[0] && r[2] < r[1], "z won least: {r:?}");
    }

    #[test]
    fn standings_count_and_intervals_come_with_enough_votes() {
        let mut b = vec![battle("x", "y", Vote::A); 3];
        b.push(battle("y", "x", Vote::Tie));
        let s = standings(&b);
        assert_eq!(s[0].model, "x");
        assert_eq!(
            (s[0].battles, s[0].wins, s[0].losses, s[0].ties),
            (4, 3, 0, 1)
        );
        assert_eq!((s[1].wins, s[1].losses, s[1].ties), (0, 3, 1));
        assert!(
            s[0].interval.is_none(),
            "four votes are too few for a range"
        );
        let many: Vec<Battle> = (0..12)
            .map(|i| battle("x", "y", if i % 3 == 0 { Vote::B } else { Vote::A }))
            .collect();
        let s = standings(&many);
        let (lo, hi) = s[0].interval.expect("an interval from ten votes on");
        assert!(
            lo <= s[0].rating && s[0].rating <= hi,
            "{lo} {} {hi}",
            s[0].rating
        );
        assert_eq!(
            standings(&many),
            s,
            "the same record gives the same interval"
        );
        assert!(standings(&[]).is_empty());
    }

    #[test]
    fn a_saved_record_is_cut_to_what_a_tally_can_use() {
        let mut b = vec![
            battle("x", "x", Vote::A),
            battle("<script>", "y", Vote::A),
            battle(&"z".repeat(200), "y", Vote::A),
            battle("x", "y", Vote::B),
        ];
        sanitize(&mut b);
        assert_eq!(b, vec![battle("x", "y", Vote::B)]);
        let mut many: Vec<Battle> = (0..40)
            .map(|i| battle(&format!("m{i}"), "base", Vote::A))
            .collect();
        sanitize(&mut many);
        assert_eq!(many.len(), MAX_MODELS - 1, "16 models: base and 15 others");
        let mut long = vec![battle("x", "y", Vote::Tie); MAX_BATTLES + 5];
        long.push(battle("x", "y", Vote::A));
        sanitize(&mut long);
        assert_eq!(long.len(), MAX_BATTLES);
        assert_eq!(long.last().unwrap().vote, Vote::A, "the latest are kept");
    }

    #[test]
    fn a_pair_is_two_different_models() {
        let pool: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        for (i, j) in [(0, 0), (0, 1), (2, 0), (2, 1), (1, 1)] {
            let mut draws = [i, j].into_iter();
            let (x, y) = draw_pair(&pool, |_| draws.next().unwrap()).unwrap();
            assert_ne!(x, y);
        }
        assert!(draw_pair(&pool[..1], |_| 0).is_none());
    }

    /// A battle that cannot be read costs that battle, not the other votes.
    #[test]
    fn an_unreadable_battle_costs_only_itself() {
        let saved = serde_json::json!([
            {"a": "m1", "b": "m2", "vote": "a"},
            {"a": "m1", "b": "m2", "vote": "skip"},
            {"a": "m2", "b": "m3", "vote": "tie"},
            {"a": 5, "b": "m3", "vote": "b"},
            {"a": "m3", "b": "m3", "vote": "b"},
        ]);
        let read = battles_from(Some(&saved)).unwrap();
        assert_eq!(read.battles.len(), 2);
        // Two could not be read; a model against itself is read, then left out.
        assert_eq!((read.unreadable, read.left_out), (2, 1));
        assert_eq!(battles_from(Some(&serde_json::json!("x"))), None);
        assert_eq!(battles_from(None), Some(SavedBattles::default()));
    }
}
