//! What a flattened device tree (DTB) says about the machine: memory, CPUs,
//! console, real-time clock, GIC, timer, PSCI, virtio-mmio slots, PCIe host
//! bridge and the `/chosen` boot arguments.
//!
//! The blob is checked token by token first (see `check`), then read with
//! the `fdt` crate. Nothing here allocates (the tree is read before the
//! heap exists) or panics: a bad blob is an [`Error`], a missing or odd
//! node is an empty field or a line in [`Machine::problems`].

#![no_std]
#![forbid(unsafe_code)]

mod check;
mod list;
#[cfg(test)]
mod tests;

use core::fmt;

use fdt::Fdt;
use fdt::node::FdtNode;

pub use check::total_size;
pub use list::List;

use check::{MAX_DEPTH, be32, be64};

/// A physical address range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Range {
    /// One past the last byte (saturating).
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// A GIC interrupt as the tree names it, converted to the GIC's interrupt ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interrupt {
    /// GIC INTID: 16..32 for PPIs, 32.. for SPIs.
    pub intid: u32,
    /// Edge-triggered (else level-sensitive).
    pub edge: bool,
}

/// A memory-mapped device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Device {
    /// Its register window.
    pub reg: Range,
    /// Its first interrupt, if it has one wired to the GIC.
    pub interrupt: Option<Interrupt>,
}

/// Maximum redistributor regions of a GICv3.
pub const MAX_REDISTRIBUTOR_REGIONS: usize = 8;

/// The interrupt controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gic {
    /// GICv2: distributor and memory-mapped CPU interface.
    V2 {
        /// Distributor registers.
        distributor: Range,
        /// CPU interface registers.
        cpu_interface: Range,
    },
    /// GICv3: distributor and per-CPU redistributors (system-register CPU
    /// interface).
    V3 {
        /// Distributor registers.
        distributor: Range,
        /// Regions of consecutive redistributors.
        redistributors: List<Range, MAX_REDISTRIBUTOR_REGIONS>,
        /// Distance between redistributors, if the tree overrides the default.
        stride: Option<u64>,
    },
}

/// How PSCI firmware calls are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// `hvc #0` (firmware in the hypervisor).
    Hvc,
    /// `smc #0` (firmware at EL3, or a hypervisor when the kernel has EL2).
    Smc,
}

/// The PSCI firmware interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Psci {
    /// Instruction used for calls.
    pub conduit: Conduit,
    /// Function ID of CPU_ON.
    pub cpu_on: u32,
    /// PSCI 0.2 or later (standard function IDs, SYSTEM_OFF exists).
    pub standard: bool,
}

/// The architected generic timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    /// The virtual timer's interrupt (a PPI).
    pub virtual_timer: Option<Interrupt>,
    /// `clock-frequency`, for firmware that leaves CNTFRQ_EL0 unset.
    pub frequency: Option<u32>,
}

/// A PCIe host bridge with ECAM configuration space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciHost {
    /// The ECAM window.
    pub ecam: Range,
    /// First bus number.
    pub bus_start: u8,
    /// Last bus number.
    pub bus_end: u8,
    /// The 32-bit memory window BARs may be placed in.
    pub mem32: Option<PciWindow>,
    /// The 64-bit memory window.
    pub mem64: Option<PciWindow>,
    /// Legacy interrupt routing (`interrupt-map`) to the GIC.
    pub intx: List<PciIntx, MAX_PCI_INTX>,
    /// `interrupt-map-mask`: (phys.hi mask, pin mask).
    pub intx_mask: (u32, u32),
}

/// A window of PCI memory space and where the CPU sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PciWindow {
    /// Start as a PCI bus address.
    pub pci: u64,
    /// Start as a CPU physical address.
    pub cpu: u64,
    /// Length.
    pub size: u64,
}

/// One `interrupt-map` entry: a (masked) device address and pin, and the
/// GIC interrupt it reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PciIntx {
    /// phys.hi of the child address (bus, device, function bits), masked.
    pub child: u32,
    /// INTx pin, 1 = INTA … 4 = INTD, masked.
    pub pin: u32,
    /// Where it arrives.
    pub interrupt: Interrupt,
}

