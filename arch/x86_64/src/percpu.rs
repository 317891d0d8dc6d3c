//! Per-CPU data, reached through the GS base. Apps run at CPL0 in the same
//! address space but never get to change GS (FSGSBASE stays disabled), so
//! GS always points at the running CPU's block.

use alloc::boxed::Box;
use core::arch::asm;
use core::mem::offset_of;

use x86_64::registers::model_specific::GsBase;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

use crate::layout::IST_STACK_SIZE;

/// IST slots (1-based in the IDT, 0-based in the TSS).
pub const IST_ENTRY: u16 = 1;
/// NMI stack.
pub const IST_NMI: u16 = 2;
/// Double-fault stack.
pub const IST_DOUBLE_FAULT: u16 = 3;
/// Machine-check stack.
pub const IST_MACHINE_CHECK: u16 = 4;

#[repr(C, align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

/// One CPU's block. The first fields have fixed offsets the assembly uses.
#[repr(C)]
pub struct PerCpu {
    self_ptr: usize,
    /// Top of the running thread's kernel stack (traps land below it).
    pub kstack_top: usize,
    /// Bottom of the running thread's kernel stack.
    pub kstack_bottom: usize,
    /// Scratch slot for entry code.
    pub scratch: usize,
    /// Dense CPU index.
    pub index: usize,
    /// Core's word naming the running thread (see `Cpu::running_thread_word`).
    pub running_thread: usize,
    /// Local APIC id.
    pub apic_id: u32,
    tss: TaskStateSegment,
    gdt: GlobalDescriptorTable<8>,
    ist: *mut [IstStack; 4],
}

/// Offsets the trap and syscall entry code uses.
pub const OFFSET_KSTACK_TOP: usize = offset_of!(PerCpu, kstack_top);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_KSTACK_BOTTOM: usize = offset_of!(PerCpu, kstack_bottom);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_INDEX: usize = offset_of!(PerCpu, index);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_RUNNING_THREAD: usize = offset_of!(PerCpu, running_thread);

const _: () = assert!(OFFSET_KSTACK_TOP == 8 && OFFSET_KSTACK_BOTTOM == 16 && OFFSET_INDEX == 32);

/// The boot CPU's block and IST stacks (before the heap exists). The
/// stacks are separate so they stay in .bss (the TSS is not all zeros).
static mut BOOT_CPU: PerCpu = PerCpu::empty();
#[unsafe(link_section = ".stacks")]
static mut BOOT_IST: [IstStack; 4] = [const { IstStack([0; IST_STACK_SIZE]) }; 4];

/// Code segment selector in every CPU's GDT.
pub const KERNEL_CS: u16 = 0x08;
/// Data segment selector in every CPU's GDT.
pub const KERNEL_DS: u16 = 0x10;

impl PerCpu {
    const fn empty() -> Self {
        Self {
            self_ptr: 0,
            kstack_top: 0,
            kstack_bottom: 0,
            scratch: 0,
            index: 0,
            running_thread: 0,
            apic_id: 0,
            tss: TaskStateSegment::new(),
            gdt: GlobalDescriptorTable::empty(),
            ist: core::ptr::null_mut(),
        }
    }

    /// A block for a secondary CPU, on the heap, never freed.
    pub fn new_secondary(index: usize) -> &'static mut PerCpu {
        let mut b: Box<PerCpu> = Box::new(PerCpu::empty());
        b.index = index;
        b.ist = Box::leak(Box::new([const { IstStack([0; IST_STACK_SIZE]) }; 4]));
        Box::leak(b)
    }

    /// The boot CPU's block.
    pub fn boot() -> &'static mut PerCpu {
        let cpu = &raw mut BOOT_CPU;
        // SAFETY: only the boot CPU calls this, once, during early boot, so
        // this is the only reference to the block.
        unsafe {
            (*cpu).ist = &raw mut BOOT_IST;
            &mut *cpu
        }
    }

    /// Install this block on the calling CPU: GDT with TSS and IST stacks,
    /// segment registers, and the GS base.
    pub fn install(&'static mut self, kstack: (usize, usize)) {
        self.self_ptr = self as *const PerCpu as usize;
        self.kstack_bottom = kstack.0;
        self.kstack_top = kstack.1;
        for slot in 0..4 {
            // SAFETY: `ist` points at this CPU's four stacks (set by `boot`
            // or `new_secondary`); only their addresses are taken.
            let base = unsafe { (&raw const (*self.ist)[slot]) as u64 };
            let top = base + IST_STACK_SIZE as u64;
            self.tss.interrupt_stack_table[slot] = x86_64::VirtAddr::new(top);
        }
        let me: *mut PerCpu = self;
        // SAFETY: the block is 'static and never moves; the TSS and GDT are
        // only referenced by the CPU from now on.
        let (tss, gdt) = unsafe { (&(*me).tss, &mut (*me).gdt) };
        let cs = gdt.append(Descriptor::kernel_code_segment());
        let ds = gdt.append(Descriptor::kernel_data_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment(tss));
        debug_assert_eq!((cs.0, ds.0), (KERNEL_CS, KERNEL_DS));
        // SAFETY: the block lives for ever (leaked or static).
        let gdt: &'static GlobalDescriptorTable<8> = unsafe { &(*me).gdt };
        gdt.load();
        // SAFETY: the selectors index descriptors of the GDT just loaded.
        unsafe {
            use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
            CS::set_reg(SegmentSelector(KERNEL_CS));
            DS::set_reg(SegmentSelector(KERNEL_DS));
            ES::set_reg(SegmentSelector(KERNEL_DS));
            SS::set_reg(SegmentSelector(KERNEL_DS));
            x86_64::instructions::tables::load_tss(tss_sel);
        }
        GsBase::write(x86_64::VirtAddr::new(me as u64));
    }
}

/// The calling CPU's dense index.
#[inline]
pub fn cpu_index() -> usize {
    let v: usize;
    // SAFETY: GS points at this CPU's block from `install` on; the field
    // offset is checked at compile time above.
    unsafe {
        asm!("mov {}, gs:[{off}]", out(reg) v, off = const OFFSET_INDEX, options(nostack, readonly, preserves_flags))
    };
    v
}

/// The running thread's word (one `gs:` load: never torn by a migration).
#[inline]
pub fn running_thread() -> usize {
    let v: usize;
    // SAFETY: as in `cpu_index`.
    unsafe {
        asm!("mov {}, gs:[{off}]", out(reg) v, off = const OFFSET_RUNNING_THREAD, options(nostack, readonly, preserves_flags))
    };
    v
}

/// Set the running thread's word.
#[inline]
pub fn set_running_thread(word: usize) {
    // SAFETY: as in `cpu_index`; the slot is this CPU's own.
    unsafe {
        asm!("mov gs:[{off}], {}", in(reg) word, off = const OFFSET_RUNNING_THREAD, options(nostack, preserves_flags))
    };
}

/// The calling CPU's block.
#[inline]
pub fn this() -> &'static mut PerCpu {
    let v: usize;
    // SAFETY: as in `cpu_index`; slot 0 is the block's own address.
    unsafe {
        asm!("mov {}, gs:[0]", out(reg) v, options(nostack, readonly, preserves_flags));
        &mut *(v as *mut PerCpu)
    }
}
