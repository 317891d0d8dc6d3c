//! A pool open for writing: opening an existing pool, and committing a
//! transaction group in OpenZFS's order — data and metadata, space maps, flush, then the
//! uberblock into all four labels between flushes.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::alloc::Allocator;
use super::io::{DataFormat, Io, SpaceDelta};
use super::objset::ObjsetState;
use super::spacemaps;
use super::zpl::ZplState;
use crate::blkptr::BlockPointer;
use crate::device::BlockDevice;
use crate::dsl::{DslDataset, DslDir, dataset, dir};
use crate::error::{Error, Result};
use crate::label::{self, LABEL_COUNT, MMP_MAGIC, Uberblock};
use crate::nvlist::{NvList, Value};
use crate::objset::ObjsetPhys;
use crate::read::dataset::OBJECT_DIRECTORY;
use crate::read::object::{read_dnode, zap_u64};
use crate::read::{BlockCache, BlockReader, check_config, read_verified};
use crate::sa::Timestamp;

/// Pool version written: feature flags, with none enabled.
pub const POOL_VERSION: u64 = 5000;
/// The txg a new pool is created in.
pub const CREATION_TXG: u64 = 4;
/// The txg of the (empty) origin snapshot every filesystem descends from.
pub const ORIGIN_TXG: u64 = CREATION_TXG - 1;
/// Smallest device OpenZFS imports (SPA_MINDEVSIZE).
pub const MIN_DEVICE_SIZE: u64 = 64 << 20;
/// Most MOS sync passes before giving up on space maps converging.
const MAX_PASSES: usize = 16;

/// How to create a pool.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Pool name (letters, digits, `_`, `-`, `.`, starting with a letter).
    pub name: String,
    /// log2 of the smallest block (9 or 12).
    pub ashift: u32,
    /// Seed for guids and hash salts (use real randomness for distinct pools).
    pub seed: u64,
    /// Creation time.
    pub now: Timestamp,
}

/// Objects of the MOS the writer keeps touching.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct MosObjects {
    pub(super) metaslab_array: u64,
    pub(super) root_dir: u64,
    pub(super) root_dataset: u64,
    pub(super) mos_dir: u64,
}

/// A writable pool.
pub struct PoolWriter<D: BlockDevice> {
    pub(super) device: D,
    pub(super) device_size: u64,
    /// Pool name.
    pub name: String,
    pub(super) pool_guid: u64,
    pub(super) vdev_guid: u64,
    pub(super) ashift: u32,
    pub(super) metaslab_shift: u32,
    /// The open transaction group (the last committed is `txg - 1`).
    pub txg: u64,
    pub(super) alloc: Allocator,
    pub(super) cache: BlockCache,
    pub(super) data_format: DataFormat,
    pub(super) mos: ObjsetState,
    pub(super) objects: MosObjects,
    /// The root dataset's filesystem.
    pub(super) fs: ZplState,
    pub(super) labels_dirty: bool,
    pub(super) label_txg: u64,
    pub(super) mos_delta: SpaceDelta,
    /// Current time, used for timestamps of changes and the uberblock.
    pub now: Timestamp,
    /// Set when a commit failed part way: memory no longer matches the
    /// pool, which is still intact at the previous txg. Reopen it.
    pub(super) failed: bool,
}

