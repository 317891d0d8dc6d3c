//! Running app code on ppc64: entering the app, the MSR it runs with,
//! app-memory copies that survive bad pointers, and the FP/vector state
//! in Linux's signal-frame format.
//!
//! The app runs in supervisor state with the same MSR as kernel code plus
//! EE: 64-bit, little-endian, translation on, FP/VMX/VSX available. Every
//! return to the app goes through `rfid` with that MSR, whatever a frame
//! says, so an app (or a forged signal frame) cannot change the machine's
//! state.
//!
//! Kernel code uses FP/VSX (see `context.rs`), so the app's vector
//! registers are not live while the kernel handles its system call or
//! fault: they sit in the entry frame at the top of the thread's kernel
//! stack (`trap_entry.rs`), and the signal-frame routines read and write
//! them there. VRSAVE, which kernel code never touches, stays live.

use core::alloc::Layout;
use core::arch::{asm, global_asm};
use core::mem::{offset_of, size_of};

use keel_hal::AppFrame;

use crate::layout::APP_RANGE;
use crate::machine::boot::{MSR_EE, MSR_FP, MSR_RI, MSR_VEC, MSR_VSX};
use crate::machine::percpu;
use crate::machine::trap::{CR, CTR, LR, TrapFrame, XER};

/// `xxlxor n, n, n` for every VSX register number: all of them zero.
macro_rules! zero_each_vsr {
    () => {
        concat!(
            "xxlxor 0, 0, 0\n",
            "xxlxor 1, 1, 1\n",
            "xxlxor 2, 2, 2\n",
            "xxlxor 3, 3, 3\n",
            "xxlxor 4, 4, 4\n",
            "xxlxor 5, 5, 5\n",
            "xxlxor 6, 6, 6\n",
            "xxlxor 7, 7, 7\n",
            "xxlxor 8, 8, 8\n",
            "xxlxor 9, 9, 9\n",
            "xxlxor 10, 10, 10\n",
            "xxlxor 11, 11, 11\n",
            "xxlxor 12, 12, 12\n",
            "xxlxor 13, 13, 13\n",
            "xxlxor 14, 14, 14\n",
            "xxlxor 15, 15, 15\n",
            "xxlxor 16, 16, 16\n",
            "xxlxor 17, 17, 17\n",
            "xxlxor 18, 18, 18\n",
            "xxlxor 19, 19, 19\n",
            "xxlxor 20, 20, 20\n",
            "xxlxor 21, 21, 21\n",
            "xxlxor 22, 22, 22\n",
            "xxlxor 23, 23, 23\n",
            "xxlxor 24, 24, 24\n",
            "xxlxor 25, 25, 25\n",
            "xxlxor 26, 26, 26\n",
            "xxlxor 27, 27, 27\n",
            "xxlxor 28, 28, 28\n",
            "xxlxor 29, 29, 29\n",
            "xxlxor 30, 30, 30\n",
            "xxlxor 31, 31, 31\n",
            "xxlxor 32, 32, 32\n",
            "xxlxor 33, 33, 33\n",
            "xxlxor 34, 34, 34\n",
            "xxlxor 35, 35, 35\n",
            "xxlxor 36, 36, 36\n",
            "xxlxor 37, 37, 37\n",
            "xxlxor 38, 38, 38\n",
            "xxlxor 39, 39, 39\n",
            "xxlxor 40, 40, 40\n",
            "xxlxor 41, 41, 41\n",
            "xxlxor 42, 42, 42\n",
            "xxlxor 43, 43, 43\n",
            "xxlxor 44, 44, 44\n",
            "xxlxor 45, 45, 45\n",
            "xxlxor 46, 46, 46\n",
            "xxlxor 47, 47, 47\n",
            "xxlxor 48, 48, 48\n",
            "xxlxor 49, 49, 49\n",
            "xxlxor 50, 50, 50\n",
            "xxlxor 51, 51, 51\n",
            "xxlxor 52, 52, 52\n",
            "xxlxor 53, 53, 53\n",
            "xxlxor 54, 54, 54\n",
            "xxlxor 55, 55, 55\n",
            "xxlxor 56, 56, 56\n",
            "xxlxor 57, 57, 57\n",
            "xxlxor 58, 58, 58\n",
            "xxlxor 59, 59, 59\n",
            "xxlxor 60, 60, 60\n",
            "xxlxor 61, 61, 61\n",
            "xxlxor 62, 62, 62\n",
            "xxlxor 63, 63, 63\n",
        )
    };
}

