//! Metadata: stat and statx, directory listing, access checks, mode,
//! owner and times, sizes, statfs.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use keel_fs::{FileType, Inode, Metadata, SetAttr, Timespec};

use super::file;
use crate::errno::{Errno, SysResult};
use crate::paths::{self, AT_EMPTY_PATH, AT_NO_AUTOMOUNT, AT_SYMLINK_NOFOLLOW, Target};
use crate::syscall::Call;
use crate::{mem, process};

fn write_stat(c: &Call<'_>, m: &Metadata, addr: u64) -> SysResult {
    let mut buf = [0u8; 144];
    let n = c.abi.encode_stat(m, &mut buf);
    mem::write_bytes(addr, &buf[..n])?;
    Ok(0)
}

/// fstat(2).
pub fn fstat(c: &mut Call<'_>) -> SysResult {
    let m = file(c.int(0))?.metadata()?;
    write_stat(c, &m, c.args[1])
}

/// stat(2).
pub fn stat(c: &mut Call<'_>) -> SysResult {
    let m = paths::target_at(paths::AT_FDCWD, c.args[0], 0)?.metadata()?;
    write_stat(c, &m, c.args[1])
}

/// lstat(2).
pub fn lstat(c: &mut Call<'_>) -> SysResult {
    let m = paths::target_at(paths::AT_FDCWD, c.args[0], AT_SYMLINK_NOFOLLOW)?.metadata()?;
    write_stat(c, &m, c.args[1])
}

/// newfstatat(2) (fstatat).
pub fn newfstatat(c: &mut Call<'_>) -> SysResult {
    let flags = c.args[3];
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let m = paths::target_at(c.int(0), c.args[1], flags)?.metadata()?;
    write_stat(c, &m, c.args[2])
}

/// Linux's split of a dev_t into (major, minor).
fn dev_parts(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// Encode `struct statx` (the same on every arch).
pub fn encode_statx(m: &Metadata) -> [u8; 256] {
    const STATX_BASIC_STATS: u32 = 0x7ff;
    let mut b = [0u8; 256];
    let mut put = |at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &STATX_BASIC_STATS.to_le_bytes());
    put(4, &m.blksize.to_le_bytes());
    put(16, &m.nlink.to_le_bytes());
    put(20, &m.uid.to_le_bytes());
    put(24, &m.gid.to_le_bytes());
    put(28, &(m.mode as u16).to_le_bytes());
    put(32, &m.ino.to_le_bytes());
    put(40, &m.size.to_le_bytes());
    put(48, &m.blocks.to_le_bytes());
    for (at, t) in [(64, m.atime), (96, m.ctime), (112, m.mtime)] {
        put(at, &t.sec.to_le_bytes());
        put(at + 8, &t.nsec.to_le_bytes());
    }
    let (rmaj, rmin) = dev_parts(m.rdev);
    let (dmaj, dmin) = dev_parts(m.dev);
    put(128, &rmaj.to_le_bytes());
    put(132, &rmin.to_le_bytes());
    put(136, &dmaj.to_le_bytes());
    put(140, &dmin.to_le_bytes());
    b
}

/// statx(2).
pub fn statx(c: &mut Call<'_>) -> SysResult {
    const AT_STATX_SYNC_TYPE: u64 = 0x6000;
    const STATX_RESERVED: u64 = 0x8000_0000;
    let flags = c.args[2];
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || c.args[3] & STATX_RESERVED != 0
    {
        return Err(Errno::EINVAL);
    }
    let m = paths::target_at(c.int(0), c.args[1], flags)?.metadata()?;
    mem::write_bytes(c.args[4], &encode_statx(&m))?;
    Ok(0)
}

/// getdents64(2).
pub fn getdents64(c: &mut Call<'_>) -> SysResult {
    let f = file(c.int(0))?;
    let cap = c.args[2] as usize;
    let entries = f.read_dir(f.dir_position())?;
    let mut out = alloc::vec::Vec::new();
    let mut last = None;
    for (e, cookie) in entries {
        let reclen = (19 + e.name.len() + 1).next_multiple_of(8);
        if out.len() + reclen > cap {
            if out.is_empty() {
                return Err(Errno::EINVAL); // buffer too small for one entry
            }
            break;
        }
        let start = out.len();
        out.resize(start + reclen, 0);
        let rec = &mut out[start..];
        rec[0..8].copy_from_slice(&e.ino.to_le_bytes());
        rec[8..16].copy_from_slice(&cookie.to_le_bytes());
        rec[16..18].copy_from_slice(&(reclen as u16).to_le_bytes());
        rec[18] = e.kind.dirent_type();
        rec[19..19 + e.name.len()].copy_from_slice(e.name.as_bytes());
        last = Some(cookie);
    }
    mem::write_bytes(c.args[1], &out)?;
    if let Some(cookie) = last {
        f.set_dir_position(cookie);
    }
    Ok(out.len() as isize)
}

