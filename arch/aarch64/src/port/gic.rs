//! The Generic Interrupt Controller, version 2 or 3 (the platform says
//! which, from the DTB; clouds use both).
//!
//! One interrupt group is used: group 1 on GICv3 (signalled as IRQ at
//! EL1), group 0 on GICv2 without security extensions (signalled as IRQ
//! while FIQs stay disabled in the CPU interface). Every interrupt has the
//! same priority; SGI 0 and 1 are the two IPIs; the generic timer's PPI is
//! enabled on each CPU; SPIs are routed to one CPU each when a driver asks.

use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use keel_hal::CpuIndex;
use keel_hal::boot::MAX_CPUS;
use keel_hal::interrupt::IrqError;

use super::{cpu, percpu, timer};

/// SGI used for `Ipi::Reschedule`.
pub const SGI_RESCHEDULE: u32 = 0;
/// SGI used for `Ipi::Call`.
pub const SGI_CALL: u32 = 1;
const PRIORITY_WORD: u32 = 0xa0a0_a0a0;
const PRIORITY: u8 = 0xa0;

/// Most GICv3 redistributor regions supported.
pub const MAX_REDISTRIBUTOR_REGIONS: usize = 8;

/// Where the platform mapped the GIC's registers (virtual addresses).
#[derive(Clone, Copy, Debug)]
pub enum GicConfig<'a> {
    /// GICv2: distributor and CPU interface.
    V2 {
        /// Distributor registers.
        distributor: usize,
        /// CPU interface registers.
        cpu_interface: usize,
    },
    /// GICv3: distributor and redistributor regions.
    V3 {
        /// Distributor registers.
        distributor: usize,
        /// Redistributor regions, `(virtual base, size)`.
        redistributors: &'a [(usize, usize)],
        /// Redistributor stride if the firmware overrides it.
        stride: Option<usize>,
    },
}

// Distributor registers.
const GICD_CTLR: usize = 0x000;
const GICD_TYPER: usize = 0x004;
const GICD_IGROUPR: usize = 0x080;
const GICD_ISENABLER: usize = 0x100;
const GICD_ICENABLER: usize = 0x180;
const GICD_ICPENDR: usize = 0x280;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ITARGETSR: usize = 0x800;
const GICD_ICFGR: usize = 0xc00;
const GICD_SGIR: usize = 0xf00;
const GICD_IROUTER: usize = 0x6000;
const GICD_CTLR_RWP: u32 = 1 << 31;
// Redistributor registers (RD_base, then the SGI_base frame).
const GICR_CTLR: usize = 0x0000;
const GICR_TYPER: usize = 0x0008;
const GICR_WAKER: usize = 0x0014;
const GICR_SGI_BASE: usize = 0x1_0000;
const GICR_CTLR_RWP: u32 = 1 << 3;
const GICR_TYPER_VLPIS: u64 = 1 << 1;
const GICR_TYPER_LAST: u64 = 1 << 4;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
// GICv2 CPU interface registers.
const GICC_CTLR: usize = 0x00;
const GICC_PMR: usize = 0x04;
const GICC_BPR: usize = 0x08;
const GICC_IAR: usize = 0x0c;
const GICC_EOIR: usize = 0x10;

static VERSION: AtomicU8 = AtomicU8::new(0);
static DISTRIBUTOR: AtomicUsize = AtomicUsize::new(0);
static CPU_INTERFACE: AtomicUsize = AtomicUsize::new(0);
static REDISTRIBUTORS: [(AtomicUsize, AtomicUsize); MAX_REDISTRIBUTOR_REGIONS] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_REDISTRIBUTOR_REGIONS];
static STRIDE: AtomicUsize = AtomicUsize::new(0);
/// INTIDs the distributor implements (SGIs, PPIs and SPIs).
static LINES: AtomicU32 = AtomicU32::new(0);
/// MPIDR of each started CPU, by index (SGI and SPI targets on GICv3).
static MPIDRS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// GICv2 CPU-interface bit of each started CPU, by index.
static V2_MASKS: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];

fn read32(addr: usize) -> u32 {
    // SAFETY: every caller passes a register address inside a GIC window
    // the platform mapped as device memory (`init`); offsets are the
    // architected ones, and INTID-indexed ones are bounded by `LINES`.
    unsafe { (addr as *const u32).read_volatile() }
}

fn write32(addr: usize, value: u32) {
    // SAFETY: as in `read32`.
    unsafe { (addr as *mut u32).write_volatile(value) }
}

