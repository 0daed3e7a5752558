//! Evaluation: accuracy on item sets, under conditions (the query repeated, options first, the
//! chat template), with confidence intervals and paired tests. Plain Rust on the engine, shared
//! by `tinylab eval` and the page's worker, so both score the same items the same way.
//!
//! An item is scored as lm-evaluation-harness scores a multiple-choice log-likelihood request:
//! each choice's continuation is `" " + choice`; `context + continuation` is tokenized once (BOS
//! as the GGUF says) and the continuation is every id after the first
//! `len(tokenize(context))`; its log-likelihood is the sum of ln p of those ids. `pred` is the
//! best log-likelihood, `pred_norm` the best per character of the choice (lm-eval's acc_norm).

pub mod stats;
pub mod tasks;

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, Result};

/// One question. Generated items keep their parts, so a condition can reorder them; an item
/// from a file is its `context` as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// What the question is about (a list), shown first; empty when there is none.
    pub body: String,
    pub question: String,
    /// Lettered options shown in the prompt (multiple choice); the choices are then letters.
    pub options: Vec<String>,
    pub choices: Vec<String>,
    pub answer: usize,
    /// The whole context, for items read from a file.
    pub context: Option<String>,
    /// The file line it was read from (counted from 1), for messages about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    #[default]
    QuestionFirst,
    /// The options before the question: harder, since the model reads the options without
    /// knowing what they are for (the repetition paper's second order).
    OptionsFirst,
}

/// How the items are put to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// Copies of the query (the paper's `<QUERY><QUERY>`): 1, 2 or 3.
    pub repeat: usize,
    pub order: Order,
    /// Wrap the query in the model's chat template; the answer is then the assistant's first
    /// words (no leading space).
    pub chat: bool,
    /// Generate the answer (greedy, `GENERATE_TOKENS` tokens) and read the pick from it
    /// (`extract_answer`) instead of comparing log-likelihoods.
    #[serde(default)]
    pub generate: bool,
}

impl Default for Condition {
    fn default() -> Self {
        Condition {
            repeat: 1,
            order: Order::QuestionFirst,
            chat: false,
            generate: false,
        }
    }
}

impl Condition {
    /// `baseline`, `repeat-2`, `options-first`, `chat`, or such parts joined by `+`.
    pub fn id(&self) -> String {
        let mut parts = Vec::new();
        if self.repeat > 1 {
            parts.push(format!("repeat-{}", self.repeat));
        }
        if self.order == Order::OptionsFirst {
            parts.push("options-first".into());
        }
        if self.chat {
            parts.push("chat".into());
        }
        if self.generate {
            parts.push("generate".into());
        }
        if parts.is_empty() {
            "baseline".into()
        } else {
            parts.join("+")
        }
    }

    pub fn from_id(id: &str) -> Option<Condition> {
        let mut c = Condition::default();
        if id == "baseline" {
            return Some(c);
        }
        for part in id.split('+') {
            match part {
                "repeat-2" => c.repeat = 2,
                "repeat-3" => c.repeat = 3,
                "options-first" => c.order = Order::OptionsFirst,
                "chat" => c.chat = true,
                "generate" => c.generate = true,
                _ => return None,
            }
        }
        Some(c)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=3).contains(&self.repeat) {
            return Err("the query can be sent 1, 2 or 3 times".into());
        }
        Ok(())
    }
}

/// Tokens a generated answer may have.
pub const GENERATE_TOKENS: usize = 8;

/// The rule that reads a generated answer, in words for the page.
pub const EXTRACTION_RULE: &str = "Generated answers: greedy, at most 8 tokens; the pick is the \
    choice the answer starts with (case ignored, leading spaces, quotes and punctuation skipped \
    up to the first place a choice matches, so \"-5\" and \"(a)\" are found as written; the \
    longest choice first; the choice must end a word, except in scripts written without spaces \
    or with joined particles, such as Chinese, Japanese or Korean); an answer that starts with \
    none is wrong.";

