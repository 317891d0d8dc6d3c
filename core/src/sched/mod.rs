//! The scheduler: per-CPU round-robin run queues with time-slice
//! preemption, lock-free cross-CPU wake-ups, push/pull load balancing,
//! tick-less timers, and thread spawn/exit/join.
//!
//! Rules that keep it correct:
//! - A thread runs only on its home CPU; only that CPU changes the home,
//!   and only while the thread sits Ready in its run queue. So a thread is
//!   never resumed before its previous CPU finished saving it.
//! - Sleeping is two-step (`Blocking` then `Blocked`), so a wake-up racing
//!   with the decision to sleep cancels the sleep instead of being lost.
//!   Only the thread's own `block` turns `Blocking` into `Blocked`;
//!   preemption never puts a thread to sleep.
//! - Per-CPU state is read with interrupts masked whenever a migration in
//!   the middle would mix two CPUs' state (`current`, `kick`).

mod cpu;
mod registry;
mod switch;
pub mod thread;
mod timer;

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use keel_hal::{CpuIndex, Ipi, machine};

pub use cpu::{CpuSched, online, online_count, this_cpu};
pub use registry::{for_each_thread, print_threads};
pub use thread::{ExitReason, JoinHandle, Options, State, Thread, ThreadId};
pub use timer::TimerHandle;

use crate::memory::stack::{FpArea, Stack};
use crate::sync::IrqGuard;
use thread::ThreadStack;

/// Length of a time slice when other threads wait for the CPU.
pub const TIME_SLICE_NS: u64 = 4_000_000;

/// The running thread. Masks interrupts while reading: a preemption
/// between finding this CPU and reading its slot could migrate the thread
/// and return another CPU's thread.
pub fn current() -> Arc<Thread> {
    if let Some(word) = machine::running_thread_word().filter(|&w| w != 0) {
        let p = word as *const Thread;
        // SAFETY: the word is the `Arc::into_raw` pointer of this CPU's
        // running thread (set with the current slot, which holds a strong
        // count); the thread reading it *is* that thread, alive while it runs.
        return unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        };
    }
    let _irq = IrqGuard::new();
    this_cpu().current()
}

/// CPU time the running thread has used, including its current slice
/// (what CLOCK_THREAD_CPUTIME_ID reports).
pub fn current_runtime_ns() -> u64 {
    let _irq = IrqGuard::new();
    let me = this_cpu();
    let slice = machine::monotonic_ns().saturating_sub(me.switched_in_at.load(Ordering::Relaxed));
    me.current().runtime_ns() + slice
}

/// Turn the code running on this CPU (on `stack`) into its idle thread and
/// mark the CPU online. Called once per CPU, boot CPU first.
pub fn init_cpu(index: CpuIndex, stack_bottom: usize, stack_top: usize) {
    let _irq = IrqGuard::new();
    let me = cpu::cpu(index);
    let idle = Thread::new_registered(
        Options {
            name: "idle".into(),
            pin: Some(index),
            killable: false,
        },
        index,
        ThreadStack::Borrowed {
            bottom: stack_bottom,
            top: stack_top,
        },
        FpArea::new(),
        true,
        None,
    );
    *me.idle_thread.lock() = Some(idle.clone());
    me.idle.store(true, Ordering::Release);
    me.switched_in_at
        .store(machine::monotonic_ns(), Ordering::Relaxed);
    machine::set_kernel_stack(stack_bottom, stack_top);
    me.set_current(idle);
    cpu::mark_online(index);
}

/// Spawn a thread running `f`, placed on the least-loaded CPU (or pinned).
pub fn spawn_with(opts: Options, f: impl FnOnce() + Send + 'static) -> JoinHandle {
    if let Some(cpu) = opts.pin {
        assert!(
            cpu::cpu(cpu).online_flag().load(Ordering::Acquire),
            "cannot pin a thread to offline CPU {cpu}"
        );
    }
    let target = opts.pin.unwrap_or_else(pick_cpu);
    // Claim it: the next spawn in a burst should look elsewhere.
    cpu::cpu(target).idle.store(false, Ordering::Release);
    let stack = Stack::alloc().expect("out of memory for a thread stack");
    let fp = FpArea::new();
    let thread = Thread::new_registered(
        opts,
        target,
        ThreadStack::Owned(stack),
        fp,
        false,
        Some(Box::new(f)),
    );
    let (bottom, top) = thread.stack.bounds();
    // SAFETY: the stack is fresh and owned by `thread`; the frame is not
    // shared until the thread is queued below.
    unsafe {
        (*thread.frame.get()).sp = machine::prepare_stack(
            bottom,
            top,
            switch::thread_start,
            Arc::as_ptr(&thread) as usize,
        );
    }
    enqueue(thread.clone());
    JoinHandle { thread }
}

