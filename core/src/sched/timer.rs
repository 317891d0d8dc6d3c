//! Per-CPU timers: a deadline-ordered map of wake-ups, with cancellation.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use keel_hal::CpuIndex;

use super::thread::Thread;

/// Identifies an armed timer so it can be cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerHandle {
    cpu: CpuIndex,
    key: (u64, u64),
}

/// Pending timers of one CPU, keyed by (deadline, sequence).
pub struct TimerQueue {
    entries: BTreeMap<(u64, u64), Arc<Thread>>,
    seq: u64,
}

impl TimerQueue {
    pub(crate) const fn new() -> Self {
        Self {
            entries: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Arm a wake-up of `thread` at `deadline`.
    pub(crate) fn add(&mut self, cpu: CpuIndex, deadline: u64, thread: Arc<Thread>) -> TimerHandle {
        self.seq += 1;
        let key = (deadline, self.seq);
        self.entries.insert(key, thread);
        TimerHandle { cpu, key }
    }

    /// Disarm; returns whether it was still pending.
    pub(crate) fn cancel(&mut self, handle: TimerHandle) -> bool {
        self.entries.remove(&handle.key).is_some()
    }

    /// Earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.entries.keys().next().map(|k| k.0)
    }

    /// Remove and return the next entry due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<Arc<Thread>> {
        let (&key, _) = self.entries.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.entries.remove(&key)
    }
}

impl TimerHandle {
    /// The CPU whose queue holds it.
    pub fn cpu(&self) -> CpuIndex {
        self.cpu
    }
}
