//! PAPR, the interface a pseries guest gets from its hypervisor (KVM with
//! QEMU, PowerVM): hypervisor calls (`sc 1`) and RTAS, the run-time
//! abstraction services reached here through QEMU/KVM's `H_RTAS` hcall.
//!
//! Shared by the ppc64 arch crate (interrupt controller, MMU registration,
//! starting CPUs) and the pseries image (console, clock, power). The
//! encodings (RTAS argument blocks, console character packing, calendar
//! time) are plain functions tested on the host; only the two calls that
//! trap to the hypervisor are ppc64 machine code.

#![no_std]

pub mod dt;
pub mod hcall;
pub mod rtas;
pub mod term;

/// The instructions that enter the hypervisor (ppc64 only; the rest of
/// this crate builds and tests anywhere).
#[cfg(target_arch = "powerpc64")]
mod machine;

#[cfg(target_arch = "powerpc64")]
pub use machine::{hcall, rtas_call};
