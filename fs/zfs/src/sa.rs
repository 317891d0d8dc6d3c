//! File attributes: system attributes (SA, ZPL 5) with their registry and
//! layouts, and the legacy `znode_phys_t` bonus of ZPL 4 and older.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::bytes::{put_u16, put_u32, put_u64, round_up, u16_at, u32_at, u64_at};
use crate::error::{Error, Result};
use crate::zap::ZapValue;

/// Magic at the start of every SA header.
pub const SA_MAGIC: u32 = 0x002f_505a;
/// Size of the legacy znode bonus.
pub const ZNODE_SIZE: usize = 264;

/// A time stamp: seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Timestamp {
    /// Seconds.
    pub secs: u64,
    /// Nanoseconds.
    pub nanos: u64,
}

/// The attributes of a ZPL object, however they are stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    /// Type and permission bits (`S_IFREG | 0644`).
    pub mode: u64,
    /// Size in bytes (files, symlinks) or entries + 2 (directories).
    pub size: u64,
    /// Generation (txg of creation).
    pub generation: u64,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Object number of the parent directory.
    pub parent: u64,
    /// ZFS flags (`ZFS_ACL_TRIVIAL`, …).
    pub flags: u64,
    /// Last access.
    pub atime: Timestamp,
    /// Last modification.
    pub mtime: Timestamp,
    /// Last status change.
    pub ctime: Timestamp,
    /// Creation.
    pub crtime: Timestamp,
    /// Hard links.
    pub links: u64,
    /// Device number (device nodes).
    pub rdev: u64,
    /// Symlink target stored with the attributes, if it is.
    pub symlink: Option<Vec<u8>>,
}

/// The ZPL's attributes in registry order: name, fixed length (0 =
/// variable), byteswap kind.
pub const ZPL_ATTRIBUTES: [(&str, u16, u8); 22] = [
    ("ZPL_ATIME", 16, 0),
    ("ZPL_MTIME", 16, 0),
    ("ZPL_CTIME", 16, 0),
    ("ZPL_CRTIME", 16, 0),
    ("ZPL_GEN", 8, 0),
    ("ZPL_MODE", 8, 0),
    ("ZPL_SIZE", 8, 0),
    ("ZPL_PARENT", 8, 0),
    ("ZPL_LINKS", 8, 0),
    ("ZPL_XATTR", 8, 0),
    ("ZPL_RDEV", 8, 0),
    ("ZPL_FLAGS", 8, 0),
    ("ZPL_UID", 8, 0),
    ("ZPL_GID", 8, 0),
    ("ZPL_PAD", 32, 0),
    ("ZPL_ZNODE_ACL", 88, 0),
    ("ZPL_DACL_COUNT", 8, 0),
    ("ZPL_SYMLINK", 0, 3),
    ("ZPL_SCANSTAMP", 32, 3),
    ("ZPL_DACL_ACES", 0, 4),
    ("ZPL_DXATTR", 0, 3),
    ("ZPL_PROJID", 8, 0),
];

/// Attribute numbers of the registry this crate writes.
pub mod attr {
    /// ZPL_ATIME.
    pub const ATIME: u16 = 0;
    /// ZPL_MTIME.
    pub const MTIME: u16 = 1;
    /// ZPL_CTIME.
    pub const CTIME: u16 = 2;
    /// ZPL_CRTIME.
    pub const CRTIME: u16 = 3;
    /// ZPL_GEN.
    pub const GEN: u16 = 4;
    /// ZPL_MODE.
    pub const MODE: u16 = 5;
    /// ZPL_SIZE.
    pub const SIZE: u16 = 6;
    /// ZPL_PARENT.
    pub const PARENT: u16 = 7;
    /// ZPL_LINKS.
    pub const LINKS: u16 = 8;
    /// ZPL_FLAGS.
    pub const FLAGS: u16 = 11;
    /// ZPL_UID.
    pub const UID: u16 = 12;
    /// ZPL_GID.
    pub const GID: u16 = 13;
    /// ZPL_DACL_COUNT.
    pub const DACL_COUNT: u16 = 16;
    /// ZPL_SYMLINK.
    pub const SYMLINK: u16 = 17;
    /// ZPL_DACL_ACES.
    pub const DACL_ACES: u16 = 19;
    /// ZPL_RDEV.
    pub const RDEV: u16 = 10;
}

