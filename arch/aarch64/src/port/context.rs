//! Thread context switch: callee-saved registers and TPIDR_EL0 (the app's
//! TLS pointer) on the stack; FP/SIMD state (v0-v31, FPCR, FPSR) in the
//! thread's area. SP_EL0 is not switched: in kernel code it holds the
//! running-thread word, which the scheduler sets before each switch (an
//! app's own SP_EL0 lives in its trap frame).
//!
//! The kernel is built for the soft-float target: no kernel code, trap
//! handlers included, ever touches an FP/SIMD register, so they hold only
//! the running thread's (app) state and traps need not save them. Only a
//! switch between threads does.

use core::alloc::Layout;
use core::arch::global_asm;

use keel_hal::SwitchFrame;

/// Bytes of the FP/SIMD area: 32 x 128-bit registers, FPCR, FPSR.
const FP_AREA: usize = 32 * 16 + 16;

global_asm!(
    r#"
    .arch_extension fp
    .arch_extension simd
    .text
    .balign 4
    .global keel_aarch64_switch
keel_aarch64_switch:
    sub sp, sp, #112
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    mrs x9, tpidr_el0
    str x9, [sp, #96]
    ldr x9, [x0, #8]
    cbz x9, 1f
    stp q0, q1, [x9, #0]
    stp q2, q3, [x9, #32]
    stp q4, q5, [x9, #64]
    stp q6, q7, [x9, #96]
    stp q8, q9, [x9, #128]
    stp q10, q11, [x9, #160]
    stp q12, q13, [x9, #192]
    stp q14, q15, [x9, #224]
    stp q16, q17, [x9, #256]
    stp q18, q19, [x9, #288]
    stp q20, q21, [x9, #320]
    stp q22, q23, [x9, #352]
    stp q24, q25, [x9, #384]
    stp q26, q27, [x9, #416]
    stp q28, q29, [x9, #448]
    stp q30, q31, [x9, #480]
    mrs x10, fpcr
    mrs x11, fpsr
    str x10, [x9, #512]
    str x11, [x9, #520]
1:  mov x9, sp
    str x9, [x0]
    ldr x9, [x1]
    mov sp, x9
    ldr x9, [x1, #8]
    cbz x9, 2f
    ldp q0, q1, [x9, #0]
    ldp q2, q3, [x9, #32]
    ldp q4, q5, [x9, #64]
    ldp q6, q7, [x9, #96]
    ldp q8, q9, [x9, #128]
    ldp q10, q11, [x9, #160]
    ldp q12, q13, [x9, #192]
    ldp q14, q15, [x9, #224]
    ldp q16, q17, [x9, #256]
    ldp q18, q19, [x9, #288]
    ldp q20, q21, [x9, #320]
    ldp q22, q23, [x9, #352]
    ldp q24, q25, [x9, #384]
    ldp q26, q27, [x9, #416]
    ldp q28, q29, [x9, #448]
    ldp q30, q31, [x9, #480]
    ldr x10, [x9, #512]
    ldr x11, [x9, #520]
    msr fpcr, x10
    msr fpsr, x11
2:  ldr x9, [sp, #96]
    msr tpidr_el0, x9
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    add sp, sp, #112
    ret

    /* First code of a new thread: entry in x19, argument in x20. */
    .global keel_aarch64_thread_trampoline
keel_aarch64_thread_trampoline:
    mov x0, x20
    mov x29, xzr
    mov x30, xzr
    br x19
"#
);

unsafe extern "C" {
    fn keel_aarch64_switch(from: *mut SwitchFrame, to: *const SwitchFrame);
    fn keel_aarch64_thread_trampoline();
}

/// Save the current thread into `from`, resume `to`.
///
/// # Safety
/// See `keel_hal::Context::switch`.
#[inline]
pub unsafe fn switch(from: *mut SwitchFrame, to: *const SwitchFrame) {
    // SAFETY: forwarded contract; FP areas are laid out per `fp_layout`.
    unsafe { keel_aarch64_switch(from, to) }
}

/// FP area layout: 16-byte aligned for the `stp q` stores.
pub fn fp_layout() -> Layout {
    Layout::from_size_align(FP_AREA, 16).expect("valid FP area layout")
}

/// The ABI's initial FP state: all registers zero, FPCR zero (round to
/// nearest, no traps), FPSR zero.
///
/// # Safety
/// `area` is valid for `fp_layout()` bytes.
pub unsafe fn init_fp(area: *mut u8) {
    // SAFETY: the caller guarantees the area's size.
    unsafe { area.write_bytes(0, FP_AREA) };
}

/// Build a new thread's initial stack: switching to it "returns" into the
/// trampoline, which calls `entry(arg)` with a zero frame pointer (the end
/// of backtraces).
///
/// # Safety
/// `[bottom, top)` is a writable stack nobody else uses.
pub unsafe fn prepare_stack(
    bottom: usize,
    top: usize,
    entry: extern "C" fn(usize) -> !,
    arg: usize,
) -> usize {
    let top = top & !15;
    debug_assert!(top - bottom > 256);
    let words: [usize; 14] = [
        entry as *const () as usize,                          // x19
        arg,                                                  // x20
        0,                                                    // x21
        0,                                                    // x22
        0,                                                    // x23
        0,                                                    // x24
        0,                                                    // x25
        0,                                                    // x26
        0,                                                    // x27
        0,                                                    // x28
        0,                                                    // x29
        keel_aarch64_thread_trampoline as *const () as usize, // x30
        0,                                                    // TPIDR_EL0
        0,                                                    // (padding)
    ];
    let sp = top - words.len() * 8;
    // SAFETY: the caller guarantees the stack is ours; 112 bytes fit.
    unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), sp as *mut usize, words.len()) };
    sp
}
