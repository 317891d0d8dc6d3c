//! The SSH session fed by hand: it speaks first, and garbage from the
//! network ends the session instead of panicking. Real logins are tested
//! with OpenSSH in tests/openssh.rs.

use alloc::vec;
use alloc::vec::Vec;

use keel_mgmt::testing::Fake;

use super::TestRng;
use crate::keys::{AuthorizedKeys, HostKey};
use crate::session::{Config, Session};

fn config() -> Config {
    Config {
        host_key: HostKey::generate(&mut TestRng(1), "test"),
        authorized: AuthorizedKeys::default(),
    }
}

fn drain(s: &mut Session, fake: &mut Fake) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 300];
    loop {
        let n = s.send(fake, &mut buf);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Push all of `input`, draining output as a transport would; stops when
/// the session finishes or takes nothing more.
fn push(s: &mut Session, fake: &mut Fake, input: &[u8]) {
    let mut pos = 0;
    while pos < input.len() && !s.is_finished() {
        let n = s.recv(fake, &input[pos..]);
        pos += n;
        let out = drain(s, fake);
        if n == 0 && out.is_empty() {
            break;
        }
    }
}

#[test]
fn server_sends_its_version_and_key_exchange_first() {
    let mut fake = Fake::new();
    let mut s = Session::new(&config());
    let out = drain(&mut s, &mut fake);
    assert!(
        out.starts_with(b"SSH-2.0-"),
        "{:?}",
        &out[..out.len().min(20)]
    );
    assert!(out.windows(25).any(|w| w == b"curve25519-sha256@libssh."));
    assert!(out.windows(11).any(|w| w == b"ssh-ed25519"));
    assert!(!s.is_finished());
}

#[test]
fn a_bad_version_line_or_garbage_packet_ends_the_session() {
    let mut fake = Fake::new();
    let mut s = Session::new(&config());
    drain(&mut s, &mut fake);
    push(
        &mut s,
        &mut fake,
        b"SSH-2.0-x\r\n\x00\x00\xff\xff\x08garbage-garbage-garbage-garbage",
    );
    assert!(s.is_finished());
    assert!(s.error().is_some());
    // Once finished, input is swallowed and nothing is sent.
    assert_eq!(s.recv(&mut fake, b"more"), 4);
    assert!(drain(&mut s, &mut fake).is_empty());
}

#[test]
fn random_input_never_panics_and_stays_bounded() {
    let mut rng = TestRng(0xdead_beef);
    for round in 0..300 {
        let mut fake = Fake::new();
        let mut s = Session::new(&config());
        drain(&mut s, &mut fake);
        let mut data = vec![0u8; 64 + round * 7];
        crate::keys::Rng::fill(&mut rng, &mut data);
        // Half the rounds get past the version exchange so the packet
        // layer sees the garbage, not just the banner parser.
        let mut input = Vec::new();
        if round % 2 == 0 {
            input.extend_from_slice(b"SSH-2.0-OpenSSH_9.2\r\n");
        }
        input.extend_from_slice(&data);
        push(&mut s, &mut fake, &input);
        s.peer_closed(&mut fake);
        drain(&mut s, &mut fake);
        assert!(
            s.is_finished(),
            "round {round}: not finished after the peer left"
        );
        assert!(s.user().is_none());
    }
}

#[test]
fn peer_closing_finishes_the_session() {
    let mut fake = Fake::new();
    let mut s = Session::new(&config());
    drain(&mut s, &mut fake);
    s.peer_closed(&mut fake);
    drain(&mut s, &mut fake);
    assert!(s.is_finished());
    let mut s = Session::new(&config());
    s.abort();
    assert!(s.is_finished());
    assert!(!s.has_output());
}
