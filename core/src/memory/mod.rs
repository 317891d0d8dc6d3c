//! Physical and virtual memory: the frame allocator, the kernel heap, the
//! generic page-table walker, kernel virtual mappings and thread stacks.

pub mod app_space;
pub mod frame;
pub mod heap;
pub mod map;
pub mod page_table;
pub mod stack;
pub mod vmap;

use keel_hal::{PhysAddr, VirtAddr, machine};

/// Size of the smallest page on every Keel arch.
pub const PAGE_SIZE: usize = 4096;

/// Kernel virtual address of physical address `pa` in the direct map.
#[inline]
pub fn phys_to_virt(pa: PhysAddr) -> VirtAddr {
    VirtAddr(machine::phys_map_base() + pa.0 as usize)
}

/// Physical address of a direct-map address (only valid for the direct map).
#[inline]
pub fn virt_to_phys_direct(va: VirtAddr) -> PhysAddr {
    PhysAddr((va.0 - machine::phys_map_base()) as u64)
}

static INITRD: spin::Once<(PhysAddr, u64)> = spin::Once::new();

/// The initial ramdisk the loader passed, if any, as bytes.
pub fn initrd() -> Option<&'static [u8]> {
    let &(pa, len) = INITRD.get()?;
    let p = phys_to_virt(pa).as_ptr::<u8>();
    // SAFETY: the platform marked the initrd in use, so the frame allocator
    // never hands it out; it is mapped in the direct map and nothing writes it.
    Some(unsafe { core::slice::from_raw_parts(p, len as usize) })
}

/// Bring up memory management from the boot memory map. The heap needs no
/// step of its own: its first allocation claims frames.
pub fn init(boot: &keel_hal::BootInfo) {
    let usable = map::usable_ranges(boot.memory_regions());
    frame::init(&usable);
    if let Some(rd) = boot.initrd {
        INITRD.call_once(|| rd);
    }
}
