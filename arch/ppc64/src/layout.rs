//! The ppc64 address-space layout (see docs/memory-layout.md).
//!
//! Radix translation splits the 64-bit effective address space into four
//! quadrants by its top two bits. A guest may use quadrant 0 (translated
//! through the process-table entry named by the PID register) and
//! quadrant 3 (always process-table entry 0). Keel puts the app in
//! quadrant 0 and itself in quadrant 3.

/// Quadrant 3: the kernel. Physical memory is mapped one-to-one above it.
pub const KERNEL_BASE: usize = 0xc000_0000_0000_0000;
/// The direct map of physical memory (1 GiB pages). The kernel image is
/// part of it: QEMU loads it at physical [`LOAD_PHYS`] and it is linked at
/// `PHYS_MAP_BASE + LOAD_PHYS`, so the same addresses work in real mode
/// (where the CPU ignores the top four address bits) and with translation.
pub const PHYS_MAP_BASE: usize = KERNEL_BASE;
/// Where pseries firmware (SLOF and VOF) loads `-kernel` (QEMU's
/// `kernel-addr` default); the image is linked for it.
pub const LOAD_PHYS: u64 = 0x40_0000;
/// Kernel mappings made at run time: thread stacks with guard pages, MMIO.
pub const KERNEL_VMAP: (usize, usize) = (0xc008_0000_0000_0000, 0xc009_0000_0000_0000);
/// Quadrant 0, minus page 0: the app (process-table entry [`APP_PID`]).
pub const APP_RANGE: (usize, usize) = (0x1000, 0x0010_0000_0000_0000);
/// The PID register's value: quadrant 0 translates through this entry.
pub const APP_PID: u64 = 1;
/// Bits of effective address a radix tree translates (52: the POWER9/10
/// configuration for 4 KiB pages, 13 + 9 + 9 + 9 + 12).
pub const RADIX_BITS: u32 = 52;
/// The boot CPU's stack.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;
/// Per-CPU stack for traps that find the thread's kernel stack exhausted.
pub const EMERGENCY_STACK_SIZE: usize = 16 * 1024;
/// Below this much free kernel stack a trap moves to the emergency stack.
pub const STACK_MARGIN: usize = 4096;
/// The guard page below every kernel stack (core's stack allocator).
pub const STACK_GUARD: usize = 4096;
/// The ELFv2 ABI's red zone: code may use this much below its stack
/// pointer without moving it, so a trap frame starts below it.
pub const RED_ZONE: usize = 288;
