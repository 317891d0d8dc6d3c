//! Exception vectors and the common trap entry.
//!
//! With `H_SET_MODE` address-translation mode 3, interrupts taken with
//! translation on arrive at `0xc000_0000_0000_4000 + vector` (physical
//! `0x4000 + vector`, through the direct map) with translation still on;
//! system reset and machine check always arrive in real mode at physical
//! 0x100 and 0x200. The `.vectors` section holds both sets; it is linked
//! for physical 0 and copied there once Open Firmware is done.
//!
//! Apps run in supervisor state with a 288-byte red zone under r1, so the
//! CPU's r1 at a trap cannot be trusted as a place to save anything. Each
//! vector parks r1 in SPRG1, takes the per-CPU block from SPRG0, and the
//! common entry picks the stack in software: below the interrupted r1
//! (and its red zone) if that is on the running thread's kernel stack,
//! else at the top of that stack; the per-CPU emergency stack if the
//! kernel stack is nearly used up (or the trap is in its guard page).
//! The frame holds every register, including all 64 VSX registers: the
//! kernel's own code uses FP/VSX (see `context.rs`), so a trap must not
//! let its handler clobber what the interrupted code had there.
//!
//! `sc` from app code (the Linux system call) has its own, shorter path:
//! the app's r1 is always off the kernel stack, so the frame goes at the
//! top of the thread's kernel stack with no stack choice; r9–r12, CTR, XER
//! and CR0 are volatile across `sc` (the Linux ABI), so the entry works in
//! them without parking anything in SPRG1 or the per-CPU block, and does
//! not read SRR1, DAR or DSISR. VRSAVE is never saved by traps: kernel
//! code does not touch it and the context switch keeps it per thread.

use core::arch::global_asm;
use core::mem::offset_of;

use keel_hal::AppFrame;

use crate::layout::{APP_RANGE, RED_ZONE, STACK_GUARD, STACK_MARGIN};
use crate::machine::boot::{
    MSR_DR, MSR_EE, MSR_FP, MSR_IR, MSR_RI, MSR_VEC, MSR_VSX, load_address,
};
use crate::machine::percpu::{
    OFFSET_EMERGENCY_TOP, OFFSET_FROM_REAL, OFFSET_KSTACK_BOTTOM, OFFSET_KSTACK_TOP,
    OFFSET_REAL_SRR, OFFSET_SCRATCH,
};
use crate::machine::trap::{CR, CTR, LR, TrapFrame, XER};

const FRAME: usize = core::mem::size_of::<TrapFrame>();
const _: () = assert!(FRAME.is_multiple_of(16) && offset_of!(TrapFrame, vsr).is_multiple_of(16));
const _: () = assert!(offset_of!(TrapFrame, vscr).is_multiple_of(16));
// The `sc` vector tells app code from kernel code by the top 12 bits of
// the return address.
const _: () = assert!(APP_RANGE.1 == 1 << 52);

const REGS: usize = offset_of!(TrapFrame, regs);
const GPR: usize = REGS + offset_of!(AppFrame, gpr);
const PC: usize = REGS + offset_of!(AppFrame, pc);
const SP: usize = REGS + offset_of!(AppFrame, sp);
const FLAGS: usize = REGS + offset_of!(AppFrame, flags);
const EXTRA: usize = REGS + offset_of!(AppFrame, extra);

