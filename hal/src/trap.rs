//! Faults and the upcalls from arch/platform into core.

use crate::addr::VirtAddr;
use crate::app::AppFrame;
use crate::interrupt::{Ipi, IrqLine};

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Access to an address with no mapping or the wrong rights.
    PageFault {
        /// The address accessed.
        address: VirtAddr,
        /// The access was a write.
        write: bool,
        /// The access was an instruction fetch.
        execute: bool,
        /// A mapping existed but forbade the access.
        protection: bool,
    },
    /// An undefined or privileged instruction.
    IllegalInstruction,
    /// Integer division by zero or overflow.
    DivideError,
    /// Misaligned access the CPU refuses.
    Alignment {
        /// The address accessed.
        address: VirtAddr,
    },
    /// A breakpoint instruction.
    Breakpoint,
    /// Any other exception, with the arch's own name for it.
    Other(&'static str),
}

/// A fault as the arch saw it.
pub struct Fault<'a> {
    /// The app's registers, when the fault happened in app code; core may
    /// change them (to deliver a signal) and the arch resumes from them.
    pub app: Option<&'a mut AppFrame>,
    /// The fault hit one of the arch's app-memory copy routines: if core
    /// cannot resolve it, the copy is abandoned (`FaultResolution::AbandonCopy`).
    pub in_app_copy: bool,
    /// Classified cause.
    pub kind: FaultKind,
    /// Program counter of the faulting instruction.
    pub pc: usize,
    /// Stack pointer at the fault.
    pub sp: usize,
    /// Frame pointer at the fault, for the backtrace.
    pub frame_pointer: usize,
    /// Interrupts were enabled in the faulting code (so it held no spinlock
    /// and the thread may be killed safely).
    pub interrupts_enabled: bool,
    /// Writes the arch's full register report (vector/syndrome, registers).
    pub registers: &'a dyn core::fmt::Display,
}

/// What core decided about a fault it returned from. (A fault core cannot
/// fix does not return: core kills the thread or panics.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultResolution {
    /// Fixed (e.g. a demand-paged page was mapped); retry the instruction.
    Retry,
    /// Continue the app from `Fault::app` as core left it (e.g. at a signal
    /// handler).
    ResumeApp,
    /// Only for `in_app_copy` faults: make the copy routine return failure.
    AbandonCopy,
}

/// Upcalls core provides to the arch and platform crates. Registered with
/// [`crate::export_kernel!`]; all run with interrupts masked on the current
/// thread's kernel stack.
pub trait Kernel {
    /// This CPU's one-shot timer fired.
    fn timer();
    /// Another CPU sent `ipi`.
    fn ipi(ipi: Ipi);
    /// A device interrupt arrived on `line`.
    fn irq(line: IrqLine);
    /// The running code faulted. Returns only if the fault was resolved;
    /// otherwise core reports it and kills the thread or panics.
    fn fault(fault: &mut Fault<'_>) -> FaultResolution;
    /// The app made a system call; `frame` holds its registers and gets the
    /// result. The arch resumes the app from `frame` afterwards.
    fn syscall(frame: &mut AppFrame);
    /// The trap is about to return: the place where preemption happens.
    fn trap_exit();
}
