//! Running app code on aarch64: entering it, its system calls and faults
//! (decoded in `trap`), app-memory copies that survive bad pointers, and
//! the FP/SIMD record of Linux signal frames.
//!
//! Apps run at EL1 on SP_EL0 (SPSel = 0, "EL1t"), in the kernel's address
//! space. `svc #0` and every trap from app code arrive at the "current EL
//! with SP0" vectors, which start the frame at the top of the thread's
//! kernel stack; the way back is an `eret` to EL1t with all registers
//! restored from the frame.

use core::alloc::Layout;
use core::arch::global_asm;
use core::mem::offset_of;

use keel_hal::AppFrame;

use super::layout::APP_RANGE;
use super::percpu::OFFSET_KSTACK_TOP;

const PC: usize = offset_of!(AppFrame, pc);
const SP: usize = offset_of!(AppFrame, sp);
const FLAGS: usize = offset_of!(AppFrame, flags);
const _: () = assert!(PC == 256 && SP == 264 && FLAGS == 272);

/// PSTATE bits an app may set: the condition flags NZCV.
pub const APP_FLAGS: u64 = 0xf000_0000;
/// PSTATE.M for app code: EL1 on SP_EL0 (interrupts and aborts unmasked).
pub const APP_MODE: u64 = 0b0100;

