//! An object set open for writing: dnodes, level-0 blocks and ZAP
//! contents changed in the open txg sit over the committed on-disk state;
//! [`ObjsetState::sync`] writes them out copy-on-write and returns the
//! new object set block pointer.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;

use super::io::Io;
use super::tree::{self, Changes};
use crate::blkptr::BlockPointer;
use crate::device::BlockDevice;
use crate::dnode::{DNODE_SIZE, DNODES_PER_BLOCK, Dnode, object_type};
use crate::error::{Error, Result};
use crate::objset::ObjsetPhys;
use crate::read::BlockReader;
use crate::read::object::{read_dnode, read_level0};
use crate::zap::{self, ZapValue};

/// A ZAP object being edited: its full contents.
#[derive(Debug, Clone)]
pub struct ZapState {
    /// Hash salt.
    pub salt: u64,
    /// Every entry.
    pub entries: BTreeMap<Vec<u8>, ZapValue>,
    /// Whether it is (or was) a fatzap.
    pub fat: bool,
}

/// The writable view of one object set.
#[derive(Debug, Clone)]
pub struct ObjsetState {
    /// The committed object set (meta-dnode and type).
    pub phys: ObjsetPhys,
    /// Block pointer of the committed object set.
    pub root_bp: BlockPointer,
    dnodes: BTreeMap<u64, Dnode>,
    dirty: BTreeSet<u64>,
    blocks: BTreeMap<(u64, u64), Vec<u8>>,
    clear_from: BTreeMap<u64, u64>,
    zaps: BTreeMap<u64, ZapState>,
    freed: BTreeMap<u64, Dnode>,
    spills: BTreeMap<u64, Vec<u8>>,
    /// Next object number to hand out.
    pub next_object: u64,
    salt_state: u64,
    /// Bytes of level-0 data waiting for the next sync.
    pub dirty_bytes: u64,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl ObjsetState {
    /// A new, empty object set of `objset_type`.
    pub fn new(objset_type: u64, seed: u64) -> ObjsetState {
        let mut meta = Dnode::new(
            object_type::DNODE,
            crate::dnode::DNODE_BLOCK_SIZE,
            0,
            Vec::new(),
        );
        meta.indirect_shift = 17;
        let phys = ObjsetPhys {
            meta_dnode: meta,
            zil_header: vec![0; 192],
            objset_type,
            flags: 0,
        };
        ObjsetState::open(phys, BlockPointer::HOLE, 1, seed)
    }

    /// Open a committed object set; new objects start at `next_object`.
    pub fn open(
        phys: ObjsetPhys,
        root_bp: BlockPointer,
        next_object: u64,
        seed: u64,
    ) -> ObjsetState {
        ObjsetState {
            phys,
            root_bp,
            dnodes: BTreeMap::new(),
            dirty: BTreeSet::new(),
            blocks: BTreeMap::new(),
            clear_from: BTreeMap::new(),
            zaps: BTreeMap::new(),
            freed: BTreeMap::new(),
            spills: BTreeMap::new(),
            next_object: next_object.max(1),
            salt_state: seed,
            dirty_bytes: 0,
        }
    }

    /// The first free object number after the highest allocated one.
    pub fn scan_next_object<R: BlockReader + ?Sized>(&self, r: &mut R) -> Result<u64> {
        let meta = &self.phys.meta_dnode;
        let mut blkid = meta.max_blkid;
        loop {
            if let Some(block) = read_level0(r, meta, blkid)? {
                for slot in (0..DNODES_PER_BLOCK).rev() {
                    if block[slot as usize * DNODE_SIZE] != 0 {
                        return Ok(blkid * DNODES_PER_BLOCK + slot + 1);
                    }
                }
            }
            if blkid == 0 {
                return Ok(1);
            }
            blkid -= 1;
        }
    }

    /// Whether anything waits to be synced.
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty() || !self.freed.is_empty()
    }

    /// A fresh random-looking 64-bit value (ZAP salts, guids).
    pub fn random(&mut self) -> u64 {
        splitmix(&mut self.salt_state) | 1
    }

