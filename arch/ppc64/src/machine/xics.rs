//! The interrupt controller: XICS through hypervisor calls.
//!
//! Keel asks for XICS at client-architecture negotiation, so QEMU's
//! default `ic-mode=dual` (and `xics`) machines present it; KVM on POWER9
//! and POWER10 emulates it on top of XIVE. Everything is an hcall
//! (`H_XIRR`, `H_EOI`, `H_CPPR`, `H_IPI`) or an RTAS call
//! (`ibm,set-xive`, `ibm,int-on`, `ibm,int-off`): no MMIO to map. XIVE's
//! exploitation mode would save an hcall per interrupt but needs its
//! event queues and ESB pages mapped; see docs/boot-ppc64.md.
//!
//! Each CPU has one IPI source (its MFRR); the two kinds of IPI travel
//! as bits in the target's per-CPU block.

use core::sync::atomic::Ordering;

use keel_driver_papr::hcall::{H_CPPR, H_EOI, H_IPI, H_SUCCESS, H_XIRR};
use keel_driver_papr::rtas::{RtasError, Service};
use keel_driver_papr::{hcall, rtas_call};
use keel_hal::interrupt::IrqError;
use keel_hal::machine::kernel;
use keel_hal::{Ipi, IrqLine};

use crate::machine::percpu;

/// The XICS source number of inter-processor interrupts.
const IPI_SOURCE: u64 = 2;
/// Priority of IPIs (lower is more favoured).
const IPI_PRIORITY: u64 = 4;
/// Priority device interrupts are routed at.
const DEVICE_PRIORITY: u32 = 5;
/// "No IPI" / "accept every priority".
const LEAST_FAVOURED: u64 = 0xff;

/// Accept interrupts of every priority on the calling CPU.
pub fn init_this_cpu() {
    let _ = hcall(H_CPPR, [LEAST_FAVOURED, 0, 0, 0, 0, 0, 0]);
}

/// Interrupt the CPU with XICS server number `server`.
pub fn send_ipi(server: u32, ipi: Ipi, pending: &core::sync::atomic::AtomicU32) {
    pending.fetch_or(1 << ipi as u32, Ordering::AcqRel);
    let _ = hcall(H_IPI, [u64::from(server), IPI_PRIORITY, 0, 0, 0, 0, 0]);
}

/// The external interrupt: accept, dispatch, end.
pub fn on_external() {
    let (status, out) = hcall(H_XIRR, [0; 7]);
    if status != H_SUCCESS {
        return;
    }
    let xirr = out[0];
    let source = xirr & 0x00ff_ffff;
    match source {
        0 => {} // nothing pending (someone else took it)
        IPI_SOURCE => {
            let me = percpu::this();
            // Clear the MFRR before reading the bits: an IPI sent after
            // this point raises a new interrupt.
            let _ = hcall(H_IPI, [u64::from(me.server), LEAST_FAVOURED, 0, 0, 0, 0, 0]);
            let bits = me.ipi_pending.swap(0, Ordering::AcqRel);
            let _ = hcall(H_EOI, [xirr, 0, 0, 0, 0, 0, 0]);
            if bits & (1 << Ipi::Reschedule as u32) != 0 {
                kernel::ipi(Ipi::Reschedule);
            }
            if bits & (1 << Ipi::Call as u32) != 0 {
                kernel::ipi(Ipi::Call);
            }
        }
        line => {
            kernel::irq(IrqLine(line as u32));
            let _ = hcall(H_EOI, [xirr, 0, 0, 0, 0, 0, 0]);
        }
    }
}

/// Route `line` to the CPU with XICS server `server` and unmask it.
pub fn route(line: u32, server: u32) -> Result<(), IrqError> {
    let mut rets = [0u32; 1];
    rtas_call(
        Service::SetXive,
        &[line, server, DEVICE_PRIORITY],
        &mut rets,
    )
    .map_err(to_irq_error)?;
    rtas_call(Service::IntOn, &[line], &mut rets).map_err(to_irq_error)
}

/// Mask `line`.
pub fn mask(line: u32) {
    let mut rets = [0u32; 1];
    let _ = rtas_call(Service::IntOff, &[line], &mut rets);
}

/// RTAS refuses unknown sources (-3) and anything else it cannot route;
/// either way the line cannot be used.
fn to_irq_error(_: RtasError) -> IrqError {
    IrqError::NoSuchLine
}
