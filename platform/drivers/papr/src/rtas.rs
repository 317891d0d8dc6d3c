//! RTAS: the firmware services a pseries OS calls by token (power-off,
//! time of day, starting CPUs, routing interrupts, PCI configuration).
//!
//! Tokens come from the `/rtas` node of the device tree and are recorded
//! here once at boot ([`set_token`]). An RTAS call passes a block of
//! big-endian 32-bit cells: token, argument count, result count,
//! arguments, then room for the results (the first is the status).

use core::sync::atomic::{AtomicU32, Ordering};

/// The RTAS services Keel uses, named by their `/rtas` property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Power the machine off (QEMU exits 0).
    PowerOff,
    /// Tell the platform the OS terminated abnormally (QEMU's panic action).
    OsTerm,
    /// Read the real-time clock.
    GetTimeOfDay,
    /// Start a stopped CPU at a real address.
    StartCpu,
    /// Stop the calling CPU for good.
    StopSelf,
    /// XICS: route an interrupt source to a server at a priority.
    SetXive,
    /// XICS: unmask an interrupt source.
    IntOn,
    /// XICS: mask an interrupt source.
    IntOff,
    /// Read PCI configuration space.
    ReadPciConfig,
    /// Write PCI configuration space.
    WritePciConfig,
}

impl Service {
    /// Every service, in token-table order.
    pub const ALL: [Service; 10] = [
        Service::PowerOff,
        Service::OsTerm,
        Service::GetTimeOfDay,
        Service::StartCpu,
        Service::StopSelf,
        Service::SetXive,
        Service::IntOn,
        Service::IntOff,
        Service::ReadPciConfig,
        Service::WritePciConfig,
    ];

    /// The `/rtas` property holding the service's token.
    pub fn property(self) -> &'static str {
        match self {
            Service::PowerOff => "power-off",
            Service::OsTerm => "ibm,os-term",
            Service::GetTimeOfDay => "get-time-of-day",
            Service::StartCpu => "start-cpu",
            Service::StopSelf => "stop-self",
            Service::SetXive => "ibm,set-xive",
            Service::IntOn => "ibm,int-on",
            Service::IntOff => "ibm,int-off",
            Service::ReadPciConfig => "ibm,read-pci-config",
            Service::WritePciConfig => "ibm,write-pci-config",
        }
    }

    fn index(self) -> usize {
        Service::ALL.iter().position(|&s| s == self).unwrap_or(0)
    }
}

const ABSENT: u32 = u32::MAX;
static TOKENS: [AtomicU32; Service::ALL.len()] =
    [const { AtomicU32::new(ABSENT) }; Service::ALL.len()];

/// Record the token the device tree gave for `service`.
pub fn set_token(service: Service, token: u32) {
    TOKENS[service.index()].store(token, Ordering::Release);
}

/// The token of `service`, if the firmware offers it.
pub fn token(service: Service) -> Option<u32> {
    let t = TOKENS[service.index()].load(Ordering::Acquire);
    (t != ABSENT).then_some(t)
}

/// Why an RTAS call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtasError {
    /// The device tree gave no token for the service.
    Missing(Service),
    /// The hypervisor refused the `H_RTAS` call itself.
    Hcall(i64),
    /// RTAS returned this (negative) status.
    Status(i32),
    /// More arguments and results than an argument block holds.
    TooMany,
}

/// Cells an argument block holds (token, counts, arguments, results).
pub const BLOCK_CELLS: usize = 16;

/// Fill `block` for a call of `token` with `args`, leaving room for
/// `nret` results. Cells are stored big-endian, as RTAS reads them.
pub fn encode(
    block: &mut [u32; BLOCK_CELLS],
    token: u32,
    args: &[u32],
    nret: usize,
) -> Result<(), RtasError> {
    if 3 + args.len() + nret > BLOCK_CELLS || nret == 0 {
        return Err(RtasError::TooMany);
    }
    block.fill(0);
    block[0] = token.to_be();
    block[1] = (args.len() as u32).to_be();
    block[2] = (nret as u32).to_be();
    for (cell, &a) in block[3..].iter_mut().zip(args) {
        *cell = a.to_be();
    }
    Ok(())
}

/// Read the results of a call made with `nargs` arguments into `rets`;
/// fails with the status if it is negative.
pub fn decode(block: &[u32; BLOCK_CELLS], nargs: usize, rets: &mut [u32]) -> Result<(), RtasError> {
    for (i, r) in rets.iter_mut().enumerate() {
        *r = u32::from_be(block[3 + nargs + i]);
    }
    let status = u32::from_be(block[3 + nargs]) as i32;
    if status < 0 {
        return Err(RtasError::Status(status));
    }
    Ok(())
}

/// Seconds since 1970 for a UTC calendar date and time (proleptic
/// Gregorian), or `None` if a field is out of range.
pub fn unix_time(year: u32, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> Option<u64> {
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), with March as month 0.
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec);
    u64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_blocks_are_big_endian() {
        let mut b = [0u32; BLOCK_CELLS];
        encode(&mut b, 0x2003, &[0, 0], 1).unwrap();
        assert_eq!(u32::from_be(b[0]), 0x2003);
        assert_eq!(u32::from_be(b[1]), 2);
        assert_eq!(u32::from_be(b[2]), 1);
        b[5] = 0u32.to_be();
        let mut rets = [9u32; 1];
        assert_eq!(decode(&b, 2, &mut rets), Ok(()));
        assert_eq!(rets, [0]);
        b[5] = (-3i32 as u32).to_be();
        assert_eq!(decode(&b, 2, &mut rets), Err(RtasError::Status(-3)));
        assert_eq!(encode(&mut b, 1, &[0; 12], 2), Err(RtasError::TooMany));
    }

    #[test]
    fn tokens_start_absent_and_are_remembered() {
        assert_eq!(token(Service::WritePciConfig), None);
        set_token(Service::PowerOff, 0x2003);
        assert_eq!(token(Service::PowerOff), Some(0x2003));
        assert_eq!(Service::OsTerm.property(), "ibm,os-term");
    }

    #[test]
    fn calendar_time_converts_to_unix_seconds() {
        assert_eq!(unix_time(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(unix_time(2000, 2, 29, 0, 0, 0), Some(951_782_400));
        assert_eq!(unix_time(2026, 11, 29, 22, 21, 1), Some(1_795_990_861));
        assert_eq!(unix_time(2024, 13, 1, 0, 0, 0), None);
        assert_eq!(unix_time(1969, 12, 31, 0, 0, 0), None);
    }
}
