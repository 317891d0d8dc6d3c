//! Reading ZAP objects: list every entry or look one up, from a function
//! that returns the object's blocks (already checksum-verified).

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use super::fat::{self, LeafGeometry, entry, header, leaf};
use super::{
    BLOCK_HEADER, BLOCK_LEAF, BLOCK_MICRO, LEAF_MAGIC, MICRO_ENTRY, ZAP_MAGIC, ZapValue, hash,
};
use crate::bytes::{be64_at, u8_at, u16_at, u32_at, u64_at};
use crate::error::{Error, Result};

/// Source of a ZAP object's blocks by block id.
pub type BlockSource<'a> = dyn FnMut(u64) -> Result<Vec<u8>> + 'a;

/// One decoded entry.
pub type Entry = (Vec<u8>, ZapValue);

/// Every entry of the ZAP, in on-disk order.
pub fn list(blocks: &mut BlockSource<'_>) -> Result<Vec<Entry>> {
    let first = blocks(0)?;
    match u64_at(&first, 0)? {
        BLOCK_MICRO => list_micro(&first),
        BLOCK_HEADER => {
            let fat = FatHeader::parse(&first)?;
            let mut out = Vec::new();
            for blkid in fat.leaf_blocks(&first, blocks)? {
                let block = blocks(blkid)?;
                list_leaf(&block, fat.block_shift, &mut out)?;
            }
            Ok(out)
        }
        other => Err(Error::corrupt(alloc::format!("ZAP block type {other:#x}"))),
    }
}

/// The value stored under `name`, if any.
pub fn lookup(blocks: &mut BlockSource<'_>, name: &[u8]) -> Result<Option<ZapValue>> {
    let first = blocks(0)?;
    match u64_at(&first, 0)? {
        BLOCK_MICRO => Ok(list_micro(&first)?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)),
        BLOCK_HEADER => {
            let fat = FatHeader::parse(&first)?;
            let h = hash(fat.salt, name);
            let blkid = fat.leaf_for(&first, blocks, h)?;
            let block = blocks(blkid)?;
            lookup_leaf(&block, fat.block_shift, h, name)
        }
        other => Err(Error::corrupt(alloc::format!("ZAP block type {other:#x}"))),
    }
}

/// Salt and kind of a ZAP, for writers that re-encode it.
pub fn salt_and_kind(first_block: &[u8]) -> Result<(u64, bool)> {
    match u64_at(first_block, 0)? {
        BLOCK_MICRO => Ok((u64_at(first_block, 8)?, true)),
        BLOCK_HEADER => Ok((u64_at(first_block, header::SALT)?, false)),
        _ => Err(Error::corrupt("not a ZAP block")),
    }
}

fn list_micro(block: &[u8]) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for chunk in block.chunks_exact(MICRO_ENTRY).skip(1) {
        let name_bytes = &chunk[14..];
        let len = name_bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(name_bytes.len());
        if len == 0 {
            continue;
        }
        out.push((name_bytes[..len].to_vec(), ZapValue::u64(u64_at(chunk, 0)?)));
    }
    Ok(out)
}

struct FatHeader {
    block_shift: u32,
    table_shift: u32,
    table_blk: u64,
    table_blocks: u64,
    salt: u64,
}

impl FatHeader {
    fn parse(block: &[u8]) -> Result<FatHeader> {
        if u64_at(block, header::MAGIC)? != ZAP_MAGIC {
            return Err(Error::corrupt("fatzap header without magic"));
        }
        if !block.len().is_power_of_two() || block.len() < 512 {
            return Err(Error::corrupt("fatzap block size is not a power of two"));
        }
        let block_shift = block.len().trailing_zeros();
        let table_shift = u64_at(block, header::PTRTBL_SHIFT)?;
        let table_blocks = u64_at(block, header::PTRTBL_NUMBLKS)?;
        let flags = u64_at(block, header::FLAGS)?;
        if flags != 0 {
            return Err(Error::unsupported(alloc::format!(
                "fatzap flags {flags:#x}"
            )));
        }
        if table_shift > 20
            || (table_blocks == 0 && table_shift > fat::embedded_table_shift(block_shift).into())
        {
            return Err(Error::corrupt("fatzap pointer table too large"));
        }
        Ok(FatHeader {
            block_shift,
            table_shift: table_shift as u32,
            table_blk: u64_at(block, header::PTRTBL_BLK)?,
            table_blocks,
            salt: u64_at(block, header::SALT)?,
        })
    }

    fn entry(&self, first: &[u8], blocks: &mut BlockSource<'_>, index: u64) -> Result<u64> {
        if self.table_blocks == 0 {
            return u64_at(first, first.len() / 2 + index as usize * 8);
        }
        let per_block = 1u64 << (self.block_shift - 3);
        let blk = self.table_blk + index / per_block;
        let table = blocks(blk)?;
        u64_at(&table, ((index % per_block) * 8) as usize)
    }

