//! Tokenizer built from the GGUF's own metadata, with the `tokenizers` crate doing the encoding.
//!
//! llama.cpp is the reference: its pre-tokenizer regexes per `tokenizer.ggml.pre`, its rule that
//! user-defined tokens match literally while control tokens only match when special-token parsing
//! is on, and its SentencePiece merge order (highest score of the merged piece first).
//! Decoding does not go through `tokenizers`: each id maps to the exact bytes it contributes, so
//! streaming can hold back a split UTF-8 character and per-token text is always available.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    AddedToken, DecoderWrapper, Model, NormalizerWrapper, PostProcessorWrapper,
    PreTokenizerWrapper, SplitDelimiterBehavior, Token, TokenizerImpl,
};

use super::error::{EngineError, Result};
use super::gguf::GgufFile;
use super::packed::{PackedBytes, PackedStrings};
use super::spm::Spm;

// llama.cpp's `llama_token_type` values, as stored in `tokenizer.ggml.token_type`.
const TYPE_NORMAL: i32 = 1;
const TYPE_UNKNOWN: i32 = 2;
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;
const TYPE_BYTE: i32 = 6;

const GPT2_REGEX: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Texts llama.cpp treats as end of generation besides the declared EOS (and the EOT and EOM
/// ids a file may name): its loader's list for end of turn and of message. Any token type:
/// Qwen2.5's `</s>` is a normal token and ends its generations in llama.cpp.
/// `tests/pretokenizers.rs` checks the catalog models' sets and each user-defined text against
/// llama.cpp. (llama.cpp's exception for gpt-oss, dropping `<|end|>` when `<|return|>` is
/// there, does not arise: its pre-tokenizer is refused.)
const END_OF_TURN_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
    "</s>",
    "<|return|>",
    "<|call|>",
    "<|calls|>",
    "<|flush|>",
    "<|eom_id|>",
    "[EOS]",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "[e~[",
];

/// The fill-in-the-middle pad, repository and file-separator markers, which llama.cpp also
/// ends a generation on: the id a file names for each kind (`tokenizer.ggml.fim_pad_token_id`
/// and so on), or where it names none, the tokens with these texts (llama.cpp takes the first
/// its map yields; this takes every one).
const FIM_END_TEXTS: [(&str, &[&str]); 3] = [
    (
        "tokenizer.ggml.fim_pad_token_id",
        &["<|fim_pad|>", "<fim_pad>", "<fim-pad>", "<PAD>", "[PAD]"],
    ),
    (
        "tokenizer.ggml.fim_rep_token_id",
        &[
            "<|fim_repo|>",
            "<|repo_name|>",
            "<fim-repo>",
            "<REPO>",
            "<reponame>",
        ],
    ),
    ("tokenizer.ggml.fim_sep_token_id", &["<|file_sep|>"]),
];

/// Fill-in-the-middle markers llama.cpp's loader also makes control tokens.
const FIM_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
    "<fim-prefix>",
    "<fim-suffix>",
    "<fim-middle>",
    "<fim_prefix>",
    "<fim_suffix>",
    "<fim_middle>",
    "<PRE>",
    "<SUF>",
    "<MID>",
    "▁<PRE>",
    "▁<SUF>",
    "▁<MID>",
    "<｜fim▁begin｜>",
    "<｜fim▁hole｜>",
    "<｜fim▁end｜>",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabKind {
    /// Byte-level BPE (`tokenizer.ggml.model = gpt2`).
    Gpt2,
    /// SentencePiece-style vocabulary with scores (`tokenizer.ggml.model = llama`).
    Spm,
}

/// What the crate's pipeline hands each piece of text to: its own BPE for byte-level
/// vocabularies, llama.cpp's SentencePiece merge (`spm`) for the others.
enum VocabModel {
    Bpe(Box<BPE>),
    Spm(Spm),
}

impl Model for VocabModel {
    type Trainer = BpeTrainer;

    fn tokenize(&self, sequence: &str) -> tokenizers::Result<Vec<Token>> {
        match self {
            VocabModel::Bpe(m) => m.tokenize(sequence),
            VocabModel::Spm(m) => m.tokenize(sequence),
        }
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        match self {
            VocabModel::Bpe(m) => m.token_to_id(token),
            VocabModel::Spm(m) => m.token_to_id(token),
        }
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        match self {
            VocabModel::Bpe(m) => m.id_to_token(id),
            VocabModel::Spm(m) => m.id_to_token(id),
        }
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        match self {
            VocabModel::Bpe(m) => m.get_vocab(),
            VocabModel::Spm(m) => m.get_vocab(),
        }
    }

    fn get_vocab_size(&self) -> usize {
        match self {
            VocabModel::Bpe(m) => m.get_vocab_size(),
            VocabModel::Spm(m) => m.get_vocab_size(),
        }
    }

