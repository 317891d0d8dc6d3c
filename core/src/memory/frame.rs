//! Physical frame allocator: a binary buddy allocator over 4 KiB frames
//! that touches memory only when it is handed out.
//!
//! Each usable range keeps an untouched "wild" tail; blocks are carved from
//! it on demand. Freed blocks go to per-order doubly linked free lists whose
//! links live inside the free blocks (reached through the direct map), and
//! one state byte per frame records which frames head a free or allocated
//! block, so frees are checked and buddies merge in O(1). Nothing is written
//! at boot: booting is fast, and a VM only makes its host back the memory
//! it really uses. State bytes are trusted only below a range's wild
//! pointer. The link storage is abstracted as [`LinkStore`], so the whole
//! algorithm is tested on the host against a map instead of real memory.

use keel_hal::{PhysAddr, machine};

use super::PAGE_SIZE;
use crate::sync::SpinLock;

/// Largest block: 2^MAX_ORDER frames (1 GiB).
pub const MAX_ORDER: usize = 18;
const ORDERS: usize = MAX_ORDER + 1;
const NONE: u64 = u64::MAX;
const PAGE: u64 = PAGE_SIZE as u64;
/// Most usable ranges one allocator tracks.
const MAX_RANGES: usize = 64;

// Per-frame state byte.
const NOT_HEAD: u8 = 0xff;
const FREE_HEAD: u8 = 0x80;
const USED_HEAD: u8 = 0x40;
const ORDER_MASK: u8 = 0x1f;

/// Where the free-list links of free blocks are stored.
pub trait LinkStore {
    /// Write the (next, prev) links of the free block at `pa`.
    fn set_links(&mut self, pa: u64, next: u64, prev: u64);
    /// Read the (next, prev) links of the free block at `pa`.
    fn links(&self, pa: u64) -> (u64, u64);
}

/// Why a free was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The address is outside the managed memory or not page aligned.
    OutOfRange,
    /// The block is not allocated with that order (double free or wrong order).
    NotAllocated,
}

/// A usable range `[start, end)`; `[start, wild)` has been carved (its
/// state bytes are valid), `[wild, end)` is untouched and free.
#[derive(Clone, Copy, Debug, Default)]
struct Range {
    start: u64,
    wild: u64,
    end: u64,
}

/// A buddy allocator for frames at or above `base`, one `state` byte per frame.
pub struct Buddy<'s, L: LinkStore> {
    base: u64,
    state: &'s mut [u8],
    heads: [u64; ORDERS],
    ranges: [Range; MAX_RANGES],
    range_count: usize,
    listed_frames: usize,
    total_frames: usize,
    links: L,
}

impl<'s, L: LinkStore> Buddy<'s, L> {
    /// An allocator for frames starting at `base` (aligned to the largest
    /// block), one `state` byte per frame. The state needs no initialising;
    /// nothing is free until [`Buddy::add_range`].
    pub fn new(base: u64, state: &'s mut [u8], links: L) -> Self {
        Self {
            base,
            state,
            heads: [NONE; ORDERS],
            ranges: [Range::default(); MAX_RANGES],
            range_count: 0,
            listed_frames: 0,
            total_frames: 0,
            links,
        }
    }

    /// Hand the page-aligned range `[start, end)` to the allocator without
    /// touching it. Ranges must not overlap.
    pub fn add_range(&mut self, start: u64, end: u64) {
        let limit = self.base + self.state.len() as u64 * PAGE;
        let (start, end) = (start.max(self.base), end.min(limit));
        if start >= end || self.range_count == MAX_RANGES {
            return;
        }
        self.ranges[self.range_count] = Range {
            start,
            wild: start,
            end,
        };
        self.range_count += 1;
        self.total_frames += ((end - start) / PAGE) as usize;
    }

    /// Allocate 2^order contiguous frames aligned to their size.
    pub fn alloc(&mut self, order: usize) -> Option<PhysAddr> {
        if order > MAX_ORDER {
            return None;
        }
        let block = match (order..ORDERS).find(|&k| self.heads[k] != NONE) {
            Some(found) => {
                let block = self.heads[found];
                self.unlink(block, found);
                self.listed_frames -= 1 << found;
                let mut k = found;
                while k > order {
                    k -= 1;
                    self.push(block + (PAGE << k), k);
                    self.listed_frames += 1 << k;
                }
                block
            }
            None => self.carve(order)?,
        };
        let head = self.frame(block);
        self.state[head] = USED_HEAD | order as u8;
        Some(PhysAddr(block))
    }

