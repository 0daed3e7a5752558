//! llama.cpp's SentencePiece tokenizer (`llm_tokenizer_spm`) as a `tokenizers` model.
//!
//! The `tokenizers` crate still does everything around the model (normalizing, user-defined
//! tokens, offsets); only the merging is here. Expressed as the crate's `BPE`, a SentencePiece
//! vocabulary needs every split of every token as a merge: Gemma 3's 262,144 tokens made 514,847
//! merges and, with the BPE's two vocabulary maps, 65 MB of wasm heap for a 253 MB model. This
//! model keeps the token texts once, a table of 4-byte slots to find them, and the scores:
//! about 4 MB for Gemma 3. It also merges exactly as llama.cpp does where the BPE form could not:
//! equal scores go to the leftmost pair, not to the lower token id, and a character that is not a
//! token can still merge with its neighbour before it falls back to bytes.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokenizers::models::bpe::BpeTrainer;
use tokenizers::{Model, Token};

use super::packed::PackedStrings;

/// Finds a token's id from its text: open addressing over ids, the texts stay in `tokens`.
struct TextIndex {
    /// `id + 1` per slot, 0 for an empty one; a power of two long, at most half full.
    slots: Vec<u32>,
    hasher: ahash::RandomState,
}

impl TextIndex {
    /// Later ids win over earlier ones with the same text, as in llama.cpp's `token_to_id`.
    fn build(tokens: &PackedStrings) -> Self {
        let n = tokens.len();
        let mut index = TextIndex {
            slots: vec![0; (n * 2).next_power_of_two().max(2)],
            // Random keys: a hostile vocabulary cannot be built to collide.
            hasher: ahash::RandomState::new(),
        };
        for id in 0..n {
            let text = tokens.get(id).unwrap_or("");
            let slot = index.slot(tokens, text);
            index.slots[slot] = id as u32 + 1;
        }
        index
    }

    /// The slot that holds `text`, or the empty one where it would go.
    fn slot(&self, tokens: &PackedStrings, text: &str) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.hasher.hash_one(text.as_bytes()) as usize & mask;
        loop {
            match self.slots[i] {
                0 => return i,
                id if tokens.get(id as usize - 1) == Some(text) => return i,
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn get(&self, tokens: &PackedStrings, text: &str) -> Option<u32> {
        match self.slots[self.slot(tokens, text)] {
            0 => None,
            id => Some(id - 1),
        }
    }
}

pub struct Spm {
    tokens: Arc<PackedStrings>,
    scores: Vec<f32>,
    index: TextIndex,
    unk: Option<u32>,
}

/// A candidate merge of two adjacent symbols; the heap pops the highest score first and, among
/// equal scores, the leftmost pair, as llama.cpp's `llm_bigram_spm::comparator` orders them.
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl Bigram {
    /// A total order that agrees with C++'s `<` on scores: -0 equals +0, and a NaN from a
    /// hostile file sorts lowest instead of breaking the heap.
    fn key(&self) -> f32 {
        if self.score.is_nan() {
            f32::NEG_INFINITY
        } else {
            self.score + 0.0
        }
    }
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key()
            .total_cmp(&other.key())
            .then(other.left.cmp(&self.left))
    }
}

/// A run of the input: one character at first, then whatever merged into it.
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

impl Spm {
    /// `scores` has one entry per token; `unk` stands in for a character whose bytes have no tokens.
    pub fn new(tokens: Arc<PackedStrings>, scores: Vec<f32>, unk: Option<u32>) -> Self {
        let index = TextIndex::build(&tokens);
        Spm {
            tokens,
            scores,
            index,
            unk,
        }
    }

    fn id(&self, text: &str) -> Option<u32> {
        self.index.get(&self.tokens, text)
    }

    fn push_bigram(
        &self,
        text: &str,
        symbols: &[Symbol],
        left: usize,
        right: usize,
        heap: &mut BinaryHeap<Bigram>,
    ) {
        let (l, r) = (&symbols[left], &symbols[right]);
        let merged = &text[l.start..r.start + r.len];
        if let Some(id) = self.id(merged) {
            heap.push(Bigram {
                score: self
                    .scores
                    .get(id as usize)
                    .copied()
                    .unwrap_or(f32::NEG_INFINITY),
                left,
                right,
                size: merged.len(),
            });
        }
    }

    /// llama.cpp's `byte_to_token` for SentencePiece vocabularies.
    fn byte_id(&self, b: u8) -> Option<u32> {
        self.id(&format!("<0x{b:02X}>"))
            .or_else(|| std::str::from_utf8(&[b]).ok().and_then(|s| self.id(s)))
    }
}

impl Model for Spm {
    type Trainer = BpeTrainer;

    fn tokenize(&self, text: &str) -> tokenizers::Result<Vec<Token>> {
        let mut symbols: Vec<Symbol> = text
            .char_indices()
            .map(|(start, c)| Symbol {
                start,
                len: c.len_utf8(),
                prev: None,
                next: None,
            })
            .collect();
        let n = symbols.len();
        for (i, s) in symbols.iter_mut().enumerate() {
            s.prev = i.checked_sub(1);
            s.next = (i + 1 < n).then_some(i + 1);
        }
        let mut heap = BinaryHeap::new();
        for i in 1..n {
            self.push_bigram(text, &symbols, i - 1, i, &mut heap);
        }
        while let Some(b) = heap.pop() {
            let (l, r) = (&symbols[b.left], &symbols[b.right]);
            // Either side already merged into something else: a stale candidate.
            if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
                continue;
            }
            let right_next = r.next;
            symbols[b.left].len += symbols[b.right].len;
            symbols[b.right].len = 0;
            symbols[b.left].next = right_next;
            if let Some(next) = right_next {
                symbols[next].prev = Some(b.left);
            }
            if let Some(prev) = symbols[b.left].prev {
                self.push_bigram(text, &symbols, prev, b.left, &mut heap);
            }
            if let Some(next) = right_next {
                self.push_bigram(text, &symbols, b.left, next, &mut heap);
            }
        }

