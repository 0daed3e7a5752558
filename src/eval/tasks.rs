//! Item sets: generated from a seed (the same items natively and in the page, for every model
//! and condition), or read from a JSONL file. Every generated answer is computed, never written
//! by hand.

use serde::{Deserialize, Serialize};

use super::Item;
use crate::engine::clock::{MONTHS, WEEKDAYS as DAYS};
use crate::engine::sampler::Rng;

const NAMES: &str = include_str!("../../assets/eval/names.txt");
const WORDS: &str = include_str!("../../assets/eval/words.txt");

/// Most items one run may have (a page run of this many takes minutes per model already).
pub const MAX_ITEMS: usize = 2000;
/// An item file is untrusted input: its size, each item's choices and each text are bounded
/// before anything is tokenized (a context longer than this cannot fit a model here anyway).
pub const MAX_ITEM_FILE_BYTES: u64 = 16 << 20;

/// An item file's bytes as text, or which line is not UTF-8: the CLI and the page read files
/// the same way (the page's `Blob.text()` turned a bad byte into U+FFFD and scored the item).
pub fn item_file_text(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| {
        let bad = e.utf8_error().valid_up_to();
        let line = 1 + line_breaks(&e.as_bytes()[..bad], e.as_bytes().get(bad).copied());
        format!("line {line} is not UTF-8 text (save the file as UTF-8)")
    })
}

/// Line ends in `bytes` as `parse_items` ends lines: \n, \r\n or a bare \r (`next` is the
/// byte after them, which decides whether a final \r is one).
fn line_breaks(bytes: &[u8], next: Option<u8>) -> usize {
    (0..bytes.len())
        .filter(|&i| {
            let after = bytes.get(i + 1).copied().or(next);
            bytes[i] == b'\n' || (bytes[i] == b'\r' && after != Some(b'\n'))
        })
        .count()
}

pub const MAX_CHOICES: usize = 64;
pub const MAX_CONTEXT_CHARS: usize = 50_000;
pub const MAX_CHOICE_CHARS: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// A list of names, "what is the K-th name?" (the repetition paper's NameIndex).
    NameIndex,
    /// A list of items, "which item is between X and Y?" (the paper's MiddleMatch).
    MiddleMatch,
    /// Four-option questions with computed answers: arithmetic, days, months, comparisons,
    /// counting letters.
    MultipleChoice,
}

impl Task {
    pub const ALL: [Task; 3] = [Task::NameIndex, Task::MiddleMatch, Task::MultipleChoice];

    pub fn id(self) -> &'static str {
        match self {
            Task::NameIndex => "name-index",
            Task::MiddleMatch => "middle-match",
            Task::MultipleChoice => "multiple-choice",
        }
    }

    pub fn from_id(id: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.id() == id)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Task::NameIndex => "Name index: a list of names, which is the K-th?",
            Task::MiddleMatch => "Middle match: a list, which item is between X and Y?",
            Task::MultipleChoice => {
                "Multiple choice: arithmetic, days, months, comparisons, counting"
            }
        }
    }

    /// List length when none is given: long enough that sub-1B models miss some, short
    /// enough that they get some. Measured on 50 items (issue 14): with lists of 5, SmolLM2,
    /// Gemma 3 and Qwen2.5 get 18%, 24% and 58% of name-index; with lists of 10, 6%, 4% and
    /// 30%, the two smaller models at chance.
    ///
    /// Middle match's choices are the list's inner items the question does not name (the
    /// answer is never at an end, nor one of the two named), so its lists are longer: 8 items
    /// give 4 or 5 choices, as name-index's 5 give 5.
    pub fn default_list_len(self) -> usize {
        match self {
            Task::NameIndex => 5,
            Task::MiddleMatch => 8,
            Task::MultipleChoice => 4,
        }
    }

    /// The shortest list that leaves a choice to make: two names for name-index; six items
    /// for middle match (two or three inner items the question does not name).
    pub fn min_list_len(self) -> usize {
        match self {
            Task::MiddleMatch => 6,
            _ => 2,
        }
    }

    /// Whether the question-first / options-first order applies.
    pub fn has_options(self) -> bool {
        self == Task::MultipleChoice
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub task: Task,
    pub n: usize,
    pub seed: u64,
    /// Names or items in each list (name-index, middle-match).
    pub list_len: usize,
}

impl TaskSpec {
    pub fn new(task: Task, n: usize, seed: u64) -> Self {
        TaskSpec {
            task,
            n,
            seed,
            list_len: task.default_list_len(),
        }
    }

    /// The items, each a different question (an item drawn again is drawn anew: a repeated
    /// item counts twice, and the interval reads as narrower than the items warrant), with
    /// the answers' places balanced (see `Places`).
    pub fn generate(&self) -> Result<Vec<Item>, String> {
        if self.n == 0 || self.n > MAX_ITEMS {
            return Err(format!("the number of items must be 1 to {MAX_ITEMS}"));
        }
        let mut rng = Rng::new(self.seed);
        let pool = match self.task {
            Task::NameIndex => pool(NAMES),
            Task::MiddleMatch => pool(WORDS),
            Task::MultipleChoice => Vec::new(),
        };
        let places = match self.task {
            Task::NameIndex | Task::MiddleMatch => {
                let min = self.task.min_list_len();
                if self.list_len < min || self.list_len > pool.len() {
                    return Err(format!(
                        "lists of {} to {} items for {}",
                        min,
                        pool.len(),
                        self.task.id()
                    ));
                }
                // Name index's answer is any place in the list; middle match's an inner one.
                if self.task == Task::NameIndex {
                    self.list_len
                } else {
                    self.list_len - 2
                }
            }
            Task::MultipleChoice => LETTERS.len(),
        };
        let counting = counting_words();
        let mut places = Places::new(places);
        let mut seen = std::collections::HashSet::new();
        let mut items = Vec::with_capacity(self.n);
        while items.len() < self.n {
            let place = places.next(&mut rng);
            let mut tries = 0;
            let item = loop {
                let (item, fact) = match self.task {
                    Task::MultipleChoice => mc_item(&mut rng, place, &counting),
                    _ => list_item(self.task, &pool, self.list_len, place, &mut rng),
                };
                if seen.insert(fact) {
                    break item;
                }
                tries += 1;
                if tries == 1000 {
                    let lists = if self.task == Task::MultipleChoice {
                        String::new()
                    } else {
                        format!(" with lists of {}", self.list_len)
                    };
                    return Err(format!(
                        "{} has fewer than {} different items{lists}; ask for fewer",
                        self.task.id(),
                        self.n,
                    ));
                }
            };
            items.push(item);
        }
        Ok(items)
    }
}

