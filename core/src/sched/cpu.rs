//! Per-CPU scheduler state. Each CPU owns its run queue; other CPUs reach
//! it only through the lock-free `incoming` queue and a few atomics.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use crossbeam_queue::SegQueue;
use keel_hal::boot::MAX_CPUS;
use keel_hal::{CpuIndex, machine};

use super::thread::Thread;
use super::timer::TimerQueue;
use crate::sync::SpinLock;

/// One CPU's scheduler state.
pub struct CpuSched {
    /// Threads ready to run here. Only this CPU touches it (the lock is
    /// uncontended; it exists so the type is honest about sharing).
    pub(crate) run_queue: SpinLock<VecDeque<Arc<Thread>>>,
    /// Threads other CPUs made runnable here (wake-ups, migrations, spawns).
    pub(crate) incoming: SegQueue<Arc<Thread>>,
    /// Set when an IPI was sent and this CPU has not yet drained `incoming`.
    pub(crate) kicked: AtomicBool,
    /// Threads waiting in `run_queue` (for balancing decisions elsewhere).
    pub(crate) queued: AtomicUsize,
    /// The idle thread is running.
    pub(crate) idle: AtomicBool,
    /// A trap should reschedule on its way out.
    pub(crate) need_resched: AtomicBool,
    /// End of the running thread's time slice (monotonic ns).
    pub(crate) slice_end: AtomicU64,
    /// The deadline the hardware timer is armed with (`NOT_ARMED`: none),
    /// so rearming it with the same value costs nothing.
    pub(crate) armed: AtomicU64,
    /// When the running thread was switched in.
    pub(crate) switched_in_at: AtomicU64,
    /// Running thread; the slot owns one strong count.
    current: AtomicPtr<Thread>,
    /// This CPU's idle thread.
    pub(crate) idle_thread: SpinLock<Option<Arc<Thread>>>,
    /// The thread switched away from, released once we are off its stack.
    pub(crate) previous: SpinLock<Option<Arc<Thread>>>,
    /// A thread balancing chose to move away while it was still switching
    /// out; `finish_switch` hands it over.
    pub(crate) handoff: SpinLock<Option<(Arc<Thread>, CpuIndex)>>,
    /// Sleep and timeout timers.
    pub(crate) timers: SpinLock<TimerQueue>,
    /// Context switches performed.
    pub(crate) switches: AtomicU64,
    /// Online and scheduling.
    pub(crate) online: AtomicBool,
}

impl CpuSched {
    const fn new() -> Self {
        Self {
            run_queue: SpinLock::new(VecDeque::new()),
            incoming: SegQueue::new(),
            kicked: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            idle: AtomicBool::new(false),
            need_resched: AtomicBool::new(false),
            slice_end: AtomicU64::new(0),
            armed: AtomicU64::new(super::NOT_ARMED),
            switched_in_at: AtomicU64::new(0),
            current: AtomicPtr::new(ptr::null_mut()),
            idle_thread: SpinLock::new(None),
            previous: SpinLock::new(None),
            handoff: SpinLock::new(None),
            timers: SpinLock::new(TimerQueue::new()),
            switches: AtomicU64::new(0),
            online: AtomicBool::new(false),
        }
    }

    /// The running thread.
    pub fn current(&self) -> Arc<Thread> {
        let p = self.current.load(Ordering::Acquire);
        assert!(!p.is_null(), "scheduler not started on this CPU");
        // SAFETY: `p` came from `Arc::into_raw` in `set_current`, and the slot
        // keeps its strong count until replaced, so the Thread is alive; we
        // add a count for the Arc we hand out.
        unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        }
    }

    /// Make `t` the running thread; returns the previous one (its slot count).
    pub(crate) fn set_current(&self, t: Arc<Thread>) -> Option<Arc<Thread>> {
        let raw = Arc::into_raw(t).cast_mut();
        machine::set_running_thread_word(raw as usize);
        let old = self.current.swap(raw, Ordering::AcqRel);
        // SAFETY: a non-null `old` came from `Arc::into_raw` and carried the
        // slot's strong count, which we now take back.
        (!old.is_null()).then(|| unsafe { Arc::from_raw(old) })
    }

    /// Whether this CPU is online and scheduling.
    pub fn online_flag(&self) -> &AtomicBool {
        &self.online
    }
}

static CPUS: [CpuSched; MAX_CPUS] = [const { CpuSched::new() }; MAX_CPUS];
static ONLINE: AtomicUsize = AtomicUsize::new(0);

/// The calling CPU's scheduler state.
#[inline]
pub fn this_cpu() -> &'static CpuSched {
    &CPUS[machine::current_cpu()]
}

/// CPU `i`'s scheduler state.
#[inline]
pub fn cpu(i: CpuIndex) -> &'static CpuSched {
    &CPUS[i]
}

/// Number of CPUs online.
pub fn online_count() -> usize {
    ONLINE.load(Ordering::Acquire)
}

pub(crate) fn mark_online(i: CpuIndex) {
    CPUS[i].online.store(true, Ordering::Release);
    ONLINE.fetch_add(1, Ordering::AcqRel);
}

/// Indices of online CPUs.
pub fn online() -> impl Iterator<Item = CpuIndex> {
    (0..MAX_CPUS).filter(|&i| CPUS[i].online.load(Ordering::Acquire))
}
