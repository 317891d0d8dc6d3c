//! Names in the namespace: opening and creating, directories, removing,
//! renaming, links, and the working directory.

use core::sync::atomic::Ordering;

use keel_fs::{FileType, FsError, Lookup};

use super::file;
use crate::errno::{Errno, SysResult};
use crate::fdtable::Fd;
use crate::paths::{self, AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW};
use crate::syscall::Call;
use crate::{mem, process};

fn open_common(c: &Call<'_>, dirfd: i64, path_addr: u64, raw_flags: u64, mode: u64) -> SysResult {
    let path = mem::read_path(path_addr)?;
    let (flags, cloexec) = c.abi.open_flags(raw_flags as u32)?;
    let f = paths::open_at(dirfd, &path, flags, mode as u32)?;
    let fd = process::get().fds.lock().insert(Fd { file: f, cloexec })?;
    Ok(fd as isize)
}

/// open(2).
pub fn open(c: &mut Call<'_>) -> SysResult {
    open_common(c, AT_FDCWD, c.args[0], c.args[1], c.args[2])
}

/// openat(2).
pub fn openat(c: &mut Call<'_>) -> SysResult {
    open_common(c, c.int(0), c.args[1], c.args[2], c.args[3])
}

/// creat(2).
pub fn creat(c: &mut Call<'_>) -> SysResult {
    const O_CREAT_WRONLY_TRUNC: u64 = 0o100 | 1 | 0o1000;
    open_common(c, AT_FDCWD, c.args[0], O_CREAT_WRONLY_TRUNC, c.args[1])
}

fn parent(dirfd: i64, path_addr: u64) -> Result<(keel_fs::Resolved, alloc::string::String), Errno> {
    let path = mem::read_path(path_addr)?;
    let base = paths::base(dirfd, &path)?;
    Ok(process::get().vfs.resolve_parent(&base, &path)?)
}

fn mkdir_at(dirfd: i64, path_addr: u64, mode: u64) -> SysResult {
    let (dir, name) =
        parent(dirfd, path_addr).map_err(|e| if e == Errno::EBUSY { Errno::EEXIST } else { e })?;
    if dir.inode.lookup(&name).is_ok() {
        return Err(Errno::EEXIST);
    }
    let umask = process::get().umask.load(Ordering::Relaxed);
    dir.inode
        .create(&name, FileType::Directory, mode as u32 & 0o7777 & !umask)?;
    Ok(0)
}

/// mkdir(2).
pub fn mkdir(c: &mut Call<'_>) -> SysResult {
    mkdir_at(AT_FDCWD, c.args[0], c.args[1])
}

/// mkdirat(2).
pub fn mkdirat(c: &mut Call<'_>) -> SysResult {
    mkdir_at(c.int(0), c.args[1], c.args[2])
}

fn remove_at(dirfd: i64, path_addr: u64, directory: bool) -> SysResult {
    let (dir, name) = parent(dirfd, path_addr)?;
    if directory {
        dir.inode.rmdir(&name)?;
    } else {
        dir.inode.unlink(&name)?;
    }
    Ok(0)
}

/// rmdir(2).
pub fn rmdir(c: &mut Call<'_>) -> SysResult {
    remove_at(AT_FDCWD, c.args[0], true)
}

/// unlink(2).
pub fn unlink(c: &mut Call<'_>) -> SysResult {
    remove_at(AT_FDCWD, c.args[0], false)
}

/// unlinkat(2).
pub fn unlinkat(c: &mut Call<'_>) -> SysResult {
    if c.args[2] & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    remove_at(c.int(0), c.args[1], c.args[2] & AT_REMOVEDIR != 0)
}

fn rename_at(olddir: i64, old: u64, newdir: i64, new: u64, flags: u64) -> SysResult {
    const RENAME_NOREPLACE: u64 = 1;
    if flags & !RENAME_NOREPLACE != 0 {
        return Err(Errno::EINVAL); // RENAME_EXCHANGE, RENAME_WHITEOUT
    }
    let (from_dir, from_name) = parent(olddir, old)?;
    let (to_dir, to_name) = parent(newdir, new)?;
    if flags & RENAME_NOREPLACE != 0 && to_dir.inode.lookup(&to_name).is_ok() {
        return Err(Errno::EEXIST);
    }
    from_dir.inode.rename(&from_name, &to_dir.inode, &to_name)?;
    Ok(0)
}

/// rename(2).
pub fn rename(c: &mut Call<'_>) -> SysResult {
    rename_at(AT_FDCWD, c.args[0], AT_FDCWD, c.args[1], 0)
}

