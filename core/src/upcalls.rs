//! Core's side of the HAL upcalls: what happens when a timer fires, an IPI
//! or device interrupt arrives, or code faults.

use core::sync::atomic::Ordering;

use keel_hal::{AppFrame, Fault, FaultKind, FaultResolution, Ipi, IrqLine, Kernel, machine};

use crate::console::print_unlocked;
use crate::memory::stack;
use crate::panic::print_backtrace;
use crate::sched::{self, ExitReason};

/// The upcall target registered with the HAL.
pub struct CoreKernel;

impl Kernel for CoreKernel {
    fn timer() {
        sched::on_timer();
    }

    fn ipi(ipi: Ipi) {
        match ipi {
            Ipi::Reschedule => sched::on_reschedule_ipi(),
            Ipi::Call => crate::smp::on_call_ipi(),
        }
    }

    fn irq(line: IrqLine) {
        crate::irq::dispatch(line);
    }

    fn fault(fault: &mut Fault<'_>) -> FaultResolution {
        if let Some(resolution) = crate::app::fault(fault) {
            return resolution;
        }
        report_fault(fault);
        let cpu = sched::this_cpu();
        let scheduling = cpu.online_flag().load(Ordering::Acquire);
        if scheduling && fault.interrupts_enabled {
            let thread = sched::current();
            if thread.is_killable() {
                let summary = alloc::format!("{}", Summary(fault));
                drop(thread);
                print_unlocked(format_args!("keel: thread killed; the kernel carries on\n"));
                sched::exit(ExitReason::Faulted(summary));
            }
        }
        panic!("unrecoverable fault in kernel code: {}", Summary(fault));
    }

    fn trap_exit() {
        sched::on_trap_exit();
    }

    fn syscall(frame: &mut AppFrame) {
        crate::app::syscall(frame);
    }
}

keel_hal::export_kernel!(CoreKernel);

/// One-line description of a fault.
struct Summary<'a, 'b>(&'a Fault<'b>);

impl core::fmt::Display for Summary<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.kind {
            FaultKind::PageFault {
                address,
                write,
                execute,
                protection,
            } => {
                let access = if execute {
                    "execute"
                } else if write {
                    "write"
                } else {
                    "read"
                };
                let why = if protection {
                    "protection violation"
                } else {
                    "not mapped"
                };
                write!(f, "page fault: {access} at {:#x} ({why})", address.0)?;
                if stack::is_guard_page(address) {
                    write!(f, " - kernel stack overflow (guard page)")?;
                }
            }
            FaultKind::Alignment { address } => write!(f, "alignment fault at {:#x}", address.0)?,
            FaultKind::IllegalInstruction => write!(f, "illegal instruction")?,
            FaultKind::DivideError => write!(f, "divide error")?,
            FaultKind::Breakpoint => write!(f, "breakpoint")?,
            FaultKind::Other(name) => write!(f, "{name}")?,
        }
        write!(f, " at pc {:#x}", self.0.pc)
    }
}

/// Print the full report without allocating or taking the console lock
/// (the faulting code may hold either).
fn report_fault(fault: &Fault<'_>) {
    let cpu = machine::current_cpu();
    print_unlocked(format_args!(
        "\nkeel: FAULT on cpu {cpu}: {}\n",
        Summary(fault)
    ));
    if sched::this_cpu().online_flag().load(Ordering::Acquire) {
        let t = sched::current();
        print_unlocked(format_args!("  thread {} '{}'\n", t.id(), t.name()));
    }
    print_unlocked(format_args!("{}", fault.registers));
    print_backtrace(fault.frame_pointer);
}