    /// The dnode of `object` as of now.
    pub fn dnode<R: BlockReader + ?Sized>(&self, r: &mut R, object: u64) -> Result<Dnode> {
        if let Some(d) = self.dnodes.get(&object) {
            if d.is_free() {
                return Err(Error::NotFound);
            }
            return Ok(d.clone());
        }
        if self.freed.contains_key(&object) {
            return Err(Error::NotFound);
        }
        read_dnode(r, &self.phys, object)
    }

    /// The dnode of `object`, loaded for changing.
    pub fn dnode_mut<R: BlockReader + ?Sized>(
        &mut self,
        r: &mut R,
        object: u64,
    ) -> Result<&mut Dnode> {
        if !self.dnodes.contains_key(&object) {
            let d = self.dnode(r, object)?;
            self.dnodes.insert(object, d);
        }
        self.dirty.insert(object);
        self.dnodes
            .get_mut(&object)
            .filter(|d| !d.is_free())
            .ok_or(Error::NotFound)
    }

    /// Add a new object; returns its number.
    pub fn create(&mut self, dnode: Dnode) -> u64 {
        let object = self.next_object;
        self.next_object += 1;
        self.dnodes.insert(object, dnode);
        self.dirty.insert(object);
        object
    }

    /// Add a new ZAP object.
    pub fn create_zap(&mut self, zap_type: u8, bonus_type: u8, bonus: Vec<u8>) -> u64 {
        self.create_zap_with(Dnode::new(zap_type, 512, bonus_type, bonus))
    }

    /// Add a new, empty ZAP object with this dnode.
    pub fn create_zap_with(&mut self, dnode: Dnode) -> u64 {
        let object = self.create(dnode);
        let salt = self.random();
        self.zaps.insert(
            object,
            ZapState {
                salt,
                entries: BTreeMap::new(),
                fat: false,
            },
        );
        object
    }

