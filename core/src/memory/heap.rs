//! The kernel heap (`alloc` works everywhere, including interrupt handlers).
//!
//! Talc does the allocating; it grows by claiming 2 MiB blocks from the
//! frame allocator, reached through the direct map, so growing needs no
//! page-table changes. The lock masks interrupts.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use talc::base::Talc;
use talc::base::binning::Binning;
use talc::source::Source;

use keel_hal::PhysAddr;

use super::{PAGE_SIZE, frame, phys_to_virt};
use crate::sync::SpinLock;

/// Frames claimed by the first growth step: 256 KiB. Small, so it can come
/// from memory next to the kernel that the host has already backed; a
/// fresh 2 MiB block costs a host page fault and zeroing at boot.
const FIRST_ORDER: usize = 6;
/// Frames claimed per later growth step: 2 MiB.
const GROW_ORDER: usize = 9;

static GROWN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Grows the heap from the frame allocator.
#[derive(Debug)]
pub struct FrameSource;

// SAFETY: `acquire` only claims memory freshly allocated from the frame
// allocator (never used by anything else) and never touches the heap itself.
unsafe impl Source for FrameSource {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        let need = layout.size() + layout.align() + 4 * PAGE_SIZE;
        let step = if GROWN.swap(true, core::sync::atomic::Ordering::Relaxed) {
            GROW_ORDER
        } else {
            FIRST_ORDER
        };
        let order = (step..=frame::MAX_ORDER)
            .find(|&o| PAGE_SIZE << o >= need)
            .ok_or(())?;
        let pa: PhysAddr = frame::alloc(order).ok_or(())?;
        let base = phys_to_virt(pa).as_ptr::<u8>();
        // SAFETY: the block is ours alone from now on; it is mapped in the direct map.
        unsafe { talc.claim(base, PAGE_SIZE << order) }
            .map(|_| ())
            .ok_or(())
    }
}

/// The kernel's global allocator.
pub struct KernelHeap {
    talc: SpinLock<Talc<FrameSource, talc::DefaultBinning>>,
}

#[cfg_attr(any(test, not(feature = "global-allocator")), allow(dead_code))]
impl KernelHeap {
    const fn new() -> Self {
        Self {
            talc: SpinLock::new(Talc::new(FrameSource)),
        }
    }
}

// SAFETY: Talc upholds the GlobalAlloc contract; the spinlock serialises
// every call and masks interrupts so a handler cannot re-enter it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract; the size is non-zero per GlobalAlloc.
        unsafe { self.talc.lock().allocate(layout) }.map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this `layout`.
        unsafe { self.talc.lock().deallocate(ptr, layout) }
    }
}

#[cfg(all(not(test), feature = "global-allocator"))]
#[global_allocator]
static HEAP: KernelHeap = KernelHeap::new();