/// The layout this crate writes for everything but symlinks (the one
/// OpenZFS uses, which loaders hard-code).
pub const LAYOUT_DEFAULT: [u16; 14] = [
    attr::MODE,
    attr::SIZE,
    attr::GEN,
    attr::UID,
    attr::GID,
    attr::PARENT,
    attr::FLAGS,
    attr::ATIME,
    attr::MTIME,
    attr::CTIME,
    attr::CRTIME,
    attr::LINKS,
    attr::DACL_COUNT,
    attr::DACL_ACES,
];
/// Layout number of [`LAYOUT_DEFAULT`].
pub const LAYOUT_DEFAULT_NUMBER: u16 = 2;
/// Layout number of the symlink layout (default plus ZPL_SYMLINK).
pub const LAYOUT_SYMLINK_NUMBER: u16 = 3;
/// Layout number of a spill block holding only ZPL_SYMLINK (long targets).
pub const LAYOUT_SPILL_SYMLINK_NUMBER: u16 = 4;
/// Bonus room left when the dnode carries a spill block pointer.
pub const MAX_BONUS_WITH_SPILL: usize = 192;

/// Encode a spill block holding a symlink target (layout 4), padded to
/// whole 512-byte sectors.
pub fn encode_spill_symlink(target: &[u8]) -> Vec<u8> {
    let len = round_up(8 + target.len() as u64, 512) as usize;
    let mut b = vec![0u8; len];
    put_u32(&mut b, 0, SA_MAGIC);
    put_u16(&mut b, 4, LAYOUT_SPILL_SYMLINK_NUMBER | (1 << 10));
    put_u16(&mut b, 6, target.len() as u16);
    b[8..8 + target.len()].copy_from_slice(target);
    b
}

/// Encode a registry entry value: number, length, byteswap kind.
pub fn registry_value(number: u16, length: u16, bswap: u8) -> u64 {
    u64::from(number) | (u64::from(bswap) << 16) | (u64::from(length) << 24)
}

/// One registered attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    /// Name (`ZPL_SIZE`).
    pub name: String,
    /// Fixed length, or 0 for variable.
    pub length: u16,
}

/// A dataset's SA registry and layouts.
#[derive(Debug, Clone, Default)]
pub struct SaTable {
    /// Attribute number → definition.
    pub attributes: BTreeMap<u16, AttributeDef>,
    /// Layout number → attribute numbers.
    pub layouts: BTreeMap<u64, Vec<u16>>,
}

