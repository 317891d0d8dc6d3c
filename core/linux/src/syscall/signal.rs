//! Signal system calls: dispositions, masks, the alternate stack, waiting
//! for signals, sending them, and returning from handlers.

use core::sync::atomic::Ordering;

use super::Call;
use crate::errno::{Errno, SysResult};
use crate::process::{self, PID, SigAction};
use crate::signal::{self, SIGKILL, SIGSTOP};
use crate::{mem, thread, time_util};

const SIGSET_SIZE: u64 = 8;
const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

fn check_sigset_size(size: u64) -> Result<(), Errno> {
    if size != SIGSET_SIZE {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

fn signal_number(v: u64, allow_zero: bool) -> Result<u32, Errno> {
    match v {
        0 if allow_zero => Ok(0),
        1..=64 => Ok(v as u32),
        _ => Err(Errno::EINVAL),
    }
}

/// rt_sigaction(2). The kernel `struct sigaction` is {handler, flags,
/// restorer, mask} on all three arches.
pub fn rt_sigaction(c: &mut Call<'_>) -> SysResult {
    check_sigset_size(c.args[3])?;
    let sig = signal_number(c.args[0], false)?;
    let new = if c.args[1] != 0 {
        if sig == SIGKILL || sig == SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let b = mem::read_bytes(c.args[1], 32)?;
        let word = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Some(SigAction {
            handler: word(0),
            flags: word(1),
            restorer: word(2),
            mask: word(3) & !UNBLOCKABLE,
        })
    } else {
        None
    };
    let p = process::get();
    let old = {
        let mut acts = p.sigactions.lock();
        let old = acts[(sig - 1) as usize];
        if let Some(n) = new {
            acts[(sig - 1) as usize] = n;
        }
        old
    };
    if c.args[2] != 0 {
        let mut b = [0u8; 32];
        for (i, w) in [old.handler, old.flags, old.restorer, old.mask]
            .iter()
            .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        mem::write_bytes(c.args[2], &b)?;
    }
    Ok(0)
}

/// rt_sigprocmask(2).
pub fn rt_sigprocmask(c: &mut Call<'_>) -> SysResult {
    const SIG_BLOCK: u64 = 0;
    const SIG_UNBLOCK: u64 = 1;
    const SIG_SETMASK: u64 = 2;
    check_sigset_size(c.args[3])?;
    let lt = thread::current();
    let old = lt.mask();
    if c.args[1] != 0 {
        let set = mem::read_u64(c.args[1])?;
        let new = match c.args[0] {
            SIG_BLOCK => old | set,
            SIG_UNBLOCK => old & !set,
            SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        };
        lt.sigmask.store(new & !UNBLOCKABLE, Ordering::Release);
    }
    if c.args[2] != 0 {
        mem::write_u64(c.args[2], old)?;
    }
    Ok(0)
}

/// rt_sigreturn(2): back to the context a handler interrupted.
pub fn rt_sigreturn(c: &mut Call<'_>) -> SysResult {
    if !signal::sigreturn(c.frame) {
        // A corrupt frame: Linux kills the process with SIGSEGV.
        signal::terminate(signal::SIGSEGV, "rt_sigreturn found no valid signal frame");
    }
    c.frame_replaced = true;
    Ok(0)
}

/// sigaltstack(2). `stack_t` is {sp, flags (int, padded), size}.
pub fn sigaltstack(c: &mut Call<'_>) -> SysResult {
    const SS_ONSTACK: i32 = 1;
    const SS_DISABLE: i32 = 2;
    const SS_AUTODISARM: i32 = 1 << 31;
    let lt = thread::current();
    let sp = c.frame.sp;
    let current = *lt.altstack.lock();
    let on_it = current.flags & SS_DISABLE == 0 && sp.wrapping_sub(current.sp) < current.size;
    if c.args[0] != 0 {
        let b = mem::read_bytes(c.args[0], 24)?;
        let ss_sp = u64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
        let flags = i32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
        let size = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
        if on_it {
            return Err(Errno::EPERM);
        }
        let mode = flags & !SS_AUTODISARM;
        if mode != 0 && mode != SS_ONSTACK && mode != SS_DISABLE {
            return Err(Errno::EINVAL);
        }
        let min = if c.abi.min_sigstack == 0 {
            8192
        } else {
            c.abi.min_sigstack
        };
        let new = if mode == SS_DISABLE {
            crate::thread::AltStack {
                sp: 0,
                size: 0,
                flags: SS_DISABLE,
            }
        } else {
            if size < min {
                return Err(Errno::ENOMEM);
            }
            crate::thread::AltStack {
                sp: ss_sp,
                size,
                flags: flags & SS_AUTODISARM,
            }
        };
        *lt.altstack.lock() = new;
    }
    if c.args[1] != 0 {
        let mut b = [0u8; 24];
        let flags = if on_it {
            SS_ONSTACK
        } else {
            current.flags & (SS_DISABLE | SS_AUTODISARM)
        };
        b[0..8].copy_from_slice(&current.sp.to_le_bytes());
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&current.size.to_le_bytes());
        mem::write_bytes(c.args[1], &b)?;
    }
    Ok(0)
}

/// rt_sigpending(2): pending signals that are blocked.
pub fn rt_sigpending(c: &mut Call<'_>) -> SysResult {
    check_sigset_size(c.args[1])?;
    let lt = thread::current();
    mem::write_u64(c.args[0], signal::pending_set() & lt.mask())?;
    Ok(0)
}

/// Wait until a signal the thread does not block is pending.
fn wait_for_signal() {
    let waiter = keel_fs::PollWaiter::new();
    while !signal::interrupted() {
        signal::with_interruptible(&waiter, || waiter.wait(None));
    }
}

/// rt_sigsuspend(2): wait with a temporary mask; always EINTR.
pub fn rt_sigsuspend(c: &mut Call<'_>) -> SysResult {
    check_sigset_size(c.args[1])?;
    let mask = mem::read_u64(c.args[0])? & !UNBLOCKABLE;
    thread::current().set_temporary_mask(mask);
    wait_for_signal();
    Err(Errno::EINTR)
}

/// rt_sigtimedwait(2): take a signal from `set` without running a handler.
pub fn rt_sigtimedwait(c: &mut Call<'_>) -> SysResult {
    check_sigset_size(c.args[3])?;
    let set = mem::read_u64(c.args[0])? & !UNBLOCKABLE;
    let deadline = time_util::relative_deadline(c.args[2])?;
    let waiter = keel_fs::PollWaiter::new();
    loop {
        if let Some(info) = signal::take_pending(set) {
            if c.args[1] != 0 {
                mem::write_bytes(c.args[1], &signal::encode_siginfo(&info))?;
            }
            return Ok(info.signo as isize);
        }
        // Another signal, not blocked, arrived: it runs instead.
        let lt = thread::current();
        if signal::pending_set() & !lt.mask() & !set != 0 {
            return Err(Errno::EINTR);
        }
        if deadline.is_some_and(|d| d <= keel_core::time::monotonic_ns()) {
            return Err(Errno::EAGAIN);
        }
        signal::with_interruptible(&waiter, || waiter.wait(deadline));
    }
}

/// tgkill(2).
pub fn tgkill(c: &mut Call<'_>) -> SysResult {
    if c.args[0] as i32 != PID as i32 {
        return Err(if (c.args[0] as i32) <= 0 {
            Errno::EINVAL
        } else {
            Errno::ESRCH
        });
    }
    tkill_common(c.args[1], c.args[2])
}

/// tkill(2).
pub fn tkill(c: &mut Call<'_>) -> SysResult {
    tkill_common(c.args[0], c.args[1])
}

fn tkill_common(tid: u64, sig: u64) -> SysResult {
    let sig = signal_number(sig, true)?;
    if tid as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    signal::send_to_thread(tid as u32, sig, PID)?;
    Ok(0)
}

/// kill(2): the process itself is the only one (pid 1, 0 for its group,
/// -1 for everyone it may signal).
pub fn kill(c: &mut Call<'_>) -> SysResult {
    let sig = signal_number(c.args[1], true)?;
    let pid = c.args[0] as i32;
    if pid != PID as i32 && pid != 0 && pid != -1 && pid != -(PID as i32) {
        return Err(Errno::ESRCH);
    }
    if sig != 0 {
        signal::send_to_process(sig);
    }
    Ok(0)
}
