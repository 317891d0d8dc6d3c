//! Trap entry stubs.
//!
//! Every vector arrives on an IST stack, because app code runs at CPL0 and
//! the CPU would otherwise push the trap frame onto the app's stack, over
//! its 128-byte red zone. The common stub then moves the frame onto the
//! running thread's kernel stack — below the interrupted stack pointer if
//! that was already on the kernel stack, else at its top — so handlers can
//! block and switch threads like any kernel code, and traps nest. If the
//! kernel stack is nearly exhausted (or the fault is in its guard page) the
//! trap is handled on the IST stack itself so it can be reported.
//! NMI, double fault and machine check stay on their own IST stacks.

use core::arch::global_asm;

use crate::percpu::{OFFSET_KSTACK_BOTTOM, OFFSET_KSTACK_TOP};

/// Below this much free kernel stack a trap is handled on the IST stack.
const STACK_MARGIN: usize = 4096;
/// Size of the guard page under each kernel stack.
const GUARD: usize = 4096;

global_asm!(
    r#"
    .text
    .balign 16
    .global keel_x86_64_vectors
keel_x86_64_vectors:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    push 0
    .endif
    push vec
    .if (vec == 2) || (vec == 8) || (vec == 18)
    jmp keel_x86_64_trap_in_place
    .else
    jmp keel_x86_64_trap_common
    .endif
    .set vec, vec + 1
    .endr

keel_x86_64_trap_common:
    push rax
    push rcx
    /* [rsp]: rcx, rax, vector, error, rip, cs, rflags, rsp, ss */
    mov rax, [rsp + 56]
    mov rcx, gs:[{bottom}]
    sub rcx, {guard}
    cmp rax, rcx
    jb .Lnot_on_kstack
    cmp rax, gs:[{top}]
    ja .Lnot_on_kstack
    mov rcx, gs:[{bottom}]
    add rcx, {margin}
    cmp rax, rcx
    jb .Lkstack_exhausted
    jmp .Lcopy_frame
.Lnot_on_kstack:
    mov rax, gs:[{top}]
.Lcopy_frame:
    and rax, -16
    sub rax, 56
    mov rcx, [rsp + 16]
    mov [rax], rcx
    mov rcx, [rsp + 24]
    mov [rax + 8], rcx
    mov rcx, [rsp + 32]
    mov [rax + 16], rcx
    mov rcx, [rsp + 40]
    mov [rax + 24], rcx
    mov rcx, [rsp + 48]
    mov [rax + 32], rcx
    mov rcx, [rsp + 56]
    mov [rax + 40], rcx
    mov rcx, [rsp + 64]
    mov [rax + 48], rcx
    mov rcx, [rsp + 8]
    mov [rax - 8], rcx
    mov rcx, [rsp]
    mov [rax - 16], rcx
    lea rsp, [rax - 16]
    pop rcx
    pop rax
    jmp keel_x86_64_trap_in_place
.Lkstack_exhausted:
    pop rcx
    pop rax

keel_x86_64_trap_in_place:
    push r15
    push r14
    push r13
    push r12
    push r11
    push r10
    push r9
    push r8
    push rbp
    push rdi
    push rsi
    push rdx
    push rcx
    push rbx
    push rax
    mov rdi, rsp
    cld
    call keel_x86_64_trap
    pop rax
    pop rbx
    pop rcx
    pop rdx
    pop rsi
    pop rdi
    pop rbp
    pop r8
    pop r9
    pop r10
    pop r11
    pop r12
    pop r13
    pop r14
    pop r15
    add rsp, 16
    iretq
"#,
    top = const OFFSET_KSTACK_TOP,
    bottom = const OFFSET_KSTACK_BOTTOM,
    guard = const GUARD,
    margin = const STACK_MARGIN,
);
