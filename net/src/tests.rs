//! Host tests: TCP and UDP over the loopback interface through the public
//! socket API (polled by hand: the host has no stack thread), and two
//! stacks talking through fake NICs to exercise the device adapter.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::AtomicBool;

use super::*;
use crate::phy::tests::FakeNic;
use crate::stack::Stack;

/// Tests sharing the global stack take turns: its lock is a kernel mutex,
/// which cannot sleep on the host when two test threads contend.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn lo4() -> IpAddress {
    IpAddress::v4(127, 0, 0, 1)
}

fn settle() {
    for _ in 0..8 {
        poll_now();
    }
}

fn connected_pair(port: u16, v6: bool) -> (Socket, Socket, Socket) {
    let addr = if v6 {
        IpAddress::Ipv6(Ipv6Address::LOCALHOST)
    } else {
        lo4()
    };
    let l = Socket::new(Proto::Tcp, v6);
    l.bind(addr, port).unwrap();
    l.listen(4).unwrap();
    let c = Socket::new(Proto::Tcp, v6);
    assert_eq!(
        c.connect(IpEndpoint::new(addr, port)),
        Err(NetError::InProgress)
    );
    assert_eq!(c.connect_outcome().unwrap(), None);
    settle();
    assert_eq!(c.connect_outcome().unwrap(), Some(Ok(())));
    assert!(l.events() & events::IN != 0);
    let (s, peer) = l.accept().unwrap();
    assert_eq!(peer.addr, addr);
    (l, c, s)
}

