//! Turning the boot memory map into the list of free ranges: sort, merge,
//! subtract everything in use or reserved, and trim to whole pages.

use keel_hal::{MemoryKind, MemoryRegion, PhysAddr};

use super::PAGE_SIZE;

/// Maximum free ranges kept (before the heap exists, so fixed capacity).
pub const MAX_RANGES: usize = 128;

/// A fixed-capacity list of free `[start, end)` ranges, sorted.
#[derive(Clone, Debug)]
pub struct Ranges {
    items: [(u64, u64); MAX_RANGES],
    len: usize,
}

impl Ranges {
    const fn new() -> Self {
        Self {
            items: [(0, 0); MAX_RANGES],
            len: 0,
        }
    }

    /// The ranges as a slice.
    pub fn as_slice(&self) -> &[(u64, u64)] {
        &self.items[..self.len]
    }

    fn push(&mut self, range: (u64, u64)) {
        if range.0 < range.1 && self.len < MAX_RANGES {
            self.items[self.len] = range;
            self.len += 1;
        }
    }

    /// Total bytes in all ranges.
    pub fn total(&self) -> u64 {
        self.as_slice().iter().map(|(s, e)| e - s).sum()
    }
}

/// Free page-aligned ranges: `Usable` regions minus every `InUse` or
/// `Reserved` region, in address order. Page 0 is never handed out.
pub fn usable_ranges(regions: &[MemoryRegion]) -> Ranges {
    let mut free = Ranges::new();
    for r in regions.iter().filter(|r| r.kind == MemoryKind::Usable) {
        let start = r.start.align_up(PAGE_SIZE as u64).0.max(PAGE_SIZE as u64);
        let end = r.end().align_down(PAGE_SIZE as u64).0;
        free.push((start, end));
    }
    sort(&mut free);
    merge(&mut free);
    for r in regions.iter().filter(|r| r.kind != MemoryKind::Usable) {
        let hole = (
            r.start.align_down(PAGE_SIZE as u64).0,
            r.end().align_up(PAGE_SIZE as u64).0,
        );
        subtract(&mut free, hole);
    }
    free
}

/// Insertion sort: the list is short, and this keeps boot from pulling in
/// (and an emulator from translating) the general sort's much larger code.
fn sort(ranges: &mut Ranges) {
    let items = &mut ranges.items[..ranges.len];
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && items[j - 1].0 > items[j].0 {
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}

fn merge(ranges: &mut Ranges) {
    let mut out = Ranges::new();
    for &(s, e) in ranges.as_slice() {
        match out.len.checked_sub(1).map(|i| &mut out.items[i]) {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    *ranges = out;
}

fn subtract(ranges: &mut Ranges, (hs, he): (u64, u64)) {
    let mut out = Ranges::new();
    for &(s, e) in ranges.as_slice() {
        if he <= s || hs >= e {
            out.push((s, e));
        } else {
            out.push((s, hs.max(s)));
            out.push((he.min(e), e));
        }
    }
    *ranges = out;
}

/// Convenience for building regions in tests and platforms.
pub const fn region(start: u64, len: u64, kind: MemoryKind) -> MemoryRegion {
    MemoryRegion {
        start: PhysAddr(start),
        len,
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MemoryKind::*;

    #[test]
    fn subtracts_in_use_and_reserved_and_aligns() {
        let regions = [
            region(0, 0x9fc00, Usable),
            region(0x100000, 0x7ef0000, Usable),
            region(0x100000, 0x200123, InUse), // kernel image, unaligned end
            region(0x4000000, 0x1000, Reserved), // a hole in the middle
        ];
        let free = usable_ranges(&regions);
        assert_eq!(
            free.as_slice(),
            &[
                (0x1000, 0x9f000),
                (0x301000, 0x4000000),
                (0x4001000, 0x7ff0000)
            ]
        );
    }

    #[test]
    fn merges_overlapping_usable_and_sorts() {
        let regions = [
            region(0x200000, 0x100000, Usable),
            region(0x100000, 0x180000, Usable),
        ];
        assert_eq!(usable_ranges(&regions).as_slice(), &[(0x100000, 0x300000)]);
    }

    #[test]
    fn in_use_covering_everything_leaves_nothing() {
        let regions = [
            region(0x100000, 0x100000, Usable),
            region(0, 0x1000_0000, InUse),
        ];
        assert_eq!(usable_ranges(&regions).total(), 0);
    }
}
