//! Device discovery: PCI functions behind each host bridge, through RTAS
//! `ibm,read-pci-config` (pseries has no memory-mapped configuration
//! space for the guest). Drivers bind to what is found here.

use alloc::vec::Vec;

use keel_driver_papr::rtas::Service;
use keel_driver_papr::rtas_call;
use keel_driver_pci::{Bdf, ConfigSpace, Function};

use crate::pseries::firmware;

/// (PCI functions, of which virtio) found by `probe`.
static COUNTS: spin::Once<(usize, usize)> = spin::Once::new();

/// Configuration space of one host bridge, by RTAS.
struct RtasConfig {
    buid: u64,
}

fn config_address(bdf: Bdf, offset: u16) -> u32 {
    (u32::from(bdf.bus) << 16)
        | (u32::from(bdf.device) << 11)
        | (u32::from(bdf.function) << 8)
        | u32::from(offset & 0xfc)
}

impl ConfigSpace for RtasConfig {
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        let mut r = [0u32; 2];
        let args = [
            config_address(bdf, offset),
            (self.buid >> 32) as u32,
            self.buid as u32,
            4,
        ];
        match rtas_call(Service::ReadPciConfig, &args, &mut r) {
            Ok(()) => r[1],
            Err(_) => u32::MAX,
        }
    }
    fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        let mut r = [0u32; 1];
        let args = [
            config_address(bdf, offset),
            (self.buid >> 32) as u32,
            self.buid as u32,
            4,
            value,
        ];
        let _ = rtas_call(Service::WritePciConfig, &args, &mut r);
    }
}

/// Find devices (runs once during boot, with the scheduler up).
pub fn probe() {
    let f = firmware::facts();
    let mut all: Vec<Function> = Vec::new();
    for phb in &f.phbs[..f.phb_count] {
        all.extend(keel_driver_pci::enumerate(
            &RtasConfig { buid: phb.buid },
            255,
        ));
    }
    let virtio = all.iter().filter(|d| d.vendor == 0x1af4).count();
    COUNTS.call_once(|| (all.len(), virtio));
}

/// What `probe` found, in one phrase.
pub fn summary() -> alloc::string::String {
    let f = firmware::facts();
    match COUNTS.get() {
        Some((n, virtio)) => alloc::format!(
            "{} PCI host bridge{}, {n} PCI functions ({virtio} virtio)",
            f.phb_count,
            if f.phb_count == 1 { "" } else { "s" }
        ),
        None => "devices not probed".into(),
    }
}
