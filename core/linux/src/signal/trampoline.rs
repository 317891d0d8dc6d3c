//! The page of app code a signal handler returns through (what Linux's
//! vDSO provides on aarch64 and ppc64): mapped once per process on first
//! use, read-only and executable, holding a few instructions that call
//! rt_sigreturn.

use alloc::borrow::Cow;
use core::sync::atomic::{AtomicU64, Ordering};

use keel_core::app::SPACE;
use keel_core::memory::PAGE_SIZE;
use keel_core::memory::app_space::{Backing, PROT_EXEC, PROT_READ, PROT_WRITE, Vma};

use crate::mem;

/// The address of the page holding `code` (little-endian instruction
/// words), mapping it on first use; `cell` remembers it (0: not yet).
/// None if the app's address space has no room.
pub fn map_once(cell: &AtomicU64, code: &[u32]) -> Option<u64> {
    if let at @ 1.. = cell.load(Ordering::Acquire) {
        return Some(at);
    }
    let vma = Vma {
        start: 0,
        end: 0,
        prot: PROT_READ | PROT_WRITE,
        shared: false,
        backing: Backing::Anonymous,
        label: Some(Cow::Borrowed("[vdso]")),
    };
    let at = SPACE.map(None, PAGE_SIZE, vma, false).ok()? as u64;
    let bytes: alloc::vec::Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    // Filled while writable, then made the app's read-only code.
    if mem::write_bytes(at, &bytes).is_err()
        || SPACE
            .protect(at as usize, PAGE_SIZE, PROT_READ | PROT_EXEC)
            .is_err()
    {
        let _ = SPACE.unmap(at as usize, PAGE_SIZE);
        return None;
    }
    match cell.compare_exchange(0, at, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(at),
        Err(other) => {
            // Another thread mapped one first: use that.
            let _ = SPACE.unmap(at as usize, PAGE_SIZE);
            Some(other)
        }
    }
}
