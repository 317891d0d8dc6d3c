//! The aarch64 virtual memory layout (see docs/memory-layout.md).
//!
//! 48-bit virtual addresses, 4 KiB granule, four levels. The lower half
//! (TTBR0) belongs to the app; the kernel lives in the upper half (TTBR1).

/// Bytes of a 1 GiB block (a level-1 leaf).
pub const GIB: u64 = 1 << 30;
/// Bytes of a 2 MiB block (a level-2 leaf).
pub const BLOCK_2M: u64 = 2 << 20;

/// The direct map of physical memory (level-0 slot 0 of the upper half):
/// RAM appears at `PHYS_MAP_BASE + pa`, 1 GiB blocks, for pa below 512 GiB.
pub const PHYS_MAP_BASE: usize = 0xffff_0000_0000_0000;
/// Physical addresses the direct map can cover.
pub const PHYS_MAP_LIMIT: u64 = 512 * GIB;
/// Kernel mappings made at run time (stacks with guard pages, MMIO).
pub const KERNEL_VMAP: (usize, usize) = (0xffff_8000_0000_0000, 0xffff_9000_0000_0000);
/// Where the kernel image is linked and mapped (2 MiB blocks onto wherever
/// the loader put it). Must match `KERNEL_BASE` in the image's linker script.
pub const KERNEL_BASE: usize = 0xffff_ffff_8000_0000;
/// Largest kernel image the boot tables map (one level-2 table, minus the
/// fixmap's slot).
pub const KERNEL_MAX_SIZE: u64 = GIB - BLOCK_2M;
/// The fixmap: 4 KiB device mappings made before the frame allocator exists
/// (the console), in the last 2 MiB of the kernel image's gigabyte.
pub const FIXMAP_BASE: usize = KERNEL_BASE + (GIB - BLOCK_2M) as usize;
/// Pages in the fixmap.
pub const FIXMAP_PAGES: usize = 512;
/// Addresses an app may use: the lower half (TTBR0), minus page 0.
pub const APP_RANGE: (usize, usize) = (0x1000, 0x0001_0000_0000_0000);
/// First address of the upper (TTBR1) half.
pub const UPPER_HALF: usize = 0xffff_0000_0000_0000;
/// The boot CPU's stack.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;
/// Per-CPU stack for traps that arrive with the kernel stack nearly
/// exhausted (or overflowed into its guard page).
pub const EMERGENCY_STACK_SIZE: usize = 16 * 1024;
/// Traps arriving with less kernel stack than this left are handled on the
/// emergency stack.
pub const STACK_MARGIN: usize = 4096;
/// Size of the unmapped guard page below each kernel stack (core's).
pub const GUARD_SIZE: usize = 4096;
