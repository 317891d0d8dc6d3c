//! ZPL changes on one filesystem: create files, directories and symlinks,
//! hard links, unlink, rmdir, rename, write, truncate and attribute
//! updates, keeping directory sizes, link counts and parents right.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use super::objset::ObjsetState;
use crate::blkptr::BlockPointer;
use crate::dnode::{Dnode, object_type};
use crate::error::{Error, Result};
use crate::objset::{ObjsetPhys, objset_type};
use crate::read::BlockReader;
use crate::read::zpl::{FileKind, MASTER_NODE, split_dirent};
use crate::sa::{self, Attributes, SaTable, Timestamp};
use crate::zap::ZapValue;

/// Largest data block of a file.
pub const MAX_BLOCK: u32 = 128 * 1024;
/// Room for attributes in a ZPL dnode (one block pointer).
const BONUS_ROOM: usize = crate::dnode::MAX_BONUS;
/// Longest name in a directory.
pub const NAME_MAX: usize = 255;

/// What to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKind<'a> {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symlink to this target.
    Symlink(&'a [u8]),
}

/// Permission bits and owner of a new object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Owner {
    /// Permission bits (`0o644`).
    pub perm: u64,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
}

/// The root filesystem as the writer sees it.
#[derive(Debug, Clone)]
pub struct ZplState {
    /// Its object set.
    pub objset: ObjsetState,
    /// Root directory object.
    pub root: u64,
    /// Blocks born at or before this txg belong to a snapshot.
    pub snapshot_txg: u64,
    sa: SaTable,
    sa_layouts: u64,
    /// Time stamp for changes.
    pub now: Timestamp,
    /// The open txg (generation numbers of new objects).
    pub txg: u64,
}

fn zpl_dnode(object_type: u8, bonus: Vec<u8>) -> Dnode {
    let mut d = Dnode::new(object_type, 512, object_type::SA, bonus);
    d.blkptrs = vec![BlockPointer::HOLE];
    d
}

fn layout_u16s(layout: &[u16]) -> ZapValue {
    ZapValue {
        int_size: 2,
        ints: layout.iter().map(|&a| u64::from(a)).collect(),
    }
}

fn symlink_layout() -> Vec<u16> {
    let mut l = sa::LAYOUT_DEFAULT.to_vec();
    l.push(sa::attr::SYMLINK);
    l
}

fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty()
        || name.len() > NAME_MAX
        || name == b"."
        || name == b".."
        || name.iter().any(|&b| b == b'/' || b == 0)
    {
        return Err(Error::InvalidName);
    }
    Ok(())
}

fn dirent_type(mode: u64) -> u64 {
    (mode >> 12) & 0xf
}

impl ZplState {
    /// A stand-in until the real state is built.
    pub fn placeholder() -> ZplState {
        ZplState {
            objset: ObjsetState::new(objset_type::ZFS, 0),
            root: 0,
            snapshot_txg: 0,
            sa: SaTable::default(),
            sa_layouts: 0,
            now: Timestamp::default(),
            txg: 0,
        }
    }

