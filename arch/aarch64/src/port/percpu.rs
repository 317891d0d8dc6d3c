//! Per-CPU data, reached through TPIDR_EL1. Apps run at EL1 too but have
//! no reason to touch TPIDR_EL1 (Linux gives them TPIDR_EL0 for TLS), so
//! it always points at the running CPU's block.

use alloc::boxed::Box;
use core::arch::asm;
use core::mem::offset_of;

use super::boot::{BOOT_EMERGENCY_STACK, StackMemory};
use super::layout::EMERGENCY_STACK_SIZE;

/// One CPU's block. The first fields have fixed offsets the vectors use.
#[repr(C)]
pub struct PerCpu {
    /// Top of the running thread's kernel stack (traps from app code land
    /// below it).
    pub kstack_top: usize,
    /// Bottom of the running thread's kernel stack (above its guard page).
    pub kstack_bottom: usize,
    /// Top of this CPU's emergency stack.
    pub emergency_top: usize,
    /// Dense CPU index.
    pub index: usize,
    /// The scheduler's running-thread word (also in SP_EL0 while kernel
    /// code runs; traps from app code reload SP_EL0 from here).
    pub thread_word: usize,
    /// This CPU's MPIDR affinity (Aff3..Aff0).
    pub mpidr: u64,
    /// GICv2: this CPU's interface bit (for SGI and SPI targets).
    pub gic_cpu_mask: u8,
    /// GICv3: this CPU's redistributor (virtual address of RD_base).
    pub redistributor: usize,
}

/// Offsets the vector code uses.
pub const OFFSET_KSTACK_TOP: usize = offset_of!(PerCpu, kstack_top);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_KSTACK_BOTTOM: usize = offset_of!(PerCpu, kstack_bottom);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_EMERGENCY_TOP: usize = offset_of!(PerCpu, emergency_top);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_INDEX: usize = offset_of!(PerCpu, index);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_THREAD_WORD: usize = offset_of!(PerCpu, thread_word);

const _: () = assert!(
    OFFSET_KSTACK_TOP == 0
        && OFFSET_KSTACK_BOTTOM == 8
        && OFFSET_EMERGENCY_TOP == 16
        && OFFSET_INDEX == 24
        && OFFSET_THREAD_WORD == 32
);

impl PerCpu {
    const fn empty() -> Self {
        Self {
            kstack_top: 0,
            kstack_bottom: 0,
            emergency_top: 0,
            index: 0,
            thread_word: 0,
            mpidr: 0,
            gic_cpu_mask: 0,
            redistributor: 0,
        }
    }

    /// A block for secondary CPU `index`, with its emergency stack, on the
    /// heap, never freed.
    pub fn new_secondary(index: usize, stack: (usize, usize)) -> &'static mut PerCpu {
        let emergency: &'static mut StackMemory<EMERGENCY_STACK_SIZE> =
            Box::leak(Box::new(StackMemory([0; EMERGENCY_STACK_SIZE])));
        let block = Box::leak(Box::new(PerCpu::empty()));
        block.index = index;
        block.kstack_bottom = stack.0;
        block.kstack_top = stack.1;
        block.emergency_top = emergency.0.as_ptr() as usize + EMERGENCY_STACK_SIZE;
        block
    }
}

/// The boot CPU's block (TPIDR_EL1 points here from the first Rust code).
#[unsafe(no_mangle)]
static mut KEEL_AARCH64_BOOT_PERCPU: PerCpu = PerCpu::empty();

/// Fill in the boot CPU's block (the entry code already installed it).
pub fn init_boot(stack: (usize, usize)) {
    let me = this();
    me.index = 0;
    me.kstack_bottom = stack.0;
    me.kstack_top = stack.1;
    me.emergency_top = (&raw const BOOT_EMERGENCY_STACK) as usize + EMERGENCY_STACK_SIZE;
    me.mpidr = super::cpu::mpidr();
}

/// The calling CPU's dense index.
#[inline]
pub fn cpu_index() -> usize {
    let v: usize;
    // SAFETY: TPIDR_EL1 points at this CPU's block from the entry code on;
    // the field offset is checked at compile time above.
    unsafe {
        asm!(
            "mrs {v}, tpidr_el1",
            "ldr {v}, [{v}, #{off}]",
            v = out(reg) v,
            off = const OFFSET_INDEX,
            options(nostack, readonly, preserves_flags)
        )
    };
    v
}

/// The calling CPU's block.
#[inline]
pub fn this() -> &'static mut PerCpu {
    let v: usize;
    // SAFETY: as in `cpu_index`. Each CPU only touches its own block,
    // with interrupts masked where it matters (the arch's callers).
    unsafe {
        asm!("mrs {}, tpidr_el1", out(reg) v, options(nostack, nomem, preserves_flags));
        &mut *(v as *mut PerCpu)
    }
}
