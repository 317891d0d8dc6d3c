//! Reading pools: import from the labels, verify and expand every block,
//! walk object trees, the MOS and its datasets, and ZPL filesystems.

pub mod dataset;
pub mod object;
pub mod zpl;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::blkptr::BlockPointer;
use crate::checksum::{self, ChecksumKind};
use crate::compress::{self, CompressKind};
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::label::{self, ALLOCATABLE_START, Uberblock};
use crate::nvlist::NvList;
use crate::objset::ObjsetPhys;

pub use dataset::Dataset;
pub use zpl::{DirEntry, FileKind, Filesystem, Stat};

/// Anything that can fetch a block by its pointer, verified and expanded:
/// the read-only [`Pool`] and the writer.
pub trait BlockReader {
    /// The logical contents of `bp` (holes read as zeros of `lsize`).
    fn read_block(&mut self, bp: &BlockPointer) -> Result<Vec<u8>>;
}

/// How many recently read indirect and dnode blocks to keep.
const CACHE_BLOCKS: usize = 64;

/// Recently read indirect and dnode blocks, keyed by their whole block
/// pointer (checksum included, so a block rewritten in place is a miss).
#[derive(Debug, Default, Clone)]
pub struct BlockCache {
    entries: Vec<(BlockPointer, Vec<u8>)>,
}

impl BlockCache {
    /// Read `bp` through the cache.
    pub fn read<D: BlockDevice>(&mut self, device: &mut D, bp: &BlockPointer) -> Result<Vec<u8>> {
        let cacheable = bp.level() > 0 || bp.object_type() == crate::dnode::object_type::DNODE;
        if !cacheable {
            return read_verified(device, bp);
        }
        if let Some(i) = self.entries.iter().position(|(b, _)| b == bp) {
            let entry = self.entries.remove(i);
            let data = entry.1.clone();
            self.entries.push(entry);
            return Ok(data);
        }
        let data = read_verified(device, bp)?;
        if self.entries.len() >= CACHE_BLOCKS {
            self.entries.remove(0);
        }
        self.entries.push((*bp, data.clone()));
        Ok(data)
    }
}

/// An imported pool, read-only.
pub struct Pool<D: BlockDevice> {
    device: D,
    /// The label configuration.
    pub config: NvList,
    /// The uberblock this import uses.
    pub uberblock: Uberblock,
    /// The vdev's ashift.
    pub ashift: u32,
    /// The meta object set.
    pub mos: ObjsetPhys,
    cache: BlockCache,
}

/// Check the parts of a label configuration this crate depends on.
pub fn check_config(config: &NvList) -> Result<u32> {
    let version = config.u64("version").unwrap_or(0);
    if version == 0 || (version > 28 && version != 5000) {
        return Err(Error::unsupported(format!("pool version {version}")));
    }
    if let Some(features) = config.list("features_for_read")
        && let Some((name, _)) = features.pairs.first()
    {
        return Err(Error::unsupported(format!(
            "pool needs feature {name} to be read"
        )));
    }
    let tree = config
        .list("vdev_tree")
        .ok_or_else(|| Error::corrupt("label has no vdev_tree"))?;
    match tree.str("type") {
        Some("disk") | Some("file") => {}
        Some(other) => {
            return Err(Error::unsupported(format!(
                "vdev type {other} (only single-disk pools)"
            )));
        }
        None => return Err(Error::corrupt("vdev_tree has no type")),
    }
    if config.u64("vdev_children").unwrap_or(1) != 1 {
        return Err(Error::unsupported(
            "pools with more than one top-level vdev",
        ));
    }
    let ashift = tree.u64("ashift").unwrap_or(9);
    if !(9..=16).contains(&ashift) {
        return Err(Error::corrupt(format!("ashift {ashift}")));
    }
    Ok(ashift as u32)
}

