//! The 16550 UART: polled transmit and receive, and its interrupt enables.
//!
//! Register access is abstracted by [`UartRegisters`] so the same driver
//! works with x86 port I/O and with memory-mapped UARTs.

#![no_std]
#![forbid(unsafe_code)]

/// How the UART's eight byte-wide registers are reached.
pub trait UartRegisters {
    /// Read register `index` (0..8).
    fn read(&self, index: u16) -> u8;
    /// Write register `index` (0..8).
    fn write(&self, index: u16, value: u8);
}

const DATA: u16 = 0;
const INTERRUPT_ENABLE: u16 = 1;
const FIFO_CONTROL: u16 = 2;
const LINE_CONTROL: u16 = 3;
const MODEM_CONTROL: u16 = 4;
const LINE_STATUS: u16 = 5;
const SCRATCH: u16 = 7;

const LSR_DATA_READY: u8 = 1;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// Interrupt sources the UART can raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartInterrupt {
    /// A byte was received.
    ReceivedData,
    /// The transmit holding register became empty.
    TransmitEmpty,
}

/// A 16550 UART.
pub struct Uart<R: UartRegisters> {
    regs: R,
}

impl<R: UartRegisters> Uart<R> {
    /// Wrap a UART without touching it.
    pub const fn new(regs: R) -> Self {
        Self { regs }
    }

    /// Whether a UART answers (its scratch register holds a value).
    pub fn is_present(&self) -> bool {
        self.regs.write(SCRATCH, 0x5a);
        self.regs.read(SCRATCH) == 0x5a
    }

    /// 115200 8N1, FIFOs on, interrupts off.
    pub fn init(&self) {
        self.regs.write(INTERRUPT_ENABLE, 0);
        self.regs.write(LINE_CONTROL, 0x80); // divisor latch
        self.regs.write(DATA, 1); // 115200 baud
        self.regs.write(INTERRUPT_ENABLE, 0);
        self.regs.write(LINE_CONTROL, 0x03); // 8N1
        self.regs.write(FIFO_CONTROL, 0xc7);
        self.regs.write(MODEM_CONTROL, 0x0b); // DTR, RTS, OUT2 (routes the IRQ)
    }

    /// Send bytes, turning `\n` into `\r\n`.
    pub fn write_bytes(&self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
    }

    fn put(&self, b: u8) {
        let mut spins = 0u32;
        // A UART that never drains must not hang the kernel: give up after
        // a bounded wait and drop the byte.
        while self.regs.read(LINE_STATUS) & LSR_THR_EMPTY == 0 && spins < 100_000 {
            spins += 1;
            core::hint::spin_loop();
        }
        self.regs.write(DATA, b);
    }

    /// A received byte, if one is waiting.
    pub fn read_byte(&self) -> Option<u8> {
        (self.regs.read(LINE_STATUS) & LSR_DATA_READY != 0).then(|| self.regs.read(DATA))
    }

    /// Enable or disable one interrupt source.
    pub fn set_interrupt(&self, which: UartInterrupt, on: bool) {
        let bit = match which {
            UartInterrupt::ReceivedData => 1,
            UartInterrupt::TransmitEmpty => 2,
        };
        let ier = self.regs.read(INTERRUPT_ENABLE);
        self.regs
            .write(INTERRUPT_ENABLE, if on { ier | bit } else { ier & !bit });
    }

    /// Read the interrupt identification register (acknowledges THRE).
    pub fn interrupt_id(&self) -> u8 {
        self.regs.read(FIFO_CONTROL)
    }
}
