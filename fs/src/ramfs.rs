//! ramfs: files, directories and symbolic links in memory. File data lives
//! in page frames that `mmap` maps directly, so shared mappings and
//! read/write see the same bytes.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use keel_core::memory::PAGE_SIZE;
use keel_core::memory::app_space::{Mappable, PageError};
use keel_core::memory::frame::OwnedFrame;
use keel_core::sync::{Mutex, SpinLock};
use keel_hal::PhysAddr;

use crate::error::{FsError, FsResult};
use crate::node::{DirEntry, FileType, Inode, Metadata, SetAttr, Timespec};

/// Largest file ramfs holds (keeps offsets arithmetic far from overflow).
pub const MAX_FILE_SIZE: u64 = 1 << 44;

static NEXT_DEV: AtomicU64 = AtomicU64::new(0x10);

/// A device number (st_dev) no other mounted filesystem has.
pub(crate) fn new_device_id() -> u64 {
    NEXT_DEV.fetch_add(1, Ordering::Relaxed)
}

/// One ramfs instance (a device number and an inode counter).
pub struct RamFs {
    dev: u64,
    next_ino: AtomicU64,
}

impl RamFs {
    /// A new empty filesystem; returns its root directory.
    pub fn new_root() -> Arc<RamDir> {
        let fs = Arc::new(RamFs {
            dev: new_device_id(),
            next_ino: AtomicU64::new(2),
        });
        RamDir::new(fs, 1, 0o755)
    }

    fn ino(&self) -> u64 {
        self.next_ino.fetch_add(1, Ordering::Relaxed)
    }
}

/// What every ramfs node has.
struct Attrs {
    ino: u64,
    mode: AtomicU32,
    nlink: AtomicU32,
    owner: SpinLock<(u32, u32)>,
    times: SpinLock<[Timespec; 3]>,
}

impl Attrs {
    fn new(ino: u64, mode: u32) -> Self {
        let now = Timespec::now();
        Self {
            ino,
            mode: AtomicU32::new(mode & 0o7777),
            nlink: AtomicU32::new(1),
            owner: SpinLock::new((0, 0)),
            times: SpinLock::new([now; 3]),
        }
    }

    fn metadata(&self, fs: &RamFs, kind: FileType, size: u64) -> Metadata {
        let t = *self.times.lock();
        let (uid, gid) = *self.owner.lock();
        Metadata {
            dev: fs.dev,
            ino: self.ino,
            mode: kind.mode_bits() | self.mode.load(Ordering::Relaxed),
            nlink: self.nlink.load(Ordering::Relaxed),
            uid,
            gid,
            rdev: 0,
            size,
            blksize: PAGE_SIZE as u32,
            blocks: size.div_ceil(512),
            atime: t[0],
            mtime: t[1],
            ctime: t[2],
        }
    }

    fn setattr(&self, a: SetAttr) {
        if let Some(m) = a.mode {
            self.mode.store(m & 0o7777, Ordering::Relaxed);
        }
        {
            let mut o = self.owner.lock();
            if let Some(u) = a.uid {
                o.0 = u;
            }
            if let Some(g) = a.gid {
                o.1 = g;
            }
        }
        let mut t = self.times.lock();
        if let Some(at) = a.atime {
            t[0] = at;
        }
        if let Some(mt) = a.mtime {
            t[1] = mt;
        }
        t[2] = Timespec::now();
    }

    fn modified(&self) {
        let now = Timespec::now();
        let mut t = self.times.lock();
        t[1] = now;
        t[2] = now;
    }
}

/// A directory.
pub struct RamDir {
    fs: Arc<RamFs>,
    attrs: Attrs,
    entries: Mutex<BTreeMap<String, Arc<dyn Inode>>>,
}

impl RamDir {
    fn new(fs: Arc<RamFs>, ino: u64, mode: u32) -> Arc<Self> {
        let d = Arc::new(Self {
            fs,
            attrs: Attrs::new(ino, mode),
            entries: Mutex::new(BTreeMap::new()),
        });
        d.attrs.nlink.store(2, Ordering::Relaxed);
        d
    }

    fn same_fs(&self, other: &dyn Inode) -> bool {
        other.metadata().dev == self.fs.dev
    }

    /// Insert an existing node (used by cpio unpacking and mkdir -p style helpers).
    pub fn insert(&self, name: &str, node: Arc<dyn Inode>) -> FsResult<()> {
        let mut e = self.entries.lock();
        if e.contains_key(name) {
            return Err(FsError::Exists);
        }
        e.insert(name.to_string(), node);
        self.attrs.modified();
        Ok(())
    }
}

