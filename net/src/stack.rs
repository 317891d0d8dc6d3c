//! The stack: one smoltcp interface per NIC plus the loopback interface,
//! each with its own socket set, and the bookkeeping smoltcp leaves to its
//! user (ports, listen backlogs, which interface a socket lives on,
//! connection errors, readiness).
//!
//! Each interface has its own socket set because smoltcp sends whatever a
//! socket in the set it polls wants to send: a socket talking to 127.0.0.1
//! must never be polled by eth0. A socket bound to a wildcard address
//! therefore has one smoltcp socket per interface (UDP, TCP listeners); a
//! connection lives on the one interface its route picks. Traffic to the
//! machine's own NIC addresses goes over loopback, as on Linux: every NIC
//! address is also a host address of the loopback interface.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::log as kprintln;
use keel_core::sync::WaitQueue;
use keel_fs::Readiness;
use smoltcp::iface::{
    Config, Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet,
};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint, Ipv4Address,
    Ipv4Cidr, Ipv6Address, Ipv6Cidr,
};

use crate::config::NetConfig;
use crate::phy::NicPhy;

/// Why a socket operation failed; each maps to one Linux errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// EAGAIN: nothing to do without waiting.
    WouldBlock,
    /// EINPROGRESS: a connection was started.
    InProgress,
    /// EALREADY: a connection is already being made.
    Already,
    /// EISCONN.
    IsConnected,
    /// ENOTCONN.
    NotConnected,
    /// ECONNREFUSED.
    Refused,
    /// ECONNRESET.
    Reset,
    /// ETIMEDOUT.
    TimedOut,
    /// EADDRINUSE.
    AddrInUse,
    /// EADDRNOTAVAIL.
    AddrNotAvail,
    /// ENETUNREACH.
    NetUnreachable,
    /// EPIPE.
    BrokenPipe,
    /// EMSGSIZE.
    MessageSize,
    /// EDESTADDRREQ.
    DestAddrRequired,
    /// EINVAL.
    Invalid,
    /// EOPNOTSUPP.
    NotSupported,
    /// ENOBUFS.
    NoBuffers,
    /// EACCES (a broadcast without SO_BROADCAST).
    Access,
}

impl NetError {
    /// The Linux errno (the same on every arch Keel supports).
    pub const fn errno(self) -> i32 {
        match self {
            NetError::WouldBlock => 11,
            NetError::InProgress => 115,
            NetError::Already => 114,
            NetError::IsConnected => 106,
            NetError::NotConnected => 107,
            NetError::Refused => 111,
            NetError::Reset => 104,
            NetError::TimedOut => 110,
            NetError::AddrInUse => 98,
            NetError::AddrNotAvail => 99,
            NetError::NetUnreachable => 101,
            NetError::BrokenPipe => 32,
            NetError::MessageSize => 90,
            NetError::DestAddrRequired => 89,
            NetError::Invalid => 22,
            NetError::NotSupported => 95,
            NetError::NoBuffers => 105,
            NetError::Access => 13,
        }
    }
}

/// Result of a socket operation.
pub type NetResult<T> = Result<T, NetError>;

/// poll(2) bits (the same on every Linux arch).
pub mod events {
    /// Readable (or a connection to accept, or end of file).
    pub const IN: u16 = 0x001;
    /// Writable.
    pub const OUT: u16 = 0x004;
    /// Error pending.
    pub const ERR: u16 = 0x008;
    /// Both directions closed.
    pub const HUP: u16 = 0x010;
    /// Peer closed its sending side.
    pub const RDHUP: u16 = 0x2000;
}

/// How a socket tells waiters it changed: a generation count to sleep on,
/// the current poll bits, and the poll/epoll watchers.
#[derive(Default)]
pub struct Signal {
    events: AtomicU32,
    fingerprint: AtomicU64,
    generation: AtomicU64,
    /// Threads blocked in a call on this socket.
    pub queue: WaitQueue,
    /// poll/select/epoll watchers.
    pub readiness: Readiness,
}

impl Signal {
    /// The poll bits as of the last stack poll or operation.
    pub fn events(&self) -> u16 {
        self.events.load(Ordering::Acquire) as u16
    }

    /// Changes so far; read it before checking state, then sleep until it
    /// moves, and no change is missed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Record new state; returns whether anything a waiter cares about moved.
    fn update(&self, events: u16, fingerprint: u64) -> bool {
        self.events.store(u32::from(events), Ordering::Release);
        self.fingerprint.swap(fingerprint, Ordering::AcqRel) != fingerprint
    }

    /// Wake everyone watching.
    pub(crate) fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.queue.wake_all();
        self.readiness.notify();
    }
}

/// Per-socket options smoltcp needs at creation or that change its sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Receive buffer bytes (SO_RCVBUF).
    pub rcvbuf: usize,
    /// Send buffer bytes (SO_SNDBUF).
    pub sndbuf: usize,
    /// TCP_NODELAY.
    pub nodelay: bool,
    /// SO_KEEPALIVE.
    pub keepalive: bool,
    /// SO_REUSEADDR.
    pub reuse_addr: bool,
    /// SO_REUSEPORT.
    pub reuse_port: bool,
    /// IPV6_V6ONLY (AF_INET6 sockets).
    pub v6only: bool,
    /// SO_LINGER: Some(0) resets the connection on close.
    pub linger: Option<u32>,
    /// TCP_KEEPIDLE: idle seconds before keep-alive probes.
    pub keepidle: u32,
    /// TCP_KEEPINTVL: seconds between probes.
    pub keepintvl: u32,
    /// TCP_KEEPCNT: unanswered probes before the connection is dropped.
    pub keepcnt: u32,
    /// SO_BROADCAST: UDP may send to broadcast addresses.
    pub broadcast: bool,
    /// IP_TTL / IPV6_UNICAST_HOPS (None: smoltcp's default, 64).
    pub hop_limit: Option<u8>,
}

/// Default buffer size per direction (Linux's tcp_rmem default is 128 KiB;
/// smoltcp's windows work best with 64 KiB without window scaling needs).
pub const DEFAULT_BUFFER: usize = 64 * 1024;
/// Largest buffer a socket may ask for.
pub const MAX_BUFFER: usize = 4 << 20;
/// Smallest buffer.
pub const MIN_BUFFER: usize = 2048;
/// Listening sockets keep at most this many connections pending: each one
/// is a smoltcp socket with its buffers allocated up front.
pub const MAX_BACKLOG: usize = 64;
/// UDP datagrams a socket queues per direction.
const UDP_PACKETS: usize = 64;
/// How long a connection closed by the app may take to finish sending.
const ORPHAN_TIMEOUT: Duration = Duration::from_secs(60);
/// Ephemeral ports (Linux's ip_local_port_range default is 32768-60999;
/// IANA's range is used here).
const EPHEMERAL: core::ops::RangeInclusive<u16> = 49152..=65535;

