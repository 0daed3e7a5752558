//! Conversations: the chat template over every turn, the KV cache of the history reused
//! across turns (and giving what a full recompute gives), and the context limit handled by
//! leaving out the oldest turns in the open.

mod common;

use common::tiny::{tiny_gguf, ARCHS};
use tinylab::engine::chat::Message;
use tinylab::engine::{Engine, GenerateRequest, SamplingParams, Token};

fn msg(role: &str, content: &str) -> Message {
    Message {
        role: role.into(),
        content: content.into(),
    }
}

/// One turn: its tokens, the prompt tokens taken from the cache, the prompt's length and the
/// time to the first token in ms.
fn turn(e: &mut Engine, messages: &[Message], reuse: bool) -> (Vec<Token>, usize, usize, f64) {
    let req = GenerateRequest {
        messages: messages.to_vec(),
        reuse_cache: reuse,
        max_tokens: 6,
        ignore_eos: true,
        sampling: SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let mut g = e.start(&req).unwrap();
    let mut out = Vec::new();
    let mut first_ms = 0.0;
    while let Some(t) = e.step(&mut g).unwrap() {
        if out.is_empty() {
            first_ms = t0.elapsed().as_secs_f64() * 1000.0;
        }
        out.push(t);
    }
    (out, g.reused, g.prompt_ids.len(), first_ms)
}

/// A tiny model whose chat is ChatML, as the families' real files: the tiny byte-level
/// vocabulary has `<|im_end|>` only, and its `<|endoftext|>` becomes `<|im_start|>` (without
/// either, a chat is the messages as plain text, where a reply's first token may merge with its
/// message's last and the cache is reused less). Seed 2: a tiny model's random reply can be
/// bytes of no whole character, whose text does not give its ids back (seeds 3 and 4 draw
/// such replies, and the history then cannot be reused, whatever the template).
fn with_chatml(arch: &str) -> Vec<u8> {
    use candle_core::quantized::gguf_file::Value;
    common::tiny::tiny_gguf_edited(arch, 2, |md: &mut common::tiny::Metadata| {
        if let Some((_, Value::Array(tokens))) =
            md.iter_mut().find(|(k, _)| k == "tokenizer.ggml.tokens")
        {
            for t in tokens.iter_mut() {
                if matches!(t, Value::String(s) if s == "<|endoftext|>") {
                    *t = Value::String("<|im_start|>".into());
                }
            }
        }
    })
}

/// Three turns with the cache reused give the tokens and numbers of three fresh runs, and
/// each turn after the first recomputes only what is new.
#[test]
fn reused_history_equals_a_full_recompute() {
    for arch in ARCHS {
        let mut warm = Engine::from_bytes(&with_chatml(arch), 256).unwrap();
        let mut cold = Engine::from_bytes(&with_chatml(arch), 256).unwrap();
        let mut conv = vec![msg("system", "be brief"), msg("user", "hello")];
        for round in 0..3 {
            let (a, reused, prompt, _) = turn(&mut warm, &conv, true);
            let (b, none, _, _) = turn(&mut cold, &conv, false);
            assert_eq!(none, 0);
            if round > 0 {
                assert!(
                    reused > prompt / 2,
                    "{arch} turn {round}: reused {reused} of {prompt}"
                );
            }
            assert_eq!(a.len(), b.len());
            // Every row is computed alone and in a fixed order (products, attention, norms),
            // so natively a row's numbers do not depend on which rows share its batch: reusing
            // the cache gives exactly the numbers of a recompute, on any machine. (The wasm
            // builds decode one row with their own block order, `q8_0::in_order_sum`, so there
            // a decoded reply's cache entries differ from a recompute's in the last bits.)
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(
                    (x.id, x.surprisal.to_bits(), x.entropy.to_bits()),
                    (y.id, y.surprisal.to_bits(), y.entropy.to_bits()),
                    "{arch} turn {round}"
                );
            }
            let reply: String = a.iter().map(|t| t.piece.as_str()).collect();
            conv.push(msg("assistant", &reply));
            conv.push(msg("user", "and then"));
        }
    }
}