    fn save(&self, folder: &Path, prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        match self {
            VocabModel::Bpe(m) => m.save(folder, prefix),
            VocabModel::Spm(m) => m.save(folder, prefix),
        }
    }

    fn get_trainer(&self) -> BpeTrainer {
        match self {
            VocabModel::Bpe(m) => m.get_trainer(),
            VocabModel::Spm(m) => m.get_trainer(),
        }
    }
}

type HfTokenizer = TokenizerImpl<
    VocabModel,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// Marks control-token text inside chat messages (`Tokenizer::escape_control`): the last
/// private-use character, which no text a user means to send holds (and which is doubled
/// where one does).
const ESCAPE: char = '\u{10FFFD}';
/// The k-th control token is named by the private-use character `ESCAPE_NAMES + k`.
const ESCAPE_NAMES: u32 = 0x10_0000;

fn escaped_name(k: usize) -> Option<char> {
    u32::try_from(k)
        .ok()
        .filter(|&k| k < 0xFFFD)
        .and_then(|k| char::from_u32(ESCAPE_NAMES + k))
}

fn escaped_index(name: char) -> Option<usize> {
    (name as u32)
        .checked_sub(ESCAPE_NAMES)
        .filter(|&k| k < 0xFFFD)
        .map(|k| k as usize)
}

/// Most tokens (and merges) a vocabulary may have.
pub const MAX_VOCAB: usize = 1 << 20;

pub struct Tokenizer {
    hf: HfTokenizer,
    kind: VocabKind,
    pre: String,
    tokens: Arc<PackedStrings>,
    types: Vec<i32>,
    /// Bytes each token adds to the output text (empty for control tokens).
    bytes: PackedBytes,
    /// Control tokens, longest text first, for special-token parsing.
    control_by_len: Vec<(String, u32)>,
    /// Each control token's text to its first place in `control_by_len`, and the lengths
    /// they come in: `controls_in`'s one scan of a text.
    control_index: std::collections::HashMap<String, usize>,
    control_lengths: Vec<usize>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub add_bos: bool,
    /// llama.cpp ends a text with EOS where it adds special tokens, when the file says so.
    pub add_eos: bool,
    eog: Vec<u32>,
}

/// GPT-2's reversible map from bytes to printable characters.
fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        table[b as usize] = if printable {
            char::from_u32(b).unwrap_or('\0')
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\0')
        };
    }
    table
}

/// The inverse of [`byte_to_char_table`]: each printable character back to its byte.
fn char_to_byte_map() -> HashMap<char, u8> {
    byte_to_char_table()
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect()
}

/// How llama.cpp cuts text into words before the merges, for one `tokenizer.ggml.pre` name:
/// its regexes, applied in turn to the pieces the previous one left.
struct PreTokenizer {
    regexes: &'static [&'static str],
    /// A word that is a whole token is taken as it is, whatever the merges would make of it
    /// (llama.cpp's `ignore_merges`, for Llama 3's family and Tekken).
    ignore_merges: bool,
    /// llama.cpp adds a BOS token for these unless `tokenizer.ggml.add_bos_token` says not.
    adds_bos: bool,
}

const UNSPLIT_CLASSES: &str = r" ?[^(\s|.,!?…。，、।۔،)]+";

