//! An evaluation run as the page shows, keeps and exports it: per pane (model) and condition,
//! the item results, their accuracy with a 95% interval, and paired comparisons between
//! conditions on one model and between models on one condition. Plain Rust; `app::eval_view`
//! draws it.

use serde::{Deserialize, Serialize};

use crate::eval::stats::{McNemar, Verdict};
use crate::eval::{accuracy, compare, describe_comparison, Accuracy, ItemResult};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EvalReport {
    /// What was asked: the task with its size and seed, or the file's name.
    pub source: String,
    /// Condition ids, in the order they were chosen (the first is the reference).
    pub conditions: Vec<String>,
    /// Items in the set.
    pub n: usize,
    pub panes: Vec<PaneReport>,
    /// A run that stopped or failed part way: only the items scored are counted.
    pub partial: bool,
    /// Why a pane's part ended early ("SmolLM2: line 4: …"), one entry per failed pane, or
    /// that a reload cut the run off.
    #[serde(default)]
    pub failures: Vec<String>,
    /// Still being scored when it was last saved: a report read back with this set was cut
    /// off by a reload (`interrupted`).
    #[serde(default)]
    pub running: bool,
    /// When it was saved (ms since 1970): a running report saved moments ago is another
    /// tab's live run, not one a reload cut off (a page that goes saves its run as ended).
    #[serde(default, skip_serializing_if = "is_unset")]
    pub saved_at_ms: f64,
    /// The browser's storage refused the last save (a run of thousands of items by several
    /// panes is megabytes): the page says a reload will lose it, and to export it.
    #[serde(skip)]
    pub unsaved: bool,
}

fn is_unset(ms: &f64) -> bool {
    *ms == 0.0
}

/// A running report saved less than this long ago is of a run still going in another tab
/// (a live run saves every 5 s).
pub const LIVE_ELSEWHERE_MS: f64 = 20_000.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PaneReport {
    /// The pane's place on the page when the run started, from 0 (`data-pane-index`).
    pub index: usize,
    /// The page's own id for the pane, which stays when panes before it are removed: what
    /// a live run follows. Not part of a report.
    #[serde(skip)]
    pub pane_id: usize,
    pub model: String,
    pub results: Vec<(String, ItemResult)>,
}

/// One paired comparison, for the table and the sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// "SmolLM2: repeat-2 vs baseline" or "baseline: Gemma 3 vs SmolLM2".
    pub label: String,
    /// What both sides share: the model ("SmolLM2") or the condition ("On baseline").
    pub scope: String,
    pub test: McNemar,
    pub verdict: Verdict,
    pub sentence: String,
    /// Items both sides scored: what the comparison rests on.
    pub n: usize,
}

/// The names the report gives the panes `(place on the page from 0, model)`: a model in two
/// panes is told apart by the pane's number ("SmolLM2 (pane 2)"), or the table, the chart and
/// the sentences would compare a name with itself.
pub fn pane_names(panes: &[(usize, String)]) -> Vec<String> {
    panes
        .iter()
        .map(|(index, model)| {
            if panes.iter().filter(|(_, m)| m == model).count() > 1 {
                format!("{model} (pane {})", index + 1)
            } else {
                model.clone()
            }
        })
        .collect()
}

/// Log-likelihood margin, per token of the longer of the two best choices, under which a pick
/// counts as a near tie (`EvalReport::near_ties`). The page's and the CLI's numbers differ by
/// about this much a token on these models, and a choice's differences add up over its
/// tokens (3 to 9-token choices differed by 0.21 nats on average, up to 0.93).
pub const NEAR_TIE_NATS: f64 = 0.1;

