//! Paths as system calls name them: relative to the working directory or a
//! directory descriptor (the *at calls), or the descriptor itself
//! (AT_EMPTY_PATH); and opening what a path names.

use alloc::string::String;
use alloc::sync::Arc;

use keel_fs::synth::{SynthFile, SynthLink};
use keel_fs::{FileLike, FileType, FsError, Inode, InodeFile, Lookup, OpenFlags, Resolved};

use crate::errno::Errno;
use crate::process;

/// AT_FDCWD.
pub const AT_FDCWD: i64 = -100;
/// AT_SYMLINK_NOFOLLOW.
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
/// AT_REMOVEDIR (unlinkat) and AT_EACCESS (faccessat) share a value.
pub const AT_REMOVEDIR: u64 = 0x200;
/// AT_SYMLINK_FOLLOW (linkat).
pub const AT_SYMLINK_FOLLOW: u64 = 0x400;
/// AT_NO_AUTOMOUNT (nothing automounts in Keel: accepted).
pub const AT_NO_AUTOMOUNT: u64 = 0x800;
/// AT_EMPTY_PATH.
pub const AT_EMPTY_PATH: u64 = 0x1000;

/// The directory a relative `path` is resolved from.
pub fn base(dirfd: i64, path: &str) -> Result<Resolved, Errno> {
    let p = process::get();
    if path.starts_with('/') {
        return Ok(p.vfs.root());
    }
    if dirfd as i32 == AT_FDCWD as i32 {
        return Ok(p.cwd.lock().clone());
    }
    let file = p.fds.lock().file(dirfd)?;
    dir_of(&file)
}

/// The directory an open descriptor refers to (ENOTDIR if it is not one).
pub fn dir_of(file: &Arc<dyn FileLike>) -> Result<Resolved, Errno> {
    let inode = file.inode().ok_or(Errno::ENOTDIR)?;
    if inode.metadata().file_type() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    Ok(Resolved {
        inode,
        path: file.path(),
    })
}

/// Resolve `path` relative to `dirfd`.
pub fn resolve_at(dirfd: i64, path: &str, follow: bool) -> Result<Resolved, Errno> {
    let b = base(dirfd, path)?;
    let last = if follow {
        Lookup::Follow
    } else {
        Lookup::NoFollow
    };
    Ok(process::get().vfs.resolve(&b, path, last)?)
}

/// What an *at call operates on: a path, or with AT_EMPTY_PATH and an
/// empty path, the descriptor itself.
pub enum Target {
    /// A resolved path.
    Path(Resolved),
    /// An open file.
    File(Arc<dyn FileLike>),
}

impl Target {
    /// The object's metadata.
    pub fn metadata(&self) -> Result<keel_fs::Metadata, Errno> {
        match self {
            Target::Path(r) => Ok(r.inode.metadata()),
            Target::File(f) => Ok(f.metadata()?),
        }
    }

    /// The inode, where there is one.
    pub fn inode(&self) -> Option<Arc<dyn keel_fs::Inode>> {
        match self {
            Target::Path(r) => Some(r.inode.clone()),
            Target::File(f) => f.inode(),
        }
    }
}

/// Resolve the (dirfd, path, flags) triple of an *at call.
pub fn target_at(dirfd: i64, path_addr: u64, flags: u64) -> Result<Target, Errno> {
    let path = if path_addr == 0 && flags & AT_EMPTY_PATH != 0 {
        String::new()
    } else {
        crate::mem::read_cstr(path_addr, crate::mem::MAX_STRING)?
    };
    if path.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dirfd as i32 == AT_FDCWD as i32 {
            return Ok(Target::Path(process::get().cwd.lock().clone()));
        }
        return Ok(Target::File(process::get().fds.lock().file(dirfd)?));
    }
    resolve_at(dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0).map(Target::Path)
}

/// Open what `path` (relative to `dirfd`) names.
pub fn open_at(
    dirfd: i64,
    path: &str,
    flags: OpenFlags,
    mode: u32,
) -> Result<Arc<dyn FileLike>, Errno> {
    let p = process::get();
    let b = base(dirfd, path)?;
    let resolved = if flags.create {
        let (dir, name) = p.vfs.resolve_parent(&b, path).map_err(|e| {
            if e == FsError::Busy {
                FsError::IsDir
            } else {
                e
            }
        })?;
        match dir.inode.lookup(&name) {
            Ok(_) if flags.exclusive => return Err(Errno::EEXIST),
            Ok(_) => p.vfs.resolve(
                &b,
                path,
                if flags.nofollow {
                    Lookup::NoFollow
                } else {
                    Lookup::Follow
                },
            )?,
            Err(FsError::NotFound) => {
                if flags.directory {
                    return Err(Errno::EINVAL);
                }
                let umask = p.umask.load(core::sync::atomic::Ordering::Relaxed);
                let inode = dir
                    .inode
                    .create(&name, FileType::Regular, mode & 0o7777 & !umask)?;
                let full = keel_fs_join(&dir.path, &name);
                Resolved { inode, path: full }
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        // A /proc/self/fd link to an object with no path (a pipe) opens
        // that object; links to real paths are followed as usual.
        let link = p.vfs.resolve(&b, path, Lookup::NoFollow)?;
        if let Some(s) = link.inode.as_any().downcast_ref::<SynthLink>()
            && !flags.nofollow
            && s.readlink().is_ok_and(|t| !t.starts_with('/'))
        {
            return s.opened().ok_or(Errno::ENOENT);
        }
        if flags.nofollow {
            link
        } else {
            p.vfs.resolve(&b, path, Lookup::Follow)?
        }
    };
    open_resolved(resolved, flags)
}

fn keel_fs_join(dir: &str, name: &str) -> String {
    if dir == "/" {
        alloc::format!("/{name}")
    } else {
        alloc::format!("{dir}/{name}")
    }
}

/// Open an already resolved object.
pub fn open_resolved(r: Resolved, flags: OpenFlags) -> Result<Arc<dyn FileLike>, Errno> {
    let meta = r.inode.metadata();
    let kind = meta.file_type();
    if kind == FileType::Symlink && !flags.path_only {
        return Err(Errno::ELOOP); // O_NOFOLLOW on a link
    }
    if flags.directory && kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    if kind == FileType::Directory && flags.write {
        return Err(Errno::EISDIR);
    }
    if flags.path_only {
        return Ok(Arc::new(InodeFile::new(r.inode, r.path, flags)));
    }
    match kind {
        FileType::Regular | FileType::Directory => {
            if flags.write && r.inode.as_any().is::<SynthFile>() {
                // Generated files (procfs) refuse writers at open, as Linux does.
                return Err(Errno::EACCES);
            }
            if flags.truncate && flags.write && kind == FileType::Regular {
                r.inode.truncate(0)?;
            }
            Ok(Arc::new(InodeFile::new(r.inode, r.path, flags)))
        }
        _ => Ok(r.inode.open_special(flags)?),
    }
}
