//! The ppc64 (ELFv2, little-endian) Linux signal frame (struct
//! rt_sigframe): what a handler finds on its stack and what rt_sigreturn
//! restores.
//!
//! Layout, from the frame's base (16-byte aligned, below the interrupted
//! r1 or at the top of the alternate stack): `ucontext` — flags, link,
//! stack_t, the 8-byte sigmask padded to 128, then `sigcontext` (unused
//! words, signal, handler, oldmask, a pointer to its own `gp_regs`, the 48
//! `gp_regs` in pt_regs order, then the FP/VMX/VSX area the arch writes:
//! `fp_regs`, FPSCR, `v_regs` and `vmx_reserve`); two unused words, the
//! seven-word trampoline slot, `pinfo`, `puc`, `siginfo`, and Linux's
//! 512-byte gap that keeps the interrupted code's red zone intact. The
//! handler's r1 is 128 bytes below the frame, a dummy caller frame whose
//! back chain is the interrupted r1.
//!
//! Linux enters the handler through its vDSO trampoline (`bctrl` with
//! the handler in CTR and r12, then `addi r1, r1, 128; li r0, 172; sc`);
//! glibc never sets `sa_restorer` on ppc64. Keel maps one page holding
//! the same four instructions the first time a handler runs: libgcc's
//! unwinder recognises the last three at a return address and finds the
//! ucontext 128 bytes above the caller's r1, so C++ exceptions and
//! backtraces cross signal frames as on Linux.

use alloc::vec;
use core::sync::atomic::{AtomicU64, Ordering};

use keel_hal::{AppFrame, machine};

use super::{SigInfo, encode_siginfo};
use crate::mem;
use crate::process::SigAction;
use crate::thread::LinuxThread;

// struct ucontext.
const UC_STACK: u64 = 16;
const UC_SIGMASK: u64 = 40;
const MCONTEXT: u64 = 168;
// struct sigcontext, from MCONTEXT.
const SC_SIGNAL: u64 = MCONTEXT + 32;
const SC_HANDLER: u64 = MCONTEXT + 40;
const SC_OLDMASK: u64 = MCONTEXT + 48;
const SC_REGS: u64 = MCONTEXT + 56;
const SC_GP_REGS: u64 = MCONTEXT + 64;
/// `fp_regs` onwards: the part `machine::save_fp_to_app` writes.
const SC_FP_REGS: u64 = SC_GP_REGS + 48 * 8;
/// sizeof(struct ucontext): the sigcontext ends with `vmx_reserve[101]`.
const UC_SIZE: u64 = SC_FP_REGS + 33 * 8 + 8 + 101 * 8;
const _: () = assert!(UC_SIZE == 1696);
// struct rt_sigframe, after the ucontext: _unused[2], tramp[7], then
// (8-aligned) pinfo, puc, siginfo, abigap[512].
const PINFO: u64 = (UC_SIZE + 16 + 7 * 4 + 7) & !7;
const PUC: u64 = PINFO + 8;
const SIGINFO: u64 = PUC + 8;
const FRAME_SIZE: u64 = (SIGINFO + 128 + 512 + 15) & !15;
/// The dummy caller frame below the signal frame (__SIGNAL_FRAMESIZE).
const CALLER_FRAME: u64 = 128;

// pt_regs slots in `gp_regs` after r0..r31.
const PT_NIP: u64 = 32;
const PT_MSR: u64 = 33;
const PT_ORIG_R3: u64 = 34;
const PT_CTR: u64 = 35;
const PT_LNK: u64 = 36;
const PT_XER: u64 = 37;
const PT_CCR: u64 = 38;
const PT_SOFTE: u64 = 39;
const PT_TRAP: u64 = 40;
const PT_DAR: u64 = 41;

// `AppFrame::extra` on ppc64.
const LR: usize = 0;
const CTR: usize = 1;
const XER: usize = 2;
const CR: usize = 3;

/// MSR bits Linux sets in the saved MSR to say the frame holds VMX and
/// VSX state (Keel always saves both).
const MSR_VEC: u64 = 1 << 25;
const MSR_VSX: u64 = 1 << 23;

/// rt_sigreturn's number on ppc64.
const NR_RT_SIGRETURN: u32 = 172;

/// Where the trampoline page is mapped (0: not yet).
static TRAMPOLINE: AtomicU64 = AtomicU64::new(0);

/// The trampoline's address, mapping it on first use.
fn trampoline() -> Option<u64> {
    let code: [u32; 4] = [
        0x4e80_0421,                       // bctrl
        0x3821_0000 | CALLER_FRAME as u32, // addi r1, r1, 128
        0x3800_0000 | NR_RT_SIGRETURN,     // li r0, 172
        0x4400_0002,                       // sc
    ];
    super::trampoline::map_once(&TRAMPOLINE, &code)
}

/// The trap vector Linux would report for the exception behind `signo`
/// (0 when the signal did not come from one).
fn trap_for(signo: u32) -> u64 {
    match signo {
        super::SIGSEGV | super::SIGBUS => 0x300,
        super::SIGILL | super::SIGFPE | super::SIGTRAP => 0x700,
        _ => 0,
    }
}

