use std::io::IsTerminal;
use std::time::Instant;

use clap::Args;
use serde_json::json;
use tinylab::eval::tasks::{self, parse_items, Task, TaskSpec};
use tinylab::eval::{accuracy, check_items, item_name, score_item, Condition, Order};

use super::{load, print_json, Common};

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    common: Common,
    /// Item file: one JSON object a line, {"context": "...", "choices": [...], "answer": K},
    /// or a JSON list of them; - reads standard input.
    #[arg(long, conflicts_with = "task")]
    items: Option<std::path::PathBuf>,
    /// A built-in generated task instead: name-index, middle-match or multiple-choice.
    #[arg(long)]
    task: Option<String>,
    /// Items to generate.
    #[arg(long, default_value_t = 100, conflicts_with = "items")]
    n: usize,
    #[arg(long, default_value_t = 1, conflicts_with = "items")]
    seed: u64,
    /// Names or items per list (name-index, middle-match); the task's default when absent.
    #[arg(long, conflicts_with = "items")]
    list_len: Option<usize>,
    /// Copies of the query: 1 (baseline), 2 or 3.
    #[arg(long, default_value_t = 1)]
    repeat_prompt: usize,
    /// question-first or options-first (multiple choice).
    #[arg(long, default_value = "question-first", conflicts_with = "items")]
    order: String,
    /// Put the query in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Generate the answer (greedy, 8 tokens) and read the pick from it, instead of comparing
    /// the choices' log-likelihoods.
    #[arg(long)]
    generate: bool,
}

pub fn run(a: EvalArgs) -> Result<(), String> {
    let order = match a.order.as_str() {
        "question-first" => Order::QuestionFirst,
        "options-first" => Order::OptionsFirst,
        other => {
            return Err(format!(
                "--order is question-first or options-first, not {other:?}"
            ))
        }
    };
    let condition = Condition {
        repeat: a.repeat_prompt,
        order,
        chat: a.chat,
        generate: a.generate,
    };
    condition.validate()?;
    let (items, source) = match (&a.items, &a.task) {
        (Some(path), None) => {
            let size = if path.as_os_str() == "-" {
                0
            } else {
                std::fs::metadata(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                    .len()
            };
            if size > tasks::MAX_ITEM_FILE_BYTES {
                return Err(format!(
                    "{}: {size} bytes; item files may have at most {} MB",
                    path.display(),
                    tasks::MAX_ITEM_FILE_BYTES >> 20
                ));
            }
            // Bounded again as it is read: a pipe or device has no length to check first.
            let bytes = super::read_small(path, tasks::MAX_ITEM_FILE_BYTES, "item files")?;
            let text =
                tasks::item_file_text(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            let items = parse_items(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            (items, json!({"file": path.display().to_string()}))
        }
        (None, Some(name)) => {
            let task = Task::from_id(name).ok_or_else(|| {
                let known: Vec<&str> = Task::ALL.iter().map(|t| t.id()).collect();
                format!("unknown task {name:?}; the tasks are {}", known.join(", "))
            })?;
            if order == Order::OptionsFirst && !task.has_options() {
                return Err(format!(
                    "--order options-first needs items with lettered options \
                     (multiple-choice); {} has none, so the order would change nothing",
                    task.id()
                ));
            }
            let mut spec = TaskSpec::new(task, a.n, a.seed);
            if let Some(len) = a.list_len {
                if task.has_options() {
                    return Err(format!(
                        "--list-len applies to name-index and middle-match; {} has four \
                         options a question",
                        task.id()
                    ));
                }
                spec.list_len = len;
            }
            (spec.generate()?, json!(spec))
        }
        _ => return Err("give --items FILE or --task NAME".into()),
    };
    let loaded = load(&a.common)?;
    let mut engine = loaded.engine;
    // An item file's line is named with the file, as its parse errors are.
    check_items(&engine, &items, &[condition]).map_err(|e| match &a.items {
        Some(path) => format!("{}: {e}", path.display()),
        None => e,
    })?;
    for w in tasks::item_warnings(&items) {
        say!("warning: {w}");
    }
    let t0 = Instant::now();
    let mut results = Vec::with_capacity(items.len());
    // With --json the items are not listed as they come, but a person watching a terminal
    // still sees how far it got (a long file takes minutes); a pipe or log gets nothing.
    let progress = a.common.json && std::io::stderr().is_terminal();
    for (i, item) in items.iter().enumerate() {
        let r = score_item(&mut engine, i, item, &condition).map_err(|e| {
            // The error on its own line, not after the progress line's count.
            if progress && i > 0 {
                say!();
            }
            format!("{}: {e}", item_name(i, item))
        })?;
        if progress {
            let done = i + 1;
            say_inline!(
                "\rscored {done} of {} items ({:.2} items/s){}",
                items.len(),
                done as f64 / t0.elapsed().as_secs_f64().max(1e-9),
                if done == items.len() { "\n" } else { "" }
            );
        }
        if !a.common.json {
            say!(
                "{}: pred {} (answer {}){}",
                item_name(i, item),
                r.pred,
                r.answer,
                if r.correct { "" } else { "  ✗" }
            );
        }
        results.push(r);
    }
    let seconds = t0.elapsed().as_secs_f64();
    let acc = accuracy(&results);
    let forward: usize = results.iter().map(|r| r.forward_tokens).sum();
    let unshared: usize = results
        .iter()
        .map(|r| r.forward_tokens_without_sharing)
        .sum();
    if a.common.json {
        print_json(&json!({
            "n": acc.n,
            "accuracy": acc.accuracy,
            "accuracy_norm": acc.accuracy_norm,
            "ci95": [acc.ci95.0, acc.ci95.1],
            "ci95_norm": [acc.ci95_norm.0, acc.ci95_norm.1],
            "chance": tinylab::eval::chance(&results),
            "condition": condition.id(),
            "source": source,
            "items_per_s": acc.n as f64 / seconds.max(1e-9),
            "forward_tokens": forward,
            "forward_tokens_without_sharing": unshared,
            "items": results,
            "model": engine.info(),
        }))
    } else {
        let chance = tinylab::eval::chance(&results)
            .map(|c| format!(" (chance {:.1}%)", c * 100.0))
            .unwrap_or_default();
        super::write_out(&format!(
            "{}: accuracy {:.1}% [{:.1}–{:.1}]{chance}, acc_norm {:.1}% over {} item{} ({:.2} \
             items/s; {forward} forward tokens, {unshared} without sharing the context)\n",
            condition.id(),
            acc.accuracy * 100.0,
            acc.ci95.0 * 100.0,
            acc.ci95.1 * 100.0,
            acc.accuracy_norm * 100.0,
            acc.n,
            if acc.n == 1 { "" } else { "s" },
            acc.n as f64 / seconds.max(1e-9),
        ))
    }
}
