//! Signals: dispositions, pending sets, delivery at system-call return and
//! on faults (SIGSEGV/SIGBUS/SIGFPE/SIGILL to the faulting thread's
//! handler), default actions, and interrupting blocked calls (EINTR).
//!
//! The signal frame is arch-specific: `frame_x86_64`, `frame_aarch64`,
//! `frame_ppc64`.

mod frame_aarch64;
mod frame_ppc64;
mod frame_x86_64;
mod trampoline;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use keel_core::app::AppFault;
use keel_core::memory::app_space::FaultError;
use keel_fs::PollWaiter;
use keel_hal::{AppFrame, FaultKind};

use crate::process::{self, SigAction};
use crate::thread::{self, LinuxThread};

/// SIGILL.
pub const SIGILL: u32 = 4;
/// SIGTRAP.
pub const SIGTRAP: u32 = 5;
/// SIGABRT.
pub const SIGABRT: u32 = 6;
/// SIGBUS.
pub const SIGBUS: u32 = 7;
/// SIGFPE.
pub const SIGFPE: u32 = 8;
/// SIGKILL.
pub const SIGKILL: u32 = 9;
/// SIGSEGV.
pub const SIGSEGV: u32 = 11;
/// SIGPIPE.
pub const SIGPIPE: u32 = 13;
/// SIGSTOP.
pub const SIGSTOP: u32 = 19;

const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
/// SA_SIGINFO.
pub const SA_SIGINFO: u64 = 4;
/// SA_ONSTACK.
pub const SA_ONSTACK: u64 = 0x0800_0000;
/// SA_RESTART.
pub const SA_RESTART: u64 = 0x1000_0000;
/// SA_NODEFER.
pub const SA_NODEFER: u64 = 0x4000_0000;
/// SA_RESETHAND.
pub const SA_RESETHAND: u64 = 0x8000_0000;
/// SA_RESTORER.
pub const SA_RESTORER: u64 = 0x0400_0000;

const NAMES: [&str; 32] = [
    "0",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// A signal's name ("SIGSEGV"), or its number for real-time signals.
pub fn name(sig: u32) -> alloc::string::String {
    NAMES
        .get(sig as usize)
        .map_or_else(|| alloc::format!("SIGRT{}", sig - 32), |n| (*n).into())
}

fn bit(sig: u32) -> u64 {
    1u64 << (sig - 1)
}

/// Signal work outstanding anywhere: pending signal bits plus temporary
/// masks to restore. Zero (the usual case) lets every system call return
/// without looking at its thread's signal state at all.
pub(crate) static WORK: AtomicUsize = AtomicUsize::new(0);

/// Mark `sig` pending in `set`.
fn post(set: &AtomicU64, sig: u32) {
    if set.fetch_or(bit(sig), Ordering::AcqRel) & bit(sig) == 0 {
        WORK.fetch_add(1, Ordering::AcqRel);
    }
}

/// Take `sig` from `set`; false if another thread took it first.
fn take(set: &AtomicU64, sig: u32) -> bool {
    let had = set.fetch_and(!bit(sig), Ordering::AcqRel) & bit(sig) != 0;
    if had {
        WORK.fetch_sub(1, Ordering::AcqRel);
    }
    had
}

/// Take the calling thread's saved mask (set by a call that waited with a
/// temporary one), if any.
fn take_saved_mask(lt: &LinuxThread) -> Option<u64> {
    let m = lt.saved_mask.lock().take();
    if m.is_some() {
        WORK.fetch_sub(1, Ordering::AcqRel);
    }
    m
}

/// A thread is ending: its pending signals and saved mask go with it.
pub(crate) fn forget_thread(lt: &LinuxThread) {
    let left = lt.pending.swap(0, Ordering::AcqRel).count_ones() as usize;
    WORK.fetch_sub(left, Ordering::AcqRel);
    take_saved_mask(lt);
}

/// What a signal does by default.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Default {
    Terminate,
    Ignore,
    /// Stopping makes no sense with one process and no shell; Keel ignores
    /// stop signals (and says so once).
    Stop,
}

