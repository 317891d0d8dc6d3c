//! One interface over the two ways a pool is open: through keel-zfs's
//! writer (pools it can keep consistent) or its reader (everything else,
//! read-only).

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_zfs::read::{FileKind, Filesystem, Pool};
use keel_zfs::sa::{Attributes, Timestamp};
use keel_zfs::write::{NewKind, PoolWriter};
use keel_zfs::{BlockDevice, DeviceError, Error};

use crate::block::{Disk, DiskError};
use crate::node::Timespec;

/// A registered disk as keel-zfs's device.
pub struct DiskDevice(pub Arc<dyn Disk>);

fn device_error(offset: u64, len: usize, e: DiskError) -> DeviceError {
    DeviceError {
        offset,
        len: len as u64,
        reason: match e {
            DiskError::OutOfRange => "request outside the disk",
            DiskError::ReadOnly => "the disk is read-only",
            DiskError::Io => "I/O error",
            DiskError::Device(why) => why,
        },
    }
}

impl BlockDevice for DiskDevice {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn sector_size(&self) -> u32 {
        self.0.sector_size()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.0
            .read_at(offset, buf)
            .map_err(|e| device_error(offset, buf.len(), e))
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.0
            .write_at(offset, data)
            .map_err(|e| device_error(offset, data.len(), e))
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.0.flush().map_err(|e| device_error(0, 0, e))
    }
}

/// The open pool.
// One per mount, never moved: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    /// Read and write through the writer (it sees uncommitted changes).
    Writable(PoolWriter<DiskDevice>),
    /// Read only.
    ReadOnly {
        /// The imported pool.
        pool: Pool<DiskDevice>,
        /// Its root dataset's filesystem.
        fs: Filesystem,
    },
}

impl Backend {
    /// Open writable if allowed and possible; otherwise read-only, with the
    /// reason.
    pub fn open(disk: Arc<dyn Disk>, read_only: bool) -> Result<(Backend, Option<String>), Error> {
        let why = if read_only || disk.read_only() {
            String::from("mounted read-only as asked")
        } else {
            match PoolWriter::open(DiskDevice(disk.clone())) {
                Ok(w) => return Ok((Backend::Writable(w), None)),
                Err(e @ (Error::Unsupported(_) | Error::InvalidArgument(_))) => {
                    format!("keel-zfs cannot write this pool ({e})")
                }
                Err(e) => return Err(e),
            }
        };
        let mut pool = Pool::import(DiskDevice(disk))?;
        let dataset = pool.root_dataset()?;
        let fs = pool.filesystem(&dataset)?;
        Ok((Backend::ReadOnly { pool, fs }, Some(why)))
    }

    pub fn pool_name(&self) -> String {
        match self {
            Backend::Writable(w) => w.name.clone(),
            Backend::ReadOnly { pool, .. } => pool.name(),
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            Backend::Writable(_) => 5000,
            Backend::ReadOnly { pool, .. } => pool.version(),
        }
    }

    pub fn root(&self) -> u64 {
        match self {
            Backend::Writable(w) => w.root(),
            Backend::ReadOnly { fs, .. } => fs.root,
        }
    }

    pub fn set_clock(&mut self, now: Timespec) {
        if let Backend::Writable(w) = self {
            w.now = Timestamp {
                secs: now.sec.max(0) as u64,
                nanos: u64::from(now.nsec),
            };
        }
    }

    pub fn attributes(&mut self, object: u64) -> Result<Attributes, Error> {
        match self {
            Backend::Writable(w) => w.attributes(object),
            Backend::ReadOnly { pool, fs } => Ok(fs.stat(pool, object)?.attributes),
        }
    }

    pub fn lookup(&mut self, dir: u64, name: &[u8]) -> Result<u64, Error> {
        match self {
            Backend::Writable(w) => w.lookup(dir, name),
            Backend::ReadOnly { pool, fs } => fs.lookup(pool, dir, name),
        }
    }

    pub fn read(&mut self, object: u64, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        match self {
            Backend::Writable(w) => w.read(object, offset, buf),
            Backend::ReadOnly { pool, fs } => fs.read(pool, object, offset, buf),
        }
    }

    pub fn read_dir(&mut self, dir: u64) -> Result<Vec<(Vec<u8>, u64, FileKind)>, Error> {
        match self {
            Backend::Writable(w) => w.read_dir(dir),
            Backend::ReadOnly { pool, fs } => Ok(fs
                .read_dir(pool, dir)?
                .into_iter()
                .map(|e| (e.name, e.object, e.kind))
                .collect()),
        }
    }

    pub fn read_link(&mut self, object: u64) -> Result<Vec<u8>, Error> {
        match self {
            Backend::Writable(w) => w
                .attributes(object)?
                .symlink
                .ok_or_else(|| Error::InvalidArgument("not a symlink".into())),
            Backend::ReadOnly { pool, fs } => fs.read_link(pool, object),
        }
    }

    /// The writer; only called for changes, which the caller refuses on
    /// read-only mounts first.
    pub fn writer(&mut self) -> Result<&mut PoolWriter<DiskDevice>, Error> {
        match self {
            Backend::Writable(w) => Ok(w),
            Backend::ReadOnly { .. } => Err(Error::Unsupported("the pool is read-only".into())),
        }
    }

    pub fn create(
        &mut self,
        dir: u64,
        name: &[u8],
        kind: NewKind<'_>,
        perm: u32,
    ) -> Result<u64, Error> {
        self.writer()?
            .create(dir, name, kind, u64::from(perm & 0o7777), 0, 0)
    }

    pub fn commit(&mut self) -> Result<(), Error> {
        match self {
            Backend::Writable(w) => w.commit().map(|_| ()),
            Backend::ReadOnly { .. } => Ok(()),
        }
    }
}