    /// Delete `object` and, at sync, every block it has.
    pub fn free_object<R: BlockReader + ?Sized>(&mut self, r: &mut R, object: u64) -> Result<()> {
        self.dnode(r, object)?;
        if let Ok(committed) = read_dnode(r, &self.phys, object) {
            self.freed.insert(object, committed);
        }
        let doomed: Vec<(u64, u64)> = self
            .blocks
            .range((object, 0)..=(object, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in doomed {
            self.blocks.remove(&k);
        }
        self.clear_from.remove(&object);
        self.zaps.remove(&object);
        self.spills.remove(&object);
        self.dnodes.insert(object, Dnode::default());
        self.dirty.insert(object);
        Ok(())
    }

    /// Level-0 block `blkid` of `object` as of now (`None`: a hole).
    pub fn read_block<R: BlockReader + ?Sized>(
        &self,
        r: &mut R,
        object: u64,
        blkid: u64,
    ) -> Result<Option<Vec<u8>>> {
        if let Some(b) = self.blocks.get(&(object, blkid)) {
            return Ok(Some(b.clone()));
        }
        if self.clear_from.get(&object).is_some_and(|&c| blkid >= c) {
            return Ok(None);
        }
        if self.freed.contains_key(&object) && self.dnodes.get(&object).is_none_or(|d| d.is_free())
        {
            return Err(Error::NotFound);
        }
        let d = match self.dnodes.get(&object) {
            Some(d) => d.clone(),
            None => read_dnode(r, &self.phys, object)?,
        };
        read_level0(r, &d, blkid)
    }

    /// Give `object` a new spill block (system attributes that do not fit
    /// its bonus buffer), written at the next sync.
    pub fn set_spill(&mut self, object: u64, data: Vec<u8>) {
        self.spills.insert(object, data);
        self.dirty.insert(object);
    }

    /// The spill block of `object` changed in the open txg, if any.
    pub fn pending_spill(&self, object: u64) -> Option<&Vec<u8>> {
        self.spills.get(&object)
    }

    /// Replace level-0 block `blkid` of `object` (a full block).
    pub fn write_block(&mut self, object: u64, blkid: u64, data: Vec<u8>) {
        self.dirty_bytes += data.len() as u64;
        if let Some(old) = self.blocks.insert((object, blkid), data) {
            self.dirty_bytes -= old.len() as u64;
        }
        self.dirty.insert(object);
    }

    /// Drop every block of `object` from `blkid` on.
    pub fn clear_blocks_from(&mut self, object: u64, blkid: u64) {
        let doomed: Vec<(u64, u64)> = self
            .blocks
            .range((object, blkid)..=(object, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in doomed {
            if let Some(b) = self.blocks.remove(&k) {
                self.dirty_bytes -= b.len() as u64;
            }
        }
        let c = self.clear_from.entry(object).or_insert(blkid);
        *c = (*c).min(blkid);
        self.dirty.insert(object);
    }

    /// Load a ZAP object's entries for editing.
    pub fn zap_mut<R: BlockReader + ?Sized>(
        &mut self,
        r: &mut R,
        object: u64,
    ) -> Result<&mut ZapState> {
        if !self.zaps.contains_key(&object) {
            let first = self
                .read_block(r, object, 0)?
                .ok_or_else(|| Error::corrupt("ZAP without block 0"))?;
            let (salt, micro) = zap::read::salt_and_kind(&first)?;
            let list = zap::read::list(&mut |blkid| {
                let d = self.dnode(r, object)?;
                Ok(self
                    .read_block(r, object, blkid)?
                    .unwrap_or_else(|| vec![0u8; d.block_size as usize]))
            })?;
            self.zaps.insert(
                object,
                ZapState {
                    salt,
                    entries: list.into_iter().collect(),
                    fat: !micro,
                },
            );
        }
        self.dirty.insert(object);
        self.zaps.get_mut(&object).ok_or(Error::NotFound)
    }

    /// Look `name` up in ZAP `object`.
    pub fn zap_get<R: BlockReader + ?Sized>(
        &self,
        r: &mut R,
        object: u64,
        name: &[u8],
    ) -> Result<Option<ZapValue>> {
        if let Some(z) = self.zaps.get(&object) {
            return Ok(z.entries.get(name).cloned());
        }
        let d = self.dnode(r, object)?;
        zap::read::lookup(
            &mut |blkid| {
                Ok(self
                    .read_block(r, object, blkid)?
                    .unwrap_or_else(|| vec![0u8; d.block_size as usize]))
            },
            name,
        )
    }

    /// Every entry of ZAP `object`.
    pub fn zap_list<R: BlockReader + ?Sized>(
        &self,
        r: &mut R,
        object: u64,
    ) -> Result<Vec<(Vec<u8>, ZapValue)>> {
        if let Some(z) = self.zaps.get(&object) {
            return Ok(z
                .entries
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect());
        }
        let d = self.dnode(r, object)?;
        zap::read::list(&mut |blkid| {
            Ok(self
                .read_block(r, object, blkid)?
                .unwrap_or_else(|| vec![0u8; d.block_size as usize]))
        })
    }

    /// Set `name` in ZAP `object`.
    pub fn zap_set<R: BlockReader + ?Sized>(
        &mut self,
        r: &mut R,
        object: u64,
        name: &[u8],
        value: ZapValue,
    ) -> Result<()> {
        self.zap_mut(r, object)?
            .entries
            .insert(name.to_vec(), value);
        Ok(())
    }

    /// Remove `name` from ZAP `object`; returns whether it was there.
    pub fn zap_remove<R: BlockReader + ?Sized>(
        &mut self,
        r: &mut R,
        object: u64,
        name: &[u8],
    ) -> Result<bool> {
        Ok(self.zap_mut(r, object)?.entries.remove(name).is_some())
    }

    /// Write every change; returns the new object set block pointer.
    pub fn sync<D: BlockDevice>(&mut self, io: &mut Io<'_, D>) -> Result<BlockPointer> {
        for (_, old) in core::mem::take(&mut self.freed) {
            tree::free_all(io, &old)?;
        }
        let zaps: Vec<u64> = self
            .zaps
            .keys()
            .copied()
            .filter(|o| self.dirty.contains(o))
            .collect();
        for object in zaps {
            self.encode_zap(io, object)?;
        }
        let dirty: Vec<u64> = core::mem::take(&mut self.dirty).into_iter().collect();
        for &object in &dirty {
            self.sync_object(io, object)?;
        }
        // Place every changed dnode in its meta-dnode block.
        let mut by_block: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for &object in &dirty {
            by_block
                .entry(object / DNODES_PER_BLOCK)
                .or_default()
                .push(object);
        }
        let mut meta_changes = Changes::default();
        for (blkid, objects) in by_block {
            let mut block = read_level0(io, &self.phys.meta_dnode, blkid)?
                .unwrap_or_else(|| vec![0u8; crate::dnode::DNODE_BLOCK_SIZE as usize]);
            for object in objects {
                let d = self.dnodes.get(&object).cloned().unwrap_or_default();
                let at = (object % DNODES_PER_BLOCK) as usize * DNODE_SIZE;
                block[at..at + DNODE_SIZE].copy_from_slice(&d.to_bytes()?);
            }
            let empty = block.iter().all(|&b| b == 0);
            meta_changes.blocks.insert(blkid, (!empty).then_some(block));
            if blkid > self.phys.meta_dnode.max_blkid {
                self.phys.meta_dnode.max_blkid = blkid;
            }
        }
        let mut meta = self.phys.meta_dnode.clone();
        tree::update(io, &mut meta, &meta_changes)?;
        self.phys.meta_dnode = meta;
        let fill: u64 = self
            .phys
            .meta_dnode
            .blkptrs
            .iter()
            .map(BlockPointer::fill)
            .sum();
        let bytes = self.phys.to_bytes()?;
        let old = self.root_bp;
        self.root_bp = io.write_block(&bytes, object_type::OBJSET, 0, fill, &old)?;
        self.dnodes.clear();
        self.blocks.clear();
        self.spills.clear();
        self.clear_from.clear();
        self.dirty_bytes = 0;
        Ok(self.root_bp)
    }

    fn encode_zap<D: BlockDevice>(&mut self, io: &mut Io<'_, D>, object: u64) -> Result<()> {
        let Some(z) = self.zaps.get(&object) else {
            return Ok(());
        };
        let image = zap::build::encode(z.salt, &z.entries, !z.fat)?;
        let count = image.blocks.len() as u64;
        if let Some(z) = self.zaps.get_mut(&object) {
            z.fat = !image.micro;
        }
        let d = self.dnode_mut(io, object)?;
        let resized = d.block_size != image.block_size;
        d.block_size = image.block_size;
        d.max_blkid = count - 1;
        for (blkid, block) in image.blocks.into_iter().enumerate() {
            self.blocks.insert((object, blkid as u64), block);
        }
        // Blocks past the new end are freed; after a block size change every
        // old block had the old size, so all of them are replaced or freed.
        let from = if resized { 0 } else { count };
        let c = self.clear_from.entry(object).or_insert(from);
        *c = (*c).min(from);
        Ok(())
    }

    fn sync_object<D: BlockDevice>(&mut self, io: &mut Io<'_, D>, object: u64) -> Result<()> {
        let mut d = match self.dnodes.get(&object) {
            Some(d) => d.clone(),
            None => read_dnode(io, &self.phys, object)?,
        };
        if d.is_free() {
            return Ok(());
        }
        let mut changes = Changes {
            blocks: BTreeMap::new(),
            clear_from: self.clear_from.get(&object).copied(),
        };
        let keys: Vec<(u64, u64)> = self
            .blocks
            .range((object, 0)..=(object, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        let plain = d.object_type == object_type::PLAIN_FILE_CONTENTS;
        for k in keys {
            if let Some(data) = self.blocks.remove(&k) {
                let hole = plain && data.iter().all(|&b| b == 0);
                changes.blocks.insert(k.1, (!hole).then_some(data));
            }
        }
        tree::update(io, &mut d, &changes)?;
        if let Some(data) = self.spills.remove(&object) {
            let old = d.spill.unwrap_or(BlockPointer::HOLE);
            let bp = io.write_block(&data, object_type::SA, 0, 1, &old)?;
            d.used = (d.used + bp.allocated()).saturating_sub(old.allocated());
            d.spill = Some(bp);
        }
        self.dnodes.insert(object, d);
        Ok(())
    }
}
