//! The aarch64 Linux signal frame (struct rt_sigframe): what a handler
//! finds on its stack and what rt_sigreturn restores.
//!
//! Layout, from the stack pointer the handler starts with: `siginfo` (128
//! bytes), then `ucontext` — flags, link, stack_t, the 8-byte sigmask
//! padded to glibc's 128, and `sigcontext` (fault_address, x0-x30, sp, pc,
//! pstate, then a 4 KiB record area holding an `fpsimd_context` and a
//! terminating empty record). A frame record {x29, x30} sits just above,
//! and x29 points at it, as Linux arranges.
//!
//! The handler returns to `sa_restorer` when the app set one (musl does);
//! glibc leaves it to the kernel's vDSO trampoline, which Keel stands in
//! for with one page holding `mov x8, #139; svc #0` (rt_sigreturn), mapped
//! into the app the first time a handler runs.

use alloc::vec;
use core::sync::atomic::{AtomicU64, Ordering};

use keel_hal::{AppFrame, machine};

use super::{SigInfo, encode_siginfo};
use crate::mem;
use crate::process::SigAction;
use crate::thread::LinuxThread;

const UCONTEXT: u64 = 128;
const UC_STACK: u64 = UCONTEXT + 16;
const UC_SIGMASK: u64 = UCONTEXT + 40;
const SIGCONTEXT: u64 = UCONTEXT + 176;
const SC_REGS: u64 = SIGCONTEXT + 8;
const SC_SP: u64 = SIGCONTEXT + 256;
const SC_PC: u64 = SIGCONTEXT + 264;
const SC_PSTATE: u64 = SIGCONTEXT + 272;
const SC_RESERVED: u64 = SIGCONTEXT + 288;
const RESERVED_SIZE: u64 = 4096;
const FRAME_SIZE: u64 = SC_RESERVED + RESERVED_SIZE;
const _: () = assert!(FRAME_SIZE == 4688);

/// rt_sigreturn's number on aarch64.
const NR_RT_SIGRETURN: u32 = 139;

/// Where the rt_sigreturn trampoline page is mapped (0: not yet).
static TRAMPOLINE: AtomicU64 = AtomicU64::new(0);

/// The trampoline's address, mapping it on first use.
fn trampoline() -> Option<u64> {
    let code: [u32; 2] = [
        0xd280_0008 | (NR_RT_SIGRETURN << 5), // mov x8, #139
        0xd400_0001,                          // svc #0
    ];
    super::trampoline::map_once(&TRAMPOLINE, &code)
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
    let record = top.wrapping_sub(16) & !15;
    let base = record.wrapping_sub(FRAME_SIZE) & !15;
    let restorer = if act.flags & super::SA_RESTORER != 0 && act.restorer != 0 {
        act.restorer
    } else {
        match trampoline() {
            Some(t) => t,
            None => return false,
        }
    };
    let mut f = vec![0u8; FRAME_SIZE as usize];
    let put = |f: &mut [u8], at: u64, v: u64| {
        f[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes())
    };
    f[..128].copy_from_slice(&encode_siginfo(&info));
    put(&mut f, UC_STACK, alt.sp);
    f[(UC_STACK + 8) as usize..(UC_STACK + 12) as usize].copy_from_slice(&alt.flags.to_le_bytes());
    put(&mut f, UC_STACK + 16, alt.size);
    put(&mut f, UC_SIGMASK, old_mask);
    put(&mut f, SIGCONTEXT, info.addr); // fault_address
    for (i, &v) in frame.gpr[..31].iter().enumerate() {
        put(&mut f, SC_REGS + 8 * i as u64, v);
    }
    put(&mut f, SC_SP, frame.sp);
    put(&mut f, SC_PC, frame.pc);
    put(&mut f, SC_PSTATE, frame.flags);
    // The record area: fpsimd_context (written below), then an empty record.
    if mem::write_bytes(base, &f).is_err()
        || !machine::save_fp_to_app((base + SC_RESERVED) as usize)
    {
        return false;
    }
    let mut pair = [0u8; 16];
    pair[..8].copy_from_slice(&frame.gpr[29].to_le_bytes());
    pair[8..].copy_from_slice(&frame.gpr[30].to_le_bytes());
    if mem::write_bytes(record, &pair).is_err() {
        return false;
    }
    if use_alt {
        lt.altstack.lock().flags |= 1; // SS_ONSTACK while the handler runs
    }
    frame.sp = base;
    frame.pc = act.handler;
    frame.gpr[0] = u64::from(info.signo);
    frame.gpr[1] = base;
    frame.gpr[2] = base + UCONTEXT;
    frame.gpr[29] = record;
    frame.gpr[30] = restorer;
    true
}

/// Restore the interrupted context from the frame at the stack pointer
/// (the handler returned through the trampoline with sp back at the frame).
pub fn restore(lt: &LinuxThread, frame: &mut AppFrame) -> bool {
    let base = frame.sp;
    if !base.is_multiple_of(16) {
        return false;
    }
    let Ok(f) = mem::read_bytes(base, SC_RESERVED as usize) else {
        return false;
    };
    let get =
        |at: u64| u64::from_le_bytes(f[at as usize..at as usize + 8].try_into().expect("8 bytes"));
    if !machine::restore_fp_from_app((base + SC_RESERVED) as usize) {
        return false;
    }
    let mut restored = *frame;
    for i in 0..31 {
        restored.gpr[i] = get(SC_REGS + 8 * i as u64);
    }
    restored.sp = get(SC_SP);
    restored.pc = get(SC_PC);
    restored.flags = get(SC_PSTATE);
    let mask = get(UC_SIGMASK) & !((1 << (super::SIGKILL - 1)) | (1 << (super::SIGSTOP - 1)));
    lt.sigmask.store(mask, Ordering::Release);
    lt.altstack.lock().flags &= !1; // the handler is done with the alternate stack
    *frame = restored;
    true
}