    /// A new ZPL 5 filesystem with an empty root directory.
    pub fn new_filesystem(seed: u64, now: Timestamp) -> Result<ZplState> {
        let mut objset = ObjsetState::new(objset_type::ZFS, seed);
        let mut r = NoDisk;
        let master = objset.create_zap(object_type::MASTER_NODE, 0, Vec::new());
        debug_assert_eq!(master, MASTER_NODE);
        let sa_master = objset.create_zap(object_type::SA_MASTER_NODE, 0, Vec::new());
        let layouts = objset.create_zap(object_type::SA_ATTR_LAYOUTS, 0, Vec::new());
        let registry = objset.create_zap(object_type::SA_ATTR_REGISTRATION, 0, Vec::new());
        let mut registry_entries = Vec::new();
        for (name, value) in sa::registry_entries() {
            objset.zap_set(&mut r, registry, name.as_bytes(), ZapValue::u64(value))?;
            registry_entries.push((name.as_bytes().to_vec(), ZapValue::u64(value)));
        }
        let layout_entries = vec![
            (b"2".to_vec(), layout_u16s(&sa::LAYOUT_DEFAULT)),
            (b"3".to_vec(), layout_u16s(&symlink_layout())),
            (b"4".to_vec(), layout_u16s(&[sa::attr::SYMLINK])),
        ];
        for (name, value) in &layout_entries {
            objset.zap_set(&mut r, layouts, name, value.clone())?;
        }
        objset.zap_set(&mut r, sa_master, b"LAYOUTS", ZapValue::u64(layouts))?;
        objset.zap_set(&mut r, sa_master, b"REGISTRY", ZapValue::u64(registry))?;
        let mut state = ZplState {
            objset,
            root: 0,
            snapshot_txg: super::pool::ORIGIN_TXG,
            sa: SaTable::from_zaps(&registry_entries, &layout_entries)?,
            sa_layouts: layouts,
            now,
            txg: super::pool::CREATION_TXG,
        };
        let attrs = state.new_attributes(0o040755, 0, 0, 0);
        let bonus = sa::encode_bonus(&attrs, BONUS_ROOM)?;
        let root = state
            .objset
            .create_zap_with(zpl_dnode(object_type::DIRECTORY_CONTENTS, bonus));
        state.set_attributes_raw(&mut r, root, |a| a.parent = root)?;
        state.root = root;
        let unlinked = state
            .objset
            .create_zap(object_type::UNLINKED_SET, 0, Vec::new());
        for (name, value) in [
            ("VERSION", 5),
            ("SA_ATTRS", sa_master),
            ("ROOT", root),
            ("DELETE_QUEUE", unlinked),
            ("normalization", 0),
            ("utf8only", 0),
            ("casesensitivity", 0),
        ] {
            state
                .objset
                .zap_set(&mut r, MASTER_NODE, name.as_bytes(), ZapValue::u64(value))?;
        }
        Ok(state)
    }

    /// Open the filesystem whose object set `bp` points to.
    pub fn open<R: BlockReader>(
        r: &mut R,
        bp: BlockPointer,
        seed: u64,
        snapshot_txg: u64,
    ) -> Result<ZplState> {
        let fs = crate::read::Filesystem::open(r, &bp)?;
        if fs.version != 5 {
            return Err(Error::unsupported(alloc::format!(
                "writing ZPL version {}",
                fs.version
            )));
        }
        let sa = fs
            .sa
            .clone()
            .ok_or_else(|| Error::corrupt("ZPL 5 without SA"))?;
        let expected = [
            (2u64, sa::LAYOUT_DEFAULT.to_vec()),
            (3u64, symlink_layout()),
            (4u64, vec![sa::attr::SYMLINK]),
        ];
        for (number, layout) in expected {
            if sa.layouts.get(&number).is_some_and(|l| *l != layout) {
                return Err(Error::unsupported(alloc::format!(
                    "SA layout {number} differs from Keel's"
                )));
            }
        }
        for (number, (name, _, _)) in sa::ZPL_ATTRIBUTES.iter().enumerate() {
            if sa.number(name) != Some(number as u16) {
                return Err(Error::unsupported(alloc::format!(
                    "SA attribute {name} is not number {number}"
                )));
            }
        }
        let phys: ObjsetPhys = fs.objset.clone();
        let master = crate::read::object::read_dnode(r, &phys, MASTER_NODE)?;
        let sa_master = crate::read::object::zap_u64(r, &master, "SA_ATTRS")?;
        let sa_master = crate::read::object::read_dnode(r, &phys, sa_master)?;
        let sa_layouts = crate::read::object::zap_u64(r, &sa_master, "LAYOUTS")?;
        let mut objset = ObjsetState::open(phys, bp, 1, seed);
        objset.next_object = objset.scan_next_object(r)?;
        Ok(ZplState {
            objset,
            root: fs.root,
            snapshot_txg,
            sa,
            sa_layouts,
            now: Timestamp::default(),
            txg: 0,
        })
    }

