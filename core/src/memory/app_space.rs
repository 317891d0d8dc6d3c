//! The app's half of the address space: mappings (VMAs), demand paging
//! with a shared zero page and copy-on-write, protection changes, and the
//! TLB shootdowns that make them visible on every CPU.
//!
//! Which frames the address space owns follows from the mapping, so no
//! per-page bookkeeping is needed: anonymous pages are owned unless they
//! are the zero page; private file pages are owned once copied on write;
//! shared file pages belong to the file.

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_hal::{PageFlags, PhysAddr, VirtAddr, machine};

use super::page_table::{self, MapError};
use super::vmap::{DirectMapTables, TABLES};
use super::{PAGE_SIZE, frame, phys_to_virt};
use crate::sync::{RwLock, SpinLock};

/// Readable (Linux's PROT_READ).
pub const PROT_READ: u8 = 1;
/// Writable (PROT_WRITE).
pub const PROT_WRITE: u8 = 2;
/// Executable (PROT_EXEC).
pub const PROT_EXEC: u8 = 4;

/// Why a `Mappable` could not give a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageError {
    /// The page lies past the end of the object (the app gets SIGBUS).
    PastEnd,
    /// No memory for it.
    NoMemory,
    /// The object's storage failed to deliver it (the app gets SIGBUS).
    Io,
}

/// Something whose pages can be mapped: a file's contents.
pub trait Mappable: Send + Sync {
    /// The frame holding page `index`, creating it if needed.
    fn frame(&self, index: u64) -> Result<PhysAddr, PageError>;
    /// The frame of page `index` if it exists now (never creates one).
    fn frame_if_present(&self, index: u64) -> Option<PhysAddr>;
    /// How `/proc/self/maps` names it.
    fn describe(&self) -> String;
}

/// What backs a mapping.
#[derive(Clone)]
pub enum Backing {
    /// Zero-filled memory.
    Anonymous,
    /// A file, from byte `offset` (page aligned).
    File {
        /// The file's pages.
        object: Arc<dyn Mappable>,
        /// Offset of the mapping's first byte.
        offset: u64,
    },
}

/// One mapping.
#[derive(Clone)]
pub struct Vma {
    /// First address.
    pub start: usize,
    /// One past the last address.
    pub end: usize,
    /// PROT_* bits.
    pub prot: u8,
    /// MAP_SHARED (writes reach the file).
    pub shared: bool,
    /// Contents.
    pub backing: Backing,
    /// Name in `/proc/self/maps` for anonymous regions ("[heap]", "[stack]").
    pub label: Option<Cow<'static, str>>,
}

impl Vma {
    fn file_page(&self, va: usize) -> Option<(&Arc<dyn Mappable>, u64)> {
        match &self.backing {
            Backing::File { object, offset } => Some((
                object,
                (offset + (va - self.start) as u64) / PAGE_SIZE as u64,
            )),
            Backing::Anonymous => None,
        }
    }

    /// Part `[from, to)` of this mapping (offsets adjusted).
    fn slice(&self, from: usize, to: usize) -> Vma {
        let mut v = self.clone();
        v.start = from;
        v.end = to;
        if let Backing::File { offset, .. } = &mut v.backing {
            *offset += (from - self.start) as u64;
        }
        v
    }
}

/// Why a fault could not be resolved (the app gets SIGSEGV or SIGBUS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No mapping there (SEGV_MAPERR).
    NotMapped,
    /// The mapping forbids the access (SEGV_ACCERR).
    Protection,
    /// Past the end of the mapped file (SIGBUS).
    PastEndOfFile,
    /// The mapped file's storage failed (SIGBUS, BUS_OBJERR).
    Io,
    /// Out of memory.
    NoMemory,
}

/// Why a mapping request failed (becomes an errno).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapRequestError {
    /// No room in the address space, or out of memory (ENOMEM).
    NoSpace,
    /// The range overlaps a mapping and replacing was not allowed (EEXIST).
    Exists,
    /// Bad address, length or alignment (EINVAL).
    Invalid,
    /// Part of the range is not mapped (ENOMEM for mprotect/mremap).
    NotMapped,
}

