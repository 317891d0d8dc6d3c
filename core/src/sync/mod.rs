//! Synchronisation: spinlocks for short critical sections, and sleeping
//! primitives (mutex, condition variable, semaphore, wait-on-address) built
//! on the scheduler's wait queues.

mod condvar;
mod futex;
mod mutex;
mod semaphore;
mod spin;
mod wait_queue;

pub use condvar::Condvar;
pub use futex::{WaitError, wait_on_address, wake_address};
pub use mutex::{Mutex, MutexGuard};
pub use semaphore::Semaphore;
pub use spin::{IrqGuard, SpinLock, SpinLockGuard};
pub use wait_queue::WaitQueue;
