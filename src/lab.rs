//! The entropy lab's "human vs model" comparison, in plain Rust on the engine.
//!
//! A human text is split after its first sentences; the model continues that prompt for as many
//! tokens as the human rest has; then both continuations are scored with the same prompt as
//! context, so their per-token entropies are directly comparable. Machine text tends to sit
//! lower. The generation in between belongs to the caller (the worker steps it so that Stop
//! works), so this module offers the two halves: [`plan`] and [`compare`].

use crate::engine::{
    stats, tokenizer::Tokenizer, Engine, EngineError, Result, ScoreResult, Summary, Token,
};

/// The human rest is cut to this many tokens; longer texts would make the model write for
/// minutes in a browser.
pub const MAX_CONTINUATION: usize = 256;

/// Splits `text` after its first `sentences` sentences. A sentence ends at a line break; at
/// `.`, `!`, `?`, `…` (and Arabic, Urdu and Devanagari ones) followed by white space; or at
/// Chinese and Japanese `。！？`, which no space follows. A run of marks (`?!`, `！？`) is one
/// end, and so is a mark with the line breaks after it. Closing quotes or brackets after a
/// mark stay with its sentence, which goes on where a lower-case word or a Japanese
/// quotative particle follows (`"Why?" she asked.`, `「本当？」と言った。`). Returns `None`
/// when no rest would remain.
pub fn split_sentences(text: &str, sentences: usize) -> Option<(String, String)> {
    let spaced = |c: char| matches!(c, '.' | '!' | '?' | '…' | '؟' | '۔' | '।');
    let unspaced = |c: char| matches!(c, '。' | '！' | '？' | '｡');
    let mark = |c: char| spaced(c) || unspaced(c);
    let closer = |c: char| {
        matches!(
            c,
            '"' | '\'' | ')' | ']' | '”' | '’' | '»' | '」' | '』' | '）'
        )
    };
    let text = text.trim();
    let cs: Vec<(usize, char)> = text.char_indices().collect();
    let mut seen = 0;
    let mut k = 0;
    while k < cs.len() {
        let c = cs[k].1;
        if c != '\n' && !mark(c) {
            k += 1;
            continue;
        }
        let mut e = k + 1;
        let mut cjk = unspaced(c);
        let mut quoted = false;
        if c == '\n' {
            // A blank line is one end with the break before it: "Title\n\nBody" cut after
            // one break gave the prompt a "\n" token and the rest another, where the whole
            // text has one "\n\n" token (Qwen2.5, Gemma 3).
            while cs.get(e).is_some_and(|&(_, b)| b == '\n' || b == '\r') {
                e += 1;
            }
        } else {
            while let Some(&(_, m)) = cs.get(e).filter(|(_, m)| mark(*m)) {
                cjk |= unspaced(m);
                e += 1;
            }
            while cs.get(e).is_some_and(|(_, q)| closer(*q)) {
                quoted = true;
                e += 1;
            }
        }
        let ends = c == '\n'
            || match cs.get(e) {
                None => true,
                // A title or an initial ("Mr. Bennet", "J. Smith") is no sentence's end.
                Some(_)
                    if c == '.'
                        && e == k + 1
                        && abbreviation(&text[..cs[k].0], &text[cs[k].0 + 1..]) =>
                {
                    false
                }
                Some(&(at, n)) if n.is_whitespace() => {
                    !quoted
                        || !text[at..]
                            .trim_start()
                            .chars()
                            .next()
                            .is_some_and(char::is_lowercase)
                }
                // After a closing quote, Japanese goes on with a quotative particle
                // (「本当？」と言った); Chinese starts a new sentence (“我来。”她说).
                Some(&(at, _)) => {
                    cjk && !(quoted
                        && (text[at..].starts_with('と') || text[at..].starts_with("って")))
                }
            };
        if ends {
            seen += 1;
            if seen == sentences.max(1) {
                let cut = cs.get(e).map_or(text.len(), |&(at, _)| at);
                let (head, rest) = text.split_at(cut);
                if rest.trim().is_empty() {
                    return None;
                }
                return Some((head.to_string(), rest.to_string()));
            }
        }
        k = e;
        if ends {
            // The white space after an end (a paragraph's blank line too) starts no sentence.
            while cs.get(k).is_some_and(|(_, w)| w.is_whitespace()) {
                k += 1;
            }
        }
    }
    None
}

