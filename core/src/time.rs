//! Time for the rest of the kernel: monotonic and wall-clock readings, and
//! sleeping.

use keel_hal::machine;

use crate::sched;

/// Wall-clock time at monotonic zero, read from the platform's real-time
/// clock on first use (not at boot: nothing before the app needs it).
static WALL_AT_MONO_ZERO: spin::Once<u64> = spin::Once::new();

/// Monotonic nanoseconds.
#[inline]
pub fn monotonic_ns() -> u64 {
    machine::monotonic_ns()
}

/// Wall-clock nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    let anchor = WALL_AT_MONO_ZERO.call_once(|| {
        let wall = machine::wall_clock_ns();
        wall.saturating_sub(machine::monotonic_ns())
    });
    anchor + machine::monotonic_ns()
}

/// Sleep until monotonic time `deadline`.
pub fn sleep_until(deadline: u64) {
    while machine::monotonic_ns() < deadline {
        let mut timer = None;
        sched::prepare_to_block(|_| timer = Some(sched::add_timer(deadline)));
        sched::block();
        if let Some(t) = timer {
            sched::cancel_timer(t);
        }
    }
}

/// Sleep for `ns` nanoseconds.
pub fn sleep_ns(ns: u64) {
    sleep_until(machine::monotonic_ns().saturating_add(ns));
}

/// Sleep for `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    sleep_ns(ms.saturating_mul(1_000_000));
}

/// Calendar date and time (UTC) from Unix seconds, for banners and logs.
pub fn civil_from_unix(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem / 60 % 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::civil_from_unix;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil_from_unix(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil_from_unix(1_795_990_861), (2026, 11, 29, 22, 21, 1));
    }
}
