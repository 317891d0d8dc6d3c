//! The contract between Keel's arch-neutral core and the arch/platform crates.
//!
//! `hal` holds traits and plain types, and no code that runs. It is the
//! lowest layer: core, fs and net call *down* into it, arch and platform
//! crates implement it.
//!
//! # How the contract is bound
//!
//! Exactly one arch crate and one platform crate are linked into a kernel
//! image (the platform leaf crate picks them, as a Tock board does). Each
//! implements its traits on a type and registers it with [`export_arch!`] or
//! [`export_platform!`]. Those macros check at compile time that the type
//! implements the *whole* contract ([`Arch`] / [`Platform`]) and emit the
//! link-time symbols that the safe functions in [`machine`] forward to. A
//! missing implementation is a compile error; a missing registration is a
//! link error. With LTO the forwarding calls inline to the arch code.
//!
//! Calls the other way (an interrupt arriving, a fault) go to the
//! [`Kernel`] upcalls, which core registers with [`export_kernel!`].
//!
//! The rules for growing this crate are in `docs/hal-design.md`.

#![no_std]

pub mod addr;
pub mod app;
pub mod boot;
pub mod clock;
pub mod context;
pub mod cpu;
mod export;
pub mod interrupt;
pub mod machine;
pub mod paging;
pub mod platform;
pub mod smp;
pub mod trap;

pub use addr::{PhysAddr, VirtAddr};
pub use app::{App, AppFrame};
pub use boot::CpuDescriptor;
pub use boot::{BootInfo, Firmware, MemoryKind, MemoryRegion};
pub use clock::Clock;
pub use context::{Context, SwitchFrame};
pub use cpu::{Cpu, CpuIndex};
pub use interrupt::{Interrupts, Ipi, IrqLine};
pub use paging::{PageFlags, PageTableFormat, Paging};
pub use platform::{ExitStatus, Platform};
pub use smp::Smp;
pub use trap::{Fault, FaultKind, FaultResolution, Kernel};

/// Everything an architecture provides to core. A type implementing `Arch`
/// implements the whole per-CPU contract; [`export_arch!`] requires it.
pub trait Arch: Cpu + Context + Paging + Clock + Interrupts + Smp + App {
    /// Short name used in banners and reports ("x86_64", "aarch64", "ppc64").
    const NAME: &'static str;
}
