//! The comparison table under the panes: one column per pane, one row per figure, the best
//! value in each row marked where "best" has a direction.

use super::format::{duration_ms, num};
use super::settings::PaneSettings;
use super::summary::RunSummary;
use crate::engine::GenerateRequest;

/// What one pane contributes to the table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Column {
    pub model: String,
    pub parameters: String,
    pub settings: String,
    pub summary: RunSummary,
    pub fast_detectgpt: Option<f64>,
    /// The vocabulary of the model that made the numbers (`RunState::vocabulary`): per-token
    /// figures of different vocabularies count different tokens, so none is "best".
    pub vocabulary: String,
    /// Generation and chat: the prompt the shown run answered (empty where none is known).
    /// Time to first token and prefill speed compare only over one prompt.
    pub prompt: String,
    /// Score mode: the part of the text measured (after the unscored first token, or all of
    /// it after a BOS); empty in the other modes, where each pane's text is its own. Bits per
    /// byte compare across vocabularies only over one span, per-token figures within one.
    pub text: String,
}

/// The settings a column shows: those the shown run was made with, when it records them
/// (settings changed since do not belong to its numbers), else the pane's.
pub fn settings_label(made_with: Option<&GenerateRequest>, now: &PaneSettings) -> String {
    let (q, chat, repeat, max) = match made_with {
        Some(q) => (q.sampling.clone(), q.chat, q.repeat_prompt, q.max_tokens),
        None => (
            crate::engine::SamplingParams {
                temperature: now.temperature,
                top_k: now.top_k,
                top_p: now.top_p,
                min_p: now.min_p,
                repeat_penalty: now.repeat_penalty,
                seed: now.seed,
                ..crate::engine::SamplingParams::default()
            },
            now.chat,
            now.repeat_prompt,
            now.max_tokens,
        ),
    };
    // Every setting that changes the output, so that two columns that differ say how.
    format!(
        "T {} · top-k {} · top-p {} · min-p {} · repeat penalty {} · max {} · seed {}{}{}",
        q.temperature,
        q.top_k,
        q.top_p,
        q.min_p,
        q.repeat_penalty,
        max,
        q.seed,
        if chat { " · chat" } else { "" },
        if repeat { " · prompt ×2" } else { "" }
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Lower,
    Higher,
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: &'static str,
    pub cells: Vec<String>,
    /// Columns holding the best value (ties all marked); empty when the row has no direction
    /// or fewer than two values.
    pub best: Vec<usize>,
}

type Pick = fn(&Column) -> Option<f64>;

/// What makes two columns' values comparable; `None`: nothing (each is its own).
type Key = fn(&Column) -> Option<String>;

/// Whether the columns with a value agree on `key`.
fn comparable(cols: &[Column], pick: Pick, key: Key) -> bool {
    let mut keys = cols
        .iter()
        .filter(|c| pick(c).is_some_and(f64::is_finite))
        .map(key);
    match keys.next() {
        None => true,
        Some(None) => false,
        Some(first) => keys.all(|k| k == first),
    }
}

/// Per-token figures compare where the columns counted the same tokens: one vocabulary over
/// one text. A generation's or a chat reply's text is each pane's own (a colder sample has
/// the lower perplexity, which makes it no better), and so is a score of another text.
fn same_tokens(c: &Column) -> Option<String> {
    (!c.text.is_empty()).then(|| format!("{}\u{1}{}", c.vocabulary, c.text))
}

/// A prompt's reading time and speed depend on its length: they compare over one prompt.
fn same_prompt(c: &Column) -> Option<String> {
    (!c.prompt.is_empty()).then(|| c.prompt.clone())
}

/// Bits per byte compare across vocabularies, over one span of one text.
fn same_span(c: &Column) -> Option<String> {
    (!c.text.is_empty()).then(|| c.text.clone())
}

/// A row whose best is marked only where the columns share `key` (tokens, a text).
fn numeric_among(
    label: &'static str,
    cols: &[Column],
    pick: Pick,
    fmt: fn(f64) -> String,
    better: Better,
    key: Key,
) -> Row {
    let better = if comparable(cols, pick, key) {
        better
    } else {
        Better::None
    };
    numeric(label, cols, pick, fmt, better)
}

fn numeric(
    label: &'static str,
    cols: &[Column],
    pick: Pick,
    fmt: fn(f64) -> String,
    better: Better,
) -> Row {
    let values: Vec<Option<f64>> = cols.iter().map(pick).collect();
    let cells = values
        .iter()
        .map(|v| {
            v.filter(|x| x.is_finite())
                .map(fmt)
                .unwrap_or_else(|| "–".into())
        })
        .collect();
    let present: Vec<(usize, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.filter(|x| x.is_finite()).map(|x| (i, x)))
        .collect();
    let best = match better {
        _ if present.len() < 2 => vec![],
        Better::None => vec![],
        Better::Lower | Better::Higher => {
            let target = present
                .iter()
                .map(|p| p.1)
                .fold(None, |acc: Option<f64>, x| {
                    Some(match acc {
                        None => x,
                        Some(a) if better == Better::Lower => a.min(x),
                        Some(a) => a.max(x),
                    })
                });
            present
                .iter()
                .filter(|p| Some(p.1) == target)
                .map(|p| p.0)
                .collect()
        }
    };
    Row { label, cells, best }
}

fn share(c: &Column, i: usize) -> Option<f64> {
    let total: usize = c.summary.gltr.iter().sum();
    (total > 0).then(|| c.summary.gltr[i] as f64 / total as f64)
}

/// The table's rows. `with_speed` adds the timing rows (generation mode).
pub fn rows(cols: &[Column], with_speed: bool) -> Vec<Row> {
    let text = |label, f: fn(&Column) -> String| Row {
        label,
        cells: cols.iter().map(f).collect(),
        best: vec![],
    };
    fn pct(x: f64) -> String {
        format!("{:.0}%", x * 100.0)
    }
    let mut out = vec![
        text("model", |c| c.model.clone()),
        text("parameters", |c| c.parameters.clone()),
    ];
    // A score uses no sampling setting: its columns have none, and the row is left out.
    if cols.iter().any(|c| !c.settings.is_empty()) {
        out.push(text("settings", |c| c.settings.clone()));
    }
    out.push(numeric(
        "tokens",
        cols,
        |c| Some(c.summary.tokens as f64),
        |x| format!("{x:.0}"),
        Better::None,
    ));
    if with_speed {
        out.push(numeric_among(
            "time to first token",
            cols,
            |c| c.summary.first_token_ms,
            duration_ms,
            Better::Lower,
            same_prompt,
        ));
        out.push(numeric_among(
            "prefill tok/s",
            cols,
            |c| c.summary.prefill_tokens_per_s,
            |x| num(Some(x), 1),
            Better::Higher,
            same_prompt,
        ));
        out.push(numeric(
            "decode tok/s",
            cols,
            |c| c.summary.decode_tokens_per_s,
            |x| num(Some(x), 1),
            Better::Higher,
        ));
    }
    out.push(numeric_among(
        "mean entropy",
        cols,
        |c| c.summary.mean_entropy,
        |x| num(Some(x), 3),
        Better::Lower,
        same_tokens,
    ));
    out.push(numeric_among(
        "mean surprisal",
        cols,
        |c| c.summary.mean_surprisal,
        |x| num(Some(x), 3),
        Better::Lower,
        same_tokens,
    ));
    out.push(numeric_among(
        "perplexity",
        cols,
        |c| c.summary.perplexity,
        |x| num(Some(x), 2),
        Better::Lower,
        same_tokens,
    ));
    // Only scores have a text: a chat's or a generation's bytes are each its own.
    if !with_speed && cols.iter().any(|c| !c.text.is_empty()) {
        out.push(numeric_among(
            "bits per byte",
            cols,
            |c| c.summary.bits_per_byte,
            |x| num(Some(x), 3),
            Better::Lower,
            same_span,
        ));
    }
    if !with_speed {
        out.push(numeric(
            "Fast-DetectGPT",
            cols,
            |c| c.fast_detectgpt,
            |x| num(Some(x), 2),
            Better::None,
        ));
    }
    out.push(numeric(
        "GLTR top-10",
        cols,
        |c| share(c, 0),
        pct,
        Better::None,
    ));
    out.push(numeric(
        "GLTR top-100",
        cols,
        |c| share(c, 1),
        pct,
        Better::None,
    ));
    out.push(numeric(
        "GLTR top-1000",
        cols,
        |c| share(c, 2),
        pct,
        Better::None,
    ));
    out.push(numeric(
        "GLTR rest",
        cols,
        |c| share(c, 3),
        pct,
        Better::None,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A column's settings are its run's: changing a field afterwards used to relabel the old
    /// run's numbers with the new settings.
    #[test]
    fn settings_are_the_runs_own() {
        let mut now = PaneSettings::default();
        let made = now
            .request("hi")
            .expect("the default settings make a request");
        now.temperature = 1.7;
        now.top_k = 3;
        now.repeat_prompt = true;
        now.min_p = 0.2;
        now.repeat_penalty = 1.3;
        now.max_tokens = 7;
        let shown = settings_label(Some(&made), &now);
        assert!(
            shown.starts_with(&format!(
                "T {} · top-k {}",
                made.sampling.temperature, made.sampling.top_k
            )),
            "{shown}"
        );
        assert!(!shown.contains("prompt ×2"), "{shown}");
        assert!(!shown.contains("max 7"), "{shown}");
        let unrun = settings_label(None, &now);
        assert!(
            unrun.starts_with("T 1.7 · top-k 3") && unrun.ends_with("prompt ×2"),
            "{unrun}"
        );
        // Min-p, the repeat penalty and the token limit change the output too: two columns
        // that differ only there said the same.
        for part in ["min-p 0.2", "repeat penalty 1.3", "max 7"] {
            assert!(unrun.contains(part), "{unrun}");
        }
    }

    fn col(ppl: f64, decode: Option<f64>) -> Column {
        Column {
            model: "m".into(),
            summary: RunSummary {
                tokens: 4,
                perplexity: Some(ppl),
                mean_entropy: Some(ppl.ln()),
                mean_surprisal: Some(ppl.ln()),
                decode_tokens_per_s: decode,
                gltr: [3, 1, 0, 0],
                ..RunSummary::default()
            },
            ..Column::default()
        }
    }

    #[test]
    fn best_values_are_marked_by_direction() {
        let mut cols = [col(3.0, Some(10.0)), col(2.0, Some(30.0)), col(2.0, None)];
        for c in &mut cols {
            c.prompt = "one prompt".into();
        }
        let r = rows(&cols, true);
        let get = |l: &str| r.iter().find(|x| x.label == l).unwrap().clone();
        // Generations: each pane's text is its own, so no perplexity is the best.
        assert!(get("perplexity").best.is_empty());
        for c in &mut cols {
            c.text = "one text".into();
        }
        let scored = rows(&cols, false);
        let perplexity = scored.iter().find(|x| x.label == "perplexity").unwrap();
        assert_eq!(perplexity.best, vec![1, 2], "ties are all marked");
        assert_eq!(get("decode tok/s").best, vec![1]);
        assert_eq!(get("decode tok/s").cells[2], "–");
        assert!(
            get("tokens").best.is_empty(),
            "token counts have no better direction"
        );
        assert_eq!(get("GLTR top-10").cells[0], "75%");
        assert!(r.iter().all(|x| x.label != "Fast-DetectGPT"));
        assert!(rows(&cols, false)
            .iter()
            .any(|x| x.label == "Fast-DetectGPT"));
        assert!(rows(&cols, false).iter().all(|x| x.label != "decode tok/s"));
        // Scores have no sampling settings (their columns none): no settings row.
        assert!(rows(&cols, false).iter().all(|x| x.label != "settings"));
        cols[0].settings = "T 0.2".into();
        assert!(rows(&cols, true).iter().any(|x| x.label == "settings"));
    }

    /// Per-token figures of two vocabularies count different tokens: the lower perplexity
    /// is not the better model's. Bits per byte of one text are comparable; of two, not.
    #[test]
    fn only_comparable_values_are_marked() {
        let mut a = col(3.0, None);
        let mut b = col(2.0, None);
        a.vocabulary = "smollm2".into();
        b.vocabulary = "gemma".into();
        a.summary.bits_per_byte = Some(1.2);
        b.summary.bits_per_byte = Some(0.9);
        a.text = " same text".into();
        b.text = " same text".into();
        let get = |cols: &[Column], l: &str| {
            rows(cols, false)
                .into_iter()
                .find(|x| x.label == l)
                .unwrap()
        };
        let cols = [a.clone(), b.clone()];
        for label in ["perplexity", "mean entropy", "mean surprisal"] {
            assert!(get(&cols, label).best.is_empty(), "{label}");
        }
        assert_eq!(get(&cols, "bits per byte").best, vec![1]);
        assert_eq!(get(&cols, "bits per byte").cells[0], "1.200");
        b.vocabulary = "smollm2".into();
        let cols = [a.clone(), b.clone()];
        assert_eq!(get(&cols, "perplexity").best, vec![1]);
        // One vocabulary, two texts (a pane scored again after the text changed): neither.
        b.text = "another text".into();
        let cols = [a, b];
        for label in [
            "perplexity",
            "mean entropy",
            "mean surprisal",
            "bits per byte",
        ] {
            assert!(get(&cols, label).best.is_empty(), "{label}");
        }
    }

    /// Time to first token and prefill speed grow with the prompt: a pane run on a short
    /// prompt is not the faster for it.
    #[test]
    fn prompt_speeds_are_marked_over_one_prompt() {
        let mut a = col(3.0, Some(10.0));
        let mut b = col(3.0, Some(20.0));
        a.summary.first_token_ms = Some(50.0);
        b.summary.first_token_ms = Some(900.0);
        a.summary.prefill_tokens_per_s = Some(300.0);
        b.summary.prefill_tokens_per_s = Some(200.0);
        a.prompt = "Hi".into();
        b.prompt = "A paragraph of six hundred tokens".into();
        let get =
            |cols: &[Column], l: &str| rows(cols, true).into_iter().find(|x| x.label == l).unwrap();
        let cols = [a.clone(), b.clone()];
        assert!(get(&cols, "time to first token").best.is_empty());
        assert!(get(&cols, "prefill tok/s").best.is_empty());
        assert_eq!(get(&cols, "decode tok/s").best, vec![1]);
        b.prompt = "Hi".into();
        let cols = [a, b];
        assert_eq!(get(&cols, "time to first token").best, vec![0]);
        assert_eq!(get(&cols, "prefill tok/s").best, vec![0]);
    }

    #[test]
    fn one_pane_marks_nothing() {
        let r = rows(&[col(3.0, Some(1.0))], true);
        assert!(r.iter().all(|x| x.best.is_empty()));
    }
}
