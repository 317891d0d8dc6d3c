//! Moving data: read/write and their positioned and vectored forms,
//! seeking, sendfile, pipes, closing and syncing.

use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_fs::{FileLike, FileType, FsError, Whence};

use super::file;
use crate::errno::{Errno, SysResult};
use crate::fdtable::Fd;
use crate::objects::pipe;
use crate::syscall::Call;
use crate::{mem, process};

/// Bytes moved through the kernel per step: large transfers go in steps so
/// a read of a huge file does not need a huge kernel buffer.
const CHUNK: usize = 256 * 1024;
/// Most iovecs one readv/writev takes (IOV_MAX).
const IOV_MAX: usize = 1024;
/// Largest count one call transfers (Linux's MAX_RW_COUNT).
const MAX_RW: usize = 0x7fff_f000;

fn is_regular(f: &Arc<dyn FileLike>) -> bool {
    f.inode()
        .is_some_and(|i| i.metadata().file_type() == FileType::Regular)
}

/// Read up to `len` bytes into app memory at `addr`, via `step` (which
/// reads into a kernel buffer at a byte offset of the transfer).
fn read_to_app(
    f: &Arc<dyn FileLike>,
    addr: u64,
    len: usize,
    mut step: impl FnMut(&mut [u8], usize) -> Result<usize, FsError>,
) -> SysResult {
    let len = len.min(MAX_RW);
    if len == 0 {
        return Ok(0);
    }
    let whole = is_regular(f);
    let mut buf = alloc::vec![0u8; len.min(CHUNK)];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(buf.len());
        let n = match step(&mut buf[..want], done) {
            Ok(n) => n,
            Err(e) if done > 0 && e != FsError::BadAddress => break,
            Err(e) => return Err(e.into()),
        };
        mem::write_bytes(addr + done as u64, &buf[..n])?;
        done += n;
        // Regular files fill the whole request (up to end of file); pipes,
        // terminals and sockets return what they have.
        if n < want || !whole {
            break;
        }
    }
    Ok(done as isize)
}

/// Write `len` bytes from app memory at `addr` via `step`.
fn write_from_app(
    addr: u64,
    len: usize,
    mut step: impl FnMut(&[u8], usize) -> Result<usize, FsError>,
) -> SysResult {
    let len = len.min(MAX_RW);
    if len == 0 {
        return step(&[], 0).map(|n| n as isize).map_err(Errno::from);
    }
    let mut buf = alloc::vec![0u8; len.min(CHUNK)];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(buf.len());
        if let Err(e) = mem::read_into(addr + done as u64, &mut buf[..want]) {
            return if done > 0 { Ok(done as isize) } else { Err(e) };
        }
        let n = match step(&buf[..want], done) {
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e.into()),
        };
        done += n;
        if n < want {
            break;
        }
    }
    Ok(done as isize)
}

/// read(2).
pub fn read(c: &mut Call<'_>) -> SysResult {
    let f = file(c.int(0))?;
    let f2 = f.clone();
    read_to_app(&f, c.args[1], c.args[2] as usize, move |b, _| f2.read(b))
}

/// write(2).
pub fn write(c: &mut Call<'_>) -> SysResult {
    let f = file(c.int(0))?;
    write_from_app(c.args[1], c.args[2] as usize, |b, _| f.write(b))
}

fn offset_arg(v: u64) -> Result<u64, Errno> {
    if (v as i64) < 0 {
        Err(Errno::EINVAL)
    } else {
        Ok(v)
    }
}

/// pread64(2).
pub fn pread64(c: &mut Call<'_>) -> SysResult {
    let f = file(c.int(0))?;
    let at = offset_arg(c.args[3])?;
    let f2 = f.clone();
    read_to_app(&f, c.args[1], c.args[2] as usize, move |b, done| {
        f2.pread(b, at + done as u64)
    })
}

/// pwrite64(2).
pub fn pwrite64(c: &mut Call<'_>) -> SysResult {
    let f = file(c.int(0))?;
    let at = offset_arg(c.args[3])?;
    write_from_app(c.args[1], c.args[2] as usize, |b, done| {
        f.pwrite(b, at + done as u64)
    })
}

