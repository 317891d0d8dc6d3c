//! Host tests: QEMU's own trees, hand-built trees with missing or odd
//! nodes, and garbage that must be refused without a panic.

extern crate std;

use std::vec::Vec;

use super::*;

/// `qemu-system-aarch64 -M virt,gic-version=3 -cpu max -smp 4 -m 512M
/// -append "keel.test=all -- /bin/app x"`, compacted with dtc.
const VIRT_GICV3: &[u8] = include_bytes!("../tests/fixtures/virt-gicv3-smp4.dtb");
/// `-M virt,gic-version=2,virtualization=on -cpu cortex-a72 -smp 2 -m 1G`.
const VIRT_GICV2_EL2: &[u8] = include_bytes!("../tests/fixtures/virt-gicv2-el2-smp2.dtb");

#[test]
fn reads_qemu_virt_with_gicv3() {
    let m = parse(VIRT_GICV3).unwrap();
    assert_eq!(m.model, "linux,dummy-virt");
    assert_eq!(
        m.memory.as_slice(),
        [Range {
            base: 0x4000_0000,
            size: 512 << 20
        }]
    );
    assert_eq!(m.cpus.as_slice(), [0, 1, 2, 3]);
    assert_eq!(m.bootargs, "keel.test=all -- /bin/app x");
    let Some(Gic::V3 {
        distributor,
        redistributors,
        stride,
    }) = m.gic
    else {
        panic!("expected a GICv3, got {:?}", m.gic);
    };
    assert_eq!(distributor.base, 0x0800_0000);
    assert_eq!(
        redistributors.as_slice(),
        [Range {
            base: 0x080a_0000,
            size: 0xf6_0000
        }]
    );
    assert_eq!(stride, None);
    assert_eq!(
        m.timer.and_then(|t| t.virtual_timer),
        Some(Interrupt {
            intid: 27,
            edge: false
        })
    );
    assert_eq!(
        m.psci,
        Some(Psci {
            conduit: Conduit::Hvc,
            cpu_on: PSCI_CPU_ON_64,
            standard: true
        })
    );
    let console = m.console.unwrap();
    assert_eq!(console.reg.base, 0x0900_0000);
    assert_eq!(
        console.interrupt,
        Some(Interrupt {
            intid: 33,
            edge: false
        })
    );
    assert_eq!(m.rtc.unwrap().reg.base, 0x0901_0000);
    assert_eq!(m.virtio_mmio.len(), 32);
    assert_eq!(
        m.virtio_mmio.as_slice()[0],
        Device {
            reg: Range {
                base: 0x0a00_0000,
                size: 0x200
            },
            interrupt: Some(Interrupt {
                intid: 48,
                edge: true
            })
        }
    );
    let pcie = m.pcie.unwrap();
    assert_eq!(pcie.ecam.base, 0x40_1000_0000);
    assert_eq!((pcie.bus_start, pcie.bus_end), (0, 255));
    // QEMU virt: 32-bit window 0x1000_0000 (identity), 64-bit at 512 GiB.
    assert_eq!(
        pcie.mem32,
        Some(PciWindow {
            pci: 0x1000_0000,
            cpu: 0x1000_0000,
            size: 0x2eff_0000
        })
    );
    assert_eq!(
        pcie.mem64.map(|w| (w.pci, w.cpu)),
        Some((0x80_0000_0000, 0x80_0000_0000))
    );
    // INTA-INTD of slots 0-3 go to SPIs 3-6 (intid 35-38), rotated by
    // slot, level-triggered; the mask folds slot 4 onto slot 0.
    assert_eq!(pcie.intx.len(), 16);
    let route = |dev, pin| pcie.intx_route(0, dev, 0, pin).map(|i| (i.intid, i.edge));
    assert_eq!(route(0, 1), Some((35, false)));
    assert_eq!(route(1, 1), Some((36, false)));
    assert_eq!(route(1, 4), Some((35, false)));
    assert_eq!(route(5, 2), Some((37, false)));
    assert_eq!(route(2, 0), None);
    assert!(m.problems.is_empty(), "{:?}", m.problems);
}