#[test]
fn tcp_echo_over_loopback_v4_and_v6() {
    let _turn = serial();
    for (port, v6) in [(7001, false), (7002, true)] {
        let (_l, c, s) = connected_pair(port, v6);
        let data: Vec<u8> = (0..20000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut sent = 0;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < data.len() {
            if sent < data.len()
                && let Ok(n) = c.send(&data[sent..])
            {
                sent += n;
            }
            settle();
            while let Ok(n) = s.recv(&mut buf, false) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(got, data);
        assert_eq!(c.peer().unwrap().port, port);
    }
}

#[test]
fn half_close_delivers_eof_and_keeps_the_other_way_open() {
    let _turn = serial();
    let (_l, c, s) = connected_pair(7003, false);
    c.send(b"last words").unwrap();
    c.shutdown(false, true).unwrap();
    settle();
    let mut buf = [0u8; 64];
    let mut peeked = [0u8; 4];
    assert_eq!(s.recv(&mut peeked, true), Ok(4));
    assert_eq!(s.recv(&mut buf, false), Ok(10));
    assert_eq!(&buf[..10], b"last words");
    assert_eq!(s.recv(&mut buf, false), Ok(0));
    assert!(s.events() & events::RDHUP != 0);
    assert_eq!(c.send(b"x"), Err(NetError::BrokenPipe));
    s.send(b"reply").unwrap();
    settle();
    assert_eq!(c.recv(&mut buf, false), Ok(5));
}

#[test]
fn backlog_overflow_is_refused() {
    let _turn = serial();
    let l = Socket::new(Proto::Tcp, false);
    l.bind(lo4(), 7004).unwrap();
    l.listen(1).unwrap();
    let a = Socket::new(Proto::Tcp, false);
    let b = Socket::new(Proto::Tcp, false);
    let _ = a.connect(IpEndpoint::new(lo4(), 7004));
    settle();
    let _ = b.connect(IpEndpoint::new(lo4(), 7004));
    settle();
    assert_eq!(a.connect_outcome().unwrap(), Some(Ok(())));
    assert_eq!(b.connect_outcome().unwrap(), Some(Err(NetError::Refused)));
    // Accepting makes room again.
    let (_s, _) = l.accept().unwrap();
    let c = Socket::new(Proto::Tcp, false);
    let _ = c.connect(IpEndpoint::new(lo4(), 7004));
    settle();
    assert_eq!(c.connect_outcome().unwrap(), Some(Ok(())));
}

#[test]
fn nobody_listening_is_refused_and_reset_is_reported() {
    let _turn = serial();
    let c = Socket::new(Proto::Tcp, false);
    let _ = c.connect(IpEndpoint::new(lo4(), 7005));
    settle();
    assert_eq!(c.connect_outcome().unwrap(), Some(Err(NetError::Refused)));

    let (_l, c, s) = connected_pair(7006, false);
    let mut o = s.options();
    o.linger = Some(0);
    s.set_options(o).unwrap();
    drop(s);
    settle();
    let mut buf = [0u8; 8];
    assert_eq!(c.recv(&mut buf, false), Err(NetError::Reset));
    assert_eq!(c.send(b"x"), Err(NetError::BrokenPipe));
}

#[test]
fn sockets_only_hear_their_family() {
    let _turn = serial();
    let l = Socket::new(Proto::Tcp, false);
    l.bind(IpAddress::v4(0, 0, 0, 0), 7010).unwrap();
    l.listen(2).unwrap();
    let c6 = Socket::new(Proto::Tcp, true);
    let _ = c6.connect(IpEndpoint::new(
        IpAddress::Ipv6(Ipv6Address::LOCALHOST),
        7010,
    ));
    let c4 = Socket::new(Proto::Tcp, false);
    let _ = c4.connect(IpEndpoint::new(lo4(), 7010));
    settle();
    assert_eq!(c4.connect_outcome().unwrap(), Some(Ok(())));
    assert!(
        c6.connect_outcome().unwrap() != Some(Ok(()))
            || c6.recv(&mut [0u8; 1], false) == Err(NetError::Reset)
    );
    let (_s, peer) = l.accept().unwrap();
    assert_eq!(peer.addr, lo4());
    assert_eq!(l.accept().err(), Some(NetError::WouldBlock));

    let only6 = Socket::new(Proto::Udp, true);
    let mut o = only6.options();
    o.v6only = true;
    only6.set_options(o).unwrap();
    only6
        .bind(IpAddress::Ipv6(Ipv6Address::UNSPECIFIED), 7011)
        .unwrap();
    let u4 = Socket::new(Proto::Udp, false);
    u4.send_to(b"v4", Some(IpEndpoint::new(lo4(), 7011)))
        .unwrap();
    settle();
    assert_eq!(
        only6.recv_from(&mut [0u8; 4], false),
        Err(NetError::WouldBlock)
    );
}

#[test]
fn closed_connections_are_reaped() {
    let _turn = serial();
    settle();
    let before = net().stack.lock().ifaces[0].sockets.iter().count();
    for round in 0..20u16 {
        let (l, c, s) = connected_pair(7200 + round, round % 2 == 1);
        c.send(b"x").unwrap();
        settle();
        if round % 3 == 0 {
            drop(s);
            settle();
            drop(c);
        } else {
            drop(c);
            settle();
            drop(s);
        }
        drop(l);
        settle();
    }
    settle();
    let after = net().stack.lock().ifaces[0].sockets.iter().count();
    // Earlier tests' connections may still be closing when `before` is
    // counted; none of this test's may remain.
    assert!(
        after <= before,
        "smoltcp sockets left behind: {before} -> {after}"
    );
}

#[test]
fn ports_conflict_unless_shared() {
    let _turn = serial();
    let a = Socket::new(Proto::Tcp, false);
    a.bind(lo4(), 7007).unwrap();
    a.listen(1).unwrap();
    let b = Socket::new(Proto::Tcp, false);
    assert_eq!(b.bind(lo4(), 7007), Err(NetError::AddrInUse));
    let any = Socket::new(Proto::Tcp, false);
    assert_eq!(
        any.bind(IpAddress::v4(0, 0, 0, 0), 7007),
        Err(NetError::AddrInUse)
    );
    let far = Socket::new(Proto::Tcp, false);
    assert_eq!(
        far.bind(IpAddress::v4(10, 9, 9, 9), 7008),
        Err(NetError::AddrNotAvail)
    );
    drop(a);
    b.bind(lo4(), 7007).unwrap();
    // UDP is a different port space.
    let u = Socket::new(Proto::Udp, false);
    u.bind(lo4(), 7007).unwrap();
}

#[test]
fn udp_echo_over_loopback() {
    let _turn = serial();
    let srv = Socket::new(Proto::Udp, true);
    srv.bind(IpAddress::Ipv6(Ipv6Address::UNSPECIFIED), 7009)
        .unwrap();
    let cli = Socket::new(Proto::Udp, true);
    let to = IpEndpoint::new(IpAddress::Ipv6(Ipv6Address::LOCALHOST), 7009);
    cli.send_to(b"ping", Some(to)).unwrap();
    settle();
    let mut buf = [0u8; 2];
    // A short buffer still reports the datagram's length.
    let peeked = srv.recv_from(&mut buf, true);
    assert_eq!(
        peeked.map(|p| p.0),
        Ok(4),
        "client bound to {:?}",
        cli.local()
    );
    let mut buf = [0u8; 16];
    let (n, from) = srv
        .recv_from(&mut buf, false)
        .expect("the datagram stays after a peek");
    assert_eq!(&buf[..n], b"ping");
    srv.send_to(b"pong", Some(from)).unwrap();
    settle();
    let (n, from) = cli.recv_from(&mut buf, false).expect("the reply arrives");
    assert_eq!(&buf[..n], b"pong");
    assert_eq!(from.port, 7009);
    assert_eq!(cli.recv_from(&mut buf, false), Err(NetError::WouldBlock));
}

/// Move frames between two fake NICs until both are quiet.
fn shuttle(a: &mut Stack, an: &FakeNic, b: &mut Stack, bn: &FakeNic) {
    for _ in 0..50 {
        a.poll();
        b.poll();
        let ta: Vec<_> = core::mem::take(&mut *an.tx.lock());
        let tb: Vec<_> = core::mem::take(&mut *bn.tx.lock());
        if ta.is_empty() && tb.is_empty() {
            break;
        }
        bn.rx.lock().extend(ta);
        an.rx.lock().extend(tb);
    }
}

#[test]
fn two_stacks_talk_tcp_through_fake_nics() {
    let mk = |ip: &str, mac_last: u8| {
        let nic = FakeNic::with_ring(usize::MAX);
        let mut stack = Stack::new();
        let (cfg, p) = config::parse(&[("keel.net.ip".into(), ip.into())]);
        assert!(p.is_empty());
        let phy = phy::NicPhy::new(nic.clone(), Arc::new(AtomicBool::new(false)));
        stack.add_nic(phy, [0x52, 0x54, 0, 0, 0, mac_last], &cfg);
        (stack, nic)
    };
    let (mut a, an) = mk("10.0.0.1/24", 1);
    let (mut b, bn) = mk("10.0.0.2/24", 2);
    let (l, _) = b.create(Proto::Tcp, false);
    b.bind(l, IpAddress::v4(0, 0, 0, 0), 80).unwrap();
    b.listen(l, 2).unwrap();
    let (c, _) = a.create(Proto::Tcp, false);
    let dst = IpEndpoint::new(IpAddress::v4(10, 0, 0, 2), 80);
    assert_eq!(a.connect(c, dst), Err(NetError::InProgress));
    shuttle(&mut a, &an, &mut b, &bn);
    assert_eq!(a.connect_outcome(c).unwrap(), Some(Ok(())));
    let (s, _, peer) = b.accept(l).unwrap();
    assert_eq!(peer.addr, IpAddress::v4(10, 0, 0, 1));
    assert_eq!(a.send(c, b"over the wire"), Ok(13));
    shuttle(&mut a, &an, &mut b, &bn);
    let mut buf = [0u8; 32];
    assert_eq!(b.recv(s, &mut buf, false), Ok(13));
    assert_eq!(&buf[..13], b"over the wire");
    // Link-local IPv6 is configured from the MAC.
    assert!(
        a.ifaces[1]
            .iface
            .ip_addrs()
            .iter()
            .any(|c| c.address() == IpAddress::Ipv6(stack::link_local([0x52, 0x54, 0, 0, 0, 1])))
    );
    // The NIC's own address is reachable over loopback too.
    assert!(a.ifaces[0].owns(IpAddress::v4(10, 0, 0, 1)));
}

#[test]
fn garbage_frames_do_not_hurt() {
    let nic = FakeNic::with_ring(usize::MAX);
    let mut stack = Stack::new();
    let phy = phy::NicPhy::new(nic.clone(), Arc::new(AtomicBool::new(false)));
    let (cfg, _) = config::parse(&[("keel.net.ip".into(), "10.0.0.1/24".into())]);
    stack.add_nic(phy, [0x52, 0x54, 0, 0, 0, 1], &cfg);
    let mut seed = 12345u32;
    for len in [0usize, 1, 13, 14, 20, 34, 54, 60, 1514, 9000] {
        let mut f = Vec::with_capacity(len);
        for _ in 0..len {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            f.push((seed >> 16) as u8);
        }
        if len >= 14 {
            f[12] = 0x08; // IPv4 ethertype: reach the IP parser
            f[13] = 0;
        }
        nic.rx.lock().push_back(f);
    }
    stack.poll();
    assert!(nic.rx.lock().is_empty());
}

/// A DHCP server in a test: answers DISCOVER with OFFER and REQUEST with
/// ACK for 10.0.2.15/24, router 10.0.2.2, DNS 10.0.2.3.
fn dhcp_answer(server: &mut Stack, id: u64) -> bool {
    use smoltcp::wire::{DhcpMessageType, DhcpPacket, DhcpRepr};
    let mut buf = [0u8; 1500];
    let Ok((n, _)) = server.recv_from(id, &mut buf, false) else {
        return false;
    };
    let packet = DhcpPacket::new_checked(&buf[..n]).expect("a DHCP packet");
    let req = DhcpRepr::parse(&packet).expect("a DHCP message");
    let kind = match req.message_type {
        DhcpMessageType::Discover => DhcpMessageType::Offer,
        DhcpMessageType::Request => DhcpMessageType::Ack,
        _ => return false,
    };
    let mut dns = heapless::Vec::new();
    dns.push(Ipv4Address::new(10, 0, 2, 3)).unwrap();
    let reply = DhcpRepr {
        message_type: kind,
        transaction_id: req.transaction_id,
        secs: 0,
        client_hardware_address: req.client_hardware_address,
        client_ip: Ipv4Address::UNSPECIFIED,
        your_ip: Ipv4Address::new(10, 0, 2, 15),
        server_ip: Ipv4Address::new(10, 0, 2, 2),
        router: Some(Ipv4Address::new(10, 0, 2, 2)),
        subnet_mask: Some(Ipv4Address::new(255, 255, 255, 0)),
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: false,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(Ipv4Address::new(10, 0, 2, 2)),
        parameter_request_list: None,
        dns_servers: Some(dns),
        max_size: None,
        lease_duration: Some(3600),
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let mut out = alloc::vec![0u8; reply.buffer_len()];
    reply
        .emit(&mut DhcpPacket::new_unchecked(&mut out[..]))
        .expect("emit");
    let to = IpEndpoint::new(IpAddress::v4(255, 255, 255, 255), 68);
    server.send_to(id, &out, Some(to)).expect("reply queued");
    true
}

#[test]
fn dhcp_configures_the_interface_and_name_servers() {
    let cnic = FakeNic::with_ring(usize::MAX);
    let snic = FakeNic::with_ring(usize::MAX);
    let mut client = Stack::new();
    let (cfg, _) = config::parse(&[]);
    let phy = phy::NicPhy::new(cnic.clone(), Arc::new(AtomicBool::new(false)));
    client.add_nic(phy, [0x52, 0x54, 0, 0, 0, 9], &cfg);
    let mut server = Stack::new();
    let (scfg, _) = config::parse(&[("keel.net.ip".into(), "10.0.2.2/24".into())]);
    let phy = phy::NicPhy::new(snic.clone(), Arc::new(AtomicBool::new(false)));
    server.add_nic(phy, [0x52, 0x54, 0, 0, 0, 2], &scfg);
    let (sid, _) = server.create(Proto::Udp, false);
    let mut o = server.options(sid).unwrap();
    o.broadcast = true; // replies go to 255.255.255.255
    server.set_options(sid, o).unwrap();
    server.bind(sid, IpAddress::v4(0, 0, 0, 0), 67).unwrap();
    let mut answered = 0;
    for _ in 0..20 {
        shuttle(&mut client, &cnic, &mut server, &snic);
        while dhcp_answer(&mut server, sid) {
            answered += 1;
        }
        if client.ifaces[1].iface.ipv4_addr().is_some() {
            break;
        }
    }
    assert_eq!(answered, 2, "DISCOVER and REQUEST answered");
    assert_eq!(
        client.ifaces[1].iface.ipv4_addr(),
        Some(Ipv4Address::new(10, 0, 2, 15))
    );
    assert!(client.dns_changed);
    assert_eq!(client.dns, [IpAddress::v4(10, 0, 2, 3)]);
    // The leased address is the machine's own on loopback too, and the
    // server can now reach the client.
    assert!(client.ifaces[0].owns(IpAddress::v4(10, 0, 2, 15)));
    let (l, _) = client.create(Proto::Tcp, false);
    client.bind(l, IpAddress::v4(0, 0, 0, 0), 8080).unwrap();
    client.listen(l, 1).unwrap();
    let (c, _) = server.create(Proto::Tcp, false);
    let dst = IpEndpoint::new(IpAddress::v4(10, 0, 2, 15), 8080);
    assert_eq!(server.connect(c, dst), Err(NetError::InProgress));
    shuttle(&mut client, &cnic, &mut server, &snic);
    assert_eq!(server.connect_outcome(c).unwrap(), Some(Ok(())));
}

/// Whether `frame` (Ethernet, IPv4) carries a TCP SYN without ACK.
fn is_pure_syn(frame: &[u8]) -> bool {
    use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return false;
    }
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        return false;
    };
    if ip.next_header() != IpProtocol::Tcp {
        return false;
    }
    TcpPacket::new_checked(ip.payload()).is_ok_and(|t| t.syn() && !t.ack())
}

/// A retransmitted SYN (QEMU's slirp resends one when the guest is slow to
/// answer) must reach the connection that owns its 4-tuple, never a spare
/// listener. smoltcp hands a segment to the first socket in slot order that
/// accepts it, and a listener accepts any SYN: a listener re-armed into a
/// slot below the connection turned the duplicate into a second half-open
/// connection on the same 4-tuple, which then took the connection's
/// segments and reset the peer.
#[test]
fn a_duplicate_syn_never_reaches_a_spare_listener() {
    let mk = |ip: &str, mac_last: u8| {
        let nic = FakeNic::with_ring(usize::MAX);
        let mut stack = Stack::new();
        let (cfg, _) = config::parse(&[("keel.net.ip".into(), ip.into())]);
        let phy = phy::NicPhy::new(nic.clone(), Arc::new(AtomicBool::new(false)));
        stack.add_nic(phy, [0x52, 0x54, 0, 0, 0, mac_last], &cfg);
        (stack, nic)
    };
    let (mut a, an) = mk("10.0.0.1/24", 1);
    let (mut b, bn) = mk("10.0.0.2/24", 2);
    let (l, _) = b.create(Proto::Tcp, false);
    b.bind(l, IpAddress::v4(0, 0, 0, 0), 80).unwrap();
    b.listen(l, 2).unwrap();
    let dst = IpEndpoint::new(IpAddress::v4(10, 0, 0, 2), 80);
    // A first connection comes and goes (reset, so it is reaped at once),
    // leaving a free slot below the listeners.
    let (c1, _) = a.create(Proto::Tcp, false);
    assert_eq!(a.connect(c1, dst), Err(NetError::InProgress));
    shuttle(&mut a, &an, &mut b, &bn);
    let (s1, _, _) = b.accept(l).unwrap();
    let mut o = b.options(s1).unwrap();
    o.linger = Some(0);
    b.set_options(s1, o).unwrap();
    b.destroy(s1);
    a.destroy(c1);
    shuttle(&mut a, &an, &mut b, &bn);
    // The second connection: keep its SYN to replay it later.
    let (c2, _) = a.create(Proto::Tcp, false);
    assert_eq!(a.connect(c2, dst), Err(NetError::InProgress));
    a.poll();
    let syn = an
        .tx
        .lock()
        .iter()
        .find(|f| is_pure_syn(f))
        .cloned()
        .expect("the client sent a SYN");
    shuttle(&mut a, &an, &mut b, &bn);
    assert_eq!(a.connect_outcome(c2).unwrap(), Some(Ok(())));
    // Accepting re-arms a listener, into the freed slot.
    let (s2, _, _) = b.accept(l).unwrap();
    bn.rx.lock().push_back(syn);
    shuttle(&mut a, &an, &mut b, &bn);
    let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    assert_eq!(a.send(c2, &data), Ok(data.len()));
    assert_eq!(a.shutdown(c2, false, true), Ok(()));
    shuttle(&mut a, &an, &mut b, &bn);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match b.recv(s2, &mut buf, false) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("recv: {e:?} after {} bytes", got.len()),
        }
    }
    assert_eq!(got, data, "every byte, then EOF");
    assert_eq!(b.take_error(s2).unwrap(), None, "no reset");
    assert_eq!(a.take_error(c2).unwrap(), None, "no reset");
}