fn link_count(node: &Arc<dyn Inode>) -> Option<&AtomicU32> {
    let any = node.as_any();
    if let Some(f) = any.downcast_ref::<RamFile>() {
        return Some(&f.attrs.nlink);
    }
    if let Some(d) = any.downcast_ref::<RamDir>() {
        return Some(&d.attrs.nlink);
    }
    any.downcast_ref::<RamSymlink>().map(|s| &s.attrs.nlink)
}

impl Inode for RamDir {
    fn metadata(&self) -> Metadata {
        let size = self.entries.lock().len() as u64;
        self.attrs.metadata(&self.fs, FileType::Directory, size)
    }

    fn setattr(&self, attr: SetAttr) -> FsResult<()> {
        self.attrs.setattr(attr);
        Ok(())
    }

    fn lookup(&self, name: &str) -> FsResult<Arc<dyn Inode>> {
        self.entries
            .lock()
            .get(name)
            .cloned()
            .ok_or(FsError::NotFound)
    }

    fn create(&self, name: &str, kind: FileType, mode: u32) -> FsResult<Arc<dyn Inode>> {
        let mut e = self.entries.lock();
        if e.contains_key(name) {
            return Err(FsError::Exists);
        }
        let ino = self.fs.ino();
        let node: Arc<dyn Inode> = match kind {
            FileType::Directory => {
                self.attrs.nlink.fetch_add(1, Ordering::Relaxed);
                RamDir::new(self.fs.clone(), ino, mode)
            }
            FileType::Regular => Arc::new(RamFile::new(self.fs.clone(), ino, mode)),
            // A name for an object that lives elsewhere (a bound AF_UNIX
            // socket): the node only carries the name and attributes.
            FileType::Socket => Arc::new(RamSpecial {
                fs: self.fs.clone(),
                attrs: Attrs::new(ino, mode),
                kind,
            }),
            _ => return Err(FsError::NotSupported),
        };
        e.insert(name.to_string(), node.clone());
        self.attrs.modified();
        Ok(node)
    }

    fn symlink(&self, name: &str, target: &str) -> FsResult<Arc<dyn Inode>> {
        if target.is_empty() {
            return Err(FsError::NotFound);
        }
        let mut e = self.entries.lock();
        if e.contains_key(name) {
            return Err(FsError::Exists);
        }
        let node: Arc<dyn Inode> = Arc::new(RamSymlink {
            fs: self.fs.clone(),
            attrs: Attrs::new(self.fs.ino(), 0o777),
            target: target.to_string(),
        });
        e.insert(name.to_string(), node.clone());
        self.attrs.modified();
        Ok(node)
    }

    fn link(&self, name: &str, target: &Arc<dyn Inode>) -> FsResult<()> {
        if !self.same_fs(target.as_ref()) {
            return Err(FsError::CrossDevice);
        }
        if target.metadata().file_type() == FileType::Directory {
            return Err(FsError::NotPermitted);
        }
        let mut e = self.entries.lock();
        if e.contains_key(name) {
            return Err(FsError::Exists);
        }
        if let Some(n) = link_count(target) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        e.insert(name.to_string(), target.clone());
        self.attrs.modified();
        Ok(())
    }

    fn unlink(&self, name: &str) -> FsResult<()> {
        let mut e = self.entries.lock();
        let node = e.get(name).ok_or(FsError::NotFound)?;
        if node.metadata().file_type() == FileType::Directory {
            return Err(FsError::IsDir);
        }
        let node = e.remove(name).expect("checked above");
        if let Some(n) = link_count(&node) {
            n.fetch_sub(1, Ordering::Relaxed);
        }
        self.attrs.modified();
        Ok(())
    }

    fn rmdir(&self, name: &str) -> FsResult<()> {
        let mut e = self.entries.lock();
        let node = e.get(name).ok_or(FsError::NotFound)?;
        let dir = node
            .as_any()
            .downcast_ref::<RamDir>()
            .ok_or(FsError::NotDir)?;
        if !dir.entries.lock().is_empty() {
            return Err(FsError::NotEmpty);
        }
        dir.attrs.nlink.store(0, Ordering::Relaxed);
        e.remove(name);
        self.attrs.nlink.fetch_sub(1, Ordering::Relaxed);
        self.attrs.modified();
        Ok(())
    }