#[test]
fn reads_qemu_virt_with_gicv2_and_el2() {
    let m = parse(VIRT_GICV2_EL2).unwrap();
    assert_eq!(
        m.gic,
        Some(Gic::V2 {
            distributor: Range {
                base: 0x0800_0000,
                size: 0x1_0000
            },
            cpu_interface: Range {
                base: 0x0801_0000,
                size: 0x1_0000
            },
        })
    );
    assert_eq!(m.psci.unwrap().conduit, Conduit::Smc);
    assert_eq!(m.cpus.as_slice(), [0, 1]);
    assert_eq!(m.memory.as_slice()[0].size, 1 << 30);
    assert_eq!(m.timer.unwrap().virtual_timer.unwrap().intid, 27);
    assert_eq!(m.bootargs, "");
}

#[test]
fn refuses_garbage_with_a_reason() {
    assert_eq!(parse(&[]).unwrap_err(), Error::Truncated);
    assert_eq!(parse(&[0u8; 64]).unwrap_err(), Error::BadMagic(0));
    let mut short = VIRT_GICV3.to_vec();
    short.truncate(VIRT_GICV3.len() - 1);
    assert_eq!(parse(&short).unwrap_err(), Error::Truncated);
    let text = std::format!("{}", parse(&[0x12u8; 100]).unwrap_err());
    assert!(text.contains("no device tree"), "{text}");
}

#[test]
fn never_panics_on_damaged_trees() {
    // Every byte flipped in turn, and every length cut: each parse must
    // return (Ok or Err), never panic.
    for blob in [VIRT_GICV3, VIRT_GICV2_EL2] {
        let mut copy = blob.to_vec();
        for i in 0..copy.len() {
            for mask in [0xff, 0x01, 0x80] {
                copy[i] ^= mask;
                let _ = parse(&copy);
                copy[i] ^= mask;
            }
        }
        for len in (0..blob.len()).step_by(7) {
            let _ = parse(&blob[..len]);
        }
    }
}

/// A minimal FDT writer for hand-made trees.
struct Builder {
    structure: Vec<u8>,
    strings: Vec<u8>,
}

impl Builder {
    fn new() -> Self {
        Self {
            structure: Vec::new(),
            strings: Vec::new(),
        }
    }
    fn word(&mut self, w: u32) -> &mut Self {
        self.structure.extend_from_slice(&w.to_be_bytes());
        self
    }
    fn begin(&mut self, name: &str) -> &mut Self {
        self.word(1);
        self.structure.extend_from_slice(name.as_bytes());
        self.structure.push(0);
        while !self.structure.len().is_multiple_of(4) {
            self.structure.push(0);
        }
        self
    }
    fn end(&mut self) -> &mut Self {
        self.word(2)
    }
    fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let offset = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.word(3).word(value.len() as u32).word(offset);
        self.structure.extend_from_slice(value);
        while !self.structure.len().is_multiple_of(4) {
            self.structure.push(0);
        }
        self
    }
    fn cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &bytes)
    }
    fn text(&mut self, name: &str, s: &str) -> &mut Self {
        let mut bytes = s.as_bytes().to_vec();
        bytes.push(0);
        self.prop(name, &bytes)
    }
    fn finish(&mut self) -> Vec<u8> {
        self.word(9);
        let reservations = 40u32;
        let structure_at = reservations + 16;
        let strings_at = structure_at + self.structure.len() as u32;
        let total = strings_at + self.strings.len() as u32;
        let mut out = Vec::new();
        for w in [
            0xd00d_feed,
            total,
            structure_at,
            strings_at,
            reservations,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.structure.len() as u32,
        ] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&self.structure);
        out.extend_from_slice(&self.strings);
        out
    }
}

#[test]
fn a_tree_without_devices_reads_as_empty_fields() {
    let blob = Builder::new()
        .begin("")
        .cells("#address-cells", &[2])
        .end()
        .finish();
    let m = parse(&blob).unwrap();
    assert!(m.memory.is_empty() && m.cpus.is_empty());
    assert!(m.gic.is_none() && m.psci.is_none() && m.console.is_none() && m.timer.is_none());
}

