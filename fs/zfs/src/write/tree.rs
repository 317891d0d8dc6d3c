//! Rewriting an object's block tree copy-on-write: new level-0 blocks are
//! written, every indirect block on their paths is rewritten, replaced
//! blocks are freed, and the tree grows levels when the object grows.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use super::io::Io;
use crate::blkptr::{BLKPTR_SIZE, BlockPointer};
use crate::device::BlockDevice;
use crate::dnode::{DNODE_SIZE, Dnode, object_type};
use crate::error::{Error, Result};
use crate::read::BlockReader;

/// Pending changes to an object's level-0 blocks.
#[derive(Debug, Default)]
pub struct Changes {
    /// New contents (`None`: make a hole).
    pub blocks: BTreeMap<u64, Option<Vec<u8>>>,
    /// Every block from here on not in `blocks` becomes a hole.
    pub clear_from: Option<u64>,
}

impl Changes {
    fn touches(&self, lo: u64, hi: u64) -> bool {
        self.blocks.range(lo..hi).next().is_some() || self.clear_from.is_some_and(|c| c < hi)
    }
}

/// A node of the tree before the update.
enum Node {
    /// A block pointer from disk (or a hole).
    Disk(BlockPointer),
    /// A new indirect level above the old top: its children.
    Grown(Vec<Node>),
}

struct Shape {
    object_type: u8,
    indirect_shift: u8,
    per: u64,
}

/// Fill count of a level-0 block: allocated dnodes for dnode blocks, else 1.
fn level0_fill(object_type: u8, data: &[u8]) -> u64 {
    if object_type == object_type::DNODE {
        data.chunks(DNODE_SIZE).filter(|d| d[0] != 0).count() as u64
    } else {
        1
    }
}

/// Levels needed for level-0 block ids up to `max_blkid`.
pub fn levels_for(max_blkid: u64, nblkptr: u64, per: u64) -> u8 {
    let mut levels = 1u8;
    let mut capacity = nblkptr;
    while capacity <= max_blkid {
        capacity = capacity.saturating_mul(per);
        levels += 1;
    }
    levels
}

/// Apply `changes` to `dnode`'s tree. Its block pointers, level count and
/// `used` are updated; `max_blkid` is the caller's.
pub fn update<D: BlockDevice>(
    io: &mut Io<'_, D>,
    dnode: &mut Dnode,
    changes: &Changes,
) -> Result<()> {
    let nblkptr = dnode.blkptrs.len() as u64;
    let per = dnode.pointers_per_indirect();
    let highest = changes
        .blocks
        .keys()
        .next_back()
        .copied()
        .unwrap_or(0)
        .max(dnode.max_blkid);
    let needed = levels_for(highest, nblkptr, per).max(dnode.levels);
    if needed > 12 {
        return Err(Error::InvalidArgument("object too large".into()));
    }
    let mut top: Vec<Node> = dnode.blkptrs.iter().map(|bp| Node::Disk(*bp)).collect();
    let mut levels = dnode.levels;
    while levels < needed {
        let mut children: Vec<Node> = core::mem::take(&mut top);
        children.resize_with(per as usize, || Node::Disk(BlockPointer::HOLE));
        top.push(Node::Grown(children));
        top.resize_with(nblkptr as usize, || Node::Disk(BlockPointer::HOLE));
        levels += 1;
    }
    let shape = Shape {
        object_type: dnode.object_type,
        indirect_shift: dnode.indirect_shift,
        per,
    };
    let before = io.delta.allocated;
    for (i, node) in top.into_iter().enumerate() {
        dnode.blkptrs[i] = update_node(io, &shape, levels - 1, i as u64, node, changes)?;
    }
    dnode.levels = levels;
    dnode.used = (dnode.used as i64 + io.delta.allocated - before).max(0) as u64;
    Ok(())
}

