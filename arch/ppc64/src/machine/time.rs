//! Time: the timebase is the monotonic clock (the same on every CPU of a
//! partition), counted from the kernel's first instruction; the
//! decrementer is the per-CPU one-shot timer.
//!
//! The decrementer interrupts while its top bit is set, so "disarmed"
//! means loaded with the largest positive value; a deadline further away
//! than that (about 4 s at 512 MHz) is reached in steps, and early
//! wake-ups are swallowed here rather than passed to core.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use keel_hal::machine::kernel;

use crate::machine::boot::KEEL_BOOT_TB;
use crate::machine::percpu;

static TB_HZ: AtomicU64 = AtomicU64::new(512_000_000);
/// Nanoseconds per tick, as a 32.32 fixed-point number.
static NS_PER_TICK_32: AtomicU64 = AtomicU64::new(0);
/// Ticks per nanosecond, as a 32.32 fixed-point number.
static TICKS_PER_NS_32: AtomicU64 = AtomicU64::new(0);

const DEC_MAX: u64 = 0x7fff_ffff;

/// Read the timebase.
#[inline]
pub fn timebase() -> u64 {
    let tb: u64;
    // SAFETY: reading the timebase has no side effects.
    unsafe { asm!("mftb {0}", out(reg) tb, options(nomem, nostack, preserves_flags)) };
    tb
}

fn start_tb() -> u64 {
    // SAFETY: written once by the entry code before any Rust code ran.
    unsafe { (&raw const KEEL_BOOT_TB).read() }
}

/// Record the timebase rate (the device tree's `timebase-frequency`).
pub fn set_frequency(hz: u64) {
    let hz = hz.max(1);
    TB_HZ.store(hz, Ordering::Relaxed);
    NS_PER_TICK_32.store(
        ((1_000_000_000u128 << 32) / u128::from(hz)) as u64,
        Ordering::Relaxed,
    );
    TICKS_PER_NS_32.store(
        ((u128::from(hz) << 32) / 1_000_000_000) as u64,
        Ordering::Relaxed,
    );
}

/// Timebase ticks per second.
pub fn frequency() -> u64 {
    TB_HZ.load(Ordering::Relaxed)
}

/// Nanoseconds since the first instruction.
#[inline]
pub fn now_ns() -> u64 {
    let delta = timebase().saturating_sub(start_tb());
    ((u128::from(delta) * u128::from(NS_PER_TICK_32.load(Ordering::Relaxed))) >> 32) as u64
}

fn ns_to_tb(ns: u64) -> u64 {
    start_tb()
        + ((u128::from(ns) * u128::from(TICKS_PER_NS_32.load(Ordering::Relaxed))) >> 32) as u64
}

fn write_dec(value: u64) {
    // SAFETY: the decrementer only raises this CPU's timer interrupt.
    unsafe { asm!("mtdec {0}", in(reg) value, options(nomem, nostack)) };
}

/// Program the decrementer for the calling CPU's recorded deadline.
fn program(deadline_tb: u64) {
    if deadline_tb == u64::MAX {
        write_dec(DEC_MAX);
        return;
    }
    let now = timebase();
    // A deadline in the past fires at once: 1 tick.
    let ticks = deadline_tb.saturating_sub(now).clamp(1, DEC_MAX);
    write_dec(ticks);
}

/// Arm this CPU's one-shot timer for monotonic time `deadline_ns`, or disarm.
pub fn set_timer(deadline_ns: Option<u64>) {
    let tb = deadline_ns.map_or(u64::MAX, |d| ns_to_tb(d).max(1));
    percpu::this().deadline_tb.store(tb, Ordering::Relaxed);
    program(tb);
}

/// Start this CPU's decrementer disarmed.
pub fn init_this_cpu() {
    percpu::this()
        .deadline_tb
        .store(u64::MAX, Ordering::Relaxed);
    write_dec(DEC_MAX);
}

/// The decrementer interrupt.
pub fn on_decrementer() {
    let me = percpu::this();
    let deadline = me.deadline_tb.load(Ordering::Relaxed);
    if deadline != u64::MAX && timebase() >= deadline {
        me.deadline_tb.store(u64::MAX, Ordering::Relaxed);
        write_dec(DEC_MAX);
        kernel::timer();
    } else {
        // Early (a long deadline in steps) or disarmed: clear the
        // condition and wait on.
        program(deadline);
    }
}