/// Expand `$m!(n)` for every VSX register number.
macro_rules! each_vsr {
    ($op:literal) => {
        concat!(
            $op,
            " 0, {vsr}+16*0(1)\n",
            $op,
            " 1, {vsr}+16*1(1)\n",
            $op,
            " 2, {vsr}+16*2(1)\n",
            $op,
            " 3, {vsr}+16*3(1)\n",
            $op,
            " 4, {vsr}+16*4(1)\n",
            $op,
            " 5, {vsr}+16*5(1)\n",
            $op,
            " 6, {vsr}+16*6(1)\n",
            $op,
            " 7, {vsr}+16*7(1)\n",
            $op,
            " 8, {vsr}+16*8(1)\n",
            $op,
            " 9, {vsr}+16*9(1)\n",
            $op,
            " 10, {vsr}+16*10(1)\n",
            $op,
            " 11, {vsr}+16*11(1)\n",
            $op,
            " 12, {vsr}+16*12(1)\n",
            $op,
            " 13, {vsr}+16*13(1)\n",
            $op,
            " 14, {vsr}+16*14(1)\n",
            $op,
            " 15, {vsr}+16*15(1)\n",
            $op,
            " 16, {vsr}+16*16(1)\n",
            $op,
            " 17, {vsr}+16*17(1)\n",
            $op,
            " 18, {vsr}+16*18(1)\n",
            $op,
            " 19, {vsr}+16*19(1)\n",
            $op,
            " 20, {vsr}+16*20(1)\n",
            $op,
            " 21, {vsr}+16*21(1)\n",
            $op,
            " 22, {vsr}+16*22(1)\n",
            $op,
            " 23, {vsr}+16*23(1)\n",
            $op,
            " 24, {vsr}+16*24(1)\n",
            $op,
            " 25, {vsr}+16*25(1)\n",
            $op,
            " 26, {vsr}+16*26(1)\n",
            $op,
            " 27, {vsr}+16*27(1)\n",
            $op,
            " 28, {vsr}+16*28(1)\n",
            $op,
            " 29, {vsr}+16*29(1)\n",
            $op,
            " 30, {vsr}+16*30(1)\n",
            $op,
            " 31, {vsr}+16*31(1)\n",
            $op,
            " 32, {vsr}+16*32(1)\n",
            $op,
            " 33, {vsr}+16*33(1)\n",
            $op,
            " 34, {vsr}+16*34(1)\n",
            $op,
            " 35, {vsr}+16*35(1)\n",
            $op,
            " 36, {vsr}+16*36(1)\n",
            $op,
            " 37, {vsr}+16*37(1)\n",
            $op,
            " 38, {vsr}+16*38(1)\n",
            $op,
            " 39, {vsr}+16*39(1)\n",
            $op,
            " 40, {vsr}+16*40(1)\n",
            $op,
            " 41, {vsr}+16*41(1)\n",
            $op,
            " 42, {vsr}+16*42(1)\n",
            $op,
            " 43, {vsr}+16*43(1)\n",
            $op,
            " 44, {vsr}+16*44(1)\n",
            $op,
            " 45, {vsr}+16*45(1)\n",
            $op,
            " 46, {vsr}+16*46(1)\n",
            $op,
            " 47, {vsr}+16*47(1)\n",
            $op,
            " 48, {vsr}+16*48(1)\n",
            $op,
            " 49, {vsr}+16*49(1)\n",
            $op,
            " 50, {vsr}+16*50(1)\n",
            $op,
            " 51, {vsr}+16*51(1)\n",
            $op,
            " 52, {vsr}+16*52(1)\n",
            $op,
            " 53, {vsr}+16*53(1)\n",
            $op,
            " 54, {vsr}+16*54(1)\n",
            $op,
            " 55, {vsr}+16*55(1)\n",
            $op,
            " 56, {vsr}+16*56(1)\n",
            $op,
            " 57, {vsr}+16*57(1)\n",
            $op,
            " 58, {vsr}+16*58(1)\n",
            $op,
            " 59, {vsr}+16*59(1)\n",
            $op,
            " 60, {vsr}+16*60(1)\n",
            $op,
            " 61, {vsr}+16*61(1)\n",
            $op,
            " 62, {vsr}+16*62(1)\n",
            $op,
            " 63, {vsr}+16*63(1)\n",
        )
    };
}
pub(crate) use each_vsr;

/// A relocation-on vector: park r1, take the per-CPU block, free r10 and
/// r11, name the vector, go to the common code (6 instructions: fits the
/// 0x20-byte slots at 0xf00..0xf80).
macro_rules! vector {
    ($vec:literal) => {
        concat!(
            ".org 0x4000 + ",
            $vec,
            "\n",
            "mtspr 273, 1\n",
            "mfspr 1, 272\n",
            "std 10, {scratch}+0(1)\n",
            "std 11, {scratch}+8(1)\n",
            "li 11, ",
            $vec,
            "\n",
            "b keel_ppc64_trap_common\n",
        )
    };
}

/// A real-mode vector (system reset, machine check): the same foothold,
/// then save SRR0/1 in the block and turn translation on with `rfid`.
macro_rules! real_vector {
    ($vec:literal) => {
        concat!(
            ".org ",
            $vec,
            "\n",
            "mtspr 273, 1\n",
            "mfspr 1, 272\n",
            "std 10, {scratch}+0(1)\n",
            "std 11, {scratch}+8(1)\n",
            "mfsrr0 10\n",
            "std 10, {real_srr}+0(1)\n",
            "mfsrr1 10\n",
            "std 10, {real_srr}+8(1)\n",
            "ld 10, {from_real}(1)\n",
            "mtsrr0 10\n",
            "mfmsr 10\n",
            "ori 10, 10, {ir_dr}\n",
            "mtsrr1 10\n",
            "li 11, ",
            $vec,
            "\n",
            "rfid\n",
        )
    };
}

