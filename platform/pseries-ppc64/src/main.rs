//! Keel's kernel image for ppc64 under PAPR: QEMU/KVM `pseries` booted
//! through SLOF or QEMU's VOF (`-M pseries,x-vof=on`). Open Firmware is
//! asked for radix and XICS and read while it is alive (real mode); then
//! the arch crate turns translation on and core boots. Console, clock and
//! power go through hcalls and RTAS. This crate only wires things: the
//! arch crate runs the CPU, core runs the kernel.
//!
//! The image exists for ppc64 only. This root is the crate's one arch
//! selection: on other hosts (the workspace-wide host lint run) the
//! crate builds as an empty program.

#![cfg_attr(target_arch = "powerpc64", no_std, no_main)]

extern crate alloc;

#[cfg(target_arch = "powerpc64")]
mod pseries;

#[cfg(not(target_arch = "powerpc64"))]
fn main() {}