/// Where the answers go: each of `k` places once in every run of `k` items, in a shuffled
/// order. Drawn one by one, a set of 50 four-option items had A right 17 times, and a model
/// that always picks A scored 34% against a chance of 25%; now a constant pick scores chance
/// on every whole run.
struct Places {
    k: usize,
    run: Vec<usize>,
}

impl Places {
    fn new(k: usize) -> Self {
        Places { k, run: Vec::new() }
    }

    fn next(&mut self, rng: &mut Rng) -> usize {
        if self.run.is_empty() {
            self.run = (0..self.k).collect();
            for i in (1..self.k).rev() {
                let j = below(rng, i + 1);
                self.run.swap(i, j);
            }
        }
        self.run.pop().unwrap_or(0)
    }
}

fn below(rng: &mut Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// `k` distinct entries of `pool`, in random order.
fn pick<'a>(rng: &mut Rng, pool: &[&'a str], k: usize) -> Vec<&'a str> {
    let mut idx: Vec<usize> = (0..pool.len()).collect();
    for i in 0..k {
        let j = i + below(rng, pool.len() - i);
        idx.swap(i, j);
    }
    idx[..k].iter().map(|&i| pool[i]).collect()
}

pub fn ordinal(k: usize) -> String {
    let suffix = match (k % 10, k % 100) {
        (1, r) if r != 11 => "st",
        (2, r) if r != 12 => "nd",
        (3, r) if r != 13 => "rd",
        _ => "th",
    };
    format!("{k}{suffix}")
}

/// An item and what makes it the question it is (no two in a set alike).
type Drawn = (Item, (String, String, String));

/// Name index: the answer is the list's name at `place`. Middle match: the item at inner
/// place `place + 1`, between the two the question names; the choices are the list's inner
/// items but those two, shuffled. With every item a choice, the answer was never
/// at an end nor one of the named two, and a pick that knew only that scored 67% on lists of
/// five (100% on lists of three) against a chance of 20%; a model copying a named item, below
/// chance.
fn list_item(task: Task, pool: &[&str], len: usize, place: usize, rng: &mut Rng) -> Drawn {
    let list = pick(rng, pool, len);
    let (label, question, choices, answer) = if task == Task::NameIndex {
        (
            "Names",
            format!("What is the {} name in the list?", ordinal(place + 1)),
            list.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            place,
        )
    } else {
        let k = place + 1;
        let mut choices: Vec<String> = (1..len - 1)
            .filter(|&i| i + 1 != k && i != k + 1)
            .map(|i| list[i].to_string())
            .collect();
        // Shuffled: in the list's order the answer was first or last twice as often as
        // elsewhere (an answer next to an end has one named neighbour inside the list).
        let m = choices.len();
        let choices = pick_owned(rng, &mut choices, m);
        let answer = choices
            .iter()
            .position(|c| c == list[k])
            .unwrap_or_default();
        (
            "Items",
            format!("Which item is between {} and {}?", list[k - 1], list[k + 1]),
            choices,
            answer,
        )
    };
    let body = format!("{label}: {}.", list.join(", "));
    let fact = (body.clone(), question.clone(), choices[answer].clone());
    let item = Item {
        body,
        question,
        options: Vec::new(),
        choices,
        answer,
        context: None,
        line: None,
    };
    (item, fact)
}

/// One four-option question with the right value at option `place`: arithmetic, days,
/// months, a number of four by its rank, or a letter count.
fn mc_item(rng: &mut Rng, place: usize, counting: &[&str]) -> Drawn {
    let (question, right, others): (String, String, Vec<String>) = match below(rng, 6) {
        0 => {
            let (a, b) = (4 + below(rng, 40), 4 + below(rng, 40));
            let r = a + b;
            (
                format!("What is {a} + {b}?"),
                r.to_string(),
                near_numbers(rng, r),
            )
        }
        1 => {
            let (a, b) = (4 + below(rng, 9), 4 + below(rng, 9));
            let r = a * b;
            // Of its parity: three products in four are even, and so was an even option.
            (
                format!("What is {a} × {b}?"),
                r.to_string(),
                near_numbers_of_parity(rng, r),
            )
        }
        2 => neighbour(rng, &DAYS, "day"),
        3 => neighbour(rng, &MONTHS, "month"),
        4 => {
            let mut nums: Vec<usize> = Vec::new();
            while nums.len() < 4 {
                let x = 10 + below(rng, 990);
                if !nums.contains(&x) {
                    nums.push(x);
                }
            }
            nums.sort_unstable();
            // Every rank as likely: asked only for the largest or the smallest, the answer
            // was always at an end, and "pick the largest" scored 50%.
            let rank = below(rng, 4);
            let which = ["smallest", "second smallest", "second largest", "largest"][rank];
            let r = nums[rank];
            let others = nums
                .iter()
                .filter(|&&x| x != r)
                .map(|x| x.to_string())
                .collect();
            (
                format!("Which number is the {which}?"),
                r.to_string(),
                others,
            )
        }
        _ => letter_count(rng, counting),
    };
    let mut options = others;
    options.truncate(3);
    options.insert(place.min(options.len()), right.clone());
    // The question and its answer name the fact, but for a comparison, whose question is
    // one of four sentences: its numbers do.
    let numbers = if question.starts_with("Which number") {
        let mut sorted = options.clone();
        sorted.sort();
        sorted.join(",")
    } else {
        String::new()
    };
    let fact = (numbers, question.clone(), right);
    let item = Item {
        body: String::new(),
        question,
        choices: LETTERS.iter().map(|l| l.to_string()).collect(),
        answer: place.min(3),
        options,
        context: None,
        line: None,
    };
    (item, fact)
}