/// Each name in llama.cpp's loader whose split TinyLab makes the same, with that split; checked
/// against llama.cpp on every name by `tests/pretokenizers.rs`. A name not here is refused, as
/// llama.cpp refuses a name it does not know: a guessed split gives ids, and numbers, that
/// look right and are not (kimi-k2, superbpe, afmoe, tiny_aya and chameleon use hand-written
/// splitters in llama.cpp; gemma4, sarvam-moe and whitespace read text without the byte map;
/// the jina and roberta names that add a separator belong to embedding models; the glm and
/// chatglm names' BOS rules differ). `tests/llama_vocab.rs` also runs llama.cpp's own
/// tokenizer tests on its vocabularies of thirteen families.
fn pre_tokenizer(pre: &str) -> Option<PreTokenizer> {
    let plain = |regexes| PreTokenizer {
        regexes,
        ignore_merges: false,
        adds_bos: false,
    };
    Some(match pre {
        // An empty or missing name is llama.cpp's default too.
        "" | "default" => plain(&[
            r"[\p{P}\$\+<=>\^~\|]+",
            GPT2_REGEX,
            r"\p{N}+",
            "[0-9][0-9][0-9]",
        ]),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => PreTokenizer {
            regexes: &[LLAMA3_REGEX],
            ignore_merges: true,
            adds_bos: true,
        },
        "dbrx" | "smaug-bpe" => plain(&[LLAMA3_REGEX]),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "mpt" | "olmo" | "jais" | "trillion" | "exaone4"
        | "granite-docling" | "modern-bert" => plain(&[GPT2_REGEX]),
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b"
        | "mellum2" => plain(&[r"\p{N}", GPT2_REGEX]),
        "qwen2" | "deepseek-r1-qwen" | "stablelm2" | "megrez" | "hunyuan" | "grok-2" | "kormo"
        | "f2llmv2" | "solar-open" => plain(&[QWEN2_REGEX]),
        // Qwen3.5: Qwen2's list with combining marks kept in words.
        "qwen35" => plain(&[
            r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ]),
        // Qwen2's list without the English contractions (Turkish suffixes stay on their word).
        "ufakzeka" => plain(&[
            r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ]),
        "laguna" => plain(&["[^\n]+|[\n]+", QWEN2_REGEX]),
        "jais-2" => plain(&[
            r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}",
        ]),
        // Words joined by single spaces are one piece.
        "exaone-moe" => plain(&[
            r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+",
        ]),
        "minicpm5" => PreTokenizer {
            regexes: &[
                r"\p{N}{1,3}",
                r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            ],
            ignore_merges: true,
            adds_bos: false,
        },
        // llama.cpp reads tokenizer.json's `\p{Lu}`, `\p{Ll}`, `\p{Lt}`, `\p{Lm}` and `\p{Lo}`
        // all as `\p{L}`, so they are written so here.
        "youtu" => PreTokenizer {
            regexes: &[
                "[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+",
                r"[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]*[\p{L}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+[\p{L}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            ],
            ignore_merges: true,
            adds_bos: false,
        },
        "granite-embed-multi-97m" => PreTokenizer {
            regexes: &[
                r"[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))*((?=[\p{L}\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))+((?=[\p{L}\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            ],
            ignore_merges: true,
            adds_bos: false,
        },
        "bailingmoe" | "llada-moe" | "bailingmoe2" => plain(&[
            r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+",
        ]),
        "seed-coder" => plain(&[
            r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+",
        ]),
        "falcon" => plain(&[r"[\p{P}\$\+<=>\^~\|`]+", GPT2_REGEX, "[0-9][0-9][0-9]"]),
        "poro-chat" | "bloom" | "gpt3-finnish" => plain(&[UNSPLIT_CLASSES]),
        "viking" => plain(&[UNSPLIT_CLASSES, r"\p{N}"]),
        "tekken" => PreTokenizer {
            regexes: &[
                r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            ],
            ignore_merges: true,
            adds_bos: true,
        },
        // llama.cpp keeps tokenizer.json's `\p{Lu}`/`\p{Ll}` form of this list as a comment
        // only: the lookaheads alone cut, and they do not cut "γδΑΒ" (no a-z or A-Z in it).
        "gpt-4o" | "llama4" | "minimax-m2" | "kanana2" | "talkie" => plain(&[
            r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ]),
        "deepseek-v3" | "hunyuan-dense" | "joyai-llm" | "hy_v4" => plain(&[
            r"\p{N}{1,3}",
            "[一-龥぀-ゟ゠-ヿ]+",
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
        ]),
        // Its letters are spelled out as ranges, and llama.cpp matches those against the text
        // with every non-ASCII space made a vertical tab: its `\u{3000}-。` starts at `、` here.
        "deepseek-llm" => plain(&[
            "[\r\n]",
            r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
            r"\s?[!-/:-~！-／：-～‘-‟、-。]+",
            r"\s+$",
            r"[一-龥ࠀ-一가-퟿]+",
            r"\p{N}+",
        ]),
        "spark2_5" => plain(&[
            r"\p{N}{1,3}",
            "[一-龥぀-ゟ゠-ヿ]+",
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+",
            r"\p{N}",
        ]),
        "deepseek-coder" => plain(&[
            "[\r\n]",
            r"\s?\p{L}+",
            r"\s?\p{P}+",
            "[一-龥ࠀ-一가-퟿]+",
            r"\p{N}",
        ]),
        _ => return None,
    })
}

/// Control characters shown as `\u{…}`, and at most 64 characters: a name from the file goes
/// into a one-line error.
fn shown_name(name: &str) -> String {
    let mut shown: String = name.chars().take(64).flat_map(char::escape_debug).collect();
    if name.chars().count() > 64 {
        shown.push('…');
    }
    shown
}

fn tk_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Tokenizer(super::error::one_line(&e.to_string()))
}