        let mut out = Vec::new();
        let mut at = (n > 0).then_some(0);
        while let Some(i) = at {
            let s = &symbols[i];
            let piece = &text[s.start..s.start + s.len];
            let offsets = (s.start, s.start + s.len);
            match self.id(piece) {
                Some(id) => out.push(Token::new(id, piece.to_string(), offsets)),
                // Only a single character can be no token: merges always make tokens.
                None => {
                    let bytes: Option<Vec<u32>> = piece.bytes().map(|b| self.byte_id(b)).collect();
                    let fallback = match (bytes, self.unk) {
                        (Some(bytes), _) => bytes,
                        // As the crate's BPE does: one unknown token for the character.
                        (None, Some(unk)) => vec![unk],
                        (None, None) => {
                            return Err(format!(
                                "the vocabulary has no token for {piece:?}, nor for its bytes"
                            )
                            .into())
                        }
                    };
                    for id in fallback {
                        let value = self.tokens.get(id as usize).unwrap_or("").to_string();
                        out.push(Token::new(id, value, offsets));
                    }
                }
            }
            at = s.next;
        }
        Ok(out)
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.id(token)
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokens.get(id as usize).map(str::to_string)
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        (0..self.tokens.len())
            .filter_map(|i| Some((self.tokens.get(i)?.to_string(), i as u32)))
            .collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.tokens.len()
    }

    fn save(&self, _folder: &Path, _prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        Err("a vocabulary read from a GGUF is not saved as tokenizer files".into())
    }

    fn get_trainer(&self) -> BpeTrainer {
        BpeTrainer::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(vocab: &[(&str, f32)], unk: Option<u32>) -> Spm {
        let tokens: PackedStrings = vocab.iter().map(|(t, _)| *t).collect();
        Spm::new(
            Arc::new(tokens),
            vocab.iter().map(|(_, s)| *s).collect(),
            unk,
        )
    }

    fn ids(m: &Spm, text: &str) -> Vec<u32> {
        m.tokenize(text).unwrap().iter().map(|t| t.id).collect()
    }

    #[test]
    fn highest_score_merges_first() {
        // "abc": "ab" (score -1) beats "bc" (-2), then "abc" is not reachable from "ab"+"c"
        // unless it is a token.
        let m = model(
            &[
                ("a", 0.0),
                ("b", 0.0),
                ("c", 0.0),
                ("ab", -1.0),
                ("bc", -2.0),
            ],
            None,
        );
        assert_eq!(ids(&m, "abc"), vec![3, 2]);
        let m = model(
            &[
                ("a", 0.0),
                ("b", 0.0),
                ("c", 0.0),
                ("ab", -3.0),
                ("bc", -2.0),
            ],
            None,
        );
        assert_eq!(ids(&m, "abc"), vec![0, 4]);
    }

    #[test]
    fn equal_scores_merge_leftmost_pair_first() {
        // "bc" has the lower id, but "ab" is further left; llama.cpp merges "ab".
        let m = model(
            &[
                ("a", 0.0),
                ("b", 0.0),
                ("c", 0.0),
                ("bc", -1.0),
                ("ab", -1.0),
            ],
            None,
        );
        assert_eq!(ids(&m, "abc"), vec![4, 2]);
    }

    #[test]
    fn merged_pieces_keep_merging() {
        let m = model(
            &[
                ("a", 0.0),
                ("b", 0.0),
                ("ab", -1.0),
                ("abab", -2.0),
                ("ababab", -3.0),
            ],
            None,
        );
        assert_eq!(ids(&m, "ababab"), vec![4]);
        assert_eq!(ids(&m, "abababa"), vec![4, 0]);
    }

    #[test]
    fn unknown_characters_fall_back_to_bytes_then_unk() {
        let m = model(
            &[("<unk>", 0.0), ("a", 0.0), ("<0xC3>", 0.0), ("<0xA9>", 0.0)],
            Some(0),
        );
        assert_eq!(ids(&m, "aé"), vec![1, 2, 3]);
        assert_eq!(ids(&m, "a€"), vec![1, 0]);
        let no_unk = model(&[("a", 0.0)], None);
        assert!(no_unk.tokenize("a€").is_err());
        // A character that is not a token still merges with a neighbour into one that is.
        let m = model(&[("x", 0.0), ("éx", -1.0)], None);
        assert_eq!(ids(&m, "éx"), vec![1]);
    }

    #[test]
    fn later_duplicates_win_and_odd_scores_do_not_panic() {
        let m = model(
            &[("a", 0.0), ("b", f32::NAN), ("ab", f32::NAN), ("b", -0.0)],
            None,
        );
        assert_eq!(m.token_to_id("b"), Some(3));
        assert_eq!(ids(&m, "ab"), vec![2]);
        assert_eq!(ids(&m, ""), Vec::<u32>::new());
        let offsets: Vec<_> = m
            .tokenize("ba")
            .unwrap()
            .iter()
            .map(|t| t.offsets)
            .collect();
        assert_eq!(offsets, vec![(0, 1), (1, 2)]);
    }
}
