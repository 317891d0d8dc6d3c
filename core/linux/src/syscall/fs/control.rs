//! Descriptor control: fcntl, dup, and ioctl (terminal settings on the
//! console, FIONREAD, FIONBIO, close-on-exec).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use keel_core::sync::SpinLock;
use keel_fs::{FileLike, FileType, Whence};

use super::file;
use crate::abi::Abi;
use crate::errno::{Errno, SysResult};
use crate::fdtable::Fd;
use crate::objects::pipe::{self, PipeEnd};
use crate::syscall::Call;
use crate::{mem, process};

const O_CLOEXEC: u64 = 0o2000000;

/// F_SETOWN owners, by open file description (signal-driven I/O is not
/// supported, so an owner is only remembered and reported).
static OWNERS: SpinLock<BTreeMap<usize, i32>> = SpinLock::new(BTreeMap::new());

fn description_key(f: &Arc<dyn FileLike>) -> usize {
    Arc::as_ptr(f) as *const () as usize
}

/// dup(2).
pub fn dup(c: &mut Call<'_>) -> SysResult {
    let mut fds = process::get().fds.lock();
    let f = fds.file(c.int(0))?;
    Ok(fds.insert(Fd {
        file: f,
        cloexec: false,
    })? as isize)
}

fn dup_to(old: i64, new: i64, cloexec: bool) -> SysResult {
    let mut fds = process::get().fds.lock();
    let f = fds.file(old)?;
    let index = usize::try_from(new).map_err(|_| Errno::EBADF)?;
    let replaced = fds.put(index, Fd { file: f, cloexec })?;
    drop(fds);
    drop(replaced); // closed outside the lock
    Ok(new as isize)
}

/// dup2(2).
pub fn dup2(c: &mut Call<'_>) -> SysResult {
    if c.int(0) == c.int(1) {
        file(c.int(0))?;
        return Ok(c.int(1) as isize);
    }
    dup_to(c.int(0), c.int(1), false)
}

/// dup3(2).
pub fn dup3(c: &mut Call<'_>) -> SysResult {
    if c.args[2] & !O_CLOEXEC != 0 || c.int(0) == c.int(1) {
        return Err(Errno::EINVAL);
    }
    dup_to(c.int(0), c.int(1), c.args[2] & O_CLOEXEC != 0)
}

