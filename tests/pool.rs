//! The engine's thread pool when a helper dies: the job fails on its caller's thread in
//! bounded time (no endless spin), and the pool goes on with the helpers left. Its own test
//! binary, because a dead helper stays dead for the whole process.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::time::Duration;

use tinylab::engine::parallel::{for_each_chunk, helpers, set_threads, start_native_helpers};

fn on_helper() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("tinylab-helper"))
}

/// Runs `f` on a fresh thread and gives up after `secs`: a hang fails the test, not the run.
fn bounded<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("the pool hung: the job did not end")
}

#[test]
fn a_helper_that_panics_fails_the_job_and_the_pool_goes_on() {
    start_native_helpers(2);
    while helpers() < 2 {
        std::thread::yield_now();
    }
    set_threads(3);

    let outcome = bounded(20, || {
        catch_unwind(AssertUnwindSafe(|| {
            for_each_chunk(400, 1, &|_| {
                std::thread::sleep(Duration::from_millis(2));
                if std::thread::current().name() == Some("tinylab-helper-0") {
                    panic!("a kernel bug");
                }
            })
        }))
        .map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    let message = outcome.expect_err("a job whose helper died cannot succeed");
    assert!(message.contains("helper thread"), "{message}");
    assert_eq!(
        helpers(),
        1,
        "the dead helper still counts, or the live one left"
    );

    // The pool still works with the helper left, and every item runs exactly once.
    let (counts, by_helper) = bounded(20, || {
        let hits: Vec<AtomicUsize> = (0..2000).map(|_| AtomicUsize::new(0)).collect();
        let by_helper = AtomicUsize::new(0);
        for_each_chunk(2000, 7, &|r| {
            if on_helper() {
                by_helper.fetch_add(r.len(), SeqCst);
            }
            for i in r {
                hits[i].fetch_add(1, SeqCst);
            }
            std::thread::sleep(Duration::from_micros(200));
        });
        let counts = hits.iter().map(|h| h.load(SeqCst)).collect::<Vec<_>>();
        (counts, by_helper.load(SeqCst))
    });
    assert!(counts.iter().all(|&c| c == 1));
    assert!(by_helper > 0, "the live helper took no part");

    // A panic on the calling thread itself leaves the pool usable too.
    let again = bounded(20, || {
        let r = catch_unwind(|| {
            for_each_chunk(100, 1, &|_| {
                if !on_helper() {
                    panic!("caller-side bug");
                }
                std::thread::sleep(Duration::from_millis(1));
            })
        });
        assert!(r.is_err());
        let n = AtomicUsize::new(0);
        for_each_chunk(1000, 10, &|r| {
            n.fetch_add(r.len(), SeqCst);
        });
        n.load(SeqCst)
    });
    assert_eq!(again, 1000);
}
