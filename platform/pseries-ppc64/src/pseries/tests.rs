//! In-kernel tests of this platform's glue and of the ppc64 paths core
//! does not exercise by itself (the system-call entry).

use keel_core::ktest::TestResult;
use keel_core::{check, ktest, time};

#[ktest]
fn wall_clock_comes_from_rtas() -> TestResult {
    let rtas = crate::pseries::power::wall_clock();
    check!(rtas.is_some(), "RTAS get-time-of-day gave no valid time");
    let kernel = time::realtime_ns() / 1_000_000_000;
    let (secs, _) = rtas.unwrap_or((0, 0));
    let diff = kernel.abs_diff(secs);
    check!(
        diff <= 2,
        "kernel wall clock {kernel} differs from RTAS {secs} by {diff} s"
    );
    Ok(())
}