impl Tokenizer {
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let model = gguf.string("tokenizer.ggml.model")?;
        let kind = match model.as_str() {
            "gpt2" => VocabKind::Gpt2,
            "llama" => VocabKind::Spm,
            other => {
                return Err(EngineError::Tokenizer(format!(
                    "unsupported tokenizer model `{}` (supported: gpt2, llama)",
                    super::error::one_line(other)
                )))
            }
        };
        let tokens = gguf.string_array("tokenizer.ggml.tokens")?;
        if tokens.is_empty() {
            return Err(EngineError::Tokenizer("the vocabulary is empty".into()));
        }
        // The crate's tables take about 30 times a vocabulary's bytes (4 million tokens and
        // merges in a 99 MB file took 3 GB); real ones have at most 262,144 tokens.
        if tokens.len() > MAX_VOCAB {
            return Err(EngineError::Tokenizer(format!(
                "a vocabulary of {} tokens; at most {MAX_VOCAB} are read",
                tokens.len()
            )));
        }
        let n = tokens.len();
        // Another length or a list of something else made every token normal, so control
        // tokens read as text; llama.cpp reads past a short list.
        let mut types = match gguf.i32_array_opt("tokenizer.ggml.token_type") {
            Some(t) if t.len() == n => t,
            Some(t) => {
                return Err(EngineError::Tokenizer(format!(
                    "`tokenizer.ggml.token_type` has {} entries for {n} tokens",
                    t.len()
                )))
            }
            None if gguf.metadata().contains_key("tokenizer.ggml.token_type") => {
                return Err(EngineError::Tokenizer(
                    "`tokenizer.ggml.token_type` is not a list of whole numbers".into(),
                ))
            }
            None => vec![TYPE_NORMAL; n],
        };
        // llama.cpp makes these control tokens (Gemma 3's `</s>` is user-defined in its file),
        // so plain text never reads as them. Only user-defined ones are retyped here: a normal
        // token is reached through the merges, in llama.cpp too. (llama.cpp also writes nothing
        // for a normal one, such as Qwen2.5's `</s>`; the engine writes its text, so that a
        // scored text holding it shows as written. A generation ends on it either way.)
        for (t, ty) in tokens.iter().zip(types.iter_mut()) {
            let marker = |list: &[&str]| list.contains(&t.as_str());
            let fim_end = FIM_END_TEXTS.iter().any(|(_, texts)| marker(texts));
            if *ty == TYPE_USER_DEFINED
                && (marker(END_OF_TURN_TEXTS) || marker(FIM_TEXTS) || fim_end)
            {
                *ty = TYPE_CONTROL;
            }
        }
        // Absent is llama.cpp's default; present, it must be a name (a number was read as
        // `default` and split text by another rule than the file asked for).
        let pre = if gguf.metadata().contains_key("tokenizer.ggml.pre") {
            gguf.string("tokenizer.ggml.pre")?
        } else {
            "default".to_string()
        };
        // Only byte-level BPE vocabularies split by regex; SentencePiece ignores the name.
        let split = match kind {
            VocabKind::Gpt2 => Some(pre_tokenizer(&pre).ok_or_else(|| {
                EngineError::Tokenizer(format!(
                    "unknown pre-tokenizer `{}` (tokenizer.ggml.pre): TinyLab splits text as \
                     llama.cpp does for default, gpt-2, llama-bpe, qwen2, smollm, starcoder \
                     and 48 other names, and refuses others rather than guess",
                    shown_name(&pre)
                ))
            })?),
            VocabKind::Spm => None,
        };
        // As llama.cpp: an id the file does not name, or names past the vocabulary, is the
        // tokenizer model's default (SentencePiece BOS 1 and EOS 2, byte-level BPE 11 for
        // both), where the vocabulary has it. An id of the wrong type counts as none.
        let id = |key: &str, default: Option<u32>| match gguf.u32_opt(key).ok().flatten() {
            Some(i) if (i as usize) < n => Some(i),
            _ => default.filter(|&d| (d as usize) < n),
        };
        let (default_bos, default_eos) = match kind {
            VocabKind::Spm => (1, 2),
            VocabKind::Gpt2 => (11, 11),
        };
        let bos = id("tokenizer.ggml.bos_token_id", Some(default_bos));
        let eos = id("tokenizer.ggml.eos_token_id", Some(default_eos));
        // Present but neither true/false nor a number was read as unset, which decides
        // whether every prompt starts with BOS.
        for key in [
            "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.add_eos_token",
            "tokenizer.ggml.add_space_prefix",
        ] {
            if gguf.metadata().contains_key(key) && gguf.bool_opt(key).is_none() {
                return Err(EngineError::InvalidGguf(format!(
                    "`{key}` is not true or false"
                )));
            }
        }
        let add_bos = gguf
            .bool_opt("tokenizer.ggml.add_bos_token")
            .unwrap_or(kind == VocabKind::Spm || split.as_ref().is_some_and(|p| p.adds_bos))
            && bos.is_some();
        // False unless the file says true, for both vocabulary kinds read here (llama.cpp's
        // default; only its UGM vocabularies default to true).
        let add_eos = gguf
            .bool_opt("tokenizer.ggml.add_eos_token")
            .unwrap_or(false)
            && eos.is_some();
        let add_space_prefix = gguf
            .bool_opt("tokenizer.ggml.add_space_prefix")
            .unwrap_or(kind == VocabKind::Spm);

        let packed: Arc<PackedStrings> = Arc::new(tokens.iter().collect());

