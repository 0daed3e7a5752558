//! A bounded fuzz of the GGUF and tokenizer-metadata loading path: the three real models'
//! headers (metadata and tensor table), mutated at random, must give an error or a model,
//! never a panic, and never an allocation sized by a lying length field (that would abort the
//! process, which fails this test too).
//!
//! Mutations: bit flips, random bytes, 8-byte length fields overwritten with huge or random
//! values, truncation. Every 25th case that still parses is loaded as a whole engine.
//! Time per model: `TINYLAB_FUZZ_SECONDS` (default 8); the seed: `TINYLAB_FUZZ_SEED`.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file::Value;
use tinylab::engine::gguf::GgufFile;
use tinylab::engine::sampler::Rng;
use tinylab::engine::tokenizer::Tokenizer;
use tinylab::engine::Engine;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Copy)]
enum Mutation {
    FlipBit { at: usize, bit: u8 },
    SetByte { at: usize, value: u8 },
    LyingLength { at: usize, value: u64 },
    Truncate { len: usize },
}

fn pick(rng: &mut Rng, header: usize, file: usize) -> Mutation {
    // A third of the cases hit the first 4 KiB (magic, counts, early keys), a third the tensor
    // table at the end of the header, a third anywhere (mostly the vocabulary arrays).
    let region = rng.next_u64() % 3;
    let r = rng.next_u64();
    let span = |n: usize| (r % n.clamp(1, header) as u64) as usize;
    let at = match region {
        0 => span(4096),
        1 => header - 1 - span(65536),
        _ => span(header),
    };
    match rng.next_u64() % 8 {
        0..=2 => Mutation::FlipBit {
            at,
            bit: (rng.next_u64() % 8) as u8,
        },
        3..=4 => Mutation::SetByte {
            at,
            value: rng.next_u64() as u8,
        },
        5..=6 => {
            const LIES: [u64; 6] = [u64::MAX, 1 << 62, 1 << 40, u32::MAX as u64, 1 << 31, 0];
            let value = if rng.next_u64().is_multiple_of(2) {
                LIES[(rng.next_u64() % LIES.len() as u64) as usize]
            } else {
                rng.next_u64() >> (rng.next_u64() % 64)
            };
            Mutation::LyingLength {
                at: at.min(header - 8),
                value,
            }
        }
        _ => Mutation::Truncate {
            len: (rng.next_u64() % file as u64) as usize,
        },
    }
}

/// Applies a mutation in place; returns the bytes to restore and the length to use.
fn apply(buf: &mut [u8], m: Mutation) -> (Vec<(usize, u8)>, usize) {
    let mut undo = Vec::new();
    let mut set = |buf: &mut [u8], i: usize, v: u8| {
        undo.push((i, buf[i]));
        buf[i] = v;
    };
    let len = buf.len();
    match m {
        Mutation::FlipBit { at, bit } => set(buf, at, buf[at] ^ (1 << bit)),
        Mutation::SetByte { at, value } => set(buf, at, value),
        Mutation::LyingLength { at, value } => {
            for (k, b) in value.to_le_bytes().into_iter().enumerate() {
                set(buf, at + k, b);
            }
        }
        Mutation::Truncate { len } => return (undo, len),
    }
    (undo, len)
}

struct Tally {
    cases: u64,
    parsed: u64,
    tokenizers: u64,
    engines: u64,
    panics: Vec<(Mutation, String)>,
}

const MIN_CASES: u64 = 16;

fn fuzz_model(m: &common::CatalogModel, seconds: u64, seed: u64) -> Tally {
    let mut buf = common::model_bytes(m);
    let header = {
        let g = GgufFile::parse(&buf).expect("the clean file parses");
        g.content.tensor_data_offset as usize
    };
    let mut rng = Rng::new(seed);
    let mut t = Tally {
        cases: 0,
        parsed: 0,
        tokenizers: 0,
        engines: 0,
        panics: vec![],
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    // At least MIN_CASES whatever the clock says: a busy machine builds Gemma 3's 262k-token
    // tokenizer in over a second, and a time budget alone then tested only a handful of cases.
    while Instant::now() < deadline || t.cases < MIN_CASES {
        let m = pick(&mut rng, header, buf.len());
        let (undo, len) = apply(&mut buf, m);
        let full = t.parsed.is_multiple_of(25);
        let bytes = &buf[..len];
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut stage = (false, false, false);
            if let Ok(g) = GgufFile::parse(&bytes) {
                stage.0 = true;
                if Tokenizer::from_gguf(&g).is_ok() {
                    stage.1 = true;
                    if full {
                        stage.2 = Engine::from_bytes(bytes, 256).is_ok();
                    }
                }
            }
            stage
        }));
        match outcome {
            Ok((p, tk, e)) => {
                t.parsed += p as u64;
                t.tokenizers += tk as u64;
                t.engines += e as u64;
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                t.panics.push((m, msg));
            }
        }
        for (i, v) in undo.into_iter().rev() {
            buf[i] = v;
        }
        t.cases += 1;
    }
    t
}

