//! Device discovery: PCI functions (through legacy configuration ports),
//! virtio-mmio slots (named on the command line by QEMU microvm), and the
//! CMOS clock. Drivers bind to what is found here: virtio devices on
//! either transport, with legacy interrupt lines through the IOAPIC.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use keel_arch_x86_64::io::{inb, inl, outb, outl};
use keel_core::kprintln;
use keel_driver_cmos_rtc::CmosRegisters;
use keel_driver_pci::{Bdf, ConfigSpace, Function};
use keel_hal::IrqLine;

static CENTURY: AtomicU8 = AtomicU8::new(0);
static HARDWARE_REDUCED: AtomicBool = AtomicBool::new(false);
static PCI: spin::Once<Vec<Function>> = spin::Once::new();
/// virtio-mmio slots the DSDT lists (QEMU microvm with ACPI).
static ACPI_VIRTIO: spin::Once<Vec<MmioSlot>> = spin::Once::new();
/// (PCI functions, virtio PCI functions, virtio-mmio slots) found by `probe`.
static COUNTS: spin::Once<(usize, usize, usize)> = spin::Once::new();

/// What `probe` found, in one phrase (formatted on demand, not at boot).
pub fn summary() -> alloc::string::String {
    match COUNTS.get() {
        Some((pci, virtio, mmio)) => {
            alloc::format!("{pci} PCI functions ({virtio} virtio), {mmio} virtio-mmio slots")
        }
        None => "devices not probed".into(),
    }
}

/// Remember the FADT's century register.
pub fn set_century_register(reg: u8) {
    CENTURY.store(reg, Ordering::Relaxed);
}

/// Remember what ACPI said about the hardware.
pub fn set_hardware(hardware_reduced: bool, _ecam: Option<(u64, u8)>) {
    HARDWARE_REDUCED.store(hardware_reduced, Ordering::Relaxed);
}

/// Remember the virtio-mmio slots ACPI described.
pub fn set_acpi_virtio_mmio(slots: Vec<MmioSlot>) {
    ACPI_VIRTIO.call_once(|| slots);
}

struct Cmos;

impl CmosRegisters for Cmos {
    fn read(&self, index: u8) -> u8 {
        // Bit 7 of the index port keeps NMIs enabled as they were (0).
        outb(0x70, index & 0x7f);
        inb(0x71)
    }
}

/// Wall-clock seconds from the CMOS RTC.
pub fn rtc_unix_time() -> Option<u64> {
    keel_driver_cmos_rtc::unix_time(&Cmos, CENTURY.load(Ordering::Relaxed))
}

/// PCI configuration through ports 0xcf8/0xcfc.
struct LegacyConfig;

impl ConfigSpace for LegacyConfig {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        outl(0xcf8, address(bdf, offset));
        inl(0xcfc)
    }
    fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        outl(0xcf8, address(bdf, offset));
        outl(0xcfc, value);
    }
}

fn address(bdf: Bdf, offset: u16) -> u32 {
    (1 << 31)
        | (u32::from(bdf.bus) << 16)
        | (u32::from(bdf.device) << 11)
        | (u32::from(bdf.function) << 8)
        | u32::from(offset & 0xfc)
}

/// A virtio-mmio slot QEMU announced on the command line
/// (`virtio_mmio.device=SIZE@BASE:IRQ`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioSlot {
    /// Register window base.
    pub base: u64,
    /// Window size.
    pub size: u64,
    /// Interrupt line (GSI).
    pub irq: u32,
}

fn parse_number(s: &str) -> Option<u64> {
    let (digits, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        _ => (s, 1),
    };
    let v = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    v.checked_mul(mult)
}

/// Parse one `SIZE@BASE:IRQ` value.
pub fn parse_mmio_slot(value: &str) -> Option<MmioSlot> {
    let (size, rest) = value.split_once('@')?;
    let (base, irq) = rest.split_once(':')?;
    Some(MmioSlot {
        base: parse_number(base)?,
        size: parse_number(size)?,
        irq: irq.parse().ok()?,
    })
}

/// Find devices (runs once during boot, with the scheduler up).
pub fn probe() {
    let pci = if HARDWARE_REDUCED.load(Ordering::Relaxed) {
        Vec::new() // microvm: no PCI host bridge unless asked for
    } else {
        keel_driver_pci::enumerate(&LegacyConfig, 255)
    };
    let virtio_pci = pci.iter().filter(|f| f.vendor == 0x1af4).count();
    // QEMU microvm names its slots on the command line when ACPI is off
    // and in the DSDT when it is on; either way they land here.
    let mut slots: Vec<MmioSlot> =
        keel_core::cmdline::split_words(crate::BOOT.get().map_or("", |b| b.cmdline))
            .iter()
            .filter_map(|w| w.strip_prefix("virtio_mmio.device="))
            .filter_map(|v| {
                let slot = parse_mmio_slot(v);
                if slot.is_none() {
                    kprintln!("keel: ignoring malformed virtio_mmio.device={v}");
                }
                slot
            })
            .collect();
    for acpi in ACPI_VIRTIO.get().into_iter().flatten() {
        if !slots.iter().any(|s| s.base == acpi.base) {
            slots.push(*acpi);
        }
    }
    COUNTS.call_once(|| (pci.len(), virtio_pci, slots.len()));
    for slot in &slots {
        // The drivers log what they refuse; boot goes on without it.
        let _ = keel_driver_virtio::attach_mmio(slot.base, slot.size, IrqLine(slot.irq));
    }
    for f in pci.iter().filter(|f| f.vendor == 0x1af4) {
        let pin = keel_driver_virtio::pci_interrupt_pin(&LegacyConfig, f.bdf);
        match q35_intx_gsi(f.bdf, pin) {
            Some(gsi) => {
                let _ = keel_driver_virtio::attach_pci(&LegacyConfig, f.bdf, IrqLine(gsi));
            }
            None => kprintln!(
                "keel: virtio {}: no INTx route (pin {pin}); not used",
                f.bdf
            ),
        }
    }
    PCI.call_once(|| pci);
}

/// The IOAPIC input a q35 (ICH9) bus-0 function's INTx pin reaches.
/// Slots 0-24 have no routing register: the chipset sends pin INTA-INTD
/// of slot S to PIRQ E-H rotated by S (as QEMU's DSDT _PRT also says), and
/// with the IOAPIC in use PIRQ A-H are GSI 16-23. Functions behind
/// bridges would need the bridge swizzle; Keel's q35 has none.
fn q35_intx_gsi(bdf: Bdf, pin: u8) -> Option<u32> {
    if bdf.bus != 0 || bdf.device > 24 || !(1..=4).contains(&pin) {
        return None;
    }
    Some(16 + 4 + ((u32::from(bdf.device) + u32::from(pin) - 1) & 3))
}

/// The machine model, as far as the tables tell.
pub fn machine_name() -> &'static str {
    if HARDWARE_REDUCED.load(Ordering::Relaxed) {
        return "microvm";
    }
    match PCI
        .get()
        .and_then(|p| p.first())
        .map(|f| (f.vendor, f.device))
    {
        Some((0x8086, 0x29c0)) => "q35",
        Some((0x8086, 0x1237)) => "pc (i440fx)",
        _ => "PC",
    }
}
