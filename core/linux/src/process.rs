//! The process: Keel runs one. Its descriptors, working directory, umask,
//! signal dispositions, limits, threads and how it ends.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use keel_core::sched::Thread;
use keel_core::sync::{SpinLock, WaitQueue};
use keel_fs::{Resolved, Vfs};

use crate::abi::Abi;
use crate::fdtable::FdTable;
use crate::thread::LinuxThread;

/// Process id (the main thread's tid is the same).
pub const PID: u32 = 1;

/// One signal's disposition (sigaction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    /// SIG_DFL (0), SIG_IGN (1) or the handler address.
    pub handler: u64,
    /// SA_* flags.
    pub flags: u64,
    /// Return trampoline (SA_RESTORER).
    pub restorer: u64,
    /// Signals blocked while the handler runs.
    pub mask: u64,
}

/// A live thread: its Linux state and, once started, its core thread.
pub type ThreadEntry = (Arc<LinuxThread>, Option<Arc<Thread>>);

/// User and group identity (real, effective, saved) and supplementary
/// groups. Recorded and reported; the app is the only user of the VM, so
/// file permission checks treat it as root whatever it becomes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Real, effective and saved user id.
    pub uid: [u32; 3],
    /// Real, effective and saved group id.
    pub gid: [u32; 3],
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// Resource limits, by RLIMIT_* number: (soft, hard).
pub type Limits = [(u64, u64); 16];

/// RLIM_INFINITY.
pub const UNLIMITED: u64 = u64::MAX;

/// The process.
pub struct Process {
    /// This arch's ABI.
    pub abi: &'static Abi,
    /// The namespace.
    pub vfs: Arc<Vfs>,
    /// Open descriptors.
    pub fds: SpinLock<FdTable>,
    /// Working directory.
    pub cwd: SpinLock<Resolved>,
    /// File creation mask.
    pub umask: AtomicU32,
    /// Path of the executable.
    pub exe: SpinLock<String>,
    /// Command line.
    pub argv: SpinLock<Vec<String>>,
    /// Environment the app started with.
    pub envp: SpinLock<Vec<String>>,
    /// Auxiliary vector given to the app (for /proc/self/auxv).
    pub auxv: SpinLock<Vec<(u64, u64)>>,
    /// Signal dispositions, index = signal - 1.
    pub sigactions: SpinLock<[SigAction; 64]>,
    /// Signals sent to the process and not yet delivered.
    pub pending: core::sync::atomic::AtomicU64,
    /// Live threads by tid (the core thread is filled in once started).
    pub threads: SpinLock<BTreeMap<u32, ThreadEntry>>,
    next_tid: AtomicU32,
    live: AtomicUsize,
    ended: WaitQueue,
    last_status: AtomicU32,
    /// Resource limits.
    pub limits: SpinLock<Limits>,
    /// Monotonic time the process started.
    pub started_ns: u64,
    /// uname nodename.
    pub hostname: SpinLock<String>,
    /// Who the app runs as.
    pub creds: SpinLock<Credentials>,
    /// CPU time of threads that have ended.
    exited_cpu_ns: core::sync::atomic::AtomicU64,
}

static PROCESS: spin::Once<Process> = spin::Once::new();

/// The process (after `create`).
pub fn get() -> &'static Process {
    PROCESS.get().expect("the Linux process was not created")
}

/// The process, if it exists.
pub fn try_get() -> Option<&'static Process> {
    PROCESS.get()
}

fn default_limits() -> Limits {
    let mut l = [(UNLIMITED, UNLIMITED); 16];
    l[3] = (8 << 20, UNLIMITED); // RLIMIT_STACK
    l[4] = (0, UNLIMITED); // RLIMIT_CORE
    l[7] = (1024, 1024 * 1024); // RLIMIT_NOFILE
    l[6] = (63_000, 63_000); // RLIMIT_NPROC
    l
}

/// Create the process around `vfs`.
pub fn create(abi: &'static Abi, vfs: Arc<Vfs>) -> &'static Process {
    PROCESS.call_once(|| {
        let root = vfs.root();
        Process {
            abi,
            vfs,
            fds: SpinLock::new(FdTable::new()),
            cwd: SpinLock::new(root),
            umask: AtomicU32::new(0o022),
            exe: SpinLock::new(String::new()),
            argv: SpinLock::new(Vec::new()),
            envp: SpinLock::new(Vec::new()),
            auxv: SpinLock::new(Vec::new()),
            sigactions: SpinLock::new([SigAction::default(); 64]),
            pending: core::sync::atomic::AtomicU64::new(0),
            threads: SpinLock::new(BTreeMap::new()),
            next_tid: AtomicU32::new(PID),
            live: AtomicUsize::new(0),
            ended: WaitQueue::new(),
            last_status: AtomicU32::new(0),
            limits: SpinLock::new(default_limits()),
            started_ns: keel_core::time::monotonic_ns(),
            hostname: SpinLock::new(String::from("keel")),
            creds: SpinLock::new(Credentials::default()),
            exited_cpu_ns: core::sync::atomic::AtomicU64::new(0),
        }
    })
}

impl Process {
    /// A fresh thread id (the first is the pid).
    pub fn new_tid(&self) -> u32 {
        self.next_tid.fetch_add(1, Ordering::Relaxed)
    }

    /// Record a thread about to start (before it can exit).
    pub fn add_thread(&self, lt: Arc<LinuxThread>, t: Option<Arc<Thread>>) {
        self.live.fetch_add(1, Ordering::AcqRel);
        self.threads.lock().insert(lt.tid, (lt, t));
    }

    /// Attach the core thread of `tid` once spawned (if it still lives).
    pub fn set_core_thread(&self, tid: u32, t: Arc<Thread>) {
        if let Some(entry) = self.threads.lock().get_mut(&tid) {
            entry.1 = Some(t);
        }
    }

    /// A thread ended with `status` after using `cpu_ns` of CPU time; the
    /// process ends with the last one.
    pub fn remove_thread(&self, tid: u32, status: u32, cpu_ns: u64) {
        self.exited_cpu_ns.fetch_add(cpu_ns, Ordering::Relaxed);
        self.threads.lock().remove(&tid);
        self.last_status.store(status, Ordering::Release);
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ended.wake_all();
        }
    }

    /// Wait until every thread has ended; returns the last exit status.
    pub fn wait_all_exited(&self) -> u32 {
        self.ended
            .wait_until(|| self.live.load(Ordering::Acquire) == 0);
        self.last_status.load(Ordering::Acquire)
    }

    /// Threads alive now.
    pub fn thread_count(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// The thread `tid`.
    pub fn thread(&self, tid: u32) -> Option<ThreadEntry> {
        self.threads.lock().get(&tid).cloned()
    }

    /// CPU time used by every thread, ended or running.
    pub fn cpu_time_ns(&self) -> u64 {
        let me = keel_core::sched::current();
        let live: u64 = self
            .threads
            .lock()
            .values()
            .filter_map(|(_, t)| t.as_ref())
            .map(|t| {
                if Arc::ptr_eq(t, &me) {
                    keel_core::sched::current_runtime_ns()
                } else {
                    t.runtime_ns()
                }
            })
            .sum();
        self.exited_cpu_ns.load(Ordering::Relaxed) + live
    }

    /// Soft limit of resource `r`.
    pub fn limit(&self, r: usize) -> u64 {
        self.limits.lock().get(r).map_or(UNLIMITED, |l| l.0)
    }
}
