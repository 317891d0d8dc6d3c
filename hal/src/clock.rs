//! Per-CPU time: the monotonic clock and the one-shot timer.

/// Monotonic time and the tick-less one-shot timer.
pub trait Clock {
    /// Nanoseconds since an arbitrary point before boot; never goes back,
    /// and agrees across CPUs.
    fn monotonic_ns() -> u64;

    /// Arm this CPU's one-shot timer to interrupt at `deadline_ns` (monotonic),
    /// or disarm it with `None`. A deadline in the past fires at once.
    fn set_timer(deadline_ns: Option<u64>);

    /// Nanoseconds from the kernel's very first instruction to now, measured
    /// with the fastest counter the CPU has (for the boot-time figure).
    fn since_first_instruction_ns() -> u64;
}
