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
}

/// Most memory regions, reservations and virtio-mmio slots kept.
pub const MAX_REGIONS: usize = 32;
/// Most CPUs kept.
pub const MAX_CPUS: usize = 64;
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

const PL011: &[&str] = &["arm,pl011"];
const PL031: &[&str] = &["arm,pl031"];
const GIC_V3: &[&str] = &["arm,gic-v3"];
const GIC_V2: &[&str] = &[
    "arm,gic-400",
    "arm,cortex-a15-gic",
    "arm,cortex-a9-gic",
    "arm,cortex-a7-gic",
];
const TIMER: &[&str] = &["arm,armv8-timer", "arm,armv7-timer"];
const PSCI_STANDARD: &[&str] = &["arm,psci-0.2", "arm,psci-1.0"];
const PSCI_ANY: &[&str] = &["arm,psci", "arm,psci-0.2", "arm,psci-1.0"];
const VIRTIO_MMIO: &[&str] = &["virtio,mmio"];
const PCI_ECAM: &[&str] = &["pci-host-ecam-generic"];

/// PSCI 0.2 CPU_ON (SMC64 calling convention).
pub const PSCI_CPU_ON_64: u32 = 0xc400_0003;

/// Read the tree in `blob` (which may extend past the tree's end).
pub fn parse(blob: &[u8]) -> Result<Machine<'_>, Error> {
    let header = check::validate(blob)?;
    let blob = &blob[..header.total];
    let fdt = Fdt::new(blob).map_err(|_| Error::BadHeader("refused by the fdt parser"))?;
    let root = fdt.find_node("/").ok_or(Error::BadStructure {
        offset: 0,
        why: "no root node",
    })?;
    let mut m = Machine {
        model: string_property(root, "model").unwrap_or(""),
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
    let stdout = read_chosen(&fdt, &mut m);
    let mut reader = Reader {
        gic_phandle: None,
        gic_cells: 0,
        stdout,
        console_is_stdout: false,
        path: PathBuf::new(),
    };
    // Pass one finds the interrupt controller (devices name it by phandle,
    // and it may come after them); pass two reads everything else.
    reader.walk(root, &Scope::root(), 0, &mut m, Pass::FindGic);
    reader.walk(root, &Scope::root(), 0, &mut m, Pass::Devices);
    if m.gic.is_some() && reader.gic_cells < 3 {
        m.problems
            .push("the GIC node's #interrupt-cells is not 3; device interrupts ignored");
    }
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

/// Bootargs, initrd, and the resolved `stdout-path` (without options).
fn read_chosen<'a>(fdt: &Fdt<'a>, m: &mut Machine<'a>) -> Option<&'a str> {
    let chosen = fdt.find_node("/chosen")?;
    if let Some(p) = chosen.property("bootargs") {
        match core::str::from_utf8(p.value) {
            Ok(s) => m.bootargs = s.trim_end_matches('\0'),
            Err(_) => {
                m.problems.push("/chosen/bootargs is not UTF-8; ignored");
            }
        }
    }
    let start = chosen
        .property("linux,initrd-start")
        .and_then(|p| number(p.value));
    let end = chosen
        .property("linux,initrd-end")
        .and_then(|p| number(p.value));
    if let (Some(start), Some(end)) = (start, end)
        && end > start
    {
        m.initrd = Some(Range {
            base: start,
            size: end - start,
        });
    }
    let stdout = string_property(chosen, "stdout-path")?;
    let stdout = stdout.split(':').next().unwrap_or("");
    if stdout.starts_with('/') {
        return Some(stdout);
    }
    // An alias: /aliases maps the name to a path.
    let aliases = fdt.find_node("/aliases")?;
    string_property(aliases, stdout).filter(|p| p.starts_with('/'))
}

/// A property holding a 32- or 64-bit number.
fn number(value: &[u8]) -> Option<u64> {
    match value.len() {
        4 => be32(value, 0).map(u64::from),
        8 => be64(value, 0),
        _ => None,
    }
}

/// A property holding one string (trailing NULs removed).
fn string_property<'a>(node: FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    let p = node.property(name)?;
    core::str::from_utf8(p.value)
        .ok()
        .map(|s| s.trim_end_matches('\0'))
}

fn u32_property(node: FdtNode<'_, '_>, name: &str) -> Option<u32> {
    node.property(name)
        .and_then(|p| (p.value.len() == 4).then(|| be32(p.value, 0)).flatten())
}

fn is_compatible(node: FdtNode<'_, '_>, with: &[&str]) -> bool {
    node.property("compatible").is_some_and(|p| {
        p.value
            .split(|&b| b == 0)
            .any(|s| core::str::from_utf8(s).is_ok_and(|s| with.contains(&s)))
    })
}

fn is_enabled(node: FdtNode<'_, '_>) -> bool {
    string_property(node, "status").is_none_or(|s| s == "okay" || s == "ok")
}

