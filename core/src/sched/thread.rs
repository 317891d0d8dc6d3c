//! Threads: identity, state machine, stack, saved context, exit and join.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use keel_hal::{CpuIndex, SwitchFrame};

use crate::memory::stack::{FpArea, Stack};
use crate::sync::{SpinLock, WaitQueue};

/// Unique thread id (never reused).
pub type ThreadId = u64;

/// Where a thread is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// On a run queue, waiting for a CPU.
    Ready = 0,
    /// Executing on its CPU.
    Running = 1,
    /// About to sleep; a wake-up now cancels the sleep.
    Blocking = 2,
    /// Asleep until woken.
    Blocked = 3,
    /// Finished; never runs again.
    Exited = 4,
}

impl State {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => State::Ready,
            1 => State::Running,
            2 => State::Blocking,
            3 => State::Blocked,
            _ => State::Exited,
        }
    }
}

/// How a thread ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// Its function returned.
    Returned,
    /// It faulted; the report was printed. The string summarises the fault.
    Faulted(String),
}

/// Stack memory a thread runs on.
pub(crate) enum ThreadStack {
    /// Owned; returned to the stack cache when the thread is freed.
    Owned(Stack),
    /// Borrowed from boot (a CPU's initial stack); never freed.
    Borrowed { bottom: usize, top: usize },
}

impl ThreadStack {
    pub(crate) fn bounds(&self) -> (usize, usize) {
        match self {
            ThreadStack::Owned(s) => (s.bottom(), s.top()),
            ThreadStack::Borrowed { bottom, top } => (*bottom, *top),
        }
    }
}

/// A kernel thread (app threads are kernel threads running app code).
pub struct Thread {
    id: ThreadId,
    name: Cow<'static, str>,
    state: AtomicU8,
    /// Home CPU: the only CPU that runs it; changed only by that CPU while
    /// the thread is Ready (balancing) or before it first runs.
    pub(crate) cpu: AtomicUsize,
    pinned: bool,
    idle: bool,
    killable: bool,
    pub(crate) frame: UnsafeCell<SwitchFrame>,
    pub(crate) stack: ThreadStack,
    _fp: Option<FpArea>,
    pub(crate) entry: SpinLock<Option<Box<dyn FnOnce() + Send>>>,
    exit: SpinLock<Option<ExitReason>>,
    joiners: WaitQueue,
    runtime_ns: AtomicU64,
    switches_in: AtomicU64,
    /// The OS personality's per-thread state (e.g. the Linux thread).
    os: spin::Once<Arc<dyn core::any::Any + Send + Sync>>,
}

// SAFETY: `frame` is only touched by the CPU that switches the thread in or
// out, with interrupts masked (see `sched::switch`); every other field is
// atomic, locked, or immutable after construction.
unsafe impl Sync for Thread {}
// SAFETY: as above; nothing in a Thread is tied to the CPU that made it.
unsafe impl Send for Thread {}

/// Options for a new thread.
pub struct Options {
    /// Name shown in reports.
    pub name: Cow<'static, str>,
    /// Run only on this CPU.
    pub pin: Option<CpuIndex>,
    /// A fault in this thread kills it (and is reported) instead of
    /// panicking the kernel. Test threads and app threads are killable.
    pub killable: bool,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Thread {
    pub(crate) fn new_registered(
        opts: Options,
        cpu: CpuIndex,
        stack: ThreadStack,
        fp: Option<FpArea>,
        idle: bool,
        entry: Option<Box<dyn FnOnce() + Send>>,
    ) -> Arc<Self> {
        let fp_state = fp
            .as_ref()
            .map_or(core::ptr::null_mut(), FpArea::as_mut_ptr);
        let thread = Arc::new(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: opts.name,
            state: AtomicU8::new(if entry.is_some() {
                State::Ready
            } else {
                State::Running
            } as u8),
            cpu: AtomicUsize::new(cpu),
            pinned: opts.pin.is_some(),
            idle,
            killable: opts.killable,
            frame: UnsafeCell::new(SwitchFrame { sp: 0, fp_state }),
            stack,
            _fp: fp,
            entry: SpinLock::new(entry),
            exit: SpinLock::new(None),
            joiners: WaitQueue::new(),
            runtime_ns: AtomicU64::new(0),
            switches_in: AtomicU64::new(0),
            os: spin::Once::new(),
        });
        super::registry::add(&thread);
        thread
    }

    /// Unique id.
    pub fn id(&self) -> ThreadId {
        self.id
    }
    /// Name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Current state.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }
    pub(crate) fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Release);
    }
    pub(crate) fn transition(&self, from: State, to: State) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
    /// The CPU it runs on.
    pub fn cpu(&self) -> CpuIndex {
        self.cpu.load(Ordering::Acquire)
    }
    /// Whether it may only run on its CPU.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }
    /// Whether it is a CPU's idle thread.
    pub fn is_idle(&self) -> bool {
        self.idle
    }
    /// Whether a fault kills it instead of the kernel.
    pub fn is_killable(&self) -> bool {
        self.killable
    }
    /// CPU time consumed so far, in nanoseconds (up to its last switch-out).
    pub fn runtime_ns(&self) -> u64 {
        self.runtime_ns.load(Ordering::Relaxed)
    }
    pub(crate) fn add_runtime(&self, ns: u64) {
        self.runtime_ns.fetch_add(ns, Ordering::Relaxed);
    }
    /// Times it was switched in.
    pub fn switches(&self) -> u64 {
        self.switches_in.load(Ordering::Relaxed)
    }
    pub(crate) fn count_switch_in(&self) {
        self.switches_in.fetch_add(1, Ordering::Relaxed);
    }

    /// Attach the OS personality's state (once).
    pub fn set_os_state(&self, state: Arc<dyn core::any::Any + Send + Sync>) {
        self.os.call_once(|| state);
    }

    /// The OS personality's state, if attached.
    pub fn os_state(&self) -> Option<&Arc<dyn core::any::Any + Send + Sync>> {
        self.os.get()
    }

    /// Record how it ended and wake its joiners.
    pub(crate) fn set_exit(&self, reason: ExitReason) {
        *self.exit.lock() = Some(reason);
        self.joiners.wake_all();
    }

    /// Wait until it ends; returns how.
    pub fn join(&self) -> ExitReason {
        self.joiners.wait_until(|| self.exit.lock().is_some());
        self.exit
            .lock()
            .clone()
            .expect("exit reason recorded before joiners wake")
    }

    /// Wait until it ends or monotonic time `deadline`, whichever is first.
    pub fn join_deadline(&self, deadline: u64) -> Option<ExitReason> {
        self.joiners
            .wait_until_deadline(|| self.exit.lock().is_some(), Some(deadline));
        self.exit.lock().clone()
    }

    /// How it ended, if it has.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.exit.lock().clone()
    }
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "thread {} '{}' ({:?} on cpu {})",
            self.id,
            self.name,
            self.state(),
            self.cpu()
        )
    }
}

/// Handle to a spawned thread.
pub struct JoinHandle {
    pub(crate) thread: Arc<Thread>,
}

impl JoinHandle {
    /// Wait for the thread to end.
    pub fn join(self) -> ExitReason {
        self.thread.join()
    }
    /// The thread.
    pub fn thread(&self) -> &Arc<Thread> {
        &self.thread
    }
}
