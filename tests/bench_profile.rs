//! The benchmark times its runs with the profile's clock off (its readings are no part of what
//! a user's run costs) and takes the shares from one more, profiled run. Its own test binary:
//! the profile's clock and switch are process-wide.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use common::tiny::tiny_gguf;
use tinylab::engine::{profile, Engine};

static READINGS: AtomicUsize = AtomicUsize::new(0);

fn counting_clock() -> f64 {
    READINGS.fetch_add(1, SeqCst) as f64
}

#[test]
fn timed_runs_leave_the_profile_clock_unread() {
    let mut e = Engine::from_bytes(&tiny_gguf("llama", 1), 256).unwrap();
    let ids = tinylab::bench::prompt_ids(&e, 8).unwrap();
    let clock = || 0.0;
    // Without a clock there are no shares.
    let f = tinylab::bench::run(&mut e, &ids, 5, 1, &clock).unwrap();
    assert!(f.decode_share_by_phase.is_empty() && f.decode_product_share.is_none());

    profile::set_clock(counting_clock);
    let readings = |e: &mut Engine, repetitions| {
        let before = READINGS.load(SeqCst);
        let f = tinylab::bench::run(e, &ids, 5, repetitions, &clock).unwrap();
        (READINGS.load(SeqCst) - before, f)
    };
    let (one, f1) = readings(&mut e, 1);
    let (three, f3) = readings(&mut e, 3);
    // Only the one profiled run reads the clock, however many runs are timed.
    assert!(one > 0);
    assert_eq!(one, three);
    for f in [&f1, &f3] {
        assert_eq!(f.decode_forwards, 5);
        let phases: Vec<&str> = f
            .decode_share_by_phase
            .iter()
            .map(|p| p.0.as_str())
            .collect();
        assert!(
            phases.contains(&"products") && phases.contains(&"attention"),
            "{phases:?}"
        );
        assert!(f.decode_product_share.is_some_and(|s| s > 0.0));
        assert!(!f.prefill_share_by_phase.is_empty());
    }
    // The switch is back on afterwards: a user's profiled work still counts.
    assert!(profile::enabled());
}
