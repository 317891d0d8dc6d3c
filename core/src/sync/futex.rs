//! Wait-on-address: sleep while a 32-bit word holds an expected value, until
//! someone wakes that address. The Linux `futex` calls are built on this.
//!
//! Waiters hash by address into buckets; checking the word and queueing
//! happen under the bucket lock, so a wake that follows a store is never
//! missed.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use super::spin::SpinLock;
use crate::sched::{self, Thread};

const BUCKETS: usize = 64;

struct Waiter {
    addr: usize,
    thread: Arc<Thread>,
}

static TABLE: [SpinLock<Vec<Waiter>>; BUCKETS] = [const { SpinLock::new(Vec::new()) }; BUCKETS];

fn bucket(addr: usize) -> &'static SpinLock<Vec<Waiter>> {
    // Fibonacci hashing spreads word-aligned addresses over the buckets.
    let h = (addr as u64 >> 2).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
    &TABLE[h as usize % BUCKETS]
}

/// Why a wait ended without a wake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The word did not hold the expected value.
    ValueChanged,
    /// The deadline passed.
    TimedOut,
}

/// Sleep while `*word == expected`, until [`wake_address`] on `word` or
/// `deadline` (monotonic ns).
pub fn wait_on_address(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<u64>,
) -> Result<(), WaitError> {
    let addr = word as *const AtomicU32 as usize;
    let b = bucket(addr);
    let mut outcome = None;
    let mut timer = None;
    sched::prepare_to_block(|me| {
        let mut q = b.lock();
        if word.load(Ordering::SeqCst) != expected {
            outcome = Some(Err(WaitError::ValueChanged));
            return;
        }
        q.push(Waiter {
            addr,
            thread: me.clone(),
        });
        timer = deadline.map(sched::add_timer);
    });
    while outcome.is_none() {
        sched::block();
        // Re-arm before looking, so a wake between the look and the next
        // sleep cancels that sleep.
        sched::prepare_to_block(|me| {
            let mut q = b.lock();
            match q.iter().position(|w| Arc::ptr_eq(&w.thread, me)) {
                // A waker took us off the queue: a real wake-up.
                None => outcome = Some(Ok(())),
                Some(pos) if deadline.is_some_and(|d| keel_hal::machine::monotonic_ns() >= d) => {
                    q.swap_remove(pos);
                    outcome = Some(Err(WaitError::TimedOut));
                }
                Some(_) => {}
            }
        });
    }
    sched::unblock_self();
    if let Some(t) = timer {
        sched::cancel_timer(t);
    }
    outcome.expect("loop exits with an outcome")
}

/// Wake up to `count` threads waiting on `word`; returns how many woke.
pub fn wake_address(word: &AtomicU32, count: usize) -> usize {
    let addr = word as *const AtomicU32 as usize;
    let mut woken = Vec::new();
    {
        let mut q = bucket(addr).lock();
        let mut i = 0;
        while i < q.len() && woken.len() < count {
            if q[i].addr == addr {
                woken.push(q.remove(i).thread);
            } else {
                i += 1;
            }
        }
    }
    for t in &woken {
        sched::wake(t);
    }
    woken.len()
}
