//! What the platform learned at boot, handed to core in one plain struct.
//!
//! Built before the heap exists, so it uses fixed-capacity arrays.

use crate::addr::PhysAddr;

/// Maximum number of memory regions a [`BootInfo`] carries.
pub const MAX_MEMORY_REGIONS: usize = 64;
/// Maximum number of CPUs Keel brings up.
pub const MAX_CPUS: usize = 64;

/// What a physical memory region may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// Free RAM the frame allocator may hand out.
    Usable,
    /// RAM holding something still needed (kernel image, boot data, initrd).
    InUse,
    /// Firmware-owned memory or MMIO; never touched.
    Reserved,
}

/// One contiguous physical memory range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// First byte.
    pub start: PhysAddr,
    /// Length in bytes.
    pub len: u64,
    /// What it may be used for.
    pub kind: MemoryKind,
}

impl MemoryRegion {
    /// One past the last byte.
    pub const fn end(&self) -> PhysAddr {
        PhysAddr(self.start.0 + self.len)
    }
}

/// Where the platform's hardware description lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// ACPI, found through the RSDP (x86_64).
    Acpi {
        /// Physical address of the RSDP.
        rsdp: PhysAddr,
    },
    /// A flattened device tree blob (aarch64, and ppc64 once copied out of OF).
    DeviceTree {
        /// Physical address of the FDT header.
        blob: PhysAddr,
    },
    /// No description; the platform knows its devices by convention.
    None,
}

/// A hardware thread the platform found and may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CpuDescriptor {
    /// The arch's hardware id: APIC id, MPIDR affinity, or PAPR server number.
    pub hw_id: u64,
}

/// Everything the platform learned at boot.
#[derive(Clone, Debug)]
pub struct BootInfo {
    /// Physical memory map as the firmware and platform reported it. Regions
    /// may overlap and come in any order: core subtracts `InUse` and
    /// `Reserved` ranges from `Usable` ones.
    pub memory: [MemoryRegion; MAX_MEMORY_REGIONS],
    /// Number of valid entries in `memory`.
    pub memory_len: usize,
    /// The boot command line (`-append`), already copied into kernel memory.
    pub cmdline: &'static str,
    /// Hardware description.
    pub firmware: Firmware,
    /// Initial ramdisk, if the loader passed one.
    pub initrd: Option<(PhysAddr, u64)>,
    /// CPUs found; index 0 is the boot CPU.
    pub cpus: [CpuDescriptor; MAX_CPUS],
    /// Number of valid entries in `cpus`.
    pub cpu_count: usize,
    /// The stack the boot CPU runs on, `[bottom, top)`; it becomes the boot
    /// CPU's idle thread stack.
    pub boot_stack: (usize, usize),
}

impl BootInfo {
    /// An empty description to fill in.
    pub const fn empty() -> Self {
        Self {
            memory: [MemoryRegion {
                start: PhysAddr(0),
                len: 0,
                kind: MemoryKind::Reserved,
            }; MAX_MEMORY_REGIONS],
            memory_len: 0,
            cmdline: "",
            firmware: Firmware::None,
            initrd: None,
            cpus: [CpuDescriptor { hw_id: 0 }; MAX_CPUS],
            cpu_count: 0,
            boot_stack: (0, 0),
        }
    }

    /// The valid memory regions.
    pub fn memory_regions(&self) -> &[MemoryRegion] {
        &self.memory[..self.memory_len]
    }

    /// The CPUs found.
    pub fn cpu_list(&self) -> &[CpuDescriptor] {
        &self.cpus[..self.cpu_count]
    }

    /// Append a memory region; returns false when the table is full.
    pub fn push_memory(&mut self, region: MemoryRegion) -> bool {
        if self.memory_len == MAX_MEMORY_REGIONS {
            return false;
        }
        self.memory[self.memory_len] = region;
        self.memory_len += 1;
        true
    }

    /// Append a CPU; returns false when the table is full.
    pub fn push_cpu(&mut self, cpu: CpuDescriptor) -> bool {
        if self.cpu_count == MAX_CPUS {
            return false;
        }
        self.cpus[self.cpu_count] = cpu;
        self.cpu_count += 1;
        true
    }
}