        let mut hf = match kind {
            VocabKind::Gpt2 => {
                let mut vocab: ahash::AHashMap<String, u32> = ahash::AHashMap::with_capacity(n);
                for (i, t) in tokens.iter().enumerate() {
                    vocab.entry(t.clone()).or_insert(i as u32);
                }
                let merges = gguf.string_array("tokenizer.ggml.merges")?;
                if merges.len() > MAX_VOCAB {
                    return Err(tk_err(format!(
                        "{} merges; at most {MAX_VOCAB} are read",
                        merges.len()
                    )));
                }
                let mut seen = ahash::AHashSet::with_capacity(merges.len());
                let merges = merges
                    .iter()
                    .map(|m| {
                        m.split_once(' ')
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .ok_or_else(|| tk_err(format!("malformed merge `{m}`")))
                    })
                    .collect::<Result<Vec<_>>>()?
                    .into_iter()
                    // A merge listed again keeps its first (highest) rank, as llama.cpp's
                    // map does; the tokenizers crate would take the last.
                    .filter(|pair| seen.insert(pair.clone()))
                    .collect::<Vec<_>>();
                let split = split.as_ref().ok_or_else(|| tk_err("no pre-tokenizer"))?;
                // Bytes with no token of their own (SmolLM2 lacks 21, among them 0x04, 0x13
                // and 0x1D): llama.cpp keeps such a byte as a symbol while merging,
                // so the pieces on either side never merge across it, and drops it at the end.
                // The crate drops it first, and then merged `!\x04!` into `!!`.
                let unmapped: String = byte_to_char_table()
                    .iter()
                    .filter(|c| !vocab.contains_key(c.to_string().as_str()))
                    .map(|&c| format!("\\x{{{:X}}}", c as u32))
                    .collect();
                let bpe = BPE::builder()
                    .vocab_and_merges(vocab, merges)
                    .ignore_merges(split.ignore_merges)
                    .build()
                    // "Token `Ġread` out of vocabulary": say where it comes from.
                    .map_err(|e| tk_err(format!("`tokenizer.ggml.merges`: {e}")))?;
                let mut hf = HfTokenizer::new(VocabModel::Bpe(Box::new(bpe)));
                let mut steps: Vec<PreTokenizerWrapper> = Vec::new();
                for re in split.regexes {
                    let split = Split::new(
                        SplitPattern::Regex(super::regex_unicode::as_llama_cpp(re)),
                        SplitDelimiterBehavior::Isolated,
                        false,
                    )
                    .map_err(tk_err)?;
                    steps.push(split.into());
                }
                steps.push(ByteLevel::new(false, false, false).into());
                if !unmapped.is_empty() {
                    // After the byte-level map, so that any byte is one character.
                    let barrier = Split::new(
                        SplitPattern::Regex(format!("[{unmapped}]")),
                        SplitDelimiterBehavior::Isolated,
                        false,
                    )
                    .map_err(tk_err)?;
                    steps.push(barrier.into());
                }
                hf.with_pre_tokenizer(Some(Sequence::new(steps)));
                hf
            }
            VocabKind::Spm => {
                let scores = match gguf.f32_array_opt("tokenizer.ggml.scores") {
                    Some(s) if s.len() == n => s,
                    Some(s) => {
                        return Err(tk_err(format!(
                            "`tokenizer.ggml.scores` has {} entries for {n} tokens",
                            s.len()
                        )))
                    }
                    None if gguf.metadata().contains_key("tokenizer.ggml.scores") => {
                        return Err(tk_err(
                            "`tokenizer.ggml.scores` is not a list of numbers".to_string(),
                        ))
                    }
                    None => {
                        return Err(tk_err(
                            "a `llama` vocabulary needs `tokenizer.ggml.scores`".to_string(),
                        ))
                    }
                };
                // llama.cpp's default for SentencePiece is 0.
                let unk = id("tokenizer.ggml.unknown_token_id", Some(0));
                let mut hf =
                    HfTokenizer::new(VocabModel::Spm(Spm::new(packed.clone(), scores, unk)));
                let replace = Replace::new(" ", "\u{2581}").map_err(tk_err)?;
                let norm: NormalizerWrapper = if add_space_prefix {
                    NormSequence::new(vec![Prepend::new("\u{2581}".into()).into(), replace.into()])
                        .into()
                } else {
                    replace.into()
                };
                hf.with_normalizer(Some(norm)).map_err(tk_err)?;
                hf
            }
        };