/// renameat(2).
pub fn renameat(c: &mut Call<'_>) -> SysResult {
    rename_at(c.int(0), c.args[1], c.int(2), c.args[3], 0)
}

/// renameat2(2).
pub fn renameat2(c: &mut Call<'_>) -> SysResult {
    rename_at(c.int(0), c.args[1], c.int(2), c.args[3], c.args[4])
}

fn readlink_at(dirfd: i64, path_addr: u64, buf: u64, size: u64) -> SysResult {
    if (size as i64) <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = mem::read_cstr(path_addr, mem::MAX_STRING)?;
    let r = if path.is_empty() {
        // Linux reads the link an O_PATH descriptor refers to.
        let f = file(dirfd)?;
        f.inode().ok_or(Errno::ENOENT)?
    } else {
        paths::resolve_at(dirfd, &path, false)?.inode
    };
    let target = r.readlink()?;
    let n = target.len().min(size as usize);
    mem::write_bytes(buf, &target.as_bytes()[..n])?;
    Ok(n as isize)
}

/// readlink(2).
pub fn readlink(c: &mut Call<'_>) -> SysResult {
    readlink_at(AT_FDCWD, c.args[0], c.args[1], c.args[2])
}

/// readlinkat(2).
pub fn readlinkat(c: &mut Call<'_>) -> SysResult {
    readlink_at(c.int(0), c.args[1], c.args[2], c.args[3])
}

fn symlink_at(target_addr: u64, dirfd: i64, path_addr: u64) -> SysResult {
    let target = mem::read_path(target_addr)?;
    let (dir, name) =
        parent(dirfd, path_addr).map_err(|e| if e == Errno::EBUSY { Errno::EEXIST } else { e })?;
    if dir.inode.lookup(&name).is_ok() {
        return Err(Errno::EEXIST);
    }
    dir.inode.symlink(&name, &target)?;
    Ok(0)
}

/// symlink(2).
pub fn symlink(c: &mut Call<'_>) -> SysResult {
    symlink_at(c.args[0], AT_FDCWD, c.args[1])
}

/// symlinkat(2).
pub fn symlinkat(c: &mut Call<'_>) -> SysResult {
    symlink_at(c.args[0], c.int(1), c.args[2])
}

fn link_at(olddir: i64, old: u64, newdir: i64, new: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    // linkat does not follow a final symlink unless asked.
    let nofollow = if flags & AT_SYMLINK_FOLLOW != 0 {
        0
    } else {
        paths::AT_SYMLINK_NOFOLLOW
    };
    let target = paths::target_at(olddir, old, (flags & AT_EMPTY_PATH) | nofollow)?;
    let inode = target.inode().ok_or(Errno::ENOENT)?;
    if inode.metadata().file_type() == FileType::Directory {
        return Err(Errno::EPERM);
    }
    let (dir, name) = parent(newdir, new)?;
    match dir.inode.lookup(&name) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(FsError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    dir.inode.link(&name, &inode)?;
    Ok(0)
}

/// link(2).
pub fn link(c: &mut Call<'_>) -> SysResult {
    link_at(AT_FDCWD, c.args[0], AT_FDCWD, c.args[1], 0)
}

/// linkat(2).
pub fn linkat(c: &mut Call<'_>) -> SysResult {
    link_at(c.int(0), c.args[1], c.int(2), c.args[3], c.args[4])
}

/// getcwd(2): returns the length including the NUL, as the raw call does.
pub fn getcwd(c: &mut Call<'_>) -> SysResult {
    let path = process::get().cwd.lock().path.clone();
    let size = c.args[1] as usize;
    if size == 0 && c.args[0] != 0 {
        return Err(Errno::EINVAL);
    }
    if path.len() + 1 > size {
        return Err(Errno::ERANGE);
    }
    let mut bytes = path.into_bytes();
    bytes.push(0);
    mem::write_bytes(c.args[0], &bytes)?;
    Ok(bytes.len() as isize)
}

/// chdir(2).
pub fn chdir(c: &mut Call<'_>) -> SysResult {
    let path = mem::read_path(c.args[0])?;
    let p = process::get();
    let base = paths::base(AT_FDCWD, &path)?;
    let r = p.vfs.resolve(&base, &path, Lookup::Follow)?;
    if r.inode.metadata().file_type() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    *p.cwd.lock() = r;
    Ok(0)
}

/// fchdir(2).
pub fn fchdir(c: &mut Call<'_>) -> SysResult {
    let r = paths::dir_of(&file(c.int(0))?)?;
    *process::get().cwd.lock() = r;
    Ok(0)
}
