//! The block device a pool lives on: byte-addressed reads and writes plus a
//! cache flush, so virtio-blk (kernel) and a file (host) can both drive it.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// A device failure, with the byte offset that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceError {
    /// Byte offset of the failed request.
    pub offset: u64,
    /// Length of the failed request.
    pub len: u64,
    /// What the device said.
    pub reason: &'static str,
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} bytes at offset {:#x})",
            self.reason, self.len, self.offset
        )
    }
}

/// Storage for one vdev. Offsets and lengths are multiples of
/// [`BlockDevice::sector_size`] whenever this crate calls it.
pub trait BlockDevice {
    /// Size of the device in bytes.
    fn size(&self) -> u64;
    /// The device's logical sector size (512 or 4096).
    fn sector_size(&self) -> u32 {
        512
    }
    /// Fill `buf` from byte `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError>;
    /// Write `data` at byte `offset` (may stay in a volatile cache until
    /// [`BlockDevice::flush`]).
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError>;
    /// Make every completed write durable.
    fn flush(&mut self) -> Result<(), DeviceError>;

    /// Read whole sectors: `sector` is in units of [`BlockDevice::sector_size`].
    fn read_sectors(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let offset = sector * u64::from(self.sector_size());
        self.read_at(offset, buf)
    }
    /// Write whole sectors.
    fn write_sectors(&mut self, sector: u64, data: &[u8]) -> Result<(), DeviceError> {
        let offset = sector * u64::from(self.sector_size());
        self.write_at(offset, data)
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for &mut D {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn sector_size(&self) -> u32 {
        (**self).sector_size()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        (**self).write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        (**self).flush()
    }
}

/// A device in memory, for tests. It records every flush so tests can
/// check write ordering, and can be told to fail writes after a point to
/// simulate a power cut.
#[derive(Debug, Clone)]
pub struct MemoryDevice {
    /// The device's bytes.
    pub bytes: Vec<u8>,
    /// Number of flushes so far.
    pub flushes: u64,
    /// Writes accepted so far.
    pub writes: u64,
    /// When set, writes number `n` and later are silently dropped (a power
    /// cut after `n` writes: the device keeps what it had).
    pub drop_writes_from: Option<u64>,
}

impl MemoryDevice {
    /// A zeroed device of `size` bytes.
    pub fn new(size: u64) -> MemoryDevice {
        MemoryDevice {
            bytes: vec![0; size as usize],
            flushes: 0,
            writes: 0,
            drop_writes_from: None,
        }
    }

    fn range(&self, offset: u64, len: usize) -> Result<core::ops::Range<usize>, DeviceError> {
        let end = offset.checked_add(len as u64);
        match end {
            Some(end) if end <= self.bytes.len() as u64 => Ok(offset as usize..end as usize),
            _ => Err(DeviceError {
                offset,
                len: len as u64,
                reason: "access beyond the end of the device",
            }),
        }
    }
}

impl BlockDevice for MemoryDevice {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let r = self.range(offset, buf.len())?;
        buf.copy_from_slice(&self.bytes[r]);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let r = self.range(offset, data.len())?;
        let n = self.writes;
        self.writes += 1;
        if self.drop_writes_from.is_some_and(|cut| n >= cut) {
            return Ok(());
        }
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.flushes += 1;
        Ok(())
    }
}