impl SaTable {
    /// Build from the registry and layouts ZAP contents.
    pub fn from_zaps(
        registry: &[(Vec<u8>, ZapValue)],
        layouts: &[(Vec<u8>, ZapValue)],
    ) -> Result<SaTable> {
        let mut table = SaTable::default();
        for (name, value) in registry {
            let v = value
                .as_u64()
                .ok_or_else(|| Error::corrupt("SA registry value is not a u64"))?;
            let name = String::from_utf8_lossy(name).into_owned();
            table.attributes.insert(
                (v & 0xffff) as u16,
                AttributeDef {
                    name,
                    length: ((v >> 24) & 0xffff) as u16,
                },
            );
        }
        for (name, value) in layouts {
            let number: u64 = core::str::from_utf8(name)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Error::corrupt("SA layout key is not a number"))?;
            if value.int_size != 2 {
                return Err(Error::corrupt("SA layout is not an array of u16"));
            }
            table
                .layouts
                .insert(number, value.ints.iter().map(|&v| v as u16).collect());
        }
        Ok(table)
    }

    /// The number of the attribute called `name`.
    pub fn number(&self, name: &str) -> Option<u16> {
        self.attributes
            .iter()
            .find(|(_, d)| d.name == name)
            .map(|(n, _)| *n)
    }

    /// Decode an SA buffer (bonus or spill) into attribute number → bytes.
    pub fn decode(&self, buf: &[u8], out: &mut BTreeMap<u16, Vec<u8>>) -> Result<()> {
        if u32_at(buf, 0)? != SA_MAGIC {
            return Err(Error::corrupt("SA header without magic"));
        }
        let info = u16_at(buf, 4)?;
        let layout_number = u64::from(info & 0x3ff);
        let layout = self.layouts.get(&layout_number).ok_or_else(|| {
            Error::corrupt(alloc::format!("SA layout {layout_number} not registered"))
        })?;
        let mut variable = 0usize;
        let mut lengths = Vec::with_capacity(layout.len());
        for a in layout {
            let def = self
                .attributes
                .get(a)
                .ok_or_else(|| Error::corrupt(alloc::format!("SA attribute {a} not registered")))?;
            if def.length == 0 {
                lengths.push(usize::from(u16_at(buf, 6 + 2 * variable)?));
                variable += 1;
            } else {
                lengths.push(usize::from(def.length));
            }
        }
        let mut at = round_up((6 + 2 * variable) as u64, 8) as usize;
        for (a, len) in layout.iter().zip(lengths) {
            let bytes = buf
                .get(at..at + len)
                .ok_or_else(|| Error::corrupt("SA attributes beyond the buffer"))?;
            out.insert(*a, bytes.to_vec());
            at = round_up((at + len) as u64, 8) as usize;
        }
        Ok(())
    }

    /// Read the ZPL attributes from decoded SA values.
    pub fn attributes_from(&self, values: &BTreeMap<u16, Vec<u8>>) -> Result<Attributes> {
        let get =
            |name: &str| -> Option<&Vec<u8>> { self.number(name).and_then(|n| values.get(&n)) };
        let u64_of = |name: &str| -> Result<u64> {
            match get(name) {
                Some(b) => u64_at(b, 0),
                None => Ok(0),
            }
        };
        let time_of = |name: &str| -> Result<Timestamp> {
            match get(name) {
                Some(b) => Ok(Timestamp {
                    secs: u64_at(b, 0)?,
                    nanos: u64_at(b, 8)?,
                }),
                None => Ok(Timestamp::default()),
            }
        };
        if get("ZPL_MODE").is_none() || get("ZPL_SIZE").is_none() {
            return Err(Error::corrupt("SA without mode or size"));
        }
        Ok(Attributes {
            mode: u64_of("ZPL_MODE")?,
            size: u64_of("ZPL_SIZE")?,
            generation: u64_of("ZPL_GEN")?,
            uid: u64_of("ZPL_UID")?,
            gid: u64_of("ZPL_GID")?,
            parent: u64_of("ZPL_PARENT")?,
            flags: u64_of("ZPL_FLAGS")?,
            atime: time_of("ZPL_ATIME")?,
            mtime: time_of("ZPL_MTIME")?,
            ctime: time_of("ZPL_CTIME")?,
            crtime: time_of("ZPL_CRTIME")?,
            links: u64_of("ZPL_LINKS")?,
            rdev: u64_of("ZPL_RDEV")?,
            symlink: get("ZPL_SYMLINK").cloned(),
        })
    }
}

