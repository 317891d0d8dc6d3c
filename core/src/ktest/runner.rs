//! Runs the selected in-kernel tests, one thread each, and reports them.

use alloc::string::{String, ToString};
use alloc::sync::Arc;

use super::{KernelTest, TestFailure, display_name, registry};
use crate::sched::{self, ExitReason, Options};
use crate::sync::SpinLock;
use crate::{kprintln, time};

/// Counts of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed (including a bad selection).
    pub failed: usize,
    /// Tests that skipped themselves.
    pub skipped: usize,
}

/// A test still running after this long fails (and the threads are listed).
const TEST_TIMEOUT_NS: u64 = 60_000_000_000;

/// Tests run only when named explicitly (the harness's self-check).
const EXPLICIT_ONLY: &str = "harness_probe";

fn selected(filter: &str, name: &str) -> bool {
    if filter == "all" {
        return !name.contains(EXPLICIT_ONLY);
    }
    filter.split(',').any(|f| !f.is_empty() && name.contains(f))
}

/// Run every test whose name contains one of the comma-separated fragments
/// in `filter` (or all, for `all`), optionally only those after `after`.
pub fn run(filter: &str, after: Option<&str>) -> Summary {
    let tests = registry();
    let mut summary = Summary::default();
    let first = match after {
        None => 0,
        Some(a) => match tests.iter().position(|t| display_name(t.name) == a) {
            Some(i) => i + 1,
            None => {
                kprintln!("keel: keel.test.after={a}: no such test");
                summary.failed += 1;
                return summary;
            }
        },
    };
    for test in tests[first..].iter() {
        let name = display_name(test.name);
        if !selected(filter, &name) {
            continue;
        }
        kprintln!("~ {name}");
        let start = time::monotonic_ns();
        let result = run_one(test, &name);
        let ms = (time::monotonic_ns() - start) / 1_000_000;
        match result {
            Ok(()) => {
                summary.passed += 1;
                kprintln!("test {name} ... ok ({ms} ms)");
            }
            Err(TestFailure::Skipped(why)) => {
                summary.skipped += 1;
                kprintln!("test {name} ... skipped: {why}");
            }
            Err(TestFailure::Failed(why)) => {
                summary.failed += 1;
                kprintln!("test {name} ... FAILED: {why}");
            }
        }
    }
    kprintln!(
        "{} passed, {} failed, {} skipped",
        summary.passed,
        summary.failed,
        summary.skipped
    );
    summary
}

fn run_one(test: &'static KernelTest, name: &str) -> Result<(), TestFailure> {
    let slot: Arc<SpinLock<Option<Result<(), TestFailure>>>> = Arc::new(SpinLock::new(None));
    let out = slot.clone();
    let body = test.run;
    let handle = sched::spawn_with(
        Options {
            name: name.to_string().into(),
            pin: None,
            killable: true,
        },
        move || {
            let r = body();
            *out.lock() = Some(r);
        },
    );
    let deadline = time::monotonic_ns() + TEST_TIMEOUT_NS;
    match handle.thread().join_deadline(deadline) {
        Some(ExitReason::Returned) => slot.lock().take().unwrap_or(Ok(())),
        Some(ExitReason::Faulted(what)) => {
            Err(TestFailure::Failed(String::from("fault: ") + &what))
        }
        None => {
            kprintln!(
                "keel: test {name} still running after {} s; threads:",
                TEST_TIMEOUT_NS / 1_000_000_000
            );
            sched::print_threads();
            Err(TestFailure::Failed(alloc::format!(
                "timed out after {} s",
                TEST_TIMEOUT_NS / 1_000_000_000
            )))
        }
    }
}
