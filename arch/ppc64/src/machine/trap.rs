//! Trap dispatch: exceptions become fault reports for core, the
//! decrementer and XICS interrupts go to the timer, IPI and device
//! upcalls, `sc` goes to the system-call handler; then core's preemption
//! point if the interrupted code had interrupts on.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use keel_hal::machine::kernel;
use keel_hal::{Fault, FaultKind, FaultResolution, VirtAddr};

use crate::machine::boot::MSR_EE;
use crate::machine::{time, xics};

/// Registers saved by the trap entry, lowest address first. The first
/// 32 bytes are the ABI's frame header, so the handler's frame chains to
/// it and backtraces walk through traps.
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
    /// r0..r31 as interrupted.
    pub gpr: [u64; 32],
    /// SRR0: where execution resumes (the faulting instruction, or the one
    /// after `sc`).
    pub nip: u64,
    /// SRR1: the interrupted MSR (plus cause bits for some interrupts).
    pub msr: u64,
    /// Link register.
    pub lr: u64,
    /// Count register.
    pub ctr: u64,
    /// Fixed-point exception register.
    pub xer: u64,
    /// Condition register.
    pub cr: u64,
    /// Data address register (DSI, alignment).
    pub dar: u64,
    /// Data storage interrupt status register.
    pub dsisr: u64,
    /// Vector offset (0x300, 0x900, …).
    pub vector: u64,
    /// FPSCR (as FPR bits).
    pub fpscr: u64,
    /// VRSAVE.
    pub vrsave: u64,
    _pad: u64,
    /// VSCR (in a vector register image).
    pub vscr: [u64; 2],
    /// VSR0..VSR63 (FPRs are the high halves of VSR0..31, VRs are VSR32..63).
    pub vsr: [[u64; 2]; 64],
}

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

/// The register dump printed in fault reports.
struct Registers<'a>(&'a TrapFrame);

impl fmt::Display for Registers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        writeln!(
            f,
            "  vector {:#x} ({}), DAR {:#018x}, DSISR {:#010x}",
            t.vector,
            vector_name(t.vector),
            t.dar,
            t.dsisr
        )?;
        writeln!(
            f,
            "  SRR0 {:#018x} SRR1 {:#018x} LR {:#018x} CTR {:#018x}",
            t.nip, t.msr, t.lr, t.ctr
        )?;
        writeln!(f, "  CR {:#010x} XER {:#018x}", t.cr, t.xer)?;
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
        0xc00 => syscall(frame),
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
                    frame.nip
                ),
            );
            keel_hal::machine::console_write(&line.0[..line.1]);
            keel_hal::machine::halt_forever();
        }
        _ => exception(frame),
    }
    if frame.msr & MSR_EE != 0 {
        kernel::trap_exit();
    }
}

/// `sc` from kernel code (the Linux ABI for apps comes later): r0 is the
/// number, r3.. the arguments; the result goes to r3, failure sets CR0[SO]
/// with a positive errno, as Linux does.
fn syscall(frame: &mut TrapFrame) {
    SYSCALLS.fetch_add(1, Ordering::Relaxed);
    if frame.gpr[0] == SYSCALL_PROBE {
        let sp: u64;
        // SAFETY: reads the stack pointer only.
        unsafe { core::arch::asm!("mr {0}, 1", out(reg) sp, options(nomem, nostack)) };
        frame.gpr[3] = frame.gpr[3].wrapping_add(frame.gpr[4]);
        frame.gpr[4] = sp;
        frame.cr &= !CR0_SO;
    } else {
        frame.gpr[3] = ENOSYS;
        frame.cr |= CR0_SO;
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
            address: VirtAddr(frame.nip as usize),
            write: false,
            execute: true,
            protection: frame.msr & PROTECTION != 0,
        },
        0x480 => FaultKind::PageFault {
            address: VirtAddr(frame.nip as usize),
            write: false,
            execute: true,
            protection: false,
        },
        0x600 => FaultKind::Alignment {
            address: VirtAddr(frame.dar as usize),
        },
        0x700 if frame.msr & PROGRAM_TRAP != 0 => FaultKind::Breakpoint,
        0x700 if frame.msr & (PROGRAM_ILLEGAL | PROGRAM_PRIVILEGED) != 0 => {
            FaultKind::IllegalInstruction
        }
        0x700 if frame.msr & PROGRAM_FP != 0 => {
            FaultKind::Other("floating-point enabled exception")
        }
        v => FaultKind::Other(vector_name(v)),
    };
    let regs = Registers(frame);
    let fault = Fault {
        kind,
        pc: frame.nip as usize,
        sp: frame.gpr[1] as usize,
        frame_pointer: frame.gpr[1] as usize,
        interrupts_enabled: frame.msr & MSR_EE != 0 && frame.vector != 0x200,
        registers: &regs,
    };
    let FaultResolution::Retry = kernel::fault(&fault);
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
