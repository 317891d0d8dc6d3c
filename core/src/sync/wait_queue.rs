//! A queue of sleeping threads: the building block of every blocking
//! primitive. Waiters re-check their condition after registering, so a
//! wake-up between the check and the sleep is never lost.

use alloc::collections::VecDeque;
use alloc::sync::Arc;

use super::spin::SpinLock;
use crate::sched::{self, Thread};

/// Threads waiting for something.
pub struct WaitQueue {
    waiters: SpinLock<VecDeque<Arc<Thread>>>,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            waiters: SpinLock::new(VecDeque::new()),
        }
    }

    /// Sleep until `ready()` returns true. `ready` may be called several
    /// times and from a different CPU each time.
    pub fn wait_until(&self, ready: impl FnMut() -> bool) {
        self.wait_until_deadline(ready, None);
    }

    /// As [`WaitQueue::wait_until`], giving up at `deadline` (monotonic ns).
    /// Returns whether `ready()` became true.
    pub fn wait_until_deadline(
        &self,
        mut ready: impl FnMut() -> bool,
        deadline: Option<u64>,
    ) -> bool {
        loop {
            if ready() {
                return true;
            }
            if deadline.is_some_and(|d| keel_hal::machine::monotonic_ns() >= d) {
                return false;
            }
            let mut timer = None;
            sched::prepare_to_block(|me| {
                self.waiters.lock().push_back(me.clone());
                timer = deadline.map(sched::add_timer);
            });
            if ready() {
                self.cancel(&sched::current());
                if let Some(t) = timer {
                    sched::cancel_timer(t);
                }
                return true;
            }
            sched::block();
            if let Some(t) = timer {
                sched::cancel_timer(t);
            }
            // Woken by a waker (who removed us) or by the timer (we remove
            // ourselves); either way, loop and re-check.
            self.remove(&sched::current());
        }
    }

    /// Undo a registration whose wait is no longer needed.
    fn cancel(&self, me: &Arc<Thread>) {
        self.remove(me);
        sched::unblock_self();
    }

    fn remove(&self, me: &Arc<Thread>) {
        let mut q = self.waiters.lock();
        if let Some(pos) = q.iter().position(|t| Arc::ptr_eq(t, me)) {
            q.remove(pos);
        }
    }

    /// Wake the longest waiter; returns whether there was one.
    pub fn wake_one(&self) -> bool {
        let t = self.waiters.lock().pop_front();
        match t {
            Some(t) => {
                sched::wake(&t);
                true
            }
            None => false,
        }
    }

    /// Wake every waiter; returns how many.
    pub fn wake_all(&self) -> usize {
        let all = core::mem::take(&mut *self.waiters.lock());
        let n = all.len();
        for t in &all {
            sched::wake(t);
        }
        n
    }

    /// Whether anyone waits.
    pub fn is_empty(&self) -> bool {
        self.waiters.lock().is_empty()
    }
}
