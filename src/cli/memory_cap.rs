//! A ceiling on the memory the command line holds at once. Hostile input can ask for more
//! than any check before it catches (a chat template's `~` on a list holding a million copies
//! of one 10 KB string builds 10 GB of text inside minijinja, where nothing can be hooked):
//! past the ceiling the process says so on one line and exits, where it used to take the
//! machine's memory for a minute and then abort. Real work stays far below it: the largest
//! model here, its 32k-position cache and the tokenizer take under 3 GB.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Bytes held at once before the process stops, unless `TINYLAB_MAX_MEMORY_MB` says
/// otherwise (tests set a small one).
pub const MAX_BYTES: usize = 8 << 30;

pub struct Capped;

static HELD: AtomicUsize = AtomicUsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(MAX_BYTES);

/// Reads `TINYLAB_MAX_MEMORY_MB`, once, first thing in `main` (the allocator itself cannot
/// read the environment: that allocates). A value that is not a whole number of megabytes
/// above 0 is an error, not ignored: whoever set it expects it to hold.
pub fn limit_from_env() -> Result<(), String> {
    // Set but empty is unset, as shells write `VAR=` to clear one.
    let Some(raw) = std::env::var_os("TINYLAB_MAX_MEMORY_MB").filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let mb = raw
        .to_str()
        .map(str::trim)
        .and_then(|v| match v.parse::<usize>() {
            Ok(mb) => Some(mb),
            // More megabytes than there are: no ceiling to speak of.
            Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => Some(usize::MAX),
            Err(_) => None,
        })
        .filter(|&mb| mb > 0)
        .ok_or_else(|| {
            format!(
                "TINYLAB_MAX_MEMORY_MB is {:?}; give a whole number of megabytes above 0, or \
                 unset it for the default of {} MB",
                raw,
                MAX_BYTES >> 20
            )
        })?;
    LIMIT.store(mb.saturating_mul(1 << 20), Ordering::Relaxed);
    Ok(())
}

/// `n` in decimal into `buf`, without allocating; the digits' slice.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

static STOPPING: AtomicBool = AtomicBool::new(false);

impl Capped {
    fn over(size: usize) -> bool {
        let held = HELD.fetch_add(size, Ordering::Relaxed).saturating_add(size);
        held > LIMIT.load(Ordering::Relaxed) && !STOPPING.swap(true, Ordering::Relaxed)
    }

    fn stop() -> ! {
        // Written straight to the unbuffered stderr, without formatting (which could
        // allocate); then out, without unwinding through the allocator.
        let limit = LIMIT.load(Ordering::Relaxed);
        let mut buf = [0u8; 20];
        let mut err = std::io::stderr();
        let _ = err.write_all(b"error: the input asked for more memory than the ");
        let _ = err.write_all(decimal(limit >> 20, &mut buf));
        let tail: &[u8] = if limit == MAX_BYTES {
            b" MB tinylab allows itself: a hostile chat template or file? \
              (TINYLAB_MAX_MEMORY_MB sets the ceiling)\n"
        } else {
            b" MB that TINYLAB_MAX_MEMORY_MB allows\n"
        };
        let _ = err.write_all(tail);
        std::process::exit(1)
    }
}

// SAFETY: every call is passed to `System` unchanged; only the count of bytes held is kept.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if Self::over(layout.size()) {
            Self::stop();
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::over(layout.size()) {
            Self::stop();
        }
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            if Self::over(new_size - layout.size()) {
                Self::stop();
            }
        } else {
            HELD.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
