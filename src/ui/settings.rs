//! What a user sets up: the prompt, and per pane the model and the sampling settings.
//! The workspace is saved to localStorage on every change and read back on load, so a
//! reload loses nothing; URL parameters (../shared/CONTRACT.md) override what was saved.

use serde::{Deserialize, Serialize};

use crate::engine::{GenerateRequest, SamplingParams};

use super::colors::ColorMode;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PaneSettings {
    /// A catalog id; empty when none is chosen.
    pub model_id: String,
    pub temperature: f32,
    #[serde(deserialize_with = "saturating::usize")]
    pub top_k: usize,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    #[serde(deserialize_with = "saturating::usize")]
    pub max_tokens: usize,
    #[serde(deserialize_with = "saturating::u64")]
    pub seed: u64,
    pub chat: bool,
    pub repeat_prompt: bool,
    pub color_mode: ColorMode,
    /// The pane's conversation (the Chat tab): kept with the settings so it survives a reload
    /// and goes into the exports.
    pub conversation: Conversation,
    /// A model loaded from a file on this machine (no catalog id): its key in the browser's
    /// model cache and its name, so that a reload loads it again from there. Never part of a
    /// link, and never read from one.
    pub local_model: Option<LocalModel>,
}

impl PaneSettings {
    /// The pane as a link carries it: the conversation's text, not its per-token numbers nor
    /// the message being written, and no model from a file on this machine.
    pub fn as_linked(&self) -> PaneSettings {
        let mut p = self.clone();
        p.local_model = None;
        p.conversation.draft.clear();
        for t in &mut p.conversation.turns {
            t.tokens.clear();
        }
        p
    }

    /// The settings a new pane takes from this one (Add pane, a link's `models=`): not its
    /// model, its model from a file or its conversation, which each showed in the new pane as
    /// its own.
    pub fn settings_only(&self) -> PaneSettings {
        PaneSettings {
            model_id: String::new(),
            local_model: None,
            conversation: Conversation::default(),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalModel {
    pub url: String,
    pub label: String,
}

/// A system prompt and the turns so far.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Conversation {
    pub system: String,
    pub turns: Vec<Turn>,
    /// Oldest turns the last reply's prompt left out to fit the context (shown faded), kept
    /// so that a reload still shows them so.
    pub left_out: usize,
    /// The message being written (the chat's input box): a reload, or an Edit that took a
    /// turn back to the box, does not lose it. Not part of a link.
    pub draft: String,
}

/// One turn. The model's turns keep their tokens' numbers, so the bubbles stay coloured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Turn {
    /// "user" or "assistant".
    pub role: String,
    pub content: String,
    pub tokens: Vec<TurnToken>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TurnToken {
    pub id: u32,
    pub piece: String,
    // A NaN or infinite statistic (a model whose weights hold NaN) was saved as `null`, which
    // did not read back: the whole conversation was lost at the next reload.
    #[serde(with = "crate::engine::explicit_f64")]
    pub entropy: f64,
    #[serde(with = "crate::engine::explicit_f64")]
    pub surprisal: f64,
    pub rank: usize,
    /// The most likely token's probability, which colouring by frac(p) divides by (without
    /// it, every earlier reply's token was drawn as the least likely). Absent in turns saved
    /// before it was kept.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::engine::explicit_f64::option"
    )]
    pub best_p: Option<f64>,
}

/// Turns a saved conversation may hold (each is a message to the model).
pub const MAX_TURNS: usize = 200;

impl Conversation {
    /// The messages for the engine: the system prompt (if any), then every turn.
    pub fn messages(&self) -> Vec<crate::engine::chat::Message> {
        let system = (!self.system.trim().is_empty()).then(|| crate::engine::chat::Message {
            role: "system".into(),
            content: self.system.clone(),
        });
        system
            .into_iter()
            .chain(self.turns.iter().map(|t| crate::engine::chat::Message {
                role: t.role.clone(),
                content: t.content.clone(),
            }))
            .collect()
    }

    /// Whether the last turn is the model's reply to `asked` (the messages a reply's request
    /// carried): its forks can then take its place. Not once Edit took it back, the system
    /// prompt changed or Clear emptied the conversation.
    pub fn answers(&self, asked: &[crate::engine::chat::Message]) -> bool {
        self.answers_with(&self.system, asked)
    }

    /// The last reply answers `asked` but for the system prompt, which was changed since:
    /// its forks wait for the system prompt it was made with (the page says so).
    pub fn system_changed_since(&self, asked: &[crate::engine::chat::Message]) -> bool {
        let then = match asked.first() {
            Some(m) if m.role == "system" => m.content.as_str(),
            _ => "",
        };
        // Blank is no system prompt (`messages` sends none).
        let now = if self.system.trim().is_empty() {
            ""
        } else {
            self.system.as_str()
        };
        then != now && self.answers_with(then, asked)
    }

    fn answers_with(&self, system: &str, asked: &[crate::engine::chat::Message]) -> bool {
        // Compared in place: the page asks at every token of a streaming reply.
        let Some((last, before)) = self.turns.split_last() else {
            return false;
        };
        let asked = match asked.split_first() {
            _ if system.trim().is_empty() => asked,
            Some((first, rest)) if first.role == "system" && first.content == system => rest,
            _ => return false,
        };
        last.role == "assistant"
            && asked.len() == before.len()
            && before
                .iter()
                .zip(asked)
                .all(|(t, m)| t.role == m.role && t.content == m.content)
    }

    fn clamp(&mut self) {
        truncate_chars(&mut self.draft, MAX_SAVED_TEXT);
        self.turns
            .retain(|t| t.role == "user" || t.role == "assistant");
        if self.turns.len() > MAX_TURNS {
            // The newest turns are the conversation going on (the last reply, its branches,
            // the next message follow them): the oldest go, as the model's prompt leaves
            // out the oldest first. Kept from a user's turn, as a conversation starts.
            let mut cut = self.turns.len() - MAX_TURNS;
            if self.turns.get(cut).is_some_and(|t| t.role == "assistant") {
                cut += 1;
            }
            self.turns.drain(..cut);
            self.left_out = self.left_out.saturating_sub(cut);
        }
        truncate_chars(&mut self.system, MAX_SAVED_TEXT);
        for t in &mut self.turns {
            truncate_chars(&mut t.content, MAX_SAVED_TEXT);
            t.tokens.truncate(MAX_TOKENS_LIMIT);
        }
        self.left_out = self.left_out.min(self.turns.len());
    }
}

impl Default for PaneSettings {
    fn default() -> Self {
        let s = SamplingParams::default();
        PaneSettings {
            model_id: String::new(),
            temperature: s.temperature,
            top_k: s.top_k,
            top_p: s.top_p,
            min_p: s.min_p,
            repeat_penalty: s.repeat_penalty,
            max_tokens: 128,
            seed: s.seed,
            chat: true,
            repeat_prompt: false,
            color_mode: ColorMode::Entropy,
            conversation: Conversation::default(),
            local_model: None,
        }
    }
}

/// Largest `max_tokens` the page accepts; the engine stops at the context cap anyway.
pub const MAX_TOKENS_LIMIT: usize = 4096;

impl PaneSettings {
    /// Every value into the range its control allows; what cannot be read sensibly (NaN, a
    /// model id with characters no catalog id has) goes back to the default.
    pub fn clamp(&mut self) {
        let d = PaneSettings::default();
        let fix = |v: f32, lo: f32, hi: f32, default: f32| {
            if v.is_finite() {
                v.clamp(lo, hi)
            } else {
                default
            }
        };
        self.temperature = fix(self.temperature, 0.0, 5.0, d.temperature);
        self.top_p = fix(self.top_p, 0.01, 1.0, d.top_p);
        self.min_p = fix(self.min_p, 0.0, 1.0, d.min_p);
        self.repeat_penalty = fix(self.repeat_penalty, 0.5, 2.0, d.repeat_penalty);
        self.top_k = self.top_k.min(100_000);
        self.max_tokens = self.max_tokens.clamp(1, MAX_TOKENS_LIMIT);
        self.conversation.clamp();
        if !is_model_id_form(&self.model_id) {
            self.model_id.clear();
        }
        // One or the other; the page only ever loads a cache key it finds in its own cache.
        if !self.model_id.is_empty()
            || self
                .local_model
                .as_ref()
                .is_some_and(|l| l.url.len() > 4096 || l.label.len() > 1024)
        {
            self.local_model = None;
        }
    }
}

/// Line ends as a browser's text box gives them back (`\r\n` and `\r` as `\n`).
fn box_text(v: &str) -> String {
    v.replace("\r\n", "\n").replace('\r', "\n")
}

/// Conditions a link may ask for at once.
const MAX_LINKED_CONDITIONS: usize = 6;

/// A link's whole number; digits past u64 are a number too, far out of range.
pub(crate) fn whole_number(v: &str) -> Option<u64> {
    match v.parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => Some(u64::MAX),
        // As a number box writes one (`1e12`, `40.0`): a whole number all the same, where
        // f64 holds it exactly (past 2^53 a fraction reads as whole) and it is not `-0` or a
        // tiny value rounded to 0.
        Err(_) => v
            .parse::<f64>()
            .ok()
            .filter(|x| (1.0..=9_007_199_254_740_992.0).contains(x) && x.fract() == 0.0)
            .map(|x| x as u64),
    }
}

/// Says when a link's number was brought into range.
fn clamped(notes: &mut Vec<String>, key: &str, given: &str, used: usize) {
    if whole_number(given) != Some(used as u64) {
        let shown: String = given.chars().take(24).collect();
        notes.push(format!(
            "The link's {key}={shown} is out of range; {used} is used."
        ));
    }
}