fn write8(addr: usize, value: u8) {
    // SAFETY: as in `read32`; these registers are byte-accessible.
    unsafe { (addr as *mut u8).write_volatile(value) }
}

fn read8(addr: usize) -> u8 {
    // SAFETY: as in `write8`.
    unsafe { (addr as *const u8).read_volatile() }
}

fn read64(addr: usize) -> u64 {
    // SAFETY: as in `read32`; GICR_TYPER and GICD_IROUTER take 64-bit access.
    unsafe { (addr as *const u64).read_volatile() }
}

fn write64(addr: usize, value: u64) {
    // SAFETY: as in `read64`.
    unsafe { (addr as *mut u64).write_volatile(value) }
}

fn version() -> u8 {
    VERSION.load(Ordering::Relaxed)
}

fn dist() -> usize {
    DISTRIBUTOR.load(Ordering::Relaxed)
}

/// Wait (bounded) while a register's "write pending" bit is set.
fn wait_clear(addr: usize, bit: u32) {
    for _ in 0..1_000_000 {
        if read32(addr) & bit == 0 {
            return;
        }
        core::hint::spin_loop();
    }
}

// The GICv3 CPU-interface registers are named by their encodings below
// (no assembler feature needed).
macro_rules! sysreg_write {
    ($reg:literal, $value:expr) => {
        // SAFETY: a GICv3 CPU-interface system register, enabled by
        // ICC_SRE_EL1.SRE (and ICC_SRE_EL2 at boot when there is an EL2).
        unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) $value as u64, options(nostack, preserves_flags)) }
    };
}

macro_rules! sysreg_read {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: as in `sysreg_write`.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nostack, preserves_flags)) };
        v
    }};
}

/// Take over the GIC: the distributor, then the boot CPU's interface.
pub fn init(config: &GicConfig<'_>) -> Result<(), &'static str> {
    match *config {
        GicConfig::V2 {
            distributor,
            cpu_interface,
        } => {
            DISTRIBUTOR.store(distributor, Ordering::Relaxed);
            CPU_INTERFACE.store(cpu_interface, Ordering::Relaxed);
            VERSION.store(2, Ordering::Release);
        }
        GicConfig::V3 {
            distributor,
            redistributors,
            stride,
        } => {
            if redistributors.is_empty() {
                return Err("GICv3 without redistributors");
            }
            DISTRIBUTOR.store(distributor, Ordering::Relaxed);
            for (slot, &(base, size)) in REDISTRIBUTORS.iter().zip(redistributors) {
                slot.0.store(base, Ordering::Relaxed);
                slot.1.store(size, Ordering::Relaxed);
            }
            STRIDE.store(stride.unwrap_or(0), Ordering::Relaxed);
            VERSION.store(3, Ordering::Release);
        }
    }
    init_distributor();
    init_this_cpu(0)
}

fn init_distributor() {
    let d = dist();
    let v3 = version() == 3;
    write32(d + GICD_CTLR, 0);
    if v3 {
        wait_clear(d + GICD_CTLR, GICD_CTLR_RWP);
    }
    let lines = (32 * ((read32(d + GICD_TYPER) & 0x1f) + 1)).min(1020);
    LINES.store(lines, Ordering::Relaxed);
    for word in 1..(lines as usize).div_ceil(32) {
        write32(d + GICD_ICENABLER + 4 * word, u32::MAX);
        write32(d + GICD_ICPENDR + 4 * word, u32::MAX);
        // GICv3: group 1 (IRQ at EL1). GICv2: group 0, which the CPU
        // interface signals as IRQ while FIQEn is clear.
        write32(d + GICD_IGROUPR + 4 * word, if v3 { u32::MAX } else { 0 });
    }
    for word in 8..(lines as usize) / 4 {
        write32(d + GICD_IPRIORITYR + 4 * word, PRIORITY_WORD);
    }
    if v3 {
        wait_clear(d + GICD_CTLR, GICD_CTLR_RWP);
        // Affinity routing first, then the groups (ARE must not change
        // while a group is enabled).
        write32(d + GICD_CTLR, 1 << 4);
        wait_clear(d + GICD_CTLR, GICD_CTLR_RWP);
        write32(d + GICD_CTLR, (1 << 4) | 0b11);
        wait_clear(d + GICD_CTLR, GICD_CTLR_RWP);
    } else {
        for n in 32..lines as usize {
            write8(d + GICD_ITARGETSR + n, 0);
        }
        write32(d + GICD_CTLR, 1);
    }
}

/// The enable bits for this CPU's private interrupts: both IPIs and the timer.
fn private_enables() -> u32 {
    (1 << SGI_RESCHEDULE) | (1 << SGI_CALL) | (1 << timer::intid())
}

/// Set up the calling CPU's side of the GIC (redistributor or banked
/// distributor registers, and the CPU interface).
pub fn init_this_cpu(index: CpuIndex) -> Result<(), &'static str> {
    let mpidr = cpu::mpidr();
    MPIDRS[index].store(mpidr, Ordering::Release);
    percpu::this().mpidr = mpidr;
    match version() {
        3 => init_cpu_v3(mpidr),
        2 => {
            init_cpu_v2(index);
            Ok(())
        }
        _ => Err("GIC not initialised"),
    }
}

