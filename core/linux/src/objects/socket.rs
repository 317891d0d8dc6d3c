//! What every socket (AF_UNIX, AF_INET, AF_INET6) offers the socket system
//! calls, and the pieces they share: message flags, blocking with signals
//! and timeouts, option encodings.

use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_core::sync::WaitQueue;
use keel_fs::FileLike;

use super::inet::InetSocket;
use super::unix::UnixSocket;
use crate::errno::Errno;

/// MSG_* flags (the same on every Linux arch).
pub mod msg {
    /// Out-of-band data (not supported: EOPNOTSUPP).
    pub const OOB: u32 = 0x1;
    /// Look without taking.
    pub const PEEK: u32 = 0x2;
    /// recvmsg: control data was cut short.
    pub const CTRUNC: u32 = 0x8;
    /// recv: report a datagram's real length; recvmsg: it was cut short.
    pub const TRUNC: u32 = 0x20;
    /// Do not block this once.
    pub const DONTWAIT: u32 = 0x40;
    /// End of record (stream sockets: no effect, as on Linux).
    pub const EOR: u32 = 0x80;
    /// Wait for the whole buffer.
    pub const WAITALL: u32 = 0x100;
    /// No SIGPIPE on a broken connection.
    pub const NOSIGNAL: u32 = 0x4000;
    /// More data follows (a batching hint; data is never held back long).
    pub const MORE: u32 = 0x8000;
    /// recvmsg: received descriptors get FD_CLOEXEC.
    pub const CMSG_CLOEXEC: u32 = 0x4000_0000;
    /// What send calls accept.
    pub const SEND_OK: u32 = DONTWAIT | EOR | NOSIGNAL | MORE;
    /// What receive calls accept.
    pub const RECV_OK: u32 = PEEK | TRUNC | DONTWAIT | WAITALL | CMSG_CLOEXEC;
}

/// Socket option numbers, with SOL_SOCKET names in the generic numbering
/// (the syscall layer translates ppc64's).
pub mod opt {
    /// SOL_SOCKET.
    pub const SOL_SOCKET: i32 = 1;
    /// IPPROTO_IP.
    pub const SOL_IP: i32 = 0;
    /// IPPROTO_TCP.
    pub const SOL_TCP: i32 = 6;
    /// IPPROTO_UDP.
    pub const SOL_UDP: i32 = 17;
    /// IPPROTO_IPV6.
    pub const SOL_IPV6: i32 = 41;
    #[allow(missing_docs)]
    pub const SO_DEBUG: i32 = 1;
    #[allow(missing_docs)]
    pub const SO_REUSEADDR: i32 = 2;
    #[allow(missing_docs)]
    pub const SO_TYPE: i32 = 3;
    #[allow(missing_docs)]
    pub const SO_ERROR: i32 = 4;
    #[allow(missing_docs)]
    pub const SO_DONTROUTE: i32 = 5;
    #[allow(missing_docs)]
    pub const SO_BROADCAST: i32 = 6;
    #[allow(missing_docs)]
    pub const SO_SNDBUF: i32 = 7;
    #[allow(missing_docs)]
    pub const SO_RCVBUF: i32 = 8;
    #[allow(missing_docs)]
    pub const SO_KEEPALIVE: i32 = 9;
    #[allow(missing_docs)]
    pub const SO_LINGER: i32 = 13;
    #[allow(missing_docs)]
    pub const SO_REUSEPORT: i32 = 15;
    #[allow(missing_docs)]
    pub const SO_PASSCRED: i32 = 16;
    #[allow(missing_docs)]
    pub const SO_PEERCRED: i32 = 17;
    #[allow(missing_docs)]
    pub const SO_RCVLOWAT: i32 = 18;
    #[allow(missing_docs)]
    pub const SO_SNDLOWAT: i32 = 19;
    #[allow(missing_docs)]
    pub const SO_RCVTIMEO: i32 = 20;
    #[allow(missing_docs)]
    pub const SO_SNDTIMEO: i32 = 21;
    #[allow(missing_docs)]
    pub const SO_ACCEPTCONN: i32 = 30;
    #[allow(missing_docs)]
    pub const SO_PROTOCOL: i32 = 38;
    #[allow(missing_docs)]
    pub const SO_DOMAIN: i32 = 39;
    #[allow(missing_docs)]
    pub const TCP_NODELAY: i32 = 1;
    #[allow(missing_docs)]
    pub const TCP_MAXSEG: i32 = 2;
    #[allow(missing_docs)]
    pub const TCP_KEEPIDLE: i32 = 4;
    #[allow(missing_docs)]
    pub const TCP_KEEPINTVL: i32 = 5;
    #[allow(missing_docs)]
    pub const TCP_KEEPCNT: i32 = 6;
    #[allow(missing_docs)]
    pub const IPV6_V6ONLY: i32 = 26;
    #[allow(missing_docs)]
    pub const IP_TTL: i32 = 2;
    #[allow(missing_docs)]
    pub const IPV6_UNICAST_HOPS: i32 = 16;
}

/// Address families.
pub const AF_UNIX: u16 = 1;
/// IPv4.
pub const AF_INET: u16 = 2;
/// IPv6.
pub const AF_INET6: u16 = 10;

