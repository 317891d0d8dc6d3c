//! Arm semihosting, for exit statuses other than 0: under QEMU with
//! `-semihosting`, SYS_EXIT ends the emulator with the given status.
//!
//! Without semihosting, the call instruction (`hlt #0xf000`) is undefined;
//! the trap handler recognises it, steps over it and marks semihosting
//! unavailable, and callers fall back (PSCI power-off).

use core::sync::atomic::{AtomicBool, Ordering};

/// `hlt #0xf000`.
const CALL_INSTRUCTION: u32 = 0xd45e_0000;
const SYS_EXIT: u64 = 0x18;
/// ADP_Stopped_ApplicationExit.
const APPLICATION_EXIT: u64 = 0x2_0026;

static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// End the emulator with `status` (returns if semihosting is unavailable).
pub fn exit(status: u8) {
    if UNAVAILABLE.load(Ordering::Relaxed) {
        return;
    }
    let block: [u64; 2] = [APPLICATION_EXIT, u64::from(status)];
    // SAFETY: a semihosting call reads the two-word block; if semihosting
    // is off the instruction traps and the handler steps over it.
    unsafe {
        core::arch::asm!(
            "hlt #0xf000",
            inout("x0") SYS_EXIT => _,
            in("x1") block.as_ptr(),
            options(nostack, readonly),
        )
    };
}

/// Whether the instruction at `pc` (kernel text) is a semihosting call.
pub(crate) fn is_call_at(pc: usize) -> bool {
    if !pc.is_multiple_of(4) || !super::mmu::is_mapped(pc) {
        return false;
    }
    // SAFETY: `pc` is mapped and aligned (checked above); it is where an
    // instruction was just fetched from.
    unsafe { (pc as *const u32).read_volatile() == CALL_INSTRUCTION }
}

/// Remember that semihosting calls trap.
pub(crate) fn mark_unavailable() {
    UNAVAILABLE.store(true, Ordering::Relaxed);
}
