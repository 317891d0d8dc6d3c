//! Keel's filesystems: the VFS (inodes, open files, path resolution over
//! mounts), ramfs (the writable root until ZFS), devfs, synthetic files for
//! /proc and /sys, and the cpio reader that fills ramfs from the initrd.
//!
//! Everything here is safe code; file data lives in `OwnedFrame`s so the
//! same pages can be mapped into the app.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

#[cfg(test)]
extern crate keel_platform_host;

pub mod block;
pub mod cpio;
pub mod devfs;
mod error;
mod file;
mod node;
pub mod ramfs;
pub mod synth;
mod vfs;
pub mod zfs;

pub use error::{FsError, FsResult};
pub use file::{FileLike, InodeFile, OpenFlags, PollEvents, PollWaiter, Readiness, Whence};
pub use node::{DirEntry, FileType, Inode, Metadata, SetAttr, Timespec};
pub use vfs::{Lookup, Resolved, Vfs};

/// How a blocking filesystem operation learns that the waiting thread has
/// a signal to handle (set by the OS personality; none: never).
static INTERRUPT_CHECK: spin::Once<fn() -> bool> = spin::Once::new();

/// Register the check that blocking reads (the console) use to give up
/// with EINTR.
pub fn set_interrupt_check(check: fn() -> bool) {
    INTERRUPT_CHECK.call_once(|| check);
}

/// Whether the calling thread should stop waiting (EINTR).
pub(crate) fn interrupted() -> bool {
    INTERRUPT_CHECK.get().is_some_and(|check| check())
}
