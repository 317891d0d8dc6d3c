//! From the firmware's big-endian, 32-bit, real-mode entry to Rust, and
//! from real mode to the kernel's translated address space.
//!
//! SLOF and VOF both jump to the first byte of the image (loaded at
//! physical `LOAD_PHYS`) in big-endian 32-bit mode with translation off,
//! r3/r4 = initrd address/size and r5 = the Open Firmware client
//! interface. The entry flips to little-endian (a sequence that reads as
//! a branch in one byte order and a no-op in the other), turns on 64-bit
//! mode and FP/VMX/VSX (the prebuilt libcore uses VSX), reads the
//! timebase (the boot clock starts here), sets the TOC pointer, zeroes
//! .bss and calls the platform on the boot stack — addressed physically,
//! because Open Firmware runs in 32-bit mode and keeps only the low half
//! of r1. Everything else works unchanged in real mode: the image is
//! linked at `KERNEL_BASE + physical`, and real-mode addressing ignores
//! the top four bits.

use core::arch::{asm, global_asm};

use crate::layout::{BOOT_STACK_SIZE, EMERGENCY_STACK_SIZE, KERNEL_BASE};
use crate::machine::percpu;

/// A stack's memory, aligned as the ABI wants the stack pointer.
#[repr(C, align(16))]
pub(crate) struct StackMemory<const N: usize>(pub(crate) [u8; N]);

/// The boot CPU's stack (it becomes CPU 0's idle thread stack). In
/// `.stacks`, which the entry does not zero.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".stacks")]
#[used]
static mut KEEL_BOOT_STACK: StackMemory<BOOT_STACK_SIZE> = StackMemory([0; BOOT_STACK_SIZE]);

/// The boot CPU's emergency trap stack.
#[unsafe(link_section = ".stacks")]
pub(crate) static mut BOOT_EMERGENCY_STACK: StackMemory<EMERGENCY_STACK_SIZE> =
    StackMemory([0; EMERGENCY_STACK_SIZE]);

/// Timebase at the first instruction (written before .bss is cleared, so
/// it lives in .data).
#[unsafe(no_mangle)]
#[used]
pub(crate) static mut KEEL_BOOT_TB: u64 = 1;

/// Boot stack bounds `[bottom, top)` (kernel virtual addresses).
pub fn boot_stack() -> (usize, usize) {
    let bottom = (&raw const KEEL_BOOT_STACK) as usize;
    (bottom, bottom + BOOT_STACK_SIZE)
}

/// The endianness fix-up. Read big-endian, the first word is `b .+8`,
/// which lands on a trampoline stored byte-swapped (so it reads right
/// big-endian) that sets MSR[LE] and returns to label 191 with `rfid`.
/// Read little-endian, the first word is `tdi 0,0,0x48` (never traps) and
/// the second branches over the trampoline. Uses r10 and r11.
macro_rules! fixup_endian {
    () => {
        "
    tdi 0, 0, 0x48
    b 191f
    .long 0xa600607d  /* mfmsr r11 */
    .long 0x01006b69  /* xori r11, r11, 1 (MSR[LE]) */
    .long 0x00004039  /* li r10, 0 */
    .long 0x6401417d  /* mtmsrd r10, 1 (EE = RI = 0) */
    .long 0x05009f42  /* bcl 20, 31, .+4 */
    .long 0xa602487d  /* mflr r10 */
    .long 0x14004a39  /* addi r10, r10, 20 (label 191) */
    .long 0xa6035a7d  /* mtsrr0 r10 */
    .long 0xa6037b7d  /* mtsrr1 r11 */
    .long 0x2400004c  /* rfid */
191:
"
    };
}
pub(crate) use fixup_endian;

/// Load the 64-bit address of `sym` into register `reg`.
macro_rules! load_address {
    ($reg:literal, $sym:literal) => {
        concat!(
            "lis ",
            $reg,
            ", ",
            $sym,
            "@highest\n",
            "ori ",
            $reg,
            ", ",
            $reg,
            ", ",
            $sym,
            "@higher\n",
            "rldicr ",
            $reg,
            ", ",
            $reg,
            ", 32, 31\n",
            "oris ",
            $reg,
            ", ",
            $reg,
            ", ",
            $sym,
            "@high\n",
            "ori ",
            $reg,
            ", ",
            $reg,
            ", ",
            $sym,
            "@l\n"
        )
    };
}
pub(crate) use load_address;

// MSR bits (numbered from the least significant).

/// Vector (VMX) available.
pub const MSR_VEC: u64 = 1 << 25;
/// VSX available.
pub const MSR_VSX: u64 = 1 << 23;
/// External interrupts enabled.
pub const MSR_EE: u64 = 1 << 15;
/// Floating point available.
pub const MSR_FP: u64 = 1 << 13;
/// Instruction translation.
pub const MSR_IR: u64 = 1 << 5;
/// Data translation.
pub const MSR_DR: u64 = 1 << 4;
/// Recoverable interrupt.
pub const MSR_RI: u64 = 1 << 1;