/// Decode a legacy `znode_phys_t` bonus (ZPL 4 and older). A short
/// symlink target follows the znode in the bonus.
pub fn decode_znode(bonus: &[u8]) -> Result<Attributes> {
    if bonus.len() < ZNODE_SIZE {
        return Err(Error::corrupt("znode bonus too short"));
    }
    let t = |at: usize| -> Result<Timestamp> {
        Ok(Timestamp {
            secs: u64_at(bonus, at)?,
            nanos: u64_at(bonus, at + 8)?,
        })
    };
    let mode = u64_at(bonus, 72)?;
    let size = u64_at(bonus, 80)?;
    let is_link = mode & 0o170000 == 0o120000;
    let inline_end = (ZNODE_SIZE as u64)
        .checked_add(size)
        .filter(|&end| end <= bonus.len() as u64);
    let symlink = match inline_end {
        Some(end) if is_link => Some(bonus[ZNODE_SIZE..end as usize].to_vec()),
        _ => None,
    };
    Ok(Attributes {
        atime: t(0)?,
        mtime: t(16)?,
        ctime: t(32)?,
        crtime: t(48)?,
        generation: u64_at(bonus, 64)?,
        mode,
        size,
        parent: u64_at(bonus, 88)?,
        links: u64_at(bonus, 96)?,
        rdev: u64_at(bonus, 112)?,
        flags: u64_at(bonus, 120)?,
        uid: u64_at(bonus, 128)?,
        gid: u64_at(bonus, 136)?,
        symlink,
    })
}

/// ZFS flags every object this crate creates carries (trivial ACL).
pub const DEFAULT_FLAGS: u64 = 0x4 | 0x40 | 0x100 | 0x0000_0008_0000_0000 | 0x0000_0400_0000_0000;

/// The three trivial ACL entries (owner@, group@, everyone@) for `mode`.
fn trivial_acl(mode: u64) -> [u8; 24] {
    const READ_DATA: u32 = 0x1;
    const WRITE_DATA: u32 = 0x2 | 0x4;
    const EXECUTE: u32 = 0x20;
    const ALWAYS: u32 = 0x8 | 0x80 | 0x2_0000 | 0x10_0000;
    const OWNER_EXTRA: u32 = 0x10 | 0x100 | 0x4_0000 | 0x8_0000;
    let who = [
        (0x1000u16, 6u32, OWNER_EXTRA),
        (0x2000 | 0x40, 3, 0),
        (0x4000, 0, 0),
    ];
    let mut out = [0u8; 24];
    for (i, (flags, shift, extra)) in who.iter().enumerate() {
        let bits = (mode >> shift) & 7;
        let mut mask = ALWAYS | extra;
        if bits & 4 != 0 {
            mask |= READ_DATA;
        }
        if bits & 2 != 0 {
            mask |= WRITE_DATA;
        }
        if bits & 1 != 0 {
            mask |= EXECUTE;
        }
        let at = i * 8;
        put_u16(&mut out, at, 0); // ACCESS_ALLOWED
        put_u16(&mut out, at + 2, *flags);
        put_u32(&mut out, at + 4, mask);
    }
    out
}

/// Encode `a` as an SA bonus in layout 2 (or 3 with a symlink target).
/// Fails when the symlink target does not fit the bonus buffer.
pub fn encode_bonus(a: &Attributes, max_bonus: usize) -> Result<Vec<u8>> {
    let header = if a.symlink.is_some() { 16 } else { 8 };
    let fixed = 8 * 7 + 16 * 4 + 8 + 8; // mode..flags, four times, links, dacl_count
    let acl = trivial_acl(a.mode);
    let link_len = a.symlink.as_ref().map_or(0, Vec::len);
    let total = header + fixed + acl.len() + link_len;
    if total > max_bonus {
        return Err(Error::InvalidArgument(alloc::format!(
            "attributes need {total} bytes of bonus, {max_bonus} available"
        )));
    }
    let mut b = vec![0u8; total];
    put_u32(&mut b, 0, SA_MAGIC);
    let layout = if a.symlink.is_some() {
        LAYOUT_SYMLINK_NUMBER
    } else {
        LAYOUT_DEFAULT_NUMBER
    };
    put_u16(&mut b, 4, layout | (((header / 8) as u16) << 10));
    put_u16(&mut b, 6, acl.len() as u16);
    if a.symlink.is_some() {
        put_u16(&mut b, 8, link_len as u16);
    }
    let mut at = header;
    for v in [
        a.mode,
        a.size,
        a.generation,
        a.uid,
        a.gid,
        a.parent,
        a.flags,
    ] {
        put_u64(&mut b, at, v);
        at += 8;
    }
    for t in [a.atime, a.mtime, a.ctime, a.crtime] {
        put_u64(&mut b, at, t.secs);
        put_u64(&mut b, at + 8, t.nanos);
        at += 16;
    }
    put_u64(&mut b, at, a.links);
    put_u64(&mut b, at + 8, 3);
    at += 16;
    b[at..at + acl.len()].copy_from_slice(&acl);
    at += acl.len();
    if let Some(link) = &a.symlink {
        b[at..at + link.len()].copy_from_slice(link);
    }
    Ok(b)
}

