//! Numbers as people read them: sizes, rates, progress lines, token text.

/// "1 token", "2 tokens".
pub fn tokens(n: usize) -> String {
    count(n, "token", "tokens")
}

/// "1 model", "3 models".
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// "98.4 MB" (decimal units, as file managers and the catalog show sizes).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        v /= 1000.0;
        unit = u;
        if v < 1000.0 {
            break;
        }
    }
    if v < 10.0 {
        format!("{v:.2} {unit}")
    } else if v < 100.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

/// How entropy and surprisal are shown. The engine, the CLI, exports and the `data-*`
/// attributes stay in nats (CONTRACT.md); bits are a view: the same numbers ÷ ln 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Units {
    #[default]
    Nats,
    Bits,
}

impl Units {
    pub fn id(self) -> &'static str {
        match self {
            Units::Nats => "nats",
            Units::Bits => "bits",
        }
    }

    pub fn from_id(id: &str) -> Self {
        if id == "bits" {
            Units::Bits
        } else {
            Units::Nats
        }
    }

    /// A value given in nats, in these units.
    pub fn of(self, nats: f64) -> f64 {
        match self {
            Units::Nats => nats,
            Units::Bits => nats / std::f64::consts::LN_2,
        }
    }

    /// `num` of a value given in nats, in these units.
    pub fn num(self, nats: Option<f64>, decimals: usize) -> String {
        num(nats.map(|v| self.of(v)), decimals)
    }
}

/// One decimal, "n/a" for a value that is not a number (a NaN statistic, say from a model
/// whose weights hold NaN), "∞" for an infinite one, or "–" when there is nothing to show.
pub fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        Some(x) if x.is_nan() => "n/a".to_string(),
        Some(x) if x > 0.0 => "∞".to_string(),
        Some(_) => "−∞".to_string(),
        None => "–".to_string(),
    }
}

