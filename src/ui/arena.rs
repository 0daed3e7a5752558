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
    /// Which group of models linked by battles (directly or through others) it is in, counted
    /// from 0 in order of first battle: ratings compare only within a group.
    pub group: usize,
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
/// Rounds that must hold a model's group whole for it to get an interval: with many models and
/// few votes, some groups are whole in a handful of rounds, whose 2.5% and 97.5% are no
/// interval (some missed the model's own rating).
const MIN_ROUNDS_FOR_INTERVAL: usize = BOOTSTRAP_ROUNDS / 4;

/// Bradley-Terry strengths by maximum likelihood (`fit`). A tie counts half a win to
/// each side, and every pair that met also gets one virtual tie, so a model that never won
/// keeps a finite rating (with one battle lost, 0.5 win against 1.5). Returns Elo-scale
/// ratings (400·log10 strength) in the order of `models`, each group of models linked by
/// battles (`groups`) centred on 1000: nothing says how two groups that never met compare.
pub fn ratings(models: &[String], battles: &[Battle]) -> Vec<f64> {
    ratings_of(models.len(), &indexed(models, battles)).0
}

/// Each battle as the indices of its models in `models` and its vote (battles of a model
/// not in `models`, or of a model against itself, left out), so that the bootstrap's
/// resamples are counted without comparing names.
fn indexed(models: &[String], battles: &[Battle]) -> Vec<(usize, usize, Vote)> {
    let index = |m: &str| models.iter().position(|x| x == m);
    battles
        .iter()
        .filter_map(|b| match (index(&b.a), index(&b.b)) {
            (Some(i), Some(j)) if i != j => Some((i, j, b.vote)),
            _ => None,
        })
        .collect()
}

/// `ratings` and `groups` over `n` models from indexed battles.
fn ratings_of(n: usize, battles: &[(usize, usize, Vote)]) -> (Vec<f64>, Vec<usize>) {
    if n == 0 {
        return (vec![], vec![]);
    }
    // wins[i]: i's (half-)wins; games[i][j]: battles between i and j, virtual ties included.
    let mut wins = vec![0.0f64; n];
    let mut games = vec![vec![0.0f64; n]; n];
    for &(i, j, vote) in battles {
        games[i][j] += 1.0;
        games[j][i] += 1.0;
        match vote {
            Vote::A => wins[i] += 1.0,
            Vote::B => wins[j] += 1.0,
            Vote::Tie | Vote::Bad => {
                wins[i] += 0.5;
                wins[j] += 0.5;
            }
        }
    }
    for (row, w) in games.iter_mut().zip(&mut wins) {
        for g in row.iter_mut().filter(|g| **g > 0.0) {
            *g += 1.0;
            *w += 0.5;
        }
    }
    let group = groups_of(n, battles);
    let log_strength = fit(&wins, &games, &group);
    let mut elo: Vec<f64> = log_strength
        .iter()
        .map(|t| 400.0 * t / std::f64::consts::LN_10)
        .collect();
    for g in 0..=group.iter().copied().max().unwrap_or(0) {
        let members: Vec<usize> = (0..n).filter(|&i| group[i] == g).collect();
        let mean = members.iter().map(|&i| elo[i]).sum::<f64>() / members.len().max(1) as f64;
        for &i in &members {
            elo[i] += 1000.0 - mean;
        }
    }
    (elo, group)
}

