//! Trap dispatch: synchronous exceptions become fault reports for core
//! (with the syndrome decoded); IRQs go to the timer, IPI and device
//! handlers, then to core's preemption point.

use core::fmt;

use keel_hal::machine::kernel;
use keel_hal::{AppFrame, Cpu, Fault, FaultKind, FaultResolution, Ipi, IrqLine, VirtAddr};

use super::app::{self, APP_FLAGS};
use super::layout::APP_RANGE;
use super::vectors::{
    FROM_APP, FROM_LOWER_EL, KIND_FIQ, KIND_IRQ, KIND_SERROR, KIND_SYNC, ON_EMERGENCY_STACK,
};
use super::{Aarch64, gic, semihosting, timer};

/// PSTATE.I in SPSR: IRQs masked.
const SPSR_IRQ_MASKED: u64 = 1 << 7;

/// Registers saved by the vectors, lowest address first.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// The interrupted stack pointer (SP_EL0 for app code).
    pub sp: u64,
    /// ELR_EL1: where the exception was taken.
    pub elr: u64,
    /// SPSR_EL1: the interrupted PSTATE.
    pub spsr: u64,
    /// ESR_EL1: the syndrome.
    pub esr: u64,
    /// FAR_EL1: the faulting address (for aborts).
    pub far: u64,
    /// SP_EL0 at entry.
    pub sp_el0: u64,
    /// What the vector was (`vectors::KIND_*` and flags).
    pub kind: u64,
    /// A frame record (x29, ELR) linking backtraces through the trap.
    pub record: [u64; 2],
}

/// Exception class names, ESR_EL1.EC (ARM ARM D17.2.37).
fn class_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown reason (undefined instruction)",
        0x01 => "WFI/WFE trapped",
        0x07 => "FP/SIMD access trapped",
        0x0d => "branch target exception",
        0x0e => "illegal execution state",
        0x15 => "SVC (system call)",
        0x18 => "system register access trapped",
        0x19 => "SVE access trapped",
        0x1c => "pointer authentication failure",
        0x1d => "SME access trapped",
        0x20 => "instruction abort from a lower EL",
        0x21 => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 => "data abort from a lower EL",
        0x25 => "data abort",
        0x26 => "SP alignment fault",
        0x2c => "floating-point exception",
        0x2f => "SError",
        0x30 | 0x31 => "breakpoint (debug)",
        0x32 | 0x33 => "software step",
        0x34 | 0x35 => "watchpoint",
        0x3c => "BRK instruction",
        _ => "unexpected exception class",
    }
}

/// Fault status codes of aborts (DFSC/IFSC).
fn status_name(fsc: u64) -> &'static str {
    match fsc {
        0x00..=0x03 => "address size fault",
        0x04..=0x07 => "translation fault",
        0x08..=0x0b => "access flag fault",
        0x0c..=0x0f => "permission fault",
        0x10 => "synchronous external abort",
        0x11 => "tag check fault",
        0x21 => "alignment fault",
        0x30 => "TLB conflict abort",
        _ => "other abort",
    }
}

fn is_abort(ec: u64) -> bool {
    matches!(ec, 0x20 | 0x21 | 0x24 | 0x25)
}

/// The register report printed with every fault.
struct Registers<'a>(&'a TrapFrame);

impl fmt::Display for Registers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        let ec = (t.esr >> 26) & 0x3f;
        write!(
            f,
            "  ESR {:#010x}: {} (EC {ec:#04x})",
            t.esr,
            class_name(ec)
        )?;
        if is_abort(ec) {
            let fsc = t.esr & 0x3f;
            let access = if ec < 0x24 {
                "fetch"
            } else if t.esr & (1 << 6) != 0 {
                "write"
            } else {
                "read"
            };
            write!(f, ", {access}, {}", status_name(fsc))?;
            if (0x04..=0x0f).contains(&fsc) {
                write!(f, " at level {}", fsc & 3)?;
            }
            if t.esr & (1 << 10) != 0 {
                write!(f, ", FAR not valid")?;
            }
        }
        writeln!(f)?;
        let mode = match t.spsr & 0xf {
            0b0000 => "EL0t",
            0b0100 => "EL1t (app stack)",
            0b0101 => "EL1h (kernel stack)",
            _ => "other mode",
        };
        let irqs = if t.spsr & SPSR_IRQ_MASKED == 0 {
            "on"
        } else {
            "off"
        };
        writeln!(
            f,
            "  FAR {:#018x} ELR {:#018x} SPSR {:#010x} ({mode}, IRQs {irqs})",
            t.far, t.elr, t.spsr
        )?;
        for row in 0..8 {
            write!(f, " ")?;
            for col in 0..4 {
                let n = row * 4 + col;
                if n < 31 {
                    write!(f, " x{n:<2} {:#018x}", t.x[n])?;
                }
            }
            if row == 7 {
                write!(f, " sp  {:#018x}", t.sp)?;
            }
            writeln!(f)?;
        }
        if t.kind & ON_EMERGENCY_STACK != 0 {
            writeln!(
                f,
                "  (handled on the emergency stack: the kernel stack was exhausted)"
            )?;
        }
        Ok(())
    }
}

