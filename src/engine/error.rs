//! One error type for the whole engine. Every message is meant to be shown to a user as is, so
//! each variant names what is wrong in words, not in library internals.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("not a GGUF file (the first bytes are {0})")]
    NotGguf(String),
    #[error("the file is empty")]
    Empty,
    #[error("file truncated at byte {at}: {what}")]
    Truncated { at: u64, what: String },
    #[error(
        "unsupported architecture `{0}` (supported: {list})",
        list = super::model::SUPPORTED_ARCHITECTURES
    )]
    UnsupportedArchitecture(String),
    #[error(
        "unsupported quantization {0} (supported: {list})",
        list = super::gguf::SUPPORTED_QUANTIZATIONS
    )]
    UnsupportedQuantization(String),
    #[error("invalid GGUF: {0}")]
    InvalidGguf(String),
    #[error("missing metadata `{0}` in the GGUF")]
    MissingMetadata(String),
    #[error("missing tensor `{0}` in the GGUF")]
    MissingTensor(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    ChatTemplate(String),
    // What the caller asked for is at fault; the message says what, in its own words.
    #[error("{0}")]
    InvalidInput(String),
    #[error("model computation failed: {0}")]
    Compute(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;

impl From<candle_core::Error> for EngineError {
    fn from(e: candle_core::Error) -> Self {
        EngineError::Compute(candle_message(&e))
    }
}

/// Longest message text taken from a library or from the file itself; a hostile GGUF can
/// hold a tensor name megabytes long, which its parser repeats in its error.
const MAX_MESSAGE_CHARS: usize = 300;

/// A candle error as one line: without the backtrace candle appends when `RUST_BACKTRACE` is
/// set, and through `one_line`.
pub fn candle_message(e: &candle_core::Error) -> String {
    use candle_core::Error as E;
    match e {
        E::WithBacktrace { inner, .. } => candle_message(inner),
        E::Context { inner, context } => one_line(&format!("{context}: {}", candle_message(inner))),
        E::WithPath { inner, path } => {
            one_line(&format!("{}: {}", path.display(), candle_message(inner)))
        }
        other => one_line(&other.to_string()),
    }
}

/// `text` fit for a one-line message: control characters (newlines, bytes of a binary name)
/// shown as `?`, runs of them as one, and at most `MAX_MESSAGE_CHARS` characters.
pub fn one_line(text: &str) -> String {
    controls_shown(text, MAX_MESSAGE_CHARS)
}

/// Longest whole message shown: far more than any message of the engine's own words, so only
/// a string from a file that no site cut (megabytes of it) meets it.
const MAX_SHOWN_CHARS: usize = 2_000;

/// `one_line` with room for a whole message: for a terminal, where a key or name from a file
/// must not bring its escape sequences or line breaks along.
pub fn no_controls(text: &str) -> String {
    controls_shown(text, MAX_SHOWN_CHARS)
}

/// `text` at most `MAX_SHOWN_CHARS` characters long, otherwise as it is: a message for the page.
pub fn capped(text: &str) -> String {
    match text.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn controls_shown(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    let mut last_was_control = false;
    for (n, c) in text.chars().enumerate() {
        if n == max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            if !last_was_control {
                out.push('?');
            }
            last_was_control = true;
        } else {
            out.push(c);
            last_was_control = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_drops_control_runs_and_caps_length() {
        assert_eq!(one_line("a\nb\x00\x01\x02c"), "a?b?c");
        let long = "x".repeat(10_000);
        let cut = one_line(&long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(one_line("plain words"), "plain words");
        assert_eq!(no_controls("key \x1b[31mred\n"), "key ?[31mred?");
        let shown = no_controls(&long);
        assert_eq!(shown.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(shown.ends_with('…'));
        assert_eq!(capped(&long), shown);
        assert_eq!(capped("a\nb"), "a\nb");
        assert_eq!(
            capped(&"é".repeat(MAX_SHOWN_CHARS)),
            "é".repeat(MAX_SHOWN_CHARS)
        );
    }

    #[test]
    fn a_candle_error_loses_its_backtrace() {
        let inner = candle_core::Error::Msg("shapes differ".into());
        let e = candle_core::Error::WithBacktrace {
            inner: Box::new(inner),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert!(
            e.to_string().lines().count() > 1,
            "the test needs a backtrace"
        );
        assert_eq!(candle_message(&e), "shapes differ");
        let EngineError::Compute(m) = EngineError::from(e) else {
            panic!("not a compute error")
        };
        assert_eq!(m, "shapes differ");
    }
}