impl PciHost {
    /// The GIC interrupt that INTx `pin` (1..=4) of function
    /// `bus:device.function` raises, as `interrupt-map` says.
    pub fn intx_route(&self, bus: u8, device: u8, function: u8, pin: u8) -> Option<Interrupt> {
        let hi = (u32::from(bus) << 16) | (u32::from(device) << 11) | (u32::from(function) << 8);
        let (child, pin) = (hi & self.intx_mask.0, u32::from(pin) & self.intx_mask.1);
        self.intx
            .as_slice()
            .iter()
            .find(|e| e.child == child && e.pin == pin)
            .map(|e| e.interrupt)
    }
}

/// Most memory regions, reservations and virtio-mmio slots kept.
pub const MAX_REGIONS: usize = 32;
/// Most CPUs kept.
pub const MAX_CPUS: usize = 64;
/// Most PCI `interrupt-map` entries kept.
pub const MAX_PCI_INTX: usize = 32;
/// Most virtio-mmio slots kept.
pub const MAX_VIRTIO_MMIO: usize = 64;

/// Everything Keel reads from the tree.
#[derive(Clone, Debug)]
pub struct Machine<'a> {
    /// The root `model` string.
    pub model: &'a str,
    /// RAM (`device_type = "memory"` nodes).
    pub memory: List<Range, MAX_REGIONS>,
    /// Memory the kernel must not use: the reservation block and
    /// `/reserved-memory` children.
    pub reserved: List<Range, MAX_REGIONS>,
    /// CPUs (`/cpus/cpu@N`), by their MPIDR affinity (`reg`).
    pub cpus: List<u64, MAX_CPUS>,
    /// `/chosen/bootargs` (empty when absent or not UTF-8).
    pub bootargs: &'a str,
    /// The initial ramdisk (`/chosen/linux,initrd-start`/`-end`).
    pub initrd: Option<Range>,
    /// The console: the `stdout-path` UART if it is a PL011, else the first PL011.
    pub console: Option<Device>,
    /// PL031 real-time clock.
    pub rtc: Option<Device>,
    /// Interrupt controller.
    pub gic: Option<Gic>,
    /// Generic timer.
    pub timer: Option<Timer>,
    /// PSCI firmware.
    pub psci: Option<Psci>,
    /// virtio-mmio transport slots.
    pub virtio_mmio: List<Device, MAX_VIRTIO_MMIO>,
    /// PCIe host bridge.
    pub pcie: Option<PciHost>,
    /// Odd things noticed that did not stop the reading, one phrase each.
    pub problems: List<&'static str, 8>,
}

/// Why a blob was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its header, or than the size its header claims.
    Truncated,
    /// Not a DTB: the first word is this instead of 0xd00dfeed.
    BadMagic(u32),
    /// The header is inconsistent.
    BadHeader(&'static str),
    /// The structure block is malformed at byte `offset` of it.
    BadStructure {
        /// Offset into the structure block.
        offset: usize,
        /// What is wrong.
        why: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("device tree blob is truncated"),
            Error::BadMagic(m) => write!(
                f,
                "no device tree blob (magic {m:#010x}, expected 0xd00dfeed)"
            ),
            Error::BadHeader(why) => write!(f, "bad device tree header: {why}"),
            Error::BadStructure { offset, why } => {
                write!(f, "bad device tree structure at byte {offset:#x}: {why}")
            }
        }
    }
}

/// What a node is, by its `compatible` strings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Other,
    Pl011,
    Pl031,
    GicV3,
    GicV2,
    Timer,
    Psci,
    PsciStandard,
    VirtioMmio,
    PciEcam,
}

/// The first `compatible` string Keel knows decides the kind.
fn kind(compatible: &[u8]) -> Kind {
    for s in compatible.split(|&b| b == 0) {
        let kind = match s {
            b"arm,pl011" => Kind::Pl011,
            b"arm,pl031" => Kind::Pl031,
            b"arm,gic-v3" => Kind::GicV3,
            b"arm,gic-400"
            | b"arm,cortex-a15-gic"
            | b"arm,cortex-a9-gic"
            | b"arm,cortex-a7-gic" => Kind::GicV2,
            b"arm,armv8-timer" | b"arm,armv7-timer" => Kind::Timer,
            b"arm,psci-0.2" | b"arm,psci-1.0" => Kind::PsciStandard,
            b"arm,psci" => Kind::Psci,
            b"virtio,mmio" => Kind::VirtioMmio,
            b"pci-host-ecam-generic" => Kind::PciEcam,
            _ => continue,
        };
        return kind;
    }
    Kind::Other
}

