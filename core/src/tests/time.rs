//! Clock and timer accuracy on the real machine.

use alloc::vec::Vec;

use crate::ktest::TestResult;
use crate::{check, ktest, time};

#[ktest]
fn ten_ms_sleep_wakes_within_ten_to_fifteen_ms() -> TestResult {
    let mut samples: Vec<u64> = (0..7)
        .map(|_| {
            let start = time::monotonic_ns();
            time::sleep_ms(10);
            time::monotonic_ns() - start
        })
        .collect();
    samples.sort_unstable();
    let median = samples[samples.len() / 2];
    crate::kprintln!(
        "  sleep(10 ms): median {} us, min {} us, max {} us",
        median / 1000,
        samples[0] / 1000,
        samples[6] / 1000
    );
    check!(samples[0] >= 10_000_000, "woke early: {} ns", samples[0]);
    check!(
        median <= 15_000_000,
        "median wake-up {} us is late",
        median / 1000
    );
    Ok(())
}

#[ktest]
fn monotonic_clock_never_goes_back_and_wall_clock_is_plausible() -> TestResult {
    let mut last = time::monotonic_ns();
    for _ in 0..100_000 {
        let now = time::monotonic_ns();
        check!(now >= last, "clock went back: {last} -> {now}");
        last = now;
    }
    // Later than 2024-01-01 and earlier than 2100: a sane RTC reading.
    let secs = time::realtime_ns() / 1_000_000_000;
    check!(
        (1_704_067_200..4_102_444_800).contains(&secs),
        "wall clock says {secs} s since 1970"
    );
    Ok(())
}
