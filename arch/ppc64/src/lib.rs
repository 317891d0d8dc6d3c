//! ppc64 support for Keel: little-endian POWER9 and POWER10 guests under
//! PAPR (KVM/QEMU `pseries`, PowerVM).
//!
//! The type `Ppc64` implements the whole `keel_hal::Arch` contract and is
//! registered with `keel_hal::export_arch!`: boot entry (endianness
//! fix-up, 64-bit mode, TOC), radix MMU with the kernel in quadrant 3 and
//! the app in quadrant 0, trap entry that moves every trap onto the
//! thread's kernel stack in software, the decrementer as a one-shot
//! timer, the timebase as the clock, XICS through hcalls, SMP through
//! RTAS, and FP/VMX/VSX state across switches.
//!
//! The radix entry format and the layout are plain Rust that builds and
//! tests on any host; the machine itself only on ppc64.

#![no_std]

extern crate alloc;

pub mod layout;
pub mod radix;

#[cfg(target_arch = "powerpc64")]
mod machine;
#[cfg(target_arch = "powerpc64")]
pub use machine::*;
