//! Fast engine tests on tiny GGUFs the tests write themselves: every architecture loads,
//! generates deterministically, scores consistently across window sizes; bad files give clear
//! errors, never panics.

mod common;

use candle_core::quantized::GgmlDType;
use candle_core::Device;
use common::tiny::{replace_bytes, set_tensor_type, tiny_gguf};
use tinylab::engine::gguf::GgufFile;
use tinylab::engine::{Engine, EngineError, GenerateRequest, SamplingParams, StopReason};

use common::tiny::ARCHS;

fn engine(arch: &str) -> Engine {
    Engine::from_bytes(&tiny_gguf(arch, 1), 256).unwrap_or_else(|e| panic!("{arch}: {e}"))
}

fn generate(e: &mut Engine, prompt: &str, temperature: f32, seed: u64, n: usize) -> Vec<u32> {
    let req = GenerateRequest {
        prompt: prompt.into(),
        max_tokens: n,
        ignore_eos: true,
        sampling: SamplingParams {
            temperature,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut g = e.start(&req).unwrap();
    let mut out = Vec::new();
    while let Some(t) = e.step(&mut g).unwrap() {
        assert!(t.entropy.is_finite() && t.entropy >= 0.0);
        assert!(t.surprisal.is_finite() && t.surprisal >= 0.0);
        assert_eq!(t.top.len(), 5);
        assert!(t.top.windows(2).all(|w| w[0].p >= w[1].p));
        out.push(t.id);
    }
    assert_eq!(g.stop_reason, Some(StopReason::Length));
    out
}

#[test]
fn every_architecture_loads_and_reports_itself() {
    for arch in ARCHS {
        let e = engine(arch);
        assert_eq!(e.info().architecture, arch);
        assert_eq!(e.info().n_layer, 2);
        assert_eq!(e.info().add_bos, arch == "gemma3");
    }
}

#[test]
fn greedy_is_deterministic_and_prefill_equals_stepwise() {
    for arch in ARCHS {
        let mut e = engine(arch);
        let a = generate(&mut e, "hello world", 0.0, 1, 12);
        let b = generate(&mut e, "hello world", 0.0, 99, 12);
        assert_eq!(a, b, "{arch}: greedy must ignore the seed");
        // Generation continued from a prefilled prompt equals scoring's view of the same ids:
        // the greedy token is rank 0 under the model given the same context.
        let mut ids = e.prompt_ids("hello world", false, false).unwrap();
        ids.extend(&a);
        let r = e.score_ids(ids.clone(), 256).unwrap();
        let tail = &r.tokens[r.tokens.len() - a.len()..];
        assert!(
            tail.iter().all(|t| t.rank == 0),
            "{arch}: greedy tokens not rank 0 when scored"
        );
    }
}

#[test]
fn same_seed_same_sample_other_seed_differs() {
    for arch in ARCHS {
        let mut e = engine(arch);
        let a = generate(&mut e, "hello", 1.5, 7, 16);
        let b = generate(&mut e, "hello", 1.5, 7, 16);
        let c = generate(&mut e, "hello", 1.5, 8, 16);
        assert_eq!(a, b, "{arch}");
        assert_ne!(
            a, c,
            "{arch}: different seeds gave identical 16-token samples"
        );
    }
}

#[test]
fn windowed_scoring_agrees_with_one_window() {
    // Gemma's sliding window is 8 in the tiny model, so 40 tokens cross it many times.
    for arch in ARCHS {
        let mut e = engine(arch);
        let text = "hello hello world hell hello lo he ll ".repeat(3);
        let full = e.score(&text, 256).unwrap();
        let windowed = e.score(&text, 16).unwrap();
        assert_eq!(full.ids, windowed.ids);
        assert_eq!(full.tokens.len(), full.ids.len() - 1);
        assert_eq!(windowed.tokens.len(), full.tokens.len());
        // The first window sees the same context in both runs.
        for (a, b) in full.tokens.iter().zip(&windowed.tokens).take(15) {
            assert!((a.surprisal - b.surprisal).abs() < 1e-4, "{arch}");
        }
        assert!(full.summary.perplexity.is_finite() && full.summary.perplexity > 1.0);
        let g = full.summary.gltr;
        assert_eq!(g.top10 + g.top100 + g.top1000 + g.rest, full.tokens.len());
    }
}

/// A later window of a model that starts texts with BOS starts with BOS too, as llama.cpp's
/// perplexity does: its tokens get the numbers of the window's text scored alone.
#[test]
fn later_windows_start_with_bos_where_the_model_adds_one() {
    for arch in ARCHS {
        let mut e = engine(arch);
        let text = "hello hello world hell hello lo he ll ".repeat(3);
        let windowed = e.score(&text, 16).unwrap();
        let ids = &windowed.ids;
        let adds_bos = e.tokenizer().add_bos;
        // The second window starts at position 8 and scores targets 16 onwards.
        let start = 8;
        let mut alone: Vec<u32> = if adds_bos { vec![ids[0]] } else { vec![] };
        alone.extend(&ids[start..=16]);
        let direct = e.score_ids(alone, 256).unwrap();
        let want = direct.tokens.last().unwrap().surprisal;
        let got = windowed.tokens[15].surprisal;
        // BOS run alone before the window's tokens put Gemma 3 270M up to 0.24 nats off
        // (`tests/llama_parity.rs`); the tiny models' own gap was smaller than this bound.
        assert!(
            (want - got).abs() < 1e-3,
            "{arch} (BOS {adds_bos}): {got} vs {want}"
        );
    }
}

#[test]
fn decode_with_cache_equals_full_recompute() {
    // The KV cache path (one token at a time) must give the same next-token numbers as running
    // the whole sequence at once.
    for arch in ARCHS {
        let mut e = engine(arch);
        let greedy = generate(&mut e, "hello world hello", 0.0, 1, 10);
        let mut ids = e.prompt_ids("hello world hello", false, false).unwrap();
        let n_prompt = ids.len();
        ids.extend(&greedy);
        let r = e.score_ids(ids, 256).unwrap();
        let req = GenerateRequest {
            prompt: "hello world hello".into(),
            max_tokens: 10,
            ignore_eos: true,
            sampling: SamplingParams {
                temperature: 0.0,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut g = e.start(&req).unwrap();
        let mut k = n_prompt - 1;
        while let Some(t) = e.step(&mut g).unwrap() {
            let s = &r.tokens[k];
            assert!(
                (s.entropy - t.entropy).abs() < 1e-3,
                "{arch}: {} vs {}",
                s.entropy,
                t.entropy
            );
            k += 1;
        }
    }
}

#[test]
fn chat_template_and_repetition_shape_the_prompt() {
    let e = engine("gemma3");
    let plain = e.prompt_ids("hello", false, false).unwrap();
    let twice = e.prompt_ids("hello", false, true).unwrap();
    // BOS once, then the query twice, a line break between.
    let nl = e.tokenize("\n").unwrap();
    assert_eq!(twice.len(), 1 + 2 * (plain.len() - 1) + nl.len());
    assert_eq!(&twice[plain.len()..plain.len() + nl.len()], &nl[..]);
    // A prompt that ends in white space is sent twice as it is.
    let spaced = e.prompt_ids("hello\n", false, false).unwrap();
    let spaced_twice = e.prompt_ids("hello\n", false, true).unwrap();
    assert_eq!(
        spaced_twice,
        e.prompt_ids("hello\nhello\n", false, false).unwrap()
    );
    assert!(spaced_twice.len() > spaced.len());
    let chat = e.prompt_ids("hello", true, false).unwrap();
    assert_eq!(chat[0], 2, "one BOS");
    assert_eq!(
        chat.iter().filter(|&&t| t == 2).count(),
        1,
        "no second BOS from the template"
    );
}

fn load_err(bytes: &[u8]) -> String {
    match Engine::from_bytes(bytes, 256) {
        Ok(_) => panic!("loaded a bad file"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_and_random_files_are_rejected_clearly() {
    assert_eq!(load_err(&[]), "the file is empty");
    let msg = load_err(b"PK\x03\x04 this is a zip, not a model");
    assert!(msg.starts_with("not a GGUF file"), "{msg}");
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert!(load_err(&noise).starts_with("not a GGUF file"));
}

#[test]
fn truncated_files_say_where() {
    let full = tiny_gguf("llama", 1);
    for cut in [10, 100, 2000, full.len() / 2, full.len() - 1] {
        let msg = load_err(&full[..cut]);
        assert!(
            msg.starts_with("file truncated at byte"),
            "cut at {cut}: {msg}"
        );
    }
}

#[test]
fn unsupported_architecture_is_named() {
    let mut b = tiny_gguf("llama", 1);
    // "llama" → "phi3x" is the same length; the metadata keys then no longer match either.
    replace_bytes(&mut b, "\x05\0\0\0\0\0\0\0llama", "\x05\0\0\0\0\0\0\0phi3x");
    assert_eq!(
        load_err(&b),
        "unsupported architecture `phi3x` (supported: llama, qwen2, qwen3, gemma3, gpt2)"
    );
}

#[test]
fn unsupported_quantization_is_named() {
    let mut b = tiny_gguf("llama", 1);
    set_tensor_type(&mut b, "blk.0.ffn_up.weight", 21);
    let msg = load_err(&b);
    assert!(
        msg.starts_with("unsupported quantization type IQ3_S (ggml type 21) in 1 tensor ("),
        "{msg}"
    );
    // Every type the file holds that no kernel reads, not only the first met: llama.cpp's
    // i-quant files mix several.
    set_tensor_type(&mut b, "blk.0.ffn_down.weight", 22);
    set_tensor_type(&mut b, "blk.0.ffn_gate.weight", 22);
    let msg = load_err(&b);
    assert!(
        msg.starts_with(
            "unsupported quantization types IQ3_S (ggml type 21) in 1 tensor and IQ2_S \
             (ggml type 22) in 2 tensors ("
        ),
        "{msg}"
    );
    assert!(
        msg.contains("IQ4_NL, IQ4_XS)"),
        "the list names what is read: {msg}"
    );
    // Past four types the rest are counted, not named: the message stays one short line
    // whatever a header holds.
    for (name, ty) in [
        ("blk.0.attn_q.weight", 16),
        ("blk.0.attn_k.weight", 17),
        ("blk.0.attn_v.weight", 18),
    ] {
        set_tensor_type(&mut b, name, ty);
    }
    let msg = load_err(&b);
    assert_eq!(msg.matches("(ggml type").count(), 4, "{msg}");
    assert!(msg.contains(" of other types ("), "{msg}");

    // 2024's ARM-repacked Q4_0 files: named, with what to take instead.
    let mut b = tiny_gguf("llama", 1);
    set_tensor_type(&mut b, "blk.0.ffn_up.weight", 31);
    let msg = load_err(&b);
    assert!(
        msg.starts_with("unsupported quantization type Q4_0_4_4 (ggml type 31) in 1 tensor; "),
        "{msg}"
    );
    assert!(msg.contains("plain Q4_0 or IQ4_NL file"), "{msg}");
}

/// IQ4_NL is Q4_0's size (an f16 scale and 16 bytes a block of 32), so a Q4_0 tensor retyped
/// as IQ4_NL is a valid one: it loads, and its values are the table's, not Q4_0's.
#[test]
fn iq4_nl_loads_where_candle_refuses_it() {
    let b = tiny_gguf("llama", 1);
    let g = GgufFile::parse(&b).unwrap();
    let Some(name) = g
        .content
        .tensor_infos
        .iter()
        .find(|(_, t)| t.ggml_dtype == GgmlDType::Q4_0 && t.shape.dims().len() == 2)
        .map(|(n, _)| n.clone())
    else {
        panic!("the tiny model has a Q4_0 matrix")
    };
    let as_q4_0 = g.tensor(&name).unwrap().dequantize(&Device::Cpu).unwrap();
    let mut b = b.clone();
    set_tensor_type(&mut b, &name, 20);
    let g = GgufFile::parse(&b).unwrap();
    assert_eq!(g.iquant(&name), Some(tinylab::engine::iq4::IQuant::Iq4Nl));
    let t = g.tensor(&name).unwrap();
    assert_eq!(t.dtype(), GgmlDType::Q8_0);
    let as_iq4 = t.dequantize(&Device::Cpu).unwrap();
    assert_eq!(as_iq4.dims(), as_q4_0.dims());
    let (a, b2): (Vec<f32>, Vec<f32>) = (
        as_q4_0.flatten_all().unwrap().to_vec1().unwrap(),
        as_iq4.flatten_all().unwrap().to_vec1().unwrap(),
    );
    assert_ne!(a, b2);
    let mut e = Engine::from_source(&b, 256).unwrap();
    assert!(
        e.info().tensor_types.contains("IQ4_NL ×1"),
        "{}",
        e.info().tensor_types
    );
    let r = e.score("a b c d", 256).unwrap();
    assert!(r.tokens.iter().all(|t| t.surprisal.is_finite()));
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let mut e = engine("llama");
    let req = |prompt: &str, t: f32| GenerateRequest {
        prompt: prompt.into(),
        sampling: SamplingParams {
            temperature: t,
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(matches!(
        e.start(&req("", 0.0)),
        Err(EngineError::InvalidInput(_))
    ));
    assert!(e.start(&req("hi", -1.0)).is_err());
    assert!(e.start(&req("hi", f32::NAN)).is_err());
    let long = "hello ".repeat(400);
    let msg = e.start(&req(&long, 0.0)).err().unwrap().to_string();
    assert!(msg.contains("refused"), "{msg}");
    assert!(e.score("h", 64).is_err());
}

#[test]
fn human_vs_model_scores_both_continuations_after_the_same_prompt() {
    use tinylab::lab;
    for arch in ARCHS {
        let mut e = engine(arch);
        let text = "the cat sat. the dog ran and the cat sat again";
        let plan = lab::plan(&e, text, 1).unwrap();
        assert_eq!(plan.prompt, "the cat sat.");
        assert_eq!(
            plan.prompt_ids,
            e.prompt_ids("the cat sat.", false, false).unwrap()
        );
        // "The first N tokens" counts the text's, not the BOS some files add.
        assert_eq!(
            plan.prompt_text_tokens,
            e.tokenizer().encode("the cat sat.", false).unwrap().len(),
            "{arch}"
        );
        let generated = generate(&mut e, &plan.prompt, 0.0, 1, plan.human_ids.len());
        let (human, model) = lab::compare(&mut e, &plan, &generated, 64).unwrap();
        assert_eq!(human.tokens.len(), plan.human_ids.len(), "{arch}");
        assert_eq!(model.tokens.len(), generated.len(), "{arch}");
        let ids: Vec<u32> = human.tokens.iter().map(|t| t.id).collect();
        assert_eq!(ids, plan.human_ids);
        // Each continuation is scored in context: the same numbers as scoring the whole text.
        let mut all = plan.prompt_ids.clone();
        all.extend(&plan.human_ids);
        let whole = e.score_ids(all, 64).unwrap();
        let tail = &whole.tokens[whole.tokens.len() - human.tokens.len()..];
        for (a, b) in tail.iter().zip(&human.tokens) {
            assert!((a.surprisal - b.surprisal).abs() < 1e-9);
        }
        assert_eq!(human.summary.count, human.tokens.len());
        assert!(model.summary.mean_entropy.is_finite());
        assert!(lab::plan(&e, "no sentence end", 1).is_err());
        assert!(lab::compare(&mut e, &plan, &[], 64).is_err());
        // The prompt and the rest are the whole text's tokens, cut between them: a heading's
        // blank line is one token of the prompt, not one "\n" in each half.
        let text = "Title\n\nThe body of the text goes on here.";
        let plan = lab::plan(&e, text, 1).unwrap();
        assert_eq!(plan.prompt, "Title\n\n", "{arch}");
        let mut both = plan.prompt_ids.clone();
        both.extend(&plan.human_ids);
        assert_eq!(
            both,
            e.tokenizer().encode_opening(text, false).unwrap(),
            "{arch}"
        );
    }
}

#[test]
fn cross_entropy_with_itself_is_the_entropy_and_binoculars_follows() {
    use tinylab::engine::stats::binoculars;
    for arch in ARCHS {
        let mut e = engine(arch);
        let ids = e
            .prompt_ids("the cat sat on the mat", false, false)
            .unwrap();
        let scored = e.score_ids(ids.clone(), 4).unwrap();
        // Every position of the text, the one after its last token included.
        let rows = e.probability_rows(&ids, 4).unwrap();
        assert_eq!(rows.len(), ids.len() * e.info().vocab_size);
        let (surprisal, cross) = e.cross_entropy(&ids, 4, &rows).unwrap();
        assert_eq!((surprisal.len(), cross.len()), (ids.len() - 1, ids.len()));
        // The position after the text: the entropy a text one token longer has there.
        let past = e
            .score_ids(tinylab::engine::past_end(&ids), 4)
            .unwrap()
            .tokens
            .last()
            .unwrap()
            .entropy;
        assert!((cross[ids.len() - 1] - past).abs() < 1e-4, "{arch}");
        for (i, t) in scored.tokens.iter().enumerate() {
            assert!((surprisal[i] - t.surprisal).abs() < 1e-9, "{arch}");
            // −Σ p ln p with the model's own p is its entropy (f32 rows: ~1e-5).
            assert!(
                (cross[i] - t.entropy).abs() < 1e-4,
                "{arch}: {} vs {}",
                cross[i],
                t.entropy
            );
        }
        let b = binoculars(&surprisal, &cross).unwrap();
        let n = scored.tokens.len() as f64;
        let mean_cross = (scored.summary.mean_entropy * n + past) / (n + 1.0);
        let expect = scored.summary.mean_surprisal / mean_cross;
        assert!((b - expect).abs() < 1e-4);
        // Rows of the wrong shape are refused, not read out of bounds.
        assert!(e.cross_entropy(&ids, 4, &rows[1..]).is_err());
    }
    let fp = |arch| engine(arch).info().vocab_fingerprint.clone();
    assert_eq!(fp("llama"), fp("llama"));
    assert_ne!(fp("llama"), fp("gemma3"));
}

/// The page keeps a model file in JS memory and the engine reads it through `ByteSource`:
/// loading that way must give the same engine, and the header must not be thousands of reads
/// (each is a call into JS in the browser).
#[test]
fn loading_through_a_byte_source_equals_loading_from_bytes() {
    use std::cell::Cell;
    use tinylab::engine::gguf::ByteSource;

    struct Counting {
        bytes: Vec<u8>,
        reads: Cell<usize>,
    }
    impl ByteSource for Counting {
        fn len(&self) -> u64 {
            self.bytes.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) {
            self.reads.set(self.reads.get() + 1);
            let at = offset as usize;
            buf.copy_from_slice(&self.bytes[at..at + buf.len()]);
        }
    }

    for arch in ["llama", "qwen2", "gemma3"] {
        let bytes = tiny_gguf(arch, 1);
        let src = Counting {
            bytes: bytes.clone(),
            reads: Cell::new(0),
        };
        let mut streamed = Engine::from_source(&src, 256).unwrap_or_else(|e| panic!("{arch}: {e}"));
        let mut whole = Engine::from_bytes(&bytes, 256).unwrap();
        assert_eq!(streamed.info(), whole.info(), "{arch}");
        assert_eq!(
            generate(&mut streamed, "hello world", 0.0, 1, 8),
            generate(&mut whole, "hello world", 0.0, 1, 8),
            "{arch}"
        );
        // The magic, one buffered header read per MiB, then a read per tensor.
        let tensors = 40;
        assert!(
            src.reads.get() < tensors + 8,
            "{arch}: {} reads",
            src.reads.get()
        );
    }
}

/// One stepping loop (`timed_run`) for the CLI, the worker and the benchmark: a forward pass
/// after every token except one that ended the run by length, none for an EOS draw, and the
/// text is the pieces plus the tail the UTF-8 stream held back. Runs are sampled from the tiny
/// model (its byte tokens make incomplete characters common) until each ending is found; the
/// CLI on the same file and seed must report the same ids, passes and text.
#[test]
fn one_stepping_loop_counts_passes_and_text_alike() {
    use tinylab::timed_run::TimedRun;
    let bytes = tiny_gguf("llama", 1);
    let path = common::tiny::temp_file("tiny-llama-steps.gguf", &bytes);
    let mut e = Engine::from_bytes(&bytes, 256).unwrap();
    let clock = || 0.0;
    let (mut eos, mut length, mut mid_char) = (false, false, false);
    for seed in 0..400u64 {
        let req = GenerateRequest {
            prompt: "hello".into(),
            max_tokens: 24,
            sampling: SamplingParams {
                temperature: 1.5,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                seed,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut run = TimedRun::start(&mut e, &req, &clock).unwrap();
        let mut ids = Vec::new();
        let mut text = String::new();
        while let Some((t, _)) = run.step(&mut e).unwrap() {
            ids.push(t.id);
            text.push_str(&t.piece);
        }
        let (end, g) = run.finish();
        text.push_str(&end.tail);
        assert_eq!(g.generated, ids);
        assert_eq!(text, e.tokenizer().decode(&ids), "seed {seed}");
        let want_passes = match end.reason {
            StopReason::Eos => ids.len(),
            StopReason::Length => ids.len() - 1,
            other => panic!("seed {seed}: ended by {other:?}"),
        };
        assert_eq!(end.timing.decode_forwards, want_passes, "seed {seed}");
        let new_case = match end.reason {
            StopReason::Eos if !eos => {
                eos = true;
                true
            }
            StopReason::Length if !end.tail.is_empty() && !mid_char => {
                mid_char = true;
                true
            }
            StopReason::Length if end.tail.is_empty() && !length => {
                length = true;
                true
            }
            _ => false,
        };
        if new_case {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_tinylab"))
                .args([
                    "generate",
                    "--model",
                    path.to_str().unwrap(),
                    "--prompt",
                    "hello",
                ])
                .args(["--max-tokens", "24", "--temperature", "1.5", "--top-k", "0"])
                .args([
                    "--top-p",
                    "1",
                    "--min-p",
                    "0",
                    "--seed",
                    &seed.to_string(),
                    "--json",
                ])
                .output()
                .unwrap();
            let v = common::json_of(&out);
            let cli_ids = common::ids(&v["ids"]);
            assert_eq!(cli_ids, ids, "seed {seed}");
            assert_eq!(v["decode_forwards"].as_u64(), Some(want_passes as u64));
            assert_eq!(v["text"].as_str(), Some(text.as_str()));
            assert_eq!(v["stop_reason"].as_str(), Some(end.reason.as_str()));
        }
        if eos && length && mid_char {
            break;
        }
    }
    assert!(
        eos && length && mid_char,
        "endings found: eos {eos}, length {length}, mid-character {mid_char}"
    );
    // The benchmark steps the same loop: exactly its token count of passes.
    let ids = tinylab::bench::prompt_ids(&e, 8).unwrap();
    let f = tinylab::bench::run(&mut e, &ids, 5, 1, &clock).unwrap();
    assert_eq!(f.decode_forwards, 5);
}

/// A fork (`GenerateRequest::forced`): the replayed tokens carry exactly the parent's numbers,
/// the chosen alternative gets the numbers of the distribution it was taken from, the same seed
/// gives the same branch, and a given id outside the vocabulary is an error.
#[test]
fn forced_tokens_replay_the_parent_and_fork_deterministically() {
    for arch in ARCHS {
        let mut e = engine(arch);
        let run = |e: &mut Engine, forced: Vec<u32>| {
            let req = GenerateRequest {
                prompt: "hello world".into(),
                max_tokens: 12,
                ignore_eos: true,
                sampling: SamplingParams {
                    temperature: 1.2,
                    seed: 5,
                    ..Default::default()
                },
                forced,
                ..Default::default()
            };
            let mut g = e.start(&req).unwrap();
            let mut out = Vec::new();
            while let Some(t) = e.step(&mut g).unwrap() {
                out.push(t);
            }
            out
        };
        let parent = run(&mut e, vec![]);
        let k = 4;
        let alt = parent[k]
            .top
            .iter()
            .find(|a| a.id != parent[k].id)
            .unwrap()
            .clone();
        let mut forced: Vec<u32> = parent[..k].iter().map(|t| t.id).collect();
        forced.push(alt.id);
        let branch = run(&mut e, forced.clone());
        assert_eq!(branch.len(), 12, "{arch}");
        for (a, b) in parent[..k].iter().zip(&branch) {
            assert_eq!(
                (a.id, a.entropy, a.surprisal, a.rank),
                (b.id, b.entropy, b.surprisal, b.rank),
                "{arch}"
            );
        }
        let at = &branch[k];
        assert_eq!(at.id, alt.id);
        assert_eq!(at.entropy, parent[k].entropy, "{arch}: same distribution");
        assert!((at.surprisal - -alt.p.ln()).abs() < 1e-9, "{arch}");
        let again = run(&mut e, forced);
        assert_eq!(
            branch.iter().map(|t| t.id).collect::<Vec<_>>(),
            again.iter().map(|t| t.id).collect::<Vec<_>>(),
            "{arch}: same seed, same branch"
        );
        let bad = GenerateRequest {
            prompt: "hello".into(),
            forced: vec![u32::MAX],
            ..Default::default()
        };
        let err = e.start(&bad).err().expect("out-of-vocabulary id refused");
        assert!(err.to_string().contains("outside the vocabulary"), "{err}");
    }
}

/// Weights holding NaN give NaN scores: generating and scoring say so instead of inventing
/// numbers from them (an end of text drawn at once, a perplexity of the vocabulary's size).
#[test]
fn nan_weights_are_an_error_not_made_up_numbers() {
    use candle_core::quantized::gguf_file::Content;
    let mut bytes = tiny_gguf("llama", 1);
    let content = Content::read(&mut std::io::Cursor::new(&bytes)).unwrap();
    let info = &content.tensor_infos["output_norm.weight"];
    let start = (content.tensor_data_offset + info.offset) as usize;
    for v in 0..info.shape.elem_count() {
        bytes[start + 4 * v..start + 4 * v + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    }
    let mut e = Engine::from_bytes(&bytes, 256).unwrap();
    let req = GenerateRequest {
        prompt: "hello".into(),
        max_tokens: 4,
        ..Default::default()
    };
    let run = |e: &mut Engine| -> Result<(), EngineError> {
        let mut g = e.start(&req)?;
        while e.step(&mut g)?.is_some() {}
        Ok(())
    };
    let err = run(&mut e).unwrap_err().to_string();
    assert!(err.contains("not numbers (NaN)"), "{err}");
    let err = e.score("hello there", 64).unwrap_err().to_string();
    assert!(err.contains("not numbers (NaN)"), "{err}");
    // NaN in a layer's own weights too, where the next product quantized it to 0 and the
    // scores came out finite (a perplexity of 58,441 where the file gave 29,300).
    for arch in ["qwen2", "qwen3", "gemma3", "llama"] {
        for tensor in [
            "blk.0.attn_q.weight",
            "blk.0.attn_v.weight",
            "blk.0.ffn_up.weight",
        ] {
            let mut bytes = tiny_gguf(arch, 1);
            let content = Content::read(&mut std::io::Cursor::new(&bytes)).unwrap();
            let info = &content.tensor_infos[tensor];
            let start = (content.tensor_data_offset + info.offset) as usize;
            let n = info.shape.elem_count();
            // Every value NaN: each one itself, or each block's f16 scale (its first bytes).
            use candle_core::quantized::GgmlDType as T;
            let (step, nan): (usize, &[u8]) = match info.ggml_dtype {
                T::F32 => (4, &[0, 0, 0xc0, 0x7f]),
                T::F16 => (2, &[0, 0x7e]),
                T::Q4_0 => (18, &[0, 0x7e]),
                T::Q4_1 => (20, &[0, 0x7e]),
                T::Q5_0 => (22, &[0, 0x7e]),
                T::Q5_1 => (24, &[0, 0x7e]),
                T::Q8_0 => (34, &[0, 0x7e]),
                other => panic!("{arch} {tensor}: no NaN recipe for {other:?}"),
            };
            let values_per_step = if step <= 4 { 1 } else { 32 };
            for b in 0..n / values_per_step {
                bytes[start + step * b..][..nan.len()].copy_from_slice(nan);
            }
            let mut e = Engine::from_bytes(&bytes, 256).unwrap();
            let err = e.score("hello there", 64).unwrap_err().to_string();
            assert!(err.contains("not numbers (NaN)"), "{arch} {tensor}: {err}");
        }
    }
}