    fn leaf_for(&self, first: &[u8], blocks: &mut BlockSource<'_>, h: u64) -> Result<u64> {
        let index = if self.table_shift == 0 {
            0
        } else {
            h >> (64 - self.table_shift)
        };
        self.entry(first, blocks, index)
    }

    fn leaf_blocks(&self, first: &[u8], blocks: &mut BlockSource<'_>) -> Result<BTreeSet<u64>> {
        let mut set = BTreeSet::new();
        let n = 1u64 << self.table_shift;
        if self.table_blocks == 0 {
            for i in 0..n {
                set.insert(self.entry(first, blocks, i)?);
            }
        } else {
            let per_block = 1u64 << (self.block_shift - 3);
            for b in 0..n.div_ceil(per_block) {
                let table = blocks(self.table_blk + b)?;
                for i in 0..per_block.min(n) {
                    set.insert(u64_at(&table, (i * 8) as usize)?);
                }
            }
        }
        if set.contains(&0) {
            return Err(Error::corrupt("fatzap pointer table points at its header"));
        }
        Ok(set)
    }
}

fn check_leaf(block: &[u8]) -> Result<()> {
    if u64_at(block, leaf::BLOCK_TYPE)? != BLOCK_LEAF || u32_at(block, leaf::MAGIC)? != LEAF_MAGIC {
        return Err(Error::corrupt("fatzap leaf without magic"));
    }
    Ok(())
}

fn read_array(block: &[u8], geo: LeafGeometry, mut chunk: u16, len: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut steps = 0;
    while out.len() < len {
        let i = usize::from(chunk);
        if i >= geo.chunks() || steps > geo.chunks() {
            return Err(Error::corrupt("fatzap array chain out of range"));
        }
        let at = geo.chunk_offset(i);
        if u8_at(block, at)? != fat::CHUNK_ARRAY {
            return Err(Error::corrupt("fatzap array chain hits a non-array chunk"));
        }
        let take = (len - out.len()).min(fat::ARRAY_BYTES);
        out.extend_from_slice(&block[at + 1..at + 1 + take]);
        chunk = u16_at(block, at + 22)?;
        steps += 1;
    }
    Ok(out)
}

fn read_entry(block: &[u8], geo: LeafGeometry, at: usize) -> Result<Entry> {
    let name_len = usize::from(u16_at(block, at + entry::NAME_NUMINTS)?);
    let mut name = read_array(block, geo, u16_at(block, at + entry::NAME_CHUNK)?, name_len)?;
    if name.last() == Some(&0) {
        name.pop();
    }
    let int_size = u8_at(block, at + entry::VALUE_INTLEN)?;
    if !matches!(int_size, 1 | 2 | 4 | 8) {
        return Err(Error::corrupt("fatzap value integer size"));
    }
    let count = usize::from(u16_at(block, at + entry::VALUE_NUMINTS)?);
    let raw = read_array(
        block,
        geo,
        u16_at(block, at + entry::VALUE_CHUNK)?,
        count * usize::from(int_size),
    )?;
    let ints = raw
        .chunks_exact(usize::from(int_size))
        .map(|c| c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
        .collect();
    Ok((name, ZapValue { int_size, ints }))
}

fn list_leaf(block: &[u8], block_shift: u32, out: &mut Vec<Entry>) -> Result<()> {
    check_leaf(block)?;
    let geo = LeafGeometry { block_shift };
    for i in 0..geo.chunks() {
        let at = geo.chunk_offset(i);
        if u8_at(block, at)? == fat::CHUNK_ENTRY {
            out.push(read_entry(block, geo, at)?);
        }
    }
    Ok(())
}

fn lookup_leaf(block: &[u8], block_shift: u32, h: u64, name: &[u8]) -> Result<Option<ZapValue>> {
    check_leaf(block)?;
    let geo = LeafGeometry { block_shift };
    let prefix_len = u32::from(u16_at(block, leaf::PREFIX_LEN)?);
    if prefix_len > 48 {
        return Err(Error::corrupt("fatzap leaf prefix too long"));
    }
    let slot = geo.hash_slot(h, prefix_len);
    let mut chunk = u16_at(block, fat::LEAF_HEADER + 2 * slot)?;
    let mut steps = 0;
    while chunk != fat::CHAIN_END {
        let i = usize::from(chunk);
        if i >= geo.chunks() || steps > geo.chunks() {
            return Err(Error::corrupt("fatzap hash chain out of range"));
        }
        let at = geo.chunk_offset(i);
        if u8_at(block, at)? != fat::CHUNK_ENTRY {
            return Err(Error::corrupt("fatzap hash chain hits a non-entry chunk"));
        }
        if u64_at(block, at + entry::HASH)? == h {
            let (n, v) = read_entry(block, geo, at)?;
            if n == name {
                return Ok(Some(v));
            }
        }
        chunk = u16_at(block, at + entry::NEXT)?;
        steps += 1;
    }
    Ok(None)
}

/// Read a big-endian integer array value from raw bytes (helper for tests).
pub fn be_u64s(raw: &[u8]) -> Result<Vec<u64>> {
    (0..raw.len() / 8).map(|i| be64_at(raw, i * 8)).collect()
}
