//! A pool of helper threads for the weight products (`par_matmul`).
//!
//! The engine never spawns a thread itself, because how to start one depends on the platform:
//! in the browser a thread is a Web Worker sharing the wasm memory, started by the worker crate;
//! natively it is a `std::thread` (tests). Whoever starts a helper has it call [`helper_loop`],
//! which never returns. [`for_each_chunk`] then runs a job on the calling thread plus up to
//! `set_threads(n) - 1` helpers and returns when every chunk is done. With no helpers (the
//! single-threaded wasm build, or before any has started) it simply runs the job inline.
//!
//! The protocol is four atomics: `GEN` counts jobs (helpers sleep on it), `JOB` points at the
//! caller's job while it runs, `INSIDE` counts helpers that may be reading `JOB`, and the job's
//! cursors hand out chunks, one cursor per thread's segment (`SLEEPERS` only saves a wake-up
//! call when nobody sleeps; the item counters only feed the benchmark). The caller clears `JOB`
//! and waits for `INSIDE` to drop to zero before its stack frame (which holds the job) goes
//! away. All of it is `SeqCst`: either a helper sees `JOB` cleared, or the caller sees that
//! helper in `INSIDE`.

use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

static GEN: AtomicU32 = AtomicU32::new(0);
static JOB: AtomicUsize = AtomicUsize::new(0);
static INSIDE: AtomicU32 = AtomicU32::new(0);
/// Helpers asleep in `sleep_while`; waking costs a call into the browser, so it is skipped
/// when every helper is spinning (the usual case while decoding).
static SLEEPERS: AtomicU32 = AtomicU32::new(0);
static HELPERS: AtomicU32 = AtomicU32::new(0);
static WANTED: AtomicU32 = AtomicU32::new(1);
/// Items run by helpers and in all, for the benchmark's check that helpers pull their weight.
static ITEMS_BY_HELPERS: AtomicUsize = AtomicUsize::new(0);
static ITEMS_PARALLEL: AtomicUsize = AtomicUsize::new(0);
/// One job at a time: natively, tests call in from several threads.
static CALLER: Mutex<()> = Mutex::new(());
/// Helpers that died (a panic in a job's code): a job in progress then cannot finish, and its
/// caller must stop waiting for it instead of spinning for ever.
static DIED: AtomicU32 = AtomicU32::new(0);
static DEATH_NOTE: Mutex<String> = Mutex::new(String::new());

thread_local! {
    /// This helper is inside a job (counted in `INSIDE`).
    static IN_JOB: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Spins this many times before sleeping: waking a sleeping Web Worker costs tens of
/// microseconds, about as long as one small decode product.
const SPINS: u32 = 1 << 21;

/// Most segments a job is cut into (one per thread that takes part); a thread past this many
/// starts in a segment that another thread already owns, and shares its cursor.
const MAX_SEGMENTS: usize = 8;

struct Job<'a> {
    f: &'a (dyn Fn(Range<usize>) + Sync),
    n_items: usize,
    /// The most items one grab takes.
    chunk: usize,
    /// Contiguous runs of items, one per thread: `segments` of them, the i-th ending at
    /// `end(i)`, each with its own cursor.
    segments: usize,
    cursors: [Padded; MAX_SEGMENTS],
    /// Hands each thread that joins its own segment.
    joined: Padded,
    done: Padded,
}

/// An atomic alone on its cache line: the cursors and the done count are written by different
/// threads at different moments, and sharing a line would make each write evict the other.
#[repr(align(64))]
struct Padded(AtomicUsize);

impl std::ops::Deref for Padded {
    type Target = AtomicUsize;
    fn deref(&self) -> &AtomicUsize {
        &self.0
    }
}

