//! Block pointers (`blkptr_t`, 128 bytes): up to three DVAs (copies), sizes,
//! checksum and compression, type, level, birth txg, fill count and the
//! checksum of the block; or, when embedded, up to 112 bytes of data.

use core::fmt;

use crate::bytes::u64_at;
use crate::checksum::{Checksum, ChecksumKind};
use crate::compress::CompressKind;
use crate::error::{Error, Result};

/// Size of a block pointer on disk.
pub const BLKPTR_SIZE: usize = 128;
/// Sector shift that DVA offsets and sizes count in.
pub const SECTOR_SHIFT: u32 = 9;
/// Largest payload of an embedded block pointer.
pub const EMBEDDED_PAYLOAD_MAX: usize = 112;

/// One data virtual address: which vdev, where, how much space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dva {
    /// Top-level vdev index.
    pub vdev: u32,
    /// Byte offset from the start of the allocatable area (after the
    /// first two labels and the boot block).
    pub offset: u64,
    /// Allocated bytes (a multiple of the vdev's sector size).
    pub asize: u64,
    /// Whether this points to a gang block header.
    pub gang: bool,
}

impl Dva {
    /// Decode from the two words.
    pub fn from_words(w0: u64, w1: u64) -> Dva {
        Dva {
            vdev: (w0 >> 32) as u32,
            asize: (w0 & 0xff_ffff) << SECTOR_SHIFT,
            gang: w1 >> 63 != 0,
            offset: (w1 & !(1 << 63)) << SECTOR_SHIFT,
        }
    }

    /// Encode as two words.
    pub fn to_words(self) -> (u64, u64) {
        let w0 = (u64::from(self.vdev) << 32) | ((self.asize >> SECTOR_SHIFT) & 0xff_ffff);
        let w1 = (u64::from(self.gang) << 63) | (self.offset >> SECTOR_SHIFT);
        (w0, w1)
    }

    /// Whether this DVA is unused.
    pub fn is_empty(self) -> bool {
        self.to_words() == (0, 0)
    }
}

/// A block pointer, kept as its sixteen raw words so it round-trips
/// exactly; accessors decode the fields.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockPointer {
    /// The raw little-endian words.
    pub words: [u64; 16],
}

const PROP: usize = 6;
const PHYS_BIRTH: usize = 9;
const BIRTH: usize = 10;
const FILL: usize = 11;
const CKSUM: usize = 12;

impl BlockPointer {
    /// A hole: all zeros.
    pub const HOLE: BlockPointer = BlockPointer { words: [0; 16] };

    /// Decode from 128 bytes.
    pub fn parse(buf: &[u8]) -> Result<BlockPointer> {
        let mut words = [0u64; 16];
        for (i, w) in words.iter_mut().enumerate() {
            *w = u64_at(buf, i * 8)?;
        }
        Ok(BlockPointer { words })
    }