impl<D: BlockDevice> PoolWriter<D> {
    /// Open an existing pool for writing (version 5000 without features,
    /// one disk vdev, the root dataset a ZPL 5 filesystem).
    pub fn open(mut device: D) -> Result<PoolWriter<D>> {
        let labels = label::read_labels(&mut device)?;
        let config = labels.config;
        let ashift = check_config(&config)?;
        if config.u64("version") != Some(POOL_VERSION) {
            return Err(Error::unsupported(format!(
                "writing pool version {} (only {POOL_VERSION})",
                config.u64("version").unwrap_or(0)
            )));
        }
        let tree = config
            .list("vdev_tree")
            .ok_or_else(|| Error::corrupt("no vdev_tree"))?;
        let metaslab_array = tree
            .u64("metaslab_array")
            .ok_or_else(|| Error::corrupt("no metaslab_array"))?;
        let shift = tree
            .u64("metaslab_shift")
            .ok_or_else(|| Error::corrupt("no metaslab_shift"))? as u32;
        let asize = tree
            .u64("asize")
            .ok_or_else(|| Error::corrupt("no asize"))?;
        if asize > label::allocatable_size(device.size()) || !(16..=40).contains(&shift) {
            return Err(Error::corrupt(format!(
                "vdev asize {asize} or metaslab shift {shift} does not fit a {}-byte device",
                device.size()
            )));
        }
        let ub = labels.uberblock;
        let mos_phys = ObjsetPhys::parse(&read_verified(&mut device, &ub.root_bp)?)?;
        // Reads need an Io; it allocates nothing, so an empty allocator does.
        let mut alloc = Allocator::new(0, shift, ashift);
        let seed = ub.guid_sum ^ ub.txg.rotate_left(17) ^ ub.timestamp;
        let mut cache = BlockCache::default();
        let mut io = Io {
            device: &mut device,
            cache: &mut cache,
            alloc: &mut alloc,
            txg: ub.txg + 1,
            snapshot_txg: 0,
            delta: SpaceDelta::default(),
            compress_metadata: false,
            data_format: Default::default(),
        };
        let mut loaded = Allocator::new(asize, shift, ashift);
        spacemaps::load(&mut io, &mos_phys, metaslab_array, &mut loaded)?;
        let directory = read_dnode(&mut io, &mos_phys, OBJECT_DIRECTORY)?;
        // Enabled features (even unused ones) change what must be written.
        if let Ok(features) = zap_u64(&mut io, &directory, "features_for_write") {
            let features = read_dnode(&mut io, &mos_phys, features)?;
            if let Some((name, _)) = crate::read::object::zap_list(&mut io, &features)?.first() {
                return Err(Error::unsupported(format!(
                    "writing a pool with feature {} enabled",
                    String::from_utf8_lossy(name)
                )));
            }
        }
        let root_dir = zap_u64(&mut io, &directory, "root_dataset")?;
        let root_dir_phys = DslDir::parse(&read_dnode(&mut io, &mos_phys, root_dir)?.bonus)?;
        let root_dataset = root_dir_phys.0[dir::HEAD_DATASET];
        let children = read_dnode(&mut io, &mos_phys, root_dir_phys.0[dir::CHILD_DIR_ZAP])?;
        let mos_dir = zap_u64(&mut io, &children, "$MOS")?;
        let ds = DslDataset::parse(&read_dnode(&mut io, &mos_phys, root_dataset)?.bonus)?;
        let mut mos = ObjsetState::open(mos_phys, ub.root_bp, 1, seed);
        mos.next_object = mos.scan_next_object(&mut io)?;
        let fs = ZplState::open(
            &mut io,
            ds.bp(),
            seed ^ 0x5a5a,
            ds.0[dataset::PREV_SNAP_TXG],
        )?;
        let name = config.str("name").unwrap_or("").into();
        let pool_guid = config
            .u64("pool_guid")
            .ok_or_else(|| Error::corrupt("no pool_guid"))?;
        let vdev_guid = config
            .u64("guid")
            .ok_or_else(|| Error::corrupt("no guid"))?;
        let label_txg = config.u64("txg").unwrap_or(0);
        let device_size = device.size();
        Ok(PoolWriter {
            device,
            device_size,
            name,
            pool_guid,
            vdev_guid,
            ashift,
            metaslab_shift: shift,
            txg: ub.txg + 1,
            alloc: loaded,
            cache,
            data_format: DataFormat::default(),
            mos,
            objects: MosObjects {
                metaslab_array,
                root_dir,
                root_dataset,
                mos_dir,
            },
            fs,
            labels_dirty: false,
            label_txg,
            mos_delta: SpaceDelta::default(),
            now: Timestamp {
                secs: ub.timestamp,
                nanos: 0,
            },
            failed: false,
        })
    }

    /// The device (tests use it to count writes and simulate power cuts).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// Give the device back (uncommitted changes are lost).
    pub fn into_device(self) -> D {
        self.device
    }

    /// Store file data committed from now on with this checksum and
    /// compression (like the dataset properties `checksum=` and
    /// `compression=`).
    pub fn set_data_format(&mut self, format: DataFormat) -> Result<()> {
        format.validate()?;
        self.data_format = format;
        Ok(())
    }

    /// Bytes still free for allocation.
    pub fn free_bytes(&self) -> u64 {
        self.alloc.free_bytes()
    }

    /// Bytes of file data waiting for the next commit.
    pub fn dirty_bytes(&self) -> u64 {
        self.fs.objset.dirty_bytes
    }

