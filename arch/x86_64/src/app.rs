//! Running app code on x86_64: the `syscall` entry and return paths,
//! entering the app, app-memory copies that survive bad pointers, and FP
//! state for Linux signal frames.
//!
//! Apps run at CPL0. `syscall` from CPL0 does not switch stacks, so the
//! entry moves to the thread's kernel stack itself, without writing a byte
//! below the app's stack pointer (its red zone). The return takes a fast
//! path (`popfq; jmp rcx`) when the frame's rcx/r11 are just what `syscall`
//! put there, and an exact one (`iretq`) otherwise — e.g. after
//! `rt_sigreturn`, where every register must come back.

use core::alloc::Layout;
use core::arch::global_asm;
use core::mem::offset_of;

use keel_hal::AppFrame;
use keel_hal::machine::kernel;

use crate::cpu;
use crate::io::{rdmsr, wrmsr};
use crate::percpu::{KERNEL_CS, KERNEL_DS, OFFSET_KSTACK_TOP};

const IA32_EFER: u32 = 0xc000_0080;
const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;
const IA32_FS_BASE: u32 = 0xc000_0100;
/// Scratch slot in the per-CPU block (offset 24) for the app's rsp.
const OFFSET_SCRATCH: usize = 24;

const FRAME_SIZE: usize = core::mem::size_of::<AppFrame>();
const PC: usize = offset_of!(AppFrame, pc);
const SP: usize = offset_of!(AppFrame, sp);
const FLAGS: usize = offset_of!(AppFrame, flags);

const _: () = assert!(
    FRAME_SIZE % 16 == 8,
    "frame + return address keeps the stack 16-aligned"
);

global_asm!(
    r#"
    .text
    .global keel_x86_64_syscall_entry
keel_x86_64_syscall_entry:
    /* rcx = app rip, r11 = app rflags; IF, DF, TF, AC cleared by FMASK. */
    mov gs:[{scratch}], rsp
    mov rsp, gs:[{kstack_top}]
    sub rsp, {frame}
    mov [rsp + 0*8], rax
    mov [rsp + 1*8], rbx
    mov [rsp + 2*8], rcx
    mov [rsp + 3*8], rdx
    mov [rsp + 4*8], rsi
    mov [rsp + 5*8], rdi
    mov [rsp + 6*8], rbp
    mov [rsp + 8*8], r8
    mov [rsp + 9*8], r9
    mov [rsp + 10*8], r10
    mov [rsp + 11*8], r11
    mov [rsp + 12*8], r12
    mov [rsp + 13*8], r13
    mov [rsp + 14*8], r14
    mov [rsp + 15*8], r15
    mov [rsp + {pc}], rcx
    mov [rsp + {flags}], r11
    mov rax, gs:[{scratch}]
    mov [rsp + {sp}], rax
    mov rdi, rsp
    sti
    cld
    call keel_x86_64_syscall
    cli
    /* Fall into the return path with rsp at the frame. */

    .global keel_x86_64_return_to_app
keel_x86_64_return_to_app:
    mov rax, [rsp + {pc}]
    cmp rax, [rsp + 2*8]
    jne .Lexact_return
    mov rax, [rsp + {flags}]
    cmp rax, [rsp + 11*8]
    jne .Lexact_return
    /* Fast path: rcx = pc and r11 = flags anyway (syscall clobbers them). */
    mov rax, [rsp + 0*8]
    mov rbx, [rsp + 1*8]
    mov rdx, [rsp + 3*8]
    mov rsi, [rsp + 4*8]
    mov rdi, [rsp + 5*8]
    mov rbp, [rsp + 6*8]
    mov r8, [rsp + 8*8]
    mov r9, [rsp + 9*8]
    mov r10, [rsp + 10*8]
    mov r12, [rsp + 12*8]
    mov r13, [rsp + 13*8]
    mov r14, [rsp + 14*8]
    mov r15, [rsp + 15*8]
    mov rcx, [rsp + {pc}]
    mov r11, [rsp + {flags}]
    push r11
    popfq
    mov rsp, [rsp + {sp}]
    jmp rcx

.Lexact_return:
    /* iretq frame below the app frame, on the kernel stack. */
    mov rax, rsp
    push {ds}
    push qword ptr [rax + {sp}]
    push qword ptr [rax + {flags}]
    push {cs}
    push qword ptr [rax + {pc}]
    mov rbx, [rax + 1*8]
    mov rcx, [rax + 2*8]
    mov rdx, [rax + 3*8]
    mov rsi, [rax + 4*8]
    mov rdi, [rax + 5*8]
    mov rbp, [rax + 6*8]
    mov r8, [rax + 8*8]
    mov r9, [rax + 9*8]
    mov r10, [rax + 10*8]
    mov r11, [rax + 11*8]
    mov r12, [rax + 12*8]
    mov r13, [rax + 13*8]
    mov r14, [rax + 14*8]
    mov r15, [rax + 15*8]
    mov rax, [rax + 0*8]
    iretq

    /* resume_app(frame: rdi): copy the frame to the top of this thread's
       kernel stack and take the exact return path. */
    .global keel_x86_64_resume_app
keel_x86_64_resume_app:
    cli
    mov rsp, gs:[{kstack_top}]
    sub rsp, {frame}
    mov rsi, rdi
    mov rdi, rsp
    mov rcx, {frame_words}
    rep movsq
    jmp .Lexact_return

    /* app_copy(dst: rdi, src: rsi, len: rdx) -> bool. A fault on the
       movsb that core cannot resolve resumes at the fixup. */
    .global keel_x86_64_app_copy
    .global keel_x86_64_app_copy_insn
    .global keel_x86_64_app_copy_fixup
keel_x86_64_app_copy:
    mov rcx, rdx
keel_x86_64_app_copy_insn:
    rep movsb
    mov eax, 1
    ret
keel_x86_64_app_copy_fixup:
    xor eax, eax
    ret

    /* app_cmpxchg(addr: rdi, expected: esi, new: edx, out: rcx) -> bool */
    .global keel_x86_64_app_cmpxchg
    .global keel_x86_64_app_cmpxchg_insn
keel_x86_64_app_cmpxchg:
    mov eax, esi
keel_x86_64_app_cmpxchg_insn:
    lock cmpxchg dword ptr [rdi], edx
    mov dword ptr [rcx], eax
    mov eax, 1
    ret
"#,
    scratch = const OFFSET_SCRATCH,
    kstack_top = const OFFSET_KSTACK_TOP,
    frame = const FRAME_SIZE + 8,
    frame_words = const FRAME_SIZE / 8,
    pc = const PC,
    sp = const SP,
    flags = const FLAGS,
    cs = const KERNEL_CS as u64,
    ds = const KERNEL_DS as u64,
);