global_asm!(
    ".text",
    // resume_app(frame: r3): fresh FP/vector state (all zero, as Linux
    // gives a new program), then every register from the frame and
    // `rfid`. Nothing is written to any stack: the kernel stack is free
    // again once the app runs.
    ".globl keel_ppc64_resume_app",
    "keel_ppc64_resume_app:",
    zero_each_vsr!(),
    "mtfsf 0xff, 0",
    "mtvscr 0",
    "li 0, 0",
    "mtmsrd 0, 1",
    "ld 0, {pc}(3)",
    "mtsrr0 0",
    "ld 0, {flags}(3)",
    "mtsrr1 0",
    "ld 0, {lr}(3)",
    "mtlr 0",
    "ld 0, {ctr}(3)",
    "mtctr 0",
    "ld 0, {xer}(3)",
    "mtxer 0",
    "ld 0, {cr}(3)",
    "mtcr 0",
    "ld 0, {gpr}+0*8(3)",
    "ld 2, {gpr}+2*8(3)",
    "ld 4, {gpr}+4*8(3)",
    "ld 5, {gpr}+5*8(3)",
    "ld 6, {gpr}+6*8(3)",
    "ld 7, {gpr}+7*8(3)",
    "ld 8, {gpr}+8*8(3)",
    "ld 9, {gpr}+9*8(3)",
    "ld 10, {gpr}+10*8(3)",
    "ld 11, {gpr}+11*8(3)",
    "ld 12, {gpr}+12*8(3)",
    "ld 13, {gpr}+13*8(3)",
    "ld 14, {gpr}+14*8(3)",
    "ld 15, {gpr}+15*8(3)",
    "ld 16, {gpr}+16*8(3)",
    "ld 17, {gpr}+17*8(3)",
    "ld 18, {gpr}+18*8(3)",
    "ld 19, {gpr}+19*8(3)",
    "ld 20, {gpr}+20*8(3)",
    "ld 21, {gpr}+21*8(3)",
    "ld 22, {gpr}+22*8(3)",
    "ld 23, {gpr}+23*8(3)",
    "ld 24, {gpr}+24*8(3)",
    "ld 25, {gpr}+25*8(3)",
    "ld 26, {gpr}+26*8(3)",
    "ld 27, {gpr}+27*8(3)",
    "ld 28, {gpr}+28*8(3)",
    "ld 29, {gpr}+29*8(3)",
    "ld 30, {gpr}+30*8(3)",
    "ld 31, {gpr}+31*8(3)",
    "ld 1, {sp}(3)",
    "ld 3, {gpr}+3*8(3)",
    "rfid",
    // app_copy(dst: r3, src: r4, len: r5) -> r3 = 1, or 0 through the
    // fixup if an access core could not resolve faulted. 32 bytes a turn,
    // then bytes (POWER9/10 handle misaligned doublewords in hardware).
    ".globl keel_ppc64_app_copy_start",
    "keel_ppc64_app_copy_start:",
    ".globl keel_ppc64_app_copy",
    "keel_ppc64_app_copy:",
    "cmpldi 5, 32",
    "blt 2f",
    "srdi 6, 5, 5",
    "mtctr 6",
    "1:",
    "ld 7, 0(4)",
    "ld 8, 8(4)",
    "ld 9, 16(4)",
    "ld 10, 24(4)",
    "std 7, 0(3)",
    "std 8, 8(3)",
    "std 9, 16(3)",
    "std 10, 24(3)",
    "addi 4, 4, 32",
    "addi 3, 3, 32",
    "bdnz 1b",
    "andi. 5, 5, 31",
    "2:",
    "cmpldi 5, 0",
    "beq 4f",
    "mtctr 5",
    "3:",
    "lbz 7, 0(4)",
    "stb 7, 0(3)",
    "addi 4, 4, 1",
    "addi 3, 3, 1",
    "bdnz 3b",
    "4:",
    "li 3, 1",
    "blr",
    // app_cmpxchg(addr: r3, expected: r4, new: r5, out: r6) -> r3 = 1,
    // or 0 through the fixup. Fully ordered, as futex operations are.
    ".globl keel_ppc64_app_cmpxchg",
    "keel_ppc64_app_cmpxchg:",
    "sync",
    "1:",
    "lwarx 7, 0, 3",
    "cmpw 7, 4",
    "bne 2f",
    "stwcx. 5, 0, 3",
    "bne- 1b",
    "2:",
    "sync",
    "stw 7, 0(6)",
    "li 3, 1",
    "blr",
    ".globl keel_ppc64_app_access_end",
    "keel_ppc64_app_access_end:",
    ".globl keel_ppc64_app_access_fixup",
    "keel_ppc64_app_access_fixup:",
    "li 3, 0",
    "blr",
    gpr = const offset_of!(AppFrame, gpr),
    pc = const offset_of!(AppFrame, pc),
    sp = const offset_of!(AppFrame, sp),
    flags = const offset_of!(AppFrame, flags),
    lr = const offset_of!(AppFrame, extra) + 8 * LR,
    ctr = const offset_of!(AppFrame, extra) + 8 * CTR,
    xer = const offset_of!(AppFrame, extra) + 8 * XER,
    cr = const offset_of!(AppFrame, extra) + 8 * CR,
);

