//! Disks the platform found (virtio-blk, …), shared by every filesystem
//! that needs one. Drivers implement [`Disk`] and [`register`] it during
//! device discovery; the ZFS mount and tests look disks up by index.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

/// Why a disk request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskError {
    /// The range is not inside the disk or not sector aligned.
    OutOfRange,
    /// The device is read-only.
    ReadOnly,
    /// The device reported an I/O error for the request.
    Io,
    /// The device stopped answering or broke its protocol.
    Device(&'static str),
}

/// A block device. Every method may block the calling thread until the
/// device answers; several threads may have requests in flight at once.
/// Offsets and lengths are multiples of [`Disk::sector_size`].
pub trait Disk: Send + Sync {
    /// Driver description for logs (`virtio-blk 00:04.0`).
    fn description(&self) -> &str;
    /// Capacity in bytes.
    fn size(&self) -> u64;
    /// Logical sector size in bytes (512 or 4096).
    fn sector_size(&self) -> u32 {
        512
    }
    /// True when writes are refused.
    fn read_only(&self) -> bool {
        false
    }
    /// Fill `buf` from byte `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// Write `data` at byte `offset` (durable only after [`Disk::flush`]).
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), DiskError>;
    /// Make every completed write durable.
    fn flush(&self) -> Result<(), DiskError>;
}

static DISKS: Mutex<Vec<Arc<dyn Disk>>> = Mutex::new(Vec::new());

/// Make a disk known; returns its index (`/dev/vd{a+index}`).
pub fn register(disk: Arc<dyn Disk>) -> usize {
    let mut disks = DISKS.lock();
    disks.push(disk);
    disks.len() - 1
}

/// The disk with this index.
pub fn disk(index: usize) -> Option<Arc<dyn Disk>> {
    DISKS.lock().get(index).cloned()
}

/// Every registered disk, in registration order.
pub fn disks() -> Vec<Arc<dyn Disk>> {
    DISKS.lock().clone()
}

/// The conventional device name for disk `index`: vda, vdb, …, vdz, vdaa.
pub fn disk_name(index: usize) -> String {
    let mut name = String::from("vd");
    let mut letters = Vec::new();
    let mut n = index;
    loop {
        letters.push(b'a' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    letters.reverse();
    name.push_str(core::str::from_utf8(&letters).unwrap_or("?"));
    name
}

#[cfg(test)]
mod tests {
    use super::disk_name;

    #[test]
    fn disk_names_follow_the_linux_scheme() {
        assert_eq!(disk_name(0), "vda");
        assert_eq!(disk_name(25), "vdz");
        assert_eq!(disk_name(26), "vdaa");
        assert_eq!(disk_name(27), "vdab");
        assert_eq!(disk_name(26 + 26 * 26), "vdaaa");
    }
}
