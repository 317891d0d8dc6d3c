//! Port I/O and MSR access, wrapped once so the rest of the crate stays readable.

use x86_64::instructions::port::Port;
use x86_64::registers::model_specific::Msr;

/// Write a byte to an I/O port.
pub fn outb(port: u16, value: u8) {
    // SAFETY: callers pass ports of PC-platform devices whose writes have no
    // memory-safety effect (PIT, PIC, CMOS, UART, debug-exit).
    unsafe { Port::new(port).write(value) }
}

/// Read a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    // SAFETY: as for `outb`; reads only return device state.
    unsafe { Port::new(port).read() }
}

/// Write a 16-bit value to an I/O port.
pub fn outw(port: u16, value: u16) {
    // SAFETY: as for `outb`.
    unsafe { Port::new(port).write(value) }
}

/// Write a 32-bit value to an I/O port.
pub fn outl(port: u16, value: u32) {
    // SAFETY: as for `outb`.
    unsafe { Port::new(port).write(value) }
}

/// Read a 32-bit value from an I/O port.
pub fn inl(port: u16) -> u32 {
    // SAFETY: as for `inb`.
    unsafe { Port::new(port).read() }
}

/// Read a model-specific register.
pub fn rdmsr(msr: u32) -> u64 {
    // SAFETY: callers only read MSRs whose presence they checked via CPUID.
    unsafe { Msr::new(msr).read() }
}

/// Write a model-specific register.
pub fn wrmsr(msr: u32, value: u64) {
    // SAFETY: callers only write architectural MSRs they checked via CPUID,
    // with values that keep the kernel's invariants.
    unsafe { Msr::new(msr).write(value) }
}

/// Read the time-stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC is always available in long mode and has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}
