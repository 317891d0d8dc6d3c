//! Space allocation: metaslabs with their free ranges, this txg's
//! allocations and frees (what the space maps record), and frees held
//! back for two txgs so older uberblocks stay usable.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::error::{Error, Result};

/// Txgs a freed range waits before it can be allocated again.
pub const DEFER_TXGS: u64 = 2;

/// A set of disjoint, non-adjacent byte ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: BTreeMap<u64, u64>, // start → end (exclusive)
}

impl RangeSet {
    /// An empty set.
    pub fn new() -> RangeSet {
        RangeSet::default()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Total bytes in the set.
    pub fn total(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| e - s).sum()
    }

    /// The ranges, in order, as (start, end).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }

    /// Whether any byte of `[start, end)` is in the set.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        if let Some((_, &e)) = self.ranges.range(..end).next_back() {
            return e > start;
        }
        false
    }

    /// Whether all of `[start, end)` is in the set.
    pub fn contains(&self, start: u64, end: u64) -> bool {
        matches!(self.ranges.range(..=start).next_back(), Some((_, &e)) if e >= end)
    }

    /// Add `[start, end)`, merging neighbours.
    pub fn insert(&mut self, mut start: u64, mut end: u64) {
        if start >= end {
            return;
        }
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
            self.ranges.remove(&s);
        }
        while let Some((&s, &e)) = self.ranges.range(start..=end).next() {
            end = end.max(e);
            self.ranges.remove(&s);
        }
        self.ranges.insert(start, end);
    }

    /// Remove `[start, end)`, splitting ranges.
    pub fn remove(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let mut touched = Vec::new();
        if let Some((&s, &e)) = self.ranges.range(..start).next_back()
            && e > start
        {
            touched.push((s, e));
        }
        for (&s, &e) in self.ranges.range(start..end) {
            touched.push((s, e));
        }
        for (s, e) in touched {
            self.ranges.remove(&s);
            if s < start {
                self.ranges.insert(s, start);
            }
            if e > end {
                self.ranges.insert(end, e);
            }
        }
    }

    /// First `len` bytes at or after `from` whose start is `align`-aligned.
    pub fn find(&self, from: u64, len: u64, align: u64) -> Option<u64> {
        let candidates = self
            .ranges
            .range(..from)
            .next_back()
            .filter(|(_, e)| **e > from)
            .map(|(s, e)| (*s, *e))
            .into_iter()
            .chain(self.ranges.range(from..).map(|(s, e)| (*s, *e)));
        for (s, e) in candidates {
            let at = crate::bytes::round_up(s.max(from), align);
            if at + len <= e {
                return Some(at);
            }
        }
        None
    }
}

/// One metaslab: a fixed slice of the vdev with its own space map.
#[derive(Debug, Clone, Default)]
pub struct Metaslab {
    /// First byte (offset in the allocatable area).
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// Space that may be allocated now.
    pub free: RangeSet,
    /// Space allocated in the open txg.
    pub txg_allocs: RangeSet,
    /// Space freed in the open txg (recorded now, reusable later).
    pub txg_frees: RangeSet,
    /// MOS object of the space map (0: none yet).
    pub space_map: u64,
    /// Committed bytes of space map entries.
    pub sm_length: u64,
    /// Committed net allocated bytes.
    pub sm_alloc: i64,
    /// Entries written for the open txg by the last sync pass.
    pub written: Vec<u64>,
}

/// All metaslabs of the vdev.
#[derive(Debug, Clone)]
pub struct Allocator {
    /// log2 of the metaslab size.
    pub shift: u32,
    /// log2 of the smallest allocation.
    pub ashift: u32,
    /// The metaslabs.
    pub metaslabs: Vec<Metaslab>,
    deferred: VecDeque<(u64, Vec<(u64, u64)>)>,
}

impl Allocator {
    /// Metaslabs covering `asize` bytes with `1 << shift` each, all free.
    pub fn new(asize: u64, shift: u32, ashift: u32) -> Allocator {
        let count = asize >> shift;
        let metaslabs = (0..count)
            .map(|i| {
                let start = i << shift;
                let mut free = RangeSet::new();
                free.insert(start, start + (1 << shift));
                Metaslab {
                    start,
                    size: 1 << shift,
                    free,
                    ..Default::default()
                }
            })
            .collect();
        Allocator {
            shift,
            ashift,
            metaslabs,
            deferred: VecDeque::new(),
        }
    }

    /// Which metaslab holds `offset`.
    pub fn metaslab_of(&self, offset: u64) -> Result<usize> {
        let i = (offset >> self.shift) as usize;
        if i >= self.metaslabs.len() {
            return Err(Error::corrupt(alloc::format!(
                "offset {offset:#x} beyond the last metaslab"
            )));
        }
        Ok(i)
    }