/// The app's address space.
pub struct AddressSpace {
    vmas: RwLock<BTreeMap<usize, Vma>>,
    brk: SpinLock<(usize, usize)>,
}

static ZERO_PAGE: spin::Once<PhysAddr> = spin::Once::new();

fn zero_page() -> PhysAddr {
    *ZERO_PAGE.call_once(|| frame::alloc_zeroed(0).expect("memory for the zero page"))
}

fn page_flags(prot: u8, writable: bool) -> PageFlags {
    let mut f = PageFlags::READ;
    if writable && prot & PROT_WRITE != 0 {
        f = f | PageFlags::WRITE;
    }
    if prot & PROT_EXEC != 0 {
        f = f | PageFlags::EXEC;
    }
    f
}

/// Flush the app range `[start, end)` from every CPU's TLB.
pub fn shootdown(start: usize, end: usize) {
    let pages = (end - start) / PAGE_SIZE;
    crate::smp::on_each_cpu(&|| {
        if pages > 32 {
            machine::flush_tlb_all();
        } else {
            for i in 0..pages {
                machine::flush_tlb_page(VirtAddr(start + i * PAGE_SIZE));
            }
        }
    });
}

fn page_align(v: usize) -> Option<usize> {
    v.checked_add(PAGE_SIZE - 1).map(|x| x & !(PAGE_SIZE - 1))
}

impl Default for AddressSpace {
    fn default() -> Self {
        Self::new()
    }
}

impl AddressSpace {
    /// An empty address space.
    pub const fn new() -> Self {
        Self {
            vmas: RwLock::new(BTreeMap::new()),
            brk: SpinLock::new((0, 0)),
        }
    }

    /// The app range as the arch defines it.
    pub fn range() -> (usize, usize) {
        machine::app_range()
    }

    /// Map `len` bytes at `addr` (or anywhere if `addr` is `None`), replacing
    /// what is there if `replace`. Returns the address used.
    pub fn map(
        &self,
        addr: Option<usize>,
        len: usize,
        vma: Vma,
        replace: bool,
    ) -> Result<usize, MapRequestError> {
        let len = page_align(len)
            .filter(|&l| l > 0)
            .ok_or(MapRequestError::Invalid)?;
        let (lo, hi) = Self::range();
        let mut vmas = self.vmas.write();
        let start = match addr {
            Some(a) => {
                if a % PAGE_SIZE != 0 || a < lo || a.checked_add(len).is_none_or(|e| e > hi) {
                    return Err(MapRequestError::Invalid);
                }
                if overlaps(&vmas, a, a + len) {
                    if !replace {
                        return Err(MapRequestError::Exists);
                    }
                    self.unmap_locked(&mut vmas, a, a + len);
                }
                a
            }
            None => find_gap(&vmas, len, lo, hi).ok_or(MapRequestError::NoSpace)?,
        };
        vmas.insert(
            start,
            Vma {
                start,
                end: start + len,
                ..vma
            },
        );
        coalesce(&mut vmas, start, start + len);
        Ok(start)
    }

    /// Unmap `[addr, addr + len)`; holes are fine.
    pub fn unmap(&self, addr: usize, len: usize) -> Result<(), MapRequestError> {
        let end = page_align(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(MapRequestError::Invalid)?;
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(MapRequestError::Invalid);
        }
        let mut vmas = self.vmas.write();
        self.unmap_locked(&mut vmas, addr, end);
        Ok(())
    }

