//! `tinylab`: natively, the command line on the same engine as the page; on wasm32, the page.
//! Every failure is one line on stderr and a non-zero exit; see ../shared/CONTRACT.md.

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: cli::memory_cap::Capped = cli::memory_cap::Capped;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    // Read before anything large is held; said only once the arguments are, so that `--help`
    // still answers beside a bad value.
    let cap = cli::memory_cap::limit_from_env();
    std::process::exit(cli::main(cap));
}

/// In the browser the same binary is the page (built by Trunk, see `www/index.html`).
#[cfg(target_arch = "wasm32")]
fn main() {
    tinylab::app::mount();
}
