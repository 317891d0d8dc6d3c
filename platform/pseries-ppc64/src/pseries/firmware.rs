//! What Open Firmware knows, read once in real mode before Keel takes the
//! machine over: negotiate the architecture (radix MMU, XICS), then walk
//! the device tree through the client interface — memory, CPUs and the
//! timebase rate, the console, RTAS tokens, the interrupt controller,
//! PCI host bridges, the command line and initrd — into [`Facts`], plain
//! data in a static that outlives the firmware.
//!
//! Nothing here allocates: the heap does not exist yet. Fixed capacities
//! are generous; what does not fit is reported, not fatal.

use core::ffi::CStr;

use keel_driver_papr::dt;
use keel_driver_papr::rtas::{self, Service};
use keel_hal::boot::MAX_CPUS;

use crate::pseries::of::{Of, Phandle};

/// Memory ranges kept.
pub const MAX_MEMORY: usize = 32;
/// PCI host bridges kept.
pub const MAX_PHBS: usize = 8;
/// Longest command line kept.
pub const CMDLINE_MAX: usize = 4096;
/// QEMU's usual vty unit address, used for errors before the tree says.
pub const DEFAULT_VTY: u32 = 0x7100_0000;

/// The interrupt controller the platform presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptController {
    /// Not found.
    Missing,
    /// XICS (`ibm,ppc-xicp`): what Keel drives.
    Xics,
    /// XIVE exploitation mode (`ibm,power-ivpe`): not driven by Keel.
    Xive,
}

/// A PCI host bridge (pseries: reached through RTAS by its BUID).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostBridge {
    /// Bus unit id (the first cell pair of `reg`).
    pub buid: u64,
}

/// Everything Keel keeps from the device tree.
pub struct Facts {
    /// RAM ranges `(start, size)`.
    pub memory: [(u64, u64); MAX_MEMORY],
    /// Valid entries of `memory`.
    pub memory_len: usize,
    /// XICS server numbers of every hardware thread.
    pub cpus: [u32; MAX_CPUS],
    /// Valid entries of `cpus`.
    pub cpu_count: usize,
    /// The boot CPU's server number.
    pub boot_server: u32,
    /// Timebase (and decrementer) rate.
    pub timebase_hz: u64,
    /// The console's vty unit address.
    pub vty: u32,
    /// The console's interrupt source, if the tree names one.
    pub vty_irq: Option<u32>,
    /// The command line.
    pub cmdline: [u8; CMDLINE_MAX],
    /// Its length.
    pub cmdline_len: usize,
    /// Initial ramdisk `(start, size)`.
    pub initrd: Option<(u64, u64)>,
    /// The interrupt controller.
    pub intc: InterruptController,
    /// PCI host bridges.
    pub phbs: [HostBridge; MAX_PHBS],
    /// Valid entries of `phbs`.
    pub phb_count: usize,
    /// Whether the firmware is SLOF (else QEMU's VOF).
    pub slof: bool,
    /// Things worth telling once the console works (non-fatal).
    pub warnings: [&'static str; 8],
    /// Valid entries of `warnings`.
    pub warning_count: usize,
}

impl Facts {
    const fn new() -> Self {
        Self {
            memory: [(0, 0); MAX_MEMORY],
            memory_len: 0,
            cpus: [0; MAX_CPUS],
            cpu_count: 0,
            boot_server: 0,
            timebase_hz: 0,
            vty: DEFAULT_VTY,
            vty_irq: None,
            cmdline: [0; CMDLINE_MAX],
            cmdline_len: 0,
            initrd: None,
            intc: InterruptController::Missing,
            phbs: [HostBridge { buid: 0 }; MAX_PHBS],
            phb_count: 0,
            slof: false,
            warnings: [""; 8],
            warning_count: 0,
        }
    }

    fn warn(&mut self, what: &'static str) {
        if self.warning_count < self.warnings.len() {
            self.warnings[self.warning_count] = what;
            self.warning_count += 1;
        }
    }

