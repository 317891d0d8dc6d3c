//! The POWER9/10 radix page-table format as core's generic walker sees it.
//!
//! Four levels for 4 KiB pages: a root of 2^13 entries, then three levels
//! of 2^9, translating 52 bits of effective address. Entries are 64-bit
//! and big-endian in memory whatever the CPU's endianness, so encode and
//! decode swap bytes on this little-endian kernel. Leaves are allowed at
//! levels 1 (1 GiB) and 2 (2 MiB) as well as 3 (4 KiB).
//!
//! Entry bits (numbered from the least significant):
//! 63 valid, 62 leaf; page-directory entries hold the next table's address
//! (bits 8..59) and its size as log2(entries) (bits 0..4); leaves hold the
//! real page number (bits 12..56), reference (8) and change (7) bits,
//! attributes (4..5: 0 normal memory, 0b10 non-idempotent I/O) and access
//! authority (3 privileged, 2 read, 1 read/write, 0 execute).

use keel_hal::paging::{Entry, PageTableFormat};
use keel_hal::{PageFlags, PhysAddr};

const VALID: u64 = 1 << 63;
const LEAF: u64 = 1 << 62;
const NEXT_LEVEL_BASE: u64 = 0x0fff_ffff_ffff_ff00;
const REAL_PAGE_NUMBER: u64 = 0x01ff_ffff_ffff_f000;
const REFERENCED: u64 = 1 << 8;
const CHANGED: u64 = 1 << 7;
const NON_IDEMPOTENT_IO: u64 = 0b10 << 4;
const ATTRIBUTES: u64 = 0b11 << 4;
const PRIVILEGED: u64 = 1 << 3;
const READ: u64 = 1 << 2;
const READ_WRITE: u64 = 1 << 1;
const EXECUTE: u64 = 1 << 0;

/// log2 of the root table's entry count.
pub const ROOT_BITS: u32 = 13;

/// The radix format (4 KiB base pages).
pub struct RadixFormat;

impl PageTableFormat for RadixFormat {
    fn levels() -> usize {
        4
    }
    fn page_shift() -> u32 {
        12
    }
    fn index_bits(level: usize) -> u32 {
        if level == 0 { ROOT_BITS } else { 9 }
    }
    fn leaf_allowed(level: usize) -> bool {
        level >= 1
    }
    fn encode(entry: Entry, level: usize) -> u64 {
        let raw = match entry {
            Entry::Invalid => 0,
            Entry::Table(pa) => {
                VALID | (pa.0 & NEXT_LEVEL_BASE) | u64::from(Self::index_bits(level + 1))
            }
            Entry::Leaf(pa, flags) => leaf(pa, flags),
        };
        raw.to_be()
    }
    fn decode(raw: u64, level: usize) -> Entry {
        let raw = u64::from_be(raw);
        if raw & VALID == 0 {
            return Entry::Invalid;
        }
        if raw & LEAF == 0 {
            // The last level holds only leaves; a non-leaf there is invalid.
            if level + 1 >= Self::levels() {
                return Entry::Invalid;
            }
            return Entry::Table(PhysAddr(raw & NEXT_LEVEL_BASE));
        }
        let span = Self::entry_span(level);
        let mut flags = PageFlags::READ;
        if raw & READ_WRITE != 0 {
            flags = flags | PageFlags::WRITE;
        }
        if raw & EXECUTE != 0 {
            flags = flags | PageFlags::EXEC;
        }
        if raw & ATTRIBUTES != 0 {
            flags = flags | PageFlags::DEVICE;
        }
        Entry::Leaf(PhysAddr(raw & REAL_PAGE_NUMBER & !(span - 1)), flags)
    }
}

/// A leaf: reference and change bits preset (the MMU would otherwise
/// fault to have the OS set them), privileged (every Keel thread, app
/// included, runs in supervisor state).
fn leaf(pa: PhysAddr, flags: PageFlags) -> u64 {
    let mut raw = VALID | LEAF | (pa.0 & REAL_PAGE_NUMBER) | REFERENCED | CHANGED | PRIVILEGED;
    raw |= if flags.contains(PageFlags::WRITE) {
        READ | READ_WRITE
    } else {
        READ
    };
    if flags.contains(PageFlags::EXEC) {
        raw |= EXECUTE;
    }
    if flags.contains(PageFlags::DEVICE) {
        raw |= NON_IDEMPOTENT_IO;
    }
    raw
}

/// A process-table entry's first doubleword (big-endian) for a radix tree
/// rooted at `root` of [`ROOT_BITS`], translating `bits` of address.
pub fn process_table_entry(root: PhysAddr, bits: u32) -> u64 {
    // Radix tree size, encoded as bits - 31, split into two fields.
    let rts = u64::from(bits - 31);
    let raw = ((rts >> 3) & 0b11) << 61
        | (rts & 0b111) << 5
        | (root.0 & NEXT_LEVEL_BASE)
        | u64::from(ROOT_BITS);
    raw.to_be()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn tables_and_leaves_round_trip_big_endian() {
        let t = RadixFormat::encode(Entry::Table(PhysAddr(0x12_3000)), 0);
        assert_eq!(u64::from_be(t), VALID | 0x12_3000 | 9);
        assert_eq!(RadixFormat::decode(t, 0), Entry::Table(PhysAddr(0x12_3000)));
        for flags in [
            PageFlags::READ,
            PageFlags::DATA,
            PageFlags::EXEC,
            PageFlags::MMIO,
            PageFlags::DATA | PageFlags::EXEC,
        ] {
            let raw = RadixFormat::encode(Entry::Leaf(PhysAddr(0x4000_0000), flags), 1);
            assert_eq!(
                RadixFormat::decode(raw, 1),
                Entry::Leaf(PhysAddr(0x4000_0000), flags),
                "{flags:?}"
            );
            let native = u64::from_be(raw);
            assert_ne!(native & REFERENCED, 0);
            assert_ne!(native & CHANGED, 0);
        }
        assert_eq!(RadixFormat::decode(0, 2), Entry::Invalid);
        assert_eq!(RadixFormat::encode(Entry::Invalid, 3), 0);
        // A directory entry where only leaves may be is not followed.
        let bogus = RadixFormat::encode(Entry::Table(PhysAddr(0x5000)), 2);
        assert_eq!(RadixFormat::decode(bogus, 3), Entry::Invalid);
    }

    #[test]
    fn geometry_covers_52_bits() {
        assert_eq!(RadixFormat::entry_span(3), 4096);
        assert_eq!(RadixFormat::entry_span(2), 2 << 20);
        assert_eq!(RadixFormat::entry_span(1), 1 << 30);
        assert_eq!(RadixFormat::entry_span(0), 1 << 39);
        assert_eq!(RadixFormat::table_bytes(0), 64 * 1024);
        // Quadrant bits do not reach the root index.
        let va = keel_hal::VirtAddr(0xc008_0000_0000_0000);
        assert_eq!(RadixFormat::index(va, 0), 0x1000);
    }

    #[test]
    fn process_table_entry_encodes_a_52_bit_tree() {
        let e = u64::from_be(process_table_entry(PhysAddr(0x1_0000), 52));
        assert_eq!(e, 0x4000_0000_0001_00ad);
    }
}