pub const LETTERS: [&str; 4] = ["A", "B", "C", "D"];

/// Words for letter counts beside the middle-match nouns, with letters that come two or
/// three times.
const COUNTING_WORDS: [&str; 20] = [
    "banana",
    "strawberry",
    "bookkeeper",
    "cinnamon",
    "engineer",
    "parallel",
    "assistant",
    "lollipop",
    "tomorrow",
    "success",
    "sleepless",
    "papaya",
    "alfalfa",
    "pineapple",
    "everest",
    "tattoo",
    "independence",
    "committee",
    "coconut",
    "seventeen",
];

/// The entries of a word list (one a line; `#` starts a comment).
fn pool(text: &'static str) -> Vec<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The nouns and `COUNTING_WORDS`, the words of letter counts.
fn counting_words() -> Vec<&'static str> {
    let mut words = pool(WORDS);
    words.extend(COUNTING_WORDS);
    words
}

/// "How many times does the letter … appear in "… …"?", over two words, the count drawn
/// evenly from 0 to 3, and the options 0 to 3. A letter drawn from one word came once in 78%
/// of items, and a 0 among the options, never right, was in 87%: the smallest option other
/// than 0 was right in 89%. One word has too few letters that come three times for a set
/// of many different items.
fn letter_count(rng: &mut Rng, words: &[&str]) -> (String, String, Vec<String>) {
    let count = below(rng, 4);
    let (text, letter) = loop {
        let pair = pick(rng, words, 2);
        let text = pair.join(" ");
        let letters: Vec<char> = ('a'..='z')
            .filter(|&c| text.chars().filter(|&x| x == c).count() == count)
            .collect();
        if !letters.is_empty() {
            break (text, letters[below(rng, letters.len())]);
        }
    };
    let mut others: Vec<String> = (0..4)
        .filter(|&x| x != count)
        .map(|x| x.to_string())
        .collect();
    let others = pick_owned(rng, &mut others, 3);
    (
        format!("How many times does the letter \"{letter}\" appear in \"{text}\"?"),
        count.to_string(),
        others,
    )
}

/// "Which day (or month) comes right before/after X?" in a cycle of `names`: the question, the
/// answer and three other names. The four options are drawn first, none with both its
/// neighbours among them, then the answer evenly among them, and X is a neighbour of the answer
/// outside them: so no option set says which is the answer. (Three others drawn around a
/// fixed answer offered X itself, never right; left out, the answer was the option with a
/// neighbour missing: 40% on days.)
fn neighbour(rng: &mut Rng, names: &[&str], what: &str) -> (String, String, Vec<String>) {
    let n = names.len();
    let mut all: Vec<usize> = (0..n).collect();
    let set = loop {
        let set = pick_owned(rng, &mut all, 4);
        let lone = |i: &usize| !set.contains(&((i + 1) % n)) || !set.contains(&((i + n - 1) % n));
        if set.iter().all(lone) {
            break set;
        }
    };
    let r = set[below(rng, 4)];
    // (X, "after"): the answer comes right after X; (X, "before"): right before it.
    let outside: Vec<(usize, &str)> = [((r + n - 1) % n, "after"), ((r + 1) % n, "before")]
        .into_iter()
        .filter(|(x, _)| !set.contains(x))
        .collect();
    let (at, rel) = outside[below(rng, outside.len())];
    let others = set
        .iter()
        .filter(|&&i| i != r)
        .map(|&i| names[i].to_string())
        .collect();
    (
        format!("Which {what} comes right {rel} {}?", names[at]),
        names[r].to_string(),
        others,
    )
}

fn pick_owned<T: Clone>(rng: &mut Rng, v: &mut [T], k: usize) -> Vec<T> {
    for i in 0..k {
        let j = i + below(rng, v.len() - i);
        v.swap(i, j);
    }
    v[..k].to_vec()
}

/// As `near_numbers`, over numbers of `r`'s parity: a window of eight of them (`r` is 16 or
/// more).
fn near_numbers_of_parity(rng: &mut Rng, r: usize) -> Vec<String> {
    let start = r.saturating_sub(2 * below(rng, 8));
    let mut window: Vec<String> = (0..8)
        .map(|i| start + 2 * i)
        .filter(|&x| x != r)
        .map(|x| x.to_string())
        .collect();
    pick_owned(rng, &mut window, 3)
}

/// Three other numbers from a window of eight that holds `r` at a random place (`r` is 7 or
/// more, so the window never reaches below 0). Every option of a set is then as likely to be
/// the answer: drawn evenly above and below `r`, the option nearest the middle was right in
/// 42% of items.
fn near_numbers(rng: &mut Rng, r: usize) -> Vec<String> {
    let start = r.saturating_sub(below(rng, 8));
    let mut window: Vec<String> = (start..start + 8)
        .filter(|&x| x != r)
        .map(|x| x.to_string())
        .collect();
    pick_owned(rng, &mut window, 3)
}

/// One line of an item file. Other keys are ignored: files exported from other tools carry
/// ids, sources and such beside the three that matter here.
#[derive(Deserialize)]
struct FileItem {
    context: String,
    choices: Vec<String>,
    answer: usize,
}

