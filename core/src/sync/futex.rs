//! Wait-on-address: sleep while a 32-bit word holds an expected value, until
//! someone wakes that address. The Linux `futex` calls are built on this.
//!
//! Waiters hash by address into buckets; the caller's value check and the
//! queueing happen under the bucket lock, so a wake that follows a store is
//! never missed. Each waiter carries a bitset (FUTEX_WAIT_BITSET).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use super::spin::SpinLock;
use crate::sched::{self, Thread};

const BUCKETS: usize = 64;

struct Waiter {
    addr: usize,
    bitset: u32,
    thread: Arc<Thread>,
}

static TABLE: [SpinLock<Vec<Waiter>>; BUCKETS] = [const { SpinLock::new(Vec::new()) }; BUCKETS];

fn bucket_index(addr: usize) -> usize {
    // Fibonacci hashing spreads word-aligned addresses over the buckets.
    ((addr as u64 >> 2).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % BUCKETS
}

/// Why a wait ended without a wake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The word did not hold the expected value.
    ValueChanged,
    /// The deadline passed.
    TimedOut,
    /// The word could not be read.
    Fault,
}

/// Sleep on `addr` (waking for `bitset`) if `holds_expected()` — called
/// under the bucket lock with interrupts masked, so it must not sleep —
/// returns `Some(true)`; `Some(false)` means the value changed, `None` that
/// it could not be read. Ends at a wake, at `deadline` (monotonic ns), or
/// when `stop()` (checked on every wake-up, e.g. a pending signal) says so.
pub fn wait_keyed(
    addr: usize,
    bitset: u32,
    holds_expected: impl FnOnce() -> Option<bool>,
    deadline: Option<u64>,
    mut stop: impl FnMut() -> bool,
) -> Result<(), WaitError> {
    let b = &TABLE[bucket_index(addr)];
    let mut outcome = None;
    let mut timer = None;
    sched::prepare_to_block(|me| {
        let mut q = b.lock();
        match holds_expected() {
            Some(true) => {}
            Some(false) => {
                outcome = Some(Err(WaitError::ValueChanged));
                return;
            }
            None => {
                outcome = Some(Err(WaitError::Fault));
                return;
            }
        }
        q.push(Waiter {
            addr,
            bitset,
            thread: me.clone(),
        });
        timer = deadline.map(sched::add_timer);
    });
    while outcome.is_none() {
        sched::block();
        // Re-arm before looking, so a wake between the look and the next
        // sleep cancels that sleep.
        let stopping = stop();
        sched::prepare_to_block(|me| {
            let mut q = b.lock();
            match q.iter().position(|w| Arc::ptr_eq(&w.thread, me)) {
                // A waker (or a requeue to another word) took us off.
                None => outcome = Some(Ok(())),
                Some(pos) if deadline.is_some_and(|d| keel_hal::machine::monotonic_ns() >= d) => {
                    q.swap_remove(pos);
                    outcome = Some(Err(WaitError::TimedOut));
                }
                Some(pos) if stopping => {
                    q.swap_remove(pos);
                    outcome = Some(Ok(()));
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

/// Wake up to `count` threads waiting on `addr` whose bitset meets `bitset`.
pub fn wake_keyed(addr: usize, count: usize, bitset: u32) -> usize {
    let mut woken = Vec::new();
    {
        let mut q = TABLE[bucket_index(addr)].lock();
        let mut i = 0;
        while i < q.len() && woken.len() < count {
            if q[i].addr == addr && q[i].bitset & bitset != 0 {
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

/// Wake every thread waiting on `addr` (used to interrupt a wait: they
/// re-check and see why).
pub fn nudge(addr: usize) {
    let q = TABLE[bucket_index(addr)].lock();
    let threads: Vec<Arc<Thread>> = q
        .iter()
        .filter(|w| w.addr == addr)
        .map(|w| w.thread.clone())
        .collect();
    drop(q);
    for t in &threads {
        sched::wake(t);
    }
}

/// Wake up to `wake` waiters on `from` and move up to `requeue` more to
/// wait on `to`, if `still_ok()` (checked with both buckets locked) holds.
/// Returns (woken, moved), or None if the check failed.
pub fn requeue_keyed(
    from: usize,
    to: usize,
    wake: usize,
    requeue: usize,
    still_ok: impl FnOnce() -> Option<bool>,
) -> Result<(usize, usize), WaitError> {
    let (bf, bt) = (bucket_index(from), bucket_index(to));
    let mut woken = Vec::new();
    let moved;
    {
        // Lock both buckets in index order.
        let (first, second) = if bf <= bt { (bf, bt) } else { (bt, bf) };
        let mut a = TABLE[first].lock();
        let mut b_guard = (first != second).then(|| TABLE[second].lock());
        match still_ok() {
            Some(true) => {}
            Some(false) => return Err(WaitError::ValueChanged),
            None => return Err(WaitError::Fault),
        }
        let take = |q: &mut Vec<Waiter>, n: usize| {
            let mut out = Vec::new();
            let mut i = 0;
            while i < q.len() && out.len() < n {
                if q[i].addr == from {
                    out.push(q.remove(i))
                } else {
                    i += 1
                }
            }
            out
        };
        let (src, dst): (&mut Vec<Waiter>, Option<&mut Vec<Waiter>>) = if first == second {
            (&mut a, None)
        } else if bf == first {
            (&mut a, b_guard.as_deref_mut())
        } else {
            (b_guard.as_deref_mut().expect("two buckets"), Some(&mut a))
        };
        woken.extend(take(src, wake).into_iter().map(|w| w.thread));
        let mut rest = take(src, requeue);
        moved = rest.len();
        for w in &mut rest {
            w.addr = to;
        }
        match dst {
            Some(d) => d.extend(rest),
            None => src.extend(rest),
        }
    }
    for t in &woken {
        sched::wake(t);
    }
    Ok((woken.len(), moved))
}

/// Sleep while `*word == expected`, until [`wake_address`] on `word` or
/// `deadline` (monotonic ns).
pub fn wait_on_address(
    word: &AtomicU32,
    expected: u32,
    deadline: Option<u64>,
) -> Result<(), WaitError> {
    let addr = word as *const AtomicU32 as usize;
    wait_keyed(
        addr,
        u32::MAX,
        || Some(word.load(Ordering::SeqCst) == expected),
        deadline,
        || false,
    )
}

/// Wake up to `count` threads waiting on `word`; returns how many woke.
pub fn wake_address(word: &AtomicU32, count: usize) -> usize {
    wake_keyed(word as *const AtomicU32 as usize, count, u32::MAX)
}
