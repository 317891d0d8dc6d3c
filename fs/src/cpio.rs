//! Unpacking a cpio archive (the "newc" format the host tools write) into
//! a directory: how the initial ramdisk becomes the root filesystem.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;

use crate::error::FsError;
use crate::node::{FileType, Inode, SetAttr, Timespec};

/// Why an archive could not be unpacked (the kernel prints it and stops).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpioError {
    /// The bytes at `offset` are not a newc header.
    BadHeader {
        /// Where.
        offset: usize,
    },
    /// The archive ends inside an entry.
    Truncated {
        /// The entry's name.
        name: String,
    },
    /// Creating an entry failed.
    Fs {
        /// The entry's name.
        name: String,
        /// Why.
        error: FsError,
    },
}

impl core::fmt::Display for CpioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CpioError::BadHeader { offset } => write!(f, "not a cpio newc header at byte {offset}"),
            CpioError::Truncated { name } => write!(f, "archive ends inside '{name}'"),
            CpioError::Fs { name, error } => {
                write!(f, "cannot create '{name}': errno {}", error.errno())
            }
        }
    }
}

/// What one archive held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Regular files.
    pub files: usize,
    /// Directories.
    pub dirs: usize,
    /// Symbolic links.
    pub links: usize,
    /// Bytes of file data.
    pub bytes: u64,
}

fn hex(field: &[u8]) -> Option<u64> {
    core::str::from_utf8(field)
        .ok()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Find or create the directory `path` (components separated by '/') under `root`.
fn make_dirs(root: &Arc<dyn Inode>, path: &str) -> Result<Arc<dyn Inode>, FsError> {
    let mut dir = root.clone();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        dir = match dir.lookup(part) {
            Ok(d) => d,
            Err(FsError::NotFound) => dir.create(part, FileType::Directory, 0o755)?,
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

/// Unpack `archive` into `root`.
pub fn unpack(archive: &[u8], root: &Arc<dyn Inode>) -> Result<Unpacked, CpioError> {
    let mut at = 0;
    let mut out = Unpacked::default();
    // Hard links share an inode number within one archive.
    let mut seen: BTreeMap<u64, Arc<dyn Inode>> = BTreeMap::new();
    loop {
        let header = archive
            .get(at..at + 110)
            .ok_or(CpioError::BadHeader { offset: at })?;
        if &header[..6] != b"070701" && &header[..6] != b"070702" {
            return Err(CpioError::BadHeader { offset: at });
        }
        let field = |i: usize| {
            hex(&header[6 + i * 8..14 + i * 8]).ok_or(CpioError::BadHeader { offset: at })
        };
        let (ino, mode, mtime, size, name_size) = (
            field(0)?,
            field(1)? as u32,
            field(5)?,
            field(6)? as usize,
            field(11)? as usize,
        );
        let name_start = at + 110;
        let raw_name =
            archive
                .get(name_start..name_start + name_size)
                .ok_or(CpioError::Truncated {
                    name: String::new(),
                })?;
        let name =
            String::from_utf8_lossy(raw_name.split(|&b| b == 0).next().unwrap_or(&[])).to_string();
        let data_start = pad4(name_start + name_size);
        if name == "TRAILER!!!" {
            return Ok(out);
        }
        let data = archive
            .get(data_start..data_start + size)
            .ok_or_else(|| CpioError::Truncated { name: name.clone() })?;
        at = pad4(data_start + size);
        let clean = name.trim_start_matches("./").trim_matches('/');
        if clean.is_empty() || clean == "." || clean.split('/').any(|c| c == "..") {
            continue; // the root itself, or a path escaping it
        }
        let fs_err = |error| CpioError::Fs {
            name: name.clone(),
            error,
        };
        let (parent, leaf) = match clean.rsplit_once('/') {
            Some((p, l)) => (make_dirs(root, p).map_err(fs_err)?, l),
            None => (root.clone(), clean),
        };
        let times = SetAttr {
            mode: Some(mode & 0o7777),
            mtime: Some(Timespec {
                sec: mtime as i64,
                nsec: 0,
            }),
            ..Default::default()
        };
        match mode & 0o170000 {
            0o040000 => {
                let dir = match parent.lookup(leaf) {
                    Ok(d) => d,
                    Err(_) => parent
                        .create(leaf, FileType::Directory, mode)
                        .map_err(fs_err)?,
                };
                let _ = dir.setattr(times);
                out.dirs += 1;
            }
            0o120000 => {
                let target = String::from_utf8_lossy(data).to_string();
                parent.symlink(leaf, &target).map_err(fs_err)?;
                out.links += 1;
            }
            0o100000 => {
                if let Some(existing) = seen.get(&ino).filter(|_| ino != 0) {
                    parent.link(leaf, existing).map_err(fs_err)?;
                    if !data.is_empty() {
                        existing.write_at(0, data).map_err(fs_err)?;
                    }
                    continue;
                }
                let file = parent
                    .create(leaf, FileType::Regular, mode)
                    .map_err(fs_err)?;
                file.write_at(0, data).map_err(fs_err)?;
                let _ = file.setattr(times);
                if ino != 0 {
                    seen.insert(ino, file);
                }
                out.files += 1;
                out.bytes += data.len() as u64;
            }
            _ => {} // devices and fifos: Keel provides its own /dev
        }
    }
}
