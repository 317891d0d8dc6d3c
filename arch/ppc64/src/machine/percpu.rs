//! Per-CPU data, reached through SPRG0. Apps run in supervisor state in
//! the same address space, and r13 is theirs (the Linux ABI's thread
//! pointer), so the kernel never relies on r13: SPRG0 holds the running
//! CPU's block from its first instruction, and trap entry uses SPRG1 and
//! the block's scratch slots to get a foothold before it saves anything.

use alloc::boxed::Box;
use core::arch::asm;
use core::mem::offset_of;
use core::sync::atomic::{AtomicU32, AtomicU64};

use crate::layout::EMERGENCY_STACK_SIZE;
use crate::machine::boot::{BOOT_EMERGENCY_STACK, StackMemory};

/// One CPU's block. The first fields have fixed offsets the assembly uses.
#[repr(C)]
pub struct PerCpu {
    self_ptr: usize,
    /// Top of the running thread's kernel stack (traps land below it).
    pub kstack_top: usize,
    /// Bottom of the running thread's kernel stack.
    pub kstack_bottom: usize,
    /// Dense CPU index.
    pub index: usize,
    /// Trap entry scratch: r10, r11, r12, CR.
    scratch: [usize; 4],
    /// Top of this CPU's emergency trap stack.
    emergency_top: usize,
    /// SRR0/SRR1 saved by the real-mode vectors before turning translation on.
    real_srr: [usize; 2],
    /// Where the real-mode vectors continue (kernel virtual).
    from_real: usize,
    /// XICS server number (the interrupt controller's name for this CPU).
    pub server: u32,
    /// IPIs waiting to be handled, one bit per `Ipi`.
    pub ipi_pending: AtomicU32,
    /// One-shot timer deadline in timebase ticks (`u64::MAX` = disarmed).
    pub deadline_tb: AtomicU64,
}

/// Offsets the trap entry code uses.
pub const OFFSET_KSTACK_TOP: usize = offset_of!(PerCpu, kstack_top);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_KSTACK_BOTTOM: usize = offset_of!(PerCpu, kstack_bottom);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_INDEX: usize = offset_of!(PerCpu, index);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_SCRATCH: usize = offset_of!(PerCpu, scratch);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_EMERGENCY_TOP: usize = offset_of!(PerCpu, emergency_top);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_REAL_SRR: usize = offset_of!(PerCpu, real_srr);
/// See [`OFFSET_KSTACK_TOP`].
pub const OFFSET_FROM_REAL: usize = offset_of!(PerCpu, from_real);

const _: () = assert!(OFFSET_KSTACK_TOP == 8 && OFFSET_KSTACK_BOTTOM == 16 && OFFSET_INDEX == 24);

impl PerCpu {
    const fn empty() -> Self {
        Self {
            self_ptr: 0,
            kstack_top: 0,
            kstack_bottom: 0,
            index: 0,
            scratch: [0; 4],
            emergency_top: 0,
            real_srr: [0; 2],
            from_real: 0,
            server: 0,
            ipi_pending: AtomicU32::new(0),
            deadline_tb: AtomicU64::new(u64::MAX),
        }
    }

    /// A block for a secondary CPU, on the heap (in the direct map, so
    /// the real-mode vectors can reach it too), never freed.
    pub fn new_secondary(index: usize, server: u32) -> &'static mut PerCpu {
        let stack: &'static mut StackMemory<EMERGENCY_STACK_SIZE> =
            Box::leak(Box::new(StackMemory([0; EMERGENCY_STACK_SIZE])));
        let mut b = Box::new(PerCpu::empty());
        b.index = index;
        b.server = server;
        b.emergency_top = stack.0.as_ptr() as usize + EMERGENCY_STACK_SIZE;
        let b = Box::leak(b);
        b.self_ptr = b as *const PerCpu as usize;
        b.from_real = crate::machine::trap_entry::from_real_address();
        b
    }

    /// Address of the block (what SPRG0 holds).
    pub fn address(&self) -> usize {
        self as *const PerCpu as usize
    }
}

/// The boot CPU's block (before the heap exists).
#[unsafe(no_mangle)]
static mut KEEL_PPC64_BOOT_PERCPU: PerCpu = PerCpu::empty();

/// Fill in the boot CPU's block (SPRG0 already points at it).
pub fn init_boot_block() {
    let b = &raw mut KEEL_PPC64_BOOT_PERCPU;
    // SAFETY: only the boot CPU runs, once, before anything else reads it.
    unsafe {
        (*b).self_ptr = b as usize;
        (*b).emergency_top = (&raw const BOOT_EMERGENCY_STACK) as usize + EMERGENCY_STACK_SIZE;
        (*b).from_real = crate::machine::trap_entry::from_real_address();
    }
}

/// The calling CPU's dense index.
#[inline]
pub fn cpu_index() -> usize {
    let v: usize;
    // SAFETY: SPRG0 points at this CPU's block from its first instruction;
    // the offset is checked at compile time above.
    unsafe {
        asm!(
            "mfspr {0}, 272",
            "ld {0}, {off}({0})",
            out(reg_nonzero) v,
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
    // SAFETY: as in `cpu_index`.
    unsafe {
        asm!("mfspr {0}, 272", out(reg) v, options(nomem, nostack, preserves_flags));
        &mut *(v as *mut PerCpu)
    }
}
