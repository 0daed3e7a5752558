//! Reading a GGUF: structural checks with clear errors, then candle's parser.
//!
//! candle's reader already refuses lying length fields; what it does not do is tell a user
//! *why* a file is unusable, so the checks here come first and speak plainly.
//!
//! The bytes come from a [`ByteSource`]: a slice natively, JS memory in the browser, so a
//! model file is never copied whole into the wasm heap (which never shrinks: holding the file
//! there while the tensors are built out of it made the heap file + model at its peak).

use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};

use candle_core::quantized::gguf_file::{Content, TensorInfo, Value};
use candle_core::quantized::k_quants::{self as k, GgmlType};
use candle_core::quantized::{GgmlDType, QStorage, QTensor, QuantizedType};
use candle_core::Device;

use super::error::{EngineError, Result};
use super::iq4::IQuant;

/// Random access to a GGUF's bytes.
pub trait ByteSource {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` from `offset`; `offset + buf.len()` is at most `len()`.
    fn read_at(&self, offset: u64, buf: &mut [u8]);
}

impl ByteSource for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) {
        let start = offset as usize;
        buf.copy_from_slice(&self[start..start + buf.len()]);
    }
}

impl ByteSource for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) {
        self.as_slice().read_at(offset, buf)
    }
}

/// `Read + Seek` over a source, for candle's parser.
struct Reader<'a> {
    src: &'a dyn ByteSource,
    pos: u64,
    /// Bytes read differently from the source: each i-quant tensor's type field holds its
    /// stand-in (`iq4::IQuant::stand_in`), which candle's parser reads.
    patches: &'a [(u64, [u8; 4])],
}

impl Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.src.len().saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n > 0 {
            self.src.read_at(self.pos, &mut buf[..n]);
            let span = self.pos..self.pos + n as u64;
            // In file order (the header walk's): only those that end after this read's start
            // and begin before its end are looked at, so a million of them cost no more than
            // the reads themselves.
            let first = self.patches.partition_point(|(at, _)| at + 4 <= span.start);
            for (at, bytes) in self.patches[first..]
                .iter()
                .take_while(|(at, _)| *at < span.end)
            {
                for (k, b) in bytes.iter().enumerate() {
                    let p = at + k as u64;
                    if span.contains(&p) {
                        buf[(p - self.pos) as usize] = *b;
                    }
                }
            }
            self.pos += n as u64;
        }
        Ok(n)
    }
}

impl Seek for Reader<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let base = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => self.src.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = base.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}

/// `blocks` blocks of `T` from `offset`. `check_tensor_bounds` has made sure they are there.
fn read_blocks<T: GgmlType + Send + Sync + 'static>(
    (src, offset): (&dyn ByteSource, u64),
    blocks: usize,
) -> Result<Box<dyn QuantizedType>> {
    let bytes = blocks
        .checked_mul(std::mem::size_of::<T>())
        .ok_or_else(|| {
            EngineError::InvalidGguf(format!(
                "a tensor of {blocks} blocks is too large to address"
            ))
        })?;
    if offset.saturating_add(bytes as u64) > src.len() {
        return Err(EngineError::Truncated {
            at: src.len(),
            what: format!(
                "a tensor needs bytes up to {}",
                offset.saturating_add(bytes as u64)
            ),
        });
    }
    let mut data = vec![T::zeros(); blocks];
    // SAFETY: candle's block types (and f32, f16, bf16) are plain `repr(C)` data for which
    // every byte pattern is a value; the slice covers exactly the vector's initialized bytes.
    let raw = unsafe { std::slice::from_raw_parts_mut(data.as_mut_ptr() as *mut u8, bytes) };
    src.read_at(offset, raw);
    Ok(Box::new(data))
}

/// A parsed GGUF whose tensors are read on demand from its source.
pub struct GgufFile<'a> {
    pub content: Content,
    src: &'a dyn ByteSource,
    /// Entries of `tokenizer.ggml.tokens`, kept when the vocabulary itself is dropped.
    vocab_size: usize,
    /// Tensors whose type candle does not read (`iq4`): `content` shows them with a stand-in
    /// type of the same block length; their sizes and bytes are this file's business.
    iquants: HashMap<String, IQuant>,
}

/// ggml type ids to names, for messages about types candle cannot load.
/// The weight types the engine reads (`read_blocks` below, and `iq4`), for messages and the
/// page. The other i-quants (IQ1-IQ3), TQ* and MXFP4 are not among them.
pub const SUPPORTED_QUANTIZATIONS: &str =
    "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS";

pub(super) fn ggml_type_name(id: u32) -> String {
    let name = match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        31 => "Q4_0_4_4",
        32 => "Q4_0_4_8",
        33 => "Q4_0_8_8",
        34 => "TQ1_0",
        35 => "TQ2_0",
        36 => "IQ4_NL_4_4",
        37 => "IQ4_NL_4_8",
        38 => "IQ4_NL_8_8",
        39 => "MXFP4",
        _ => return format!("#{id}"),
    };
    format!("{name} (ggml type {id})")
}

/// A file's first (up to) four bytes: `NotGguf` with them in hex unless they are `GGUF`. Also
/// for callers that can refuse a wrong file before reading it whole (the CLI).
pub fn check_magic(first: &[u8]) -> Result<()> {
    if first == b"GGUF" {
        return Ok(());
    }
    let shown: Vec<String> = first.iter().map(|b| format!("{b:02x}")).collect();
    // What a wrong download usually is, from the same four bytes: a web server's page for a
    // file it does not have, or the pointer Git LFS leaves where the model was never pulled.
    let head = first.to_ascii_lowercase();
    let hint = if [&b"<!do"[..], b"<htm", b"<hea", b"<bod", b"<?xm"].contains(&head.as_slice()) {
        ": the start of a web page (HTML), which a server sends instead of a file it does not \
         have"
    } else if head == b"vers" {
        ": the start of a Git LFS pointer (\"version https://git-lfs…\"), not the model; the \
         real file was never fetched"
    } else {
        ""
    };
    Err(EngineError::NotGguf(format!("{}{hint}", shown.join(" "))))
}

impl<'a> GgufFile<'a> {
    pub fn parse(src: &'a dyn ByteSource) -> Result<Self> {
        let len = src.len();
        if len == 0 {
            return Err(EngineError::Empty);
        }
        let mut magic = vec![0u8; len.min(4) as usize];
        src.read_at(0, &mut magic);
        check_magic(&magic)?;
        let iquant_list = super::gguf_header::check(&mut BufReader::with_capacity(
            1 << 16,
            Reader {
                src,
                pos: 0,
                patches: &[],
            },
        ))?;
        let patches: Vec<(u64, [u8; 4])> = iquant_list
            .iter()
            .map(|t| (t.type_at, t.kind.stand_in().to_le_bytes()))
            .collect();
        // The header is thousands of small reads (Gemma 3 has 262k token strings); a buffer
        // keeps each from being a call into JS in the browser.
        let mut reader = BufReader::with_capacity(
            1 << 20,
            Reader {
                src,
                pos: 0,
                patches: &patches,
            },
        );
        let content = Content::read(&mut reader).map_err(|e| {
            let msg = super::error::candle_message(&e);
            let at = reader.stream_position().unwrap_or(0);
            if msg.contains("fill whole buffer")
                || msg.contains("remaining")
                || msg.contains("UnexpectedEof")
            {
                EngineError::Truncated {
                    at: len,
                    what: format!("the header ends early ({msg}, read up to byte {at})"),
                }
            } else if let Some((_, rest)) = msg.split_once("unknown dtype for tensor ") {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                match digits.parse::<u32>() {
                    Ok(id) => {
                        EngineError::UnsupportedQuantization(format!("type {}", ggml_type_name(id)))
                    }
                    Err(_) => EngineError::InvalidGguf(msg),
                }
            } else {
                EngineError::InvalidGguf(msg)
            }
        })?;
        let vocab_size = content
            .metadata
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
            .map_or(0, |v| v.len());
        let file = GgufFile {
            content,
            src,
            vocab_size,
            iquants: iquant_list.into_iter().map(|t| (t.name, t.kind)).collect(),
        };
        file.check_tensor_bounds()?;
        Ok(file)
    }

    /// Every tensor's data must lie inside the file; a truncated download is the common case.
    fn check_tensor_bounds(&self) -> Result<()> {
        let len = self.src.len();
        let mut worst: Option<(u64, &str)> = None;
        for (name, info) in &self.content.tensor_infos {
            let elems = info.shape.elem_count();
            let (block, type_size) = self.block_and_size(name, info);
            if block == 0 || !elems.is_multiple_of(block) {
                return Err(EngineError::InvalidGguf(format!(
                    "tensor `{name}` has {elems} elements, not a multiple of its block size {block}"
                )));
            }
            // `gguf_header` has refused sizes that overflow; checked again because a wrap
            // here would pass the bounds check below.
            let size = ((elems / block) as u64)
                .checked_mul(type_size as u64)
                .ok_or_else(|| {
                    EngineError::InvalidGguf(format!("tensor `{name}` is too large to address"))
                })?;
            let end = self
                .content
                .tensor_data_offset
                .saturating_add(info.offset)
                .saturating_add(size);
            if end > len && worst.is_none_or(|(w, _)| end > w) {
                worst = Some((end, name));
            }
        }
        if let Some((end, name)) = worst {
            return Err(EngineError::Truncated {
                at: len,
                what: format!("tensor `{name}` needs bytes up to {end}"),
            });
        }
        self.check_tensor_layout()
    }

    /// Each tensor's bytes start on the file's alignment and belong to it alone, as llama.cpp
    /// requires: an offset moved by a byte, two tensors on the same bytes or a type that reads
    /// into the next tensor all loaded before, and the model ran on bytes that were not its
    /// weights.
    fn check_tensor_layout(&self) -> Result<()> {
        // `gguf_header` has refused one that is not a u32 power of two.
        let align = match self.content.metadata.get("general.alignment") {
            Some(Value::U32(a)) => *a as u64,
            _ => 32,
        }
        .max(1);
        let mut spans: Vec<(u64, u64, &str)> = Vec::with_capacity(self.content.tensor_infos.len());
        for (name, info) in &self.content.tensor_infos {
            let (block, type_size) = self.block_and_size(name, info);
            let size = (info.shape.elem_count() / block.max(1)) as u64 * type_size as u64;
            if info.offset % align != 0 {
                return Err(EngineError::InvalidGguf(format!(
                    "tensor `{name}` starts at offset {}, not on the file's alignment of {align}",
                    info.offset
                )));
            }
            spans.push((info.offset, info.offset.saturating_add(size), name));
        }
        spans.sort_unstable();
        for w in spans.windows(2) {
            let ((_, end, a), (start, _, b)) = (w[0], w[1]);
            if start < end {
                return Err(EngineError::InvalidGguf(format!(
                    "tensors `{a}` and `{b}` overlap in the file (`{a}` runs to offset {end}, \
                     `{b}` starts at {start})"
                )));
            }
        }
        Ok(())
    }

    /// Values and bytes per block of a tensor's type as stored: an i-quant's own, not its
    /// stand-in's.
    fn block_and_size(&self, name: &str, info: &TensorInfo) -> (usize, usize) {
        match self.iquants.get(name) {
            Some(kind) => kind.block_and_size(),
            None => (info.ggml_dtype.block_size(), info.ggml_dtype.type_size()),
        }
    }

    /// The i-quant a tensor is stored in, if it is one (`tensor` returns it as Q8_0).
    pub fn iquant(&self, name: &str) -> Option<IQuant> {
        self.iquants.get(name).copied()
    }

    /// A tensor's type as stored, by its ggml name (`Q4_K`, `IQ4_XS`), as llama.cpp and model
    /// pages write it (candle's `{:?}` writes `Q4K`, which the page showed beside `IQ4_NL`).
    pub fn type_name(&self, name: &str, info: &TensorInfo) -> &'static str {
        if let Some(kind) = self.iquants.get(name) {
            return kind.name();
        }
        match info.ggml_dtype {
            GgmlDType::F32 => "F32",
            GgmlDType::F16 => "F16",
            GgmlDType::BF16 => "BF16",
            GgmlDType::Q4_0 => "Q4_0",
            GgmlDType::Q4_1 => "Q4_1",
            GgmlDType::Q5_0 => "Q5_0",
            GgmlDType::Q5_1 => "Q5_1",
            GgmlDType::Q8_0 => "Q8_0",
            GgmlDType::Q8_1 => "Q8_1",
            GgmlDType::Q2K => "Q2_K",
            GgmlDType::Q3K => "Q3_K",
            GgmlDType::Q4K => "Q4_K",
            GgmlDType::Q5K => "Q5_K",
            GgmlDType::Q6K => "Q6_K",
            GgmlDType::Q8K => "Q8_K",
        }
    }

    /// Entries in the tokenizer's vocabulary (0 when the file has none).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Drops the vocabulary arrays once the tokenizer is built from them: 27 MB of small
    /// strings for Gemma 3, freed before the weights load so the heap can reuse the room.
    pub fn drop_vocabulary(&mut self) {
        for key in [
            "tokenizer.ggml.tokens",
            "tokenizer.ggml.scores",
            "tokenizer.ggml.token_type",
            "tokenizer.ggml.merges",
        ] {
            self.content.metadata.remove(key);
        }
        self.content.metadata.shrink_to_fit();
    }

    pub fn metadata(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// One tensor, read from the source straight into its block vector. candle's own reader
    /// reads into a byte vector and then copies that into blocks, so a tensor existed twice
    /// while it loaded: 178 MB more at the peak for Gemma 3's embedding table, and wasm
    /// memory never shrinks.
    pub fn tensor(&self, name: &str) -> Result<QTensor> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| EngineError::MissingTensor(name.to_string()))?;
        let start = self.content.tensor_data_offset.saturating_add(info.offset);
        if let Some(&kind) = self.iquants.get(name) {
            return self.iquant_tensor(name, info, kind, start);
        }
        let blocks = info.shape.elem_count() / info.ggml_dtype.block_size().max(1);
        let src = (self.src, start);
        let storage: Box<dyn QuantizedType> = match info.ggml_dtype {
            GgmlDType::F32 => read_blocks::<f32>(src, blocks)?,
            // Half-precision files are rare at this size: candle's own reader does.
            GgmlDType::F16 | GgmlDType::BF16 => {
                let mut reader = Reader {
                    src: self.src,
                    pos: 0,
                    patches: &[],
                };
                return self
                    .content
                    .tensor(&mut reader, name, &Device::Cpu)
                    .map_err(|e| {
                        let e = super::error::candle_message(&e);
                        EngineError::InvalidGguf(format!("tensor `{name}`: {e}"))
                    });
            }
            GgmlDType::Q4_0 => read_blocks::<k::BlockQ4_0>(src, blocks)?,
            GgmlDType::Q4_1 => read_blocks::<k::BlockQ4_1>(src, blocks)?,
            GgmlDType::Q5_0 => read_blocks::<k::BlockQ5_0>(src, blocks)?,
            GgmlDType::Q5_1 => read_blocks::<k::BlockQ5_1>(src, blocks)?,
            GgmlDType::Q8_0 => read_blocks::<k::BlockQ8_0>(src, blocks)?,
            // Activation formats, which no product here takes as weights: a file holding
            // them loaded and then failed at its first token.
            GgmlDType::Q8_1 | GgmlDType::Q8K => {
                return Err(EngineError::UnsupportedQuantization(format!(
                    "type {} (tensor `{name}`)",
                    if info.ggml_dtype == GgmlDType::Q8_1 {
                        "Q8_1"
                    } else {
                        "Q8_K"
                    }
                )))
            }
            GgmlDType::Q2K => read_blocks::<k::BlockQ2K>(src, blocks)?,
            GgmlDType::Q3K => read_blocks::<k::BlockQ3K>(src, blocks)?,
            GgmlDType::Q4K => read_blocks::<k::BlockQ4K>(src, blocks)?,
            GgmlDType::Q5K => read_blocks::<k::BlockQ5K>(src, blocks)?,
            GgmlDType::Q6K => read_blocks::<k::BlockQ6K>(src, blocks)?,
        };
        QTensor::new(QStorage::Cpu(storage), info.shape.clone()).map_err(|e| {
            let e = super::error::candle_message(&e);
            EngineError::InvalidGguf(format!("tensor `{name}`: {e}"))
        })
    }

    /// An IQ4_NL or IQ4_XS tensor as Q8_0 blocks (`iq4`), converted a slice of blocks at a
    /// time so that the stored form never exists whole next to them.
    fn iquant_tensor(
        &self,
        name: &str,
        info: &TensorInfo,
        kind: IQuant,
        start: u64,
    ) -> Result<QTensor> {
        let (block, size) = kind.block_and_size();
        // A block never spans two rows, as ggml requires (the count of values alone, which
        // `check_tensor_bounds` checked, allowed rows of 128 in blocks of 256).
        let row = info.shape.dims().last().copied().unwrap_or(0);
        if !row.is_multiple_of(block) {
            return Err(EngineError::InvalidGguf(format!(
                "tensor `{name}` has rows of {row} values, not whole {} blocks of {block}",
                kind.name()
            )));
        }
        // `check_tensor_bounds` has made sure the bytes are in the file and the count is whole.
        let blocks = info.shape.elem_count() / block;
        // Twice the stored bytes: refused by name where the heap (4 GB at most in wasm) has no
        // room, rather than aborting the worker.
        let mut q8 = Vec::new();
        q8.try_reserve_exact(blocks * (block / 32)).map_err(|_| {
            EngineError::InvalidGguf(format!("tensor `{name}` is too large for this machine"))
        })?;
        self.read_in_slices(start, size, blocks, |_, chunk| {
            q8.extend(
                super::iq4::to_q8_0(kind, chunk)
                    .map_err(|why| EngineError::InvalidGguf(format!("tensor `{name}`: {why}")))?,
            );
            Ok(())
        })?;
        QTensor::new(QStorage::Cpu(Box::new(q8)), info.shape.clone()).map_err(|e| {
            let e = super::error::candle_message(&e);
            EngineError::InvalidGguf(format!("tensor `{name}`: {e}"))
        })
    }

    /// A 2-D Q8_0 tensor read straight into `q8_0::arrange_row`'s layout, a slice of rows at a
    /// time, so that the stored form never exists whole next to it; `None` for a tensor of
    /// another type or shape.
    pub fn q8_0_arranged(&self, name: &str) -> Result<Option<super::q8_0::Arranged>> {
        use super::q8_0;
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| EngineError::MissingTensor(name.to_string()))?;
        // Rows of no values are left to the stored path, whose product refuses them clearly.
        let (rows, cols) = match info.shape.dims() {
            [rows, cols]
                if info.ggml_dtype == GgmlDType::Q8_0 && *cols > 0 && cols % q8_0::BLOCK == 0 =>
            {
                (*rows, *cols)
            }
            _ => return Ok(None),
        };
        let blocks = rows.checked_mul(cols / q8_0::BLOCK);
        let too_large =
            || EngineError::InvalidGguf(format!("tensor `{name}` is too large for this machine"));
        // Both sizes fit in usize (32 bits on wasm), so `Arranged::new` cannot wrap.
        blocks
            .and_then(|b| b.checked_mul(q8_0::ARRANGED_BLOCK_BYTES))
            .ok_or_else(too_large)?;
        let row_bytes = cols / q8_0::BLOCK * q8_0::BLOCK_BYTES;
        let start = self.content.tensor_data_offset.saturating_add(info.offset);
        let end = rows
            .checked_mul(row_bytes)
            .map_or(u64::MAX, |b| start.saturating_add(b as u64));
        if end > self.src.len() {
            return Err(EngineError::Truncated {
                at: self.src.len(),
                what: format!("a tensor needs bytes up to {end}"),
            });
        }
        let mut out = q8_0::Arranged::new(rows, cols);
        self.read_in_slices(start, row_bytes, rows, |r, chunk| {
            out.set_rows(r, chunk);
            Ok(())
        })?;
        Ok(Some(out))
    }

    /// `count` units of `unit` bytes from `start` (inside the file), about 1 MB a read: few
    /// calls into the source (JS memory in the worker), little heap. `f` gets the index of each
    /// slice's first unit and the slice, whole units.
    fn read_in_slices(
        &self,
        start: u64,
        unit: usize,
        count: usize,
        mut f: impl FnMut(usize, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let per_read = (1 << 20) / unit.max(1) + 1;
        let mut buf = vec![0u8; per_read.min(count) * unit];
        let mut done = 0;
        while done < count {
            let n = per_read.min(count - done);
            let chunk = &mut buf[..n * unit];
            self.src.read_at(start + (done * unit) as u64, chunk);
            f(done, chunk)?;
            done += n;
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    pub fn req(&self, key: &str) -> Result<&Value> {
        self.get(key)
            .ok_or_else(|| EngineError::MissingMetadata(key.to_string()))
    }

    pub fn string(&self, key: &str) -> Result<String> {
        self.string_opt(key)?
            .ok_or_else(|| EngineError::MissingMetadata(key.to_string()))
    }

    /// As `u32_opt`, for a string.
    pub fn string_opt(&self, key: &str) -> Result<Option<String>> {
        self.get(key)
            .map(|v| {
                v.to_string()
                    .cloned()
                    .map_err(|_| EngineError::InvalidGguf(format!("`{key}` is not a string")))
            })
            .transpose()
    }

    pub fn u32(&self, key: &str) -> Result<u32> {
        as_u64(self.req(key)?)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| EngineError::InvalidGguf(format!("`{key}` is not a 32-bit integer")))
    }

    /// An optional key: `None` when absent, an error when present but not a 32-bit integer
    /// (a value of the wrong type used to fall back to the default without a word, and the
    /// model then ran with other numbers than its file says).
    pub fn u32_opt(&self, key: &str) -> Result<Option<u32>> {
        self.get(key)
            .map(|v| {
                as_u64(v)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| {
                        EngineError::InvalidGguf(format!("`{key}` is not a 32-bit integer"))
                    })
            })
            .transpose()
    }

    /// As `u32_opt`, but llama.cpp also takes a list with one value per layer
    /// (`get_key_or_arr`): a list whose values are all one number is that number; layers of
    /// different shapes are refused by name.
    pub fn u32_per_layer(&self, key: &str, n_layer: usize) -> Result<Option<u32>> {
        let Some(Value::Array(list)) = self.get(key) else {
            return self.u32_opt(key);
        };
        if list.len() != n_layer {
            return Err(EngineError::InvalidGguf(format!(
                "`{key}` lists {} values for {n_layer} layers",
                list.len()
            )));
        }
        let values: Option<Vec<u32>> = list
            .iter()
            .map(|v| as_u64(v).and_then(|v| u32::try_from(v).ok()))
            .collect();
        match values.as_deref() {
            Some([first, rest @ ..]) if rest.iter().all(|v| v == first) => Ok(Some(*first)),
            Some([_, ..]) => Err(EngineError::InvalidGguf(format!(
                "`{key}` gives its layers different values; TinyLab runs models whose layers \
                 share one shape"
            ))),
            _ => Err(EngineError::InvalidGguf(format!(
                "`{key}` is not a 32-bit integer or a list of them"
            ))),
        }
    }

    /// As `u32_opt`, for a number.
    pub fn f32_opt(&self, key: &str) -> Result<Option<f32>> {
        self.get(key)
            .map(|v| match v {
                Value::F32(v) => Ok(*v),
                Value::F64(v) => Ok(*v as f32),
                v => as_u64(v)
                    .map(|v| v as f32)
                    .ok_or_else(|| EngineError::InvalidGguf(format!("`{key}` is not a number"))),
            })
            .transpose()
    }

    pub fn bool_opt(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            v => as_u64(v).map(|v| v != 0),
        }
    }

    pub fn string_array(&self, key: &str) -> Result<Vec<String>> {
        let arr = self
            .req(key)?
            .to_vec()
            .map_err(|_| EngineError::InvalidGguf(format!("`{key}` is not an array")))?;
        arr.iter()
            .map(|v| {
                v.to_string()
                    .cloned()
                    .map_err(|_| EngineError::InvalidGguf(format!("`{key}` holds a non-string")))
            })
            .collect()
    }

    pub fn f32_array_opt(&self, key: &str) -> Option<Vec<f32>> {
        let arr = self.get(key)?.to_vec().ok()?;
        arr.iter()
            .map(|v| match v {
                Value::F32(x) => Some(*x),
                Value::F64(x) => Some(*x as f32),
                _ => None,
            })
            .collect()
    }

    pub fn i32_array_opt(&self, key: &str) -> Option<Vec<i32>> {
        let arr = self.get(key)?.to_vec().ok()?;
        arr.iter()
            .map(|v| match v {
                Value::I32(x) => Some(*x),
                other => as_u64(other).map(|x| x as i32),
            })
            .collect()
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::U8(x) => Some(*x as u64),
        Value::U16(x) => Some(*x as u64),
        Value::U32(x) => Some(*x as u64),
        Value::U64(x) => Some(*x),
        Value::I8(x) => u64::try_from(*x).ok(),
        Value::I16(x) => u64::try_from(*x).ok(),
        Value::I32(x) => u64::try_from(*x).ok(),
        Value::I64(x) => u64::try_from(*x).ok(),
        _ => None,
    }
}

/// A GGUF of `tensors` and a name, for the engine's unit tests.
#[cfg(test)]
pub(crate) fn test_file(tensors: &[(&str, &QTensor)]) -> Vec<u8> {
    let md = Value::String("test".into());
    let mut buf = std::io::Cursor::new(Vec::new());
    candle_core::quantized::gguf_file::write(&mut buf, &[("general.name", &md)], tensors)
        .expect("a GGUF in memory");
    buf.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    /// A Q8_0 matrix is read into `q8_0::arrange_row`'s layout in slices of rows (here 200
    /// rows of 6,400 values: 155 rows, about 1 MB, then 45); other types and rows of no
    /// values give `None`, a name the file lacks an error. (A file too short for its tensors
    /// is refused by `parse`.)
    #[test]
    fn q8_0_arranged_reads_the_layout_in_slices() {
        use super::super::q8_0;
        let (rows, cols) = (200, 32 * 200);
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 300.0)
            .collect();
        let t = Tensor::from_vec(x, (rows, cols), &Device::Cpu).unwrap();
        let q8 = QTensor::quantize(&t, GgmlDType::Q8_0).unwrap();
        let q41 = QTensor::quantize(&t, GgmlDType::Q4_1).unwrap();
        let empty = QTensor::quantize(
            &Tensor::zeros((4, 0), candle_core::DType::F32, &Device::Cpu).unwrap(),
            GgmlDType::Q8_0,
        )
        .unwrap();
        let bytes = test_file(&[("a", &q8), ("b", &q41), ("e", &empty)]);
        let src: &[u8] = &bytes;
        let g = GgufFile::parse(&src).unwrap();
        let a = g.q8_0_arranged("a").unwrap().unwrap();
        let mut want = q8_0::Arranged::new(rows, cols);
        want.set_rows(0, &q8.data().unwrap());
        assert_eq!((a.rows(), a.cols()), (rows, cols));
        assert_eq!(a.bytes(), want.bytes());
        assert!(g.q8_0_arranged("b").unwrap().is_none());
        assert!(g.q8_0_arranged("e").unwrap().is_none());
        assert!(matches!(
            g.q8_0_arranged("c"),
            Err(EngineError::MissingTensor(_))
        ));
    }
}