    /// The highest RAM address + 1.
    pub fn ram_end(&self) -> u64 {
        self.memory[..self.memory_len]
            .iter()
            .map(|&(s, n)| s + n)
            .max()
            .unwrap_or(0)
    }
}

static mut FACTS: Facts = Facts::new();

/// The facts, once [`gather`] has run (read-only from then on).
pub fn facts() -> &'static Facts {
    let f = &raw const FACTS;
    // SAFETY: written only by `gather`, in real mode on the boot CPU
    // before any other code reads it.
    unsafe { &*f }
}

/// What this OS supports, for `ibm,client-architecture-support`: the
/// processors it runs on, then option vectors 1 to 5. Vector 1 names the
/// ISA levels (3.0 and 3.1); vector 5 asks for the radix MMU (byte 24,
/// 0x40) and leaves byte 23 at 0 for XICS.
#[repr(C, align(8))]
struct CasVector([u8; 78]);

static CAS_VECTOR: CasVector = CasVector([
    0xff, 0xff, 0x00, 0x00, 0x00, 0x4e, 0x00, 0x00, // POWER9 (raw)
    0xff, 0xff, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, // POWER10 (raw)
    0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00, 0x06, // ISA 3.1 compatible
    0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00, 0x05, // ISA 3.0 compatible
    0xff, 0xff, 0xff, 0xfe, 0x0f, 0x00, 0x00, 0x01, // end of list
    4,    // five option vectors
    2, 0x00, 0xff, 0xc0, // 1: ISA 2.00–2.07, 3.0, 3.1
    0, 0x00, // 2
    0, 0x00, // 3
    0, 0x00, // 4
    25,   // 5: 26 bytes
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    //
    0x00, // byte 23: XICS
    0x40, // byte 24: radix MMU
    0, 0, //
]);

fn prop<'b>(of: &Of, node: Phandle, name: &CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    of.prop(node, name, buf)
}

fn is(of: &Of, node: Phandle, name: &CStr, value: &str) -> bool {
    let mut buf = [0u8; 64];
    prop(of, node, name, &mut buf).and_then(dt::string) == Some(value)
}

fn children(of: &Of, parent: Phandle) -> impl Iterator<Item = Phandle> + '_ {
    let mut next = of.child(parent);
    core::iter::from_fn(move || {
        let n = next?;
        next = of.peer(n);
        Some(n)
    })
}