/// Whether `id` could be a catalog id (letters, digits, `-`, `_`, `.`; at most 128 bytes):
/// anything else, a path or markup, can name no model.
fn is_model_id_form(id: &str) -> bool {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    id.len() <= 128 && id.chars().all(plain)
}

/// What a link's `panes=` asked of one pane that the page did not take as asked: each scalar
/// field whose value was unreadable or out of range, with what is used instead.
fn panes_param_changes(
    index: usize,
    given: &serde_json::Value,
    used: &PaneSettings,
) -> Option<String> {
    // Against the pane as a link carries it: a pane kept whole keeps its model from a file.
    let (serde_json::Value::Object(given), Ok(serde_json::Value::Object(used))) =
        (given, serde_json::to_value(used.as_linked()))
    else {
        return None;
    };
    let same = |a: &serde_json::Value, b: &serde_json::Value| match (a.as_f64(), b.as_f64()) {
        // A whole-number setting (a seed, a token count) is the same only as that number:
        // `1234567.5`, 2^64 or a float past 2^53 read as another seed, and said nothing.
        (_, Some(_)) if b.is_u64() => b
            .as_u64()
            .is_some_and(|n| a.as_u64() == Some(n) || a.as_f64() == Some(n as f64) && n < 1 << 53),
        // Other numbers were read as f32: equal to its precision.
        (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * x.abs().max(1.0),
        _ => a == b,
    };
    let changed: Vec<String> = given
        .iter()
        .filter(|(_, v)| !v.is_object() && !v.is_array())
        .filter_map(|(k, v)| {
            let now = used.get(k)?;
            (!same(v, now)).then(|| {
                let shown: String = v.to_string().chars().take(24).collect();
                if now.is_object() || now.is_array() {
                    format!("{k} {shown} unreadable")
                } else if let Some(x) = now.as_f64().filter(|_| now.is_f64()) {
                    // The settings' f32s, as the page shows them (0.8, not 0.800000011920929).
                    format!("{k} {shown} → {}", x as f32)
                } else {
                    format!("{k} {shown} → {now}")
                }
            })
        })
        .collect();
    (!changed.is_empty()).then(|| {
        format!(
            "The link's panes= for pane {}: {} (unreadable or out of range).",
            index + 1,
            changed.join(", ")
        )
    })
}

impl PaneSettings {
    /// The request for the worker, or a message saying what to fix.
    pub fn request(&self, prompt: &str) -> Result<GenerateRequest, String> {
        if prompt.is_empty() {
            return Err("Type a prompt first.".into());
        }
        if self.max_tokens == 0 || self.max_tokens > MAX_TOKENS_LIMIT {
            return Err(format!(
                "Max tokens must be between 1 and {MAX_TOKENS_LIMIT}."
            ));
        }
        let sampling = SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            seed: self.seed,
            ..SamplingParams::default()
        };
        sampling.validate()?;
        Ok(GenerateRequest {
            prompt: prompt.to_string(),
            chat: self.chat,
            repeat_prompt: self.repeat_prompt,
            max_tokens: self.max_tokens,
            ignore_eos: false,
            sampling,
            forced: Vec::new(),
            forced_text: String::new(),
            messages: Vec::new(),
            reuse_cache: false,
            reuse_at_most: None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Generate,
    Score,
    Eval,
    Chat,
}

impl Mode {
    pub fn id(self) -> &'static str {
        match self {
            Mode::Generate => "generate",
            Mode::Score => "score",
            Mode::Eval => "eval",
            Mode::Chat => "chat",
        }
    }
}

/// The evaluation tab's set-up: a built-in task (or the user's file, kept out of the
/// workspace), its size and seed, and the conditions to compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalSetup {
    pub task: String,
    #[serde(deserialize_with = "saturating::usize")]
    pub n: usize,
    #[serde(deserialize_with = "saturating::u64")]
    pub seed: u64,
    #[serde(deserialize_with = "saturating::usize")]
    pub list_len: usize,
    pub conditions: Vec<String>,
}

impl Default for EvalSetup {
    fn default() -> Self {
        EvalSetup {
            task: "name-index".into(),
            n: 40,
            seed: 1,
            list_len: 5,
            conditions: vec!["baseline".into(), "repeat-2".into()],
        }
    }
}

impl EvalSetup {
    /// The conditions as the engine takes them; unknown ids are dropped.
    /// Each condition once, by what it is (`chat+chat` is `chat`): a repeated one was scored
    /// twice and its items counted twice, narrowing its interval and doubling McNemar's counts.
    pub fn parsed_conditions(&self) -> Vec<crate::eval::Condition> {
        let mut seen = std::collections::HashSet::new();
        self.conditions
            .iter()
            .filter_map(|c| crate::eval::Condition::from_id(c))
            .filter(|c| seen.insert(c.id()))
            .collect()
    }

    /// Lists long enough for the task: middle-match's were 5 in saves and links made before
    /// it needed 6, and Run refused them. Returns the length given up, if any.
    pub fn fit_list_to_task(&mut self) -> Option<usize> {
        let task = crate::eval::tasks::Task::from_id(&self.task)?;
        (self.list_len < task.min_list_len())
            .then(|| std::mem::replace(&mut self.list_len, task.default_list_len()))
    }

    /// The items this set-up generates (a built-in task).
    pub fn items(&self) -> Result<Vec<crate::eval::Item>, String> {
        let task = crate::eval::tasks::Task::from_id(&self.task)
            .ok_or_else(|| format!("unknown task {:?}", self.task))?;
        crate::eval::tasks::TaskSpec {
            task,
            n: self.n,
            seed: self.seed,
            list_len: self.list_len,
        }
        .generate()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Workspace {
    pub prompt: String,
    pub panes: Vec<PaneSettings>,
    pub mode: Mode,
    /// The entropy lab's text.
    pub score_text: String,
    /// How many of its first sentences human vs model takes as the prompt.
    pub lab_sentences: usize,
    pub eval: EvalSetup,
}

/// `value` read as a `T`, and when that fails, one field at a time over `T::default()`: a
/// field that does not read (a string where a number goes, a mode the page does not have)
/// keeps its default instead of failing the whole. Each field is tried alone (`T` reads any
/// subset of its fields, `serde(default)`), so the cost stays that of reading the value
/// once, whatever the number of fields. `None` when `value` is not an object.
/// JSON read as serde_json reads it, except that a number too large for a double (`1e309`),
/// which serde_json refuses with the whole text, becomes a string of its digits: that one
/// value is then unreadable and costs that value only (a saved workspace or a `panes=` link
/// was lost whole for one such number).
fn json_overflow_read(text: &str) -> Option<serde_json::Value> {
    if let Ok(v) = serde_json::from_str(text) {
        return Some(v);
    }
    let bytes = text.as_bytes();
    let (mut out, mut i, mut changed) = (String::with_capacity(text.len()), 0, false);
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            // A string, escapes and all, copied as it stands.
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
            out.push_str(&text[start..i]);
        } else if c == b'-' || c.is_ascii_digit() {
            let start = i;
            i += 1;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit()
                    || matches!(bytes[i], b'.' | b'e' | b'E' | b'+' | b'-'))
            {
                i += 1;
            }
            let number = &text[start..i];
            if number.parse::<f64>().is_ok_and(f64::is_infinite) {
                out.push('"');
                out.push_str(number);
                out.push('"');
                changed = true;
            } else {
                out.push_str(number);
            }
        } else {
            let len = text[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[i..i + len]);
            i += len;
        }
    }
    changed.then(|| serde_json::from_str(&out).ok()).flatten()
}

fn lenient<T>(value: serde_json::Value) -> Option<T>
where
    T: serde::de::DeserializeOwned,
{
    if let Ok(whole) = T::deserialize(&value) {
        return Some(whole);
    }
    let serde_json::Value::Object(given) = value else {
        return None;
    };
    let mut kept = serde_json::Map::new();
    for (key, v) in given {
        let mut alone = serde_json::Map::new();
        alone.insert(key, v);
        let alone = serde_json::Value::Object(alone);
        if T::deserialize(&alone).is_ok() {
            if let serde_json::Value::Object(m) = alone {
                kept.extend(m);
            }
        }
    }
    T::deserialize(&serde_json::Value::Object(kept)).ok()
}

/// Whole numbers read from saved state, saturating instead of failing: `max_tokens: 1e12` (too
/// big for wasm's 32-bit `usize`) or `-3` must be clamped like any other absurd value, not
/// make the whole workspace unreadable (which would lose the user's prompt and panes).
mod saturating {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        U(u64),
        F(f64),
    }

    pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        Ok(match Num::deserialize(d)? {
            Num::U(v) => v,
            // `as` saturates, and maps NaN to 0.
            Num::F(f) => f as u64,
        })
    }

    pub fn usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        Ok(usize::try_from(u64(d)?).unwrap_or(usize::MAX))
    }
}

/// Most sentences human vs model takes as its prompt (the box's range).
pub const MAX_LAB_SENTENCES: usize = 20;

/// Most panes the page runs side by side; each pane owns a model worker.
pub const MAX_PANES: usize = 4;
/// Longest prompt or text kept in a saved workspace, in characters.
pub const MAX_SAVED_TEXT: usize = 200_000;

fn truncate_chars(s: &mut String, max: usize) {
    if let Some((cut, _)) = s.char_indices().nth(max) {
        s.truncate(cut);
    }
}

pub const DEFAULT_PROMPT: &str = "Explain in two sentences why the sky is blue.";

