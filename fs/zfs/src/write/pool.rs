//! A pool open for writing: creation (MOS, DSL tree, root filesystem),
//! opening an existing pool, and committing a transaction group in
//! OpenZFS's order — data and metadata, space maps, flush, then the
//! uberblock into all four labels between flushes.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::alloc::Allocator;
use super::io::{Io, SpaceDelta};
use super::objset::ObjsetState;
use super::spacemaps;
use super::zpl::ZplState;
use crate::blkptr::BlockPointer;
use crate::device::BlockDevice;
use crate::dnode::{Dnode, object_type};
use crate::dsl::{self, DslDataset, DslDir, dataset, dir};
use crate::error::{Error, Result};
use crate::label::{self, LABEL_COUNT, MMP_MAGIC, Uberblock};
use crate::nvlist::{NvList, Value};
use crate::objset::{ObjsetPhys, objset_type};
use crate::read::dataset::OBJECT_DIRECTORY;
use crate::read::object::{read_dnode, zap_u64};
use crate::read::{BlockReader, check_config, read_verified};
use crate::sa::Timestamp;
use crate::zap::ZapValue;

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
struct MosObjects {
    metaslab_array: u64,
    root_dir: u64,
    root_dataset: u64,
    mos_dir: u64,
}

/// A writable pool.
pub struct PoolWriter<D: BlockDevice> {
    pub(crate) device: D,
    device_size: u64,
    /// Pool name.
    pub name: String,
    pool_guid: u64,
    vdev_guid: u64,
    ashift: u32,
    metaslab_shift: u32,
    /// The open transaction group (the last committed is `txg - 1`).
    pub txg: u64,
    pub(crate) alloc: Allocator,
    pub(crate) mos: ObjsetState,
    objects: MosObjects,
    /// The root dataset's filesystem.
    pub(crate) fs: ZplState,
    labels_dirty: bool,
    label_txg: u64,
    mos_delta: SpaceDelta,
    /// Current time, used for timestamps of changes and the uberblock.
    pub now: Timestamp,
    /// Set when a commit failed part way: memory no longer matches the
    /// pool, which is still intact at the previous txg. Reopen it.
    failed: bool,
}

/// Metaslab size for a vdev of `asize` bytes: an eighth of it, between
/// 16 MiB and 512 MiB, a power of two (what makefs does).
pub fn metaslab_shift(asize: u64) -> u32 {
    let target = (asize / 8).clamp(16 << 20, 512 << 20);
    63 - target.leading_zeros()
}

fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 200
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && !["mirror", "raidz", "draid", "spare", "log"].contains(&name);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "pool name '{name}': use letters, digits, '_', '-', '.', starting with a letter"
        )))
    }
}

fn bonus_words<const N: usize>(w: &dsl::Words<N>) -> Vec<u8> {
    w.to_bytes()
}