/// Build the frame and point `frame` at the handler. False if the stack
/// cannot take it.
pub fn setup(
    lt: &LinuxThread,
    frame: &mut AppFrame,
    act: &SigAction,
    info: SigInfo,
    old_mask: u64,
) -> bool {
    let alt = *lt.altstack.lock();
    let alt_top = super::alt_stack_top(&alt, act);
    let use_alt = alt_top.is_some();
    let top = alt_top.unwrap_or(frame.sp);
    // Wrapping arithmetic: a wild r1 gives an address the writes below
    // refuse (then the app dies of SIGSEGV), never an overflow panic.
    let base = top.wrapping_sub(FRAME_SIZE) & !15;
    let caller = base.wrapping_sub(CALLER_FRAME);
    // 64-bit Linux ignores sa_restorer: the trampoline always calls the
    // handler, and rt_sigreturn expects the frame at r1 after its pop.
    let Some(tramp) = trampoline() else {
        return false;
    };
    let mut f = vec![0u8; FRAME_SIZE as usize];
    let put = |f: &mut [u8], at: u64, v: u64| {
        f[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes())
    };
    put(&mut f, UC_STACK, alt.sp);
    f[(UC_STACK + 8) as usize..(UC_STACK + 12) as usize].copy_from_slice(&alt.flags.to_le_bytes());
    put(&mut f, UC_STACK + 16, alt.size);
    put(&mut f, UC_SIGMASK, old_mask);
    f[SC_SIGNAL as usize..SC_SIGNAL as usize + 4].copy_from_slice(&info.signo.to_le_bytes());
    put(&mut f, SC_HANDLER, act.handler);
    put(&mut f, SC_OLDMASK, old_mask);
    put(&mut f, SC_REGS, base.wrapping_add(SC_GP_REGS));
    let gp = |slot: u64| SC_GP_REGS + 8 * slot;
    for (i, &v) in frame.gpr.iter().enumerate() {
        let v = if i == 1 { frame.sp } else { v };
        put(&mut f, gp(i as u64), v);
    }
    put(&mut f, gp(PT_NIP), frame.pc);
    put(&mut f, gp(PT_MSR), frame.flags | MSR_VEC | MSR_VSX);
    put(&mut f, gp(PT_ORIG_R3), frame.gpr[3]);
    put(&mut f, gp(PT_CTR), frame.extra[CTR]);
    put(&mut f, gp(PT_LNK), frame.extra[LR]);
    put(&mut f, gp(PT_XER), frame.extra[XER]);
    put(&mut f, gp(PT_CCR), frame.extra[CR]);
    put(&mut f, gp(PT_SOFTE), 1);
    put(&mut f, gp(PT_TRAP), trap_for(info.signo));
    put(&mut f, gp(PT_DAR), info.addr);
    put(&mut f, PINFO, base.wrapping_add(SIGINFO));
    put(&mut f, PUC, base);
    f[SIGINFO as usize..(SIGINFO + 128) as usize].copy_from_slice(&encode_siginfo(&info));
    // The FP/vector area goes in after the rest (it lies inside the frame).
    if mem::write_bytes(base, &f).is_err()
        || !machine::save_fp_to_app(base.wrapping_add(SC_FP_REGS) as usize)
        || mem::write_u64(caller, frame.sp).is_err()
    {
        return false;
    }
    if use_alt {
        lt.altstack.lock().flags |= 1; // SS_ONSTACK while the handler runs
    }
    frame.sp = caller;
    frame.gpr[1] = caller;
    // ELFv2: a function's global entry derives r2 from r12.
    frame.extra[CTR] = act.handler;
    frame.gpr[12] = act.handler;
    frame.gpr[3] = u64::from(info.signo);
    if act.flags & super::SA_SIGINFO != 0 {
        frame.gpr[4] = base.wrapping_add(SIGINFO);
        frame.gpr[5] = base;
        frame.gpr[6] = base;
    } else {
        frame.gpr[4] = base.wrapping_add(MCONTEXT);
    }
    frame.pc = tramp;
    true
}

/// Restore the interrupted context from the frame at r1 (the trampoline
/// popped the dummy caller frame before `sc`).
pub fn restore(lt: &LinuxThread, frame: &mut AppFrame) -> bool {
    let base = frame.sp;
    if !base.is_multiple_of(16) {
        return false;
    }
    let Ok(f) = mem::read_bytes(base, SC_FP_REGS as usize) else {
        return false;
    };
    let get =
        |at: u64| u64::from_le_bytes(f[at as usize..at as usize + 8].try_into().expect("8 bytes"));
    if !machine::restore_fp_from_app(base.wrapping_add(SC_FP_REGS) as usize) {
        return false;
    }
    let gp = |slot: u64| get(SC_GP_REGS + 8 * slot);
    let mut restored = *frame;
    for i in 0..32 {
        restored.gpr[i] = gp(i as u64);
    }
    restored.sp = restored.gpr[1];
    restored.pc = gp(PT_NIP);
    restored.extra[CTR] = gp(PT_CTR);
    restored.extra[LR] = gp(PT_LNK);
    restored.extra[XER] = gp(PT_XER);
    restored.extra[CR] = gp(PT_CCR);
    // The MSR is not the app's to choose: the arch resumes with its own.
    let mask = get(UC_SIGMASK) & !((1 << (super::SIGKILL - 1)) | (1 << (super::SIGSTOP - 1)));
    lt.sigmask.store(mask, Ordering::Release);
    lt.altstack.lock().flags &= !1; // the handler is done with the alternate stack
    *frame = restored;
    true
}