/// Called by the vectors with the saved frame.
#[unsafe(no_mangle)]
extern "C" fn keel_aarch64_trap(frame: &mut TrapFrame, kind: u64) {
    match kind & 3 {
        KIND_SYNC => synchronous(frame, kind),
        KIND_IRQ | KIND_FIQ => interrupt(),
        KIND_SERROR => report(
            frame,
            FaultKind::Other("SError (asynchronous abort)"),
            kind & FROM_APP != 0,
        ),
        _ => unreachable!(),
    }
    // The preemption point, unless the interrupted code had interrupts off
    // or this runs on the emergency stack (which no other thread may take).
    if frame.spsr & SPSR_IRQ_MASKED == 0 && kind & ON_EMERGENCY_STACK == 0 {
        kernel::trap_exit();
    }
}

fn synchronous(frame: &mut TrapFrame, kind: u64) {
    let ec = (frame.esr >> 26) & 0x3f;
    let from_app = kind & FROM_APP != 0 && kind & FROM_LOWER_EL == 0;
    if ec == 0x15 && from_app {
        system_call(frame);
        return;
    }
    if ec == 0 && kind & FROM_APP == 0 && semihosting::is_call_at(frame.elr as usize) {
        // A semihosting call with semihosting off is an undefined
        // instruction: step over it; the caller falls back.
        semihosting::mark_unavailable();
        frame.elr += 4;
        return;
    }
    let fsc = frame.esr & 0x3f;
    let address = VirtAddr(frame.far as usize);
    let kind_of_fault = match ec {
        _ if kind & FROM_LOWER_EL != 0 => {
            FaultKind::Other("exception from EL0 (nothing runs there)")
        }
        0x20 | 0x21 | 0x24 | 0x25 if fsc == 0x21 => FaultKind::Alignment { address },
        0x20 | 0x21 | 0x24 | 0x25 if fsc <= 0x0f => FaultKind::PageFault {
            address,
            write: ec >= 0x24 && frame.esr & (1 << 6) != 0 && frame.esr & (1 << 8) == 0,
            execute: ec < 0x24,
            protection: (0x0c..=0x0f).contains(&fsc),
        },
        0x20 | 0x21 | 0x24 | 0x25 => FaultKind::Other(status_name(fsc)),
        0x22 => FaultKind::Alignment {
            address: VirtAddr(frame.elr as usize),
        },
        0x26 => FaultKind::Alignment {
            address: VirtAddr(frame.sp as usize),
        },
        0x00 => FaultKind::IllegalInstruction,
        0x3c => FaultKind::Breakpoint,
        other => FaultKind::Other(class_name(other)),
    };
    report(frame, kind_of_fault, from_app);
}

/// `svc #0` from app code: core runs the call (with interrupts on, as the
/// app had them: it may block) and the app resumes from the frame it left.
fn system_call(frame: &mut TrapFrame) {
    let mut regs = app_frame_of(frame);
    Aarch64::restore_interrupts(true);
    kernel::syscall(&mut regs);
    Aarch64::disable_interrupts();
    load_app_frame(frame, &regs);
}

fn report(frame: &mut TrapFrame, kind: FaultKind, from_app: bool) {
    // A copy for the report: the frame itself may change before it prints.
    let regs_copy = *frame;
    let regs = Registers(&regs_copy);
    let fixup = if from_app {
        None
    } else {
        app::copy_fixup(frame.elr)
    };
    let mut app = from_app.then(|| app_frame_of(frame));
    let resolution = {
        let mut fault = Fault {
            app: app.as_mut(),
            in_app_copy: fixup.is_some(),
            kind,
            pc: frame.elr as usize,
            sp: frame.sp as usize,
            frame_pointer: frame.x[29] as usize,
            interrupts_enabled: frame.spsr & SPSR_IRQ_MASKED == 0,
            registers: &regs,
        };
        kernel::fault(&mut fault)
    };
    match resolution {
        FaultResolution::Retry => {}
        FaultResolution::ResumeApp => {
            if let Some(app) = &app {
                load_app_frame(frame, app);
            }
        }
        FaultResolution::AbandonCopy => {
            if let Some(target) = fixup {
                frame.elr = target;
            }
        }
    }
}

/// The app's registers as an `AppFrame` (x0..x30, pc, SP_EL0, PSTATE).
fn app_frame_of(t: &TrapFrame) -> AppFrame {
    let mut a = AppFrame::default();
    a.gpr[..31].copy_from_slice(&t.x);
    a.pc = t.elr;
    a.sp = t.sp;
    a.flags = t.spsr;
    a
}

/// Make the trap return into the app state `a`: only the condition flags
/// come from it (mode and masks stay as the trap found them), and a pc
/// outside the app range becomes an app fault at 0.
fn load_app_frame(t: &mut TrapFrame, a: &AppFrame) {
    t.x.copy_from_slice(&a.gpr[..31]);
    t.elr = if a.pc < APP_RANGE.1 as u64 { a.pc } else { 0 };
    t.sp = a.sp;
    t.spsr = (t.spsr & !APP_FLAGS) | (a.flags & APP_FLAGS);
}

fn interrupt() {
    let Some(ack) = gic::acknowledge() else {
        return; // spurious
    };
    match gic::intid(ack) {
        gic::SGI_RESCHEDULE => {
            gic::end_of_interrupt(ack);
            kernel::ipi(Ipi::Reschedule);
        }
        gic::SGI_CALL => {
            gic::end_of_interrupt(ack);
            kernel::ipi(Ipi::Call);
        }
        id if id == timer::intid() => {
            // Level-sensitive: quiet the timer before the EOI.
            timer::silence();
            gic::end_of_interrupt(ack);
            kernel::timer();
        }
        id if id >= 32 => {
            kernel::irq(IrqLine(id));
            gic::end_of_interrupt(ack);
        }
        _ => gic::end_of_interrupt(ack),
    }
}