/// A SYN that finds the backlog full is dropped, as Linux does, not reset:
/// the peer retries and gets in once the app accepts. (200 clients of a
/// server with backlog 64 behind QEMU user networking were reset.)
#[test]
fn a_full_backlog_drops_syns_instead_of_resetting() {
    let mk = |ip: &str, mac_last: u8| {
        let nic = FakeNic::with_ring(usize::MAX);
        let mut stack = Stack::new();
        let (cfg, _) = config::parse(&[("keel.net.ip".into(), ip.into())]);
        let phy = phy::NicPhy::new(nic.clone(), Arc::new(AtomicBool::new(false)));
        stack.add_nic(phy, [0x52, 0x54, 0, 0, 0, mac_last], &cfg);
        (stack, nic)
    };
    let (mut a, an) = mk("10.0.0.1/24", 1);
    let (mut b, bn) = mk("10.0.0.2/24", 2);
    let (l, _) = b.create(Proto::Tcp, false);
    b.bind(l, IpAddress::v4(0, 0, 0, 0), 80).unwrap();
    b.listen(l, 1).unwrap();
    let dst = IpEndpoint::new(IpAddress::v4(10, 0, 0, 2), 80);
    let (c1, _) = a.create(Proto::Tcp, false);
    assert_eq!(a.connect(c1, dst), Err(NetError::InProgress));
    shuttle(&mut a, &an, &mut b, &bn);
    assert_eq!(a.connect_outcome(c1).unwrap(), Some(Ok(())));
    // The backlog (1) is full: the next SYN goes unanswered.
    let (c2, _) = a.create(Proto::Tcp, false);
    assert_eq!(a.connect(c2, dst), Err(NetError::InProgress));
    a.poll();
    let syn = an
        .tx
        .lock()
        .iter()
        .find(|f| is_pure_syn(f))
        .cloned()
        .expect("the client sent a SYN");
    shuttle(&mut a, &an, &mut b, &bn);
    assert_eq!(a.connect_outcome(c2).unwrap(), None, "still trying");
    // Accepting makes room; the retransmitted SYN gets in.
    let _ = b.accept(l).unwrap();
    bn.rx.lock().push_back(syn);
    shuttle(&mut a, &an, &mut b, &bn);
    assert_eq!(a.connect_outcome(c2).unwrap(), Some(Ok(())));
    assert!(b.accept(l).is_ok());
    // Nobody listening on a port is still refused at once.
    let (c3, _) = a.create(Proto::Tcp, false);
    let closed = IpEndpoint::new(IpAddress::v4(10, 0, 0, 2), 81);
    assert_eq!(a.connect(c3, closed), Err(NetError::InProgress));
    shuttle(&mut a, &an, &mut b, &bn);
    assert_eq!(a.connect_outcome(c3).unwrap(), Some(Err(NetError::Refused)));
}

