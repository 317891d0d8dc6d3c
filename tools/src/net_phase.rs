//! The "network from the host" phase of `cargo keel test`: an unmodified
//! Linux echo server (tests/linux/net/echo_server.c) runs under Keel on a
//! virtio NIC behind QEMU user networking, and the host drives it through
//! ports forwarded on 127.0.0.1 only: many concurrent connections with
//! random payloads checked byte for byte, half-closes, resets, clients
//! that vanish mid-transfer, garbage, UDP — and the guest must still
//! answer correctly afterwards.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::arch::Arch;
use crate::harness::Tally;
use crate::initrd::Initrd;
use crate::qemu::{self, Accel, Next, Session, Vm};
use crate::test_devices;

/// The guest's ports: threaded TCP, epoll TCP, UDP.
const GUEST_PORT: u16 = 7000;
/// Connections open at once against each TCP server.
const CONCURRENT: usize = 200;

/// A small deterministic generator for payloads.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Free ports on 127.0.0.1 (bound and released: QEMU takes them next).
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<_>>()?)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// How many connections may be between `connect` and the guest's first
/// echoed byte at once. QEMU's user networking accepts forwarded
/// connections on a host socket listening with a backlog of 1 (`ss -ltn`
/// shows it), and accepts only when its main loop gets round to it, which
/// under TCG with the host's two cores busy is late. Past that backlog the
/// host kernel answers with SYN cookies, and a client that has already
/// sent past its first segment fails the cookie check and is reset by the
/// host kernel itself (nstat: TcpExtSyncookiesFailed == TcpOutRsts, and
/// the guest never sees a SYN for those connections). So connections are
/// admitted through this gate; once the guest has echoed a byte the
/// connection is the guest's, and all of them then run concurrently.
const HANDSHAKES_IN_FLIGHT: usize = 2;

/// A counting gate for `HANDSHAKES_IN_FLIGHT`.
static GATE: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

struct GatePass;

impl GatePass {
    fn take() -> Self {
        let mut n = GATE.0.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= HANDSHAKES_IN_FLIGHT {
            n = GATE.1.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        GatePass
    }
}

impl Drop for GatePass {
    fn drop(&mut self) {
        *GATE.0.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        GATE.1.notify_one();
    }
}

/// Clients that wait until all of them are connected, so that the
/// connections are open at the same time, not just started together.
struct Rendezvous {
    arrived: std::sync::Mutex<usize>,
    all: std::sync::Condvar,
    count: usize,
}

impl Rendezvous {
    fn new(count: usize) -> Self {
        Self {
            arrived: std::sync::Mutex::new(0),
            all: std::sync::Condvar::new(),
            count,
        }
    }

