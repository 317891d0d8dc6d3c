//! The console: COM1, a 16550 at I/O port 0x3f8.

use keel_arch_x86_64::io::{inb, outb};
use keel_driver_ns16550::{Uart, UartRegisters};

/// COM1's I/O base.
pub const COM1: u16 = 0x3f8;
/// COM1's ISA IRQ.
pub const COM1_IRQ: u8 = 4;

/// Port-I/O register access.
pub struct Ports(pub u16);

impl UartRegisters for Ports {
    fn read(&self, index: u16) -> u8 {
        inb(self.0 + index)
    }
    fn write(&self, index: u16, value: u8) {
        outb(self.0 + index, value);
    }
}

/// COM1.
pub static UART: Uart<Ports> = Uart::new(Ports(COM1));

/// Program the UART (the first thing the kernel does).
pub fn init() {
    UART.init();
}

/// Write bytes (no locking: core serialises lines; panics write directly).
pub fn write(bytes: &[u8]) {
    UART.write_bytes(bytes);
}

/// A byte from the console, if one is waiting.
pub fn read() -> Option<u8> {
    UART.read_byte()
}
