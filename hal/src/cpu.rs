//! The calling CPU: identity, interrupt masking, idling, per-CPU storage.

/// Dense CPU index: 0 is the boot CPU, then 1..n in the order started.
pub type CpuIndex = usize;

/// Operations on the CPU executing the call.
pub trait Cpu {
    /// Index of the calling CPU. Must be cheap: the scheduler calls it often.
    fn current_cpu() -> CpuIndex;

    /// Whether maskable interrupts are enabled on this CPU.
    fn interrupts_enabled() -> bool;

    /// Mask interrupts; returns whether they were enabled before.
    fn disable_interrupts() -> bool;

    /// Unmask interrupts if `were_enabled` (the value [`Cpu::disable_interrupts`] returned).
    fn restore_interrupts(were_enabled: bool);

    /// Called with interrupts masked: unmask them and wait for one, without
    /// a window where an interrupt could be missed. Returns with interrupts
    /// masked again, after the interrupt was handled.
    fn enable_interrupts_and_wait();

    /// Hint that the caller is spinning (x86 `pause`, arm `yield`, ppc `or 27,27,27`).
    fn spin_hint();

    /// Stop this CPU for good (interrupts masked, halted).
    fn halt_forever() -> !;

    /// The CPU's feature flags as a short human-readable list ("sse4.2 avx2 …").
    fn features(out: &mut dyn core::fmt::Write) -> core::fmt::Result;

    /// 64 bits from the CPU's hardware random number generator (x86
    /// RDSEED/RDRAND, aarch64 RNDR, POWER DARN), if it has one.
    fn hardware_random() -> Option<u64> {
        None
    }

    /// The ELF hardware capability words Linux passes to apps as AT_HWCAP
    /// and AT_HWCAP2 (x86_64: CPUID.1 EDX; aarch64: the HWCAP_* bits).
    fn elf_hwcaps() -> (u64, u64) {
        (0, 0)
    }

    /// The word the scheduler keeps naming the running thread, read with a
    /// single instruction from a per-CPU slot (x86 `gs:`, aarch64 a system
    /// register, ppc64 through r13), so a preemption cannot split the read
    /// from the CPU it belongs to and no interrupt masking is needed.
    /// `None`: the arch keeps no such slot, and core masks interrupts to
    /// find the running thread instead.
    fn running_thread_word() -> Option<usize> {
        None
    }

    /// Set the word `running_thread_word` reads (the scheduler calls this on
    /// every switch, interrupts masked).
    fn set_running_thread_word(_word: usize) {}

    /// Walk a frame-pointer chain for a backtrace, starting at frame pointer
    /// `start` (0 = the caller's own frame): calls `visit` with each return
    /// address, innermost first, until it returns false or the chain ends.
    /// Must not fault on a corrupt chain (it checks each frame is mapped).
    fn walk_stack(start: usize, visit: &mut dyn FnMut(usize) -> bool);
}
