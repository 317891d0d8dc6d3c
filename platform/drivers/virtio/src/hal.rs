//! The virtio-drivers `Hal` over Keel's memory: DMA pages from the frame
//! allocator (reached through the direct map), device registers mapped
//! uncached, and buffers shared with devices by physical address.
//!
//! Sharing never copies: every buffer the drivers in this crate hand to a
//! queue comes from the kernel heap or a DMA allocation, both physically
//! contiguous, and [`phys_of`] checks that before anything is queued.

use core::ptr::NonNull;

use keel_core::memory::{PAGE_SIZE, frame, phys_to_virt, vmap};
use keel_core::sync::SpinLock;
use keel_hal::{PhysAddr, VirtAddr};
use virtio_drivers::{BufferDirection, Hal};

/// Keel's side of virtio-drivers.
pub struct KeelHal;

/// Register windows already mapped: (physical base, length, virtual base).
/// PCI transports map every capability region of a BAR separately; reusing
/// the BAR's one mapping keeps kernel address space from leaking.
static MMIO: SpinLock<alloc::vec::Vec<(u64, usize, usize)>> = SpinLock::new(alloc::vec::Vec::new());

/// Map `[pa, pa+len)` uncached once (before a transport is built), so
/// [`Hal::mmio_phys_to_virt`], which cannot fail, finds it later.
pub fn premap(pa: u64, len: usize) -> Result<usize, &'static str> {
    if let Some(va) = lookup(pa, len) {
        return Ok(va);
    }
    let va = vmap::map_mmio(PhysAddr(pa), len).map_err(|_| "cannot map device registers")?;
    MMIO.lock().push((pa, len, va.0));
    Ok(va.0)
}

fn lookup(pa: u64, len: usize) -> Option<usize> {
    MMIO.lock()
        .iter()
        .find(|&&(base, size, _)| pa >= base && pa + len as u64 <= base + size as u64)
        .map(|&(base, _, va)| va + (pa - base) as usize)
}

/// Buddy order holding `pages` pages.
fn order_of(pages: usize) -> usize {
    pages.max(1).next_power_of_two().trailing_zeros() as usize
}

/// The physical address of `[va, va+len)` if it is mapped to one
/// physically contiguous range (heap and DMA memory always are).
pub fn phys_of(va: usize, len: usize) -> Option<u64> {
    let (first, _) = vmap::translate(VirtAddr(va))?;
    let mut page = va - va % PAGE_SIZE + PAGE_SIZE;
    while page < va + len {
        let (pa, _) = vmap::translate(VirtAddr(page))?;
        if pa.0 != first.0 + (page - va) as u64 {
            return None;
        }
        page += PAGE_SIZE;
    }
    Some(first.0)
}

// SAFETY: dma_alloc returns zeroed, exclusively owned, physically
// contiguous pages mapped at the returned address (the direct map);
// share returns the true physical address of the whole buffer or stops.
unsafe impl Hal for KeelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (u64, NonNull<u8>) {
        match frame::alloc_zeroed(order_of(pages)) {
            Some(pa) => match NonNull::new(phys_to_virt(pa).as_ptr::<u8>()) {
                Some(va) => (pa.0, va),
                None => (0, NonNull::dangling()),
            },
            // virtio-drivers turns a zero address into Error::DmaError.
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: u64, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        frame::free(PhysAddr(paddr), order_of(pages));
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: u64, size: usize) -> NonNull<u8> {
        // Transports are only built after `premap` covered their windows
        // (see pci.rs), so the lookup finds them; mapping here is the
        // fallback for a window premap did not know about.
        let va = lookup(paddr, size).or_else(|| premap(paddr, size).ok());
        match va.and_then(|va| NonNull::new(va as *mut u8)) {
            Some(p) => p,
            None => panic!("virtio: cannot map device registers at {paddr:#x}+{size:#x}"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> u64 {
        let va = buffer.as_ptr() as *mut u8 as usize;
        match phys_of(va, buffer.len()) {
            Some(pa) => pa,
            // Every buffer this crate queues is heap or DMA memory; anything
            // else is a bug in this crate, not bad input.
            None => panic!(
                "virtio: buffer {va:#x}+{:#x} is not physically contiguous",
                buffer.len()
            ),
        }
    }

    unsafe fn unshare(_paddr: u64, _buffer: NonNull<[u8]>, _direction: BufferDirection) {
        // Nothing was copied: the device wrote the caller's memory itself
        // (DMA is cache-coherent on every platform Keel runs on).
    }
}
