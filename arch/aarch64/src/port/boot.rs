//! From the loader's jump to Rust in the higher half.
//!
//! The platform's boot protocol entry (the arm64 Image header, or an ELF
//! entry point) branches to `keel_aarch64_entry` with the MMU off, at EL2
//! or EL1, x0 = physical address of the DTB (0 if none). This code:
//!
//! 1. reads the virtual counter (the boot clock starts here);
//! 2. at EL2, makes EL1 usable (AArch64, timers, GICv3 system registers,
//!    FP/SIMD/SVE not trapped, pointer authentication not trapped) and
//!    drops to EL1;
//! 3. builds the boot page tables wherever the loader put the image (it
//!    must sit on a 2 MiB boundary, as the arm64 boot protocol demands):
//!    the image at `KERNEL_BASE`, the fixmap's table, the direct-map
//!    gigabytes holding the image and the DTB, and an identity map of the
//!    image's gigabyte to switch the MMU on from;
//! 4. turns the MMU on, jumps to the higher half, zeroes .bss, and calls
//!    `keel_aarch64_start` on the boot stack with the vectors installed.
//!
//! Secondary CPUs enter `keel_aarch64_secondary_entry` (PSCI CPU_ON, MMU
//! off, their index in x0) and reuse steps 2 and 4 with the tables built.

use core::arch::global_asm;

use super::layout::{BOOT_STACK_SIZE, EMERGENCY_STACK_SIZE, GIB, KERNEL_BASE};
use super::mmu::{
    ATTR_INDEX_NORMAL, BLOCK, DESCRIPTOR_ACCESS, DESCRIPTOR_INNER_SHARE, DESCRIPTOR_PXN,
    DESCRIPTOR_UXN, MAIR_VALUE, SCTLR_MMU_OFF, SCTLR_MMU_ON, TABLE, TCR_VALUE,
};

/// A stack's memory, aligned as the ABI wants the stack pointer.
#[repr(C, align(16))]
pub(crate) struct StackMemory<const N: usize>(pub(crate) [u8; N]);

/// The boot CPU's stack (it becomes CPU 0's idle thread stack). In
/// `.stacks`, which nothing zeroes: a stack needs no zeroing.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".stacks")]
#[used]
static mut KEEL_AARCH64_BOOT_STACK: StackMemory<BOOT_STACK_SIZE> =
    StackMemory([0; BOOT_STACK_SIZE]);

/// The boot CPU's emergency stack (see `vectors`).
#[unsafe(link_section = ".stacks")]
pub(crate) static mut BOOT_EMERGENCY_STACK: StackMemory<EMERGENCY_STACK_SIZE> =
    StackMemory([0; EMERGENCY_STACK_SIZE]);

/// What the entry code learned, stored once .bss is zeroed.
#[repr(C)]
pub(crate) struct BootState {
    /// CNTVCT_EL0 at the first instruction (rebased to CNTVOFF_EL2 = 0).
    pub first_count: u64,
    /// Physical address the image was loaded at.
    pub load_phys: u64,
    /// Exception level the kernel was entered at (1 or 2).
    pub entered_el: u64,
}

/// The boot state, written by the entry code (through the symbol) before
/// any Rust runs.
#[repr(transparent)]
pub(crate) struct BootStateCell(core::cell::UnsafeCell<BootState>);

// SAFETY: written once by the entry code on the boot CPU before any Rust
// code (or another CPU) runs; read-only afterwards.
unsafe impl Sync for BootStateCell {}

#[unsafe(no_mangle)]
pub(crate) static KEEL_AARCH64_BOOT_STATE: BootStateCell =
    BootStateCell(core::cell::UnsafeCell::new(BootState {
        first_count: 0,
        load_phys: 0,
        entered_el: 0,
    }));

/// Boot stack bounds `[bottom, top)`.
pub fn boot_stack() -> (usize, usize) {
    let bottom = (&raw const KEEL_AARCH64_BOOT_STACK) as usize;
    (bottom, bottom + BOOT_STACK_SIZE)
}

