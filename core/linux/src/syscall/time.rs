//! Clocks and sleeping: clock_gettime and friends, nanosleep,
//! clock_nanosleep, times, getrusage.

use keel_core::time;

use super::Call;
use crate::errno::{Errno, SysResult};
use crate::time_util::{self, write_timespec, write_timeval};
use crate::{mem, process, signal};

const CLOCK_REALTIME: u64 = 0;
const CLOCK_MONOTONIC: u64 = 1;
const CLOCK_PROCESS_CPUTIME_ID: u64 = 2;
const CLOCK_THREAD_CPUTIME_ID: u64 = 3;
const CLOCK_MONOTONIC_RAW: u64 = 4;
const CLOCK_REALTIME_COARSE: u64 = 5;
const CLOCK_MONOTONIC_COARSE: u64 = 6;
const CLOCK_BOOTTIME: u64 = 7;
const CLOCK_REALTIME_ALARM: u64 = 8;
const CLOCK_BOOTTIME_ALARM: u64 = 9;
const CLOCK_TAI: u64 = 11;
/// TAI - UTC since 2017.
const TAI_OFFSET_NS: u64 = 37_000_000_000;

/// The reading of `clock`, in nanoseconds.
pub fn read_clock(clock: u64) -> Result<u64, Errno> {
    Ok(match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM => time::realtime_ns(),
        // The VM never suspends, so boot time is monotonic time.
        CLOCK_MONOTONIC
        | CLOCK_MONOTONIC_RAW
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_BOOTTIME
        | CLOCK_BOOTTIME_ALARM => time::monotonic_ns(),
        CLOCK_TAI => time::realtime_ns() + TAI_OFFSET_NS,
        CLOCK_PROCESS_CPUTIME_ID => process::get().cpu_time_ns(),
        CLOCK_THREAD_CPUTIME_ID => keel_core::sched::current_runtime_ns(),
        _ => return Err(Errno::EINVAL),
    })
}

/// clock_gettime(2).
pub fn clock_gettime(c: &mut Call<'_>) -> SysResult {
    let ns = read_clock(c.args[0])?;
    write_timespec(c.args[1], ns)?;
    Ok(0)
}

/// clock_getres(2): 1 ns for the fine clocks; a scheduler tick for the
/// coarse ones, as Linux reports.
pub fn clock_getres(c: &mut Call<'_>) -> SysResult {
    read_clock(c.args[0])?;
    let res = match c.args[0] {
        CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE => 4_000_000,
        _ => 1,
    };
    if c.args[1] != 0 {
        write_timespec(c.args[1], res)?;
    }
    Ok(0)
}

/// gettimeofday(2).
pub fn gettimeofday(c: &mut Call<'_>) -> SysResult {
    if c.args[0] != 0 {
        write_timeval(c.args[0], time::realtime_ns())?;
    }
    if c.args[1] != 0 {
        mem::write_bytes(c.args[1], &[0u8; 8])?; // struct timezone: UTC
    }
    Ok(0)
}

/// time(2).
pub fn time(c: &mut Call<'_>) -> SysResult {
    let secs = time::realtime_ns() / 1_000_000_000;
    if c.args[0] != 0 {
        mem::write_u64(c.args[0], secs)?;
    }
    Ok(secs as isize)
}

/// Sleep until the monotonic `deadline`, giving up early if a signal
/// arrives. Returns whether it slept the whole time.
fn sleep_interruptibly(deadline: u64) -> bool {
    let waiter = keel_fs::PollWaiter::new();
    while time::monotonic_ns() < deadline {
        if signal::interrupted() {
            return false;
        }
        signal::with_interruptible(&waiter, || waiter.wait(Some(deadline)));
    }
    true
}

fn sleep_relative(ns: u64, remaining_addr: u64) -> SysResult {
    let deadline = time::monotonic_ns().saturating_add(ns);
    if sleep_interruptibly(deadline) {
        return Ok(0);
    }
    if remaining_addr != 0 {
        write_timespec(
            remaining_addr,
            deadline.saturating_sub(time::monotonic_ns()),
        )?;
    }
    Err(Errno::EINTR)
}

/// nanosleep(2).
pub fn nanosleep(c: &mut Call<'_>) -> SysResult {
    let ns = time_util::read_timespec(c.args[0])?;
    sleep_relative(ns, c.args[1])
}

/// clock_nanosleep(2).
pub fn clock_nanosleep(c: &mut Call<'_>) -> SysResult {
    const TIMER_ABSTIME: u64 = 1;
    let (clock, flags) = (c.args[0], c.args[1]);
    if flags & !TIMER_ABSTIME != 0 {
        return Err(Errno::EINVAL);
    }
    match clock {
        CLOCK_THREAD_CPUTIME_ID => return Err(Errno::EINVAL),
        CLOCK_PROCESS_CPUTIME_ID => return Err(Errno::EOPNOTSUPP),
        _ => {
            read_clock(clock)?;
        }
    }
    let ns = time_util::read_timespec(c.args[2])?;
    if flags & TIMER_ABSTIME == 0 {
        return sleep_relative(ns, c.args[3]);
    }
    let deadline = match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM => {
            time_util::realtime_to_monotonic(ns)
        }
        CLOCK_TAI => time_util::realtime_to_monotonic(ns.saturating_sub(TAI_OFFSET_NS)),
        _ => ns,
    };
    // An absolute sleep cut short by a signal reports no remaining time.
    if sleep_interruptibly(deadline) {
        Ok(0)
    } else {
        Err(Errno::EINTR)
    }
}

/// Clock ticks per second in `struct tms` (USER_HZ).
const USER_HZ: u64 = 100;

/// times(2).
pub fn times(c: &mut Call<'_>) -> SysResult {
    let cpu_ticks = process::get().cpu_time_ns() / (1_000_000_000 / USER_HZ);
    if c.args[0] != 0 {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&cpu_ticks.to_le_bytes()); // tms_utime (no user/system split)
        mem::write_bytes(c.args[0], &b)?;
    }
    Ok((time::monotonic_ns() / (1_000_000_000 / USER_HZ)) as isize)
}

/// getrusage(2): CPU time (all counted as user time: the app and the
/// kernel share one privilege level); the rest zero.
pub fn getrusage(c: &mut Call<'_>) -> SysResult {
    const RUSAGE_SELF: i64 = 0;
    const RUSAGE_CHILDREN: i64 = -1;
    const RUSAGE_THREAD: i64 = 1;
    let ns = match c.int(0) {
        RUSAGE_SELF => process::get().cpu_time_ns(),
        RUSAGE_THREAD => keel_core::sched::current_runtime_ns(),
        RUSAGE_CHILDREN => 0,
        _ => return Err(Errno::EINVAL),
    };
    let mut b = [0u8; 144];
    b[0..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    b[8..16].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
    mem::write_bytes(c.args[1], &b)?;
    Ok(0)
}
