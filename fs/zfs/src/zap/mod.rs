//! ZAP objects: ZFS's on-disk hash maps from names to integer arrays.
//! A microzap is one block of fixed 64-byte entries (names up to 49 bytes,
//! one u64 each); a fatzap is a header block, a pointer table and leaf
//! blocks of 24-byte chunks. [`read`] looks up and lists both; [`build`]
//! encodes a full entry set as either.

pub mod build;
pub mod fat;
pub mod read;

use alloc::vec::Vec;

/// Block type of a fatzap leaf.
pub const BLOCK_LEAF: u64 = 1 << 63;
/// Block type of a fatzap header.
pub const BLOCK_HEADER: u64 = (1 << 63) + 1;
/// Block type of a microzap.
pub const BLOCK_MICRO: u64 = (1 << 63) + 3;
/// Fatzap header magic.
pub const ZAP_MAGIC: u64 = 0x2_f52a_b2ab;
/// Fatzap leaf magic.
pub const LEAF_MAGIC: u32 = 0x2ab_1eaf;
/// Size of a microzap entry.
pub const MICRO_ENTRY: usize = 64;
/// Longest microzap name, without its NUL.
pub const MICRO_NAME_MAX: usize = 49;
/// Largest microzap block.
pub const MICRO_MAX_BLOCK: usize = 128 * 1024;
/// Longest key accepted (ZAP_MAXNAMELEN includes the NUL).
pub const NAME_MAX: usize = 255;

/// A value: an array of integers of one width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZapValue {
    /// Bytes per integer: 1, 2, 4 or 8.
    pub int_size: u8,
    /// The integers.
    pub ints: Vec<u64>,
}

impl ZapValue {
    /// A single u64 (directory entries, object numbers).
    pub fn u64(v: u64) -> ZapValue {
        ZapValue {
            int_size: 8,
            ints: alloc::vec![v],
        }
    }

    /// A byte string (property values): NUL-terminated as ZFS stores them.
    pub fn string(s: &str) -> ZapValue {
        let mut ints: Vec<u64> = s.bytes().map(u64::from).collect();
        ints.push(0);
        ZapValue { int_size: 1, ints }
    }

    /// The value as one u64, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        (self.int_size == 8 && self.ints.len() == 1).then(|| self.ints[0])
    }

    /// Length in bytes.
    pub fn byte_len(&self) -> usize {
        usize::from(self.int_size) * self.ints.len()
    }
}

/// The 64-bit ZAP hash of a name: CRC-64 (ECMA, reflected) seeded with
/// the object's salt, keeping the top 28 bits.
pub fn hash(salt: u64, name: &[u8]) -> u64 {
    const POLY: u64 = 0xC96C_5795_D787_0F42;
    let mut crc = salt;
    for &b in name {
        let mut x = (crc ^ u64::from(b)) & 0xff;
        for _ in 0..8 {
            x = if x & 1 != 0 { (x >> 1) ^ POLY } else { x >> 1 };
        }
        crc = (crc >> 8) ^ x;
    }
    crc & !((1u64 << (64 - 28)) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_keeps_28_high_bits_and_depends_on_salt() {
        let a = hash(1, b"hello");
        assert_eq!(a & ((1 << 36) - 1), 0);
        assert_ne!(a, hash(2, b"hello"));
        assert_ne!(a, hash(1, b"hellp"));
    }
}
