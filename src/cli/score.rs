use std::io::IsTerminal;
use std::time::Instant;

use clap::Args;

use super::{load, print_json, Common};

#[derive(Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    common: Common,
    /// Text to measure.
    #[arg(long, allow_hyphen_values = true, conflicts_with = "text_file")]
    text: Option<String>,
    /// A UTF-8 file holding the text to measure (`-`: standard input), for texts longer than a
    /// command line takes (about 128 KB); a byte-order mark that starts it is not read as text.
    #[arg(long)]
    text_file: Option<std::path::PathBuf>,
    /// Tokens per scoring window; longer texts are scored in half-overlapping windows.
    #[arg(long, default_value_t = tinylab::engine::SCORE_WINDOW)]
    window: usize,
}

pub fn run(a: ScoreArgs) -> Result<(), String> {
    let text = super::text_or_file(a.text, a.text_file.as_deref(), "measure")?;
    let loaded = load(&a.common)?;
    let mut engine = loaded.engine;
    let ids = engine
        .tokenizer()
        .encode_prompt(&text, false)
        .map_err(|e| e.to_string())?;
    // A person at a terminal sees how far a long text got; a pipe or log gets nothing.
    let progress = std::io::stderr().is_terminal();
    let mut shown = Instant::now();
    let mut watch = |done: usize, all: usize| {
        if progress && shown.elapsed().as_millis() >= 250 {
            shown = Instant::now();
            say_inline!("\rscored {done} of {all} tokens");
        }
    };
    let scored = engine.score_ids_watched(ids, a.window, &mut watch);
    if progress {
        say_inline!("\r\x1b[K");
    }
    let r = scored.map_err(|e| e.to_string())?;
    // A text longer than a window is scored in windows, so a later token saw at least half a
    // window of context rather than all of it: said, as the numbers depend on it.
    let window = a.window.min(engine.info().max_positions);
    let windowed = r.ids.len() > window;
    if a.common.json {
        let mut v = serde_json::to_value(&r).map_err(|e| e.to_string())?;
        if let Some(o) = v.as_object_mut() {
            o.insert("window".into(), window.into());
            o.insert("windowed".into(), windowed.into());
        }
        print_json(&v)
    } else {
        let mut lines: String = r
            .tokens
            .iter()
            .map(|t| {
                format!(
                    "{:>8} {:>9.3} {:>9.3} {:>7}  {:?}\n",
                    t.id, t.surprisal, t.entropy, t.rank, t.text
                )
            })
            .collect();
        let s = &r.summary;
        lines += &format!(
            "perplexity {:.3}  mean entropy {:.3}  mean surprisal {:.3}  GLTR {}/{}/{}/{}{}\n",
            s.perplexity,
            s.mean_entropy,
            s.mean_surprisal,
            s.gltr.top10,
            s.gltr.top100,
            s.gltr.top1000,
            s.gltr.rest,
            s.fast_detectgpt
                .map(|f| format!("  Fast-DetectGPT {f:.3}"))
                .unwrap_or_default()
        );
        if windowed {
            lines += &format!(
                "({} tokens, scored in windows of {window} that overlap by half: a token past \
                 the first window saw about half a window of context, not the whole text)\n",
                r.ids.len()
            );
        }
        super::write_out(&lines)
    }
}