/// Spawn an unpinned, non-killable thread named `name`.
pub fn spawn(name: &'static str, f: impl FnOnce() + Send + 'static) -> JoinHandle {
    spawn_with(
        Options {
            name: name.into(),
            pin: None,
            killable: false,
        },
        f,
    )
}

/// Prefer an idle CPU, then the one with the fewest queued threads, then
/// this one.
fn pick_cpu() -> CpuIndex {
    let here = machine::current_cpu();
    let load = |i: CpuIndex| {
        let c = cpu::cpu(i);
        c.queued.load(Ordering::Relaxed) * 2 + usize::from(!c.idle.load(Ordering::Relaxed))
    };
    online().fold(here, |best, i| if load(i) < load(best) { i } else { best })
}

/// Give up the CPU to other ready threads, staying runnable.
pub fn yield_now() {
    schedule(Why::Preempt);
}

/// Why `schedule` runs: only a thread's own `block` may put it to sleep.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Why {
    /// The thread asked to sleep (it is `Blocking`) or exited.
    Block,
    /// Preemption or yield: the thread stays runnable whatever its state. A
    /// `Blocking` thread may be preempted while it still re-checks its
    /// condition or unregisters; sleeping then could strand it.
    Preempt,
}

/// Mark the current thread `Blocking` and let `register` publish it where a
/// waker will find it, with interrupts masked so no preemption can put it
/// to sleep before it is findable. Follow with [`block`].
pub(crate) fn prepare_to_block(register: impl FnOnce(&Arc<Thread>)) {
    let _irq = IrqGuard::new();
    let me = current();
    me.set_state(State::Blocking);
    register(&me);
}

/// Take back a [`prepare_to_block`] that turned out not to be needed.
pub(crate) fn unblock_self() {
    wake(&current());
}

/// Sleep until woken, unless a wake-up already came after
/// [`prepare_to_block`].
pub(crate) fn block() {
    schedule(Why::Block);
}

/// Make `thread` runnable if it is sleeping or about to. Safe to call from
/// any CPU, from interrupt handlers, and more than once.
pub fn wake(thread: &Arc<Thread>) {
    loop {
        match thread.state() {
            State::Blocking => {
                if thread.transition(State::Blocking, State::Running) {
                    return;
                }
            }
            State::Blocked => {
                if thread.transition(State::Blocked, State::Ready) {
                    enqueue(thread.clone());
                    return;
                }
            }
            _ => return,
        }
    }
}

/// Hand a Ready thread to its home CPU and make sure that CPU looks.
fn enqueue(thread: Arc<Thread>) {
    let target = thread.cpu();
    push_incoming(target, thread);
}

/// Push onto `target`'s incoming queue and kick it. Interrupts stay masked
/// during the push: the queue makes a second pusher wait for a first one
/// caught mid-push, so an interrupt handler pushing over an interrupted
/// push on the same CPU would wait for ever.
fn push_incoming(target: CpuIndex, thread: Arc<Thread>) {
    let _irq = IrqGuard::new();
    cpu::cpu(target).incoming.push(thread);
    kick(target);
}

/// Make `target` reschedule soon: an IPI unless one is already on its way.
fn kick(target: CpuIndex) {
    // No migration between deciding "local" and acting on this CPU's timer.
    let _irq = IrqGuard::new();
    let c = cpu::cpu(target);
    if target == machine::current_cpu() {
        // Rescheduled at the next trap exit; arm the slice timer so one
        // comes even if the running thread never traps or blocks.
        c.need_resched.store(true, Ordering::Release);
        arm_timer(c, true);
    } else if !c.kicked.swap(true, Ordering::AcqRel) {
        machine::send_ipi(target, Ipi::Reschedule);
    }
}

/// End the current thread.
pub fn exit(reason: ExitReason) -> ! {
    let me = current();
    {
        // Count the running slice before waking joiners: they may read
        // `runtime_ns` at once, while this CPU has yet to switch away.
        let _irq = IrqGuard::new();
        let now = machine::monotonic_ns();
        me.add_runtime(now - this_cpu().switched_in_at.swap(now, Ordering::Relaxed));
    }
    me.set_exit(reason);
    let _irq = IrqGuard::new();
    me.set_state(State::Exited);
    drop(me);
    schedule(Why::Block);
    unreachable!("an exited thread was scheduled again");
}

