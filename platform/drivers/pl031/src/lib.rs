//! The Arm PL031 real-time clock: a 32-bit count of seconds, which
//! hypervisors (QEMU, Firecracker) start at the host's Unix time.
//!
//! Register access goes through [`Registers`] so the logic is tested on
//! the host.

#![no_std]
#![forbid(unsafe_code)]

/// How the RTC's 32-bit registers are reached (MMIO in the kernel).
pub trait Registers {
    /// Read the register at byte offset `offset`.
    fn read(&self, offset: usize) -> u32;
}

const DATA: usize = 0x000;
const CONTROL: usize = 0x00c;
const PERIPHERAL_ID0: usize = 0xfe0;
const CELL_ID0: usize = 0xff0;

fn id(regs: &dyn Registers, base: usize) -> u32 {
    (0..4).fold(0u32, |acc, i| {
        acc | (regs.read(base + 4 * i) & 0xff) << (8 * i)
    })
}

/// Whether the registers carry the PrimeCell and PL031 identification.
pub fn is_present(regs: &dyn Registers) -> bool {
    id(regs, CELL_ID0) == 0xb105_f00d && id(regs, PERIPHERAL_ID0) & 0x000f_ffff == 0x0004_1031
}

/// Seconds since the Unix epoch, or `None` if the clock is stopped or the
/// device is not a PL031.
pub fn unix_time(regs: &dyn Registers) -> Option<u64> {
    if !is_present(regs) || regs.read(CONTROL) & 1 == 0 {
        return None;
    }
    Some(u64::from(regs.read(DATA)))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        data: u32,
        control: u32,
        cell: u32,
    }

    impl Registers for Fake {
        fn read(&self, offset: usize) -> u32 {
            let byte = |v: u32, i: usize| (v >> (8 * i)) & 0xff;
            match offset {
                DATA => self.data,
                CONTROL => self.control,
                o if (PERIPHERAL_ID0..PERIPHERAL_ID0 + 16).contains(&o) => {
                    byte(0x0004_1031, (o - PERIPHERAL_ID0) / 4)
                }
                o if (CELL_ID0..CELL_ID0 + 16).contains(&o) => byte(self.cell, (o - CELL_ID0) / 4),
                _ => 0,
            }
        }
    }

    #[test]
    fn reads_seconds_from_a_running_clock() {
        let rtc = Fake {
            data: 1_800_000_000,
            control: 1,
            cell: 0xb105_f00d,
        };
        assert_eq!(unix_time(&rtc), Some(1_800_000_000));
    }

    #[test]
    fn a_stopped_clock_or_other_device_gives_nothing() {
        let stopped = Fake {
            data: 5,
            control: 0,
            cell: 0xb105_f00d,
        };
        assert_eq!(unix_time(&stopped), None);
        let other = Fake {
            data: 5,
            control: 1,
            cell: 0,
        };
        assert_eq!(unix_time(&other), None);
    }
}
