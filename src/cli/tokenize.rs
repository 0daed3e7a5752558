use clap::Args;
use serde_json::json;

use super::{print_json, read_model, Common};

#[derive(Args)]
pub struct TokenizeArgs {
    #[command(flatten)]
    common: Common,
    /// Text to tokenize.
    #[arg(long, allow_hyphen_values = true, conflicts_with = "text_file")]
    text: Option<String>,
    /// A UTF-8 file holding the text to tokenize (`-`: standard input), for long texts or
    /// ones holding a NUL; a byte-order mark that starts it is not read as text.
    #[arg(long)]
    text_file: Option<std::path::PathBuf>,
}

/// Builds the tokenizer only, as llama.cpp's `llama-tokenize` loads a vocabulary alone: the
/// file is read, but no weight is checked or prepared, so a vocabulary-only GGUF works, and
/// so does a model of an architecture the engine cannot run.
pub fn run(a: TokenizeArgs) -> Result<(), String> {
    a.common.checked_threads()?;
    let text = super::text_or_file(a.text, a.text_file.as_deref(), "tokenize")?;
    let path = &a.common.model;
    let bytes = read_model(path)?;
    let tokenizer = tinylab::engine::tokenizer_from_source(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let ids = tokenizer.encode(&text, false).map_err(|e| e.to_string())?;
    let tokens: Vec<String> = ids.iter().map(|&i| tokenizer.token_display(i)).collect();
    if a.common.json {
        print_json(&json!({ "ids": ids, "tokens": tokens }))
    } else {
        let lines: String = ids
            .iter()
            .zip(&tokens)
            .map(|(i, t)| format!("{i}\t{t:?}\n"))
            .collect();
        super::write_out(&lines)
    }
}