    fn vdev_tree(&self) -> NvList {
        NvList::new()
            .with("type", Value::Str("disk".into()))
            .with("id", Value::U64(0))
            .with("guid", Value::U64(self.vdev_guid))
            .with("path", Value::Str("/dev/vda".into()))
            .with("whole_disk", Value::U64(0))
            .with("metaslab_array", Value::U64(self.objects.metaslab_array))
            .with("metaslab_shift", Value::U64(u64::from(self.metaslab_shift)))
            .with("ashift", Value::U64(u64::from(self.ashift)))
            .with(
                "asize",
                Value::U64(label::allocatable_size(self.device_size)),
            )
            .with("is_log", Value::U64(0))
            .with("create_txg", Value::U64(CREATION_TXG))
    }

    fn pool_config(&self, txg: u64) -> NvList {
        NvList::new()
            .with("version", Value::U64(POOL_VERSION))
            .with("name", Value::Str(self.name.clone()))
            .with("state", Value::U64(1))
            .with("txg", Value::U64(txg))
            .with("pool_guid", Value::U64(self.pool_guid))
            .with("errata", Value::U64(0))
            .with("top_guid", Value::U64(self.vdev_guid))
            .with("guid", Value::U64(self.vdev_guid))
            .with("vdev_children", Value::U64(1))
    }

    /// The configuration stored in the labels.
    fn label_config(&self) -> NvList {
        self.pool_config(self.label_txg)
            .with("vdev_tree", Value::List(self.vdev_tree()))
            .with("features_for_read", Value::List(NvList::new()))
    }

    /// The configuration stored in the MOS (with the root vdev).
    pub(super) fn mos_config(&self) -> NvList {
        let root = NvList::new()
            .with("type", Value::Str("root".into()))
            .with("id", Value::U64(0))
            .with("guid", Value::U64(self.pool_guid))
            .with("create_txg", Value::U64(CREATION_TXG))
            .with("children", Value::ListArray(vec![self.vdev_tree()]));
        self.pool_config(CREATION_TXG)
            .with("features_for_read", Value::List(NvList::new()))
            .with("vdev_tree", Value::List(root))
    }