    fn rename(&self, name: &str, new_dir: &Arc<dyn Inode>, new_name: &str) -> FsResult<()> {
        if !self.same_fs(new_dir.as_ref()) {
            return Err(FsError::CrossDevice);
        }
        let target = new_dir
            .as_any()
            .downcast_ref::<RamDir>()
            .ok_or(FsError::NotDir)?;
        if core::ptr::eq(self, target) {
            let mut e = self.entries.lock();
            let node = e.get(name).cloned().ok_or(FsError::NotFound)?;
            if name == new_name || !make_room(e.get(new_name), &node, self)? {
                return Ok(());
            }
            e.remove(name);
            e.insert(new_name.to_string(), node);
            self.attrs.modified();
            return Ok(());
        }
        // Lock both directories in address order so two renames in opposite
        // directions cannot deadlock.
        let self_first = (self as *const Self) < (target as *const Self);
        let (mut src, mut dst) = if self_first {
            let a = self.entries.lock();
            (a, target.entries.lock())
        } else {
            let b = target.entries.lock();
            (self.entries.lock(), b)
        };
        let node = src.get(name).cloned().ok_or(FsError::NotFound)?;
        let moved_dir = node.as_any().downcast_ref::<RamDir>().is_some();
        if node
            .as_any()
            .downcast_ref::<RamDir>()
            .is_some_and(|d| contains_dir(d, target))
        {
            return Err(FsError::Invalid); // into its own subtree
        }
        if !make_room(dst.get(new_name), &node, target)? {
            return Ok(());
        }
        src.remove(name);
        dst.insert(new_name.to_string(), node);
        if moved_dir {
            self.attrs.nlink.fetch_sub(1, Ordering::Relaxed);
            target.attrs.nlink.fetch_add(1, Ordering::Relaxed);
        }
        self.attrs.modified();
        target.attrs.modified();
        Ok(())
    }