/// fcntl(2).
pub fn fcntl(c: &mut Call<'_>) -> SysResult {
    const F_DUPFD: u64 = 0;
    const F_GETFD: u64 = 1;
    const F_SETFD: u64 = 2;
    const F_GETFL: u64 = 3;
    const F_SETFL: u64 = 4;
    const F_GETLK: u64 = 5;
    const F_SETLK: u64 = 6;
    const F_SETLKW: u64 = 7;
    const F_SETOWN: u64 = 8;
    const F_GETOWN: u64 = 9;
    const F_DUPFD_CLOEXEC: u64 = 1030;
    const F_SETPIPE_SZ: u64 = 1031;
    const F_GETPIPE_SZ: u64 = 1032;
    const O_APPEND: u64 = 0o2000;
    const O_NONBLOCK: u64 = 0o4000;
    const O_ASYNC: u64 = 0o20000;
    let p = process::get();
    let fd = c.int(0);
    let arg = c.args[2];
    match c.args[1] {
        cmd @ (F_DUPFD | F_DUPFD_CLOEXEC) => {
            let min = usize::try_from(arg as i64).map_err(|_| Errno::EINVAL)?;
            let mut fds = p.fds.lock();
            let f = fds.file(fd)?;
            if min >= fds.limit {
                return Err(Errno::EINVAL);
            }
            Ok(fds.insert_from(
                min,
                Fd {
                    file: f,
                    cloexec: cmd == F_DUPFD_CLOEXEC,
                },
            )? as isize)
        }
        F_GETFD => Ok(isize::from(p.fds.lock().get(fd)?.cloexec)),
        F_SETFD => {
            p.fds.lock().set_cloexec(fd, arg & 1 != 0)?;
            Ok(0)
        }
        F_GETFL => {
            let f = file(fd)?;
            let (r, w) = f.access();
            Ok(c.abi.status_flags(r, w, f.nonblocking(), f.appending()) as isize)
        }
        F_SETFL => {
            if arg & O_ASYNC != 0 {
                return Err(Errno::EINVAL); // signal-driven I/O is not supported
            }
            let f = file(fd)?;
            f.set_status(arg & O_NONBLOCK != 0, arg & O_APPEND != 0);
            Ok(0)
        }
        cmd @ (F_GETLK | F_SETLK | F_SETLKW) => record_lock(c.abi, &file(fd)?, cmd == F_GETLK, arg),
        F_GETOWN => {
            let f = file(fd)?;
            Ok(OWNERS
                .lock()
                .get(&description_key(&f))
                .copied()
                .unwrap_or(0) as isize)
        }
        F_SETOWN => {
            let f = file(fd)?;
            OWNERS.lock().insert(description_key(&f), arg as i32);
            Ok(0)
        }
        F_GETPIPE_SZ | F_SETPIPE_SZ => {
            let f = file(fd)?;
            if f.as_any().downcast_ref::<PipeEnd>().is_none() {
                return Err(Errno::EBADF);
            }
            // Pipes have a fixed capacity; a request for more is refused.
            if c.args[1] == F_SETPIPE_SZ && arg as usize > pipe::CAPACITY {
                return Err(Errno::EPERM);
            }
            Ok(pipe::CAPACITY as isize)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// POSIX record locks: one process holds them all, and a process's own
/// locks never conflict, so setting one always succeeds and F_GETLK always
/// finds the range free. The request itself is checked as Linux does.
fn record_lock(_abi: &Abi, f: &Arc<dyn FileLike>, get: bool, addr: u64) -> SysResult {
    const F_RDLCK: i16 = 0;
    const F_WRLCK: i16 = 1;
    const F_UNLCK: i16 = 2;
    let mut flock = [0u8; 32];
    mem::read_into(addr, &mut flock)?;
    let kind = i16::from_le_bytes([flock[0], flock[1]]);
    let whence = i16::from_le_bytes([flock[2], flock[3]]);
    if !(0..=2).contains(&whence) || !(F_RDLCK..=F_UNLCK).contains(&kind) {
        return Err(Errno::EINVAL);
    }
    let (r, w) = f.access();
    if !get && ((kind == F_RDLCK && !r) || (kind == F_WRLCK && !w)) {
        return Err(Errno::EBADF);
    }
    if get {
        flock[0..2].copy_from_slice(&F_UNLCK.to_le_bytes());
        mem::write_bytes(addr, &flock)?;
    }
    Ok(0)
}

/// The console's terminal settings, as the app last set them.
static TERMIOS: SpinLock<Option<[u8; 44]>> = SpinLock::new(None);

fn default_termios(abi: &Abi) -> [u8; 44] {
    let mut t = [0u8; 44];
    let put = |t: &mut [u8; 44], at: usize, v: u32| t[at..at + 4].copy_from_slice(&v.to_le_bytes());
    if abi.ioctl.termios_size == 44 {
        // powerpc termbits: ICRNL|IXON, OPOST|ONLCR, B38400|CS8|CREAD,
        // ISIG|ICANON|ECHO|ECHOE|ECHOK|IEXTEN|ECHOCTL|ECHOKE; c_cc then c_line.
        put(&mut t, 0, 0x300);
        put(&mut t, 4, 0x3);
        put(&mut t, 8, 0xb0f);
        put(&mut t, 12, 0x5cf);
        t[16..22].copy_from_slice(&[3, 0x1c, 0x7f, 0x15, 4, 1]);
        put(&mut t, 36, 38400);
        put(&mut t, 40, 38400);
    } else {
        put(&mut t, 0, 0x500);
        put(&mut t, 4, 0x5);
        put(&mut t, 8, 0xbf);
        put(&mut t, 12, 0x8a3b);
        // c_line at 16, then c_cc: INTR QUIT ERASE KILL EOF TIME MIN.
        t[17..24].copy_from_slice(&[3, 0x1c, 0x7f, 0x15, 4, 0, 1]);
    }
    t
}

/// ioctl(2).
pub fn ioctl(c: &mut Call<'_>) -> SysResult {
    let io = c.abi.ioctl;
    let fd = c.int(0);
    let cmd = c.args[1] as u32;
    let arg = c.args[2];
    let f = file(fd)?;
    if cmd == io.fioclex || cmd == io.fionclex {
        process::get()
            .fds
            .lock()
            .set_cloexec(fd, cmd == io.fioclex)?;
        return Ok(0);
    }
    if cmd == io.fionbio {
        let on = mem::read_i32(arg)? != 0;
        f.set_status(on, f.appending());
        return Ok(0);
    }
    if cmd == io.fionread {
        let n = if let Some(p) = f.as_any().downcast_ref::<PipeEnd>() {
            p.available() as u64
        } else if let Ok(s) = crate::objects::socket::ops(&f) {
            s.available() as u64
        } else if f.metadata()?.file_type() == FileType::Regular {
            let size = f.metadata()?.size;
            size.saturating_sub(f.seek(0, Whence::Current)?)
        } else if f.is_tty() {
            0
        } else {
            return Err(Errno::ENOTTY);
        };
        mem::write_i32(arg, n.min(i32::MAX as u64) as i32)?;
        return Ok(0);
    }
    if !f.is_tty() {
        return Err(Errno::ENOTTY);
    }
    let size = io.termios_size;
    if cmd == io.tcgets {
        let t = TERMIOS.lock().unwrap_or_else(|| default_termios(c.abi));
        mem::write_bytes(arg, &t[..size])?;
        Ok(0)
    } else if (io.tcsets..=io.tcsets + 2).contains(&cmd) {
        let mut t = default_termios(c.abi);
        mem::read_into(arg, &mut t[..size])?;
        *TERMIOS.lock() = Some(t);
        Ok(0)
    } else if cmd == io.tiocgwinsz {
        let mut ws = [0u8; 8];
        ws[0..2].copy_from_slice(&24u16.to_le_bytes());
        ws[2..4].copy_from_slice(&80u16.to_le_bytes());
        mem::write_bytes(arg, &ws)?;
        Ok(0)
    } else {
        Err(Errno::ENOTTY)
    }
}
