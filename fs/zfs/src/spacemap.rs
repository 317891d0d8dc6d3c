//! Space maps: per-metaslab logs of allocated and freed ranges. This crate
//! writes one-word entries (no spacemap_v2 feature) and reads all kinds.

use alloc::vec::Vec;

use crate::bytes::{put_u64, u64_at};
use crate::error::{Error, Result};

/// Bonus size of a space map without histogram (pools without features).
pub const HEADER_SIZE_V0: usize = 24;
/// Longest run of one one-word entry, in units of the map's shift.
pub const MAX_RUN_UNITS: u64 = 1 << 15;

/// Whether an entry allocates or frees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// The range became allocated.
    Alloc,
    /// The range became free.
    Free,
}

/// One decoded entry: byte offset relative to the metaslab, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Alloc or free.
    pub kind: EntryKind,
    /// Offset from the metaslab start, in bytes.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
}

/// `space_map_phys_t` (the first 24 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpaceMapHeader {
    /// Object number of the space map itself.
    pub object: u64,
    /// Bytes of entries.
    pub length: u64,
    /// Net allocated bytes.
    pub alloc: i64,
}

impl SpaceMapHeader {
    /// Decode a bonus.
    pub fn parse(bonus: &[u8]) -> Result<SpaceMapHeader> {
        Ok(SpaceMapHeader {
            object: u64_at(bonus, 0)?,
            length: u64_at(bonus, 8)?,
            alloc: u64_at(bonus, 16)? as i64,
        })
    }

    /// Encode as a version-0 bonus.
    pub fn to_bytes(self) -> Vec<u8> {
        let mut b = alloc::vec![0u8; HEADER_SIZE_V0];
        put_u64(&mut b, 0, self.object);
        put_u64(&mut b, 8, self.length);
        put_u64(&mut b, 16, self.alloc as u64);
        b
    }
}

/// Append one-word entries for `kind` over `[offset, offset + length)`
/// (bytes, relative to the metaslab; multiples of `1 << shift`).
pub fn encode(out: &mut Vec<u64>, kind: EntryKind, offset: u64, length: u64, shift: u32) {
    let mut unit = offset >> shift;
    let mut left = length >> shift;
    while left > 0 {
        let run = left.min(MAX_RUN_UNITS);
        let kind_bit = u64::from(kind == EntryKind::Free);
        out.push((unit << 16) | (kind_bit << 15) | (run - 1));
        unit += run;
        left -= run;
    }
}

/// Decode `length` bytes of entries.
pub fn decode(data: &[u8], shift: u32) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 8 <= data.len() {
        let w = u64_at(data, i)?;
        i += 8;
        match w >> 62 {
            2 => continue, // debug entry
            3 => {
                let w2 = u64_at(data, i)?;
                i += 8;
                let run = ((w >> 24) & ((1 << 36) - 1)) + 1;
                out.push(Entry {
                    kind: if w2 >> 63 != 0 {
                        EntryKind::Free
                    } else {
                        EntryKind::Alloc
                    },
                    offset: (w2 & !(1 << 63)) << shift,
                    length: run << shift,
                });
            }
            _ => out.push(Entry {
                kind: if (w >> 15) & 1 != 0 {
                    EntryKind::Free
                } else {
                    EntryKind::Alloc
                },
                offset: ((w >> 16) & ((1 << 47) - 1)) << shift,
                length: ((w & 0x7fff) + 1) << shift,
            }),
        }
    }
    if i != data.len() {
        return Err(Error::corrupt("space map length is not whole entries"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_runs_split_and_decode() {
        let mut words = Vec::new();
        encode(&mut words, EntryKind::Alloc, 4096, 4096 * 40_000, 12);
        encode(&mut words, EntryKind::Free, 8192, 4096, 12);
        assert_eq!(words.len(), 3);
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let entries = decode(&bytes, 12).unwrap();
        assert_eq!(entries[0].offset, 4096);
        assert_eq!(entries[0].length + entries[1].length, 4096 * 40_000);
        assert_eq!(
            entries[2],
            Entry {
                kind: EntryKind::Free,
                offset: 8192,
                length: 4096
            }
        );
    }
}
