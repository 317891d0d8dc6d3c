//! virtio devices for every platform that has them: block (a
//! `keel_fs::block::Disk`), network (a `keel_net::device::NetDevice`) and
//! entropy (feeding `keel_core::random`), over the virtio-mmio and
//! virtio-pci transports. Platforms find the devices (device tree, kernel
//! command line, PCI scan) and call [`attach_mmio`] or [`attach_pci`] with
//! the interrupt line; everything after that is arch-neutral and lives
//! here. The rcore-os `virtio-drivers` crate runs the queues of blk and
//! net; see docs/devices.md for what is negotiated and why.

#![no_std]

extern crate alloc;

pub mod blk;
mod hal;
pub mod net;
pub mod rng;
mod tests;
pub mod transport;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_core::kprintln;
use keel_core::sync::SpinLock;
use keel_driver_pci::{Bdf, ConfigSpace};
use keel_hal::IrqLine;
use virtio_drivers::transport::{DeviceType, Transport};

pub use transport::Keel as KeelTransport;

type Handler = Arc<dyn Fn() + Send + Sync>;

/// Device handlers per interrupt line: PCI INTx lines can be shared, and
/// `keel_core::irq` keeps one handler per line.
static LINES: SpinLock<BTreeMap<u32, Vec<Handler>>> = SpinLock::new(BTreeMap::new());

/// What was attached, one line each (`virtio-blk mmio@0xfeb00e00 irq 12`).
static ATTACHED: SpinLock<Vec<String>> = SpinLock::new(Vec::new());

/// Run `handler` whenever `line` fires (alongside other devices on it).
fn on_interrupt(line: IrqLine, handler: impl Fn() + Send + Sync + 'static) -> Result<(), String> {
    let first = {
        let mut lines = LINES.lock();
        let list = lines.entry(line.0).or_default();
        list.push(Arc::new(handler));
        list.len() == 1
    };
    if first {
        let n = line.0;
        let routed = keel_core::irq::register(line, 0, move || {
            // Clone the list out so no lock is held while devices run.
            let handlers = LINES.lock().get(&n).cloned().unwrap_or_default();
            for h in handlers {
                h();
            }
        });
        if let Err(e) = routed {
            // Forget the line, so the next device on it tries again.
            LINES.lock().remove(&n);
            return Err(alloc::format!("cannot route interrupt line {n}: {e:?}"));
        }
    }
    Ok(())
}

/// Bind a driver to a transport. Returns what kind of device it was, or
/// an error that says why it was left alone.
fn attach(t: KeelTransport, irq: IrqLine, place: String) -> Result<&'static str, String> {
    let kind = t.device_type();
    let result = match kind {
        DeviceType::Block => blk::attach(t, irq, &place).map(|_| "virtio-blk"),
        DeviceType::Network => net::attach(t, irq, &place).map(|_| "virtio-net"),
        DeviceType::EntropySource => rng::attach(t, irq, &place).map(|_| "virtio-rng"),
        other => {
            return Err(alloc::format!("{place}: no driver for virtio {other:?}"));
        }
    };
    if let Ok(name) = result {
        ATTACHED
            .lock()
            .push(alloc::format!("{name} {place} irq {}", irq.0));
    }
    result
}

/// Attach whatever device sits in the virtio-mmio window `[base, base+size)`
/// with interrupt `irq` (already configured edge/level by the platform).
/// Empty slots give `Ok(None)`; problems are logged and returned.
pub fn attach_mmio(base: u64, size: u64, irq: IrqLine) -> Result<Option<&'static str>, String> {
    let result = match transport::mmio(base, size) {
        Ok(None) => return Ok(None),
        Ok(Some(t)) => attach(t, irq, alloc::format!("mmio@{base:#x}")).map(Some),
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        kprintln!("keel: virtio: {e}");
    }
    result
}

/// Attach the virtio PCI function at `at`, interrupting on `irq` (its INTx
/// line as the platform routes it). Problems are logged and returned.
pub fn attach_pci(cfg: &dyn ConfigSpace, at: Bdf, irq: IrqLine) -> Result<&'static str, String> {
    let result = transport::pci(cfg, at).and_then(|t| attach(t, irq, alloc::format!("pci {at}")));
    if let Err(e) = &result {
        kprintln!("keel: virtio: {e}");
    }
    result
}

/// The INTx pin of a PCI function (1 = INTA … 4 = INTD, 0 = none), for
/// the platform's routing.
pub fn pci_interrupt_pin(cfg: &dyn ConfigSpace, at: Bdf) -> u8 {
    transport::pci_interrupt_pin(cfg, at)
}

/// Every device attached so far, one phrase each.
pub fn attached() -> Vec<String> {
    ATTACHED.lock().clone()
}
