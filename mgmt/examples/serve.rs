//! The management API on the host, over std TCP and the test suite's fake
//! system: try it with curl, or point an OpenAPI fuzzer (schemathesis) at
//! it before any kernel serves it.
//!
//! `cargo run -p keel-mgmt --example serve -- [PORT] [TOKEN]`
//! (defaults 8000 and `host-test-token-0123`).

extern crate alloc;

// The fake is written against `crate::system`; give it that path here.
mod system {
    pub use keel_mgmt::system::*;
}

#[allow(dead_code)] // Test-only knobs (chaos, recorded calls) go unused.
#[path = "../src/testing.rs"]
mod fake;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use keel_mgmt::{Api, Config, Connection, Limits, Token};

type Shared = Arc<Mutex<Api<fake::Fake>>>;

fn serve(mut stream: TcpStream, api: Shared) -> std::io::Result<()> {
    let mut conn: Connection<Api<fake::Fake>> = Connection::new(Limits::default());
    let mut inbuf = vec![0u8; 64 * 1024];
    let mut outbuf = vec![0u8; 64 * 1024];
    loop {
        // Write out everything there is before reading more: the
        // connection holds pipelined requests back until then.
        loop {
            let n = conn.send(&mut *api.lock().unwrap(), &mut outbuf);
            if n == 0 {
                break;
            }
            stream.write_all(&outbuf[..n])?;
        }
        if conn.is_finished() {
            return Ok(());
        }
        let got = match stream.read(&mut inbuf) {
            Ok(0) => {
                conn.peer_closed(&mut *api.lock().unwrap());
                if !conn.has_output() {
                    return Ok(());
                }
                continue;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                conn.abort(&mut *api.lock().unwrap());
                return Err(e);
            }
        };
        let mut pos = 0;
        while pos < got {
            let taken = conn.recv(&mut *api.lock().unwrap(), &inbuf[pos..got]);
            pos += taken;
            let n = conn.send(&mut *api.lock().unwrap(), &mut outbuf);
            stream.write_all(&outbuf[..n])?;
            if taken == 0 && n == 0 {
                break;
            }
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().map_or(keel_mgmt::DEFAULT_PORT, |p| {
        p.parse().expect("PORT must be a number")
    });
    let token = args.next().unwrap_or_else(|| "host-test-token-0123".into());
    let token = Token::new(&token).expect("a token of 16 or more visible ASCII characters");
    let api: Shared = Arc::new(Mutex::new(Api::new(fake::Fake::new(), Config::new(token))));
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    eprintln!("keel-mgmt on http://127.0.0.1:{port} (fake system)");
    for stream in listener.incoming().flatten() {
        let api = api.clone();
        std::thread::spawn(move || {
            let _ = serve(stream, api);
        });
    }
}