impl Default for Options {
    fn default() -> Self {
        Self {
            rcvbuf: DEFAULT_BUFFER,
            sndbuf: DEFAULT_BUFFER,
            nodelay: false,
            keepalive: false,
            reuse_addr: false,
            reuse_port: false,
            v6only: false,
            linger: None,
            // Linux's defaults.
            keepidle: 7200,
            keepintvl: 75,
            keepcnt: 9,
            broadcast: false,
            hop_limit: None,
        }
    }
}

/// Transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

pub(crate) enum Phy {
    Loop(Loopback),
    Nic(NicPhy),
}

pub(crate) struct Iface {
    pub name: String,
    pub iface: Interface,
    pub phy: Phy,
    pub sockets: SocketSet<'static>,
    pub dhcp: Option<SocketHandle>,
}

impl Iface {
    /// `listening`: the endpoints of listening sockets (full or not).
    fn poll(&mut self, now: Instant, listening: &[IpListenEndpoint]) -> bool {
        let r = match &mut self.phy {
            Phy::Loop(d) => self.iface.poll(now, d, &mut self.sockets),
            Phy::Nic(d) => {
                // smoltcp's own `poll`, one frame at a time, so that each
                // frame is screened against the sockets as they are then.
                let mut r = PollResult::None;
                loop {
                    if let Some(f) = d.peek()
                        && unwanted_syn(f, &self.sockets, listening)
                    {
                        d.discard();
                        continue;
                    }
                    match self.iface.poll_ingress_single(now, d, &mut self.sockets) {
                        PollIngressSingleResult::None => break,
                        PollIngressSingleResult::PacketProcessed => {}
                        PollIngressSingleResult::SocketStateChanged => {
                            r = PollResult::SocketStateChanged;
                        }
                    }
                }
                if self.iface.poll_egress(now, d, &mut self.sockets)
                    == PollResult::SocketStateChanged
                {
                    r = PollResult::SocketStateChanged;
                }
                r
            }
        };
        r == PollResult::SocketStateChanged
    }

    pub(crate) fn owns(&self, addr: IpAddress) -> bool {
        self.iface.ip_addrs().iter().any(|c| c.address() == addr)
    }
}

/// Whether `frame` is a SYN (without ACK) that smoltcp would get wrong:
///
/// - for a 4-tuple that already has a connection, which a listener would
///   take before that connection;
/// - for a listening socket whose backlog is full (no smoltcp listener
///   free), which smoltcp would answer with a reset. Linux drops it and
///   the peer retries a moment later, by which time the app has usually
///   accepted; a reset would tell the peer nobody listens.
///
/// smoltcp gives a segment to the first socket, in slot order, that
/// accepts it, and a listener accepts any SYN for its port. A listener
/// re-armed into a slot below a live connection therefore takes a
/// retransmitted SYN of that connection (QEMU's slirp resends its SYN when
/// the guest is slow to answer), becomes a second half-open connection on
/// the same 4-tuple, takes every later segment of the real one (it comes
/// first) and answers them with a reset: the peer loses the connection and
/// whatever it had not yet delivered. Linux looks connections up before
/// listeners. Such a SYN is dropped instead, as if lost: the connection's
/// own SYN-ACK retransmission, or its ACKs once established, answer it.
fn unwanted_syn(frame: &[u8], sockets: &SocketSet<'_>, listening: &[IpListenEndpoint]) -> bool {
    use smoltcp::socket::AnySocket;
    use smoltcp::wire::{
        EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
    };
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let (src, dst, payload) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                return false;
            };
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return false;
            }
            (
                IpAddress::Ipv4(ip.src_addr()),
                IpAddress::Ipv4(ip.dst_addr()),
                ip.payload(),
            )
        }
        EthernetProtocol::Ipv6 => {
            let Ok(ip) = Ipv6Packet::new_checked(eth.payload()) else {
                return false;
            };
            if ip.next_header() != IpProtocol::Tcp {
                return false;
            }
            (
                IpAddress::Ipv6(ip.src_addr()),
                IpAddress::Ipv6(ip.dst_addr()),
                ip.payload(),
            )
        }
        _ => return false,
    };
    let Ok(tcp) = TcpPacket::new_checked(payload) else {
        return false;
    };
    if !tcp.syn() || tcp.ack() || tcp.rst() {
        return false;
    }
    let local = IpEndpoint::new(dst, tcp.dst_port());
    let remote = IpEndpoint::new(src, tcp.src_port());
    let covers = |l: &IpListenEndpoint| l.port == local.port && l.addr.is_none_or(|a| a == dst);
    let mut listener_first = false;
    for (_, s) in sockets.iter() {
        let Some(s) = tcp::Socket::downcast(s) else {
            continue;
        };
        match s.state() {
            tcp::State::Closed => {}
            tcp::State::Listen => {
                if covers(&s.listen_endpoint()) {
                    listener_first = true;
                }
            }
            _ => {
                if s.local_endpoint() == Some(local) && s.remote_endpoint() == Some(remote) {
                    // The connection owns it: smoltcp gives it there
                    // unless a listener came first.
                    return listener_first;
                }
            }
        }
    }
    // No connection owns it: a free listener takes it; with none free but
    // a listening socket there, the backlog is full.
    !listener_first && listening.iter().any(covers)
}

struct PortUse {
    owner: u64,
    addr: Option<IpAddress>,
    reuse_addr: bool,
    reuse_port: bool,
    listening: bool,
}

type Slot = (usize, SocketHandle);

pub(crate) struct Conn {
    pub slot: Slot,
    /// The app shut its sending side (FIN queued).
    pub wr_shut: bool,
    /// The app shut its receiving side.
    pub rd_shut: bool,
    /// The connection reached Established at some point.
    pub established: bool,
    /// connect() started it and it has not finished.
    pub connecting: bool,
}

pub(crate) enum Tcp {
    Idle,
    Listening {
        backlog: usize,
        armed: Vec<Slot>,
        ready: VecDeque<Slot>,
    },
    Conn(Conn),
}

pub(crate) struct Udp {
    socks: Vec<Slot>,
    peer: Option<IpEndpoint>,
}

pub(crate) enum Kind {
    Tcp(Tcp),
    Udp(Udp),
}

pub(crate) struct Rec {
    pub signal: Arc<Signal>,
    pub kind: Kind,
    pub opts: Options,
    /// Family: IPv6 sockets see IPv4 peers as mapped addresses.
    pub v6: bool,
    pub bound: Option<IpListenEndpoint>,
    /// SO_ERROR / the next call's error.
    pub error: Option<NetError>,
    /// A connection that ended in error (reset, refused) stays ended.
    pub dead: Option<NetError>,
}

/// Everything behind the stack lock.
pub(crate) struct Stack {
    pub ifaces: Vec<Iface>,
    recs: BTreeMap<u64, Rec>,
    ports: BTreeMap<(Proto, u16), Vec<PortUse>>,
    next_id: u64,
    next_port: u16,
    /// TCP connections the app closed, finishing their goodbyes.
    orphans: Vec<Slot>,
    pub dns: Vec<IpAddress>,
    /// `dns` changed since the stack thread last passed it on.
    pub dns_changed: bool,
    to_wake: Vec<Arc<Signal>>,
}