/// One received message.
pub struct Received {
    /// Bytes copied into the buffer.
    pub copied: usize,
    /// The message's whole length (datagrams longer than the buffer).
    pub full: usize,
    /// The sender's address, for datagram sockets.
    pub from: Option<Vec<u8>>,
}

/// The socket calls, over any family.
pub trait SocketOps: Send + Sync {
    /// bind(2) to an encoded sockaddr.
    fn bind(&self, addr: &[u8]) -> Result<(), Errno>;
    /// listen(2).
    fn listen(&self, backlog: i32) -> Result<(), Errno>;
    /// accept(2): the new socket (non-blocking if asked) and the peer.
    fn accept(&self, nonblock: bool) -> Result<(Arc<dyn FileLike>, Vec<u8>), Errno>;
    /// connect(2).
    fn connect(&self, addr: &[u8]) -> Result<(), Errno>;
    /// send/sendto/sendmsg.
    fn send(&self, data: &[u8], flags: u32, to: Option<&[u8]>) -> Result<usize, Errno>;
    /// recv/recvfrom/recvmsg.
    fn recv(&self, buf: &mut [u8], flags: u32) -> Result<Received, Errno>;
    /// shutdown(2): 0 read, 1 write, 2 both.
    fn shutdown(&self, how: i32) -> Result<(), Errno>;
    /// getsockname(2).
    fn local_name(&self) -> Vec<u8>;
    /// getpeername(2).
    fn peer_name(&self) -> Result<Vec<u8>, Errno>;
    /// setsockopt(2), SOL_SOCKET names in the generic numbering.
    fn set_option(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno>;
    /// getsockopt(2).
    fn get_option(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno>;
    /// FIONREAD.
    fn available(&self) -> usize;
}

/// The socket behind an open file, or ENOTSOCK.
pub fn ops(f: &Arc<dyn FileLike>) -> Result<&dyn SocketOps, Errno> {
    let any = f.as_any();
    if let Some(s) = any.downcast_ref::<UnixSocket>() {
        return Ok(s);
    }
    if let Some(s) = any.downcast_ref::<InetSocket>() {
        return Ok(s);
    }
    Err(Errno::ENOTSOCK)
}

/// Repeat `attempt` until it stops saying EAGAIN, sleeping on `queue`
/// between tries until `generation` moves (read before each try, so no
/// change is missed), a signal arrives (EINTR), or `deadline` passes
/// (EAGAIN, as SO_RCVTIMEO/SO_SNDTIMEO report). `nonblock`: one try.
pub fn blocking<T>(
    nonblock: bool,
    deadline: Option<u64>,
    queue: &WaitQueue,
    generation: impl Fn() -> u64,
    mut attempt: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    loop {
        let seen = generation();
        match attempt() {
            Err(Errno::EAGAIN) => {}
            other => return other,
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        if crate::signal::interrupted() {
            return Err(Errno::EINTR);
        }
        let moved = queue.wait_until_deadline(
            || generation() != seen || crate::signal::interrupted(),
            deadline,
        );
        if !moved {
            return Err(Errno::EAGAIN);
        }
    }
}

/// A deadline `ns` from now (0: none), for socket timeouts.
pub fn deadline_after(ns: u64) -> Option<u64> {
    (ns != 0).then(|| keel_core::time::monotonic_ns().saturating_add(ns))
}

/// An int option value (at least 4 bytes, as Linux requires).
pub fn int_value(v: &[u8]) -> Result<i32, Errno> {
    let b: [u8; 4] = v
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(Errno::EINVAL)?;
    Ok(i32::from_le_bytes(b))
}

/// Encode an int option.
pub fn int_bytes(v: i32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// A `struct timeval` option as nanoseconds (0: no timeout).
pub fn timeval_ns(v: &[u8]) -> Result<u64, Errno> {
    if v.len() < 16 {
        return Err(Errno::EINVAL);
    }
    let sec = i64::from_le_bytes(v[0..8].try_into().map_err(|_| Errno::EINVAL)?);
    let usec = i64::from_le_bytes(v[8..16].try_into().map_err(|_| Errno::EINVAL)?);
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(usec as u64 * 1000))
}

/// Encode nanoseconds as a `struct timeval`.
pub fn timeval_bytes(ns: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&((ns / 1_000_000_000) as i64).to_le_bytes());
    v.extend_from_slice(&(((ns % 1_000_000_000) / 1000) as i64).to_le_bytes());
    v
}

/// `struct linger` {onoff, seconds} as Some(seconds) when on.
pub fn linger_value(v: &[u8]) -> Result<Option<u32>, Errno> {
    if v.len() < 8 {
        return Err(Errno::EINVAL);
    }
    let on = int_value(&v[0..4])?;
    let secs = int_value(&v[4..8])?;
    Ok((on != 0).then_some(secs.max(0) as u32))
}

/// Encode a `struct linger`.
pub fn linger_bytes(l: Option<u32>) -> Vec<u8> {
    let mut v = int_bytes(i32::from(l.is_some()));
    v.extend_from_slice(&(l.unwrap_or(0) as i32).to_le_bytes());
    v
}