global_asm!(
    r#"
    .text
    .balign 4
    /* resume_app(frame: x0): SP_EL1 back to the top of this thread's
       kernel stack (traps from the app land there anyway), then every
       register from the frame and eret into the app. */
    .global keel_aarch64_resume_app
keel_aarch64_resume_app:
    msr daifset, #3
    mrs x1, tpidr_el1
    ldr x1, [x1, #{top}]
    mov sp, x1
    ldp x2, x3, [x0, #{pc}]
    ldr x4, [x0, #{flags}]
    msr elr_el1, x2
    msr sp_el0, x3
    msr spsr_el1, x4
    ldp x2, x3, [x0, #16]
    ldp x4, x5, [x0, #32]
    ldp x6, x7, [x0, #48]
    ldp x8, x9, [x0, #64]
    ldp x10, x11, [x0, #80]
    ldp x12, x13, [x0, #96]
    ldp x14, x15, [x0, #112]
    ldp x16, x17, [x0, #128]
    ldp x18, x19, [x0, #144]
    ldp x20, x21, [x0, #160]
    ldp x22, x23, [x0, #176]
    ldp x24, x25, [x0, #192]
    ldp x26, x27, [x0, #208]
    ldp x28, x29, [x0, #224]
    ldr x30, [x0, #240]
    ldp x0, x1, [x0]
    eret

    /* Everything from here to keel_aarch64_app_access_end may fault on an
       app address; if core cannot resolve it the trap handler resumes at
       keel_aarch64_app_access_fixup, which returns false. */
    .global keel_aarch64_app_access_start
keel_aarch64_app_access_start:

    /* app_copy(dst: x0, src: x1, len: x2) -> bool: words while 8 or more
       bytes remain (unaligned access is fine on normal memory), then bytes. */
    .global keel_aarch64_app_copy
keel_aarch64_app_copy:
    cmp x2, #8
    b.lo 2f
1:  ldr x3, [x1], #8
    str x3, [x0], #8
    sub x2, x2, #8
    cmp x2, #8
    b.hs 1b
2:  cbz x2, 4f
3:  ldrb w3, [x1], #1
    strb w3, [x0], #1
    subs x2, x2, #1
    b.ne 3b
4:  mov w0, #1
    ret

    /* app_cmpxchg(addr: x0, expected: w1, new: w2, found: x3) -> bool */
    .global keel_aarch64_app_cmpxchg
keel_aarch64_app_cmpxchg:
1:  ldaxr w4, [x0]
    cmp w4, w1
    b.ne 2f
    stlxr w5, w2, [x0]
    cbnz w5, 1b
    b 3f
2:  clrex
3:  dmb ish
    str w4, [x3]
    mov w0, #1
    ret

    .global keel_aarch64_app_access_end
keel_aarch64_app_access_end:
    .global keel_aarch64_app_access_fixup
keel_aarch64_app_access_fixup:
    mov w0, #0
    ret
"#,
    top = const OFFSET_KSTACK_TOP,
    pc = const PC,
    flags = const FLAGS,
);

unsafe extern "C" {
    fn keel_aarch64_resume_app(frame: *const AppFrame) -> !;
    fn keel_aarch64_app_copy(dst: *mut u8, src: *const u8, len: usize) -> bool;
    fn keel_aarch64_app_cmpxchg(addr: usize, expected: u32, new: u32, found: *mut u32) -> bool;
    static keel_aarch64_app_access_start: u8;
    static keel_aarch64_app_access_end: u8;
    static keel_aarch64_app_access_fixup: u8;
}

/// Keep a frame the kernel may have rewritten (rt_sigreturn, a signal
/// handler's entry) within what the app can have: only NZCV from its
/// flags, EL1t with everything unmasked, and a pc in the app range
/// (anything else becomes an ordinary app fault at address 0).
pub fn make_resumable(frame: &mut AppFrame) {
    frame.flags = (frame.flags & APP_FLAGS) | APP_MODE;
    if frame.pc >= APP_RANGE.1 as u64 {
        frame.pc = 0;
    }
}

/// See `keel_hal::App::resume_app`.
///
/// # Safety
/// As for the trait method.
pub unsafe fn resume_app(frame: &AppFrame) -> ! {
    let mut safe = *frame;
    make_resumable(&mut safe);
    // SAFETY: forwarded contract; the routine reads the frame before it
    // writes anything to the stack it resets.
    unsafe { keel_aarch64_resume_app(&safe) }
}

/// Where to continue if a fault at `pc` hit an app-memory access routine
/// and must be abandoned.
pub fn copy_fixup(pc: u64) -> Option<u64> {
    let start = (&raw const keel_aarch64_app_access_start) as u64;
    let end = (&raw const keel_aarch64_app_access_end) as u64;
    (start..end)
        .contains(&pc)
        .then_some((&raw const keel_aarch64_app_access_fixup) as u64)
}

/// Copy between kernel and app memory; false if an app page failed.
///
/// # Safety
/// The kernel side must be valid for `len` bytes.
pub unsafe fn app_copy(dst: *mut u8, src: *const u8, len: usize) -> bool {
    // SAFETY: forwarded contract; app-side faults are fixed up, not fatal.
    unsafe { keel_aarch64_app_copy(dst, src, len) }
}

/// Atomic compare-and-swap on an app word; None if it faulted.
///
/// # Safety
/// `addr` is aligned and in the app range.
pub unsafe fn app_cmpxchg(addr: usize, expected: u32, new: u32) -> Option<u32> {
    let mut found = 0u32;
    // SAFETY: forwarded contract; a fault on the exclusive access is fixed up.
    let ok = unsafe { keel_aarch64_app_cmpxchg(addr, expected, new, &mut found) };
    ok.then_some(found)
}

/// Set the app's TLS pointer (TPIDR_EL0) for the running thread.
pub fn set_thread_pointer(value: u64) {
    // SAFETY: TPIDR_EL0 is the app's; the kernel never uses it.
    unsafe { core::arch::asm!("msr tpidr_el0, {}", in(reg) value, options(nostack, nomem)) };
}

/// The running thread's TLS pointer.
pub fn thread_pointer() -> u64 {
    let v: u64;
    // SAFETY: reads a register.
    unsafe { core::arch::asm!("mrs {}, tpidr_el0", out(reg) v, options(nostack, nomem)) };
    v
}

// Linux's arm64 signal frame keeps the FP/SIMD state in a `fpsimd_context`
// record: { magic, size, fpsr, fpcr, vregs[32] }.
const FPSIMD_MAGIC: u32 = 0x4650_8001;
const FPSIMD_SIZE: usize = 528;

/// Size and alignment of the signal-frame FP/SIMD record.
pub fn fp_signal_layout() -> Layout {
    Layout::from_size_align(FPSIMD_SIZE, 16).expect("valid layout")
}

#[repr(C, align(16))]
struct FpsimdContext {
    magic: u32,
    size: u32,
    fpsr: u32,
    fpcr: u32,
    vregs: [u128; 32],
}

const _: () = assert!(core::mem::size_of::<FpsimdContext>() == FPSIMD_SIZE);

fn read_fpsr() -> u64 {
    let v: u64;
    // SAFETY: reads an FP status register (the app's; the kernel has none).
    unsafe {
        core::arch::asm!(".arch_extension fp", "mrs {}, fpsr", out(reg) v, options(nostack, nomem))
    };
    v
}

fn write_fpsr(v: u64) {
    // SAFETY: writes the app's FP status register.
    unsafe {
        core::arch::asm!(".arch_extension fp", "msr fpsr, {}", in(reg) v, options(nostack, nomem))
    };
}

/// Save the FP/SIMD registers to app memory at `dst` as a `fpsimd_context`.
pub fn save_fp_to_app(dst: usize) -> bool {
    let mut ctx = FpsimdContext {
        magic: FPSIMD_MAGIC,
        size: FPSIMD_SIZE as u32,
        fpsr: 0,
        fpcr: 0,
        vregs: [0; 32],
    };
    ctx.fpcr = super::simd::store(&mut ctx.vregs) as u32;
    ctx.fpsr = read_fpsr() as u32;
    // SAFETY: the record is valid for its size.
    unsafe { app_copy(dst as *mut u8, (&raw const ctx).cast(), FPSIMD_SIZE) }
}

/// Restore the FP/SIMD registers from a `fpsimd_context` at app address
/// `src`; false (registers unchanged) if unreadable or not such a record.
pub fn restore_fp_from_app(src: usize) -> bool {
    let mut ctx = FpsimdContext {
        magic: 0,
        size: 0,
        fpsr: 0,
        fpcr: 0,
        vregs: [0; 32],
    };
    // SAFETY: the record is valid for its size.
    if !unsafe { app_copy((&raw mut ctx).cast(), src as *const u8, FPSIMD_SIZE) } {
        return false;
    }
    if ctx.magic != FPSIMD_MAGIC || ctx.size as usize != FPSIMD_SIZE {
        return false;
    }
    super::simd::load(&ctx.vregs, u64::from(ctx.fpcr));
    write_fpsr(u64::from(ctx.fpsr));
    true
}
