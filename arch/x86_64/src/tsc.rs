//! The monotonic clock: the TSC, counted from the kernel's first
//! instruction and scaled to nanoseconds.
//!
//! Its rate comes from the most exact source present: CPUID leaf 0x15
//! (crystal ratio), the hypervisor timing leaf 0x40000010, kvmclock's
//! scale factors, and only then a measurement against the PIT.

use core::sync::atomic::{AtomicU64, Ordering};

use raw_cpuid::CpuId;

use crate::boot::KEEL_BOOT_TSC;
use crate::io::{inb, outb, rdmsr, rdtsc, wrmsr};

static HZ: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick, as a 32.32 fixed-point number.
static NS_PER_TICK_32: AtomicU64 = AtomicU64::new(0);
/// TSC ticks per nanosecond, as a 32.32 fixed-point number.
static TICKS_PER_NS_32: AtomicU64 = AtomicU64::new(0);

/// Where the rate came from (for boot logs).
static SOURCE: spin::Once<&'static str> = spin::Once::new();

/// Where the TSC rate came from.
pub fn source() -> &'static str {
    SOURCE.get().copied().unwrap_or("uncalibrated")
}

fn start_tsc() -> u64 {
    // SAFETY: written once by the boot trampoline before any Rust code ran.
    unsafe { (&raw const KEEL_BOOT_TSC).read() }
}

/// Find the TSC rate. Must run before the first clock read that matters.
/// `told_khz` is a rate the boot command line gave (used only when the CPU
/// and hypervisor do not report one exactly).
pub fn calibrate(told_khz: Option<u64>) {
    let (hz, source) = from_cpuid_15()
        .map(|h| (h, "CPUID 0x15"))
        .or_else(|| from_hypervisor_leaf().map(|h| (h, "hypervisor leaf 0x40000010")))
        .or_else(|| from_kvmclock().map(|h| (h, "kvmclock")))
        .or_else(|| told_khz.map(|k| (k * 1000, "keel.tsc_khz")))
        .or_else(|| from_pit().map(|h| (h, "PIT")))
        .unwrap_or((1_000_000_000, "guess (no reference clock!)"));
    HZ.store(hz, Ordering::Relaxed);
    NS_PER_TICK_32.store(
        ((1_000_000_000u128 << 32) / u128::from(hz)) as u64,
        Ordering::Relaxed,
    );
    TICKS_PER_NS_32.store(
        ((u128::from(hz) << 32) / 1_000_000_000) as u64,
        Ordering::Relaxed,
    );
    SOURCE.call_once(|| source);
}

/// TSC ticks per second.
pub fn hz() -> u64 {
    HZ.load(Ordering::Relaxed)
}

/// Nanoseconds since the first instruction.
#[inline]
pub fn now_ns() -> u64 {
    tsc_to_ns(rdtsc())
}

fn tsc_to_ns(tsc: u64) -> u64 {
    let delta = tsc.saturating_sub(start_tsc());
    ((u128::from(delta) * u128::from(NS_PER_TICK_32.load(Ordering::Relaxed))) >> 32) as u64
}

/// The TSC value at monotonic time `ns`.
pub fn ns_to_tsc(ns: u64) -> u64 {
    start_tsc()
        + ((u128::from(ns) * u128::from(TICKS_PER_NS_32.load(Ordering::Relaxed))) >> 32) as u64
}

/// Busy-wait `us` microseconds.
pub fn spin_us(us: u64) {
    let end = now_ns() + us * 1000;
    while now_ns() < end {
        core::hint::spin_loop();
    }
}

fn from_cpuid_15() -> Option<u64> {
    let info = CpuId::new().get_tsc_info()?;
    let (num, den, crystal) = (
        info.numerator(),
        info.denominator(),
        info.nominal_frequency(),
    );
    (num != 0 && den != 0 && crystal != 0)
        .then(|| u64::from(crystal) * u64::from(num) / u64::from(den))
}

fn from_hypervisor_leaf() -> Option<u64> {
    let hv = CpuId::new().get_hypervisor_info()?;
    hv.tsc_frequency()
        .filter(|&khz| khz != 0)
        .map(|khz| u64::from(khz) * 1000)
}

/// kvmclock publishes the TSC-to-nanoseconds scale (mul, shift); the rate
/// follows from it exactly.
fn from_kvmclock() -> Option<u64> {
    let hv = CpuId::new().get_hypervisor_info()?;
    if hv.identify() != raw_cpuid::Hypervisor::KVM {
        return None;
    }
    // KVM_FEATURE_CLOCKSOURCE2 (bit 3) in leaf 0x40000001 EAX.
    let features = raw_cpuid::cpuid!(0x4000_0001).eax;
    if features & (1 << 3) == 0 {
        return None;
    }
    #[repr(C, align(64))]
    struct PvClock {
        version: u32,
        pad0: u32,
        tsc_timestamp: u64,
        system_time: u64,
        tsc_to_system_mul: u32,
        tsc_shift: i8,
        flags: u8,
        pad: [u8; 2],
    }
    static mut AREA: PvClock = PvClock {
        version: 0,
        pad0: 0,
        tsc_timestamp: 0,
        system_time: 0,
        tsc_to_system_mul: 0,
        tsc_shift: 0,
        flags: 0,
        pad: [0; 2],
    };
    const MSR_KVM_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;
    let virt = (&raw const AREA) as u64;
    let phys = virt - crate::layout::KERNEL_BASE as u64;
    wrmsr(MSR_KVM_SYSTEM_TIME_NEW, phys | 1);
    // SAFETY: the hypervisor wrote the area before the MSR write returned;
    // volatile because it may update it at any time.
    let (mul, shift) = unsafe {
        let p = &raw const AREA;
        (
            (&raw const (*p).tsc_to_system_mul).read_volatile(),
            (&raw const (*p).tsc_shift).read_volatile(),
        )
    };
    wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
    let _ = rdmsr(MSR_KVM_SYSTEM_TIME_NEW);
    if mul == 0 {
        return None;
    }
    // ns = ((tsc << shift) * mul) >> 32  =>  hz = 1e9 * 2^32 / (mul * 2^shift)
    let num = 1_000_000_000u128 << 32;
    let hz = if shift >= 0 {
        num / (u128::from(mul) << shift)
    } else {
        (num << (-shift)) / u128::from(mul)
    };
    Some(hz as u64)
}

/// Measure against PIT channel 0 (1.193182 MHz) for 2 ms, reading the
/// counter with latch commands so no speaker-gate port is needed.
fn from_pit() -> Option<u64> {
    const PIT_HZ: u64 = 1_193_182;
    const WINDOW_TICKS: u64 = PIT_HZ / 500; // 2 ms
    outb(0x43, 0x34); // channel 0, lobyte/hibyte, mode 2
    outb(0x40, 0xff);
    outb(0x40, 0xff);
    let read = || {
        outb(0x43, 0x00);
        let lo = inb(0x40);
        let hi = inb(0x40);
        u16::from_le_bytes([lo, hi])
    };
    let mut last = read();
    let t0 = rdtsc();
    let (mut elapsed, mut spins) = (0u64, 0u64);
    while elapsed < WINDOW_TICKS {
        let now = read();
        elapsed += u64::from(last.wrapping_sub(now));
        last = now;
        spins += 1;
        if spins > 1_000_000 && elapsed == 0 {
            return None; // no PIT answering
        }
    }
    let t1 = rdtsc();
    Some((u128::from(t1 - t0) * u128::from(PIT_HZ) / u128::from(elapsed)) as u64)
}