/// The boot state (read-only after boot).
pub(crate) fn state() -> &'static BootState {
    // SAFETY: written once by the entry code before any Rust ran; only read since.
    unsafe { &*KEEL_AARCH64_BOOT_STATE.0.get() }
}

/// Where secondary CPUs find their stack and per-CPU block, by index.
#[repr(C)]
pub(crate) struct CpuStart {
    pub stack_top: u64,
    pub percpu: u64,
}

#[unsafe(no_mangle)]
pub(crate) static mut KEEL_AARCH64_CPU_START: [CpuStart; keel_hal::boot::MAX_CPUS] = [const {
    CpuStart {
        stack_top: 0,
        percpu: 0,
    }
};
    keel_hal::boot::MAX_CPUS];

const KERNEL_BLOCK: u64 =
    BLOCK | ATTR_INDEX_NORMAL | DESCRIPTOR_INNER_SHARE | DESCRIPTOR_ACCESS | DESCRIPTOR_UXN;
const DIRECT_BLOCK: u64 = KERNEL_BLOCK | DESCRIPTOR_PXN;
const IDENTITY_BLOCK: u64 = KERNEL_BLOCK;

global_asm!(
    r#"
    .text
    .balign 4
    .global keel_aarch64_entry
keel_aarch64_entry:
    mrs x19, cntvct_el0
    mov x20, x0
    bl keel_aarch64_drop_to_el1
    mov x21, x0
    adrp x22, __kernel_start
    add x22, x22, :lo12:__kernel_start
    tst x22, #0x1fffff
    b.ne .Lboot_stuck
    mov x0, x22
    mov x1, x20
    bl keel_aarch64_build_tables
    adrp x0, keel_aarch64_identity_root
    adrp x1, keel_aarch64_kernel_root
    bl keel_aarch64_mmu_on
    ldr x0, =.Lboot_high
    br x0
.Lboot_stuck:
    /* Misaligned image (the boot protocol wants 2 MiB) or an unsupported
       exception level: nothing can be reported without a console. */
    wfe
    b .Lboot_stuck

.Lboot_high:
    ldr x0, =__bss_start
    ldr x1, =__bss_end
1:  cmp x0, x1
    b.hs 2f
    stp xzr, xzr, [x0], #16
    b 1b
2:  ldr x0, =KEEL_AARCH64_BOOT_STACK + {boot_stack_size}
    mov sp, x0
    ldr x0, =keel_aarch64_vectors
    msr vbar_el1, x0
    mov x0, #(3 << 20)
    msr cpacr_el1, x0
    ldr x0, =KEEL_AARCH64_BOOT_PERCPU
    msr tpidr_el1, x0
    /* No running thread yet (see running_thread_word). */
    msr sp_el0, xzr
    isb
    /* SErrors are reported from now on (IRQ and FIQ stay masked). */
    msr daifclr, #4
    ldr x0, =KEEL_AARCH64_BOOT_STATE
    stp x19, x22, [x0]
    str x21, [x0, #16]
    mov x29, xzr
    mov x30, xzr
    mov x0, x20
    bl keel_aarch64_start
    b .Lboot_stuck

    .global keel_aarch64_secondary_entry
keel_aarch64_secondary_entry:
    mov x20, x0
    cmp x20, #{max_cpus}
    b.hs .Lboot_stuck
    bl keel_aarch64_drop_to_el1
    adrp x0, keel_aarch64_identity_root
    adrp x1, keel_aarch64_kernel_root
    bl keel_aarch64_mmu_on
    ldr x0, =.Lsecondary_high
    br x0
.Lsecondary_high:
    ldr x1, =KEEL_AARCH64_CPU_START
    add x1, x1, x20, lsl #4
    ldp x2, x3, [x1]
    mov sp, x2
    msr tpidr_el1, x3
    msr sp_el0, xzr
    ldr x0, =keel_aarch64_vectors
    msr vbar_el1, x0
    mov x0, #(3 << 20)
    msr cpacr_el1, x0
    isb
    msr daifclr, #4
    mov x29, xzr
    mov x30, xzr
    mov x0, x20
    bl keel_aarch64_secondary_start
    b .Lboot_stuck

/* Returns x0 = the exception level entered at (1 or 2), at EL1. At EL2 it
   rebases x19 (a CNTVCT reading) to CNTVOFF_EL2 = 0. Uses x0-x3. */
keel_aarch64_drop_to_el1:
    mrs x0, CurrentEL
    lsr x0, x0, #2
    cmp x0, #1
    b.eq 9f
    cmp x0, #2
    b.ne .Lboot_stuck
    mrs x1, cntvoff_el2
    add x19, x19, x1
    msr cntvoff_el2, xzr
    /* EL1 may use the physical counter and timer. */
    mov x1, #3
    msr cnthctl_el2, x1
    /* EL1 is AArch64; pointer authentication is not trapped. */
    mov x1, #(1 << 31)
    mrs x2, id_aa64isar1_el1
    ubfx x3, x2, #4, #8
    mrs x2, s3_0_c0_c6_2
    ubfx x2, x2, #12, #4
    orr x3, x3, x2
    cbz x3, 3f
    orr x1, x1, #(3 << 40)
3:  msr hcr_el2, x1
    /* FP/SIMD not trapped; SVE and SME trap to EL1 (CPACR), not here. */
    mov x1, #0x33ff
    mrs x2, id_aa64pfr0_el1
    ubfx x3, x2, #32, #4
    cbz x3, 4f
    bic x1, x1, #(1 << 8)
4:  mrs x3, id_aa64pfr1_el1
    ubfx x3, x3, #24, #4
    cbz x3, 5f
    bic x1, x1, #(1 << 12)
5:  msr cptr_el2, x1
    msr hstr_el2, xzr
    /* GICv3 system registers usable at EL1. */
    ubfx x3, x2, #24, #4
    cbz x3, 6f
    mrs x1, icc_sre_el2
    orr x1, x1, #1
    orr x1, x1, #8
    msr icc_sre_el2, x1
    isb
    msr ich_hcr_el2, xzr
6:  msr vttbr_el2, xzr
    ldr x1, ={sctlr_off}
    msr sctlr_el1, x1
    mov x1, #0x3c5
    msr spsr_el2, x1
    msr elr_el2, x30
    mov x0, #2
    eret
9:  ret

/* x0 = physical load address (2 MiB aligned), x1 = DTB physical address
   or 0. Zeroes and fills the boot tables. Uses x0-x15. */
keel_aarch64_build_tables:
    adrp x2, __boot_tables_start
    adrp x3, __boot_tables_end
    mov x4, x2
1:  stp xzr, xzr, [x4], #16
    cmp x4, x3
    b.lo 1b
    adrp x5, keel_aarch64_kernel_root
    adrp x6, keel_aarch64_direct_l1
    adrp x7, keel_aarch64_kernel_l1
    adrp x8, keel_aarch64_kernel_l2
    adrp x9, keel_aarch64_fixmap_l3
    adrp x10, keel_aarch64_identity_root
    adrp x11, keel_aarch64_identity_l1
    /* Upper half: slot 0 is the direct map, slot 511 the kernel. */
    orr x12, x6, #{table}
    str x12, [x5]
    orr x12, x7, #{table}
    str x12, [x5, #511 * 8]
    orr x12, x8, #{table}
    str x12, [x7, #{kernel_l1_index} * 8]
    orr x12, x9, #{table}
    str x12, [x8, #511 * 8]
    /* The image, in 2 MiB blocks (at most 511 of them). */
    ldr x13, =keel_aarch64_image_size
    sub x13, x13, #1
    lsr x13, x13, #21
    add x13, x13, #1
    cmp x13, #511
    b.hi .Lboot_stuck
    ldr x14, ={kernel_block}
    orr x14, x14, x0
    mov x12, x8
2:  str x14, [x12], #8
    add x14, x14, #0x200000
    subs x13, x13, #1
    b.ne 2b
    /* Direct map: the gigabytes of the image's first and last byte and of
       the DTB (the rest of RAM is added once the DTB has been read). */
    ldr x14, ={direct_block}
    ldr x13, =keel_aarch64_image_size
    add x13, x13, x0
    sub x13, x13, #1
    lsr x13, x13, #30
    lsr x12, x0, #30
    cmp x12, #512
    b.hs 3f
    orr x15, x14, x12, lsl #30
    str x15, [x6, x12, lsl #3]
    cmp x13, #512
    b.hs 3f
    orr x15, x14, x13, lsl #30
    str x15, [x6, x13, lsl #3]
3:  cbz x1, 4f
    lsr x12, x1, #30
    cmp x12, #512
    b.hs 4f
    orr x15, x14, x12, lsl #30
    str x15, [x6, x12, lsl #3]
4:  /* Identity map of the image's gigabyte(s), to turn the MMU on from. */
    lsr x12, x0, #39
    and x12, x12, #511
    orr x15, x11, #{table}
    str x15, [x10, x12, lsl #3]
    ldr x14, ={identity_block}
    lsr x12, x0, #30
    and x12, x12, #511
    lsr x15, x0, #30
    orr x15, x14, x15, lsl #30
    str x15, [x11, x12, lsl #3]
    and x13, x13, #511
    ldr x15, =keel_aarch64_image_size
    add x15, x15, x0
    sub x15, x15, #1
    lsr x15, x15, #30
    orr x15, x14, x15, lsl #30
    str x15, [x11, x13, lsl #3]
    /* The tables were written with the data cache off: drop any stale
       cached copies before the table walker reads them cacheably. */
    dsb sy
    mrs x4, ctr_el0
    ubfx x4, x4, #16, #4
    mov x12, #4
    lsl x4, x12, x4
    mov x12, x2
5:  dc ivac, x12
    add x12, x12, x4
    cmp x12, x3
    b.lo 5b
    dsb sy
    ret

/* x0 = TTBR0 root, x1 = TTBR1 root (physical). Turns the MMU and caches
   on; returns through the identity map. Uses x0-x3. */
keel_aarch64_mmu_on:
    ldr x2, ={mair}
    msr mair_el1, x2
    mrs x2, id_aa64mmfr0_el1
    and x2, x2, #0xf
    mov x3, #5
    cmp x2, x3
    csel x2, x2, x3, ls
    ldr x3, ={tcr}
    orr x3, x3, x2, lsl #32
    msr tcr_el1, x3
    msr ttbr0_el1, x0
    msr ttbr1_el1, x1
    isb
    tlbi vmalle1
    dsb nsh
    isb
    ldr x2, ={sctlr_on}
    msr sctlr_el1, x2
    isb
    ic iallu
    dsb nsh
    isb
    ret
    .ltorg

    .section .boot_tables, "aw", @nobits
    .balign 4096
    .global __boot_tables_start
__boot_tables_start:
    .global keel_aarch64_kernel_root
keel_aarch64_kernel_root:   .skip 4096
    .global keel_aarch64_direct_l1
keel_aarch64_direct_l1:     .skip 4096
keel_aarch64_kernel_l1:     .skip 4096
keel_aarch64_kernel_l2:     .skip 4096
    .global keel_aarch64_fixmap_l3
keel_aarch64_fixmap_l3:     .skip 4096
    .global keel_aarch64_identity_root
keel_aarch64_identity_root: .skip 4096
keel_aarch64_identity_l1:   .skip 4096
    .global keel_aarch64_app_root
keel_aarch64_app_root:      .skip 4096
    .global __boot_tables_end
__boot_tables_end:
    .text
"#,
    boot_stack_size = const BOOT_STACK_SIZE,
    max_cpus = const keel_hal::boot::MAX_CPUS,
    table = const TABLE,
    kernel_l1_index = const (KERNEL_BASE >> 30) & 511,
    kernel_block = const KERNEL_BLOCK,
    direct_block = const DIRECT_BLOCK,
    identity_block = const IDENTITY_BLOCK,
    mair = const MAIR_VALUE,
    tcr = const TCR_VALUE,
    sctlr_on = const SCTLR_MMU_ON,
    sctlr_off = const SCTLR_MMU_OFF,
);

const _: () = assert!(KERNEL_BASE & (GIB as usize - 1) == 0);