/// Affinity in GICR_TYPER's layout: Aff3.Aff2.Aff1.Aff0.
fn affinity32(mpidr: u64) -> u32 {
    (((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xff_ffff)) as u32
}

fn find_redistributor(mpidr: u64) -> Option<usize> {
    let want = affinity32(mpidr);
    let stride = STRIDE.load(Ordering::Relaxed);
    for (base, size) in REDISTRIBUTORS.iter() {
        let (base, size) = (base.load(Ordering::Relaxed), size.load(Ordering::Relaxed));
        let mut rd = base;
        while size != 0 && rd + 0x2_0000 <= base + size {
            let typer = read64(rd + GICR_TYPER);
            if (typer >> 32) as u32 == want {
                return Some(rd);
            }
            if typer & GICR_TYPER_LAST != 0 {
                break;
            }
            rd += match stride {
                0 if typer & GICR_TYPER_VLPIS != 0 => 0x4_0000,
                0 => 0x2_0000,
                s => s,
            };
        }
    }
    None
}

fn init_cpu_v3(mpidr: u64) -> Result<(), &'static str> {
    let rd = find_redistributor(mpidr).ok_or("no GICv3 redistributor matches this CPU's MPIDR")?;
    percpu::this().redistributor = rd;
    let waker = read32(rd + GICR_WAKER);
    write32(rd + GICR_WAKER, waker & !GICR_WAKER_PROCESSOR_SLEEP);
    wait_clear(rd + GICR_WAKER, GICR_WAKER_CHILDREN_ASLEEP);
    let sgi = rd + GICR_SGI_BASE;
    write32(sgi + GICD_ICENABLER, u32::MAX);
    wait_clear(rd + GICR_CTLR, GICR_CTLR_RWP);
    write32(sgi + GICD_IGROUPR, u32::MAX);
    for word in 0..8 {
        write32(sgi + GICD_IPRIORITYR + 4 * word, PRIORITY_WORD);
    }
    write32(sgi + GICD_ISENABLER, private_enables());
    // The system-register CPU interface.
    let sre = sysreg_read!("s3_0_c12_c12_5");
    sysreg_write!("s3_0_c12_c12_5", sre | 1);
    // SAFETY: a context synchronisation barrier only.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
    sysreg_write!("s3_0_c4_c6_0", 0xffu64); // ICC_PMR_EL1: every priority
    sysreg_write!("s3_0_c12_c12_3", 0u64); // ICC_BPR1_EL1
    sysreg_write!("s3_0_c12_c12_4", 0u64); // ICC_CTLR_EL1: EOI drops and deactivates
    sysreg_write!("s3_0_c12_c12_7", 1u64); // ICC_IGRPEN1_EL1
    // SAFETY: as above.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
    Ok(())
}

fn init_cpu_v2(index: CpuIndex) {
    let d = dist();
    // ITARGETSR0..7 are banked and read-only: they name this CPU's interface.
    let mask = match read8(d + GICD_ITARGETSR) {
        0 => 1, // a uniprocessor GIC reads as zero
        m => m,
    };
    V2_MASKS[index].store(mask, Ordering::Release);
    write32(d + GICD_ICENABLER, u32::MAX);
    for word in 0..8 {
        write32(d + GICD_IPRIORITYR + 4 * word, PRIORITY_WORD);
    }
    write32(d + GICD_ISENABLER, private_enables());
    let c = CPU_INTERFACE.load(Ordering::Relaxed);
    write32(c + GICC_PMR, 0xff);
    write32(c + GICC_BPR, 0);
    write32(c + GICC_CTLR, 1);
}

