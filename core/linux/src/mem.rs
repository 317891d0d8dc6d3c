//! Reading and writing app memory from system calls: every app pointer is
//! checked (inside the app range, readable/writable) and a bad one is
//! EFAULT, never a kernel fault.

use alloc::string::String;
use alloc::vec::Vec;

use keel_core::app::{copy_in, copy_out};

use crate::errno::Errno;

/// Longest string a path or name argument may be.
pub const MAX_STRING: usize = 4096;

/// Read `len` bytes at `addr`.
pub fn read_bytes(addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = alloc::vec![0u8; len];
    if copy_in(addr as usize, &mut buf) {
        Ok(buf)
    } else {
        Err(Errno::EFAULT)
    }
}

/// Read into `buf` from `addr`.
pub fn read_into(addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    if copy_in(addr as usize, buf) {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

/// Write `data` at `addr`.
pub fn write_bytes(addr: u64, data: &[u8]) -> Result<(), Errno> {
    if copy_out(addr as usize, data) {
        Ok(())
    } else {
        Err(Errno::EFAULT)
    }
}

/// Read a little-endian u64.
pub fn read_u64(addr: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    read_into(addr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// Read a little-endian u32.
pub fn read_u32(addr: u64) -> Result<u32, Errno> {
    let mut b = [0u8; 4];
    read_into(addr, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// Read a little-endian i32.
pub fn read_i32(addr: u64) -> Result<i32, Errno> {
    read_u32(addr).map(|v| v as i32)
}

/// Write a little-endian u64.
pub fn write_u64(addr: u64, v: u64) -> Result<(), Errno> {
    write_bytes(addr, &v.to_le_bytes())
}

/// Write a little-endian u32.
pub fn write_u32(addr: u64, v: u32) -> Result<(), Errno> {
    write_bytes(addr, &v.to_le_bytes())
}

/// Write a little-endian i32.
pub fn write_i32(addr: u64, v: i32) -> Result<(), Errno> {
    write_bytes(addr, &v.to_le_bytes())
}

/// Read a NUL-terminated string of at most `max` bytes (ENAMETOOLONG
/// beyond, EFAULT if unreadable, EINVAL if not UTF-8... no: lossy).
pub fn read_cstr(addr: u64, max: usize) -> Result<String, Errno> {
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    let mut out = Vec::new();
    let mut at = addr;
    // Read up to the end of each page so a string ending just before an
    // unmapped page is still read.
    while out.len() <= max {
        let room = 4096 - (at % 4096) as usize;
        let mut chunk = alloc::vec![0u8; room.min(max + 1 - out.len())];
        read_into(at, &mut chunk)?;
        if let Some(nul) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..nul]);
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&chunk);
        at += chunk.len() as u64;
    }
    Err(Errno::ENAMETOOLONG)
}

/// Read a path argument.
pub fn read_path(addr: u64) -> Result<String, Errno> {
    let p = read_cstr(addr, MAX_STRING)?;
    if p.is_empty() {
        return Err(Errno::ENOENT);
    }
    Ok(p)
}

/// Read a NULL-terminated array of string pointers (argv/envp), bounded.
pub fn read_string_array(addr: u64, max_items: usize) -> Result<Vec<String>, Errno> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    for i in 0..max_items {
        let p = read_u64(addr + 8 * i as u64)?;
        if p == 0 {
            return Ok(out);
        }
        out.push(read_cstr(p, MAX_STRING * 32)?);
    }
    Err(Errno::E2BIG)
}
