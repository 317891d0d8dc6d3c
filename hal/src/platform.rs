//! The board around the CPUs: console, power, wall clock.

/// How the machine stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Orderly power-off with an exit status (0 = success), e.g. the app's.
    Code(u8),
    /// The kernel panicked.
    Panic,
}

/// Services of the platform (hypervisor family + machine model).
pub trait Platform {
    /// Short name used in banners ("kvm-x86_64 microvm").
    fn name() -> &'static str;

    /// Write bytes to the primary console. Safe to call from any context,
    /// including a panic on any CPU.
    fn console_write(bytes: &[u8]);

    /// Read one byte from the primary console, if one is waiting.
    fn console_read() -> Option<u8>;

    /// Wall-clock time now, in nanoseconds since the Unix epoch, read from
    /// the platform's real-time clock (slow; core reads it once).
    fn wall_clock_ns() -> u64;

    /// Power the machine off, reporting `status` to the host where the
    /// platform can (QEMU exit code); the console marker carries it always.
    fn power_off(status: ExitStatus) -> !;
}