impl EvalReport {
    pub fn results(&self, pane: usize, condition: &str) -> Vec<ItemResult> {
        self.panes
            .get(pane)
            .map(|p| {
                p.results
                    .iter()
                    .filter(|(c, _)| c == condition)
                    .map(|(_, r)| r.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn accuracy(&self, pane: usize, condition: &str) -> Accuracy {
        accuracy(&self.results(pane, condition))
    }

    /// What picking at random among each item's choices would score (`eval::chance`), over
    /// every item scored in the run.
    pub fn chance(&self) -> Option<f64> {
        let all: Vec<ItemResult> = self
            .panes
            .iter()
            .flat_map(|p| p.results.iter().map(|(_, r)| r.clone()))
            .collect();
        crate::eval::chance(&all)
    }

    /// A saved report as a page that opens reads it at `now_ms` (ms since 1970): one still
    /// running, saved moments ago, is another tab's live run; one saved longer ago was cut
    /// off (`interrupted`).
    pub fn read_back(mut self, now_ms: f64) -> Self {
        let age = now_ms - self.saved_at_ms;
        if self.running && (0.0..LIVE_ELSEWHERE_MS).contains(&age) {
            self.running = false;
            self.partial = true;
            self.failures.push(
                "the run was still going in another tab or window when this page opened \
                 (reload this page once it ends to see all of it)"
                    .into(),
            );
            return self;
        }
        self.interrupted()
    }

    /// A report saved while it was still being scored, read back after a reload: what was
    /// scored stays, marked partial, with the reason.
    pub fn interrupted(mut self) -> Self {
        if self.running {
            self.running = false;
            self.partial = true;
            self.failures
                .push("the page was reloaded during the run, which ended it".into());
        }
        self
    }

    /// Why the run is partial, for the line under the headline.
    pub fn partial_note(&self) -> String {
        if !self.partial {
            String::new()
        } else if self.failures.is_empty() {
            " · partial: stopped before the end".into()
        } else {
            format!(" · partial: {}", self.failures.join("; "))
        }
    }

    /// How many picks (of all scored by log-likelihood; a generated answer has none to be
    /// near) had a runner-up within `NEAR_TIE_NATS`: rounding that
    /// differs between builds and machines (the page's kernels against the CLI's, both within
    /// llama.cpp's own spread) can flip those, and with them a comparison on few items. Said
    /// under the results, so a verdict resting on them is read as such.
    pub fn near_ties(&self) -> (usize, usize) {
        let mut near = 0;
        let mut all = 0;
        for p in &self.panes {
            for (_, r) in p.results.iter().filter(|(_, r)| !r.loglik.is_empty()) {
                all += 1;
                let mut ll: Vec<(f64, usize)> = r
                    .loglik
                    .iter()
                    .copied()
                    .zip(r.tokens.iter().copied().chain(std::iter::repeat(1)))
                    .filter(|(x, _)| x.is_finite())
                    .collect();
                ll.sort_by(|a, b| b.0.total_cmp(&a.0));
                if let [(best, a), (second, b), ..] = ll[..] {
                    if best - second < NEAR_TIE_NATS * a.max(b).max(1) as f64 {
                        near += 1;
                    }
                }
            }
        }
        (near, all)
    }

    /// The sentence for `near_ties`, empty when there are none.
    pub fn near_tie_note(&self) -> String {
        let (near, all) = self.near_ties();
        if near == 0 {
            return String::new();
        }
        format!(
            "{near} of {all} picks had a runner-up within {NEAR_TIE_NATS} nats a token: rounding that \
             differs between builds or machines can flip those, so a difference of a few items \
             may not repeat elsewhere."
        )
    }

    /// With several comparisons, how many would show a difference at p < 0.1 by chance alone
    /// when there is none anywhere: a lone win among many is weak evidence. Empty for one.
    /// The expectation is exact for the items each comparison rests on (the test is discrete,
    /// so few items that differ give less than 0.1 each); with none to expect, nothing is said.
    pub fn many_comparisons_note(&self) -> String {
        let cs = self.comparisons();
        let k = cs.len();
        let expected: f64 = cs
            .iter()
            .map(|c| crate::eval::stats::chance_of_a_verdict(c.test.b + c.test.c))
            .sum();
        if k < 2 || expected < 0.005 {
            return String::new();
        }
        format!(
            "{k} comparisons: even if no condition or model differed at all, about {expected:.2} \
             of them would be expected to come out a win or a loss at p < 0.1 by chance (for \
             as many items where only one side was right as each has here), so a single one \
             among them is weak evidence (repeat it on new items: another seed)."
        )
    }

    /// Results scored so far, of all there will be.
    pub fn progress(&self) -> (usize, usize) {
        let done = self.panes.iter().map(|p| p.results.len()).sum();
        (done, self.n * self.conditions.len() * self.panes.len())
    }

    /// Every condition against the first, on each model; every model against the first, on
    /// each condition.
    pub fn comparisons(&self) -> Vec<Comparison> {
        let mut out = Vec::new();
        let Some(first) = self.conditions.first() else {
            return out;
        };
        for (i, p) in self.panes.iter().enumerate() {
            for c in self.conditions.iter().skip(1) {
                out.extend(self.comparison(
                    // The reference first, as the table's "only first right (b)" counts it.
                    (format!("{}: {first} vs {c}", p.model), p.model.clone()),
                    (i, first, first.as_str()),
                    (i, c, c.as_str()),
                ));
            }
        }
        if let Some(p0) = self.panes.first() {
            for c in &self.conditions {
                for (i, p) in self.panes.iter().enumerate().skip(1) {
                    out.extend(self.comparison(
                        (
                            format!("{c}: {} vs {}", p0.model, p.model),
                            format!("On {c}"),
                        ),
                        (0, c, p0.model.as_str()),
                        (i, c, p.model.as_str()),
                    ));
                }
            }
        }
        out
    }

    fn comparison(
        &self,
        (label, scope): (String, String),
        a: (usize, &str, &str),
        b: (usize, &str, &str),
    ) -> Option<Comparison> {
        let (ra, rb) = (self.results(a.0, a.1), self.results(b.0, b.1));
        let test = compare(&ra, &rb);
        // Accuracies over the items both runs scored, so the sentence and the test agree.
        let shared = |x: &[ItemResult], y: &[ItemResult]| -> Vec<ItemResult> {
            x.iter()
                .filter(|r| y.iter().any(|s| s.index == r.index))
                .cloned()
                .collect()
        };
        let (aa, ab) = (accuracy(&shared(&ra, &rb)), accuracy(&shared(&rb, &ra)));
        // No item scored on both sides (a run stopped or cut off early): nothing to compare,
        // rather than "no clear difference" between two made-up 0%s.
        if aa.n == 0 {
            return None;
        }
        Some(Comparison {
            sentence: describe_comparison((a.2, &aa), (b.2, &ab), &test),
            verdict: test.verdict(),
            test,
            label,
            scope,
            n: aa.n,
        })
    }

    /// The plain sentence under the chart: of the comparisons that show something, the one
    /// on the most items (the first of those), else the one on the most items; or what the
    /// run shows when there is none.
    pub fn headline(&self) -> String {
        if self.progress().0 == 0 {
            return if !self.failures.is_empty() {
                format!("Nothing was scored: {}.", self.failures.join("; "))
            } else if self.partial {
                "Nothing was scored: the run was stopped before its first item.".into()
            } else {
                String::new()
            };
        }
        let all = self.comparisons();
        let partial = if self.partial {
            " (partial run: only the items scored count)"
        } else {
            ""
        };
        // The most items, the first among equals (`max_by_key` keeps the last).
        let best = |shows: bool| {
            all.iter()
                .filter(|c| (c.verdict != Verdict::Neutral) == shows)
                .rev()
                .max_by_key(|c| c.n)
        };
        match best(true).or(best(false)) {
            Some(c) => format!("{}: {}{partial}", c.scope, c.sentence),
            None => {
                // The pane and condition with the most items (a stopped run may have scored
                // nothing on the first); with more than one of either, nothing was scored on
                // both sides of any comparison.
                let mut best: Option<(usize, usize, &PaneReport, &String)> = None;
                for (i, p) in self.panes.iter().enumerate() {
                    for c in &self.conditions {
                        let n = self.accuracy(i, c).n;
                        if best.is_none_or(|(most, ..)| n > most) {
                            best = Some((n, i, p, c));
                        }
                    }
                }
                let Some((_, i, p, c)) = best else {
                    return String::new();
                };
                let a = self.accuracy(i, c);
                let alone = self.panes.len() == 1 && self.conditions.len() == 1;
                let next = if alone {
                    "Add a condition or a model to compare."
                } else {
                    "No item was scored on both sides of a comparison."
                };
                format!(
                    "{} on {c}: {:.0}% [{:.0}–{:.0}%] of {}. {next}{partial}",
                    p.model,
                    a.accuracy * 100.0,
                    a.ci95.0 * 100.0,
                    a.ci95.1 * 100.0,
                    super::format::count(a.n, "item", "items")
                )
            }
        }
    }

    /// One row per pane, condition and item: the picks, each choice's log-likelihood, and
    /// under a `generate` condition the answer the model wrote.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "pane,model,condition,item,answer,pred,pred_norm,correct,correct_norm,loglik,output\n",
        );
        for p in &self.panes {
            for (c, r) in &p.results {
                let ll: Vec<String> = r.loglik.iter().map(|l| format!("{l:.6}")).collect();
                out.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{},\"[{}]\",{}\n",
                    p.index,
                    super::export::csv_field(&p.model),
                    super::export::csv_field(c),
                    r.index,
                    r.answer,
                    r.pred,
                    r.pred_norm,
                    r.correct,
                    r.correct_norm,
                    // A JSON list in one field: a spreadsheet reads a bare "-17.4 -73.2"
                    // as the formula -17.4-73.2 (one sum), and the formula guard's quote
                    // would be kept in every row; "[" starts no formula.
                    ll.join(", "),
                    super::export::csv_field(r.output.as_deref().unwrap_or(""))
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(index: usize, correct: bool) -> ItemResult {
        ItemResult {
            index,
            answer: 0,
            loglik: vec![-1.0, -2.0],
            tokens: vec![1, 1],
            pred: usize::from(!correct),
            pred_norm: 0,
            correct,
            correct_norm: true,
            forward_tokens: 2,
            forward_tokens_without_sharing: 3,
            output: None,
        }
    }

    fn report() -> EvalReport {
        // Baseline right on 2 of 10; repeated right on 10 of 10: b = 0, c = 8, p = 2/256.
        let mut results = Vec::new();
        for i in 0..10 {
            results.push(("baseline".to_string(), r(i, i < 2)));
            results.push(("repeat-2".to_string(), r(i, true)));
        }
        EvalReport {
            source: "name-index".into(),
            conditions: vec!["baseline".into(), "repeat-2".into()],
            n: 10,
            panes: vec![
                PaneReport {
                    index: 0,
                    pane_id: 0,
                    model: "SmolLM2".into(),
                    results,
                },
                PaneReport {
                    index: 1,
                    pane_id: 1,
                    model: "Gemma, 3".into(),
                    results: (0..10)
                        .flat_map(|i| {
                            [
                                ("baseline".to_string(), r(i, i < 3)),
                                ("repeat-2".to_string(), r(i, i < 3)),
                            ]
                        })
                        .collect(),
                },
            ],
            partial: false,
            ..EvalReport::default()
        }
    }

    /// A run stopped before anything was scored compares nothing and says so (it used to
    /// read "no clear difference: 0% [0%–100%] against 0% [0%–100%]").
    #[test]
    fn a_run_with_nothing_scored_claims_nothing() {
        let mut rep = report();
        rep.panes.iter_mut().for_each(|p| p.results.clear());
        rep.partial = true;
        assert!(rep.comparisons().is_empty());
        assert_eq!(
            rep.headline(),
            "Nothing was scored: the run was stopped before its first item."
        );
        // One side scored, the other not: only the comparisons with items on both sides.
        let mut one = report();
        one.panes[1].results.retain(|(c, _)| c == "baseline");
        one.partial = true;
        let labels: Vec<String> = one.comparisons().into_iter().map(|c| c.label).collect();
        assert_eq!(labels.len(), 2, "{labels:?}");
        assert!(labels.iter().all(|l| !l.starts_with("Gemma, 3: repeat-2")));
    }

    /// Two models, one condition, stopped while the first had scored nothing: the headline
    /// speaks of the one that scored (it spoke of the empty one: "0% [0–100%] of 0 items").
    #[test]
    fn with_no_comparison_the_headline_names_what_was_scored() {
        let mut rep = report();
        rep.conditions.truncate(1);
        rep.panes[0].results.clear();
        rep.panes[1].results.retain(|(c, _)| c == "baseline");
        rep.partial = true;
        assert!(rep.comparisons().is_empty());
        let head = rep.headline();
        assert!(
            head.starts_with("Gemma, 3 on baseline: 30% ")
                && head.contains("of 10 items. No item was scored on both sides"),
            "{head}"
        );
    }

    /// Picks whose runner-up is within 0.1 nats are counted and said.
    #[test]
    fn near_ties_are_counted() {
        let mut rep = report();
        assert_eq!(rep.near_ties(), (0, 40));
        assert!(rep.near_tie_note().is_empty());
        rep.panes[0].results[0].1.loglik = vec![-1.0, -1.05, f64::NEG_INFINITY];
        rep.panes[1].results[3].1.loglik = vec![-3.0, -2.95];
        assert_eq!(rep.near_ties(), (2, 40));
        assert!(rep
            .near_tie_note()
            .starts_with("2 of 40 picks had a runner-up within 0.1 nats a token"));
        // Margins add up over a choice's tokens: 0.3 apart over five tokens is near.
        rep.panes[1].results[4].1.loglik = vec![-9.0, -9.3];
        rep.panes[1].results[4].1.tokens = vec![5, 2];
        assert_eq!(rep.near_ties(), (3, 40));
        rep.panes[1].results[4].1.tokens = vec![1, 2];
        assert_eq!(rep.near_ties(), (2, 40));
        // A generated answer has no runner-up, and is not counted among the picks.
        rep.panes[1].results[5].1.loglik.clear();
        rep.panes[1].results[5].1.tokens.clear();
        assert_eq!(rep.near_ties(), (2, 39));
    }

    /// The headline rests on the comparison with the most items, not on the first one: a pane
    /// removed after two items used to speak for a complete run beside it.
    #[test]
    fn the_headline_rests_on_the_most_items() {
        let mut rep = report();
        // Pane 0 keeps two items; pane 1 is complete (its own conditions tie: neutral).
        rep.panes[0].results.retain(|(_, r)| r.index < 2);
        rep.partial = true;
        let head = rep.headline();
        assert!(head.starts_with("Gemma, 3: "), "{head}");
        let all = rep.comparisons();
        let chosen = all
            .iter()
            .find(|c| head.contains(&c.sentence))
            .expect("a comparison");
        assert_eq!(
            chosen.n,
            all.iter().map(|c| c.n).max().unwrap_or(0),
            "{head}"
        );
    }

    #[test]
    fn a_report_saved_mid_run_reads_back_as_cut_off_by_the_reload() {
        let mut rep = report();
        assert_eq!(rep.partial_note(), "");
        rep.running = true;
        let saved = serde_json::to_string(&rep).unwrap();
        let back = serde_json::from_str::<EvalReport>(&saved)
            .unwrap()
            .interrupted();
        assert!(back.partial && !back.running);
        assert_eq!(back.progress(), rep.progress(), "what was scored stays");
        assert!(
            back.partial_note().contains("reloaded during the run"),
            "{}",
            back.partial_note()
        );
        // A finished report is left as it was.
        assert_eq!(report().interrupted(), report());
        assert_eq!(report().read_back(1e12), report());
        // Saved 3 s before this page opened: another tab's run, still going.
        let mut live = rep.clone();
        live.saved_at_ms = 1e12 - 3000.0;
        let elsewhere = live.clone().read_back(1e12);
        assert!(elsewhere.partial && !elsewhere.running);
        assert!(
            elsewhere
                .partial_note()
                .contains("still going in another tab")
                && !elsewhere.partial_note().contains("reloaded"),
            "{}",
            elsewhere.partial_note()
        );
        // Saved a minute before, or at a time to come (a clock put back): cut off.
        for at in [1e12 - 60_000.0, 1e12 + 60_000.0] {
            live.saved_at_ms = at;
            let note = live.clone().read_back(1e12).partial_note();
            assert!(note.contains("reloaded during the run"), "{note}");
        }
        // Reports saved before these fields existed still read.
        let old = saved.replace(",\"failures\":[],\"running\":true", "");
        assert!(!old.contains("running"));
        assert!(serde_json::from_str::<EvalReport>(&old).is_ok());
        let mut failed = report();
        failed.partial = true;
        failed.failures.push("SmolLM2: line 2: 6005 tokens".into());
        assert_eq!(
            failed.partial_note(),
            " · partial: SmolLM2: line 2: 6005 tokens"
        );
    }

    #[test]
    fn a_model_in_two_panes_is_named_by_its_pane() {
        let names = pane_names(&[
            (0, "SmolLM2".into()),
            (1, "Gemma 3".into()),
            (3, "SmolLM2".into()),
        ]);
        assert_eq!(names, ["SmolLM2 (pane 1)", "Gemma 3", "SmolLM2 (pane 4)"]);
    }

    #[test]
    fn accuracies_comparisons_and_the_headline() {
        let rep = report();
        let a = rep.accuracy(0, "repeat-2");
        assert_eq!((a.correct, a.n), (10, 10));
        assert_eq!(rep.progress(), (40, 40));
        let cs = rep.comparisons();
        // Two condition comparisons (one per model), two model comparisons (one per condition).
        assert_eq!(cs.len(), 4);
        // The first named is the one b counts: baseline right where repeat-2 is not.
        assert_eq!(cs[0].label, "SmolLM2: baseline vs repeat-2");
        assert_eq!((cs[0].test.b, cs[0].test.c), (0, 8));
        assert_eq!(cs[2].label, "baseline: SmolLM2 vs Gemma, 3");
        assert_eq!((cs[2].test.b, cs[2].test.c), (0, 1));
        assert!((cs[0].test.p - 2.0 / 256.0).abs() < 1e-12);
        assert_eq!(cs[0].verdict, Verdict::Win);
        assert_eq!(cs[1].verdict, Verdict::Neutral);
        assert!(
            cs[1].sentence.starts_with("No clear difference"),
            "{}",
            cs[1].sentence
        );
        let h = rep.headline();
        assert!(
            h.starts_with("SmolLM2: repeat-2 beats baseline: 100% [72%–100%] against 20%"),
            "{h}"
        );
        assert!(
            rep.many_comparisons_note().starts_with(
                // 8 items differ in one (a verdict's chance 18/256), under 5 in the others
                // (none): not the 4 × 0.1 a continuous test would give.
                "4 comparisons: even if no condition or model differed at all, about 0.09 of \
                 them"
            ),
            "{}",
            rep.many_comparisons_note()
        );
        let mut one = rep.clone();
        one.panes.truncate(1);
        assert_eq!(one.comparisons().len(), 1);
        assert_eq!(one.many_comparisons_note(), "");
        let csv = rep.csv();
        assert_eq!(csv.lines().count(), 41);
        assert!(csv.contains("\"Gemma, 3\""), "{csv}");
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .ends_with(",\"[-1.000000, -2.000000]\","),
            "{csv}"
        );
        // A generated answer is its own quoted field.
        let mut wrote = rep.clone();
        wrote.panes[0].results[0].1.output = Some("=B, \"C\"\n".into());
        let row = wrote.csv().lines().nth(1).unwrap().to_string();
        assert!(row.ends_with(",\"'=B, \"\"C\"\""), "{row}");
    }

    #[test]
    fn a_partial_run_compares_only_items_both_scored() {
        let mut rep = report();
        rep.partial = true;
        // The repeated run stopped after 4 items.
        rep.panes[0]
            .results
            .retain(|(c, r)| c == "baseline" || r.index < 4);
        let c = &rep.comparisons()[0];
        assert_eq!((c.test.b, c.test.c), (0, 2));
        assert!(c.sentence.contains("50% ["), "{}", c.sentence);
        assert!(rep.headline().contains("partial run"));
        assert_eq!(rep.progress(), (34, 40));
    }
}