    fn new_attributes(&self, mode: u64, uid: u64, gid: u64, parent: u64) -> Attributes {
        let is_dir = mode & 0o170000 == 0o040000;
        Attributes {
            mode,
            size: if is_dir { 2 } else { 0 },
            generation: self.txg,
            uid,
            gid,
            parent,
            flags: sa::DEFAULT_FLAGS,
            atime: self.now,
            mtime: self.now,
            ctime: self.now,
            crtime: self.now,
            links: if is_dir { 2 } else { 1 },
            rdev: 0,
            symlink: None,
        }
    }

    /// Attributes of `object`.
    pub fn attributes<R: BlockReader>(&self, r: &mut R, object: u64) -> Result<Attributes> {
        let d = self.objset.dnode(r, object)?;
        match d.bonus_type {
            object_type::SA => {
                let mut values = BTreeMap::new();
                self.sa.decode(&d.bonus, &mut values)?;
                if let Some(pending) = self.objset.pending_spill(object) {
                    self.sa.decode(pending, &mut values)?;
                } else if let Some(spill) = &d.spill
                    && !spill.is_hole()
                {
                    self.sa.decode(&r.read_block(spill)?, &mut values)?;
                }
                self.sa.attributes_from(&values)
            }
            object_type::ZNODE => sa::decode_znode(&d.bonus),
            _ => Err(Error::corrupt("not a ZPL object")),
        }
    }

    pub(super) fn set_attributes_raw<R: BlockReader>(
        &mut self,
        r: &mut R,
        object: u64,
        f: impl FnOnce(&mut Attributes),
    ) -> Result<()> {
        let mut a = self.attributes(r, object)?;
        f(&mut a);
        let has_spill = self.objset.dnode(r, object)?.spill.is_some()
            || self.objset.pending_spill(object).is_some();
        self.store_attributes(r, object, &a, has_spill)
    }

    /// Write `a` into the bonus buffer, moving a long symlink target to a
    /// spill block (layout 4) when it does not fit.
    fn store_attributes<R: BlockReader>(
        &mut self,
        r: &mut R,
        object: u64,
        a: &Attributes,
        spill: bool,
    ) -> Result<()> {
        let inline = if spill {
            Err(Error::NoSpace)
        } else {
            sa::encode_bonus(a, BONUS_ROOM)
        };
        let (bonus, spill) = match (inline, &a.symlink) {
            (Ok(bonus), _) => (bonus, None),
            (Err(_), Some(target)) => {
                self.register_spill_layout(r)?;
                let mut short = a.clone();
                short.symlink = None;
                let bonus = sa::encode_bonus(&short, sa::MAX_BONUS_WITH_SPILL)?;
                (bonus, Some(sa::encode_spill_symlink(target)))
            }
            (Err(e), None) => return Err(e),
        };
        let d = self.objset.dnode_mut(r, object)?;
        d.bonus_type = object_type::SA;
        d.bonus = bonus;
        if let Some(data) = spill {
            if d.spill.is_none() {
                d.spill = Some(BlockPointer::HOLE);
            }
            self.objset.set_spill(object, data);
        }
        Ok(())
    }

    /// Make sure layout 4 (a spill holding ZPL_SYMLINK) is registered.
    fn register_spill_layout<R: BlockReader>(&mut self, r: &mut R) -> Result<()> {
        let number = u64::from(sa::LAYOUT_SPILL_SYMLINK_NUMBER);
        if self.sa.layouts.contains_key(&number) {
            return Ok(());
        }
        let layout = vec![sa::attr::SYMLINK];
        self.objset
            .zap_set(r, self.sa_layouts, b"4", layout_u16s(&layout))?;
        self.sa.layouts.insert(number, layout);
        Ok(())
    }

    /// Change attributes of `object` (ctime is set to now).
    pub fn set_attributes<R: BlockReader>(
        &mut self,
        r: &mut R,
        object: u64,
        f: impl FnOnce(&mut Attributes),
    ) -> Result<()> {
        let now = self.now;
        self.set_attributes_raw(r, object, |a| {
            f(a);
            a.ctime = now;
        })
    }

    fn require_dir<R: BlockReader>(&self, r: &mut R, dir: u64) -> Result<()> {
        if self.objset.dnode(r, dir)?.object_type != object_type::DIRECTORY_CONTENTS {
            return Err(Error::NotDirectory);
        }
        Ok(())
    }