impl Default for Workspace {
    fn default() -> Self {
        Workspace {
            prompt: DEFAULT_PROMPT.into(),
            panes: vec![PaneSettings::default()],
            mode: Mode::Generate,
            score_text: String::new(),
            lab_sentences: 2,
            eval: EvalSetup::default(),
        }
    }
}

impl Workspace {
    /// Reads a saved workspace; anything unreadable gives the default rather than an error,
    /// since a stale save must never stop the page from opening.
    pub fn from_saved(json: Option<&str>) -> Self {
        Self::from_saved_noting(json).0
    }

    /// [`Workspace::from_saved`], with a note for the user when the save was there but could
    /// not be read whole (settings back at their defaults should not go unexplained).
    pub fn from_saved_noting(json: Option<&str>) -> (Self, Option<String>) {
        // As the page wrote it, read once; only a save it cannot read goes field by field.
        if let Some(ws) = json.and_then(|j| serde_json::from_str::<Workspace>(j).ok()) {
            let long: Vec<&str> = [("prompt", &ws.prompt), ("text to score", &ws.score_text)]
                .into_iter()
                .filter(|(_, t)| t.chars().nth(MAX_SAVED_TEXT).is_some())
                .map(|(what, _)| what)
                .collect();
            let note = (!long.is_empty()).then(|| {
                format!(
                    "The saved {} had more than {MAX_SAVED_TEXT} characters; only the first \
                     {MAX_SAVED_TEXT} are kept across a reload.",
                    long.join(" and the ")
                )
            });
            return (ws.clamped(), note);
        }
        let Some(text) = json else {
            return (Self::default(), None);
        };
        let object = json_overflow_read(text).filter(serde_json::Value::is_object);
        let note = if object.is_some() {
            "Part of the saved workspace could not be read; those settings are back at their \
             defaults."
        } else {
            "The saved workspace could not be read; the page opened with its defaults."
        };
        (Self::from_value(object), Some(note.into()))
    }

    fn from_value(value: Option<serde_json::Value>) -> Self {
        let ws = value
            .and_then(|mut v| {
                // One unreadable pane setting costs that setting, not the panes.
                if let Some(panes) = v.get_mut("panes").and_then(|p| p.as_array_mut()) {
                    *panes = std::mem::take(panes)
                        .into_iter()
                        .filter_map(lenient::<PaneSettings>)
                        .filter_map(|p| serde_json::to_value(p).ok())
                        .collect();
                }
                lenient::<Workspace>(v)
            })
            .unwrap_or_default();
        ws.clamped()
    }

    /// Within what the page offers: at most [`MAX_PANES`] panes (each can start a worker),
    /// values the controls could have set, model ids that can only name a catalog entry, and
    /// texts of a bounded size. A saved workspace or a permalink is someone's data, not ours.
    pub fn clamped(mut self) -> Self {
        self.panes.truncate(MAX_PANES);
        if self.panes.is_empty() {
            self.panes.push(PaneSettings::default());
        }
        for p in &mut self.panes {
            p.clamp();
        }
        truncate_chars(&mut self.prompt, MAX_SAVED_TEXT);
        truncate_chars(&mut self.score_text, MAX_SAVED_TEXT);
        self.lab_sentences = self.lab_sentences.clamp(1, MAX_LAB_SENTENCES);
        let e = &mut self.eval;
        e.n = e.n.clamp(1, crate::eval::tasks::MAX_ITEMS);
        e.list_len = e.list_len.clamp(2, 50);
        e.fit_list_to_task();
        e.conditions.truncate(8);
        truncate_chars(&mut e.task, 64);
        self
    }