unsafe extern "C" {
    fn keel_x86_64_syscall_entry();
    fn keel_x86_64_resume_app(frame: *const AppFrame) -> !;
    fn keel_x86_64_app_copy(dst: *mut u8, src: *const u8, len: usize) -> bool;
    static keel_x86_64_app_copy_insn: u8;
    static keel_x86_64_app_copy_fixup: u8;
    fn keel_x86_64_app_cmpxchg(addr: usize, expected: u32, new: u32, out: *mut u32) -> bool;
    static keel_x86_64_app_cmpxchg_insn: u8;
}

/// Turn on `syscall` for this CPU: entry point, and flags masked on entry.
pub fn init_this_cpu() {
    wrmsr(IA32_EFER, rdmsr(IA32_EFER) | 1); // SCE
    wrmsr(
        IA32_STAR,
        (u64::from(KERNEL_CS) << 32) | (u64::from(KERNEL_CS) << 48),
    );
    wrmsr(IA32_LSTAR, keel_x86_64_syscall_entry as *const () as u64);
    // Clear IF, TF, DF, AC on entry (the entry re-enables interrupts itself).
    wrmsr(IA32_FMASK, (1 << 9) | (1 << 8) | (1 << 10) | (1 << 18));
}

#[unsafe(no_mangle)]
extern "C" fn keel_x86_64_syscall(frame: &mut AppFrame) {
    kernel::syscall(frame);
    make_resumable(frame);
}

/// RFLAGS bits the app may set: the arithmetic flags, DF and AC. IF stays
/// on and IOPL, NT and TF stay off, whatever a signal frame said.
pub const APP_FLAGS: u64 = 0x0cd5 | (1 << 10) | (1 << 18);
const RFLAGS_IF_AND_RESERVED: u64 = (1 << 9) | (1 << 1);

/// Keep a frame the kernel may have rewritten (rt_sigreturn, a signal
/// handler's entry) within what the app can have: safe flags, and a pc in
/// the app range (anything else would fault in the return path itself;
/// address 0 makes it an ordinary app fault instead).
fn make_resumable(frame: &mut AppFrame) {
    frame.flags = (frame.flags & APP_FLAGS) | RFLAGS_IF_AND_RESERVED;
    if frame.pc >= crate::layout::APP_RANGE.1 as u64 {
        frame.pc = 0;
    }
}

/// See `keel_hal::App::resume_app`.
///
/// # Safety
/// As for the trait method.
pub unsafe fn resume_app(frame: &AppFrame) -> ! {
    let mut safe = *frame;
    make_resumable(&mut safe);
    // SAFETY: forwarded contract; the routine copies the frame to the kernel
    // stack before it switches stacks, so the local may go away.
    unsafe { keel_x86_64_resume_app(&safe) }
}

/// Whether a fault at `rip` happened inside the app-copy routine, and where
/// to continue if the copy must be abandoned.
pub fn copy_fixup(rip: u64) -> Option<u64> {
    let copy = (&raw const keel_x86_64_app_copy_insn) as u64;
    let cas = (&raw const keel_x86_64_app_cmpxchg_insn) as u64;
    (rip == copy || rip == cas).then_some((&raw const keel_x86_64_app_copy_fixup) as u64)
}