global_asm!(
    ".section .head.text, \"ax\"",
    ".globl keel_ppc64_entry",
    "keel_ppc64_entry:",
    fixup_endian!(),
    // Little-endian now, still 32-bit: 64-bit mode and FP/VMX/VSX.
    "mfmsr 11",
    "li 12, 1",
    "rldicr 12, 12, 63, 0",
    "or 11, 11, 12",
    "oris 11, 11, {vec_vsx}",
    "ori 11, 11, {fp}",
    "mtmsrd 11",
    "isync",
    "mftb 9",
    // The image only works where it is linked to run (see the module
    // comment): check, before any absolute address is used.
    "bcl 20, 31, .Lkeel_here",
    ".Lkeel_here:",
    "mflr 30",
    load_address!("11", ".Lkeel_here"),
    "clrldi 11, 11, 4",
    "cmpld 30, 11",
    "bne .Lkeel_misloaded",
    load_address!("2", ".TOC."),
    "addis 10, 2, KEEL_BOOT_TB@toc@ha",
    "std 9, KEEL_BOOT_TB@toc@l(10)",
    // Zero .bss (firmware loaders zero it too, but do not rely on that).
    load_address!("10", "__bss_start"),
    load_address!("11", "__bss_end"),
    "li 0, 0",
    "1:",
    "cmpld 10, 11",
    "bge 2f",
    "std 0, 0(10)",
    "addi 10, 10, 8",
    "b 1b",
    "2:",
    // The boot stack, addressed physically (top four bits cleared), with
    // a terminal frame whose back chain is 0.
    load_address!("1", "KEEL_BOOT_STACK"),
    "addis 1, 1, {stack_hi}",
    "addi 1, 1, {stack_lo}",
    "clrldi 1, 1, 4",
    "stdu 0, -32(1)",
    // SPRG0 points at the boot CPU's per-CPU block from the start.
    load_address!("10", "KEEL_PPC64_BOOT_PERCPU"),
    "mtspr 272, 10",
    // SPRG2 names the running thread once core sets it (firmware may
    // have left anything there).
    "li 10, 0",
    "mtspr 274, 10",
    "bl keel_ppc64_start",
    "nop",
    "trap",
    // Loaded elsewhere: say so on QEMU's usual vty (H_PUT_TERM_CHAR, 16
    // bytes a call, read big-endian with ldbrx) and stop. r30 = .Lkeel_here.
    ".Lkeel_misloaded:",
    "li 29, .Lkeel_message - .Lkeel_here",
    "li 31, 4",
    "3:",
    "li 3, 0x58",
    "lis 4, 0x7100",
    "li 5, 16",
    "ldbrx 6, 30, 29",
    "addi 29, 29, 8",
    "ldbrx 7, 30, 29",
    "addi 29, 29, 8",
    "sc 1",
    "addi 31, 31, -1",
    "cmpdi 31, 0",
    "bne 3b",
    "4:",
    "b 4b",
    ".Lkeel_message:",
    ".ascii \"keel: cannot boot: image is not at physical 4 MiB (kernel-addr)\\n\"",
    ".balign 4",
    vec_vsx = const (MSR_VEC | MSR_VSX) >> 16,
    fp = const MSR_FP,
    stack_hi = const (BOOT_STACK_SIZE >> 16),
    stack_lo = const (BOOT_STACK_SIZE & 0xffff),
);

// Calling big-endian, 32-bit firmware (Open Firmware's client interface):
// save what 32-bit code may clip (the high halves of non-volatile
// registers), return through the endianness fix-up, restore 64-bit mode.
// r3 = argument block (physical), r4 = firmware entry. Returns r3.
global_asm!(
    ".text",
    ".globl keel_ppc64_call_firmware_be32",
    "keel_ppc64_call_firmware_be32:",
    "mflr 0",
    "std 0, 16(1)",
    "stdu 1, -224(1)",
    "std 2, 32(1)",
    "std 13, 40(1)",
    "std 14, 48(1)",
    "std 15, 56(1)",
    "std 16, 64(1)",
    "std 17, 72(1)",
    "std 18, 80(1)",
    "std 19, 88(1)",
    "std 20, 96(1)",
    "std 21, 104(1)",
    "std 22, 112(1)",
    "std 23, 120(1)",
    "std 24, 128(1)",
    "std 25, 136(1)",
    "std 26, 144(1)",
    "std 27, 152(1)",
    "std 28, 160(1)",
    "std 29, 168(1)",
    "std 30, 176(1)",
    "std 31, 184(1)",
    "mfcr 10",
    "std 10, 192(1)",
    "mfmsr 11",
    "std 11, 200(1)",
    "mtsrr0 4",
    "bcl 20, 31, 3f",
    "3:",
    "mflr 4",
    "addi 4, 4, (4f - 3b)",
    "mtlr 4",
    // Big-endian, 32-bit: clear MSR[SF] and MSR[LE].
    "li 12, 1",
    "rldicr 12, 12, 63, 0",
    "ori 12, 12, 1",
    "andc 11, 11, 12",
    "mtsrr1 11",
    "rfid",
    "4:",
    fixup_endian!(),
    // The stack is below 4 GiB: clip whatever 32-bit code left above.
    "clrldi 1, 1, 32",
    "ld 0, 200(1)",
    "mtmsrd 0",
    "isync",
    "ld 2, 32(1)",
    "ld 13, 40(1)",
    "ld 14, 48(1)",
    "ld 15, 56(1)",
    "ld 16, 64(1)",
    "ld 17, 72(1)",
    "ld 18, 80(1)",
    "ld 19, 88(1)",
    "ld 20, 96(1)",
    "ld 21, 104(1)",
    "ld 22, 112(1)",
    "ld 23, 120(1)",
    "ld 24, 128(1)",
    "ld 25, 136(1)",
    "ld 26, 144(1)",
    "ld 27, 152(1)",
    "ld 28, 160(1)",
    "ld 29, 168(1)",
    "ld 30, 176(1)",
    "ld 31, 184(1)",
    "ld 10, 192(1)",
    "mtcr 10",
    "addi 1, 1, 224",
    "ld 0, 16(1)",
    "mtlr 0",
    "blr",
);

