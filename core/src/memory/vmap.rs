//! Kernel virtual mappings outside the direct map: thread stacks with
//! guard pages and device (MMIO) windows. Addresses come from the arch's
//! `KERNEL_VMAP` range and are never reused for something else, so a stale
//! TLB entry can never alias another mapping.

use keel_hal::{PageFlags, PhysAddr, VirtAddr, machine};

use super::page_table::{self, MapError, TableMemory};
use super::{PAGE_SIZE, frame, phys_to_virt};
use crate::sync::SpinLock;

/// Page tables reached through the direct map, tables from the frame allocator.
pub struct DirectMapTables;

impl TableMemory for DirectMapTables {
    fn read(&self, table: PhysAddr, index: usize) -> u64 {
        let p = phys_to_virt(table).as_ptr::<u64>();
        // SAFETY: `table` is a live page table (the walker only follows
        // entries it or the arch wrote), mapped in the direct map.
        unsafe { p.add(index).read_volatile() }
    }
    fn write(&mut self, table: PhysAddr, index: usize, value: u64) {
        let p = phys_to_virt(table).as_ptr::<u64>();
        // SAFETY: as in `read`; volatile because the MMU reads it behind
        // the compiler's back.
        unsafe { p.add(index).write_volatile(value) }
    }
    fn alloc_table(&mut self, bytes: usize) -> Option<PhysAddr> {
        let order = bytes
            .div_ceil(PAGE_SIZE)
            .next_power_of_two()
            .trailing_zeros() as usize;
        frame::alloc_zeroed(order)
    }
}

/// Next free address in the kernel mapping range; grows upwards only.
static NEXT: SpinLock<usize> = SpinLock::new(0);
/// Serialises every edit of the page tables (kernel and app halves).
pub(crate) static TABLES: SpinLock<DirectMapTables> = SpinLock::new(DirectMapTables);

/// Reserve `len` bytes of kernel virtual space aligned to `align`.
pub fn reserve(len: usize, align: usize) -> Option<VirtAddr> {
    let (start, end) = machine::kernel_vmap();
    let mut next = NEXT.lock();
    if *next == 0 {
        *next = start;
    }
    let base = next.checked_add(align - 1)? & !(align - 1);
    let limit = base.checked_add(len)?;
    if limit > end {
        return None;
    }
    *next = limit;
    Some(VirtAddr(base))
}

/// Map `[va, va+len)` to `[pa, pa+len)` in the kernel half.
pub fn map(va: VirtAddr, pa: PhysAddr, len: usize, flags: PageFlags) -> Result<(), MapError> {
    let root = machine::table_root(va);
    let mut tables = TABLES.lock();
    let r = page_table::map::<machine::ActiveFormat, _>(&mut *tables, root, va, pa, len, flags);
    machine::publish_table_update();
    r
}

/// Unmap `[va, va+len)` on this CPU's view. Callers that may have touched
/// the range from other CPUs must shoot down their TLBs too.
pub fn unmap(
    va: VirtAddr,
    len: usize,
    freed: &mut dyn FnMut(VirtAddr, PhysAddr, usize),
) -> Result<(), MapError> {
    let root = machine::table_root(va);
    let mut tables = TABLES.lock();
    let r = page_table::unmap::<machine::ActiveFormat, _>(&mut *tables, root, va, len, freed);
    machine::publish_table_update();
    let mut page = va.0;
    while page < va.0 + len {
        machine::flush_tlb_page(VirtAddr(page));
        page += PAGE_SIZE;
    }
    r
}

/// The physical address and rights `va` maps to.
pub fn translate(va: VirtAddr) -> Option<(PhysAddr, PageFlags)> {
    let root = machine::table_root(va);
    let tables = TABLES.lock();
    page_table::translate::<machine::ActiveFormat, _>(&*tables, root, va)
}

/// Map a device's registers `[pa, pa+len)` uncached; returns where.
pub fn map_mmio(pa: PhysAddr, len: usize) -> Result<VirtAddr, MapError> {
    let first = pa.align_down(PAGE_SIZE as u64);
    let span = (pa.0 - first.0) as usize + len;
    let span = span.div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let va = reserve(span, PAGE_SIZE).ok_or(MapError::NoMemory)?;
    map(va, first, span, PageFlags::MMIO)?;
    Ok(va.add((pa.0 - first.0) as usize))
}
