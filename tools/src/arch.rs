//! The architectures Keel builds for, and the facts the tools need about
//! each: Rust target, kernel image crate, QEMU binary, exit-code mapping.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::ValueEnum;

/// A CPU architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Arch {
    /// x86_64 (QEMU microvm and q35; KVM, Firecracker).
    #[value(name = "x86_64", alias = "x86-64", alias = "amd64")]
    X86_64,
    /// aarch64 (QEMU virt).
    #[value(name = "aarch64", alias = "arm64")]
    Aarch64,
    /// ppc64 little-endian (QEMU pseries).
    #[value(name = "ppc64", alias = "ppc64le", alias = "power")]
    Ppc64,
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the guest reported its end on the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestExit {
    /// `keel: exit status N`.
    Code(u8),
    /// `keel: exit status panic`.
    Panic,
}

impl Arch {
    /// Every architecture, in display order.
    pub const ALL: [Arch; 3] = [Arch::X86_64, Arch::Aarch64, Arch::Ppc64];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Ppc64 => "ppc64",
        }
    }

    /// The Rust target the kernel is built for.
    pub fn kernel_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-none",
            // Soft-float: the kernel never touches FP/SIMD registers (they
            // hold the app's state; traps need not save them).
            Arch::Aarch64 => "aarch64-unknown-none-softfloat",
            Arch::Ppc64 => "powerpc64le-unknown-linux-gnu",
        }
    }

    /// Debian's multiarch triplet (library directories, cross compilers).
    pub fn linux_triplet(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Aarch64 => "aarch64-linux-gnu",
            Arch::Ppc64 => "powerpc64le-linux-gnu",
        }
    }

    /// ELF e_machine of the arch's programs.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
            Arch::Ppc64 => 21,
        }
    }

    /// Debian's name for the arch (packages, sysroots).
    pub fn debian_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
            Arch::Ppc64 => "ppc64el",
        }
    }

    /// The arch crate (built for every arch on every test run).
    pub fn arch_crate(self) -> &'static str {
        match self {
            Arch::X86_64 => "keel-arch-x86_64",
            Arch::Aarch64 => "keel-arch-aarch64",
            Arch::Ppc64 => "keel-arch-ppc64",
        }
    }

    /// The kernel image (platform leaf) crate, relative to the workspace.
    pub fn image_crate(self) -> (&'static str, &'static str) {
        match self {
            Arch::X86_64 => ("keel-kvm-x86_64", "platform/kvm-x86_64"),
            Arch::Aarch64 => ("keel-kvm-aarch64", "platform/kvm-aarch64"),
            Arch::Ppc64 => ("keel-pseries-ppc64", "platform/pseries-ppc64"),
        }
    }

    /// Whether this checkout has a kernel image for the arch yet.
    pub fn has_image(self, workspace: &Path) -> bool {
        workspace
            .join(self.image_crate().1)
            .join("Cargo.toml")
            .exists()
    }

    /// Fail clearly if the arch has no kernel image in this checkout.
    pub fn require_image(self, workspace: &Path) -> Result<()> {
        if !self.has_image(workspace) {
            let landed: Vec<_> = Arch::ALL
                .iter()
                .filter(|a| a.has_image(workspace))
                .map(|a| a.name())
                .collect();
            bail!(
                "no {self} kernel image in this checkout yet ({} does not exist); arches with an image: {}",
                self.image_crate().1,
                landed.join(", ")
            );
        }
        Ok(())
    }

    /// Path of the built kernel image.
    pub fn image_path(self, workspace: &Path, release: bool) -> PathBuf {
        workspace
            .join("target")
            .join(self.kernel_target())
            .join(if release { "release" } else { "debug" })
            .join(self.image_crate().0)
    }

    /// The QEMU system emulator for the arch.
    pub fn qemu_binary(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
            Arch::Ppc64 => "qemu-system-ppc64",
        }
    }

    /// The QEMU exit status a well-behaved run of this arch ends with, given
    /// the guest's console marker (a cross-check; the marker is the truth).
    pub fn expected_qemu_status(self, exit: GuestExit) -> i32 {
        match self {
            // Status 0 powers off through ACPI (QEMU exits 0); others write the
            // isa-debug-exit port, which makes QEMU exit with (v << 1) | 1.
            Arch::X86_64 => match exit {
                GuestExit::Code(0) => 0,
                GuestExit::Code(n) => ((i32::from(n) << 1) | 1) & 0xff,
                GuestExit::Panic => 0xff,
            },
            // Status 0 powers off through PSCI (QEMU exits 0); others and
            // panics (255) use semihosting SYS_EXIT, which carries the status.
            Arch::Aarch64 => match exit {
                GuestExit::Code(n) => i32::from(n),
                GuestExit::Panic => 0xff,
            },
            // RTAS power-off exits 0; ibm,os-term with -action panic=exit-failure exits 1.
            Arch::Ppc64 => match exit {
                GuestExit::Code(0) => 0,
                _ => 1,
            },
        }
    }

    /// The host's architecture, if Keel supports it.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            "powerpc64" => Some(Arch::Ppc64),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_exit_codes_follow_isa_debug_exit() {
        let a = Arch::X86_64;
        assert_eq!(a.expected_qemu_status(GuestExit::Code(0)), 0);
        assert_eq!(a.expected_qemu_status(GuestExit::Code(1)), 3);
        assert_eq!(a.expected_qemu_status(GuestExit::Code(127)), 255);
        assert_eq!(a.expected_qemu_status(GuestExit::Panic), 255);
    }

    #[test]
    fn aarch64_exit_codes_follow_semihosting() {
        let a = Arch::Aarch64;
        assert_eq!(a.expected_qemu_status(GuestExit::Code(0)), 0);
        assert_eq!(a.expected_qemu_status(GuestExit::Code(1)), 1);
        assert_eq!(a.expected_qemu_status(GuestExit::Code(127)), 127);
        assert_eq!(a.expected_qemu_status(GuestExit::Panic), 255);
    }
}