/// PSCI 0.2 CPU_ON (SMC64 calling convention).
pub const PSCI_CPU_ON_64: u32 = 0xc400_0003;

/// Read the tree in `blob` (which may extend past the tree's end), after
/// squeezing NOP tokens out of it in place (see [`parse`]).
pub fn parse_mut(blob: &mut [u8]) -> Result<Machine<'_>, Error> {
    check::remove_nops(blob)?;
    parse(blob)
}

/// Read the tree in `blob` (which may extend past the tree's end). Trees
/// with NOP tokens inside nodes (left by libfdt edits) are refused here;
/// [`parse_mut`] accepts them.
pub fn parse(blob: &[u8]) -> Result<Machine<'_>, Error> {
    let header = check::validate(blob)?;
    let blob = &blob[..header.total];
    let fdt = Fdt::new(blob).map_err(|_| Error::BadHeader("refused by the fdt parser"))?;
    let root = fdt.find_node("/").ok_or(Error::BadStructure {
        offset: 0,
        why: "no root node",
    })?;
    let mut m = Machine {
        model: "",
        memory: List::new(),
        reserved: List::new(),
        cpus: List::new(),
        bootargs: "",
        initrd: None,
        console: None,
        rtc: None,
        gic: None,
        timer: None,
        psci: None,
        virtio_mmio: List::new(),
        pcie: None,
        problems: List::new(),
    };
    read_reservations(blob, header.reservations, &mut m);
    // One walk over the tree, each node's properties read once; interrupts
    // are resolved afterwards, when the GIC (which devices name by
    // phandle, and which may come after them) is known.
    let mut reader = Reader::default();
    reader.walk(root, &Scope::root(), 0, &mut m);
    reader.finish(&mut m);
    Ok(m)
}

fn read_reservations(blob: &[u8], start: usize, m: &mut Machine<'_>) {
    let mut at = start;
    while let (Some(base), Some(size)) = (be64(blob, at), be64(blob, at + 8)) {
        if base == 0 && size == 0 {
            break;
        }
        if !m.reserved.push(Range { base, size }) {
            m.problems
                .push("too many memory reservations; some were ignored");
            break;
        }
        at += 16;
    }
}

/// A property holding a 32- or 64-bit number.
fn number(value: &[u8]) -> Option<u64> {
    match value.len() {
        4 => be32(value, 0).map(u64::from),
        8 => be64(value, 0),
        _ => None,
    }
}

/// A property holding exactly one 32-bit cell.
fn cell(value: &[u8]) -> Option<u32> {
    (value.len() == 4).then(|| be32(value, 0)).flatten()
}

/// A property holding one string (trailing NULs removed).
fn text(value: &[u8]) -> Option<&str> {
    core::str::from_utf8(value)
        .ok()
        .map(|s| s.trim_end_matches('\0'))
}

/// Read `cells` big-endian 32-bit cells at cell index `at` as one number.
#[inline(never)]
fn cells(value: &[u8], at: usize, cells: u32) -> Option<u64> {
    match cells {
        0 => Some(0),
        1 => be32(value, at * 4).map(u64::from),
        2 => be64(value, at * 4),
        _ => None,
    }
}

