//! The serial console protocol between a Keel guest and the host tools.
//!
//! ```text
//! keel: ready in 1234 us                 boot finished
//! ~ NAME                                 test NAME starts
//! test NAME ... ok (12 ms)               one result per test
//! test NAME ... FAILED: why
//! test NAME ... skipped: why
//! 41 passed, 0 failed, 2 skipped         the guest's own count
//! keel: PANIC on cpu 0: message          a kernel panic
//!   #3 0xffffffff80012345                a backtrace frame
//! keel: exit status 0 | panic            the end marker
//! ```

use crate::arch::GuestExit;

/// How one test ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Passed, in this many milliseconds.
    Passed(u64),
    /// Failed, with the reason.
    Failed(String),
    /// Skipped itself, with the reason.
    Skipped(String),
}

/// One recognised console line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// Boot finished after this many microseconds.
    Ready(u64),
    /// A test started.
    TestStart(String),
    /// A test ended.
    TestResult(String, Outcome),
    /// The guest's summary line.
    Summary {
        passed: usize,
        failed: usize,
        skipped: usize,
    },
    /// A kernel panic.
    Panic(String),
    /// A backtrace frame: depth and return address.
    Frame(usize, u64),
    /// The end marker.
    Exit(GuestExit),
    /// Anything else.
    Other,
}

/// Classify one line (without its line terminator).
pub fn parse(line: &str) -> Line {
    let line = line.trim_end_matches(['\r', '\n']);
    parse_ready(line)
        .or_else(|| parse_test_start(line))
        .or_else(|| parse_test_result(line))
        .or_else(|| parse_exit(line))
        .or_else(|| {
            line.strip_prefix("keel: PANIC ")
                .map(|rest| Line::Panic(rest.to_string()))
        })
        .or_else(|| parse_frame(line))
        .or_else(|| parse_summary(line))
        .unwrap_or(Line::Other)
}

fn parse_ready(line: &str) -> Option<Line> {
    let us = line.strip_prefix("keel: ready in ")?.strip_suffix(" us")?;
    us.parse().ok().map(Line::Ready)
}

fn parse_test_start(line: &str) -> Option<Line> {
    let name = line.strip_prefix("~ ")?;
    (!name.is_empty() && !name.contains(' ')).then(|| Line::TestStart(name.to_string()))
}

fn parse_test_result(line: &str) -> Option<Line> {
    let (name, result) = line.strip_prefix("test ")?.split_once(" ... ")?;
    let outcome = if let Some(ms) = result.strip_prefix("ok (") {
        Outcome::Passed(ms.strip_suffix(" ms)")?.parse().ok()?)
    } else if let Some(why) = result.strip_prefix("FAILED: ") {
        Outcome::Failed(why.to_string())
    } else {
        Outcome::Skipped(result.strip_prefix("skipped: ")?.to_string())
    };
    Some(Line::TestResult(name.to_string(), outcome))
}

fn parse_exit(line: &str) -> Option<Line> {
    match line.strip_prefix("keel: exit status ")? {
        "panic" => Some(Line::Exit(GuestExit::Panic)),
        n => n.parse().ok().map(|n| Line::Exit(GuestExit::Code(n))),
    }
}

fn parse_frame(line: &str) -> Option<Line> {
    let (depth, addr) = line.trim_start().strip_prefix('#')?.split_once(' ')?;
    let addr = u64::from_str_radix(addr.strip_prefix("0x")?.split(' ').next()?, 16).ok()?;
    Some(Line::Frame(depth.parse().ok()?, addr))
}

fn parse_summary(line: &str) -> Option<Line> {
    let mut parts = line.split(", ");
    let number = |part: Option<&str>, word: &str| -> Option<usize> {
        part?.strip_suffix(word)?.parse().ok()
    };
    let passed = number(parts.next(), " passed")?;
    let failed = number(parts.next(), " failed")?;
    let skipped = number(parts.next(), " skipped")?;
    parts.next().is_none().then_some(Line::Summary {
        passed,
        failed,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_every_marker() {
        assert_eq!(parse("keel: ready in 4321 us\r"), Line::Ready(4321));
        assert_eq!(
            parse("~ core::sched::fairness"),
            Line::TestStart("core::sched::fairness".into())
        );
        assert_eq!(
            parse("test core::a ... ok (12 ms)"),
            Line::TestResult("core::a".into(), Outcome::Passed(12))
        );
        assert_eq!(
            parse("test core::b ... FAILED: x.rs:3: 1 != 2"),
            Line::TestResult("core::b".into(), Outcome::Failed("x.rs:3: 1 != 2".into()))
        );
        assert_eq!(
            parse("test core::c ... skipped: needs 2 CPUs"),
            Line::TestResult("core::c".into(), Outcome::Skipped("needs 2 CPUs".into()))
        );
        assert_eq!(
            parse("41 passed, 1 failed, 2 skipped"),
            Line::Summary {
                passed: 41,
                failed: 1,
                skipped: 2
            }
        );
        assert_eq!(parse("keel: exit status 3"), Line::Exit(GuestExit::Code(3)));
        assert_eq!(
            parse("keel: exit status panic"),
            Line::Exit(GuestExit::Panic)
        );
        assert_eq!(
            parse("keel: PANIC on cpu 0: boom"),
            Line::Panic("on cpu 0: boom".into())
        );
        assert_eq!(
            parse("  #2 0xffffffff80012345"),
            Line::Frame(2, 0xffff_ffff_8001_2345)
        );
    }

    #[test]
    fn lookalikes_are_not_markers() {
        for l in [
            "test name ... maybe",
            "keel: exit status 300",
            "keel: ready in soon",
            "~ two words",
            "1 passed, 2 failed",
            "#x 0x12",
            "test a ... ok (fast ms)",
        ] {
            assert_eq!(parse(l), Line::Other, "{l}");
        }
    }
}
