//! File operations on a writable pool's root filesystem, each a thin
//! wrapper that lends the ZPL layer a verified reader of the device.
//! Changes become durable at the next [`PoolWriter::commit`].

use alloc::vec::Vec;

use super::pool::PoolWriter;
use crate::blkptr::BlockPointer;
use crate::device::BlockDevice;
use crate::error::Result;
use crate::read::{BlockCache, BlockReader};

/// Reads straight from the device (verified), for ZPL operations.
struct DeviceReader<'a, D: BlockDevice>(&'a mut D, &'a mut BlockCache);

impl<D: BlockDevice> BlockReader for DeviceReader<'_, D> {
    fn read_block(&mut self, bp: &BlockPointer) -> Result<Vec<u8>> {
        self.1.read(self.0, bp)
    }
}

/// File operations on the root filesystem. Changes become durable at the
/// next [`PoolWriter::commit`].
impl<D: BlockDevice> PoolWriter<D> {
    fn sync_clock(&mut self) {
        self.fs.now = self.now;
        self.fs.txg = self.txg;
    }

    /// The root directory's object number.
    pub fn root(&self) -> u64 {
        self.fs.root
    }

    /// Look `name` up in directory `dir`.
    pub fn lookup(&mut self, dir: u64, name: &[u8]) -> Result<u64> {
        Ok(self
            .fs
            .lookup_entry(
                &mut DeviceReader(&mut self.device, &mut self.cache),
                dir,
                name,
            )?
            .0)
    }

    /// Resolve a path of directories from the root (symlinks not followed).
    pub fn resolve(&mut self, path: &str) -> Result<u64> {
        let mut at = self.fs.root;
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            at = if part == ".." {
                self.attributes(at)?.parent
            } else {
                self.lookup(at, part.as_bytes())?
            };
        }
        Ok(at)
    }

    /// Create a file, directory or symlink; returns its object number.
    pub fn create(
        &mut self,
        dir: u64,
        name: &[u8],
        kind: super::NewKind<'_>,
        perm: u64,
        uid: u64,
        gid: u64,
    ) -> Result<u64> {
        self.usable()?;
        self.sync_clock();
        self.fs.create(
            &mut DeviceReader(&mut self.device, &mut self.cache),
            dir,
            name,
            kind,
            super::zpl::Owner { perm, uid, gid },
        )
    }

    /// Add a hard link to `object`.
    pub fn link(&mut self, dir: u64, name: &[u8], object: u64) -> Result<()> {
        self.usable()?;
        self.sync_clock();
        self.fs.link(
            &mut DeviceReader(&mut self.device, &mut self.cache),
            dir,
            name,
            object,
        )
    }

    /// Remove a file or symlink entry.
    pub fn unlink(&mut self, dir: u64, name: &[u8]) -> Result<()> {
        self.usable()?;
        self.sync_clock();
        self.fs.unlink(
            &mut DeviceReader(&mut self.device, &mut self.cache),
            dir,
            name,
        )
    }

    /// Remove an empty directory.
    pub fn rmdir(&mut self, dir: u64, name: &[u8]) -> Result<()> {
        self.usable()?;
        self.sync_clock();
        self.fs.rmdir(
            &mut DeviceReader(&mut self.device, &mut self.cache),
            dir,
            name,
        )
    }

    /// Rename, replacing the target if it exists.
    pub fn rename(&mut self, from_dir: u64, from: &[u8], to_dir: u64, to: &[u8]) -> Result<()> {
        self.usable()?;
        self.sync_clock();
        self.fs.rename(
            &mut DeviceReader(&mut self.device, &mut self.cache),
            from_dir,
            from,
            to_dir,
            to,
        )
    }

    /// Write into a file.
    pub fn write(&mut self, object: u64, offset: u64, data: &[u8]) -> Result<()> {
        self.usable()?;
        self.sync_clock();
        self.fs.write(
            &mut DeviceReader(&mut self.device, &mut self.cache),
            object,
            offset,
            data,
        )
    }

    /// Read from a file (sees uncommitted changes).
    pub fn read(&mut self, object: u64, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.fs.read(
            &mut DeviceReader(&mut self.device, &mut self.cache),
            object,
            offset,
            buf,
        )
    }

    /// Set a file's size.
    pub fn truncate(&mut self, object: u64, size: u64) -> Result<()> {
        self.usable()?;
        self.sync_clock();
        self.fs.truncate(
            &mut DeviceReader(&mut self.device, &mut self.cache),
            object,
            size,
        )
    }

    /// An object's attributes.
    pub fn attributes(&mut self, object: u64) -> Result<crate::sa::Attributes> {
        self.fs
            .attributes(&mut DeviceReader(&mut self.device, &mut self.cache), object)
    }

    /// Change an object's attributes (mode, owner, times); ctime becomes now.
    pub fn set_attributes(
        &mut self,
        object: u64,
        f: impl FnOnce(&mut crate::sa::Attributes),
    ) -> Result<()> {
        self.usable()?;
        self.sync_clock();
        self.fs.set_attributes(
            &mut DeviceReader(&mut self.device, &mut self.cache),
            object,
            f,
        )
    }

    /// A directory's entries: (name, object, kind).
    pub fn read_dir(&mut self, dir: u64) -> Result<Vec<(Vec<u8>, u64, crate::read::FileKind)>> {
        self.fs
            .read_dir(&mut DeviceReader(&mut self.device, &mut self.cache), dir)
    }
}
