//! The generic timer: CNTVCT_EL0 is the monotonic clock (system-wide, so
//! it agrees across CPUs), counted from the kernel's first instruction;
//! the EL1 virtual timer (CNTV_*) is each CPU's tick-less one-shot timer.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0, Readable, Writeable};

use super::boot;

/// Counter ticks per second.
static HZ: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per tick, as a 32.32 fixed-point number.
static NS_PER_TICK_32: AtomicU64 = AtomicU64::new(0);
/// Ticks per nanosecond, as a 32.32 fixed-point number.
static TICKS_PER_NS_32: AtomicU64 = AtomicU64::new(0);
/// The virtual timer's interrupt (PPI 11, INTID 27, unless the DTB says otherwise).
static INTID: AtomicU32 = AtomicU32::new(27);

/// Read the counter frequency; `fallback_hz` is used if firmware left
/// CNTFRQ_EL0 at zero (the DTB's `clock-frequency`).
pub fn init(fallback_hz: Option<u64>) {
    let hz = match CNTFRQ_EL0.get() {
        0 => fallback_hz.unwrap_or(62_500_000),
        f => f,
    };
    HZ.store(hz, Ordering::Relaxed);
    NS_PER_TICK_32.store(
        ((1_000_000_000u128 << 32) / u128::from(hz)) as u64,
        Ordering::Relaxed,
    );
    TICKS_PER_NS_32.store(
        ((u128::from(hz) << 32) / 1_000_000_000) as u64,
        Ordering::Relaxed,
    );
}

/// Use `intid` for the virtual timer (before the GIC is set up).
pub fn set_intid(intid: u32) {
    INTID.store(intid, Ordering::Relaxed);
}

/// The virtual timer's interrupt ID.
#[inline]
pub fn intid() -> u32 {
    INTID.load(Ordering::Relaxed)
}

/// Counter ticks per second.
pub fn hz() -> u64 {
    HZ.load(Ordering::Relaxed)
}

/// The virtual counter, not read early by speculation.
#[inline]
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: reads a counter register; the ISB orders it after earlier code.
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nostack, nomem, preserves_flags))
    };
    v
}

/// Nanoseconds since the first instruction.
#[inline]
pub fn now_ns() -> u64 {
    let delta = counter().saturating_sub(boot::state().first_count);
    ((u128::from(delta) * u128::from(NS_PER_TICK_32.load(Ordering::Relaxed))) >> 32) as u64
}

fn ns_to_counter(ns: u64) -> u64 {
    let ticks = (u128::from(ns) * u128::from(TICKS_PER_NS_32.load(Ordering::Relaxed))) >> 32;
    boot::state()
        .first_count
        .saturating_add(ticks.min(u128::from(u64::MAX)) as u64)
}

/// Arm this CPU's timer for monotonic time `deadline_ns`, or disarm it.
pub fn set(deadline_ns: Option<u64>) {
    match deadline_ns {
        None => CNTV_CTL_EL0.set(0),
        Some(d) => {
            // A deadline in the past is already met: the timer fires at once.
            CNTV_CVAL_EL0.set(ns_to_counter(d));
            CNTV_CTL_EL0.set(1); // ENABLE, interrupt not masked
        }
    }
    // SAFETY: a context synchronisation barrier only.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
}

/// The timer fired: stop it asserting its (level) interrupt.
pub fn silence() {
    CNTV_CTL_EL0.set(0);
}

/// Spin for `us` microseconds.
pub fn spin_us(us: u64) {
    let end = now_ns() + us * 1000;
    while now_ns() < end {
        core::hint::spin_loop();
    }
}
