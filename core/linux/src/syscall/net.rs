//! Socket system calls: creating sockets (AF_UNIX, AF_INET, AF_INET6),
//! addresses in and out of app memory, msghdr, options. The socket
//! objects themselves are in objects/unix.rs and objects/inet.rs.

use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_fs::FileLike;
use keel_net::Proto;

use super::Call;
use super::fs::iovecs;
use crate::errno::{Errno, SysResult};
use crate::fdtable::Fd;
use crate::objects::inet::InetSocket;
use crate::objects::socket::{self, AF_INET, AF_INET6, AF_UNIX, SocketOps, msg};
use crate::objects::unix::{self, UnixSocket};
use crate::{mem, process};

const SOCK_STREAM: u32 = 1;
const SOCK_DGRAM: u32 = 2;
const SOCK_NONBLOCK: u32 = 0o4000;
const SOCK_CLOEXEC: u32 = 0o2000000;
const IPPROTO_TCP: i32 = 6;
const IPPROTO_UDP: i32 = 17;
/// Largest sockaddr (sizeof(struct sockaddr_storage)).
const SOCKADDR_MAX: usize = 128;
/// Bytes one send or receive moves through a kernel buffer at most; a
/// stream send of more returns a partial count, as Linux may.
const MAX_IO: usize = 4 << 20;

fn install(file: Arc<dyn FileLike>, cloexec: bool) -> Result<usize, Errno> {
    process::get().fds.lock().insert(Fd { file, cloexec })
}

/// Split a socket type argument into (base type, nonblock, cloexec).
fn type_flags(raw: u32) -> Result<(u32, bool, bool), Errno> {
    let flags = raw & !0xf;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok((
        raw & 0xf,
        flags & SOCK_NONBLOCK != 0,
        flags & SOCK_CLOEXEC != 0,
    ))
}

fn new_socket(
    domain: u32,
    raw_type: u32,
    protocol: i32,
) -> Result<(Arc<dyn FileLike>, bool), Errno> {
    let (ty, nonblock, cloexec) = type_flags(raw_type)?;
    let file: Arc<dyn FileLike> = match domain as u16 {
        AF_UNIX => {
            if protocol != 0 && protocol != i32::from(AF_UNIX) {
                return Err(Errno::EPROTONOSUPPORT);
            }
            let kind = match ty {
                SOCK_STREAM => unix::Kind::Stream,
                SOCK_DGRAM => unix::Kind::Dgram,
                _ => return Err(Errno::ESOCKTNOSUPPORT),
            };
            UnixSocket::new(kind, nonblock)
        }
        AF_INET | AF_INET6 => {
            let v6 = domain as u16 == AF_INET6;
            let proto = match (ty, protocol) {
                (SOCK_STREAM, 0 | IPPROTO_TCP) => Proto::Tcp,
                (SOCK_DGRAM, 0 | IPPROTO_UDP) => Proto::Udp,
                (SOCK_STREAM | SOCK_DGRAM, _) => return Err(Errno::EPROTONOSUPPORT),
                _ => return Err(Errno::ESOCKTNOSUPPORT),
            };
            InetSocket::new(proto, v6, nonblock)
        }
        _ => return Err(Errno::EAFNOSUPPORT),
    };
    Ok((file, cloexec))
}

/// socket(2).
pub fn socket(c: &mut Call<'_>) -> SysResult {
    let (file, cloexec) = new_socket(c.args[0] as u32, c.args[1] as u32, c.i32(2))?;
    Ok(install(file, cloexec)? as isize)
}

