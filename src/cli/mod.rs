//! Argument parsing and dispatch. Commands live one per file; each returns a JSON value or
//! writes human output, and errors travel up as strings to be printed once.

/// `eprintln!` that cannot panic: a closed or full stderr (`2>&1 | head`, `2>/dev/full`) must
/// not abort a run whose results go to stdout, nor the panic hook (a panic inside it aborts).
macro_rules! say {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that cannot panic, for progress lines written over themselves.
macro_rules! say_inline {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod bench;
mod eval;
mod generate;
pub mod memory_cap;
mod score;
mod tokenize;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use tinylab::engine::{Engine, DEFAULT_MAX_POSITIONS};

#[derive(Parser)]
#[command(
    name = "tinylab",
    version,
    about = "Run, compare and measure small GGUF language models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Split text into the model's tokens (no BOS/EOS; special-token text stays text).
    Tokenize(tokenize::TokenizeArgs),
    /// Generate a continuation with per-token entropy, surprisal and rank.
    Generate(generate::GenerateArgs),
    /// Measure a text: per-token surprisal, entropy, rank, perplexity, GLTR buckets.
    Score(score::ScoreArgs),
    /// Prefill and decode speed, load time and peak memory.
    Bench(bench::BenchArgs),
    /// Accuracy on an item file or a generated task, with a 95% interval.
    Eval(eval::EvalArgs),
}

#[derive(Args, Clone)]
pub struct Common {
    /// GGUF model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Most positions (prompt + output) the engine holds [default: 4096, or the model's own
    /// length where that is less].
    #[arg(long)]
    pub context: Option<usize>,
    /// CPU threads for matrix products (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub struct Loaded {
    pub engine: Engine,
    pub load_seconds: f64,
    pub file_bytes: usize,
}

impl Common {
    /// The threads to use, once `--context` and `--threads` are checked: every subcommand
    /// refuses the same values, also those (like `tokenize`) that run no product.
    pub fn checked_threads(&self) -> Result<usize, String> {
        if let Some(c @ 0..2) = self.context {
            return Err(format!(
                "--context must be at least 2 (the prompt's positions and one new token's), \
                 got {c}"
            ));
        }
        let most = tinylab::engine::parallel::MAX_THREADS;
        match self.threads {
            Some(0) => Err("--threads must be at least 1".into()),
            Some(t) if t > most => Err(format!(
                "--threads must be at most {most}, got {t} (the products gain nothing from \
                 more threads than cores)"
            )),
            Some(t) => Ok(t),
            None => Ok(std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(most)),
        }
    }
}

pub fn load(common: &Common) -> Result<Loaded, String> {
    let mut threads = common.checked_threads()?;
    // The pool's helpers spin while they wait: beyond the cores they take turns on them, and
    // 64 threads on two cores decoded 35 times slower than two.
    // Where the count is unknown, the threads asked for are used.
    if let Ok(cores) = std::thread::available_parallelism().map(|n| n.get()) {
        if threads > cores {
            say!("note: --threads {threads} is more than the {cores} cores this process may use; using {cores}");
            threads = cores;
        }
    }
    // candle sizes its rayon pool from this variable on first use.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    // candle also splits element-wise ops of 64k values or more (prefill's residual adds) over
    // a pool of its own, whose parked workers then competed for the cores with the engine's
    // spinning helpers: on two threads those adds took 16-28 ms of Gemma 3's 128-token
    // prefill instead of about 2. The engine's pool does the parallel work; candle's stays empty.
    std::env::set_var("CANDLE_NUM_THREADS", "1");
    // The weight products and attention run on the engine's pool, as in the browser; results
    // do not depend on how many threads it has.
    let helpers = tinylab::engine::parallel::start_native_helpers(threads - 1);
    tinylab::engine::parallel::set_threads(helpers + 1);
    let t0 = Instant::now();
    let bytes = read_model(&common.model)?;
    let asked = common.context.unwrap_or(DEFAULT_MAX_POSITIONS);
    let mut engine = Engine::from_bytes(&bytes, asked)
        .map_err(|e| format!("{}: {e}", common.model.display()))?;
    // One time for the whole command: an evaluation that runs past midnight renders every
    // item's chat template on the same date.
    engine.set_clock(tinylab::engine::clock::Clock::now_utc());
    let held = engine.info().max_positions;
    // The default is meant as "all of it, up to 4096"; a number the user gave is said to be cut.
    if let Some(asked) = common.context.filter(|&c| c > held) {
        say!(
            "note: --context {asked} is more than the {held} positions this model was trained \
             for; using {held}"
        );
    }
    Ok(Loaded {
        engine,
        load_seconds: t0.elapsed().as_secs_f64(),
        file_bytes: bytes.len(),
    })
}

/// Most bytes read from a pipe or device given as a model (a regular file is read whole):
/// `/dev/zero` after a good header would otherwise fill the memory.
const MAX_STREAMED_MODEL_BYTES: u64 = 4 << 30;

pub fn read_model(path: &Path) -> Result<Vec<u8>, String> {
    if path.is_dir() {
        return Err(format!("{} is a folder, not a GGUF file", path.display()));
    }
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    // The magic first: a wrong file of gigabytes is refused without reading it all in. One
    // handle for both reads, so that a pipe's first bytes are not lost to the check.
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    let mut bytes = Vec::new();
    (&mut file)
        .take(4)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    // (An empty file is left to the engine, which says so in its own words.)
    if !bytes.is_empty() {
        tinylab::engine::gguf::check_magic(&bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let limit = if regular {
        u64::MAX
    } else {
        MAX_STREAMED_MODEL_BYTES
    };
    file.take(limit).read_to_end(&mut bytes).map_err(cannot)?;
    if !regular && bytes.len() as u64 >= MAX_STREAMED_MODEL_BYTES {
        return Err(format!(
            "{}: more than {} GB from a stream; give the model as a file",
            path.display(),
            MAX_STREAMED_MODEL_BYTES >> 30
        ));
    }
    Ok(bytes)
}

/// Most bytes of a text or prompt file: far more tokens than anyone would wait for.
pub const MAX_TEXT_FILE_BYTES: u64 = 64 << 20;

/// A UTF-8 text file (`-`: standard input) for `--text-file` and `--prompt-file`, for texts
/// longer than a command line takes (about 128 KB) or holding a NUL, which no argument can.
/// An editor's byte-order mark is not part of the text.
pub fn read_text(path: &Path, what: &str) -> Result<String, String> {
    let bytes = read_small(path, MAX_TEXT_FILE_BYTES, what)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "{}: not UTF-8 text (byte {} is not)",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// The text of `--text`, else of `--text-file`, else a message naming both (`verb`: what the
/// text is given to do, "tokenize", "measure").
pub fn text_or_file(
    text: Option<String>,
    file: Option<&Path>,
    verb: &str,
) -> Result<String, String> {
    match (text, file) {
        (Some(t), _) => Ok(t),
        (None, Some(path)) => read_text(path, "a text file"),
        (None, None) => Err(format!(
            "give the text to {verb}: --text TEXT, or --text-file FILE (- for standard input)"
        )),
    }
}

/// A small input file (items, messages) read whole, at most `max` bytes, pipes and devices
/// included (`/dev/zero` has no length to check first).
pub fn read_small(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, String> {
    let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    if path.is_dir() {
        return Err(format!("{} is a folder, not {what}", path.display()));
    }
    let mut bytes = Vec::new();
    // `-` is standard input, as for most command-line tools.
    let source: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(cannot)?)
    };
    source
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > max {
        return Err(format!(
            "{}: more than {} MB; {what} may have at most {} MB",
            path.display(),
            max >> 20,
            max >> 20
        ));
    }
    Ok(bytes)
}

pub fn print_json(v: &serde_json::Value) -> Result<(), String> {
    let s = serde_json::to_string(v).map_err(|e| format!("cannot write JSON: {e}"))?;
    write_out(&format!("{s}\n"))
}

/// `print!` that says when standard output is closed or full (a pipe's reader gone,
/// /dev/full) instead of panicking or carrying on unread. A descriptor closed before the start
/// (`>&-`) cannot be told apart: Rust's runtime opens /dev/null there.
pub fn write_out(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write the output: {e}"))
}

fn parse_args() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    Cli::from_arg_matches(&command().try_get_matches()?)
}

/// The command line as parsed. Negative numbers are values (`--temperature -1`), so that each
/// option's own range check answers, not clap's "unexpected argument '-1'"; only options that
/// take a value can have one (on a flag such as `--json`, clap's checks in a debug build
/// stopped every command with "internal failure"). clap's idea of a negative number misses
/// `-inf`, `-NaN` and `-.5`, so a real-valued option takes any value that starts with a hyphen.
fn command() -> clap::Command {
    use clap::CommandFactory;
    use std::any::TypeId;
    Cli::command().mut_subcommands(|sc| {
        sc.mut_args(|a| {
            if !a.get_action().takes_values() {
                return a;
            }
            let ty = a.get_value_parser().type_id();
            if ty == TypeId::of::<f32>() || ty == TypeId::of::<f64>() {
                a.allow_hyphen_values(true)
            } else {
                a.allow_negative_numbers(true)
            }
        })
    })
}

/// `--help` and `--version` as clap prints them; any other mistake in the arguments as the
/// one line the contract promises (clap's own has a usage block after it).
fn usage_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    use clap::CommandFactory;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // A bare `tinylab`: clap would print the whole help on stderr.
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .filter(|n| n != "help")
            .collect();
        say!(
            "error: a command is needed: {} (`tinylab --help` lists them)",
            names.join(", ")
        );
        return 2;
    }
    let text = e.render().to_string();
    // The message is its first paragraph: "the following required arguments were not
    // provided:" goes on with the arguments on the lines below it.
    let first: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let first = if first.is_empty() {
        "the arguments are not understood".to_string()
    } else {
        first.join(" ")
    };
    let first = first.strip_prefix("error: ").unwrap_or(&first);
    // clap's tips ("a similar argument exists: '--prompt'") are worth keeping.
    let tips: String = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        .map(|t| format!("; {t}"))
        .collect();
    say!("error: {first}{tips} (`tinylab --help` lists the commands and their options)");
    2
}

pub fn main(memory_cap: Result<(), String>) -> i32 {
    // Anything that still panics becomes one line, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        say!("error: internal failure: {msg}");
    }));
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if let Err(e) = memory_cap {
        say!("error: {e}");
        return 2;
    }
    let result = std::panic::catch_unwind(|| match cli.command {
        Command::Tokenize(a) => tokenize::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Score(a) => score::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Eval(a) => eval::run(a),
    });
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(msg)) => {
            // Keys, names and template text in it may come from the file.
            say!("error: {}", tinylab::engine::error::no_controls(&msg));
            1
        }
        Err(_) => 2,
    }
}

#[cfg(test)]
mod tests {
    /// clap's own checks of the command line, which only a debug build runs by itself: the
    /// test suite runs in release.
    #[test]
    fn the_command_line_passes_claps_checks() {
        super::command().debug_assert();
    }
}
