//! `tinylab`, the native command line on the same engine as the page.
//! Every failure is one line on stderr and a non-zero exit; see ../shared/CONTRACT.md.

#[cfg(not(target_arch = "wasm32"))]
mod cli;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(target_arch = "wasm32")]
fn main() {}
