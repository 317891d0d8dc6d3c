//! Trap dispatch: exceptions become fault reports for core; interrupts go
//! to the timer, IPI and device handlers, then to core's preemption point.

use core::fmt;

use keel_hal::machine::kernel;
use keel_hal::{AppFrame, Fault, FaultKind, FaultResolution, Ipi, IrqLine, VirtAddr};
use x86_64::registers::control::Cr2;

use crate::apic;

/// Vector of the local APIC timer.
pub const VECTOR_TIMER: u8 = 0x20;
/// First vector handed out for device interrupts.
pub const VECTOR_DEVICE_FIRST: u8 = 0x30;
/// Last vector handed out for device interrupts.
pub const VECTOR_DEVICE_LAST: u8 = 0xef;
/// Reschedule IPI.
pub const VECTOR_IPI_RESCHEDULE: u8 = 0xf0;
/// Cross-CPU call IPI.
pub const VECTOR_IPI_CALL: u8 = 0xf1;
/// APIC spurious interrupt (no EOI).
pub const VECTOR_SPURIOUS: u8 = 0xff;

const RFLAGS_IF: u64 = 1 << 9;

/// Registers saved by the entry stubs, lowest address first.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TrapFrame {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const EXCEPTION_NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range exceeded",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor segment overrun",
    "invalid TSS",
    "segment not present",
    "stack-segment fault",
    "general protection fault",
    "page fault",
    "reserved (15)",
    "x87 floating-point exception",
    "alignment check",
    "machine check",
    "SIMD floating-point exception",
    "virtualization exception",
    "control protection exception",
    "reserved (22)",
    "reserved (23)",
    "reserved (24)",
    "reserved (25)",
    "reserved (26)",
    "reserved (27)",
    "hypervisor injection exception",
    "VMM communication exception",
    "security exception",
    "reserved (31)",
];

/// The register dump printed in fault reports.
struct Registers<'a>(&'a TrapFrame, u64);

impl fmt::Display for Registers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        let name = EXCEPTION_NAMES
            .get(t.vector as usize)
            .copied()
            .unwrap_or("interrupt");
        writeln!(
            f,
            "  vector {} ({name}), error code {:#x}, cr2 {:#x}",
            t.vector, t.error, self.1
        )?;
        writeln!(
            f,
            "  rip {:#018x} rsp {:#018x} rflags {:#010x} cs {:#x} ss {:#x}",
            t.rip, t.rsp, t.rflags, t.cs, t.ss
        )?;
        writeln!(
            f,
            "  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}",
            t.rax, t.rbx, t.rcx, t.rdx
        )?;
        writeln!(
            f,
            "  rsi {:#018x} rdi {:#018x} rbp {:#018x} r8  {:#018x}",
            t.rsi, t.rdi, t.rbp, t.r8
        )?;
        writeln!(
            f,
            "  r9  {:#018x} r10 {:#018x} r11 {:#018x} r12 {:#018x}",
            t.r9, t.r10, t.r11, t.r12
        )?;
        writeln!(
            f,
            "  r13 {:#018x} r14 {:#018x} r15 {:#018x}",
            t.r13, t.r14, t.r15
        )
    }
}

#[unsafe(no_mangle)]
extern "C" fn keel_x86_64_trap(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    match vector {
        0..=31 => exception(frame),
        VECTOR_TIMER => {
            apic::eoi();
            kernel::timer();
        }
        VECTOR_IPI_RESCHEDULE => {
            apic::eoi();
            kernel::ipi(Ipi::Reschedule);
        }
        VECTOR_IPI_CALL => {
            apic::eoi();
            kernel::ipi(Ipi::Call);
        }
        VECTOR_SPURIOUS => return,
        _ => {
            if let Some(line) = crate::ioapic::line_for_vector(vector) {
                kernel::irq(IrqLine(line));
            }
            apic::eoi();
        }
    }
    if frame.rflags & RFLAGS_IF != 0 {
        kernel::trap_exit();
    }
}

fn exception(frame: &mut TrapFrame) {
    let cr2 = Cr2::read_raw();
    let kind = match frame.vector {
        0 => FaultKind::DivideError,
        3 => FaultKind::Breakpoint,
        6 => FaultKind::IllegalInstruction,
        14 => FaultKind::PageFault {
            address: VirtAddr(cr2 as usize),
            write: frame.error & 2 != 0,
            execute: frame.error & 16 != 0,
            protection: frame.error & 1 != 0,
        },
        17 => FaultKind::Alignment {
            address: VirtAddr(cr2 as usize),
        },
        v => FaultKind::Other(EXCEPTION_NAMES[v as usize]),
    };
    if frame.vector == 2 {
        // An NMI is a request to stop (panic on another CPU), not a fault.
        keel_hal::machine::halt_forever();
    }
    // A copy for the report: the frame itself may change before it prints.
    let regs_copy = *frame;
    let regs = Registers(&regs_copy, cr2);
    let from_app = frame.rip < crate::layout::APP_RANGE.1 as u64;
    let fixup = if frame.vector == 14 {
        crate::app::copy_fixup(frame.rip)
    } else {
        None
    };
    let mut app = from_app.then(|| app_frame_of(frame));
    let interrupts_enabled =
        frame.rflags & RFLAGS_IF != 0 && frame.vector != 8 && frame.vector != 18;
    let mut fault = Fault {
        app: app.as_mut(),
        in_app_copy: fixup.is_some(),
        kind,
        pc: frame.rip as usize,
        sp: frame.rsp as usize,
        frame_pointer: frame.rbp as usize,
        interrupts_enabled,
        registers: &regs,
    };
    match kernel::fault(&mut fault) {
        FaultResolution::Retry => {}
        FaultResolution::ResumeApp => {
            if let Some(app) = &app {
                load_app_frame(frame, app);
            }
        }
        FaultResolution::AbandonCopy => {
            if let Some(target) = fixup {
                frame.rip = target;
            }
        }
    }
}

/// The app's registers as an `AppFrame` (x86_64 order: rax rbx rcx rdx rsi
/// rdi rbp rsp r8..r15).
fn app_frame_of(t: &TrapFrame) -> AppFrame {
    let mut a = AppFrame::default();
    a.gpr[..16].copy_from_slice(&[
        t.rax, t.rbx, t.rcx, t.rdx, t.rsi, t.rdi, t.rbp, t.rsp, t.r8, t.r9, t.r10, t.r11, t.r12,
        t.r13, t.r14, t.r15,
    ]);
    a.pc = t.rip;
    a.sp = t.rsp;
    a.flags = t.rflags;
    a
}

/// Make the trap return into the app state `a` (only the flags the app may
/// set change; privilege and IF stay as they are).
fn load_app_frame(t: &mut TrapFrame, a: &AppFrame) {
    let g = &a.gpr;
    (t.rax, t.rbx, t.rcx, t.rdx, t.rsi, t.rdi, t.rbp) = (g[0], g[1], g[2], g[3], g[4], g[5], g[6]);
    (t.r8, t.r9, t.r10, t.r11, t.r12, t.r13, t.r14, t.r15) =
        (g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
    // A handler address outside the app range becomes an app fault at 0.
    t.rip = if a.pc < crate::layout::APP_RANGE.1 as u64 {
        a.pc
    } else {
        0
    };
    t.rsp = a.sp;
    let user = crate::app::APP_FLAGS;
    t.rflags = (t.rflags & !user) | (a.flags & user);
}
