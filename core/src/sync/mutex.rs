//! Sleeping mutex: an uncontended lock is one atomic compare-exchange; a
//! contended one sleeps on a wait queue instead of spinning.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering};

use super::wait_queue::WaitQueue;

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
/// Locked, and someone may be sleeping on it.
const CONTENDED: u32 = 2;

/// A mutual-exclusion lock whose waiters sleep.
pub struct Mutex<T: ?Sized> {
    state: AtomicU32,
    waiters: WaitQueue,
    data: UnsafeCell<T>,
}

// SAFETY: the lock gives exclusive access to `data`, so sharing the Mutex
// is sound whenever `T` may move between threads.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

/// Exclusive access to a [`Mutex`]'s data; unlocks on drop.
pub struct MutexGuard<'a, T: ?Sized> {
    pub(super) mutex: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    /// A new unlocked mutex.
    pub const fn new(value: T) -> Self {
        Self {
            state: AtomicU32::new(UNLOCKED),
            waiters: WaitQueue::new(),
            data: UnsafeCell::new(value),
        }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Take the lock, sleeping while another thread holds it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if self
            .state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // Mark it contended so the holder's unlock wakes a sleeper, and
            // sleep only while it stays marked: if another thread took the
            // lock through the fast path in between, the mark is gone and
            // must be set again before sleeping, or its unlock wakes no one.
            while self.state.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
                self.waiters
                    .wait_until(|| self.state.load(Ordering::Relaxed) != CONTENDED);
            }
        }
        MutexGuard { mutex: self }
    }

    /// Take the lock only if it is free now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| MutexGuard { mutex: self })
    }

    fn unlock(&self) {
        if self.state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            self.waiters.wake_one();
        }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: holding the guard means holding the lock.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: holding the guard means holding the lock exclusively.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for condition variables).
    pub fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}