    fn entries(&self) -> FsResult<Vec<DirEntry>> {
        Ok(self
            .entries
            .lock()
            .iter()
            .map(|(n, i)| {
                let m = i.metadata();
                DirEntry {
                    name: n.clone(),
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

/// Whether `target` is `dir` or inside it. Never locks `target` (the
/// caller holds its lock): it is recognised by address first.
fn contains_dir(dir: &RamDir, target: &RamDir) -> bool {
    if core::ptr::eq(dir, target) {
        return true;
    }
    let children: Vec<Arc<dyn Inode>> = dir.entries.lock().values().cloned().collect();
    children.iter().any(|n| {
        n.as_any()
            .downcast_ref::<RamDir>()
            .is_some_and(|d| contains_dir(d, target))
    })
}

/// Check that `node` may replace `existing` in `dir` and account for the
/// replaced node's links. Returns false when they are the same object
/// (rename is then a no-op).
fn make_room(
    existing: Option<&Arc<dyn Inode>>,
    node: &Arc<dyn Inode>,
    dir: &RamDir,
) -> FsResult<bool> {
    let Some(existing) = existing else {
        return Ok(true);
    };
    if Arc::ptr_eq(existing, node) {
        return Ok(false);
    }
    let moving_dir = node.metadata().file_type() == FileType::Directory;
    match (moving_dir, existing.as_any().downcast_ref::<RamDir>()) {
        (false, Some(_)) => Err(FsError::IsDir),
        (true, None) => Err(FsError::NotDir),
        (true, Some(d)) => {
            if !d.entries.lock().is_empty() {
                return Err(FsError::NotEmpty);
            }
            dir.attrs.nlink.fetch_sub(1, Ordering::Relaxed);
            Ok(true)
        }
        (false, None) => {
            if let Some(n) = link_count(existing) {
                n.fetch_sub(1, Ordering::Relaxed);
            }
            Ok(true)
        }
    }
}

/// Contents of a file: pages (None = hole) and the size.
struct Data {
    pages: Vec<Option<OwnedFrame>>,
    size: u64,
    /// Frames cut off by truncation; kept until the file goes away, because
    /// a mapping may still point at them.
    retired: Vec<OwnedFrame>,
}

/// A regular file.
pub struct RamFile {
    fs: Arc<RamFs>,
    attrs: Attrs,
    data: Mutex<Data>,
}

impl RamFile {
    fn new(fs: Arc<RamFs>, ino: u64, mode: u32) -> Self {
        Self {
            fs,
            attrs: Attrs::new(ino, mode),
            data: Mutex::new(Data {
                pages: Vec::new(),
                size: 0,
                retired: Vec::new(),
            }),
        }
    }
}

const PAGE: u64 = PAGE_SIZE as u64;

impl Inode for RamFile {
    fn metadata(&self) -> Metadata {
        let d = self.data.lock();
        let mut m = self.attrs.metadata(&self.fs, FileType::Regular, d.size);
        m.blocks = d.pages.iter().filter(|p| p.is_some()).count() as u64 * (PAGE / 512);
        m
    }

    fn setattr(&self, attr: SetAttr) -> FsResult<()> {
        self.attrs.setattr(attr);
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        let d = self.data.lock();
        if offset >= d.size {
            return Ok(0);
        }
        let len = buf.len().min((d.size - offset) as usize);
        let mut done = 0;
        while done < len {
            let at = offset + done as u64;
            let (page, within) = ((at / PAGE) as usize, (at % PAGE) as usize);
            let n = (PAGE_SIZE - within).min(len - done);
            match d.pages.get(page).and_then(Option::as_ref) {
                Some(f) => f.read(within, &mut buf[done..done + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
        Ok(len)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> FsResult<usize> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(FsError::TooBig)?;
        if end > MAX_FILE_SIZE {
            return Err(FsError::TooBig);
        }
        let mut d = self.data.lock();
        let needed = end.div_ceil(PAGE) as usize;
        if d.pages.len() < needed {
            d.pages.resize_with(needed, || None);
        }
        let mut done = 0;
        while done < data.len() {
            let at = offset + done as u64;
            let (page, within) = ((at / PAGE) as usize, (at % PAGE) as usize);
            let n = (PAGE_SIZE - within).min(data.len() - done);
            if d.pages[page].is_none() {
                match OwnedFrame::new_zeroed() {
                    Some(f) => d.pages[page] = Some(f),
                    None if done > 0 => break,
                    None => return Err(FsError::NoSpace),
                }
            }
            d.pages[page]
                .as_ref()
                .expect("allocated above")
                .write(within, &data[done..done + n]);
            done += n;
        }
        let written_end = offset + done as u64;
        if written_end > d.size {
            d.size = written_end;
        }
        drop(d);
        self.attrs.modified();
        Ok(done)
    }

    fn truncate(&self, size: u64) -> FsResult<()> {
        if size > MAX_FILE_SIZE {
            return Err(FsError::TooBig);
        }
        let mut d = self.data.lock();
        if size < d.size {
            // Zero the tail of the last kept page, so growing again reads zeros.
            if !size.is_multiple_of(PAGE)
                && let Some(Some(f)) = d.pages.get((size / PAGE) as usize)
            {
                let within = (size % PAGE) as usize;
                f.zero(within, PAGE_SIZE - within);
            }
            let keep = size.div_ceil(PAGE) as usize;
            if d.pages.len() > keep {
                let cut: Vec<OwnedFrame> = d.pages.drain(keep..).flatten().collect();
                d.retired.extend(cut);
            }
        }
        d.size = size;
        drop(d);
        self.attrs.modified();
        Ok(())
    }

    fn mappable(self: Arc<Self>) -> Option<Arc<dyn Mappable>> {
        Some(self)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

impl Mappable for RamFile {
    fn frame(&self, index: u64) -> Result<PhysAddr, PageError> {
        let mut d = self.data.lock();
        if index >= d.size.div_ceil(PAGE) {
            return Err(PageError::PastEnd);
        }
        let i = index as usize;
        if d.pages.len() <= i {
            d.pages.resize_with(i + 1, || None);
        }
        if d.pages[i].is_none() {
            d.pages[i] = Some(OwnedFrame::new_zeroed().ok_or(PageError::NoMemory)?);
        }
        Ok(d.pages[i].as_ref().expect("present").phys())
    }

    fn frame_if_present(&self, index: u64) -> Option<PhysAddr> {
        let d = self.data.lock();
        d.pages
            .get(index as usize)
            .and_then(Option::as_ref)
            .map(OwnedFrame::phys)
    }

    fn describe(&self) -> String {
        alloc::format!("ramfs inode {}", self.attrs.ino)
    }
}

/// A node with no data of its own (a socket's name).
pub struct RamSpecial {
    fs: Arc<RamFs>,
    attrs: Attrs,
    kind: FileType,
}

impl Inode for RamSpecial {
    fn metadata(&self) -> Metadata {
        self.attrs.metadata(&self.fs, self.kind, 0)
    }
    fn setattr(&self, attr: SetAttr) -> FsResult<()> {
        self.attrs.setattr(attr);
        Ok(())
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// A symbolic link.
pub struct RamSymlink {
    fs: Arc<RamFs>,
    attrs: Attrs,
    target: String,
}

impl Inode for RamSymlink {
    fn metadata(&self) -> Metadata {
        self.attrs
            .metadata(&self.fs, FileType::Symlink, self.target.len() as u64)
    }
    fn setattr(&self, attr: SetAttr) -> FsResult<()> {
        self.attrs.setattr(attr);
        Ok(())
    }
    fn readlink(&self) -> FsResult<String> {
        Ok(self.target.clone())
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}