    /// Take a fresh aligned block from some range's untouched tail; the
    /// alignment gap before it goes to the free lists.
    fn carve(&mut self, order: usize) -> Option<u64> {
        let size = PAGE << order;
        for i in 0..self.range_count {
            let r = self.ranges[i];
            let aligned = self.base + (r.wild - self.base).div_ceil(size) * size;
            if aligned + size > r.end {
                continue;
            }
            // Claim [wild, aligned + size): its state bytes become valid.
            let (from, to) = (self.frame(r.wild), self.frame(aligned + size));
            self.state[from..to].fill(NOT_HEAD);
            self.ranges[i].wild = aligned + size;
            let mut gap = r.wild;
            while gap < aligned {
                let mut k = order;
                while k > 0
                    && (!(gap - self.base).is_multiple_of(PAGE << k) || gap + (PAGE << k) > aligned)
                {
                    k -= 1;
                }
                self.release(gap, k);
                gap += PAGE << k;
            }
            return Some(aligned);
        }
        None
    }

    /// Free a block [`Buddy::alloc`] returned with the same `order`.
    pub fn free(&mut self, pa: PhysAddr, order: usize) -> Result<(), FreeError> {
        let pa = pa.0;
        let managed = self.ranges[..self.range_count]
            .iter()
            .any(|r| (r.start..r.end).contains(&pa));
        if !pa.is_multiple_of(PAGE) || !managed {
            return Err(FreeError::OutOfRange);
        }
        if order > MAX_ORDER
            || !self.carved(pa)
            || self.state[self.frame(pa)] != USED_HEAD | order as u8
        {
            return Err(FreeError::NotAllocated);
        }
        let idx = self.frame(pa);
        self.state[idx] = NOT_HEAD;
        self.release(pa, order);
        Ok(())
    }

    /// Frames currently free (listed or untouched).
    pub fn free_frames(&self) -> usize {
        let wild: u64 = self.ranges[..self.range_count]
            .iter()
            .map(|r| (r.end - r.wild) / PAGE)
            .sum();
        self.listed_frames + wild as usize
    }

    /// Frames ever handed to the allocator.
    pub fn total_frames(&self) -> usize {
        self.total_frames
    }

    fn frame(&self, pa: u64) -> usize {
        ((pa - self.base) / PAGE) as usize
    }

    /// Whether `pa` lies in the carved part of some range (state valid).
    fn carved(&self, pa: u64) -> bool {
        self.ranges[..self.range_count]
            .iter()
            .any(|r| (r.start..r.wild).contains(&pa))
    }

    /// Put a block on the free lists, merging with its buddy while the
    /// buddy is a free block of the same order. A block that ends where its
    /// range's untouched tail begins rejoins the tail instead.
    fn release(&mut self, mut pa: u64, mut order: usize) {
        self.listed_frames += 1 << order;
        while order < MAX_ORDER {
            let buddy = self.base + ((pa - self.base) ^ (PAGE << order));
            if !self.carved(buddy) || self.state[self.frame(buddy)] != FREE_HEAD | order as u8 {
                break;
            }
            self.unlink(buddy, order);
            pa = pa.min(buddy);
            order += 1;
        }
        if !self.return_to_wild(pa, order) {
            self.push(pa, order);
        }
    }

