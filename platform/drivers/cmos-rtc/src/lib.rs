//! The PC CMOS real-time clock, read as Unix time. The register access is
//! abstracted so the conversion logic is tested on the host.

#![no_std]
#![forbid(unsafe_code)]

/// Access to CMOS registers (index port 0x70, data port 0x71 on a PC).
pub trait CmosRegisters {
    /// Read register `index`.
    fn read(&self, index: u8) -> u8;
}

/// The raw fields of one reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reading {
    sec: u8,
    min: u8,
    hour: u8,
    day: u8,
    month: u8,
    year: u8,
    century: u8,
}

fn read_once(r: &dyn CmosRegisters, century_reg: u8) -> Reading {
    Reading {
        sec: r.read(0x00),
        min: r.read(0x02),
        hour: r.read(0x04),
        day: r.read(0x07),
        month: r.read(0x08),
        year: r.read(0x09),
        century: if century_reg != 0 {
            r.read(century_reg)
        } else {
            0
        },
    }
}

/// Seconds since the Unix epoch, or `None` if the clock reads nonsense.
/// `century_reg` comes from the FADT (0 if absent). Reads until two
/// consecutive readings agree, so an update in between cannot tear it.
pub fn unix_time(r: &dyn CmosRegisters, century_reg: u8) -> Option<u64> {
    let mut last = None;
    for _ in 0..10 {
        for _ in 0..10_000 {
            if r.read(0x0a) & 0x80 == 0 {
                break; // no update in progress
            }
        }
        let now = read_once(r, century_reg);
        if last == Some(now) {
            return convert(now, r.read(0x0b));
        }
        last = Some(now);
    }
    None
}

fn bcd(v: u8) -> u8 {
    (v >> 4) * 10 + (v & 0x0f)
}

fn convert(raw: Reading, status_b: u8) -> Option<u64> {
    let binary = status_b & 0x04 != 0;
    let h24 = status_b & 0x02 != 0;
    let dec = |v: u8| if binary { v } else { bcd(v) };
    let pm = raw.hour & 0x80 != 0;
    let mut hour = dec(raw.hour & 0x7f);
    if !h24 {
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let (sec, min, day, month) = (dec(raw.sec), dec(raw.min), dec(raw.day), dec(raw.month));
    let century = if raw.century != 0 {
        u64::from(dec(raw.century))
    } else {
        20
    };
    let year = century * 100 + u64::from(dec(raw.year));
    if sec > 59 || min > 59 || hour > 23 || !(1..=31).contains(&day) || !(1..=12).contains(&month) {
        return None;
    }
    let days = days_from_civil(year as i64, u32::from(month), u32::from(day));
    Some(days as u64 * 86_400 + u64::from(hour) * 3600 + u64::from(min) * 60 + u64::from(sec))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    struct Fake {
        regs: [u8; 128],
        reads: Cell<u32>,
    }
    impl CmosRegisters for Fake {
        fn read(&self, i: u8) -> u8 {
            self.reads.set(self.reads.get() + 1);
            self.regs[i as usize]
        }
    }

    /// Registers for `[sec, min, hour, day, month, year, century, status B]`.
    fn fake(values: [u8; 8]) -> Fake {
        let mut regs = [0u8; 128];
        for (index, value) in [0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32, 0x0b]
            .into_iter()
            .zip(values)
        {
            regs[index] = value;
        }
        Fake {
            regs,
            reads: Cell::new(0),
        }
    }

    #[test]
    fn bcd_24h_with_century() {
        // 2026-11-24 20:45:07 UTC = 1795553107
        let f = fake([0x07, 0x45, 0x20, 0x24, 0x11, 0x26, 0x20, 0x02]);
        assert_eq!(unix_time(&f, 0x32), Some(1_795_553_107));
    }

    #[test]
    fn binary_12h_pm_without_century() {
        let f = fake([7, 45, 0x80 | 8, 24, 11, 26, 0, 0x04]);
        assert_eq!(unix_time(&f, 0), Some(1_795_553_107));
    }

    #[test]
    fn nonsense_is_refused() {
        let f = fake([0x99, 0x45, 0x20, 0x24, 0x13, 0x26, 0x20, 0x02]);
        assert_eq!(unix_time(&f, 0x32), None);
    }

    #[test]
    fn epoch_and_leap_day() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
    }
}
