//! Block checksums: fletcher2, fletcher4, SHA-256, and the embedded
//! "label" checksum that vdev labels and uberblocks carry in their tail.

use sha2::{Digest, Sha256};

use crate::bytes::{put_u64, u64_at};
use crate::error::{Error, Result};

/// A 256-bit checksum as ZFS stores it: four native-endian words.
pub type Checksum = [u64; 4];

/// Checksum algorithms by their on-disk number (`enum zio_checksum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumKind {
    /// Inherit from the parent (never on disk in a block pointer).
    Inherit = 0,
    /// The pool default (fletcher4 in modern pools).
    On = 1,
    /// No checksum.
    Off = 2,
    /// Embedded SHA-256 with the block's offset as verifier (labels).
    Label = 3,
    /// Embedded SHA-256 for gang headers.
    GangHeader = 4,
    /// Embedded fletcher2 for the old ZIL.
    Zilog = 5,
    /// Fletcher2 (pool versions before fletcher4 became the default).
    Fletcher2 = 6,
    /// Fletcher4, the default.
    Fletcher4 = 7,
    /// SHA-256.
    Sha256 = 8,
    /// Embedded fletcher4 for the ZIL.
    Zilog2 = 9,
    /// No parity (raidz use only).
    NoParity = 10,
    /// SHA-512/256 (feature).
    Sha512 = 11,
    /// Skein (feature).
    Skein = 12,
    /// Edon-R (feature).
    Edonr = 13,
    /// BLAKE3 (feature).
    Blake3 = 14,
}

impl ChecksumKind {
    /// Decode the on-disk number.
    pub fn from_u8(v: u8) -> Option<ChecksumKind> {
        use ChecksumKind::*;
        Some(match v {
            0 => Inherit,
            1 => On,
            2 => Off,
            3 => Label,
            4 => GangHeader,
            5 => Zilog,
            6 => Fletcher2,
            7 => Fletcher4,
            8 => Sha256,
            9 => Zilog2,
            10 => NoParity,
            11 => Sha512,
            12 => Skein,
            13 => Edonr,
            14 => Blake3,
            _ => return None,
        })
    }
}

/// Fletcher2 over 64-bit words, two lanes (the data is a multiple of 16 bytes).
pub fn fletcher2(data: &[u8]) -> Checksum {
    let (mut a0, mut a1, mut b0, mut b1) = (0u64, 0u64, 0u64, 0u64);
    for pair in data.chunks_exact(16) {
        let w0 = u64::from_le_bytes(pair[0..8].try_into().unwrap_or([0; 8]));
        let w1 = u64::from_le_bytes(pair[8..16].try_into().unwrap_or([0; 8]));
        a0 = a0.wrapping_add(w0);
        a1 = a1.wrapping_add(w1);
        b0 = b0.wrapping_add(a0);
        b1 = b1.wrapping_add(a1);
    }
    [a0, a1, b0, b1]
}

/// Fletcher4 over 32-bit words with 64-bit running sums.
pub fn fletcher4(data: &[u8]) -> Checksum {
    let (mut a, mut b, mut c, mut d) = (0u64, 0u64, 0u64, 0u64);
    for word in data.chunks_exact(4) {
        let w = u64::from(u32::from_le_bytes(word.try_into().unwrap_or([0; 4])));
        a = a.wrapping_add(w);
        b = b.wrapping_add(a);
        c = c.wrapping_add(b);
        d = d.wrapping_add(c);
    }
    [a, b, c, d]
}

