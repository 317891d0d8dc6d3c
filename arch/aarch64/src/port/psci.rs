//! PSCI, the firmware interface for starting CPUs and powering off, called
//! with `hvc` or `smc` as the DTB's /psci node says.

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};

use super::boot;

/// How calls reach the firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// `hvc #0`.
    Hvc,
    /// `smc #0`.
    Smc,
}

const PSCI_SYSTEM_OFF: u32 = 0x8400_0008;
const PSCI_VERSION: u32 = 0x8400_0000;
const PSCI_CPU_ON_64: u32 = 0xc400_0003;

/// 0: not configured; 1: hvc; 2: smc.
static CONDUIT: AtomicU8 = AtomicU8::new(0);
static CPU_ON: AtomicU32 = AtomicU32::new(PSCI_CPU_ON_64);
static STANDARD: AtomicBool = AtomicBool::new(true);

/// Use `conduit`; `cpu_on` is CPU_ON's function ID; `standard` says PSCI
/// 0.2 or later (SYSTEM_OFF exists).
pub fn configure(conduit: Conduit, cpu_on: u32, standard: bool) {
    CPU_ON.store(cpu_on, Ordering::Relaxed);
    STANDARD.store(standard, Ordering::Relaxed);
    CONDUIT.store(
        match conduit {
            Conduit::Hvc => 1,
            Conduit::Smc => 2,
        },
        Ordering::Release,
    );
}

/// The conduit in use: as configured, else a guess (smc when the kernel
/// was entered at EL2, since hvc would trap to itself; hvc otherwise).
pub fn conduit() -> Conduit {
    match CONDUIT.load(Ordering::Acquire) {
        1 => Conduit::Hvc,
        2 => Conduit::Smc,
        _ if boot::state().entered_el == 2 => Conduit::Smc,
        _ => Conduit::Hvc,
    }
}

/// An SMC Calling Convention call with three arguments.
fn call(function: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let ret: u64;
    match conduit() {
        // SAFETY: a firmware call; SMCCC 1.0 lets it clobber x0-x17 (x4-x17
        // are declared clobbered), nothing else.
        Conduit::Hvc => unsafe {
            core::arch::asm!(
                "hvc #0",
                inout("x0") u64::from(function) => ret,
                inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _,
                options(nostack),
            )
        },
        // SAFETY: as above.
        Conduit::Smc => unsafe {
            core::arch::asm!(
                "smc #0",
                inout("x0") u64::from(function) => ret,
                inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _,
                options(nostack),
            )
        },
    }
    ret as i64
}

/// Start the CPU with affinity `mpidr` at physical `entry`, with
/// `context` in its x0. Returns PSCI's status (0 = success).
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> i64 {
    call(CPU_ON.load(Ordering::Relaxed), mpidr, entry, context)
}

/// Ask the firmware to power the machine off (returns only if it refuses).
pub fn system_off() {
    if STANDARD.load(Ordering::Relaxed) {
        call(PSCI_SYSTEM_OFF, 0, 0, 0);
    }
}

/// The firmware's PSCI version as (major, minor), if it answers.
pub fn version() -> Option<(u16, u16)> {
    if !STANDARD.load(Ordering::Relaxed) {
        return Some((0, 1));
    }
    let v = call(PSCI_VERSION, 0, 0, 0);
    (v >= 0).then_some(((v >> 16) as u16, v as u16))
}
