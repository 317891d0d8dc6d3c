//! Converting the app's `struct timespec`/`timeval` to and from kernel
//! nanoseconds, and turning timeouts into monotonic deadlines.

use keel_core::time;

use crate::errno::Errno;
use crate::mem;

const NS_PER_SEC: u64 = 1_000_000_000;

/// A validated timespec as nanoseconds (EINVAL for negative or
/// out-of-range fields, as Linux does).
pub fn timespec_ns(sec: i64, nsec: i64) -> Result<u64, Errno> {
    if sec < 0 || !(0..NS_PER_SEC as i64).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(NS_PER_SEC)
        .saturating_add(nsec as u64))
}

/// Read the `struct timespec` at `addr` as nanoseconds.
pub fn read_timespec(addr: u64) -> Result<u64, Errno> {
    let b = mem::read_bytes(addr, 16)?;
    let sec = i64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
    let nsec = i64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
    timespec_ns(sec, nsec)
}

/// Encode nanoseconds as a `struct timespec`.
pub fn encode_timespec(ns: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&(ns / NS_PER_SEC).to_le_bytes());
    b[8..16].copy_from_slice(&(ns % NS_PER_SEC).to_le_bytes());
    b
}

/// Write nanoseconds as a `struct timespec` at `addr`.
pub fn write_timespec(addr: u64, ns: u64) -> Result<(), Errno> {
    mem::write_bytes(addr, &encode_timespec(ns))
}

/// Write nanoseconds as a `struct timeval` at `addr`.
pub fn write_timeval(addr: u64, ns: u64) -> Result<(), Errno> {
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&(ns / NS_PER_SEC).to_le_bytes());
    b[8..16].copy_from_slice(&((ns % NS_PER_SEC) / 1000).to_le_bytes());
    mem::write_bytes(addr, &b)
}

/// Read a `struct timeval` at `addr` as nanoseconds.
pub fn read_timeval(addr: u64) -> Result<u64, Errno> {
    let b = mem::read_bytes(addr, 16)?;
    let sec = i64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
    let usec = i64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
    if !(0..1_000_000).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    timespec_ns(sec, usec * 1000)
}

/// A relative timeout at `addr` (NULL: none) as a monotonic deadline.
pub fn relative_deadline(addr: u64) -> Result<Option<u64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let ns = read_timespec(addr)?;
    Ok(Some(time::monotonic_ns().saturating_add(ns)))
}

/// An absolute timeout at `addr` on the realtime or monotonic clock
/// (NULL: none) as a monotonic deadline.
pub fn absolute_deadline(addr: u64, realtime: bool) -> Result<Option<u64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let ns = read_timespec(addr)?;
    Ok(Some(if realtime {
        realtime_to_monotonic(ns)
    } else {
        ns
    }))
}

/// A realtime instant as the monotonic instant it corresponds to.
pub fn realtime_to_monotonic(ns: u64) -> u64 {
    let offset = time::realtime_ns().saturating_sub(time::monotonic_ns());
    ns.saturating_sub(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespecs_are_validated_and_round_trip() {
        assert_eq!(timespec_ns(1, 5), Ok(1_000_000_005));
        assert_eq!(timespec_ns(-1, 0), Err(Errno::EINVAL));
        assert_eq!(timespec_ns(0, 1_000_000_000), Err(Errno::EINVAL));
        assert_eq!(timespec_ns(i64::MAX, 0), Ok(u64::MAX));
        let b = encode_timespec(3_000_000_007);
        assert_eq!(i64::from_le_bytes(b[0..8].try_into().unwrap()), 3);
        assert_eq!(i64::from_le_bytes(b[8..16].try_into().unwrap()), 7);
    }
}
