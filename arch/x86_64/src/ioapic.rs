//! I/O APICs: route a device interrupt line (a GSI) to a CPU as a vector.
//! The legacy 8259 PICs are masked for good.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use keel_hal::interrupt::IrqError;

use crate::io::outb;
use crate::layout::PHYS_MAP_BASE;
use crate::trap::{VECTOR_DEVICE_FIRST, VECTOR_DEVICE_LAST};

/// An I/O APIC as ACPI's MADT describes it.
#[derive(Clone, Copy, Debug)]
pub struct IoApicDesc {
    /// Physical address of its registers.
    pub address: u64,
    /// First GSI it serves.
    pub gsi_base: u32,
}

/// How an ISA IRQ is really wired (MADT interrupt source override).
#[derive(Clone, Copy, Debug)]
pub struct IsaOverride {
    /// ISA IRQ number.
    pub isa_irq: u8,
    /// GSI it arrives on.
    pub gsi: u32,
    /// Active low (else high).
    pub active_low: bool,
    /// Level triggered (else edge).
    pub level: bool,
}

struct IoApic {
    regs: usize,
    gsi_base: u32,
    entries: u32,
}

impl IoApic {
    fn read(&self, reg: u32) -> u32 {
        // SAFETY: `regs` is the I/O APIC's register window in the direct
        // map; IOREGSEL at +0, IOWIN at +0x10.
        unsafe {
            (self.regs as *mut u32).write_volatile(reg);
            ((self.regs + 0x10) as *const u32).read_volatile()
        }
    }
    fn write(&self, reg: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe {
            (self.regs as *mut u32).write_volatile(reg);
            ((self.regs + 0x10) as *mut u32).write_volatile(value);
        }
    }
}

static IOAPICS: spin::Once<Vec<IoApic>> = spin::Once::new();
static OVERRIDES: spin::Once<Vec<IsaOverride>> = spin::Once::new();
const NO_LINE: u32 = u32::MAX;
/// Which line each vector serves.
static VECTOR_LINE: [AtomicU32; 256] = [const { AtomicU32::new(NO_LINE) }; 256];

/// Mask the 8259s and record the I/O APICs (every entry masked).
pub fn init(ioapics: &[IoApicDesc], overrides: &[IsaOverride]) {
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    let list = ioapics
        .iter()
        .map(|d| {
            let a = IoApic {
                regs: PHYS_MAP_BASE + d.address as usize,
                gsi_base: d.gsi_base,
                entries: 0,
            };
            let entries = ((a.read(1) >> 16) & 0xff) + 1;
            let a = IoApic { entries, ..a };
            for i in 0..entries {
                a.write(0x10 + 2 * i, 1 << 16);
            }
            a
        })
        .collect();
    IOAPICS.call_once(|| list);
    OVERRIDES.call_once(|| overrides.to_vec());
}

/// GSI an ISA IRQ arrives on.
pub fn isa_to_gsi(isa_irq: u8) -> u32 {
    OVERRIDES
        .get()
        .and_then(|o| o.iter().find(|o| o.isa_irq == isa_irq))
        .map_or(u32::from(isa_irq), |o| o.gsi)
}

fn find(gsi: u32) -> Option<&'static IoApic> {
    IOAPICS
        .get()?
        .iter()
        .find(|a| (a.gsi_base..a.gsi_base + a.entries).contains(&gsi))
}

/// Route `gsi` to the CPU with `apic_id`, unmasked.
pub fn route(gsi: u32, apic_id: u32) -> Result<(), IrqError> {
    let ioapic = find(gsi).ok_or(IrqError::NoSuchLine)?;
    let vector = (VECTOR_DEVICE_FIRST..=VECTOR_DEVICE_LAST)
        .find(|&v| VECTOR_LINE[v as usize].load(Ordering::Relaxed) == gsi)
        .or_else(|| {
            (VECTOR_DEVICE_FIRST..=VECTOR_DEVICE_LAST).find(|&v| {
                VECTOR_LINE[v as usize]
                    .compare_exchange(NO_LINE, gsi, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            })
        })
        .ok_or(IrqError::Exhausted)?;
    // ISA lines are edge/high unless overridden; PCI lines are level/low.
    let (active_low, level) = match OVERRIDES
        .get()
        .and_then(|o| o.iter().find(|o| o.gsi == gsi))
    {
        Some(o) => (o.active_low, o.level),
        None => (gsi >= 16, gsi >= 16),
    };
    let low = u32::from(vector) | (u32::from(active_low) << 13) | (u32::from(level) << 15);
    let index = 0x10 + 2 * (gsi - ioapic.gsi_base);
    ioapic.write(index + 1, apic_id << 24);
    ioapic.write(index, low);
    Ok(())
}

/// Mask `gsi`.
pub fn mask(gsi: u32) {
    if let Some(ioapic) = find(gsi) {
        let index = 0x10 + 2 * (gsi - ioapic.gsi_base);
        let low = ioapic.read(index);
        ioapic.write(index, low | (1 << 16));
    }
}

/// The line a device vector serves.
pub fn line_for_vector(vector: u8) -> Option<u32> {
    let line = VECTOR_LINE[vector as usize].load(Ordering::Relaxed);
    (line != NO_LINE).then_some(line)
}