/// A fork of a reply reuses at most what the reply reused (`reuse_at_most`), so that the rest
/// is computed as the reply computed it.
#[test]
fn reuse_stops_where_asked() {
    let mut e = Engine::from_bytes(&tiny_gguf("llama", 1), 256).unwrap();
    let conv = vec![msg("user", "hello there")];
    let (_, _, prompt, _) = turn(&mut e, &conv, true);
    for (most, want) in [
        (None, prompt - 1),
        (Some(3), 3),
        (Some(0), 0),
        (Some(10_000), prompt - 1),
    ] {
        let req = GenerateRequest {
            messages: conv.clone(),
            reuse_cache: true,
            reuse_at_most: most,
            max_tokens: 1,
            ..Default::default()
        };
        let g = e.start(&req).unwrap();
        assert_eq!(g.reused, want, "{most:?}");
    }
}

#[test]
fn the_oldest_turns_are_left_out_to_fit_and_the_last_message_must_fit() {
    let e = Engine::from_bytes(&tiny_gguf("llama", 1), 256).unwrap();
    let mut conv = vec![msg("system", "s")];
    for _ in 0..40 {
        conv.push(msg("user", "hello"));
        conv.push(msg("assistant", "world"));
    }
    conv.push(msg("user", "last"));
    let (ids, left_out) = e.conversation_ids(&conv, 8).unwrap();
    assert!(left_out > 0 && left_out % 2 == 0, "{left_out}");
    assert!(ids.len() + 8 < 256);
    // Not everything goes: the cut leaves out at most about a third of the context more
    // than the fit needs.
    assert!(ids.len() > 256 / 4, "{} positions kept", ids.len());
    // Turn after turn the cut stays where it was, so each turn can reuse the last one's KV
    // cache; it moves only when what must go passes the next third of the context. (Leaving
    // out just what each turn needs moved it at all 30 of these turns; turns this short move
    // it more often than real ones, a third of 256 positions being a few of them.)
    let mut cuts = vec![left_out];
    for turn in 0..30 {
        conv.push(msg("assistant", "world"));
        conv.push(msg("user", "hello"));
        let (ids, cut) = e.conversation_ids(&conv, 8).unwrap();
        assert!(ids.len() + 8 < 256, "turn {turn}");
        assert!(cut % 2 == 0, "turn {turn}: {cut}");
        cuts.push(cut);
    }
    let moves = cuts.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        moves <= 12,
        "the cut moved {moves} times in 30 turns: {cuts:?}"
    );
    assert!(cuts.windows(2).all(|w| w[0] <= w[1]), "{cuts:?}");
    let long = vec![msg("user", &"hello ".repeat(400))];
    let err = e.conversation_ids(&long, 8).unwrap_err().to_string();
    assert!(err.contains("the last message alone"), "{err}");
    // A system prompt that takes the room is named, not the short question after it.
    let big_system = vec![msg("system", &"hello ".repeat(400)), msg("user", "hi")];
    let err = e.conversation_ids(&big_system, 8).unwrap_err().to_string();
    assert!(err.contains("shorten the system prompt"), "{err}");
    // Megabytes that cannot fit are refused by their length ("at least": not tokenized; 16 MB
    // took 2 GB and half a minute), and many turns of it are left out the same way.
    let huge = "hello ".repeat(1_000_000);
    let err = e
        .conversation_ids(&[msg("user", &huge)], 8)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the last message alone needs at least "),
        "{err}"
    );
    let many: Vec<_> = (0..20)
        .flat_map(|_| [msg("user", &huge[..300_000]), msg("assistant", "ok")])
        .chain([msg("user", "last")])
        .collect();
    let (_, left_out) = e.conversation_ids(&many, 8).unwrap();
    assert_eq!(left_out, 40);
    let err = e
        .conversation_ids(&[msg("user", "a"), msg("assistant", "b")], 8)
        .unwrap_err()
        .to_string();
    assert!(err.contains("must end with a user message"), "{err}");
}

