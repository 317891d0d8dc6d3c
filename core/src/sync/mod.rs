//! Synchronisation: spinlocks for short critical sections, and sleeping
//! primitives (mutex, condition variable, semaphore, wait-on-address) built
//! on the scheduler's wait queues.

mod condvar;
mod futex;
mod mutex;
mod rwlock;
mod semaphore;
mod spin;
mod wait_queue;

pub use condvar::Condvar;
pub use futex::{
    WaitError, nudge, requeue_keyed, wait_keyed, wait_on_address, wake_address, wake_keyed,
};
pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{ReadGuard, RwLock, WriteGuard};
pub use semaphore::Semaphore;
pub use spin::{IrqGuard, SpinLock, SpinLockGuard};
pub use wait_queue::WaitQueue;