impl Job<'_> {
    fn new<'a>(
        f: &'a (dyn Fn(Range<usize>) + Sync),
        n_items: usize,
        chunk: usize,
        threads: usize,
    ) -> Job<'a> {
        let segments = threads.clamp(1, MAX_SEGMENTS);
        let job = Job {
            f,
            n_items,
            chunk,
            segments,
            cursors: std::array::from_fn(|_| Padded(AtomicUsize::new(0))),
            joined: Padded(AtomicUsize::new(0)),
            done: Padded(AtomicUsize::new(0)),
        };
        for s in 0..segments {
            job.cursors[s].store(job.start(s), SeqCst);
        }
        job
    }

    fn start(&self, segment: usize) -> usize {
        // In u64: `n_items * segment` can pass usize::MAX on wasm32 long before `n_items` does.
        (self.n_items as u64 * segment as u64 / self.segments as u64) as usize
    }

    fn end(&self, segment: usize) -> usize {
        self.start(segment + 1)
    }

    /// Runs its own segment, then whatever is left of the others; returns how many items this
    /// thread ran.
    fn work(&self) -> usize {
        let first = self.joined.fetch_add(1, SeqCst);
        let mut ran = 0;
        for k in 0..self.segments {
            let segment = (first + k) % self.segments;
            while let Some(items) = self.grab(segment) {
                let n = items.len();
                (self.f)(items);
                ran += n;
                self.done.fetch_add(n, SeqCst);
            }
        }
        ran
    }

    /// The next items of `segment`: `chunk` at most, and no more than half of what is left in
    /// it, so that its last grabs are single items that another thread, done with its own
    /// segment, can take. Each thread streams through its own contiguous part of the weight
    /// (ascending runs of memory, which the CPU's prefetching follows: a decoding grab is read
    /// as four, `weight::decode_streams`) and grabs from its own cursor; a single shared cursor
    /// moved its cache line between the cores on every grab, and handed out items round the
    /// threads. (Fixed grabs of a quarter of each thread's share
    /// left one thread idle for up to a grab at the end of every product, and a decode step has
    /// about 120 of them.)
    fn grab(&self, segment: usize) -> Option<Range<usize>> {
        let end = self.end(segment);
        let cursor = &self.cursors[segment];
        let mut start = cursor.load(SeqCst);
        loop {
            if start >= end {
                return None;
            }
            let take = ((end - start) / 2).clamp(1, self.chunk);
            match cursor.compare_exchange_weak(start, start + take, SeqCst, SeqCst) {
                Ok(_) => return Some(start..start + take),
                Err(now) => start = now,
            }
        }
    }
}

/// Items run on the pool so far, and how many of those the helpers ran.
pub fn item_counts() -> (usize, usize) {
    (ITEMS_PARALLEL.load(SeqCst), ITEMS_BY_HELPERS.load(SeqCst))
}

/// Threads a job may use now: the caller plus the helpers that have started, at most
/// `set_threads`.
pub fn threads() -> usize {
    (WANTED.load(SeqCst)).min(HELPERS.load(SeqCst) + 1).max(1) as usize
}

/// Helpers that have started and are waiting for work.
pub fn helpers() -> usize {
    HELPERS.load(SeqCst) as usize
}

/// Most threads the page offers (its thread control, and each worker's helpers): more than
/// cores only adds contention, and 8 covers the laptops this is for.
pub const MAX_PAGE_THREADS: usize = 8;
/// Most threads any caller may ask for (the CLI's `--threads`).
pub const MAX_THREADS: usize = 64;

/// The cap `set_threads` last set (1 until then).
pub fn wanted_threads() -> usize {
    WANTED.load(SeqCst) as usize
}

/// Caps the threads a job uses (the caller included). Helpers beyond the cap stay asleep.
pub fn set_threads(n: usize) {
    WANTED.store(n.clamp(1, MAX_THREADS) as u32, SeqCst);
}

/// The body of a helper thread: registers, then runs chunks of every job it is allowed to join.
/// `index` is 0 for the first helper. Never returns.
pub fn helper_loop(index: usize) -> ! {
    // Natively a panic unwinds through here; the guard tells the pool. (In wasm a panic traps,
    // and the helper's script calls `helper_died` itself.)
    struct Guard(usize);
    impl Drop for Guard {
        fn drop(&mut self) {
            if std::thread::panicking() {
                helper_died(self.0, "it panicked");
            }
        }
    }
    let _guard = Guard(index);
    HELPERS.fetch_add(1, SeqCst);
    let mut seen = GEN.load(SeqCst);
    loop {
        // A helper beyond the wanted count sleeps at once: spinning would take a core from
        // the threads that work.
        let wanted = index + 1 < WANTED.load(SeqCst) as usize;
        wait_for_job(seen, if wanted { SPINS } else { 0 });
        seen = GEN.load(SeqCst);
        // Asked again after the wait: a helper that slept through `set_threads` raising the
        // count joins the job that woke it rather than the next one.
        if index + 1 >= WANTED.load(SeqCst) as usize {
            continue;
        }
        INSIDE.fetch_add(1, SeqCst);
        IN_JOB.with(|c| c.set(true));
        let job = JOB.load(SeqCst);
        if job != 0 {
            // SAFETY: the caller keeps the job alive until `INSIDE` is back to zero.
            let ran = unsafe { &*(job as *const Job) }.work();
            ITEMS_BY_HELPERS.fetch_add(ran, SeqCst);
        }
        IN_JOB.with(|c| c.set(false));
        INSIDE.fetch_sub(1, SeqCst);
    }
}

