//! Condition variable for use with the sleeping [`Mutex`].

use core::sync::atomic::{AtomicU64, Ordering};

use super::mutex::MutexGuard;
use super::wait_queue::WaitQueue;

/// Waits for a condition guarded by a mutex. Wake-ups may be spurious:
/// callers re-check their condition in a loop.
pub struct Condvar {
    generation: AtomicU64,
    waiters: WaitQueue,
}

impl Default for Condvar {
    fn default() -> Self {
        Self::new()
    }
}

impl Condvar {
    /// A new condition variable.
    pub const fn new() -> Self {
        Self {
            generation: AtomicU64::new(0),
            waiters: WaitQueue::new(),
        }
    }

    /// Unlock, sleep until notified, relock.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_deadline(guard, None).0
    }

    /// As [`Condvar::wait`], giving up at `deadline`; the flag says whether
    /// a notification (rather than the deadline) ended the wait.
    pub fn wait_deadline<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<u64>,
    ) -> (MutexGuard<'a, T>, bool) {
        // Read the generation before unlocking, so a notify that follows the
        // unlock is seen.
        let seen = self.generation.load(Ordering::Acquire);
        let mutex = guard.mutex();
        drop(guard);
        let notified = self
            .waiters
            .wait_until_deadline(|| self.generation.load(Ordering::Acquire) != seen, deadline);
        (mutex.lock(), notified)
    }

    /// Wake one waiter.
    pub fn notify_one(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.waiters.wake_one();
    }

    /// Wake every waiter.
    pub fn notify_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.waiters.wake_all();
    }
}