/// socketpair(2): AF_UNIX only, as on Linux.
pub fn socketpair(c: &mut Call<'_>) -> SysResult {
    let (domain, raw_type, protocol, out) =
        (c.args[0] as u32, c.args[1] as u32, c.i32(2), c.args[3]);
    let (ty, nonblock, cloexec) = type_flags(raw_type)?;
    if domain as u16 != AF_UNIX {
        return Err(if domain as u16 == AF_INET || domain as u16 == AF_INET6 {
            Errno::EOPNOTSUPP
        } else {
            Errno::EAFNOSUPPORT
        });
    }
    if protocol != 0 && protocol != i32::from(AF_UNIX) {
        return Err(Errno::EPROTONOSUPPORT);
    }
    let kind = match ty {
        SOCK_STREAM => unix::Kind::Stream,
        SOCK_DGRAM => unix::Kind::Dgram,
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    let (a, b) = UnixSocket::pair(kind, nonblock);
    let p = process::get();
    let mut fds = p.fds.lock();
    let fa = fds.insert(Fd { file: a, cloexec })?;
    let fb = match fds.insert(Fd { file: b, cloexec }) {
        Ok(n) => n,
        Err(e) => {
            let _ = fds.remove(fa as i64);
            return Err(e);
        }
    };
    drop(fds);
    let mut pair = [0u8; 8];
    pair[..4].copy_from_slice(&(fa as i32).to_le_bytes());
    pair[4..].copy_from_slice(&(fb as i32).to_le_bytes());
    if let Err(e) = mem::write_bytes(out, &pair) {
        let mut fds = p.fds.lock();
        let _ = fds.remove(fa as i64);
        let _ = fds.remove(fb as i64);
        return Err(e);
    }
    Ok(0)
}

/// Run `f` on the socket behind descriptor `fd`.
fn with_socket<R>(
    fd: i64,
    f: impl FnOnce(&dyn SocketOps, &Arc<dyn FileLike>) -> Result<R, Errno>,
) -> Result<R, Errno> {
    let file = process::get().fds.lock().file(fd)?;
    let ops = socket::ops(&file)?;
    f(ops, &file)
}

/// Read a sockaddr argument.
fn read_sockaddr(addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let len = usize::try_from(len).map_err(|_| Errno::EINVAL)?;
    if !(2..=SOCKADDR_MAX).contains(&len) {
        return Err(Errno::EINVAL);
    }
    mem::read_bytes(addr, len)
}

/// Write a sockaddr result to (addr, *len_ptr), truncating to the app's
/// buffer and reporting the full length, as Linux does.
fn write_sockaddr(addr: u64, len_ptr: u64, value: &[u8]) -> Result<(), Errno> {
    if addr == 0 || len_ptr == 0 {
        return Ok(());
    }
    let room = mem::read_i32(len_ptr)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let n = value.len().min(room as usize);
    mem::write_bytes(addr, &value[..n])?;
    mem::write_u32(len_ptr, value.len() as u32)
}

/// bind(2).
pub fn bind(c: &mut Call<'_>) -> SysResult {
    let a = read_sockaddr(c.args[1], c.args[2])?;
    with_socket(c.int(0), |s, _| s.bind(&a))?;
    Ok(0)
}

/// listen(2).
pub fn listen(c: &mut Call<'_>) -> SysResult {
    let backlog = c.i32(1);
    with_socket(c.int(0), |s, _| s.listen(backlog))?;
    Ok(0)
}

fn accept_common(c: &Call<'_>, flags: u32) -> SysResult {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let (file, peer) = with_socket(c.int(0), |s, _| s.accept(flags & SOCK_NONBLOCK != 0))?;
    let fd = install(file, flags & SOCK_CLOEXEC != 0)?;
    if let Err(e) = write_sockaddr(c.args[1], c.args[2], &peer) {
        let _ = process::get().fds.lock().remove(fd as i64);
        return Err(e);
    }
    Ok(fd as isize)
}

/// accept(2).
pub fn accept(c: &mut Call<'_>) -> SysResult {
    accept_common(c, 0)
}

/// accept4(2).
pub fn accept4(c: &mut Call<'_>) -> SysResult {
    accept_common(c, c.args[3] as u32)
}

/// connect(2).
pub fn connect(c: &mut Call<'_>) -> SysResult {
    let a = read_sockaddr(c.args[1], c.args[2])?;
    with_socket(c.int(0), |s, _| s.connect(&a))?;
    Ok(0)
}

fn send_common(fd: i64, buf: u64, len: u64, flags: u32, to: Option<Vec<u8>>) -> SysResult {
    let len = (len as usize).min(MAX_IO);
    let data = mem::read_bytes(buf, len)?;
    let n = with_socket(fd, |s, _| s.send(&data, flags, to.as_deref()))?;
    Ok(n as isize)
}

/// sendto(2).
pub fn sendto(c: &mut Call<'_>) -> SysResult {
    let to = if c.args[4] != 0 {
        Some(read_sockaddr(c.args[4], c.args[5])?)
    } else {
        None
    };
    send_common(c.int(0), c.args[1], c.args[2], c.args[3] as u32, to)
}

/// send(2) (ppc64 has it as a call of its own).
pub fn send(c: &mut Call<'_>) -> SysResult {
    send_common(c.int(0), c.args[1], c.args[2], c.args[3] as u32, None)
}

fn recv_common(c: &Call<'_>, from_addr: u64, from_len: u64) -> SysResult {
    let flags = c.args[3] as u32;
    let len = (c.args[2] as usize).min(MAX_IO);
    let mut buf = alloc::vec![0u8; len];
    let r = with_socket(c.int(0), |s, _| s.recv(&mut buf, flags))?;
    mem::write_bytes(c.args[1], &buf[..r.copied])?;
    if let Some(from) = &r.from {
        write_sockaddr(from_addr, from_len, from)?;
    } else if from_addr != 0 && from_len != 0 {
        // Connected streams report no address: length 0.
        mem::write_u32(from_len, 0)?;
    }
    Ok(if flags & msg::TRUNC != 0 {
        r.full
    } else {
        r.copied
    } as isize)
}

/// recvfrom(2).
pub fn recvfrom(c: &mut Call<'_>) -> SysResult {
    recv_common(c, c.args[4], c.args[5])
}

/// recv(2) (ppc64).
pub fn recv(c: &mut Call<'_>) -> SysResult {
    recv_common(c, 0, 0)
}

/// struct msghdr (the same on every 64-bit arch).
struct MsgHdr {
    name: u64,
    namelen: u32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
}

fn read_msghdr(addr: u64) -> Result<MsgHdr, Errno> {
    let b = mem::read_bytes(addr, 56)?;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    Ok(MsgHdr {
        name: u64_at(0),
        namelen: u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")),
        iov: u64_at(16),
        iovlen: u64_at(24),
        control: u64_at(32),
        controllen: u64_at(40),
    })
}

/// sendmsg(2). Ancillary data (SCM_RIGHTS, SCM_CREDENTIALS) is not
/// supported: EINVAL rather than silently dropping it.
pub fn sendmsg(c: &mut Call<'_>) -> SysResult {
    send_one(c.int(0), c.args[1], c.args[2] as u32).map(|n| n as isize)
}

fn send_one(fd: i64, hdr: u64, flags: u32) -> Result<usize, Errno> {
    let m = read_msghdr(hdr)?;
    if m.controllen != 0 && m.control != 0 {
        return Err(Errno::EINVAL);
    }
    let to = if m.name != 0 && m.namelen != 0 {
        Some(read_sockaddr(m.name, u64::from(m.namelen))?)
    } else {
        None
    };
    let iov = iovecs(m.iov, m.iovlen)?;
    let total: usize = iov.iter().map(|v| v.1).sum::<usize>().min(MAX_IO);
    let mut data = Vec::with_capacity(total);
    for &(base, len) in &iov {
        let take = len.min(total - data.len());
        let start = data.len();
        data.resize(start + take, 0);
        mem::read_into(base, &mut data[start..])?;
    }
    with_socket(fd, |s, _| s.send(&data, flags, to.as_deref()))
}

/// recvmsg(2). No ancillary data is ever delivered (msg_controllen 0).
pub fn recvmsg(c: &mut Call<'_>) -> SysResult {
    recv_one(c.int(0), c.args[1], c.args[2] as u32).map(|n| n as isize)
}

fn recv_one(fd: i64, hdr: u64, flags: u32) -> Result<usize, Errno> {
    let m = read_msghdr(hdr)?;
    let iov = iovecs(m.iov, m.iovlen)?;
    let total: usize = iov.iter().map(|v| v.1).sum::<usize>().min(MAX_IO);
    let mut buf = alloc::vec![0u8; total];
    let r = with_socket(fd, |s, _| s.recv(&mut buf, flags))?;
    let mut done = 0;
    for &(base, len) in &iov {
        if done == r.copied {
            break;
        }
        let take = len.min(r.copied - done);
        mem::write_bytes(base, &buf[done..done + take])?;
        done += take;
    }
    if m.name != 0 {
        let from = r.from.unwrap_or_default();
        let n = from.len().min(m.namelen as usize);
        mem::write_bytes(m.name, &from[..n])?;
        mem::write_u32(hdr + 8, from.len() as u32)?;
    }
    mem::write_u64(hdr + 40, 0)?;
    let out_flags = if r.full > r.copied { msg::TRUNC } else { 0 };
    mem::write_u32(hdr + 48, out_flags)?;
    Ok(if flags & msg::TRUNC != 0 {
        r.full
    } else {
        r.copied
    })
}

/// Bytes of `struct mmsghdr`: a msghdr and the length sent or received.
const MMSGHDR: u64 = 64;
/// Most messages one sendmmsg/recvmmsg handles (UIO_MAXIOV).
const MMSG_MAX: u64 = 1024;

/// sendmmsg(2): each message as sendmsg; stops at the first error after
/// some were sent (reporting how many), as Linux does.
pub fn sendmmsg(c: &mut Call<'_>) -> SysResult {
    let (fd, vec, count, flags) = (
        c.int(0),
        c.args[1],
        c.args[2].min(MMSG_MAX),
        c.args[3] as u32,
    );
    let mut sent = 0;
    while sent < count {
        let at = vec + sent * MMSGHDR;
        match send_one(fd, at, flags) {
            Ok(n) => mem::write_u32(at + 56, n as u32)?,
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
        sent += 1;
    }
    Ok(sent as isize)
}

/// MSG_WAITFORONE: block for the first message only.
const MSG_WAITFORONE: u32 = 0x10000;

/// recvmmsg(2). The timeout is checked after each message (Linux's
/// semantics: it does not bound the wait for the first one).
pub fn recvmmsg(c: &mut Call<'_>) -> SysResult {
    let (fd, vec, count) = (c.int(0), c.args[1], c.args[2].min(MMSG_MAX));
    let mut flags = c.args[3] as u32;
    let deadline = if c.args[4] != 0 {
        let ns = crate::time_util::read_timespec(c.args[4])?;
        Some(keel_core::time::monotonic_ns().saturating_add(ns))
    } else {
        None
    };
    let wait_for_one = flags & MSG_WAITFORONE != 0;
    flags &= !MSG_WAITFORONE;
    let mut got = 0;
    while got < count {
        let at = vec + got * MMSGHDR;
        match recv_one(fd, at, flags) {
            Ok(n) => mem::write_u32(at + 56, n as u32)?,
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
        got += 1;
        if wait_for_one {
            flags |= msg::DONTWAIT;
        }
        if deadline.is_some_and(|d| keel_core::time::monotonic_ns() >= d) {
            break;
        }
    }
    Ok(got as isize)
}

/// socketcall(2): ppc64's multiplexer, which glibc uses when it cannot
/// assume the direct socket calls; each call number takes its arguments
/// from an array in app memory.
pub fn socketcall(c: &mut Call<'_>) -> SysResult {
    type H = fn(&mut Call<'_>) -> SysResult;
    const CALLS: [(H, usize); 20] = [
        (socket, 3),
        (bind, 3),
        (connect, 3),
        (listen, 2),
        (accept, 3),
        (getsockname, 3),
        (getpeername, 3),
        (socketpair, 4),
        (send, 4),
        (recv, 4),
        (sendto, 6),
        (recvfrom, 6),
        (shutdown, 2),
        (setsockopt, 5),
        (getsockopt, 5),
        (sendmsg, 3),
        (recvmsg, 3),
        (accept4, 4),
        (recvmmsg, 5),
        (sendmmsg, 4),
    ];
    let which = c.args[0];
    let Some(&(handler, nargs)) = which
        .checked_sub(1)
        .and_then(|i| CALLS.get(usize::try_from(i).ok()?))
    else {
        return Err(Errno::EINVAL);
    };
    let raw = mem::read_bytes(c.args[1], nargs * 8)?;
    let mut args = [0u64; 6];
    for (a, b) in args.iter_mut().zip(raw.chunks_exact(8)) {
        *a = u64::from_le_bytes(b.try_into().map_err(|_| Errno::EFAULT)?);
    }
    let mut inner = Call {
        args,
        frame: c.frame,
        abi: c.abi,
        frame_replaced: false,
    };
    handler(&mut inner)
}

/// shutdown(2).
pub fn shutdown(c: &mut Call<'_>) -> SysResult {
    let how = c.i32(1);
    with_socket(c.int(0), |s, _| s.shutdown(how))?;
    Ok(0)
}

/// getsockname(2).
pub fn getsockname(c: &mut Call<'_>) -> SysResult {
    let name = with_socket(c.int(0), |s, _| Ok(s.local_name()))?;
    write_sockaddr(c.args[1], c.args[2], &name)?;
    Ok(0)
}

/// getpeername(2).
pub fn getpeername(c: &mut Call<'_>) -> SysResult {
    let name = with_socket(c.int(0), |s, _| s.peer_name())?;
    write_sockaddr(c.args[1], c.args[2], &name)?;
    Ok(0)
}

/// setsockopt(2).
pub fn setsockopt(c: &mut Call<'_>) -> SysResult {
    let (level, name) = (c.i32(1), c.abi.generic_sockopt(c.i32(1), c.i32(2)));
    let len = usize::try_from(c.args[4]).map_err(|_| Errno::EINVAL)?;
    if len > 4096 {
        return Err(Errno::EINVAL);
    }
    let value = mem::read_bytes(c.args[3], len)?;
    with_socket(c.int(0), |s, _| s.set_option(level, name, &value))?;
    Ok(0)
}

/// getsockopt(2).
pub fn getsockopt(c: &mut Call<'_>) -> SysResult {
    let (level, name) = (c.i32(1), c.abi.generic_sockopt(c.i32(1), c.i32(2)));
    let value = with_socket(c.int(0), |s, _| s.get_option(level, name))?;
    let room = mem::read_i32(c.args[4])?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let n = value.len().min(room as usize);
    mem::write_bytes(c.args[3], &value[..n])?;
    mem::write_u32(c.args[4], n as u32)?;
    Ok(0)
}
