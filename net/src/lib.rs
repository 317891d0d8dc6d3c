//! Keel's network stack glue: smoltcp interfaces (loopback and one per
//! NIC), DHCPv4 or static configuration, and the socket operations the
//! Linux ABI layer builds BSD sockets on.
//!
//! Every operation here is non-blocking: it acts under the stack lock and
//! reports `WouldBlock` when it would have to wait. Callers sleep on the
//! socket's [`Signal`] (read its generation first, check, then wait for the
//! generation to move). One stack thread polls smoltcp when a device wakes
//! it, when a socket operation kicks it, or at smoltcp's next deadline;
//! it never spins while the network is idle.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

#[cfg(test)]
extern crate keel_platform_host;

/// Console messages. Host tests stay quiet: the host console writes
/// straight to stdout, past the test harness's capture, and would
/// interleave with its result lines.
macro_rules! log {
    ($($arg:tt)*) => {
        if !cfg!(test) {
            keel_core::kprintln!($($arg)*);
        }
    };
}
pub(crate) use log;

pub mod config;
pub mod device;
pub mod phy;
mod stack;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use keel_core::sync::{Mutex, WaitQueue};
pub use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint, Ipv4Address, Ipv6Address};
pub use stack::{
    DEFAULT_BUFFER, MAX_BACKLOG, MAX_BUFFER, MIN_BUFFER, NetError, NetResult, Options, Proto,
    Signal, events,
};

use stack::{Kick, Stack};

struct Net {
    stack: Mutex<Stack>,
    kick: Arc<Kick>,
    started: AtomicBool,
}

static NET: spin::Once<Net> = spin::Once::new();

fn net() -> &'static Net {
    NET.call_once(|| {
        let (cfg, problems) = config::parse(keel_core::cmdline::net_options());
        for p in problems {
            log!("keel: {p}");
        }
        let kick = Arc::new(Kick {
            kicked: AtomicBool::new(false),
            queue: WaitQueue::new(),
        });
        let mut stack = Stack::new();
        for dev in device::devices() {
            let blocked = Arc::new(AtomicBool::new(false));
            let (b, k) = (blocked.clone(), kick.clone());
            // Runs in interrupt context: two stores and a wake-up.
            dev.set_wake(Arc::new(move || {
                b.store(false, Ordering::Release);
                k.kick();
            }));
            let mac = dev.mac_address();
            stack.add_nic(phy::NicPhy::new(dev, blocked), mac, &cfg);
        }
        Net {
            stack: Mutex::new(stack),
            kick,
            started: AtomicBool::new(false),
        }
    })
}

/// Bring the interfaces up and start the stack thread (once; later calls
/// do nothing). Call after device discovery registered the NICs.
pub fn start() {
    let n = net();
    if n.started.swap(true, Ordering::AcqRel) {
        return;
    }
    keel_core::sched::spawn("net", move || {
        loop {
            n.kick.kicked.store(false, Ordering::Release);
            let (wake, deadline, dns) = {
                let mut s = n.stack.lock();
                let (_, wake) = s.poll();
                let dns = core::mem::take(&mut s.dns_changed).then(|| s.dns.clone());
                (wake, s.next_deadline_ns(), dns)
            };
            for s in wake {
                s.bump();
            }
            if let (Some(servers), Some(hook)) = (dns, DNS_HOOK.get()) {
                hook(&servers);
            }
            n.kick
                .queue
                .wait_until_deadline(|| n.kick.kicked.load(Ordering::Acquire), deadline);
        }
    });
}

/// Poll the stack once from the caller's thread (host tests, which have no
/// stack thread).
pub fn poll_now() {
    let wake = net().stack.lock().poll().1;
    for s in wake {
        s.bump();
    }
}

/// Interface names and addresses, for logs and /proc.
pub fn interfaces() -> Vec<(String, Vec<String>)> {
    let s = net().stack.lock();
    s.ifaces
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                i.iface
                    .ip_addrs()
                    .iter()
                    .map(|c| alloc::format!("{c}"))
                    .collect(),
            )
        })
        .collect()
}

static DNS_HOOK: spin::Once<fn(&[IpAddress])> = spin::Once::new();

/// Have `hook` called (from the stack thread, without stack locks) with
/// the name servers whenever they change; the Linux layer writes
/// /etc/resolv.conf with them.
pub fn on_dns_change(hook: fn(&[IpAddress])) {
    DNS_HOOK.call_once(|| hook);
}

/// Name servers from the command line or DHCP.
pub fn dns_servers() -> Vec<IpAddress> {
    net().stack.lock().dns.clone()
}

/// A TCP or UDP socket. Dropping it closes it: a TCP connection still
/// sends what was queued, then says goodbye (or resets, with SO_LINGER 0).
pub struct Socket {
    id: u64,
    signal: Arc<Signal>,
    proto: Proto,
}

impl Socket {
    /// A new unbound socket; `v6` for AF_INET6.
    pub fn new(proto: Proto, v6: bool) -> Self {
        let (id, signal) = {
            let mut s = net().stack.lock();
            let r = s.create(proto, v6);
            s.take_wakes();
            r
        };
        Self { id, signal, proto }
    }