/// The 32- and 64-bit memory windows of a PCI host's `ranges` (child
/// addresses are three cells: phys.hi with the space code, then 64 bits).
fn pci_windows(
    ranges: &[u8],
    scope: &Scope,
    children: &Scope,
) -> (Option<PciWindow>, Option<PciWindow>) {
    let (mut mem32, mut mem64) = (None, None);
    if children.address_cells != 3 {
        return (None, None);
    }
    let entry = (3 + scope.address_cells + children.size_cells) as usize;
    for i in 0..ranges.len() / (entry * 4) {
        let at = i * entry;
        let hi = be32(ranges, at * 4);
        let pci = cells(ranges, at + 1, 2);
        let cpu =
            cells(ranges, at + 3, scope.address_cells).and_then(|a| scope.windows.translate(a));
        let size = cells(
            ranges,
            at + 3 + scope.address_cells as usize,
            children.size_cells,
        );
        if let (Some(hi), Some(pci), Some(cpu), Some(size)) = (hi, pci, cpu, size) {
            let w = Some(PciWindow { pci, cpu, size });
            match (hi >> 24) & 3 {
                2 => mem32 = mem32.or(w),
                3 => mem64 = mem64.or(w),
                _ => {} // I/O space: Keel uses memory BARs only
            }
        }
    }
    (mem32, mem64)
}

/// The properties Keel looks at, read in one pass over a node.
#[derive(Clone, Copy, Default)]
struct Props<'a> {
    compatible: &'a [u8],
    reg: &'a [u8],
    interrupts: Option<&'a [u8]>,
    interrupt_parent: Option<u32>,
    disabled: bool,
    memory: bool,
    cpu: bool,
    address_cells: Option<u32>,
    size_cells: Option<u32>,
    ranges: Option<&'a [u8]>,
    phandle: Option<u32>,
    interrupt_controller: bool,
    interrupt_cells: Option<u32>,
    redistributor_regions: Option<u32>,
    redistributor_stride: Option<u64>,
    method: Option<&'a str>,
    cpu_on: Option<u32>,
    bus_range: Option<&'a [u8]>,
    interrupt_map: Option<&'a [u8]>,
    interrupt_map_mask: Option<&'a [u8]>,
    enable_method: Option<&'a str>,
    clock_frequency: Option<u32>,
    model: Option<&'a str>,
}

impl<'a> Props<'a> {
    #[inline(never)] // one copy: boot runs under emulation, where code size is time
    fn read(node: FdtNode<'_, 'a>) -> Self {
        let mut p = Props::default();
        for prop in node.properties() {
            let v = prop.value;
            match prop.name {
                "compatible" => p.compatible = v,
                "reg" => p.reg = v,
                "interrupts" => p.interrupts = Some(v),
                "interrupt-parent" => p.interrupt_parent = cell(v),
                "status" => p.disabled = !matches!(text(v), Some("okay" | "ok")),
                "device_type" => match text(v) {
                    Some("memory") => p.memory = true,
                    Some("cpu") => p.cpu = true,
                    _ => {}
                },
                "#address-cells" => p.address_cells = cell(v),
                "#size-cells" => p.size_cells = cell(v),
                "ranges" => p.ranges = Some(v),
                "phandle" | "linux,phandle" => p.phandle = cell(v),
                "interrupt-controller" => p.interrupt_controller = true,
                "#interrupt-cells" => p.interrupt_cells = cell(v),
                "#redistributor-regions" => p.redistributor_regions = cell(v),
                "redistributor-stride" => p.redistributor_stride = number(v),
                "method" => p.method = text(v),
                "cpu_on" => p.cpu_on = cell(v),
                "bus-range" => p.bus_range = Some(v),
                "interrupt-map" => p.interrupt_map = Some(v),
                "interrupt-map-mask" => p.interrupt_map_mask = Some(v),
                "enable-method" => p.enable_method = text(v),
                "clock-frequency" => p.clock_frequency = cell(v),
                "model" => p.model = text(v),
                _ => {}
            }
        }
        p
    }
}

/// How addresses of a node's children reach CPU physical addresses.
#[derive(Clone, Copy, Debug)]
enum Windows {
    /// Children's addresses are CPU addresses.
    Identity,
    /// `ranges` windows: (child address, CPU address, size).
    Table(List<(u64, u64, u64), 8>),
    /// No `ranges`: the children are not memory-mapped.
    Unmapped,
}

impl Windows {
    fn translate(&self, addr: u64) -> Option<u64> {
        match self {
            Windows::Identity => Some(addr),
            Windows::Table(t) => t
                .as_slice()
                .iter()
                .find(|&&(child, _, size)| addr >= child && addr - child < size)
                .map(|&(child, cpu, _)| cpu + (addr - child)),
            Windows::Unmapped => None,
        }
    }
}

