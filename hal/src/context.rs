//! Thread context: stacks, switching, and where traps land.

use core::alloc::Layout;

/// What the arch saves for a switched-out thread. Core owns one per thread.
#[repr(C)]
#[derive(Debug)]
pub struct SwitchFrame {
    /// Saved stack pointer; callee-saved registers sit on that stack.
    pub sp: usize,
    /// Per-thread area for FP/vector state, laid out per
    /// [`Context::fp_state_layout`], initialised by [`Context::init_fp_state`].
    pub fp_state: *mut u8,
}

/// Creating and switching thread contexts.
pub trait Context {
    /// Size and alignment of the FP/vector save area each thread needs.
    fn fp_state_layout() -> Layout;

    /// Put a fresh thread's FP/vector area into the ABI's initial state.
    ///
    /// # Safety
    /// `area` must be valid for writes of `fp_state_layout()` and aligned to it.
    unsafe fn init_fp_state(area: *mut u8);

    /// Lay out a new thread's stack so that switching to the returned stack
    /// pointer calls `entry(arg)` with interrupts masked. `entry` must never return.
    ///
    /// # Safety
    /// `[stack_bottom, stack_top)` must be a writable stack no one else uses.
    unsafe fn prepare_stack(
        stack_bottom: usize,
        stack_top: usize,
        entry: extern "C" fn(usize) -> !,
        arg: usize,
    ) -> usize;

    /// Tell the arch which kernel stack the thread about to run owns: traps
    /// and system calls taken while it runs land there (never on an app stack,
    /// whose red zone must survive).
    fn set_kernel_stack(stack_bottom: usize, stack_top: usize);

    /// Save the running thread into `from` and resume `to`. Returns when some
    /// CPU later switches back to `from`. Call with interrupts masked.
    ///
    /// # Safety
    /// `from` and `to` must be valid; `to` must hold a context produced by
    /// `prepare_stack` or by an earlier `switch`, that no CPU is running.
    unsafe fn switch(from: *mut SwitchFrame, to: *const SwitchFrame);
}