/// The choice a generated answer starts with (`EXTRACTION_RULE`), if any. The leading
/// characters are skipped one at a time, each place tried: skipped all at once, a choice that
/// starts with one of them (`-5`, `.NET`, `(a)`) never matched, and `-5` read as `5`.
pub fn extract_answer(output: &str, choices: &[String]) -> Option<usize> {
    let text = output.to_lowercase();
    let lowered: Vec<String> = choices.iter().map(|c| c.trim().to_lowercase()).collect();
    let mut order: Vec<usize> = (0..choices.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lowered[i].chars().count()));
    let matches_at = |rest: &str| {
        order.iter().copied().find(|&i| {
            let c = lowered[i].as_str();
            !c.is_empty()
                && rest.starts_with(c)
                && !rest[c.len()..]
                    .chars()
                    .next()
                    .is_some_and(|next| next.is_alphanumeric() && !runs_on(c, next))
        })
    };
    for (at, ch) in text.char_indices() {
        if let Some(i) = matches_at(&text[at..]) {
            return Some(i);
        }
        if !(ch.is_whitespace() || "\"'`*(:-.「『（【".contains(ch)) {
            return None;
        }
    }
    None
}

/// Whether the choice `choice` may end right before `next` although `next` is a letter: in
/// scripts that write words without spaces (Chinese, Japanese, Thai, Lao, Khmer, Burmese) or
/// join particles to them (Korean), `東京です` and `서울은` start with `東京` and `서울`. Not a
/// number before a numeral word: `10万` is not `10`.
fn runs_on(choice: &str, next: char) -> bool {
    let numeral = "〇零一二三四五六七八九十百千万萬億亿兆";
    let number = choice.chars().last().is_some_and(char::is_numeric);
    matches!(next as u32,
        0x0E00..=0x0EFF // Thai, Lao
        | 0x1000..=0x109F // Myanmar
        | 0x1780..=0x17FF // Khmer
        | 0x3040..=0x30FF // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0xFF66..=0xFF9F // half-width Katakana
        | 0x20000..=0x3FFFF // CJK extensions B and on
    ) && !(number && numeral.contains(next))
}

/// The words before the answer in every generated prompt.
pub const ANSWER_CUE: &str = "Answer:";

impl Item {
    /// The query: the list, the question and the options in the condition's order, ending in a
    /// line break.
    fn query(&self, order: Order) -> String {
        let mut q = String::new();
        if !self.body.is_empty() {
            q.push_str(&self.body);
            q.push('\n');
        }
        let options: String = self
            .options
            .iter()
            .zip(tasks::LETTERS)
            .map(|(o, l)| format!("{l}. {o}\n"))
            .collect();
        let question = format!("Question: {}\n", self.question);
        match order {
            Order::QuestionFirst => {
                q.push_str(&question);
                q.push_str(&options);
            }
            Order::OptionsFirst => {
                q.push_str(&options);
                q.push_str(&question);
            }
        }
        q
    }

    /// The context text under a condition: the query `repeat` times, then the answer cue. A
    /// file's context is repeated whole, a line break between copies unless it ends in white
    /// space (`engine::repeat_text`, as a pane's repeated prompt).
    pub fn context(&self, c: &Condition) -> String {
        match &self.context {
            // Nothing repeated is nothing: not a line break the baseline does not have
            // (`repeat_text` joins empty copies with nothing).
            Some(ctx) => crate::engine::repeat_text(ctx, c.repeat),
            None => format!(
                "{}{ANSWER_CUE}",
                crate::engine::repeat_text(&self.query(c.order), c.repeat)
            ),
        }
    }
}

