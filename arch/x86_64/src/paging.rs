//! x86_64 4-level page tables as the generic walker sees them, plus TLB
//! and root-table access.

use keel_hal::paging::{Entry, PageTableFormat};
use keel_hal::{PageFlags, PhysAddr, VirtAddr};
use x86_64::instructions::tlb;

use crate::cpu;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const WRITE_THROUGH: u64 = 1 << 3;
const CACHE_DISABLE: u64 = 1 << 4;
const HUGE: u64 = 1 << 7;
const NO_EXECUTE: u64 = 1 << 63;
const ADDRESS: u64 = 0x000f_ffff_ffff_f000;

/// PML4 → PDPT → PD → PT, 9 bits each, 4 KiB pages; 2 MiB leaves in PDs
/// and 1 GiB leaves in PDPTs when the CPU has them.
pub struct X86Format;

impl PageTableFormat for X86Format {
    fn levels() -> usize {
        4
    }
    fn page_shift() -> u32 {
        12
    }
    fn index_bits(_level: usize) -> u32 {
        9
    }
    fn leaf_allowed(level: usize) -> bool {
        level == 2 || level == 3 || (level == 1 && cpu::has_1g_pages())
    }
    fn encode(entry: Entry, level: usize) -> u64 {
        match entry {
            Entry::Invalid => 0,
            // Tables grant everything; leaves restrict.
            Entry::Table(pa) => pa.0 | PRESENT | WRITABLE,
            Entry::Leaf(pa, flags) => {
                let mut raw = pa.0 | PRESENT;
                if flags.contains(PageFlags::WRITE) {
                    raw |= WRITABLE;
                }
                if !flags.contains(PageFlags::EXEC) {
                    raw |= NO_EXECUTE;
                }
                if flags.contains(PageFlags::DEVICE) {
                    raw |= CACHE_DISABLE | WRITE_THROUGH;
                }
                if level < 3 {
                    raw |= HUGE;
                }
                raw
            }
        }
    }
    fn decode(raw: u64, level: usize) -> Entry {
        if raw & PRESENT == 0 {
            return Entry::Invalid;
        }
        if level < 3 && raw & HUGE == 0 {
            return Entry::Table(PhysAddr(raw & ADDRESS));
        }
        let span = Self::entry_span(level);
        let mut flags = PageFlags::READ;
        if raw & WRITABLE != 0 {
            flags = flags | PageFlags::WRITE;
        }
        if raw & NO_EXECUTE == 0 {
            flags = flags | PageFlags::EXEC;
        }
        if raw & CACHE_DISABLE != 0 {
            flags = flags | PageFlags::DEVICE;
        }
        Entry::Leaf(PhysAddr(raw & ADDRESS & !(span - 1)), flags)
    }
}

/// The root table (one for the whole system).
pub fn root() -> PhysAddr {
    let (frame, _) = x86_64::registers::control::Cr3::read_raw();
    PhysAddr(frame.start_address().as_u64())
}

/// Drop this CPU's translation of `va`.
pub fn flush_page(va: VirtAddr) {
    tlb::flush(x86_64::VirtAddr::new_truncate(va.0 as u64));
}

/// Drop all of this CPU's non-global translations.
pub fn flush_all() {
    tlb::flush_all();
}

/// Whether `va` is mapped, by walking the live tables through the direct
/// map (used by the backtrace walker, which must never fault).
pub fn is_mapped(va: usize) -> bool {
    let canonical = !(0x0000_8000_0000_0000..0xffff_8000_0000_0000).contains(&va);
    if !canonical {
        return false;
    }
    let mut table = root().0;
    for level in 0..4 {
        let index = X86Format::index(VirtAddr(va), level);
        let p = (crate::layout::PHYS_MAP_BASE as u64 + table) as *const u64;
        // SAFETY: `table` is a live page table (root, or an entry the walk
        // just read); the direct map covers all of them.
        let raw = unsafe { p.add(index).read_volatile() };
        match X86Format::decode(raw, level) {
            Entry::Invalid => return false,
            Entry::Leaf(..) => return true,
            Entry::Table(next) => table = next.0,
        }
    }
    false
}

/// Extend the boot direct map (physical 0..4 GiB) to cover RAM up to
/// `end`: 1 GiB pages when the CPU has them, else 2 MiB pages in page
/// directories whose frames `take_page` provides (zeroed by this function;
/// they must lie below 4 GiB, which the direct map already covers).
pub fn extend_direct_map(
    end: u64,
    take_page: &mut dyn FnMut() -> Option<u64>,
) -> Result<(), &'static str> {
    const GIB: u64 = 1 << 30;
    // The direct map's PDPT is the boot "low" PDPT (PML4 slot of PHYS_MAP_BASE).
    let pml4 = (crate::layout::PHYS_MAP_BASE as u64 + root().0) as *const u64;
    let slot = (crate::layout::PHYS_MAP_BASE >> 39) & 511;
    // SAFETY: the root table is live and mapped in the direct map.
    let pdpt_phys = unsafe { pml4.add(slot).read_volatile() } & ADDRESS;
    let pdpt = (crate::layout::PHYS_MAP_BASE as u64 + pdpt_phys) as *mut u64;
    let gibs = end.div_ceil(GIB).min(512);
    for g in 4..gibs {
        let entry = if cpu::has_1g_pages() {
            (g * GIB) | PRESENT | WRITABLE | HUGE | NO_EXECUTE
        } else {
            let pd = take_page().ok_or("no memory below 4 GiB for direct-map page tables")?;
            let table = (crate::layout::PHYS_MAP_BASE as u64 + pd) as *mut u64;
            for i in 0..512u64 {
                // SAFETY: `pd` is a fresh page below 4 GiB, mapped in the direct map.
                unsafe {
                    table.add(i as usize).write_volatile(
                        (g * GIB + (i << 21)) | PRESENT | WRITABLE | HUGE | NO_EXECUTE,
                    )
                };
            }
            pd | PRESENT | WRITABLE
        };
        // SAFETY: slot `g` of the direct-map PDPT is unused (only 0..4 were filled at boot).
        unsafe { pdpt.add(g as usize).write_volatile(entry) };
    }
    flush_all();
    Ok(())
}
