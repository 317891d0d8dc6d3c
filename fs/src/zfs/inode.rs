//! One ZFS object (file, directory, symlink) as a VFS inode, with the page
//! cache that lets the app map files (libraries, data) from a pool.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use keel_core::memory::app_space::{Mappable, PageError};
use keel_core::memory::frame::OwnedFrame;
use keel_core::sync::Mutex;
use keel_hal::PhysAddr;
use keel_zfs::read::FileKind;
use keel_zfs::sa::Timestamp;
use keel_zfs::write::NewKind;

use super::ZfsFs;
use crate::error::{FsError, FsResult};
use crate::node::{DirEntry, FileType, Inode, Metadata, SetAttr, Timespec};

const PAGE: u64 = 4096;
const NAME_MAX: usize = 255;

/// A cached page of a mapped file and the hash of what the file held when
/// it was loaded or last written back (a changed hash means the app wrote
/// it through a shared mapping).
pub(super) struct CachedPage {
    pub(super) frame: OwnedFrame,
    clean_hash: u64,
}

/// Pages of a file that were mapped, and frames cut off by truncation
/// (kept while a mapping may still point at them).
#[derive(Default)]
pub(super) struct PageCache {
    pub(super) pages: BTreeMap<u64, CachedPage>,
    retired: Vec<OwnedFrame>,
}

/// A ZFS object.
pub struct ZfsInode {
    fs: Arc<ZfsFs>,
    object: u64,
    pub(super) cache: Mutex<PageCache>,
}

fn page_hash(frame: &OwnedFrame) -> u64 {
    let mut buf = vec![0u8; PAGE as usize];
    frame.read(0, &mut buf);
    // FNV-1a over 8-byte words: only compared with itself, never stored.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in buf.chunks_exact(8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        h = (h ^ w).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::Directory => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::CharDevice | FileKind::BlockDevice => FileType::CharDevice,
        FileKind::Fifo => FileType::Fifo,
        FileKind::Socket => FileType::Socket,
        FileKind::File | FileKind::Unknown => FileType::Regular,
    }
}

fn timespec(t: Timestamp) -> Timespec {
    Timespec {
        sec: t.secs as i64,
        nsec: t.nanos.min(999_999_999) as u32,
    }
}

fn timestamp(t: Timespec) -> Timestamp {
    Timestamp {
        secs: t.sec.max(0) as u64,
        nanos: u64::from(t.nsec),
    }
}

fn check_name(name: &str) -> FsResult<&[u8]> {
    if name.len() > NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    if name.is_empty() || name.contains('/') || name.contains('\0') {
        return Err(FsError::Invalid);
    }
    Ok(name.as_bytes())
}

impl ZfsInode {
    pub(super) fn new(fs: Arc<ZfsFs>, object: u64) -> Self {
        Self {
            fs,
            object,
            cache: Mutex::new(PageCache::default()),
        }
    }

    /// The ZFS object number.
    pub fn object(&self) -> u64 {
        self.object
    }

    fn same_fs<'a>(&self, other: &'a Arc<dyn Inode>) -> FsResult<&'a ZfsInode> {
        match other.as_any().downcast_ref::<ZfsInode>() {
            Some(z) if Arc::ptr_eq(&z.fs, &self.fs) => Ok(z),
            _ => Err(FsError::CrossDevice),
        }
    }

    fn kind(&self) -> FsResult<FileType> {
        let a = self.fs.query("stat", |b| b.attributes(self.object))?;
        Ok(file_type(FileKind::from_mode(a.mode)))
    }

    fn load_page(&self, index: u64) -> FsResult<CachedPage> {
        let frame = OwnedFrame::new_zeroed().ok_or(FsError::NoMemory)?;
        let mut buf = vec![0u8; PAGE as usize];
        self.fs
            .query("read", |b| b.read(self.object, index * PAGE, &mut buf))?;
        frame.write(0, &buf);
        let clean_hash = page_hash(&frame);
        Ok(CachedPage { frame, clean_hash })
    }

    /// Write cached pages the app changed through shared mappings back to
    /// the file (called before each commit).
    pub(super) fn write_back_mapped(&self) -> FsResult<()> {
        let mut cache = self.cache.lock();
        if cache.pages.is_empty() {
            return Ok(());
        }
        let size = self.fs.query("stat", |b| b.attributes(self.object))?.size;
        for (&index, page) in cache.pages.iter_mut() {
            let hash = page_hash(&page.frame);
            if hash == page.clean_hash || index * PAGE >= size {
                continue;
            }
            let len = (size - index * PAGE).min(PAGE) as usize;
            let mut buf = vec![0u8; len];
            page.frame.read(0, &mut buf);
            self.fs.change("write back", |b| {
                b.writer()?.write(self.object, index * PAGE, &buf)
            })?;
            page.clean_hash = hash;
        }
        Ok(())
    }
}

