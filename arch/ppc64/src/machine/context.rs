//! Thread context switch: the ABI's non-volatile registers (r2, r13–r31,
//! CR) on the stack, and the whole FP/VMX/VSX state in the thread's area.
//!
//! Why the whole vector state and not just the ABI's non-volatile part:
//! the kernel itself uses FP and VSX (Rust's prebuilt libcore for this
//! target is compiled with VSX, and LLVM uses vector registers for plain
//! copies), so the facility is never switched off and never saved lazily;
//! a switch is a call, but an app thread switched out inside a system
//! call or a preempted one must get back every register it owns, and
//! the low halves of VSR14–31 are volatile to the ABI while the app may
//! hold data there. 64 × 16 bytes per switch is cheap next to the rest.
//! r13 is saved because it is the app's thread pointer.

use core::alloc::Layout;
use core::arch::global_asm;
use core::mem::offset_of;

use keel_hal::SwitchFrame;

use crate::machine::trap_entry::each_vsr;

/// The per-thread FP/vector area.
#[repr(C, align(16))]
pub struct FpArea {
    vsr: [[u64; 2]; 64],
    fpscr: u64,
    vrsave: u64,
    vscr: [u64; 2],
}

const SWITCH_FRAME: usize = 208;

global_asm!(
    ".text",
    ".globl keel_ppc64_switch",
    "keel_ppc64_switch:",
    "mflr 0",
    "std 0, 16(1)",
    "stdu 1, -{frame}(1)",
    "std 2, 32(1)",
    "std 13, 40(1)",
    "std 14, 48(1)",
    "std 15, 56(1)",
    "std 16, 64(1)",
    "std 17, 72(1)",
    "std 18, 80(1)",
    "std 19, 88(1)",
    "std 20, 96(1)",
    "std 21, 104(1)",
    "std 22, 112(1)",
    "std 23, 120(1)",
    "std 24, 128(1)",
    "std 25, 136(1)",
    "std 26, 144(1)",
    "std 27, 152(1)",
    "std 28, 160(1)",
    "std 29, 168(1)",
    "std 30, 176(1)",
    "std 31, 184(1)",
    "mfcr 0",
    "std 0, 192(1)",
    "ld 5, 8(3)",
    "cmpdi 5, 0",
    "beq 1f",
    // The FP area pointer goes in r1's place for the store macro: keep
    // the stack pointer in r6 meanwhile.
    "mr 6, 1",
    "mr 1, 5",
    each_vsr!("stxv"),
    "mffs 0",
    "stfd 0, {fpscr}(1)",
    "mfvscr 0",
    "li 7, {vscr}",
    "stvx 0, 1, 7",
    "mfspr 7, 256",
    "std 7, {vrsave}(1)",
    "mr 1, 6",
    "1:",
    "std 1, 0(3)",
    "ld 1, 0(4)",
    "ld 5, 8(4)",
    "cmpdi 5, 0",
    "beq 2f",
    "mr 6, 1",
    "mr 1, 5",
    "ld 7, {vrsave}(1)",
    "mtspr 256, 7",
    "li 7, {vscr}",
    "lvx 0, 1, 7",
    "mtvscr 0",
    // L=1: all 64 FPSCR bits, the decimal rounding mode included.
    "lfd 0, {fpscr}(1)",
    "mtfsf 0xff, 0, 1, 0",
    each_vsr!("lxv"),
    "mr 1, 6",
    "2:",
    "ld 2, 32(1)",
    "ld 13, 40(1)",
    "ld 14, 48(1)",
    "ld 15, 56(1)",
    "ld 16, 64(1)",
    "ld 17, 72(1)",
    "ld 18, 80(1)",
    "ld 19, 88(1)",
    "ld 20, 96(1)",
    "ld 21, 104(1)",
    "ld 22, 112(1)",
    "ld 23, 120(1)",
    "ld 24, 128(1)",
    "ld 25, 136(1)",
    "ld 26, 144(1)",
    "ld 27, 152(1)",
    "ld 28, 160(1)",
    "ld 29, 168(1)",
    "ld 30, 176(1)",
    "ld 31, 184(1)",
    "ld 0, 192(1)",
    "mtcr 0",
    "addi 1, 1, {frame}",
    "ld 0, 16(1)",
    "mtlr 0",
    "blr",
    // First code of a new thread: entry in r14, argument in r15; r1 is a
    // terminal frame (back chain 0).
    ".globl keel_ppc64_thread_trampoline",
    "keel_ppc64_thread_trampoline:",
    "mr 3, 15",
    "mr 12, 14",
    "mtctr 14",
    "bctrl",
    "trap",
    frame = const SWITCH_FRAME,
    vsr = const offset_of!(FpArea, vsr),
    fpscr = const offset_of!(FpArea, fpscr),
    vscr = const offset_of!(FpArea, vscr),
    vrsave = const offset_of!(FpArea, vrsave),
);

unsafe extern "C" {
    fn keel_ppc64_switch(from: *mut SwitchFrame, to: *const SwitchFrame);
    fn keel_ppc64_thread_trampoline();
}

/// Save the current thread into `from`, resume `to`.
///
/// # Safety
/// See `keel_hal::Context::switch`.
pub unsafe fn switch(from: *mut SwitchFrame, to: *const SwitchFrame) {
    // SAFETY: forwarded contract; FP areas are laid out as `FpArea`.
    unsafe { keel_ppc64_switch(from, to) }
}

/// The FP area's layout.
pub fn fp_layout() -> Layout {
    Layout::new::<FpArea>()
}

/// A fresh thread's FP state: all registers zero, FPSCR and VSCR in their
/// reset state (round to nearest, no exceptions enabled; Java mode off —
/// VSCR[NJ] is 1 at reset, Linux clears it for new threads).
///
/// # Safety
/// `area` is valid for `fp_layout()` bytes and aligned to it.
pub unsafe fn init_fp(area: *mut u8) {
    // SAFETY: the caller guarantees size and alignment.
    unsafe { area.write_bytes(0, fp_layout().size()) };
}

/// Build a new thread's stack: switching to it "returns" into the
/// trampoline, which calls `entry(arg)`.
///
/// # Safety
/// `[bottom, top)` is a writable stack nobody else uses.
pub unsafe fn prepare_stack(
    bottom: usize,
    top: usize,
    entry: extern "C" fn(usize) -> !,
    arg: usize,
) -> usize {
    let base = (top & !15) - 32; // terminal frame: back chain 0
    let sp = base - SWITCH_FRAME;
    debug_assert!(sp - bottom > 512);
    let toc: usize;
    // SAFETY: reads the TOC pointer only.
    unsafe { core::arch::asm!("mr {0}, 2", out(reg) toc, options(nomem, nostack)) };
    let word = |off: usize, v: usize| {
        // SAFETY: the caller guarantees the stack is ours; offsets stay
        // inside the top 240 bytes.
        unsafe { ((sp + off) as *mut usize).write(v) }
    };
    for off in (0..SWITCH_FRAME + 32).step_by(8) {
        word(off, 0);
    }
    word(0, base); // back chain
    word(32, toc); // r2
    word(48, entry as *const () as usize); // r14
    word(56, arg); // r15
    word(
        SWITCH_FRAME + 16,
        keel_ppc64_thread_trampoline as *const () as usize,
    ); // LR
    sp
}