/// The registry entries this crate writes (name → encoded value).
pub fn registry_entries() -> Vec<(&'static str, u64)> {
    ZPL_ATTRIBUTES
        .iter()
        .enumerate()
        .map(|(i, (name, len, bswap))| (*name, registry_value(i as u16, *len, *bswap)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> SaTable {
        let registry: Vec<(Vec<u8>, ZapValue)> = registry_entries()
            .into_iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), ZapValue::u64(v)))
            .collect();
        let mut symlink_layout: Vec<u64> = LAYOUT_DEFAULT.iter().map(|&a| u64::from(a)).collect();
        let default_layout = symlink_layout.clone();
        symlink_layout.push(u64::from(attr::SYMLINK));
        let layouts = vec![
            (
                b"2".to_vec(),
                ZapValue {
                    int_size: 2,
                    ints: default_layout,
                },
            ),
            (
                b"3".to_vec(),
                ZapValue {
                    int_size: 2,
                    ints: symlink_layout,
                },
            ),
        ];
        SaTable::from_zaps(&registry, &layouts).unwrap()
    }

    #[test]
    fn bonus_round_trips_through_the_registry() {
        let a = Attributes {
            mode: 0o100644,
            size: 12345,
            generation: 4,
            uid: 1000,
            gid: 100,
            parent: 34,
            flags: DEFAULT_FLAGS,
            mtime: Timestamp {
                secs: 1_700_000_000,
                nanos: 5,
            },
            links: 2,
            ..Default::default()
        };
        let bonus = encode_bonus(&a, 320).unwrap();
        // The loaders' hard-coded offsets: size at 8, symlink at 160.
        assert_eq!(u64_at(&bonus, 8 + 8).unwrap(), 12345);
        let t = table();
        let mut values = BTreeMap::new();
        t.decode(&bonus, &mut values).unwrap();
        assert_eq!(t.attributes_from(&values).unwrap(), a);

        let link = Attributes {
            mode: 0o120777,
            size: 9,
            symlink: Some(b"hello.txt".to_vec()),
            ..a
        };
        let bonus = encode_bonus(&link, 320).unwrap();
        assert_eq!(&bonus[16 + 160..16 + 169], b"hello.txt");
        let mut values = BTreeMap::new();
        t.decode(&bonus, &mut values).unwrap();
        assert_eq!(t.attributes_from(&values).unwrap(), link);
    }

    #[test]
    fn long_symlinks_are_refused_not_truncated() {
        let link = Attributes {
            mode: 0o120777,
            symlink: Some(vec![b'x'; 200]),
            ..Default::default()
        };
        assert!(encode_bonus(&link, 320).is_err());
    }

    #[test]
    fn garbage_bonus_is_an_error() {
        let t = table();
        let mut values = BTreeMap::new();
        assert!(t.decode(&[0u8; 40], &mut values).is_err());
        let mut bonus = encode_bonus(&Attributes::default(), 320).unwrap();
        bonus[4] = 0x3f; // unknown layout
        assert!(t.decode(&bonus, &mut values).is_err());
        assert!(t.decode(&bonus[..10], &mut values).is_err());
    }
}
