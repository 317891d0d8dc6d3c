//! Helpers shared by the integration tests: a file-backed block device,
//! the shared reference data, temporary folders, and hex SHA-256.

#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use keel_zfs::{BlockDevice, DeviceError};

/// A pool image in a host file.
pub struct FileDevice {
    file: File,
    size: u64,
}

impl FileDevice {
    /// Open an image file for reading and writing.
    pub fn open(path: &Path) -> FileDevice {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open image");
        let size = file.metadata().expect("stat image").len();
        FileDevice { file, size }
    }
}

fn fail(offset: u64, len: usize, reason: &'static str) -> DeviceError {
    DeviceError {
        offset,
        len: len as u64,
        reason,
    }
}

impl BlockDevice for FileDevice {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.file
            .seek(SeekFrom::Start(offset))
            .map_err(|_| fail(offset, buf.len(), "seek failed"))?;
        self.file
            .read_exact(buf)
            .map_err(|_| fail(offset, buf.len(), "read failed"))
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.file
            .seek(SeekFrom::Start(offset))
            .map_err(|_| fail(offset, data.len(), "seek failed"))?;
        self.file
            .write_all(data)
            .map_err(|_| fail(offset, data.len(), "write failed"))
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        self.file
            .sync_data()
            .map_err(|_| fail(0, 0, "flush failed"))
    }
}

/// The project's shared data folder (`../shared` beside the repository),
/// or `$KEEL_SHARED`.
pub fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KEEL_SHARED") {
        return dir.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// A fresh temporary folder under the target directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/zfs-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    keel_zfs::checksum::sha256(data)
        .iter()
        .map(|w| format!("{w:016x}"))
        .collect()
}
