//! The x86_64 Linux signal frame (struct rt_sigframe): what a handler finds
//! on its stack and what rt_sigreturn restores.
//!
//! Layout, from the stack pointer the handler starts with:
//! `pretcode` (return address = sa_restorer), `ucontext` (flags, link,
//! stack_t, sigcontext, sigmask), `siginfo` (128 bytes); the FP/XSAVE
//! image sits above, 64-byte aligned, below the interrupted stack's red zone.

use alloc::vec;
use core::sync::atomic::Ordering;

use keel_hal::{AppFrame, machine};

use super::{SigInfo, encode_siginfo};
use crate::mem;
use crate::process::SigAction;
use crate::thread::LinuxThread;

// AppFrame gpr indices (rax rbx rcx rdx rsi rdi rbp rsp r8..r15).
const RAX: usize = 0;
const RDX: usize = 3;
const RSI: usize = 4;
const RDI: usize = 5;

const UC_OFFSET: u64 = 8;
const UC_SIZE: u64 = 8 + 8 + 24 + 256 + 8; // flags, link, stack_t, sigcontext, sigmask
const SIGCONTEXT: u64 = UC_OFFSET + 40;
const SIGMASK: u64 = SIGCONTEXT + 256;
const SIGINFO: u64 = UC_OFFSET + UC_SIZE;
const FRAME_SIZE: u64 = SIGINFO + 128;
const UC_FP_XSTATE: u64 = 1;
const RED_ZONE: u64 = 128;

/// sigcontext register order: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp.
const SIGCONTEXT_ORDER: [usize; 16] = [8, 9, 10, 11, 12, 13, 14, 15, 5, 4, 6, 1, 3, 0, 2, 7];

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
    let top = alt_top.unwrap_or(frame.sp.wrapping_sub(RED_ZONE));
    let fp_layout = machine::fp_signal_layout();
    let fp_at = top.wrapping_sub(fp_layout.size() as u64) & !(fp_layout.align() as u64 - 1);
    // The handler starts as if called: (sp + 8) is 16-byte aligned.
    let base = (fp_at.wrapping_sub(FRAME_SIZE) & !15).wrapping_sub(8);
    if !machine::save_fp_to_app(fp_at as usize) {
        return false;
    }
    let mut f = vec![0u8; FRAME_SIZE as usize];
    let put = |f: &mut [u8], at: u64, v: u64| {
        f[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes())
    };
    put(&mut f, 0, act.restorer);
    put(&mut f, UC_OFFSET, UC_FP_XSTATE);
    // uc_stack: the alternate stack as it was.
    put(&mut f, UC_OFFSET + 16, alt.sp);
    f[(UC_OFFSET + 24) as usize..(UC_OFFSET + 28) as usize]
        .copy_from_slice(&alt.flags.to_le_bytes());
    put(&mut f, UC_OFFSET + 32, alt.size);
    for (slot, &reg) in SIGCONTEXT_ORDER.iter().enumerate() {
        let v = if reg == 7 { frame.sp } else { frame.gpr[reg] };
        put(&mut f, SIGCONTEXT + 8 * slot as u64, v);
    }
    put(&mut f, SIGCONTEXT + 128, frame.pc);
    put(&mut f, SIGCONTEXT + 136, frame.flags);
    put(&mut f, SIGCONTEXT + 144, 0x002b_0000_0000_0033); // cs/gs/fs/ss as Linux reports user segments
    put(
        &mut f,
        SIGCONTEXT + 160,
        if info.signo == super::SIGSEGV { 14 } else { 0 },
    ); // trapno
    put(&mut f, SIGCONTEXT + 168, old_mask); // oldmask
    put(&mut f, SIGCONTEXT + 176, info.addr); // cr2
    put(&mut f, SIGCONTEXT + 184, fp_at); // fpstate
    put(&mut f, SIGMASK, old_mask);
    f[SIGINFO as usize..(SIGINFO + 128) as usize].copy_from_slice(&encode_siginfo(&info));
    if mem::write_bytes(base, &f).is_err() {
        return false;
    }
    if use_alt {
        lt.altstack.lock().flags |= 1; // SS_ONSTACK while the handler runs
    }
    frame.sp = base;
    frame.pc = act.handler;
    frame.gpr[RDI] = u64::from(info.signo);
    frame.gpr[RSI] = base + SIGINFO;
    frame.gpr[RDX] = base + UC_OFFSET;
    frame.gpr[RAX] = 0;
    frame.flags &= !(1 << 10); // DF clear, as the ABI requires at function entry
    true
}

/// Restore the interrupted context from the frame the handler returned
/// through (the stack pointer is just past `pretcode`).
pub fn restore(lt: &LinuxThread, frame: &mut AppFrame) -> bool {
    let base = frame.sp.wrapping_sub(8);
    let Ok(f) = mem::read_bytes(base, FRAME_SIZE as usize) else {
        return false;
    };
    let get =
        |at: u64| u64::from_le_bytes(f[at as usize..at as usize + 8].try_into().expect("8 bytes"));
    let mut restored = *frame;
    for (slot, &reg) in SIGCONTEXT_ORDER.iter().enumerate() {
        let v = get(SIGCONTEXT + 8 * slot as u64);
        if reg == 7 {
            restored.sp = v;
        } else {
            restored.gpr[reg] = v;
        }
    }
    restored.pc = get(SIGCONTEXT + 128);
    restored.flags = get(SIGCONTEXT + 136);
    let fp = get(SIGCONTEXT + 184);
    if fp != 0 && !machine::restore_fp_from_app(fp as usize) {
        return false;
    }
    let mask = get(SIGMASK) & !((1 << (super::SIGKILL - 1)) | (1 << (super::SIGSTOP - 1)));
    lt.sigmask.store(mask, Ordering::Release);
    lt.altstack.lock().flags &= !1; // the handler is done with the alternate stack
    *frame = restored;
    true
}