/// The log-strengths θ that maximise the Bradley-Terry likelihood Σ wᵢθᵢ − Σ gᵢⱼ ln(e^θᵢ +
/// e^θⱼ), by Newton's method with a halving line search (the likelihood is concave). Each
/// group's first model is held at 0, which fixes the free shift. Hunter's MM iterations took
/// 10,000 rounds short of the optimum when ratings stood a thousand Elo apart; Newton needs a
/// dozen, with a 16 × 16 system at most.
fn fit(wins: &[f64], games: &[Vec<f64>], group: &[usize]) -> Vec<f64> {
    let n = wins.len();
    let pinned: Vec<bool> = (0..n)
        .map(|i| (0..i).all(|j| group[j] != group[i]))
        .collect();
    let log_likelihood = |t: &[f64]| {
        let mut l = 0.0;
        for i in 0..n {
            l += wins[i] * t[i];
            for j in i + 1..n {
                if games[i][j] > 0.0 {
                    let (hi, lo) = (t[i].max(t[j]), t[i].min(t[j]));
                    l -= games[i][j] * (hi + (lo - hi).exp().ln_1p());
                }
            }
        }
        l
    };
    let mut t = vec![0.0f64; n];
    for _ in 0..200 {
        // The gradient, and the negative Hessian (a weighted graph Laplacian).
        let mut grad = wins.to_vec();
        let mut h = vec![vec![0.0f64; n]; n];
        for i in 0..n {
            for j in 0..n {
                if i != j && games[i][j] > 0.0 {
                    let s = 1.0 / (1.0 + (t[j] - t[i]).exp());
                    grad[i] -= games[i][j] * s;
                    let w = games[i][j] * s * (1.0 - s);
                    h[i][i] += w;
                    h[i][j] -= w;
                }
            }
        }
        for i in (0..n).filter(|&i| pinned[i]) {
            grad[i] = 0.0;
            h[i].fill(0.0);
            for row in h.iter_mut() {
                row[i] = 0.0;
            }
            h[i][i] = 1.0;
        }
        let Some(step) = solve(h, grad) else {
            break;
        };
        let before = log_likelihood(&t);
        let mut scale = 1.0;
        let mut next: Vec<f64> = t.iter().zip(&step).map(|(a, d)| a + d).collect();
        while log_likelihood(&next) < before && scale > 1e-9 {
            scale /= 2.0;
            next = t.iter().zip(&step).map(|(a, d)| a + scale * d).collect();
        }
        let moved = t
            .iter()
            .zip(&next)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        t = next;
        if moved < 1e-12 {
            break;
        }
    }
    t
}

/// `a x = b` by Gaussian elimination with partial pivoting; `None` when `a` is singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (done, rest) = a.split_at_mut(col + 1);
        let pivot_row = &done[col];
        for (offset, r) in rest.iter_mut().enumerate() {
            let f = r[col] / pivot_row[col];
            if f != 0.0 {
                for (x, p) in r[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
                b[col + 1 + offset] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let rest: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - rest) / a[row][row];
    }
    Some(x)
}

/// For each of `models`, the group of models it is linked to by battles, directly or through
/// others, numbered from 0 in the order of `models` (a model with no battle is a group alone).
pub fn groups(models: &[String], battles: &[Battle]) -> Vec<usize> {
    groups_of(models.len(), &indexed(models, battles))
}