/// Atomic compare-and-swap on an app word; None if it faulted.
///
/// # Safety
/// `addr` is aligned and in the app range.
pub unsafe fn app_cmpxchg(addr: usize, expected: u32, new: u32) -> Option<u32> {
    let mut found = 0u32;
    // SAFETY: forwarded contract; a fault on the cmpxchg is fixed up.
    let ok = unsafe { keel_x86_64_app_cmpxchg(addr, expected, new, &mut found) };
    ok.then_some(found)
}

/// Copy between kernel and app memory; false if an app page failed.
///
/// # Safety
/// The kernel side must be valid for `len` bytes.
pub unsafe fn app_copy(dst: *mut u8, src: *const u8, len: usize) -> bool {
    // SAFETY: forwarded contract; app-side faults are fixed up, not fatal.
    unsafe { keel_x86_64_app_copy(dst, src, len) }
}

/// Set the app's FS base (TLS) for the running thread.
pub fn set_fs_base(value: u64) {
    if cpu::FSGSBASE.load(core::sync::atomic::Ordering::Relaxed) {
        // SAFETY: CR4.FSGSBASE is on; only the FS base changes.
        unsafe {
            core::arch::asm!("wrfsbase {}", in(reg) value, options(nostack, preserves_flags))
        };
    } else {
        wrmsr(IA32_FS_BASE, value);
    }
}

/// The running thread's FS base.
pub fn fs_base() -> u64 {
    if cpu::FSGSBASE.load(core::sync::atomic::Ordering::Relaxed) {
        let v: u64;
        // SAFETY: CR4.FSGSBASE is on; reads the FS base.
        unsafe {
            core::arch::asm!("rdfsbase {}", out(reg) v, options(nostack, nomem, preserves_flags))
        };
        v
    } else {
        rdmsr(IA32_FS_BASE)
    }
}

// Linux's x86_64 signal frame FP area: the FXSAVE/XSAVE image, with
// "software reserved" bytes 464..512 describing the extended state and a
// trailing magic, so glibc and the kernel's rt_sigreturn agree on it.
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

/// Size and alignment of the signal-frame FP area.
pub fn fp_signal_layout() -> Layout {
    if cpu::has_xsave() {
        Layout::from_size_align(cpu::fp_area_size() + 4, 64).expect("valid layout")
    } else {
        Layout::from_size_align(512, 16).expect("valid layout")
    }
}

#[repr(C, align(64))]
struct FpBuffer([u8; 4096]);

/// Save the FP registers to app memory at `dst`.
pub fn save_fp_to_app(dst: usize) -> bool {
    let layout = fp_signal_layout();
    let mut buf = FpBuffer([0; 4096]);
    let p = buf.0.as_mut_ptr();
    if layout.size() > buf.0.len() {
        return false;
    }
    if cpu::has_xsave() {
        let size = cpu::fp_area_size();
        // SAFETY: the buffer is 64-byte aligned and large enough for the
        // enabled XSAVE state (checked above).
        unsafe {
            core::arch::asm!("xsave64 [{}]", in(reg) p, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack))
        };
        let sw = [
            FP_XSTATE_MAGIC1,
            (size + 4) as u32,
            cpu::xcr0() as u32,
            (cpu::xcr0() >> 32) as u32,
            size as u32,
        ];
        for (i, w) in sw.iter().enumerate() {
            buf.0[464 + i * 4..468 + i * 4].copy_from_slice(&w.to_le_bytes());
        }
        buf.0[size..size + 4].copy_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
    } else {
        // SAFETY: 512 bytes, 16-byte aligned.
        unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) p, options(nostack)) };
    }
    // SAFETY: the buffer is valid for `layout.size()` bytes.
    unsafe { app_copy(dst as *mut u8, p, layout.size()) }
}

/// Restore the FP registers from app memory at `src`.
pub fn restore_fp_from_app(src: usize) -> bool {
    let layout = fp_signal_layout();
    let mut buf = FpBuffer([0; 4096]);
    let p = buf.0.as_mut_ptr();
    // SAFETY: the buffer is valid for `layout.size()` bytes.
    if layout.size() > buf.0.len() || !unsafe { app_copy(p, src as *const u8, layout.size()) } {
        return false;
    }
    // Reserved MXCSR bits set would make the restore fault: refuse instead.
    let mxcsr = u32::from_le_bytes(buf.0[24..28].try_into().expect("4 bytes"));
    if mxcsr & !0xffff != 0 {
        return false;
    }
    if cpu::has_xsave() {
        // Only components the kernel enabled, and a sane header.
        let xstate_bv = u64::from_le_bytes(buf.0[512..520].try_into().expect("8 bytes"));
        if xstate_bv & !cpu::xcr0() != 0 || buf.0[520..576].iter().any(|&b| b != 0) {
            return false;
        }
        // SAFETY: checked above; aligned buffer of the right size.
        unsafe {
            core::arch::asm!("xrstor64 [{}]", in(reg) p, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack))
        };
    } else {
        // SAFETY: 512-byte aligned image with a valid MXCSR.
        unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) p, options(nostack)) };
    }
    true
}