    /// TCP or UDP.
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// Sleep on this to wait for a change (see the crate docs).
    pub fn signal(&self) -> &Arc<Signal> {
        &self.signal
    }

    /// Run `f` under the stack lock; `kick` tells the stack thread
    /// something may need sending.
    fn with<R>(&self, kick: bool, f: impl FnOnce(&mut Stack, u64) -> R) -> R {
        let n = net();
        let (r, wakes) = {
            let mut s = n.stack.lock();
            let r = f(&mut s, self.id);
            // Whatever the call changed shows in poll at once (SO_ACCEPTCONN
            // after listen, POLLOUT after connect), not after the next poll.
            s.refresh(self.id);
            (r, s.take_wakes())
        };
        for s in wakes {
            s.bump();
        }
        if kick {
            n.kick.kick();
        }
        r
    }

    /// Current options.
    pub fn options(&self) -> Options {
        self.with(false, |s, id| s.options(id)).unwrap_or_default()
    }

    /// Replace the options.
    pub fn set_options(&self, o: Options) -> NetResult<()> {
        self.with(true, |s, id| s.set_options(id, o))
    }

    /// bind(2): `addr` may be unspecified (every interface); port 0 picks
    /// an ephemeral one.
    pub fn bind(&self, addr: IpAddress, port: u16) -> NetResult<()> {
        self.with(false, |s, id| s.bind(id, addr, port))
    }

    /// listen(2) with `backlog` pending connections (capped at
    /// [`MAX_BACKLOG`]); beyond that, connection attempts are refused.
    pub fn listen(&self, backlog: usize) -> NetResult<()> {
        self.with(true, |s, id| s.listen(id, backlog))
    }

    /// accept(2): a connection and its peer, or `WouldBlock`.
    pub fn accept(&self) -> NetResult<(Socket, IpEndpoint)> {
        let (id, signal, peer) = self.with(true, |s, id| s.accept(id))?;
        Ok((
            Socket {
                id,
                signal,
                proto: Proto::Tcp,
            },
            peer,
        ))
    }

    /// connect(2): TCP starts the handshake and returns `InProgress` (see
    /// [`Socket::connect_outcome`]); UDP records the peer.
    pub fn connect(&self, to: IpEndpoint) -> NetResult<()> {
        let r = self.with(true, |s, id| s.connect(id, to));
        self.signal.bump();
        r
    }

    /// None while a TCP handshake is under way; then how it ended.
    pub fn connect_outcome(&self) -> NetResult<Option<NetResult<()>>> {
        self.with(false, |s, id| s.connect_outcome(id))
    }

    /// Queue bytes (TCP) or one datagram (UDP, to the connected peer).
    pub fn send(&self, data: &[u8]) -> NetResult<usize> {
        self.with(true, |s, id| s.send(id, data))
    }

    /// Take (or with `peek`, copy) received bytes; 0 is end of file.
    pub fn recv(&self, buf: &mut [u8], peek: bool) -> NetResult<usize> {
        self.with(true, |s, id| s.recv(id, buf, peek))
    }

    /// Send one datagram to `to` (or the connected peer).
    pub fn send_to(&self, data: &[u8], to: Option<IpEndpoint>) -> NetResult<usize> {
        self.with(true, |s, id| s.send_to(id, data, to))
    }

    /// Receive one datagram: its whole length (which may exceed `buf`;
    /// the rest is discarded unless peeking) and its sender.
    pub fn recv_from(&self, buf: &mut [u8], peek: bool) -> NetResult<(usize, IpEndpoint)> {
        self.with(false, |s, id| s.recv_from(id, buf, peek))
    }

    /// shutdown(2).
    pub fn shutdown(&self, read: bool, write: bool) -> NetResult<()> {
        let r = self.with(true, |s, id| s.shutdown(id, read, write));
        self.signal.bump();
        r
    }

    /// The bound or connected local address.
    pub fn local(&self) -> Option<IpListenEndpoint> {
        self.with(false, |s, id| s.local(id)).ok().flatten()
    }

    /// Whether listen() made this a listening socket.
    pub fn listening(&self) -> bool {
        self.with(false, |s, id| s.listening(id))
    }

    /// The connected peer.
    pub fn peer(&self) -> NetResult<IpEndpoint> {
        self.with(false, |s, id| s.peer(id))
    }

    /// Take the pending error (SO_ERROR).
    pub fn take_error(&self) -> Option<NetError> {
        self.with(false, |s, id| s.take_error(id)).ok().flatten()
    }

    /// Bytes waiting (FIONREAD).
    pub fn available(&self) -> usize {
        self.with(false, |s, id| s.available(id)).unwrap_or(0)
    }

    /// poll(2) bits (see [`events`]).
    pub fn events(&self) -> u16 {
        self.signal.events()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let n = net();
        let wakes = {
            let mut s = n.stack.lock();
            s.destroy(self.id);
            s.take_wakes()
        };
        for s in wakes {
            s.bump();
        }
        n.kick.kick();
        self.signal.bump();
    }
}

#[cfg(test)]
mod tests;