/// Takes a dead helper out of the pool: it no longer counts as inside a job or as a thread,
/// and the job it was helping with fails on its caller's thread with `why`.
pub fn helper_died(index: usize, why: &str) {
    if IN_JOB.with(|c| c.replace(false)) {
        INSIDE.fetch_sub(1, SeqCst);
    }
    HELPERS.fetch_sub(1, SeqCst);
    if let Ok(mut note) = DEATH_NOTE.lock() {
        *note = format!("helper thread {index} failed: {why}");
    }
    DIED.fetch_add(1, SeqCst);
}

/// Runs `f` over `0..n_items` in chunks of at most `chunk` items (smaller towards the end),
/// spread over the caller and the helpers allowed by `set_threads`. Returns when all items are
/// done.
pub fn for_each_chunk(n_items: usize, chunk: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
    if n_items == 0 {
        return;
    }
    let chunk = chunk.max(1);
    if threads() <= 1 || n_items <= chunk {
        f(0..n_items);
        return;
    }
    let _one_at_a_time = CALLER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let job = Job::new(f, n_items, chunk, threads());
    ITEMS_PARALLEL.fetch_add(n_items, SeqCst);
    let died_before = DIED.load(SeqCst);
    /// Whatever way this frame is left (a panic in `f` on this thread included), no helper may
    /// still hold the job when it goes.
    struct Unpublish;
    impl Drop for Unpublish {
        fn drop(&mut self) {
            JOB.store(0, SeqCst);
            while INSIDE.load(SeqCst) != 0 {
                std::hint::spin_loop();
            }
        }
    }
    let unpublish = Unpublish;
    JOB.store(&job as *const Job as usize, SeqCst);
    GEN.fetch_add(1, SeqCst);
    if SLEEPERS.load(SeqCst) > 0 {
        wake_helpers();
    }
    job.work();
    while job.done.load(SeqCst) < n_items {
        if DIED.load(SeqCst) != died_before {
            drop(unpublish);
            let note = DEATH_NOTE.lock().map(|n| n.clone()).unwrap_or_default();
            // Part of the job never ran: its results cannot be used. The worker's panic hook
            // turns this into a message in the pane, which can load the model again.
            panic!("the engine's {note}, so the job could not finish");
        }
        std::hint::spin_loop();
    }
    drop(unpublish);
}

fn wait_for_job(seen: u32, spins: u32) {
    for _ in 0..spins {
        if GEN.load(SeqCst) != seen {
            return;
        }
        std::hint::spin_loop();
    }
    while GEN.load(SeqCst) == seen {
        // Counted before the wait re-checks `GEN`: either the caller sees this sleeper and
        // wakes it, or the wait sees the new generation and returns at once.
        SLEEPERS.fetch_add(1, SeqCst);
        sleep_while(seen);
        SLEEPERS.fetch_sub(1, SeqCst);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
fn sleep_while(seen: u32) {
    // SAFETY: `GEN` is a live, aligned 32-bit atomic in the shared memory.
    unsafe {
        core::arch::wasm32::memory_atomic_wait32(GEN.as_ptr() as *mut i32, seen as i32, -1);
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
fn wake_helpers() {
    // SAFETY: as above.
    unsafe {
        core::arch::wasm32::memory_atomic_notify(GEN.as_ptr() as *mut i32, u32::MAX);
    }
}

// Natively the pool only serves tests; a short sleep is simpler than a futex and fast enough.
#[cfg(not(all(target_arch = "wasm32", target_feature = "atomics")))]
fn sleep_while(_seen: u32) {
    std::thread::sleep(std::time::Duration::from_micros(200));
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "atomics")))]
fn wake_helpers() {}

/// An output buffer that the pool's threads fill in disjoint parts. The one way the engine
/// shares a `&mut [f32]` across helpers (weight products, attention heads).
pub struct DisjointOut<'a> {
    ptr: *mut f32,
    len: usize,
    _buf: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: the wrapper only hands out writes through `write`, whose contract makes every element
// written by at most one thread during a job; the borrow it holds keeps the buffer alive and
// unaliased for as long as the wrapper exists.
unsafe impl Sync for DisjointOut<'_> {}

impl<'a> DisjointOut<'a> {
    pub fn new(buf: &'a mut [f32]) -> Self {
        DisjointOut {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            _buf: std::marker::PhantomData,
        }
    }

    /// Copies `values` to `at..at + values.len()`; the bounds are checked.
    ///
    /// # Safety
    /// No other thread writes any element of that range while this wrapper is shared: callers
    /// give each work item its own rows or columns.
    pub unsafe fn write(&self, at: usize, values: &[f32]) {
        assert!(
            at <= self.len && values.len() <= self.len - at,
            "write out of bounds"
        );
        // SAFETY: in bounds (checked above); disjoint from other threads' writes (contract).
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), self.ptr.add(at), values.len()) }
    }
}