/// One item's result under one condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ItemResult {
    pub index: usize,
    pub answer: usize,
    #[serde(with = "crate::engine::explicit_f64::vec")]
    pub loglik: Vec<f64>,
    /// Continuation tokens per choice.
    pub tokens: Vec<usize>,
    pub pred: usize,
    pub pred_norm: usize,
    pub correct: bool,
    pub correct_norm: bool,
    /// Positions run through the model for this item, and without sharing the context.
    pub forward_tokens: usize,
    pub forward_tokens_without_sharing: usize,
    /// The generated answer, under a `generate` condition (then `pred` is the number of
    /// choices when the answer starts with none of them, and `loglik` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The index of the largest value; the first on ties, NaN never wins.
fn best(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// How a message names an item: its file line, else its index (from 0, as the JSON's
/// `index` and the page's item table count).
pub fn item_name(index: usize, item: &Item) -> String {
    match item.line {
        Some(line) => format!("line {line}"),
        None => format!("item {index}"),
    }
}

/// Checks that every item can be scored under every condition before any is: the context
/// fits the model with every choice, and each choice adds tokens after it. Tokenizing is
/// cheap next to running the model, so a bad item at the end of a long file no longer costs
/// the run done before it. The message names the item's file line (or its number), and
/// where the model holds fewer positions than it was trained for, `--context` (the command
/// line's way to hold more).
pub fn check_items(
    engine: &Engine,
    items: &[Item],
    conditions: &[Condition],
) -> std::result::Result<(), String> {
    let more = Some("raise the positions held: `--context` on the command line");
    items
        .iter()
        .enumerate()
        .try_for_each(|(i, item)| check_item(engine, i, item, conditions, more))
}

/// `check_items` for one item (the page's worker checks item by item, so that Stop is heard
/// while a large file is checked). `more_positions` says how the caller's user can hold more
/// positions, if they can (the page cannot).
pub fn check_item(
    engine: &Engine,
    index: usize,
    item: &Item,
    conditions: &[Condition],
    more_positions: Option<&str>,
) -> std::result::Result<(), String> {
    let cap = engine.info().max_positions;
    let name = item_name(index, item);
    for c in conditions {
        c.validate()?;
        if c.order == Order::OptionsFirst && item.options.is_empty() {
            return Err(format!(
                "{name}: \"options first\" needs items with lettered options (the \
                 multiple-choice task); this one has none, so the order would change nothing"
            ));
        }
        let (ctx, fulls) = requests(engine, item, c).map_err(|e| format!("{name}: {e}"))?;
        if ctx.is_empty() {
            return Err(format!("{name}: the context has no tokens"));
        }
        // A generated answer needs room for its first token after the context, and after
        // the EOS that `score_item` closes the prompt with where the file asks.
        let longest = if c.generate {
            ctx.len() + 1 + usize::from(closes_with_eos(engine, item, c))
        } else {
            fulls.iter().map(Vec::len).max().unwrap_or(0)
        };
        if longest > cap {
            return Err(format!(
                "{name}: {longest} tokens under {}; this model holds {cap} here \
                 (shorten the item{})",
                c.id(),
                match more_positions {
                    Some(how) if cap < engine.info().context_length => format!(" or {how}"),
                    _ => String::new(),
                }
            ));
        }
        if !c.generate {
            if let Some(k) = fulls.iter().position(|f| f.len() <= ctx.len()) {
                return Err(format!(
                    "{name}: choice {k} ({:?}) adds no tokens after the context",
                    item.choices[k]
                ));
            }
        }
    }
    Ok(())
}

/// The context's ids and each choice's whole request under a condition (`logliks`' input).
fn requests(engine: &Engine, item: &Item, c: &Condition) -> Result<(Vec<u32>, Vec<Vec<u32>>)> {
    let context = item.context(c);
    if c.chat {
        let mut ctx = engine.prompt_ids(&context, true, false)?;
        // The choice goes on the assistant's turn: a file that closes every text with EOS
        // must not have it between the two.
        let tk = engine.tokenizer();
        if tk.add_eos && ctx.last().is_some_and(|&id| Some(id) == tk.eos) {
            ctx.pop();
        }
        let fulls = item
            .choices
            .iter()
            .map(|ch| {
                let mut full = ctx.clone();
                full.extend(engine.tokenize(ch)?);
                Ok(full)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((ctx, fulls))
    } else {
        let tk = engine.tokenizer();
        let ctx = tk.encode_opening(&context, false)?;
        if ctx.is_empty() {
            // An empty context, for a model that adds no BOS: as lm-evaluation-harness does,
            // the continuation follows the prefix token (BOS, else EOS), so that its first
            // token has something to be predicted from.
            if let Some(prefix) = tk.bos.or(tk.eos) {
                let fulls = item
                    .choices
                    .iter()
                    .map(|ch| {
                        let mut full = vec![prefix];
                        full.extend(tk.encode(&format!(" {ch}"), false)?);
                        Ok(full)
                    })
                    .collect::<Result<Vec<_>>>()?;
                return Ok((vec![prefix], fulls));
            }
        }
        let fulls = item
            .choices
            .iter()
            .map(|ch| tk.encode_opening(&format!("{context} {ch}"), false))
            .collect::<Result<Vec<_>>>()?;
        Ok((ctx, fulls))
    }
}

/// lm-eval's acc_norm pick: the best log-likelihood per character of the choice. The length
/// is divided by as it is, so an empty choice's negative log-likelihood is −∞ and never wins
/// (unless nothing else can).
fn pred_norm(loglik: &[f64], choices: &[String]) -> usize {
    best(
        loglik
            .iter()
            .zip(choices)
            .map(|(l, ch)| l / ch.chars().count() as f64),
    )
}

/// Whether a generated answer's prompt gets EOS after the context (see `score_item`).
fn closes_with_eos(engine: &Engine, item: &Item, c: &Condition) -> bool {
    let tk = engine.tokenizer();
    tk.add_eos && tk.eos.is_some() && !item.context(c).is_empty()
}

/// Scores one item under one condition.
pub fn score_item(
    engine: &mut Engine,
    index: usize,
    item: &Item,
    c: &Condition,
) -> Result<ItemResult> {
    let (mut ctx_ids, fulls) = requests(engine, item, c)?;
    if c.generate {
        // A generated answer's prompt is a prompt: closed with EOS where the file asks, as
        // `tinylab generate` and llama.cpp make it (only a choice scored after the context
        // goes without).
        // (An empty context is the prefix token alone, which is no text to close.)
        if closes_with_eos(engine, item, c) {
            ctx_ids.extend(engine.tokenizer().eos);
        }
        return generated_answer(engine, index, item, ctx_ids);
    }
    let r = engine.logliks(&ctx_ids, &fulls)?;
    let loglik: Vec<f64> = r.choices.iter().map(|c| c.loglik).collect();
    let pred = best(loglik.iter().copied());
    let pred_norm = pred_norm(&loglik, &item.choices);
    Ok(ItemResult {
        index,
        answer: item.answer,
        tokens: r.choices.iter().map(|c| c.tokens).collect(),
        loglik,
        pred,
        pred_norm,
        correct: pred == item.answer,
        correct_norm: pred_norm == item.answer,
        forward_tokens: r.forward_tokens,
        forward_tokens_without_sharing: r.forward_tokens_without_sharing,
        output: None,
    })
}

fn generated_answer(
    engine: &mut Engine,
    index: usize,
    item: &Item,
    ctx_ids: Vec<u32>,
) -> Result<ItemResult> {
    let req = crate::engine::GenerateRequest {
        max_tokens: GENERATE_TOKENS,
        sampling: crate::engine::SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let prompt = ctx_ids.len();
    let mut g = engine.start_with_ids(ctx_ids, &req)?;
    let mut text = String::new();
    while let Some(t) = engine.step(&mut g)? {
        text.push_str(&t.piece);
    }
    text.push_str(&g.flush());
    let pred = extract_answer(&text, &item.choices).unwrap_or(item.choices.len());
    let forward = prompt + g.generated.len();
    Ok(ItemResult {
        index,
        answer: item.answer,
        loglik: Vec::new(),
        tokens: Vec::new(),
        pred,
        pred_norm: pred,
        correct: pred == item.answer,
        correct_norm: pred == item.answer,
        forward_tokens: forward,
        forward_tokens_without_sharing: forward,
        output: Some(text),
    })
}

/// Accuracy over scored items, with its 95% Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub n: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub ci95: (f64, f64),
    pub correct_norm: usize,
    pub accuracy_norm: f64,
    pub ci95_norm: (f64, f64),
}

pub fn accuracy(results: &[ItemResult]) -> Accuracy {
    let n = results.len();
    let k = results.iter().filter(|r| r.correct).count();
    let kn = results.iter().filter(|r| r.correct_norm).count();
    let rate = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    Accuracy {
        n,
        correct: k,
        accuracy: rate(k),
        ci95: stats::wilson(k, n),
        correct_norm: kn,
        accuracy_norm: rate(kn),
        ci95_norm: stats::wilson(kn, n),
    }
}

/// The accuracy a pick at random among each item's choices would get on average: what an
/// accuracy must clear to show the model knows anything. Over the items scored by their
/// choices' log-likelihoods, each once; `None` when there are none (only generated answers).
pub fn chance(results: &[ItemResult]) -> Option<f64> {
    let mut seen = std::collections::BTreeSet::new();
    let odds: Vec<f64> = results
        .iter()
        .filter(|r| !r.loglik.is_empty() && seen.insert(r.index))
        .map(|r| 1.0 / r.loglik.len() as f64)
        .collect();
    (!odds.is_empty()).then(|| odds.iter().sum::<f64>() / odds.len() as f64)
}

/// McNemar between two runs over the same items, by item index (items only one run scored,
/// as after a Stop, are left out).
pub fn compare(a: &[ItemResult], b: &[ItemResult]) -> stats::McNemar {
    let mut xa = Vec::new();
    let mut xb = Vec::new();
    for r in a {
        if let Some(s) = b.iter().find(|s| s.index == r.index) {
            xa.push(r.correct);
            xb.push(s.correct);
        }
    }
    stats::mcnemar(&xa, &xb)
}

/// One plain sentence on what a paired comparison shows, and says so when it shows nothing.
pub fn describe_comparison(
    a: (&str, &Accuracy),
    b: (&str, &Accuracy),
    m: &stats::McNemar,
) -> String {
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    let acc = |x: &Accuracy| format!("{} [{}–{}]", pct(x.accuracy), pct(x.ci95.0), pct(x.ci95.1));
    let items = |n: usize| match n {
        1 => "1 item".to_string(),
        n => format!("{n} items"),
    };
    let p = stats::p_text(m.p);
    let relation = if p.starts_with('<') { "" } else { "= " };
    let test = format!(
        "McNemar p {relation}{p}; {} only {} got right, {} only {}",
        items(m.b),
        a.0,
        m.c,
        b.0
    );
    match m.verdict() {
        stats::Verdict::Win | stats::Verdict::Loss => {
            let (better, worse) = if m.c > m.b { (b, a) } else { (a, b) };
            format!(
                "{} beats {}: {} against {} ({test}), a real difference at p < 0.1.",
                better.0,
                worse.0,
                acc(better.1),
                acc(worse.1)
            )
        }
        stats::Verdict::Neutral => {
            let overlap = a.1.ci95.0 <= b.1.ci95.1 && b.1.ci95.0 <= a.1.ci95.1;
            format!(
                "No clear difference between {} and {}: {} against {} ({test}){}; these items \
                 cannot tell them apart.",
                a.0,
                b.0,
                acc(a.1),
                acc(b.1),
                if overlap {
                    ", and the intervals overlap"
                } else {
                    ""
                }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tasks::{parse_items, Task, TaskSpec};
    use super::*;

    #[test]
    fn the_comparison_sentence_counts_items_in_good_english() {
        let acc = |k: usize, n: usize| Accuracy {
            n,
            correct: k,
            accuracy: k as f64 / n as f64,
            ci95: stats::wilson(k, n),
            correct_norm: k,
            accuracy_norm: k as f64 / n as f64,
            ci95_norm: stats::wilson(k, n),
        };
        let (a, b) = (acc(4, 12), acc(6, 12));
        let one = stats::McNemar {
            b: 1,
            c: 3,
            p: 0.625,
        };
        let s = describe_comparison(("baseline", &a), ("repeat-2", &b), &one);
        assert!(
            s.contains("; 1 item only baseline got right, 3 only repeat-2"),
            "{s}"
        );
        let two = stats::McNemar { b: 2, c: 3, p: 1.0 };
        let s = describe_comparison(("baseline", &a), ("repeat-2", &b), &two);
        assert!(s.contains("; 2 items only baseline got right"), "{s}");
    }

    /// Chance is the mean of 1/k over the items scored by log-likelihood, each item once
    /// (two conditions score the same items), by hand: (1/2 + 1/4) / 2.
    #[test]
    fn chance_is_a_random_pick_among_each_items_choices() {
        let r = |index: usize, k: usize| ItemResult {
            index,
            loglik: vec![-1.0; k],
            ..ItemResult::default()
        };
        assert_eq!(chance(&[]), None);
        assert_eq!(chance(&[r(0, 0)]), None, "generated answers only");
        assert_eq!(chance(&[r(0, 2), r(1, 4), r(0, 2), r(1, 4)]), Some(0.375));
        assert_eq!(chance(&[r(3, 5), r(4, 0)]), Some(0.2));
    }

    /// A file's context is repeated whole, a line break between copies unless it ends in one;
    /// an empty one stays empty.
    #[test]
    fn a_repeated_context_of_a_file() {
        let items = parse_items(
            "{\"context\": \"Q?\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n\
             {\"context\": \"\", \"choices\": [\"a\", \"b\"], \"answer\": 0}",
        )
        .unwrap();
        let twice = Condition {
            repeat: 2,
            ..Condition::default()
        };
        assert_eq!(items[0].context(&twice), "Q?\nQ?");
        assert_eq!(items[1].context(&twice), "");
        let ends =
            parse_items("{\"context\": \"Q?\\n\", \"choices\": [\"a\", \"b\"], \"answer\": 0}")
                .unwrap();
        assert_eq!(
            ends[0].context(&twice),
            "Q?\nQ?\n",
            "no blank line between the copies"
        );
        assert_eq!(items[1].context(&Condition::default()), "");
    }

    #[test]
    fn acc_norm_divides_by_the_choice_length_as_lm_eval_does() {
        let ch = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Per character: −4.91 / 0 = −∞ against −57.26 / 8 ≈ −7.2.
        assert_eq!(pred_norm(&[-4.91, -57.26], &ch(&["", "xq zv wk"])), 1);
        // Characters, not bytes: "ééééé" is 5 characters (10 bytes).
        assert_eq!(pred_norm(&[-10.0, -7.0], &ch(&["ééééé", "abc"])), 0);
        // Ties go to the first; with every choice empty the first stands.
        assert_eq!(pred_norm(&[-6.0, -3.0], &ch(&["abc", "x"])), 0);
        assert_eq!(pred_norm(&[-6.0, -1.5], &ch(&["abc", "x"])), 1);
        assert_eq!(pred_norm(&[-6.0, -2.0], &ch(&["abc", "x"])), 0);
        assert_eq!(pred_norm(&[-3.0, -3.0], &ch(&["ab", "cd"])), 0);
        assert_eq!(pred_norm(&[-3.0, -1.0], &ch(&["", ""])), 0);
    }

    #[test]
    fn generated_answers_are_read_by_the_stated_rule() {
        let ch = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let names = ch(&["Ann", "Anna", "Bob"]);
        assert_eq!(extract_answer(" Anna.", &names), Some(1));
        assert_eq!(extract_answer(" ann\nmore", &names), Some(0));
        assert_eq!(extract_answer("\"Bob\" is the third", &names), Some(2));
        assert_eq!(extract_answer(" Annabel", &names), None);
        assert_eq!(extract_answer(" The answer is Bob", &names), None);
        let letters = ch(&["A", "B", "C", "D"]);
        assert_eq!(extract_answer(" B. 12", &letters), Some(1));
        assert_eq!(extract_answer("(C)", &letters), Some(2));
        // Choices that start with what is skipped are found as written.
        let signed: Vec<String> = ["-5", "5"].map(String::from).to_vec();
        assert_eq!(extract_answer(" -5", &signed), Some(0));
        assert_eq!(extract_answer(" 5", &signed), Some(1));
        assert_eq!(extract_answer("'-5'", &signed), Some(0));
        assert_eq!(extract_answer("\"5\"", &signed), Some(1));
        let marked: Vec<String> = [".NET", "Java", "(a)", "(b)"].map(String::from).to_vec();
        assert_eq!(extract_answer(" .NET", &marked), Some(0));
        assert_eq!(extract_answer(" **Java**", &marked), Some(1));
        assert_eq!(extract_answer(" (b) because", &marked), Some(3));
        assert_eq!(extract_answer(" b", &marked), None);
        assert_eq!(extract_answer(" Because", &letters), None);
        assert_eq!(extract_answer("", &letters), None);
        // Where words are written without spaces, the answer runs on into the next word.
        let cities = ch(&["東京", "大阪", "京都"]);
        assert_eq!(extract_answer("東京です。", &cities), Some(0));
        assert_eq!(extract_answer(" 「大阪」", &cities), Some(1));
        assert_eq!(extract_answer("京都府", &cities), Some(2));
        assert_eq!(extract_answer("Bです", &letters), Some(1));
        assert_eq!(extract_answer("名古屋", &cities), None);
        assert_eq!(extract_answer(" Bob", &letters), None);
        let seoul = ch(&["서울", "부산"]);
        assert_eq!(extract_answer("서울은 수도입니다", &seoul), Some(0));
        // A number before a numeral word is a larger number, not the choice.
        let counts = ch(&["1", "10"]);
        assert_eq!(extract_answer("10万", &counts), None);
        assert_eq!(extract_answer("1億", &counts), None);
        assert_eq!(extract_answer("10です", &counts), Some(1));
    }

    #[test]
    fn conditions_have_stable_ids() {
        for id in [
            "baseline",
            "repeat-2",
            "repeat-3",
            "options-first",
            "chat",
            "repeat-2+options-first+chat",
            "generate",
            "repeat-3+chat+generate",
        ] {
            assert_eq!(Condition::from_id(id).unwrap().id(), id);
        }
        assert!(Condition::from_id("repeat-9").is_none());
    }

    #[test]
    fn repetition_and_order_shape_the_context() {
        let spec = TaskSpec::new(Task::MultipleChoice, 1, 7);
        let item = &spec.generate().unwrap()[0];
        let base = item.context(&Condition::default());
        assert!(base.starts_with("Question: "), "{base}");
        assert!(base.ends_with(&format!("\n{ANSWER_CUE}")), "{base}");
        let twice = item.context(&Condition {
            repeat: 2,
            ..Condition::default()
        });
        let query = base.strip_suffix(ANSWER_CUE).unwrap();
        assert_eq!(twice, format!("{query}{query}{ANSWER_CUE}"));
        let first = item.context(&Condition {
            order: Order::OptionsFirst,
            ..Condition::default()
        });
        assert!(first.starts_with("A. "), "{first}");
        assert!(first.contains(&format!("Question: {}\n{ANSWER_CUE}", item.question)));
        // A file's context is repeated whole.
        let file = parse_items(r#"{"context": "Q?", "choices": ["a", "b"], "answer": 1}"#).unwrap();
        let c3 = Condition {
            repeat: 3,
            ..Condition::default()
        };
        assert_eq!(file[0].context(&c3), "Q?\nQ?\nQ?");
    }
}
