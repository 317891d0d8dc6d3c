//! The generic page-table walker: maps, unmaps, protects and translates
//! for any arch, driven by the arch's [`PageTableFormat`].
//!
//! Table memory is reached through [`TableMemory`], so the walker runs
//! against real frames in the kernel and against a map in host tests.
//! TLB maintenance is the caller's job (see `vmap`).

use keel_hal::paging::{Entry, PageTableFormat};
use keel_hal::{PageFlags, PhysAddr, VirtAddr};

/// Access to page-table memory by physical address.
pub trait TableMemory {
    /// Read entry `index` of the table at `table`.
    fn read(&self, table: PhysAddr, index: usize) -> u64;
    /// Write entry `index` of the table at `table`.
    fn write(&mut self, table: PhysAddr, index: usize, value: u64);
    /// A zeroed table of `bytes` bytes, aligned to its size.
    fn alloc_table(&mut self, bytes: usize) -> Option<PhysAddr>;
}

/// Why a mapping change failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Something is already mapped in the range.
    AlreadyMapped(VirtAddr),
    /// Out of memory for page tables.
    NoMemory,
    /// Address or length not page aligned.
    Misaligned,
}

/// Map `[va, va+len)` to `[pa, pa+len)` with `flags`, using the largest
/// pages that alignment allows. Fails without changes past the first
/// conflict (earlier pages of the range stay mapped; callers unmap them).
pub fn map<F: PageTableFormat, M: TableMemory>(
    mem: &mut M,
    root: PhysAddr,
    va: VirtAddr,
    pa: PhysAddr,
    len: usize,
    flags: PageFlags,
) -> Result<(), MapError> {
    let page = 1usize << F::page_shift();
    if !va.0.is_multiple_of(page) || !pa.0.is_multiple_of(page as u64) || !len.is_multiple_of(page)
    {
        return Err(MapError::Misaligned);
    }
    let mut done = 0usize;
    while done < len {
        let (v, p) = (va.add(done), pa.add(done as u64));
        let level = (0..F::levels())
            .find(|&l| {
                let span = F::entry_span(l);
                F::leaf_allowed(l)
                    && (v.0 as u64).is_multiple_of(span)
                    && p.0.is_multiple_of(span)
                    && (len - done) as u64 >= span
            })
            .unwrap_or(F::levels() - 1);
        let table = walk_create::<F, M>(mem, root, v, level)?;
        let idx = F::index(v, level);
        if F::decode(mem.read(table, idx), level) != Entry::Invalid {
            return Err(MapError::AlreadyMapped(v));
        }
        mem.write(table, idx, F::encode(Entry::Leaf(p, flags), level));
        done += F::entry_span(level) as usize;
    }
    Ok(())
}

/// Walk from the root to the table at `level` that covers `va`, creating
/// missing tables. A large page in the way is a conflict.
fn walk_create<F: PageTableFormat, M: TableMemory>(
    mem: &mut M,
    root: PhysAddr,
    va: VirtAddr,
    level: usize,
) -> Result<PhysAddr, MapError> {
    let mut table = root;
    for l in 0..level {
        let idx = F::index(va, l);
        table = match F::decode(mem.read(table, idx), l) {
            Entry::Table(next) => next,
            Entry::Invalid => {
                let next = mem
                    .alloc_table(F::table_bytes(l + 1))
                    .ok_or(MapError::NoMemory)?;
                mem.write(table, idx, F::encode(Entry::Table(next), l));
                next
            }
            Entry::Leaf(..) => return Err(MapError::AlreadyMapped(va)),
        };
    }
    Ok(table)
}

