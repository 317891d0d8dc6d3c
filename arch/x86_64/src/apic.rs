//! The local APIC: x2APIC (MSRs) when the CPU has it, else xAPIC (MMIO
//! through the direct map). Timer (TSC-deadline or calibrated one-shot),
//! IPIs, EOI.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::io::{rdmsr, rdtsc, wrmsr};
use crate::layout::PHYS_MAP_BASE;
use crate::trap::{VECTOR_SPURIOUS, VECTOR_TIMER};
use crate::{cpu, tsc};

const IA32_APIC_BASE: u32 = 0x1b;
const IA32_TSC_DEADLINE: u32 = 0x6e0;
const APIC_ENABLE: u64 = 1 << 11;
const X2APIC_ENABLE: u64 = 1 << 10;

// Register offsets (xAPIC MMIO offset; x2APIC MSR = 0x800 + offset / 16).
const REG_ID: u32 = 0x20;
const REG_TPR: u32 = 0x80;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_LINT0: u32 = 0x350;
const REG_LVT_LINT1: u32 = 0x360;
const REG_LVT_ERROR: u32 = 0x370;
const REG_TIMER_INIT: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;

const LVT_MASKED: u32 = 1 << 16;
const TIMER_TSC_DEADLINE: u32 = 0b10 << 17;

static X2APIC: AtomicBool = AtomicBool::new(false);
static DEADLINE_MODE: AtomicBool = AtomicBool::new(false);
static XAPIC_BASE: AtomicUsize = AtomicUsize::new(0);
/// One-shot mode: APIC timer ticks per second (divide-by-1).
static TIMER_HZ: AtomicU64 = AtomicU64::new(0);

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        rdmsr(0x800 + reg / 16) as u32
    } else {
        let p = (XAPIC_BASE.load(Ordering::Relaxed) + reg as usize) as *const u32;
        // SAFETY: the xAPIC page is mapped (direct map) and `reg` is one of
        // the architectural register offsets above.
        unsafe { p.read_volatile() }
    }
}

fn write(reg: u32, value: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        wrmsr(0x800 + reg / 16, u64::from(value));
    } else {
        let p = (XAPIC_BASE.load(Ordering::Relaxed) + reg as usize) as *mut u32;
        // SAFETY: as in `read`.
        unsafe { p.write_volatile(value) }
    }
}

/// Enable the calling CPU's local APIC and its timer.
pub fn init_this_cpu() {
    let mut base = rdmsr(IA32_APIC_BASE) | APIC_ENABLE;
    if cpu::has_x2apic() {
        base |= X2APIC_ENABLE;
        X2APIC.store(true, Ordering::Relaxed);
    } else {
        XAPIC_BASE.store(
            PHYS_MAP_BASE + (base & 0xffff_f000) as usize,
            Ordering::Relaxed,
        );
    }
    wrmsr(IA32_APIC_BASE, base);
    write(REG_TPR, 0);
    write(REG_LVT_LINT0, LVT_MASKED);
    write(REG_LVT_LINT1, LVT_MASKED);
    write(REG_LVT_ERROR, LVT_MASKED);
    write(REG_SVR, 0x100 | u32::from(VECTOR_SPURIOUS));
    if cpu::has_tsc_deadline() {
        DEADLINE_MODE.store(true, Ordering::Relaxed);
        write(REG_LVT_TIMER, TIMER_TSC_DEADLINE | u32::from(VECTOR_TIMER));
    } else {
        write(REG_TIMER_DIVIDE, 0b1011); // divide by 1
        write(REG_LVT_TIMER, u32::from(VECTOR_TIMER)); // one-shot
        if TIMER_HZ.load(Ordering::Relaxed) == 0 {
            calibrate_timer();
        }
    }
}

/// Measure the one-shot timer's rate against the (calibrated) TSC.
fn calibrate_timer() {
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(VECTOR_TIMER));
    write(REG_TIMER_INIT, u32::MAX);
    let t0 = rdtsc();
    // 100 us is plenty: QEMU and KVM tick the APIC timer at about 1 GHz.
    let target = t0 + tsc::hz() / 10_000;
    while rdtsc() < target {
        core::hint::spin_loop();
    }
    let ticks = u32::MAX - read(REG_TIMER_CURRENT);
    let elapsed = rdtsc() - t0;
    write(REG_TIMER_INIT, 0);
    let hz = u128::from(ticks) * u128::from(tsc::hz()) / u128::from(elapsed.max(1));
    TIMER_HZ.store(hz as u64, Ordering::Relaxed);
    write(REG_LVT_TIMER, u32::from(VECTOR_TIMER));
}

/// Arm (or disarm) the calling CPU's timer for monotonic time `deadline_ns`.
pub fn set_timer(deadline_ns: Option<u64>) {
    if DEADLINE_MODE.load(Ordering::Relaxed) {
        // 0 disarms; a deadline in the past fires at once.
        wrmsr(
            IA32_TSC_DEADLINE,
            deadline_ns.map_or(0, |d| tsc::ns_to_tsc(d).max(1)),
        );
        return;
    }
    let count = deadline_ns.map_or(0, |d| {
        let delta = d.saturating_sub(tsc::now_ns());
        let ticks =
            u128::from(delta) * u128::from(TIMER_HZ.load(Ordering::Relaxed)) / 1_000_000_000;
        ticks.clamp(1, u128::from(u32::MAX)) as u32
    });
    write(REG_TIMER_INIT, count);
}

/// Signal end of interrupt.
#[inline]
pub fn eoi() {
    write(REG_EOI, 0);
}

/// The calling CPU's APIC id.
pub fn id() -> u32 {
    let raw = read(REG_ID);
    if X2APIC.load(Ordering::Relaxed) {
        raw
    } else {
        raw >> 24
    }
}

/// Send an IPI: `icr_low` carries vector and delivery mode.
fn send(apic_id: u32, icr_low: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        wrmsr(0x830, (u64::from(apic_id) << 32) | u64::from(icr_low));
    } else {
        write(REG_ICR_HIGH, apic_id << 24);
        write(REG_ICR_LOW, icr_low);
        while read(REG_ICR_LOW) & (1 << 12) != 0 {
            core::hint::spin_loop();
        }
    }
}

/// A fixed-delivery interrupt with `vector` to CPU `apic_id`.
pub fn send_ipi(apic_id: u32, vector: u8) {
    send(apic_id, u32::from(vector));
}

/// INIT then two STARTUPs pointing at physical page `page`.
pub fn send_init_sipi(apic_id: u32, page: u8) {
    send(apic_id, 0x4500); // INIT, level assert
    if !cpu::under_hypervisor() {
        tsc::spin_us(10_000);
    }
    for _ in 0..2 {
        send(apic_id, 0x4600 | u32::from(page)); // STARTUP
        if !cpu::under_hypervisor() {
            tsc::spin_us(200);
        }
    }
}

/// Description for boot logs.
pub fn describe() -> &'static str {
    match (
        X2APIC.load(Ordering::Relaxed),
        DEADLINE_MODE.load(Ordering::Relaxed),
    ) {
        (true, true) => "x2APIC, TSC-deadline timer",
        (true, false) => "x2APIC, one-shot timer",
        (false, true) => "xAPIC, TSC-deadline timer",
        (false, false) => "xAPIC, one-shot timer",
    }
}