#[test]
fn buses_translate_addresses_and_disabled_nodes_are_skipped() {
    let blob = Builder::new()
        .begin("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2])
        .begin("soc")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1])
        // child 0x0 -> CPU 0x1_0000_0000, 16 MiB
        .cells("ranges", &[0, 1, 0, 0x100_0000])
        .begin("uart@1000")
        .text("compatible", "arm,pl011")
        .cells("reg", &[0x1000, 0x1000])
        .end()
        .begin("uart@2000")
        .text("compatible", "arm,pl031")
        .text("status", "disabled")
        .cells("reg", &[0x2000, 0x1000])
        .end()
        .end()
        .begin("memory@80000000")
        .text("device_type", "memory")
        .cells("reg", &[0, 0x8000_0000, 0, 0x4000_0000])
        .end()
        .end()
        .finish();
    let m = parse(&blob).unwrap();
    assert_eq!(m.console.unwrap().reg.base, 0x1_0000_1000);
    assert_eq!(m.console.unwrap().interrupt, None);
    assert!(m.rtc.is_none(), "a disabled node was used");
    assert_eq!(m.memory.as_slice()[0].base, 0x8000_0000);
}

#[test]
fn malformed_structures_are_refused() {
    // A property after a child node.
    let blob = Builder::new()
        .begin("")
        .begin("a")
        .end()
        .cells("x", &[1])
        .end()
        .finish();
    assert!(matches!(
        parse(&blob),
        Err(Error::BadStructure {
            why: "property after a child node",
            ..
        })
    ));
    // A NOP inside a node (the fdt crate cannot step over it everywhere).
    let blob = Builder::new().begin("").word(4).end().finish();
    assert!(matches!(parse(&blob), Err(Error::BadStructure { .. })));
    assert!(parse_mut(&mut blob.clone()).is_ok());
    // Unbalanced nodes.
    let mut b = Builder::new();
    b.begin("").begin("a");
    let blob = b.finish();
    assert!(matches!(parse(&blob), Err(Error::BadStructure { .. })));
    // Absurd cell counts are ignored, not trusted.
    let blob = Builder::new()
        .begin("")
        .cells("#address-cells", &[7])
        .begin("memory@0")
        .text("device_type", "memory")
        .cells("reg", &[1, 2, 3])
        .end()
        .end()
        .finish();
    assert!(parse(&blob).unwrap().memory.is_empty());
}

#[test]
fn nops_left_by_libfdt_edits_are_squeezed_out() {
    // NOPs between properties, between children, and a NOPed-out node.
    let mut blob = Builder::new()
        .begin("")
        .cells("#address-cells", &[1])
        .word(4)
        .cells("#size-cells", &[1])
        .begin("gone")
        .end()
        .word(4)
        .begin("uart@1000")
        .word(4)
        .word(4)
        .text("compatible", "arm,pl011")
        .cells("reg", &[0x1000, 0x1000])
        .end()
        .end()
        .finish();
    // Turn the "gone" node into NOPs, as fdt_nop_node does.
    let at = blob.windows(4).position(|w| w == b"gone").unwrap() - 4;
    for w in blob[at..at + 16].chunks_mut(4) {
        w.copy_from_slice(&4u32.to_be_bytes());
    }
    let m = parse_mut(&mut blob).unwrap();
    assert_eq!(m.console.unwrap().reg.base, 0x1000);
}

#[test]
fn never_panics_on_damaged_trees_squeezed_in_place() {
    for blob in [VIRT_GICV3, VIRT_GICV2_EL2] {
        for i in (0..blob.len()).step_by(3) {
            let mut copy = blob.to_vec();
            copy[i] ^= 0xff;
            let _ = parse_mut(&mut copy);
        }
    }
}

#[test]
fn stdout_path_alias_picks_the_console() {
    let blob = Builder::new()
        .begin("")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1])
        .begin("chosen")
        .text("stdout-path", "serial1:115200n8")
        .end()
        .begin("aliases")
        .text("serial1", "/uart@2000")
        .end()
        .begin("uart@1000")
        .text("compatible", "arm,pl011")
        .cells("reg", &[0x1000, 0x1000])
        .end()
        .begin("uart@2000")
        .text("compatible", "arm,pl011")
        .cells("reg", &[0x2000, 0x1000])
        .end()
        .end()
        .finish();
    assert_eq!(parse(&blob).unwrap().console.unwrap().reg.base, 0x2000);
}

#[test]
fn total_size_reads_the_header() {
    assert_eq!(total_size(VIRT_GICV3), Some(VIRT_GICV3.len()));
    assert_eq!(total_size(&[1, 2, 3, 4, 5, 6, 7, 8]), None);
    assert_eq!(total_size(&[0xd0]), None);
}
