use clap::Args;
use serde_json::json;

use super::{load, print_json, Common};

#[derive(Args)]
pub struct TokenizeArgs {
    #[command(flatten)]
    common: Common,
    /// Text to tokenize.
    #[arg(long)]
    text: String,
}

pub fn run(a: TokenizeArgs) -> Result<(), String> {
    let loaded = load(&a.common)?;
    let engine = &loaded.engine;
    let ids = engine.tokenize(&a.text).map_err(|e| e.to_string())?;
    let tokens: Vec<String> = ids
        .iter()
        .map(|&i| engine.tokenizer().token_display(i))
        .collect();
    if a.common.json {
        print_json(&json!({ "ids": ids, "tokens": tokens }))
    } else {
        for (i, t) in ids.iter().zip(&tokens) {
            println!("{i}\t{t:?}");
        }
        Ok(())
    }
}