fn update_node<D: BlockDevice>(
    io: &mut Io<'_, D>,
    shape: &Shape,
    level: u8,
    index: u64,
    node: Node,
    changes: &Changes,
) -> Result<BlockPointer> {
    let span = shape.per.saturating_pow(u32::from(level));
    let lo = index.saturating_mul(span);
    let hi = lo.saturating_add(span);
    let old = match node {
        Node::Disk(bp) => {
            if !changes.touches(lo, hi)
                || (bp.is_hole() && changes.blocks.range(lo..hi).next().is_none())
            {
                return Ok(bp);
            }
            bp
        }
        Node::Grown(children) => {
            return rewrite_indirect(io, shape, level, index, children, None, changes);
        }
    };
    if level == 0 {
        return match changes.blocks.get(&lo) {
            Some(Some(data)) => {
                let fill = level0_fill(shape.object_type, data);
                io.write_block(data, shape.object_type, 0, fill, &old)
            }
            _ => {
                io.free(&old)?;
                Ok(BlockPointer::HOLE)
            }
        };
    }
    let children = if old.is_hole() {
        (0..shape.per)
            .map(|_| Node::Disk(BlockPointer::HOLE))
            .collect()
    } else {
        if old.level() != level {
            return Err(Error::corrupt(alloc::format!(
                "indirect block at the wrong level: {old}"
            )));
        }
        let block = io.read_block(&old)?;
        let mut children = Vec::with_capacity(shape.per as usize);
        for i in 0..shape.per as usize {
            let slice = block
                .get(i * BLKPTR_SIZE..(i + 1) * BLKPTR_SIZE)
                .ok_or_else(|| Error::corrupt("indirect block shorter than its pointers"))?;
            children.push(Node::Disk(BlockPointer::parse(slice)?));
        }
        children
    };
    rewrite_indirect(io, shape, level, index, children, Some(old), changes)
}

fn rewrite_indirect<D: BlockDevice>(
    io: &mut Io<'_, D>,
    shape: &Shape,
    level: u8,
    index: u64,
    children: Vec<Node>,
    old: Option<BlockPointer>,
    changes: &Changes,
) -> Result<BlockPointer> {
    let mut content = vec![0u8; 1usize << shape.indirect_shift];
    let mut fill = 0u64;
    let mut any = false;
    for (i, child) in children.into_iter().enumerate() {
        let bp = update_node(
            io,
            shape,
            level - 1,
            index * shape.per + i as u64,
            child,
            changes,
        )?;
        if !bp.is_hole() {
            any = true;
            fill += bp.fill();
            bp.write_to(&mut content[i * BLKPTR_SIZE..(i + 1) * BLKPTR_SIZE]);
        }
    }
    let old = old.unwrap_or(BlockPointer::HOLE);
    if !any {
        io.free(&old)?;
        return Ok(BlockPointer::HOLE);
    }
    io.write_block(&content, shape.object_type, level, fill, &old)
}

/// Free every block of a tree (an object being deleted).
pub fn free_all<D: BlockDevice>(io: &mut Io<'_, D>, dnode: &Dnode) -> Result<()> {
    for bp in &dnode.blkptrs {
        free_subtree(io, bp)?;
    }
    if let Some(spill) = &dnode.spill {
        io.free(spill)?;
    }
    Ok(())
}

fn free_subtree<D: BlockDevice>(io: &mut Io<'_, D>, bp: &BlockPointer) -> Result<()> {
    if bp.is_hole() || bp.is_embedded() {
        return Ok(());
    }
    if bp.level() > 0 {
        let block = io.read_block(bp)?;
        for chunk in block.chunks_exact(BLKPTR_SIZE) {
            free_subtree(io, &BlockPointer::parse(chunk)?)?;
        }
    }
    io.free(bp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_counts() {
        assert_eq!(levels_for(0, 1, 1024), 1);
        assert_eq!(levels_for(1, 1, 1024), 2);
        assert_eq!(levels_for(1023, 1, 1024), 2);
        assert_eq!(levels_for(1024, 1, 1024), 3);
        assert_eq!(levels_for(2, 3, 1024), 1);
        assert_eq!(levels_for(3, 3, 1024), 2);
    }
}