/// Words that start English sentences far more often than they follow an initial.
const SENTENCE_OPENERS: [&str; 40] = [
    "The", "A", "An", "Then", "It", "Its", "This", "That", "These", "Those", "There", "We", "He",
    "She", "They", "You", "I", "But", "And", "So", "Or", "If", "When", "What", "Why", "How",
    "After", "Before", "My", "Our", "His", "Her", "Their", "Now", "Yet", "No", "Yes", "In", "On",
    "Is",
];

/// Whether the word that ends `before` (a full stop follows it, then `after`) is a title, an
/// initial, or a letter of a dotted abbreviation ("e.g.", "i.e.", German "z. B.", "d. h.").
fn abbreviation(before: &str, after: &str) -> bool {
    const TITLES: [&str; 20] = [
        "Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Sr", "Jr", "Mt", "vs", "Messrs", "Mme", "bzw",
        "ca", "vgl", "ggf", "Nr", "Hr", "Dipl", "Ing",
    ];
    let word = before
        .rsplit(|c: char| !c.is_alphabetic())
        .next()
        .unwrap_or_default();
    let mut letters = word.chars();
    let single = matches!((letters.next(), letters.next()), (Some(_), None));
    // A capital letter before a word that opens sentences ("plan B. Then", "vitamin C. It")
    // ends one; before a name ("J. Smith") or another initial ("J. K.") it does not.
    let next: String = after
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphabetic())
        .collect();
    let opener = SENTENCE_OPENERS.contains(&next.as_str())
        && !after.trim_start()[next.len()..].starts_with('.');
    // "I" is the pronoun far more often than an initial ("It was I. Then"), unless a name
    // goes before it ("Louis I. Kahn"); "I. M. Pei" is still one name, by the dotted letter
    // after it.
    let named_before = || {
        before[..before.len() - word.len()]
            .trim_end()
            .rsplit(char::is_whitespace)
            .next()
            .and_then(|w| w.chars().next())
            .is_some_and(char::is_uppercase)
    };
    let initial = single
        && word.chars().all(char::is_uppercase)
        && !opener
        && (word != "I" || named_before());
    // The first letter of a dotted pair ("z." of "z. B.", "e." of "e.g.") ends nothing; the
    // last ("g." of "e.g.") ends nothing when a lower-case word goes on ("e.g. a hammer"), but
    // does before a capital ("at 5 p.m. Then").
    let dotted_letter = |s: &str| {
        let mut cs = s.chars();
        matches!((cs.next(), cs.next()), (Some(l), Some('.')) if l.is_alphabetic())
            && !cs.next().is_some_and(char::is_alphabetic)
    };
    let after_dotted_letter = || {
        let mut cs = before[..before.len() - word.len()].trim_end().chars().rev();
        cs.next() == Some('.')
            && cs.next().is_some_and(char::is_alphabetic)
            && !cs.next().is_some_and(char::is_alphabetic)
    };
    let goes_on = || {
        after
            .trim_start()
            .chars()
            .next()
            .is_some_and(char::is_lowercase)
    };
    let dotted =
        single && (dotted_letter(after.trim_start()) || (after_dotted_letter() && goes_on()));
    initial || dotted || TITLES.contains(&word)
}

/// What the comparison needs before the model writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    /// The prompt's own tokens, without the BOS the model's file adds: what the page counts
    /// as "the first N tokens" of the text.
    pub prompt_text_tokens: usize,
    /// The human continuation's tokens (no BOS), cut to [`MAX_CONTINUATION`].
    pub human_ids: Vec<u32>,
    /// How many there were before the cut.
    pub human_total: usize,
}

pub fn plan(engine: &Engine, text: &str, sentences: usize) -> Result<Plan> {
    plan_with(engine.tokenizer(), text, sentences)
}

/// [`plan`] with the model's tokenizer only.
pub fn plan_with(tokenizer: &Tokenizer, text: &str, sentences: usize) -> Result<Plan> {
    let (prompt, rest) = split_sentences(text, sentences).ok_or_else(|| {
        EngineError::InvalidInput(format!(
            "the text needs more than {sentences} sentence(s): the first become the prompt and \
             the rest is compared with the model's continuation"
        ))
    })?;
    // The rest of the text follows the prompt: no closing EOS between them, even for a file
    // that ends every text with one.
    let prompt_ids = tokenizer.encode_opening(&prompt, false)?;
    // The rest is the whole text's tokens after the prompt's, as the model read the text:
    // tokenized alone, it opened with a SentencePiece vocabulary's space prefix ("▁▁Two" for
    // " Two") or split a word the whole text keeps (lm-evaluation-harness cuts continuations
    // the same way). Where the prompt's last token runs into the rest, the rest alone.
    let whole = tokenizer.encode_opening(&format!("{prompt}{rest}"), false)?;
    let mut human_ids = match whole.strip_prefix(prompt_ids.as_slice()) {
        Some(after) => after.to_vec(),
        None => tokenizer.encode(&rest, false)?,
    };
    if human_ids.len() < 2 {
        return Err(EngineError::InvalidInput(
            "the text after the prompt is too short to compare (it needs at least two tokens)"
                .into(),
        ));
    }
    let human_total = human_ids.len();
    human_ids.truncate(MAX_CONTINUATION);
    let opening = tokenizer.encode_opening("", false)?.len();
    Ok(Plan {
        human_total,
        prompt,
        prompt_text_tokens: prompt_ids.len().saturating_sub(opening),
        prompt_ids,
        human_ids,
    })
}