global_asm!(
    ".section .vectors, \"ax\"",
    real_vector!("0x100"),
    real_vector!("0x200"),
    vector!("0x300"),
    vector!("0x380"),
    vector!("0x400"),
    vector!("0x480"),
    vector!("0x500"),
    vector!("0x600"),
    vector!("0x700"),
    vector!("0x800"),
    vector!("0x900"),
    vector!("0x980"),
    vector!("0xa00"),
    vector!("0xb00"),
    // System call. From app code (return address below 2^52) the fast
    // path; from kernel code (tests) the common entry, which then finds
    // r11, r12 and CR0 already used (they are volatile across `sc`).
    ".org 0x4c00",
    "mfsrr0 11",
    "srdi. 12, 11, 52",
    "bne 1f",
    "b keel_ppc64_sc_from_app",
    "1:",
    "mtspr 273, 1",
    "mfspr 1, 272",
    "std 10, {scratch}+0(1)",
    "std 11, {scratch}+8(1)",
    "li 11, 0xc00",
    "b keel_ppc64_trap_common",
    vector!("0xd00"),
    vector!("0xe00"),
    vector!("0xe20"),
    vector!("0xe40"),
    vector!("0xe60"),
    vector!("0xe80"),
    vector!("0xf00"),
    vector!("0xf20"),
    vector!("0xf40"),
    vector!("0xf60"),
    vector!("0xf80"),
    ".org 0x5000",
    ".text",
    // Translation is on again after a real-mode vector: restore SRR0/1.
    ".globl keel_ppc64_trap_from_real",
    "keel_ppc64_trap_from_real:",
    "ld 10, {real_srr}+0(1)",
    "mtsrr0 10",
    "ld 10, {real_srr}+8(1)",
    "mtsrr1 10",
    // r1 = per-CPU block, SPRG1 = interrupted r1, r10/r11 in scratch,
    // r11 = vector.
    ".globl keel_ppc64_trap_common",
    "keel_ppc64_trap_common:",
    "std 12, {scratch}+16(1)",
    "mfcr 12",
    "std 12, {scratch}+24(1)",
    "mfspr 10, 273",
    "ld 12, {kbottom}(1)",
    "addi 12, 12, -{guard}",
    "cmpld 10, 12",
    "blt 1f",
    "ld 12, {ktop}(1)",
    "cmpld 10, 12",
    "bgt 1f",
    // On the kernel stack: below the interrupted code's red zone, unless
    // too little is left.
    "addi 10, 10, -({red_zone} + {frame})",
    "ld 12, {kbottom}(1)",
    "addi 12, 12, {margin}",
    "cmpld 10, 12",
    "bge 2f",
    "ld 10, {emergency}(1)",
    "b 3f",
    "1:",
    "ld 10, {ktop}(1)",
    "3:",
    "addi 10, 10, -{frame}",
    "2:",
    "clrrdi 10, 10, 4",
    "std 0, {gpr}+0*8(10)",
    "mfspr 0, 273",
    "std 0, {gpr}+1*8(10)",
    "std 0, {sp}(10)",
    "std 0, 0(10)",
    "std 2, {gpr}+2*8(10)",
    "std 3, {gpr}+3*8(10)",
    "std 4, {gpr}+4*8(10)",
    "std 5, {gpr}+5*8(10)",
    "std 6, {gpr}+6*8(10)",
    "std 7, {gpr}+7*8(10)",
    "std 8, {gpr}+8*8(10)",
    "std 9, {gpr}+9*8(10)",
    "ld 0, {scratch}+0(1)",
    "std 0, {gpr}+10*8(10)",
    "ld 0, {scratch}+8(1)",
    "std 0, {gpr}+11*8(10)",
    "ld 0, {scratch}+16(1)",
    "std 0, {gpr}+12*8(10)",
    "ld 0, {scratch}+24(1)",
    "std 0, {cr}(10)",
    "std 13, {gpr}+13*8(10)",
    "std 14, {gpr}+14*8(10)",
    "std 15, {gpr}+15*8(10)",
    "std 16, {gpr}+16*8(10)",
    "std 17, {gpr}+17*8(10)",
    "std 18, {gpr}+18*8(10)",
    "std 19, {gpr}+19*8(10)",
    "std 20, {gpr}+20*8(10)",
    "std 21, {gpr}+21*8(10)",
    "std 22, {gpr}+22*8(10)",
    "std 23, {gpr}+23*8(10)",
    "std 24, {gpr}+24*8(10)",
    "std 25, {gpr}+25*8(10)",
    "std 26, {gpr}+26*8(10)",
    "std 27, {gpr}+27*8(10)",
    "std 28, {gpr}+28*8(10)",
    "std 29, {gpr}+29*8(10)",
    "std 30, {gpr}+30*8(10)",
    "std 31, {gpr}+31*8(10)",
    "std 11, {vector}(10)",
    "mfsrr0 0",
    "std 0, {pc}(10)",
    "mfsrr1 0",
    "std 0, {flags}(10)",
    "mflr 0",
    "std 0, {lr}(10)",
    "mfctr 0",
    "std 0, {ctr}(10)",
    "mfxer 0",
    "std 0, {xer}(10)",
    "mfspr 0, 19",
    "std 0, {dar}(10)",
    "mfspr 0, 18",
    "std 0, {dsisr}(10)",
    "mr 1, 10",
    // SRR0/1 are safe in the frame: the trap is recoverable, and the
    // kernel's FP/VMX/VSX use is switched back on.
    "mfmsr 0",
    "ori 0, 0, {fp_ri}",
    "oris 0, 0, {vec_vsx}",
    "mtmsrd 0",
    "isync",
    each_vsr!("stxv"),
    "mffs 0",
    "stfd 0, {fpscr}(1)",
    "mfvscr 0",
    "li 4, {vscr}",
    "stvx 0, 1, 4",
    load_address!("2", ".TOC."),
    "mr 3, 1",
    "bl keel_ppc64_trap",
    "nop",
    "b keel_ppc64_trap_return",

    // `sc` from app code: r11 = SRR0, r9–r12 and CR0 free. The frame goes
    // at the top of the thread's kernel stack (the app's r1 is never on
    // it), its back chain the app's r1.
    ".globl keel_ppc64_sc_from_app",
    "keel_ppc64_sc_from_app:",
    "mfspr 12, 272",
    "ld 12, {ktop}(12)",
    "addi 12, 12, -{frame}",
    "clrrdi 12, 12, 4",
    "std 1, {gpr}+1*8(12)",
    "std 1, {sp}(12)",
    "std 1, 0(12)",
    "mr 1, 12",
    "std 11, {pc}(1)",
    "std 0, {gpr}+0*8(1)",
    "std 2, {gpr}+2*8(1)",
    "std 3, {gpr}+3*8(1)",
    "std 4, {gpr}+4*8(1)",
    "std 5, {gpr}+5*8(1)",
    "std 6, {gpr}+6*8(1)",
    "std 7, {gpr}+7*8(1)",
    "std 8, {gpr}+8*8(1)",
    "std 9, {gpr}+9*8(1)",
    "std 10, {gpr}+10*8(1)",
    "std 13, {gpr}+13*8(1)",
    "std 14, {gpr}+14*8(1)",
    "std 15, {gpr}+15*8(1)",
    "std 16, {gpr}+16*8(1)",
    "std 17, {gpr}+17*8(1)",
    "std 18, {gpr}+18*8(1)",
    "std 19, {gpr}+19*8(1)",
    "std 20, {gpr}+20*8(1)",
    "std 21, {gpr}+21*8(1)",
    "std 22, {gpr}+22*8(1)",
    "std 23, {gpr}+23*8(1)",
    "std 24, {gpr}+24*8(1)",
    "std 25, {gpr}+25*8(1)",
    "std 26, {gpr}+26*8(1)",
    "std 27, {gpr}+27*8(1)",
    "std 28, {gpr}+28*8(1)",
    "std 29, {gpr}+29*8(1)",
    "std 30, {gpr}+30*8(1)",
    "std 31, {gpr}+31*8(1)",
    "mflr 0",
    "std 0, {lr}(1)",
    "mfcr 0",
    "std 0, {cr}(1)",
    // CTR and XER are volatile across `sc`: not saved (the return path
    // loads whatever the frame holds, so a frame rt_sigreturn rewrote
    // comes back exactly). One MSR write: FP/VMX/VSX for the kernel's
    // code, EE (system calls run with interrupts on) and RI.
    "mfmsr 0",
    "ori 0, 0, {fp_ee_ri}",
    "oris 0, 0, {vec_vsx}",
    "mtmsrd 0",
    "isync",
    each_vsr!("stxv"),
    "mffs 0",
    "stfd 0, {fpscr}(1)",
    "mfvscr 0",
    "li 4, {vscr}",
    "stvx 0, 1, 4",
    load_address!("2", ".TOC."),
    "addi 3, 1, {regs}",
    "bl keel_ppc64_syscall",
    "nop",

    // Back to the frame at r1: vector state, then (not recoverable from
    // here to rfid: SRR0/1 hold the return state) everything else.
    // FPSCR is written only if it differs (the handler changed it, or
    // rt_sigreturn loaded the app's; all 64 bits, DRN included): mtfsf
    // serialises.
    ".globl keel_ppc64_trap_return",
    "keel_ppc64_trap_return:",
    "li 4, {vscr}",
    "lvx 0, 1, 4",
    "mtvscr 0",
    "ld 4, {fpscr}(1)",
    "mffs 0",
    "mfvsrd 5, 0",
    "cmpd 4, 5",
    "beq 1f",
    "lfd 0, {fpscr}(1)",
    "mtfsf 0xff, 0, 1, 0",
    "1:",
    each_vsr!("lxv"),
    "li 0, 0",
    "mtmsrd 0, 1",
    "ld 0, {pc}(1)",
    "mtsrr0 0",
    "ld 0, {flags}(1)",
    "mtsrr1 0",
    "ld 0, {lr}(1)",
    "mtlr 0",
    "ld 0, {ctr}(1)",
    "mtctr 0",
    "ld 0, {xer}(1)",
    "mtxer 0",
    "ld 0, {cr}(1)",
    "mtcr 0",
    "ld 0, {gpr}+0*8(1)",
    "ld 2, {gpr}+2*8(1)",
    "ld 3, {gpr}+3*8(1)",
    "ld 4, {gpr}+4*8(1)",
    "ld 5, {gpr}+5*8(1)",
    "ld 6, {gpr}+6*8(1)",
    "ld 7, {gpr}+7*8(1)",
    "ld 8, {gpr}+8*8(1)",
    "ld 9, {gpr}+9*8(1)",
    "ld 10, {gpr}+10*8(1)",
    "ld 11, {gpr}+11*8(1)",
    "ld 12, {gpr}+12*8(1)",
    "ld 13, {gpr}+13*8(1)",
    "ld 14, {gpr}+14*8(1)",
    "ld 15, {gpr}+15*8(1)",
    "ld 16, {gpr}+16*8(1)",
    "ld 17, {gpr}+17*8(1)",
    "ld 18, {gpr}+18*8(1)",
    "ld 19, {gpr}+19*8(1)",
    "ld 20, {gpr}+20*8(1)",
    "ld 21, {gpr}+21*8(1)",
    "ld 22, {gpr}+22*8(1)",
    "ld 23, {gpr}+23*8(1)",
    "ld 24, {gpr}+24*8(1)",
    "ld 25, {gpr}+25*8(1)",
    "ld 26, {gpr}+26*8(1)",
    "ld 27, {gpr}+27*8(1)",
    "ld 28, {gpr}+28*8(1)",
    "ld 29, {gpr}+29*8(1)",
    "ld 30, {gpr}+30*8(1)",
    "ld 31, {gpr}+31*8(1)",
    "ld 1, {sp}(1)",
    "rfid",
    scratch = const OFFSET_SCRATCH,
    real_srr = const OFFSET_REAL_SRR,
    from_real = const OFFSET_FROM_REAL,
    ir_dr = const MSR_IR | MSR_DR,
    kbottom = const OFFSET_KSTACK_BOTTOM,
    ktop = const OFFSET_KSTACK_TOP,
    emergency = const OFFSET_EMERGENCY_TOP,
    guard = const STACK_GUARD,
    margin = const STACK_MARGIN,
    red_zone = const RED_ZONE,
    frame = const FRAME,
    regs = const REGS,
    gpr = const GPR,
    pc = const PC,
    sp = const SP,
    flags = const FLAGS,
    lr = const EXTRA + 8 * LR,
    ctr = const EXTRA + 8 * CTR,
    xer = const EXTRA + 8 * XER,
    cr = const EXTRA + 8 * CR,
    vector = const offset_of!(TrapFrame, vector),
    dar = const offset_of!(TrapFrame, dar),
    dsisr = const offset_of!(TrapFrame, dsisr),
    fp_ri = const MSR_FP | MSR_RI,
    fp_ee_ri = const MSR_FP | MSR_EE | MSR_RI,
    vec_vsx = const (MSR_VEC | MSR_VSX) >> 16,
    vsr = const offset_of!(TrapFrame, vsr),
    fpscr = const offset_of!(TrapFrame, fpscr),
    vscr = const offset_of!(TrapFrame, vscr),
);

unsafe extern "C" {
    fn keel_ppc64_trap_from_real();
}

/// Where the real-mode vectors continue once translation is on.
pub fn from_real_address() -> usize {
    keel_ppc64_trap_from_real as *const () as usize
}
