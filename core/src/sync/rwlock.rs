//! Sleeping reader-writer lock. Writers take precedence over new readers,
//! so a stream of readers cannot starve a writer.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

use super::spin::SpinLock;
use super::wait_queue::WaitQueue;

#[derive(Default)]
struct State {
    readers: usize,
    writer: bool,
    writers_waiting: usize,
}

/// Many readers or one writer; waiters sleep.
pub struct RwLock<T: ?Sized> {
    state: SpinLock<State>,
    waiters: WaitQueue,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out shared refs only to readers and a unique ref
// only to the single writer, like std's RwLock.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}

/// Shared access.
pub struct ReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

/// Exclusive access.
pub struct WriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

impl<T> RwLock<T> {
    /// A new unlocked lock.
    pub const fn new(value: T) -> Self {
        Self {
            state: SpinLock::new(State {
                readers: 0,
                writer: false,
                writers_waiting: 0,
            }),
            waiters: WaitQueue::new(),
            data: UnsafeCell::new(value),
        }
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, sleeping while a writer holds or waits for the lock.
    pub fn read(&self) -> ReadGuard<'_, T> {
        self.waiters.wait_until(|| {
            let mut s = self.state.lock();
            let free = !s.writer && s.writers_waiting == 0;
            if free {
                s.readers += 1;
            }
            free
        });
        ReadGuard { lock: self }
    }

    /// Exclusive access, sleeping until readers and writers are gone.
    pub fn write(&self) -> WriteGuard<'_, T> {
        self.state.lock().writers_waiting += 1;
        self.waiters.wait_until(|| {
            let mut s = self.state.lock();
            let free = !s.writer && s.readers == 0;
            if free {
                s.writer = true;
                s.writers_waiting -= 1;
            }
            free
        });
        WriteGuard { lock: self }
    }

    fn release(&self, writer: bool) {
        let wake = {
            let mut s = self.state.lock();
            if writer {
                s.writer = false;
            } else {
                s.readers -= 1;
            }
            !s.writer && s.readers == 0
        };
        if wake {
            self.waiters.wake_all();
        }
    }
}

impl<T: ?Sized> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard exists only while `readers > 0` and no writer.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release(false);
    }
}

impl<T: ?Sized> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write guard is the only access while it lives.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write guard is the only access while it lives.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release(true);
    }
}
