//! The VMSAv8-64 page-table format (4 KiB granule, 48-bit addresses, four
//! levels) as core's generic walker sees it, the system-register values
//! the boot code loads, TLB maintenance, the direct map and the fixmap.

use core::sync::atomic::{AtomicUsize, Ordering};

use aarch64_cpu::registers::{TTBR0_EL1, Writeable};
use keel_hal::paging::{Entry, PageTableFormat};
use keel_hal::{PageFlags, PhysAddr, VirtAddr};

use super::layout::{
    FIXMAP_BASE, FIXMAP_PAGES, GIB, KERNEL_BASE, PHYS_MAP_BASE, PHYS_MAP_LIMIT, UPPER_HALF,
};

/// Descriptor type bits: a next-level table (levels 0-2) or a page (level 3).
pub const TABLE: u64 = 0b11;
/// Descriptor type bits: a block (levels 1-2).
pub const BLOCK: u64 = 0b01;
/// A level-3 page descriptor.
pub const PAGE: u64 = 0b11;
/// MAIR index 0: normal memory, write-back cacheable.
pub const ATTR_INDEX_NORMAL: u64 = 0 << 2;
/// MAIR index 1: Device-nGnRE (MMIO).
pub const ATTR_INDEX_DEVICE: u64 = 1 << 2;
const ATTR_INDEX_MASK: u64 = 0b111 << 2;
/// AP[2]: read-only (at EL1; EL0 never has access).
pub const DESCRIPTOR_READ_ONLY: u64 = 1 << 7;
/// SH = inner shareable.
pub const DESCRIPTOR_INNER_SHARE: u64 = 0b11 << 8;
/// AF: accessed (set up front; no access-flag faults).
pub const DESCRIPTOR_ACCESS: u64 = 1 << 10;
/// PXN: not executable at EL1 (where both kernel and app run).
pub const DESCRIPTOR_PXN: u64 = 1 << 53;
/// UXN: not executable at EL0 (nothing runs at EL0).
pub const DESCRIPTOR_UXN: u64 = 1 << 54;
const ADDRESS: u64 = 0x0000_ffff_ffff_f000;

/// MAIR_EL1: attr0 normal write-back read/write-allocate, attr1
/// Device-nGnRE, attr2 Device-nGnRnE, attr3 normal non-cacheable.
pub const MAIR_VALUE: u64 = 0x44_00_04_ff;

/// TCR_EL1 without IPS (the boot code adds the CPU's physical address size,
/// at most 48 bits): T0SZ = T1SZ = 16 (48-bit halves), 4 KiB granules,
/// write-back inner-shareable walks, top byte ignored in the app half (as
/// Linux offers apps).
pub const TCR_VALUE: u64 = 16 // T0SZ
    | (0b01 << 8) // IRGN0 write-back write-allocate
    | (0b01 << 10) // ORGN0
    | (0b11 << 12) // SH0 inner shareable
    | (16 << 16) // T1SZ
    | (0b01 << 24) // IRGN1
    | (0b01 << 26) // ORGN1
    | (0b11 << 28) // SH1
    | (0b10 << 30) // TG1 = 4 KiB (TG0 = 0b00 is 4 KiB)
    | (1 << 37); // TBI0

/// SCTLR_EL1 bits that are RES1 in ARMv8.0 (EOS, TSCXT, EIS, nTLSMD,
/// LSMAOE) plus SPAN (PSTATE.PAN unchanged on exceptions).
pub const SCTLR_MMU_OFF: u64 =
    (1 << 11) | (1 << 20) | (1 << 22) | (1 << 23) | (1 << 28) | (1 << 29);
/// SCTLR_EL1 with the MMU on: M, C, SA, SA0 and I on top of the above.
/// WXN and alignment checks stay off.
pub const SCTLR_MMU_ON: u64 = SCTLR_MMU_OFF | 1 | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 12);

/// Four levels of 9 index bits, 4 KiB pages; 1 GiB blocks at level 1 and
/// 2 MiB blocks at level 2.
pub struct Vmsa4k;

