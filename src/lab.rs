//! The entropy lab's "human vs model" comparison, in plain Rust on the engine.
//!
//! A human text is split after its first sentences; the model continues that prompt for as many
//! tokens as the human rest has; then both continuations are scored with the same prompt as
//! context, so their per-token entropies are directly comparable. Machine text tends to sit
//! lower. The generation in between belongs to the caller (the worker steps it so that Stop
//! works), so this module offers the two halves: [`plan`] and [`compare`].

use crate::engine::{stats, Engine, EngineError, Result, ScoreResult, Summary, Token};

/// The human rest is cut to this many tokens; longer texts would make the model write for
/// minutes in a browser.
pub const MAX_CONTINUATION: usize = 256;

/// Splits `text` after its first `sentences` sentences. A sentence ends at a newline, or at
/// `.`, `!` or `?` followed by whitespace. Returns `None` when no rest would remain.
pub fn split_sentences(text: &str, sentences: usize) -> Option<(String, String)> {
    let text = text.trim();
    let mut seen = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let ends = c == '\n'
            || (matches!(c, '.' | '!' | '?')
                && chars.peek().is_none_or(|(_, n)| n.is_whitespace()));
        if ends {
            seen += 1;
            if seen == sentences.max(1) {
                let cut = i + c.len_utf8();
                let (head, rest) = text.split_at(cut);
                if rest.trim().is_empty() {
                    return None;
                }
                return Some((head.to_string(), rest.to_string()));
            }
        }
    }
    None
}

/// What the comparison needs before the model writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    /// The human continuation's tokens (no BOS), cut to [`MAX_CONTINUATION`].
    pub human_ids: Vec<u32>,
}

pub fn plan(engine: &Engine, text: &str, sentences: usize) -> Result<Plan> {
    let (prompt, rest) = split_sentences(text, sentences).ok_or_else(|| {
        EngineError::InvalidInput(format!(
            "the text needs more than {sentences} sentence(s): the first become the prompt and \
             the rest is compared with the model's continuation"
        ))
    })?;
    let prompt_ids = engine.prompt_ids(&prompt, false, false)?;
    let mut human_ids = engine.tokenize(&rest)?;
    if human_ids.len() < 2 {
        return Err(EngineError::InvalidInput(
            "the text after the prompt is too short to compare (it needs at least two tokens)"
                .into(),
        ));
    }
    human_ids.truncate(MAX_CONTINUATION);
    Ok(Plan {
        prompt,
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
    }
}