/// SHA-256, its digest read as four big-endian words (ZFS's convention).
pub fn sha256(data: &[u8]) -> Checksum {
    let digest = Sha256::digest(data);
    let mut words = [0u64; 4];
    for (i, w) in words.iter_mut().enumerate() {
        *w = u64::from_be_bytes(digest[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    }
    words
}

/// Compute the checksum `kind` of `data`, or say why not.
pub fn compute(kind: ChecksumKind, data: &[u8]) -> Result<Checksum> {
    match kind {
        ChecksumKind::Fletcher2 => Ok(fletcher2(data)),
        ChecksumKind::Fletcher4 | ChecksumKind::On => Ok(fletcher4(data)),
        ChecksumKind::Sha256 => Ok(sha256(data)),
        ChecksumKind::Off => Ok([0; 4]),
        other => Err(Error::unsupported(alloc::format!(
            "checksum algorithm {other:?}"
        ))),
    }
}

/// Magic number of the embedded checksum trailer (`zio_eck_t`).
pub const EMBEDDED_MAGIC: u64 = 0x0210_da7a_b10c_7a11;
/// Size of the trailer: magic plus a 256-bit checksum.
pub const EMBEDDED_TRAILER: usize = 40;

/// Verify a block with an embedded SHA-256 trailer whose verifier is the
/// block's byte offset on the device (labels, uberblocks, boot header).
pub fn verify_embedded(block: &[u8], device_offset: u64) -> Result<()> {
    if block.len() < EMBEDDED_TRAILER {
        return Err(Error::corrupt("label block too small"));
    }
    let tail = block.len() - EMBEDDED_TRAILER;
    let magic = u64_at(block, tail)?;
    if magic != EMBEDDED_MAGIC {
        if magic == EMBEDDED_MAGIC.swap_bytes() {
            return Err(Error::unsupported("big-endian pool"));
        }
        return Err(Error::corrupt("label checksum trailer has no magic"));
    }
    let mut stored = [0u64; 4];
    for (i, w) in stored.iter_mut().enumerate() {
        *w = u64_at(block, tail + 8 + i * 8)?;
    }
    let mut copy = alloc::vec::Vec::from(block);
    put_u64(&mut copy, tail + 8, device_offset);
    for i in 1..4 {
        put_u64(&mut copy, tail + 8 + i * 8, 0);
    }
    if sha256(&copy) != stored {
        return Err(Error::corrupt(alloc::format!(
            "label checksum mismatch at offset {device_offset:#x}"
        )));
    }
    Ok(())
}

/// Fill in the embedded SHA-256 trailer of `block` for `device_offset`.
pub fn seal_embedded(block: &mut [u8], device_offset: u64) {
    let tail = block.len() - EMBEDDED_TRAILER;
    put_u64(block, tail, EMBEDDED_MAGIC);
    put_u64(block, tail + 8, device_offset);
    for i in 1..4 {
        put_u64(block, tail + 8 + i * 8, 0);
    }
    let sum = sha256(block);
    for (i, w) in sum.iter().enumerate() {
        put_u64(block, tail + 8 + i * 8, *w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fletcher4_of_known_words() {
        // Words 1, 2: a = 3, b = 1 + 3 = 4, c = 1 + 4 = 5, d = 1 + 5 = 6.
        let data = [1u8, 0, 0, 0, 2, 0, 0, 0];
        assert_eq!(fletcher4(&data), [3, 4, 5, 6]);
    }

    #[test]
    fn fletcher2_runs_two_lanes() {
        let mut data = [0u8; 32];
        data[0] = 1; // lane 0 word 0
        data[8] = 2; // lane 1 word 0
        data[16] = 3; // lane 0 word 1
        assert_eq!(fletcher2(&data), [4, 2, 5, 4]);
    }

    #[test]
    fn sha256_words_are_big_endian_digest_chunks() {
        // SHA-256("") = e3b0c442 98fc1c14 ...
        assert_eq!(sha256(b"")[0], 0xe3b0_c442_98fc_1c14);
    }

    #[test]
    fn embedded_checksum_round_trips_and_catches_flips() {
        let mut block = alloc::vec![7u8; 4096];
        seal_embedded(&mut block, 0x2_0000);
        assert!(verify_embedded(&block, 0x2_0000).is_ok());
        assert!(verify_embedded(&block, 0x3_0000).is_err());
        block[100] ^= 1;
        assert!(verify_embedded(&block, 0x2_0000).is_err());
    }
}