/// Milliseconds as "850 ms" or "1.42 s".
pub fn duration_ms(ms: f64) -> String {
    if !ms.is_finite() {
        "–".into()
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// "12.3 MB of 98.4 MB · 12% · 30.1 MB/s" for a download or a read.
pub fn progress(loaded: u64, total: Option<u64>, elapsed_ms: f64) -> String {
    let mut s = bytes(loaded);
    if let Some(t) = total.filter(|&t| t > 0) {
        let pct = (loaded as f64 * 100.0 / t as f64).min(100.0);
        s = format!("{s} of {} · {pct:.0}%", bytes(t));
    }
    if elapsed_ms > 0.0 {
        let per_s = (loaded as f64 * 1000.0 / elapsed_ms) as u64;
        s = format!("{s} · {}/s", bytes(per_s));
    }
    s
}

/// Percent for a `<progress>` element, if the total is known.
pub fn percent(loaded: u64, total: Option<u64>) -> Option<f64> {
    total
        .filter(|&t| t > 0)
        .map(|t| (loaded as f64 * 100.0 / t as f64).min(100.0))
}

/// A probability as a percentage with sensible precision: "62.1%", "0.38%", "<0.01%".
pub fn probability(p: f64) -> String {
    let pct = p * 100.0;
    if !pct.is_finite() {
        "–".into()
    } else if pct >= 10.0 {
        format!("{pct:.1}%")
    } else if pct >= 0.01 {
        format!("{pct:.2}%")
    } else {
        "<0.01%".into()
    }
}

/// A token's text made visible: spaces, newlines and tabs get symbols so that a token that
/// is only whitespace can still be seen and pointed at.
pub fn visible_token(text: &str) -> String {
    if text.is_empty() {
        return "∅".into();
    }
    text.chars()
        .map(|c| match c {
            ' ' => '␣',
            '\n' => '↵',
            '\t' => '⇥',
            c => c,
        })
        .collect()
}

/// What a token shown as "�" is: byte-level vocabularies split some characters (CJK, emoji)
/// into tokens of a byte or two, which alone are no text. `piece` is what the token added to
/// the output: nothing while the character is unfinished, the whole character once complete.
pub fn byte_piece_note(text: &str, piece: &str) -> Option<String> {
    if !text.contains('\u{FFFD}') || piece.contains('\u{FFFD}') {
        return None;
    }
    Some(if piece.is_empty() {
        "bytes of a character split across tokens: a later token completes it".to_string()
    } else {
        format!("bytes of a character split across tokens; the text it added: {piece:?}")
    })
}

/// A token that is only whitespace with a line break in it. Rendered bare it would be an
/// empty box at the end of a line, which nobody can point at, so the page marks it.
pub fn is_line_break(piece: &str) -> bool {
    piece.contains('\n') && piece.chars().all(char::is_whitespace)
}

/// The SIMD stat's tooltip: which build runs, and how a relaxed-SIMD worker sums its byte
/// products (`engine::dot_form`), with what it measured.
pub fn simd_title(dot: Option<&crate::protocol::DotChoice>) -> String {
    let mut t = String::from(
        "The worker build's SIMD: relaxed SIMD where the browser has it, simd128 elsewhere \
         (both give the same numbers); ?simd=plain forces simd128",
    );
    if let Some(d) = dot {
        t.push_str(&format!(". Byte products summed as {}", d.form));
        match d.ratio {
            _ if d.forced => t.push_str(" (set by ?dot=)"),
            Some(r) => {
                let (other, x) = if d.form == "dot-add" {
                    ("pairs", r)
                } else {
                    ("dot-add", 1.0 / r)
                };
                let when = if d.kept {
                    "measured by this browser for this version of TinyLab before, and kept \
                     (?dot=measure measures again)"
                        .to_string()
                } else {
                    format!("measured in {} when the worker started", duration_ms(d.ms))
                };
                t.push_str(&format!(
                    ": {x:.2}× as fast as {other} on this machine, {when} (same numbers either \
                     way; ?dot=pairs or ?dot=add forces one)"
                ));
            }
            None => {}
        }
    }
    t
}

/// Where a worker's dot form came from: `forced` (the page's `?dot=`), `kept` (this
/// browser's earlier measurement, `ui::dot_memory`) or `measured` (by this worker).
pub fn dot_source(d: &crate::protocol::DotChoice) -> &'static str {
    if d.forced {
        "forced"
    } else if d.kept {
        "kept"
    } else {
        "measured"
    }
}

/// A text quoted in a one-line message: its runs of white space (line breaks too) as one
/// space, at most `max_chars` characters, and "…" only where it was cut.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let flat = words.join(" ");
    if flat.chars().count() <= max_chars {
        return flat;
    }
    let mut cut: String = flat.chars().take(max_chars).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// An engine message (written to follow "error: " or "Could not load X: ") as a sentence of
/// its own: its first letter a capital.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_byte_token_says_what_it_is_part_of() {
        use super::byte_piece_note;
        assert_eq!(
            byte_piece_note("\u{FFFD}", "").as_deref(),
            Some("bytes of a character split across tokens: a later token completes it")
        );
        assert_eq!(
            byte_piece_note("\u{FFFD}", "€").as_deref(),
            Some("bytes of a character split across tokens; the text it added: \"€\"")
        );
        assert_eq!(byte_piece_note(" hello", " hello"), None);
        // Bytes that never made a character stay "�" in the text too.
        assert_eq!(byte_piece_note("\u{FFFD}", "\u{FFFD}"), None);
    }

    #[test]
    fn an_engine_message_becomes_a_sentence() {
        assert_eq!(sentence("the prompt is empty"), "The prompt is empty");
        assert_eq!(sentence("ünicode"), "Ünicode");
        assert_eq!(sentence(""), "");
    }

    /// Bits are nats ÷ ln 2, for shown numbers only; what cannot be shown stays as it was.
    #[test]
    fn units_convert_what_is_shown() {
        assert_eq!(Units::from_id("bits"), Units::Bits);
        assert_eq!(Units::from_id("garbage"), Units::Nats);
        assert_eq!(Units::from_id(Units::Bits.id()), Units::Bits);
        assert_eq!(Units::Nats.num(Some(2.0), 3), "2.000");
        assert_eq!(
            Units::Bits.num(Some(std::f64::consts::LN_2 * 3.0), 3),
            "3.000"
        );
        assert_eq!(Units::Bits.num(None, 3), "–");
        assert_eq!(Units::Bits.num(Some(f64::INFINITY), 3), "∞");
    }

    use super::*;

    #[test]
    fn simd_title_says_the_dot_form_and_why() {
        use crate::protocol::DotChoice;
        let plain = simd_title(None);
        assert!(plain.ends_with("forces simd128"), "{plain}");
        let measured = DotChoice {
            form: "dot-add".into(),
            forced: false,
            kept: false,
            ratio: Some(1.124),
            ms: 48.0,
        };
        assert_eq!(dot_source(&measured), "measured");
        assert!(
            simd_title(Some(&measured)).contains(
                "summed as dot-add: 1.12× as fast as pairs on this machine, measured in 48 ms"
            ),
            "{}",
            simd_title(Some(&measured))
        );
        let slower = DotChoice {
            form: "pairs".into(),
            ratio: Some(0.8),
            ..measured.clone()
        };
        assert!(simd_title(Some(&slower)).contains("summed as pairs: 1.25× as fast as dot-add"));
        let kept = DotChoice {
            kept: true,
            ms: 0.0,
            ..measured.clone()
        };
        let title = simd_title(Some(&kept));
        assert!(
            title.contains("1.12× as fast as pairs on this machine, measured by this browser")
                && title.contains("kept (?dot=measure measures again)")
                && !title.contains(" ms "),
            "{title}"
        );
        assert_eq!(dot_source(&kept), "kept");
        let forced = DotChoice {
            forced: true,
            ratio: None,
            ..measured
        };
        assert!(simd_title(Some(&forced)).ends_with("summed as dot-add (set by ?dot=)"));
        assert_eq!(dot_source(&forced), "forced");
    }

    #[test]
    fn line_breaks_are_whitespace_with_a_newline() {
        assert!(is_line_break("\n"));
        assert!(is_line_break(" \n\n"));
        assert!(!is_line_break(" "));
        assert!(!is_line_break("a\n"));
        assert!(!is_line_break(""));
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1.00 kB");
        assert_eq!(bytes(98_362_432), "98.4 MB");
        assert_eq!(bytes(253_113_024), "253 MB");
        assert_eq!(bytes(2_500_000_000), "2.50 GB");
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            progress(50_000_000, Some(100_000_000), 1000.0),
            "50.0 MB of 100 MB · 50% · 50.0 MB/s"
        );
        assert_eq!(progress(1500, None, 0.0), "1.50 kB");
        assert_eq!(percent(5, Some(10)), Some(50.0));
        assert_eq!(percent(5, None), None);
        assert_eq!(percent(5, Some(0)), None);
    }

    #[test]
    fn numbers_and_probabilities() {
        assert_eq!(num(Some(12.345), 1), "12.3");
        assert_eq!(num(None, 1), "–");
        assert_eq!(num(Some(f64::INFINITY), 1), "∞");
        assert_eq!(num(Some(f64::NAN), 2), "n/a");
        assert_eq!(duration_ms(850.2), "850 ms");
        assert_eq!(duration_ms(1420.0), "1.42 s");
        assert_eq!(probability(0.621), "62.1%");
        assert_eq!(probability(0.0038), "0.38%");
        assert_eq!(probability(1e-7), "<0.01%");
    }

    #[test]
    fn whitespace_tokens_are_visible() {
        assert_eq!(visible_token(" the"), "␣the");
        assert_eq!(visible_token("\n\n"), "↵↵");
        assert_eq!(visible_token(""), "∅");
        assert_eq!(visible_token("<b>"), "<b>");
    }

    #[test]
    fn excerpt_marks_only_a_cut() {
        assert_eq!(excerpt("Say hi", 60), "Say hi");
        assert_eq!(excerpt("  two\n\nlines\t here ", 60), "two lines here");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("ab cdef", 3), "ab…");
        assert_eq!(excerpt("ééé", 3), "ééé");
        assert_eq!(excerpt("", 3), "");
    }
}
