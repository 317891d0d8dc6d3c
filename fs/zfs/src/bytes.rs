//! Little-endian field access on byte slices, bounds-checked without panics
//! on the read side (a short buffer reads as corruption, not a crash).

use crate::error::{Error, Result};

/// Read a little-endian u64 at `at`.
pub fn u64_at(buf: &[u8], at: usize) -> Result<u64> {
    buf.get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        .ok_or_else(|| Error::corrupt("structure shorter than its fields"))
}

/// Read a little-endian u32 at `at`.
pub fn u32_at(buf: &[u8], at: usize) -> Result<u32> {
    buf.get(at..at + 4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
        .ok_or_else(|| Error::corrupt("structure shorter than its fields"))
}

/// Read a little-endian u16 at `at`.
pub fn u16_at(buf: &[u8], at: usize) -> Result<u16> {
    buf.get(at..at + 2)
        .map(|b| u16::from_le_bytes(b.try_into().unwrap_or([0; 2])))
        .ok_or_else(|| Error::corrupt("structure shorter than its fields"))
}

/// Read a byte at `at`.
pub fn u8_at(buf: &[u8], at: usize) -> Result<u8> {
    buf.get(at)
        .copied()
        .ok_or_else(|| Error::corrupt("structure shorter than its fields"))
}

/// Read a big-endian u64 at `at`.
pub fn be64_at(buf: &[u8], at: usize) -> Result<u64> {
    buf.get(at..at + 8)
        .map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
        .ok_or_else(|| Error::corrupt("structure shorter than its fields"))
}

/// Write a little-endian u64 at `at` (the caller sized `buf`).
pub fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Write a little-endian u32 at `at`.
pub fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Write a little-endian u16 at `at`.
pub fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// Round `v` up to a multiple of `align` (a power of two).
pub const fn round_up(v: u64, align: u64) -> u64 {
    (v + align - 1) & !(align - 1)
}

/// Whether every byte is zero.
pub fn is_zero(buf: &[u8]) -> bool {
    buf.iter().all(|&b| b == 0)
}