    /// Allocate `len` bytes (a multiple of the sector size).
    pub fn allocate(&mut self, len: u64) -> Result<u64> {
        let align = 1u64 << self.ashift;
        for m in self.metaslabs.iter_mut() {
            if let Some(at) = m.free.find(m.start, len, align) {
                m.free.remove(at, at + len);
                m.txg_allocs.insert(at, at + len);
                return Ok(at);
            }
        }
        Err(Error::NoSpace)
    }

    /// Free a range allocated in the open txg: usable again at once.
    pub fn free_now(&mut self, offset: u64, len: u64) -> Result<()> {
        let i = self.metaslab_of(offset)?;
        let m = &mut self.metaslabs[i];
        if !m.txg_allocs.contains(offset, offset + len) {
            return Err(Error::corrupt(alloc::format!(
                "freeing {len:#x} bytes at {offset:#x} that this txg did not allocate"
            )));
        }
        m.txg_allocs.remove(offset, offset + len);
        m.free.insert(offset, offset + len);
        Ok(())
    }

    /// Free a range from an earlier txg: recorded in the space map now,
    /// allocatable after [`DEFER_TXGS`] more txgs.
    pub fn free_deferred(&mut self, offset: u64, len: u64, txg: u64) -> Result<()> {
        let i = self.metaslab_of(offset)?;
        let m = &mut self.metaslabs[i];
        if m.free.overlaps(offset, offset + len) || m.txg_frees.overlaps(offset, offset + len) {
            return Err(Error::corrupt(alloc::format!(
                "double free of {len:#x} bytes at {offset:#x}"
            )));
        }
        m.txg_frees.insert(offset, offset + len);
        match self.deferred.back_mut() {
            Some((t, list)) if *t == txg => list.push((offset, len)),
            _ => self.deferred.push_back((txg, alloc::vec![(offset, len)])),
        }
        Ok(())
    }

    /// Mark `[offset, offset + len)` allocated while loading space maps.
    pub fn load_allocated(&mut self, offset: u64, len: u64) {
        if let Ok(i) = self.metaslab_of(offset) {
            self.metaslabs[i].free.remove(offset, offset + len);
        }
    }

    /// Mark space free while loading space maps.
    pub fn load_freed(&mut self, offset: u64, len: u64) {
        if let Ok(i) = self.metaslab_of(offset) {
            self.metaslabs[i].free.insert(offset, offset + len);
        }
    }

    /// Close txg `txg`: its allocations and frees are committed, and
    /// frees old enough become allocatable.
    pub fn txg_done(&mut self, txg: u64) {
        for m in &mut self.metaslabs {
            let allocated = m.txg_allocs.total() as i64;
            let freed = m.txg_frees.total() as i64;
            m.sm_alloc += allocated - freed;
            m.sm_length += (m.written.len() * 8) as u64;
            m.txg_allocs = RangeSet::new();
            m.txg_frees = RangeSet::new();
            m.written.clear();
        }
        while let Some((t, _)) = self.deferred.front() {
            if *t + DEFER_TXGS > txg {
                break;
            }
            if let Some((_, list)) = self.deferred.pop_front() {
                for (offset, len) in list {
                    if let Ok(i) = self.metaslab_of(offset) {
                        self.metaslabs[i].free.insert(offset, offset + len);
                    }
                }
            }
        }
    }

    /// Bytes that can still be allocated.
    pub fn free_bytes(&self) -> u64 {
        self.metaslabs.iter().map(|m| m.free.total()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_set_merges_and_splits() {
        let mut r = RangeSet::new();
        r.insert(0, 10);
        r.insert(20, 30);
        r.insert(10, 20);
        assert_eq!(r.iter().collect::<Vec<_>>(), [(0, 30)]);
        r.remove(5, 7);
        assert_eq!(r.iter().collect::<Vec<_>>(), [(0, 5), (7, 30)]);
        assert!(r.contains(7, 30) && !r.contains(4, 8));
        assert!(r.overlaps(4, 6) && !r.overlaps(5, 7));
        assert_eq!(r.find(0, 10, 4), Some(8));
        assert_eq!(r.find(0, 30, 1), None);
        r.remove(0, 100);
        assert!(r.is_empty());
    }

    #[test]
    fn frees_wait_two_txgs() {
        let mut a = Allocator::new(64 << 20, 24, 12);
        let x = a.allocate(4096).unwrap();
        a.txg_done(4);
        a.free_deferred(x, 4096, 5).unwrap();
        assert!(a.free_deferred(x, 4096, 5).is_err(), "double free caught");
        a.txg_done(5);
        a.txg_done(6);
        assert!(!a.metaslabs[0].free.contains(x, x + 4096));
        a.txg_done(7);
        assert!(a.metaslabs[0].free.contains(x, x + 4096));
    }

    #[test]
    fn same_txg_frees_are_immediate() {
        let mut a = Allocator::new(64 << 20, 24, 12);
        let x = a.allocate(8192).unwrap();
        a.free_now(x, 8192).unwrap();
        assert!(a.metaslabs[0].txg_allocs.is_empty());
        assert_eq!(a.allocate(8192).unwrap(), x);
        assert!(a.free_now(x + (1 << 20), 4096).is_err());
    }
}