/// Unmap every page in `[va, va+len)`, splitting large pages that straddle
/// the edges. Calls `unmapped(va, pa, bytes)` for each leaf removed.
/// Holes are skipped.
pub fn unmap<F: PageTableFormat, M: TableMemory>(
    mem: &mut M,
    root: PhysAddr,
    va: VirtAddr,
    len: usize,
    unmapped: &mut dyn FnMut(VirtAddr, PhysAddr, usize),
) -> Result<(), MapError> {
    edit::<F, M>(
        mem,
        root,
        va,
        len,
        &mut |mem, table, idx, level, v, leaf| {
            let _ = leaf;
            if let Entry::Leaf(p, _) = F::decode(mem.read(table, idx), level) {
                mem.write(table, idx, F::encode(Entry::Invalid, level));
                unmapped(v, p, F::entry_span(level) as usize);
            }
        },
    )
}

/// Change the rights of every mapped page in `[va, va+len)`.
pub fn protect<F: PageTableFormat, M: TableMemory>(
    mem: &mut M,
    root: PhysAddr,
    va: VirtAddr,
    len: usize,
    flags: PageFlags,
) -> Result<(), MapError> {
    edit::<F, M>(mem, root, va, len, &mut |mem, table, idx, level, _, _| {
        if let Entry::Leaf(p, _) = F::decode(mem.read(table, idx), level) {
            mem.write(table, idx, F::encode(Entry::Leaf(p, flags), level));
        }
    })
}

type LeafEdit<'a, M> = dyn FnMut(&mut M, PhysAddr, usize, usize, VirtAddr, bool) + 'a;

/// Visit every leaf slot covering `[va, va+len)` exactly, splitting large
/// pages that extend past either end so edits never spill outside.
fn edit<F: PageTableFormat, M: TableMemory>(
    mem: &mut M,
    root: PhysAddr,
    va: VirtAddr,
    len: usize,
    apply: &mut LeafEdit<'_, M>,
) -> Result<(), MapError> {
    let page = 1usize << F::page_shift();
    if !va.0.is_multiple_of(page) || !len.is_multiple_of(page) {
        return Err(MapError::Misaligned);
    }
    let end = va.0 + len;
    let mut v = va.0;
    while v < end {
        let mut table = root;
        let mut level = 0;
        loop {
            let idx = F::index(VirtAddr(v), level);
            let span = F::entry_span(level) as usize;
            let slot_start = v & !(span - 1);
            match F::decode(mem.read(table, idx), level) {
                Entry::Invalid => {
                    v = slot_start + span;
                    break;
                }
                Entry::Table(next) => {
                    table = next;
                    level += 1;
                }
                Entry::Leaf(p, flags) => {
                    if slot_start >= v && slot_start + span <= end {
                        apply(mem, table, idx, level, VirtAddr(slot_start), true);
                        v = slot_start + span;
                        break;
                    }
                    split::<F, M>(mem, table, idx, level, p, flags)?;
                }
            }
        }
    }
    Ok(())
}

/// Replace the large page at `table[idx]` with a table of smaller pages
/// mapping the same memory with the same rights.
fn split<F: PageTableFormat, M: TableMemory>(
    mem: &mut M,
    table: PhysAddr,
    idx: usize,
    level: usize,
    pa: PhysAddr,
    flags: PageFlags,
) -> Result<(), MapError> {
    let child = mem
        .alloc_table(F::table_bytes(level + 1))
        .ok_or(MapError::NoMemory)?;
    let child_span = F::entry_span(level + 1);
    for i in 0..1usize << F::index_bits(level + 1) {
        let leaf = Entry::Leaf(pa.add(i as u64 * child_span), flags);
        mem.write(child, i, F::encode(leaf, level + 1));
    }
    mem.write(table, idx, F::encode(Entry::Table(child), level));
    Ok(())
}

