//! Trap dispatch: exceptions become fault reports for core (with the
//! app's registers when app code faulted, and a way out for the app-copy
//! routines), the decrementer and XICS interrupts go to the timer, IPI and
//! device upcalls; then core's preemption point if the interrupted code
//! had interrupts on. System calls from app code take their own entry
//! (`trap_entry.rs`) to `keel_ppc64_syscall`; `sc` from kernel code (only
//! tests do that) arrives here.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use keel_hal::machine::kernel;
use keel_hal::{AppFrame, Fault, FaultKind, FaultResolution, VirtAddr};

use crate::layout::APP_RANGE;
use crate::machine::app;
use crate::machine::boot::MSR_EE;
use crate::machine::{time, xics};

/// Registers saved by the trap entry and the system-call entry, lowest
/// address first. The first 32 bytes are the ABI's frame header, so the
/// handler's frame chains to it and backtraces walk through traps. The
/// general registers are an `AppFrame`, so a trap or system call from app
/// code hands core the app's registers in place, without a copy.
#[repr(C)]
pub struct TrapFrame {
    /// Back chain: the interrupted r1.
    pub back_chain: u64,
    /// ABI header: CR save slot.
    pub cr_save: u64,
    /// ABI header: LR save slot (the handler stores its return address here).
    pub lr_save: u64,
    /// ABI header: TOC save slot.
    pub toc_save: u64,
    /// r0..r31 as interrupted; `pc` = SRR0 (the faulting instruction, or
    /// the one after `sc`), `sp` = r1 (what the return path loads),
    /// `flags` = SRR1 (the interrupted MSR, plus cause bits for some
    /// interrupts), `extra` = LR, CTR, XER, CR.
    pub regs: AppFrame,
    /// Data address register (DSI, alignment).
    pub dar: u64,
    /// Data storage interrupt status register.
    pub dsisr: u64,
    /// Vector offset (0x300, 0x900, …).
    pub vector: u64,
    /// FPSCR (as FPR bits).
    pub fpscr: u64,
    _pad: u64,
    /// VSCR (in a vector register image).
    pub vscr: [u64; 2],
    /// VSR0..VSR63 as `stxv` stores them little-endian: element 1 is
    /// doubleword 0 (the FPR of VSR0..31), element 0 doubleword 1. VRs
    /// are VSR32..63.
    pub vsr: [[u64; 2]; 64],
}

/// `AppFrame::extra` slots.
pub const LR: usize = 0;
/// See [`LR`].
pub const CTR: usize = 1;
/// See [`LR`].
pub const XER: usize = 2;
/// See [`LR`].
pub const CR: usize = 3;

/// The system-call number `sc` test code uses: returns r3 + r4 and the
/// stack pointer the handler ran on (r4), so a test can check the switch
/// to the kernel stack. Every other number fails with ENOSYS.
pub const SYSCALL_PROBE: u64 = 0x4b45_454c;
const ENOSYS: u64 = 38;
const CR0_SO: u64 = 1 << 28;

/// System calls handled since boot (for tests).
pub static SYSCALLS: AtomicUsize = AtomicUsize::new(0);

fn vector_name(vector: u64) -> &'static str {
    match vector {
        0x100 => "system reset",
        0x200 => "machine check",
        0x300 => "data storage",
        0x380 => "data segment",
        0x400 => "instruction storage",
        0x480 => "instruction segment",
        0x500 => "external interrupt",
        0x600 => "alignment",
        0x700 => "program check",
        0x800 => "floating-point unavailable",
        0x900 => "decrementer",
        0xa00 => "doorbell",
        0xc00 => "system call",
        0xd00 => "trace",
        0xf00 => "performance monitor",
        0xf20 => "vector unavailable",
        0xf40 => "VSX unavailable",
        0xf60 => "facility unavailable",
        _ => "unexpected interrupt",
    }
}

/// A copy of what a fault report prints (the frame itself may change
/// before the report is printed: core rewrites an app's registers to
/// deliver a signal).
struct Registers {
    regs: AppFrame,
    vector: u64,
    dar: u64,
    dsisr: u64,
}

impl Registers {
    fn of(t: &TrapFrame) -> Self {
        Self {
            regs: t.regs,
            vector: t.vector,
            dar: t.dar,
            dsisr: t.dsisr,
        }
    }
}

impl fmt::Display for Registers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.regs;
        writeln!(
            f,
            "  vector {:#x} ({}), DAR {:#018x}, DSISR {:#010x}",
            self.vector,
            vector_name(self.vector),
            self.dar,
            self.dsisr
        )?;
        writeln!(
            f,
            "  SRR0 {:#018x} SRR1 {:#018x} LR {:#018x} CTR {:#018x}",
            t.pc, t.flags, t.extra[LR], t.extra[CTR]
        )?;
        writeln!(f, "  CR {:#010x} XER {:#018x}", t.extra[CR], t.extra[XER])?;
        for row in 0..8 {
            let r = row * 4;
            writeln!(
                f,
                "  r{:<2} {:#018x} r{:<2} {:#018x} r{:<2} {:#018x} r{:<2} {:#018x}",
                r,
                t.gpr[r],
                r + 1,
                t.gpr[r + 1],
                r + 2,
                t.gpr[r + 2],
                r + 3,
                t.gpr[r + 3]
            )?;
        }
        Ok(())
    }
}