/// Read an iovec array: (base, len) pairs.
pub(crate) fn iovecs(addr: u64, count: u64) -> Result<Vec<(u64, usize)>, Errno> {
    let count = usize::try_from(count).map_err(|_| Errno::EINVAL)?;
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let raw = mem::read_bytes(addr, count * 16)?;
    let mut total: usize = 0;
    let mut out = Vec::with_capacity(count);
    for v in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(v[0..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(v[8..16].try_into().expect("8 bytes"));
        if (len as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        total = total.checked_add(len as usize).ok_or(Errno::EINVAL)?;
        out.push((base, len as usize));
    }
    Ok(out)
}

/// Vectored read: one read into a kernel buffer, scattered to the iovecs
/// (so a pipe or socket hands over one consistent piece).
fn readv_common(f: &Arc<dyn FileLike>, iov: &[(u64, usize)], at: Option<u64>) -> SysResult {
    let total: usize = iov.iter().map(|v| v.1).sum::<usize>().min(MAX_RW);
    if total == 0 {
        return Ok(0);
    }
    let mut buf = alloc::vec![0u8; total.min(16 << 20)];
    let n = match at {
        Some(off) => f.pread(&mut buf, off)?,
        None => f.read(&mut buf)?,
    };
    let mut done = 0;
    for &(base, len) in iov {
        if done == n {
            break;
        }
        let take = len.min(n - done);
        mem::write_bytes(base, &buf[done..done + take])?;
        done += take;
    }
    Ok(n as isize)
}

/// Vectored write: gathered into one buffer, written at once (pipe writes
/// of up to PIPE_BUF stay atomic).
fn writev_common(f: &Arc<dyn FileLike>, iov: &[(u64, usize)], at: Option<u64>) -> SysResult {
    let total: usize = iov.iter().map(|v| v.1).sum::<usize>().min(16 << 20);
    let mut buf = Vec::with_capacity(total);
    for &(base, len) in iov {
        let take = len.min(total - buf.len());
        let start = buf.len();
        buf.resize(start + take, 0);
        mem::read_into(base, &mut buf[start..])?;
        if buf.len() == total {
            break;
        }
    }
    let n = match at {
        Some(off) => f.pwrite(&buf, off)?,
        None => f.write(&buf)?,
    };
    Ok(n as isize)
}

/// readv(2).
pub fn readv(c: &mut Call<'_>) -> SysResult {
    let f = file(c.int(0))?;
    readv_common(&f, &iovecs(c.args[1], c.args[2])?, None)
}

/// writev(2).
pub fn writev(c: &mut Call<'_>) -> SysResult {
    let f = file(c.int(0))?;
    writev_common(&f, &iovecs(c.args[1], c.args[2])?, None)
}

/// preadv(2).
pub fn preadv(c: &mut Call<'_>) -> SysResult {
    let f = file(c.int(0))?;
    readv_common(
        &f,
        &iovecs(c.args[1], c.args[2])?,
        Some(offset_arg(c.args[3])?),
    )
}

/// pwritev(2).
pub fn pwritev(c: &mut Call<'_>) -> SysResult {
    let f = file(c.int(0))?;
    writev_common(
        &f,
        &iovecs(c.args[1], c.args[2])?,
        Some(offset_arg(c.args[3])?),
    )
}

/// lseek(2), with SEEK_DATA/SEEK_HOLE as for a file without holes.
pub fn lseek(c: &mut Call<'_>) -> SysResult {
    Ok(seek(c.int(0), c.int(1), c.args[2])? as isize)
}

/// _llseek(2): the offset in two halves, the result stored at a pointer.
/// glibc on ppc64 seeks only through it.
pub fn llseek(c: &mut Call<'_>) -> SysResult {
    // As Linux computes it: on 64-bit, the "low" half is a full register
    // (glibc passes the whole offset there), so or-ing keeps it intact.
    let off = (c.args[1] << 32) | c.args[2];
    let pos = seek(c.int(0), off as i64, c.args[4])?;
    mem::write_u64(c.args[3], pos)?;
    Ok(0)
}

fn seek(fd: i64, off: i64, whence: u64) -> Result<u64, Errno> {
    const ENXIO: Errno = Errno(6);
    let f = file(fd)?;
    let pos = match whence {
        0 => f.seek(off, Whence::Start)?,
        1 => f.seek(off, Whence::Current)?,
        2 => f.seek(off, Whence::End)?,
        w @ (3 | 4) => {
            let size = f.metadata()?.size;
            if off < 0 || off as u64 >= size {
                return Err(ENXIO);
            }
            let target = if w == 3 { off as u64 } else { size };
            f.seek(target as i64, Whence::Start)?
        }
        _ => return Err(Errno::EINVAL),
    };
    Ok(pos)
}

/// close(2).
pub fn close(c: &mut Call<'_>) -> SysResult {
    let fd = process::get().fds.lock().remove(c.int(0))?;
    drop(fd); // outside the table lock: closing may wake pipe peers
    Ok(0)
}

/// close_range(2).
pub fn close_range(c: &mut Call<'_>) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u64 = 2;
    const CLOSE_RANGE_CLOEXEC: u64 = 4;
    let (first, last, flags) = (c.args[0] as u32, c.args[1] as u32, c.args[2]);
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    let mut closed = Vec::new();
    {
        let mut fds = process::get().fds.lock();
        for (n, _) in fds.list() {
            if (first as usize..=last as usize).contains(&n) {
                if flags & CLOSE_RANGE_CLOEXEC != 0 {
                    fds.set_cloexec(n as i64, true)?;
                } else {
                    closed.push(fds.remove(n as i64)?);
                }
            }
        }
    }
    drop(closed);
    Ok(0)
}

/// sendfile(2): from a file to any descriptor, in steps.
pub fn sendfile(c: &mut Call<'_>) -> SysResult {
    let (out, input) = (file(c.int(0))?, file(c.int(1))?);
    let offset_addr = c.args[2];
    let count = (c.args[3] as usize).min(MAX_RW);
    let mut at = if offset_addr != 0 {
        Some(offset_arg(mem::read_u64(offset_addr)?)?)
    } else {
        None
    };
    let mut buf = alloc::vec![0u8; count.clamp(1, 64 * 1024)];
    let mut done = 0;
    while done < count {
        let want = (count - done).min(buf.len());
        let n = match at {
            Some(off) => input.pread(&mut buf[..want], off),
            None => input.read(&mut buf[..want]),
        };
        let n = match n {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e.into()),
        };
        let w = match out.write(&buf[..n]) {
            Ok(w) => w,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e.into()),
        };
        done += w;
        if let Some(off) = at.as_mut() {
            *off += w as u64;
        } else if w < n {
            // Give back what the output did not take.
            let _ = input.seek(-((n - w) as i64), Whence::Current);
        }
        if w < n {
            break;
        }
    }
    if let Some(off) = at {
        mem::write_u64(offset_addr, off)?;
    }
    Ok(done as isize)
}