fn default_action(sig: u32) -> Default {
    match sig {
        17 | 18 | 23 | 28 => Default::Ignore, // SIGCHLD SIGCONT SIGURG SIGWINCH
        19..=22 => Default::Stop,
        _ => Default::Terminate,
    }
}

/// Information passed to a handler (siginfo_t).
#[derive(Clone, Copy, Debug, Default)]
pub struct SigInfo {
    /// Signal number.
    pub signo: u32,
    /// si_code.
    pub code: i32,
    /// Faulting address (SIGSEGV etc.), or (pid, uid) for kill.
    pub addr: u64,
    /// Sender pid for kill/tgkill.
    pub pid: u32,
}

const SI_USER: i32 = 0;
const SI_TKILL: i32 = -6;

/// Whether the calling thread has a signal pending that it does not block
/// (a blocking call should give up with EINTR).
pub fn interrupted() -> bool {
    if WORK.load(Ordering::Acquire) == 0 {
        return false;
    }
    let Some(lt) = thread::try_current() else {
        return false;
    };
    let p = process::get();
    (lt.pending.load(Ordering::Acquire) | p.pending.load(Ordering::Acquire)) & !lt.mask() != 0
}

/// Run `f` (a wait on `waiter`) so that a signal sent meanwhile wakes it.
pub fn with_interruptible<R>(waiter: &Arc<PollWaiter>, f: impl FnOnce() -> R) -> R {
    let lt = thread::try_current();
    if let Some(lt) = &lt {
        *lt.waiter.lock() = Some(waiter.clone());
    }
    let r = f();
    if let Some(lt) = &lt {
        *lt.waiter.lock() = None;
    }
    r
}

/// Make `lt` notice a new signal: wake it from whatever it waits in.
fn kick(lt: &LinuxThread, core: Option<&Arc<keel_core::sched::Thread>>) {
    if let Some(w) = lt.waiter.lock().clone() {
        w.notify();
    }
    let futex = lt.futex_word.load(Ordering::Acquire);
    if futex != 0 {
        crate::futex::interrupt(futex);
    }
    if let Some(core) = core {
        keel_core::sched::wake(core);
    }
}

/// Send `sig` to thread `tid` (tgkill).
pub fn send_to_thread(tid: u32, sig: u32, from_pid: u32) -> Result<(), crate::errno::Errno> {
    let p = process::get();
    let (lt, core) = p.thread(tid).ok_or(crate::errno::Errno::ESRCH)?;
    if sig == 0 {
        return Ok(());
    }
    let _ = from_pid;
    post(&lt.pending, sig);
    kick(&lt, core.as_ref());
    Ok(())
}

/// Send `sig` to the process (kill): any thread not blocking it takes it.
pub fn send_to_process(sig: u32) {
    let p = process::get();
    post(&p.pending, sig);
    let threads: alloc::vec::Vec<_> = p.threads.lock().values().cloned().collect();
    match threads.iter().find(|(lt, _)| lt.mask() & bit(sig) == 0) {
        Some((lt, core)) => kick(lt, core.as_ref()),
        // Everyone blocks it: wake them all, one may be in sigtimedwait.
        None => threads
            .iter()
            .for_each(|(lt, core)| kick(lt, core.as_ref())),
    }
}

/// Raise `sig` on the calling thread (SIGPIPE from a write, abort()).
pub fn raise_on_current(sig: u32) {
    if let Some(lt) = thread::try_current() {
        post(&lt.pending, sig);
    }
}

/// End the process because of `sig` (default action of a fatal signal):
/// report it and power off with status 128 + sig, as a shell would show.
pub fn terminate(sig: u32, why: &str) -> ! {
    keel_core::kprintln!("keel: the app was killed by {} ({why})", name(sig));
    keel_core::boot::shutdown((128 + sig) as u8)
}

