//! aarch64 (ARMv8-A) support for Keel: boot from EL2 or EL1 to the higher
//! half, the 4 KiB-granule page-table format, exception vectors and fault
//! reports, GICv2/GICv3, the generic timer, PSCI (SMP, power-off),
//! semihosting, per-CPU data in TPIDR_EL1, context switch with FP/SIMD
//! state.
//!
//! The type `Aarch64` implements the whole `keel_hal::Arch` contract and is
//! registered with `keel_hal::export_arch!`. A platform crate provides the
//! boot protocol's entry (it branches to `keel_aarch64_entry` with the DTB
//! address in x0) and `keel_platform_main`, which the boot path calls once
//! the MMU is on and the CPU runs in the higher half.

#![no_std]

extern crate alloc;

// The one architecture selection in this crate: on other targets (the
// host's `cargo clippy --workspace`) the crate is empty.
#[cfg(target_arch = "aarch64")]
mod port;
#[cfg(target_arch = "aarch64")]
pub use port::*;