        // User-defined tokens match literally in any text, as in llama.cpp; control tokens are
        // left to `encode`'s own partitioning so plain text can never produce them.
        let user_defined: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(t, &ty)| ty == TYPE_USER_DEFINED && !t.is_empty())
            .map(|(t, _)| AddedToken::from(t.clone(), false).normalized(false))
            .collect();
        hf.add_tokens(user_defined).map_err(tk_err)?;

        let char_to_byte = char_to_byte_map();
        if let Some((i, (t, _))) = tokens
            .iter()
            .zip(&types)
            .enumerate()
            .find(|(_, (t, &ty))| ty == TYPE_BYTE && t.len() < 3)
        {
            return Err(tk_err(format!(
                "token {i} is a byte token written {t:?}; byte tokens are written `<0xHH>` \
                 (llama.cpp refuses such a file too)"
            )));
        }
        let bytes = tokens
            .iter()
            .zip(&types)
            .map(|(t, &ty)| token_bytes(kind, t, ty, &char_to_byte))
            .collect();

        let mut control_by_len: Vec<(String, u32)> = tokens
            .iter()
            .zip(&types)
            .enumerate()
            // llama.cpp reads an unknown token's text as that token too, where it reads
            // special tokens.
            .filter(|(_, (t, &ty))| matches!(ty, TYPE_CONTROL | TYPE_UNKNOWN) && !t.is_empty())
            .map(|(i, (t, _))| (t.clone(), i as u32))
            .collect();
        control_by_len.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let mut control_index = std::collections::HashMap::new();
        for (k, (t, _)) in control_by_len.iter().enumerate() {
            control_index.entry(t.clone()).or_insert(k);
        }
        let mut control_lengths: Vec<usize> = control_by_len.iter().map(|(t, _)| t.len()).collect();
        control_lengths.dedup();

        // One id per end-of-turn text, the first (a vocabulary with a million copies of
        // `</s>` made this quadratic, and every generated token would be checked against all).
        // llama.cpp's set: EOS and the EOT and EOM ids the file names, every token with an
        // end-of-turn text, and each fill-in-the-middle end marker by its id or its texts.
        let mut eog: Vec<u32> = [
            eos,
            id("tokenizer.ggml.eot_token_id", None),
            id("tokenizer.ggml.eom_token_id", None),
        ]
        .into_iter()
        .flatten()
        .collect();
        let named: Vec<&[&str]> = FIM_END_TEXTS
            .iter()
            .filter_map(|(key, texts)| match id(key, None) {
                Some(i) => {
                    eog.push(i);
                    None
                }
                None => Some(*texts),
            })
            .collect();
        // By text and type: a plain token of the same text before the control one must not
        // take its place.
        let mut seen: Vec<(&str, i32)> = Vec::new();
        for (i, (t, &ty)) in tokens.iter().zip(&types).enumerate() {
            let t = t.as_str();
            let listed = END_OF_TURN_TEXTS.contains(&t) || named.iter().any(|l| l.contains(&t));
            if listed && !seen.contains(&(t, ty)) {
                seen.push((t, ty));
                eog.push(i as u32);
            }
        }
        eog.sort_unstable();
        eog.dedup();

        Ok(Tokenizer {
            hf,
            kind,
            pre,
            tokens: packed,
            types,
            bytes,
            control_by_len,
            control_index,
            control_lengths,
            bos,
            eos,
            add_bos,
            add_eos,
            eog,
        })
    }

    pub fn kind(&self) -> VocabKind {
        self.kind
    }

    pub fn pre(&self) -> &str {
        &self.pre
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The most bytes of text one token stands for.
    pub fn longest_token_bytes(&self) -> usize {
        self.bytes.longest()
    }

    /// Tokens that end a generation: EOS and the end-of-turn markers.
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    /// Every token that ends a generation.
    pub fn end_of_generation_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.eog.iter().copied()
    }

    pub fn token_text(&self, id: u32) -> &str {
        self.tokens.get(id as usize).unwrap_or("")
    }

    /// The token as a user reads it: its decoded bytes, or its literal text for control tokens.
    pub fn token_display(&self, id: u32) -> String {
        let i = id as usize;
        match (self.types.get(i), self.bytes.get(i)) {
            (Some(&ty), _) if !matches!(ty, TYPE_NORMAL | TYPE_USER_DEFINED | TYPE_BYTE) => {
                self.token_text(id).to_string()
            }
            (_, Some(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        }
    }

    /// FNV-1a over every token's bytes and a separator, in id order: two models with the same
    /// fingerprint share a vocabulary. Tokens typed unknown, unused or undefined count with
    /// the text they wrote before they wrote none, so that a fingerprint kept with a saved
    /// output (Qwen2.5 has 271 unused tokens) still names the same model.
    pub fn fingerprint(&self) -> String {
        let char_to_byte = char_to_byte_map();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: u8| {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        for id in 0..self.vocab_size() as u32 {
            let ty = self.types.get(id as usize).copied().unwrap_or(TYPE_NORMAL);
            // The bytes each token wrote before the engine wrote llama.cpp's pieces, where they
            // differ: unknown, unused and undefined tokens, SentencePiece user-defined ones
            // (▁ as a space) and byte-level BPE's byte tokens (their text).
            let bytes: std::borrow::Cow<[u8]> = match (self.kind, ty) {
                (_, TYPE_NORMAL | TYPE_CONTROL)
                | (VocabKind::Spm, TYPE_BYTE)
                | (VocabKind::Gpt2, TYPE_USER_DEFINED) => self.token_bytes(id).into(),
                _ => token_bytes(self.kind, self.token_text(id), TYPE_NORMAL, &char_to_byte).into(),
            };
            for &b in bytes.iter() {
                eat(b);
            }
            eat(0xff);
        }
        format!("{:016x}-{}", h, self.vocab_size())
    }

    /// Bytes this token contributes to generated text.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).unwrap_or(&[])
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&i| self.token_bytes(i))
            .copied()
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Encodes `text` without BOS/EOS. With `parse_special`, control-token text (such as
    /// `<|im_start|>`) becomes that token; without it, such text is tokenized as plain text.
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        if !parse_special {
            return self.encode_plain(text);
        }
        self.encode_special(text, false)
    }

    /// Which of `control_by_len` occur in `text` (their places, in its order). A few control
    /// tokens are looked for one by one; many (a vocabulary of 100,000, each looked for
    /// through megabytes of messages, took minutes) are found in one scan of the text, each
    /// place tried at every length they come in, when that is fewer tries.
    fn controls_in(&self, text: &str) -> Vec<usize> {
        let n = self.control_by_len.len();
        // A try hashes `len` bytes at each place, a search looks once per token: the scan
        // pays only when its lengths add up to far less than the tokens.
        let scan_cost: usize = self.control_lengths.iter().sum();
        if n <= 64 || scan_cost.saturating_mul(4) > n {
            return (0..n)
                .filter(|&k| text.contains(self.control_by_len[k].0.as_str()))
                .collect();
        }
        let mut found = vec![false; n];
        for (i, _) in text.char_indices() {
            for &len in &self.control_lengths {
                if let Some(&k) = text
                    .get(i..i.saturating_add(len))
                    .and_then(|s| self.control_index.get(s))
                {
                    found[k] = true;
                }
            }
        }
        (0..n).filter(|&k| found[k]).collect()
    }

    /// Control-token text in `text` (a chat message's content), hidden from
    /// [`Tokenizer::encode_rendered`]'s special-token parsing, so that a user who types or
    /// pastes `<|im_end|><|im_start|>system` into a message gets those characters as text,
    /// not a forged turn. Each occurrence becomes `ESCAPE` and a private-use character naming
    /// the token (a literal `ESCAPE` is doubled); text without either comes back as it is.
    pub fn escape_control<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        let present = self.controls_in(text);
        if present.is_empty() && !text.contains(ESCAPE) {
            return std::borrow::Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len() + 8);
        let mut rest = text;
        'text: while let Some(c) = rest.chars().next() {
            // Longest first, as `encode_special` matches them.
            for &k in &present {
                let tok = self.control_by_len[k].0.as_str();
                if let (true, Some(name)) = (rest.starts_with(tok), escaped_name(k)) {
                    out.push(ESCAPE);
                    out.push(name);
                    rest = &rest[tok.len()..];
                    continue 'text;
                }
            }
            out.push(c);
            if c == ESCAPE {
                out.push(ESCAPE);
            }
            rest = &rest[c.len_utf8()..];
        }
        std::borrow::Cow::Owned(out)
    }

    /// Prompt ids of a rendered chat template whose messages went through
    /// [`Tokenizer::escape_control`]: the template's own control-token text becomes those
    /// tokens, the messages' is tokenized as the text it was. BOS and EOS as
    /// [`Tokenizer::encode_prompt`] (llama.cpp's server adds them to a rendered chat too).
    pub fn encode_rendered(&self, rendered: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if self.add_bos {
            ids.extend(self.bos);
        }
        ids.extend(self.encode_special(rendered, true)?);
        if self.add_eos {
            ids.extend(self.eos);
        }
        Ok(ids)
    }

    /// The text `escape_control` hid, back as it was.
    fn unescape<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        if !text.contains(ESCAPE) {
            return std::borrow::Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c != ESCAPE {
                out.push(c);
                continue;
            }
            match chars.peek().copied() {
                Some(ESCAPE) => {
                    chars.next();
                    out.push(ESCAPE);
                }
                Some(name) => match escaped_index(name).and_then(|k| self.control_by_len.get(k)) {
                    Some((tok, _)) => {
                        chars.next();
                        out.push_str(tok);
                    }
                    None => out.push(c),
                },
                None => out.push(c),
            }
        }
        std::borrow::Cow::Owned(out)
    }

    /// Special-token parsing; `unescape`: the text between control tokens may hold
    /// `escape_control`'s marks, to be read back as plain text.
    fn encode_special(&self, text: &str, unescape: bool) -> Result<Vec<u32>> {
        // llama.cpp's partition: longest control token first, every occurrence, left to right.
        enum Frag<'t> {
            Text(&'t str),
            Token(u32),
        }
        let mut frags = vec![Frag::Text(text)];
        for k in self.controls_in(text) {
            let (tok, id) = &self.control_by_len[k];
            let mut next = Vec::with_capacity(frags.len());
            for f in frags {
                match f {
                    Frag::Text(mut s) => {
                        while let Some(p) = s.find(tok.as_str()) {
                            if p > 0 {
                                next.push(Frag::Text(&s[..p]));
                            }
                            next.push(Frag::Token(*id));
                            s = &s[p + tok.len()..];
                        }
                        if !s.is_empty() {
                            next.push(Frag::Text(s));
                        }
                    }
                    t => next.push(t),
                }
            }
            frags = next;
        }
        let mut ids = Vec::new();
        for f in frags {
            match f {
                Frag::Text(s) if unescape => ids.extend(self.encode_plain(&self.unescape(s))?),
                Frag::Text(s) => ids.extend(self.encode_plain(s)?),
                Frag::Token(id) => ids.push(id),
            }
        }
        Ok(ids)
    }

    fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self.hf.encode(text, false).map_err(tk_err)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Prompt ids as llama.cpp makes them with its special tokens added: BOS first and EOS
    /// last exactly when the GGUF asks for each.
    pub fn encode_prompt(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        let mut ids = self.encode_opening(text, parse_special)?;
        if self.add_eos {
            ids.extend(self.eos);
        }
        Ok(ids)
    }

    /// [`Tokenizer::encode_prompt`] without a closing EOS: a text that more text follows
    /// (an evaluation item's context and continuation, which lm-evaluation-harness tokenizes
    /// as one text with BOS only).
    pub fn encode_opening(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if self.add_bos {
            ids.extend(self.bos);
        }
        ids.extend(self.encode(text, parse_special)?);
        Ok(ids)
    }
}