    pub fn to_saved(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Applies permalink parameters (`?models=a,b&prompt=…&temperature=…&max_tokens=…&seed=…
    /// &mode=…`). Unknown parameters are ignored; a value that cannot be used as it is (not a
    /// number, out of range, too many models) is ignored or brought into range, and said in
    /// the notes returned, one sentence each.
    pub fn apply_query(&mut self, query: &str) -> Vec<String> {
        let query = query.strip_prefix('?').unwrap_or(query);
        // The panes as they were, before the single values below change the first.
        let own = self.panes.clone();
        let mut panes: Option<Vec<PaneSettings>> = None;
        let mut notes = Vec::new();
        // (parameter, value asked for) of numbers checked against what was kept, once clamped.
        let mut asked_temperature = None;
        let mut asked_max_tokens = None;
        let mut linked_list = false;
        let mut too_many_models = None;
        // The single-value parameters given (name, value), which a `panes=` overrides.
        let mut singles: Vec<(&'static str, String)> = Vec::new();
        // A `panes=` as given (its entries, how many): what it asked is checked against what
        // is used once clamped.
        let mut panes_given: Option<(Vec<serde_json::Value>, usize)> = None;
        // CONTRACT.md's link has one text, `prompt=`: in a `mode=score` link without the
        // page's own `text=`, it is the text to measure.
        let (mut linked_prompt, mut linked_text, mut linked_score) = (None, false, false);
        // What `models=` could not use; said unless a `panes=` replaced it.
        let mut model_notes: Vec<String> = Vec::new();
        let shown = |v: &str| -> String {
            let short: String = v.chars().take(24).collect();
            if short.len() < v.len() {
                format!("{short}…")
            } else {
                short
            }
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            let unread = |notes: &mut Vec<String>, key: &str, what: &str| {
                notes.push(format!(
                    "The link's {key}={} is not {what}; it was left out.",
                    shown(&v)
                ))
            };
            match percent_decode(k).as_str() {
                "models" => {
                    singles.push(("models", v.clone()));
                    // The last models= is the one used: its notes only.
                    model_notes.clear();
                    let ids: Vec<&str> = v
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect();
                    for id in ids
                        .iter()
                        .take(MAX_PANES)
                        .filter(|id| !is_model_id_form(id))
                    {
                        model_notes.push(format!(
                            "The link's models= names \"{}\", which is not a model id (letters, \
                             digits, - _ .); that pane was left without a model.",
                            shown(id)
                        ));
                    }
                    if ids.len() > MAX_PANES {
                        too_many_models = Some(ids.len());
                    }
                    if ids.is_empty() {
                        model_notes.push(format!(
                            "The link's models={} names no model; the panes were left as they \
                             were.",
                            shown(&v)
                        ));
                    } else {
                        // Pane 1's settings only: a pane whose id was refused loaded pane
                        // 1's file.
                        let template = self
                            .panes
                            .first()
                            .map(PaneSettings::settings_only)
                            .unwrap_or_default();
                        self.panes = ids
                            .iter()
                            .take(MAX_PANES)
                            .map(|id| PaneSettings {
                                model_id: id.to_string(),
                                ..template.clone()
                            })
                            .collect();
                    }
                }
                // As a text box gives its text back: line ends as `\n`, so that what the box
                // shows is what is measured (and a result is not "for an earlier text").
                "prompt" => {
                    let v = box_text(&v);
                    self.prompt = v.clone();
                    linked_prompt = Some(v);
                }
                "text" => {
                    self.score_text = box_text(&v);
                    linked_text = true;
                }
                "mode" if v == "score" => {
                    self.mode = Mode::Score;
                    linked_score = true;
                }
                // `1e308` is a finite number (out of range), not f32's infinity: f64 tells.
                "temperature" => match v.parse::<f32>().map(|t| match v.parse::<f64>() {
                    Ok(x) if t.is_infinite() && x.is_finite() => f32::MAX.copysign(t),
                    _ => t,
                }) {
                    Ok(t) if t.is_finite() => {
                        singles.push(("temperature", v.clone()));
                        // `-0` is 0: shown, and linked on, as 0.
                        let t = if t == 0.0 { 0.0 } else { t };
                        self.panes.iter_mut().for_each(|p| p.temperature = t);
                        asked_temperature = Some(v.clone());
                    }
                    // `1e400` is a number, past what a float holds.
                    Ok(t) if t.is_infinite() => {
                        unread(&mut notes, "temperature", "a finite number")
                    }
                    _ => unread(&mut notes, "temperature", "a number"),
                },
                "max_tokens" => {
                    // Past the limit is the limit (`clamp`), also where usize is 32 bits.
                    // Digits past u64 are a number too, far out of range.
                    match whole_number(&v) {
                        Some(n) => {
                            singles.push(("max_tokens", v.clone()));
                            let n = n.min(MAX_TOKENS_LIMIT as u64) as usize;
                            self.panes.iter_mut().for_each(|p| p.max_tokens = n);
                            asked_max_tokens = Some(v.clone());
                        }
                        None => unread(
                            &mut notes,
                            "max_tokens",
                            &format!("a number of tokens, 1 to {MAX_TOKENS_LIMIT}"),
                        ),
                    }
                }
                "seed" => match v.parse::<u64>() {
                    Ok(n) => {
                        singles.push(("seed", v.clone()));
                        self.panes.iter_mut().for_each(|p| p.seed = n)
                    }
                    Err(_) => unread(
                        &mut notes,
                        "seed",
                        "a whole number from 0 to 18446744073709551615",
                    ),
                },
                "panes" => {
                    // Every pane's settings; applied after the loop so it wins over the
                    // single-value parameters above, whatever their order.
                    // A value that is not what the page writes costs that value only.
                    let read = match json_overflow_read(&v) {
                        Some(serde_json::Value::Array(list)) => {
                            let count = list.len();
                            let given: Vec<serde_json::Value> =
                                list.into_iter().take(MAX_PANES).collect();
                            let p: Vec<PaneSettings> =
                                given.iter().cloned().filter_map(lenient).collect();
                            // Entries line up with panes only when every one was read.
                            let read = (!p.is_empty()).then_some(p);
                            if read.is_some() {
                                panes_given = Some((given, count));
                            }
                            read
                        }
                        _ => None,
                    };
                    if read.is_none() {
                        notes.push(
                            "The link's panes= holds no pane settings this page can read; it \
                             was left out."
                                .into(),
                        );
                    }
                    // The last readable one wins, as for every other parameter.
                    if read.is_some() {
                        panes = read;
                    }
                }
                "mode" => match v.as_str() {
                    "generate" => self.mode = Mode::Generate,
                    "score" => self.mode = Mode::Score,
                    "eval" => self.mode = Mode::Eval,
                    "chat" => self.mode = Mode::Chat,
                    _ => unread(&mut notes, "mode", "generate, score, chat or eval"),
                },
                "eval_task" => {
                    use crate::eval::tasks::Task;
                    if Task::from_id(&v).is_some() {
                        self.eval.task = v
                    } else {
                        let ids: Vec<&str> = Task::ALL.iter().map(|t| t.id()).collect();
                        unread(
                            &mut notes,
                            "eval_task",
                            &format!("one of {}", ids.join(", ")),
                        )
                    }
                }
                "eval_n" => {
                    let max = crate::eval::tasks::MAX_ITEMS;
                    match whole_number(&v) {
                        Some(n) => {
                            self.eval.n = n.clamp(1, max as u64) as usize;
                            clamped(&mut notes, "eval_n", &v, self.eval.n);
                        }
                        None => unread(
                            &mut notes,
                            "eval_n",
                            &format!("a number of items, 1 to {max}"),
                        ),
                    }
                }
                "eval_seed" => match v.parse::<u64>() {
                    Ok(n) => self.eval.seed = n,
                    Err(_) => unread(
                        &mut notes,
                        "eval_seed",
                        "a whole number from 0 to 18446744073709551615",
                    ),
                },
                // Human vs model's prompt: its first N sentences (a page-only parameter, as
                // `text`; a link to a lab result reopened with the receiver's own N).
                "lab_sentences" => match whole_number(&v) {
                    Some(n) => {
                        self.lab_sentences = n.clamp(1, MAX_LAB_SENTENCES as u64) as usize;
                        clamped(&mut notes, "lab_sentences", &v, self.lab_sentences);
                    }
                    None => unread(
                        &mut notes,
                        "lab_sentences",
                        &format!("a number of sentences, 1 to {MAX_LAB_SENTENCES}"),
                    ),
                },
                "eval_list" => match whole_number(&v) {
                    Some(n) => {
                        linked_list = true;
                        self.eval.list_len = n.clamp(2, 50) as usize;
                        clamped(&mut notes, "eval_list", &v, self.eval.list_len);
                    }
                    None => unread(&mut notes, "eval_list", "a list length, 2 to 50"),
                },
                "eval_conditions" => {
                    let mut seen = std::collections::HashSet::new();
                    // A `+` typed into a link arrives as a space (form encoding); no
                    // condition id holds one.
                    let v = v.replace(' ', "+");
                    let parts: Vec<&str> = v.split(',').filter(|c| !c.is_empty()).collect();
                    // The page's own link says `eval_conditions=` when none is ticked.
                    if parts.is_empty() && !v.is_empty() {
                        unread(
                            &mut notes,
                            "eval_conditions",
                            "a list of conditions (baseline, repeat-2, …)",
                        );
                    }
                    let bad: Vec<&&str> = parts
                        .iter()
                        .filter(|c| crate::eval::Condition::from_id(c).is_none())
                        .collect();
                    // One sentence for them all: a link of thousands gave thousands.
                    if let Some(first) = bad.first() {
                        let more = match bad.len() {
                            1 => String::new(),
                            n => format!(" and {} more", n - 1),
                        };
                        notes.push(format!(
                            "The link's eval_conditions names \"{}\"{more}, which is not a \
                             condition (baseline, repeat-2, repeat-3, options-first, chat, \
                             generate, or several joined by +); left out.",
                            shown(first)
                        ));
                    }
                    let cs: Vec<String> = parts
                        .iter()
                        .filter_map(|c| crate::eval::Condition::from_id(c))
                        .map(|c| c.id())
                        .filter(|id| seen.insert(id.clone()))
                        .collect();
                    if cs.len() > MAX_LINKED_CONDITIONS {
                        notes.push(format!(
                            "The link's eval_conditions names {} conditions; the first \
                             {MAX_LINKED_CONDITIONS} are used.",
                            cs.len()
                        ));
                    }
                    let cs: Vec<String> = cs.into_iter().take(MAX_LINKED_CONDITIONS).collect();
                    if !cs.is_empty() {
                        self.eval.conditions = cs;
                    }
                }
                _ => {}
            }
        }
        // A `panes=` wins over the single values: those are then not what is used. A file on
        // someone else's machine is not a model here.
        if let Some(mut p) = panes {
            p.iter_mut().for_each(|p| p.local_model = None);
            // The page's own links carry both, agreeing; a value edited by hand disagrees.
            let first = p.first().cloned().unwrap_or_default();
            let ids: Vec<&str> = p
                .iter()
                .map(|p| p.model_id.as_str())
                .filter(|id| !id.is_empty())
                .collect();
            let mut ignored: Vec<String> = Vec::new();
            let mut seen: Vec<&str> = Vec::new();
            // The last of a repeated parameter is the one that would have counted.
            for (name, value) in singles.iter().rev() {
                if seen.contains(name) {
                    continue;
                }
                seen.push(name);
                let agrees = match *name {
                    "models" => {
                        let asked: Vec<&str> = value
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .collect();
                        asked == ids
                    }
                    "temperature" => value.parse::<f32>().ok() == Some(first.temperature),
                    "max_tokens" => value.parse::<usize>().ok() == Some(first.max_tokens),
                    _ => value.parse::<u64>().ok() == Some(first.seed),
                };
                if !agrees {
                    ignored.insert(0, format!("{name}="));
                }
            }
            if !ignored.is_empty() {
                notes.push(format!(
                    "The link's panes= gives every pane's settings, so its {} {} not used.",
                    ignored.join(", "),
                    if ignored.len() == 1 { "was" } else { "were" }
                ));
            }
            // A pane the link describes as it is here (the page's own link, reloaded) stays
            // whole: the link cannot carry its draft, its replies' numbers nor its model from
            // a file, and a reload must not drop them.
            self.panes = p
                .into_iter()
                .enumerate()
                .map(|(i, linked)| match own.get(i) {
                    Some(o) if o.as_linked() == linked => o.clone(),
                    _ => linked,
                })
                .collect();
            asked_temperature = None;
            asked_max_tokens = None;
            too_many_models = None;
        } else {
            panes_given = None;
            notes.append(&mut model_notes);
        }
        if let Some(n) = too_many_models {
            notes.insert(
                0,
                format!(
                    "The link names {n} models; a page holds {MAX_PANES} panes, so the first \
                     {MAX_PANES} are used."
                ),
            );
        }
        let score_link = linked_score && self.mode == Mode::Score;
        if let Some(p) = linked_prompt.filter(|_| score_link && !linked_text) {
            self.score_text = p;
        }
        // Said before `clamped` fits it silently (as it does a save's).
        if let Some(short) = self.eval.fit_list_to_task() {
            if linked_list {
                notes.push(format!(
                    "The link's eval_list={short} is too short for {} ({} to 50); {} is used.",
                    self.eval.task,
                    crate::eval::tasks::Task::from_id(&self.eval.task)
                        .map_or(2, |t| t.min_list_len()),
                    self.eval.list_len
                ));
            }
        }
        *self = std::mem::take(self).clamped();
        if let Some((given, count)) = panes_given {
            if count > MAX_PANES {
                notes.push(format!(
                    "The link's panes= lists {count} panes; a page holds {MAX_PANES}, so the \
                     first {MAX_PANES} are used."
                ));
            }
            let unreadable = given
                .iter()
                .filter(|g| lenient::<PaneSettings>((*g).clone()).is_none())
                .count();
            if unreadable > 0 {
                notes.push(format!(
                    "The link's panes= holds {unreadable} entr{} that {} not pane settings; \
                     left out.",
                    if unreadable == 1 { "y" } else { "ies" },
                    if unreadable == 1 { "is" } else { "are" }
                ));
            } else {
                notes.extend(
                    given
                        .iter()
                        .zip(&self.panes)
                        .enumerate()
                        .filter_map(|(i, (g, used))| panes_param_changes(i, g, used)),
                );
            }
        }
        let first = self.panes.first().cloned().unwrap_or_default();
        if let Some(v) = asked_temperature {
            if v.parse::<f32>().ok() != Some(first.temperature) {
                notes.push(format!(
                    "The link's temperature={} is out of range; {} is used.",
                    shown(&v),
                    first.temperature
                ));
            }
        }
        if let Some(v) = asked_max_tokens {
            if whole_number(&v) != Some(first.max_tokens as u64) {
                notes.push(format!(
                    "The link's max_tokens={} is out of range (1 to {MAX_TOKENS_LIMIT}); {} is used.",
                    shown(&v),
                    first.max_tokens
                ));
            }
        }
        notes
    }
}

/// Parameters `apply_query` reads: a link's description of a workspace. The others
/// (`demo=1`, `debug=1`, a tracking parameter) are not the workspace's and stay in the URL.
const WORKSPACE_PARAMS: [&str; 14] = [
    "models",
    "prompt",
    "text",
    "lab_sentences",
    "temperature",
    "max_tokens",
    "seed",
    "panes",
    "mode",
    "eval_task",
    "eval_n",
    "eval_seed",
    "eval_list",
    "eval_conditions",
];

impl Workspace {
    /// The query to leave in the address bar once the workspace is `self`: `query` itself
    /// while its workspace parameters still describe `self` (a link just opened, or just made
    /// by Permalink), else `query` without them. A reload applies the address bar's link over
    /// the saved workspace, so a link left there after an edit would bring back the linked
    /// prompt and settings over the user's own. `None` when `query` needs no change.
    pub fn query_after_edit(&self, query: &str) -> Option<String> {
        let query = query.strip_prefix('?').unwrap_or(query);
        if !query.split('&').any(is_workspace_param) {
            return None;
        }
        let mut linked = self.clone();
        linked.apply_query(query);
        // Compared as links are: a conversation's per-token numbers are not part of one.
        if linked.clone().clamped().to_query() == self.clone().clamped().to_query() {
            return None;
        }
        Some(address_flags(query))
    }

    /// What makes most of a link: the prompt, the text to measure or the conversations.
    pub fn longest_link_part(&self) -> &'static str {
        let conversations: usize = self
            .panes
            .iter()
            .map(|p| {
                let c = &p.conversation;
                c.system.len() + c.turns.iter().map(|t| t.content.len()).sum::<usize>()
            })
            .sum();
        [
            (self.prompt.len(), "the prompt"),
            (self.score_text.len(), "the text to measure"),
            (conversations, "the conversations"),
        ]
        .into_iter()
        .max_by_key(|(n, _)| *n)
        .map_or("the prompt", |(_, what)| what)
    }

    /// The Permalink button's query: the address's own flags (`demo=1`, `simd=plain`, …), which
    /// a link keeps as an edit does, then the workspace's parameters.
    pub fn permalink_query(&self, address_query: &str) -> String {
        // Not `debug=1`: whoever opened the link got the debug page's Crash worker button.
        let flags = address_flags(address_query.strip_prefix('?').unwrap_or(address_query))
            .split('&')
            .filter(|f| !f.is_empty() && !f.starts_with("debug="))
            .collect::<Vec<_>>()
            .join("&");
        let ours = self.to_query();
        [flags, ours]
            .into_iter()
            .filter(|q| !q.is_empty())
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The permalink query (without `?`): CONTRACT.md's parameters plus `text` for the score
    /// text. Temperature, max tokens and seed come from the first pane.
    pub fn to_query(&self) -> String {
        let first = self.panes.first().cloned().unwrap_or_default();
        let models: Vec<&str> = self
            .panes
            .iter()
            .map(|p| p.model_id.as_str())
            .filter(|id| !id.is_empty())
            .collect();
        let mut q = vec![];
        if !models.is_empty() {
            q.push(format!("models={}", percent_encode(&models.join(","))));
        }
        q.push(format!("prompt={}", percent_encode(&self.prompt)));
        q.push(format!("temperature={}", first.temperature));
        q.push(format!("max_tokens={}", first.max_tokens));
        q.push(format!("seed={}", first.seed));
        q.push(format!("mode={}", self.mode.id()));
        if self.mode == Mode::Eval {
            let e = &self.eval;
            q.push(format!("eval_task={}", percent_encode(&e.task)));
            q.push(format!("eval_n={}", e.n));
            q.push(format!("eval_seed={}", e.seed));
            q.push(format!("eval_list={}", e.list_len));
            q.push(format!(
                "eval_conditions={}",
                percent_encode(&e.conditions.join(","))
            ));
        }
        // Always in Score mode: a link without it reads `prompt=` as the text to measure.
        if !self.score_text.is_empty() || self.mode == Mode::Score {
            q.push(format!("text={}", percent_encode(&self.score_text)));
            q.push(format!("lab_sentences={}", self.lab_sentences));
        }
        let panes: Vec<PaneSettings> = self.panes.iter().map(PaneSettings::as_linked).collect();
        if let Ok(json) = serde_json::to_string(&panes) {
            q.push(format!("panes={}", percent_encode(&json)));
        }
        q.join("&")
    }
}

/// Percent-encodes everything but unreserved characters (and `,`, which model lists use).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; invalid escapes
/// stay as written and invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match s
                .get(i + 1..i + 3)
                // Two hex digits, as URLSearchParams wants: from_str_radix alone takes
                // "+3" as a number.
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a query's `key=value` pair is one of the workspace's (CONTRACT.md's permalink
/// parameters), not a flag of the address's own.
fn is_workspace_param(pair: &str) -> bool {
    let key = pair.split_once('=').map_or(pair, |(k, _)| k);
    WORKSPACE_PARAMS.contains(&percent_decode(key).as_str())
}

/// The pairs of a query (without `?`) that are not the workspace's, in their order.
pub fn address_flags(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty() && !is_workspace_param(p))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link stays in the address bar while it describes the workspace and goes (its
    /// parameters only) at the first edit, so that a reload keeps the edit.
    #[test]
    fn a_link_leaves_the_address_bar_once_the_workspace_differs() {
        let ws = Workspace {
            prompt: "What is 2 + 2?".into(),
            ..Workspace::default()
        };
        let link = format!("?demo=1&{}&utm_source=x", ws.to_query());
        assert_eq!(ws.query_after_edit(&link), None);
        assert_eq!(ws.query_after_edit("?demo=1&debug=1"), None);
        assert_eq!(ws.query_after_edit(""), None);
        let mut edited = ws.clone();
        edited.prompt.push('!');
        assert_eq!(
            edited.query_after_edit(&link).as_deref(),
            Some("demo=1&utm_source=x")
        );
        let mut hotter = ws.clone();
        hotter.panes[0].temperature += 0.5;
        assert_eq!(hotter.query_after_edit(&ws.to_query()).as_deref(), Some(""));
        // A short hand-written link that the workspace still matches stays.
        assert_eq!(
            ws.query_after_edit("?prompt=What%20is%202%20%2B%202%3F"),
            None
        );
    }
    /// The page's own link, reloaded over the workspace it was made from, changes nothing: the
    /// draft, the replies' numbers and a model from a file stay (they were dropped). A link
    /// that differs replaces the pane, with none of them.
    #[test]
    fn reloading_the_pages_own_link_keeps_what_a_link_cannot_carry() {
        let mut ws = Workspace::default();
        ws.panes.push(PaneSettings::default());
        let p = &mut ws.panes[0];
        p.model_id.clear();
        p.local_model = Some(LocalModel {
            url: "/local/abc".into(),
            label: "mine.gguf".into(),
        });
        p.conversation.draft = "Half a messa".into();
        p.conversation.turns = vec![
            Turn {
                role: "user".into(),
                content: "Hi".into(),
                tokens: vec![],
            },
            Turn {
                role: "assistant".into(),
                content: "Hello".into(),
                tokens: vec![TurnToken {
                    id: 9,
                    piece: "Hello".into(),
                    entropy: 1.5,
                    surprisal: 0.25,
                    rank: 0,
                    best_p: Some(0.78),
                }],
            },
        ];
        let ws = ws.clamped();
        let link = ws.to_query();
        let mut reloaded = ws.clone();
        let notes = reloaded.apply_query(&link);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(reloaded, ws);
        assert_eq!(reloaded.to_saved(), ws.to_saved());
        // Someone else's link for pane 1: theirs, whole.
        let mut theirs = ws.clone();
        theirs.panes[0].temperature = 0.3;
        let mut opened = ws.clone();
        opened.apply_query(&theirs.to_query());
        assert_eq!(opened.panes[0], theirs.panes[0].as_linked());
        assert_eq!(opened.panes[1], ws.panes[1]);
    }

    /// A reply's forks may replace it only while it is the last turn and answers the same
    /// messages: not after Edit took it back, nor once the system prompt changed.
    #[test]
    fn a_conversation_answers_the_messages_its_last_reply_was_asked() {
        let turn = |role: &str, content: &str| Turn {
            role: role.into(),
            content: content.into(),
            tokens: vec![],
        };
        let mut c = Conversation {
            system: "Be brief.".into(),
            turns: vec![turn("user", "hi")],
            left_out: 0,
            draft: String::new(),
        };
        let asked = c.messages();
        assert!(!c.answers(&asked), "no reply yet");
        c.turns.push(turn("assistant", "hello"));
        assert!(c.answers(&asked));
        assert!(!c.answers(&[]));
        c.system = "Be long.".into();
        assert!(!c.answers(&asked));
        assert!(c.system_changed_since(&asked));
        c.system = String::new();
        assert!(c.system_changed_since(&asked));
        c.system = "Be brief.".into();
        assert!(!c.system_changed_since(&asked));
        c.turns.push(turn("user", "more"));
        assert!(!c.answers(&asked));
        assert!(!c.system_changed_since(&asked));
        c.turns.truncate(1);
        assert!(!c.answers(&asked));
        assert!(!Conversation::default().answers(&[]));
        // A blank system prompt is none: typing spaces into the box changes nothing asked.
        let mut blank = Conversation {
            system: String::new(),
            turns: vec![turn("user", "hi")],
            ..Conversation::default()
        };
        let asked = blank.messages();
        blank.turns.push(turn("assistant", "hello"));
        blank.system = "  \n".into();
        assert!(blank.answers(&asked));
        assert!(!blank.system_changed_since(&asked));
    }

    #[test]
    fn defaults_make_a_valid_request() {
        let r = PaneSettings::default().request("Hello").unwrap();
        assert_eq!(r.prompt, "Hello");
        assert!(r.chat);
        assert_eq!(r.max_tokens, 128);
    }

    #[test]
    fn bad_settings_say_what_to_fix() {
        assert_eq!(
            PaneSettings::default().request("").unwrap_err(),
            "Type a prompt first."
        );
        // White space is text to continue, as the command line takes it.
        assert!(PaneSettings::default().request("  \n").is_ok());
        let p = PaneSettings {
            max_tokens: 0,
            ..PaneSettings::default()
        };
        assert!(p.request("x").unwrap_err().contains("Max tokens"));
        let p = PaneSettings {
            temperature: -1.0,
            ..PaneSettings::default()
        };
        assert!(p.request("x").unwrap_err().contains("temperature"));
    }

    /// A setting the page cannot read costs that setting only: the prompt, the other panes
    /// and the pane's other settings stay, from a save and from a link's `panes=`.
    #[test]
    fn one_unreadable_setting_keeps_the_rest() {
        let saved = r#"{"prompt":"keep me","mode":"nonsense","panes":[
            {"seed":7,"temperature":"hot","max_tokens":64},3,{"seed":9,"color_mode":[1]}]}"#;
        let ws = Workspace::from_saved(Some(saved));
        assert_eq!(ws.prompt, "keep me");
        assert_eq!(ws.lab_sentences, 2, "not in that save: the default");
        let far = Workspace::from_saved(Some(r#"{"lab_sentences": 99}"#));
        assert_eq!(far.lab_sentences, MAX_LAB_SENTENCES);
        assert_eq!(ws.mode, Mode::default());
        assert_eq!(ws.panes.len(), 2);
        let d = PaneSettings::default();
        assert_eq!(
            (
                ws.panes[0].seed,
                ws.panes[0].temperature,
                ws.panes[0].max_tokens
            ),
            (7, d.temperature, 64)
        );
        assert_eq!(
            (ws.panes[1].seed, ws.panes[1].color_mode),
            (9, d.color_mode)
        );
        let mut linked = Workspace::default();
        linked.apply_query(&format!(
            "panes={}",
            percent_encode(r#"[{"seed":3,"top_k":"many"},"not a pane",{"seed":4}]"#)
        ));
        assert_eq!(
            linked
                .panes
                .iter()
                .map(|p| (p.seed, p.top_k))
                .collect::<Vec<_>>(),
            vec![(3, d.top_k), (4, d.top_k)]
        );
        assert_eq!(Workspace::from_saved(Some("[1,2]")), Workspace::default());
    }

    #[test]
    fn a_number_too_large_for_a_double_costs_that_value_only() {
        let saved = r#"{"prompt":"keep me","panes":[{"seed":7,"top_p":1e309,"max_tokens":64}]}"#;
        let (ws, note) = Workspace::from_saved_noting(Some(saved));
        assert_eq!(ws.prompt, "keep me");
        assert_eq!(
            (ws.panes[0].seed, ws.panes[0].max_tokens, ws.panes[0].top_p),
            (7, 64, PaneSettings::default().top_p)
        );
        assert!(note.is_some_and(|n| n.starts_with("Part of")));
        // In a string, the same digits are text, and stay as they are.
        let saved = r#"{"prompt":"1e309 \" -1e999","panes":[{"seed":-1e400}]}"#;
        assert_eq!(
            Workspace::from_saved(Some(saved)).prompt,
            r#"1e309 " -1e999"#
        );
        // Not JSON, with an escape before a character of several bytes: refused, not a panic.
        for bad in [r#"["\é", 1e999"#, r#""\"#, r#"{"a": -"#, "1e999 é"] {
            assert_eq!(json_overflow_read(bad), None, "{bad}");
        }
        let mut ws = Workspace::default();
        let notes = ws.apply_query(&format!(
            "panes={}",
            percent_encode(
                r#"[{"model_id":"smollm2-135m-instruct-q4_1","temperature":1e309,"seed":7}]"#
            )
        ));
        assert_eq!(ws.panes[0].model_id, "smollm2-135m-instruct-q4_1");
        assert_eq!(ws.panes[0].seed, 7);
        assert_eq!(
            notes,
            ["The link's panes= for pane 1: temperature \"1e309\" → 0.8 (unreadable or out of range)."]
        );
    }

    /// A reply's NaN or infinite statistics come back from a save, and the conversation
    /// with them (`null` did not read back, and the whole conversation was dropped).
    #[test]
    fn a_reply_with_nan_statistics_survives_a_reload() {
        let mut ws = Workspace::default();
        ws.panes[0].conversation.turns = vec![
            Turn {
                role: "user".into(),
                content: "hi".into(),
                tokens: vec![],
            },
            Turn {
                role: "assistant".into(),
                content: "x".into(),
                tokens: vec![TurnToken {
                    id: 5,
                    piece: "x".into(),
                    entropy: f64::NAN,
                    surprisal: f64::INFINITY,
                    rank: 0,
                    best_p: Some(f64::NAN),
                }],
            },
        ];
        let back = Workspace::from_saved(Some(&ws.to_saved()));
        let turns = &back.panes[0].conversation.turns;
        assert_eq!(turns.len(), 2);
        assert!(turns[1].tokens[0].entropy.is_nan());
        assert_eq!(turns[1].tokens[0].surprisal, f64::INFINITY);
        assert!(turns[1].tokens[0].best_p.is_some_and(f64::is_nan));
        // A save written before, with `null`, reads too; one without `best_p` too.
        let old = r#"{"panes":[{"conversation":{"turns":[{"role":"assistant","content":"x",
            "tokens":[{"id":5,"piece":"x","entropy":null,"surprisal":1.5,"rank":0}]}]}}]}"#;
        let back = Workspace::from_saved(Some(old));
        assert_eq!(back.panes[0].conversation.turns.len(), 1);
    }

    #[test]
    fn a_conversation_over_the_saved_turns_keeps_its_newest() {
        let turns: Vec<serde_json::Value> = (0..205)
            .map(|i| {
                let role = if i % 2 == 0 { "user" } else { "assistant" };
                serde_json::json!({"role": role, "content": format!("turn {i}")})
            })
            .collect();
        let saved = serde_json::json!({
            "panes": [{"conversation": {"turns": turns, "left_out": 10}}]
        })
        .to_string();
        let ws = Workspace::from_saved(Some(&saved));
        let kept = &ws.panes[0].conversation;
        assert_eq!(kept.turns.len(), 199);
        assert_eq!(kept.turns[0].content, "turn 6");
        assert_eq!(kept.turns[0].role, "user");
        assert_eq!(kept.turns[198].content, "turn 204");
        assert_eq!(kept.left_out, 4);
    }

    #[test]
    fn a_linked_seed_read_as_another_says_so() {
        // The number as it was read (a double) is what the note shows.
        for (given, shown, used) in [
            ("1234567.5", "1234567.5", 1_234_567u64),
            ("18446744073709551616", "1.8446744073709552e+19", u64::MAX),
            (
                "9007199254740993.0",
                "9007199254740994.0",
                9_007_199_254_740_994,
            ),
        ] {
            let mut ws = Workspace::default();
            let notes = ws.apply_query(&format!(
                "panes={}",
                percent_encode(&format!(r#"[{{"seed":{given}}}]"#))
            ));
            assert_eq!(ws.panes[0].seed, used, "{given}");
            assert_eq!(
                notes,
                [format!(
                    "The link's panes= for pane 1: seed {shown} → {used} (unreadable or out of \
                     range)."
                )],
                "{given}"
            );
        }
        // The same number written as a whole float is the same seed.
        let mut ws = Workspace::default();
        assert!(ws
            .apply_query(&format!("panes={}", percent_encode(r#"[{"seed":7.0}]"#)))
            .is_empty());
    }

    #[test]
    fn saved_workspace_round_trips_and_garbage_gives_default() {
        let mut ws = Workspace {
            prompt: "Hi ✓".into(),
            ..Workspace::default()
        };
        ws.panes[0].seed = 7;
        assert_eq!(Workspace::from_saved(Some(&ws.to_saved())), ws);
        assert_eq!(
            Workspace::from_saved(Some("{not json")),
            Workspace::default()
        );
        assert_eq!(Workspace::from_saved(None), Workspace::default());
        let hostile = Workspace::from_saved(Some(&format!(
            r#"{{"panes":[{}],"prompt":"{}"}}"#,
            [
                r#"{"model_id":"../../x?y","temperature":1e30,"top_p":-3,"max_tokens":1e12,"top_k":-5,"seed":1e40,"repeat_penalty":0}"#;
                10
            ]
            .join(","),
            "p".repeat(MAX_SAVED_TEXT + 10)
        )));
        assert_eq!(hostile.panes.len(), MAX_PANES);
        let p = &hostile.panes[0];
        assert_eq!(p.model_id, "");
        assert_eq!(
            (p.temperature, p.top_p, p.max_tokens, p.repeat_penalty),
            (5.0, 0.01, MAX_TOKENS_LIMIT, 0.5)
        );
        assert_eq!((p.top_k, p.seed), (0, u64::MAX));
        assert!(p.request("hi").is_ok());
        assert_eq!(hostile.prompt.len(), MAX_SAVED_TEXT);
        // A text cut to the limit on reading is said.
        let long = Workspace {
            score_text: "s".repeat(MAX_SAVED_TEXT + 1),
            ..Workspace::default()
        };
        let (back, note) = Workspace::from_saved_noting(Some(&long.to_saved()));
        assert_eq!(back.score_text.len(), MAX_SAVED_TEXT);
        let note = note.unwrap_or_default();
        assert!(note.contains("saved text to score had more than"), "{note}");
        let (_, none) = Workspace::from_saved_noting(Some(&Workspace::default().to_saved()));
        assert_eq!(none, None);
        let mut linked = Workspace::default();
        linked.apply_query("models=a,b,c,d,e,f,g&temperature=NaN&max_tokens=0");
        assert_eq!(linked.panes.len(), MAX_PANES);
        assert!(linked.panes.iter().all(|p| p.max_tokens == 1));
        // Past usize on wasm32: the limit, not the default of 128.
        linked.apply_query("max_tokens=99999999999");
        assert!(linked
            .panes
            .iter()
            .all(|p| p.max_tokens == MAX_TOKENS_LIMIT));
        let empty = Workspace::from_saved(Some(r#"{"panes":[]}"#));
        assert_eq!(empty.panes.len(), 1);
    }

    #[test]
    fn permalink_parameters() {
        let mut ws = Workspace::default();
        ws.apply_query(
            "?models=smollm2-135m-instruct-q4_1,gemma3-270m-q4_k_m&prompt=Why+is%20the+sky%3F\
             &temperature=0&max_tokens=24&seed=9&mode=score&whatever=1",
        );
        assert_eq!(ws.panes.len(), 2);
        assert_eq!(ws.panes[1].model_id, "gemma3-270m-q4_k_m");
        assert_eq!(ws.prompt, "Why is the sky?");
        assert!(ws
            .panes
            .iter()
            .all(|p| p.temperature == 0.0 && p.max_tokens == 24 && p.seed == 9));
        assert_eq!(ws.mode, Mode::Score);

        let mut ws = Workspace::default();
        let notes = ws.apply_query("temperature=hot&max_tokens=-3&mode=dance&seed=-1");
        assert_eq!(ws, Workspace::default());
        // Each value left out is said, with what the page reads there.
        assert_eq!(
            notes,
            [
                "The link's temperature=hot is not a number; it was left out.",
                "The link's max_tokens=-3 is not a number of tokens, 1 to 4096; it was left out.",
                "The link's mode=dance is not generate, score, chat or eval; it was left out.",
                "The link's seed=-1 is not a whole number from 0 to 18446744073709551615; it \
                 was left out.",
            ]
        );
        // Values brought into range, and models past the panes a page holds, too.
        let mut ws = Workspace::default();
        // Digits past any integer are a number out of range, not "not a number".
        let notes = Workspace::default().apply_query("max_tokens=99999999999999999999");
        assert_eq!(
            notes,
            ["The link's max_tokens=99999999999999999999 is out of range (1 to 4096); 4096 is used."]
        );
        // A number box's forms (`1e12`) are numbers; 1e308 is finite, past the range.
        let mut far = Workspace::default();
        assert_eq!(
            far.apply_query("max_tokens=1e12&temperature=1e308"),
            [
                "The link's temperature=1e308 is out of range; 5 is used.",
                "The link's max_tokens=1e12 is out of range (1 to 4096); 4096 is used.",
            ]
        );
        assert!(far.apply_query("max_tokens=2e1&eval_n=1e1").is_empty());
        assert_eq!((far.panes[0].max_tokens, far.eval.n), (20, 10));
        // Not whole, however written: -0, a tiny value that rounds to 0, a fraction past 2^53.
        for v in ["-0", "1e-400", "9007199254740993.5"] {
            assert_eq!(whole_number(v), None, "{v}");
        }
        // Just below 0 is 0, linked as 0 (it was -0).
        assert!(far.apply_query("temperature=-1e-50").is_empty());
        assert!(
            far.to_query().contains("temperature=0&"),
            "{}",
            far.to_query()
        );
        // The page's own link with no condition ticked says nothing of it.
        assert!(far.apply_query("eval_conditions=").is_empty());
        // Middle-match's lists from before it needed six: the link's is said, a save's fixed.
        assert_eq!(
            far.apply_query("mode=eval&eval_task=middle-match&eval_list=5"),
            ["The link's eval_list=5 is too short for middle-match (6 to 50); 8 is used."]
        );
        assert_eq!(far.eval.list_len, 8);
        let mut old = Workspace::default();
        old.eval.task = "middle-match".into();
        old.eval.list_len = 5;
        assert_eq!(
            Workspace::from_saved(Some(&old.to_saved())).eval.list_len,
            8
        );
        assert_eq!(
            far.apply_query("mode=eval&eval_conditions=,,,"),
            ["The link's eval_conditions=,,, is not a list of conditions (baseline, repeat-2, …); \
              it was left out."]
        );
        let mut cold = Workspace::default();
        assert_eq!(
            cold.apply_query("temperature=1e400"),
            ["The link's temperature=1e400 is not a finite number; it was left out."]
        );
        assert!(cold.apply_query("temperature=-0").is_empty());
        assert_eq!(
            cold.apply_query("models=,,"),
            ["The link's models=,, names no model; the panes were left as they were."]
        );
        assert_eq!(cold.panes[0].temperature.to_string(), "0");
        let notes = ws.apply_query("models=a,b,c,d,e&temperature=NaN&max_tokens=0");
        assert_eq!(ws.panes.len(), MAX_PANES);
        assert_eq!(ws.panes[0].max_tokens, 1);
        assert_eq!(
            notes,
            [
                "The link names 5 models; a page holds 4 panes, so the first 4 are used.",
                "The link's temperature=NaN is not a number; it was left out.",
                "The link's max_tokens=0 is out of range (1 to 4096); 1 is used.",
            ]
        );
        let notes = Workspace::default().apply_query(&format!(
            "temperature=-1&prompt={}&panes=garbage",
            "x".repeat(40)
        ));
        assert_eq!(
            notes,
            [
                "The link's panes= holds no pane settings this page can read; it was left out.",
                "The link's temperature=-1 is out of range; 0 is used.",
            ]
        );
        // A link the page wrote says nothing.
        assert!(Workspace::default()
            .apply_query(&Workspace::default().to_query())
            .is_empty());
        let two = Workspace {
            panes: vec![
                PaneSettings {
                    model_id: "gemma3-270m-q4_k_m".into(),
                    temperature: 0.3,
                    ..PaneSettings::default()
                },
                PaneSettings::default(),
            ],
            ..Workspace::default()
        };
        assert!(Workspace::default().apply_query(&two.to_query()).is_empty());
    }

    /// A model from a file is kept in a save (to load again from the browser's cache) and
    /// never in a link, either way.
    #[test]
    fn a_local_model_is_saved_but_never_linked() {
        let local = LocalModel {
            url: "http://localhost/local/model.gguf".into(),
            label: "mine.gguf".into(),
        };
        let ws = Workspace {
            panes: vec![PaneSettings {
                local_model: Some(local.clone()),
                ..PaneSettings::default()
            }],
            ..Workspace::default()
        };
        let back = Workspace::from_saved(Some(&ws.to_saved()));
        assert_eq!(back.panes[0].local_model, Some(local.clone()));
        assert!(!ws.to_query().contains("mine.gguf"), "{}", ws.to_query());
        let hostile = percent_encode(
            r#"[{"local_model":{"url":"https://elsewhere.example/x.gguf","label":"x"}}]"#,
        );
        let mut opened = Workspace::default();
        opened.apply_query(&format!("panes={hostile}"));
        assert_eq!(opened.panes[0].local_model, None);
        // A catalog id wins.
        let mut both = ws.panes[0].clone();
        both.model_id = "smollm2-135m-instruct-q4_1".into();
        both.clamp();
        assert_eq!(both.local_model, None);
    }

    /// CONTRACT.md's `mode=score&prompt=…` measures that text; the page's own links carry
    /// `text=` and keep the two apart.
    #[test]
    fn a_score_link_prompt_is_the_text_to_measure() {
        let mut ws = Workspace::default();
        ws.apply_query("mode=score&prompt=Measure%20me");
        assert_eq!(
            (ws.mode, ws.score_text.as_str()),
            (Mode::Score, "Measure me")
        );
        assert_eq!(ws.prompt, "Measure me");
        let mut ws = Workspace::default();
        ws.apply_query("mode=score&prompt=a&text=b");
        assert_eq!((ws.prompt.as_str(), ws.score_text.as_str()), ("a", "b"));
        let mut ws = Workspace::default();
        ws.apply_query("mode=score&prompt=a&mode=generate");
        assert_eq!(ws.score_text, "");
        let page = Workspace {
            mode: Mode::Score,
            prompt: "a prompt".into(),
            ..Workspace::default()
        };
        let mut opened = Workspace::default();
        opened.apply_query(&page.to_query());
        assert_eq!(opened.score_text, "", "{}", page.to_query());
    }

    /// A save that cannot be read whole is said, not silently replaced by the defaults.
    #[test]
    fn an_unreadable_save_is_said() {
        let good = Workspace {
            prompt: "kept".into(),
            ..Workspace::default()
        };
        assert_eq!(
            Workspace::from_saved_noting(Some(&good.to_saved())),
            (good.clone().clamped(), None)
        );
        assert_eq!(
            Workspace::from_saved_noting(None),
            (Workspace::default(), None)
        );
        for junk in ["garbage", "{", "null", "[1,2]", "7"] {
            let (ws, note) = Workspace::from_saved_noting(Some(junk));
            assert_eq!(ws, Workspace::default().clamped(), "{junk}");
            assert!(note
                .unwrap()
                .starts_with("The saved workspace could not be read"));
        }
        let part = r#"{"prompt":"still here","panes":[{"temperature":"hot","seed":4}]}"#;
        let (ws, note) = Workspace::from_saved_noting(Some(part));
        assert_eq!(ws.prompt, "still here");
        assert_eq!(ws.panes[0].seed, 4);
        assert!(note.unwrap().starts_with("Part of the saved workspace"));
    }

    /// What a link asks and the page does not do as asked is said: model ids that can name no
    /// model, single values a `panes=` overrides, and `panes=` values clamped or unreadable
    /// (all of which used to be silent).
    #[test]
    fn links_say_what_they_could_not_use() {
        let mut ws = Workspace::default();
        let notes = ws.apply_query("models=a%20b,smollm2-135m-instruct-q4_1");
        assert_eq!(ws.panes[0].model_id, "");
        assert_eq!(ws.panes[1].model_id, "smollm2-135m-instruct-q4_1");
        assert_eq!(
            notes,
            ["The link's models= names \"a b\", which is not a model id (letters, digits, - _ .); \
              that pane was left without a model."]
        );
        let panes = percent_encode(
            r#"[{"model_id":"smollm2-135m-instruct-q4_1","temperature":1e9,"max_tokens":5,"seed":-1,"top_k":"many"},{"temperature":0.5}]"#,
        );
        let mut ws = Workspace::default();
        let notes = ws.apply_query(&format!(
            "models=gemma3-270m-q4_k_m&temperature=0.9&seed=3&max_tokens=5&panes={panes}"
        ));
        assert_eq!(ws.panes.len(), 2);
        assert_eq!(ws.panes[0].temperature, 5.0);
        assert_eq!(ws.panes[0].max_tokens, 5);
        assert_eq!(ws.panes[1].temperature, 0.5);
        assert_eq!(notes.len(), 2, "{notes:?}");
        // max_tokens=5 agrees with the panes; the others do not.
        assert_eq!(
            notes[0],
            "The link's panes= gives every pane's settings, so its models=, temperature=, seed= \
             were not used."
        );
        assert!(
            notes[1].starts_with("The link's panes= for pane 1: ")
                && notes[1].contains("temperature 1000000000.0 → 5,")
                && notes[1].contains("seed -1 → 0")
                && notes[1].contains(r#"top_k "many" → 40"#)
                && !notes[1].contains("max_tokens"),
            "{notes:?}"
        );
        let many = percent_encode(&format!("[{}]", ["{}"; 6].join(",")));
        let notes = Workspace::default().apply_query(&format!("panes={many}"));
        assert_eq!(
            notes,
            ["The link's panes= lists 6 panes; a page holds 4, so the first 4 are used."]
        );
        // A pane in serde's list form is pane settings too; a panes= that replaces models=
        // takes its notes with it; a link's line ends are a text box's.
        let listed = percent_encode(r#"[["smollm2-135m-instruct-q4_1", 0.2]]"#);
        let mut ws = Workspace::default();
        let notes = ws.apply_query(&format!("models=a%20b&panes={listed}&text=a%0D%0Ab"));
        assert_eq!(ws.panes[0].temperature, 0.2);
        assert_eq!(ws.score_text, "a\nb");
        assert_eq!(
            notes,
            ["The link's panes= gives every pane's settings, so its models= was not used."]
        );
        let mixed = percent_encode(r#"[{"seed":1}, 7]"#);
        let notes = Workspace::default().apply_query(&format!("panes={mixed}"));
        assert_eq!(
            notes,
            ["The link's panes= holds 1 entry that is not pane settings; left out."]
        );
    }

    #[test]
    fn permalink_round_trips() {
        let mut ws = Workspace {
            prompt: "Why & how? 100% ✓\nnext".into(),
            score_text: "a+b=c".into(),
            mode: Mode::Score,
            ..Workspace::default()
        };
        ws.panes = vec![
            PaneSettings {
                model_id: "a".into(),
                temperature: 0.2,
                repeat_prompt: true,
                max_tokens: 24,
                seed: 9,
                ..PaneSettings::default()
            },
            PaneSettings {
                model_id: "b".into(),
                temperature: 0.0,
                max_tokens: 24,
                seed: 9,
                ..PaneSettings::default()
            },
        ];
        // What is being typed in a chat box is not part of a link.
        ws.panes[0].conversation.draft = "not sent yet".into();
        let q = ws.to_query();
        assert!(!q.contains("sent%20yet"), "{q}");
        ws.panes[0].conversation.draft.clear();
        assert!(q.starts_with("models=a,b&prompt=Why%20%26%20how%3F"), "{q}");
        let mut back = Workspace::default();
        back.apply_query(&q);
        assert_eq!(back, ws);
        // The evaluation tab's set-up travels too; nonsense in it is dropped.
        ws.mode = Mode::Eval;
        ws.eval = EvalSetup {
            task: "multiple-choice".into(),
            n: 25,
            seed: 7,
            list_len: 6,
            conditions: vec![
                "baseline".into(),
                "options-first".into(),
                "repeat-3+chat".into(),
            ],
        };
        let q = ws.to_query();
        let mut back = Workspace::default();
        back.apply_query(&q);
        assert_eq!(back, ws);
        let mut odd = Workspace::default();
        let notes = odd.apply_query(
            "mode=eval&eval_task=nope&eval_n=999999&eval_conditions=repeat-9,chat&eval_seed=-3&eval_list=1",
        );
        assert_eq!(odd.eval.task, "name-index");
        assert_eq!(odd.eval.n, crate::eval::tasks::MAX_ITEMS);
        assert_eq!(odd.eval.conditions, vec!["chat".to_string()]);
        assert_eq!(odd.eval.list_len, 2);
        // Each value not used as asked is said.
        let said = notes.join("\n");
        for part in [
            "eval_task=nope is not one of name-index",
            "eval_n=999999 is out of range; 2000 is used",
            "names \"repeat-9\", which is not a condition",
            "eval_seed=-3 is not a whole number",
            "eval_list=1 is out of range; 2 is used",
        ] {
            assert!(said.contains(part), "{part}: {said}");
        }
        assert_eq!(notes.len(), 5, "{said}");
        // Thousands of bad names are one sentence.
        let many = format!("eval_conditions={}", vec!["x"; 3000].join(","));
        let notes = Workspace::default().apply_query(&many);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("names \"x\" and 2999 more"), "{notes:?}");
        // A `+` typed into a link (read as a space) joins conditions as `%2B` does.
        let mut typed = Workspace::default();
        assert!(typed
            .apply_query("mode=eval&eval_conditions=baseline,repeat-2+chat")
            .is_empty());
        assert_eq!(typed.eval.conditions, vec!["baseline", "repeat-2+chat"]);
        // Each condition once, whatever its spelling.
        let mut twice = Workspace::default();
        twice.apply_query(
            "mode=eval&eval_conditions=baseline,chat%2Bchat,baseline,chat,chat%2Brepeat-2,repeat-2%2Bchat",
        );
        assert_eq!(
            twice.eval.conditions,
            vec!["baseline", "chat", "repeat-2+chat"]
        );
        twice.eval.conditions = vec!["chat".into(), "chat+chat".into(), "baseline".into()];
        let ids: Vec<String> = twice
            .eval
            .parsed_conditions()
            .iter()
            .map(|c| c.id())
            .collect();
        assert_eq!(ids, vec!["chat", "baseline"]);
    }

    #[test]
    fn percent_decoding_edge_cases() {
        assert_eq!(percent_decode("a%2Bb+c"), "a+b c");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
        // A sign is no hex digit: "%+3" is a percent sign, a space and a 3.
        assert_eq!(percent_decode("5%+3"), "5% 3");
        assert_eq!(percent_decode("%-1"), "%-1");
    }

    /// Permalink keeps the address's own flags (a forced SIMD build, kiosk mode, a tracking
    /// parameter) before the workspace's parameters, and drops the old workspace ones.
    #[test]
    fn a_permalink_keeps_the_address_flags() {
        let ws = Workspace::default();
        let ours = ws.to_query();
        assert_eq!(ws.permalink_query(""), ours);
        assert_eq!(
            ws.permalink_query("?simd=plain&prompt=old&demo=1&utm_source=x"),
            format!("simd=plain&demo=1&utm_source=x&{ours}")
        );
        assert!(!ws.permalink_query("?prompt=old").contains("old"));
        assert_eq!(
            ws.permalink_query("?debug=1&demo=1"),
            format!("demo=1&{ours}")
        );
    }

    /// A link to a Human vs model result keeps how many sentences make its prompt.
    #[test]
    fn a_score_link_keeps_the_labs_sentences() {
        let ws = Workspace {
            mode: Mode::Score,
            score_text: "One. Two. Three. Four. Five. Six.".into(),
            lab_sentences: 5,
            ..Workspace::default()
        };
        let mut back = Workspace::default();
        assert!(back.apply_query(&ws.to_query()).is_empty());
        assert_eq!(back.lab_sentences, 5);
        let notes = back.apply_query("lab_sentences=99");
        assert_eq!(back.lab_sentences, MAX_LAB_SENTENCES);
        assert_eq!(notes.len(), 1, "{notes:?}");
        let notes = back.apply_query("lab_sentences=two");
        assert!(
            notes[0].contains("lab_sentences=two is not a number of sentences"),
            "{notes:?}"
        );
    }

    /// `models=` gives every pane pane 1's settings, not its conversation or its local file.
    #[test]
    fn linked_panes_get_pane_ones_settings_only() {
        let mut ws = Workspace::default();
        ws.panes[0].temperature = 0.25;
        ws.panes[0].local_model = Some(LocalModel {
            url: "tinylab-local:x".into(),
            label: "x.gguf".into(),
        });
        ws.panes[0].conversation.turns.push(Turn {
            role: "user".into(),
            content: "hi".into(),
            tokens: vec![],
        });
        ws.apply_query("models=smollm2-135m-instruct-q4_1,a%20b");
        assert_eq!(ws.panes.len(), 2);
        for p in &ws.panes {
            assert_eq!(p.temperature, 0.25);
            assert!(p.local_model.is_none() && p.conversation.turns.is_empty());
        }
    }
}
