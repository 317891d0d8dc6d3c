//! Filesystem errors, each with its Linux errno.

/// What went wrong, named after the errno it becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// EPERM.
    NotPermitted,
    /// ENOENT.
    NotFound,
    /// EIO.
    Io,
    /// EBADF.
    BadFile,
    /// EAGAIN.
    WouldBlock,
    /// ENOMEM.
    NoMemory,
    /// EACCES.
    Access,
    /// EFAULT.
    BadAddress,
    /// EBUSY.
    Busy,
    /// EEXIST.
    Exists,
    /// EXDEV.
    CrossDevice,
    /// ENOTDIR.
    NotDir,
    /// EISDIR.
    IsDir,
    /// EINVAL.
    Invalid,
    /// ENOTTY.
    NotTty,
    /// EFBIG.
    TooBig,
    /// ENOSPC.
    NoSpace,
    /// ESPIPE.
    NotSeekable,
    /// EROFS.
    ReadOnly,
    /// EPIPE.
    BrokenPipe,
    /// ENAMETOOLONG.
    NameTooLong,
    /// ENOTEMPTY.
    NotEmpty,
    /// ELOOP.
    Loop,
    /// EOPNOTSUPP.
    NotSupported,
    /// EINTR.
    Interrupted,
    /// Another errno, from an object that is not a file (a socket's
    /// ECONNRESET, ENOTCONN, ...), passed through unchanged.
    Other(i32),
}

/// Result of a filesystem operation.
pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    /// The Linux errno (the same on x86_64, aarch64 and ppc64 for these).
    pub const fn errno(self) -> i32 {
        match self {
            FsError::NotPermitted => 1,
            FsError::NotFound => 2,
            FsError::Interrupted => 4,
            FsError::Io => 5,
            FsError::BadFile => 9,
            FsError::WouldBlock => 11,
            FsError::NoMemory => 12,
            FsError::Access => 13,
            FsError::BadAddress => 14,
            FsError::Busy => 16,
            FsError::Exists => 17,
            FsError::CrossDevice => 18,
            FsError::NotDir => 20,
            FsError::IsDir => 21,
            FsError::Invalid => 22,
            FsError::NotTty => 25,
            FsError::TooBig => 27,
            FsError::NoSpace => 28,
            FsError::NotSeekable => 29,
            FsError::ReadOnly => 30,
            FsError::BrokenPipe => 32,
            FsError::NameTooLong => 36,
            FsError::NotEmpty => 39,
            FsError::Loop => 40,
            FsError::NotSupported => 95,
            FsError::Other(e) => e,
        }
    }
}
