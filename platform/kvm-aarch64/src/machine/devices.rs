//! Devices the tree describes: the PL031 clock, virtio-mmio slots (and
//! which hold a device), and the PCIe host bridge (bus 0 enumerated
//! through ECAM). Drivers bind to what is found here: virtio drivers to
//! the occupied virtio-mmio slots and to virtio functions on bus 0.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use keel_arch_aarch64 as arch;
use keel_core::memory::vmap::{self, map_mmio};
use keel_driver_devicetree::{Device, Machine, PciHost, PciWindow};
use keel_driver_pci::{BarWindow, Bdf, ConfigSpace, Function};
use keel_hal::{IrqLine, PageFlags, PhysAddr};

/// The magic value at offset 0 of a virtio-mmio window ("virt").
const VIRTIO_MMIO_MAGIC: u32 = 0x7472_6976;

static MACHINE: spin::Once<Machine<'static>> = spin::Once::new();
static RTC: AtomicUsize = AtomicUsize::new(0);
static PCI: spin::Once<Vec<Function>> = spin::Once::new();
/// virtio-mmio slots that hold a device.
static VIRTIO_DEVICES: AtomicUsize = AtomicUsize::new(0);

fn read32(va: usize) -> u32 {
    // SAFETY: callers pass addresses inside a device window they mapped
    // with `map_mmio` (uncached), at a register offset of that device.
    unsafe { (va as *const u32).read_volatile() }
}

/// Keep what the tree said, and map the clock (memory management is up).
pub fn remember(m: Machine<'static>) {
    if let Some(rtc) = m.rtc
        && let Ok(va) = map_mmio(PhysAddr(rtc.reg.base), 0x1000)
    {
        RTC.store(va.0, Ordering::Release);
    }
    MACHINE.call_once(|| m);
}

/// What the tree said (after boot).
pub fn machine() -> Option<&'static Machine<'static>> {
    MACHINE.get()
}

struct Pl031(usize);

impl keel_driver_pl031::Registers for Pl031 {
    fn read(&self, offset: usize) -> u32 {
        read32(self.0 + offset)
    }
}

/// Wall-clock seconds from the PL031.
pub fn rtc_unix_time() -> Option<u64> {
    match RTC.load(Ordering::Acquire) {
        0 => None,
        va => keel_driver_pl031::unix_time(&Pl031(va)),
    }
}

/// PCI configuration through an ECAM window mapped for bus 0.
struct Ecam(usize);

impl ConfigSpace for Ecam {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        if bdf.bus != 0 {
            return u32::MAX;
        }
        read32(self.0 + ecam_offset(bdf, offset))
    }
    fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        if bdf.bus == 0 {
            let va = self.0 + ecam_offset(bdf, offset);
            // SAFETY: inside the mapped bus-0 ECAM window (1 MiB).
            unsafe { (va as *mut u32).write_volatile(value) };
        }
    }
}

fn ecam_offset(bdf: Bdf, offset: u16) -> usize {
    (usize::from(bdf.device) << 15)
        | (usize::from(bdf.function) << 12)
        | usize::from(offset & 0xffc)
}

/// How many virtio-mmio slots hold a device (device ID not 0). The slots
/// are mapped with one mapping when they sit together (QEMU's 32 slots
/// share 16 KiB), each on its own otherwise.
fn count_virtio_devices(slots: &[Device]) -> usize {
    let start = slots.iter().map(|s| s.reg.base).min().unwrap_or(0);
    let end = slots.iter().map(|s| s.reg.end()).max().unwrap_or(0);
    let together = (end - start <= 0x1_0000)
        .then(|| map_mmio(PhysAddr(start), (end - start) as usize).ok())
        .flatten();
    slots
        .iter()
        .filter(|slot| {
            let va = match together {
                Some(va) => va.0 + (slot.reg.base - start) as usize,
                None => match map_mmio(PhysAddr(slot.reg.base), 0x100) {
                    Ok(va) => va.0,
                    Err(_) => return false,
                },
            };
            read32(va) == VIRTIO_MMIO_MAGIC && read32(va + 8) != 0
        })
        .count()
}

/// Map the ECAM window of the first bus (1 MiB) with one 2 MiB block when
/// the window is so aligned (as QEMU's is), else with pages.
fn map_ecam(base: u64) -> Option<usize> {
    const BLOCK: usize = 2 << 20;
    if base.is_multiple_of(BLOCK as u64) {
        let va = vmap::reserve(BLOCK, BLOCK)?;
        if vmap::map(va, PhysAddr(base), BLOCK, PageFlags::MMIO).is_ok() {
            return Some(va.0);
        }
    }
    map_mmio(PhysAddr(base), 1 << 20).ok().map(|va| va.0)
}

