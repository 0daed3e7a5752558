//! One pass over a GGUF's header before candle parses it, refusing what candle would accept
//! and then crash on, or hold at many times the file's size.
//!
//! candle's parser checks that every length fits the file, but it keeps the last of two equal
//! keys (so a second `general.alignment = 0` divides by zero), strips trailing NULs from keys
//! (so `general.alignment\0` is the same key), multiplies tensor dimensions without overflow
//! checks (a tensor of 2^62 `f32`s is 0 bytes in release), truncates 64-bit dimensions to 32
//! bits on wasm32, and reads a metadata array of bytes as 16-32-byte values (a 70 MB array is
//! a 2 GB `Vec` in the browser). This walk reads the same grammar and keeps only the keys'
//! and names' text. A file it cannot read to the end (cut short, an unknown value type) is
//! left to candle, which reads the same bytes and fails on them with its own message.

use std::collections::HashSet;
use std::io::Read;

use super::error::{EngineError, Result};
use super::iq4::IQuant;

/// Values in all of the header's arrays together. Gemma 3's vocabulary, the largest here, is
/// three arrays of 262,144; candle keeps each value in a 16-byte (wasm32) or 32-byte enum.
pub const MAX_ARRAY_VALUES: u64 = 1 << 23;
/// Bytes in all of the header's strings together (keys, values, tensor names). A real header
/// holds a few MB: Gemma 3's 262,144 token strings and its chat template.
pub const MAX_STRING_BYTES: u64 = 1 << 28;
/// Metadata entries and tensors at most. Real files have a few dozen entries and hundreds of
/// tensors (tens of thousands for the oldest mixtures of experts, one tensor per expert);
/// millions of tiny entries took half a minute and gigabytes to refuse.
pub const MAX_ENTRIES: u64 = 1 << 16;
/// Longest key or tensor name; real ones are under a hundred bytes.
const MAX_NAME_BYTES: u64 = 1 << 16;
/// Arrays of arrays this deep at most. The format allows nesting, real files use arrays of
/// scalars and strings only, and each level is a recursion here and in candle.
const MAX_DEPTH: usize = 8;

/// A tensor of a type candle does not read but the engine does (`iq4`): where the header
/// writes its type, so that candle's parser can be shown a stand-in there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IQuantTensor {
    pub name: String,
    pub kind: IQuant,
    /// Byte offset in the file of the tensor's u32 type field.
    pub type_at: u64,
}

/// Checks the header of the GGUF that `r` reads from its first byte (the magic is already
/// known to be right), and lists its tensors of the types `iq4` reads.
pub fn check(r: &mut impl Read) -> Result<Vec<IQuantTensor>> {
    let mut walk = Walk {
        r: Counted { r, at: 0 },
        array_values: 0,
        string_bytes: 0,
        unread_types: std::collections::BTreeMap::new(),
        unread_others: 0,
        iquants: Vec::new(),
    };
    match walk.header() {
        Ok(()) => Ok(walk.iquants),
        // Candle refuses the file next, so what was listed no longer matters.
        Err(Stop::LeftToCandle) => Ok(Vec::new()),
        Err(Stop::Refused(why)) => Err(EngineError::InvalidGguf(why)),
        Err(Stop::Unsupported(types)) => Err(EngineError::UnsupportedQuantization(types)),
    }
}

enum Stop {
    /// The bytes end early or hold something the format does not define: candle's parser,
    /// which runs next over the same bytes, refuses the file with its own message.
    LeftToCandle,
    Refused(String),
    /// Every weight type the file holds that no kernel reads, with how many tensors have it:
    /// candle names only the first it meets, which in a file called IQ4_XS can be the IQ4_NL
    /// that llama.cpp's quantizer fell back to for some tensors.
    Unsupported(String),
}

impl From<std::io::Error> for Stop {
    fn from(_: std::io::Error) -> Self {
        Stop::LeftToCandle
    }
}

type Step<T> = std::result::Result<T, Stop>;