impl<D: BlockDevice> PoolWriter<D> {
    /// Create a new pool covering all of `device`. Nothing is durable
    /// until [`PoolWriter::commit`].
    pub fn create_pool(device: D, options: &CreateOptions) -> Result<PoolWriter<D>> {
        check_name(&options.name)?;
        if !(9..=13).contains(&options.ashift) {
            return Err(Error::InvalidArgument(format!("ashift {}", options.ashift)));
        }
        let device_size = device.size();
        if device_size < MIN_DEVICE_SIZE {
            return Err(Error::InvalidArgument(format!(
                "device of {device_size} bytes is too small: OpenZFS ignores devices under 64 MiB"
            )));
        }
        let asize = label::allocatable_size(device_size);
        let shift = metaslab_shift(asize);
        if asize >> shift == 0 {
            return Err(Error::InvalidArgument(format!(
                "device of {device_size} bytes has no room for a metaslab"
            )));
        }
        let alloc = Allocator::new(label::allocatable_size(device_size), shift, options.ashift);
        let mut mos = ObjsetState::new(objset_type::META, options.seed);
        let pool_guid = mos.random();
        let vdev_guid = mos.random();
        let now = options.now;

        let directory = mos.create_zap(object_type::OBJECT_DIRECTORY, 0, Vec::new());
        debug_assert_eq!(directory, OBJECT_DIRECTORY);
        let count = alloc.metaslabs.len() as u64;
        let array_size = crate::bytes::round_up(count * 8, 512) as u32;
        let metaslab_array = mos.create(Dnode::new(
            object_type::OBJECT_ARRAY,
            array_size,
            0,
            Vec::new(),
        ));
        mos.write_block(metaslab_array, 0, vec![0u8; array_size as usize]);

        // DSL: the root directory and dataset, $MOS, $FREE, $ORIGIN.
        let new_dir = |mos: &mut ObjsetState, parent: u64| -> u64 {
            let props = mos.create_zap(object_type::DSL_PROPS, 0, Vec::new());
            let children = mos.create_zap(object_type::DSL_DIR_CHILD_MAP, 0, Vec::new());
            let mut d: DslDir = dsl::Words([0; 32]);
            d.0[dir::CREATION_TIME] = now.secs;
            d.0[dir::PARENT] = parent;
            d.0[dir::CHILD_DIR_ZAP] = children;
            d.0[dir::PROPS_ZAP] = props;
            d.0[dir::FLAGS] = dsl::DIR_FLAG_USED_BREAKDOWN;
            mos.create(Dnode::new(
                object_type::DSL_DIR,
                512,
                object_type::DSL_DIR,
                bonus_words(&d),
            ))
        };
        let new_dataset = |mos: &mut ObjsetState, dir_object: u64| -> u64 {
            let deadlist = mos.create_zap(
                object_type::DEADLIST,
                object_type::DEADLIST_HDR,
                vec![0u8; 320],
            );
            let mut ds: DslDataset = dsl::Words([0; 40]);
            ds.0[dataset::DIR] = dir_object;
            ds.0[dataset::DEADLIST] = deadlist;
            ds.0[dataset::CREATION_TIME] = now.secs;
            ds.0[dataset::CREATION_TXG] = ORIGIN_TXG;
            ds.0[dataset::FSID_GUID] = mos.random() >> 8;
            ds.0[dataset::GUID] = mos.random();
            mos.create(Dnode::new(
                object_type::DSL_DATASET,
                512,
                object_type::DSL_DATASET,
                bonus_words(&ds),
            ))
        };
        let root_dir = new_dir(&mut mos, 0);
        let root_dataset = new_dataset(&mut mos, root_dir);
        let mos_dir = new_dir(&mut mos, root_dir);
        let free_dir = new_dir(&mut mos, root_dir);
        let origin_dir = new_dir(&mut mos, root_dir);
        let origin_dataset = new_dataset(&mut mos, origin_dir);
        let origin_snapshot = new_dataset(&mut mos, origin_dir);
        let clones = mos.create_zap(object_type::DSL_CLONES, 0, Vec::new());
        let root_snapnames = mos.create_zap(object_type::DSL_DS_SNAP_MAP, 0, Vec::new());
        let origin_snapnames = mos.create_zap(object_type::DSL_DS_SNAP_MAP, 0, Vec::new());
        let mut r = NoReads;
        for (name, object) in [
            ("$MOS", mos_dir),
            ("$FREE", free_dir),
            ("$ORIGIN", origin_dir),
        ] {
            let children = dir_field(&mut mos, &mut r, root_dir, dir::CHILD_DIR_ZAP)?;
            mos.zap_set(&mut r, children, name.as_bytes(), ZapValue::u64(object))?;
        }
        mos.zap_set(
            &mut r,
            origin_snapnames,
            b"$ORIGIN",
            ZapValue::u64(origin_snapshot),
        )?;
        mos.zap_set(
            &mut r,
            clones,
            format!("{root_dataset:x}").as_bytes(),
            ZapValue::u64(root_dataset),
        )?;
        let root_props = dir_field(&mut mos, &mut r, root_dir, dir::PROPS_ZAP)?;
        mos.zap_set(&mut r, root_props, b"compression", ZapValue::u64(2))?;
        edit_dir(&mut mos, &mut r, root_dir, |d| {
            d.0[dir::HEAD_DATASET] = root_dataset;
            d.0[dir::ORIGIN] = origin_snapshot;
        })?;
        edit_dir(&mut mos, &mut r, origin_dir, |d| {
            d.0[dir::HEAD_DATASET] = origin_dataset;
            d.0[dir::CLONES] = clones;
        })?;
        edit_dataset(&mut mos, &mut r, root_dataset, |ds| {
            ds.0[dataset::PREV_SNAP] = origin_snapshot;
            ds.0[dataset::PREV_SNAP_TXG] = ORIGIN_TXG;
            ds.0[dataset::SNAPNAMES_ZAP] = root_snapnames;
        })?;
        edit_dataset(&mut mos, &mut r, origin_dataset, |ds| {
            ds.0[dataset::PREV_SNAP] = origin_snapshot;
            ds.0[dataset::PREV_SNAP_TXG] = ORIGIN_TXG;
            ds.0[dataset::SNAPNAMES_ZAP] = origin_snapnames;
        })?;
        edit_dataset(&mut mos, &mut r, origin_snapshot, |ds| {
            ds.0[dataset::NEXT_SNAP] = origin_dataset;
            ds.0[dataset::NUM_CHILDREN] = 2;
        })?;

        // Pool-wide objects.
        let bpobj = |mos: &mut ObjsetState| {
            mos.create(Dnode::new(
                object_type::BPOBJ,
                512,
                object_type::BPOBJ_HDR,
                vec![0u8; 48],
            ))
        };
        let free_bpobj = bpobj(&mut mos);
        let sync_bplist = bpobj(&mut mos);
        let mut feature_maps = Vec::new();
        for _ in 0..3 {
            feature_maps.push(mos.create_zap(object_type::ZAP_METADATA, 0, Vec::new()));
        }
        let pool_props = mos.create_zap(object_type::POOL_PROPS, 0, Vec::new());

        let mut writer = PoolWriter {
            device,
            device_size,
            name: options.name.clone(),
            pool_guid,
            vdev_guid,
            ashift: options.ashift,
            metaslab_shift: shift,
            txg: CREATION_TXG,
            alloc,
            mos,
            objects: MosObjects {
                metaslab_array,
                root_dir,
                root_dataset,
                mos_dir,
            },
            fs: ZplState::placeholder(),
            labels_dirty: true,
            label_txg: CREATION_TXG,
            mos_delta: SpaceDelta::default(),
            now,
            failed: false,
        };
        let config = writer.mos_config();
        let packed = config.encode();
        let size = crate::bytes::round_up(packed.len() as u64, 512) as usize;
        let config_object = writer.mos.create(Dnode::new(
            object_type::PACKED_NVLIST,
            size as u32,
            object_type::PACKED_NVLIST_SIZE,
            (packed.len() as u64).to_le_bytes().to_vec(),
        ));
        let mut block = vec![0u8; size];
        block[..packed.len()].copy_from_slice(&packed);
        writer.mos.write_block(config_object, 0, block);
        let entries = [
            ("config", config_object),
            ("free_bpobj", free_bpobj),
            ("sync_bplist", sync_bplist),
            ("features_for_read", feature_maps[0]),
            ("features_for_write", feature_maps[1]),
            ("feature_descriptions", feature_maps[2]),
            ("root_dataset", root_dir),
            ("pool_props", pool_props),
        ];
        for (name, object) in entries {
            writer
                .mos
                .zap_set(&mut r, directory, name.as_bytes(), ZapValue::u64(object))?;
        }
        let seed = writer.mos.random();
        writer.fs = ZplState::new_filesystem(seed, now)?;
        Ok(writer)
    }

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
        let ub = labels.uberblock;
        let mos_phys = ObjsetPhys::parse(&read_verified(&mut device, &ub.root_bp)?)?;
        let mut alloc = Allocator::new(asize, shift, ashift);
        let seed = ub.guid_sum ^ ub.txg.rotate_left(17) ^ ub.timestamp;
        let mut io = Io {
            device: &mut device,
            alloc: &mut alloc,
            txg: ub.txg + 1,
            snapshot_txg: 0,
            delta: SpaceDelta::default(),
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
    fn mos_config(&self) -> NvList {
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

    fn usable(&self) -> Result<()> {
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
            alloc: &mut self.alloc,
            txg,
            snapshot_txg: self.fs.snapshot_txg,
            delta: SpaceDelta::default(),
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
struct NoReads;

impl BlockReader for NoReads {
    fn read_block(&mut self, bp: &BlockPointer) -> Result<Vec<u8>> {
        Err(Error::corrupt(format!(
            "unexpected read of {bp} while creating a pool"
        )))
    }
}

fn dir_field<R: BlockReader>(
    mos: &mut ObjsetState,
    r: &mut R,
    object: u64,
    field: usize,
) -> Result<u64> {
    Ok(DslDir::parse(&mos.dnode(r, object)?.bonus)?.0[field])
}

fn edit_dir<R: BlockReader>(
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

fn edit_dataset<R: BlockReader>(
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

/// Reads straight from the device (verified), for ZPL operations.
struct DeviceReader<'a, D: BlockDevice>(&'a mut D);

impl<D: BlockDevice> BlockReader for DeviceReader<'_, D> {
    fn read_block(&mut self, bp: &BlockPointer) -> Result<Vec<u8>> {
        read_verified(self.0, bp)
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
            .lookup_entry(&mut DeviceReader(&mut self.device), dir, name)?
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
            &mut DeviceReader(&mut self.device),
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
        self.fs
            .link(&mut DeviceReader(&mut self.device), dir, name, object)
    }

    /// Remove a file or symlink entry.
    pub fn unlink(&mut self, dir: u64, name: &[u8]) -> Result<()> {
        self.usable()?;
        self.sync_clock();
        self.fs
            .unlink(&mut DeviceReader(&mut self.device), dir, name)
    }

    /// Remove an empty directory.
    pub fn rmdir(&mut self, dir: u64, name: &[u8]) -> Result<()> {
        self.usable()?;
        self.sync_clock();
        self.fs
            .rmdir(&mut DeviceReader(&mut self.device), dir, name)
    }

    /// Rename, replacing the target if it exists.
    pub fn rename(&mut self, from_dir: u64, from: &[u8], to_dir: u64, to: &[u8]) -> Result<()> {
        self.usable()?;
        self.sync_clock();
        self.fs.rename(
            &mut DeviceReader(&mut self.device),
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
        self.fs
            .write(&mut DeviceReader(&mut self.device), object, offset, data)
    }

    /// Read from a file (sees uncommitted changes).
    pub fn read(&mut self, object: u64, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.fs
            .read(&mut DeviceReader(&mut self.device), object, offset, buf)
    }

    /// Set a file's size.
    pub fn truncate(&mut self, object: u64, size: u64) -> Result<()> {
        self.usable()?;
        self.sync_clock();
        self.fs
            .truncate(&mut DeviceReader(&mut self.device), object, size)
    }

    /// An object's attributes.
    pub fn attributes(&mut self, object: u64) -> Result<crate::sa::Attributes> {
        self.fs
            .attributes(&mut DeviceReader(&mut self.device), object)
    }

    /// Change an object's attributes (mode, owner, times); ctime becomes now.
    pub fn set_attributes(
        &mut self,
        object: u64,
        f: impl FnOnce(&mut crate::sa::Attributes),
    ) -> Result<()> {
        self.usable()?;
        self.sync_clock();
        self.fs
            .set_attributes(&mut DeviceReader(&mut self.device), object, f)
    }

    /// A directory's entries: (name, object, kind).
    pub fn read_dir(&mut self, dir: u64) -> Result<Vec<(Vec<u8>, u64, crate::read::FileKind)>> {
        self.fs.read_dir(&mut DeviceReader(&mut self.device), dir)
    }
}