    /// If `[pa, pa + 2^order)` ends at its range's wild pointer, lower the
    /// pointer over it, and over any free blocks that then end there.
    fn return_to_wild(&mut self, pa: u64, order: usize) -> bool {
        let end = pa + (PAGE << order);
        let Some(i) = self.ranges[..self.range_count]
            .iter()
            .position(|r| r.wild == end && r.start <= pa)
        else {
            return false;
        };
        self.ranges[i].wild = pa;
        self.listed_frames -= 1 << order;
        // Absorb free blocks that now end at the wild pointer.
        'absorb: loop {
            let wild = self.ranges[i].wild;
            for k in 0..=MAX_ORDER {
                let size = PAGE << k;
                if wild < self.ranges[i].start + size {
                    break;
                }
                let head = wild - size;
                if (head - self.base).is_multiple_of(size)
                    && self.state[self.frame(head)] == FREE_HEAD | k as u8
                {
                    self.unlink(head, k);
                    self.listed_frames -= 1 << k;
                    self.ranges[i].wild = head;
                    continue 'absorb;
                }
            }
            return true;
        }
    }

    fn push(&mut self, pa: u64, order: usize) {
        let head = self.heads[order];
        self.links.set_links(pa, head, NONE);
        if head != NONE {
            let (next, _) = self.links.links(head);
            self.links.set_links(head, next, pa);
        }
        self.heads[order] = pa;
        let idx = self.frame(pa);
        self.state[idx] = FREE_HEAD | order as u8;
    }

    fn unlink(&mut self, pa: u64, order: usize) {
        let (next, prev) = self.links.links(pa);
        if prev == NONE {
            self.heads[order] = next;
        } else {
            let (_, pp) = self.links.links(prev);
            self.links.set_links(prev, next, pp);
        }
        if next != NONE {
            let (nn, _) = self.links.links(next);
            self.links.set_links(next, nn, prev);
        }
        let idx = self.frame(pa);
        self.state[idx] = NOT_HEAD;
    }

    /// Order of the block headed at `pa`, whether free or allocated.
    pub fn block_order(&self, pa: PhysAddr) -> Option<usize> {
        if !self.carved(pa.0) {
            return None;
        }
        let s = *self.state.get(self.frame(pa.0))?;
        (s != NOT_HEAD).then_some((s & ORDER_MASK) as usize)
    }
}

/// Links stored in the free frames themselves, through the direct map.
pub struct DirectMapLinks;

impl LinkStore for DirectMapLinks {
    fn set_links(&mut self, pa: u64, next: u64, prev: u64) {
        let p = super::phys_to_virt(PhysAddr(pa)).as_ptr::<u64>();
        // SAFETY: `pa` heads a free block the allocator owns; the direct map
        // covers all RAM and the block is at least one page long.
        unsafe {
            p.write(next);
            p.add(1).write(prev);
        }
    }
    fn links(&self, pa: u64) -> (u64, u64) {
        let p = super::phys_to_virt(PhysAddr(pa)).as_ptr::<u64>();
        // SAFETY: as in `set_links`; the links were written when the block was freed.
        unsafe { (p.read(), p.add(1).read()) }
    }
}

static FRAMES: SpinLock<Option<Buddy<'static, DirectMapLinks>>> = SpinLock::new(None);

/// Build the global allocator over `ranges`. Its state table (one byte per
/// frame between the lowest and highest free address) is carved from the
/// first range big enough to hold it.
pub fn init(ranges: &super::map::Ranges) {
    let ranges = ranges.as_slice();
    let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
        panic!("no usable memory in the boot memory map");
    };
    // Align the base so block alignment is absolute, not relative.
    let base = first.0 & !((PAGE << MAX_ORDER) - 1);
    let frames = ((last.1 - base) / PAGE) as usize;
    let table_bytes = (frames as u64).div_ceil(PAGE) * PAGE;
    let home = ranges
        .iter()
        .position(|&(s, e)| e - s >= table_bytes + PAGE)
        .expect("no free range can hold the frame table");
    let table_pa = ranges[home].0;
    let table_ptr = super::phys_to_virt(PhysAddr(table_pa)).as_ptr::<u8>();
    // SAFETY: the table lives in free RAM that is removed from the pool below
    // and never handed out; the direct map makes it addressable. Its bytes
    // are only read after the allocator wrote them.
    let state = unsafe { core::slice::from_raw_parts_mut(table_ptr, frames) };
    let mut buddy = Buddy::new(base, state, DirectMapLinks);
    for (i, &(s, e)) in ranges.iter().enumerate() {
        let s = if i == home { s + table_bytes } else { s };
        buddy.add_range(s, e);
    }
    *FRAMES.lock() = Some(buddy);
}

/// Build the allocator over `bytes` of memory taken from the heap, once
/// per process: for host unit tests, where there is no RAM map and
/// addresses are their own physical addresses (the host machine's direct
/// map starts at 0). Later calls do nothing.
pub fn init_from_heap(bytes: usize) {
    static DONE: spin::Once<()> = spin::Once::new();
    DONE.call_once(|| {
        assert_eq!(
            machine::phys_map_base(),
            0,
            "only where addresses are physical addresses"
        );
        let memory: &'static mut [u8] = alloc::vec![0u8; bytes + PAGE_SIZE].leak();
        let start = memory.as_ptr() as u64;
        let region = keel_hal::boot::MemoryRegion {
            start: PhysAddr(start),
            len: memory.len() as u64,
            kind: keel_hal::boot::MemoryKind::Usable,
        };
        init(&super::map::usable_ranges(&[region]));
    });
}