unsafe extern "C" {
    fn keel_ppc64_resume_app(frame: *const AppFrame) -> !;
    fn keel_ppc64_app_copy(dst: *mut u8, src: *const u8, len: usize) -> bool;
    fn keel_ppc64_app_cmpxchg(addr: usize, expected: u32, new: u32, out: *mut u32) -> bool;
    static keel_ppc64_app_copy_start: u8;
    static keel_ppc64_app_access_end: u8;
    static keel_ppc64_app_access_fixup: u8;
}

/// The MSR app code runs with: the kernel's (64-bit, little-endian,
/// translation, machine checks, FP/VMX/VSX) with external interrupts on.
pub fn app_msr() -> u64 {
    super::msr() | MSR_EE | MSR_RI | MSR_FP | MSR_VEC | MSR_VSX
}

/// Keep a frame the kernel may have rewritten (rt_sigreturn, a signal
/// handler's entry) within what the app can have: the app MSR whatever
/// the frame said, and a pc in the app range (anything else becomes an
/// ordinary app fault at address 0 rather than a jump into the kernel).
pub fn make_resumable(frame: &mut AppFrame) {
    frame.flags = app_msr();
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
    // SAFETY: forwarded contract; the routine reads the frame (a local of
    // this function, alive until `rfid`) and never returns.
    unsafe { keel_ppc64_resume_app(&safe) }
}

/// Whether a data fault at `pc` happened inside the app-access routines,
/// and where to continue if the access must be abandoned.
pub fn copy_fixup(pc: u64) -> Option<u64> {
    let start = (&raw const keel_ppc64_app_copy_start) as u64;
    let end = (&raw const keel_ppc64_app_access_end) as u64;
    (start..end)
        .contains(&pc)
        .then_some((&raw const keel_ppc64_app_access_fixup) as u64)
}

fn in_app_range(addr: usize, len: usize) -> bool {
    addr >= APP_RANGE.0 && addr.checked_add(len).is_some_and(|end| end <= APP_RANGE.1)
}

/// Copy between kernel and app memory; false if an app page failed.
///
/// # Safety
/// The kernel side must be valid for `len` bytes.
pub unsafe fn app_copy(dst: *mut u8, src: *const u8, len: usize) -> bool {
    // SAFETY: forwarded contract; app-side faults are fixed up, not fatal.
    unsafe { keel_ppc64_app_copy(dst, src, len) }
}

/// Atomic compare-and-swap on an app word; None if it faulted.
///
/// # Safety
/// `addr` is aligned and in the app range.
pub unsafe fn app_cmpxchg(addr: usize, expected: u32, new: u32) -> Option<u32> {
    let mut found = 0u32;
    // SAFETY: forwarded contract; a fault on the access is fixed up.
    let ok = unsafe { keel_ppc64_app_cmpxchg(addr, expected, new, &mut found) };
    ok.then_some(found)
}

/// The app's registers as the current system call or app trap saved
/// them: the frame at the top of the running thread's kernel stack (both
/// entries put it there, since the app's r1 is never on that stack).
fn entry_frame() -> *mut TrapFrame {
    let top = percpu::this().kstack_top;
    ((top - size_of::<TrapFrame>()) & !15) as *mut TrapFrame
}

/// The app's thread pointer (r13) as the current system call saw it.
pub fn thread_pointer() -> u64 {
    // SAFETY: as in `save_fp_to_app`.
    unsafe { (*entry_frame()).regs.gpr[13] }
}

// The FP/vector part of Linux's ppc64 `struct sigcontext`, from its
// `fp_regs` on: fp_regs[32] and FPSCR (doublewords), the `v_regs`
// pointer, then `vmx_reserve` (101 doublewords) inside which `v_regs`
// points at the first 16-byte boundary: VR0..31, VSCR (a quadword, its
// word first on little-endian), VRSAVE (a word), then the second
// doublewords of VSR0..31.
const FP_REGS: usize = 0;
const FPSCR: usize = 32 * 8;
const V_REGS_PTR: usize = 33 * 8;
const VMX_RESERVE: usize = 34 * 8;
const AREA: usize = VMX_RESERVE + 101 * 8;
const VR_VSCR: usize = 32 * 16;
const VR_VRSAVE: usize = 33 * 16;
const VSX_LOW: usize = 34 * 16;
const VMX_BYTES: usize = VSX_LOW + 32 * 8;

