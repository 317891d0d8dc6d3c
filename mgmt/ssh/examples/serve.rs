//! The SSH server on the host, over std TCP and keel-mgmt's fake system:
//! log in with the stock OpenSSH client before any kernel serves it.
//!
//! `cargo run -p keel-ssh --example serve -- PORT AUTHORIZED_KEYS [HOST_KEY]`
//! then `ssh -p PORT keel@127.0.0.1` (with a key from AUTHORIZED_KEYS).
//! Without HOST_KEY a fresh key is made and its fingerprint printed. The
//! end-to-end test (tests/openssh.rs) drives this same `serve` function.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_mgmt::testing::Fake;
use keel_ssh::{AuthorizedKeys, Config, HostKey, Rng, Session};

/// Randomness for the host key from the host OS.
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&mut self, dest: &mut [u8]) {
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(dest))
            .expect("/dev/urandom");
    }
}

/// Run one connection to its end: what a kernel transport does with a TCP
/// socket, written against std.
pub fn serve(stream: TcpStream, config: &Config, sys: &Mutex<Fake>) -> std::io::Result<()> {
    serve_with(stream, config, sys, 16 * 1024, 16 * 1024)
}

/// [`serve`] with chosen read and write sizes: tiny ones show the session
/// copes with a transport that hands it a byte at a time and takes a few.
pub fn serve_with(
    mut stream: TcpStream,
    config: &Config,
    sys: &Mutex<Fake>,
    read_size: usize,
    write_size: usize,
) -> std::io::Result<()> {
    // Idle connections end rather than pin a thread forever.
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut session = Session::new(config);
    let mut inbuf = vec![0u8; read_size];
    let mut outbuf = vec![0u8; write_size];
    loop {
        loop {
            let n = session.send(&mut *sys.lock().unwrap(), &mut outbuf);
            if n == 0 {
                break;
            }
            stream.write_all(&outbuf[..n])?;
        }
        if session.is_finished() {
            if let Some(e) = session.error() {
                eprintln!("session failed: {e}");
            }
            close_gracefully(stream, &mut inbuf);
            return Ok(());
        }
        let got = match stream.read(&mut inbuf) {
            Ok(0) => {
                session.peer_closed(&mut *sys.lock().unwrap());
                continue;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                session.abort();
                return Err(e);
            }
        };
        let mut pos = 0;
        while pos < got {
            let taken = session.recv(&mut *sys.lock().unwrap(), &inbuf[pos..got]);
            pos += taken;
            let mut sent = 0;
            loop {
                let n = session.send(&mut *sys.lock().unwrap(), &mut outbuf);
                if n == 0 {
                    break;
                }
                sent += n;
                stream.write_all(&outbuf[..n])?;
            }
            if taken == 0 && sent == 0 {
                // The session takes nothing more and has nothing to say:
                // only possible once it has finished.
                break;
            }
        }
    }
}

/// Send FIN, then read until the peer closes too. Closing outright while
/// the peer's last packets (window adjustments) are unread makes the stack
/// send a reset, and a reset makes the peer throw away output it has
/// received but not yet read: the tail of a long `cat` would vanish.
fn close_gracefully(mut stream: TcpStream, buf: &mut [u8]) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    while matches!(stream.read(buf), Ok(n) if n > 0) {}
}

/// Accept connections on `listener` forever, one thread each.
pub fn accept_loop(listener: TcpListener, config: Arc<Config>, sys: Arc<Mutex<Fake>>) {
    accept_loop_with(listener, config, sys, 16 * 1024, 16 * 1024)
}

/// [`accept_loop`] with [`serve_with`]'s sizes.
pub fn accept_loop_with(
    listener: TcpListener,
    config: Arc<Config>,
    sys: Arc<Mutex<Fake>>,
    read_size: usize,
    write_size: usize,
) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (config, sys) = (config.clone(), sys.clone());
        std::thread::spawn(move || {
            if let Err(e) = serve_with(stream, &config, &sys, read_size, write_size) {
                eprintln!("connection: {e}");
            }
        });
    }
}

#[allow(dead_code)] // The test includes this file for `serve` alone.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, authorized, rest @ ..] = args.as_slice() else {
        eprintln!("usage: serve PORT AUTHORIZED_KEYS [HOST_KEY]");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("PORT must be a number");
    let text = std::fs::read_to_string(authorized).expect("read AUTHORIZED_KEYS");
    let (authorized, skipped) = AuthorizedKeys::parse(&text);
    for s in skipped {
        eprintln!("authorized_keys line {}: skipped: {}", s.line, s.reason);
    }
    let host_key = match rest.first() {
        Some(path) => HostKey::from_openssh(&std::fs::read_to_string(path).expect("read HOST_KEY"))
            .unwrap_or_else(|e| panic!("{path}: {e}")),
        None => HostKey::generate(&mut OsRng, "keel-host"),
    };
    println!("host key {}", host_key.fingerprint());
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    println!("listening on 127.0.0.1:{port}");
    accept_loop(
        listener,
        Arc::new(Config {
            host_key,
            authorized,
        }),
        Arc::new(Mutex::new(Fake::new())),
    );
}