/// Allocate 2^order contiguous frames (contents undefined).
pub fn alloc(order: usize) -> Option<PhysAddr> {
    FRAMES.lock().as_mut()?.alloc(order)
}

/// Allocate one zeroed frame.
pub fn alloc_zeroed(order: usize) -> Option<PhysAddr> {
    let pa = alloc(order)?;
    let p = super::phys_to_virt(pa).as_ptr::<u8>();
    // SAFETY: the frames were just allocated to us and are mapped in the direct map.
    unsafe { p.write_bytes(0, PAGE_SIZE << order) };
    Some(pa)
}

/// Free frames from [`alloc`]. A bad free is a kernel bug: it panics with
/// the address, since continuing could hand the same frame out twice.
pub fn free(pa: PhysAddr, order: usize) {
    let result = FRAMES.lock().as_mut().map(|b| b.free(pa, order));
    if let Some(Err(e)) = result {
        panic!("bad frame free of {pa:?} order {order}: {e:?}");
    }
}

/// (free, total) frames.
pub fn stats() -> (usize, usize) {
    FRAMES
        .lock()
        .as_ref()
        .map_or((0, 0), |b| (b.free_frames(), b.total_frames()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct MapLinks(HashMap<u64, (u64, u64)>);
    impl LinkStore for MapLinks {
        fn set_links(&mut self, pa: u64, next: u64, prev: u64) {
            self.0.insert(pa, (next, prev));
        }
        fn links(&self, pa: u64) -> (u64, u64) {
            self.0[&pa]
        }
    }

    fn buddy(state: &mut [u8]) -> Buddy<'_, MapLinks> {
        Buddy::new(0x10_0000, state, MapLinks::default())
    }

    #[test]
    fn allocates_aligned_blocks_and_merges_back() {
        let mut state = vec![0u8; 4096];
        let mut b = buddy(&mut state);
        b.add_range(0x10_0000, 0x10_0000 + 4096 * PAGE);
        assert_eq!(b.free_frames(), 4096);
        let a = b.alloc(0).unwrap();
        let c = b.alloc(3).unwrap();
        assert_eq!(c.0 % (8 * PAGE), 0, "order-3 block is 32 KiB aligned");
        assert_ne!(a, c);
        assert_eq!(b.free_frames(), 4096 - 9);
        b.free(a, 0).unwrap();
        b.free(c, 3).unwrap();
        assert_eq!(b.free_frames(), 4096);
        // Everything merged back: one order-12 block allocates again.
        assert!(b.alloc(12).is_some());
    }

    #[test]
    fn rejects_double_and_mismatched_frees() {
        let mut state = vec![0u8; 64];
        let mut b = buddy(&mut state);
        b.add_range(0x10_0000, 0x10_0000 + 64 * PAGE);
        let a = b.alloc(1).unwrap();
        assert_eq!(b.free(a, 0), Err(FreeError::NotAllocated));
        b.free(a, 1).unwrap();
        assert_eq!(b.free(a, 1), Err(FreeError::NotAllocated));
        assert_eq!(b.free(PhysAddr(0x1000), 0), Err(FreeError::OutOfRange));
    }

    #[test]
    fn nothing_is_touched_until_allocated() {
        let mut state = vec![0x80 | 3; 1024]; // garbage that looks like free heads
        let mut b = buddy(&mut state);
        b.add_range(0x10_0000, 0x10_0000 + 1024 * PAGE);
        assert!(b.links.0.is_empty(), "adding memory wrote no links");
        assert_eq!(b.free_frames(), 1024);
        let a = b.alloc(3).unwrap();
        let c = b.alloc(0).unwrap();
        assert_eq!(b.free_frames(), 1024 - 9);
        b.free(a, 3).unwrap();
        b.free(c, 0).unwrap();
        assert_eq!(b.free_frames(), 1024);
        // Garbage state bytes in the untouched tail never look like buddies.
        assert!(b.alloc(9).is_some());
    }

    #[test]
    fn carving_releases_alignment_gaps() {
        let mut state = vec![0u8; 1024];
        let mut b = buddy(&mut state);
        b.add_range(0x10_0000 + PAGE, 0x10_0000 + 1024 * PAGE);
        let one = b.alloc(0).unwrap();
        assert_eq!(one.0, 0x10_0000 + PAGE);
        // An order-4 block must be 64 KiB aligned: frames 2..16 become free blocks.
        let big = b.alloc(4).unwrap();
        assert_eq!(big.0 % (16 * PAGE), 0);
        assert_eq!(b.free_frames(), 1023 - 1 - 16);
        let mut small = Vec::new();
        while let Some(p) = b.alloc(0) {
            if p.0 >= big.0 {
                break;
            }
            small.push(p.0);
        }
        assert_eq!(
            small.len(),
            14,
            "the gap before the aligned block is reused"
        );
    }

    #[test]
    fn unaligned_ranges_split_into_maximal_blocks() {
        let mut state = vec![0u8; 100];
        let mut b = buddy(&mut state);
        b.add_range(0x10_0000 + 3 * PAGE, 0x10_0000 + 100 * PAGE);
        assert_eq!(b.free_frames(), 97);
        let mut got = Vec::new();
        while let Some(f) = b.alloc(0) {
            got.push(f.0);
        }
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 97, "every frame handed out exactly once");
        assert!(got.iter().all(|&f| f >= 0x10_0000 + 3 * PAGE));
    }

    #[test]
    fn exhaustion_returns_none_and_mixed_orders_never_overlap() {
        let mut state = vec![0u8; 256];
        let mut b = buddy(&mut state);
        b.add_range(0x10_0000, 0x10_0000 + 256 * PAGE);
        let mut blocks = Vec::new();
        let mut seed = 12345u32;
        for _ in 0..400 {
            seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
            let order = (seed >> 16) as usize % 4;
            if let Some(p) = b.alloc(order) {
                blocks.push((p.0, order));
            }
            if blocks.len() > 20 && seed & 1 == 0 {
                let (p, o) = blocks.swap_remove((seed as usize >> 3) % blocks.len());
                b.free(PhysAddr(p), o).unwrap();
            }
        }
        let mut spans: Vec<_> = blocks.iter().map(|&(p, o)| (p, p + (PAGE << o))).collect();
        spans.sort();
        assert!(
            spans.windows(2).all(|w| w[0].1 <= w[1].0),
            "no two blocks overlap"
        );
        let used: usize = blocks.iter().map(|&(_, o)| 1 << o).sum();
        assert_eq!(b.free_frames() + used, 256);
        for (p, o) in blocks {
            b.free(PhysAddr(p), o).unwrap();
        }
        assert_eq!(b.free_frames(), 256);
        assert!(b.alloc(8).is_some());
        assert!(b.alloc(0).is_none());
    }
}