/// Runs `f(row index, row)` over every `row_len`-long row of `data`, on the pool when there is
/// enough work to pay for waking it. Each row goes to one thread, so `f` may change it in place;
/// the result cannot depend on the thread count as long as `f` reads only its own row.
pub fn for_each_row<T: Send>(data: &mut [T], row_len: usize, f: &(dyn Fn(usize, &mut [T]) + Sync)) {
    for_each_row_of_work(data, row_len, data.len(), f)
}

/// `for_each_row` where the rows stand for `work` values in all: rows that are each a summary
/// of much more (one per chunk of a vocabulary's logits) still go to the pool.
pub fn for_each_row_of_work<T: Send>(
    data: &mut [T],
    row_len: usize,
    work: usize,
    f: &(dyn Fn(usize, &mut [T]) + Sync),
) {
    if row_len == 0 {
        return;
    }
    let rows = data.len() / row_len;
    // Below about 32k values a pass takes microseconds: as long as handing out the job.
    let chunk = if work >= 1 << 15 {
        rows.div_ceil(4 * threads()).max(1)
    } else {
        rows
    };
    let base = DisjointRows {
        ptr: data.as_mut_ptr(),
        _buf: std::marker::PhantomData,
    };
    for_each_chunk(rows, chunk, &|range| {
        for r in range {
            // SAFETY: `r < rows`, so the row lies inside `data`; every row index is handed out
            // exactly once per job, so no two threads ever hold the same row.
            f(r, unsafe { base.row(r, row_len) });
        }
    });
}

struct DisjointRows<'a, T> {
    ptr: *mut T,
    _buf: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: only `for_each_row` uses it, and it gives each row to one thread.
unsafe impl<T: Send> Sync for DisjointRows<'_, T> {}

impl<T> DisjointRows<'_, T> {
    /// # Safety
    /// The row lies inside the buffer and no other thread holds it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, r: usize, row_len: usize) -> &mut [T] {
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r * row_len), row_len) }
    }
}

/// Starts `n` native helper threads (for tests and the CLI); returns how many are running.
#[cfg(not(target_arch = "wasm32"))]
pub fn start_native_helpers(n: usize) -> usize {
    static STARTED: Mutex<usize> = Mutex::new(0);
    let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
    while *started < n {
        let index = *started;
        if std::thread::Builder::new()
            .name(format!("tinylab-helper-{index}"))
            .spawn(move || helper_loop(index))
            .is_err()
        {
            break;
        }
        *started += 1;
    }
    *started
}

/// Two native helpers and three threads in use, for every test in this binary that wants the
/// parallel path. Nothing lowers the count again, so tests running side by side agree.
#[cfg(test)]
pub fn test_pool() {
    start_native_helpers(2);
    while helpers() < 2 {
        std::thread::yield_now();
    }
    set_threads(3);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One thread runs a whole job through `work`: every segment (empty ones too, when there
    /// are fewer items than segments; more threads than segments), each item once.
    #[test]
    fn one_thread_runs_every_segment() {
        for n in 1..40 {
            for threads in 1..12 {
                for chunk in [1, 3, 64] {
                    let hits: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
                    let f = |range: Range<usize>| {
                        for i in range {
                            hits[i].fetch_add(1, SeqCst);
                        }
                    };
                    let job = Job::new(&f, n, chunk, threads);
                    assert_eq!(job.work(), n);
                    assert_eq!(job.done.load(SeqCst), n);
                    assert!(
                        hits.iter().all(|h| h.load(SeqCst) == 1),
                        "{n} {threads} {chunk}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_item_runs_exactly_once_across_threads() {
        test_pool();
        let who = Mutex::new(std::collections::HashSet::new());
        for round in 0..50 {
            let n = 1000 + round;
            let hits: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
            for_each_chunk(n, 7, &|range| {
                who.lock().unwrap().insert(std::thread::current().id());
                for i in range {
                    hits[i].fetch_add(1, SeqCst);
                }
                // Long enough that a helper wakes and takes some chunks.
                std::thread::sleep(std::time::Duration::from_micros(20));
            });
            assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "round {round}");
        }
        assert!(who.lock().unwrap().len() > 1, "no helper ever joined");
    }
}