    /// Count one client in (connected, or failed) and wait, at most a
    /// minute, for the others.
    fn arrive_and_wait(&self) {
        let mut n = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
        *n += 1;
        self.all.notify_all();
        let deadline = Instant::now() + Duration::from_secs(60);
        while *n < self.count && Instant::now() < deadline {
            n = self
                .all
                .wait_timeout(n, Duration::from_secs(1))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Send `payload`, half-close, and require exactly it back, then EOF.
/// The first byte goes alone and its echo is awaited (see
/// `HANDSHAKES_IN_FLIGHT`); with `together`, the client then waits for
/// the others to get that far; the rest follows concurrently with the
/// reading.
fn echo_once(port: u16, payload: &[u8], together: Option<&Rendezvous>) -> Result<()> {
    let connected = (|| -> Result<(TcpStream, Vec<u8>)> {
        let _pass = GatePass::take();
        let mut s = TcpStream::connect_timeout(&addr(port), Duration::from_secs(20))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.set_write_timeout(Some(Duration::from_secs(60)))?;
        let mut back = Vec::with_capacity(payload.len());
        if let Some(&first) = payload.first() {
            s.write_all(&[first])?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b).context("the first byte's echo")?;
            back.push(b[0]);
        }
        Ok((s, back))
    })();
    if let Some(r) = together {
        r.arrive_and_wait();
    }
    let (mut s, mut back) = connected?;
    let writer = {
        let mut w = s.try_clone()?;
        let data = payload.get(1..).unwrap_or_default().to_vec();
        std::thread::spawn(move || -> std::io::Result<()> {
            w.write_all(&data)?;
            w.shutdown(Shutdown::Write)
        })
    };
    s.read_to_end(&mut back)?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
    if back != payload {
        let at = back.iter().zip(payload).position(|(a, b)| a != b);
        bail!(
            "echo differs: sent {} bytes, got {} back (first difference at {at:?})",
            payload.len(),
            back.len()
        );
    }
    Ok(())
}

/// `count` connections at once, each with a random payload.
fn concurrent_echoes(port: u16, count: usize, seed: u64) -> Result<String> {
    let started = Instant::now();
    let together = std::sync::Arc::new(Rendezvous::new(count));
    let handles: Vec<_> = (0..count)
        .map(|i| {
            let together = together.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let len = 1 + (rng.next() % 8192) as usize;
                let payload = rng.bytes(len);
                echo_once(port, &payload, Some(&together)).map(|()| len)
            })
        })
        .collect();
    let mut bytes = 0;
    let mut errors = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(n)) => bytes += n,
            Ok(Err(e)) => errors.push(format!("{e:#}")),
            Err(_) => errors.push("client thread panicked".into()),
        }
    }
    if !errors.is_empty() {
        bail!(
            "{} of {count} connections failed; first: {}",
            errors.len(),
            errors[0]
        );
    }
    Ok(format!(
        "{count} concurrent connections, {} KiB verified, {:.1} s",
        bytes / 1024,
        started.elapsed().as_secs_f64()
    ))
}

/// Clients that misbehave: reset mid-transfer, vanish without reading,
/// send garbage and leave. None may hurt the server.
fn rude_clients(port: u16, seed: u64) -> Result<String> {
    let mut rng = Rng(seed);
    for round in 0..20 {
        let mut s = TcpStream::connect_timeout(&addr(port), Duration::from_secs(20))
            .with_context(|| format!("round {round}: connect"))?;
        let len = 1 + (rng.next() % 65536) as usize;
        let junk = rng.bytes(len);
        let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(&junk);
        match round % 3 {
            // Abortive close: SO_LINGER 0 makes the host send a reset.
            0 => {
                linger_zero(&s);
                drop(s);
            }
            // Half-close, then vanish without reading the echo.
            1 => {
                let _ = s.shutdown(Shutdown::Write);
                drop(s);
            }
            // Vanish mid-write.
            _ => drop(s),
        }
    }
    Ok("20 resets, vanishing clients and garbage".into())
}

/// SO_LINGER {on, 0}: dropping the stream then sends a reset.
fn linger_zero(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

fn udp_echoes(port: u16, seed: u64) -> Result<String> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut rng = Rng(seed);
    let mut answered = 0;
    for _ in 0..50 {
        let len = 1 + (rng.next() % 1400) as usize;
        let msg = rng.bytes(len);
        sock.send_to(&msg, addr(port))?;
        let mut buf = [0u8; 2048];
        // UDP may drop; a lost datagram is retried once.
        let got = match sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(n),
            Err(_) => {
                sock.send_to(&msg, addr(port))?;
                sock.recv_from(&mut buf).ok().map(|(n, _)| n)
            }
        };
        match got {
            Some(n) if buf[..n] == msg[..] => answered += 1,
            Some(n) => bail!(
                "UDP echo of {} bytes came back as {n} different bytes",
                msg.len()
            ),
            None => {}
        }
    }
    if answered < 45 {
        bail!("only {answered} of 50 UDP datagrams were echoed");
    }
    Ok(format!("{answered}/50 datagrams echoed"))
}

fn record(tally: &mut Tally, name: &str, result: Result<String>) {
    match result {
        Ok(note) => {
            tally.passed += 1;
            println!("test {name} ... ok ({note})");
        }
        Err(e) => {
            tally.failed += 1;
            tally.failures.push(name.to_string());
            println!("test {name} ... FAILED: {e:#}");
        }
    }
}

