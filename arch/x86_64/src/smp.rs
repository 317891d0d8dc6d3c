//! Starting the other CPUs: INIT/STARTUP IPIs send each one through a
//! real-mode trampoline copied to physical 0x8000, via a temporary page
//! table that also maps that page, into Rust in the higher half.

use core::arch::global_asm;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use keel_hal::CpuIndex;
use keel_hal::boot::MAX_CPUS;
use keel_hal::smp::SmpError;

use crate::boot::root_table_phys;
use crate::layout::PHYS_MAP_BASE;
use crate::percpu::{self, PerCpu};
use crate::{apic, cpu, idt, tsc};

/// Physical page the trampoline runs from (platforms keep it out of the
/// frame allocator).
pub const TRAMPOLINE_PHYS: u64 = 0x8000;
const PARAMS: u64 = TRAMPOLINE_PHYS + 0xf00;

global_asm!(
    r#"
    .text
    .global keel_x86_64_ap_trampoline
    .global keel_x86_64_ap_trampoline_end
    .code16
keel_x86_64_ap_trampoline:
    cli
    cld
    xor ax, ax
    mov ds, ax
    /* lgdt [disp16] (the assembler cannot take a label difference here) */
    .byte 0x0f, 0x01, 0x16
    .word {base} + (.Lap_gdt_ptr - keel_x86_64_ap_trampoline)
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    /* ljmp 0x08:protected (32-bit offset) */
    .byte 0x66, 0xea
    .long {base} + (.Lap_protected - keel_x86_64_ap_trampoline)
    .word 0x08
    .code32
.Lap_protected:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, dword ptr [{params}]
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16)
    mov cr0, eax
    /* ljmp 0x18:long */
    .byte 0xea
    .long {base} + (.Lap_long - keel_x86_64_ap_trampoline)
    .word 0x18
    .code64
.Lap_long:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, qword ptr [{params} + 8]
    mov rdi, qword ptr [{params} + 24]
    mov rax, qword ptr [{params} + 16]
    xor ebp, ebp
    jmp rax
    .balign 8
.Lap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0x00af9a000000ffff
.Lap_gdt_ptr:
    .word 4 * 8 - 1
    .long {base} + (.Lap_gdt - keel_x86_64_ap_trampoline)
keel_x86_64_ap_trampoline_end:
    .code64

    .section .boot.bss, "aw", @nobits
    .balign 4096
    .global keel_x86_64_ap_pml4
keel_x86_64_ap_pml4: .skip 4096
    .text
"#,
    base = const TRAMPOLINE_PHYS,
    params = const PARAMS,
);

unsafe extern "C" {
    static keel_x86_64_ap_trampoline: u8;
    static keel_x86_64_ap_trampoline_end: u8;
    static keel_x86_64_ap_pml4: u8;
}

#[repr(C)]
struct Params {
    cr3: u64,
    stack_top: u64,
    entry: u64,
    index: u64,
}

static AP_BLOCKS: [AtomicPtr<PerCpu>; MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
static AP_STACKS: [(AtomicUsize, AtomicUsize); MAX_CPUS] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_CPUS];
static AP_ENTRY: AtomicUsize = AtomicUsize::new(0);
static READY: AtomicUsize = AtomicUsize::new(usize::MAX);

fn phys_ptr<T>(pa: u64) -> *mut T {
    (PHYS_MAP_BASE + pa as usize) as *mut T
}

/// Start CPU `index` (APIC id `apic_id`) on the given stack.
///
/// # Safety
/// See `keel_hal::Smp::start_cpu`.
pub unsafe fn start_cpu(
    index: CpuIndex,
    apic_id: u64,
    stack_bottom: usize,
    stack_top: usize,
    entry: fn(CpuIndex) -> !,
) -> Result<(), SmpError> {
    let blob_start = (&raw const keel_x86_64_ap_trampoline) as usize;
    let blob_len = (&raw const keel_x86_64_ap_trampoline_end) as usize - blob_start;
    assert!(blob_len < 0xf00, "AP trampoline overlaps its parameters");
    let ap_pml4_phys = (&raw const keel_x86_64_ap_pml4) as u64;
    let root = root_table_phys();
    // SAFETY: the trampoline page and the AP table are reserved for this
    // code; the root table is live and only read here; only one CPU starts
    // at a time (core starts them in turn).
    unsafe {
        core::ptr::copy_nonoverlapping(
            blob_start as *const u8,
            phys_ptr(TRAMPOLINE_PHYS),
            blob_len,
        );
        let ap_table: *mut u64 = phys_ptr(ap_pml4_phys);
        let real: *const u64 = phys_ptr(root);
        for i in 256..512 {
            ap_table.add(i).write_volatile(real.add(i).read_volatile());
        }
        // Slot 0 maps low memory 1:1 (the direct map's PDPT covers it).
        ap_table.write_volatile(real.add((PHYS_MAP_BASE >> 39) & 511).read_volatile());
        phys_ptr::<Params>(PARAMS).write_volatile(Params {
            cr3: ap_pml4_phys,
            stack_top: stack_top as u64,
            entry: ap_entry as *const () as u64,
            index: index as u64,
        });
    }
    AP_BLOCKS[index].store(PerCpu::new_secondary(index), Ordering::Release);
    AP_STACKS[index].0.store(stack_bottom, Ordering::Release);
    AP_STACKS[index].1.store(stack_top, Ordering::Release);
    AP_ENTRY.store(entry as usize, Ordering::Release);
    READY.store(usize::MAX, Ordering::Release);
    apic::send_init_sipi(apic_id as u32, (TRAMPOLINE_PHYS >> 12) as u8);
    let deadline = tsc::now_ns() + 1_000_000_000;
    while READY.load(Ordering::Acquire) != index {
        if tsc::now_ns() > deadline {
            return Err(SmpError::Timeout);
        }
        core::hint::spin_loop();
    }
    Ok(())
}

/// First Rust code on a secondary CPU (still on the temporary table).
extern "C" fn ap_entry(index: usize) -> ! {
    // SAFETY: the real root maps everything this CPU touches from here on
    // (kernel image, stacks, direct map); loading it also flushes the
    // temporary identity mapping.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) root_table_phys(), options(nostack)) };
    cpu::init_this_cpu();
    crate::app::init_this_cpu();
    let block = AP_BLOCKS[index].load(Ordering::Acquire);
    let stack = (
        AP_STACKS[index].0.load(Ordering::Acquire),
        AP_STACKS[index].1.load(Ordering::Acquire),
    );
    // SAFETY: the BSP leaked this block for this CPU alone.
    let block: &'static mut PerCpu = unsafe { &mut *block };
    block.install(stack);
    idt::load();
    apic::init_this_cpu();
    percpu::this().apic_id = apic::id();
    let entry = AP_ENTRY.load(Ordering::Acquire);
    READY.store(index, Ordering::Release);
    // SAFETY: `entry` was stored from a `fn(CpuIndex) -> !` by `start_cpu`.
    let entry: fn(CpuIndex) -> ! =
        unsafe { core::mem::transmute::<usize, fn(CpuIndex) -> !>(entry) };
    entry(index)
}
