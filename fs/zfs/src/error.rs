//! Errors: one enum for the whole crate, each mappable to a Linux errno.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

use crate::blkptr::BlockPointer;
use crate::device::DeviceError;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What went wrong. Corruption and unsupported features carry enough
/// context to log a useful line; none of them panics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The block device failed.
    Device(DeviceError),
    /// A block's checksum did not match on every copy.
    Checksum {
        /// The block pointer whose data failed verification.
        bp: Box<BlockPointer>,
    },
    /// On-disk data that cannot be right (bad magic, out-of-range field).
    Corrupt(String),
    /// Valid ZFS this crate does not handle (gang blocks, RAID-Z, features).
    Unsupported(String),
    /// No such file, directory or dataset.
    NotFound,
    /// A path component is not a directory.
    NotDirectory,
    /// Expected a file, found a directory.
    IsDirectory,
    /// The name already exists.
    Exists,
    /// Removing a directory that still has entries.
    NotEmpty,
    /// A name longer than 255 bytes, or empty, or containing '/' or NUL.
    InvalidName,
    /// An argument out of range (offset, size, mode).
    InvalidArgument(String),
    /// The pool is full.
    NoSpace,
    /// Too many symbolic links while resolving a path.
    SymlinkLoop,
}

impl Error {
    /// The Linux errno this error maps to.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Device(_) | Error::Checksum { .. } | Error::Corrupt(_) => 5, // EIO
            Error::Unsupported(_) => 95,                                        // EOPNOTSUPP
            Error::NotFound => 2,                                               // ENOENT
            Error::NotDirectory => 20,                                          // ENOTDIR
            Error::IsDirectory => 21,                                           // EISDIR
            Error::Exists => 17,                                                // EEXIST
            Error::NotEmpty => 39,                                              // ENOTEMPTY
            Error::InvalidName => 36,                                           // ENAMETOOLONG
            Error::InvalidArgument(_) => 22,                                    // EINVAL
            Error::NoSpace => 28,                                               // ENOSPC
            Error::SymlinkLoop => 40,                                           // ELOOP
        }
    }

    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(what: impl Into<String>) -> Error {
        Error::Corrupt(what.into())
    }

    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(what: impl Into<String>) -> Error {
        Error::Unsupported(what.into())
    }
}

impl From<DeviceError> for Error {
    fn from(e: DeviceError) -> Self {
        Error::Device(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Device(e) => write!(f, "device error: {e}"),
            Error::Checksum { bp } => write!(f, "checksum mismatch in block {bp}"),
            Error::Corrupt(what) => write!(f, "corrupt pool: {what}"),
            Error::Unsupported(what) => write!(f, "unsupported: {what}"),
            Error::NotFound => write!(f, "no such file or directory"),
            Error::NotDirectory => write!(f, "not a directory"),
            Error::IsDirectory => write!(f, "is a directory"),
            Error::Exists => write!(f, "file exists"),
            Error::NotEmpty => write!(f, "directory not empty"),
            Error::InvalidName => write!(f, "invalid file name"),
            Error::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Error::NoSpace => write!(f, "no space left in the pool"),
            Error::SymlinkLoop => write!(f, "too many levels of symbolic links"),
        }
    }
}