/// Wait until the guest's threaded server answers an echo.
fn wait_until_serving(session: &Session, port: u16, console: &mut String) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        while let Next::Line(l) = session.next(Duration::from_millis(10)) {
            console.push_str(&l);
        }
        if console.contains("ready") && echo_once(port, b"probe", None).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("the guest's echo server never answered through the forwarded port:\n{console}")
}

/// The phase for one arch.
pub fn phase(workspace: &Path, arch: Arch, image: &Path, tally: &mut Tally) -> Result<()> {
    let machine = qemu::default_machine(arch);
    let Some(transport) = test_devices::transport(arch, machine) else {
        tally.skipped += 1;
        println!("test net {arch} ... skipped: no virtio NIC transport on {arch} yet");
        return Ok(());
    };
    println!("== {arch} network from the host (echo servers behind a virtio NIC)");
    let program = match crate::guest_programs::build_static_c(
        workspace,
        arch,
        "tests/linux/net/echo_server.c",
        "echo-server",
    ) {
        Ok(p) => p,
        Err(e) => {
            record(tally, &format!("net {arch}: build the echo server"), Err(e));
            return Ok(());
        }
    };
    let dir = workspace.join("target/keel");
    let initrd_path = dir.join(format!("net-{arch}.cpio"));
    let mut initrd = Initrd::new();
    initrd.add_file(&program, "/echo_server")?;
    initrd.write(&initrd_path)?;
    let ports = free_ports(3)?;
    let forwards = format!(
        "user,id=net0,hostfwd=tcp:127.0.0.1:{}-:{GUEST_PORT},hostfwd=tcp:127.0.0.1:{}-:{},hostfwd=udp:127.0.0.1:{}-:{}",
        ports[0],
        ports[1],
        GUEST_PORT + 1,
        ports[2],
        GUEST_PORT + 2
    );
    let vm = Vm {
        arch,
        machine: Some(machine.into()),
        smp: 2,
        memory: "1G".into(),
        accel: Accel::Tcg,
        image: image.to_path_buf(),
        cmdline: format!("-- /echo_server {GUEST_PORT}"),
        interactive: false,
        initrd: Some(initrd_path),
        devices: vec![
            "-netdev".into(),
            forwards,
            "-device".into(),
            format!("virtio-net-{transport},netdev=net0"),
        ],
    };
    let session = Session::start(&vm)?;
    let mut console = String::new();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let up = wait_until_serving(&session, ports[0], &mut console);
    let serving = up.is_ok();
    record(
        tally,
        &format!("net {arch}: guest reachable through a forwarded port"),
        up.map(|()| "DHCP, then an echo through QEMU user networking".into()),
    );
    if serving {
        record(
            tally,
            &format!("net {arch}: threaded TCP echo, {CONCURRENT} concurrent connections"),
            concurrent_echoes(ports[0], CONCURRENT, seed),
        );
        record(
            tally,
            &format!("net {arch}: epoll TCP echo, {CONCURRENT} concurrent connections"),
            concurrent_echoes(ports[1], CONCURRENT, seed.rotate_left(17)),
        );
        record(
            tally,
            &format!("net {arch}: UDP echo"),
            udp_echoes(ports[2], seed),
        );
        let rude = rude_clients(ports[0], seed.rotate_left(5))
            .and_then(|note| rude_clients(ports[1], seed.rotate_left(9)).map(|_| note));
        record(
            tally,
            &format!("net {arch}: resets, vanishing clients, garbage"),
            rude,
        );
        let after = concurrent_echoes(ports[0], 20, seed.rotate_left(29))
            .and_then(|_| concurrent_echoes(ports[1], 20, seed.rotate_left(31)));
        record(
            tally,
            &format!("net {arch}: still serving correctly afterwards"),
            after.map(|_| "40 more echoes verified".into()),
        );
    }
    while let Next::Line(l) = session.next(Duration::from_millis(50)) {
        console.push_str(&l);
    }
    session.kill();
    let healthy = if console.contains("panicked") || console.contains("keel: exit status") {
        Err(anyhow::anyhow!(
            "the guest did not stay up (seed {seed}):\n{console}"
        ))
    } else {
        Ok(format!("seed {seed}"))
    };
    record(tally, &format!("net {arch}: the guest stayed up"), healthy);
    Ok(())
}
