//! Reading a GGUF from bytes: structural checks with clear errors, then candle's parser.
//!
//! candle's reader already refuses lying length fields; what it does not do is tell a user
//! *why* a file is unusable, so the checks here come first and speak plainly.

use std::collections::HashMap;
use std::io::Cursor;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;

use super::error::{EngineError, Result};

/// A parsed GGUF whose tensors can be read on demand from the original bytes.
pub struct GgufFile<'a> {
    pub content: Content,
    bytes: &'a [u8],
}

/// ggml type ids to names, for messages about types candle cannot load.
fn ggml_type_name(id: u32) -> String {
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
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => return format!("#{id}"),
    };
    format!("{name} (ggml type {id})")
}

impl<'a> GgufFile<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Err(EngineError::Empty);
        }
        if bytes.len() < 4 || &bytes[..4] != b"GGUF" {
            let shown: String = bytes
                .iter()
                .take(4)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ");
            return Err(EngineError::NotGguf(shown));
        }
        let mut cursor = Cursor::new(bytes);
        let content = Content::read(&mut cursor).map_err(|e| {
            let msg = e.to_string();
            let at = cursor.position();
            if msg.contains("fill whole buffer")
                || msg.contains("remaining")
                || msg.contains("UnexpectedEof")
            {
                EngineError::Truncated {
                    at: bytes.len() as u64,
                    what: format!("the header ends early ({msg}, read up to byte {at})"),
                }
            } else if let Some((_, rest)) = msg.split_once("unknown dtype for tensor ") {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                match digits.parse::<u32>() {
                    Ok(id) => EngineError::UnsupportedQuantization(ggml_type_name(id)),
                    Err(_) => EngineError::InvalidGguf(msg),
                }
            } else {
                EngineError::InvalidGguf(msg)
            }
        })?;
        let file = GgufFile { content, bytes };
        file.check_tensor_bounds()?;
        Ok(file)
    }

    /// Every tensor's data must lie inside the file; a truncated download is the common case.
    fn check_tensor_bounds(&self) -> Result<()> {
        let len = self.bytes.len() as u64;
        let mut worst: Option<(u64, &str)> = None;
        for (name, info) in &self.content.tensor_infos {
            let elems = info.shape.elem_count();
            let block = info.ggml_dtype.block_size();
            if block == 0 || !elems.is_multiple_of(block) {
                return Err(EngineError::InvalidGguf(format!(
                    "tensor `{name}` has {elems} elements, not a multiple of its block size {block}"
                )));
            }
            let size = (elems / block) as u64 * info.ggml_dtype.type_size() as u64;
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
        Ok(())
    }

    pub fn metadata(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    pub fn tensor(&self, name: &str) -> Result<QTensor> {
        if !self.has_tensor(name) {
            return Err(EngineError::MissingTensor(name.to_string()));
        }
        let mut cursor = Cursor::new(self.bytes);
        self.content
            .tensor(&mut cursor, name, &Device::Cpu)
            .map_err(|e| EngineError::InvalidGguf(format!("tensor `{name}`: {e}")))
    }

    /// Raw bytes and type of a tensor, for row-wise access without dequantising all of it.
    pub fn tensor_raw(&self, name: &str) -> Result<(GgmlDType, Vec<usize>, &'a [u8])> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| EngineError::MissingTensor(name.to_string()))?;
        let elems = info.shape.elem_count();
        let size = elems / info.ggml_dtype.block_size() * info.ggml_dtype.type_size();
        let start = (self.content.tensor_data_offset + info.offset) as usize;
        Ok((
            info.ggml_dtype,
            info.shape.dims().to_vec(),
            &self.bytes[start..start + size],
        ))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    pub fn req(&self, key: &str) -> Result<&Value> {
        self.get(key)
            .ok_or_else(|| EngineError::MissingMetadata(key.to_string()))
    }

    pub fn string(&self, key: &str) -> Result<String> {
        self.req(key)?
            .to_string()
            .cloned()
            .map_err(|_| EngineError::InvalidGguf(format!("`{key}` is not a string")))
    }

    pub fn u32(&self, key: &str) -> Result<u32> {
        as_u64(self.req(key)?)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| EngineError::InvalidGguf(format!("`{key}` is not a 32-bit integer")))
    }

    pub fn u32_opt(&self, key: &str) -> Option<u32> {
        self.get(key)
            .and_then(as_u64)
            .and_then(|v| u32::try_from(v).ok())
    }

    pub fn f32_opt(&self, key: &str) -> Option<f32> {
        match self.get(key)? {
            Value::F32(v) => Some(*v),
            Value::F64(v) => Some(*v as f32),
            v => as_u64(v).map(|v| v as f32),
        }
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
