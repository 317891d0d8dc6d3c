//! Thread stacks (with an unmapped guard page below each) and per-thread
//! FP/vector save areas. Freed stacks go to a cache and are reused as they
//! are, so creating threads rarely touches the page tables.

use alloc::alloc::{alloc_zeroed, dealloc};
use alloc::vec::Vec;
use core::alloc::Layout;
use core::ptr::NonNull;

use keel_hal::{PageFlags, VirtAddr, machine};

use super::{PAGE_SIZE, frame, vmap};
use crate::sync::SpinLock;

/// Usable bytes of a kernel thread stack.
pub const STACK_SIZE: usize = 64 * 1024;
/// Unmapped bytes below each stack; running into them is a page fault,
/// reported as a stack overflow, never silent corruption.
pub const GUARD_SIZE: usize = PAGE_SIZE;
const STACK_ORDER: usize = (STACK_SIZE / PAGE_SIZE).trailing_zeros() as usize;

/// A mapped kernel stack `[bottom, top)`.
#[derive(Debug)]
pub struct Stack {
    bottom: usize,
}

static CACHE: SpinLock<Vec<usize>> = SpinLock::new(Vec::new());

impl Stack {
    /// A stack from the cache, or a freshly mapped one.
    pub fn alloc() -> Option<Self> {
        if let Some(bottom) = CACHE.lock().pop() {
            return Some(Self { bottom });
        }
        let slot = vmap::reserve(GUARD_SIZE + STACK_SIZE, PAGE_SIZE)?;
        let bottom = slot.add(GUARD_SIZE);
        let frames = frame::alloc(STACK_ORDER)?;
        if vmap::map(bottom, frames, STACK_SIZE, PageFlags::DATA).is_err() {
            // Undo whatever part got mapped before giving the frames back.
            let _ = vmap::unmap(bottom, STACK_SIZE, &mut |_, _, _| {});
            frame::free(frames, STACK_ORDER);
            return None;
        }
        Some(Self { bottom: bottom.0 })
    }

    /// Lowest usable address (the guard page is just below).
    pub fn bottom(&self) -> usize {
        self.bottom
    }
    /// One past the highest usable address.
    pub fn top(&self) -> usize {
        self.bottom + STACK_SIZE
    }
    /// Whether `addr` lies in this stack's guard page.
    pub fn guard_contains(&self, addr: VirtAddr) -> bool {
        (self.bottom - GUARD_SIZE..self.bottom).contains(&addr.0)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        CACHE.lock().push(self.bottom);
    }
}

/// A thread's FP/vector save area, sized and aligned as the arch asks.
#[derive(Debug)]
pub struct FpArea {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the area is plain memory owned by one thread; the scheduler only
// touches it while switching that thread, on one CPU at a time.
unsafe impl Send for FpArea {}
// SAFETY: as above; no shared access happens through `&FpArea`.
unsafe impl Sync for FpArea {}

impl FpArea {
    /// A fresh area in the ABI's initial state; `None` if the arch needs
    /// none (size 0) or memory ran out.
    pub fn new() -> Option<Self> {
        let layout = machine::fp_state_layout();
        if layout.size() == 0 {
            return None;
        }
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        // SAFETY: freshly allocated with the arch's layout.
        unsafe { machine::init_fp_state(ptr.as_ptr()) };
        Some(Self { ptr, layout })
    }

    /// The area for the arch's switch code.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for FpArea {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Whether `addr` looks like a stack guard page: an unmapped kernel-vmap
/// page directly below a mapped one. Used to name stack overflows in reports.
pub fn is_guard_page(addr: VirtAddr) -> bool {
    let (start, end) = machine::kernel_vmap();
    let above = VirtAddr((addr.0 & !(PAGE_SIZE - 1)) + PAGE_SIZE);
    (start..end).contains(&addr.0)
        && vmap::translate(addr).is_none()
        && vmap::translate(above).is_some()
}
