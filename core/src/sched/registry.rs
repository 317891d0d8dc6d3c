//! Every live thread, for `ps`-style listings and hang reports.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use super::thread::Thread;
use crate::sync::SpinLock;

static THREADS: SpinLock<Vec<Weak<Thread>>> = SpinLock::new(Vec::new());

/// Record a new thread; dead entries are pruned as the list grows.
pub(super) fn add(thread: &Arc<Thread>) {
    let mut list = THREADS.lock();
    if list.len() == list.capacity() {
        list.retain(|w| w.strong_count() > 0);
    }
    list.push(Arc::downgrade(thread));
}

/// Call `f` for each thread still alive (a snapshot: taken, then visited
/// without the lock held).
pub fn for_each_thread(mut f: impl FnMut(&Arc<Thread>)) {
    let snapshot: Vec<Arc<Thread>> = THREADS.lock().iter().filter_map(Weak::upgrade).collect();
    for t in &snapshot {
        f(t);
    }
}

/// Print every live thread with its state, CPU and CPU time.
pub fn print_threads() {
    crate::kprintln!(
        "  {:>6} {:<24} {:<9} {:>3} {:>10}",
        "id",
        "name",
        "state",
        "cpu",
        "cpu ms"
    );
    for_each_thread(|t| {
        crate::kprintln!(
            "  {:>6} {:<24} {:<9} {:>3} {:>10}",
            t.id(),
            t.name(),
            alloc::format!("{:?}", t.state()),
            t.cpu(),
            t.runtime_ns() / 1_000_000
        );
    });
}
