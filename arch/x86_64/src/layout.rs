//! The x86_64 virtual memory layout (see docs/memory-layout.md).

/// Where the kernel image is linked: physical 0..2 GiB appear here.
pub const KERNEL_BASE: usize = 0xffff_ffff_8000_0000;
/// The direct map of physical memory.
pub const PHYS_MAP_BASE: usize = 0xffff_8000_0000_0000;
/// Kernel mappings made at run time (stacks with guard pages, MMIO).
pub const KERNEL_VMAP: (usize, usize) = (0xffff_c000_0000_0000, 0xffff_d000_0000_0000);
/// Addresses an app may use: the lower canonical half, minus page 0.
pub const APP_RANGE: (usize, usize) = (0x1000, 0x0000_8000_0000_0000);
/// The boot CPU's stack.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;
/// Per-CPU trap entry stack (frames are copied off it at once) and the
/// stacks for NMI, double fault and machine check.
pub const IST_STACK_SIZE: usize = 16 * 1024;