fn groups_of(n: usize, battles: &[(usize, usize, Vote)]) -> Vec<usize> {
    let mut root: Vec<usize> = (0..n).collect();
    fn find(root: &mut [usize], mut i: usize) -> usize {
        while root[i] != i {
            root[i] = root[root[i]];
            i = root[i];
        }
        i
    }
    for &(i, j, _) in battles {
        let (ri, rj) = (find(&mut root, i), find(&mut root, j));
        // The smaller index is the root, so groups number in the order of `models`.
        root[ri.max(rj)] = ri.min(rj);
    }
    let mut number: Vec<Option<usize>> = vec![None; n];
    let mut next = 0;
    (0..n)
        .map(|i| {
            let r = find(&mut root, i);
            *number[r].get_or_insert_with(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
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
    let indexed = indexed(&models, battles);
    let (rating, group) = ratings_of(models.len(), &indexed);
    let intervals = (battles.len() >= MIN_VOTES_FOR_INTERVAL)
        .then(|| bootstrap(models.len(), &indexed, &group));
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
                interval: intervals.as_ref().and_then(|iv| iv[i]),
                group: group[i],
            };
            // A model against itself (a catalog listing an id twice) is no battle: the
            // ratings leave it out, and so does the count.
            for b in battles.iter().filter(|b| b.a != b.b) {
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
    // Groups apart (their ratings do not compare), each best first.
    out.sort_by(|x, y| x.group.cmp(&y.group).then(y.rating.total_cmp(&x.rating)));
    out
}

/// 2.5% and 97.5% of the ratings over battles resampled with replacement (a fixed seed, so
/// the same record always shows the same interval). A resample is fitted over the models in
/// it, and gives values to a group only where it held every model of the group, linked as on
/// all the votes (a model it left out had the fit's starting value, and the rest of its group
/// another centre). `None` for a model whose group fewer than `MIN_ROUNDS_FOR_INTERVAL`
/// resamples held whole. `battles` are
/// indexed among `n` models, and `whole` is their groups on all the votes.
fn bootstrap(
    n: usize,
    battles: &[(usize, usize, Vote)],
    whole: &[usize],
) -> Vec<Option<(f64, f64)>> {
    let mut rng = crate::engine::sampler::Rng::new(0x0a7e4a);
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(BOOTSTRAP_ROUNDS); n];
    if battles.is_empty() {
        return vec![None; n];
    }
    for _ in 0..BOOTSTRAP_ROUNDS {
        let draw: Vec<(usize, usize, Vote)> = (0..battles.len())
            .map(|_| battles[(rng.next_u64() % battles.len() as u64) as usize])
            .collect();
        let mut present = vec![false; n];
        for &(i, j, _) in &draw {
            (present[i], present[j]) = (true, true);
        }
        // Ratings are centred on 1000 over a group's members, so a round says something of a
        // group only where the draw held all of it, linked as on all the votes. Without one
        // model, the others were centred on 1000 among themselves (y and z, who beat x, went
        // from 1064 to 1000); split in parts (it lost the battles that joined them), each
        // part was centred on 1000 by itself. Such a group sits the round out.
        let (rating, part) = ratings_of(n, &draw);
        let mut part_of_group: Vec<Option<usize>> = vec![None; n];
        let mut whole_here = vec![true; n];
        for i in 0..n {
            match (present[i], part_of_group[whole[i]]) {
                (false, _) => whole_here[whole[i]] = false,
                (true, None) => part_of_group[whole[i]] = Some(part[i]),
                (true, Some(p)) if p != part[i] => whole_here[whole[i]] = false,
                (true, Some(_)) => {}
            }
        }
        for (i, r) in rating.into_iter().enumerate() {
            if whole_here[whole[i]] {
                samples[i].push(r);
            }
        }
    }
    samples
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
            (v.len() >= MIN_ROUNDS_FOR_INTERVAL).then(|| (at(0.025), at(0.975)))
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

    /// y beat x once, and y tied z ten times. A resample without x's one battle has no
    /// rating for x: it gave x the fit's starting 1000 (the interval's top end), beyond
    /// what any resample that held x said (x's interval was 775-1000 around 873).
    #[test]
    fn a_model_a_resample_left_out_gets_no_rating_from_it() {
        let mut b = vec![battle("y", "x", Vote::A)];
        b.extend(vec![battle("y", "z", Vote::Tie); 10]);
        let rows = standings(&b);
        let x = rows.iter().find(|r| r.model == "x").unwrap();
        let (lo, hi) = x.interval.unwrap();
        // x with y alone: one loss and the virtual tie, strengths 1:3, 190.8 below y.
        assert!(lo <= x.rating && x.rating <= hi, "{x:?}");
        assert!(
            hi < x.rating + 1.0,
            "x never rates above its one loss: {x:?}"
        );
        // Nor do y and z, who beat x between them, come down to 1000 in the resamples
        // without x (their interval was 1000-1113 around 1064).
        for m in ["y", "z"] {
            let r = rows.iter().find(|r| r.model == m).unwrap();
            let (lo, hi) = r.interval.unwrap();
            assert!(lo <= r.rating && r.rating <= hi, "{r:?}");
            assert!(lo > r.rating - 1.0, "{m} never rates below its win: {r:?}");
        }
    }

    /// a and b battled ten times (three wins each, four ties), and c beat a once. The
    /// resamples without c centred a and b on 1000 between themselves, well above where c's
    /// win puts them: a's interval reached 1060 around 936.
    #[test]
    fn a_group_missing_a_model_in_a_resample_sits_it_out() {
        let mut b = vec![battle("a", "b", Vote::A); 3];
        b.extend(vec![battle("a", "b", Vote::B); 3]);
        b.extend(vec![battle("a", "b", Vote::Tie); 4]);
        b.push(battle("c", "a", Vote::A));
        let rows = standings(&b);
        for r in rows.iter().filter(|r| r.model != "c") {
            let (lo, hi) = r.interval.unwrap();
            assert!(lo <= r.rating && r.rating <= hi, "{r:?}");
            assert!(r.rating < 950.0 && hi < 1045.0, "{r:?}");
        }
    }

    /// a beat b five times, b tied c once, c beat d five times. A resample without that one
    /// tie splits the group in two, each half centred on 1000 by itself: c's interval reached
    /// 1246 from that alone (b and c rate 1000 on all the votes).
    #[test]
    fn a_resample_that_splits_a_group_gives_it_no_values() {
        let mut b = vec![battle("a", "b", Vote::A); 5];
        b.push(battle("b", "c", Vote::Tie));
        b.extend(vec![battle("c", "d", Vote::A); 5]);
        let rows = standings(&b);
        let by = |m: &str| rows.iter().find(|r| r.model == m).unwrap().clone();
        assert!((by("b").rating - 1000.0).abs() < 1e-6 && (by("c").rating - 1000.0).abs() < 1e-6);
        // The votes are symmetric (a:b as c:d), so c's interval is near b's mirror image
        // (952-1080 against 925-1048); with the split halves it was 952-1246 against b's
        // 765-1053.
        let (b_lo, b_hi) = by("b").interval.unwrap();
        let (c_lo, c_hi) = by("c").interval.unwrap();
        assert!(c_hi < 1200.0, "c's interval {c_lo}-{c_hi}");
        assert!(
            ((2000.0 - b_lo) - c_hi).abs() < 60.0 && ((2000.0 - b_hi) - c_lo).abs() < 60.0,
            "b {b_lo}-{b_hi}, c {c_lo}-{c_hi}"
        );
    }

    /// Eight models in a chain, each link one vote (and three more between the first two):
    /// a resample holds the chain whole in a handful of rounds, too few to call an interval.
    #[test]
    fn an_interval_needs_enough_whole_rounds() {
        let names: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
        let mut b: Vec<Battle> = names
            .windows(2)
            .map(|w| battle(&w[0], &w[1], Vote::A))
            .collect();
        b.extend(vec![battle("m0", "m1", Vote::Tie); 3]);
        assert!(b.len() >= MIN_VOTES_FOR_INTERVAL);
        assert!(standings(&b).iter().all(|r| r.interval.is_none()));
    }

    /// x beat y three times and z beat w once: two groups that never met. Each is centred on
    /// 1000 and said to be apart (the fit's leftovers put them at 976.6 and 1023.4).
    #[test]
    fn groups_that_never_met_are_told_apart() {
        let mut b = vec![battle("x", "y", Vote::A); 3];
        b.push(battle("z", "w", Vote::A));
        let rows = standings(&b);
        let by = |m: &str| rows.iter().find(|r| r.model == m).unwrap().clone();
        assert_eq!((by("x").group, by("y").group), (0, 0));
        assert_eq!((by("z").group, by("w").group), (1, 1));
        assert!(((by("x").rating + by("y").rating) / 2.0 - 1000.0).abs() < 1e-6);
        assert!(((by("z").rating + by("w").rating) / 2.0 - 1000.0).abs() < 1e-6);
        let gap = 400.0 * 3.0f64.log10();
        assert!((by("z").rating - by("w").rating - gap).abs() < 1e-6);
        // Listed group by group, best first in each.
        let order: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
        assert_eq!(order, ["x", "y", "z", "w"]);
        // A battle between the groups joins them.
        b.push(battle("y", "w", Vote::Tie));
        assert!(standings(&b).iter().all(|r| r.group == 0));
        assert_eq!(
            groups(
                &["a".into(), "b".into(), "c".into()],
                &[battle("c", "b", Vote::A)]
            ),
            [0, 1, 1]
        );
    }

    /// A chain in which each model beat the next 600 times: each step is the same gap, 400 ·
    /// log10(1201) (the end model's 600.5 wins of 601 games against its one neighbour; a
    /// middle model's 601 of 1202 hold at any equal steps). The fit stopped early once the
    /// weakest strengths were under 1e-12 (steps of 1223-1232, not 1231.9).
    #[test]
    fn far_apart_ratings_are_fitted_to_the_end() {
        let names: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
        let mut b = Vec::new();
        for w in names.windows(2) {
            b.extend(vec![battle(&w[0], &w[1], Vote::A); 600]);
        }
        let r = ratings(&names, &b);
        let step = 400.0 * 1201f64.log10();
        for w in r.windows(2) {
            assert!((w[0] - w[1] - step).abs() < 1e-3, "{r:?}");
        }
    }

    /// A catalog that lists an id twice could draw a model against itself: no battle in the
    /// ratings, so none in the count either (it counted a win and a loss).
    #[test]
    fn a_model_against_itself_is_not_counted() {
        let b = vec![battle("x", "x", Vote::B), battle("x", "y", Vote::A)];
        let x = standings(&b).into_iter().find(|r| r.model == "x").unwrap();
        assert_eq!((x.battles, x.wins, x.losses), (1, 1, 0));
    }
}