/// What a JSON value is, in words, for a message about a field of the wrong type.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "true or false",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Which field of a line that parsed as JSON but not as an item is wrong, and how; `None`
/// when serde's own message says it better (a missing or duplicated field).
fn wrong_field(line: &str) -> Option<String> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(line).ok()?;
    let Value::Object(map) = &v else {
        return Some(format!("it is {}, not an object", json_kind(&v)));
    };
    match map.get("context") {
        Some(Value::String(_)) | None => {}
        Some(other) => {
            return Some(format!(
                "`context` must be a string, not {}",
                json_kind(other)
            ))
        }
    }
    match map.get("choices") {
        Some(Value::Array(list)) => {
            if let Some((k, c)) = list.iter().enumerate().find(|(_, c)| !c.is_string()) {
                return Some(format!(
                    "`choices[{k}]` must be a string, not {}",
                    json_kind(c)
                ));
            }
        }
        None => {}
        Some(other) => {
            return Some(format!(
                "`choices` must be a list of strings, not {}",
                json_kind(other)
            ))
        }
    }
    // Other datasets' names for the three fields (lm-eval's and Hugging Face's): a missing
    // field is then named with the one the line has.
    const OTHER_NAMES: [(&str, &[&str]); 3] = [
        (
            "context",
            &["query", "question", "prompt", "ctx", "input", "text"],
        ),
        ("choices", &["options", "endings", "answers", "candidates"]),
        (
            "answer",
            &[
                "label",
                "gold",
                "target",
                "answerKey",
                "answer_index",
                "correct",
            ],
        ),
    ];
    for (field, others) in OTHER_NAMES {
        if map.contains_key(field) {
            continue;
        }
        if let Some(other) = others.iter().find(|o| map.contains_key(**o)) {
            return Some(format!(
                "no `{field}`, but a `{other}`: TinyLab reads `context` (the text before the \
                 answer), `choices` (a list of strings) and `answer` (the right choice's \
                 index, from 0); rename the field"
            ));
        }
    }
    match map.get("answer") {
        Some(Value::Number(n)) if n.as_u64().is_some() => None,
        None => None,
        Some(other) => Some(format!(
            "`answer` must be the right choice's index, a whole number from 0, not {}",
            match other {
                Value::Number(n) => format!("{n}"),
                other => json_kind(other).to_string(),
            }
        )),
    }
}

/// What in a read item file is allowed (lm-evaluation-harness scores it) but likely a
/// mistake: two choices of the same text, whose log-likelihoods tie, so the first of them is
/// always the pick and an answer on a later one can never be right. At most `MAX_WARNINGS`
/// lines, then how many more.
pub fn item_warnings(items: &[Item]) -> Vec<String> {
    const MAX_WARNINGS: usize = 3;
    let mut out = Vec::new();
    // Counted past the first few without writing them out: a hostile file may have 2,000
    // items of 64 choices, every one the same.
    let mut more = 0;
    let mut spaced = 0;
    for (i, it) in items.iter().enumerate() {
        let name = || {
            it.line
                .map_or_else(|| format!("item {i}"), |n| format!("line {n}"))
        };
        if it
            .context
            .as_ref()
            .is_some_and(|c| c.ends_with(char::is_whitespace))
        {
            if spaced == 0 && out.len() < MAX_WARNINGS {
                out.push(format!(
                    "{}: the context ends in whitespace, and every choice is added after \
                     one more space; lm-evaluation-harness would move that whitespace into \
                     the answer, so its numbers differ (end the contexts without it)",
                    name()
                ));
            } else {
                more += 1;
            }
            spaced += 1;
        }
        // A generated answer is matched with case and outer spaces ignored (`extract_answer`),
        // so choices alike that way, or empty, are said too.
        let folded: Vec<String> = it.choices.iter().map(|c| c.trim().to_lowercase()).collect();
        for (k, c) in it.choices.iter().enumerate() {
            let same = it.choices[..k].iter().position(|d| d == c);
            let alike = folded[..k].iter().position(|d| *d == folded[k]);
            let empty = folded[k].is_empty();
            if same.is_none() && alike.is_none() && !empty {
                continue;
            }
            if out.len() == MAX_WARNINGS {
                more += 1;
                continue;
            }
            let name = name();
            let lost = |how: &str| {
                if it.answer == k {
                    format!(", so its answer ({k}) can never be picked{how}")
                } else {
                    String::new()
                }
            };
            out.push(match (same, alike) {
                (Some(first), _) => format!(
                    "{name}: choices {first} and {k} are the same text; their scores tie and \
                     {first} is always picked over {k}{}",
                    lost("")
                ),
                (None, Some(first)) => format!(
                    "{name}: choices {first} and {k} differ only in case or spaces; a generated \
                     answer always picks {first} over {k}{}",
                    lost(" by a generated answer")
                ),
                (None, None) => {
                    format!("{name}: choice {k} is empty; a generated answer can never pick it")
                }
            });
        }
    }
    if more > 0 {
        out.push(format!("and {more} more like these"));
    }
    out
}

/// Reads an item file: one JSON object a line, `{"context": "...", "choices": [...],
/// "answer": K}`, blank lines skipped, or a JSON list of such objects. A bad line (or entry)
/// is an error naming it and the field.
pub fn parse_items(text: &str) -> Result<Vec<Item>, String> {
    let body = text.trim_start_matches('\u{feff}').trim_start();
    // A JSON list of items (what many datasets export, pretty-printed or not) is read as
    // well; its entries are named by index, as the results are.
    if body.starts_with('[') {
        match serde_json::from_str::<ListEntries>(body) {
            Err(e) if e.to_string().starts_with(TOO_MANY_ITEMS) => {
                return Err(format!("more than {MAX_ITEMS} items; split the file"))
            }
            Ok(ListEntries(list)) => {
                return collect_items(
                    list.iter()
                        .enumerate()
                        .map(|(k, raw)| (format!("item {k}"), None, raw.get())),
                )
            }
            // JSON Lines whose first line is a list: that line's own message follows.
            Err(_)
                if body
                    .lines()
                    .next()
                    .is_some_and(|l| serde_json::from_str::<serde::de::IgnoredAny>(l).is_ok()) => {}
            Err(e) => {
                return Err(format!(
                    "the file starts like a JSON list of items but is not valid JSON ({e}); \
                     give one object a line (JSON Lines), or a list of objects"
                ))
            }
        }
    }
    // Objects written over several lines (one pretty-printed item, or several one after
    // another as `jq .` writes them): read as a stream, each named by the line it starts on.
    // (Only where the first line ends inside its object: a line that is wrong in itself keeps
    // its own message.)
    // (The first line as the line reader ends lines: \n, \r\n or a bare \r.)
    let first_line = body.split(['\n', '\r']).next();
    let first_line_open = first_line.is_some_and(|l| {
        serde_json::from_str::<serde::de::IgnoredAny>(l)
            .is_err_and(|e| e.classify() == serde_json::error::Category::Eof)
    });
    if body.starts_with('{') && first_line_open {
        let skipped = &text[..text.len() - body.len()];
        let bytes = body.as_bytes();
        // Counted on from the last object asked about (they come in order): counted from the
        // start each time, 2,000 objects of a 16 MB file took seconds.
        let (mut counted_to, mut line) = (
            0,
            1 + line_breaks(skipped.as_bytes(), bytes.first().copied()),
        );
        let mut line_of = |at: usize| {
            if at >= counted_to {
                line += line_breaks(&bytes[counted_to..at], bytes.get(at).copied());
                counted_to = at;
            }
            line
        };
        let mut entries = Vec::new();
        let mut stream =
            serde_json::Deserializer::from_str(body).into_iter::<&serde_json::value::RawValue>();
        while let Some(next) = stream.next() {
            match next {
                Ok(_) if entries.len() == MAX_ITEMS => {
                    return Err(format!("more than {MAX_ITEMS} items; split the file"));
                }
                Ok(raw) => {
                    let at = raw.get().as_ptr() as usize - body.as_ptr() as usize;
                    entries.push((line_of(at), raw.get()));
                }
                // Not even the first object reads: the line reader names the first line.
                Err(_) if entries.is_empty() => break,
                Err(e) => {
                    let what = e.to_string();
                    let what = what.split(" at line ").next().unwrap_or(&what).to_string();
                    // Where the last good object ended: the bad one starts after the space.
                    let end = stream.byte_offset().min(body.len());
                    let at = body.len() - body[end..].trim_start().len();
                    return Err(format!(
                        "line {}: the file's objects are written over several lines, and the \
                         one that starts here is not valid JSON ({what}); give one object a line (JSON Lines), \
                         or a list of objects",
                        line_of(at)
                    ));
                }
            }
        }
        if !entries.is_empty() {
            return collect_items(
                entries
                    .into_iter()
                    .map(|(line, raw)| (format!("line {line}"), Some(line), raw)),
            );
        }
    }
    // Lines end in \n, \r\n or a bare \r (classic Mac files, or lines joined from both
    // kinds): JSON escapes a line break inside a string, so a bare one can only end a line.
    let lines = text
        .split('\n')
        .flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'));
    collect_items(
        lines
            .enumerate()
            .map(|(i, line)| (format!("line {}", i + 1), Some(i + 1), line)),
    )
}