/// One zeroed 4 KiB frame owned by its holder (freed on drop), with safe
/// byte access: filesystems keep file data in these without `unsafe`, and
/// the same frames can be mapped into the app.
#[derive(Debug)]
pub struct OwnedFrame {
    pa: PhysAddr,
}

impl OwnedFrame {
    /// A zeroed frame, or `None` when memory is exhausted.
    pub fn new_zeroed() -> Option<Self> {
        alloc_zeroed(0).map(|pa| Self { pa })
    }

    /// Its physical address (for mapping it).
    pub fn phys(&self) -> PhysAddr {
        self.pa
    }

    fn ptr(&self) -> *mut u8 {
        super::phys_to_virt(self.pa).as_ptr()
    }

    /// Copy `buf.len()` bytes from `offset` within the frame.
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        assert!(
            offset
                .checked_add(buf.len())
                .is_some_and(|e| e <= PAGE_SIZE),
            "read past the frame"
        );
        // SAFETY: the range lies within this frame, which we own and which
        // the direct map covers. (The app may write the same frame through
        // a shared mapping at the same time; that is plain memory, as for
        // any shared-memory writer.)
        unsafe {
            core::ptr::copy_nonoverlapping(self.ptr().add(offset), buf.as_mut_ptr(), buf.len())
        };
    }

    /// Copy `data` into the frame at `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) {
        assert!(
            offset
                .checked_add(data.len())
                .is_some_and(|e| e <= PAGE_SIZE),
            "write past the frame"
        );
        // SAFETY: as in `read`.
        unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr().add(offset), data.len())
        };
    }

    /// Zero `[offset, offset + len)`.
    pub fn zero(&self, offset: usize, len: usize) {
        assert!(
            offset.checked_add(len).is_some_and(|e| e <= PAGE_SIZE),
            "zeroing past the frame"
        );
        // SAFETY: as in `read`.
        unsafe { self.ptr().add(offset).write_bytes(0, len) };
    }
}

impl Drop for OwnedFrame {
    fn drop(&mut self) {
        free(self.pa, 0);
    }
}
