//! Kernel objects that exist only as file descriptors: pipes, eventfd,
//! timerfd, epoll, sockets.

pub mod epoll;
pub mod eventfd;
pub mod inet;
pub mod pipe;
pub mod socket;
pub mod timerfd;
pub mod unix;

use keel_fs::{FileLike, FileType, Metadata};

/// Metadata for an anonymous object (no filesystem behind it).
pub fn anon_metadata(kind: FileType, ino: u64) -> Metadata {
    Metadata {
        dev: 9,
        ino,
        mode: kind.mode_bits() | 0o600,
        nlink: 1,
        blksize: 4096,
        ..Default::default()
    }
}

/// When a poller watching `file` must look again even if nobody notifies
/// it: a timerfd's next expiry, or the polling interval of an object that
/// cannot signal readiness (the console).
pub fn wake_hint(file: &dyn FileLike) -> Option<u64> {
    if let Some(t) = file.as_any().downcast_ref::<timerfd::TimerFd>() {
        return t.next_expiry();
    }
    file.poll_interval_ns()
        .map(|ns| keel_core::time::monotonic_ns().saturating_add(ns))
}