fn refuse<T>(why: String) -> Step<T> {
    Err(Stop::Refused(why))
}

/// A reader that knows how far it has read.
struct Counted<'r, R> {
    r: &'r mut R,
    at: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.r.read(buf)?;
        self.at += n as u64;
        Ok(n)
    }
}

struct Walk<'r, R> {
    r: Counted<'r, R>,
    array_values: u64,
    string_bytes: u64,
    /// Tensors per ggml type that no kernel here reads (the first `MAX_NAMED_TYPES` types),
    /// and tensors of further such types.
    unread_types: std::collections::BTreeMap<u32, usize>,
    unread_others: usize,
    iquants: Vec<IQuantTensor>,
}

/// Types an unsupported-type refusal names one by one.
const MAX_NAMED_TYPES: usize = 4;

impl<R: Read> Walk<'_, R> {
    fn header(&mut self) -> Step<()> {
        let _magic = self.u32()?;
        // As llama.cpp: version 1 (counts of 32 bits, 2023's first files) is no longer read,
        // and a later version than 3 may lay the file out otherwise.
        match self.u32()? {
            2 | 3 => {}
            1 => {
                return refuse(
                    "the file is GGUF version 1, which llama.cpp no longer reads either (files \
                     since August 2023 are version 2 or 3): convert the model again with a \
                     current llama.cpp"
                        .into(),
                )
            }
            v => {
                return refuse(format!(
                    "the file is GGUF version {v}; versions 2 and 3 are read"
                ))
            }
        }
        let tensors = self.len()?;
        let kvs = self.len()?;
        for (n, what) in [(kvs, "metadata entries"), (tensors, "tensors")] {
            if n > MAX_ENTRIES {
                return refuse(format!(
                    "the header lists {n} {what}; at most {MAX_ENTRIES} are read (real models \
                     have far fewer)"
                ));
            }
        }
        let mut keys = HashSet::new();
        let mut alignment = None;
        for _ in 0..kvs {
            let key = self.name("metadata key")?;
            let ty = self.u32()?;
            if key == "general.alignment" {
                alignment = self.alignment(ty)?;
            } else {
                self.skip_value(ty, 0)?;
            }
            if !keys.insert(key.clone()) {
                // llama.cpp refuses this too; candle would keep the last, and which one a
                // tool honours decides what the file means.
                return refuse(format!("the metadata key `{key}` appears twice"));
            }
        }
        if let Some(a) = alignment {
            if a == 0 || !a.is_power_of_two() || a > 1 << 30 {
                return refuse(format!(
                    "`general.alignment` is {a}; it must be a power of two up to 2^30 (usually 32)"
                ));
            }
        }
        let mut names = HashSet::new();
        for _ in 0..tensors {
            let name = self.name("tensor name")?;
            self.tensor_info(&name)?;
            if !names.insert(name.clone()) {
                return refuse(format!("the tensor `{name}` appears twice"));
            }
        }
        let counted = |(&ty, &n): (&u32, &usize)| {
            let name = super::gguf::ggml_type_name(ty);
            format!("{name} in {n} tensor{}", if n == 1 { "" } else { "s" })
        };
        let mut types: Vec<String> = self.unread_types.iter().map(counted).collect();
        if self.unread_others > 0 {
            let n = self.unread_others;
            types.push(format!(
                "{n} tensor{} of other types",
                if n == 1 { "" } else { "s" }
            ));
        }
        // Types of 2024's ARM-repacked files, which llama.cpp dropped: it repacks Q4_0 and
        // IQ4_NL at load now, so the same weights stored plainly are what it and this read.
        let repacked = self
            .unread_types
            .keys()
            .any(|t| matches!(t, 31..=33 | 36..=38));
        let hint = if repacked {
            "; llama.cpp no longer reads these ARM-repacked types either: take the model's \
             plain Q4_0 or IQ4_NL file, the same weights, which llama.cpp now repacks at load"
        } else {
            ""
        };
        match types.split_last() {
            None => {}
            Some((one, [])) => return Err(Stop::Unsupported(format!("type {one}{hint}"))),
            Some((last, rest)) => {
                return Err(Stop::Unsupported(format!(
                    "types {} and {last}{hint}",
                    rest.join(", ")
                )))
            }
        }
        Ok(())
    }

    /// One tensor's dimensions, type and offset: its size must be a number, not an overflow.
    fn tensor_info(&mut self, name: &str) -> Step<()> {
        let n_dims = self.u32()?;
        if n_dims > 4 {
            return Err(Stop::LeftToCandle);
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.len()?);
        }
        let type_at = self.r.at;
        let ty = self.u32()?;
        let _offset = self.u64()?;
        if let Some(kind) = IQuant::from_ggml(ty) {
            self.iquants.push(IQuantTensor {
                name: name.to_string(),
                kind,
                type_at,
            });
        }
        let too_big = || {
            Stop::Refused(format!(
                "the tensor `{name}` has dimensions {dims:?}: more values than this build can \
                 address"
            ))
        };
        // In u64 and checked: candle multiplies the dimensions as `usize`, which wraps (to 0
        // for 2^62 values of 4 bytes) in release builds, and on wasm32 it first cuts each
        // dimension to 32 bits.
        let elems = dims
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64 && usize::try_from(n).is_ok())
            .ok_or_else(too_big)?;
        if dims.iter().any(|&d| usize::try_from(d).is_err()) {
            return Err(too_big());
        }
        match block_and_size(ty) {
            Some((block, size)) => {
                let bytes = (elems / block).checked_mul(size);
                if bytes.is_none_or(|b| usize::try_from(b).is_err()) {
                    return Err(too_big());
                }
            }
            // A few types named, the rest counted: a hostile header can give each of
            // millions of tensors its own type number, and the message is one line.
            None if self.unread_types.len() < MAX_NAMED_TYPES
                || self.unread_types.contains_key(&ty) =>
            {
                *self.unread_types.entry(ty).or_default() += 1
            }
            None => self.unread_others += 1,
        }
        Ok(())
    }

    /// The alignment, which GGUF stores as a u32. Candle took any other integer type and
    /// placed the tensors by the default of 32 for the rest, so a u64 alignment of 64 read
    /// every tensor from the wrong bytes; llama.cpp and gguf-py refuse such a file, and so
    /// does this.
    fn alignment(&mut self, ty: u32) -> Step<Option<u64>> {
        if ty != 4 {
            return refuse(format!(
                "`general.alignment` is stored as {}; GGUF stores it as a u32",
                type_name(ty)
            ));
        }
        Ok(Some(u64::from(self.u32()?)))
    }

    fn skip_value(&mut self, ty: u32, depth: usize) -> Step<()> {
        if let Some(n) = fixed_size(ty) {
            return self.skip(n);
        }
        match ty {
            8 => {
                let n = self.len()?;
                self.count_string(n)?;
                self.skip(n)
            }
            9 => {
                if depth >= MAX_DEPTH {
                    return refuse(format!(
                        "the metadata holds arrays nested more than {MAX_DEPTH} deep"
                    ));
                }
                let inner = self.u32()?;
                let count = self.len()?;
                self.array_values = self.array_values.saturating_add(count);
                if self.array_values > MAX_ARRAY_VALUES {
                    return refuse(format!(
                        "the metadata's arrays hold more than {MAX_ARRAY_VALUES} values \
                         (a real vocabulary needs under a million)"
                    ));
                }
                if let Some(n) = fixed_size(inner) {
                    return self.skip(count.checked_mul(n).ok_or(Stop::LeftToCandle)?);
                }
                for _ in 0..count {
                    self.skip_value(inner, depth + 1)?;
                }
                Ok(())
            }
            _ => Err(Stop::LeftToCandle),
        }
    }

    /// A key or tensor name as candle keeps it: trailing NULs dropped, bytes that are not
    /// UTF-8 replaced, so that two names candle would take as one are one here too.
    fn name(&mut self, what: &str) -> Step<String> {
        let n = self.len()?;
        if n > MAX_NAME_BYTES {
            return refuse(format!(
                "a {what} is {n} bytes long; at most {MAX_NAME_BYTES} are read"
            ));
        }
        self.count_string(n)?;
        let mut bytes = Vec::new();
        let got = self.r.by_ref().take(n).read_to_end(&mut bytes)?;
        if got as u64 != n {
            return Err(Stop::LeftToCandle);
        }
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn count_string(&mut self, n: u64) -> Step<()> {
        self.string_bytes = self.string_bytes.saturating_add(n);
        if self.string_bytes > MAX_STRING_BYTES {
            return refuse(format!(
                "the header's strings come to more than {} MB",
                MAX_STRING_BYTES >> 20
            ));
        }
        Ok(())
    }

    fn skip(&mut self, n: u64) -> Step<()> {
        let skipped = std::io::copy(&mut self.r.by_ref().take(n), &mut std::io::sink())?;
        if skipped != n {
            return Err(Stop::LeftToCandle);
        }
        Ok(())
    }

    /// A length or count (64 bits since version 2).
    fn len(&mut self) -> Step<u64> {
        self.u64()
    }

    fn u32(&mut self) -> Step<u32> {
        let mut b = [0u8; 4];
        self.r.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Step<u64> {
        let mut b = [0u8; 8];
        self.r.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// Bytes of one value of a fixed-size metadata type.
fn fixed_size(ty: u32) -> Option<u64> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// A metadata value type's name, as the GGUF specification writes it.
fn type_name(ty: u32) -> String {
    const NAMES: [&str; 13] = [
        "a u8", "an i8", "a u16", "an i16", "a u32", "an i32", "an f32", "a bool", "a string",
        "an array", "a u64", "an i64", "an f64",
    ];
    NAMES
        .get(ty as usize)
        .map_or_else(|| format!("type {ty}"), |n| n.to_string())
}

/// Values per block and bytes per block of the ggml types the engine reads: candle's, and the
/// two of `iq4` (the others are refused by name, `gguf::ggml_type_name`).
fn block_and_size(ty: u32) -> Option<(u64, u64)> {
    Some(match ty {
        0 => (1, 4),
        1 | 30 => (1, 2),
        2 => (32, 18),
        3 => (32, 20),
        6 => (32, 22),
        7 => (32, 24),
        8 => (32, 34),
        9 => (32, 36),
        10 => (256, 84),
        11 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210),
        15 => (256, 292),
        20 => (32, 18),
        23 => (256, 136),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType as T;

    /// The table's sizes are candle's, for every type candle reads.
    #[test]
    fn block_sizes_are_candles() {
        for (id, t) in [
            (0, T::F32),
            (1, T::F16),
            (30, T::BF16),
            (2, T::Q4_0),
            (3, T::Q4_1),
            (6, T::Q5_0),
            (7, T::Q5_1),
            (8, T::Q8_0),
            (9, T::Q8_1),
            (10, T::Q2K),
            (11, T::Q3K),
            (12, T::Q4K),
            (13, T::Q5K),
            (14, T::Q6K),
            (15, T::Q8K),
        ] {
            assert_eq!(
                block_and_size(id),
                Some((t.block_size() as u64, t.type_size() as u64)),
                "{t:?}"
            );
        }
        for kind in [IQuant::Iq4Nl, IQuant::Iq4Xs] {
            let (block, size) = kind.block_and_size();
            let id = [20, 23][kind as usize];
            assert_eq!(IQuant::from_ggml(id), Some(kind));
            assert_eq!(block_and_size(id), Some((block as u64, size as u64)));
            // The stand-in shown to candle has the same values per block.
            let stand_in = block_and_size(kind.stand_in()).unwrap();
            assert_eq!(stand_in.0, block as u64);
        }
        assert_eq!(block_and_size(16), None);
    }
}
