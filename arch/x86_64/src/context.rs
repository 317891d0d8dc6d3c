//! Thread context switch: callee-saved registers and the FS base (the
//! app's TLS pointer) on the stack, FP/SIMD state in the thread's area via
//! XSAVE (or FXSAVE on CPUs without it).

use core::alloc::Layout;
use core::arch::global_asm;

use keel_hal::SwitchFrame;

use crate::cpu;

const IA32_FS_BASE: u32 = 0xc000_0100;

global_asm!(
    r#"
    .text
    .global keel_x86_64_switch_xsave
keel_x86_64_switch_xsave:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    call keel_x86_64_read_fs_base
    push rax
    mov r8, [rdi + 8]
    test r8, r8
    jz .Lxsave_skip_save
    mov eax, -1
    mov edx, -1
    xsave64 [r8]
.Lxsave_skip_save:
    mov [rdi], rsp
    mov rsp, [rsi]
    mov r8, [rsi + 8]
    test r8, r8
    jz .Lxsave_skip_restore
    mov eax, -1
    mov edx, -1
    xrstor64 [r8]
.Lxsave_skip_restore:
    jmp keel_x86_64_switch_tail

    .global keel_x86_64_switch_fxsave
keel_x86_64_switch_fxsave:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    call keel_x86_64_read_fs_base
    push rax
    mov r8, [rdi + 8]
    test r8, r8
    jz .Lfxsave_skip_save
    fxsave64 [r8]
.Lfxsave_skip_save:
    mov [rdi], rsp
    mov rsp, [rsi]
    mov r8, [rsi + 8]
    test r8, r8
    jz keel_x86_64_switch_tail
    fxrstor64 [r8]

keel_x86_64_switch_tail:
    pop rax
    cmp byte ptr [rip + {fsgsbase}], 0
    je 1f
    wrfsbase rax
    jmp 2f
1:
    mov rdx, rax
    shr rdx, 32
    mov ecx, {fs_base}
    wrmsr
2:
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

    /* rax = FS base; clobbers rcx, rdx. With FSGSBASE on, one
       instruction instead of an MSR read (which under emulation is a
       helper call, and under KVM may be an exit). */
keel_x86_64_read_fs_base:
    cmp byte ptr [rip + {fsgsbase}], 0
    je 1f
    rdfsbase rax
    ret
1:
    mov ecx, {fs_base}
    rdmsr
    shl rdx, 32
    or rax, rdx
    ret

    /* First code of a new thread: its entry in r13, argument in r12. */
    .global keel_x86_64_thread_trampoline
keel_x86_64_thread_trampoline:
    mov rdi, r12
    xor ebp, ebp
    jmp r13
"#,
    fs_base = const IA32_FS_BASE,
    fsgsbase = sym cpu::FSGSBASE,
);

unsafe extern "C" {
    fn keel_x86_64_switch_xsave(from: *mut SwitchFrame, to: *const SwitchFrame);
    fn keel_x86_64_switch_fxsave(from: *mut SwitchFrame, to: *const SwitchFrame);
    fn keel_x86_64_thread_trampoline();
}

/// Save the current thread into `from`, resume `to`.
///
/// # Safety
/// See `keel_hal::Context::switch`.
pub unsafe fn switch(from: *mut SwitchFrame, to: *const SwitchFrame) {
    // SAFETY: forwarded contract; the FP areas are laid out per `fp_layout`.
    unsafe {
        if cpu::has_xsave() {
            keel_x86_64_switch_xsave(from, to)
        } else {
            keel_x86_64_switch_fxsave(from, to)
        }
    }
}

/// FP area layout: XSAVE needs 64-byte alignment, FXSAVE 16.
pub fn fp_layout() -> Layout {
    let align = if cpu::has_xsave() { 64 } else { 16 };
    Layout::from_size_align(cpu::fp_area_size().max(512), align).expect("valid FP area layout")
}

/// Put an FP area into the initial state: default x87 control word and
/// MXCSR; XSTATE_BV = 0 marks every other component as in its init state.
///
/// # Safety
/// `area` is valid for `fp_layout()` bytes.
pub unsafe fn init_fp(area: *mut u8) {
    // SAFETY: the caller guarantees the area's size and alignment.
    unsafe {
        area.write_bytes(0, fp_layout().size());
        area.cast::<u16>().write(0x037f);
        area.add(24).cast::<u32>().write(0x1f80);
    }
}

/// Build a new thread's initial stack: switching to it "returns" into the
/// trampoline, which jumps to `entry(arg)` with the stack aligned as after
/// a call.
///
/// # Safety
/// `[bottom, top)` is a writable stack nobody else uses.
pub unsafe fn prepare_stack(
    bottom: usize,
    top: usize,
    entry: extern "C" fn(usize) -> !,
    arg: usize,
) -> usize {
    let top = top & !15;
    debug_assert!(top - bottom > 256);
    let words: [usize; 9] = [
        0,                                                   // FS base
        0,                                                   // r15
        0,                                                   // r14
        entry as *const () as usize,                         // r13
        arg,                                                 // r12
        0,                                                   // rbx
        0,                                                   // rbp
        keel_x86_64_thread_trampoline as *const () as usize, // return address
        0,                                                   // fake caller (ends backtraces)
    ];
    let sp = top - words.len() * 8;
    // SAFETY: the caller guarantees the stack is ours; 72 bytes fit.
    unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), sp as *mut usize, words.len()) };
    sp
}
