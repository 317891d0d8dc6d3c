//! PCI bus enumeration. How configuration space is reached (x86 ports
//! 0xCF8/0xCFC, ECAM memory, a PAPR hcall) is the platform's business,
//! behind [`ConfigSpace`]; the walk over buses, devices and functions is
//! shared by every platform and tested on the host.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

/// Bus, device, function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    /// Bus number.
    pub bus: u8,
    /// Device number (0..32).
    pub device: u8,
    /// Function number (0..8).
    pub function: u8,
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// Reads and writes of 32-bit configuration registers.
pub trait ConfigSpace {
    /// Read the dword at `offset` (4-aligned) of `bdf`.
    fn read32(&self, bdf: Bdf, offset: u16) -> u32;
    /// Write the dword at `offset` (4-aligned) of `bdf`.
    fn write32(&self, bdf: Bdf, offset: u16, value: u32);
}

/// A function found on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    /// Where it is.
    pub bdf: Bdf,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Class, subclass, programming interface.
    pub class: (u8, u8, u8),
    /// Header type (without the multifunction bit).
    pub header_type: u8,
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:04x}:{:04x} class {:02x}{:02x}{:02x}",
            self.bdf, self.vendor, self.device, self.class.0, self.class.1, self.class.2
        )?;
        if self.vendor == 0x1af4 {
            write!(f, " (virtio)")?;
        }
        Ok(())
    }
}

/// Every function on buses reachable from bus 0 (following bridges),
/// visiting at most `max_bus + 1` buses.
pub fn enumerate(cfg: &dyn ConfigSpace, max_bus: u8) -> Vec<Function> {
    let mut found = Vec::new();
    let mut buses = alloc::vec![0u8];
    let mut seen = [false; 256];
    while let Some(bus) = buses.pop() {
        if seen[bus as usize] || bus > max_bus {
            continue;
        }
        seen[bus as usize] = true;
        for device in 0..32 {
            for function in 0..8 {
                let bdf = Bdf {
                    bus,
                    device,
                    function,
                };
                let id = cfg.read32(bdf, 0);
                if id & 0xffff == 0xffff {
                    if function == 0 {
                        break; // no device here at all
                    }
                    continue;
                }
                let class = cfg.read32(bdf, 8);
                let header = (cfg.read32(bdf, 0x0c) >> 16) as u8;
                let f = Function {
                    bdf,
                    vendor: id as u16,
                    device: (id >> 16) as u16,
                    class: ((class >> 24) as u8, (class >> 16) as u8, (class >> 8) as u8),
                    header_type: header & 0x7f,
                };
                if f.header_type == 1 {
                    // PCI-to-PCI bridge: its secondary bus number.
                    buses.push((cfg.read32(bdf, 0x18) >> 8) as u8);
                }
                found.push(f);
                if function == 0 && header & 0x80 == 0 {
                    break; // single-function device
                }
            }
        }
    }
    found.sort_by_key(|f| f.bdf);
    found
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::collections::HashMap;

    struct Fake(HashMap<(Bdf, u16), u32>);
    impl ConfigSpace for Fake {
        fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
            *self.0.get(&(bdf, offset)).unwrap_or(&0xffff_ffff)
        }
        fn write32(&self, _: Bdf, _: u16, _: u32) {}
    }

    fn bdf(bus: u8, device: u8, function: u8) -> Bdf {
        Bdf {
            bus,
            device,
            function,
        }
    }

    #[test]
    fn walks_functions_and_bridges() {
        let mut m = HashMap::new();
        // Host bridge at 00:00.0.
        m.insert((bdf(0, 0, 0), 0), 0x29c0_8086);
        m.insert((bdf(0, 0, 0), 8), 0x0600_0000);
        m.insert((bdf(0, 0, 0), 0x0c), 0);
        // Multifunction device at 00:1f with functions 0 and 3.
        m.insert((bdf(0, 0x1f, 0), 0), 0x2918_8086);
        m.insert((bdf(0, 0x1f, 0), 8), 0x0601_0000);
        m.insert((bdf(0, 0x1f, 0), 0x0c), 0x0080_0000);
        m.insert((bdf(0, 0x1f, 3), 0), 0x2930_8086);
        m.insert((bdf(0, 0x1f, 3), 8), 0x0c05_0000);
        m.insert((bdf(0, 0x1f, 3), 0x0c), 0);
        // Bridge at 00:02.0 to bus 1, with a virtio-net behind it.
        m.insert((bdf(0, 2, 0), 0), 0x000c_1b36);
        m.insert((bdf(0, 2, 0), 8), 0x0604_0000);
        m.insert((bdf(0, 2, 0), 0x0c), 0x0001_0000);
        m.insert((bdf(0, 2, 0), 0x18), 0x0001_0100);
        m.insert((bdf(1, 0, 0), 0), 0x1041_1af4);
        m.insert((bdf(1, 0, 0), 8), 0x0200_0001);
        m.insert((bdf(1, 0, 0), 0x0c), 0);
        let found = enumerate(&Fake(m), 255);
        let where_: Vec<_> = found.iter().map(|f| f.bdf).collect();
        assert_eq!(
            where_,
            [
                bdf(0, 0, 0),
                bdf(0, 2, 0),
                bdf(0, 0x1f, 0),
                bdf(0, 0x1f, 3),
                bdf(1, 0, 0)
            ]
        );
        assert_eq!(found[4].vendor, 0x1af4);
        assert_eq!(found[4].class, (2, 0, 0));
        assert!(std::format!("{}", found[4]).contains("virtio"));
    }

    #[test]
    fn empty_bus_and_bridge_loops_terminate() {
        assert!(enumerate(&Fake(HashMap::new()), 255).is_empty());
        let mut m = HashMap::new();
        m.insert((bdf(0, 1, 0), 0), 0x0001_1b36);
        m.insert((bdf(0, 1, 0), 8), 0x0604_0000);
        m.insert((bdf(0, 1, 0), 0x0c), 0x0001_0000);
        m.insert((bdf(0, 1, 0), 0x18), 0); // secondary bus 0: a loop
        assert_eq!(enumerate(&Fake(m), 255).len(), 1);
    }
}
