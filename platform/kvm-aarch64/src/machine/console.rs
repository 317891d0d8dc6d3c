//! The console: the device tree's PL011 UART, mapped in the arch's fixmap
//! so it works from the first line of platform code.

use core::sync::atomic::{AtomicUsize, Ordering};

use keel_arch_aarch64 as arch;
use keel_driver_devicetree::{Interrupt, Machine};
use keel_driver_pl011::{Registers, Uart};

/// The PL011 of QEMU's virt machine, used only to report a device tree
/// that could not be read at all.
const QEMU_VIRT_PL011: u64 = 0x0900_0000;

/// Registers at a virtual base address (0: no console yet; accesses do nothing).
pub struct Mmio(AtomicUsize);

impl Registers for Mmio {
    fn read(&self, offset: usize) -> u32 {
        match self.0.load(Ordering::Relaxed) {
            0 => 0,
            // SAFETY: `base` maps the UART's 4 KiB register page as device
            // memory (fixmap); offsets are the PL011's registers.
            base => unsafe { ((base + offset) as *const u32).read_volatile() },
        }
    }
    fn write(&self, offset: usize, value: u32) {
        match self.0.load(Ordering::Relaxed) {
            0 => {}
            // SAFETY: as in `read`.
            base => unsafe { ((base + offset) as *mut u32).write_volatile(value) },
        }
    }
}

/// The console UART.
pub static UART: Uart<Mmio> = Uart::new(Mmio(AtomicUsize::new(0)));
/// Its interrupt, from the device tree.
static IRQ: spin::Once<Option<Interrupt>> = spin::Once::new();

fn attach(pa: u64) -> bool {
    match arch::map_early_device(pa, 0x1000) {
        Some(va) => {
            UART.regs().0.store(va, Ordering::Release);
            UART.init();
            true
        }
        None => false,
    }
}

/// Use the tree's console.
pub fn init(m: &Machine<'_>) {
    if let Some(d) = m.console {
        attach(d.reg.base);
        IRQ.call_once(|| d.interrupt);
    }
}

/// Use QEMU virt's PL011 if no console is set up (for fatal boot errors).
pub fn init_fallback() {
    if UART.regs().0.load(Ordering::Acquire) == 0 {
        attach(QEMU_VIRT_PL011);
    }
}

/// The console's interrupt, if the tree names one.
pub fn interrupt() -> Option<Interrupt> {
    IRQ.get().copied().flatten()
}

/// Write bytes (no locking: core serialises lines; panics write directly).
pub fn write(bytes: &[u8]) {
    UART.write_bytes(bytes);
}

/// A byte from the console, if one is waiting.
pub fn read() -> Option<u8> {
    UART.read_byte()
}
