//! The chat templates of about seventy models that llama.cpp collects (`models/templates`,
//! fetched by `scripts/fetch_llama_tests.py`), rendered by TinyLab's engine and compared with
//! Hugging Face's rendering of the same conversations (`scripts/chat_template_fixtures.py`,
//! Jinja2 set up as `apply_chat_template` sets it up). A GGUF carries its model's template, so
//! a file TinyLab has never seen gets its prompt from here.

mod common;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tinylab::engine::chat::{render, Message};
use tinylab::engine::clock::Clock;

/// Templates whose rendering TinyLab does not give as Hugging Face does, and why. Each is
/// checked to still differ, so the list shrinks when one is fixed.
const KNOWN_DIFFERENT: &[(&str, &str)] = &[
    // Templates for tool calls only, given no tools: Hugging Face passes `tools=None` and
    // `{% for tool in tools %}` fails there; minijinja loops over none as over nothing, so
    // these render with an empty tool list.
    (
        "CohereForAI-c4ai-command-r-plus-tool_use.jinja",
        "a loop over none",
    ),
    (
        "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
        "a loop over none",
    ),
    (
        "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja",
        "a loop over none",
    ),
];

#[test]
fn llama_cpp_template_collection_renders_as_hugging_face_renders_it() {
    let fx = common::fixture("chat-templates");
    let dir = common::root().join("assets/llama-tests/templates");
    assert!(
        dir.is_dir(),
        "{} is missing: run scripts/fetch_llama_tests.py (the test command does)",
        dir.display()
    );
    let day: Vec<u32> = fx["today"]
        .as_str()
        .unwrap()
        .split('-')
        .map(|x| x.parse().unwrap())
        .collect();
    // The fixture's `strftime_now` answers for noon of that day.
    let today = Clock::new(day[0] as i32, day[1], day[2], 12, 0, 0).unwrap();
    let (bos, eos) = (
        fx["bos_token"].as_str().unwrap(),
        fx["eos_token"].as_str().unwrap(),
    );
    let conversations = fx["conversations"].as_object().unwrap();
    let templates = fx["templates"].as_object().unwrap();
    assert!(templates.len() >= 60, "only {} templates", templates.len());
    let (mut same, mut failures) = (0, Vec::new());
    for (name, entry) in templates {
        let source = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            format!("{:x}", Sha256::digest(&source)),
            entry["sha256"].as_str().unwrap(),
            "{name} changed since the fixture was written: run scripts/chat_template_fixtures.py"
        );
        let template = String::from_utf8(source).unwrap();
        let mut differs = Vec::new();
        for (key, want) in entry["renders"].as_object().into_iter().flatten() {
            let (conv, prompt) = key.split_once('/').unwrap();
            let messages: Vec<Message> =
                serde_json::from_value(conversations[conv].clone()).unwrap();
            let got = render(
                &template,
                &messages,
                bos,
                eos,
                prompt == "prompt",
                Some(today),
            );
            match (got, want.get("text").and_then(Value::as_str)) {
                (Ok(text), Some(want)) if text == want => {}
                (Err(_), None) => {}
                (got, want) => differs.push(format!(
                    "{key}: TinyLab {}, Hugging Face {}",
                    match got {
                        Ok(t) => format!("{t:?}"),
                        Err(e) => format!("error `{e}`"),
                    },
                    match want {
                        Some(t) => format!("{t:?}"),
                        None => format!("error `{}`", entry["renders"][key]["error"]),
                    }
                )),
            }
        }
        let known = KNOWN_DIFFERENT.iter().any(|(n, _)| *n == name);
        match (differs.is_empty(), known) {
            (true, false) => same += 1,
            (false, true) => {}
            (true, true) => {
                failures.push(format!("{name}: renders as Hugging Face now; unlist it"))
            }
            (false, false) => failures.push(format!("{name}:\n  {}", differs.join("\n  "))),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(same >= 60, "only {same} templates compared equal");
}
