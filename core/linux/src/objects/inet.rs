//! AF_INET and AF_INET6 sockets: the Linux face of keel-net's TCP and UDP
//! sockets. This layer adds what the ABI needs on top of the stack's
//! non-blocking operations: sockaddr encodings (IPv4-mapped addresses for
//! AF_INET6), blocking with signals and timeouts, SIGPIPE, options.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use keel_fs::{FileLike, FileType, FsError, FsResult, Metadata, PollEvents, Readiness};
use keel_net::{IpAddress, IpEndpoint, Ipv4Address, Ipv6Address, NetError, Proto, Socket};

use super::socket::{self, AF_INET, AF_INET6, Received, SocketOps, msg, opt};
use super::unix::sigpipe_on_epipe;
use crate::errno::Errno;

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// Decode a sockaddr_in / sockaddr_in6 for a socket of family `v6`.
/// IPv4-mapped IPv6 addresses become IPv4 (dual-stack sockets).
pub fn decode_addr(raw: &[u8], v6: bool) -> Result<IpEndpoint, Errno> {
    if raw.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let family = u16::from_le_bytes([raw[0], raw[1]]);
    match (family, v6) {
        (AF_INET, false) => {
            if raw.len() < 16 {
                return Err(Errno::EINVAL);
            }
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            let a = Ipv4Address::new(raw[4], raw[5], raw[6], raw[7]);
            Ok(IpEndpoint::new(IpAddress::Ipv4(a), port))
        }
        (AF_INET6, true) => {
            if raw.len() < 24 {
                return Err(Errno::EINVAL);
            }
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            let mut b = [0u8; 16];
            b.copy_from_slice(&raw[8..24]);
            let a = Ipv6Address::from(b);
            let addr = match a.to_ipv4_mapped() {
                Some(v4) => IpAddress::Ipv4(v4),
                None => IpAddress::Ipv6(a),
            };
            Ok(IpEndpoint::new(addr, port))
        }
        (_, false) | (AF_INET, true) => Err(Errno::EAFNOSUPPORT),
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

/// Encode an endpoint as the socket's family shows it.
pub fn encode_addr(ep: IpEndpoint, v6: bool) -> Vec<u8> {
    let port = ep.port.to_be_bytes();
    if v6 {
        let a = match ep.addr {
            IpAddress::Ipv6(a) => a,
            IpAddress::Ipv4(a) => a.to_ipv6_mapped(),
        };
        let mut v = alloc::vec![0u8; 28];
        v[0..2].copy_from_slice(&AF_INET6.to_le_bytes());
        v[2..4].copy_from_slice(&port);
        v[8..24].copy_from_slice(&a.octets());
        v
    } else {
        let a = match ep.addr {
            IpAddress::Ipv4(a) => a,
            IpAddress::Ipv6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Address::UNSPECIFIED),
        };
        let mut v = alloc::vec![0u8; 16];
        v[0..2].copy_from_slice(&AF_INET.to_le_bytes());
        v[2..4].copy_from_slice(&port);
        v[4..8].copy_from_slice(&a.octets());
        v
    }
}

fn errno(e: NetError) -> Errno {
    Errno(e.errno())
}

/// An AF_INET or AF_INET6 socket.
pub struct InetSocket {
    sock: Socket,
    v6: bool,
    nonblock: AtomicBool,
    rcvtimeo: AtomicU64,
    sndtimeo: AtomicU64,
    ino: u64,
}

impl InetSocket {
    /// A new socket: TCP for streams, UDP for datagrams.
    pub fn new(proto: Proto, v6: bool, nonblock: bool) -> Arc<Self> {
        Self::wrap(Socket::new(proto, v6), v6, nonblock)
    }

    fn wrap(sock: Socket, v6: bool, nonblock: bool) -> Arc<Self> {
        Arc::new(Self {
            sock,
            v6,
            nonblock: AtomicBool::new(nonblock),
            rcvtimeo: AtomicU64::new(0),
            sndtimeo: AtomicU64::new(0),
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        })
    }

    fn wait<T>(
        &self,
        nonblock: bool,
        timeout: &AtomicU64,
        mut attempt: impl FnMut() -> Result<T, NetError>,
    ) -> Result<T, Errno> {
        let sig = self.sock.signal();
        socket::blocking(
            nonblock,
            socket::deadline_after(timeout.load(Ordering::Relaxed)),
            &sig.queue,
            || sig.generation(),
            || attempt().map_err(errno),
        )
    }

    fn stream(&self) -> bool {
        self.sock.proto() == Proto::Tcp
    }

    fn any_addr(&self) -> IpEndpoint {
        let a = if self.v6 {
            IpAddress::Ipv6(Ipv6Address::UNSPECIFIED)
        } else {
            IpAddress::Ipv4(Ipv4Address::UNSPECIFIED)
        };
        IpEndpoint::new(a, 0)
    }

    fn send_inner(&self, data: &[u8], flags: u32, to: Option<&[u8]>) -> Result<usize, Errno> {
        let nonblock = self.nonblocking() || flags & msg::DONTWAIT != 0;
        if !self.stream() {
            let to = to.map(|raw| decode_addr(raw, self.v6)).transpose()?;
            return self.wait(nonblock, &self.sndtimeo, || self.sock.send_to(data, to));
        }
        if to.is_some() {
            // Linux ignores the address on a connected stream only when it
            // is connected; otherwise it reports EISCONN-ish errors.
            return match self.sock.peer() {
                Ok(_) => Err(Errno::EISCONN),
                Err(_) => Err(Errno::ENOTCONN),
            };
        }
        let mut done = 0;
        loop {
            let r = self.wait(nonblock, &self.sndtimeo, || self.sock.send(&data[done..]));
            match r {
                Ok(n) => {
                    done += n;
                    if done == data.len() || nonblock {
                        return Ok(done);
                    }
                }
                Err(_) if done > 0 => return Ok(done),
                Err(e) => return Err(e),
            }
        }
    }
}

impl SocketOps for InetSocket {
    fn bind(&self, raw: &[u8]) -> Result<(), Errno> {
        let ep = decode_addr(raw, self.v6).map_err(|e| {
            if e == Errno::EAFNOSUPPORT && self.v6 {
                Errno::EINVAL
            } else {
                e
            }
        })?;
        self.sock.bind(ep.addr, ep.port).map_err(errno)
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        if !self.stream() {
            return Err(Errno::EOPNOTSUPP);
        }
        self.sock.listen(backlog.max(1) as usize).map_err(errno)
    }

    fn accept(&self, nonblock: bool) -> Result<(Arc<dyn FileLike>, Vec<u8>), Errno> {
        if !self.stream() {
            return Err(Errno::EOPNOTSUPP);
        }
        let (s, peer) = self.wait(self.nonblocking(), &self.rcvtimeo, || self.sock.accept())?;
        let new = Self::wrap(s, self.v6, nonblock);
        Ok((new as Arc<dyn FileLike>, encode_addr(peer, self.v6)))
    }

    fn connect(&self, raw: &[u8]) -> Result<(), Errno> {
        let ep = decode_addr(raw, self.v6)?;
        match self.sock.connect(ep) {
            Ok(()) => return Ok(()),
            Err(NetError::InProgress) => {}
            Err(e) => return Err(errno(e)),
        }
        if self.nonblocking() {
            return Err(Errno::EINPROGRESS);
        }
        let outcome = self.wait(false, &self.sndtimeo, || {
            match self.sock.connect_outcome()? {
                None => Err(NetError::WouldBlock),
                Some(r) => Ok(r),
            }
        });
        match outcome {
            Ok(r) => {
                // The error is reported here, not again through SO_ERROR.
                let _ = self.sock.take_error();
                r.map_err(errno)
            }
            // Interrupted or timed out: the handshake goes on (Linux).
            Err(Errno::EAGAIN) => Err(Errno::EINPROGRESS),
            Err(e) => Err(e),
        }
    }

    fn send(&self, data: &[u8], flags: u32, to: Option<&[u8]>) -> Result<usize, Errno> {
        if flags & msg::OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if flags & !msg::SEND_OK != 0 {
            return Err(Errno::EINVAL);
        }
        sigpipe_on_epipe(self.send_inner(data, flags, to), flags)
    }

    fn recv(&self, buf: &mut [u8], flags: u32) -> Result<Received, Errno> {
        if flags & msg::OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if flags & !msg::RECV_OK != 0 {
            return Err(Errno::EINVAL);
        }
        let nonblock = self.nonblocking() || flags & msg::DONTWAIT != 0;
        let peek = flags & msg::PEEK != 0;
        if !self.stream() {
            let (full, from) =
                self.wait(nonblock, &self.rcvtimeo, || self.sock.recv_from(buf, peek))?;
            return Ok(Received {
                copied: full.min(buf.len()),
                full,
                from: Some(encode_addr(from, self.v6)),
            });
        }
        let mut done = 0;
        loop {
            let r = self.wait(nonblock, &self.rcvtimeo, || {
                self.sock.recv(&mut buf[done..], peek)
            });
            match r {
                Ok(n) => {
                    done += n;
                    let more = flags & msg::WAITALL != 0 && !peek && n > 0 && done < buf.len();
                    if !more {
                        break;
                    }
                }
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(Received {
            copied: done,
            full: done,
            from: None,
        })
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        let (rd, wr) = match how {
            0 => (true, false),
            1 => (false, true),
            2 => (true, true),
            _ => return Err(Errno::EINVAL),
        };
        self.sock.shutdown(rd, wr).map_err(errno)
    }

    fn local_name(&self) -> Vec<u8> {
        let ep = self.sock.local().map_or(self.any_addr(), |l| {
            IpEndpoint::new(l.addr.unwrap_or(self.any_addr().addr), l.port)
        });
        encode_addr(ep, self.v6)
    }

    fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        self.sock
            .peer()
            .map(|p| encode_addr(p, self.v6))
            .map_err(errno)
    }

    fn set_option(&self, level: i32, name: i32, v: &[u8]) -> Result<(), Errno> {
        let mut o = self.sock.options();
        match (level, name) {
            (opt::SOL_SOCKET, opt::SO_REUSEADDR) => o.reuse_addr = socket::int_value(v)? != 0,
            (opt::SOL_SOCKET, opt::SO_REUSEPORT) => o.reuse_port = socket::int_value(v)? != 0,
            (opt::SOL_SOCKET, opt::SO_KEEPALIVE) => o.keepalive = socket::int_value(v)? != 0,
            (opt::SOL_SOCKET, opt::SO_RCVBUF) => {
                o.rcvbuf = (socket::int_value(v)?.max(0) as usize)
                    .clamp(keel_net::MIN_BUFFER, keel_net::MAX_BUFFER)
            }
            (opt::SOL_SOCKET, opt::SO_SNDBUF) => {
                o.sndbuf = (socket::int_value(v)?.max(0) as usize)
                    .clamp(keel_net::MIN_BUFFER, keel_net::MAX_BUFFER)
            }
            (opt::SOL_SOCKET, opt::SO_LINGER) => o.linger = socket::linger_value(v)?,
            (opt::SOL_SOCKET, opt::SO_RCVTIMEO) => {
                self.rcvtimeo
                    .store(socket::timeval_ns(v)?, Ordering::Relaxed);
                return Ok(());
            }
            (opt::SOL_SOCKET, opt::SO_SNDTIMEO) => {
                self.sndtimeo
                    .store(socket::timeval_ns(v)?, Ordering::Relaxed);
                return Ok(());
            }
            (opt::SOL_TCP, opt::TCP_NODELAY) if self.stream() => {
                o.nodelay = socket::int_value(v)? != 0
            }
            (opt::SOL_TCP, opt::TCP_KEEPIDLE | opt::TCP_KEEPINTVL | opt::TCP_KEEPCNT)
                if self.stream() =>
            {
                // Linux's bounds: 1..=32767 seconds, 1..=127 probes.
                let n = socket::int_value(v)?;
                let max = if name == opt::TCP_KEEPCNT { 127 } else { 32767 };
                if !(1..=max).contains(&n) {
                    return Err(Errno::EINVAL);
                }
                match name {
                    opt::TCP_KEEPIDLE => o.keepidle = n as u32,
                    opt::TCP_KEEPINTVL => o.keepintvl = n as u32,
                    _ => o.keepcnt = n as u32,
                }
            }
            (opt::SOL_SOCKET, opt::SO_BROADCAST) => o.broadcast = socket::int_value(v)? != 0,
            (opt::SOL_IP, opt::IP_TTL) | (opt::SOL_IPV6, opt::IPV6_UNICAST_HOPS) => {
                // -1 restores the default; 0 is refused (Linux: EINVAL).
                o.hop_limit = match socket::int_value(v)? {
                    -1 => None,
                    n @ 1..=255 => Some(n as u8),
                    _ => return Err(Errno::EINVAL),
                };
            }
            (opt::SOL_IPV6, opt::IPV6_V6ONLY) if self.v6 => {
                if self.sock.local().is_some() {
                    return Err(Errno::EINVAL); // Linux: only before bind
                }
                o.v6only = socket::int_value(v)? != 0
            }
            (opt::SOL_SOCKET | opt::SOL_TCP | opt::SOL_IPV6 | opt::SOL_IP | opt::SOL_UDP, _) => {
                return Err(Errno::ENOPROTOOPT);
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        self.sock.set_options(o).map_err(errno)
    }

    fn get_option(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let o = self.sock.options();
        let b = |x: bool| socket::int_bytes(i32::from(x));
        Ok(match (level, name) {
            (opt::SOL_SOCKET, opt::SO_TYPE) => socket::int_bytes(if self.stream() { 1 } else { 2 }),
            (opt::SOL_SOCKET, opt::SO_DOMAIN) => {
                socket::int_bytes(i32::from(if self.v6 { AF_INET6 } else { AF_INET }))
            }
            (opt::SOL_SOCKET, opt::SO_PROTOCOL) => socket::int_bytes(if self.stream() {
                opt::SOL_TCP
            } else {
                opt::SOL_UDP
            }),
            (opt::SOL_SOCKET, opt::SO_ERROR) => {
                socket::int_bytes(self.sock.take_error().map_or(0, NetError::errno))
            }
            (opt::SOL_SOCKET, opt::SO_ACCEPTCONN) => b(self.sock.listening()),
            (opt::SOL_SOCKET, opt::SO_REUSEADDR) => b(o.reuse_addr),
            (opt::SOL_SOCKET, opt::SO_REUSEPORT) => b(o.reuse_port),
            (opt::SOL_SOCKET, opt::SO_KEEPALIVE) => b(o.keepalive),
            (opt::SOL_SOCKET, opt::SO_RCVBUF) => socket::int_bytes(o.rcvbuf as i32),
            (opt::SOL_SOCKET, opt::SO_SNDBUF) => socket::int_bytes(o.sndbuf as i32),
            (opt::SOL_SOCKET, opt::SO_LINGER) => socket::linger_bytes(o.linger),
            (opt::SOL_SOCKET, opt::SO_RCVTIMEO) => {
                socket::timeval_bytes(self.rcvtimeo.load(Ordering::Relaxed))
            }
            (opt::SOL_SOCKET, opt::SO_SNDTIMEO) => {
                socket::timeval_bytes(self.sndtimeo.load(Ordering::Relaxed))
            }
            (opt::SOL_TCP, opt::TCP_NODELAY) if self.stream() => b(o.nodelay),
            (opt::SOL_TCP, opt::TCP_KEEPIDLE) if self.stream() => {
                socket::int_bytes(o.keepidle as i32)
            }
            (opt::SOL_TCP, opt::TCP_KEEPINTVL) if self.stream() => {
                socket::int_bytes(o.keepintvl as i32)
            }
            (opt::SOL_TCP, opt::TCP_KEEPCNT) if self.stream() => {
                socket::int_bytes(o.keepcnt as i32)
            }
            (opt::SOL_SOCKET, opt::SO_BROADCAST) => b(o.broadcast),
            (opt::SOL_IP, opt::IP_TTL) | (opt::SOL_IPV6, opt::IPV6_UNICAST_HOPS) => {
                socket::int_bytes(i32::from(o.hop_limit.unwrap_or(64)))
            }
            (opt::SOL_IPV6, opt::IPV6_V6ONLY) if self.v6 => b(o.v6only),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    fn available(&self) -> usize {
        self.sock.available()
    }
}

fn to_fs(e: Errno) -> FsError {
    match e {
        Errno::EAGAIN => FsError::WouldBlock,
        Errno::EINTR => FsError::Interrupted,
        Errno::EPIPE => FsError::BrokenPipe,
        e => FsError::Other(e.0),
    }
}

impl FileLike for InetSocket {
    fn read(&self, buf: &mut [u8]) -> FsResult<usize> {
        self.recv(buf, 0).map(|r| r.copied).map_err(to_fs)
    }

    fn write(&self, data: &[u8]) -> FsResult<usize> {
        SocketOps::send(self, data, 0, None).map_err(to_fs)
    }

    fn metadata(&self) -> FsResult<Metadata> {
        Ok(super::anon_metadata(FileType::Socket, self.ino))
    }

    fn poll(&self) -> PollEvents {
        PollEvents(self.sock.events())
    }

    fn readiness(&self) -> Option<&Readiness> {
        Some(&self.sock.signal().readiness)
    }

    fn nonblocking(&self) -> bool {
        self.nonblock.load(Ordering::Relaxed)
    }

    fn set_status(&self, nonblock: bool, _append: bool) {
        self.nonblock.store(nonblock, Ordering::Relaxed);
    }

    fn access(&self) -> (bool, bool) {
        (true, true)
    }

    fn path(&self) -> String {
        alloc::format!("socket:[{}]", self.ino)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddrs_round_trip_and_map_v4() {
        let ep = IpEndpoint::new(IpAddress::v4(127, 0, 0, 1), 8080);
        let raw = encode_addr(ep, false);
        assert_eq!(raw.len(), 16);
        assert_eq!(&raw[2..4], &[0x1f, 0x90]);
        assert_eq!(decode_addr(&raw, false).unwrap(), ep);
        // An IPv6 socket shows an IPv4 peer as ::ffff:127.0.0.1 and takes it back.
        let raw6 = encode_addr(ep, true);
        assert_eq!(raw6.len(), 28);
        assert_eq!(&raw6[18..24], &[0xff, 0xff, 127, 0, 0, 1]);
        assert_eq!(decode_addr(&raw6, true).unwrap(), ep);
        assert_eq!(decode_addr(&raw6, false), Err(Errno::EAFNOSUPPORT));
        assert_eq!(decode_addr(&raw[..8], false), Err(Errno::EINVAL));
        assert_eq!(decode_addr(&[1, 0, 0, 0], false), Err(Errno::EAFNOSUPPORT));
    }

    #[test]
    fn loopback_tcp_through_the_linux_layer() {
        let l = InetSocket::new(Proto::Tcp, false, true);
        let addr = encode_addr(IpEndpoint::new(IpAddress::v4(127, 0, 0, 1), 7101), false);
        l.bind(&addr).unwrap();
        l.listen(2).unwrap();
        let c = InetSocket::new(Proto::Tcp, false, true);
        assert_eq!(c.connect(&addr), Err(Errno::EINPROGRESS));
        for _ in 0..8 {
            keel_net::poll_now();
        }
        assert_eq!(
            c.get_option(opt::SOL_SOCKET, opt::SO_ERROR).unwrap(),
            [0; 4]
        );
        let (s, _) = l.accept(true).unwrap();
        assert_eq!(c.write(b"abc"), Ok(3));
        for _ in 0..8 {
            keel_net::poll_now();
        }
        let mut buf = [0u8; 8];
        assert_eq!(s.read(&mut buf), Ok(3));
        assert_eq!(s.read(&mut buf), Err(FsError::WouldBlock));
        assert_eq!(
            c.get_option(opt::SOL_SOCKET, opt::SO_TYPE).unwrap(),
            [1, 0, 0, 0]
        );
    }
}
