//! The in-kernel test registry and runner.
//!
//! `#[ktest]` puts a [`KernelTest`] into the `keel_tests` link section; the
//! linker brackets that section with `__start_keel_tests`/`__stop_keel_tests`.
//! The runner executes each selected test in its own killable thread, so a
//! fault fails that test and the suite goes on. Serial protocol (the host
//! harness parses it):
//!
//! ```text
//! ~ NAME                         test NAME is starting
//! test NAME ... ok (12 ms)       one result line per test
//! test NAME ... FAILED: why
//! test NAME ... skipped: why
//! 41 passed, 0 failed, 2 skipped
//! ```

mod runner;

pub use runner::{Summary, run};

use alloc::string::String;

/// A registered test.
#[repr(C)]
pub struct KernelTest {
    /// `module_path!()::function`.
    pub name: &'static str,
    /// The test body.
    pub run: fn() -> TestResult,
}

/// How a test ended, if not with success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestFailure {
    /// An assertion did not hold.
    Failed(String),
    /// The test cannot run here (e.g. needs more CPUs); not a failure.
    Skipped(String),
}

/// A test's result.
pub type TestResult = Result<(), TestFailure>;

/// Lets test functions return `()` or a [`TestResult`].
pub trait IntoTestResult {
    /// Convert.
    fn into_test_result(self) -> TestResult;
}

impl IntoTestResult for () {
    fn into_test_result(self) -> TestResult {
        Ok(())
    }
}

impl IntoTestResult for TestResult {
    fn into_test_result(self) -> TestResult {
        self
    }
}

unsafe extern "Rust" {
    static __start_keel_tests: KernelTest;
    static __stop_keel_tests: KernelTest;
}

/// Every test linked into this image, in link order.
pub fn registry() -> &'static [KernelTest] {
    // SAFETY: the linker defines both symbols around the `keel_tests`
    // section, which holds only `KernelTest` values placed by `#[ktest]`.
    unsafe {
        let start = &raw const __start_keel_tests;
        let stop = &raw const __stop_keel_tests;
        let len = (stop as usize - start as usize) / core::mem::size_of::<KernelTest>();
        core::slice::from_raw_parts(start, len)
    }
}

/// The name shown to people: `core::sched::fairness` rather than
/// `keel_core::tests::sched::fairness`.
pub fn display_name(raw: &str) -> String {
    let raw = raw.strip_prefix("keel_").unwrap_or(raw);
    let mut out = String::new();
    for part in raw.split("::").filter(|p| *p != "tests" && *p != "ktests") {
        if !out.is_empty() {
            out.push_str("::");
        }
        out.push_str(part);
    }
    out
}

/// Fail the current test unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr) => {{
        let holds: bool = $cond;
        if !holds {
            return Err($crate::ktest::TestFailure::Failed(alloc::format!(
                "{}:{}: check failed: {}",
                file!(),
                line!(),
                stringify!($cond)
            )));
        }
    }};
    ($cond:expr, $($arg:tt)+) => {{
        let holds: bool = $cond;
        if !holds {
            return Err($crate::ktest::TestFailure::Failed(alloc::format!(
                "{}:{}: {}",
                file!(),
                line!(),
                format_args!($($arg)+)
            )));
        }
    }};
}

/// Fail the current test unless the two values are equal.
#[macro_export]
macro_rules! check_eq {
    ($a:expr, $b:expr) => {
        match (&$a, &$b) {
            (a, b) => {
                if a != b {
                    return Err($crate::ktest::TestFailure::Failed(alloc::format!(
                        "{}:{}: {} == {} failed: {:?} != {:?}",
                        file!(),
                        line!(),
                        stringify!($a),
                        stringify!($b),
                        a,
                        b
                    )));
                }
            }
        }
    };
}

/// Skip the current test with a reason.
#[macro_export]
macro_rules! skip {
    ($($arg:tt)+) => {
        return Err($crate::ktest::TestFailure::Skipped(alloc::format!($($arg)+)))
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_names_drop_crate_prefix_and_test_modules() {
        assert_eq!(
            super::display_name("keel_core::tests::sched::fairness"),
            "core::sched::fairness"
        );
        assert_eq!(
            super::display_name("keel_fs::ramfs::ktests::create"),
            "fs::ramfs::create"
        );
    }
}
