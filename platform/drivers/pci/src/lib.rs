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

/// A stretch of PCI memory space BARs are placed in, from the bottom up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarWindow {
    /// Next free address (PCI bus address).
    pub next: u64,
    /// End of the window (exclusive).
    pub end: u64,
}

impl BarWindow {
    /// `size` bytes aligned to `size` (BAR sizes are powers of two).
    fn take(&mut self, size: u64) -> Option<u64> {
        let at = self.next.checked_add(size - 1)? & !(size - 1);
        let end = at.checked_add(size)?;
        (end <= self.end).then(|| {
            self.next = end;
            at
        })
    }
}

/// Why a function's BARs could not all be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarError {
    /// No window had room (or none suited the BAR's type).
    NoSpace,
}

/// Give every memory BAR of `bdf` that has no address yet one from the
/// windows (64-bit BARs from `mem64` when there is one), for machines
/// without firmware that does it. I/O BARs are left alone. Memory decoding
/// is off while sizing and restored as it was. Returns how many BARs got
/// an address.
pub fn assign_memory_bars(
    cfg: &dyn ConfigSpace,
    bdf: Bdf,
    mem32: &mut BarWindow,
    mut mem64: Option<&mut BarWindow>,
) -> Result<usize, BarError> {
    let command = cfg.read32(bdf, 4) & 0xffff;
    // Writing zeros to the status half leaves its write-1-to-clear bits be.
    cfg.write32(bdf, 4, command & !0b10);
    let mut assigned = 0;
    let mut result = Ok(());
    let mut bar = 0;
    while bar < 6 {
        let offset = 0x10 + 4 * bar;
        let orig = cfg.read32(bdf, offset);
        let wide = orig & 0b111 == 0b100;
        if orig & 1 == 1 {
            bar += 1;
            continue;
        }
        cfg.write32(bdf, offset, u32::MAX);
        let low = cfg.read32(bdf, offset) & !0xf;
        let mut mask = u64::from(low);
        let mut address = u64::from(orig & !0xf);
        if wide && bar < 5 {
            let orig_hi = cfg.read32(bdf, offset + 4);
            cfg.write32(bdf, offset + 4, u32::MAX);
            mask |= u64::from(cfg.read32(bdf, offset + 4)) << 32;
            cfg.write32(bdf, offset + 4, orig_hi);
            address |= u64::from(orig_hi) << 32;
        } else {
            mask |= 0xffff_ffff_0000_0000;
        }
        cfg.write32(bdf, offset, orig);
        let size = (!mask).wrapping_add(1);
        if low != 0 && address == 0 && size != 0 {
            let place = match (wide, mem64.as_deref_mut()) {
                (true, Some(w)) => w.take(size).or_else(|| mem32.take(size)),
                _ => mem32.take(size).filter(|&a| wide || a + size <= 1 << 32),
            };
            match place {
                Some(at) => {
                    cfg.write32(bdf, offset, (orig & 0xf) | at as u32);
                    if wide {
                        cfg.write32(bdf, offset + 4, (at >> 32) as u32);
                    }
                    assigned += 1;
                }
                None => result = Err(BarError::NoSpace),
            }
        }
        bar += if wide { 2 } else { 1 };
    }
    cfg.write32(bdf, 4, command);
    result.map(|()| assigned)
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

    /// One function with real BAR sizing behaviour: BAR0 an I/O BAR,
    /// BAR1 32-bit 4 KiB, BAR4+5 a 64-bit 16 KiB BAR.
    struct Bars(std::cell::RefCell<HashMap<u16, u32>>);
    impl ConfigSpace for Bars {
        fn read32(&self, _: Bdf, offset: u16) -> u32 {
            *self.0.borrow().get(&offset).unwrap_or(&0)
        }
        fn write32(&self, _: Bdf, offset: u16, value: u32) {
            let masked = match offset {
                0x10 => (value & !0x1f) | 1,
                0x14 => value & !0xfff,
                0x20 => (value & !0x3fff) | 0b1100,
                0x24 => value,
                0x04 => value & 0xffff,
                _ => 0,
            };
            self.0.borrow_mut().insert(offset, masked);
        }
    }

    #[test]
    fn memory_bars_get_aligned_addresses_and_io_bars_are_left() {
        let mut regs = HashMap::new();
        regs.insert(0x10, 1);
        regs.insert(0x20, 0b1100);
        regs.insert(0x04, 0b110);
        let cfg = Bars(std::cell::RefCell::new(regs));
        let at = bdf(0, 1, 0);
        let mut w32 = BarWindow {
            next: 0x1000_0100,
            end: 0x1001_0000,
        };
        let mut w64 = BarWindow {
            next: 0x80_0000_0000,
            end: 0x81_0000_0000,
        };
        assert_eq!(
            assign_memory_bars(&cfg, at, &mut w32, Some(&mut w64)),
            Ok(2)
        );
        assert_eq!(cfg.read32(at, 0x10), 1);
        assert_eq!(cfg.read32(at, 0x14), 0x1000_1000);
        assert_eq!(cfg.read32(at, 0x20), 0b1100);
        assert_eq!(cfg.read32(at, 0x24), 0x80);
        assert_eq!(cfg.read32(at, 0x04), 0b110, "command restored");
        // Already placed: nothing more to do.
        assert_eq!(
            assign_memory_bars(&cfg, at, &mut w32, Some(&mut w64)),
            Ok(0)
        );
        // No room: an error, not a wrapped or overlapping address.
        let cfg = Bars(std::cell::RefCell::new(HashMap::new()));
        let mut tiny = BarWindow {
            next: 0xffff_ff00,
            end: 0xffff_ffff,
        };
        assert_eq!(
            assign_memory_bars(&cfg, at, &mut tiny, None),
            Err(BarError::NoSpace)
        );
    }
}
