//! Blocking primitives under contention from every CPU.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::ktest::TestResult;
use crate::sched::{self, ExitReason, Options};
use crate::sync::{Condvar, Mutex, Semaphore, WaitError, wait_on_address, wake_address};
use crate::{check, check_eq, ktest, time};

fn on_every_cpu(
    threads_per_cpu: usize,
    f: impl Fn(usize) + Send + Sync + 'static,
) -> Vec<ExitReason> {
    let f = Arc::new(f);
    let handles: Vec<_> = sched::online()
        .flat_map(|cpu| (0..threads_per_cpu).map(move |k| (cpu, k)))
        .map(|(cpu, k)| {
            let f = f.clone();
            sched::spawn_with(
                Options {
                    name: alloc::format!("contend/{cpu}.{k}").into(),
                    pin: Some(cpu),
                    killable: true,
                },
                move || f(cpu),
            )
        })
        .collect();
    handles.into_iter().map(|h| h.join()).collect()
}

#[ktest]
fn mutex_contention_from_all_cpus_loses_no_update() -> TestResult {
    const ITERS: usize = 3000;
    let shared = Arc::new(Mutex::new((0usize, 0usize)));
    let s = shared.clone();
    let exits = on_every_cpu(2, move |_| {
        for _ in 0..ITERS {
            let mut g = s.lock();
            // Two fields updated non-atomically: a broken lock shows as a mismatch.
            g.0 += 1;
            core::hint::spin_loop();
            g.1 += 1;
        }
    });
    check!(exits.iter().all(|e| *e == ExitReason::Returned));
    let g = shared.lock();
    let expected = exits.len() * ITERS;
    check_eq!(*g, (expected, expected));
    Ok(())
}

#[ktest]
fn condvar_hands_items_from_producers_to_consumers() -> TestResult {
    const ITEMS: usize = 2000;
    let queue = Arc::new((Mutex::new(Vec::<usize>::new()), Condvar::new()));
    let consumed = Arc::new(AtomicUsize::new(0));
    let (q, c) = (queue.clone(), consumed.clone());
    let consumer = sched::spawn("consumer", move || {
        let mut got = 0;
        while got < ITEMS {
            let mut items = q.0.lock();
            while items.is_empty() {
                items = q.1.wait(items);
            }
            got += items.len();
            c.fetch_add(items.iter().sum(), Ordering::Relaxed);
            items.clear();
        }
    });
    let q = queue.clone();
    let producer = sched::spawn("producer", move || {
        for i in 0..ITEMS {
            q.0.lock().push(i);
            q.1.notify_one();
        }
    });
    check_eq!(producer.join(), ExitReason::Returned);
    check_eq!(consumer.join(), ExitReason::Returned);
    check_eq!(consumed.load(Ordering::Relaxed), ITEMS * (ITEMS - 1) / 2);
    Ok(())
}

#[ktest]
fn semaphore_bounds_concurrency() -> TestResult {
    let sem = Arc::new(Semaphore::new(2));
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (s, i, p) = (sem.clone(), inside.clone(), peak.clone());
    let exits = on_every_cpu(3, move |_| {
        for _ in 0..50 {
            s.acquire();
            let now = i.fetch_add(1, Ordering::AcqRel) + 1;
            p.fetch_max(now, Ordering::AcqRel);
            sched::yield_now();
            i.fetch_sub(1, Ordering::AcqRel);
            s.release();
        }
    });
    check!(exits.iter().all(|e| *e == ExitReason::Returned));
    check!(
        peak.load(Ordering::Relaxed) <= 2,
        "semaphore let {} in",
        peak.load(Ordering::Relaxed)
    );
    check_eq!(sem.available(), 2);
    Ok(())
}

#[ktest]
fn wait_on_address_checks_value_and_times_out() -> TestResult {
    let word = AtomicU32::new(5);
    check_eq!(
        wait_on_address(&word, 4, None),
        Err(WaitError::ValueChanged)
    );
    let start = time::monotonic_ns();
    check_eq!(
        wait_on_address(&word, 5, Some(start + 10_000_000)),
        Err(WaitError::TimedOut)
    );
    let waited = time::monotonic_ns() - start;
    check!(waited >= 10_000_000, "timed out early after {waited} ns");
    check_eq!(wake_address(&word, 1), 0);
    Ok(())
}

#[ktest]
fn wake_address_wakes_exactly_the_requested_count() -> TestResult {
    let word = Arc::new(AtomicU32::new(0));
    let woken = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (w, n) = (word.clone(), woken.clone());
            sched::spawn("waiter", move || {
                if wait_on_address(&w, 0, None).is_ok() {
                    n.fetch_add(1, Ordering::AcqRel);
                }
            })
        })
        .collect();
    // Let them all go to sleep.
    let deadline = time::monotonic_ns() + 2_000_000_000;
    while count_blocked(&handles) < 4 && time::monotonic_ns() < deadline {
        time::sleep_ms(1);
    }
    check_eq!(count_blocked(&handles), 4);
    check_eq!(wake_address(&word, 3), 3);
    time::sleep_ms(20);
    check_eq!(woken.load(Ordering::Acquire), 3);
    check_eq!(wake_address(&word, 10), 1);
    for h in handles {
        check_eq!(h.join(), ExitReason::Returned);
    }
    check_eq!(woken.load(Ordering::Acquire), 4);
    Ok(())
}

fn count_blocked(handles: &[sched::JoinHandle]) -> usize {
    handles
        .iter()
        .filter(|h| h.thread().state() == sched::State::Blocked)
        .count()
}