/// Acknowledge the highest-priority pending interrupt; `None` if spurious.
/// Pass the value to [`intid`] and [`end_of_interrupt`].
pub fn acknowledge() -> Option<u32> {
    let raw = match version() {
        3 => sysreg_read!("s3_0_c12_c12_0") as u32, // ICC_IAR1_EL1
        2 => read32(CPU_INTERFACE.load(Ordering::Relaxed) + GICC_IAR),
        _ => return None,
    };
    (!(1020..=1023).contains(&intid(raw))).then_some(raw)
}

/// The interrupt ID in an acknowledge value.
pub fn intid(raw: u32) -> u32 {
    if version() == 2 {
        raw & 0x3ff
    } else {
        raw & 0xff_ffff
    }
}

/// Signal the end of an acknowledged interrupt (priority drop and
/// deactivation).
pub fn end_of_interrupt(raw: u32) {
    match version() {
        3 => sysreg_write!("s3_0_c12_c12_1", raw), // ICC_EOIR1_EL1
        2 => write32(CPU_INTERFACE.load(Ordering::Relaxed) + GICC_EOIR, raw),
        _ => {}
    }
}

/// Send SGI `sgi` to CPU `target`.
pub fn send_sgi(target: CpuIndex, sgi: u32) {
    // The target must see our memory writes (queued threads, call
    // requests) before it sees the interrupt.
    // SAFETY: a barrier only.
    unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };
    match version() {
        3 => {
            let mpidr = MPIDRS[target].load(Ordering::Acquire);
            let aff0 = mpidr & 0xff;
            let value = ((mpidr >> 32) & 0xff) << 48
                | (aff0 >> 4) << 44
                | ((mpidr >> 16) & 0xff) << 32
                | u64::from(sgi & 0xf) << 24
                | ((mpidr >> 8) & 0xff) << 16
                | 1 << (aff0 & 0xf);
            sysreg_write!("s3_0_c12_c11_5", value); // ICC_SGI1R_EL1
            // SAFETY: a context synchronisation barrier only.
            unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
        }
        2 => {
            let mask = u32::from(V2_MASKS[target].load(Ordering::Acquire));
            write32(dist() + GICD_SGIR, (mask << 16) | (sgi & 0xf));
        }
        _ => {}
    }
}

fn check_spi(intid: u32) -> Result<(), IrqError> {
    if version() == 0 || intid < 32 || intid >= LINES.load(Ordering::Relaxed) {
        return Err(IrqError::NoSuchLine);
    }
    Ok(())
}

/// Configure SPI `intid` as edge-triggered or level-sensitive (it is
/// disabled first: the trigger may not change while enabled).
pub fn set_trigger(intid: u32, edge: bool) -> Result<(), IrqError> {
    check_spi(intid)?;
    mask(intid);
    let d = dist();
    let reg = d + GICD_ICFGR + 4 * (intid as usize / 16);
    let bit = 1 << (2 * (intid % 16) + 1);
    let value = read32(reg);
    write32(reg, if edge { value | bit } else { value & !bit });
    Ok(())
}

/// Route SPI `intid` to CPU `target` and enable it.
pub fn route(intid: u32, target: CpuIndex) -> Result<(), IrqError> {
    check_spi(intid)?;
    let d = dist();
    match version() {
        3 => {
            let mpidr = MPIDRS[target].load(Ordering::Acquire);
            let affinity = (mpidr & 0xff_ffff) | ((mpidr >> 32) & 0xff) << 32;
            write64(d + GICD_IROUTER + 8 * intid as usize, affinity);
        }
        _ => write8(
            d + GICD_ITARGETSR + intid as usize,
            V2_MASKS[target].load(Ordering::Acquire),
        ),
    }
    write8(d + GICD_IPRIORITYR + intid as usize, PRIORITY);
    write32(
        d + GICD_ISENABLER + 4 * (intid as usize / 32),
        1 << (intid % 32),
    );
    Ok(())
}

/// Disable SPI `intid`.
pub fn mask(intid: u32) {
    if check_spi(intid).is_err() {
        return;
    }
    let d = dist();
    write32(
        d + GICD_ICENABLER + 4 * (intid as usize / 32),
        1 << (intid % 32),
    );
    if version() == 3 {
        wait_clear(d + GICD_CTLR, GICD_CTLR_RWP);
    }
}

/// "GICv3, 288 interrupt lines" for boot logs.
pub fn describe(out: &mut dyn core::fmt::Write) -> core::fmt::Result {
    match version() {
        0 => write!(out, "no GIC"),
        v => write!(
            out,
            "GICv{v}, {} interrupt lines",
            LINES.load(Ordering::Relaxed)
        ),
    }
}
