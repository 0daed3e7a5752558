//! Evaluation: log-likelihoods with the context's KV cache shared equal a full recompute, the
//! item file's errors, the CLI's JSON, and per-choice log-likelihoods against llama.cpp.

mod common;

use common::tiny::{temp_file, tiny_gguf};
use common::{catalog, json_of, load};
use serde_json::Value;
use tinylab::engine::Engine;
use tinylab::eval::tasks::{Task, TaskSpec};
use tinylab::eval::{score_item, Condition, Item, Order};

/// The log-likelihood of `full[n_ctx..]` from scoring the whole sequence in one pass.
fn recomputed(e: &mut Engine, full: &[u32], n_ctx: usize) -> f64 {
    let r = e.score_ids(full.to_vec(), 4096).unwrap();
    // tokens[i] predicts full[i + 1].
    r.tokens[n_ctx - 1..].iter().map(|t| -t.surprisal).sum()
}

fn file_item(context: &str, choices: &[&str], answer: usize) -> Item {
    Item {
        body: String::new(),
        question: String::new(),
        options: Vec::new(),
        choices: choices.iter().map(|c| c.to_string()).collect(),
        answer,
        context: Some(context.into()),
        line: None,
    }
}

#[test]
fn shared_context_equals_full_recompute() {
    for arch in ["llama", "qwen2", "gemma3"] {
        let mut e = Engine::from_bytes(&tiny_gguf(arch, 3), 256).unwrap();
        // The last case ends its context in a space, so the request's tokens part from the
        // context's inside it and the shared cache must be run on from there.
        for item in [
            file_item("hello world hello", &["world", "hell", "lo he"], 0),
            file_item("he said hello ", &["world", "hello", "h"], 1),
        ] {
            for chat in [false, true] {
                let c = Condition {
                    chat,
                    ..Condition::default()
                };
                let r = score_item(&mut e, 0, &item, &c).unwrap();
                let ctx = item.context(&c);
                let ctx_ids = if chat {
                    e.prompt_ids(&ctx, true, false).unwrap()
                } else {
                    e.tokenizer().encode_prompt(&ctx, false).unwrap()
                };
                for (k, choice) in item.choices.iter().enumerate() {
                    let full = if chat {
                        let mut f = ctx_ids.clone();
                        f.extend(e.tokenize(choice).unwrap());
                        f
                    } else {
                        e.tokenizer()
                            .encode_prompt(&format!("{ctx} {choice}"), false)
                            .unwrap()
                    };
                    let want = recomputed(&mut e, &full, ctx_ids.len());
                    let got = r.loglik[k];
                    assert!(
                        (got - want).abs() < 1e-6 * (1.0 + want.abs()),
                        "{arch} chat={chat} {ctx:?} + {choice:?}: {got} vs {want}"
                    );
                    assert_eq!(r.tokens[k], full.len() - ctx_ids.len());
                }
                assert!(r.forward_tokens <= r.forward_tokens_without_sharing);
            }
        }
    }
}

/// As above, on the real models, whose 4- and 5-bit weights and 8-bit activations make a
/// last-bit difference a visible one: a choice of two tokens ran one row alone (decoding's
/// kernels), and its log-likelihood was up to 0.22 nats from the same text scored whole
/// (SmolLM2, " green sky"), where one token or three agreed to 1e-5. The contexts that end in
/// a space part from the request one token before their end.
#[test]
fn shared_context_equals_full_recompute_on_real_models() {
    let items = [
        file_item(
            "The sky is ",
            &["blue", "\nblue", "green sky", "-red", "x"],
            0,
        ),
        file_item(
            "My favourite colour is",
            &["blue", "dark green", "red", "purple and orange", "sky blue"],
            0,
        ),
        file_item("Q: 2+2?\nA:\n", &["4", " 4", "four", "4.0"], 0),
    ];
    for m in catalog() {
        let mut e = load(&m);
        let c = Condition::default();
        let mut two_tokens = 0;
        for item in &items {
            let r = score_item(&mut e, 0, item, &c).unwrap();
            let ctx = item.context(&c);
            let ctx_ids = e.tokenizer().encode_prompt(&ctx, false).unwrap();
            for (k, choice) in item.choices.iter().enumerate() {
                let full = e
                    .tokenizer()
                    .encode_prompt(&format!("{ctx} {choice}"), false)
                    .unwrap();
                let want = recomputed(&mut e, &full, ctx_ids.len());
                let got = r.loglik[k];
                assert!(
                    (got - want).abs() < 1e-4,
                    "{}: {ctx:?} + {choice:?} ({} tokens): {got} vs {want}",
                    m.id,
                    r.tokens[k]
                );
                two_tokens += usize::from(r.tokens[k] == 2);
            }
        }
        assert!(
            two_tokens >= 2,
            "{}: only {two_tokens} two-token choices",
            m.id
        );
        // A context of one token (an empty context's BOS or EOS): its row ran alone too.
        let full = e
            .tokenizer()
            .encode_prompt("The sky is blue today", false)
            .unwrap();
        for cut in [1, full.len() - 2] {
            let got = e
                .logliks(&full[..cut], std::slice::from_ref(&full))
                .unwrap()
                .choices[0]
                .loglik;
            let want = recomputed(&mut e, &full, cut);
            assert!(
                (got - want).abs() < 1e-4,
                "{}: context of {cut}: {got} vs {want}",
                m.id
            );
        }
    }
}