/// What a node's children inherit.
#[derive(Clone, Copy, Debug)]
struct Scope {
    address_cells: u32,
    size_cells: u32,
    windows: Windows,
    interrupt_parent: Option<u32>,
}

impl Scope {
    fn root() -> Self {
        Self {
            address_cells: 2,
            size_cells: 1,
            windows: Windows::Identity,
            interrupt_parent: None,
        }
    }

    /// The scope a node with properties `p` gives its children (`self` is
    /// the node's own scope).
    fn for_children(&self, p: &Props<'_>, is_root: bool) -> Self {
        let address_cells = p.address_cells.unwrap_or(2);
        let size_cells = p.size_cells.unwrap_or(1);
        let windows = match p.ranges {
            _ if is_root => Windows::Identity,
            None => Windows::Unmapped,
            Some([]) => self.windows,
            Some(v) => {
                let mut table = List::new();
                let entry = (address_cells + self.address_cells + size_cells) as usize;
                for i in 0..v.len() / (entry * 4).max(4) {
                    let at = i * entry;
                    let child = cells(v, at, address_cells);
                    let parent = cells(v, at + address_cells as usize, self.address_cells);
                    let size = cells(
                        v,
                        at + (address_cells + self.address_cells) as usize,
                        size_cells,
                    );
                    if let (Some(c), Some(cpu), Some(s)) =
                        (child, parent.and_then(|a| self.windows.translate(a)), size)
                    {
                        table.push((c, cpu, s));
                    }
                }
                Windows::Table(table)
            }
        };
        Self {
            address_cells,
            size_cells,
            windows,
            interrupt_parent: p.interrupt_parent.or(self.interrupt_parent),
        }
    }

    /// The `reg` entries `value`, translated to CPU addresses.
    #[inline(never)]
    fn reg<'v>(&self, value: &'v [u8]) -> impl Iterator<Item = Range> + 'v {
        let (ac, sc, windows) = (self.address_cells, self.size_cells, self.windows);
        let entry = (ac + sc) as usize;
        let count = if ac > 2 || sc > 2 || entry == 0 {
            0
        } else {
            value.len() / (entry * 4)
        };
        (0..count).filter_map(move |i| {
            let base = windows.translate(cells(value, i * entry, ac)?)?;
            let size = cells(value, i * entry + ac as usize, sc)?;
            Some(Range { base, size })
        })
    }
}

/// An interrupt specifier not yet decoded (the GIC may not be known yet).
#[derive(Clone, Copy, Default)]
struct RawIrq<'a> {
    parent: Option<u32>,
    spec: &'a [u8],
}

/// A node's path, kept for matching `stdout-path`.
#[derive(Clone, Copy)]
struct Path {
    bytes: [u8; 128],
    len: usize,
}

impl Default for Path {
    fn default() -> Self {
        Self {
            bytes: [0; 128],
            len: 0,
        }
    }
}

impl Path {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
    /// Append `/name`; returns the length to truncate back to.
    fn push(&mut self, name: &str) -> usize {
        let before = self.len;
        let room = self.bytes.len() - self.len;
        if name.len() < room {
            self.bytes[self.len] = b'/';
            self.bytes[self.len + 1..self.len + 1 + name.len()].copy_from_slice(name.as_bytes());
            self.len += 1 + name.len();
        } else {
            // Too deep to name: a path no stdout-path equals.
            self.len = self.bytes.len();
        }
        before
    }
}