/// Read, verify and expand the block `bp` points to from `device`.
/// Every DVA is tried before giving up with [`Error::Checksum`].
pub fn read_verified<D: BlockDevice>(device: &mut D, bp: &BlockPointer) -> Result<Vec<u8>> {
    if bp.is_embedded() {
        let payload = bp.embedded_payload()?;
        return compress::decompress(bp.compress()?, &payload, bp.lsize() as usize);
    }
    if bp.is_hole() {
        return Ok(vec![0u8; bp.lsize() as usize]);
    }
    if !bp.little_endian() {
        return Err(Error::unsupported("big-endian block"));
    }
    if bp.encrypted() {
        return Err(Error::unsupported("encrypted block"));
    }
    let kind = bp.checksum_kind()?;
    let compression = bp.compress()?;
    let psize = bp.psize() as usize;
    let mut last_error = Error::Checksum {
        bp: alloc::boxed::Box::new(*bp),
    };
    for i in 0..3 {
        let dva = bp.dva(i);
        if dva.is_empty() {
            continue;
        }
        if dva.gang {
            return Err(Error::unsupported(format!("gang block {bp}")));
        }
        if dva.vdev != 0 {
            last_error = Error::corrupt(format!("DVA on vdev {} in {bp}", dva.vdev));
            continue;
        }
        let mut raw = vec![0u8; psize];
        let at = ALLOCATABLE_START + dva.offset;
        if let Err(e) = device.read_at(at, &mut raw) {
            last_error = e.into();
            continue;
        }
        if kind != ChecksumKind::Off && checksum::compute(kind, &raw)? != bp.checksum() {
            last_error = Error::Checksum {
                bp: alloc::boxed::Box::new(*bp),
            };
            continue;
        }
        if compression == CompressKind::Off {
            raw.resize(bp.lsize() as usize, 0);
            return Ok(raw);
        }
        return compress::decompress(compression, &raw, bp.lsize() as usize);
    }
    Err(last_error)
}

impl<D: BlockDevice> Pool<D> {
    /// Import the pool on `device` (exported or not; nothing is written).
    pub fn import(mut device: D) -> Result<Pool<D>> {
        let labels = label::read_labels(&mut device)?;
        let ashift = check_config(&labels.config)?;
        let mos_block = read_verified(&mut device, &labels.uberblock.root_bp)?;
        let mos = ObjsetPhys::parse(&mos_block)?;
        Ok(Pool {
            device,
            config: labels.config,
            uberblock: labels.uberblock,
            ashift,
            mos,
            cache: BlockCache::default(),
        })
    }

    /// The pool's name.
    pub fn name(&self) -> String {
        self.config.str("name").unwrap_or("").into()
    }

    /// The pool's version (5000 for feature-flag pools).
    pub fn version(&self) -> u64 {
        self.config.u64("version").unwrap_or(0)
    }

    /// Give the device back.
    pub fn into_device(self) -> D {
        self.device
    }

    /// The root dataset.
    pub fn root_dataset(&mut self) -> Result<Dataset> {
        let mos = self.mos.clone();
        dataset::root_dataset(self, &mos)
    }

    /// The dataset called `name` ("" or the pool name for the root,
    /// "app" or "pool/app" for a child).
    pub fn dataset(&mut self, name: &str) -> Result<Dataset> {
        let mos = self.mos.clone();
        let pool_name = self.name();
        dataset::find_dataset(self, &mos, &pool_name, name)
    }

    /// Every dataset, depth first from the root, with full names.
    pub fn datasets(&mut self) -> Result<Vec<Dataset>> {
        let mos = self.mos.clone();
        let pool_name = self.name();
        dataset::all_datasets(self, &mos, &pool_name)
    }

    /// Open a dataset's ZPL filesystem.
    pub fn filesystem(&mut self, dataset: &Dataset) -> Result<Filesystem> {
        Filesystem::open(self, &dataset.bp)
    }
}

impl<D: BlockDevice> BlockReader for Pool<D> {
    fn read_block(&mut self, bp: &BlockPointer) -> Result<Vec<u8>> {
        self.cache.read(&mut self.device, bp)
    }
}