    /// Encode into 128 bytes.
    pub fn write_to(&self, buf: &mut [u8]) {
        for (i, w) in self.words.iter().enumerate() {
            buf[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
    }

    /// Encode as an array.
    pub fn to_bytes(&self) -> [u8; BLKPTR_SIZE] {
        let mut b = [0u8; BLKPTR_SIZE];
        self.write_to(&mut b);
        b
    }

    fn prop_bits(&self, shift: u32, bits: u32) -> u64 {
        (self.words[PROP] >> shift) & ((1u64 << bits) - 1)
    }

    fn set_prop_bits(&mut self, shift: u32, bits: u32, value: u64) {
        let mask = ((1u64 << bits) - 1) << shift;
        self.words[PROP] = (self.words[PROP] & !mask) | ((value << shift) & mask);
    }

    /// Whether the block's data lives in the pointer itself.
    pub fn is_embedded(&self) -> bool {
        self.prop_bits(39, 1) != 0
    }

    /// Whether this points to nothing (a hole in an object).
    pub fn is_hole(&self) -> bool {
        !self.is_embedded() && self.dva(0).is_empty()
    }

    /// DVA number `i` (0..3).
    pub fn dva(&self, i: usize) -> Dva {
        Dva::from_words(self.words[2 * i], self.words[2 * i + 1])
    }

    /// Replace DVA number `i`.
    pub fn set_dva(&mut self, i: usize, dva: Dva) {
        let (w0, w1) = dva.to_words();
        self.words[2 * i] = w0;
        self.words[2 * i + 1] = w1;
    }

    /// Logical (uncompressed) size in bytes.
    pub fn lsize(&self) -> u64 {
        if self.is_embedded() {
            self.prop_bits(0, 25) + 1
        } else {
            (self.prop_bits(0, 16) + 1) << SECTOR_SHIFT
        }
    }

    /// Physical (stored) size in bytes.
    pub fn psize(&self) -> u64 {
        if self.is_embedded() {
            self.prop_bits(25, 7) + 1
        } else {
            (self.prop_bits(16, 16) + 1) << SECTOR_SHIFT
        }
    }

    /// Set both sizes (multiples of 512, at most 16 MiB).
    pub fn set_sizes(&mut self, lsize: u64, psize: u64) {
        self.set_prop_bits(0, 16, (lsize >> SECTOR_SHIFT) - 1);
        self.set_prop_bits(16, 16, (psize >> SECTOR_SHIFT) - 1);
    }

    /// Compression algorithm number.
    pub fn compress_raw(&self) -> u8 {
        self.prop_bits(32, 7) as u8
    }

    /// Compression algorithm.
    pub fn compress(&self) -> Result<CompressKind> {
        CompressKind::from_u8(self.compress_raw()).ok_or_else(|| {
            Error::unsupported(alloc::format!("compression {}", self.compress_raw()))
        })
    }

    /// Set the compression algorithm.
    pub fn set_compress(&mut self, kind: CompressKind) {
        self.set_prop_bits(32, 7, kind as u64);
    }

    /// Checksum algorithm number (for embedded pointers: the embedded type).
    pub fn checksum_raw(&self) -> u8 {
        self.prop_bits(40, 8) as u8
    }

    /// Checksum algorithm.
    pub fn checksum_kind(&self) -> Result<ChecksumKind> {
        ChecksumKind::from_u8(self.checksum_raw())
            .ok_or_else(|| Error::unsupported(alloc::format!("checksum {}", self.checksum_raw())))
    }

    /// Set the checksum algorithm.
    pub fn set_checksum_kind(&mut self, kind: ChecksumKind) {
        self.set_prop_bits(40, 8, kind as u64);
    }

    /// DMU object type of the block.
    pub fn object_type(&self) -> u8 {
        self.prop_bits(48, 8) as u8
    }

    /// Set the DMU object type.
    pub fn set_object_type(&mut self, t: u8) {
        self.set_prop_bits(48, 8, u64::from(t));
    }

    /// Indirection level (0 = data).
    pub fn level(&self) -> u8 {
        self.prop_bits(56, 5) as u8
    }

    /// Set the indirection level.
    pub fn set_level(&mut self, level: u8) {
        self.set_prop_bits(56, 5, u64::from(level));
    }

    /// Whether the block is in little-endian byte order.
    pub fn little_endian(&self) -> bool {
        self.prop_bits(63, 1) != 0
    }

    /// Mark the block little-endian.
    pub fn set_little_endian(&mut self) {
        self.set_prop_bits(63, 1, 1);
    }

    /// Whether the block is deduplicated.
    pub fn dedup(&self) -> bool {
        self.prop_bits(62, 1) != 0
    }

    /// Whether the block is encrypted.
    pub fn encrypted(&self) -> bool {
        self.prop_bits(61, 1) != 0
    }

    /// Transaction group the block was written in.
    pub fn birth(&self) -> u64 {
        self.words[BIRTH]
    }

    /// Physical birth txg (0 means the same as [`BlockPointer::birth`]).
    pub fn physical_birth(&self) -> u64 {
        self.words[PHYS_BIRTH]
    }

    /// Set the birth txg (physical birth equal, stored as 0).
    pub fn set_birth(&mut self, txg: u64) {
        self.words[BIRTH] = txg;
        self.words[PHYS_BIRTH] = 0;
    }

    /// Number of non-hole level-0 blocks (or allocated dnodes) beneath.
    pub fn fill(&self) -> u64 {
        if self.is_embedded() {
            1
        } else {
            self.words[FILL]
        }
    }

    /// Set the fill count.
    pub fn set_fill(&mut self, fill: u64) {
        self.words[FILL] = fill;
    }

    /// The checksum of the physical block.
    pub fn checksum(&self) -> Checksum {
        [
            self.words[CKSUM],
            self.words[CKSUM + 1],
            self.words[CKSUM + 2],
            self.words[CKSUM + 3],
        ]
    }

    /// Set the checksum.
    pub fn set_checksum(&mut self, c: Checksum) {
        self.words[CKSUM..CKSUM + 4].copy_from_slice(&c);
    }

    /// Total allocated bytes over all DVAs.
    pub fn allocated(&self) -> u64 {
        if self.is_embedded() {
            return 0;
        }
        (0..3).map(|i| self.dva(i).asize).sum()
    }

    /// The embedded payload (compressed form), for embedded pointers.
    pub fn embedded_payload(&self) -> Result<alloc::vec::Vec<u8>> {
        let etype = self.checksum_raw();
        if etype != 0 {
            return Err(Error::unsupported(alloc::format!(
                "embedded block pointer type {etype}"
            )));
        }
        let psize = self.psize() as usize;
        if psize > EMBEDDED_PAYLOAD_MAX {
            return Err(Error::corrupt("embedded payload larger than 112 bytes"));
        }
        let mut bytes = alloc::vec::Vec::with_capacity(EMBEDDED_PAYLOAD_MAX);
        for (i, w) in self.words.iter().enumerate() {
            // Every word but the properties and the birth txg carries payload.
            if i != PROP && i != BIRTH {
                bytes.extend_from_slice(&w.to_le_bytes());
            }
        }
        bytes.truncate(psize);
        Ok(bytes)
    }

    /// Build an embedded pointer holding `payload` (at most 112 bytes)
    /// that expands to `lsize` bytes with `compress`.
    pub fn embedded(payload: &[u8], lsize: u64, compress: CompressKind) -> BlockPointer {
        let mut bp = BlockPointer::HOLE;
        let mut padded = [0u8; EMBEDDED_PAYLOAD_MAX];
        padded[..payload.len()].copy_from_slice(payload);
        let mut chunks = padded.chunks_exact(8);
        for i in 0..16 {
            if i == PROP || i == BIRTH {
                continue;
            }
            if let Some(c) = chunks.next() {
                bp.words[i] = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            }
        }
        bp.set_prop_bits(39, 1, 1);
        bp.set_prop_bits(0, 25, lsize - 1);
        bp.set_prop_bits(25, 7, payload.len() as u64 - 1);
        bp.set_compress(compress);
        bp.set_little_endian();
        bp
    }
}

impl fmt::Debug for BlockPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for BlockPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_hole() {
            return write!(f, "<hole>");
        }
        if self.is_embedded() {
            return write!(
                f,
                "<embedded lsize={:#x} psize={:#x} birth={}>",
                self.lsize(),
                self.psize(),
                self.birth()
            );
        }
        write!(f, "<")?;
        for i in 0..3 {
            let d = self.dva(i);
            if !d.is_empty() {
                write!(f, "DVA[{i}]={}:{:#x}:{:#x} ", d.vdev, d.offset, d.asize)?;
            }
        }
        let c = self.checksum();
        write!(
            f,
            "type={} level={} lsize={:#x} psize={:#x} cksum={} comp={} birth={} fill={} sum={:x}:{:x}:{:x}:{:x}>",
            self.object_type(),
            self.level(),
            self.lsize(),
            self.psize(),
            self.checksum_raw(),
            self.compress_raw(),
            self.birth(),
            self.fill(),
            c[0],
            c[1],
            c[2],
            c[3]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut bp = BlockPointer::HOLE;
        assert!(bp.is_hole());
        bp.set_dva(
            0,
            Dva {
                vdev: 0,
                offset: 0x40_0000,
                asize: 0x2_0000,
                gang: false,
            },
        );
        bp.set_sizes(0x2_0000, 0x1_0000);
        bp.set_checksum_kind(ChecksumKind::Fletcher4);
        bp.set_compress(CompressKind::Lzjb);
        bp.set_object_type(19);
        bp.set_level(2);
        bp.set_little_endian();
        bp.set_birth(42);
        bp.set_fill(7);
        let again = BlockPointer::parse(&bp.to_bytes()).unwrap();
        assert_eq!(again, bp);
        assert!(!again.is_hole());
        assert_eq!(again.dva(0).offset, 0x40_0000);
        assert_eq!(again.dva(0).asize, 0x2_0000);
        assert_eq!(again.lsize(), 0x2_0000);
        assert_eq!(again.psize(), 0x1_0000);
        assert_eq!(again.checksum_kind().unwrap(), ChecksumKind::Fletcher4);
        assert_eq!(again.compress().unwrap(), CompressKind::Lzjb);
        assert_eq!(
            (
                again.object_type(),
                again.level(),
                again.birth(),
                again.fill()
            ),
            (19, 2, 42, 7)
        );
        assert!(again.little_endian());
    }

    #[test]
    fn embedded_payload_round_trips() {
        let payload: alloc::vec::Vec<u8> = (0..100u8).collect();
        let bp = BlockPointer::embedded(&payload, 512, CompressKind::Lzjb);
        assert!(bp.is_embedded() && !bp.is_hole());
        assert_eq!(bp.lsize(), 512);
        assert_eq!(bp.psize(), 100);
        assert_eq!(bp.embedded_payload().unwrap(), payload);
    }
}
