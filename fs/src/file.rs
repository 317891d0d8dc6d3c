//! Open files: what a file descriptor refers to. Regular files and
//! directories are `InodeFile`s; devices, pipes, event objects and sockets
//! implement `FileLike` themselves. Readiness for poll/epoll is signalled
//! through `Readiness` lists of `PollWaiter`s.

use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use keel_core::sync::{SpinLock, WaitQueue};

use crate::error::{FsError, FsResult};
use crate::node::{DirEntry, FileType, Inode, Metadata, Timespec};

/// How a file was opened (the ABI layer translates each arch's O_* bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Writes go to the end.
    pub append: bool,
    /// Operations that would block fail with EAGAIN.
    pub nonblock: bool,
    /// Create if missing.
    pub create: bool,
    /// With `create`: fail if it exists.
    pub exclusive: bool,
    /// Truncate to zero on open.
    pub truncate: bool,
    /// Must be a directory.
    pub directory: bool,
    /// Do not follow a final symlink.
    pub nofollow: bool,
    /// Only a handle to the path (O_PATH): no I/O.
    pub path_only: bool,
}

/// poll(2) event bits (the same on every Linux arch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollEvents(pub u16);

impl PollEvents {
    /// Readable.
    pub const IN: Self = Self(0x001);
    /// Urgent data.
    pub const PRI: Self = Self(0x002);
    /// Writable.
    pub const OUT: Self = Self(0x004);
    /// Error.
    pub const ERR: Self = Self(0x008);
    /// Hung up.
    pub const HUP: Self = Self(0x010);
    /// Invalid descriptor.
    pub const NVAL: Self = Self(0x020);
    /// Peer closed its writing half.
    pub const RDHUP: Self = Self(0x2000);

    /// Union.
    pub const fn union(self, o: Self) -> Self {
        Self(self.0 | o.0)
    }
    /// Whether any bit of `o` is set.
    pub const fn intersects(self, o: Self) -> bool {
        self.0 & o.0 != 0
    }
}

/// Where `seek` measures from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whence {
    /// SEEK_SET.
    Start,
    /// SEEK_CUR.
    Current,
    /// SEEK_END.
    End,
}

/// One waiting poller (a thread in poll/select/epoll_wait).
#[derive(Default)]
pub struct PollWaiter {
    notified: AtomicBool,
    queue: WaitQueue,
}

impl PollWaiter {
    /// A new waiter, not notified.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Something it watches may have changed.
    pub fn notify(&self) {
        self.notified.store(true, Ordering::Release);
        self.queue.wake_all();
    }

    /// Sleep until notified or `deadline`; clears the notification.
    /// Returns whether it was notified.
    pub fn wait(&self, deadline: Option<u64>) -> bool {
        let hit = self
            .queue
            .wait_until_deadline(|| self.notified.load(Ordering::Acquire), deadline);
        self.notified.store(false, Ordering::Release);
        hit
    }
}

