//! Linux's view of a thread: tid, the clear-child-tid and robust-list
//! addresses, the signal mask, the alternate signal stack, pending signals
//! and the name. Kept in the core thread's OS slot.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use keel_core::sched::{self, Thread};
use keel_core::sync::SpinLock;

/// sigaltstack(2) state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AltStack {
    /// Base address.
    pub sp: u64,
    /// Size.
    pub size: u64,
    /// SS_DISABLE etc.
    pub flags: i32,
}

/// Per-thread Linux state.
pub struct LinuxThread {
    /// Thread id (the main thread's equals the pid).
    pub tid: u32,
    /// CLONE_CHILD_CLEARTID / set_tid_address: zeroed and futex-woken at exit.
    pub clear_child_tid: AtomicU64,
    /// set_robust_list head.
    pub robust_list: AtomicU64,
    /// Blocked signals (bit n-1 for signal n).
    pub sigmask: AtomicU64,
    /// Signals sent to this thread and not yet delivered.
    pub pending: AtomicU64,
    /// Alternate signal stack.
    pub altstack: SpinLock<AltStack>,
    /// prctl PR_SET_NAME.
    pub name: SpinLock<[u8; 16]>,
    /// The core thread.
    pub core: spin::Once<alloc::sync::Weak<Thread>>,
    /// Exit code (for the process status when the last thread exits).
    pub exit_code: AtomicU32,
    /// The poll/epoll waiter this thread sleeps on, so a signal can wake it.
    pub waiter: SpinLock<Option<Arc<keel_fs::PollWaiter>>>,
    /// The futex word this thread waits on (0 if none), so a signal can wake it.
    pub futex_word: AtomicU64,
    /// The mask to restore when the current system call returns, set by
    /// calls that wait with a temporary mask (sigsuspend, ppoll, pselect,
    /// epoll_pwait): a handler run on the way out must save this one.
    pub saved_mask: SpinLock<Option<u64>>,
}

impl LinuxThread {
    /// A new thread state.
    pub fn new(tid: u32, sigmask: u64) -> Arc<Self> {
        Arc::new(Self {
            tid,
            clear_child_tid: AtomicU64::new(0),
            robust_list: AtomicU64::new(0),
            sigmask: AtomicU64::new(sigmask),
            pending: AtomicU64::new(0),
            altstack: SpinLock::new(AltStack {
                sp: 0,
                size: 0,
                flags: 2,
            }), // SS_DISABLE
            name: SpinLock::new([0; 16]),
            core: spin::Once::new(),
            exit_code: AtomicU32::new(0),
            waiter: SpinLock::new(None),
            futex_word: AtomicU64::new(0),
            saved_mask: SpinLock::new(None),
        })
    }

    /// The thread's name, as /proc and prctl show it.
    pub fn name_string(&self) -> alloc::string::String {
        let n = *self.name.lock();
        let len = n.iter().position(|&b| b == 0).unwrap_or(16);
        alloc::string::String::from_utf8_lossy(&n[..len]).into_owned()
    }

    /// Blocked signal mask.
    pub fn mask(&self) -> u64 {
        self.sigmask.load(Ordering::Acquire)
    }

    /// Block `mask` until the system call returns (the old mask comes back
    /// then, or is saved in the frame of a handler that runs first).
    pub fn set_temporary_mask(&self, mask: u64) {
        let old = self.sigmask.swap(mask, Ordering::AcqRel);
        let mut saved = self.saved_mask.lock();
        if saved.is_none() {
            *saved = Some(old);
            crate::signal::WORK.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// The calling thread's Linux state. Panics if the caller is not an app thread.
pub fn current() -> Arc<LinuxThread> {
    let t = sched::current();
    t.os_state()
        .and_then(|s| s.clone().downcast::<LinuxThread>().ok())
        .expect("a system call from a thread that is not an app thread")
}

/// The calling thread's Linux state, if it is an app thread.
pub fn try_current() -> Option<Arc<LinuxThread>> {
    let t = sched::current();
    t.os_state()
        .and_then(|s| s.clone().downcast::<LinuxThread>().ok())
}
