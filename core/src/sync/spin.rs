//! Interrupt-safe spinlock: masks interrupts on the holding CPU, so an
//! interrupt handler on that CPU can never deadlock against its own thread.

use core::ops::{Deref, DerefMut};

use keel_hal::machine;

/// Interrupts masked on this CPU until dropped (then restored as they were).
pub struct IrqGuard {
    were_enabled: bool,
}

impl IrqGuard {
    /// Mask interrupts on this CPU.
    #[inline]
    pub fn new() -> Self {
        Self {
            were_enabled: machine::disable_interrupts(),
        }
    }
}

impl Default for IrqGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for IrqGuard {
    #[inline]
    fn drop(&mut self) {
        machine::restore_interrupts(self.were_enabled);
    }
}

/// A spinlock that masks interrupts while held. For short critical
/// sections only; never sleep while holding it.
pub struct SpinLock<T: ?Sized> {
    inner: spin::Mutex<T>,
}

/// Access to a [`SpinLock`]'s data; unlocks and restores interrupts on drop.
pub struct SpinLockGuard<'a, T: ?Sized> {
    // Field order matters: the lock is released before interrupts return.
    guard: spin::MutexGuard<'a, T>,
    _irq: IrqGuard,
}

impl<T> SpinLock<T> {
    /// A new unlocked lock.
    pub const fn new(value: T) -> Self {
        Self {
            inner: spin::Mutex::new(value),
        }
    }
}

impl<T: ?Sized> SpinLock<T> {
    /// Mask interrupts and spin until the lock is ours.
    #[inline]
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        let irq = IrqGuard::new();
        loop {
            if let Some(guard) = self.inner.try_lock() {
                return SpinLockGuard { guard, _irq: irq };
            }
            while self.inner.is_locked() {
                machine::spin_hint();
            }
        }
    }

    /// Take the lock only if it is free now.
    pub fn try_lock(&self) -> Option<SpinLockGuard<'_, T>> {
        let irq = IrqGuard::new();
        self.inner
            .try_lock()
            .map(|guard| SpinLockGuard { guard, _irq: irq })
    }
}

impl<T: ?Sized> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: ?Sized> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}