/// A JSON list's entries as their text, read no further than one past `MAX_ITEMS`: a 16 MB
/// list of zeros made 400 MB of entries before the count was looked at.
struct ListEntries(Vec<Box<serde_json::value::RawValue>>);

const TOO_MANY_ITEMS: &str = "too many items";

impl<'de> Deserialize<'de> for ListEntries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = ListEntries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of items")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ListEntries, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = seq.next_element::<Box<serde_json::value::RawValue>>()? {
                    if out.len() == MAX_ITEMS {
                        return Err(serde::de::Error::custom(TOO_MANY_ITEMS));
                    }
                    out.push(e);
                }
                Ok(ListEntries(out))
            }
        }
        d.deserialize_seq(Entries)
    }
}

/// The items of a file's entries (name for messages, file line, text), blank ones skipped.
fn collect_items<'a>(
    entries: impl Iterator<Item = (String, Option<usize>, &'a str)>,
) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for (name, line, text) in entries {
        // Notepad's "UTF-8 with BOM" and PowerShell's `Out-File -Encoding utf8` start a file
        // with U+FEFF, which `trim` keeps (and files joined by `cat` carry it mid-file).
        let text = text.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            continue;
        }
        if items.len() == MAX_ITEMS {
            return Err(format!("more than {MAX_ITEMS} items; split the file"));
        }
        items.push(parse_entry(&name, line, text)?);
    }
    if items.is_empty() {
        return Err("the file has no items (one JSON object a line)".into());
    }
    Ok(items)
}

