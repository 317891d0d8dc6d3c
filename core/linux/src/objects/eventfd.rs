//! eventfd: a 64-bit counter that reads drain and writes add to.

use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};

use keel_core::sync::{SpinLock, WaitQueue};
use keel_fs::{FileLike, FileType, FsError, FsResult, Metadata, PollEvents, Readiness};

/// An eventfd.
pub struct EventFd {
    count: SpinLock<u64>,
    semaphore: bool,
    nonblock: AtomicBool,
    changed: WaitQueue,
    readiness: Readiness,
}

const MAX: u64 = u64::MAX - 1;

impl EventFd {
    /// A counter starting at `initial`; `semaphore` makes reads take one.
    pub fn new(initial: u64, semaphore: bool, nonblock: bool) -> Self {
        Self {
            count: SpinLock::new(initial),
            semaphore,
            nonblock: AtomicBool::new(nonblock),
            changed: WaitQueue::new(),
            readiness: Readiness::new(),
        }
    }

    fn notify(&self) {
        self.changed.wake_all();
        self.readiness.notify();
    }
}

impl FileLike for EventFd {
    fn read(&self, buf: &mut [u8]) -> FsResult<usize> {
        if buf.len() < 8 {
            return Err(FsError::Invalid);
        }
        loop {
            {
                let mut c = self.count.lock();
                if *c > 0 {
                    let v = if self.semaphore { 1 } else { *c };
                    *c -= v;
                    drop(c);
                    buf[..8].copy_from_slice(&v.to_le_bytes());
                    self.notify();
                    return Ok(8);
                }
            }
            if self.nonblocking() {
                return Err(FsError::WouldBlock);
            }
            if crate::signal::interrupted() {
                return Err(FsError::Interrupted);
            }
            self.changed
                .wait_until(|| *self.count.lock() > 0 || crate::signal::interrupted());
        }
    }

    fn write(&self, data: &[u8]) -> FsResult<usize> {
        let bytes: [u8; 8] = data
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(FsError::Invalid)?;
        let add = u64::from_le_bytes(bytes);
        if add == u64::MAX {
            return Err(FsError::Invalid);
        }
        loop {
            {
                let mut c = self.count.lock();
                if MAX - *c >= add {
                    *c += add;
                    drop(c);
                    self.notify();
                    return Ok(8);
                }
            }
            if self.nonblocking() {
                return Err(FsError::WouldBlock);
            }
            if crate::signal::interrupted() {
                return Err(FsError::Interrupted);
            }
            self.changed
                .wait_until(|| MAX - *self.count.lock() >= add || crate::signal::interrupted());
        }
    }

    fn metadata(&self) -> FsResult<Metadata> {
        Ok(super::anon_metadata(FileType::Regular, 0))
    }

    fn poll(&self) -> PollEvents {
        let c = *self.count.lock();
        let mut e = PollEvents::default();
        if c > 0 {
            e = e.union(PollEvents::IN);
        }
        if c < MAX {
            e = e.union(PollEvents::OUT);
        }
        e
    }

    fn readiness(&self) -> Option<&Readiness> {
        Some(&self.readiness)
    }

    fn nonblocking(&self) -> bool {
        self.nonblock.load(Ordering::Relaxed)
    }

    fn set_status(&self, nonblock: bool, _append: bool) {
        self.nonblock.store(nonblock, Ordering::Relaxed);
    }

    fn access(&self) -> (bool, bool) {
        (true, true)
    }

    fn path(&self) -> String {
        "anon_inode:[eventfd]".into()
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}