/// Find devices (runs once during boot, with the scheduler up).
pub fn probe() {
    let Some(m) = machine() else { return };
    let ecam = m
        .pcie
        .and_then(|host| Some((host, map_ecam(host.ecam.base)?)));
    let pci = match ecam {
        Some((_, va)) => keel_driver_pci::enumerate(&Ecam(va), 0),
        None => Vec::new(),
    };
    if let Some((host, va)) = ecam {
        attach_virtio_pci(&host, &Ecam(va), &pci);
    }
    PCI.call_once(|| pci);
    let present = count_virtio_devices(m.virtio_mmio.as_slice());
    VIRTIO_DEVICES.store(present, Ordering::Release);
    if present > 0 {
        attach_virtio_mmio(m.virtio_mmio.as_slice());
    }
}

/// A window the BARs can go in, if PCI and CPU addresses agree there
/// (virtio-drivers maps a BAR at the address the BAR holds).
fn bar_window(w: Option<PciWindow>) -> Option<BarWindow> {
    w.filter(|w| w.pci == w.cpu && w.size != 0)
        .map(|w| BarWindow {
            next: w.pci,
            end: w.pci + w.size,
        })
}

/// Bind drivers to the virtio functions on bus 0. Nothing ran before Keel
/// to give BARs addresses, so they are placed here in the windows the
/// tree's `ranges` names; INTx goes through `interrupt-map` to the GIC.
fn attach_virtio_pci(host: &PciHost, cfg: &Ecam, functions: &[Function]) {
    let Some(mut mem32) = bar_window(host.mem32) else {
        if functions.iter().any(|f| f.vendor == 0x1af4) {
            keel_core::kprintln!(
                "keel: PCIe host has no usable memory window; virtio-pci not used"
            );
        }
        return;
    };
    let mut mem64 = bar_window(host.mem64);
    for f in functions.iter().filter(|f| f.vendor == 0x1af4) {
        let at = f.bdf;
        if let Err(e) = keel_driver_pci::assign_memory_bars(cfg, at, &mut mem32, mem64.as_mut()) {
            keel_core::kprintln!("keel: virtio {at}: cannot place its BARs ({e:?}); not used");
            continue;
        }
        let pin = keel_driver_virtio::pci_interrupt_pin(cfg, at);
        let Some(irq) = host.intx_route(at.bus, at.device, at.function, pin) else {
            keel_core::kprintln!(
                "keel: virtio {at}: interrupt-map has no route for pin {pin}; not used"
            );
            continue;
        };
        let line = IrqLine(irq.intid);
        if arch::set_irq_trigger(line, irq.edge).is_err() {
            keel_core::kprintln!("keel: virtio {at}: GIC has no line {}", irq.intid);
            continue;
        }
        // The driver logs what it refuses; boot goes on without it.
        let _ = keel_driver_virtio::attach_pci(cfg, at, line);
    }
}

/// Bind drivers to the occupied virtio-mmio slots, each interrupt set
/// edge or level as the tree says before the driver enables it.
fn attach_virtio_mmio(slots: &[Device]) {
    for slot in slots {
        let Some(irq) = slot.interrupt else {
            continue; // the tree-reading test reports slots without an SPI
        };
        let line = IrqLine(irq.intid);
        if arch::set_irq_trigger(line, irq.edge).is_err() {
            keel_core::kprintln!(
                "keel: virtio-mmio at {:#x}: GIC has no line {}",
                slot.reg.base,
                irq.intid
            );
            continue;
        }
        // The driver logs what it refuses; boot goes on without it.
        let _ = keel_driver_virtio::attach_mmio(slot.reg.base, slot.reg.size, line);
    }
}

/// The machine model, as the tree names it.
pub fn machine_name() -> &'static str {
    match machine().map(|m| m.model) {
        Some("linux,dummy-virt") => "QEMU virt",
        Some("") | None => "unnamed machine",
        Some(model) => model,
    }
}

/// What `probe` found, in one phrase (formatted on demand, not at boot).
pub fn summary() -> String {
    let Some(m) = machine() else {
        return "no device tree".into();
    };
    let pci = PCI.get().map_or(0, Vec::len);
    let virtio_pci = PCI
        .get()
        .map_or(0, |p| p.iter().filter(|f| f.vendor == 0x1af4).count());
    alloc::format!(
        "{} PCI functions on bus 0 ({virtio_pci} virtio), {} virtio-mmio slots ({} in use), {}",
        pci,
        m.virtio_mmio.len(),
        VIRTIO_DEVICES.load(Ordering::Acquire),
        if m.rtc.is_some() {
            "PL031 clock"
        } else {
            "no clock"
        },
    )
}
