//! Creating a pool: the MOS laid out as FreeBSD's makefs does (object
//! directory, metaslab array, config, bpobjs, feature maps, pool
//! properties), the DSL tree (root, $MOS, $FREE, $ORIGIN with its
//! snapshot) and an empty ZPL 5 root filesystem, all in the first txg.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::alloc::Allocator;
use super::io::SpaceDelta;
use super::objset::ObjsetState;
use super::pool::{
    CREATION_TXG, CreateOptions, MIN_DEVICE_SIZE, MosObjects, NoReads, ORIGIN_TXG, PoolWriter,
    dir_field, edit_dataset, edit_dir,
};
use super::zpl::ZplState;
use crate::device::BlockDevice;
use crate::dnode::{Dnode, object_type};
use crate::dsl::{self, DslDataset, DslDir, dataset, dir};
use crate::error::{Error, Result};
use crate::label;
use crate::objset::objset_type;
use crate::read::dataset::OBJECT_DIRECTORY;
use crate::zap::ZapValue;

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
            cache: crate::read::BlockCache::default(),
            data_format: Default::default(),
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
}
