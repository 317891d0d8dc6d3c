//! The Arm PL011 UART: polled transmit and receive, and its interrupts.
//!
//! Register access goes through [`Registers`], so the driver logic is
//! tested on the host against a fake device. The UART's line settings
//! (baud rate, framing) are left as firmware or the hypervisor set them:
//! the reference clock that the divisors depend on is not known here.

#![no_std]
#![forbid(unsafe_code)]

/// How the UART's 32-bit registers are reached (MMIO in the kernel).
pub trait Registers {
    /// Read the register at byte offset `offset`.
    fn read(&self, offset: usize) -> u32;
    /// Write the register at byte offset `offset`.
    fn write(&self, offset: usize, value: u32);
}

const DATA: usize = 0x000;
const FLAGS: usize = 0x018;
const CONTROL: usize = 0x030;
const INTERRUPT_MASK: usize = 0x038;
const MASKED_STATUS: usize = 0x040;
const INTERRUPT_CLEAR: usize = 0x044;
const PERIPHERAL_ID0: usize = 0xfe0;
const CELL_ID0: usize = 0xff0;

const FLAG_RX_EMPTY: u32 = 1 << 4;
const FLAG_TX_FULL: u32 = 1 << 5;
const CONTROL_ENABLE: u32 = 1;
const CONTROL_TX: u32 = 1 << 8;
const CONTROL_RX: u32 = 1 << 9;
const ALL_INTERRUPTS: u32 = 0x7ff;

/// Interrupt sources the UART can raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// Received data waits (or the receive FIFO passed its trigger level).
    Receive,
    /// The transmit FIFO drained below its trigger level.
    Transmit,
}

impl Interrupt {
    const fn bit(self) -> u32 {
        match self {
            Interrupt::Receive => 1 << 4,
            Interrupt::Transmit => 1 << 5,
        }
    }
}

/// A PL011 UART.
pub struct Uart<R: Registers> {
    regs: R,
}

impl<R: Registers> Uart<R> {
    /// Wrap a UART without touching it.
    pub const fn new(regs: R) -> Self {
        Self { regs }
    }

    /// The register access (e.g. to point it at the mapped device).
    pub const fn regs(&self) -> &R {
        &self.regs
    }

    /// Whether the registers carry the PrimeCell and PL011 identification.
    pub fn is_present(&self) -> bool {
        let id = |base: usize| {
            (0..4).fold(0u32, |acc, i| {
                acc | (self.regs.read(base + 4 * i) & 0xff) << (8 * i)
            })
        };
        id(CELL_ID0) == 0xb105_f00d && id(PERIPHERAL_ID0) & 0x000f_ffff == 0x0004_1011
    }

    /// Enable transmit and receive, mask and clear every interrupt.
    pub fn init(&self) {
        self.regs.write(INTERRUPT_MASK, 0);
        self.regs.write(INTERRUPT_CLEAR, ALL_INTERRUPTS);
        let control = self.regs.read(CONTROL);
        self.regs
            .write(CONTROL, control | CONTROL_ENABLE | CONTROL_TX | CONTROL_RX);
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
        // A UART that never drains must not hang the kernel: give up after
        // a bounded wait and drop the byte.
        let mut spins = 0u32;
        while self.regs.read(FLAGS) & FLAG_TX_FULL != 0 && spins < 100_000 {
            spins += 1;
            core::hint::spin_loop();
        }
        self.regs.write(DATA, u32::from(b));
    }

    /// A received byte, if one is waiting.
    pub fn read_byte(&self) -> Option<u8> {
        (self.regs.read(FLAGS) & FLAG_RX_EMPTY == 0).then(|| self.regs.read(DATA) as u8)
    }

    /// Enable or disable one interrupt source.
    pub fn set_interrupt(&self, which: Interrupt, on: bool) {
        let mask = self.regs.read(INTERRUPT_MASK);
        let mask = if on {
            mask | which.bit()
        } else {
            mask & !which.bit()
        };
        self.regs.write(INTERRUPT_MASK, mask);
    }

    /// Whether `which` is raised and enabled.
    pub fn is_pending(&self, which: Interrupt) -> bool {
        self.regs.read(MASKED_STATUS) & which.bit() != 0
    }

    /// Acknowledge `which`.
    pub fn clear(&self, which: Interrupt) {
        self.regs.write(INTERRUPT_CLEAR, which.bit());
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::cell::RefCell;
    use std::vec::Vec;

    /// A fake PL011 that records writes.
    struct Fake {
        regs: RefCell<[u32; 1024]>,
        sent: RefCell<Vec<u8>>,
    }

    impl Registers for &Fake {
        fn read(&self, offset: usize) -> u32 {
            self.regs.borrow()[offset / 4]
        }
        fn write(&self, offset: usize, value: u32) {
            if offset == DATA {
                self.sent.borrow_mut().push(value as u8);
            }
            self.regs.borrow_mut()[offset / 4] = value;
        }
    }

    fn fake() -> Fake {
        let mut regs = [0u32; 1024];
        for (i, b) in [0x11, 0x10, 0x14, 0x00].iter().enumerate() {
            regs[PERIPHERAL_ID0 / 4 + i] = *b;
        }
        for (i, b) in [0x0d, 0xf0, 0x05, 0xb1].iter().enumerate() {
            regs[CELL_ID0 / 4 + i] = *b;
        }
        regs[FLAGS / 4] = FLAG_RX_EMPTY;
        Fake {
            regs: RefCell::new(regs),
            sent: RefCell::new(Vec::new()),
        }
    }

    #[test]
    fn identifies_itself_and_sends_crlf() {
        let f = fake();
        let uart = Uart::new(&f);
        assert!(uart.is_present());
        uart.init();
        assert_eq!(f.regs.borrow()[CONTROL / 4], 0x301);
        uart.write_bytes(b"a\nb");
        assert_eq!(&*f.sent.borrow(), b"a\r\nb");
        assert_eq!(uart.read_byte(), None);
    }

    #[test]
    fn a_stuck_transmitter_does_not_hang() {
        let f = fake();
        f.regs.borrow_mut()[FLAGS / 4] = FLAG_TX_FULL;
        Uart::new(&f).write_bytes(b"x");
        assert_eq!(&*f.sent.borrow(), b"x");
    }

    #[test]
    fn interrupt_enables_touch_only_their_bit() {
        let f = fake();
        let uart = Uart::new(&f);
        uart.set_interrupt(Interrupt::Transmit, true);
        uart.set_interrupt(Interrupt::Receive, true);
        uart.set_interrupt(Interrupt::Transmit, false);
        assert_eq!(f.regs.borrow()[INTERRUPT_MASK / 4], 1 << 4);
        assert!(!Uart::new(&fake()).is_pending(Interrupt::Receive));
    }

    #[test]
    fn garbage_registers_are_not_a_pl011() {
        let f = fake();
        f.regs.borrow_mut()[CELL_ID0 / 4] = 0;
        assert!(!Uart::new(&f).is_present());
    }
}