/// The pollers watching one object.
pub struct Readiness {
    watchers: SpinLock<Vec<Weak<PollWaiter>>>,
    generation: AtomicU64,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// No watchers yet.
    pub const fn new() -> Self {
        Self {
            watchers: SpinLock::new(Vec::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// Watch this object (dropped waiters are forgotten on their own).
    pub fn watch(&self, waiter: &Arc<PollWaiter>) {
        let mut w = self.watchers.lock();
        w.retain(|x| x.strong_count() > 0);
        if !w.iter().any(|x| x.as_ptr() == Arc::as_ptr(waiter)) {
            w.push(Arc::downgrade(waiter));
        }
    }

    /// The object's state changed: wake every poller.
    pub fn notify(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let waiters: Vec<Arc<PollWaiter>> = self
            .watchers
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for w in waiters {
            w.notify();
        }
    }

    /// Times the state changed (edge-triggered epoll compares these).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// An open file description.
pub trait FileLike: Send + Sync {
    /// Read at the current position.
    fn read(&self, buf: &mut [u8]) -> FsResult<usize>;
    /// Write at the current position.
    fn write(&self, data: &[u8]) -> FsResult<usize>;
    /// Read at `offset` without moving the position.
    fn pread(&self, _buf: &mut [u8], _offset: u64) -> FsResult<usize> {
        Err(FsError::NotSeekable)
    }
    /// Write at `offset` without moving the position.
    fn pwrite(&self, _data: &[u8], _offset: u64) -> FsResult<usize> {
        Err(FsError::NotSeekable)
    }
    /// Move the position.
    fn seek(&self, _offset: i64, _whence: Whence) -> FsResult<u64> {
        Err(FsError::NotSeekable)
    }
    /// Metadata of the object.
    fn metadata(&self) -> FsResult<Metadata>;
    /// The inode, for files in a filesystem.
    fn inode(&self) -> Option<Arc<dyn Inode>> {
        None
    }
    /// Readiness now.
    fn poll(&self) -> PollEvents {
        PollEvents::IN.union(PollEvents::OUT)
    }
    /// Who to tell when readiness changes (objects whose readiness never
    /// changes have none).
    fn readiness(&self) -> Option<&Readiness> {
        None
    }
    /// For objects that cannot signal readiness (the polled console): how
    /// often a poller must look again. None: `readiness` tells.
    fn poll_interval_ns(&self) -> Option<u64> {
        None
    }
    /// Device-specific control; ENOTTY by default.
    fn ioctl(&self, _cmd: u32, _arg: &mut [u8]) -> FsResult<i64> {
        Err(FsError::NotTty)
    }
    /// Whether it is a terminal.
    fn is_tty(&self) -> bool {
        false
    }
    /// The O_NONBLOCK state.
    fn nonblocking(&self) -> bool;
    /// Change O_NONBLOCK / O_APPEND (F_SETFL).
    fn set_status(&self, nonblock: bool, append: bool);
    /// O_APPEND state.
    fn appending(&self) -> bool {
        false
    }
    /// Opened for reading / writing.
    fn access(&self) -> (bool, bool);
    /// Directory entries from position `cookie`; returns them with the
    /// cookie after each.
    fn read_dir(&self, _from: u64) -> FsResult<Vec<(DirEntry, u64)>> {
        Err(FsError::NotDir)
    }
    /// The directory position (getdents continues from here).
    fn dir_position(&self) -> u64 {
        0
    }
    /// Set the directory position (after a partial getdents).
    fn set_dir_position(&self, _cookie: u64) {}
    /// The path it was opened by (for /proc/self/fd).
    fn path(&self) -> String;
    /// Make written data durable.
    fn sync(&self) -> FsResult<()> {
        Ok(())
    }
    /// For downcasting (epoll, sockets).
    fn as_any(&self) -> &dyn core::any::Any;
}

/// A regular file or directory opened through the VFS.
pub struct InodeFile {
    inode: Arc<dyn Inode>,
    path: String,
    position: SpinLock<u64>,
    readable: bool,
    writable: bool,
    flags: AtomicU32,
}

const NONBLOCK: u32 = 1;
const APPEND: u32 = 2;

impl InodeFile {
    /// Open `inode` (reached by `path`).
    pub fn new(inode: Arc<dyn Inode>, path: String, flags: OpenFlags) -> Self {
        let bits =
            if flags.nonblock { NONBLOCK } else { 0 } | if flags.append { APPEND } else { 0 };
        Self {
            inode,
            path,
            position: SpinLock::new(0),
            readable: flags.read,
            writable: flags.write,
            flags: AtomicU32::new(bits),
        }
    }

    fn is_dir(&self) -> bool {
        self.inode.metadata().file_type() == FileType::Directory
    }
}

impl FileLike for InodeFile {
    fn read(&self, buf: &mut [u8]) -> FsResult<usize> {
        if !self.readable {
            return Err(FsError::BadFile);
        }
        if self.is_dir() {
            return Err(FsError::IsDir);
        }
        // Position and data move together: concurrent readers of one
        // description each get distinct bytes.
        let mut pos = self.position.lock();
        let n = self.inode.read_at(*pos, buf)?;
        *pos += n as u64;
        Ok(n)
    }

    fn write(&self, data: &[u8]) -> FsResult<usize> {
        if !self.writable {
            return Err(FsError::BadFile);
        }
        let mut pos = self.position.lock();
        if self.appending() {
            *pos = self.inode.metadata().size;
        }
        let n = self.inode.write_at(*pos, data)?;
        *pos += n as u64;
        Ok(n)
    }

    fn pread(&self, buf: &mut [u8], offset: u64) -> FsResult<usize> {
        if !self.readable {
            return Err(FsError::BadFile);
        }
        if self.is_dir() {
            return Err(FsError::IsDir);
        }
        self.inode.read_at(offset, buf)
    }

    fn pwrite(&self, data: &[u8], offset: u64) -> FsResult<usize> {
        if !self.writable {
            return Err(FsError::BadFile);
        }
        self.inode.write_at(offset, data)
    }

    fn seek(&self, offset: i64, whence: Whence) -> FsResult<u64> {
        let mut pos = self.position.lock();
        let base = match whence {
            Whence::Start => 0,
            Whence::Current => *pos as i64,
            Whence::End => self.inode.metadata().size as i64,
        };
        let target = base
            .checked_add(offset)
            .filter(|&t| t >= 0)
            .ok_or(FsError::Invalid)?;
        *pos = target as u64;
        Ok(*pos)
    }

    fn metadata(&self) -> FsResult<Metadata> {
        Ok(self.inode.metadata())
    }

    fn inode(&self) -> Option<Arc<dyn Inode>> {
        Some(self.inode.clone())
    }

    fn nonblocking(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & NONBLOCK != 0
    }

    fn appending(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & APPEND != 0
    }

    fn set_status(&self, nonblock: bool, append: bool) {
        let bits = if nonblock { NONBLOCK } else { 0 } | if append { APPEND } else { 0 };
        self.flags.store(bits, Ordering::Relaxed);
    }

    fn access(&self) -> (bool, bool) {
        (self.readable, self.writable)
    }

    fn read_dir(&self, from: u64) -> FsResult<Vec<(DirEntry, u64)>> {
        let meta = self.inode.metadata();
        let mut all = alloc::vec![
            DirEntry {
                name: ".".into(),
                ino: meta.ino,
                kind: FileType::Directory
            },
            DirEntry {
                name: "..".into(),
                ino: meta.ino,
                kind: FileType::Directory
            },
        ];
        all.extend(self.inode.entries()?);
        Ok(all
            .into_iter()
            .enumerate()
            .skip(from as usize)
            .map(|(i, e)| (e, i as u64 + 1))
            .collect())
    }

    fn dir_position(&self) -> u64 {
        *self.position.lock()
    }

    fn set_dir_position(&self, cookie: u64) {
        *self.position.lock() = cookie;
    }

    fn path(&self) -> String {
        self.path.clone()
    }

    fn sync(&self) -> FsResult<()> {
        self.inode.sync()
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

impl InodeFile {
    /// Touch the access time.
    pub fn touch_atime(&self) {
        let _ = self.inode.setattr(crate::node::SetAttr {
            atime: Some(Timespec::now()),
            ..Default::default()
        });
    }
}