    fn unmap_locked(&self, vmas: &mut BTreeMap<usize, Vma>, start: usize, end: usize) {
        split_at(vmas, start);
        split_at(vmas, end);
        let victims: Vec<Vma> = vmas.range(start..end).map(|(_, v)| v.clone()).collect();
        if victims.is_empty() {
            return;
        }
        let mut freed: Vec<PhysAddr> = Vec::new();
        {
            let mut tables = TABLES.lock();
            for v in &victims {
                vmas.remove(&v.start);
                let root = machine::table_root(VirtAddr(v.start));
                let _ = page_table::unmap::<machine::ActiveFormat, _>(
                    &mut *tables,
                    root,
                    VirtAddr(v.start),
                    v.end - v.start,
                    &mut |va, pa, _| {
                        if owns(v, va.0, pa) {
                            freed.push(pa);
                        }
                    },
                );
            }
            machine::publish_table_update();
        }
        shootdown(start, end);
        for pa in freed {
            frame::free(pa, 0);
        }
    }

    /// Change the protection of `[addr, addr + len)`, all of which must be mapped.
    pub fn protect(&self, addr: usize, len: usize, prot: u8) -> Result<(), MapRequestError> {
        let end = page_align(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(MapRequestError::Invalid)?;
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(MapRequestError::Invalid);
        }
        let mut vmas = self.vmas.write();
        if !fully_mapped(&vmas, addr, end) {
            return Err(MapRequestError::NotMapped);
        }
        split_at(&mut vmas, addr);
        split_at(&mut vmas, end);
        let mut tables = TABLES.lock();
        for (_, v) in vmas.range_mut(addr..end) {
            v.prot = prot;
            let root = machine::table_root(VirtAddr(v.start));
            // Recompute each present page's rights: copy-on-write pages stay
            // read-only until written.
            let mut page = v.start;
            while page < v.end {
                if let Some((pa, _)) = page_table::translate::<machine::ActiveFormat, _>(
                    &*tables,
                    root,
                    VirtAddr(page),
                ) {
                    let writable = owns(v, page, pa) || (v.shared && v.file_page(page).is_some());
                    let _ = page_table::protect::<machine::ActiveFormat, _>(
                        &mut *tables,
                        root,
                        VirtAddr(page),
                        PAGE_SIZE,
                        page_flags(prot, writable),
                    );
                }
                page += PAGE_SIZE;
            }
        }
        machine::publish_table_update();
        drop(tables);
        coalesce(&mut vmas, addr, end);
        drop(vmas);
        shootdown(addr, end);
        Ok(())
    }

    /// Resolve a fault at `addr` (demand paging, copy-on-write). The caller
    /// runs in thread context with interrupts enabled.
    pub fn handle_fault(&self, addr: usize, write: bool, exec: bool) -> Result<(), FaultError> {
        let page = addr & !(PAGE_SIZE - 1);
        let vmas = self.vmas.read();
        let vma = find(&vmas, addr).ok_or(FaultError::NotMapped)?;
        let allowed = if write {
            vma.prot & PROT_WRITE != 0
        } else if exec {
            vma.prot & PROT_EXEC != 0
        } else {
            vma.prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0
        };
        if !allowed {
            return Err(FaultError::Protection);
        }
        // File pages may need reading (sleeping): fetch before locking tables.
        let file_frame = match vma.file_page(page) {
            Some((object, index)) => Some(object.frame(index).map_err(|e| match e {
                PageError::PastEnd => FaultError::PastEndOfFile,
                PageError::NoMemory => FaultError::NoMemory,
                PageError::Io => FaultError::Io,
            })?),
            None => None,
        };
        let root = machine::table_root(VirtAddr(page));
        let mut tables = TABLES.lock();
        let present =
            page_table::translate::<machine::ActiveFormat, _>(&*tables, root, VirtAddr(page));
        let mut flush = false;
        match present {
            Some((pa, flags)) => {
                if !write || flags.contains(PageFlags::WRITE) {
                    // Another CPU mapped it first, or a stale TLB entry here.
                    machine::flush_tlb_page(VirtAddr(page));
                    return Ok(());
                }
                // Shared file pages and pages already ours are written in
                // place; the zero page and private file pages are copied.
                let in_place = owns(vma, page, pa) || (vma.shared && vma.file_page(page).is_some());
                let target = if in_place {
                    pa
                } else {
                    let copy = frame::alloc(0).ok_or(FaultError::NoMemory)?;
                    copy_frame(copy, pa);
                    copy
                };
                let _ = page_table::unmap::<machine::ActiveFormat, _>(
                    &mut *tables,
                    root,
                    VirtAddr(page),
                    PAGE_SIZE,
                    &mut |_, _, _| {},
                );
                map_page(&mut tables, root, page, target, page_flags(vma.prot, true))?;
                flush = true;
            }
            None => {
                let (target, writable) = match (file_frame, vma.shared) {
                    (Some(f), true) => (f, true),
                    (Some(f), false) if write => {
                        let copy = frame::alloc(0).ok_or(FaultError::NoMemory)?;
                        copy_frame(copy, f);
                        (copy, true)
                    }
                    (Some(f), false) => (f, false),
                    (None, _) if write => {
                        (frame::alloc_zeroed(0).ok_or(FaultError::NoMemory)?, true)
                    }
                    (None, _) => (zero_page(), false),
                };
                map_page(
                    &mut tables,
                    root,
                    page,
                    target,
                    page_flags(vma.prot, writable),
                )?;
            }
        }
        machine::publish_table_update();
        drop(tables);
        drop(vmas);
        if flush {
            shootdown(page, page + PAGE_SIZE);
        }
        Ok(())
    }

