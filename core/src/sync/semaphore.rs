//! Counting semaphore.

use core::sync::atomic::{AtomicUsize, Ordering};

use super::wait_queue::WaitQueue;

/// A counter of permits; `acquire` sleeps while none are left.
pub struct Semaphore {
    permits: AtomicUsize,
    waiters: WaitQueue,
}

impl Semaphore {
    /// A semaphore holding `permits`.
    pub const fn new(permits: usize) -> Self {
        Self {
            permits: AtomicUsize::new(permits),
            waiters: WaitQueue::new(),
        }
    }

    /// Take a permit if one is free.
    pub fn try_acquire(&self) -> bool {
        self.permits
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |p| p.checked_sub(1))
            .is_ok()
    }

    /// Take a permit, sleeping until one is free.
    pub fn acquire(&self) {
        self.waiters.wait_until(|| self.try_acquire());
    }

    /// As [`Semaphore::acquire`], giving up at `deadline`.
    pub fn acquire_deadline(&self, deadline: u64) -> bool {
        self.waiters
            .wait_until_deadline(|| self.try_acquire(), Some(deadline))
    }

    /// Return a permit.
    pub fn release(&self) {
        self.permits.fetch_add(1, Ordering::Release);
        self.waiters.wake_one();
    }

    /// Permits free now.
    pub fn available(&self) -> usize {
        self.permits.load(Ordering::Relaxed)
    }
}