/// Deliver one pending, unblocked signal to the calling thread (called at
/// system-call return with the app's registers), then put back a mask a
/// call replaced for its duration.
pub fn deliver_pending(frame: &mut AppFrame) {
    if WORK.load(Ordering::Acquire) == 0 {
        return;
    }
    let Some(lt) = thread::try_current() else {
        return;
    };
    let p = process::get();
    loop {
        let mask = lt.mask();
        let own = lt.pending.load(Ordering::Acquire) & !mask;
        let shared = p.pending.load(Ordering::Acquire) & !mask;
        let (set, from_thread) = if own != 0 {
            (own, true)
        } else {
            (shared, false)
        };
        if set == 0 {
            break;
        }
        let sig = set.trailing_zeros() + 1;
        let source = if from_thread { &lt.pending } else { &p.pending };
        if !take(source, sig) {
            continue; // another thread took it
        }
        let info = SigInfo {
            signo: sig,
            code: if from_thread { SI_TKILL } else { SI_USER },
            addr: 0,
            pid: process::PID,
        };
        if deliver(&lt, frame, info, "sent by the app") {
            break;
        }
    }
    if let Some(m) = take_saved_mask(&lt) {
        lt.sigmask.store(m, Ordering::Release);
    }
}

/// Take one pending signal in `set` for the calling thread, blocked or not
/// (sigtimedwait).
pub fn take_pending(set: u64) -> Option<SigInfo> {
    let lt = thread::try_current()?;
    let p = process::get();
    for (source, code) in [(&lt.pending, SI_TKILL), (&p.pending, SI_USER)] {
        loop {
            let ready = source.load(Ordering::Acquire) & set;
            if ready == 0 {
                break;
            }
            let sig = ready.trailing_zeros() + 1;
            if take(source, sig) {
                return Some(SigInfo {
                    signo: sig,
                    code,
                    addr: 0,
                    pid: process::PID,
                });
            }
        }
    }
    None
}

/// Signals pending for the calling thread (its own and the process's).
pub fn pending_set() -> u64 {
    let p = process::get();
    thread::try_current().map_or(0, |lt| lt.pending.load(Ordering::Acquire))
        | p.pending.load(Ordering::Acquire)
}

/// Encode `siginfo_t` (128 bytes; the fields Keel fills sit at the same
/// offsets on every 64-bit Linux arch).
pub fn encode_siginfo(info: &SigInfo) -> [u8; 128] {
    let mut b = [0u8; 128];
    b[0..4].copy_from_slice(&info.signo.to_le_bytes());
    b[8..12].copy_from_slice(&info.code.to_le_bytes());
    if info.code <= 0 {
        b[16..20].copy_from_slice(&info.pid.to_le_bytes()); // si_pid, si_uid = 0
    } else {
        b[16..24].copy_from_slice(&info.addr.to_le_bytes()); // si_addr
    }
    b
}

/// Deliver `info` to the calling thread: run its handler (true), ignore it
/// (false), or end the process.
fn deliver(lt: &Arc<LinuxThread>, frame: &mut AppFrame, info: SigInfo, why: &str) -> bool {
    let p = process::get();
    let sig = info.signo;
    let act: SigAction = p.sigactions.lock()[(sig - 1) as usize];
    match act.handler {
        SIG_IGN if sig != SIGKILL => false,
        SIG_DFL | SIG_IGN => match default_action(sig) {
            Default::Ignore => false,
            Default::Stop => {
                keel_core::kprintln!("keel: {} ignored: Keel does not stop processes", name(sig));
                false
            }
            Default::Terminate => terminate(sig, why),
        },
        _handler => {
            // The frame keeps the mask to return to; the handler runs with
            // the one in force now (maybe a call's temporary one) plus its own.
            let running_mask = lt.mask();
            let old_mask = take_saved_mask(lt).unwrap_or(running_mask);
            if !setup_frame(lt, frame, &act, info, old_mask) {
                // The app's stack cannot take the frame: Linux kills with SIGSEGV.
                terminate(SIGSEGV, "no room for a signal frame on the stack");
            }
            let mut new_mask = running_mask | act.mask;
            if act.flags & SA_NODEFER == 0 {
                new_mask |= bit(sig);
            }
            lt.sigmask
                .store(new_mask & !(bit(SIGKILL) | bit(SIGSTOP)), Ordering::Release);
            if act.flags & SA_RESETHAND != 0 {
                p.sigactions.lock()[(sig - 1) as usize].handler = SIG_DFL;
            }
            true
        }
    }
}

