//! The exception vector table (VBAR_EL1).
//!
//! Kernel code runs at EL1 on SP_EL1 (SPSel = 1), which is always the
//! running thread's kernel stack, so a trap from kernel code ("current EL,
//! SPx") is saved right below the interrupted stack pointer and handlers
//! can block and switch threads like any kernel code. App code will run at
//! EL1 on SP_EL0 (SPSel = 0); a trap from it ("current EL, SP0") starts at
//! the top of the thread's kernel stack as `Context::set_kernel_stack`
//! recorded it, so the app's stack (and red zone) is never written.
//!
//! A kernel trap arriving with less than `STACK_MARGIN` of kernel stack
//! left, or with the stack pointer in the guard page below it, moves to the
//! CPU's emergency stack first: saving the frame in place would fault
//! again, for ever. The handler then reports the overflow and core kills
//! the thread.
//!
//! TPIDRRO_EL0 is the one scratch register of the entry code (Linux uses
//! it the same way; apps see it as zero). While kernel code runs, SP_EL0
//! holds the scheduler's running-thread word (as Linux keeps `current`
//! there): a trap from app code saves the app's SP_EL0 in the frame and
//! loads the word; the way back to the app restores the app's value.

use core::arch::global_asm;
use core::mem::size_of;

use super::layout::{GUARD_SIZE, STACK_MARGIN};
use super::percpu::{
    OFFSET_EMERGENCY_TOP, OFFSET_KSTACK_BOTTOM, OFFSET_KSTACK_TOP, OFFSET_THREAD_WORD,
};
use super::trap::TrapFrame;

/// Kind of exception, in the low two bits of the kind word.
pub const KIND_SYNC: u64 = 0;
/// An IRQ.
pub const KIND_IRQ: u64 = 1;
/// An FIQ.
pub const KIND_FIQ: u64 = 2;
/// An SError.
pub const KIND_SERROR: u64 = 3;
/// Taken from app code (SP0 vectors, or a lower exception level).
pub const FROM_APP: u64 = 1 << 2;
/// Taken from a lower exception level (never expected: nothing runs at EL0).
pub const FROM_LOWER_EL: u64 = 1 << 3;
/// Taken from AArch32 state (never expected).
pub const FROM_AARCH32: u64 = 1 << 4;
/// Handled on the emergency stack.
pub const ON_EMERGENCY_STACK: u64 = 1 << 5;

const FRAME: usize = size_of::<TrapFrame>();
const _: () = assert!(FRAME == 320 && FRAME.is_multiple_of(16));

global_asm!(
    r#"
.macro kernel_entry kind
    .balign 128
    msr tpidrro_el0, x0
    mrs x0, tpidr_el1
    ldr x0, [x0, #{bottom}]
    sub x0, x0, #{guard}
    sub x0, sp, x0
    cmp x0, #{zone}
    b.lo 9f
    mrs x0, tpidrro_el0
    msr tpidrro_el0, xzr
    sub sp, sp, #{frame}
    stp x0, x1, [sp]
    add x1, sp, #{frame}
    str x1, [sp, #{off_sp}]
    mov x0, #(\kind)
    b keel_aarch64_save
    .pushsection .text.keel_aarch64_emergency, "ax"
9:  mrs x0, tpidr_el1
    ldr x0, [x0, #{emergency}]
    sub x0, x0, #{frame}
    str x1, [x0, #8]
    mov x1, sp
    str x1, [x0, #{off_sp}]
    mov sp, x0
    mrs x0, tpidrro_el0
    msr tpidrro_el0, xzr
    str x0, [sp]
    mov x0, #(\kind | {on_emergency})
    b keel_aarch64_save
    .popsection
.endm

.macro app_entry kind
    .balign 128
    msr tpidrro_el0, x0
    mrs x0, tpidr_el1
    ldr x0, [x0, #{top}]
    sub x0, x0, #{frame}
    mov sp, x0
    mrs x0, tpidrro_el0
    msr tpidrro_el0, xzr
    stp x0, x1, [sp]
    mrs x1, sp_el0
    str x1, [sp, #{off_sp}]
    /* Kernel code finds the running thread in SP_EL0. */
    mrs x0, tpidr_el1
    ldr x0, [x0, #{word}]
    msr sp_el0, x0
    mov x0, #(\kind)
    b keel_aarch64_save
.endm

    .text
    .balign 2048
    .global keel_aarch64_vectors
keel_aarch64_vectors:
    /* Current EL with SP0: app code at EL1. */
    app_entry ({sync}|{from_app})
    app_entry ({irq}|{from_app})
    app_entry ({fiq}|{from_app})
    app_entry ({serror}|{from_app})
    /* Current EL with SPx: kernel code. */
    kernel_entry {sync}
    kernel_entry {irq}
    kernel_entry {fiq}
    kernel_entry {serror}
    /* Lower EL, AArch64 and AArch32: nothing runs there; reported. */
    app_entry ({sync}|{from_app}|{lower})
    app_entry ({irq}|{from_app}|{lower})
    app_entry ({fiq}|{from_app}|{lower})
    app_entry ({serror}|{from_app}|{lower})
    app_entry ({sync}|{from_app}|{lower}|{aarch32})
    app_entry ({irq}|{from_app}|{lower}|{aarch32})
    app_entry ({fiq}|{from_app}|{lower}|{aarch32})
    app_entry ({serror}|{from_app}|{lower}|{aarch32})

/* x0 = kind; x0, x1 and the interrupted stack pointer are saved. */
keel_aarch64_save:
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    str x30, [sp, #240]
    mrs x1, elr_el1
    mrs x2, spsr_el1
    stp x1, x2, [sp, #256]
    mrs x1, esr_el1
    mrs x2, far_el1
    stp x1, x2, [sp, #272]
    mrs x1, sp_el0
    stp x1, x0, [sp, #288]
    /* A frame record, so backtraces run on through the interrupted code. */
    ldr x1, [sp, #256]
    stp x29, x1, [sp, #304]
    add x29, sp, #304
    mov x1, x0
    mov x0, sp
    bl keel_aarch64_trap
    ldp x1, x2, [sp, #256]
    msr elr_el1, x1
    msr spsr_el1, x2
    ldr x0, [sp, #296]
    tbnz x0, #2, .Lreturn_to_app
    ldr x1, [sp, #288]
    msr sp_el0, x1
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    ldr x30, [sp, #240]
    /* Back to the interrupted stack pointer (it differs from the frame's
       top only on the emergency stack). */
    ldr x0, [sp, #{off_sp}]
    mov x1, sp
    mov sp, x0
    ldp x0, x1, [x1]
    eret
.Lreturn_to_app:
    ldr x1, [sp, #{off_sp}]
    msr sp_el0, x1
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    ldr x30, [sp, #240]
    ldp x0, x1, [sp]
    add sp, sp, #{frame}
    eret
"#,
    bottom = const OFFSET_KSTACK_BOTTOM,
    top = const OFFSET_KSTACK_TOP,
    emergency = const OFFSET_EMERGENCY_TOP,
    guard = const GUARD_SIZE,
    zone = const GUARD_SIZE + STACK_MARGIN,
    frame = const FRAME,
    off_sp = const 248,
    sync = const KIND_SYNC,
    irq = const KIND_IRQ,
    fiq = const KIND_FIQ,
    serror = const KIND_SERROR,
    from_app = const FROM_APP,
    lower = const FROM_LOWER_EL,
    aarch32 = const FROM_AARCH32,
    on_emergency = const ON_EMERGENCY_STACK,
    word = const OFFSET_THREAD_WORD,
);
