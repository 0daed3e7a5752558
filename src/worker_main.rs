//! The page's model worker (built by Trunk as `tinylab_worker`); see `tinylab::worker`.

#[cfg(target_arch = "wasm32")]
fn main() {
    tinylab::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("tinylab_worker runs inside the browser; use `tinylab` on the command line");
    std::process::exit(2);
}