#[derive(Default)]
struct Reader<'a> {
    path: Path,
    gic_phandle: Option<u32>,
    gic_cells: u32,
    /// The GIC node's #address-cells (part of each interrupt-map entry).
    gic_address_cells: u32,
    /// The PCIe host's interrupt-map, its mask, and the host's
    /// #address-cells and #interrupt-cells, decoded once the GIC is known.
    pci_irq_map: Option<(&'a [u8], &'a [u8], u32, u32)>,
    stdout_path: Option<&'a str>,
    aliases: List<(&'a str, &'a str), 16>,
    consoles: List<(Range, RawIrq<'a>, Path), 4>,
    rtc: Option<(Range, RawIrq<'a>)>,
    virtio_irqs: List<RawIrq<'a>, MAX_VIRTIO_MMIO>,
    timer: Option<(RawIrq<'a>, Option<u32>)>,
}

impl<'a> Reader<'a> {
    fn walk(&mut self, node: FdtNode<'_, 'a>, scope: &Scope, depth: usize, m: &mut Machine<'a>) {
        if depth > MAX_DEPTH {
            return;
        }
        let p = Props::read(node);
        if p.disabled {
            return;
        }
        let undo = if depth == 0 {
            self.path.len
        } else {
            self.path.push(node.name)
        };
        let children = scope.for_children(&p, depth == 0);
        if self.visit(node, &p, scope, &children, depth, m) {
            for child in node.children() {
                self.walk(child, &children, depth + 1, m);
            }
        }
        self.path.len = undo;
    }

    fn raw_irq(p: &Props<'a>, scope: &Scope) -> RawIrq<'a> {
        RawIrq {
            parent: p.interrupt_parent.or(scope.interrupt_parent),
            spec: p.interrupts.unwrap_or(&[]),
        }
    }

    /// Record what a node is; returns whether to look at its children.
    fn visit(
        &mut self,
        node: FdtNode<'_, 'a>,
        p: &Props<'a>,
        scope: &Scope,
        children: &Scope,
        depth: usize,
        m: &mut Machine<'a>,
    ) -> bool {
        match (depth, node.name) {
            (0, _) => m.model = p.model.unwrap_or(""),
            (1, "chosen") => {
                self.chosen(node, m);
                return false;
            }
            (1, "aliases") => {
                for prop in node.properties() {
                    if let Some(path) = text(prop.value) {
                        self.aliases.push((prop.name, path));
                    }
                }
                return false;
            }
            (1, "cpus") => {
                self.cpus(node, children, m);
                return false;
            }
            (1, "reserved-memory") => {
                for r in node.children() {
                    let rp = Props::read(r);
                    for range in children.reg(rp.reg).filter(|_| !rp.disabled) {
                        if !m.reserved.push(range) {
                            m.problems.push("too many reserved-memory regions");
                        }
                    }
                }
                return false;
            }
            _ => {}
        }
        let first_reg = || scope.reg(p.reg).next();
        let kind = kind(p.compatible);
        if p.memory {
            for range in scope.reg(p.reg) {
                if !m.memory.push(range) {
                    m.problems
                        .push("too many memory regions; some RAM is unused");
                }
            }
        } else if p.interrupt_controller && matches!(kind, Kind::GicV3 | Kind::GicV2) {
            self.gic(p, kind == Kind::GicV3, scope, m);
        } else if kind == Kind::Pl011 {
            if let Some(reg) = first_reg() {
                self.consoles
                    .push((reg, Self::raw_irq(p, scope), self.path));
            }
        } else if kind == Kind::Pl031 {
            if let (None, Some(reg)) = (self.rtc, first_reg()) {
                self.rtc = Some((reg, Self::raw_irq(p, scope)));
            }
        } else if kind == Kind::VirtioMmio {
            if let Some(reg) = first_reg() {
                if m.virtio_mmio.push(Device {
                    reg,
                    interrupt: None,
                }) {
                    self.virtio_irqs.push(Self::raw_irq(p, scope));
                } else {
                    m.problems
                        .push("too many virtio-mmio slots; some were ignored");
                }
            }
        } else if kind == Kind::Timer {
            self.timer = Some((Self::raw_irq(p, scope), p.clock_frequency));
        } else if matches!(kind, Kind::Psci | Kind::PsciStandard) {
            self.psci(p, kind == Kind::PsciStandard, m);
        } else if kind == Kind::PciEcam {
            if let Some(ecam) = first_reg() {
                let bus = p.bus_range.and_then(|b| Some((be32(b, 0)?, be32(b, 4)?)));
                let (bus_start, bus_end) = match bus {
                    Some((s, e)) if s <= e && e <= 255 => (s as u8, e as u8),
                    _ => (0, 255),
                };
                let (mem32, mem64) = pci_windows(p.ranges.unwrap_or(&[]), scope, children);
                m.pcie = Some(PciHost {
                    ecam,
                    bus_start,
                    bus_end,
                    mem32,
                    mem64,
                    intx: List::new(),
                    intx_mask: (0, 0),
                });
                if let (Some(map), Some(mask)) = (p.interrupt_map, p.interrupt_map_mask) {
                    self.pci_irq_map = Some((
                        map,
                        mask,
                        children.address_cells,
                        p.interrupt_cells.unwrap_or(1),
                    ));
                }
            }
            return false; // children use PCI addresses
        }
        true
    }

    fn chosen(&mut self, node: FdtNode<'_, 'a>, m: &mut Machine<'a>) {
        let (mut start, mut end) = (None, None);
        for prop in node.properties() {
            match prop.name {
                "bootargs" => match core::str::from_utf8(prop.value) {
                    Ok(s) => m.bootargs = s.trim_end_matches('\0'),
                    Err(_) => {
                        m.problems.push("/chosen/bootargs is not UTF-8; ignored");
                    }
                },
                "stdout-path" => {
                    self.stdout_path = text(prop.value).and_then(|s| s.split(':').next());
                }
                "linux,initrd-start" => start = number(prop.value),
                "linux,initrd-end" => end = number(prop.value),
                _ => {}
            }
        }
        if let (Some(start), Some(end)) = (start, end)
            && end > start
        {
            m.initrd = Some(Range {
                base: start,
                size: end - start,
            });
        }
    }

    fn gic(&mut self, p: &Props<'a>, v3: bool, scope: &Scope, m: &mut Machine<'a>) {
        if m.gic.is_some() {
            return;
        }
        let mut reg = scope.reg(p.reg);
        if v3 {
            let Some(distributor) = reg.next() else {
                m.problems.push("the GICv3 node has no registers");
                return;
            };
            let mut redistributors = List::new();
            for r in reg.take(p.redistributor_regions.unwrap_or(1) as usize) {
                redistributors.push(r);
            }
            if redistributors.is_empty() {
                m.problems
                    .push("the GICv3 node has no redistributor region");
                return;
            }
            m.gic = Some(Gic::V3 {
                distributor,
                redistributors,
                stride: p.redistributor_stride.filter(|&s| s != 0),
            });
        } else {
            let (Some(distributor), Some(cpu_interface)) = (reg.next(), reg.next()) else {
                m.problems
                    .push("the GICv2 node lacks distributor or CPU interface registers");
                return;
            };
            m.gic = Some(Gic::V2 {
                distributor,
                cpu_interface,
            });
        }
        self.gic_phandle = p.phandle;
        self.gic_cells = p.interrupt_cells.unwrap_or(0);
        self.gic_address_cells = p.address_cells.unwrap_or(0);
        if self.gic_cells < 3 {
            m.problems
                .push("the GIC node's #interrupt-cells is not 3; device interrupts ignored");
        }
    }

    fn cpus(&mut self, node: FdtNode<'_, 'a>, scope: &Scope, m: &mut Machine<'a>) {
        for cpu in node.children() {
            let p = Props::read(cpu);
            let is_cpu = p.cpu || cpu.name.split('@').next() == Some("cpu");
            if !is_cpu || p.disabled {
                continue;
            }
            let Some(mpidr) = cells(p.reg, 0, scope.address_cells) else {
                m.problems
                    .push("a CPU node's reg (MPIDR) is missing or malformed; ignored");
                continue;
            };
            if p.enable_method.is_some_and(|e| e != "psci") {
                m.problems
                    .push("a CPU is started by a method other than PSCI; it stays off");
                continue;
            }
            if !m.cpus.push(mpidr) {
                m.problems
                    .push("more CPUs than Keel supports; some stay off");
                break;
            }
        }
    }

    fn psci(&mut self, p: &Props<'a>, standard: bool, m: &mut Machine<'a>) {
        let conduit = match p.method {
            Some("hvc") => Conduit::Hvc,
            Some("smc") => Conduit::Smc,
            _ => {
                m.problems
                    .push("the PSCI node's method is neither hvc nor smc");
                return;
            }
        };
        let cpu_on = match (standard, p.cpu_on) {
            (true, _) => PSCI_CPU_ON_64,
            (false, Some(id)) => id,
            (false, None) => {
                m.problems.push("PSCI 0.1 without a cpu_on function ID");
                return;
            }
        };
        m.psci = Some(Psci {
            conduit,
            cpu_on,
            standard,
        });
    }

    /// The `index`th interrupt of a specifier, if its parent is the GIC.
    #[inline(never)]
    fn resolve(&self, raw: RawIrq<'_>, index: usize) -> Option<Interrupt> {
        if raw.parent.is_none() || raw.parent != self.gic_phandle || self.gic_cells < 3 {
            return None;
        }
        let at = index * self.gic_cells as usize * 4;
        let (kind, number, flags) = (
            be32(raw.spec, at)?,
            be32(raw.spec, at + 4)?,
            be32(raw.spec, at + 8)?,
        );
        let intid = match kind {
            0 => number.checked_add(32)?,
            1 if number < 16 => number + 16,
            _ => return None,
        };
        Some(Interrupt {
            intid,
            edge: flags & 0b11 != 0,
        })
    }

    /// Decode a PCIe host's `interrupt-map` whose entries all lead to the
    /// GIC (an entry for another controller has a length this cannot
    /// know, so decoding stops there).
    fn pci_intx(
        &self,
        host: &mut PciHost,
        map: &[u8],
        mask: &[u8],
        addr_cells: u32,
        irq_cells: u32,
    ) {
        if addr_cells != 3 || irq_cells != 1 || self.gic_cells < 3 {
            return;
        }
        let (Some(mask_hi), Some(mask_pin)) = (be32(mask, 0), be32(mask, 12)) else {
            return;
        };
        host.intx_mask = (mask_hi, mask_pin);
        let entry =
            (addr_cells + irq_cells + 1 + self.gic_address_cells + self.gic_cells) as usize * 4;
        for e in map.chunks_exact(entry) {
            let (Some(hi), Some(pin), Some(parent)) = (be32(e, 0), be32(e, 12), be32(e, 16)) else {
                break;
            };
            if Some(parent) != self.gic_phandle {
                break;
            }
            let spec_at = 20 + self.gic_address_cells as usize * 4;
            let raw = RawIrq {
                parent: Some(parent),
                spec: &e[spec_at..],
            };
            if let Some(interrupt) = self.resolve(raw, 0) {
                host.intx.push(PciIntx {
                    child: hi & mask_hi,
                    pin: pin & mask_pin,
                    interrupt,
                });
            }
        }
    }

    /// Decode interrupts and pick the console, now the tree is read.
    fn finish(&self, m: &mut Machine<'a>) {
        let stdout = self.stdout_path.and_then(|path| {
            if path.starts_with('/') {
                Some(path)
            } else {
                self.aliases
                    .as_slice()
                    .iter()
                    .find(|(alias, _)| *alias == path)
                    .map(|&(_, target)| target)
            }
        });
        let consoles = self.consoles.as_slice();
        let chosen = consoles
            .iter()
            .find(|(_, _, path)| stdout.is_some_and(|s| path.as_str() == s))
            .or(consoles.first());
        m.console = chosen.map(|&(reg, raw, _)| Device {
            reg,
            interrupt: self.resolve(raw, 0),
        });
        m.rtc = self.rtc.map(|(reg, raw)| Device {
            reg,
            interrupt: self.resolve(raw, 0),
        });
        for (slot, &raw) in m
            .virtio_mmio
            .as_mut_slice()
            .iter_mut()
            .zip(self.virtio_irqs.as_slice())
        {
            slot.interrupt = self.resolve(raw, 0);
        }
        if let (Some(host), Some((map, mask, addr_cells, irq_cells))) =
            (m.pcie.as_mut(), self.pci_irq_map)
        {
            self.pci_intx(host, map, mask, addr_cells, irq_cells);
        }
        m.timer = self.timer.map(|(raw, frequency)| Timer {
            virtual_timer: self.resolve(raw, 2),
            frequency,
        });
    }
}