/// One scored continuation: its tokens (scored in context) and their summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Continuation {
    pub tokens: Vec<Token>,
    pub summary: Summary,
}

/// Scores the human continuation and the model's (`generated`), each after the prompt.
pub fn compare(
    engine: &mut Engine,
    plan: &Plan,
    generated: &[u32],
    window: usize,
) -> Result<(Continuation, Continuation)> {
    if generated.is_empty() {
        return Err(EngineError::InvalidInput(
            "the model ended its continuation at once, so there is nothing to compare".into(),
        ));
    }
    let mut one = |tail: &[u32]| -> Result<Continuation> {
        let scored = engine.score_ids(continuation_ids(plan, tail), window)?;
        Ok(continuation(scored, tail.len()))
    };
    let human = one(&plan.human_ids)?;
    let model = one(generated)?;
    Ok((human, model))
}

/// The ids a continuation is scored as: the prompt, then the continuation.
pub fn continuation_ids(plan: &Plan, tail: &[u32]) -> Vec<u32> {
    let mut ids = plan.prompt_ids.clone();
    ids.extend_from_slice(tail);
    ids
}

/// The continuation's part of a scoring of [`continuation_ids`] (`tail_len` tokens).
pub fn continuation(scored: ScoreResult, tail_len: usize) -> Continuation {
    // score_ids scores every token after the first; keep the tail's.
    let skip = scored.tokens.len().saturating_sub(tail_len);
    let tokens: Vec<Token> = scored.tokens.into_iter().skip(skip).collect();
    let summary = stats::summarize(
        &tokens
            .iter()
            .map(|t| stats::TokenStats {
                entropy: t.entropy,
                surprisal: t.surprisal,
                rank: t.rank,
                second_moment: t.second_moment,
            })
            .collect::<Vec<_>>(),
    );
    Continuation { tokens, summary }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_after_sentences() {
        let t = "One. Two! Three? Four";
        assert_eq!(
            split_sentences(t, 1),
            Some(("One.".to_string(), " Two! Three? Four".to_string()))
        );
        assert_eq!(
            split_sentences(t, 3),
            Some(("One. Two! Three?".to_string(), " Four".to_string()))
        );
        // Decimal points and abbreviations without a following space do not end a sentence.
        assert_eq!(
            split_sentences("Pi is 3.14 today. Yes", 1),
            Some(("Pi is 3.14 today.".to_string(), " Yes".to_string()))
        );
        assert_eq!(split_sentences("Only one.", 1), None);
        assert_eq!(split_sentences("No end at all", 1), None);
        assert_eq!(
            split_sentences("Line one\nline two", 1),
            Some(("Line one\n".to_string(), "line two".to_string()))
        );
        let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        // Chinese and Japanese marks end a sentence with no space after them.
        let zh = "我今天早上去了市场。我买了很多水果！然后我回家了？好";
        assert_eq!(
            split_sentences(zh, 1),
            pair("我今天早上去了市场。", "我买了很多水果！然后我回家了？好")
        );
        assert_eq!(
            split_sentences(zh, 3),
            pair("我今天早上去了市场。我买了很多水果！然后我回家了？", "好")
        );
        assert_eq!(split_sentences("東京です。", 1), None);
        // Arabic's question mark, and quotes closing after the mark.
        assert_eq!(
            split_sentences("كيف حالك؟ أنا بخير", 1),
            pair("كيف حالك؟", " أنا بخير")
        );
        assert_eq!(
            split_sentences("He said \"Go.\" Then he left.", 1),
            pair("He said \"Go.\"", " Then he left.")
        );
        assert_eq!(
            split_sentences("「はい。」「次は？」", 1),
            pair("「はい。」", "「次は？」")
        );
        assert_eq!(
            split_sentences("「はい。」次に", 1),
            pair("「はい。」", "次に")
        );
        assert_eq!(
            split_sentences("他说：“我明天来。”她点了点头。然后", 1),
            pair("他说：“我明天来。”", "她点了点头。然后")
        );
        // A run of marks is one end; a quote closed before a lower-case word goes on.
        assert_eq!(
            split_sentences("本当？！そうですね。今日は", 1),
            pair("本当？！", "そうですね。今日は")
        );
        assert_eq!(
            split_sentences("\"Where are you going?\" she asked. \"Home,\" he said.", 1),
            pair("\"Where are you going?\" she asked.", " \"Home,\" he said.")
        );
        assert_eq!(
            split_sentences("He said \"Stop!\" and left. Then rain", 1),
            pair("He said \"Stop!\" and left.", " Then rain")
        );
        assert_eq!(
            split_sentences("「そうですか？」と彼は言った。雨だ", 1),
            pair("「そうですか？」と彼は言った。", "雨だ")
        );
        assert_eq!(
            split_sentences("What?! No way. Yes", 1),
            pair("What?!", " No way. Yes")
        );
        assert_eq!(
            split_sentences("Wait… what? No", 1),
            pair("Wait…", " what? No")
        );
        // Titles and initials end no sentence; a capital word before a full stop does.
        assert_eq!(
            split_sentences(
                "\"My dear Mr. Bennet,\" said his lady. Mr. Bennet replied. No",
                2
            ),
            pair(
                "\"My dear Mr. Bennet,\" said his lady. Mr. Bennet replied.",
                " No"
            )
        );
        // Dotted abbreviations, English and German, end no sentence either.
        assert_eq!(
            split_sentences("Use e.g. a hammer, i.e. a tool. Then", 1),
            pair("Use e.g. a hammer, i.e. a tool.", " Then")
        );
        assert_eq!(
            split_sentences(
                "Das ist z. B. ein Test, d. h. nichts, bzw. ca. zehn. Weiter",
                1
            ),
            pair(
                "Das ist z. B. ein Test, d. h. nichts, bzw. ca. zehn.",
                " Weiter"
            )
        );
        assert_eq!(
            split_sentences("I left at 5 p.m. Then I ate. Done", 1),
            pair("I left at 5 p.m.", " Then I ate. Done")
        );
        assert_eq!(
            split_sentences("It was a. Then it was b. No", 1),
            pair("It was a.", " Then it was b. No")
        );
        assert_eq!(
            split_sentences("I met J. K. Rowling and Dr. Who. Then", 1),
            pair("I met J. K. Rowling and Dr. Who.", " Then")
        );
        assert_eq!(split_sentences("I am. Then", 1), pair("I am.", " Then"));
        assert_eq!(
            split_sentences("It was I. Then we left. Ok", 1),
            pair("It was I.", " Then we left. Ok")
        );
        assert_eq!(
            split_sentences("I met I. M. Pei. Then", 1),
            pair("I met I. M. Pei.", " Then")
        );
        // A capital letter ends a sentence before a word that opens sentences; a name's
        // initials, "A." among them, and a regnal or middle "I." after a name do not.
        assert_eq!(
            split_sentences("We chose plan B. Then it rained. Ok", 1),
            pair("We chose plan B.", " Then it rained. Ok")
        );
        assert_eq!(
            split_sentences("Take vitamin C. It helps. Ok", 1),
            pair("Take vitamin C.", " It helps. Ok")
        );
        assert_eq!(
            split_sentences("Ask J. A. Smith. Then", 1),
            pair("Ask J. A. Smith.", " Then")
        );
        assert_eq!(
            split_sentences("Louis I. Kahn built it. Then", 1),
            pair("Louis I. Kahn built it.", " Then")
        );
        // Text in lower case splits as any other; a mark and the line breaks after it (a
        // paragraph's blank line) are one end.
        assert_eq!(
            split_sentences("the cat sat. the dog ran", 1),
            pair("the cat sat.", " the dog ran")
        );
        assert_eq!(
            split_sentences("Hello.\nWorld is big.\n\nNext line.", 2),
            pair("Hello.\nWorld is big.", "\n\nNext line.")
        );
        assert_eq!(
            split_sentences("One\n\nTwo\nThree", 2),
            pair("One\n\nTwo\n", "Three")
        );
        assert_eq!(
            split_sentences("Title\n\nBody text.", 1),
            pair("Title\n\n", "Body text.")
        );
        assert_eq!(
            split_sentences("Title\r\n\r\nBody text.", 1),
            pair("Title\r\n\r\n", "Body text.")
        );
    }
}
