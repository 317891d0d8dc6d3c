//! Running app code: the app's saved registers, entering and resuming it,
//! and touching app memory without trusting app pointers.
//!
//! The app runs at kernel privilege in the kernel's address space; these
//! are the only doors between the two. System calls arrive as
//! [`crate::Kernel::syscall`] with the app's registers in an [`AppFrame`].

/// The app's registers, complete enough to resume it exactly: saved at a
/// system call, a trap from app code, or in a signal frame.
///
/// `gpr` is in the arch's own order (x86_64: rax rbx rcx rdx rsi rdi rbp
/// rsp r8..r15 — with rsp unused, see `sp`; aarch64: x0..x30; ppc64:
/// r0..r31). The Linux ABI layer knows each arch's register roles.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppFrame {
    /// General registers, arch order.
    pub gpr: [u64; 32],
    /// Program counter to resume at.
    pub pc: u64,
    /// Stack pointer.
    pub sp: u64,
    /// Flags: x86 RFLAGS, aarch64 PSTATE (NZCV etc.), ppc64 MSR.
    pub flags: u64,
    /// Arch extras: ppc64 lr, ctr, xer, cr; unused elsewhere.
    pub extra: [u64; 4],
}

/// Entering app code and app-memory access, per arch.
pub trait App {
    /// Load every register from `frame` and continue in app code, with
    /// interrupts enabled, on the app's stack. Never returns; the thread
    /// comes back into the kernel only through a system call or a trap.
    ///
    /// # Safety
    /// The frame must describe app code and a stack mapped for the app; the
    /// current thread's kernel stack must be set (`Context::set_kernel_stack`).
    unsafe fn resume_app(frame: &AppFrame) -> !;

    /// Set the thread-pointer register apps use for TLS (x86 FS base,
    /// aarch64 TPIDR_EL0) for the running thread; it follows the thread
    /// across switches. On ppc64 the thread pointer is r13, part of the
    /// frame, and this does nothing.
    fn set_app_thread_pointer(value: u64);

    /// The running thread's app thread pointer.
    fn app_thread_pointer() -> u64;

    /// Copy `len` bytes from app address `src` to kernel memory `dst`.
    /// Returns false if some app page could not be read (after core had
    /// the chance to demand-page it): the copy stopped part way.
    ///
    /// # Safety
    /// `dst` must be valid for `len` bytes of writes.
    unsafe fn copy_from_app(dst: *mut u8, src: usize, len: usize) -> bool;

    /// Copy `len` bytes from kernel memory `src` to app address `dst`;
    /// false if some app page could not be written.
    ///
    /// # Safety
    /// `src` must be valid for `len` bytes of reads.
    unsafe fn copy_to_app(dst: usize, src: *const u8, len: usize) -> bool;

    /// Atomic compare-and-swap on the app's 32-bit word at `addr` (futex
    /// operations): if it holds `expected`, store `new`. Returns the value
    /// found, or None if the word could not be accessed.
    ///
    /// # Safety
    /// `addr` must be 4-byte aligned and inside the app range.
    unsafe fn app_cmpxchg_u32(addr: usize, expected: u32, new: u32) -> Option<u32>;

    /// Bytes a signal frame needs for the FP/vector state, and its alignment.
    fn fp_signal_layout() -> core::alloc::Layout;

    /// Save the running thread's FP/vector registers (the app's: the kernel
    /// does not use them) at app address `dst`, in the format the arch's
    /// Linux signal frame uses. False if the app memory is not writable.
    fn save_fp_to_app(dst: usize) -> bool;

    /// Restore FP/vector registers from app address `src` (written by
    /// `save_fp_to_app`, possibly changed by the app). False if unreadable
    /// or malformed (the registers are then left as they were).
    fn restore_fp_from_app(src: usize) -> bool;
}
