//! Inodes: what every filesystem object can be asked.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_core::memory::app_space::Mappable;

use crate::error::{FsError, FsResult};
use crate::file::{FileLike, OpenFlags};

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timespec {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds (0..1e9).
    pub nsec: u32,
}

impl Timespec {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let ns = keel_core::time::realtime_ns();
        Self {
            sec: (ns / 1_000_000_000) as i64,
            nsec: (ns % 1_000_000_000) as u32,
        }
    }
}

/// Kind of object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A named pipe.
    Fifo,
    /// A socket.
    Socket,
}

impl FileType {
    /// The S_IFMT bits.
    pub const fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => 0o100000,
            FileType::Directory => 0o040000,
            FileType::Symlink => 0o120000,
            FileType::CharDevice => 0o020000,
            FileType::Fifo => 0o010000,
            FileType::Socket => 0o140000,
        }
    }

    /// The d_type value of a directory entry.
    pub const fn dirent_type(self) -> u8 {
        match self {
            FileType::Regular => 8,
            FileType::Directory => 4,
            FileType::Symlink => 10,
            FileType::CharDevice => 2,
            FileType::Fifo => 1,
            FileType::Socket => 12,
        }
    }
}

/// What `stat` reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Filesystem id (st_dev).
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Type and permission bits (st_mode).
    pub mode: u32,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for device files.
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Preferred I/O size.
    pub blksize: u32,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Last access.
    pub atime: Timespec,
    /// Last modification.
    pub mtime: Timespec,
    /// Last status change.
    pub ctime: Timespec,
}

impl Metadata {
    /// The type part of `mode`.
    pub fn file_type(&self) -> FileType {
        match self.mode & 0o170000 {
            0o040000 => FileType::Directory,
            0o120000 => FileType::Symlink,
            0o020000 => FileType::CharDevice,
            0o010000 => FileType::Fifo,
            0o140000 => FileType::Socket,
            _ => FileType::Regular,
        }
    }
}

/// Changes to apply with `setattr`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    /// New permission bits (type bits ignored).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New access time.
    pub atime: Option<Timespec>,
    /// New modification time.
    pub mtime: Option<Timespec>,
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Name (no slashes).
    pub name: String,
    /// Inode number.
    pub ino: u64,
    /// Kind.
    pub kind: FileType,
}

/// A filesystem object. Methods a kind of object does not support return
/// the errno Linux returns for it.
pub trait Inode: Send + Sync {
    /// Current metadata.
    fn metadata(&self) -> Metadata;

    /// Change mode, owner or times.
    fn setattr(&self, _attr: SetAttr) -> FsResult<()> {
        Err(FsError::NotPermitted)
    }

    /// Read bytes at `offset` (regular files).
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> FsResult<usize> {
        Err(self.not_a_file())
    }

    /// Write bytes at `offset` (regular files).
    fn write_at(&self, _offset: u64, _data: &[u8]) -> FsResult<usize> {
        Err(self.not_a_file())
    }

    /// Set the size (regular files).
    fn truncate(&self, _size: u64) -> FsResult<()> {
        Err(self.not_a_file())
    }

    /// Make written data durable.
    fn sync(&self) -> FsResult<()> {
        Ok(())
    }

    /// The file's pages, if it can be mapped into the app.
    fn mappable(self: Arc<Self>) -> Option<Arc<dyn Mappable>> {
        None
    }

    /// Find `name` in this directory.
    fn lookup(&self, _name: &str) -> FsResult<Arc<dyn Inode>> {
        Err(FsError::NotDir)
    }

    /// Create `name` in this directory.
    fn create(&self, _name: &str, _kind: FileType, _mode: u32) -> FsResult<Arc<dyn Inode>> {
        Err(FsError::NotDir)
    }

    /// Create a symbolic link `name` pointing at `target`.
    fn symlink(&self, _name: &str, _target: &str) -> FsResult<Arc<dyn Inode>> {
        Err(FsError::NotDir)
    }

    /// Add a hard link `name` to `target` (same filesystem).
    fn link(&self, _name: &str, _target: &Arc<dyn Inode>) -> FsResult<()> {
        Err(FsError::NotDir)
    }

    /// Remove the non-directory `name`.
    fn unlink(&self, _name: &str) -> FsResult<()> {
        Err(FsError::NotDir)
    }

    /// Remove the empty directory `name`.
    fn rmdir(&self, _name: &str) -> FsResult<()> {
        Err(FsError::NotDir)
    }

    /// Move `name` to `new_dir`/`new_name` (same filesystem), replacing a
    /// compatible target.
    fn rename(&self, _name: &str, _new_dir: &Arc<dyn Inode>, _new_name: &str) -> FsResult<()> {
        Err(FsError::NotDir)
    }

    /// Entries of this directory (without "." and "..").
    fn entries(&self) -> FsResult<Vec<DirEntry>> {
        Err(FsError::NotDir)
    }

    /// The target of a symbolic link.
    fn readlink(&self) -> FsResult<String> {
        Err(FsError::Invalid)
    }

    /// Open a device or other special object (regular files and directories
    /// are opened by the VFS itself).
    fn open_special(self: Arc<Self>, _flags: OpenFlags) -> FsResult<Arc<dyn FileLike>> {
        Err(FsError::NotSupported)
    }

    /// For downcasting (same-filesystem checks for link/rename).
    fn as_any(&self) -> &dyn core::any::Any;

    /// The error for file operations on this kind of object.
    fn not_a_file(&self) -> FsError {
        if self.metadata().file_type() == FileType::Directory {
            FsError::IsDir
        } else {
            FsError::Invalid
        }
    }
}
