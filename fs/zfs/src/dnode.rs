//! Dnodes (`dnode_phys_t`, 512 bytes per slot): an object's type, block
//! size, indirection depth, block pointers and bonus buffer. Object
//! types (`dmu_object_type_t`) used by this crate are listed here too.

use alloc::vec;
use alloc::vec::Vec;

use crate::blkptr::{BLKPTR_SIZE, BlockPointer};
use crate::bytes::{put_u16, put_u64, u8_at, u16_at, u64_at};
use crate::error::{Error, Result};

/// Size of one dnode slot.
pub const DNODE_SIZE: usize = 512;
/// Size of the fixed dnode header.
pub const DNODE_HEADER: usize = 64;
/// Dnodes per 16 KiB block of the meta-dnode.
pub const DNODES_PER_BLOCK: u64 = 32;
/// Size of a meta-dnode data block.
pub const DNODE_BLOCK_SIZE: u32 = 16 * 1024;
/// Largest bonus buffer of a 512-byte dnode with one block pointer.
pub const MAX_BONUS: usize = DNODE_SIZE - DNODE_HEADER - BLKPTR_SIZE;

/// `dn_flags`: `dn_used` counts bytes, not sectors.
pub const FLAG_USED_BYTES: u8 = 1;
/// `dn_flags`: a spill block pointer occupies the last 128 bytes.
pub const FLAG_SPILL_BLKPTR: u8 = 4;

/// DMU object types this crate reads or writes (`dmu_object_type_t`).
pub mod object_type {
    /// Unallocated.
    pub const NONE: u8 = 0;
    /// The MOS object directory (a ZAP).
    pub const OBJECT_DIRECTORY: u8 = 1;
    /// Array of object numbers (metaslab array).
    pub const OBJECT_ARRAY: u8 = 2;
    /// Packed nvlist (pool config).
    pub const PACKED_NVLIST: u8 = 3;
    /// Bonus of a packed nvlist: its size.
    pub const PACKED_NVLIST_SIZE: u8 = 4;
    /// Block pointer object (deferred frees).
    pub const BPOBJ: u8 = 5;
    /// Its bonus header.
    pub const BPOBJ_HDR: u8 = 6;
    /// Bonus of a space map.
    pub const SPACE_MAP_HEADER: u8 = 7;
    /// Space map entries.
    pub const SPACE_MAP: u8 = 8;
    /// The meta-dnode's blocks.
    pub const DNODE: u8 = 10;
    /// An object set block.
    pub const OBJSET: u8 = 11;
    /// DSL directory.
    pub const DSL_DIR: u8 = 12;
    /// DSL directory children (ZAP).
    pub const DSL_DIR_CHILD_MAP: u8 = 13;
    /// DSL dataset snapshot names (ZAP).
    pub const DSL_DS_SNAP_MAP: u8 = 14;
    /// DSL properties (ZAP).
    pub const DSL_PROPS: u8 = 15;
    /// DSL dataset.
    pub const DSL_DATASET: u8 = 16;
    /// Legacy ZPL znode bonus.
    pub const ZNODE: u8 = 17;
    /// File contents.
    pub const PLAIN_FILE_CONTENTS: u8 = 19;
    /// Directory (ZAP).
    pub const DIRECTORY_CONTENTS: u8 = 20;
    /// ZPL master node (ZAP).
    pub const MASTER_NODE: u8 = 21;
    /// ZPL delete queue (ZAP).
    pub const UNLINKED_SET: u8 = 22;
    /// Pool properties (ZAP).
    pub const POOL_PROPS: u8 = 31;
    /// System attributes bonus.
    pub const SA: u8 = 44;
    /// SA master node (ZAP).
    pub const SA_MASTER_NODE: u8 = 45;
    /// SA attribute registry (ZAP).
    pub const SA_ATTR_REGISTRATION: u8 = 46;
    /// SA layouts (ZAP).
    pub const SA_ATTR_LAYOUTS: u8 = 47;
    /// Dataset deadlist (ZAP).
    pub const DEADLIST: u8 = 50;
    /// Its bonus header.
    pub const DEADLIST_HDR: u8 = 51;
    /// Origin clones (ZAP).
    pub const DSL_CLONES: u8 = 52;
    /// "New" type encoding: a metadata ZAP (features maps).
    pub const ZAP_METADATA: u8 = 0x80 | 0x40 | 4;
}