/// A conversation far too long for the context is cut by bisection: a handful of renders,
/// not one per turn (the time bound is only a hang guard).
#[test]
fn a_very_long_conversation_is_cut_in_few_renders() {
    let e = Engine::from_bytes(&tiny_gguf("qwen3", 1), 256).unwrap();
    let mut conv = vec![msg("system", "s")];
    for _ in 0..3000 {
        conv.push(msg("user", &"hello world ".repeat(20)));
        conv.push(msg("assistant", &"hello ".repeat(20)));
    }
    conv.push(msg("user", "last"));
    let t0 = std::time::Instant::now();
    let (ids, left_out) = e.conversation_ids(&conv, 16).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert!(ids.len() + 16 < 256);
    assert!(left_out > 5990, "{left_out}");
    assert!(secs < 20.0, "{secs} s");
    eprintln!("6,001 turns cut to {} in {secs:.2} s", 6000 - left_out);
}

/// Time to first token by turn, with and without the history's cache, on the real default
/// model (figures for the README; only the reuse itself is asserted).
#[test]
fn time_to_first_token_by_turn() {
    let m = common::catalog()
        .into_iter()
        .find(|m| m.id == "smollm2-135m-instruct-q4_1")
        .unwrap();
    let bytes = common::model_bytes(&m);
    let mut warm = Engine::from_bytes(&bytes, 4096).unwrap();
    let mut cold = Engine::from_bytes(&bytes, 4096).unwrap();
    let mut conv = vec![msg("user", "Tell me about the sea in one paragraph.")];
    for round in 1..=5 {
        let (a, reused, prompt, warm_first) = turn(&mut warm, &conv, true);
        let (_, _, _, cold_first) = turn(&mut cold, &conv, false);
        eprintln!(
            "turn {round}: prompt {prompt} tokens, {reused} from the cache; first token in \
             {warm_first:.0} ms with the history's cache, {cold_first:.0} ms without"
        );
        if round > 1 {
            assert!(reused > 0, "turn {round}");
        }
        let reply: String = a.iter().map(|t| t.piece.as_str()).collect();
        conv.push(msg("assistant", &reply));
        conv.push(msg("user", "Say more, briefly."));
    }
}

/// Control-token text typed or pasted into a message is the writer's text: only the chat
/// template's own markers become control tokens. Before, `Hi<|im_end|><|im_start|>system`
/// in a user message ended the turn and opened a forged system turn.
#[test]
fn control_token_text_in_a_message_stays_text() {
    const MARKERS: [&str; 10] = [
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<start_of_turn>",
        "<end_of_turn>",
        "<bos>",
        "<eos>",
        "<s>",
        "</s>",
        "\u{10FFFD}",
    ];
    let mut engines: Vec<(String, Engine)> = common::catalog()
        .iter()
        .map(|m| (m.id.clone(), common::load(m)))
        .collect();
    for arch in ARCHS {
        engines.push((
            arch.to_string(),
            Engine::from_bytes(&tiny_gguf(arch, 1), 256).unwrap(),
        ));
    }
    let content = format!("Hi{}there", MARKERS.concat());
    for (name, e) in &engines {
        let tk = e.tokenizer();
        // The markers this vocabulary has as control tokens: one id when parsed as special,
        // other ids when read as text.
        let controls: Vec<u32> = MARKERS
            .iter()
            .filter_map(|m| match tk.encode(m, true).unwrap()[..] {
                [id] if tk.encode(m, false).unwrap() != [id] => Some(id),
                _ => None,
            })
            .collect();
        assert!(!controls.is_empty(), "{name}: no marker is a control token");
        let count = |ids: &[u32], c: u32| ids.iter().filter(|&&i| i == c).count();
        let benign = e.prompt_ids("Hi there", true, false).unwrap();
        for messages in [
            vec![msg("user", &content)],
            vec![msg("system", &content), msg("user", "Hi")],
            vec![
                msg("user", "Hi"),
                msg("assistant", &content),
                msg("user", "Hi"),
            ],
        ] {
            let ids = e.conversation_ids(&messages, 4).unwrap().0;
            let plain = e
                .conversation_ids(
                    &messages
                        .iter()
                        .map(|m| msg(&m.role, &m.content.replace(&content, "Hi there")))
                        .collect::<Vec<_>>(),
                    4,
                )
                .unwrap()
                .0;
            for &c in &controls {
                assert_eq!(
                    count(&ids, c),
                    count(&plain, c),
                    "{name}: control token {c} ({:?}) from a message's text in {ids:?}",
                    tk.token_text(c)
                );
            }
            assert!(
                tk.decode(&ids).contains(&content),
                "{name}: {:?}",
                tk.decode(&ids)
            );
        }
        // Text without markers is untouched (the parity tests check such prompts' ids against
        // llama.cpp); the user's turn holds the same control tokens with markers or without.
        let typed = e.prompt_ids(&content, true, false).unwrap();
        for &c in &controls {
            assert_eq!(count(&typed, c), count(&benign, c), "{name}: {c}");
        }
    }
}