/// Pick the next thread on this CPU and switch to it.
fn schedule(why: Why) {
    let _irq = IrqGuard::new();
    let me = this_cpu();
    let here = machine::current_cpu();
    let prev = me.current();
    me.need_resched.store(false, Ordering::Relaxed);

    let mut rq = me.run_queue.lock();
    let mut keep_prev = false;
    match prev.state() {
        State::Running => keep_prev = true,
        State::Blocking if why == Why::Preempt => keep_prev = true,
        State::Blocking => {
            // A waker that flipped us back to Running wins: keep running.
            keep_prev = !prev.transition(State::Blocking, State::Blocked);
        }
        _ => {}
    }
    me.kicked.store(false, Ordering::Release);
    while let Some(t) = me.incoming.pop() {
        rq.push_back(t);
    }
    if keep_prev && !prev.is_idle() {
        prev.set_state(State::Ready);
        rq.push_back(prev.clone());
    }
    let next = match rq.pop_front() {
        Some(t) => t,
        None if keep_prev => prev.clone(),
        None => me.idle_thread.lock().clone().expect("idle thread exists"),
    };
    push_to_idle_cpu(here, &mut rq, &prev);
    me.queued.store(rq.len(), Ordering::Relaxed);
    let others_waiting = !rq.is_empty();
    drop(rq);

    if !Arc::ptr_eq(&next, &prev) && !next.is_idle() && next.state() != State::Ready {
        panic!("cpu {here} picked {next:?}, which is not ready (prev {prev:?})");
    }
    next.set_state(State::Running);
    let now = machine::monotonic_ns();
    if others_waiting || !next.is_idle() {
        me.slice_end.store(now + TIME_SLICE_NS, Ordering::Relaxed);
    }
    me.idle.store(next.is_idle(), Ordering::Release);
    if Arc::ptr_eq(&next, &prev) {
        arm_timer(me, others_waiting);
        return;
    }

    prev.add_runtime(now - me.switched_in_at.swap(now, Ordering::Relaxed));
    next.count_switch_in();
    me.switches.fetch_add(1, Ordering::Relaxed);
    let (bottom, top) = next.stack.bounds();
    machine::set_kernel_stack(bottom, top);
    arm_timer(me, others_waiting);
    let (prev_frame, next_frame) = (prev.frame.get(), next.frame.get());
    // The slot's reference to `prev` keeps it alive until the next thread
    // is off its stack; no local Arc may live across the switch, since an
    // exited thread never comes back to drop it.
    let old = me.set_current(next);
    *me.previous.lock() = old;
    drop(prev);
    // SAFETY: interrupts are masked; `prev` is this CPU's running thread and
    // `next` is Ready and homed here, so no other CPU touches either frame,
    // and both threads are kept alive by the current/previous slots.
    unsafe { switch::switch(prev_frame, next_frame) };
    finish_switch();
}

/// Drop the reference to the thread we switched away from, now that we are
/// off its stack (frees it if it exited and nobody holds a handle), and
/// hand it to another CPU if balancing chose it.
pub(crate) fn finish_switch() {
    let me = this_cpu();
    let dead = me.previous.lock().take();
    drop(dead);
    let handoff = me.handoff.lock().take();
    if let Some((t, target)) = handoff {
        migrate(t, target);
    }
}

/// If another CPU sits idle while threads wait here, give it one. `prev`
/// may be the best candidate (it may sit in the queue already, pushed back
/// or woken), but this CPU runs on its stack until the switch completes,
/// so it is handed over only afterwards, by `finish_switch`.
fn push_to_idle_cpu(
    here: CpuIndex,
    rq: &mut alloc::collections::VecDeque<Arc<Thread>>,
    prev: &Arc<Thread>,
) {
    if rq.is_empty() {
        return;
    }
    let Some(idle) = online().find(|&i| i != here && cpu::cpu(i).idle.load(Ordering::Acquire))
    else {
        return;
    };
    let Some(pos) = rq.iter().rposition(|t| !t.is_pinned()) else {
        return;
    };
    let t = rq.remove(pos).expect("position is in range");
    // Claim the idle CPU so two pushes do not pick it at once.
    cpu::cpu(idle).idle.store(false, Ordering::Release);
    if Arc::ptr_eq(&t, prev) {
        *this_cpu().handoff.lock() = Some((t, idle));
    } else {
        migrate(t, idle);
    }
}

