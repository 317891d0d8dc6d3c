//! The memory functions the compiler calls on ppc64, which the
//! `powerpc64le-unknown-linux-gnu` target normally takes from libc: its
//! prebuilt `compiler_builtins` leaves them out.
//!
//! `#![no_builtins]` stops LLVM from recognising these loops as the very
//! functions they implement (which would make them call themselves).
//! Word-sized steps when both pointers allow it; bytes otherwise.
//!
//! Only for ppc64 (the crate's one arch selection): elsewhere these
//! symbols would override the host libc's in test binaries.

#![cfg(target_arch = "powerpc64")]
#![no_std]
#![no_builtins]

use core::ffi::c_int;

const WORD: usize = core::mem::size_of::<usize>();

/// Copy `n` bytes from `src` to `dest` (the ranges must not overlap).
///
/// # Safety
/// `src` readable and `dest` writable for `n` bytes; no overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    let mut i = 0;
    if (dest as usize | src as usize).is_multiple_of(WORD) {
        while i + WORD <= n {
            // SAFETY: both pointers are word aligned and in bounds per the contract.
            unsafe {
                (dest.add(i) as *mut usize).write((src.add(i) as *const usize).read());
            }
            i += WORD;
        }
    }
    while i < n {
        // SAFETY: in bounds per the contract.
        unsafe { dest.add(i).write(src.add(i).read()) };
        i += 1;
    }
    dest
}

/// Copy `n` bytes from `src` to `dest`; the ranges may overlap.
///
/// # Safety
/// `src` readable and `dest` writable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize) <= (src as usize) || (dest as usize) >= (src as usize).wrapping_add(n) {
        // Forward copy never reads a byte it already overwrote.
        let mut i = 0;
        while i < n {
            // SAFETY: in bounds per the contract.
            unsafe { dest.add(i).write(src.add(i).read()) };
            i += 1;
        }
    } else {
        let mut i = n;
        while i > 0 {
            i -= 1;
            // SAFETY: in bounds per the contract.
            unsafe { dest.add(i).write(src.add(i).read()) };
        }
    }
    dest
}

/// Fill `n` bytes at `dest` with the byte `c`.
///
/// # Safety
/// `dest` writable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, c: c_int, n: usize) -> *mut u8 {
    let byte = c as u8;
    let mut i = 0;
    if (dest as usize).is_multiple_of(WORD) {
        let word = usize::from_ne_bytes([byte; WORD]);
        while i + WORD <= n {
            // SAFETY: aligned and in bounds per the contract.
            unsafe { (dest.add(i) as *mut usize).write(word) };
            i += WORD;
        }
    }
    while i < n {
        // SAFETY: in bounds per the contract.
        unsafe { dest.add(i).write(byte) };
        i += 1;
    }
    dest
}

/// Compare `n` bytes: negative, zero or positive as `a` sorts before,
/// equal to or after `b`.
///
/// # Safety
/// Both readable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    let mut i = 0;
    while i < n {
        // SAFETY: in bounds per the contract.
        let (x, y) = unsafe { (a.add(i).read(), b.add(i).read()) };
        if x != y {
            return c_int::from(x) - c_int::from(y);
        }
        i += 1;
    }
    0
}

/// Whether `n` bytes differ (zero if equal).
///
/// # Safety
/// Both readable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { memcmp(a, b, n) }
}

/// The prebuilt libcore for this target was compiled for unwinding and
/// names the personality routine; Keel aborts on panic, so it never runs.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

/// Also named by the prebuilt liballoc's unwinding paths; with
/// `panic = "abort"` no unwind ever starts, so this never runs.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    loop {
        core::hint::spin_loop();
    }
}