/// One item of a file, `name` saying where it is ("line 3", "item 2").
fn parse_entry(name: &str, line: Option<usize>, text: &str) -> Result<Item, String> {
    // serde reads a struct from a list too (`["The sky is", ["blue", "green"], 0]`), by
    // position: a file of another layout would be scored as if it meant this one.
    if !text.starts_with('{') {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
            return Err(format!(
                "{name}: it is {}, not an object like {{\"context\": \"…\", \"choices\": \
                 [\"…\", \"…\"], \"answer\": 0}}",
                json_kind(&v)
            ));
        }
    }
    let it: FileItem = serde_json::from_str(text).map_err(|e| {
        let what = e.to_string();
        // serde names the field in its message ("missing field `answer`", "invalid type:
        // string \"2\", expected usize" with no field): keep its words, add ours.
        let what = what.split(" at line ").next().unwrap_or(&what);
        match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => format!(
                "{name} is not a JSON object like {{\"context\": \"…\", \"choices\": \
                 [\"…\", \"…\"], \"answer\": 0}} ({what})"
            ),
            _ => match wrong_field(text) {
                Some(why) => format!("{name}: {why}"),
                None => format!("{name}: {what}"),
            },
        }
    })?;
    if it.choices.len() < 2 {
        return Err(format!("{name}: `choices` needs at least two entries"));
    }
    if it.choices.len() > MAX_CHOICES {
        return Err(format!(
            "{name}: `choices` has {} entries; at most {MAX_CHOICES}",
            it.choices.len()
        ));
    }
    if it.context.chars().count() > MAX_CONTEXT_CHARS {
        return Err(format!(
            "{name}: `context` is longer than {MAX_CONTEXT_CHARS} characters"
        ));
    }
    if let Some(k) = it
        .choices
        .iter()
        .position(|c| c.chars().count() > MAX_CHOICE_CHARS)
    {
        return Err(format!(
            "{name}: `choices[{k}]` is longer than {MAX_CHOICE_CHARS} characters"
        ));
    }
    if it.answer >= it.choices.len() {
        return Err(format!(
            "{name}: `answer` is {} but there are only {} choices (it counts from 0)",
            it.answer,
            it.choices.len()
        ));
    }
    Ok(Item {
        body: String::new(),
        question: String::new(),
        options: Vec::new(),
        choices: it.choices,
        answer: it.answer,
        context: Some(it.context),
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number_after(s: &str, word: &str) -> Option<usize> {
        let rest = &s[s.find(word)? + word.len()..];
        rest.trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    }

    /// The answer worked out again from the prompt's own words, independently of the generator.
    fn solve(item: &Item) -> String {
        let q = &item.question;
        if let Some(list) = item.body.strip_prefix("Names: ") {
            let names: Vec<&str> = list.trim_end_matches('.').split(", ").collect();
            let k: usize = number_after(q, "the").unwrap();
            return names[k - 1].to_string();
        }
        if let Some(list) = item.body.strip_prefix("Items: ") {
            let items: Vec<&str> = list.trim_end_matches('.').split(", ").collect();
            let x = q
                .split("between ")
                .nth(1)
                .unwrap()
                .split(" and ")
                .next()
                .unwrap();
            let at = items.iter().position(|i| *i == x).unwrap();
            let y = q.split(" and ").nth(1).unwrap().trim_end_matches('?');
            assert_eq!(items[at + 2], y);
            return items[at + 1].to_string();
        }
        let words: Vec<&str> = q.trim_end_matches('?').split(' ').collect();
        if q.starts_with("What is") {
            let (a, op, b): (usize, &str, usize) = (
                words[2].parse().unwrap(),
                words[3],
                words[4].parse().unwrap(),
            );
            return if op == "+" { a + b } else { a * b }.to_string();
        }
        if q.starts_with("Which day") || q.starts_with("Which month") {
            let names: &[&str] = if q.starts_with("Which day") {
                &DAYS
            } else {
                &MONTHS
            };
            let at = names.iter().position(|n| *n == words[5]).unwrap();
            let n = names.len();
            return names[if words[4] == "after" {
                (at + 1) % n
            } else {
                (at + n - 1) % n
            }]
            .to_string();
        }
        if q.starts_with("Which number") {
            let mut nums: Vec<usize> = item.options.iter().map(|o| o.parse().unwrap()).collect();
            nums.sort_unstable();
            let at = match (q.contains("second"), q.contains("largest")) {
                (false, false) => 0,
                (true, false) => 1,
                (true, true) => 2,
                (false, true) => 3,
            };
            return nums[at].to_string();
        }
        let letter = q.split('"').nth(1).unwrap();
        let word = q.split('"').nth(3).unwrap();
        word.matches(letter).count().to_string()
    }

    #[test]
    fn generated_answers_check_out_and_seeds_repeat() {
        for task in Task::ALL {
            let spec = TaskSpec::new(task, 200, 11);
            let items = spec.generate().unwrap();
            assert_eq!(
                items,
                spec.generate().unwrap(),
                "{task:?}: same seed, same items"
            );
            let other = TaskSpec { seed: 12, ..spec }.generate().unwrap();
            assert_ne!(items, other);
            let mut answers = [0usize; 8];
            for item in &items {
                let shown = if item.options.is_empty() {
                    &item.choices[item.answer]
                } else {
                    assert_eq!(item.options.len(), 4);
                    let mut distinct = item.options.clone();
                    distinct.sort();
                    distinct.dedup();
                    assert_eq!(distinct.len(), 4, "{item:?}");
                    &item.options[item.answer]
                };
                assert_eq!(*shown, solve(item), "{item:?}");
                answers[item.answer] += 1;
            }
            // Answers spread over the positions, not stuck on one.
            assert!(
                answers.iter().filter(|&&a| a > 10).count() >= 3,
                "{task:?} {answers:?}"
            );
        }
        assert_eq!(
            TaskSpec {
                list_len: 3,
                ..TaskSpec::new(Task::NameIndex, 1, 1)
            }
            .generate()
            .unwrap()[0]
                .choices
                .len(),
            3
        );
        assert!(TaskSpec::new(Task::NameIndex, 0, 1).generate().is_err());
        assert!(TaskSpec {
            list_len: 99,
            ..TaskSpec::new(Task::MiddleMatch, 1, 1)
        }
        .generate()
        .is_err());
    }

    /// The list in an item's body.
    fn list_of(item: &Item) -> Vec<&str> {
        let (_, list) = item.body.split_once(": ").unwrap();
        list.trim_end_matches('.').split(", ").collect()
    }

    /// No pick blind to what is asked beats chance on a generated set: every answer place
    /// comes equally often; no item comes twice; middle match offers no end of the list and
    /// neither named item; a number's options hold it at any rank (a product's are of its
    /// parity); letter counts run 0 to 3; a day or month question's options say nothing of
    /// which is the answer.
    #[test]
    fn no_blind_pick_beats_chance() {
        for (task, list_len, places) in [
            (Task::NameIndex, 5, 5),
            (Task::MiddleMatch, 8, 6),
            (Task::MultipleChoice, 4, 4),
        ] {
            let n = places * 60;
            let items = TaskSpec {
                task,
                n,
                seed: 3,
                list_len,
            }
            .generate()
            .unwrap();
            let mut count = vec![0; places];
            for item in &items {
                count[match task {
                    Task::MiddleMatch => {
                        let list = list_of(item);
                        for c in &item.choices {
                            let at = list.iter().position(|x| x == c).unwrap();
                            assert!(at > 0 && at + 1 < list.len(), "{item:?}");
                            assert!(!item.question.contains(c.as_str()), "{item:?}");
                        }
                        assert_eq!(
                            item.choices.len() + 4
                                - usize::from(
                                    item.question.contains(list[0])
                                        || item.question.contains(list[list_len - 1])
                                ),
                            list_len,
                            "{item:?}"
                        );
                        list.iter()
                            .position(|x| *x == item.choices[item.answer])
                            .unwrap()
                            - 1
                    }
                    _ => item.answer,
                }] += 1;
            }
            assert_eq!(count, vec![60; places], "{task:?}");
        }

        let items = TaskSpec::new(Task::MultipleChoice, MAX_ITEMS, 5)
            .generate()
            .unwrap();
        let asked: std::collections::HashSet<_> = items
            .iter()
            .map(|i| {
                let mut o = i.options.clone();
                o.sort();
                (&i.question, o)
            })
            .collect();
        assert_eq!(asked.len(), MAX_ITEMS, "no item twice");
        let (mut ranks, mut counts, mut cycles) = ([0usize; 4], [0usize; 4], 0);
        for item in &items {
            let right = &item.options[item.answer];
            let q = &item.question;
            if q.starts_with("What is") || q.starts_with("Which number") {
                let r: usize = right.parse().unwrap();
                let numbers = item.options.iter().map(|o| o.parse::<usize>().unwrap());
                if q.contains('×') {
                    assert!(numbers.clone().all(|x| x % 2 == r % 2), "{item:?}");
                }
                ranks[numbers.filter(|&x| x < r).count()] += 1;
            } else if q.starts_with("How many") {
                counts[right.parse::<usize>().unwrap()] += 1;
            } else {
                let named = q.trim_end_matches('?').rsplit(' ').next().unwrap();
                assert!(!item.options.iter().any(|o| o == named), "{item:?}");
                cycles += 1;
            }
        }
        assert!(cycles > 20);
        for spread in [ranks, counts] {
            let all: usize = spread.iter().sum();
            assert!(all > 200, "{spread:?}");
            for k in spread {
                let share = k as f64 / all as f64;
                assert!((0.17..0.33).contains(&share), "{ranks:?} {counts:?}");
            }
        }
        // A day question's options say nothing of its answer: the option with the most
        // neighbours missing from them (a blind pick) is right a quarter of the time.
        let mut rng = Rng::new(9);
        let mut won = 0.0;
        let rounds = 4000;
        for _ in 0..rounds {
            let (_, right, others) = neighbour(&mut rng, &DAYS, "day");
            let mut options = others;
            options.push(right.clone());
            let at = |d: &str| DAYS.iter().position(|x| *x == d).unwrap();
            let missing = |d: &String| {
                let i = at(d);
                [(i + 1) % 7, (i + 6) % 7]
                    .iter()
                    .filter(|&&j| !options.iter().any(|o| at(o) == j))
                    .count()
            };
            let most = options.iter().map(missing).max().unwrap();
            let picks: Vec<&String> = options.iter().filter(|o| missing(o) == most).collect();
            if picks.contains(&&right) {
                won += 1.0 / picks.len() as f64;
            }
        }
        let share = won / rounds as f64;
        assert!((0.22..0.28).contains(&share), "{share}");
        // The shortest lists still make thousands of different items.
        assert!(TaskSpec {
            list_len: 2,
            ..TaskSpec::new(Task::NameIndex, MAX_ITEMS, 1)
        }
        .generate()
        .is_ok());
        assert!(TaskSpec {
            list_len: 5,
            ..TaskSpec::new(Task::MiddleMatch, 1, 1)
        }
        .generate()
        .unwrap_err()
        .contains("lists of 6 to 50"));
    }

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101].map(ordinal).into();
        assert_eq!(
            got,
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]
        );
    }

    /// Repeated choices are read (lm-eval scores them) but said, with the answer that can
    /// then never be picked; a clean file and the built-in tasks say nothing.
    #[test]
    fn repeated_choices_are_said() {
        let text = "{\"context\": \"Q\", \"choices\": [\"a\", \"b\", \"a\"], \"answer\": 2}\n\n\
                    {\"context\": \"R\", \"choices\": [\"x\", \"y\"], \"answer\": 0}\n\
                    {\"context\": \"S\", \"choices\": [\"b\", \"b\"], \"answer\": 0}";
        let items = parse_items(text).unwrap();
        assert_eq!(
            item_warnings(&items),
            [
                "line 1: choices 0 and 2 are the same text; their scores tie and 0 is always \
                 picked over 2, so its answer (2) can never be picked",
                "line 4: choices 0 and 1 are the same text; their scores tie and 0 is always \
                 picked over 1",
            ]
        );
        assert!(item_warnings(&items[1..2]).is_empty());
        // Choices a generated answer cannot tell apart (case, outer spaces) or never gives.
        let folded =
            "{\"context\": \"Q\", \"choices\": [\"Yes\", \"no\", \" yes\"], \"answer\": 2}\n\
                      {\"context\": \"R\", \"choices\": [\"x\", \"\"], \"answer\": 0}";
        assert_eq!(
            item_warnings(&parse_items(folded).unwrap()),
            [
                "line 1: choices 0 and 2 differ only in case or spaces; a generated answer \
                 always picks 0 over 2, so its answer (2) can never be picked by a generated \
                 answer",
                "line 2: choice 1 is empty; a generated answer can never pick it",
            ]
        );
        let many = "{\"context\": \"Q\", \"choices\": [\"a\", \"a\"], \"answer\": 0}\n".repeat(5);
        let w = item_warnings(&parse_items(&many).unwrap());
        assert_eq!(w.len(), 4);
        assert_eq!(w[3], "and 2 more like these");
        for task in Task::ALL {
            let items = TaskSpec::new(task, 50, 3).generate().unwrap();
            assert!(item_warnings(&items).is_empty(), "{task:?}");
        }
        // A context ending in whitespace is said once (where lm-eval's numbers would differ),
        // then counted.
        let spaced = "{\"context\": \"Q \", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n\
                      {\"context\": \"R\\n\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n\
                      {\"context\": \"S\", \"choices\": [\"a\", \"b\"], \"answer\": 0}";
        let w = item_warnings(&parse_items(spaced).unwrap());
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("line 1: the context ends in whitespace"),
            "{w:?}"
        );
        assert_eq!(w[1], "and 1 more like these");
    }

    #[test]
    fn item_files_name_the_bad_line_and_field() {
        let ok = "{\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": 1}\n\n";
        assert_eq!(parse_items(ok).unwrap().len(), 1);
        // A byte-order mark, CRLF line ends, and keys other tools add beside the three.
        let exported = "\u{feff}{\"id\": \"q1\", \"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": 1, \"meta\": {\"src\": 1}}\r\n\r\n{\"context\": \"R\", \"choices\": [\"c\", \"d\"], \"answer\": 0}\r\n";
        let items = parse_items(exported).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].context.as_deref(), Some("Q"));
        assert_eq!((items[0].line, items[1].line), (Some(1), Some(3)));
        // Classic Mac line ends (CR alone) are lines too, numbered as such.
        let mac = exported.replace("\r\n", "\r");
        let items = parse_items(&mac).unwrap();
        assert_eq!((items[0].line, items[1].line), (Some(1), Some(3)));
        let bad_mac = format!("{}\r{{\"context\": \"Q\"}}", mac.trim_end());
        assert!(parse_items(&bad_mac).unwrap_err().starts_with("line 4: "));
        // Both kinds in one file (files joined from two machines): every line end counts.
        let one = "{\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": 1}";
        let mixed = format!("{one}\r\n{one}\n{one}\r{one}");
        let lines: Vec<_> = parse_items(&mixed)
            .unwrap()
            .iter()
            .map(|i| i.line)
            .collect();
        assert_eq!(lines, [Some(1), Some(2), Some(3), Some(4)]);
        // Objects over several lines (`jq .`'s output), each named by the line it starts on;
        // lines counted as the line reader counts them, bare \r included.
        let pretty = "{\n  \"context\": \"Q\",\n  \"choices\": [\"a\", \"b\"],\n  \"answer\": 1\n}";
        let items = parse_items(&format!("\u{feff}\n{pretty}\r\n{pretty}\n")).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!((items[0].line, items[1].line), (Some(2), Some(7)));
        assert_eq!((items[1].answer, items[1].choices.len()), (1, 2));
        let bad = pretty.replace("\"answer\": 1", "\"answer\": 2");
        let err = parse_items(&format!("{pretty}\r{bad}")).unwrap_err();
        assert!(err.starts_with("line 6: `answer` is 2"), "{err}");
        // A file whose every line ends in a bare \r.
        let err = parse_items(&format!("{pretty}\r{bad}").replace('\n', "\r")).unwrap_err();
        assert!(err.starts_with("line 6: `answer` is 2"), "{err}");
        let err = parse_items(&format!("{pretty}\n{}", &pretty[..20])).unwrap_err();
        assert!(
            err.starts_with("line 6: the file's objects are written over several lines, and the one that starts here"),
            "{err}"
        );
        // A line wrong in itself is not read as the start of a longer object.
        let err = parse_items("{\"context\": \"Q\" \"choices\": []}\n").unwrap_err();
        assert!(err.starts_with("line 1 is not a JSON object"), "{err}");
        // A JSON list, pretty-printed or on one line, with a byte-order mark: its entries are
        // named by index.
        let list = format!("\u{feff}[\n  {one},\n  {one}\n]\n");
        let items = parse_items(&list).unwrap();
        assert_eq!((items.len(), items[1].line), (2, None));
        assert_eq!(items[1].choices, ["a", "b"]);
        assert_eq!(parse_items(&format!("[{one}]")).unwrap().len(), 1);
        assert!(parse_items("[]").unwrap_err().contains("no items"));
        // Past the item limit, a list stops being read there.
        let zeros = format!("[{}]", vec!["0"; MAX_ITEMS + 5].join(","));
        assert_eq!(
            parse_items(&zeros).unwrap_err(),
            format!("more than {MAX_ITEMS} items; split the file")
        );
        for (text, want) in [
            ("{\"context\": \"Q\", \"choices\": [\"a\", \"b\"]}", "line 1: missing field `answer`"),
            (
                "{\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": 1}\n{\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": 2}",
                "line 2: `answer` is 2 but there are only 2 choices",
            ),
            ("{\"context\": \"Q\", \"choices\": [\"a\"], \"answer\": 0}", "line 1: `choices` needs at least two"),
            ("{\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": \"1\"}", "line 1: `answer` must be the right choice's index, a whole number from 0, not a string"),
            ("{\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": 1.5}", "line 1: `answer` must be the right choice's index, a whole number from 0, not 1.5"),
            ("{\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": -1}", "not -1"),
            ("{\"context\": {\"t\": \"x\"}, \"choices\": [\"a\", \"b\"], \"answer\": 0}", "line 1: `context` must be a string, not an object"),
            ("{\"context\": \"Q\", \"choices\": \"a b\", \"answer\": 0}", "line 1: `choices` must be a list of strings, not a string"),
            ("{\"context\": \"Q\", \"choices\": [\"a\", 2], \"answer\": 0}", "line 1: `choices[1]` must be a string, not a number"),
            ("[1, 2, 3]", "item 0: it is a number, not an object"),
            ("[[1], 2]\n[3]", "line 1: it is a list, not an object"),
            (
                "[\n  {\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": 0},\n  {\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": 3}\n]",
                "item 1: `answer` is 3 but there are only 2 choices",
            ),
            (
                "[\n  {\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": 0},\n",
                "the file starts like a JSON list of items but is not valid JSON (EOF while parsing a value at line 3",
            ),
            (
                "{\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"label\": 1}",
                "line 1: no `answer`, but a `label`: TinyLab reads",
            ),
            (
                "{\"query\": \"Q\", \"choices\": [\"a\", \"b\"], \"gold\": 1}",
                "line 1: no `context`, but a `query`",
            ),
            (
                "{\"context\": \"Q\", \"endings\": [\"a\", \"b\"], \"answer\": 1}",
                "line 1: no `choices`, but a `endings`",
            ),
            ("{\"context\": \"Q\", \"context\": \"R\", \"choices\": [\"a\", \"b\"], \"answer\": 0}", "line 1: duplicate field `context`"),
            ("not json", "line 1 is not a JSON object like {\"context\""),
            ("{\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": 0", "line 1 is not a JSON object"),
            ("\n\n", "no items"),
            ("[\"The sky is\", [\"blue\", \"green\"], 0]\n[\"Q\", [\"a\", \"b\"], 1]", "line 1: it is a list, not an object like"),
            ("42", "line 1: it is a number, not an object"),
            (
                &format!("{{\"context\": \"{}\", \"choices\": [\"a\", \"b\"], \"answer\": 0}}", "x".repeat(60_000)),
                "line 1: `context` is longer than 50000 characters",
            ),
            (
                &format!("{{\"context\": \"Q\", \"choices\": [{}], \"answer\": 0}}", vec!["\"c\""; 65].join(", ")),
                "line 1: `choices` has 65 entries; at most 64",
            ),
            (
                &format!("{{\"context\": \"Q\", \"choices\": [\"a\", \"{}\"], \"answer\": 0}}", "y".repeat(3000)),
                "line 1: `choices[1]` is longer than 2000 characters",
            ),
        ] {
            let err = parse_items(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
