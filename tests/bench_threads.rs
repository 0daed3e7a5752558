//! The benchmark's interleaved thread comparison (`bench::interleaved`): blocks at one thread
//! and at the pool's count in the same runs. Its own test binary, because it changes the
//! pool's process-wide thread cap while it runs.

mod common;

use std::time::Instant;

use common::tiny::tiny_gguf;
use tinylab::engine::parallel::{helpers, set_threads, start_native_helpers, wanted_threads};
use tinylab::engine::Engine;

#[test]
fn interleaved_blocks_time_one_thread_against_the_pool_and_restore_its_cap() {
    let start = Instant::now();
    let clock = move || start.elapsed().as_secs_f64() * 1000.0;
    let mut e = Engine::from_bytes(&tiny_gguf("llama", 1), 256).unwrap();
    let ids = tinylab::bench::prompt_ids(&e, 8).unwrap();

    // One thread: nothing to compare, and the workload says so.
    assert_eq!(
        tinylab::bench::interleaved(&mut e, &ids, 2, 2, &clock).unwrap(),
        None
    );
    let f = tinylab::bench::run(&mut e, &ids, 4, 1, &clock).unwrap();
    assert_eq!(f.decode_threads_interleaved, None);

    start_native_helpers(1);
    while helpers() < 1 {
        std::thread::yield_now();
    }
    set_threads(2);
    let r = tinylab::bench::interleaved(&mut e, &ids, 3, 2, &clock)
        .unwrap()
        .expect("two threads give a comparison");
    assert_eq!((r.threads, r.block_tokens, r.ratios.len()), (2, 2, 3));
    assert!(r.ratios.iter().all(|x| x.is_finite() && *x > 0.0), "{r:?}");
    let mut sorted = r.ratios.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(r.ratio_median, sorted[1]);
    assert!(r.one_thread_tokens_per_s > 0.0 && r.threads_tokens_per_s > 0.0);
    // The cap is back where it was, for the runs after it.
    assert_eq!(wanted_threads(), 2);

    // The whole workload carries it on two threads.
    let f = tinylab::bench::run(&mut e, &ids, 4, 1, &clock).unwrap();
    let r = f.decode_threads_interleaved.expect("two threads");
    assert_eq!(r.ratios.len(), tinylab::bench::INTERLEAVED_ROUNDS);

    // A run that cannot decode its blocks (the prompt fills the context) is an error, not a
    // ratio of partial blocks, and the cap still comes back.
    let long: Vec<u32> = std::iter::repeat_n(ids[1], 250).collect();
    assert!(tinylab::bench::interleaved(&mut e, &long, 1, 8, &clock).is_err());
    assert_eq!(wanted_threads(), 2);
    // Nor may the last block come up short: 256 positions hold the prompt, the three blocks
    // before it and only part of the last one.
    let tight: Vec<u32> = std::iter::repeat_n(ids[1], 256 - 3 * 8 - 4).collect();
    assert!(tinylab::bench::interleaved(&mut e, &tight, 1, 8, &clock).is_err());
    let fits: Vec<u32> = std::iter::repeat_n(ids[1], 256 - 4 * 8 - 1).collect();
    assert!(tinylab::bench::interleaved(&mut e, &fits, 1, 8, &clock).is_ok());
    assert_eq!(wanted_threads(), 2);
    // The whole workload still gives the figures asked for where neither the comparison's
    // blocks nor the evaluation's items fit (`bench --context 64` failed on them).
    let mut small = Engine::from_bytes(&tiny_gguf("llama", 1), 24).unwrap();
    let f = tinylab::bench::run(&mut small, &ids, 4, 1, &clock).unwrap();
    assert_eq!((f.decode_threads_interleaved, f.eval), (None, None));
    assert!(f.decode_tokens_per_s > 0.0);
}