#[unsafe(no_mangle)]
extern "C" fn keel_ppc64_trap(frame: &mut TrapFrame) {
    match frame.vector {
        0x900 => time::on_decrementer(),
        0x500 => xics::on_external(),
        0xa00 => {} // a doorbell Keel never sends: nothing to do
        0xc00 => kernel_syscall(frame),
        0xf00 => {} // performance monitor: Keel never enables counters
        0x100 => {
            // A system reset (QEMU's `nmi`, or another CPU's request) is a
            // request to stop, as an NMI is on x86: say where, then halt.
            let mut line = Line([0; 96], 0);
            let _ = fmt::write(
                &mut line,
                format_args!(
                    "keel: system reset on cpu {} at pc {:#x}; stopping this CPU\n",
                    crate::machine::percpu::cpu_index(),
                    frame.regs.pc
                ),
            );
            keel_hal::machine::console_write(&line.0[..line.1]);
            keel_hal::machine::halt_forever();
        }
        _ => exception(frame),
    }
    if frame.regs.flags & MSR_EE != 0 {
        kernel::trap_exit();
    }
}

/// A system call from app code (the `sc` entry calls this with interrupts
/// on, on the thread's kernel stack, every app register saved): core's
/// upcall, then the frame made safe to resume.
#[unsafe(no_mangle)]
extern "C" fn keel_ppc64_syscall(frame: &mut AppFrame) {
    // The entry does not read SRR1: the app always runs with the same MSR.
    frame.flags = app::app_msr();
    kernel::syscall(frame);
    app::make_resumable(frame);
}

/// `sc` from kernel code (tests of the entry path): r0 is the number,
/// r3.. the arguments; the result goes to r3, failure sets CR0[SO] with
/// a positive errno, as Linux does.
fn kernel_syscall(frame: &mut TrapFrame) {
    SYSCALLS.fetch_add(1, Ordering::Relaxed);
    let r = &mut frame.regs;
    if r.gpr[0] == SYSCALL_PROBE {
        let sp: u64;
        // SAFETY: reads the stack pointer only.
        unsafe { core::arch::asm!("mr {0}, 1", out(reg) sp, options(nomem, nostack)) };
        r.gpr[3] = r.gpr[3].wrapping_add(r.gpr[4]);
        r.gpr[4] = sp;
        r.extra[CR] &= !CR0_SO;
    } else {
        r.gpr[3] = ENOSYS;
        r.extra[CR] |= CR0_SO;
    }
}

// DSISR bits (DSI) and the same bits of SRR1 (ISI).
const NO_TRANSLATION: u64 = 0x4000_0000;
const PROTECTION: u64 = 0x0800_0000;
const STORE: u64 = 0x0200_0000;
// Program-check cause bits in SRR1.
const PROGRAM_FP: u64 = 1 << 20;
const PROGRAM_ILLEGAL: u64 = 1 << 19;
const PROGRAM_PRIVILEGED: u64 = 1 << 18;
const PROGRAM_TRAP: u64 = 1 << 17;

fn exception(frame: &mut TrapFrame) {
    let pc = frame.regs.pc;
    let kind = match frame.vector {
        0x300 => FaultKind::PageFault {
            address: VirtAddr(frame.dar as usize),
            write: frame.dsisr & STORE != 0,
            execute: false,
            protection: frame.dsisr & PROTECTION != 0 && frame.dsisr & NO_TRANSLATION == 0,
        },
        // Radix: the address lies outside every tree (a quadrant Keel does
        // not use, or beyond 52 bits).
        0x380 => FaultKind::PageFault {
            address: VirtAddr(frame.dar as usize),
            write: false,
            execute: false,
            protection: false,
        },
        0x400 => FaultKind::PageFault {
            address: VirtAddr(pc as usize),
            write: false,
            execute: true,
            protection: frame.regs.flags & PROTECTION != 0,
        },
        0x480 => FaultKind::PageFault {
            address: VirtAddr(pc as usize),
            write: false,
            execute: true,
            protection: false,
        },
        0x600 => FaultKind::Alignment {
            address: VirtAddr(frame.dar as usize),
        },
        0x700 if frame.regs.flags & PROGRAM_TRAP != 0 => FaultKind::Breakpoint,
        0x700 if frame.regs.flags & (PROGRAM_ILLEGAL | PROGRAM_PRIVILEGED) != 0 => {
            FaultKind::IllegalInstruction
        }
        0x700 if frame.regs.flags & PROGRAM_FP != 0 => {
            FaultKind::Other("floating-point enabled exception")
        }
        v => FaultKind::Other(vector_name(v)),
    };
    let regs = Registers::of(frame);
    // A system reset never gets here; a machine check in app code is the
    // app's (core turns it into a signal), like any other exception.
    let from_app = pc < APP_RANGE.1 as u64;
    // Data-side faults inside the app-copy routines can be abandoned.
    let fixup = if matches!(frame.vector, 0x300 | 0x380 | 0x600) {
        app::copy_fixup(pc)
    } else {
        None
    };
    let interrupts_enabled = frame.regs.flags & MSR_EE != 0 && frame.vector != 0x200;
    let sp = frame.regs.sp as usize;
    let mut fault = Fault {
        app: from_app.then_some(&mut frame.regs),
        in_app_copy: fixup.is_some(),
        kind,
        pc: pc as usize,
        sp,
        frame_pointer: sp,
        interrupts_enabled,
        registers: &regs,
    };
    match kernel::fault(&mut fault) {
        FaultResolution::Retry => {}
        FaultResolution::ResumeApp => {
            if from_app {
                app::make_resumable(&mut frame.regs);
            }
        }
        FaultResolution::AbandonCopy => {
            if let Some(target) = fixup {
                frame.regs.pc = target;
            }
        }
    }
}

/// A line formatted without the heap (a system reset may interrupt it).
struct Line([u8; 96], usize);

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.0.len() - self.1);
        self.0[self.1..self.1 + n].copy_from_slice(&s.as_bytes()[..n]);
        self.1 += n;
        Ok(())
    }
}