/// Negotiate with the platform and read the tree (real mode, firmware
/// alive). Fatal problems come back as a sentence for the console.
pub fn gather(of: &Of, initrd: (u64, u64)) -> Result<(), &'static str> {
    let f = &raw mut FACTS;
    // SAFETY: real mode, boot CPU, nothing else reads FACTS yet.
    let f = unsafe { &mut *f };
    let root_instance = of
        .open(c"/")
        .ok_or("firmware: cannot open the device-tree root for architecture negotiation")?;
    match of.client_architecture_support(root_instance, &CAS_VECTOR.0) {
        Some(0) => {}
        _ => {
            return Err(
                "firmware refused ibm,client-architecture-support (Keel needs radix and XICS on a POWER9 or later)",
            );
        }
    }
    let root = of.finddevice(c"/").ok_or("firmware: no device-tree root")?;
    let mut buf = [0u8; 256];
    let address_cells = prop(of, root, c"#address-cells", &mut buf)
        .and_then(dt::single_number)
        .unwrap_or(2) as usize;
    let size_cells = prop(of, root, c"#size-cells", &mut buf)
        .and_then(dt::single_number)
        .unwrap_or(1) as usize;
    f.slof = of.finddevice(c"/openprom").is_some();

    for node in children(of, root) {
        let mut kind = [0u8; 32];
        let kind = prop(of, node, c"device_type", &mut kind).and_then(dt::string);
        if kind == Some("memory") {
            let mut reg = [0u8; 512];
            let Some(bytes) = prop(of, node, c"reg", &mut reg) else {
                f.warn("a memory node has no reg property; ignored");
                continue;
            };
            match dt::reg_pairs(bytes, address_cells, size_cells) {
                Ok(pairs) => {
                    for (start, size) in pairs.filter(|&(_, n)| n > 0) {
                        if f.memory_len == MAX_MEMORY {
                            f.warn("more memory ranges than Keel keeps; some RAM is unused");
                            break;
                        }
                        f.memory[f.memory_len] = (start, size);
                        f.memory_len += 1;
                    }
                }
                Err(_) => f.warn("a memory node's reg property is malformed; ignored"),
            }
        } else if kind == Some("pci") {
            let mut reg = [0u8; 64];
            match prop(of, node, c"reg", &mut reg).and_then(|r| dt::number(r, 0, 2)) {
                Some(buid) if f.phb_count < MAX_PHBS => {
                    f.phbs[f.phb_count] = HostBridge { buid };
                    f.phb_count += 1;
                }
                Some(_) => f.warn("more PCI host bridges than Keel keeps"),
                None => f.warn("a PCI host bridge has no usable reg (BUID); ignored"),
            }
        }
        let mut ic = [0u8; 8];
        if of.getprop(node, c"interrupt-controller", &mut ic).is_some() {
            let mut compat = [0u8; 128];
            if let Some(c) = prop(of, node, c"compatible", &mut compat) {
                if dt::list_contains_ignore_case(c, "ibm,ppc-xicp") {
                    f.intc = InterruptController::Xics;
                } else if dt::list_contains_ignore_case(c, "ibm,power-ivpe")
                    && f.intc == InterruptController::Missing
                {
                    f.intc = InterruptController::Xive;
                }
            }
        }
    }
    if f.memory_len == 0 {
        return Err(
            "the device tree lists no memory (no node with device_type \"memory\" and a reg)",
        );
    }

    read_cpus(of, f)?;
    read_rtas(of, f)?;
    read_console_and_chosen(of, f, initrd);
    match f.intc {
        InterruptController::Xics => {}
        InterruptController::Xive => {
            return Err(
                "the platform offers only XIVE; Keel drives XICS (use -M pseries,ic-mode=dual or ic-mode=xics)",
            );
        }
        InterruptController::Missing => {
            return Err("the device tree has no interrupt controller (no ibm,ppc-xicp node)");
        }
    }
    of.quiesce();
    Ok(())
}

fn read_cpus(of: &Of, f: &mut Facts) -> Result<(), &'static str> {
    let cpus = of
        .finddevice(c"/cpus")
        .ok_or("the device tree has no /cpus node")?;
    for node in children(of, cpus) {
        if !is(of, node, c"device_type", "cpu") {
            continue;
        }
        let mut buf = [0u8; 256];
        if f.timebase_hz == 0 {
            f.timebase_hz = prop(of, node, c"timebase-frequency", &mut buf)
                .and_then(dt::single_number)
                .unwrap_or(0);
        }
        let mut servers = [0u8; 256];
        let list = match prop(of, node, c"ibm,ppc-interrupt-server#s", &mut servers) {
            Some(l) if !l.is_empty() => l,
            _ => match prop(of, node, c"reg", &mut servers) {
                Some(l) if l.len() >= 4 => &l[..4],
                _ => {
                    f.warn("a CPU node has neither ibm,ppc-interrupt-server#s nor reg; skipped");
                    continue;
                }
            },
        };
        for server in dt::cells(list) {
            if f.cpu_count == MAX_CPUS {
                f.warn("more CPUs than Keel supports; the rest stay stopped");
                break;
            }
            f.cpus[f.cpu_count] = server;
            f.cpu_count += 1;
        }
    }
    if f.cpu_count == 0 {
        return Err("the device tree lists no CPU under /cpus");
    }
    if f.timebase_hz == 0 {
        return Err("no CPU node has a timebase-frequency: Keel cannot keep time");
    }
    // The boot CPU: /chosen's "cpu" instance if firmware gives one, else
    // the lowest server number (QEMU boots on vCPU 0).
    f.boot_server = f.cpus[..f.cpu_count].iter().copied().min().unwrap_or(0);
    if let Some(chosen) = of.finddevice(c"/chosen") {
        let mut buf = [0u8; 8];
        if let Some(node) = prop(of, chosen, c"cpu", &mut buf)
            .and_then(|b| dt::cell(b, 0))
            .and_then(|ih| of.instance_to_package(ih))
        {
            let mut s = [0u8; 64];
            if let Some(server) =
                prop(of, node, c"ibm,ppc-interrupt-server#s", &mut s).and_then(|b| dt::cell(b, 0))
            {
                f.boot_server = server;
            }
        }
    }
    Ok(())
}

