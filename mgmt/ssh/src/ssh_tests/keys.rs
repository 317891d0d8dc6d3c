//! Host key files and authorized_keys parsing.

use super::TestRng;
use crate::keys::{AuthorizedKeys, HostKey, KeyError, Skipped};

/// A key ssh-keygen wrote (`ssh-keygen -t ed25519 -N '' -C keel-test`).
const OPENSSH_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBhfC728bjNYnJW/D7YmIgJGHUjPJoaxLFdbP0PzsHkeAAAAJBKWRaySlkW
sgAAAAtzc2gtZWQyNTUxOQAAACBhfC728bjNYnJW/D7YmIgJGHUjPJoaxLFdbP0PzsHkeA
AAAEAVrtylXVR88r3UNMw1GVnQCETQWJQpcxj8r1IsL4EU1WF8LvbxuM1iclb8PtiYiAkY
dSM8mhrEsV1s/Q/OweR4AAAACWtlZWwtdGVzdAECAwQ=
-----END OPENSSH PRIVATE KEY-----
";
const OPENSSH_PUB: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGF8LvbxuM1iclb8PtiYiAkYdSM8mhrEsV1s/Q/OweR4 keel-test";
const OPENSSH_FP: &str = "SHA256:A/CEt0sNuVu+i/u9XL9svSicOY+RkAQZGafYOQs6nLw";

#[test]
fn reads_a_key_written_by_ssh_keygen() {
    let key = HostKey::from_openssh(OPENSSH_KEY).unwrap();
    assert_eq!(key.public_line(), OPENSSH_PUB);
    assert_eq!(key.fingerprint(), OPENSSH_FP);
}

#[test]
fn generated_keys_round_trip() {
    let key = HostKey::generate(&mut TestRng(7), "keel-host");
    let text = key.to_openssh(&mut TestRng(8));
    assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    assert!(text.lines().all(|l| l.len() <= 70));
    let back = HostKey::from_openssh(&text).unwrap();
    assert_eq!(back.public_bytes(), key.public_bytes());
    assert_eq!(back.public_line(), key.public_line());
    assert!(key.public_line().ends_with(" keel-host"));
    // Different randomness, different key.
    let other = HostKey::generate(&mut TestRng(9), "");
    assert_ne!(other.public_bytes(), key.public_bytes());
    assert!(
        !alloc::format!("{key:?}").contains(&text[40..60]),
        "Debug must not leak the secret"
    );
}

#[test]
fn our_key_file_is_what_ssh_keygen_writes() {
    // Same key, same check integers, same comment: byte for byte the file
    // ssh-keygen wrote. The check integers are the bytes after the magic
    // and header; feed them back through the "RNG".
    let key = HostKey::from_openssh(OPENSSH_KEY).unwrap();
    struct Fixed([u8; 4]);
    impl crate::keys::Rng for Fixed {
        fn fill(&mut self, dest: &mut [u8]) {
            dest.copy_from_slice(&self.0);
        }
    }
    assert_eq!(
        key.to_openssh(&mut Fixed([0x4a, 0x59, 0x16, 0xb2])),
        OPENSSH_KEY
    );
}

#[test]
fn refuses_bad_key_files_without_panicking() {
    assert!(matches!(
        HostKey::from_openssh("hello"),
        Err(KeyError::Malformed(_))
    ));
    let enc = OPENSSH_KEY.replace("AAAABG5vbmUAAAAEbm9uZQ", "AAAABmFlczI1NgAAAAZiY3J5cHQ");
    assert!(HostKey::from_openssh(&enc).is_err());
    // Every truncation of the body is an error, not a panic.
    let body: alloc::string::String = OPENSSH_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert_eq!(body.len(), 324);
    for cut in 0..body.len() {
        let text = alloc::format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            &body[..cut]
        );
        assert!(HostKey::from_openssh(&text).is_err(), "cut at {cut}");
    }
    // Flipped bytes anywhere: an error or (if harmless, e.g. in the
    // comment) the same public key, never a panic.
    let good = HostKey::from_openssh(OPENSSH_KEY).unwrap();
    for i in 40..OPENSSH_KEY.len() - 40 {
        let mut bytes = OPENSSH_KEY.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        if let Ok(text) = core::str::from_utf8(&bytes)
            && let Ok(k) = HostKey::from_openssh(text)
        {
            // Only the comment and padding may change without an error.
            assert_eq!(k.public_bytes(), good.public_bytes(), "flip at {i}");
        }
    }
}

#[test]
fn authorized_keys_take_ed25519_and_skip_the_rest_with_reasons() {
    let text = alloc::format!(
        "# admins\n\n{OPENSSH_PUB}\nssh-rsa AAAAB3NzaC1yc2E alice\nfrom=\"10.0.0.1\" {OPENSSH_PUB}\nssh-ed25519 !!notbase64 bob\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGF8LvbxuM1iclb8PtiYiAkYdSM8\n   {}   \n",
        HostKey::generate(&mut TestRng(3), "").public_line()
    );
    let (keys, skipped) = AuthorizedKeys::parse(&text);
    assert_eq!(keys.len(), 2);
    let key = HostKey::from_openssh(OPENSSH_KEY).unwrap();
    assert!(keys.allows(&key.public_bytes()));
    assert_eq!(keys.comment(&key.public_bytes()), Some("keel-test"));
    assert!(keys.allows(&HostKey::generate(&mut TestRng(3), "").public_bytes()));
    assert!(!keys.allows(&[0; 32]));
    assert_eq!(
        skipped,
        [
            Skipped {
                line: 4,
                reason: "only ssh-ed25519 keys are supported"
            },
            Skipped {
                line: 5,
                reason: "key options are not supported"
            },
            Skipped {
                line: 6,
                reason: "malformed ssh-ed25519 key"
            },
            Skipped {
                line: 7,
                reason: "malformed ssh-ed25519 key"
            },
        ]
    );
    let (none, _) = AuthorizedKeys::parse("");
    assert!(none.is_empty());
}
