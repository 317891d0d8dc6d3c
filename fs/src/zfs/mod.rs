//! ZFS pools as Keel filesystems: the VFS face of keel-zfs. A pool on a
//! registered disk mounts writable when keel-zfs can keep it consistent
//! (version 5000 without features, ZPL 5 — what `cargo keel image` makes)
//! and read-only otherwise (older pools, e.g. zfs-fuse's v23/ZPL 4).
//!
//! Changes collect in the open transaction group and become durable when
//! it commits: on fsync/sync, every few seconds from the kernel's sync
//! thread, and before power-off ([`sync_all`]).

mod backend;
mod inode;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use keel_core::sync::{Mutex, SpinLock};
use keel_zfs::Error;

use crate::block::Disk;
use crate::error::{FsError, FsResult};
use crate::node::Inode;
use backend::Backend;
pub use backend::DiskDevice;
pub use inode::ZfsInode;

/// A mounted pool (its root dataset).
pub struct ZfsFs {
    backend: Mutex<Backend>,
    dev: u64,
    pool: String,
    read_only: bool,
    /// Changes not yet committed.
    dirty: AtomicBool,
    /// Live inodes by object number, so every opener of an object shares
    /// one page cache.
    inodes: SpinLock<BTreeMap<u64, Weak<ZfsInode>>>,
    me: Weak<ZfsFs>,
}

static MOUNTED: SpinLock<Vec<Weak<ZfsFs>>> = SpinLock::new(Vec::new());

/// What mounting found, for the boot log.
#[derive(Debug, Clone)]
pub struct MountInfo {
    /// Pool name.
    pub pool: String,
    /// Pool version (5000 for feature-flag pools).
    pub version: u64,
    /// Whether it mounted read-only, and why.
    pub read_only: Option<String>,
}

impl ZfsFs {
    /// Import the pool on `disk` and mount its root dataset. Writable when
    /// keel-zfs can write it (and `read_only` is false), read-only
    /// otherwise.
    pub fn mount(disk: Arc<dyn Disk>, read_only: bool) -> Result<(Arc<ZfsFs>, MountInfo), Error> {
        let (backend, why_read_only) = Backend::open(disk, read_only)?;
        let info = MountInfo {
            pool: backend.pool_name(),
            version: backend.version(),
            read_only: why_read_only.clone(),
        };
        let fs = Arc::new_cyclic(|me| ZfsFs {
            pool: info.pool.clone(),
            backend: Mutex::new(backend),
            dev: crate::ramfs::new_device_id(),
            read_only: why_read_only.is_some(),
            dirty: AtomicBool::new(false),
            inodes: SpinLock::new(BTreeMap::new()),
            me: me.clone(),
        });
        MOUNTED.lock().push(Arc::downgrade(&fs));
        Ok((fs, info))
    }

    /// The root directory.
    pub fn root(&self) -> FsResult<Arc<dyn Inode>> {
        let root = self.backend.lock().root();
        Ok(self.inode(root))
    }

    /// Pool name.
    pub fn pool_name(&self) -> &str {
        &self.pool
    }

    /// True when mounted read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Commit the open transaction group if anything changed; cached pages
    /// the app changed through shared mappings are written first.
    pub fn sync(&self) -> FsResult<()> {
        self.write_back_mapped_pages()?;
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let mut b = self.backend.lock();
        b.commit().map_err(|e| {
            self.dirty.store(true, Ordering::Release);
            error(&self.pool, "commit", e)
        })
    }

    fn write_back_mapped_pages(&self) -> FsResult<()> {
        let live: Vec<Arc<ZfsInode>> = self
            .inodes
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for inode in live {
            inode.write_back_mapped()?;
        }
        Ok(())
    }

    /// The shared inode for `object`.
    fn inode(&self, object: u64) -> Arc<dyn Inode> {
        let mut map = self.inodes.lock();
        if let Some(i) = map.get(&object).and_then(Weak::upgrade) {
            return i;
        }
        let fs = self
            .me
            .upgrade()
            .expect("a live filesystem makes its inodes");
        let i = Arc::new(ZfsInode::new(fs, object));
        map.insert(object, Arc::downgrade(&i));
        if map.len().is_multiple_of(1024) {
            map.retain(|_, w| w.strong_count() > 0);
        }
        i
    }

    /// Run a change on the writable backend, marking the pool dirty.
    fn change<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Backend) -> Result<T, Error>,
    ) -> FsResult<T> {
        if self.read_only {
            return Err(FsError::ReadOnly);
        }
        let mut b = self.backend.lock();
        b.set_clock(crate::node::Timespec::now());
        let r = f(&mut b).map_err(|e| error(&self.pool, what, e));
        self.dirty.store(true, Ordering::Release);
        r
    }

    /// Run a query on the backend.
    fn query<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Backend) -> Result<T, Error>,
    ) -> FsResult<T> {
        let mut b = self.backend.lock();
        f(&mut b).map_err(|e| error(&self.pool, what, e))
    }
}

/// Commit every mounted pool (before power-off, on sync(2)). Returns the
/// first error after trying them all.
pub fn sync_all() -> FsResult<()> {
    let pools: Vec<Arc<ZfsFs>> = MOUNTED.lock().iter().filter_map(Weak::upgrade).collect();
    let mut first = Ok(());
    for p in pools {
        if let Err(e) = p.sync()
            && first.is_ok()
        {
            first = Err(e);
        }
    }
    first
}

/// The errno for a keel-zfs error; damage and device failures are logged
/// (with the block pointer, for checksum errors) since the app only sees
/// EIO.
fn error(pool: &str, what: &str, e: Error) -> FsError {
    match e {
        Error::NotFound => FsError::NotFound,
        Error::NotDirectory => FsError::NotDir,
        Error::IsDirectory => FsError::IsDir,
        Error::Exists => FsError::Exists,
        Error::NotEmpty => FsError::NotEmpty,
        Error::InvalidName => FsError::Invalid,
        Error::InvalidArgument(_) => FsError::Invalid,
        Error::NoSpace => FsError::NoSpace,
        Error::SymlinkLoop => FsError::Loop,
        Error::Unsupported(ref m) => {
            keel_core::kprintln!("zfs: pool {pool}: {what}: not supported: {m}");
            FsError::NotSupported
        }
        e @ (Error::Device(_) | Error::Checksum { .. } | Error::Corrupt(_)) => {
            keel_core::kprintln!("zfs: pool {pool}: {what}: {e}");
            FsError::Io
        }
    }
}

#[cfg(test)]
mod tests;