fn read_rtas(of: &Of, f: &mut Facts) -> Result<(), &'static str> {
    let node = of
        .finddevice(c"/rtas")
        .ok_or("the device tree has no /rtas node: no power-off, clock or CPU start")?;
    let mut buf = [0u8; 8];
    for service in Service::ALL {
        let mut name = [0u8; 32];
        let p = service.property().as_bytes();
        name[..p.len()].copy_from_slice(p);
        let Ok(cname) = CStr::from_bytes_until_nul(&name) else {
            continue;
        };
        if let Some(token) = prop(of, node, cname, &mut buf).and_then(|b| dt::cell(b, 0)) {
            rtas::set_token(service, token);
        }
    }
    if rtas::token(Service::PowerOff).is_none() {
        f.warn("RTAS has no power-off token: the machine will halt instead");
    }
    if rtas::token(Service::StartCpu).is_none() && f.cpu_count > 1 {
        f.warn("RTAS has no start-cpu token: running on the boot CPU only");
    }
    Ok(())
}

fn read_console_and_chosen(of: &Of, f: &mut Facts, initrd: (u64, u64)) {
    let mut stdout_node = None;
    if let Some(chosen) = of.finddevice(c"/chosen") {
        let mut buf = [0u8; 16];
        stdout_node = prop(of, chosen, c"stdout", &mut buf)
            .and_then(|b| dt::cell(b, 0))
            .and_then(|ih| of.instance_to_package(ih));
        let len = of.getprop(chosen, c"bootargs", &mut f.cmdline).unwrap_or(0);
        let len = len.min(CMDLINE_MAX - 1);
        f.cmdline_len = f.cmdline[..len].iter().position(|&b| b == 0).unwrap_or(len);
        let start = prop(of, chosen, c"linux,initrd-start", &mut buf).and_then(dt::single_number);
        let mut buf2 = [0u8; 16];
        let end = prop(of, chosen, c"linux,initrd-end", &mut buf2).and_then(dt::single_number);
        if let (Some(s), Some(e)) = (start, end)
            && e > s
        {
            f.initrd = Some((s, e - s));
        }
    }
    if f.initrd.is_none() && initrd.1 > 0 {
        f.initrd = Some(initrd);
    }
    let mut found = None;
    if let Some(vdevice) = of.finddevice(c"/vdevice") {
        for node in children(of, vdevice) {
            let mut compat = [0u8; 64];
            let is_vty = prop(of, node, c"compatible", &mut compat)
                .is_some_and(|c| dt::list_contains(c, "hvterm1"));
            if !is_vty {
                continue;
            }
            let mut reg = [0u8; 16];
            if let Some(unit) = prop(of, node, c"reg", &mut reg).and_then(|r| dt::cell(r, 0))
                && (found.is_none() || stdout_node == Some(node))
            {
                found = Some(unit);
                let mut irq = [0u8; 16];
                f.vty_irq = prop(of, node, c"interrupts", &mut irq).and_then(|i| dt::cell(i, 0));
            }
        }
    }
    match found {
        Some(unit) => f.vty = unit,
        None => f.warn("no hvterm1 vty in /vdevice; using the usual unit 0x71000000"),
    }
}
