//! What ACPI tells this platform: CPUs and I/O APICs (MADT), power-off
//! registers and the RTC century register (FADT, DSDT `\_S5`), and the PCI
//! ECAM window (MCFG), and the virtio-mmio devices QEMU microvm lists in
//! its DSDT. Missing or broken tables are reported and worked around (one
//! CPU, no interrupt routing), never fatal.

use alloc::vec::Vec;
use core::ptr::NonNull;

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use keel_arch_x86_64::ioapic::{IoApicDesc, IsaOverride};
use keel_arch_x86_64::layout::PHYS_MAP_BASE;
use keel_core::kprintln;
use keel_hal::{BootInfo, Firmware};

use crate::devices::MmioSlot;
use crate::power::PowerOff;

/// Maps ACPI tables through the direct map (they sit in low memory).
#[derive(Clone, Copy, Debug)]
struct DirectMap;

impl AcpiHandler for DirectMap {
    unsafe fn map_physical_region<T>(&self, pa: usize, size: usize) -> PhysicalMapping<Self, T> {
        let va =
            NonNull::new((PHYS_MAP_BASE + pa) as *mut T).expect("direct-map address is not null");
        // SAFETY: the direct map covers the first 4 GiB, where firmware
        // puts ACPI tables; nothing needs unmapping.
        unsafe { PhysicalMapping::new(pa, va, size, size, *self) }
    }
    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// The platform facts ACPI supplied.
#[derive(Default)]
pub struct Findings {
    /// APIC ids of enabled CPUs.
    pub cpu_apic_ids: Vec<u32>,
    /// I/O APICs.
    pub ioapics: Vec<IoApicDesc>,
    /// ISA interrupt overrides.
    pub overrides: Vec<IsaOverride>,
    /// How to power off, if ACPI says.
    pub power: Option<PowerOff>,
    /// CMOS century register (0 if none).
    pub century_register: u8,
    /// Hardware-reduced ACPI (microvm).
    pub hardware_reduced: bool,
    /// PCI ECAM base and last bus.
    pub ecam: Option<(u64, u8)>,
    /// virtio-mmio devices the DSDT describes.
    pub virtio_mmio: Vec<MmioSlot>,
}

/// Read the tables the RSDP leads to.
pub fn discover(boot: &BootInfo) -> Findings {
    let tables = match boot.firmware {
        // SAFETY: the loader gave this RSDP address; the handler maps it.
        Firmware::Acpi { rsdp } => unsafe { AcpiTables::from_rsdp(DirectMap, rsdp.0 as usize) },
        // SAFETY: scans the BIOS areas through the direct map.
        _ => unsafe { AcpiTables::search_for_rsdp_bios(DirectMap) },
    };
    let tables = match tables {
        Ok(t) => t,
        Err(e) => {
            kprintln!(
                "keel: no usable ACPI tables ({e:?}): one CPU, no device interrupts, power-off via debug port only"
            );
            return Findings::default();
        }
    };
    let mut found = Findings::default();
    match tables.find_table::<Madt>() {
        Ok(madt) => read_madt(madt.get(), &mut found),
        Err(e) => kprintln!("keel: no ACPI MADT ({e:?}); running on one CPU"),
    }
    if let Ok(fadt) = tables.find_table::<acpi::fadt::Fadt>() {
        found.century_register = fadt.century;
        found.hardware_reduced = { fadt.flags }.system_is_hw_reduced_acpi();
        found.power = crate::power::from_fadt(&fadt, dsdt_bytes(&tables));
    }
    for dev in virtio_mmio_in_dsdt(dsdt_bytes(&tables)) {
        // The IOAPIC must know how each line is wired (microvm: level,
        // active high, on the second IOAPIC's GSIs, which Keel would
        // otherwise take for PCI-style active-low lines). Not an ISA
        // line: 255 never matches an ISA IRQ number.
        found.overrides.push(IsaOverride {
            isa_irq: u8::MAX,
            gsi: dev.slot.irq,
            active_low: dev.active_low,
            level: dev.level,
        });
        found.virtio_mmio.push(dev.slot);
    }
    if let Ok(mcfg) = tables.find_table::<acpi::mcfg::Mcfg>()
        && let Some(e) = mcfg.entries().iter().find(|e| e.pci_segment_group == 0)
    {
        found.ecam = Some((e.base_address, e.bus_number_end));
    }
    found
}

/// CPUs, I/O APICs and ISA overrides from the MADT.
fn read_madt(madt: core::pin::Pin<&Madt>, found: &mut Findings) {
    const ENABLED: u32 = 1;
    for entry in madt.entries() {
        match entry {
            MadtEntry::LocalApic(e) if { e.flags } & ENABLED != 0 => {
                found.cpu_apic_ids.push(u32::from(e.apic_id))
            }
            MadtEntry::LocalX2Apic(e) if { e.flags } & ENABLED != 0 => {
                found.cpu_apic_ids.push(e.x2apic_id)
            }
            MadtEntry::IoApic(e) => found.ioapics.push(IoApicDesc {
                address: u64::from(e.io_apic_address),
                gsi_base: { e.global_system_interrupt_base },
            }),
            MadtEntry::InterruptSourceOverride(e) if e.bus == 0 => {
                // MPS INTI flags: polarity in bits 0-1 (3 = low), trigger in
                // bits 2-3 (3 = level); 0 means "as the bus says" (ISA: edge, high).
                let flags = { e.flags };
                found.overrides.push(IsaOverride {
                    isa_irq: e.irq,
                    gsi: { e.global_system_interrupt },
                    active_low: flags & 3 == 3,
                    level: (flags >> 2) & 3 == 3,
                });
            }
            _ => {}
        }
    }
}

fn dsdt_bytes(tables: &AcpiTables<DirectMap>) -> &'static [u8] {
    match tables.dsdt() {
        // SAFETY: the DSDT is firmware memory covered by the direct map and
        // never changes.
        Ok(aml) => unsafe {
            core::slice::from_raw_parts(
                (PHYS_MAP_BASE + aml.address) as *const u8,
                aml.length as usize,
            )
        },
        Err(_) => &[],
    }
}