fn check_access(target: &Target, mode: u64) -> SysResult {
    const X_OK: u64 = 1;
    if mode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    let m = target.metadata()?;
    // The app runs as root: read and write are allowed; execute needs an
    // execute bit somewhere (or a directory), as for root on Linux.
    if mode & X_OK != 0 && m.file_type() != FileType::Directory && m.mode & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    Ok(0)
}

/// access(2).
pub fn access(c: &mut Call<'_>) -> SysResult {
    check_access(&paths::target_at(paths::AT_FDCWD, c.args[0], 0)?, c.args[1])
}

/// faccessat(2).
pub fn faccessat(c: &mut Call<'_>) -> SysResult {
    check_access(&paths::target_at(c.int(0), c.args[1], 0)?, c.args[2])
}

/// faccessat2(2).
pub fn faccessat2(c: &mut Call<'_>) -> SysResult {
    const AT_EACCESS: u64 = 0x200;
    let flags = c.args[3];
    if flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    check_access(&paths::target_at(c.int(0), c.args[1], flags)?, c.args[2])
}

fn inode_of(t: &Target) -> Result<Arc<dyn Inode>, Errno> {
    t.inode().ok_or(Errno::EPERM)
}

fn set(t: &Target, attr: SetAttr) -> SysResult {
    inode_of(t)?.setattr(attr)?;
    Ok(0)
}

fn mode_attr(mode: u64) -> SetAttr {
    SetAttr {
        mode: Some(mode as u32 & 0o7777),
        ..Default::default()
    }
}

/// chmod(2).
pub fn chmod(c: &mut Call<'_>) -> SysResult {
    set(
        &paths::target_at(paths::AT_FDCWD, c.args[0], 0)?,
        mode_attr(c.args[1]),
    )
}

/// fchmod(2).
pub fn fchmod(c: &mut Call<'_>) -> SysResult {
    set(&Target::File(file(c.int(0))?), mode_attr(c.args[1]))
}

/// fchmodat(2) (three arguments: no flags).
pub fn fchmodat(c: &mut Call<'_>) -> SysResult {
    set(
        &paths::target_at(c.int(0), c.args[1], 0)?,
        mode_attr(c.args[2]),
    )
}

fn owner_attr(uid: u64, gid: u64) -> SetAttr {
    let id = |v: u64| (v as u32 != u32::MAX).then_some(v as u32);
    SetAttr {
        uid: id(uid),
        gid: id(gid),
        ..Default::default()
    }
}

/// chown(2).
pub fn chown(c: &mut Call<'_>) -> SysResult {
    set(
        &paths::target_at(paths::AT_FDCWD, c.args[0], 0)?,
        owner_attr(c.args[1], c.args[2]),
    )
}

/// lchown(2).
pub fn lchown(c: &mut Call<'_>) -> SysResult {
    set(
        &paths::target_at(paths::AT_FDCWD, c.args[0], AT_SYMLINK_NOFOLLOW)?,
        owner_attr(c.args[1], c.args[2]),
    )
}

/// fchown(2).
pub fn fchown(c: &mut Call<'_>) -> SysResult {
    set(
        &Target::File(file(c.int(0))?),
        owner_attr(c.args[1], c.args[2]),
    )
}

/// fchownat(2).
pub fn fchownat(c: &mut Call<'_>) -> SysResult {
    let flags = c.args[4];
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    set(
        &paths::target_at(c.int(0), c.args[1], flags)?,
        owner_attr(c.args[2], c.args[3]),
    )
}

/// utimensat(2).
pub fn utimensat(c: &mut Call<'_>) -> SysResult {
    const UTIME_NOW: i64 = (1 << 30) - 1;
    const UTIME_OMIT: i64 = (1 << 30) - 2;
    let flags = c.args[3];
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    // A NULL path means the descriptor itself (what futimens does).
    let target = if c.args[1] == 0 {
        if c.int(0) as i32 == paths::AT_FDCWD as i32 {
            return Err(Errno::EFAULT);
        }
        Target::File(file(c.int(0))?)
    } else {
        paths::target_at(c.int(0), c.args[1], flags)?
    };
    let now = Timespec::now();
    let (atime, mtime) = if c.args[2] == 0 {
        (Some(now), Some(now))
    } else {
        let raw = mem::read_bytes(c.args[2], 32)?;
        let one = |at: usize| -> Result<Option<Timespec>, Errno> {
            let sec = i64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
            let nsec = i64::from_le_bytes(raw[at + 8..at + 16].try_into().expect("8 bytes"));
            match nsec {
                UTIME_NOW => Ok(Some(now)),
                UTIME_OMIT => Ok(None),
                n if (0..1_000_000_000).contains(&n) => Ok(Some(Timespec {
                    sec,
                    nsec: n as u32,
                })),
                _ => Err(Errno::EINVAL),
            }
        };
        (one(0)?, one(16)?)
    };
    set(
        &target,
        SetAttr {
            atime,
            mtime,
            ..Default::default()
        },
    )
}