fn now() -> Instant {
    Instant::from_micros((keel_core::time::monotonic_ns() / 1000) as i64)
}

fn is_loopback(a: IpAddress) -> bool {
    match a {
        IpAddress::Ipv4(v4) => v4.is_loopback(),
        IpAddress::Ipv6(v6) => v6.is_loopback(),
    }
}

/// The EUI-64 link-local address of `mac`.
pub fn link_local(mac: [u8; 6]) -> Ipv6Address {
    Ipv6Address::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([mac[0] ^ 2, mac[1]]),
        u16::from_be_bytes([mac[2], 0xff]),
        u16::from_be_bytes([0xfe, mac[3]]),
        u16::from_be_bytes([mac[4], mac[5]]),
    )
}

impl Stack {
    /// A stack with only the loopback interface.
    pub fn new() -> Self {
        let mut lo = Loopback::new(Medium::Ip);
        let mut cfg = Config::new(HardwareAddress::Ip);
        cfg.random_seed = keel_core::random::next_u64();
        let mut iface = Interface::new(cfg, &mut lo, now());
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8));
            let _ = a.push(IpCidr::new(IpAddress::Ipv6(Ipv6Address::LOCALHOST), 128));
        });
        Self {
            ifaces: vec![Iface {
                name: "lo".into(),
                iface,
                phy: Phy::Loop(lo),
                sockets: SocketSet::new(Vec::new()),
                dhcp: None,
            }],
            recs: BTreeMap::new(),
            ports: BTreeMap::new(),
            next_id: 1,
            next_port: *EPHEMERAL.start(),
            orphans: Vec::new(),
            dns: Vec::new(),
            dns_changed: false,
            to_wake: Vec::new(),
        }
    }

    /// Add a NIC; `config` applies when it is the first (eth0).
    pub fn add_nic(&mut self, phy: NicPhy, mac: [u8; 6], config: &NetConfig) -> usize {
        let mut phy = phy;
        // smoltcp panics on a multicast station address; a device that
        // reports one (or none) gets a random locally administered one.
        let mac = if EthernetAddress(mac).is_unicast() && mac != [0; 6] {
            mac
        } else {
            let mut m = keel_core::random::next_u64().to_le_bytes();
            m[0] = (m[0] & 0xfe) | 0x02;
            let fixed = [m[0], m[1], m[2], m[3], m[4], m[5]];
            kprintln!(
                "keel: NIC reported MAC {}; using {} instead",
                EthernetAddress(mac),
                EthernetAddress(fixed)
            );
            fixed
        };
        let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        cfg.random_seed = keel_core::random::next_u64();
        let mut iface = Interface::new(cfg, &mut phy, now());
        let first = self.ifaces.len() == 1;
        let ll = link_local(mac);
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::Ipv6(Ipv6Cidr::new(ll, 64)));
        });
        let name = format!("eth{}", self.ifaces.len() - 1);
        let mut sockets = SocketSet::new(Vec::new());
        let mut dhcp = None;
        if first {
            if let Some(v4) = config.ipv4 {
                iface.update_ip_addrs(|a| {
                    let _ = a.push(IpCidr::Ipv4(v4));
                });
            }
            if let Some(v6) = config.ipv6 {
                iface.update_ip_addrs(|a| {
                    let _ = a.push(IpCidr::Ipv6(v6));
                });
            }
            if let Some(gw) = config.gateway4 {
                let _ = iface.routes_mut().add_default_ipv4_route(gw);
            }
            if let Some(gw) = config.gateway6 {
                let _ = iface.routes_mut().add_default_ipv6_route(gw);
            }
            self.dns.extend(config.dns.iter().copied());
            self.dns_changed = !config.dns.is_empty();
        }
        if !first || config.dhcp {
            dhcp = Some(sockets.add(dhcpv4::Socket::new()));
        }
        kprintln!(
            "keel: {name}: {} {}, {}",
            EthernetAddress(mac),
            iface
                .ip_addrs()
                .iter()
                .map(|c| format!("{c}"))
                .collect::<Vec<_>>()
                .join(" "),
            if dhcp.is_some() {
                "asking DHCP"
            } else {
                "static"
            }
        );
        self.ifaces.push(Iface {
            name,
            iface,
            phy: Phy::Nic(phy),
            sockets,
            dhcp,
        });
        self.sync_loopback_addrs();
        self.ifaces.len() - 1
    }

    /// Give the loopback interface every NIC address as a host address, so
    /// connections to the machine's own address stay inside.
    fn sync_loopback_addrs(&mut self) {
        let mut own: Vec<IpCidr> = vec![
            IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8),
            IpCidr::new(IpAddress::Ipv6(Ipv6Address::LOCALHOST), 128),
        ];
        for i in &self.ifaces[1..] {
            for c in i.iface.ip_addrs() {
                let host = match c.address() {
                    IpAddress::Ipv4(a) => IpCidr::Ipv4(Ipv4Cidr::new(a, 32)),
                    IpAddress::Ipv6(a) => IpCidr::Ipv6(Ipv6Cidr::new(a, 128)),
                };
                if !own.contains(&host) {
                    own.push(host);
                }
            }
        }
        self.ifaces[0].iface.update_ip_addrs(|a| {
            a.clear();
            for c in own {
                let _ = a.push(c);
            }
        });
    }

    /// Poll every interface until nothing moves (a bounded number of
    /// rounds: loopback traffic takes one round per hop). Returns whether
    /// anything changed, and the signals to wake.
    pub fn poll(&mut self) -> (bool, Vec<Arc<Signal>>) {
        let mut changed = false;
        let listening: Vec<IpListenEndpoint> = self
            .recs
            .values()
            .filter(|r| matches!(r.kind, Kind::Tcp(Tcp::Listening { .. })))
            .filter_map(|r| r.bound)
            .collect();
        for _ in 0..64 {
            let t = now();
            let mut round = false;
            for i in &mut self.ifaces {
                round |= i.poll(t, &listening);
            }
            changed |= round;
            if !round {
                break;
            }
        }
        self.dhcp_events();
        self.reap_orphans();
        let ids: Vec<u64> = self.recs.keys().copied().collect();
        for id in ids {
            self.refresh(id);
        }
        (changed, self.take_wakes())
    }

    /// When the stack next needs polling (None: only when woken).
    pub fn next_deadline_ns(&mut self) -> Option<u64> {
        let t = now();
        let at = self
            .ifaces
            .iter_mut()
            // A NIC with a full transmit ring would say "now" until it
            // drains; its wake-up ends the wait instead of a spin.
            .filter(|i| !matches!(&i.phy, Phy::Nic(n) if n.tx_blocked()))
            .filter_map(|i| i.iface.poll_at(t, &i.sockets))
            .min()?;
        Some((at.total_micros().max(0) as u64).saturating_mul(1000))
    }

    fn dhcp_events(&mut self) {
        let mut changed = false;
        for i in 1..self.ifaces.len() {
            let iface = &mut self.ifaces[i];
            let Some(h) = iface.dhcp else { continue };
            let event = iface.sockets.get_mut::<dhcpv4::Socket>(h).poll();
            match event {
                None => {}
                Some(dhcpv4::Event::Configured(cfg)) => {
                    let addr = cfg.address;
                    let router = cfg.router;
                    let dns: Vec<IpAddress> = cfg
                        .dns_servers
                        .iter()
                        .map(|a| IpAddress::Ipv4(*a))
                        .collect();
                    iface.iface.update_ip_addrs(|a| {
                        a.retain(|c| !matches!(c, IpCidr::Ipv4(_)));
                        let _ = a.push(IpCidr::Ipv4(addr));
                    });
                    match router {
                        Some(r) => {
                            let _ = iface.iface.routes_mut().add_default_ipv4_route(r);
                        }
                        None => {
                            iface.iface.routes_mut().remove_default_ipv4_route();
                        }
                    }
                    kprintln!(
                        "keel: {}: DHCP gave {addr}, gateway {}, DNS {}",
                        iface.name,
                        router.map_or(String::from("none"), |r| format!("{r}")),
                        dns.iter()
                            .map(|d| format!("{d}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                    for d in dns {
                        if !self.dns.contains(&d) {
                            self.dns.push(d);
                            self.dns_changed = true;
                        }
                    }
                    changed = true;
                }
                Some(dhcpv4::Event::Deconfigured) => {
                    kprintln!("keel: {}: DHCP lease lost", iface.name);
                    iface
                        .iface
                        .update_ip_addrs(|a| a.retain(|c| !matches!(c, IpCidr::Ipv4(_))));
                    iface.iface.routes_mut().remove_default_ipv4_route();
                    changed = true;
                }
            }
        }
        if changed {
            self.sync_loopback_addrs();
        }
    }

    fn reap_orphans(&mut self) {
        let ifaces = &mut self.ifaces;
        self.orphans.retain(|&(i, h)| {
            let s = ifaces[i].sockets.get::<tcp::Socket>(h);
            let done = matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait);
            if done {
                ifaces[i].sockets.remove(h);
            }
            !done
        });
    }

    // ---- addresses, ports, routes ----

    /// Whether `addr` is one of this machine's addresses.
    fn is_local(&self, addr: IpAddress) -> bool {
        addr.is_unspecified() || self.ifaces.iter().any(|i| i.owns(addr))
    }

    /// Interfaces a socket bound to `addr` listens on.
    fn ifaces_for(&self, addr: Option<IpAddress>, v6only: bool) -> Vec<usize> {
        match addr {
            None => (0..self.ifaces.len()).collect(),
            Some(a) if a.is_unspecified() => {
                let _ = v6only;
                (0..self.ifaces.len()).collect()
            }
            Some(a) => (0..self.ifaces.len())
                .filter(|&i| self.ifaces[i].owns(a))
                .collect(),
        }
    }

    /// 255.255.255.255 or the broadcast address of an interface's subnet.
    fn is_broadcast(&self, a: IpAddress) -> bool {
        let IpAddress::Ipv4(v4) = a else { return false };
        v4.is_broadcast()
            || self.ifaces.iter().any(|i| {
                i.iface.ip_addrs().iter().any(|c| match c {
                    IpCidr::Ipv4(c) => c.prefix_len() < 31 && c.broadcast() == Some(v4),
                    _ => false,
                })
            })
    }

    /// The interface that reaches `dst`.
    fn route(&self, dst: IpAddress) -> NetResult<usize> {
        if is_loopback(dst) || self.ifaces[0].owns(dst) {
            return Ok(0);
        }
        let nics = 1..self.ifaces.len();
        let same_net = nics.clone().find(|&i| {
            self.ifaces[i]
                .iface
                .ip_addrs()
                .iter()
                .any(|c| c.contains_addr(&dst))
        });
        if let Some(i) = same_net {
            return Ok(i);
        }
        let v4 = matches!(dst, IpAddress::Ipv4(_));
        nics.into_iter()
            .find(|&i| {
                let f = &self.ifaces[i].iface;
                // Any address of the family and a way out: smoltcp finds the
                // gateway; without one the packet has nowhere to go.
                f.ip_addrs()
                    .iter()
                    .any(|c| matches!(c, IpCidr::Ipv4(_)) == v4 && !is_link_local(c.address()))
            })
            .ok_or(NetError::NetUnreachable)
    }

    fn port_free(
        &self,
        proto: Proto,
        port: u16,
        addr: Option<IpAddress>,
        o: &Options,
        listening: bool,
    ) -> bool {
        let Some(uses) = self.ports.get(&(proto, port)) else {
            return true;
        };
        uses.iter().all(|u| {
            let overlap = match (u.addr, addr) {
                (None, _) | (_, None) => true,
                (Some(a), Some(b)) => a.is_unspecified() || b.is_unspecified() || a == b,
            };
            if !overlap {
                return true;
            }
            if o.reuse_port && u.reuse_port {
                return true;
            }
            // SO_REUSEADDR lets a socket share a port nobody listens on.
            o.reuse_addr && u.reuse_addr && !u.listening && !listening
        })
    }

    fn claim_port(
        &mut self,
        id: u64,
        proto: Proto,
        port: u16,
        addr: Option<IpAddress>,
        o: &Options,
    ) {
        self.ports.entry((proto, port)).or_default().push(PortUse {
            owner: id,
            addr,
            reuse_addr: o.reuse_addr,
            reuse_port: o.reuse_port,
            listening: false,
        });
    }

    fn release_ports(&mut self, id: u64) {
        self.ports.retain(|_, uses| {
            uses.retain(|u| u.owner != id);
            !uses.is_empty()
        });
    }

    fn ephemeral(&mut self, proto: Proto, addr: Option<IpAddress>, o: &Options) -> NetResult<u16> {
        let span = (*EPHEMERAL.end() - *EPHEMERAL.start()) as u32 + 1;
        for _ in 0..span {
            let p = self.next_port;
            self.next_port = if p == *EPHEMERAL.end() {
                *EPHEMERAL.start()
            } else {
                p + 1
            };
            let plain = Options {
                reuse_addr: false,
                reuse_port: false,
                ..*o
            };
            if self.port_free(proto, p, addr, &plain, false) {
                return Ok(p);
            }
        }
        Err(NetError::AddrInUse)
    }

    // ---- socket records ----

    pub fn create(&mut self, proto: Proto, v6: bool) -> (u64, Arc<Signal>) {
        let id = self.next_id;
        self.next_id += 1;
        let signal = Arc::new(Signal::default());
        let kind = match proto {
            Proto::Tcp => Kind::Tcp(Tcp::Idle),
            Proto::Udp => Kind::Udp(Udp {
                socks: Vec::new(),
                peer: None,
            }),
        };
        self.recs.insert(
            id,
            Rec {
                signal: signal.clone(),
                kind,
                opts: Options::default(),
                v6,
                bound: None,
                error: None,
                dead: None,
            },
        );
        self.refresh(id);
        (id, signal)
    }

    fn rec(&mut self, id: u64) -> NetResult<&mut Rec> {
        self.recs.get_mut(&id).ok_or(NetError::Invalid)
    }

    pub fn options(&mut self, id: u64) -> NetResult<Options> {
        Ok(self.rec(id)?.opts)
    }

    /// Change options; those smoltcp applies to live sockets are applied.
    pub fn set_options(&mut self, id: u64, o: Options) -> NetResult<()> {
        let r = self.recs.get_mut(&id).ok_or(NetError::Invalid)?;
        r.opts = o;
        match &r.kind {
            Kind::Tcp(Tcp::Conn(c)) => {
                let s = self.ifaces[c.slot.0]
                    .sockets
                    .get_mut::<tcp::Socket>(c.slot.1);
                apply_tcp_options(s, &o);
            }
            Kind::Udp(u) => {
                for &(i, h) in &u.socks {
                    let s = self.ifaces[i].sockets.get_mut::<udp::Socket>(h);
                    s.set_hop_limit(o.hop_limit.filter(|&h| h > 0));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Remove a socket the app closed.
    pub fn destroy(&mut self, id: u64) {
        let Some(r) = self.recs.remove(&id) else {
            return;
        };
        self.release_ports(id);
        match r.kind {
            Kind::Tcp(Tcp::Idle) => {}
            Kind::Tcp(Tcp::Listening { armed, ready, .. }) => {
                for (i, h) in armed {
                    self.ifaces[i].sockets.remove(h);
                }
                // Connections nobody accepted are reset, as Linux does.
                for (i, h) in ready {
                    self.ifaces[i].sockets.get_mut::<tcp::Socket>(h).abort();
                    self.orphans.push((i, h));
                }
            }
            Kind::Tcp(Tcp::Conn(c)) => {
                let s = self.ifaces[c.slot.0]
                    .sockets
                    .get_mut::<tcp::Socket>(c.slot.1);
                if r.opts.linger == Some(0) || (c.rd_shut && s.can_recv()) {
                    // SO_LINGER 0, or unread data thrown away: Linux resets.
                    s.abort();
                } else {
                    s.close();
                    s.set_timeout(Some(ORPHAN_TIMEOUT));
                }
                self.orphans.push(c.slot);
            }
            Kind::Udp(u) => {
                for (i, h) in u.socks {
                    self.ifaces[i].sockets.remove(h);
                }
            }
        }
    }

    fn new_tcp(o: &Options) -> NetResult<tcp::Socket<'static>> {
        let rx = tcp::SocketBuffer::new(buffer(o.rcvbuf)?);
        let tx = tcp::SocketBuffer::new(buffer(o.sndbuf)?);
        let mut s = tcp::Socket::new(rx, tx);
        apply_tcp_options(&mut s, o);
        Ok(s)
    }

    pub fn bind(&mut self, id: u64, addr: IpAddress, port: u16) -> NetResult<()> {
        if !self.is_local(addr) {
            return Err(NetError::AddrNotAvail);
        }
        let r = self.rec(id)?;
        if r.bound.is_some() {
            return Err(NetError::Invalid);
        }
        let proto = match r.kind {
            Kind::Tcp(_) => Proto::Tcp,
            Kind::Udp(_) => Proto::Udp,
        };
        let o = r.opts;
        let a = (!addr.is_unspecified()).then_some(addr);
        let port = if port == 0 {
            self.ephemeral(proto, a, &o)?
        } else if self.port_free(proto, port, a, &o, false) {
            port
        } else {
            return Err(NetError::AddrInUse);
        };
        self.claim_port(id, proto, port, a, &o);
        let ep = IpListenEndpoint { addr: a, port };
        self.rec(id)?.bound = Some(ep);
        if proto == Proto::Udp {
            self.open_udp(id)?;
        }
        Ok(())
    }

    fn open_udp(&mut self, id: u64) -> NetResult<()> {
        let (ep, o, v6only) = {
            let r = self.rec(id)?;
            (
                r.bound.ok_or(NetError::Invalid)?,
                r.opts,
                r.opts.v6only && r.v6,
            )
        };
        let mut slots = Vec::new();
        for i in self.ifaces_for(ep.addr, v6only) {
            let rx = udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                buffer(o.rcvbuf)?,
            );
            let tx = udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                buffer(o.sndbuf)?,
            );
            let mut s = udp::Socket::new(rx, tx);
            s.set_hop_limit(o.hop_limit.filter(|&h| h > 0));
            s.bind(ep).map_err(|_| NetError::Invalid)?;
            slots.push((i, self.ifaces[i].sockets.add(s)));
        }
        if let Kind::Udp(u) = &mut self.rec(id)?.kind {
            u.socks = slots;
        }
        Ok(())
    }

    /// Bind to an ephemeral port on every address if not bound yet.
    fn autobind(&mut self, id: u64) -> NetResult<()> {
        if self.rec(id)?.bound.is_none() {
            let any = if self.rec(id)?.v6 {
                IpAddress::Ipv6(Ipv6Address::UNSPECIFIED)
            } else {
                IpAddress::Ipv4(Ipv4Address::UNSPECIFIED)
            };
            self.bind(id, any, 0)?;
        }
        Ok(())
    }

    pub fn listen(&mut self, id: u64, backlog: usize) -> NetResult<()> {
        let backlog = backlog.clamp(1, MAX_BACKLOG);
        match &self.rec(id)?.kind {
            Kind::Udp(_) => return Err(NetError::NotSupported),
            Kind::Tcp(Tcp::Conn(_)) => return Err(NetError::Invalid),
            Kind::Tcp(Tcp::Listening { .. }) => {
                if let Kind::Tcp(Tcp::Listening { backlog: b, .. }) = &mut self.rec(id)?.kind {
                    *b = backlog;
                }
                self.arm(id);
                return Ok(());
            }
            Kind::Tcp(Tcp::Idle) => {}
        }
        self.autobind(id)?;
        let r = self.rec(id)?;
        let ep = r.bound.ok_or(NetError::Invalid)?;
        let o = r.opts;
        // Two listeners on one port need SO_REUSEPORT on both.
        let conflict = self.ports.get(&(Proto::Tcp, ep.port)).is_some_and(|uses| {
            uses.iter().any(|u| {
                u.owner != id
                    && u.listening
                    && !(u.reuse_port && o.reuse_port)
                    && match (u.addr, ep.addr) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    }
            })
        });
        if conflict {
            return Err(NetError::AddrInUse);
        }
        if let Some(uses) = self.ports.get_mut(&(Proto::Tcp, ep.port)) {
            for u in uses.iter_mut().filter(|u| u.owner == id) {
                u.listening = true;
            }
        }
        self.rec(id)?.kind = Kind::Tcp(Tcp::Listening {
            backlog,
            armed: Vec::new(),
            ready: VecDeque::new(),
        });
        self.arm(id);
        Ok(())
    }

    /// Keep a listening socket's smoltcp listeners armed: per interface,
    /// enough that pending plus armed reach the backlog.
    fn arm(&mut self, id: u64) {
        let Some(r) = self.recs.get(&id) else { return };
        let (Some(ep), o, v6only) = (r.bound, r.opts, r.v6 && r.opts.v6only) else {
            return;
        };
        let ifaces = self.ifaces_for(ep.addr, v6only);
        let Some(r) = self.recs.get_mut(&id) else {
            return;
        };
        let Kind::Tcp(Tcp::Listening {
            backlog,
            armed,
            ready,
        }) = &mut r.kind
        else {
            return;
        };
        for i in ifaces {
            let have = armed.iter().filter(|s| s.0 == i).count();
            let want = backlog.saturating_sub(ready.len());
            for _ in have..want {
                // Out of memory arms fewer: the backlog shrinks, nothing breaks.
                let Ok(mut s) = Self::new_tcp(&o) else { break };
                if s.listen(ep).is_err() {
                    break;
                }
                armed.push((i, self.ifaces[i].sockets.add(s)));
            }
        }
    }

    pub fn accept(&mut self, id: u64) -> NetResult<(u64, Arc<Signal>, IpEndpoint)> {
        let r = self.rec(id)?;
        let o = r.opts;
        let v6 = r.v6;
        let Kind::Tcp(Tcp::Listening { ready, .. }) = &mut r.kind else {
            return Err(NetError::Invalid);
        };
        let slot = ready.pop_front().ok_or(NetError::WouldBlock)?;
        let s = self.ifaces[slot.0].sockets.get_mut::<tcp::Socket>(slot.1);
        let Some(peer) = s.remote_endpoint() else {
            // Gone between the handshake and accept: drop it, look again.
            s.abort();
            self.orphans.push(slot);
            return Err(NetError::WouldBlock);
        };
        let local = s.local_endpoint();
        let (nid, sig) = self.create(Proto::Tcp, v6);
        let nr = self.rec(nid)?;
        nr.opts = o;
        nr.bound = local.map(|l| IpListenEndpoint {
            addr: Some(l.addr),
            port: l.port,
        });
        nr.kind = Kind::Tcp(Tcp::Conn(Conn {
            slot,
            wr_shut: false,
            rd_shut: false,
            established: true,
            connecting: false,
        }));
        self.arm(id);
        self.refresh(nid);
        self.refresh(id);
        Ok((nid, sig, peer))
    }

    pub fn connect(&mut self, id: u64, to: IpEndpoint) -> NetResult<()> {
        if to.port == 0 || to.addr.is_unspecified() {
            return Err(NetError::Refused);
        }
        let r = self.rec(id)?;
        match &mut r.kind {
            Kind::Udp(u) => {
                u.peer = Some(to);
                return self.autobind(id);
            }
            Kind::Tcp(Tcp::Listening { .. }) => return Err(NetError::Invalid),
            Kind::Tcp(Tcp::Conn(c)) => {
                if c.connecting {
                    return Err(NetError::Already);
                }
                if let Some(e) = r.error.take() {
                    return Err(e);
                }
                return Err(NetError::IsConnected);
            }
            Kind::Tcp(Tcp::Idle) => {}
        }
        let iface = self.route(to.addr)?;
        let r = self.rec(id)?;
        let o = r.opts;
        let local = match r.bound {
            Some(ep) => ep,
            None => {
                let port = self.ephemeral(Proto::Tcp, None, &o)?;
                self.claim_port(id, Proto::Tcp, port, None, &o);
                let ep = IpListenEndpoint { addr: None, port };
                self.rec(id)?.bound = Some(ep);
                ep
            }
        };
        let mut s = Self::new_tcp(&o)?;
        let ctx = self.ifaces[iface].iface.context();
        s.connect(ctx, to, local).map_err(|e| match e {
            tcp::ConnectError::Unaddressable => NetError::NetUnreachable,
            tcp::ConnectError::InvalidState => NetError::IsConnected,
        })?;
        let h = self.ifaces[iface].sockets.add(s);
        let r = self.rec(id)?;
        r.kind = Kind::Tcp(Tcp::Conn(Conn {
            slot: (iface, h),
            wr_shut: false,
            rd_shut: false,
            established: false,
            connecting: true,
        }));
        r.error = None;
        self.refresh(id);
        Err(NetError::InProgress)
    }

    /// None while a connect is under way; then its outcome.
    pub fn connect_outcome(&mut self, id: u64) -> NetResult<Option<NetResult<()>>> {
        self.refresh(id);
        let r = self.rec(id)?;
        match &r.kind {
            Kind::Tcp(Tcp::Conn(c)) if c.connecting => Ok(None),
            Kind::Tcp(Tcp::Conn(c)) if c.established && r.dead.is_none() => Ok(Some(Ok(()))),
            Kind::Tcp(Tcp::Conn(_)) => Ok(Some(Err(r
                .error
                .take()
                .or(r.dead)
                .unwrap_or(NetError::Refused)))),
            _ => Ok(Some(Err(NetError::NotConnected))),
        }
    }

    fn conn(&mut self, id: u64) -> NetResult<(&mut Rec, &mut tcp::Socket<'static>)> {
        let r = self.recs.get_mut(&id).ok_or(NetError::Invalid)?;
        let Kind::Tcp(Tcp::Conn(c)) = &r.kind else {
            return Err(NetError::NotConnected);
        };
        let slot = c.slot;
        let s = self.ifaces[slot.0].sockets.get_mut::<tcp::Socket>(slot.1);
        Ok((r, s))
    }

    pub fn send(&mut self, id: u64, data: &[u8]) -> NetResult<usize> {
        self.refresh(id);
        if matches!(self.rec(id)?.kind, Kind::Udp(_)) {
            return self.send_to(id, data, None);
        }
        let (r, s) = self.conn(id)?;
        let Kind::Tcp(Tcp::Conn(c)) = &r.kind else {
            unreachable!()
        };
        if let Some(e) = r.error.take() {
            return Err(e);
        }
        if c.connecting {
            return Err(NetError::WouldBlock);
        }
        if let Some(e) = r.dead {
            return Err(if e == NetError::Reset {
                NetError::BrokenPipe
            } else {
                e
            });
        }
        if c.wr_shut || !s.may_send() {
            return Err(if c.established {
                NetError::BrokenPipe
            } else {
                NetError::NotConnected
            });
        }
        let n = s.send_slice(data).map_err(|_| NetError::BrokenPipe)?;
        if n == 0 && !data.is_empty() {
            return Err(NetError::WouldBlock);
        }
        self.refresh(id);
        Ok(n)
    }

    pub fn recv(&mut self, id: u64, buf: &mut [u8], peek: bool) -> NetResult<usize> {
        self.refresh(id);
        if matches!(self.rec(id)?.kind, Kind::Udp(_)) {
            return self.recv_from(id, buf, peek).map(|(n, _)| n.min(buf.len()));
        }
        let (r, s) = self.conn(id)?;
        let Kind::Tcp(Tcp::Conn(c)) = &r.kind else {
            unreachable!()
        };
        if c.rd_shut {
            return Ok(0);
        }
        if s.can_recv() {
            let n = if peek {
                s.peek_slice(buf)
            } else {
                s.recv_slice(buf)
            }
            .map_err(|_| NetError::NotConnected)?;
            self.refresh(id);
            return Ok(n);
        }
        if let Some(e) = r.error.take() {
            return Err(e);
        }
        if c.connecting {
            return Err(NetError::WouldBlock);
        }
        if let Some(e) = r.dead {
            return if e == NetError::Reset {
                Ok(0)
            } else {
                Err(NetError::NotConnected)
            };
        }
        if !s.may_recv() {
            return Ok(0);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        Err(NetError::WouldBlock)
    }

    pub fn send_to(&mut self, id: u64, data: &[u8], to: Option<IpEndpoint>) -> NetResult<usize> {
        let r = self.rec(id)?;
        let Kind::Udp(u) = &r.kind else {
            return match to {
                // TCP ignores the address once connected (Linux: EISCONN).
                Some(_) => Err(NetError::IsConnected),
                None => Err(NetError::NotConnected),
            };
        };
        let dst = to.or(u.peer).ok_or(NetError::DestAddrRequired)?;
        if dst.port == 0 {
            return Err(NetError::Invalid);
        }
        if self.is_broadcast(dst.addr) && !self.rec(id)?.opts.broadcast {
            return Err(NetError::Access);
        }
        self.autobind(id)?;
        let iface = self.route(dst.addr)?;
        let r = self.rec(id)?;
        let Kind::Udp(u) = &r.kind else {
            unreachable!()
        };
        let slot = u
            .socks
            .iter()
            .find(|s| s.0 == iface)
            .copied()
            .ok_or(NetError::NetUnreachable)?;
        let s = self.ifaces[slot.0].sockets.get_mut::<udp::Socket>(slot.1);
        if data.len() > s.payload_send_capacity() {
            return Err(NetError::MessageSize);
        }
        match s.send_slice(data, dst) {
            Ok(()) => Ok(data.len()),
            Err(udp::SendError::BufferFull) => Err(NetError::WouldBlock),
            Err(udp::SendError::Unaddressable) => Err(NetError::NetUnreachable),
        }
    }

    /// One datagram: its full length (may exceed `buf`) and its sender.
    pub fn recv_from(
        &mut self,
        id: u64,
        buf: &mut [u8],
        peek: bool,
    ) -> NetResult<(usize, IpEndpoint)> {
        let r = self.rec(id)?;
        let Kind::Udp(u) = &r.kind else {
            let n = self.recv(id, buf, peek)?;
            let peer = self
                .peer(id)
                .unwrap_or(IpEndpoint::new(IpAddress::v4(0, 0, 0, 0), 0));
            return Ok((n, peer));
        };
        let peer = u.peer;
        let family_ok = family_filter(r);
        let socks = u.socks.clone();
        for (i, h) in socks {
            let s = self.ifaces[i].sockets.get_mut::<udp::Socket>(h);
            loop {
                let got = if peek {
                    s.peek().map(|(d, m)| (d.len(), m.endpoint, copy(buf, d)))
                } else {
                    s.recv().map(|(d, m)| (d.len(), m.endpoint, copy(buf, d)))
                };
                let Ok((len, from, _)) = got else { break };
                // A connected UDP socket only hears from its peer, and a
                // socket only from its family (smoltcp's wildcard takes both).
                if peer.is_some_and(|p| p != from) || !family_ok(from.addr) {
                    if peek {
                        let _ = s.recv();
                    }
                    continue;
                }
                self.refresh(id);
                return Ok((len, from));
            }
        }
        Err(NetError::WouldBlock)
    }

    pub fn shutdown(&mut self, id: u64, rd: bool, wr: bool) -> NetResult<()> {
        let r = self.rec(id)?;
        if matches!(r.kind, Kind::Udp(_)) {
            return match r.kind {
                Kind::Udp(Udp { peer: Some(_), .. }) => Ok(()),
                _ => Err(NetError::NotConnected),
            };
        }
        let (r, s) = self.conn(id)?;
        let Kind::Tcp(Tcp::Conn(c)) = &mut r.kind else {
            unreachable!()
        };
        if wr && !c.wr_shut {
            c.wr_shut = true;
            s.close();
        }
        if rd {
            c.rd_shut = true;
        }
        self.refresh(id);
        Ok(())
    }

    pub fn local(&mut self, id: u64) -> NetResult<Option<IpListenEndpoint>> {
        let r = self.rec(id)?;
        if let Kind::Tcp(Tcp::Conn(c)) = &r.kind {
            let slot = c.slot;
            let s = self.ifaces[slot.0].sockets.get::<tcp::Socket>(slot.1);
            if let Some(l) = s.local_endpoint() {
                return Ok(Some(l.into()));
            }
        }
        Ok(self.recs.get(&id).and_then(|r| r.bound))
    }

    pub fn peer(&mut self, id: u64) -> NetResult<IpEndpoint> {
        let r = self.rec(id)?;
        match &r.kind {
            Kind::Udp(u) => u.peer.ok_or(NetError::NotConnected),
            Kind::Tcp(Tcp::Conn(c)) if !c.connecting && r.dead.is_none() => {
                let slot = c.slot;
                self.ifaces[slot.0]
                    .sockets
                    .get::<tcp::Socket>(slot.1)
                    .remote_endpoint()
                    .ok_or(NetError::NotConnected)
            }
            _ => Err(NetError::NotConnected),
        }
    }

    pub fn listening(&mut self, id: u64) -> bool {
        self.recs
            .get(&id)
            .is_some_and(|r| matches!(r.kind, Kind::Tcp(Tcp::Listening { .. })))
    }

    pub fn take_error(&mut self, id: u64) -> NetResult<Option<NetError>> {
        self.refresh(id);
        Ok(self.rec(id)?.error.take())
    }

    /// Bytes waiting to be read (FIONREAD): for UDP, the next datagram.
    pub fn available(&mut self, id: u64) -> NetResult<usize> {
        let r = self.rec(id)?;
        match &r.kind {
            Kind::Tcp(Tcp::Conn(c)) => {
                let slot = c.slot;
                Ok(self.ifaces[slot.0]
                    .sockets
                    .get::<tcp::Socket>(slot.1)
                    .recv_queue())
            }
            Kind::Udp(u) => {
                for &(i, h) in &u.socks.clone() {
                    if let Ok((d, _)) = self.ifaces[i].sockets.get_mut::<udp::Socket>(h).peek() {
                        return Ok(d.len());
                    }
                }
                Ok(0)
            }
            _ => Ok(0),
        }
    }

    /// Bring record `id` up to date with its smoltcp sockets: connection
    /// outcomes, listener queues, poll bits. When a waiter should look
    /// again, its signal joins the wake list (see `take_wakes`): whoever
    /// notices a change, the stack thread or an app thread in a call,
    /// passes it on, so no wake-up is lost to the one that noticed.
    pub fn refresh(&mut self, id: u64) {
        let ifaces = &mut self.ifaces;
        let Some(r) = self.recs.get_mut(&id) else {
            return;
        };
        let mut ev: u16 = 0;
        let mut fp: u64 = 0;
        let family_ok = family_filter(r);
        let mut rearm = false;
        match &mut r.kind {
            Kind::Tcp(Tcp::Idle) => ev = events::OUT | events::HUP,
            Kind::Tcp(Tcp::Listening { armed, ready, .. }) => {
                let mut k = 0;
                while k < armed.len() {
                    let (i, h) = armed[k];
                    let s = ifaces[i].sockets.get_mut::<tcp::Socket>(h);
                    match s.state() {
                        tcp::State::Listen | tcp::State::SynReceived => k += 1,
                        tcp::State::Closed | tcp::State::TimeWait => {
                            // Reset during the handshake: forget it.
                            ifaces[i].sockets.remove(h);
                            armed.swap_remove(k);
                            rearm = true;
                        }
                        _ => {
                            let ok = s.local_endpoint().is_some_and(|l| family_ok(l.addr));
                            armed.swap_remove(k);
                            if !ok {
                                // smoltcp's wildcard listener takes both
                                // families: an AF_INET socket turns IPv6
                                // clients away, an IPV6_V6ONLY one IPv4.
                                s.abort();
                                self.orphans.push((i, h));
                            } else {
                                ready.push_back((i, h));
                            }
                            rearm = true;
                        }
                    }
                }
                if !ready.is_empty() {
                    ev |= events::IN;
                }
                fp = ready.len() as u64;
            }
            Kind::Tcp(Tcp::Conn(c)) => {
                let s = ifaces[c.slot.0].sockets.get_mut::<tcp::Socket>(c.slot.1);
                let state = s.state();
                if !matches!(
                    state,
                    tcp::State::Closed
                        | tcp::State::SynSent
                        | tcp::State::SynReceived
                        | tcp::State::Listen
                ) {
                    if c.connecting {
                        c.connecting = false;
                    }
                    c.established = true;
                }
                if state == tcp::State::Closed && r.dead.is_none() {
                    if c.connecting {
                        c.connecting = false;
                        let e = NetError::Refused;
                        r.dead = Some(e);
                        r.error = Some(e);
                    } else if c.established && !c.wr_shut {
                        // Closed without our FIN: the peer reset it, or
                        // retransmissions gave up.
                        r.dead = Some(NetError::Reset);
                        r.error = Some(NetError::Reset);
                    }
                }
                if c.connecting {
                    // Nothing to report until the handshake ends.
                } else {
                    if s.can_recv() || !s.may_recv() || c.rd_shut {
                        ev |= events::IN;
                    }
                    if c.established && !s.may_recv() && r.dead.is_none() {
                        ev |= events::RDHUP;
                    }
                    if !c.wr_shut && s.may_send() && s.send_queue() < s.send_capacity() {
                        ev |= events::OUT;
                    }
                    if r.dead.is_some() {
                        ev |= events::HUP | events::IN | events::OUT;
                    }
                    if !s.may_send() && !s.may_recv() {
                        ev |= events::HUP;
                    }
                }
                fp = (s.recv_queue() as u64) << 32 | (s.send_queue() as u64) << 4 | state as u64;
            }
            Kind::Udp(u) => {
                ev = events::OUT;
                let mut q = 0;
                for &(i, h) in &u.socks {
                    let s = ifaces[i].sockets.get::<udp::Socket>(h);
                    if s.can_recv() {
                        ev |= events::IN;
                    }
                    q += s.recv_queue() as u64;
                }
                fp = q;
            }
        }
        if r.error.is_some() {
            ev |= events::ERR;
        }
        let fp = fp ^ (u64::from(ev) << 48);
        let signal = r.signal.clone();
        if rearm {
            self.arm(id);
        }
        if signal.update(ev, fp) {
            self.to_wake.push(signal);
        }
    }

    /// Signals whose sockets changed since the last call: the caller wakes
    /// them once the stack lock is released.
    pub fn take_wakes(&mut self) -> Vec<Arc<Signal>> {
        core::mem::take(&mut self.to_wake)
    }
}

/// Which peer addresses a socket's family admits: AF_INET only IPv4,
/// AF_INET6 both unless IPV6_V6ONLY.
fn family_filter(r: &Rec) -> impl Fn(IpAddress) -> bool + use<> {
    let (v6, only) = (r.v6, r.opts.v6only);
    move |a| match a {
        IpAddress::Ipv4(_) => !v6 || !only,
        IpAddress::Ipv6(_) => v6,
    }
}

/// A zeroed socket buffer, or ENOBUFS when memory is short (an app
/// opening sockets must not be able to panic the kernel).
fn buffer(len: usize) -> NetResult<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| NetError::NoBuffers)?;
    v.resize(len, 0);
    Ok(v)
}

