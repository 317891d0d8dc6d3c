//! From the 32-bit protected-mode entry to Rust in the higher half.
//!
//! The platform's boot protocol entry (PVH for QEMU/Firecracker/Xen) jumps
//! to `keel_x86_64_entry32` in 32-bit protected mode with paging off and
//! its boot argument in `esi`. This code records the TSC (the boot-time
//! clock starts here), zeroes .bss, builds the boot page tables, enters
//! long mode and calls `keel_x86_64_start` on the boot stack. Those tables
//! stay the kernel's tables for good: 2 MiB pages mapping physical 0–4 GiB
//! at 0 (removed once all CPUs are up) and at the direct-map base, and
//! physical 0–2 GiB at the kernel image base.

use core::arch::global_asm;

use crate::layout::{BOOT_STACK_SIZE, KERNEL_BASE, PHYS_MAP_BASE};

/// A stack's memory, aligned as the ABI wants the stack pointer.
#[repr(C, align(16))]
struct StackMemory([u8; BOOT_STACK_SIZE]);

/// The boot CPU's stack (it becomes CPU 0's idle thread stack). In
/// `.stacks`, which the boot code does not zero: a stack needs no zeroing,
/// and zeroing 64 KiB is a visible slice of boot time under emulation.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".stacks")]
#[used]
static mut KEEL_BOOT_STACK: StackMemory = StackMemory([0; BOOT_STACK_SIZE]);

/// TSC value at the first instruction (written before .bss exists, so it
/// lives in .data).
#[unsafe(no_mangle)]
#[used]
pub(crate) static mut KEEL_BOOT_TSC: u64 = 1;

/// Boot stack bounds `[bottom, top)`.
pub fn boot_stack() -> (usize, usize) {
    let bottom = (&raw const KEEL_BOOT_STACK) as usize;
    (bottom, bottom + BOOT_STACK_SIZE)
}

global_asm!(
    r#"
    .section .boot.text, "ax"
    .code32
    .global keel_x86_64_entry32
keel_x86_64_entry32:
    cli
    cld
    rdtsc
    mov dword ptr [KEEL_BOOT_TSC - {kernel_base}], eax
    mov dword ptr [KEEL_BOOT_TSC - {kernel_base} + 4], edx

    /* Zero .bss (loaders differ on whether they do). */
    mov edi, offset __bss_start - {kernel_base}
    mov ecx, offset __bss_end - {kernel_base}
    sub ecx, edi
    shr ecx, 2
    xor eax, eax
    rep stosd

    /* Zero the boot tables: PML4, two PDPTs, four PDs. */
    mov edi, offset keel_boot_pml4
    mov ecx, 7 * 1024
    rep stosd

    /* Four PDs of 2 MiB pages: physical 0..4 GiB, present|write|large. */
    mov edi, offset keel_boot_pd
    mov eax, 0x83
    xor edx, edx
    mov ecx, 2048
.Lfill_pd:
    mov dword ptr [edi], eax
    mov dword ptr [edi + 4], edx
    add eax, 0x200000
    adc edx, 0
    add edi, 8
    loop .Lfill_pd

    /* Low PDPT: 4 entries -> the 4 PDs. Used for identity and direct map. */
    mov edi, offset keel_boot_pdpt_low
    mov eax, offset keel_boot_pd
    or eax, 3
    mov ecx, 4
.Lfill_pdpt:
    mov dword ptr [edi], eax
    add eax, 4096
    add edi, 8
    loop .Lfill_pdpt

    /* High PDPT: slots 510/511 -> PDs 0/1 (physical 0..2 GiB at KERNEL_BASE). */
    mov eax, offset keel_boot_pd
    or eax, 3
    mov dword ptr [keel_boot_pdpt_high + 510 * 8], eax
    add eax, 4096
    mov dword ptr [keel_boot_pdpt_high + 511 * 8], eax

    mov eax, offset keel_boot_pdpt_low
    or eax, 3
    mov dword ptr [keel_boot_pml4], eax
    mov dword ptr [keel_boot_pml4 + {phys_map_slot} * 8], eax
    mov eax, offset keel_boot_pdpt_high
    or eax, 3
    mov dword ptr [keel_boot_pml4 + 511 * 8], eax

    /* PAE, then the tables, then EFER.LME|NXE, then paging. */
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, offset keel_boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | 1
    mov cr0, eax

    lgdt [keel_boot_gdt_ptr]
    /* ljmp 0x08:keel_boot_long (encoded by hand: the assembler would
       pick a 16-bit push/retf form) */
    .byte 0xea
    .long keel_boot_long
    .word 0x08

    .code64
keel_boot_long:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    movabs rax, offset keel_boot_high
    jmp rax

    .section .boot.data, "aw"
    .balign 8
keel_boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
keel_boot_gdt_ptr:
    .word 3 * 8 - 1
    .quad keel_boot_gdt

    .section .boot.bss, "aw", @nobits
    .balign 4096
    .global keel_boot_pml4
keel_boot_pml4:      .skip 4096
keel_boot_pdpt_low:  .skip 4096
keel_boot_pdpt_high: .skip 4096
    .global keel_boot_pd
keel_boot_pd:        .skip 4 * 4096

    .text
keel_boot_high:
    movabs rsp, offset KEEL_BOOT_STACK + {boot_stack_size}
    xor ebp, ebp
    mov edi, esi
    call keel_x86_64_start
    ud2
"#,
    kernel_base = const KERNEL_BASE,
    phys_map_slot = const (PHYS_MAP_BASE >> 39) & 511,
    boot_stack_size = const BOOT_STACK_SIZE,
);

unsafe extern "C" {
    /// The boot PML4, which stays the kernel's root table.
    pub(crate) static keel_boot_pml4: [u64; 512];
}

/// Physical address of the root page table.
pub fn root_table_phys() -> u64 {
    (&raw const keel_boot_pml4) as u64
}