/// Bytes of the signal-frame FP area and its alignment.
pub fn fp_signal_layout() -> Layout {
    Layout::from_size_align(AREA, 8).expect("valid layout")
}

fn vrsave() -> u32 {
    let v: u64;
    // SAFETY: reads VRSAVE (SPR 256), which only the app uses.
    unsafe { asm!("mfspr {0}, 256", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v as u32
}

fn set_vrsave(v: u32) {
    // SAFETY: VRSAVE is a software-use register; kernel code ignores it.
    unsafe { asm!("mtspr 256, {0}", in(reg) u64::from(v), options(nomem, nostack)) };
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

fn put_quad(buf: &mut [u8], at: usize, q: [u64; 2]) {
    put_u64(buf, at, q[0]);
    put_u64(buf, at + 8, q[1]);
}

fn get_quad(buf: &[u8], at: usize) -> [u64; 2] {
    [get_u64(buf, at), get_u64(buf, at + 8)]
}

/// Save the app's FP/vector registers at app address `dst` (the
/// sigcontext's `fp_regs`), in Linux's layout.
pub fn save_fp_to_app(dst: usize) -> bool {
    if !dst.is_multiple_of(8) || !in_app_range(dst, AREA) {
        return false;
    }
    // SAFETY: the entry frame is on this thread's kernel stack, written by
    // the entry of the system call or trap being handled.
    let f = unsafe { &*entry_frame() };
    let mut buf = [0u8; AREA];
    for i in 0..32 {
        put_u64(&mut buf, FP_REGS + 8 * i, f.vsr[i][1]);
    }
    put_u64(&mut buf, FPSCR, f.fpscr);
    let v_regs = (dst + VMX_RESERVE + 15) & !15;
    put_u64(&mut buf, V_REGS_PTR, v_regs as u64);
    let v = v_regs - dst;
    for i in 0..32 {
        put_quad(&mut buf, v + 16 * i, f.vsr[32 + i]);
        put_u64(&mut buf, v + VSX_LOW + 8 * i, f.vsr[i][0]);
    }
    put_quad(&mut buf, v + VR_VSCR, f.vscr);
    buf[v + VR_VRSAVE..v + VR_VRSAVE + 4].copy_from_slice(&vrsave().to_le_bytes());
    // SAFETY: the buffer is valid for its length; the app range was checked.
    unsafe { app_copy(dst as *mut u8, buf.as_ptr(), AREA) }
}

/// Restore the app's FP/vector registers from app address `src` (laid
/// out as `save_fp_to_app` does, `v_regs` possibly moved by the app):
/// they take effect when the app is resumed. Nothing changes unless all
/// of it could be read.
pub fn restore_fp_from_app(src: usize) -> bool {
    let mut head = [0u8; VMX_RESERVE];
    if !in_app_range(src, VMX_RESERVE)
        // SAFETY: the buffer is valid for its length; the range was checked.
        || !unsafe { app_copy(head.as_mut_ptr(), src as *const u8, VMX_RESERVE) }
    {
        return false;
    }
    let v_regs = get_u64(&head, V_REGS_PTR) as usize;
    // Linux reads the vector part wherever `v_regs` points; none at all
    // means zeroed vector registers and VRSAVE.
    let mut vmx = [0u8; VMX_BYTES];
    if v_regs != 0
        && (!in_app_range(v_regs, VMX_BYTES)
            // SAFETY: as above.
            || !unsafe { app_copy(vmx.as_mut_ptr(), v_regs as *const u8, VMX_BYTES) })
    {
        return false;
    }
    // SAFETY: as in `save_fp_to_app`; the return path loads these.
    let f = unsafe { &mut *entry_frame() };
    for i in 0..32 {
        f.vsr[i] = [
            get_u64(&vmx, VSX_LOW + 8 * i),
            get_u64(&head, FP_REGS + 8 * i),
        ];
        f.vsr[32 + i] = get_quad(&vmx, 16 * i);
    }
    f.fpscr = get_u64(&head, FPSCR);
    f.vscr = get_quad(&vmx, VR_VSCR);
    set_vrsave(u32::from_le_bytes(
        vmx[VR_VRSAVE..VR_VRSAVE + 4].try_into().expect("4 bytes"),
    ));
    true
}