/// A virtio-mmio device as an ACPI `_CRS` describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcpiVirtio {
    /// Window and interrupt.
    pub slot: MmioSlot,
    /// Level-triggered (else edge).
    pub level: bool,
    /// Active low (else high).
    pub active_low: bool,
}

/// The virtio-mmio devices (`_HID "LNRO0005"`) in a DSDT. Not an AML
/// interpreter: QEMU writes each one as a `Name(_CRS, ResourceTemplate)`
/// holding a Memory32Fixed and an extended Interrupt descriptor, which is
/// what this looks for between one `LNRO0005` and the next. Anything else
/// is skipped, so a table from elsewhere yields no devices, never garbage
/// read past the end.
pub fn virtio_mmio_in_dsdt(aml: &[u8]) -> Vec<AcpiVirtio> {
    const HID: &[u8] = b"LNRO0005";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut found = Vec::new();
    let mut rest = aml;
    while let Some(at) = find(rest, HID) {
        rest = &rest[at + HID.len()..];
        let body = match find(rest, HID) {
            Some(next) => &rest[..next],
            None => rest,
        };
        // Memory32Fixed: 0x86, length 9, then RW flag, base, size.
        let Some(m) = find(body, &[0x86, 0x09, 0x00]) else {
            continue;
        };
        // Extended Interrupt right after: 0x89, length, flags, count, GSIs.
        let (Some(mem), Some(irq)) = (body.get(m..m + 12), body.get(m + 12..m + 21)) else {
            continue;
        };
        if irq[0] != 0x89 || irq[3] & 1 == 0 || irq[4] == 0 {
            continue;
        }
        found.push(AcpiVirtio {
            slot: MmioSlot {
                base: u64::from(le32(&mem[4..8])),
                size: u64::from(le32(&mem[8..12])),
                irq: le32(&irq[5..9]),
            },
            level: irq[3] & 2 == 0,
            active_low: irq[3] & 4 != 0,
        });
    }
    found
}
