//! Inter-processor interrupts and device interrupt lines.

use crate::cpu::CpuIndex;

/// Why one CPU interrupts another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Ipi {
    /// Look at your incoming queue and maybe switch threads.
    Reschedule = 0,
    /// Run the pending cross-CPU calls (TLB shootdowns, stop requests).
    Call = 1,
}

/// A device interrupt line as the platform names it: a GSI on x86, an SPI
/// on GIC, a source number on XICS/XIVE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IrqLine(pub u32);

/// Error from routing an interrupt line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqError {
    /// The controller does not know this line.
    NoSuchLine,
    /// No vectors/slots left.
    Exhausted,
}

/// Sending IPIs and routing device interrupts.
pub trait Interrupts {
    /// Interrupt `target` with `ipi`. The target runs [`crate::Kernel::ipi`].
    fn send_ipi(target: CpuIndex, ipi: Ipi);

    /// Route `line` (edge- or level-triggered as the firmware describes it)
    /// to `target` and unmask it; it then arrives as [`crate::Kernel::irq`].
    fn enable_irq(line: IrqLine, target: CpuIndex) -> Result<(), IrqError>;

    /// Mask `line`.
    fn disable_irq(line: IrqLine);
}
