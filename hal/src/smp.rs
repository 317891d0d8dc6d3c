//! Starting secondary CPUs.

use crate::cpu::CpuIndex;

/// Why a CPU did not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmpError {
    /// The CPU did not report in within the arch's deadline.
    Timeout,
    /// The firmware refused (PSCI/RTAS error code).
    Firmware(i64),
}

/// Bringing up the other CPUs.
pub trait Smp {
    /// Start the CPU with hardware id `hw_id` as CPU `index`, on the stack
    /// `[stack_bottom, stack_top)`. It initialises its arch state, then calls
    /// `entry(index)`. Returns once the CPU runs Rust code.
    ///
    /// # Safety
    /// The stack must be unused and stay alive; `index` must be fresh.
    unsafe fn start_cpu(
        index: CpuIndex,
        hw_id: u64,
        stack_bottom: usize,
        stack_top: usize,
        entry: fn(CpuIndex) -> !,
    ) -> Result<(), SmpError>;
}