/// A byte token's byte as llama.cpp's `token_to_byte` reads it: `strtol(text.substr(3, 2), 16)`
/// cast to a byte, so `<0x0A>` is 10 and a malformed text still gives one byte (`<0x>` 0,
/// `<0x0A0>` 10). A text under 3 bytes is refused at load (in `Tokenizer::from_gguf`).
fn byte_of(text: &str) -> u8 {
    let b = text.as_bytes();
    let mut s = b.get(3..b.len().min(5)).unwrap_or(&[]);
    while let [c, rest @ ..] = s {
        if !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
            break;
        }
        s = rest;
    }
    let negative = s.first() == Some(&b'-');
    if let [b'+' | b'-', rest @ ..] = s {
        s = rest;
    }
    // strtol takes "0x" as a prefix only when a hex digit follows it.
    if let [b'0', b'x' | b'X', d, ..] = s {
        if d.is_ascii_hexdigit() {
            s = &s[2..];
        }
    }
    let mut v: i64 = 0;
    for c in s {
        match (*c as char).to_digit(16) {
            Some(d) => v = v * 16 + i64::from(d),
            None => break,
        }
    }
    (if negative { -v } else { v }) as u8
}

fn token_bytes(kind: VocabKind, text: &str, ty: i32, char_to_byte: &HashMap<char, u8>) -> Vec<u8> {
    // llama.cpp's `token_to_piece` without special tokens: a user-defined token is its text as
    // written, a byte token its byte (`<0xXX>` in both kinds), and only normal tokens are
    // decoded; control, unknown, unused and undefined ones write nothing.
    match (kind, ty) {
        (_, TYPE_USER_DEFINED) => text.as_bytes().to_vec(),
        (_, TYPE_BYTE) => vec![byte_of(text)],
        (_, ty) if ty != TYPE_NORMAL => Vec::new(),
        (VocabKind::Spm, _) => text.replace('\u{2581}', " ").into_bytes(),
        (VocabKind::Gpt2, _) => {
            let mut out = Vec::with_capacity(text.len());
            for c in text.chars() {
                match char_to_byte.get(&c) {
                    Some(&b) => out.push(b),
                    None => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::byte_of;

    /// llama.cpp's `token_to_byte` on each text (a reviewer's files run through llama.cpp):
    /// `strtol` of the two bytes after `<0x`, cast to a byte.
    #[test]
    fn byte_tokens_read_as_llama_cpp_reads_them() {
        for (text, byte) in [
            ("<0x0A>", 0x0a),
            ("<0xff>", 0xff),
            ("<0x0A0>", 0x0a),
            ("<0x>", 0),
            ("<0x 1>", 1),
            ("xyz", 0),
            ("<0x-1>", 0xff),
            ("<0xG1>", 0),
            ("<0x1G>", 1),
            ("<0xé>", 0),
        ] {
            assert_eq!(byte_of(text), byte, "{text}");
        }
    }
}
