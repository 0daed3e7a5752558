//! Pre-tokenizer regexes read with llama.cpp's Unicode version.
//!
//! llama.cpp classifies code points with its own tables (`unicode-data.cpp`, Unicode 15.1);
//! the regex crate under `tokenizers` has Unicode 16.0's. The 5,185 code points Unicode 16
//! added are "undefined" to llama.cpp, which its splitters treat like punctuation, while the
//! regex crate reads them as letters, digits, marks, punctuation or symbols: `Ꟍ's` (U+A7CB, a
//! letter since 16.0) kept `'s` whole where llama.cpp cuts `Ꟍ'` and `s`, and an outlined digit
//! (U+1CCF0) took the space before it. [`as_llama_cpp`] takes those code points out of each
//! general category a pattern names, so both read every character alike. (Pinning an older
//! regex-syntax would not do: 0.8.5 is Unicode 15.0, older than llama.cpp's on the other side.)
//! The ranges are the difference of the two tables over every code point (a dump of
//! `unicode_cpt_flags_from_cpt` against the regex crate's classes), all of them undefined
//! in llama.cpp.

/// Code points Unicode 16.0 made letters (`\p{L}` and its subcategories).
const NEW_L: &[(u32, u32)] = &[
    (0x1C89, 0x1C8A),
    (0xA7CB, 0xA7CD),
    (0xA7DA, 0xA7DC),
    (0x105C0, 0x105F3),
    (0x10D4A, 0x10D65),
    (0x10D6F, 0x10D85),
    (0x10EC2, 0x10EC4),
    (0x11380, 0x11389),
    (0x1138B, 0x1138B),
    (0x1138E, 0x1138E),
    (0x11390, 0x113B5),
    (0x113B7, 0x113B7),
    (0x113D1, 0x113D1),
    (0x113D3, 0x113D3),
    (0x11BC0, 0x11BE0),
    (0x13460, 0x143FA),
    (0x16100, 0x1611D),
    (0x16D40, 0x16D6C),
    (0x18CFF, 0x18CFF),
    (0x1E5D0, 0x1E5ED),
    (0x1E5F0, 0x1E5F0),
];
/// ... numbers (`\p{N}`).
const NEW_N: &[(u32, u32)] = &[
    (0x10D40, 0x10D49),
    (0x116D0, 0x116E3),
    (0x11BF0, 0x11BF9),
    (0x16130, 0x16139),
    (0x16D70, 0x16D79),
    (0x1CCF0, 0x1CCF9),
    (0x1E5F1, 0x1E5FA),
];
/// ... marks (`\p{M}`).
const NEW_M: &[(u32, u32)] = &[
    (0x897, 0x897),
    (0x10D69, 0x10D6D),
    (0x10EFC, 0x10EFC),
    (0x113B8, 0x113C0),
    (0x113C2, 0x113C2),
    (0x113C5, 0x113C5),
    (0x113C7, 0x113CA),
    (0x113CC, 0x113D0),
    (0x113D2, 0x113D2),
    (0x113E1, 0x113E2),
    (0x11F5A, 0x11F5A),
    (0x1611E, 0x1612F),
    (0x1E5EE, 0x1E5EF),
];
/// ... punctuation (`\p{P}`).
const NEW_P: &[(u32, u32)] = &[
    (0x1B4E, 0x1B4F),
    (0x1B7F, 0x1B7F),
    (0x10D6E, 0x10D6E),
    (0x113D4, 0x113D5),
    (0x113D7, 0x113D8),
    (0x11BE1, 0x11BE1),
    (0x16D6D, 0x16D6F),
    (0x1E5FF, 0x1E5FF),
];
/// ... symbols (`\p{S}`).
const NEW_S: &[(u32, u32)] = &[
    (0x2427, 0x2429),
    (0x31E4, 0x31E5),
    (0x10D8E, 0x10D8F),
    (0x1CC00, 0x1CCEF),
    (0x1CD00, 0x1CEB3),
    (0x1F8B2, 0x1F8BB),
    (0x1F8C0, 0x1F8C1),
    (0x1FA89, 0x1FA89),
    (0x1FA8F, 0x1FA8F),
    (0x1FABE, 0x1FABE),
    (0x1FAC6, 0x1FAC6),
    (0x1FADC, 0x1FADC),
    (0x1FADF, 0x1FADF),
    (0x1FAE9, 0x1FAE9),
    (0x1FBCB, 0x1FBEF),
];

/// `pattern` with every `\p{X}` (a general category or a letter subcategory) made
/// `[\p{X}--[new code points]]`: a nested class, which reads the same inside brackets
/// (`[^\s\p{L}]`, a union) as outside them.
pub fn as_llama_cpp(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut rest = pattern;
    while let Some(at) = rest.find("\\p{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let name = &after[..end];
        let whole = &rest[at..at + 3 + end + 1];
        // An escaped backslash before `\p` (`\\p{L}`) is no class; none of the regexes has one.
        let added = match name {
            "L" | "Lu" | "Ll" | "Lt" | "Lm" | "Lo" => Some(NEW_L),
            "N" | "Nd" | "Nl" | "No" => Some(NEW_N),
            "M" | "Mn" | "Mc" | "Me" => Some(NEW_M),
            "P" => Some(NEW_P),
            "S" => Some(NEW_S),
            _ => None,
        };
        match added {
            Some(ranges) => {
                out.push('[');
                out.push_str(whole);
                out.push_str("--[");
                for &(a, b) in ranges {
                    out.push_str(&format!("\\x{{{a:X}}}-\\x{{{b:X}}}"));
                }
                out.push_str("]]");
            }
            None => out.push_str(whole),
        }
        rest = &rest[at + whole.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pattern: &str, text: &str) -> Vec<String> {
        let re = fancy_regex::Regex::new(&as_llama_cpp(pattern)).unwrap();
        re.find_iter(text)
            .map(|m| m.unwrap().as_str().to_string())
            .collect()
    }

    #[test]
    fn unicode_16_characters_are_read_as_llama_cpp_reads_them() {
        let gpt2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
        // A Unicode 16 letter is punctuation to llama.cpp: it takes the apostrophe.
        assert_eq!(split(gpt2, "\u{A7CB}'s"), ["\u{A7CB}'", "s"]);
        // An outlined digit (U+1CCF0) is no number: the space stays with it, not the run.
        assert_eq!(split(gpt2, "a  \u{1CCF0}"), ["a", " ", " \u{1CCF0}"]);
        // Older letters and digits are untouched.
        assert_eq!(split(gpt2, "Ωmega's 42"), ["Ωmega", "'s", " 42"]);
        // Inside a negated class too.
        assert_eq!(split(r"[^\p{L}]+", "ab\u{13460}cd"), ["\u{13460}"]);
        // Every range is ordered and the tables do not overlap.
        let mut all: Vec<(u32, u32)> = [NEW_L, NEW_N, NEW_M, NEW_P, NEW_S].concat();
        all.sort();
        assert!(all.iter().all(|&(a, b)| a <= b));
        assert!(all.windows(2).all(|w| w[0].1 < w[1].0));
        assert_eq!(all.iter().map(|&(a, b)| b - a + 1).sum::<u32>(), 5185);
    }

    #[test]
    fn other_escapes_are_left_as_written() {
        assert_eq!(as_llama_cpp(r"\s+\p{Han}x"), r"\s+\p{Han}x");
        assert_eq!(as_llama_cpp(r"\p{"), r"\p{");
    }
}