#[test]
fn cli_eval_reports_items_and_names_bad_lines() {
    let model = temp_file("tiny-eval.gguf", &tiny_gguf("llama", 2));
    let model = model.to_str().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tinylab"))
            .args(["eval", "--model", model])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--task", "name-index", "--n", "5", "--seed", "3", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["n"], 5);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let correct = items.iter().filter(|i| i["correct"] == true).count();
    assert!((v["accuracy"].as_f64().unwrap() - correct as f64 / 5.0).abs() < 1e-12);
    let ci = v["ci95"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() <= v["accuracy"].as_f64().unwrap());
    // Five names to pick from on every item.
    assert_eq!(v["chance"].as_f64(), Some(0.2));
    for it in items {
        assert_eq!(it["loglik"].as_array().unwrap().len(), 5);
        for key in [
            "index",
            "answer",
            "pred",
            "pred_norm",
            "correct",
            "correct_norm",
        ] {
            assert!(!it[key].is_null(), "{key}");
        }
    }
    // The same task, n and seed give the same items (and so the same answers).
    let again: Value = serde_json::from_slice(
        &run(&["--task", "name-index", "--n", "5", "--seed", "3", "--json"]).stdout,
    )
    .unwrap();
    assert_eq!(v["items"], again["items"]);

    let bad = temp_file(
        "bad-items.jsonl",
        b"{\"context\": \"Q\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n{\"context\": \"Q\", \"choices\": [\"a\", \"b\"]}\n",
    );
    let out = run(&["--items", bad.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2: missing field `answer`"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let out = run(&["--task", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("name-index"));
}

/// Per-choice log-likelihoods against llama.cpp on the fixture's items (scripts/
/// llama_eval_fixtures.py): within llama.cpp's own batch-versus-one-at-a-time spread (at least
/// 0.1 nats per choice on average), and the same pick except where llama.cpp's own best two
/// are closer than that spread's largest move.
#[test]
fn logliks_match_llama_cpp() {
    let root = common::root();
    let items: Vec<Item> = tinylab::eval::tasks::parse_items(
        &std::fs::read_to_string(root.join("tests/fixtures/eval-items.jsonl")).unwrap(),
    )
    .unwrap();
    for m in catalog() {
        let path = root.join(format!("tests/fixtures/eval-{}.json", m.id));
        let fx: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(fx["model"].as_str(), Some(m.id.as_str()));
        let mut e = load(&m);
        let noise = &fx["self_noise"];
        let mae_limit = (2.0 * noise["loglik_mae"].as_f64().unwrap()).max(0.1);
        let tie = noise["loglik_max"].as_f64().unwrap().max(0.25);
        let (mut sum, mut count, mut same_pick) = (0.0, 0, 0);
        for (i, (item, want)) in items
            .iter()
            .zip(fx["items"].as_array().unwrap())
            .enumerate()
        {
            let r = score_item(&mut e, i, item, &Condition::default()).unwrap();
            let want_ll: Vec<f64> = want["choices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["loglik"].as_f64().unwrap())
                .collect();
            for (k, c) in want["choices"].as_array().unwrap().iter().enumerate() {
                assert_eq!(
                    r.tokens[k],
                    c["continuation_ids"].as_array().unwrap().len(),
                    "{} item {i} choice {k}: continuation tokens",
                    m.id
                );
                sum += (r.loglik[k] - want_ll[k]).abs();
                count += 1;
            }
            let want_pred = want["pred"].as_u64().unwrap() as usize;
            if r.pred == want_pred {
                same_pick += 1;
            } else {
                let mut sorted = want_ll.clone();
                sorted.sort_by(|a, b| b.total_cmp(a));
                assert!(
                    sorted[0] - sorted[1] < tie,
                    "{} item {i}: picks {} where llama.cpp clearly picks {want_pred} ({want_ll:?} vs {:?})",
                    m.id,
                    r.pred,
                    r.loglik
                );
            }
        }
        let mae = sum / count as f64;
        eprintln!(
            "{}: per-choice loglik MAE {mae:.4} (limit {mae_limit:.4}), same pick {same_pick}/{}",
            m.id,
            items.len()
        );
        assert!(mae < mae_limit, "{}: loglik MAE {mae}", m.id);
    }
}

/// Name-index on SmolLM2 through the CLI's code path: every choice gets a finite, negative
/// log-likelihood, under both conditions, and repetition makes the context longer.
#[test]
fn name_index_on_a_real_model() {
    let m = catalog()
        .into_iter()
        .find(|m| m.id == "smollm2-135m-instruct-q4_1")
        .unwrap();
    let mut e = load(&m);
    let items = TaskSpec::new(Task::NameIndex, 12, 5).generate().unwrap();
    let mut correct = [0, 0];
    for (i, item) in items.iter().enumerate() {
        for (k, repeat) in [1, 2].into_iter().enumerate() {
            let c = Condition {
                repeat,
                order: Order::QuestionFirst,
                chat: false,
                generate: false,
            };
            let r = score_item(&mut e, i, item, &c).unwrap();
            assert!(r.loglik.iter().all(|l| l.is_finite() && *l < 0.0));
            assert_eq!(r.loglik.len(), 5);
            correct[k] += usize::from(r.correct);
        }
    }
    // SmolLM2 is weak at this (it favours the first name); the figures are for the log.
    eprintln!(
        "name-index, 12 items: baseline {} correct, repeated {}",
        correct[0], correct[1]
    );
    let once = items[0].context(&Condition::default()).len();
    let twice = items[0]
        .context(&Condition {
            repeat: 2,
            ..Condition::default()
        })
        .len();
    assert!(twice > once + once / 2);
}

/// The generative condition: a greedy answer of at most `GENERATE_TOKENS` tokens, read by the
/// stated rule, the same through the CLI.
#[test]
fn generated_answers_follow_the_extraction_rule() {
    let bytes = tiny_gguf("llama", 4);
    let mut e = Engine::from_bytes(&bytes, 256).unwrap();
    let items = TaskSpec::new(Task::MultipleChoice, 6, 2)
        .generate()
        .unwrap();
    let c = Condition::from_id("generate").unwrap();
    for (i, item) in items.iter().enumerate() {
        let r = score_item(&mut e, i, item, &c).unwrap();
        let out = r.output.as_deref().unwrap();
        let want = tinylab::eval::extract_answer(out, &item.choices).unwrap_or(item.choices.len());
        assert_eq!(r.pred, want, "{out:?}");
        assert!(r.loglik.is_empty());
        assert!(r.forward_tokens > 0);
    }
    let model = temp_file("tiny-gen.gguf", &bytes);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tinylab"))
        .args([
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--task",
            "multiple-choice",
        ])
        .args(["--n", "6", "--seed", "2", "--generate", "--json"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["condition"], "generate");
    assert!(v["items"][0]["output"].is_string());
}

/// What a user's item file and options meet before any item is scored: every item is checked
/// to fit (a bad one at the end no longer costs the run before it, and is named by its file
/// line), files written by other tools are read, and options that would change nothing are
/// refused rather than recorded as a condition that never ran.
#[test]
fn cli_eval_checks_items_and_options_before_scoring() {
    let model = temp_file("tiny-eval-check.gguf", &tiny_gguf("llama", 2));
    let model = model.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tinylab"))
            .args(["eval", "--model", model])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let good = "{\"context\": \"The sky is\", \"choices\": [\"blue\", \"green\"], \"answer\": 0}\n";
    let long = format!(
        "{{\"context\": \"{}\", \"choices\": [\"a\", \"b\"], \"answer\": 0}}\n",
        "the sky is blue and ".repeat(200)
    );
    let file = temp_file(
        "late-long.jsonl",
        format!("\n\n{}{long}", good.repeat(30)).as_bytes(),
    );
    // Without --json every scored item prints a progress line: the one line on stderr shows
    // that nothing was scored before the refusal.
    let (ok, out, err) = run(&["--items", file.to_str().unwrap(), "--context", "256"]);
    assert!(!ok && out.is_empty());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("late-long.jsonl: line 33: ") && err.contains("this model holds 256 here"),
        "{err}"
    );

    let exported = temp_file(
        "bom.jsonl",
        format!("\u{feff}{}", good.replace("{", "{\"id\": 7, ").repeat(2)).as_bytes(),
    );
    let (ok, out, err) = run(&["--items", exported.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 2);

    let mut bytes = good.as_bytes().to_vec();
    bytes.extend_from_slice(
        b"{\"context\": \"\xff\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n",
    );
    let latin = temp_file("latin1.jsonl", &bytes);
    let (ok, _, err) = run(&["--items", latin.to_str().unwrap()]);
    assert!(!ok && err.contains("line 2 is not UTF-8"), "{err}");
    // Lines ended by a bare \r (and \r\n) are counted as the parser ends them.
    let mut bytes = good.trim_end().repeat(2).replace("}{", "}\r{").into_bytes();
    bytes.extend_from_slice(b"\r\n\r{\"context\": \"\xff\"}");
    let mac = temp_file("mac.jsonl", &bytes);
    let (ok, _, err) = run(&["--items", mac.to_str().unwrap()]);
    assert!(!ok && err.contains("line 4 is not UTF-8"), "{err}");

    for (args, want) in [
        (
            &[
                "--task",
                "name-index",
                "--n",
                "2",
                "--order",
                "options-first",
            ][..],
            "--order options-first needs items with lettered options (multiple-choice); \
             name-index has none",
        ),
        (
            &["--task", "multiple-choice", "--n", "2", "--list-len", "7"],
            "--list-len applies to name-index and middle-match",
        ),
        (
            &["--items", exported.to_str().unwrap(), "--n", "1"],
            "cannot be used with",
        ),
    ] {
        let (ok, out, err) = run(args);
        assert!(!ok && out.is_empty(), "{args:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // `-` is standard input, a JSON list is read as well as JSON Lines, and the items of a
    // list are named by index.
    let piped = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tinylab"))
            .args(["eval", "--model", model])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let list = format!("[\n  {},\n  {}\n]\n", good.trim(), good.trim());
    let (ok, out, err) = piped(&["--items", "-", "--json"], &list);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 2);
    let from_file: Value =
        serde_json::from_str(&run(&["--items", exported.to_str().unwrap(), "--json"]).1).unwrap();
    assert_eq!(v["items"], from_file["items"]);
    let (ok, _, err) = piped(
        &["--items", "-"],
        &list.replace("\"answer\": 0}\n]", "\"label\": 0}\n]"),
    );
    assert!(!ok);
    assert!(
        err.contains("-: item 1: no `answer`, but a `label`"),
        "{err}"
    );
    // The order does apply where there are options.
    let (ok, out, err) = run(&[
        "--task",
        "multiple-choice",
        "--n",
        "2",
        "--order",
        "options-first",
        "--json",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["condition"],
        "options-first"
    );
}

/// A full or closed stderr (`2>/dev/full`, `2>&1 | head`) only loses the warnings and the
/// progress lines: the run still ends well, with its JSON on stdout (printing a warning into
/// it aborted the process, the panic hook's own print panicking again).
#[test]
fn cli_eval_survives_a_stderr_it_cannot_write() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full here");
        return;
    };
    let model = temp_file("tiny-eval-full.gguf", &tiny_gguf("llama", 2));
    // The same choice twice draws a warning before anything is scored.
    let items = temp_file(
        "twice.jsonl",
        b"{\"context\": \"Q\", \"choices\": [\"a\", \"a\"], \"answer\": 0}\n",
    );
    let stderr_full = || full.try_clone().unwrap();
    for json in [true, false] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tinylab"));
        cmd.args(["eval", "--model", model.to_str().unwrap()])
            .args(["--items", items.to_str().unwrap()]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.stderr(stderr_full()).output().unwrap();
        assert!(out.status.success(), "json={json}: {:?}", out.status);
        if json {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["n"], 1);
        }
    }
}

/// A long choice is summed block by block: holding a vocabulary-wide row per continuation
/// token, Gemma 3's 262,144-token rows made a 600-token choice 600 MB more (a wasm worker
/// has 4 GB in all). Under the command line's memory ceiling, as the page's worker would be.
#[test]
fn a_long_choice_is_scored_in_bounded_memory() {
    let m = catalog()
        .into_iter()
        .find(|m| m.id.starts_with("gemma3"))
        .expect("Gemma 3 in the catalog");
    // Characters outside the vocabulary, four byte tokens each: about 600 tokens.
    let choice: String = (0..150)
        .filter_map(|i| char::from_u32(0x10000 + (i * 7) % 5000))
        .collect();
    let item = serde_json::json!({"context": "A list:", "choices": [choice, "x"], "answer": 0});
    let items = temp_file("long-choice.jsonl", format!("{item}\n").as_bytes());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tinylab"))
        .args(["eval", "--model", m.file.to_str().unwrap()])
        .args(["--items", items.to_str().unwrap(), "--json"])
        // Measured here: about 540 MB needed now, about 1,000 before; the ceiling sits
        // between with room on both sides for another machine's kernels and allocator.
        .env("TINYLAB_MAX_MEMORY_MB", "780")
        .output()
        .unwrap();
    let v = json_of(&out);
    let tokens = v["items"][0]["tokens"][0].as_u64().unwrap_or(0);
    assert!(tokens > 400, "{tokens} tokens in the long choice");
}