fn setup_frame(
    lt: &LinuxThread,
    frame: &mut AppFrame,
    act: &SigAction,
    info: SigInfo,
    old_mask: u64,
) -> bool {
    match process::get().abi.name {
        "x86_64" => frame_x86_64::setup(lt, frame, act, info, old_mask),
        "aarch64" => frame_aarch64::setup(lt, frame, act, info, old_mask),
        "ppc64" => frame_ppc64::setup(lt, frame, act, info, old_mask),
        other => {
            keel_core::kprintln!("keel: signal handlers are not yet supported on {other}");
            false
        }
    }
}

/// rt_sigreturn: restore the context the handler interrupted.
pub fn sigreturn(frame: &mut AppFrame) -> bool {
    let lt = thread::current();
    match process::get().abi.name {
        "x86_64" => frame_x86_64::restore(&lt, frame),
        "aarch64" => frame_aarch64::restore(&lt, frame),
        "ppc64" => frame_ppc64::restore(&lt, frame),
        _ => false,
    }
}

/// The top of the alternate stack when a signal frame goes there: the
/// action asks for it, one is set, and the thread is not already on it.
/// Wrapping: a wild stack gives an address the frame writes refuse, never
/// a panic.
fn alt_stack_top(alt: &crate::thread::AltStack, act: &SigAction) -> Option<u64> {
    let on_alt = alt.flags & 1 != 0; // SS_ONSTACK: already running on it
    let use_alt = act.flags & SA_ONSTACK != 0 && alt.flags & 2 == 0 && !on_alt && alt.size > 0;
    use_alt.then(|| alt.sp.wrapping_add(alt.size))
}

/// The fault hook: a fault core could not resolve becomes a signal to the
/// faulting thread (or ends the app).
pub fn app_fault(fault: &AppFault<'_>, frame: &mut AppFrame) {
    let (sig, code, addr) = match (fault.kind, fault.error) {
        (FaultKind::PageFault { address, .. }, Some(FaultError::PastEndOfFile)) => {
            (SIGBUS, 2, address.0 as u64)
        }
        (FaultKind::PageFault { address, .. }, Some(FaultError::Io)) => {
            (SIGBUS, 3, address.0 as u64)
        }
        (FaultKind::PageFault { address, .. }, Some(FaultError::Protection)) => {
            (SIGSEGV, 2, address.0 as u64)
        }
        (FaultKind::PageFault { address, .. }, _) => (SIGSEGV, 1, address.0 as u64),
        (FaultKind::Alignment { address }, _) => (SIGBUS, 1, address.0 as u64),
        (FaultKind::IllegalInstruction, _) => (SIGILL, 2, frame.pc),
        (FaultKind::DivideError, _) => (SIGFPE, 1, frame.pc),
        (FaultKind::Breakpoint, _) => (SIGTRAP, 1, frame.pc),
        (FaultKind::Other(_), _) => (SIGSEGV, 0x80, 0),
    };
    let what = match fault.kind {
        FaultKind::PageFault { write, execute, .. } => {
            alloc::format!(
                "{} at {addr:#x}, pc {:#x}",
                if execute {
                    "execute"
                } else if write {
                    "write"
                } else {
                    "read"
                },
                frame.pc
            )
        }
        FaultKind::Other(n) => alloc::format!("{n} at pc {:#x}", frame.pc),
        _ => alloc::format!("pc {:#x}", frame.pc),
    };
    let Some(lt) = thread::try_current() else {
        terminate(sig, &what);
    };
    let act = process::get().sigactions.lock()[(sig - 1) as usize];
    let blocked = lt.mask() & bit(sig) != 0;
    if blocked || act.handler == SIG_DFL || act.handler == SIG_IGN {
        // No handler: a real bug in the app. Report it like a crash.
        keel_core::kprintln!("keel: thread {} faulted: {what}", lt.tid);
        keel_core::kprint!("{}", fault.registers);
        terminate(sig, &what);
    }
    let info = SigInfo {
        signo: sig,
        code,
        addr,
        pid: 0,
    };
    deliver(&lt, frame, info, &what);
}
