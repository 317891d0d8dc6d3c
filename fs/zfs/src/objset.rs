//! Object sets (`objset_phys_t`): the meta-dnode (whose data is the array
//! of every object's dnode), the ZIL header, the type, and the user and
//! group accounting dnodes.

use alloc::vec;
use alloc::vec::Vec;

use crate::bytes::{put_u64, u64_at};
use crate::dnode::{DNODE_SIZE, Dnode};
use crate::error::Result;

/// Object set size written for pools without the project-quota feature.
pub const OBJSET_SIZE: usize = 2048;
const ZIL_HEADER_AT: usize = DNODE_SIZE;
const ZIL_HEADER_SIZE: usize = 192;
const TYPE_AT: usize = ZIL_HEADER_AT + ZIL_HEADER_SIZE;
const FLAGS_AT: usize = TYPE_AT + 8;
// The user and group accounting dnodes (1024, 1536) are left empty.

/// Object set types (`dmu_objset_type_t`).
pub mod objset_type {
    /// The meta object set.
    pub const META: u64 = 1;
    /// A ZPL filesystem.
    pub const ZFS: u64 = 2;
    /// A volume.
    pub const ZVOL: u64 = 3;
}

/// A decoded object set block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjsetPhys {
    /// Dnode of object 0, whose data holds every other dnode.
    pub meta_dnode: Dnode,
    /// The ZIL header, kept raw (this crate never writes a log).
    pub zil_header: Vec<u8>,
    /// [`objset_type`].
    pub objset_type: u64,
    /// `os_flags`.
    pub flags: u64,
}

impl ObjsetPhys {
    /// Decode (blocks shorter than 2048 bytes are version-1 object sets).
    pub fn parse(buf: &[u8]) -> Result<ObjsetPhys> {
        Ok(ObjsetPhys {
            meta_dnode: Dnode::parse(&buf[..DNODE_SIZE.min(buf.len())])?,
            zil_header: buf
                .get(ZIL_HEADER_AT..ZIL_HEADER_AT + ZIL_HEADER_SIZE)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            objset_type: u64_at(buf, TYPE_AT)?,
            flags: u64_at(buf, FLAGS_AT).unwrap_or(0),
        })
    }

    /// Encode as a 2048-byte block (empty accounting dnodes).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut b = vec![0u8; OBJSET_SIZE];
        b[..DNODE_SIZE].copy_from_slice(&self.meta_dnode.to_bytes()?);
        if self.zil_header.len() == ZIL_HEADER_SIZE {
            b[ZIL_HEADER_AT..TYPE_AT].copy_from_slice(&self.zil_header);
        }
        put_u64(&mut b, TYPE_AT, self.objset_type);
        put_u64(&mut b, FLAGS_AT, self.flags);
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnode::object_type;

    #[test]
    fn round_trips() {
        let os = ObjsetPhys {
            meta_dnode: Dnode::new(object_type::DNODE, 16384, 0, Vec::new()),
            zil_header: vec![0; ZIL_HEADER_SIZE],
            objset_type: objset_type::ZFS,
            flags: 0,
        };
        let bytes = os.to_bytes().unwrap();
        assert_eq!(bytes.len(), OBJSET_SIZE);
        assert_eq!(ObjsetPhys::parse(&bytes).unwrap(), os);
    }
}