/// The physical address and rights `va` translates to, if mapped.
pub fn translate<F: PageTableFormat, M: TableMemory>(
    mem: &M,
    root: PhysAddr,
    va: VirtAddr,
) -> Option<(PhysAddr, PageFlags)> {
    let mut table = root;
    for level in 0..F::levels() {
        match F::decode(mem.read(table, F::index(va, level)), level) {
            Entry::Invalid => return None,
            Entry::Table(next) => table = next,
            Entry::Leaf(p, flags) => {
                let offset = va.0 as u64 & (F::entry_span(level) - 1);
                return Some((p.add(offset), flags));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An x86-like format: 4 levels of 9 bits, leaves at levels 1..=3.
    struct FourLevel;
    impl PageTableFormat for FourLevel {
        fn levels() -> usize {
            4
        }
        fn page_shift() -> u32 {
            12
        }
        fn index_bits(_: usize) -> u32 {
            9
        }
        fn leaf_allowed(level: usize) -> bool {
            level >= 2
        }
        fn encode(e: Entry, level: usize) -> u64 {
            match e {
                Entry::Invalid => 0,
                Entry::Table(p) => p.0 | 1,
                Entry::Leaf(p, f) => {
                    p.0 | 1 | ((f.bits() as u64) << 1) | if level < 3 { 0x80 } else { 0 }
                }
            }
        }
        fn decode(raw: u64, level: usize) -> Entry {
            if raw & 1 == 0 {
                Entry::Invalid
            } else if level == 3 || raw & 0x80 != 0 {
                let f = PageFlags::READ
                    .union(if raw & 2 != 0 {
                        PageFlags::WRITE
                    } else {
                        PageFlags::READ
                    })
                    .union(if raw & 4 != 0 {
                        PageFlags::EXEC
                    } else {
                        PageFlags::READ
                    });
                Entry::Leaf(PhysAddr(raw & 0x000f_ffff_ffff_f000), f)
            } else {
                Entry::Table(PhysAddr(raw & 0x000f_ffff_ffff_f000))
            }
        }
    }

    /// A big-root format like ppc64 radix: 13 bits at the root.
    struct BigRoot;
    impl PageTableFormat for BigRoot {
        fn levels() -> usize {
            4
        }
        fn page_shift() -> u32 {
            12
        }
        fn index_bits(level: usize) -> u32 {
            if level == 0 { 13 } else { 9 }
        }
        fn leaf_allowed(level: usize) -> bool {
            level >= 2
        }
        fn encode(e: Entry, level: usize) -> u64 {
            FourLevel::encode(e, level).swap_bytes()
        }
        fn decode(raw: u64, level: usize) -> Entry {
            FourLevel::decode(raw.swap_bytes(), level)
        }
    }

    #[derive(Default)]
    struct Mem {
        words: HashMap<(u64, usize), u64>,
        next: u64,
        tables: usize,
    }
    impl TableMemory for Mem {
        fn read(&self, t: PhysAddr, i: usize) -> u64 {
            *self.words.get(&(t.0, i)).unwrap_or(&0)
        }
        fn write(&mut self, t: PhysAddr, i: usize, v: u64) {
            self.words.insert((t.0, i), v);
        }
        fn alloc_table(&mut self, bytes: usize) -> Option<PhysAddr> {
            self.next += bytes.max(0x1000) as u64;
            self.tables += 1;
            Some(PhysAddr(0x1_0000_0000 + self.next))
        }
    }

    const RW: PageFlags = PageFlags::DATA;
    const MB2: usize = 2 << 20;

    #[test]
    fn maps_small_and_large_pages_and_translates() {
        let mut m = Mem::default();
        let root = PhysAddr(0x1000);
        map::<FourLevel, _>(
            &mut m,
            root,
            VirtAddr(0x40_0000),
            PhysAddr(0x20_0000),
            2 * MB2,
            RW,
        )
        .unwrap();
        // Two 2 MiB leaves: root->l1->l2 tables only.
        assert_eq!(m.tables, 2);
        let (p, f) = translate::<FourLevel, _>(&m, root, VirtAddr(0x40_1234)).unwrap();
        assert_eq!(p, PhysAddr(0x20_1234));
        assert!(f.contains(PageFlags::WRITE));
        map::<FourLevel, _>(
            &mut m,
            root,
            VirtAddr(0x1000),
            PhysAddr(0x5000),
            0x2000,
            PageFlags::EXEC,
        )
        .unwrap();
        assert_eq!(
            translate::<FourLevel, _>(&m, root, VirtAddr(0x2008))
                .unwrap()
                .0,
            PhysAddr(0x6008)
        );
        assert_eq!(translate::<FourLevel, _>(&m, root, VirtAddr(0x3000)), None);
    }

    #[test]
    fn refuses_overlapping_maps_and_misalignment() {
        let mut m = Mem::default();
        let root = PhysAddr(0x1000);
        map::<FourLevel, _>(&mut m, root, VirtAddr(0x20_0000), PhysAddr(0), MB2, RW).unwrap();
        assert_eq!(
            map::<FourLevel, _>(&mut m, root, VirtAddr(0x20_1000), PhysAddr(0), 0x1000, RW),
            Err(MapError::AlreadyMapped(VirtAddr(0x20_1000)))
        );
        assert_eq!(
            map::<FourLevel, _>(&mut m, root, VirtAddr(0x123), PhysAddr(0), 0x1000, RW),
            Err(MapError::Misaligned)
        );
    }

    #[test]
    fn unmap_splits_large_pages_at_the_edges() {
        let mut m = Mem::default();
        let root = PhysAddr(0x1000);
        map::<FourLevel, _>(
            &mut m,
            root,
            VirtAddr(0x20_0000),
            PhysAddr(0x60_0000),
            MB2,
            RW,
        )
        .unwrap();
        let mut gone = Vec::new();
        unmap::<FourLevel, _>(&mut m, root, VirtAddr(0x20_3000), 0x2000, &mut |v, p, n| {
            gone.push((v.0, p.0, n))
        })
        .unwrap();
        assert_eq!(
            gone,
            vec![
                (0x20_3000, 0x60_3000, 0x1000),
                (0x20_4000, 0x60_4000, 0x1000)
            ]
        );
        assert_eq!(
            translate::<FourLevel, _>(&m, root, VirtAddr(0x20_3000)),
            None
        );
        assert_eq!(
            translate::<FourLevel, _>(&m, root, VirtAddr(0x20_2fff))
                .unwrap()
                .0,
            PhysAddr(0x60_2fff)
        );
        assert_eq!(
            translate::<FourLevel, _>(&m, root, VirtAddr(0x20_5000))
                .unwrap()
                .0,
            PhysAddr(0x60_5000)
        );
    }

    #[test]
    fn protect_changes_rights_only_inside_the_range() {
        let mut m = Mem::default();
        let root = PhysAddr(0x1000);
        map::<FourLevel, _>(&mut m, root, VirtAddr(0x1000), PhysAddr(0x9000), 0x3000, RW).unwrap();
        protect::<FourLevel, _>(&mut m, root, VirtAddr(0x2000), 0x1000, PageFlags::READ).unwrap();
        let w = |va| {
            translate::<FourLevel, _>(&m, root, VirtAddr(va))
                .unwrap()
                .1
                .contains(PageFlags::WRITE)
        };
        assert!(w(0x1000) && !w(0x2000) && w(0x3000));
    }

    #[test]
    fn big_root_byte_swapped_format_round_trips() {
        let mut m = Mem::default();
        let root = PhysAddr(0x1000);
        let va = VirtAddr((1usize << 47) + 0x1234_5000);
        map::<BigRoot, _>(&mut m, root, va, PhysAddr(0xabc000), 0x1000, RW).unwrap();
        assert_eq!(
            BigRoot::index(va, 0),
            256,
            "bit 47 lands in the 13-bit root index"
        );
        assert_eq!(
            translate::<BigRoot, _>(&m, root, va.add(8)).unwrap().0,
            PhysAddr(0xabc008)
        );
    }
}
