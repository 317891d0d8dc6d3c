//! Block I/O for one transaction group: write a block (allocating space,
//! or rewriting in place a block this txg already wrote), free a block
//! (at once if born in this txg, otherwise deferred), read verified
//! blocks, and count the space each change adds or releases.

use alloc::vec::Vec;

use super::alloc::Allocator;
use crate::blkptr::{BlockPointer, Dva};
use crate::bytes::round_up;
use crate::checksum::{self, ChecksumKind};
use crate::compress::{CompressKind, lzjb};
use crate::device::BlockDevice;
use crate::dnode::object_type;
use crate::error::{Error, Result};
use crate::label::ALLOCATABLE_START;
use crate::read::{BlockCache, BlockReader};

/// Space born and freed, for DSL accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpaceDelta {
    /// Allocated bytes added minus removed.
    pub allocated: i64,
    /// Physical bytes added minus removed.
    pub physical: i64,
    /// Logical bytes added minus removed.
    pub logical: i64,
}

impl SpaceDelta {
    fn add(&mut self, bp: &BlockPointer, sign: i64) {
        self.allocated += sign * bp.allocated() as i64;
        self.physical += sign * bp.psize() as i64;
        self.logical += sign * bp.lsize() as i64;
    }
}

/// Everything block writes need: the device, the allocator, the txg.
pub struct Io<'a, D: BlockDevice> {
    /// The vdev.
    pub device: &'a mut D,
    /// Recently read metadata blocks.
    pub cache: &'a mut BlockCache,
    /// Space.
    pub alloc: &'a mut Allocator,
    /// The txg being synced (or open, for reads).
    pub txg: u64,
    /// Blocks of objects whose birth is at most this belong to a snapshot.
    pub snapshot_txg: u64,
    /// Space accounting since the last reset.
    pub delta: SpaceDelta,
    /// Compress metadata blocks (indirect blocks, dnode blocks, ZPL ZAPs)
    /// with lzjb, as OpenZFS does even where data is uncompressed.
    pub compress_metadata: bool,
    /// How file data blocks are stored (the dataset's checksum and
    /// compression properties).
    pub data_format: DataFormat,
}

/// Checksum and compression of file data blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFormat {
    /// fletcher4 (default), fletcher2 or sha256.
    pub checksum: ChecksumKind,
    /// Off (default) or lzjb; others need pool features.
    pub compress: CompressKind,
}

impl Default for DataFormat {
    fn default() -> Self {
        DataFormat {
            checksum: ChecksumKind::Fletcher4,
            compress: CompressKind::Off,
        }
    }
}

impl DataFormat {
    /// Check the combination is one a feature-less pool may hold.
    pub fn validate(self) -> Result<()> {
        if !matches!(
            self.checksum,
            ChecksumKind::Fletcher4 | ChecksumKind::Fletcher2 | ChecksumKind::Sha256
        ) {
            return Err(Error::InvalidArgument(alloc::format!(
                "data checksum {:?} (fletcher4, fletcher2 or sha256)",
                self.checksum
            )));
        }
        if !matches!(self.compress, CompressKind::Off | CompressKind::Lzjb) {
            return Err(Error::InvalidArgument(alloc::format!(
                "data compression {:?} needs a pool feature (off or lzjb)",
                self.compress
            )));
        }
        Ok(())
    }
}

/// Whether a block of `object_type` at `level` is metadata worth
/// compressing: indirect blocks, dnode blocks and the ZPL's ZAPs.
fn is_metadata(object_type: u8, level: u8) -> bool {
    level > 0
        || matches!(
            object_type,
            object_type::DNODE
                | object_type::DIRECTORY_CONTENTS
                | object_type::MASTER_NODE
                | object_type::UNLINKED_SET
                | object_type::SA_MASTER_NODE
                | object_type::SA_ATTR_REGISTRATION
                | object_type::SA_ATTR_LAYOUTS
        )
}