/// Move a Ready thread that no CPU is running to `target`.
fn migrate(t: Arc<Thread>, target: CpuIndex) {
    t.cpu.store(target, Ordering::Release);
    push_incoming(target, t);
}

/// Program this CPU's one-shot timer: the earliest sleeper, and the end of
/// the slice if someone is waiting for the CPU. Nothing pending, no tick.
fn arm_timer(me: &CpuSched, others_waiting: bool) {
    let timers = me.timers.lock().next_deadline();
    let slice = others_waiting.then(|| me.slice_end.load(Ordering::Relaxed));
    let deadline = match (timers, slice) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // Timer writes are costly (a VM exit on KVM, an event-loop kick under
    // TCG), so the hardware is reprogrammed only to fire *earlier*. A later
    // deadline, or none, leaves the armed one in place: it fires early,
    // `on_timer` finds nothing due and arms the real deadline then. Slices
    // renewed on every switch thus cost one write per slice, not per switch.
    let want = deadline.unwrap_or(NOT_ARMED);
    if want < me.armed.load(Ordering::Relaxed) {
        me.armed.store(want, Ordering::Relaxed);
        machine::set_timer(deadline);
    }
}

/// `CpuSched::armed` when the timer is not armed.
pub(crate) const NOT_ARMED: u64 = u64::MAX;

/// The timer interrupt: wake due sleepers and decide on preemption.
pub(crate) fn on_timer() {
    let me = this_cpu();
    // A one-shot timer that fired is no longer armed.
    me.armed.store(NOT_ARMED, Ordering::Relaxed);
    let now = machine::monotonic_ns();
    loop {
        let due = me.timers.lock().pop_due(now);
        match due {
            Some(t) => wake(&t),
            None => break,
        }
    }
    let waiting = me.queued.load(Ordering::Relaxed) > 0 || !me.incoming.is_empty();
    if waiting && now >= me.slice_end.load(Ordering::Relaxed) {
        me.need_resched.store(true, Ordering::Release);
    }
    arm_timer(me, waiting);
}

/// Another CPU asked us to look at our queues.
pub(crate) fn on_reschedule_ipi() {
    this_cpu().need_resched.store(true, Ordering::Release);
}

/// A place where the running thread may be preempted (interrupts enabled,
/// no locks held): switch if a reschedule is pending.
pub fn preempt_point() {
    if this_cpu().need_resched.load(Ordering::Acquire) {
        schedule(Why::Preempt);
    }
}

/// Called on the way out of every trap taken with interrupts enabled.
pub(crate) fn on_trap_exit() {
    let me = this_cpu();
    if me.need_resched.load(Ordering::Acquire) && me.online.load(Ordering::Acquire) {
        schedule(Why::Preempt);
    }
}

/// Arm a wake-up of the current thread at `deadline` on this CPU.
pub fn add_timer(deadline: u64) -> TimerHandle {
    let _irq = IrqGuard::new();
    let me = this_cpu();
    let h = me
        .timers
        .lock()
        .add(machine::current_cpu(), deadline, current());
    let waiting = me.queued.load(Ordering::Relaxed) > 0;
    arm_timer(me, waiting);
    h
}

/// Disarm a timer; returns whether it had not fired yet.
pub fn cancel_timer(handle: TimerHandle) -> bool {
    cpu::cpu(handle.cpu()).timers.lock().cancel(handle)
}

/// The idle loop: run whatever is ready, otherwise halt until an interrupt.
pub fn idle_loop() -> ! {
    machine::restore_interrupts(true);
    loop {
        let irq = IrqGuard::new();
        let me = this_cpu();
        if me.incoming.is_empty() && me.queued.load(Ordering::Relaxed) == 0 {
            ask_busy_cpu_for_work();
            if me.incoming.is_empty() {
                machine::enable_interrupts_and_wait();
            }
        }
        drop(irq);
        schedule(Why::Preempt);
    }
}

/// An idle CPU pokes a CPU with waiting threads; that CPU's next schedule
/// pushes one over (see `push_to_idle_cpu`).
fn ask_busy_cpu_for_work() {
    let here = machine::current_cpu();
    this_cpu().idle.store(true, Ordering::Release);
    if let Some(busy) =
        online().find(|&i| i != here && cpu::cpu(i).queued.load(Ordering::Relaxed) > 0)
    {
        kick(busy);
    }
}

/// Total context switches on all CPUs.
pub fn context_switches() -> u64 {
    online()
        .map(|i| cpu::cpu(i).switches.load(Ordering::Relaxed))
        .sum()
}
