//! ZPL filesystems: the master node, directories (ZAPs of name → type and
//! object), attributes (SA or legacy znode), file data and symlinks, and
//! path resolution with symlinks followed.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::BlockReader;
use super::object::{read_dnode, read_range, zap_list, zap_lookup, zap_u64};
use crate::blkptr::BlockPointer;
use crate::dnode::{Dnode, object_type};
use crate::error::{Error, Result};
use crate::objset::{ObjsetPhys, objset_type};
use crate::sa::{self, Attributes, SaTable};

/// Object number of the ZPL master node.
pub const MASTER_NODE: u64 = 1;
/// Longest symlink target read from a data block (Linux's PATH_MAX is 4096).
pub const MAX_SYMLINK: u64 = 64 * 1024;
/// Most symlinks followed while resolving one path.
pub const MAX_SYMLINKS: usize = 40;

/// File types, from the mode's type bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Regular file.
    File,
    /// Directory.
    Directory,
    /// Symbolic link.
    Symlink,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Named pipe.
    Fifo,
    /// Socket.
    Socket,
    /// Anything else.
    Unknown,
}

impl FileKind {
    /// From `st_mode`'s type bits.
    pub fn from_mode(mode: u64) -> FileKind {
        Self::from_dirent_type(((mode >> 12) & 0xf) as u8)
    }

    /// From a directory entry's type nibble (`DT_*`).
    pub fn from_dirent_type(t: u8) -> FileKind {
        match t {
            8 => FileKind::File,
            4 => FileKind::Directory,
            10 => FileKind::Symlink,
            2 => FileKind::CharDevice,
            6 => FileKind::BlockDevice,
            1 => FileKind::Fifo,
            12 => FileKind::Socket,
            _ => FileKind::Unknown,
        }
    }
}

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Name (not necessarily UTF-8).
    pub name: Vec<u8>,
    /// Object number.
    pub object: u64,
    /// Type recorded in the entry.
    pub kind: FileKind,
}

/// What `stat` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Object number (the inode number).
    pub object: u64,
    /// Type.
    pub kind: FileKind,
    /// All attributes.
    pub attributes: Attributes,
    /// Data block size.
    pub block_size: u32,
    /// Bytes allocated on disk.
    pub allocated: u64,
}

/// Split a directory entry value into (object, type nibble).
pub fn split_dirent(value: u64) -> (u64, u8) {
    (value & ((1 << 48) - 1), (value >> 60) as u8)
}

/// An open ZPL filesystem (one dataset's object set).
#[derive(Debug, Clone)]
pub struct Filesystem {
    /// The object set.
    pub objset: ObjsetPhys,
    /// ZPL version (5 with SA, 4 and below legacy znodes).
    pub version: u64,
    /// Root directory object.
    pub root: u64,
    /// SA registry and layouts (ZPL 5).
    pub sa: Option<SaTable>,
}

impl Filesystem {
    /// Open the filesystem whose object set `bp` points to.
    pub fn open<R: BlockReader + ?Sized>(reader: &mut R, bp: &BlockPointer) -> Result<Filesystem> {
        if bp.is_hole() {
            return Err(Error::corrupt("dataset has no object set"));
        }
        let objset = ObjsetPhys::parse(&reader.read_block(bp)?)?;
        Self::from_objset(reader, objset)
    }

    /// Open from an already read object set.
    pub fn from_objset<R: BlockReader + ?Sized>(
        reader: &mut R,
        objset: ObjsetPhys,
    ) -> Result<Filesystem> {
        if objset.objset_type != objset_type::ZFS {
            return Err(Error::unsupported(alloc::format!(
                "object set type {} is not a filesystem",
                objset.objset_type
            )));
        }
        let master = read_dnode(reader, &objset, MASTER_NODE)?;
        let version = zap_u64(reader, &master, "VERSION")?;
        if !(1..=5).contains(&version) {
            return Err(Error::unsupported(alloc::format!("ZPL version {version}")));
        }
        let root = zap_u64(reader, &master, "ROOT")?;
        let sa = if version >= 5 {
            let sa_object = zap_u64(reader, &master, "SA_ATTRS")?;
            let sa_master = read_dnode(reader, &objset, sa_object)?;
            let registry_object = zap_u64(reader, &sa_master, "REGISTRY")?;
            let layouts_object = zap_u64(reader, &sa_master, "LAYOUTS")?;
            let registry = read_dnode(reader, &objset, registry_object)?;
            let layouts = read_dnode(reader, &objset, layouts_object)?;
            let registry = zap_list(reader, &registry)?;
            let layouts = zap_list(reader, &layouts)?;
            Some(SaTable::from_zaps(&registry, &layouts)?)
        } else {
            None
        };
        Ok(Filesystem {
            objset,
            version,
            root,
            sa,
        })
    }

    /// The dnode of `object`.
    pub fn dnode<R: BlockReader + ?Sized>(&self, reader: &mut R, object: u64) -> Result<Dnode> {
        read_dnode(reader, &self.objset, object)
    }

    /// Attributes of an object whose dnode is already loaded.
    pub fn attributes_of<R: BlockReader + ?Sized>(
        &self,
        reader: &mut R,
        dnode: &Dnode,
    ) -> Result<Attributes> {
        match dnode.bonus_type {
            object_type::SA => {
                let table = self
                    .sa
                    .as_ref()
                    .ok_or_else(|| Error::corrupt("SA bonus in a filesystem without SA"))?;
                let mut values = BTreeMap::new();
                table.decode(&dnode.bonus, &mut values)?;
                if let Some(spill) = &dnode.spill
                    && !spill.is_hole()
                {
                    let block = reader.read_block(spill)?;
                    table.decode(&block, &mut values)?;
                }
                table.attributes_from(&values)
            }
            object_type::ZNODE => sa::decode_znode(&dnode.bonus),
            other => Err(Error::corrupt(alloc::format!(
                "bonus type {other} is not a ZPL object"
            ))),
        }
    }