/// An echo to a half-closed client through a NIC whose transmit ring
/// holds two frames: every byte arrives without waiting for a
/// retransmission. (Frames the ring refused were lost after smoltcp
/// counted them sent, and smoltcp 0.12 never resends in CLOSE-WAIT while
/// the peer keeps acknowledging: the client got part of its echo, then a
/// reset once the server gave up.)
#[test]
fn a_small_transmit_ring_loses_nothing_to_a_half_closed_peer() {
    let mk = |ip: &str, mac_last: u8, ring: usize| {
        let nic = FakeNic::with_ring(ring);
        let mut stack = Stack::new();
        let (cfg, _) = config::parse(&[("keel.net.ip".into(), ip.into())]);
        let blocked = Arc::new(AtomicBool::new(false));
        let phy = phy::NicPhy::new(nic.clone(), blocked.clone());
        stack.add_nic(phy, [0x52, 0x54, 0, 0, 0, mac_last], &cfg);
        (stack, nic, blocked)
    };
    let (mut a, an, _) = mk("10.0.0.1/24", 1, usize::MAX);
    let (mut b, bn, bblocked) = mk("10.0.0.2/24", 2, 2);
    // One step of the wire: both stacks poll, frames cross, and b's
    // device completes its ring (the interrupt: room, and the wake-up).
    let step = |a: &mut Stack, b: &mut Stack| {
        a.poll();
        b.poll();
        let ta: Vec<_> = core::mem::take(&mut *an.tx.lock());
        let tb: Vec<_> = core::mem::take(&mut *bn.tx.lock());
        let quiet = ta.is_empty() && tb.is_empty();
        bn.rx.lock().extend(ta);
        an.rx.lock().extend(tb);
        *bn.ring.lock() = 2;
        bblocked.store(false, core::sync::atomic::Ordering::Release);
        quiet
    };
    let (l, _) = b.create(Proto::Tcp, false);
    b.bind(l, IpAddress::v4(0, 0, 0, 0), 80).unwrap();
    b.listen(l, 2).unwrap();
    let (c, _) = a.create(Proto::Tcp, false);
    let dst = IpEndpoint::new(IpAddress::v4(10, 0, 0, 2), 80);
    assert_eq!(a.connect(c, dst), Err(NetError::InProgress));
    for _ in 0..10 {
        step(&mut a, &mut b);
    }
    let (s, _, _) = b.accept(l).unwrap();
    let data: Vec<u8> = (0..30000u32).map(|i| (i * 13 + 1) as u8).collect();
    assert_eq!(a.send(c, &data[..1000]), Ok(1000));
    assert_eq!(a.shutdown(c, false, true), Ok(()));
    for _ in 0..10 {
        step(&mut a, &mut b);
    }
    let mut buf = [0u8; 2048];
    assert_eq!(b.recv(s, &mut buf, false), Ok(1000));
    assert_eq!(b.recv(s, &mut buf, false), Ok(0), "the client's FIN");
    // Echo a lot more than the ring holds, from CLOSE-WAIT.
    let mut sent = 0;
    let mut got = Vec::new();
    for _ in 0..2000 {
        if sent < data.len()
            && let Ok(n) = b.send(s, &data[sent..])
        {
            sent += n;
        }
        if sent == data.len() {
            b.destroy(s);
            sent += 1;
        }
        let quiet = step(&mut a, &mut b);
        while let Ok(n) = a.recv(c, &mut buf, false) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if quiet && sent > data.len() && got.len() == data.len() {
            break;
        }
    }
    assert_eq!(got.len(), data.len(), "every byte, without retransmission");
    assert_eq!(got, data);
    assert_eq!(a.take_error(c).unwrap(), None);
}