#[test]
fn mutated_headers_never_panic() {
    let seconds = env_u64("TINYLAB_FUZZ_SECONDS", 8);
    let seed = env_u64("TINYLAB_FUZZ_SEED", 0x7e57);
    // Quiet the default hook: expected panics are collected and reported below instead.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = vec![];
    let mut starved = vec![];
    for m in common::catalog() {
        let file = m.id.clone();
        let t = fuzz_model(&m, seconds, seed);
        eprintln!(
            "fuzz {file}: {} cases in {seconds} s, {} parsed, {} tokenizers built, {} engines \
             loaded, {} panics",
            t.cases,
            t.parsed,
            t.tokenizers,
            t.engines,
            t.panics.len()
        );
        // Some mutants must get past the parser, or only the parser was fuzzed. (How many
        // engines load is left to the time given: under load it can be none of SmolLM2's.)
        if t.tokenizers == 0 {
            starved.push(file.clone());
        }
        failures.extend(t.panics.into_iter().map(|p| (file.clone(), p)));
    }
    std::panic::set_hook(hook);
    assert!(failures.is_empty(), "panics: {failures:#?}");
    assert!(
        starved.is_empty(),
        "no mutant reached the tokenizer: {starved:?}"
    );
}

/// A hostile value of a random type and size for any metadata key.
fn hostile_value(rng: &mut Rng) -> Value {
    match rng.next_u64() % 14 {
        0 => Value::U32(0),
        1 => Value::U32(u32::MAX),
        2 => Value::U32((rng.next_u64() % 5000) as u32),
        3 => Value::I32(-((rng.next_u64() % 1000) as i32) - 1),
        4 => Value::U64(u64::MAX >> (rng.next_u64() % 64)),
        5 => Value::F32(f32::NAN),
        6 => Value::F32(f32::INFINITY),
        7 => Value::F32(-1.0),
        8 => Value::Bool(rng.next_u64().is_multiple_of(2)),
        9 => Value::String(String::new()),
        10 => Value::String(
            "{% for a in range(99999) %}{% for b in range(99999) %}{{ a }}{% endfor %}{% endfor %}"
                .into(),
        ),
        11 => Value::String("x".repeat((rng.next_u64() % 100_000) as usize)),
        12 => Value::Array(vec![]),
        _ => Value::Array(vec![Value::U32(u32::MAX); (rng.next_u64() % 300) as usize]),
    }
}

/// Metadata values, not bytes: every key of a tiny model of each architecture set to hostile
/// values of any type, one or three at a time. What loads must also render its chat template,
/// generate and score, all without a panic; each case must end within seconds.
#[test]
fn mutated_metadata_values_never_panic() {
    use common::tiny::{set_meta, tiny_gguf_edited};
    use tinylab::engine::GenerateRequest;

    let seed = env_u64("TINYLAB_FUZZ_SEED", 0x7e57);
    let cases = env_u64("TINYLAB_FUZZ_META_CASES", 400);
    let mut rng = Rng::new(seed);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut panics = vec![];
    let (mut loaded, mut ran, mut slowest) = (0, 0, 0f64);
    for case in 0..cases {
        let arch = common::tiny::ARCHS[(case % common::tiny::ARCHS.len() as u64) as usize];
        let mut keys = vec![];
        tiny_gguf_edited(arch, 1, |md| {
            keys = md.iter().map(|(k, _)| k.clone()).collect()
        });
        keys.push("general.alignment".into());
        keys.push("tokenizer.chat_template".into());
        keys.push(format!("{arch}.attention.key_length"));
        keys.push(format!("{arch}.attention.sliding_window"));
        let edits: Vec<(String, Value)> = (0..1 + 2 * (rng.next_u64() % 2))
            .map(|_| {
                let k = keys[(rng.next_u64() % keys.len() as u64) as usize].clone();
                (k, hostile_value(&mut rng))
            })
            .collect();
        let what = format!(
            "{arch}: {}",
            edits
                .iter()
                .map(|(k, v)| format!("{k} = {:.60}", format!("{v:?}")))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let bytes = tiny_gguf_edited(arch, 1, |md| {
            for (k, v) in edits {
                set_meta(md, &k, v);
            }
        });
        let t0 = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let Ok(mut e) = Engine::from_bytes(&bytes, 128) else {
                return (false, false);
            };
            let chat = e
                .start(&GenerateRequest {
                    prompt: "Hello there".into(),
                    chat: true,
                    max_tokens: 3,
                    ..Default::default()
                })
                .and_then(|mut g| {
                    while e.step(&mut g)?.is_some() {}
                    Ok(())
                });
            let score = e.score("hello world, hello again", 64);
            (true, chat.is_ok() && score.is_ok())
        }));
        let took = t0.elapsed().as_secs_f64();
        if took > 3.0 {
            eprintln!("slow case, {took:.1} s: {what}");
        }
        slowest = slowest.max(took);
        match outcome {
            Ok((l, r)) => {
                loaded += l as u64;
                ran += r as u64;
            }
            Err(p) => panics.push(format!(
                "{what}: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
        }
    }
    std::panic::set_hook(hook);
    eprintln!(
        "metadata fuzz: {cases} cases, {loaded} loaded, {ran} rendered/generated/scored, \
         slowest case {slowest:.3} s, {} panics",
        panics.len()
    );
    assert!(panics.is_empty(), "panics:\n{}", panics.join("\n"));
    assert!(
        slowest < 10.0,
        "a case took {slowest:.1} s (a hang guard: cases take milliseconds)"
    );
    assert!(
        loaded > cases / 10,
        "too few cases loaded to test the later stages"
    );
}