/// Read `cells` big-endian 32-bit cells at cell index `at` as one number.
fn cells(value: &[u8], at: usize, cells: u32) -> Option<u64> {
    match cells {
        0 => Some(0),
        1 => be32(value, at * 4).map(u64::from),
        2 => be64(value, at * 4),
        _ => None,
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
        // The spec's defaults, overridden by the root's own properties.
        Self {
            address_cells: 2,
            size_cells: 1,
            windows: Windows::Identity,
            interrupt_parent: None,
        }
    }

    /// The scope `node` gives its children (`self` is the node's own scope).
    fn for_children_of(&self, node: FdtNode<'_, '_>, is_root: bool) -> Self {
        let address_cells = u32_property(node, "#address-cells").unwrap_or(2);
        let size_cells = u32_property(node, "#size-cells").unwrap_or(1);
        let windows = if is_root {
            Windows::Identity
        } else {
            match node.property("ranges") {
                None => Windows::Unmapped,
                Some(p) if p.value.is_empty() => self.windows,
                Some(p) => {
                    let mut table = List::new();
                    let entry = (address_cells + self.address_cells + size_cells) as usize;
                    for i in 0..p.value.len() / (entry * 4).max(4) {
                        let at = i * entry;
                        let child = cells(p.value, at, address_cells);
                        let parent =
                            cells(p.value, at + address_cells as usize, self.address_cells);
                        let size = cells(
                            p.value,
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
            }
        };
        Self {
            address_cells,
            size_cells,
            windows,
            interrupt_parent: interrupt_parent(node).or(self.interrupt_parent),
        }
    }

    /// A node's `reg` entries, translated to CPU addresses.
    fn reg<'a>(&self, node: FdtNode<'_, 'a>) -> impl Iterator<Item = Range> + 'a {
        let value = node.property("reg").map_or(&[][..], |p| p.value);
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

fn interrupt_parent(node: FdtNode<'_, '_>) -> Option<u32> {
    u32_property(node, "interrupt-parent")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    FindGic,
    Devices,
}

/// A node's path, built while walking (for matching `stdout-path`).
struct PathBuf {
    bytes: [u8; 256],
    len: usize,
}

impl PathBuf {
    const fn new() -> Self {
        Self {
            bytes: [0; 256],
            len: 0,
        }
    }
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
        }
        before
    }
}

struct Reader<'a> {
    gic_phandle: Option<u32>,
    gic_cells: u32,
    stdout: Option<&'a str>,
    console_is_stdout: bool,
    path: PathBuf,
}

impl<'a> Reader<'a> {
    fn walk(
        &mut self,
        node: FdtNode<'_, 'a>,
        scope: &Scope,
        depth: usize,
        m: &mut Machine<'a>,
        pass: Pass,
    ) {
        if depth > MAX_DEPTH || !is_enabled(node) {
            return;
        }
        let undo = if depth == 0 {
            self.path.len
        } else {
            self.path.push(node.name)
        };
        let children = scope.for_children_of(node, depth == 0);
        let descend = match pass {
            Pass::FindGic => {
                self.find_gic(node, scope, m);
                true
            }
            Pass::Devices => self.device(node, scope, &children, depth, m),
        };
        if descend {
            for child in node.children() {
                self.walk(child, &children, depth + 1, m, pass);
            }
        }
        self.path.len = undo;
    }

    fn find_gic(&mut self, node: FdtNode<'_, 'a>, scope: &Scope, m: &mut Machine<'a>) {
        if m.gic.is_some() || node.property("interrupt-controller").is_none() {
            return;
        }
        let mut reg = scope.reg(node);
        if is_compatible(node, GIC_V3) {
            let Some(distributor) = reg.next() else {
                m.problems.push("the GICv3 node has no registers");
                return;
            };
            let regions = u32_property(node, "#redistributor-regions").unwrap_or(1) as usize;
            let mut redistributors = List::new();
            for r in reg.take(regions) {
                redistributors.push(r);
            }
            if redistributors.is_empty() {
                m.problems
                    .push("the GICv3 node has no redistributor region");
                return;
            }
            let stride = node
                .property("redistributor-stride")
                .and_then(|p| number(p.value))
                .filter(|&s| s != 0);
            m.gic = Some(Gic::V3 {
                distributor,
                redistributors,
                stride,
            });
        } else if is_compatible(node, GIC_V2) {
            let (Some(distributor), Some(cpu_interface)) = (reg.next(), reg.next()) else {
                m.problems
                    .push("the GICv2 node lacks distributor or CPU interface registers");
                return;
            };
            m.gic = Some(Gic::V2 {
                distributor,
                cpu_interface,
            });
        } else {
            return;
        }
        self.gic_phandle = u32_property(node, "phandle").or(u32_property(node, "linux,phandle"));
        self.gic_cells = u32_property(node, "#interrupt-cells").unwrap_or(0);
    }

    /// The `index`th GIC interrupt of `node`, if its interrupt parent is the GIC.
    fn interrupt(&self, node: FdtNode<'_, 'a>, scope: &Scope, index: usize) -> Option<Interrupt> {
        let parent = interrupt_parent(node).or(scope.interrupt_parent);
        if parent.is_none() || parent != self.gic_phandle || self.gic_cells < 3 {
            return None;
        }
        let value = node.property("interrupts")?.value;
        let at = index * self.gic_cells as usize * 4;
        let (kind, number, flags) = (be32(value, at)?, be32(value, at + 4)?, be32(value, at + 8)?);
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

    fn simple_device(&self, node: FdtNode<'_, 'a>, scope: &Scope) -> Option<Device> {
        Some(Device {
            reg: scope.reg(node).next()?,
            interrupt: self.interrupt(node, scope, 0),
        })
    }

    /// Record what `node` is; returns whether to look at its children.
    fn device(
        &mut self,
        node: FdtNode<'_, 'a>,
        scope: &Scope,
        children: &Scope,
        depth: usize,
        m: &mut Machine<'a>,
    ) -> bool {
        if depth == 1 {
            match node.name {
                "cpus" => {
                    self.cpus(node, children, m);
                    return false;
                }
                "reserved-memory" => {
                    for r in node.children().filter(|c| is_enabled(*c)) {
                        for range in children.reg(r) {
                            if !m.reserved.push(range) {
                                m.problems.push("too many reserved-memory regions");
                            }
                        }
                    }
                    return false;
                }
                "chosen" | "aliases" => return false,
                _ => {}
            }
        }
        if string_property(node, "device_type") == Some("memory") {
            for range in scope.reg(node) {
                if !m.memory.push(range) {
                    m.problems
                        .push("too many memory regions; some RAM is unused");
                }
            }
        } else if is_compatible(node, PL011) {
            let is_stdout = self.stdout.is_some_and(|p| self.path.as_str() == p);
            if !self.console_is_stdout
                && (is_stdout || m.console.is_none())
                && let Some(d) = self.simple_device(node, scope)
            {
                m.console = Some(d);
                self.console_is_stdout = is_stdout;
            }
        } else if is_compatible(node, PL031) {
            if m.rtc.is_none() {
                m.rtc = self.simple_device(node, scope);
            }
        } else if is_compatible(node, VIRTIO_MMIO) {
            if let Some(d) = self.simple_device(node, scope)
                && !m.virtio_mmio.push(d)
            {
                m.problems
                    .push("too many virtio-mmio slots; some were ignored");
            }
        } else if is_compatible(node, TIMER) {
            m.timer = Some(Timer {
                virtual_timer: self.interrupt(node, scope, 2),
                frequency: u32_property(node, "clock-frequency"),
            });
        } else if is_compatible(node, PSCI_ANY) {
            self.psci(node, m);
        } else if is_compatible(node, PCI_ECAM) {
            if let Some(ecam) = scope.reg(node).next() {
                let bus = node.property("bus-range").map(|p| p.value);
                let (bus_start, bus_end) = match bus.and_then(|b| Some((be32(b, 0)?, be32(b, 4)?)))
                {
                    Some((s, e)) if s <= e && e <= 255 => (s as u8, e as u8),
                    _ => (0, 255),
                };
                m.pcie = Some(PciHost {
                    ecam,
                    bus_start,
                    bus_end,
                });
            }
            return false; // children use PCI addresses
        }
        true
    }

    fn cpus(&mut self, node: FdtNode<'_, 'a>, scope: &Scope, m: &mut Machine<'a>) {
        for cpu in node.children() {
            let is_cpu = string_property(cpu, "device_type") == Some("cpu")
                || cpu.name.split('@').next() == Some("cpu");
            if !is_cpu || !is_enabled(cpu) {
                continue;
            }
            let Some(value) = cpu.property("reg").map(|p| p.value) else {
                m.problems.push("a CPU node has no reg (MPIDR); ignored");
                continue;
            };
            let Some(mpidr) = cells(value, 0, scope.address_cells) else {
                m.problems.push("a CPU node's reg is malformed; ignored");
                continue;
            };
            if string_property(cpu, "enable-method").is_some_and(|e| e != "psci") {
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

    fn psci(&mut self, node: FdtNode<'_, 'a>, m: &mut Machine<'a>) {
        let conduit = match string_property(node, "method") {
            Some("hvc") => Conduit::Hvc,
            Some("smc") => Conduit::Smc,
            _ => {
                m.problems
                    .push("the PSCI node's method is neither hvc nor smc");
                return;
            }
        };
        let standard = is_compatible(node, PSCI_STANDARD);
        let cpu_on = if standard {
            PSCI_CPU_ON_64
        } else {
            match u32_property(node, "cpu_on") {
                Some(id) => id,
                None => {
                    m.problems.push("PSCI 0.1 without a cpu_on function ID");
                    return;
                }
            }
        };
        m.psci = Some(Psci {
            conduit,
            cpu_on,
            standard,
        });
    }
}
