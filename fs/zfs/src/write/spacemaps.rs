//! Recording a txg's allocations and frees in the metaslabs' space maps,
//! and loading space maps back into an allocator. Space map blocks live
//! in the MOS, so writing them allocates space too: the caller repeats
//! MOS sync passes until the recorded entries stop changing (blocks born
//! in the same txg are rewritten in place, so this converges).

use alloc::vec;
use alloc::vec::Vec;

use super::alloc::Allocator;
use super::io::Io;
use super::objset::ObjsetState;
use crate::bytes::put_u64;
use crate::device::BlockDevice;
use crate::dnode::{Dnode, object_type};
use crate::error::{Error, Result};
use crate::objset::ObjsetPhys;
use crate::read::BlockReader;
use crate::read::object::{read_dnode, read_range};
use crate::spacemap::{self, EntryKind, SpaceMapHeader};

/// Block size of space map objects.
pub const SPACE_MAP_BLOCK: u32 = 4096;

/// This txg's entries for metaslab `m`: allocations, then frees.
fn txg_entries(alloc: &Allocator, index: usize) -> Vec<u64> {
    let m = &alloc.metaslabs[index];
    let mut words = Vec::new();
    for (s, e) in m.txg_allocs.iter() {
        spacemap::encode(
            &mut words,
            EntryKind::Alloc,
            s - m.start,
            e - s,
            alloc.ashift,
        );
    }
    for (s, e) in m.txg_frees.iter() {
        spacemap::encode(
            &mut words,
            EntryKind::Free,
            s - m.start,
            e - s,
            alloc.ashift,
        );
    }
    words
}

/// Write the current txg's entries of every metaslab whose entries
/// changed since the last pass. Returns whether anything was written.
pub fn record<D: BlockDevice>(
    mos: &mut ObjsetState,
    io: &mut Io<'_, D>,
    metaslab_array: u64,
) -> Result<bool> {
    let mut changed = false;
    for index in 0..io.alloc.metaslabs.len() {
        let entries = txg_entries(io.alloc, index);
        let m = &io.alloc.metaslabs[index];
        if entries == m.written {
            continue;
        }
        changed = true;
        let mut object = m.space_map;
        if object == 0 {
            let header = SpaceMapHeader::default().to_bytes();
            let dnode = Dnode::new(
                object_type::SPACE_MAP,
                SPACE_MAP_BLOCK,
                object_type::SPACE_MAP_HEADER,
                header,
            );
            object = mos.create(dnode);
            io.alloc.metaslabs[index].space_map = object;
            let bs = mos.dnode(io, metaslab_array)?.block_size as usize;
            let mut array = mos
                .read_block(io, metaslab_array, 0)?
                .unwrap_or_else(|| vec![0u8; bs]);
            put_u64(&mut array, index * 8, object);
            mos.write_block(metaslab_array, 0, array);
        }
        let m = &io.alloc.metaslabs[index];
        let base = m.sm_length;
        let base_alloc = m.sm_alloc;
        let delta = m.txg_allocs.total() as i64 - m.txg_frees.total() as i64;
        let bs = u64::from(SPACE_MAP_BLOCK);
        let new_len = base + entries.len() as u64 * 8;
        let first = base / bs;
        let mut bytes: Vec<u8> = Vec::with_capacity(((new_len - first * bs) as usize).max(1));
        if !base.is_multiple_of(bs) {
            let block = mos
                .read_block(io, object, first)?
                .ok_or_else(|| Error::corrupt("space map shorter than its length"))?;
            bytes.extend_from_slice(&block[..(base % bs) as usize]);
        }
        for w in &entries {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        let blocks = bytes.len().div_ceil(bs as usize) as u64;
        for k in 0..blocks {
            let mut block = vec![0u8; bs as usize];
            let part = &bytes[(k * bs) as usize..(((k + 1) * bs) as usize).min(bytes.len())];
            block[..part.len()].copy_from_slice(part);
            mos.write_block(object, first + k, block);
        }
        mos.clear_blocks_from(object, first + blocks.max(1));
        let d = mos.dnode_mut(io, object)?;
        d.max_blkid = if new_len == 0 { 0 } else { (new_len - 1) / bs };
        d.bonus = SpaceMapHeader {
            object,
            length: new_len,
            alloc: base_alloc + delta,
        }
        .to_bytes();
        io.alloc.metaslabs[index].written = entries;
    }
    Ok(changed)
}

/// Replay every metaslab's space map into `alloc`.
pub fn load<R: BlockReader + ?Sized>(
    reader: &mut R,
    mos: &ObjsetPhys,
    metaslab_array: u64,
    alloc: &mut Allocator,
) -> Result<()> {
    let array_dnode = read_dnode(reader, mos, metaslab_array)?;
    let count = alloc.metaslabs.len();
    let mut array = vec![0u8; count * 8];
    read_range(reader, &array_dnode, 0, &mut array)?;
    for index in 0..count {
        let object = crate::bytes::u64_at(&array, index * 8)?;
        if object == 0 {
            continue;
        }
        let d = read_dnode(reader, mos, object)?;
        if d.object_type != object_type::SPACE_MAP {
            return Err(Error::corrupt(
                "metaslab array points at a non-space-map object",
            ));
        }
        let header = SpaceMapHeader::parse(&d.bonus)?;
        if header.length > (d.max_blkid + 1).saturating_mul(u64::from(d.block_size)) {
            return Err(Error::corrupt(alloc::format!(
                "space map {object} is shorter than its recorded length"
            )));
        }
        let mut data = vec![0u8; header.length as usize];
        read_range(reader, &d, 0, &mut data)?;
        let start = alloc.metaslabs[index].start;
        for e in spacemap::decode(&data, alloc.ashift)? {
            match e.kind {
                EntryKind::Alloc => alloc.load_allocated(start + e.offset, e.length),
                EntryKind::Free => alloc.load_freed(start + e.offset, e.length),
            }
        }
        let m = &mut alloc.metaslabs[index];
        m.space_map = object;
        m.sm_length = header.length;
        m.sm_alloc = header.alloc;
    }
    Ok(())
}
