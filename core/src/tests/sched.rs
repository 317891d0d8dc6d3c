//! Scheduler behaviour: spawn/join at scale, wake-ups across CPUs,
//! fairness, load balancing, preemption.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::ktest::TestResult;
use crate::sched::{self, ExitReason, Options};
use crate::sync::{wait_on_address, wake_address};
use crate::{check, check_eq, ktest, skip, time};

fn pinned(name: &str, cpu: usize) -> Options {
    Options {
        name: alloc::string::String::from(name).into(),
        pin: Some(cpu),
        killable: true,
    }
}

#[ktest]
fn create_and_join_ten_thousand_threads() -> TestResult {
    let ran = Arc::new(AtomicU64::new(0));
    for _batch in 0..100 {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let ran = ran.clone();
                sched::spawn("worker", move || {
                    ran.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for h in handles {
            check_eq!(h.join(), ExitReason::Returned);
        }
    }
    check_eq!(ran.load(Ordering::Relaxed), 10_000);
    Ok(())
}

#[ktest]
fn cross_cpu_wakeup_ping_pong() -> TestResult {
    if sched::online_count() < 2 {
        skip!("needs 2 CPUs");
    }
    const ROUNDS: u32 = 2000;
    let word = Arc::new(AtomicU32::new(0));
    let w = word.clone();
    let pong = sched::spawn_with(pinned("pong", 1), move || {
        for i in 0..ROUNDS {
            // Wait for ping (odd), answer with even.
            while w.load(Ordering::Acquire) != 2 * i + 1 {
                let _ = wait_on_address(&w, 2 * i, None);
            }
            w.store(2 * i + 2, Ordering::Release);
            wake_address(&w, 1);
        }
    });
    let w = word.clone();
    let ping = sched::spawn_with(pinned("ping", 0), move || {
        for i in 0..ROUNDS {
            w.store(2 * i + 1, Ordering::Release);
            wake_address(&w, 1);
            while w.load(Ordering::Acquire) != 2 * i + 2 {
                let _ = wait_on_address(&w, 2 * i + 1, None);
            }
        }
    });
    let start = time::monotonic_ns();
    check_eq!(ping.join(), ExitReason::Returned);
    check_eq!(pong.join(), ExitReason::Returned);
    let per_round_us = (time::monotonic_ns() - start) / 1000 / u64::from(ROUNDS);
    crate::kprintln!("  ping-pong: {per_round_us} us per round trip");
    check_eq!(word.load(Ordering::Relaxed), 2 * ROUNDS);
    Ok(())
}

fn spin_until(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        core::hint::spin_loop();
    }
}

#[ktest]
fn two_cpu_bound_threads_share_one_cpu_fairly() -> TestResult {
    let cpu = sched::online_count() - 1;
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|i| {
            let stop = stop.clone();
            sched::spawn_with(pinned(&alloc::format!("spin{i}"), cpu), move || {
                spin_until(&stop)
            })
        })
        .collect();
    time::sleep_ms(1000);
    stop.store(true, Ordering::Relaxed);
    let threads: Vec<_> = spinners.iter().map(|h| h.thread().clone()).collect();
    for h in spinners {
        check_eq!(h.join(), ExitReason::Returned);
    }
    let (a, b) = (threads[0].runtime_ns(), threads[1].runtime_ns());
    let share = a as f64 / (a + b) as f64;
    crate::kprintln!(
        "  fairness: {:.1}% / {:.1}% of {} ms",
        share * 100.0,
        (1.0 - share) * 100.0,
        (a + b) / 1_000_000
    );
    check!(
        (0.40..=0.60).contains(&share),
        "unfair split: {a} ns vs {b} ns"
    );
    check!(
        a + b >= 800_000_000,
        "the two threads got only {} ms of one second",
        (a + b) / 1_000_000
    );
    Ok(())
}

#[ktest]
fn runnable_threads_spread_over_all_cpus() -> TestResult {
    let n = sched::online_count();
    if n < 2 {
        skip!("needs 2 CPUs");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let start = time::monotonic_ns();
    let spinners: Vec<_> = (0..n)
        .map(|_| {
            let stop = stop.clone();
            sched::spawn("spreader", move || spin_until(&stop))
        })
        .collect();
    time::sleep_ms(400);
    // Where the balancer put them: one per CPU. (Their share of wall time
    // is reported but not judged: under TCG it measures how much of the
    // host the vCPU threads got, not the guest's scheduling.)
    let threads: Vec<_> = spinners.iter().map(|h| h.thread().clone()).collect();
    let mut homes: Vec<_> = threads.iter().map(|t| t.cpu()).collect();
    stop.store(true, Ordering::Relaxed);
    let wall = time::monotonic_ns() - start;
    for h in spinners {
        check_eq!(h.join(), ExitReason::Returned);
    }
    let total: u64 = threads.iter().map(|t| t.runtime_ns()).sum();
    let used = total as f64 / (wall as f64 * n as f64);
    homes.sort_unstable();
    homes.dedup();
    crate::kprintln!(
        "  spread: {n} threads on {} distinct CPUs, {:.0}% of {n} CPUs' time",
        homes.len(),
        used * 100.0
    );
    check!(
        homes.len() == n,
        "threads did not spread: {n} spinners sat on {} CPUs",
        homes.len()
    );
    Ok(())
}

#[ktest]
fn a_busy_thread_is_preempted_for_a_woken_one() -> TestResult {
    let cpu = 0;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let hog = sched::spawn_with(pinned("hog", cpu), move || spin_until(&s));
    let woke_at = Arc::new(AtomicU64::new(0));
    let w = woke_at.clone();
    let sleeper = sched::spawn_with(pinned("sleeper", cpu), move || {
        time::sleep_ms(20);
        w.store(time::monotonic_ns(), Ordering::Relaxed);
    });
    let start = time::monotonic_ns();
    check_eq!(sleeper.join(), ExitReason::Returned);
    stop.store(true, Ordering::Relaxed);
    check_eq!(hog.join(), ExitReason::Returned);
    let late_ms = (woke_at.load(Ordering::Relaxed) - start) / 1_000_000;
    check!(
        late_ms < 60,
        "sleeper on a busy CPU ran {late_ms} ms after a 20 ms sleep"
    );
    Ok(())
}
