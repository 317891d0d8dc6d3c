//! Page tables: the arch describes its entry format, core walks the tree.
//!
//! Keel has one address space (kernel and app share it), so there is one
//! set of tables for the whole system. Core's generic walker
//! (`keel_core::memory::page_table`) builds and edits them through
//! [`PageTableFormat`]; the arch only encodes entries and manages TLBs.

use crate::addr::{PhysAddr, VirtAddr};

/// Access rights and memory type of a mapping. Readable is implied.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PageFlags(u8);

impl PageFlags {
    /// Readable only, not executable, normal cacheable memory.
    pub const READ: Self = Self(0);
    /// Writable.
    pub const WRITE: Self = Self(1);
    /// Executable.
    pub const EXEC: Self = Self(2);
    /// Device memory: uncached, no speculation, no merging (MMIO).
    pub const DEVICE: Self = Self(4);

    /// Flags for ordinary kernel data.
    pub const DATA: Self = Self(Self::WRITE.0);
    /// Flags for MMIO registers.
    pub const MMIO: Self = Self(Self::WRITE.0 | Self::DEVICE.0);

    /// Whether every flag in `other` is set in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
    /// Union of two flag sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
    /// `self` without the flags in `other`.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
    /// Raw bits, for host tests and reports.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl core::ops::BitOr for PageFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl core::fmt::Debug for PageFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let w = if self.contains(Self::WRITE) { 'w' } else { '-' };
        let x = if self.contains(Self::EXEC) { 'x' } else { '-' };
        let d = if self.contains(Self::DEVICE) {
            " device"
        } else {
            ""
        };
        write!(f, "r{w}{x}{d}")
    }
}

/// A decoded page-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Nothing mapped here.
    Invalid,
    /// Points at the next-level table.
    Table(PhysAddr),
    /// Maps a page (or a large page/block at upper levels).
    Leaf(PhysAddr, PageFlags),
}

/// The shape of an arch's page tables and the encoding of their entries.
///
/// Level 0 is the root. Entries are 64-bit words exactly as stored in
/// memory (so a big-endian format swaps bytes in `encode`/`decode`).
pub trait PageTableFormat {
    /// Number of levels.
    fn levels() -> usize;
    /// log2 of the smallest page size.
    fn page_shift() -> u32;

    /// How many virtual-address bits index the table at `level`.
    fn index_bits(level: usize) -> u32;

    /// Whether a leaf (large page / block) may sit at `level`. The last
    /// level always holds leaves.
    fn leaf_allowed(level: usize) -> bool;

    /// Encode an entry.
    fn encode(entry: Entry, level: usize) -> u64;

    /// Decode an entry.
    fn decode(raw: u64, level: usize) -> Entry;

    /// Size in bytes of a table at `level` (the root may be larger than 4 KiB).
    fn table_bytes(level: usize) -> usize {
        8 << Self::index_bits(level)
    }

    /// Bytes one entry at `level` covers.
    fn entry_span(level: usize) -> u64 {
        let mut shift = Self::page_shift();
        let mut l = Self::levels() - 1;
        while l > level {
            shift += Self::index_bits(l);
            l -= 1;
        }
        1u64 << shift
    }

    /// Index into the table at `level` for `va`.
    fn index(va: VirtAddr, level: usize) -> usize {
        let span_shift = Self::entry_span(level).trailing_zeros();
        (va.0 as u64 >> span_shift) as usize & ((1usize << Self::index_bits(level)) - 1)
    }
}

/// The arch's memory-management unit as core sees it.
pub trait Paging {
    /// This arch's table format.
    type Format: PageTableFormat;

    /// Virtual address where all physical memory is mapped one-to-one
    /// (the direct map), so `pa` is reachable at `PHYS_MAP_BASE + pa`.
    const PHYS_MAP_BASE: usize;

    /// Kernel virtual range core may use for thread stacks (with guard
    /// pages) and other fine-grained kernel mappings.
    const KERNEL_VMAP: (usize, usize);

    /// Lowest and highest+1 virtual address an app may use.
    const APP_RANGE: (usize, usize);

    /// Physical address of the root table that translates `va`.
    fn table_root(va: VirtAddr) -> PhysAddr;

    /// Make table updates visible to the page walker (a barrier; a no-op on x86).
    fn publish_table_update();

    /// Drop this CPU's cached translation for `va`.
    fn flush_tlb_page(va: VirtAddr);

    /// Drop all of this CPU's cached translations.
    fn flush_tlb_all();
}