impl<D: BlockDevice> Io<'_, D> {
    /// Write `data` (a multiple of 512 bytes) as a block of `object_type`
    /// at `level`. `old` is the pointer it replaces: a block this txg wrote
    /// with the same size is overwritten in place, anything else is freed.
    pub fn write_block(
        &mut self,
        data: &[u8],
        object_type: u8,
        level: u8,
        fill: u64,
        old: &BlockPointer,
    ) -> Result<BlockPointer> {
        let lsize = data.len() as u64;
        if lsize == 0 || !lsize.is_multiple_of(512) || lsize > 128 * 1024 {
            return Err(Error::InvalidArgument(alloc::format!("block size {lsize}")));
        }
        let is_data = level == 0 && object_type == object_type::PLAIN_FILE_CONTENTS;
        let compress_this = if is_data {
            self.data_format.compress == CompressKind::Lzjb
        } else {
            self.compress_metadata && is_metadata(object_type, level)
        };
        let packed = if compress_this {
            lzjb::compress(data)
                .map(|mut c| {
                    c.resize(round_up(c.len() as u64, 512) as usize, 0);
                    c
                })
                .filter(|c| c.len() as u64 <= lsize - lsize / 8)
        } else {
            None
        };
        let (data, compress) = match &packed {
            Some(c) => (&c[..], CompressKind::Lzjb),
            None => (data, CompressKind::Off),
        };
        let psize = data.len() as u64;
        let asize = round_up(psize, 1 << self.alloc.ashift);
        let reuse = !old.is_hole()
            && !old.is_embedded()
            && old.birth() == self.txg
            && old.psize() == psize
            && old.dva(0).asize == asize
            && old.dva(1).is_empty();
        let offset = if reuse {
            self.delta.add(old, -1);
            old.dva(0).offset
        } else {
            self.free(old)?;
            self.alloc.allocate(asize)?
        };
        self.device.write_at(ALLOCATABLE_START + offset, data)?;
        let mut bp = BlockPointer::HOLE;
        bp.set_dva(
            0,
            Dva {
                vdev: 0,
                offset,
                asize,
                gang: false,
            },
        );
        bp.set_sizes(lsize, psize);
        let checksum_kind = if is_data {
            self.data_format.checksum
        } else {
            ChecksumKind::Fletcher4
        };
        bp.set_checksum_kind(checksum_kind);
        bp.set_compress(compress);
        bp.set_object_type(object_type);
        bp.set_level(level);
        bp.set_little_endian();
        bp.set_birth(self.txg);
        bp.set_fill(fill);
        bp.set_checksum(checksum::compute(checksum_kind, data)?);
        self.delta.add(&bp, 1);
        Ok(bp)
    }

    /// Release the space of `bp` (no-op for holes and embedded pointers).
    pub fn free(&mut self, bp: &BlockPointer) -> Result<()> {
        if bp.is_hole() || bp.is_embedded() {
            return Ok(());
        }
        if bp.birth() <= self.snapshot_txg {
            return Err(Error::unsupported(alloc::format!(
                "freeing a block a snapshot still references ({bp}); pools with snapshots are read-only here"
            )));
        }
        for i in 0..3 {
            let dva = bp.dva(i);
            if dva.is_empty() {
                continue;
            }
            if dva.gang {
                return Err(Error::unsupported("freeing a gang block"));
            }
            if bp.birth() == self.txg {
                self.alloc.free_now(dva.offset, dva.asize)?;
            } else {
                self.alloc.free_deferred(dva.offset, dva.asize, self.txg)?;
            }
        }
        self.delta.add(bp, -1);
        Ok(())
    }

    /// Take the accumulated delta and start a new one.
    pub fn take_delta(&mut self) -> SpaceDelta {
        core::mem::take(&mut self.delta)
    }
}

impl<D: BlockDevice> BlockReader for Io<'_, D> {
    fn read_block(&mut self, bp: &BlockPointer) -> Result<Vec<u8>> {
        self.cache.read(self.device, bp)
    }
}
