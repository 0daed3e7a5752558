use clap::Args;

use super::{load, print_json, Common};

#[derive(Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    common: Common,
    /// Text to measure.
    #[arg(long, allow_hyphen_values = true)]
    text: String,
    /// Tokens per scoring window; longer texts are scored in half-overlapping windows.
    #[arg(long, default_value_t = tinylab::engine::SCORE_WINDOW)]
    window: usize,
}

pub fn run(a: ScoreArgs) -> Result<(), String> {
    let loaded = load(&a.common)?;
    let mut engine = loaded.engine;
    let r = engine.score(&a.text, a.window).map_err(|e| e.to_string())?;
    if a.common.json {
        let v = serde_json::to_value(&r).map_err(|e| e.to_string())?;
        print_json(&v)
    } else {
        for t in &r.tokens {
            println!(
                "{:>8} {:>9.3} {:>9.3} {:>7}  {:?}",
                t.id, t.surprisal, t.entropy, t.rank, t.text
            );
        }
        let s = &r.summary;
        println!(
            "perplexity {:.3}  mean entropy {:.3}  mean surprisal {:.3}  GLTR {}/{}/{}/{}{}",
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
        Ok(())
    }
}