    /// Commit the open transaction group; returns its txg. When this
    /// returns, everything changed before it is durable; a crash at any
    /// point inside leaves the previous txg intact.
    pub fn commit(&mut self) -> Result<u64> {
        self.usable()?;
        let result = self.sync_txg();
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    pub(super) fn usable(&self) -> Result<()> {
        if self.failed {
            return Err(Error::InvalidArgument(
                "an earlier commit failed; reopen the pool (it is intact at its last txg)".into(),
            ));
        }
        Ok(())
    }

    fn sync_txg(&mut self) -> Result<u64> {
        let txg = self.txg;
        let mut io = Io {
            device: &mut self.device,
            cache: &mut self.cache,
            alloc: &mut self.alloc,
            txg,
            snapshot_txg: self.fs.snapshot_txg,
            delta: SpaceDelta::default(),
            compress_metadata: true,
            data_format: self.data_format,
        };
        // The filesystem, then its dataset's pointer and accounting.
        let fs_dirty = self.fs.objset.is_dirty();
        if fs_dirty {
            let bp = self.fs.objset.sync(&mut io)?;
            let delta = io.take_delta();
            let ds_obj = self.objects.root_dataset;
            edit_dataset(&mut self.mos, &mut io, ds_obj, |ds| {
                ds.set_bp(&bp);
                for (field, d) in [
                    (dataset::REFERENCED_BYTES, delta.allocated),
                    (dataset::UNIQUE_BYTES, delta.allocated),
                    (dataset::COMPRESSED_BYTES, delta.physical),
                    (dataset::UNCOMPRESSED_BYTES, delta.logical),
                ] {
                    ds.0[field] = (ds.0[field] as i64 + d).max(0) as u64;
                }
            })?;
            let root_dir = self.objects.root_dir;
            edit_dir(&mut self.mos, &mut io, root_dir, |d| {
                add_used(d, delta);
                d.0[dir::USED_HEAD] = (d.0[dir::USED_HEAD] as i64 + delta.allocated).max(0) as u64;
            })?;
        }
        // The MOS's own space, one txg late as in OpenZFS.
        let mos_delta = core::mem::take(&mut self.mos_delta);
        if mos_delta != SpaceDelta::default() {
            let (root_dir, mos_dir) = (self.objects.root_dir, self.objects.mos_dir);
            edit_dir(&mut self.mos, &mut io, mos_dir, |d| {
                add_used(d, mos_delta);
                d.0[dir::USED_HEAD] =
                    (d.0[dir::USED_HEAD] as i64 + mos_delta.allocated).max(0) as u64;
            })?;
            edit_dir(&mut self.mos, &mut io, root_dir, |d| {
                add_used(d, mos_delta);
                d.0[dir::USED_CHILD] =
                    (d.0[dir::USED_CHILD] as i64 + mos_delta.allocated).max(0) as u64;
            })?;
        }
        io.take_delta();
        io.snapshot_txg = 0;
        // MOS blocks stay uncompressed: a size that changed between sync
        // passes would keep moving blocks and space map entries.
        io.compress_metadata = false;
        // The MOS, then its space maps until they stop changing.
        let mut root_bp = self.mos.sync(&mut io)?;
        let mut passes = 1;
        while spacemaps::record(&mut self.mos, &mut io, self.objects.metaslab_array)? {
            passes += 1;
            if passes > MAX_PASSES {
                return Err(Error::corrupt("space maps did not converge"));
            }
            root_bp = self.mos.sync(&mut io)?;
        }
        self.mos_delta = io.take_delta();

        // Make it durable: data, (even labels), uberblocks, (odd labels).
        self.device.flush()?;
        let config = self.label_config();
        if self.labels_dirty {
            for index in [0, 2] {
                self.write_label_config(&config, index)?;
            }
            self.device.flush()?;
        }
        let ub = Uberblock {
            version: POOL_VERSION,
            txg,
            guid_sum: self.pool_guid.wrapping_add(self.vdev_guid),
            timestamp: self.now.secs,
            root_bp,
            software_version: POOL_VERSION,
            mmp_magic: MMP_MAGIC,
            ..Default::default()
        };
        for index in 0..LABEL_COUNT {
            let block = label::uberblock_block(&ub, self.device_size, index, self.ashift);
            let at = label::uberblock_slot_offset(self.device_size, index, self.ashift, txg);
            self.device.write_at(at, &block)?;
        }
        self.device.flush()?;
        if self.labels_dirty {
            for index in [1, 3] {
                self.write_label_config(&config, index)?;
            }
            self.device.flush()?;
            self.labels_dirty = false;
        }
        self.alloc.txg_done(txg);
        self.txg += 1;
        Ok(txg)
    }

    fn write_label_config(&mut self, config: &NvList, index: usize) -> Result<()> {
        let base = label::label_offset(self.device_size, index);
        let envelope = label::boot_envelope_block(self.device_size, index);
        self.device
            .write_at(base + label::BOOT_ENVELOPE_OFFSET, &envelope)?;
        let block = label::config_block(config, self.device_size, index)?;
        self.device.write_at(base + label::CONFIG_OFFSET, &block)?;
        Ok(())
    }
}

fn add_used(d: &mut DslDir, delta: SpaceDelta) {
    for (field, v) in [
        (dir::USED_BYTES, delta.allocated),
        (dir::COMPRESSED_BYTES, delta.physical),
        (dir::UNCOMPRESSED_BYTES, delta.logical),
    ] {
        d.0[field] = (d.0[field] as i64 + v).max(0) as u64;
    }
}

/// A reader for objects that exist only in memory (pool creation).
pub(super) struct NoReads;

impl BlockReader for NoReads {
    fn read_block(&mut self, bp: &BlockPointer) -> Result<Vec<u8>> {
        Err(Error::corrupt(format!(
            "unexpected read of {bp} while creating a pool"
        )))
    }
}

pub(super) fn dir_field<R: BlockReader>(
    mos: &mut ObjsetState,
    r: &mut R,
    object: u64,
    field: usize,
) -> Result<u64> {
    Ok(DslDir::parse(&mos.dnode(r, object)?.bonus)?.0[field])
}

pub(super) fn edit_dir<R: BlockReader>(
    mos: &mut ObjsetState,
    r: &mut R,
    object: u64,
    f: impl FnOnce(&mut DslDir),
) -> Result<()> {
    let d = mos.dnode_mut(r, object)?;
    let mut phys = DslDir::parse(&d.bonus)?;
    f(&mut phys);
    d.bonus = phys.to_bytes();
    Ok(())
}

pub(super) fn edit_dataset<R: BlockReader>(
    mos: &mut ObjsetState,
    r: &mut R,
    object: u64,
    f: impl FnOnce(&mut DslDataset),
) -> Result<()> {
    let d = mos.dnode_mut(r, object)?;
    let mut phys = DslDataset::parse(&d.bonus)?;
    f(&mut phys);
    d.bonus = phys.to_bytes();
    Ok(())
}