    /// Set up the heap: `[start, start)` grows with `set_brk`.
    pub fn init_brk(&self, start: usize) {
        *self.brk.lock() = (start, start);
    }

    /// Move the program break; returns the break now in effect (unchanged
    /// if the request cannot be met, as Linux's brk does).
    pub fn set_brk(&self, requested: usize) -> usize {
        let (start, current) = *self.brk.lock();
        if requested < start {
            return current;
        }
        let (old_top, new_top) = (
            page_align(current).unwrap_or(current),
            page_align(requested).unwrap_or(requested),
        );
        if new_top > old_top {
            let vma = Vma {
                start: old_top,
                end: new_top,
                prot: PROT_READ | PROT_WRITE,
                shared: false,
                backing: Backing::Anonymous,
                label: Some(Cow::Borrowed("[heap]")),
            };
            if self
                .map(Some(old_top), new_top - old_top, vma, false)
                .is_err()
            {
                return current;
            }
        } else if new_top < old_top {
            let _ = self.unmap(new_top, old_top - new_top);
        }
        self.brk.lock().1 = requested;
        requested
    }

    /// Snapshot of every mapping, in address order.
    pub fn mappings(&self) -> Vec<Vma> {
        self.vmas.read().values().cloned().collect()
    }

    /// The mapping containing `addr`, if any.
    pub fn mapping_at(&self, addr: usize) -> Option<Vma> {
        find(&self.vmas.read(), addr).cloned()
    }