impl PageTableFormat for Vmsa4k {
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
        level == 1 || level == 2 || level == 3
    }
    fn encode(entry: Entry, level: usize) -> u64 {
        match entry {
            Entry::Invalid => 0,
            // Tables grant everything; leaves restrict.
            Entry::Table(pa) => (pa.0 & ADDRESS) | TABLE,
            Entry::Leaf(pa, flags) => {
                let kind = if level == 3 { PAGE } else { BLOCK };
                let mut raw = (pa.0 & ADDRESS) | kind | DESCRIPTOR_ACCESS | DESCRIPTOR_UXN;
                if flags.contains(PageFlags::DEVICE) {
                    raw |= ATTR_INDEX_DEVICE;
                } else {
                    raw |= ATTR_INDEX_NORMAL | DESCRIPTOR_INNER_SHARE;
                }
                if !flags.contains(PageFlags::WRITE) {
                    raw |= DESCRIPTOR_READ_ONLY;
                }
                if !flags.contains(PageFlags::EXEC) || flags.contains(PageFlags::DEVICE) {
                    raw |= DESCRIPTOR_PXN;
                }
                raw
            }
        }
    }
    fn decode(raw: u64, level: usize) -> Entry {
        if raw & 1 == 0 || (level == 3 && raw & 0b11 != PAGE) || (level == 0 && raw & 0b11 != TABLE)
        {
            return Entry::Invalid;
        }
        if level < 3 && raw & 0b11 == TABLE {
            return Entry::Table(PhysAddr(raw & ADDRESS));
        }
        let span = Self::entry_span(level);
        let mut flags = PageFlags::READ;
        if raw & DESCRIPTOR_READ_ONLY == 0 {
            flags = flags | PageFlags::WRITE;
        }
        if raw & DESCRIPTOR_PXN == 0 {
            flags = flags | PageFlags::EXEC;
        }
        if raw & ATTR_INDEX_MASK == ATTR_INDEX_DEVICE {
            flags = flags | PageFlags::DEVICE;
        }
        Entry::Leaf(PhysAddr(raw & ADDRESS & !(span - 1)), flags)
    }
}

unsafe extern "C" {
    static keel_aarch64_kernel_root: [u64; 512];
    static keel_aarch64_app_root: [u64; 512];
    static keel_aarch64_direct_l1: [u64; 512];
    static keel_aarch64_fixmap_l3: [u64; 512];
}

/// Physical address of something in the kernel image.
pub fn image_phys(va: usize) -> u64 {
    (va - KERNEL_BASE) as u64 + super::boot::state().load_phys
}

/// The root table of the upper (kernel) half.
pub fn kernel_root() -> PhysAddr {
    PhysAddr(image_phys((&raw const keel_aarch64_kernel_root) as usize))
}

/// The root table of the lower (app) half.
pub fn app_root() -> PhysAddr {
    PhysAddr(image_phys((&raw const keel_aarch64_app_root) as usize))
}

/// The root that translates `va`.
pub fn root_for(va: VirtAddr) -> PhysAddr {
    if va.0 >= UPPER_HALF {
        kernel_root()
    } else {
        app_root()
    }
}

/// Point TTBR0 at the app half's (empty) root, dropping the boot identity
/// map from this CPU.
pub fn switch_to_app_root() {
    TTBR0_EL1.set(app_root().0);
    flush_all();
}

/// Make table writes visible to the table walker.
pub fn publish() {
    // SAFETY: barriers only.
    unsafe { core::arch::asm!("dsb ishst", "isb", options(nostack, preserves_flags)) };
}

/// Drop this CPU's translations of `va` (every level, any ASID).
pub fn flush_page(va: VirtAddr) {
    // TLBI takes the page number; bits 63:48 keep the half.
    let operand = (va.0 as u64 >> 12) & 0x0000_0fff_ffff_ffff;
    // SAFETY: TLB maintenance of this CPU only; barriers complete it.
    unsafe {
        core::arch::asm!(
            "dsb nshst",
            "tlbi vaae1, {}",
            "dsb nsh",
            "isb",
            in(reg) operand,
            options(nostack, preserves_flags)
        )
    };
}