impl Inode for ZfsInode {
    fn metadata(&self) -> Metadata {
        match self.fs.query("stat", |b| b.attributes(self.object)) {
            Ok(a) => Metadata {
                dev: self.fs.dev,
                ino: self.object,
                mode: a.mode as u32,
                nlink: a.links.min(u64::from(u32::MAX)) as u32,
                uid: a.uid as u32,
                gid: a.gid as u32,
                rdev: a.rdev,
                size: a.size,
                blksize: 128 * 1024,
                blocks: a.size.div_ceil(512),
                atime: timespec(a.atime),
                mtime: timespec(a.mtime),
                ctime: timespec(a.ctime),
            },
            // The error is logged; stat of a damaged object still answers.
            Err(_) => Metadata {
                dev: self.fs.dev,
                ino: self.object,
                mode: FileType::Regular.mode_bits(),
                nlink: 1,
                ..Metadata::default()
            },
        }
    }

    fn setattr(&self, attr: SetAttr) -> FsResult<()> {
        self.fs.change("setattr", |b| {
            b.writer()?.set_attributes(self.object, |a| {
                if let Some(mode) = attr.mode {
                    a.mode = (a.mode & !0o7777) | u64::from(mode & 0o7777);
                }
                if let Some(uid) = attr.uid {
                    a.uid = u64::from(uid);
                }
                if let Some(gid) = attr.gid {
                    a.gid = u64::from(gid);
                }
                if let Some(t) = attr.atime {
                    a.atime = timestamp(t);
                }
                if let Some(t) = attr.mtime {
                    a.mtime = timestamp(t);
                }
            })
        })
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        match self.kind()? {
            FileType::Regular => self.fs.query("read", |b| b.read(self.object, offset, buf)),
            _ => Err(self.not_a_file()),
        }
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> FsResult<usize> {
        if self.kind()? != FileType::Regular {
            return Err(self.not_a_file());
        }
        offset
            .checked_add(data.len() as u64)
            .ok_or(FsError::TooBig)?;
        self.fs
            .change("write", |b| b.writer()?.write(self.object, offset, data))?;
        // Keep mapped pages equal to the file.
        let mut cache = self.cache.lock();
        let first = offset / PAGE;
        let last = (offset + data.len() as u64).div_ceil(PAGE);
        for (&index, page) in cache.pages.range_mut(first..last) {
            let start = (index * PAGE).max(offset);
            let end = ((index + 1) * PAGE).min(offset + data.len() as u64);
            page.frame.write(
                (start - index * PAGE) as usize,
                &data[(start - offset) as usize..(end - offset) as usize],
            );
            page.clean_hash = page_hash(&page.frame);
        }
        Ok(data.len())
    }

    fn truncate(&self, size: u64) -> FsResult<()> {
        if self.kind()? != FileType::Regular {
            return Err(self.not_a_file());
        }
        self.fs
            .change("truncate", |b| b.writer()?.truncate(self.object, size))?;
        let mut cache = self.cache.lock();
        let keep = size.div_ceil(PAGE);
        let cut = cache.pages.split_off(&keep);
        cache.retired.extend(cut.into_values().map(|p| p.frame));
        if !size.is_multiple_of(PAGE)
            && let Some(page) = cache.pages.get_mut(&(size / PAGE))
        {
            let within = (size % PAGE) as usize;
            page.frame.zero(within, PAGE as usize - within);
            page.clean_hash = page_hash(&page.frame);
        }
        Ok(())
    }

    fn sync(&self) -> FsResult<()> {
        self.fs.sync()
    }

    fn mappable(self: Arc<Self>) -> Option<Arc<dyn Mappable>> {
        (self.kind().ok()? == FileType::Regular).then_some(self as Arc<dyn Mappable>)
    }

    fn lookup(&self, name: &str) -> FsResult<Arc<dyn Inode>> {
        let name = check_name(name)?;
        let object = self.fs.query("lookup", |b| b.lookup(self.object, name))?;
        Ok(self.fs.inode(object))
    }

    fn create(&self, name: &str, kind: FileType, mode: u32) -> FsResult<Arc<dyn Inode>> {
        let name = check_name(name)?;
        let new = match kind {
            FileType::Regular => NewKind::File,
            FileType::Directory => NewKind::Directory,
            _ => return Err(FsError::NotSupported),
        };
        let object = self
            .fs
            .change("create", |b| b.create(self.object, name, new, mode))?;
        Ok(self.fs.inode(object))
    }

    fn symlink(&self, name: &str, target: &str) -> FsResult<Arc<dyn Inode>> {
        let name = check_name(name)?;
        if target.is_empty() || target.len() > 4095 {
            return Err(if target.is_empty() {
                FsError::NotFound
            } else {
                FsError::NameTooLong
            });
        }
        let object = self.fs.change("symlink", |b| {
            b.create(
                self.object,
                name,
                NewKind::Symlink(target.as_bytes()),
                0o777,
            )
        })?;
        Ok(self.fs.inode(object))
    }

    fn link(&self, name: &str, target: &Arc<dyn Inode>) -> FsResult<()> {
        let name = check_name(name)?;
        let target = self.same_fs(target)?;
        if target.kind()? == FileType::Directory {
            return Err(FsError::NotPermitted);
        }
        self.fs.change("link", |b| {
            b.writer()?.link(self.object, name, target.object)
        })
    }

    fn unlink(&self, name: &str) -> FsResult<()> {
        let name = check_name(name)?;
        self.fs
            .change("unlink", |b| b.writer()?.unlink(self.object, name))
    }

    fn rmdir(&self, name: &str) -> FsResult<()> {
        let name = check_name(name)?;
        self.fs
            .change("rmdir", |b| b.writer()?.rmdir(self.object, name))
    }

    fn rename(&self, name: &str, new_dir: &Arc<dyn Inode>, new_name: &str) -> FsResult<()> {
        let (name, new_name) = (check_name(name)?, check_name(new_name)?);
        let to = self.same_fs(new_dir)?;
        self.fs.change("rename", |b| {
            b.writer()?.rename(self.object, name, to.object, new_name)
        })
    }

    fn entries(&self) -> FsResult<Vec<DirEntry>> {
        let list = self.fs.query("readdir", |b| b.read_dir(self.object))?;
        Ok(list
            .into_iter()
            .map(|(name, object, kind)| DirEntry {
                name: String::from_utf8(name)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).to_string()),
                ino: object,
                kind: file_type(kind),
            })
            .collect())
    }

    fn readlink(&self) -> FsResult<String> {
        let target = self.fs.query("readlink", |b| b.read_link(self.object))?;
        String::from_utf8(target).map_err(|_| FsError::Invalid)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

impl Mappable for ZfsInode {
    fn frame(&self, index: u64) -> Result<PhysAddr, PageError> {
        let size = self
            .fs
            .query("stat", |b| b.attributes(self.object))
            .map_err(|_| PageError::Io)?
            .size;
        if index >= size.div_ceil(PAGE) {
            return Err(PageError::PastEnd);
        }
        let mut cache = self.cache.lock();
        if let Some(p) = cache.pages.get(&index) {
            return Ok(p.frame.phys());
        }
        let page = self.load_page(index).map_err(|e| match e {
            FsError::NoMemory => PageError::NoMemory,
            _ => PageError::Io,
        })?;
        let pa = page.frame.phys();
        cache.pages.insert(index, page);
        Ok(pa)
    }

    fn frame_if_present(&self, index: u64) -> Option<PhysAddr> {
        self.cache.lock().pages.get(&index).map(|p| p.frame.phys())
    }

    fn describe(&self) -> String {
        alloc::format!("zfs {} object {}", self.fs.pool, self.object)
    }
}
