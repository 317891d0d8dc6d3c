//! Keel's kernel image for aarch64 under KVM/QEMU: boots as an arm64 Linux
//! Image (64-byte header) or as an ELF, reads the machine from the device
//! tree (QEMU virt, Firecracker and cloud VMs describe themselves that
//! way), PL011 console, PL031 clock, PSCI and semihosting power-off. This
//! crate only wires things: the arch crate runs the CPU, core runs the
//! kernel.

#![cfg_attr(target_arch = "aarch64", no_std, no_main)]

extern crate alloc;

// The one architecture selection in this crate: the image exists only
// for aarch64; elsewhere (the host's workspace-wide clippy) this is a
// program that says so.
#[cfg(target_arch = "aarch64")]
mod machine;

#[cfg(not(target_arch = "aarch64"))]
fn main() {
    eprintln!(
        "keel-kvm-aarch64 is a kernel image: build it with `cargo keel build --arch aarch64`"
    );
    std::process::exit(2);
}
