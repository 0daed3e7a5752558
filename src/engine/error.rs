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
        "unsupported quantization type {0} (supported: {list})",
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
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("model computation failed: {0}")]
    Compute(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;

impl From<candle_core::Error> for EngineError {
    fn from(e: candle_core::Error) -> Self {
        EngineError::Compute(e.to_string())
    }
}