fn copy(buf: &mut [u8], d: &[u8]) -> usize {
    let n = buf.len().min(d.len());
    buf[..n].copy_from_slice(&d[..n]);
    n
}

fn is_link_local(a: IpAddress) -> bool {
    match a {
        IpAddress::Ipv4(v4) => v4.is_link_local(),
        IpAddress::Ipv6(v6) => v6.is_unicast_link_local(),
    }
}

fn apply_tcp_options(s: &mut tcp::Socket<'static>, o: &Options) {
    s.set_nagle_enabled(!o.nodelay);
    // smoltcp has one keep-alive interval: probes start after TCP_KEEPIDLE
    // and repeat at that interval; the connection is dropped when nothing
    // answered for the idle time plus TCP_KEEPCNT probe intervals, about
    // when Linux would give up.
    s.set_keep_alive(
        o.keepalive
            .then(|| Duration::from_secs(u64::from(o.keepidle.max(1)))),
    );
    s.set_timeout(o.keepalive.then(|| {
        Duration::from_secs(u64::from(o.keepidle) + u64::from(o.keepintvl) * u64::from(o.keepcnt))
    }));
    s.set_hop_limit(o.hop_limit.filter(|&h| h > 0));
    // Delayed ACKs only help when Nagle batches; with TCP_NODELAY the app
    // wants every write out now, and the peer's ACK too.
    s.set_ack_delay(if o.nodelay {
        None
    } else {
        Some(Duration::from_millis(10))
    });
}

/// The shared state the stack thread sleeps on.
pub(crate) struct Kick {
    pub kicked: AtomicBool,
    pub queue: WaitQueue,
}

impl Kick {
    pub fn kick(&self) {
        self.kicked.store(true, Ordering::Release);
        self.queue.wake_all();
    }
}