/// Drop all of this CPU's translations.
pub fn flush_all() {
    // SAFETY: TLB maintenance of this CPU only; barriers complete it.
    unsafe {
        core::arch::asm!(
            "dsb nshst",
            "tlbi vmalle1",
            "dsb nsh",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Whether `va` is mapped, walking the live tables through the direct map
/// (for the backtrace walker, which must never fault).
pub fn is_mapped(va: usize) -> bool {
    let top = va >> 48;
    if top != 0 && top != 0xffff {
        return false;
    }
    let mut table = root_for(VirtAddr(va)).0;
    for level in 0..4 {
        if table >= PHYS_MAP_LIMIT || !direct_map_covers(table) {
            return false;
        }
        let index = Vmsa4k::index(VirtAddr(va), level);
        let p = (PHYS_MAP_BASE as u64 + table) as *const u64;
        // SAFETY: `table` is a live page table (a root, or an entry the walk
        // just read) inside RAM the direct map covers (checked above).
        let raw = unsafe { p.add(index).read_volatile() };
        match Vmsa4k::decode(raw, level) {
            Entry::Invalid => return false,
            Entry::Leaf(..) => return true,
            Entry::Table(next) => table = next.0,
        }
    }
    false
}

fn direct_l1() -> *mut u64 {
    (&raw const keel_aarch64_direct_l1).cast::<u64>().cast_mut()
}

/// Whether the direct map has the gigabyte holding `pa`.
pub fn direct_map_covers(pa: u64) -> bool {
    if pa >= PHYS_MAP_LIMIT {
        return false;
    }
    // SAFETY: the direct-map level-1 table is a static of 512 entries; the
    // index is below 512.
    let raw = unsafe { direct_l1().add((pa / GIB) as usize).read_volatile() };
    raw & 1 != 0
}

/// Add direct-map gigabytes covering every `[start, end)` range (RAM only:
/// MMIO is mapped through `vmap`). Returns how many bytes lie above the
/// 512 GiB the direct map can reach (they stay unused).
pub fn map_ram(ranges: &mut dyn Iterator<Item = (u64, u64)>) -> u64 {
    let block = BLOCK
        | ATTR_INDEX_NORMAL
        | DESCRIPTOR_INNER_SHARE
        | DESCRIPTOR_ACCESS
        | DESCRIPTOR_UXN
        | DESCRIPTOR_PXN;
    let mut beyond = 0;
    for (start, end) in ranges {
        if end > PHYS_MAP_LIMIT {
            beyond += end - start.max(PHYS_MAP_LIMIT);
        }
        let end = end.min(PHYS_MAP_LIMIT);
        let mut gib = start / GIB;
        while gib * GIB < end {
            if !direct_map_covers(gib * GIB) {
                // SAFETY: a static table entry (index below 512) that was
                // invalid: filling it needs no TLB maintenance.
                unsafe {
                    direct_l1()
                        .add(gib as usize)
                        .write_volatile((gib * GIB) | block)
                };
            }
            gib += 1;
        }
    }
    publish();
    beyond
}

static FIXMAP_NEXT: AtomicUsize = AtomicUsize::new(0);

/// Map device registers `[pa, pa + len)` in the fixmap (before the frame
/// allocator exists; for the console). Returns the virtual address of `pa`.
pub fn map_early_device(pa: u64, len: usize) -> Option<usize> {
    let first = pa & !0xfff;
    let pages = ((pa - first) as usize + len).div_ceil(4096);
    let slot = FIXMAP_NEXT.fetch_add(pages, Ordering::AcqRel);
    if slot + pages > FIXMAP_PAGES {
        return None;
    }
    let l3 = (&raw const keel_aarch64_fixmap_l3).cast::<u64>().cast_mut();
    for i in 0..pages {
        let raw = Vmsa4k::encode(
            Entry::Leaf(PhysAddr(first + (i as u64) * 4096), PageFlags::MMIO),
            3,
        );
        // SAFETY: fresh fixmap slots (handed out once above) in a static
        // level-3 table; they were invalid, so no TLB maintenance is needed.
        unsafe { l3.add(slot + i).write_volatile(raw) };
    }
    publish();
    Some(FIXMAP_BASE + slot * 4096 + (pa - first) as usize)
}