    /// Whether each page of `[addr, addr + len)` is resident.
    pub fn resident(&self, addr: usize, len: usize) -> Result<Vec<bool>, MapRequestError> {
        let end = page_align(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(MapRequestError::Invalid)?;
        let vmas = self.vmas.read();
        if !fully_mapped(&vmas, addr, end) {
            return Err(MapRequestError::NotMapped);
        }
        let tables = TABLES.lock();
        Ok((addr..end)
            .step_by(PAGE_SIZE)
            .map(|p| {
                page_table::translate::<machine::ActiveFormat, _>(
                    &*tables,
                    machine::table_root(VirtAddr(p)),
                    VirtAddr(p),
                )
                .is_some()
            })
            .collect())
    }

    /// Drop the private pages of `[addr, addr + len)` (MADV_DONTNEED): the
    /// next access sees zeros (anonymous) or the file again.
    pub fn discard(&self, addr: usize, len: usize) -> Result<(), MapRequestError> {
        let end = page_align(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(MapRequestError::Invalid)?;
        let vmas = self.vmas.read();
        if !fully_mapped(&vmas, addr, end) {
            return Err(MapRequestError::NotMapped);
        }
        let mut freed = Vec::new();
        {
            let mut tables = TABLES.lock();
            for (_, v) in vmas.range(..end).filter(|(_, v)| v.end > addr && !v.shared) {
                let (s, e) = (v.start.max(addr), v.end.min(end));
                let root = machine::table_root(VirtAddr(s));
                let _ = page_table::unmap::<machine::ActiveFormat, _>(
                    &mut *tables,
                    root,
                    VirtAddr(s),
                    e - s,
                    &mut |va, pa, _| {
                        if owns(v, va.0, pa) {
                            freed.push(pa);
                        }
                    },
                );
            }
            machine::publish_table_update();
        }
        drop(vmas);
        shootdown(addr, end);
        for pa in freed {
            frame::free(pa, 0);
        }
        Ok(())
    }

    /// Move or resize the mapping at `[old, old + old_len)` (mremap).
    pub fn remap(
        &self,
        old: usize,
        old_len: usize,
        new_len: usize,
        may_move: bool,
        fixed: Option<usize>,
    ) -> Result<usize, MapRequestError> {
        let old_len = page_align(old_len).ok_or(MapRequestError::Invalid)?;
        let new_len = page_align(new_len)
            .filter(|&l| l > 0)
            .ok_or(MapRequestError::Invalid)?;
        if !old.is_multiple_of(PAGE_SIZE) || old_len == 0 {
            return Err(MapRequestError::Invalid);
        }
        let vma = {
            let vmas = self.vmas.read();
            let v = find(&vmas, old).ok_or(MapRequestError::NotMapped)?;
            if v.end < old + old_len {
                return Err(MapRequestError::NotMapped);
            }
            v.slice(old, old + old_len)
        };
        if new_len <= old_len && fixed.is_none() {
            if new_len < old_len {
                self.unmap(old + new_len, old_len - new_len)?;
            }
            return Ok(old);
        }
        if fixed.is_none() {
            // Grow in place when the space after it is free.
            let vmas = self.vmas.read();
            let free_after =
                !overlaps(&vmas, old + old_len, old + new_len) && old + new_len <= Self::range().1;
            drop(vmas);
            if free_after {
                let tail = vma.slice(old + old_len, old + new_len);
                self.map(Some(old + old_len), new_len - old_len, tail, false)?;
                return Ok(old);
            }
            if !may_move {
                return Err(MapRequestError::NoSpace);
            }
        }
        // Move: a fresh mapping, pages carried over, the old one removed.
        let mut moved = vma.clone();
        moved.end = moved.start + new_len;
        let target = self.map(fixed, new_len, moved, fixed.is_some())?;
        let mut tables = TABLES.lock();
        let keep = old_len.min(new_len);
        let mut page = 0;
        while page < keep {
            let src = VirtAddr(old + page);
            let root = machine::table_root(src);
            if let Some((pa, flags)) =
                page_table::translate::<machine::ActiveFormat, _>(&*tables, root, src)
            {
                let _ = page_table::unmap::<machine::ActiveFormat, _>(
                    &mut *tables,
                    root,
                    src,
                    PAGE_SIZE,
                    &mut |_, _, _| {},
                );
                let droot = machine::table_root(VirtAddr(target + page));
                let _ = page_table::map::<machine::ActiveFormat, _>(
                    &mut *tables,
                    droot,
                    VirtAddr(target + page),
                    pa,
                    PAGE_SIZE,
                    flags,
                );
            }
            page += PAGE_SIZE;
        }
        machine::publish_table_update();
        drop(tables);
        // The old range's pages now belong to the new one: drop the VMA only.
        {
            let mut vmas = self.vmas.write();
            split_at(&mut vmas, old);
            split_at(&mut vmas, old + old_len);
            let starts: Vec<usize> = vmas.range(old..old + old_len).map(|(&s, _)| s).collect();
            for s in starts {
                vmas.remove(&s);
            }
        }
        shootdown(old, old + old_len);
        Ok(target)
    }
}

fn map_page(
    tables: &mut DirectMapTables,
    root: PhysAddr,
    va: usize,
    pa: PhysAddr,
    flags: PageFlags,
) -> Result<(), FaultError> {
    match page_table::map::<machine::ActiveFormat, _>(
        tables,
        root,
        VirtAddr(va),
        pa,
        PAGE_SIZE,
        flags,
    ) {
        Ok(()) | Err(MapError::AlreadyMapped(_)) => Ok(()),
        Err(_) => Err(FaultError::NoMemory),
    }
}

fn copy_frame(dst: PhysAddr, src: PhysAddr) {
    let (d, s) = (
        phys_to_virt(dst).as_ptr::<u8>(),
        phys_to_virt(src).as_ptr::<u8>(),
    );
    // SAFETY: both are whole frames in the direct map; `dst` was just
    // allocated and is not yet visible to anyone else.
    unsafe { core::ptr::copy_nonoverlapping(s, d, PAGE_SIZE) };
}

/// Whether the frame `pa` mapped at `va` in `v` belongs to the address space.
fn owns(v: &Vma, va: usize, pa: PhysAddr) -> bool {
    match v.file_page(va) {
        None => Some(pa) != ZERO_PAGE.get().copied(),
        Some(_) if v.shared => false,
        Some((object, index)) => object.frame_if_present(index) != Some(pa),
    }
}

fn find(vmas: &BTreeMap<usize, Vma>, addr: usize) -> Option<&Vma> {
    vmas.range(..=addr)
        .next_back()
        .map(|(_, v)| v)
        .filter(|v| addr < v.end)
}

fn overlaps(vmas: &BTreeMap<usize, Vma>, start: usize, end: usize) -> bool {
    vmas.range(..end)
        .next_back()
        .is_some_and(|(_, v)| v.end > start)
}

fn fully_mapped(vmas: &BTreeMap<usize, Vma>, start: usize, end: usize) -> bool {
    let mut at = start;
    while at < end {
        match find(vmas, at) {
            Some(v) => at = v.end,
            None => return false,
        }
    }
    true
}

/// Whether `b` continues `a` exactly: adjacent, same rights, same kind of
/// memory (and for files, the next bytes of the same file). Such mappings
/// are one mapping to Linux (mremap and /proc/self/maps depend on it).
fn continues(a: &Vma, b: &Vma) -> bool {
    a.end == b.start
        && a.prot == b.prot
        && a.shared == b.shared
        && a.label == b.label
        && match (&a.backing, &b.backing) {
            (Backing::Anonymous, Backing::Anonymous) => true,
            (
                Backing::File {
                    object: oa,
                    offset: fa,
                },
                Backing::File {
                    object: ob,
                    offset: fb,
                },
            ) => {
                core::ptr::addr_eq(Arc::as_ptr(oa), Arc::as_ptr(ob))
                    && fa + (a.end - a.start) as u64 == *fb
            }
            _ => false,
        }
}

/// Merge the mappings touching `[start, end)` with neighbours they continue.
fn coalesce(vmas: &mut BTreeMap<usize, Vma>, start: usize, end: usize) {
    let first = vmas.range(..start).next_back().map_or(start, |(&s, _)| s);
    let mut at = first;
    while at <= end {
        let Some(cur) = vmas.get(&at).cloned() else {
            match vmas.range(at..).next() {
                Some((&s, _)) if s <= end => {
                    at = s;
                    continue;
                }
                _ => return,
            }
        };
        match vmas.get(&cur.end) {
            Some(next) if continues(&cur, next) => {
                let next_end = next.end;
                vmas.remove(&cur.end);
                vmas.get_mut(&at).expect("present").end = next_end;
            }
            _ => at = cur.end,
        }
    }
}

/// Split the mapping containing `addr` so that one starts exactly there.
fn split_at(vmas: &mut BTreeMap<usize, Vma>, addr: usize) {
    let Some(v) = find(vmas, addr).filter(|v| v.start < addr).cloned() else {
        return;
    };
    vmas.insert(v.start, v.slice(v.start, addr));
    vmas.insert(addr, v.slice(addr, v.end));
}

/// Highest gap of `len` bytes below the top of the app range (Linux places
/// mmaps top-down).
fn find_gap(vmas: &BTreeMap<usize, Vma>, len: usize, lo: usize, hi: usize) -> Option<usize> {
    // Leave the lowest 4 GiB (executables, brk heap) to fixed mappings.
    let floor = lo.max(1 << 32);
    let mut top = hi & !(PAGE_SIZE - 1);
    for v in vmas.values().rev() {
        if v.end <= top && top - v.end >= len && top - len >= floor {
            return Some(top - len);
        }
        top = top.min(v.start);
    }
    (top >= floor + len).then(|| top - len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon(start: usize, end: usize) -> Vma {
        Vma {
            start,
            end,
            prot: PROT_READ,
            shared: false,
            backing: Backing::Anonymous,
            label: None,
        }
    }

    #[test]
    fn find_split_and_gaps() {
        let mut m = BTreeMap::new();
        m.insert(0x1000, anon(0x1000, 0x5000));
        m.insert(0x8000, anon(0x8000, 0x9000));
        assert!(find(&m, 0x4fff).is_some() && find(&m, 0x5000).is_none());
        assert!(overlaps(&m, 0x4000, 0x6000) && !overlaps(&m, 0x5000, 0x8000));
        assert!(fully_mapped(&m, 0x2000, 0x5000) && !fully_mapped(&m, 0x2000, 0x9000));
        split_at(&mut m, 0x3000);
        assert_eq!(
            m.keys().copied().collect::<Vec<_>>(),
            [0x1000, 0x3000, 0x8000]
        );
        assert_eq!(m[&0x1000].end, 0x3000);
        let gap = find_gap(&m, 0x2000, 0x1000, 0x8000_0000_0000).unwrap();
        assert_eq!(gap, 0x8000_0000_0000 - 0x2000, "mmaps go top-down");
    }

    #[test]
    fn neighbours_that_continue_each_other_merge() {
        let mut m = BTreeMap::new();
        for (s, e) in [
            (0x1000, 0x2000),
            (0x2000, 0x3000),
            (0x3000, 0x5000),
            (0x6000, 0x7000),
        ] {
            m.insert(s, anon(s, e));
        }
        let mut rw = anon(0x7000, 0x8000);
        rw.prot = PROT_READ | PROT_WRITE;
        m.insert(0x7000, rw);
        coalesce(&mut m, 0x2000, 0x3000);
        assert_eq!(
            m.keys().copied().collect::<Vec<_>>(),
            [0x1000, 0x6000, 0x7000]
        );
        assert_eq!(m[&0x1000].end, 0x5000);
        coalesce(&mut m, 0x6000, 0x8000);
        assert_eq!(
            m.len(),
            3,
            "a gap and a different protection keep mappings apart"
        );
    }

    #[test]
    fn gap_search_skips_occupied_tops() {
        let mut m = BTreeMap::new();
        let hi = 0x1_0010_0000;
        m.insert(hi - 0x4000, anon(hi - 0x4000, hi));
        assert_eq!(find_gap(&m, 0x1000, 0, hi), Some(hi - 0x5000));
        assert_eq!(find_gap(&m, 0x2_0000_0000, 0, hi), None);
    }

    #[test]
    fn slicing_a_file_mapping_moves_its_offset() {
        struct F;
        impl Mappable for F {
            fn frame(&self, _: u64) -> Result<PhysAddr, PageError> {
                Err(PageError::PastEnd)
            }
            fn frame_if_present(&self, _: u64) -> Option<PhysAddr> {
                None
            }
            fn describe(&self) -> String {
                "f".into()
            }
        }
        let v = Vma {
            start: 0x10000,
            end: 0x20000,
            prot: PROT_READ,
            shared: true,
            backing: Backing::File {
                object: Arc::new(F),
                offset: 0x3000,
            },
            label: None,
        };
        let s = v.slice(0x12000, 0x13000);
        match s.backing {
            Backing::File { offset, .. } => assert_eq!(offset, 0x5000),
            Backing::Anonymous => panic!("backing changed"),
        }
        assert_eq!(v.file_page(0x12000).unwrap().1, 5);
    }
}
