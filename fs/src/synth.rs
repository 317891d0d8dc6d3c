//! Synthetic files: directories and files whose contents are generated when
//! read (procfs, sysfs). Read-only.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::error::{FsError, FsResult};
use crate::file::{FileLike, OpenFlags};
use crate::node::{DirEntry, FileType, Inode, Metadata};

/// Produces a file's bytes.
pub type Generator = Arc<dyn Fn() -> Vec<u8> + Send + Sync>;
/// Produces a directory's children: (name, node).
pub type Lister = Arc<dyn Fn() -> Vec<(String, Arc<dyn Inode>)> + Send + Sync>;
/// Opens the object a link stands for.
pub type Opener = Arc<dyn Fn() -> Option<Arc<dyn FileLike>> + Send + Sync>;
/// Produces a link target.
pub type Target = Arc<dyn Fn() -> Option<String> + Send + Sync>;

fn ino_of(dev: u64, path: &str) -> u64 {
    // FNV-1a of the path: stable inode numbers without a table.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ dev;
    for b in path.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h | 1
}

fn meta(dev: u64, ino: u64, kind: FileType, mode: u32, size: u64) -> Metadata {
    Metadata {
        dev,
        ino,
        mode: kind.mode_bits() | mode,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        size,
        blksize: 4096,
        ..Default::default()
    }
}

/// A generated file.
pub struct SynthFile {
    dev: u64,
    ino: u64,
    content: Generator,
}

impl SynthFile {
    /// A file at `path` (for its inode number) with generated contents.
    pub fn new(dev: u64, path: &str, content: Generator) -> Arc<Self> {
        Arc::new(Self {
            dev,
            ino: ino_of(dev, path),
            content,
        })
    }
}

impl Inode for SynthFile {
    fn metadata(&self) -> Metadata {
        // Size 0, as procfs reports: readers read until end of file.
        meta(self.dev, self.ino, FileType::Regular, 0o444, 0)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        let data = (self.content)();
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }
    fn write_at(&self, _offset: u64, _data: &[u8]) -> FsResult<usize> {
        Err(FsError::Access)
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// A generated directory.
pub struct SynthDir {
    dev: u64,
    ino: u64,
    list: Lister,
}

impl SynthDir {
    /// A directory at `path` whose children `list` produces.
    pub fn new(dev: u64, path: &str, list: Lister) -> Arc<Self> {
        Arc::new(Self {
            dev,
            ino: ino_of(dev, path),
            list,
        })
    }
}

impl Inode for SynthDir {
    fn metadata(&self) -> Metadata {
        meta(self.dev, self.ino, FileType::Directory, 0o555, 0)
    }
    fn lookup(&self, name: &str) -> FsResult<Arc<dyn Inode>> {
        (self.list)()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, i)| i)
            .ok_or(FsError::NotFound)
    }
    fn create(&self, _name: &str, _kind: FileType, _mode: u32) -> FsResult<Arc<dyn Inode>> {
        Err(FsError::Access)
    }
    fn entries(&self) -> FsResult<Vec<DirEntry>> {
        Ok((self.list)()
            .into_iter()
            .map(|(name, i)| {
                let m = i.metadata();
                DirEntry {
                    name,
                    ino: m.ino,
                    kind: m.file_type(),
                }
            })
            .collect())
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// A generated symbolic link (e.g. /proc/self/exe).
pub struct SynthLink {
    dev: u64,
    ino: u64,
    target: Target,
    /// What opening it gives, for links to objects with no path (pipes).
    open: Option<Opener>,
}

impl SynthLink {
    /// A link whose target `target` produces.
    pub fn new(dev: u64, path: &str, target: Target) -> Arc<Self> {
        Arc::new(Self {
            dev,
            ino: ino_of(dev, path),
            target,
            open: None,
        })
    }

    /// A link that, when opened, gives `open()` (like /proc/self/fd/N).
    pub fn with_open(dev: u64, path: &str, target: Target, open: Opener) -> Arc<Self> {
        Arc::new(Self {
            dev,
            ino: ino_of(dev, path),
            target,
            open: Some(open),
        })
    }

    /// The already-open object this link stands for, if any.
    pub fn opened(&self) -> Option<Arc<dyn FileLike>> {
        self.open.as_ref().and_then(|f| f())
    }
}

impl Inode for SynthLink {
    fn metadata(&self) -> Metadata {
        meta(self.dev, self.ino, FileType::Symlink, 0o777, 0)
    }
    fn readlink(&self) -> FsResult<String> {
        (self.target)().ok_or(FsError::NotFound)
    }
    fn open_special(self: Arc<Self>, _flags: OpenFlags) -> FsResult<Arc<dyn FileLike>> {
        self.opened().ok_or(FsError::NotFound)
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// A fixed symbolic link.
pub struct StaticLink {
    dev: u64,
    ino: u64,
    target: String,
}

impl StaticLink {
    /// A link to `target`.
    pub fn new(dev: u64, ino: u64, target: String) -> Self {
        Self { dev, ino, target }
    }
}

impl Inode for StaticLink {
    fn metadata(&self) -> Metadata {
        meta(
            self.dev,
            self.ino,
            FileType::Symlink,
            0o777,
            self.target.len() as u64,
        )
    }
    fn readlink(&self) -> FsResult<String> {
        Ok(self.target.clone())
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}