fn truncate_inode(inode: &Arc<dyn Inode>, len: u64) -> SysResult {
    if (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    match inode.metadata().file_type() {
        FileType::Directory => Err(Errno::EISDIR),
        FileType::Regular => {
            inode.truncate(len)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// truncate(2).
pub fn truncate(c: &mut Call<'_>) -> SysResult {
    let t = paths::target_at(paths::AT_FDCWD, c.args[0], 0)?;
    truncate_inode(&inode_of(&t)?, c.args[1])
}

/// ftruncate(2).
pub fn ftruncate(c: &mut Call<'_>) -> SysResult {
    let f = file(c.int(0))?;
    if !f.access().1 {
        return Err(Errno::EINVAL);
    }
    truncate_inode(&f.inode().ok_or(Errno::EINVAL)?, c.args[1])
}

/// fallocate(2): mode 0 extends the file; KEEP_SIZE only checks.
pub fn fallocate(c: &mut Call<'_>) -> SysResult {
    const FALLOC_FL_KEEP_SIZE: u64 = 1;
    let f = file(c.int(0))?;
    let (mode, offset, len) = (c.args[1], c.int(2), c.int(3));
    if offset < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if mode & !FALLOC_FL_KEEP_SIZE != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if !f.access().1 {
        return Err(Errno::EBADF);
    }
    let inode = f.inode().ok_or(Errno::ENODEV)?;
    let end = (offset as u64)
        .checked_add(len as u64)
        .ok_or(Errno::EFBIG)?;
    if mode == 0 && end > inode.metadata().size {
        truncate_inode(&inode, end)?;
    }
    Ok(0)
}

/// umask(2).
pub fn umask(c: &mut Call<'_>) -> SysResult {
    Ok(process::get()
        .umask
        .swap(c.args[0] as u32 & 0o777, Ordering::Relaxed) as isize)
}

/// The filesystem type magic (statfs f_type) of the mount holding `path`.
fn fs_magic(path: &str) -> i64 {
    let mounts = process::get().vfs.mount_list();
    let name = mounts
        .iter()
        .filter(|(at, _)| at == "/" || path == at || path.starts_with(&alloc::format!("{at}/")))
        .max_by_key(|(at, _)| at.len())
        .map_or("ramfs", |(_, n)| *n);
    match name {
        "proc" => 0x9fa0,
        "sysfs" => 0x6265_6572,
        "devfs" | "devtmpfs" => 0x0102_1994,
        "zfs" => 0x2fc1_2fc1,
        _ => 0x8584_58f6, // ramfs
    }
}

fn write_statfs(path: &str, addr: u64) -> SysResult {
    let (free, total) = keel_core::memory::frame::stats();
    let mut b = [0u8; 120];
    let words: [i64; 9] = [
        fs_magic(path),
        4096,
        total as i64,
        free as i64,
        free as i64,
        1 << 20,
        1 << 20,
        0,
        255,
    ];
    for (i, w) in words.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    b[72..80].copy_from_slice(&4096i64.to_le_bytes()); // f_frsize
    mem::write_bytes(addr, &b)?;
    Ok(0)
}

/// statfs(2).
pub fn statfs(c: &mut Call<'_>) -> SysResult {
    let path = mem::read_path(c.args[0])?;
    let r = paths::resolve_at(paths::AT_FDCWD, &path, true)?;
    write_statfs(&r.path, c.args[1])
}

/// fstatfs(2).
pub fn fstatfs(c: &mut Call<'_>) -> SysResult {
    let f = file(c.int(0))?;
    write_statfs(&f.path(), c.args[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_numbers_split_like_linux() {
        assert_eq!(dev_parts((1 << 8) | 3), (1, 3));
        assert_eq!(dev_parts((259 << 8) | 7), (259, 7));
        let m = Metadata {
            ino: 42,
            mode: 0o100644,
            nlink: 1,
            size: 10,
            blksize: 4096,
            ..Default::default()
        };
        let b = encode_statx(&m);
        assert_eq!(u64::from_le_bytes(b[32..40].try_into().unwrap()), 42);
        assert_eq!(u16::from_le_bytes(b[28..30].try_into().unwrap()), 0o100644);
    }
}