    /// `stat` an object.
    pub fn stat<R: BlockReader + ?Sized>(&self, reader: &mut R, object: u64) -> Result<Stat> {
        let dnode = self.dnode(reader, object)?;
        let attributes = self.attributes_of(reader, &dnode)?;
        Ok(Stat {
            object,
            kind: FileKind::from_mode(attributes.mode),
            attributes,
            block_size: dnode.block_size,
            allocated: dnode.used,
        })
    }

    /// Entries of directory `dir` ("." and ".." are not stored).
    pub fn read_dir<R: BlockReader + ?Sized>(
        &self,
        reader: &mut R,
        dir: u64,
    ) -> Result<Vec<DirEntry>> {
        let dnode = self.dnode(reader, dir)?;
        if dnode.object_type != object_type::DIRECTORY_CONTENTS {
            return Err(Error::NotDirectory);
        }
        let mut out = Vec::new();
        for (name, value) in zap_list(reader, &dnode)? {
            let v = value
                .as_u64()
                .ok_or_else(|| Error::corrupt("directory entry is not a u64"))?;
            let (object, t) = split_dirent(v);
            out.push(DirEntry {
                name,
                object,
                kind: FileKind::from_dirent_type(t),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Look `name` up in directory `dir`.
    pub fn lookup<R: BlockReader + ?Sized>(
        &self,
        reader: &mut R,
        dir: u64,
        name: &[u8],
    ) -> Result<u64> {
        let dnode = self.dnode(reader, dir)?;
        if dnode.object_type != object_type::DIRECTORY_CONTENTS {
            return Err(Error::NotDirectory);
        }
        if name == b"." {
            return Ok(dir);
        }
        if name == b".." {
            return Ok(self.attributes_of(reader, &dnode)?.parent);
        }
        let value = zap_lookup(reader, &dnode, name)?.ok_or(Error::NotFound)?;
        let v = value
            .as_u64()
            .ok_or_else(|| Error::corrupt("directory entry is not a u64"))?;
        Ok(split_dirent(v).0)
    }

    /// Resolve an absolute or root-relative path to an object. Symlinks
    /// in the middle are always followed; the last one only when asked.
    pub fn resolve<R: BlockReader + ?Sized>(
        &self,
        reader: &mut R,
        path: &str,
        follow_last: bool,
    ) -> Result<u64> {
        let mut pending: Vec<Vec<u8>> = path
            .split('/')
            .filter(|p| !p.is_empty())
            .rev()
            .map(|p| p.as_bytes().to_vec())
            .collect();
        let mut current = self.root;
        let mut followed = 0;
        while let Some(part) = pending.pop() {
            let next = if part == b".." && current == self.root {
                self.root
            } else {
                self.lookup(reader, current, &part)?
            };
            let is_last = pending.is_empty();
            let stat = self.stat(reader, next)?;
            if stat.kind == FileKind::Symlink && (!is_last || follow_last) {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(Error::SymlinkLoop);
                }
                let target = self.read_link(reader, next)?;
                if target.first() == Some(&b'/') {
                    current = self.root;
                }
                for p in target.split(|&b| b == b'/').filter(|p| !p.is_empty()).rev() {
                    pending.push(p.to_vec());
                }
                continue;
            }
            current = next;
        }
        Ok(current)
    }

    /// Read up to `buf.len()` bytes of file `object` from `offset`;
    /// returns how many (0 at or past the end).
    pub fn read<R: BlockReader + ?Sized>(
        &self,
        reader: &mut R,
        object: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let dnode = self.dnode(reader, object)?;
        let attributes = self.attributes_of(reader, &dnode)?;
        if FileKind::from_mode(attributes.mode) == FileKind::Directory {
            return Err(Error::IsDirectory);
        }
        if offset >= attributes.size {
            return Ok(0);
        }
        let n = buf.len().min((attributes.size - offset) as usize);
        read_range(reader, &dnode, offset, &mut buf[..n])?;
        Ok(n)
    }

    /// The whole contents of file `object`.
    pub fn read_all<R: BlockReader + ?Sized>(
        &self,
        reader: &mut R,
        object: u64,
    ) -> Result<Vec<u8>> {
        let size = self.stat(reader, object)?.attributes.size;
        let mut buf = vec![0u8; size as usize];
        let n = self.read(reader, object, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// The target of symlink `object`.
    pub fn read_link<R: BlockReader + ?Sized>(
        &self,
        reader: &mut R,
        object: u64,
    ) -> Result<Vec<u8>> {
        let dnode = self.dnode(reader, object)?;
        let attributes = self.attributes_of(reader, &dnode)?;
        if FileKind::from_mode(attributes.mode) != FileKind::Symlink {
            return Err(Error::InvalidArgument("not a symlink".into()));
        }
        if let Some(target) = attributes.symlink {
            return Ok(target);
        }
        if attributes.size > MAX_SYMLINK {
            return Err(Error::corrupt(alloc::format!(
                "symlink {object} claims a {}-byte target",
                attributes.size
            )));
        }
        let mut buf = vec![0u8; attributes.size as usize];
        read_range(reader, &dnode, 0, &mut buf)?;
        Ok(buf)
    }

    /// A name for error messages.
    pub fn describe(&self) -> String {
        alloc::format!("ZPL {} filesystem, root object {}", self.version, self.root)
    }
}