/// A decoded dnode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dnode {
    /// Object type ([`object_type`]); 0 = free.
    pub object_type: u8,
    /// log2 of indirect block size.
    pub indirect_shift: u8,
    /// Levels of the block tree (1 = the block pointers point at data).
    pub levels: u8,
    /// Type of the bonus buffer.
    pub bonus_type: u8,
    /// Checksum algorithm for the object's blocks.
    pub checksum: u8,
    /// Compression algorithm for the object's blocks.
    pub compress: u8,
    /// `dn_flags`.
    pub flags: u8,
    /// Data block size in bytes.
    pub block_size: u32,
    /// Extra 512-byte slots this dnode occupies (large dnodes).
    pub extra_slots: u8,
    /// Highest level-0 block id.
    pub max_blkid: u64,
    /// Space used (bytes when [`FLAG_USED_BYTES`]).
    pub used: u64,
    /// The block pointers (1..=3 for 512-byte dnodes).
    pub blkptrs: Vec<BlockPointer>,
    /// The bonus buffer.
    pub bonus: Vec<u8>,
    /// The spill block pointer, when [`FLAG_SPILL_BLKPTR`] is set.
    pub spill: Option<BlockPointer>,
}

impl Dnode {
    /// Decode the dnode starting at `buf[0]` (large dnodes read further slots).
    pub fn parse(buf: &[u8]) -> Result<Dnode> {
        let object_type = u8_at(buf, 0)?;
        let nblkptr = usize::from(u8_at(buf, 3)?);
        let extra_slots = u8_at(buf, 12)?;
        let size = DNODE_SIZE * (1 + usize::from(extra_slots));
        if object_type == 0 {
            return Ok(Dnode::default());
        }
        if buf.len() < size {
            return Err(Error::corrupt("dnode crosses its block"));
        }
        let flags = u8_at(buf, 7)?;
        let spill_room = if flags & FLAG_SPILL_BLKPTR != 0 {
            BLKPTR_SIZE
        } else {
            0
        };
        if nblkptr == 0 || DNODE_HEADER + nblkptr * BLKPTR_SIZE + spill_room > size {
            return Err(Error::corrupt("dnode block pointer count out of range"));
        }
        let mut blkptrs = Vec::with_capacity(nblkptr);
        for i in 0..nblkptr {
            let at = DNODE_HEADER + i * BLKPTR_SIZE;
            blkptrs.push(BlockPointer::parse(&buf[at..at + BLKPTR_SIZE])?);
        }
        let bonus_at = DNODE_HEADER + nblkptr * BLKPTR_SIZE;
        let bonus_room = size - bonus_at - spill_room;
        let bonus_len = usize::from(u16_at(buf, 10)?);
        if bonus_len > bonus_room {
            return Err(Error::corrupt("dnode bonus longer than its room"));
        }
        let spill = if spill_room != 0 {
            Some(BlockPointer::parse(&buf[size - BLKPTR_SIZE..size])?)
        } else {
            None
        };
        let levels = u8_at(buf, 2)?;
        if levels == 0 || levels > 10 {
            return Err(Error::corrupt("dnode level count out of range"));
        }
        Ok(Dnode {
            object_type,
            indirect_shift: u8_at(buf, 1)?,
            levels,
            bonus_type: u8_at(buf, 4)?,
            checksum: u8_at(buf, 5)?,
            compress: u8_at(buf, 6)?,
            flags,
            block_size: u32::from(u16_at(buf, 8)?) * 512,
            extra_slots,
            max_blkid: u64_at(buf, 16)?,
            used: u64_at(buf, 24)?,
            blkptrs,
            bonus: buf[bonus_at..bonus_at + bonus_len].to_vec(),
            spill,
        })
    }