// Switch from real mode to translation on: r3 = new stack top (kernel
// virtual), r4 = where to continue (an `extern "C" fn() -> !`).
global_asm!(
    ".text",
    ".globl keel_ppc64_go_virtual",
    "keel_ppc64_go_virtual:",
    "clrrdi 1, 3, 4",
    "li 0, 0",
    "stdu 0, -32(1)",
    "mtsrr0 4",
    "mr 12, 4",
    "mfmsr 5",
    "ori 5, 5, {ir_dr}",
    "mtsrr1 5",
    "rfid",
    ir_dr = const MSR_IR | MSR_DR | MSR_RI,
);

unsafe extern "C" {
    fn keel_ppc64_call_firmware_be32(args: u32, entry: u32) -> u32;
    fn keel_ppc64_go_virtual(stack_top: usize, next: extern "C" fn() -> !) -> !;
    /// Start of the zeroed data (the linker script defines it).
    static __bss_start: u8;
    /// First byte after the kernel image.
    pub static __kernel_end: u8;
    /// Start of the exception vectors' bytes inside the image.
    pub(crate) static __vectors_load: u8;
    /// End of the exception vectors' bytes inside the image.
    pub(crate) static __vectors_end: u8;
}

/// Call big-endian 32-bit firmware (Open Firmware's client interface) at
/// `entry` with the argument block at physical address `args`.
///
/// # Safety
/// Real mode only; `args` must be a valid block for that firmware, and
/// the caller's stack must be addressed physically below 4 GiB.
pub unsafe fn call_firmware_be32(entry: u32, args: u32) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { keel_ppc64_call_firmware_be32(args, entry) }
}

/// Physical address of a kernel address (the image and the direct map).
pub fn kernel_phys(va: usize) -> u64 {
    (va - KERNEL_BASE) as u64
}

unsafe extern "Rust" {
    /// The platform's entry, called in real mode on the boot stack with
    /// the firmware's r3, r4, r5.
    fn keel_platform_main(r3: u64, r4: u64, r5: u64) -> !;
}

/// First Rust code: still in real mode.
#[unsafe(no_mangle)]
extern "C" fn keel_ppc64_start(r3: u64, r4: u64, r5: u64) -> ! {
    percpu::init_boot_block();
    // SAFETY: the platform linked into this image defines it.
    unsafe { keel_platform_main(r3, r4, r5) }
}

/// Leave real mode for good: continue at `next` on the boot stack, now
/// addressed virtually. Everything the platform learned must be in statics.
pub fn go_virtual(next: extern "C" fn() -> !) -> ! {
    let (_, top) = boot_stack();
    // SAFETY: the MMU is set up (see `paging::enable`); the boot stack is
    // abandoned here and restarts at its top.
    unsafe { keel_ppc64_go_virtual(top, next) }
}

/// Flush data cache lines to memory and invalidate instruction cache
/// lines for `[start, start+len)`, after writing code there.
pub fn sync_icache(start: usize, len: usize) {
    const LINE: usize = 128;
    let mut p = start & !(LINE - 1);
    while p < start + len {
        // SAFETY: cache maintenance on mapped memory the caller just wrote.
        unsafe { asm!("dcbst 0, {0}", in(reg) p, options(nostack)) };
        p += LINE;
    }
    // SAFETY: barrier only.
    unsafe { asm!("sync", options(nostack)) };
    p = start & !(LINE - 1);
    while p < start + len {
        // SAFETY: as above.
        unsafe { asm!("icbi 0, {0}", in(reg) p, options(nostack)) };
        p += LINE;
    }
    // SAFETY: barrier only.
    unsafe { asm!("sync", "isync", options(nostack)) };
}