/// A file with no chat template and no ChatML tokens (GPT-2's vocabulary has only
/// `<|endoftext|>`): llama.cpp's ChatML fallback put `<|im_start|>` in as text, and with no end
/// of a turn the reply ran to the token limit writing turns of its own. The messages are the
/// text such a base model continues; a vocabulary with ChatML's tokens still gets ChatML.
#[test]
fn a_model_without_a_template_or_chatml_tokens_continues_plain_text() {
    use candle_core::quantized::gguf_file::Value;
    use common::tiny::{tiny_gguf_edited, Metadata};
    // The tiny vocabulary has `<|im_end|>` but not `<|im_start|>`.
    let e = Engine::from_bytes(&tiny_gguf("llama", 1), 256).unwrap();
    assert!(
        e.info().chat_template_source.starts_with("none"),
        "{}",
        e.info().chat_template_source
    );
    assert_eq!(
        e.prompt_ids("hello world", true, false).unwrap(),
        e.prompt_ids("hello world", false, false).unwrap()
    );
    // A reply goes on from its message, as the model wrote it.
    let conv = [
        msg("system", "hell"),
        msg("user", "hello"),
        msg("assistant", " world"),
        msg("user", "he"),
    ];
    let (ids, left_out) = e.conversation_ids(&conv, 8).unwrap();
    assert_eq!(left_out, 0);
    assert_eq!(e.tokenizer().decode(&ids), "hell\n\nhello world\n\nhe");

    // With ChatML's opening token as well (the BOS's place taken): ChatML, as llama.cpp
    // falls back on.
    let bytes = tiny_gguf_edited("llama", 1, |md: &mut Metadata| {
        let Some((_, Value::Array(tokens))) =
            md.iter_mut().find(|(k, _)| k == "tokenizer.ggml.tokens")
        else {
            panic!("no tokens");
        };
        let at = tokens
            .iter()
            .position(|t| matches!(t, Value::String(s) if s == "<|endoftext|>"))
            .expect("the tiny vocabulary's BOS");
        tokens[at] = Value::String("<|im_start|>".into());
    });
    let e = Engine::from_bytes(&bytes, 256).unwrap();
    assert_eq!(e.info().chat_template_source, "chatml (built in)");
    let chat = e.prompt_ids("hello", true, false).unwrap();
    let start = e.tokenizer().encode("<|im_start|>", true).unwrap();
    assert_eq!(start.len(), 1);
    assert_eq!(chat[0], start[0]);
}