    /// Encode as one 512-byte slot (free dnodes encode as zeros).
    pub fn to_bytes(&self) -> Result<[u8; DNODE_SIZE]> {
        let mut b = [0u8; DNODE_SIZE];
        if self.object_type == 0 {
            return Ok(b);
        }
        let spill_room = if self.spill.is_some() { BLKPTR_SIZE } else { 0 };
        let bonus_at = DNODE_HEADER + self.blkptrs.len() * BLKPTR_SIZE;
        if self.blkptrs.is_empty() || bonus_at + self.bonus.len() + spill_room > DNODE_SIZE {
            return Err(Error::InvalidArgument(
                "dnode does not fit in 512 bytes".into(),
            ));
        }
        b[0] = self.object_type;
        b[1] = self.indirect_shift;
        b[2] = self.levels;
        b[3] = self.blkptrs.len() as u8;
        b[4] = self.bonus_type;
        b[5] = self.checksum;
        b[6] = self.compress;
        b[7] = self.flags
            | if self.spill.is_some() {
                FLAG_SPILL_BLKPTR
            } else {
                0
            };
        put_u16(&mut b, 8, (self.block_size / 512) as u16);
        put_u16(&mut b, 10, self.bonus.len() as u16);
        put_u64(&mut b, 16, self.max_blkid);
        put_u64(&mut b, 24, self.used);
        for (i, bp) in self.blkptrs.iter().enumerate() {
            let at = DNODE_HEADER + i * BLKPTR_SIZE;
            bp.write_to(&mut b[at..at + BLKPTR_SIZE]);
        }
        b[bonus_at..bonus_at + self.bonus.len()].copy_from_slice(&self.bonus);
        if let Some(spill) = &self.spill {
            spill.write_to(&mut b[DNODE_SIZE - BLKPTR_SIZE..]);
        }
        Ok(b)
    }

    /// A fresh dnode of `object_type` with `bonus` and as many block
    /// pointers as the remaining room allows (1..=3).
    pub fn new(object_type: u8, block_size: u32, bonus_type: u8, bonus: Vec<u8>) -> Dnode {
        let nblkptr = 1 + (MAX_BONUS - bonus.len().min(MAX_BONUS)) / BLKPTR_SIZE;
        Dnode {
            object_type,
            indirect_shift: 17,
            levels: 1,
            bonus_type,
            checksum: crate::checksum::ChecksumKind::Fletcher4 as u8,
            compress: crate::compress::CompressKind::Off as u8,
            flags: FLAG_USED_BYTES,
            block_size,
            extra_slots: 0,
            max_blkid: 0,
            used: 0,
            blkptrs: vec![BlockPointer::HOLE; nblkptr],
            bonus,
            spill: None,
        }
    }

    /// Whether the slot is free.
    pub fn is_free(&self) -> bool {
        self.object_type == 0
    }

    /// Block pointers per indirect block.
    pub fn pointers_per_indirect(&self) -> u64 {
        1u64 << (self.indirect_shift.clamp(7, 17) - 7)
    }

    /// Level-0 blocks one top-level block pointer covers.
    pub fn span_of_top_pointer(&self) -> u64 {
        let per = self.pointers_per_indirect();
        let mut span = 1u64;
        for _ in 1..self.levels {
            span = span.saturating_mul(per);
        }
        span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_bonus_and_spill() {
        let mut d = Dnode::new(
            object_type::PLAIN_FILE_CONTENTS,
            4096,
            object_type::SA,
            vec![9; 100],
        );
        assert_eq!(d.blkptrs.len(), 2);
        d.max_blkid = 3;
        d.used = 8192;
        let again = Dnode::parse(&d.to_bytes().unwrap()).unwrap();
        assert_eq!(again, d);
        d.bonus = vec![1; 150];
        d.blkptrs.truncate(1);
        d.spill = Some(BlockPointer::HOLE);
        let again = Dnode::parse(&d.to_bytes().unwrap()).unwrap();
        assert_eq!(again.spill, Some(BlockPointer::HOLE));
        assert_eq!(again.bonus.len(), 150);
    }

    #[test]
    fn rejects_impossible_fields() {
        let mut raw = Dnode::new(object_type::PLAIN_FILE_CONTENTS, 512, 0, Vec::new())
            .to_bytes()
            .unwrap();
        raw[3] = 4; // four block pointers cannot fit
        assert!(Dnode::parse(&raw).is_err());
        raw[3] = 1;
        raw[10] = 0xff; // bonus length beyond the slot
        raw[11] = 0x01;
        assert!(Dnode::parse(&raw).is_err());
    }
}