/// fsync(2), fdatasync(2), syncfs(2).
pub fn fsync(c: &mut Call<'_>) -> SysResult {
    file(c.int(0))?.sync()?;
    Ok(0)
}

/// sync(2): flush every open file's filesystem and commit every pool
/// (closed files' changes included).
pub fn sync(_c: &mut Call<'_>) -> SysResult {
    let open: Vec<Fd> = process::get()
        .fds
        .lock()
        .list()
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    for f in open {
        let _ = f.file.sync();
    }
    let _ = keel_fs::zfs::sync_all();
    Ok(0)
}

fn advised_file(fd: i64) -> Result<(), Errno> {
    if file(fd)?.metadata()?.file_type() == FileType::Fifo {
        return Err(Errno::ESPIPE);
    }
    Ok(())
}

/// posix_fadvise(2): advice about future access, which a page cache may
/// act on; the descriptor and the advice are checked.
pub fn fadvise64(c: &mut Call<'_>) -> SysResult {
    advised_file(c.int(0))?;
    if c.args[3] > 5 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// readahead(2): a hint; file pages are already in memory in ramfs.
pub fn readahead(c: &mut Call<'_>) -> SysResult {
    advised_file(c.int(0))?;
    Ok(0)
}

/// pipe(2).
pub fn pipe(c: &mut Call<'_>) -> SysResult {
    make_pipe(c.args[0], 0)
}

/// pipe2(2).
pub fn pipe2(c: &mut Call<'_>) -> SysResult {
    make_pipe(c.args[0], c.args[1] as u32)
}

fn make_pipe(fds_addr: u64, flags: u32) -> SysResult {
    const O_NONBLOCK: u32 = 0o4000;
    const O_CLOEXEC: u32 = 0o2000000;
    if flags & !(O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL); // O_DIRECT (packet pipes) and unknown bits
    }
    let (r, w) = pipe::new(flags & O_NONBLOCK != 0);
    let cloexec = flags & O_CLOEXEC != 0;
    let p = process::get();
    let mut fds = p.fds.lock();
    let rfd = fds.insert(Fd { file: r, cloexec })?;
    let wfd = match fds.insert(Fd { file: w, cloexec }) {
        Ok(n) => n,
        Err(e) => {
            let _ = fds.remove(rfd as i64);
            return Err(e);
        }
    };
    drop(fds);
    let mut out = [0u8; 8];
    out[0..4].copy_from_slice(&(rfd as i32).to_le_bytes());
    out[4..8].copy_from_slice(&(wfd as i32).to_le_bytes());
    if let Err(e) = mem::write_bytes(fds_addr, &out) {
        let mut fds = p.fds.lock();
        let _ = fds.remove(rfd as i64);
        let _ = fds.remove(wfd as i64);
        return Err(e);
    }
    Ok(0)
}
