//! Objects: find a level-0 block through the indirect tree, read byte
//! ranges (holes read as zeros), fetch dnodes from an object set, and read
//! ZAP objects.

use alloc::vec;
use alloc::vec::Vec;

use super::BlockReader;
use crate::blkptr::{BLKPTR_SIZE, BlockPointer};
use crate::dnode::{DNODE_SIZE, Dnode};
use crate::error::{Error, Result};
use crate::objset::ObjsetPhys;
use crate::zap::{self, ZapValue};

/// The block pointer of level-0 block `blkid` of `dnode` (a hole if none).
pub fn level0_pointer<R: BlockReader + ?Sized>(
    reader: &mut R,
    dnode: &Dnode,
    blkid: u64,
) -> Result<BlockPointer> {
    if blkid > dnode.max_blkid {
        return Ok(BlockPointer::HOLE);
    }
    let per = dnode.pointers_per_indirect();
    let span = dnode.span_of_top_pointer();
    let top = blkid / span;
    let Some(mut bp) = dnode.blkptrs.get(top as usize).copied() else {
        return Ok(BlockPointer::HOLE);
    };
    let mut span = span;
    let mut within = blkid % span;
    for level in (1..dnode.levels).rev() {
        if bp.is_hole() {
            return Ok(BlockPointer::HOLE);
        }
        if u32::from(bp.level()) != u32::from(level) {
            return Err(Error::corrupt(alloc::format!(
                "indirect block at level {} where {level} was expected: {bp}",
                bp.level()
            )));
        }
        let block = reader.read_block(&bp)?;
        span /= per;
        let index = (within / span) as usize;
        within %= span;
        let at = index * BLKPTR_SIZE;
        let slice = block
            .get(at..at + BLKPTR_SIZE)
            .ok_or_else(|| Error::corrupt("indirect block shorter than its pointers"))?;
        bp = BlockPointer::parse(slice)?;
    }
    Ok(bp)
}

/// Level-0 block `blkid` of `dnode`; `None` for a hole.
pub fn read_level0<R: BlockReader + ?Sized>(
    reader: &mut R,
    dnode: &Dnode,
    blkid: u64,
) -> Result<Option<Vec<u8>>> {
    let bp = level0_pointer(reader, dnode, blkid)?;
    if bp.is_hole() {
        return Ok(None);
    }
    let mut data = reader.read_block(&bp)?;
    data.resize(dnode.block_size as usize, 0);
    Ok(Some(data))
}

/// Fill `buf` from byte `offset` of the object (holes and anything past
/// the last block read as zeros).
pub fn read_range<R: BlockReader + ?Sized>(
    reader: &mut R,
    dnode: &Dnode,
    offset: u64,
    buf: &mut [u8],
) -> Result<()> {
    let bs = u64::from(dnode.block_size.max(512));
    let mut done = 0usize;
    while done < buf.len() {
        let at = offset + done as u64;
        let blkid = at / bs;
        let within = (at % bs) as usize;
        let take = (buf.len() - done).min(bs as usize - within);
        match read_level0(reader, dnode, blkid)? {
            Some(block) => buf[done..done + take].copy_from_slice(&block[within..within + take]),
            None => buf[done..done + take].fill(0),
        }
        done += take;
    }
    Ok(())
}

/// The dnode of object `object` in the object set `os`.
pub fn read_dnode<R: BlockReader + ?Sized>(
    reader: &mut R,
    os: &ObjsetPhys,
    object: u64,
) -> Result<Dnode> {
    let meta = &os.meta_dnode;
    let per_block = u64::from(meta.block_size) / DNODE_SIZE as u64;
    if per_block == 0 {
        return Err(Error::corrupt("meta-dnode block size"));
    }
    let blkid = object / per_block;
    let Some(block) = read_level0(reader, meta, blkid)? else {
        return Err(Error::NotFound);
    };
    let at = (object % per_block) as usize * DNODE_SIZE;
    let dnode = Dnode::parse(&block[at..])?;
    if dnode.is_free() {
        return Err(Error::NotFound);
    }
    Ok(dnode)
}

/// Every entry of the ZAP object `dnode`.
pub fn zap_list<R: BlockReader + ?Sized>(
    reader: &mut R,
    dnode: &Dnode,
) -> Result<Vec<(Vec<u8>, ZapValue)>> {
    zap::read::list(&mut |blkid| zap_block(reader, dnode, blkid))
}

/// The value under `name` in the ZAP object `dnode`.
pub fn zap_lookup<R: BlockReader + ?Sized>(
    reader: &mut R,
    dnode: &Dnode,
    name: &[u8],
) -> Result<Option<ZapValue>> {
    zap::read::lookup(&mut |blkid| zap_block(reader, dnode, blkid), name)
}

/// A u64 under `name` in the ZAP object `dnode`.
pub fn zap_u64<R: BlockReader + ?Sized>(reader: &mut R, dnode: &Dnode, name: &str) -> Result<u64> {
    zap_lookup(reader, dnode, name.as_bytes())?
        .and_then(|v| v.as_u64())
        .ok_or(Error::NotFound)
}

fn zap_block<R: BlockReader + ?Sized>(
    reader: &mut R,
    dnode: &Dnode,
    blkid: u64,
) -> Result<Vec<u8>> {
    Ok(read_level0(reader, dnode, blkid)?.unwrap_or_else(|| vec![0u8; dnode.block_size as usize]))
}
