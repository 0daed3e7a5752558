use std::time::Instant;

use clap::Args;
use serde_json::json;
use tinylab::engine::{explicit_f64, GenerateRequest, SamplingParams};
use tinylab::timed_run::TimedRun;

use super::{load, print_json, Common};

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    common: Common,
    /// The prompt (or use --messages).
    #[arg(
        long,
        default_value = "",
        allow_hyphen_values = true,
        conflicts_with = "prompt_file"
    )]
    prompt: String,
    /// A UTF-8 file holding the prompt (`-`: standard input), as llama.cpp's `--file`; a
    /// byte-order mark that starts it is not read as text.
    #[arg(long)]
    prompt_file: Option<std::path::PathBuf>,
    /// A conversation as a JSON file: `[{"role": "system"|"user"|"assistant", "content":
    /// "..."}, ...]`, ending with a user message. It is rendered with the chat template
    /// (oldest turns left out if it does not fit) and replaces --prompt.
    #[arg(long)]
    messages: Option<std::path::PathBuf>,
    /// Apply the GGUF's chat template to the prompt as one user message.
    #[arg(long)]
    chat: bool,
    /// Send the prompt twice (prompt repetition).
    #[arg(long)]
    repeat_prompt: bool,
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// 0 disables.
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep generating past EOS.
    #[arg(long)]
    ignore_eos: bool,
    /// Output token ids to take as given before sampling, comma-separated: a fork of an
    /// earlier run (its ids up to a point, then another token), as the page's forks make.
    /// The output holds every given token and at least one more: --max-tokens counts them
    /// all, and is raised to that when it is lower. A given end-of-generation token ends the
    /// run there, as a drawn one does (and is not in the output); it must be the last given.
    #[arg(long, value_delimiter = ',')]
    force_ids: Vec<u32>,
    /// Text to take as given after --force-ids, tokenized as plain text (a fork to a typed
    /// continuation, as the page's inspector makes).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    force_text: String,
}

/// Most bytes of a `--messages` file: a conversation far longer than any context.
const MAX_MESSAGES_BYTES: u64 = 16 << 20;

pub fn run(mut a: GenerateArgs) -> Result<(), String> {
    if let Some(path) = &a.prompt_file {
        a.prompt = super::read_text(path, "a prompt file")?;
    }
    let messages = match &a.messages {
        None => Vec::new(),
        Some(path) => {
            let bytes = super::read_small(path, MAX_MESSAGES_BYTES, "a messages file")?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("{}: not UTF-8 text", path.display()))?;
            let list: Vec<tinylab::engine::chat::Message> =
                serde_json::from_str(&text).map_err(|e| {
                    format!(
                        "{}: not a list of {{\"role\", \"content\"}} messages ({e})",
                        path.display()
                    )
                })?;
            if list.is_empty() {
                return Err(format!("{}: the list holds no messages", path.display()));
            }
            // The conversation is the whole prompt: a flag that shapes a prompt would be
            // silently ignored.
            for (set, flag) in [
                (!a.prompt.is_empty(), "--prompt or --prompt-file"),
                (a.chat, "--chat"),
                (a.repeat_prompt, "--repeat-prompt"),
            ] {
                if set {
                    return Err(format!(
                        "{flag} cannot go with --messages: the conversation is the prompt, \
                         rendered with the chat template"
                    ));
                }
            }
            list
        }
    };
    let loaded = load(&a.common)?;
    let mut engine = loaded.engine;
    let req = GenerateRequest {
        prompt: a.prompt,
        chat: a.chat,
        repeat_prompt: a.repeat_prompt,
        max_tokens: a.max_tokens,
        ignore_eos: a.ignore_eos,
        sampling: SamplingParams {
            temperature: a.temperature,
            top_k: a.top_k,
            top_p: a.top_p,
            min_p: a.min_p,
            repeat_penalty: a.repeat_penalty,
            seed: a.seed,
            ..SamplingParams::default()
        },
        forced: a.force_ids,
        forced_text: a.force_text,
        messages,
        reuse_cache: false,
        reuse_at_most: None,
    };
    let clock = Instant::now();
    let now_ms = || clock.elapsed().as_secs_f64() * 1000.0;
    let mut run = TimedRun::start(&mut engine, &req, &now_ms).map_err(|e| e.to_string())?;
    let mut tokens = Vec::new();
    let mut text = String::new();
    while let Some((tok, _)) = run.step(&mut engine).map_err(|e| e.to_string())? {
        text.push_str(&tok.piece);
        if !a.common.json {
            // Streamed as it comes; a reader gone stops the run.
            super::write_out(&tok.piece)?;
        }
        tokens.push(tok);
    }
    let (end, g) = run.finish();
    text.push_str(&end.tail);
    if !a.common.json {
        super::write_out(&end.tail)?;
    }
    let timing = end.timing;
    // None when there was nothing to time (no prompt forward, fewer than two tokens).
    let decode_tps = timing.decode_tokens_per_s();
    let prefill_tps = timing.prefill_tokens_per_s();
    let summary = g.summary();
    let (stop, context_full) = end.reason.reported();
    let measured = |v: f64| {
        if summary.count > 0 {
            explicit_f64::value(v)
        } else {
            serde_json::Value::Null
        }
    };
    if a.common.json {
        print_json(&json!({
            "prompt_ids": g.prompt_ids,
            "left_out_messages": g.left_out,
            "ids": g.generated,
            "text": text,
            "tokens": tokens,
            "stop_reason": stop,
            "context_full": context_full,
            "prefill_tokens_per_s": prefill_tps,
            "decode_tokens_per_s": decode_tps,
            "time_to_first_token_ms": timing.first_token_ms,
            "prefill_ms": timing.prefill_ms,
            "decode_forwards": timing.decode_forwards,
            "load_ms": loaded.load_seconds * 1000.0,
            "seed": a.seed,
            // No token, no mean: null rather than a perplexity of 0 (it is at least 1). A
            // non-finite one is written as `score` writes it ("inf", "NaN"), not as null.
            "mean_entropy": measured(summary.mean_entropy),
            "mean_surprisal": measured(summary.mean_surprisal),
            "perplexity": measured(summary.perplexity),
            "gltr": summary.gltr,
            "model": engine.info(),
        }))
    } else {
        super::write_out("\n")?;
        let figures = if summary.count > 0 {
            format!(
                "mean entropy {:.3} nats, perplexity {:.2}",
                summary.mean_entropy, summary.perplexity
            )
        } else {
            "no tokens to measure".into()
        };
        let rate = |r: Option<f64>| r.map_or("n/a".into(), |r| format!("{r:.1}"));
        // `length` as the JSON says, but a run cut by the context is not one that reached
        // --max-tokens: the line says which.
        let stop = if context_full {
            format!(
                "{stop} (context full at {} positions; --context sets it)",
                g.prompt_ids.len() + tokens.len()
            )
        } else {
            stop.to_string()
        };
        say!(
            "[{} prompt + {} generated tokens, stop: {stop}; prefill {} tok/s, decode {} tok/s; \
             {figures}]",
            g.prompt_ids.len(),
            tokens.len(),
            rate(prefill_tps),
            rate(decode_tps),
        );
        Ok(())
    }
}