    /// Look `name` up in `dir`: (object, type nibble).
    pub fn lookup_entry<R: BlockReader>(
        &self,
        r: &mut R,
        dir: u64,
        name: &[u8],
    ) -> Result<(u64, u8)> {
        self.require_dir(r, dir)?;
        let v = self.objset.zap_get(r, dir, name)?.ok_or(Error::NotFound)?;
        Ok(split_dirent(v.as_u64().ok_or_else(|| {
            Error::corrupt("directory entry is not a u64")
        })?))
    }

    /// Entries of `dir`: name → object.
    pub fn read_dir<R: BlockReader>(
        &self,
        r: &mut R,
        dir: u64,
    ) -> Result<Vec<(Vec<u8>, u64, FileKind)>> {
        self.require_dir(r, dir)?;
        let mut out = Vec::new();
        for (name, v) in self.objset.zap_list(r, dir)? {
            let (object, t) = split_dirent(
                v.as_u64()
                    .ok_or_else(|| Error::corrupt("directory entry is not a u64"))?,
            );
            out.push((name, object, FileKind::from_dirent_type(t)));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn add_entry<R: BlockReader>(
        &mut self,
        r: &mut R,
        dir: u64,
        name: &[u8],
        object: u64,
        mode: u64,
        is_dir: bool,
    ) -> Result<()> {
        let value = (dirent_type(mode) << 60) | object;
        self.objset.zap_set(r, dir, name, ZapValue::u64(value))?;
        let now = self.now;
        self.set_attributes_raw(r, dir, |a| {
            a.size += 1;
            if is_dir {
                a.links += 1;
            }
            a.mtime = now;
            a.ctime = now;
        })
    }

    fn remove_entry<R: BlockReader>(
        &mut self,
        r: &mut R,
        dir: u64,
        name: &[u8],
        is_dir: bool,
    ) -> Result<()> {
        if !self.objset.zap_remove(r, dir, name)? {
            return Err(Error::NotFound);
        }
        let now = self.now;
        self.set_attributes_raw(r, dir, |a| {
            a.size = a.size.saturating_sub(1).max(2);
            if is_dir {
                a.links = a.links.saturating_sub(1).max(2);
            }
            a.mtime = now;
            a.ctime = now;
        })
    }

    /// Create `name` in `dir`.
    pub fn create<R: BlockReader>(
        &mut self,
        r: &mut R,
        dir: u64,
        name: &[u8],
        kind: NewKind<'_>,
        owner: Owner,
    ) -> Result<u64> {
        let Owner { perm, uid, gid } = owner;
        check_name(name)?;
        self.require_dir(r, dir)?;
        if self.objset.zap_get(r, dir, name)?.is_some() {
            return Err(Error::Exists);
        }
        let (type_bits, object_type) = match kind {
            NewKind::File => (0o100000, object_type::PLAIN_FILE_CONTENTS),
            NewKind::Directory => (0o040000, object_type::DIRECTORY_CONTENTS),
            NewKind::Symlink(_) => (0o120000, object_type::PLAIN_FILE_CONTENTS),
        };
        let mode = type_bits | (perm & 0o7777);
        let mut attrs = self.new_attributes(mode, uid, gid, dir);
        if let NewKind::Symlink(target) = kind {
            if target.is_empty() || target.len() > 4095 {
                return Err(Error::InvalidArgument("symlink target length".into()));
            }
            attrs.size = target.len() as u64;
            attrs.symlink = Some(target.to_vec());
        }
        let placeholder = sa::encode_bonus(&self.new_attributes(mode, uid, gid, dir), BONUS_ROOM)?;
        let dnode = zpl_dnode(object_type, placeholder);
        let object = if kind == NewKind::Directory {
            self.objset.create_zap_with(dnode)
        } else {
            self.objset.create(dnode)
        };
        self.store_attributes(r, object, &attrs, false)?;
        self.add_entry(r, dir, name, object, mode, kind == NewKind::Directory)?;
        Ok(object)
    }

    /// Add a hard link `name` in `dir` to file `object`.
    pub fn link<R: BlockReader>(
        &mut self,
        r: &mut R,
        dir: u64,
        name: &[u8],
        object: u64,
    ) -> Result<()> {
        check_name(name)?;
        let a = self.attributes(r, object)?;
        if FileKind::from_mode(a.mode) == FileKind::Directory {
            return Err(Error::InvalidArgument("hard links to directories".into()));
        }
        self.require_dir(r, dir)?;
        if self.objset.zap_get(r, dir, name)?.is_some() {
            return Err(Error::Exists);
        }
        self.add_entry(r, dir, name, object, a.mode, false)?;
        self.set_attributes(r, object, |a| a.links += 1)
    }

    fn drop_link<R: BlockReader>(&mut self, r: &mut R, object: u64) -> Result<()> {
        let a = self.attributes(r, object)?;
        let is_dir = FileKind::from_mode(a.mode) == FileKind::Directory;
        if is_dir || a.links <= 1 {
            self.objset.free_object(r, object)
        } else {
            self.set_attributes(r, object, |a| a.links -= 1)
        }
    }

    /// Remove a non-directory entry.
    pub fn unlink<R: BlockReader>(&mut self, r: &mut R, dir: u64, name: &[u8]) -> Result<()> {
        let (object, _) = self.lookup_entry(r, dir, name)?;
        let a = self.attributes(r, object)?;
        if FileKind::from_mode(a.mode) == FileKind::Directory {
            return Err(Error::IsDirectory);
        }
        self.remove_entry(r, dir, name, false)?;
        self.drop_link(r, object)
    }

    /// Remove an empty directory.
    pub fn rmdir<R: BlockReader>(&mut self, r: &mut R, dir: u64, name: &[u8]) -> Result<()> {
        let (object, _) = self.lookup_entry(r, dir, name)?;
        self.require_dir(r, object)?;
        if !self.objset.zap_list(r, object)?.is_empty() {
            return Err(Error::NotEmpty);
        }
        self.remove_entry(r, dir, name, true)?;
        self.objset.free_object(r, object)
    }

    /// Move `from_dir/from` to `to_dir/to`, replacing what is there.
    pub fn rename<R: BlockReader>(
        &mut self,
        r: &mut R,
        from_dir: u64,
        from: &[u8],
        to_dir: u64,
        to: &[u8],
    ) -> Result<()> {
        check_name(to)?;
        let (object, _) = self.lookup_entry(r, from_dir, from)?;
        self.require_dir(r, to_dir)?;
        let a = self.attributes(r, object)?;
        let is_dir = FileKind::from_mode(a.mode) == FileKind::Directory;
        if is_dir {
            // Refuse to move a directory below itself.
            let mut at = to_dir;
            loop {
                if at == object {
                    return Err(Error::InvalidArgument(
                        "moving a directory into itself".into(),
                    ));
                }
                if at == self.root {
                    break;
                }
                at = self.attributes(r, at)?.parent;
            }
        }
        if let Ok((existing, _)) = self.lookup_entry(r, to_dir, to) {
            if existing == object {
                return Ok(());
            }
            let e = self.attributes(r, existing)?;
            let existing_is_dir = FileKind::from_mode(e.mode) == FileKind::Directory;
            match (is_dir, existing_is_dir) {
                (true, true) => self.rmdir(r, to_dir, to)?,
                (false, false) => self.unlink(r, to_dir, to)?,
                (true, false) => return Err(Error::NotDirectory),
                (false, true) => return Err(Error::IsDirectory),
            }
        }
        self.remove_entry(r, from_dir, from, is_dir)?;
        self.add_entry(r, to_dir, to, object, a.mode, is_dir)?;
        self.set_attributes(r, object, |a| {
            if is_dir {
                a.parent = to_dir;
            }
        })
    }
}

/// A reader for a filesystem that exists only in memory.
struct NoDisk;

impl BlockReader for NoDisk {
    fn read_block(&mut self, bp: &BlockPointer) -> Result<Vec<u8>> {
        Err(Error::corrupt(alloc::format!(
            "unexpected read of {bp} while creating a filesystem"
        )))
    }
}
