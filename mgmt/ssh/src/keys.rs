//! Keys: the server's ed25519 host key (generated from a caller's RNG, kept
//! as an unencrypted OpenSSH private key file so `ssh-keygen` can read it)
//! and the clients allowed in (OpenSSH `authorized_keys` text).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};
use sunset::ed25519_dalek::SigningKey;

/// Randomness for key generation. The kernel passes its CSPRNG; host tests
/// pass a seeded or OS one.
pub trait Rng {
    /// Fill `dest` with cryptographically secure random bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Not an OpenSSH private key (armour, base64 or structure wrong).
    Malformed(&'static str),
    /// A passphrase-protected key: the kernel has nobody to ask.
    Encrypted,
    /// A key type other than ssh-ed25519.
    UnsupportedType(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Malformed(why) => write!(f, "malformed OpenSSH private key: {why}"),
            KeyError::Encrypted => f.write_str("the key is encrypted; use an unencrypted host key"),
            KeyError::UnsupportedType(t) => write!(f, "unsupported key type {t}; use ssh-ed25519"),
        }
    }
}

const ED25519: &str = "ssh-ed25519";
const MAGIC: &[u8] = b"openssh-key-v1\0";
const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";

/// The server's identity: an ed25519 key pair.
#[derive(Clone)]
pub struct HostKey {
    key: SigningKey,
    comment: String,
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret half.
        write!(f, "HostKey({})", self.fingerprint())
    }
}

impl HostKey {
    /// A new key from 32 random bytes (done once, on first boot).
    pub fn generate(rng: &mut dyn Rng, comment: &str) -> Self {
        let mut seed = [0u8; 32];
        rng.fill(&mut seed);
        let key = SigningKey::from_bytes(&seed);
        seed.fill(0);
        HostKey {
            key,
            comment: comment.to_string(),
        }
    }

    /// The key from its 32-byte ed25519 seed.
    pub fn from_seed(seed: &[u8; 32], comment: &str) -> Self {
        HostKey {
            key: SigningKey::from_bytes(seed),
            comment: comment.to_string(),
        }
    }

    /// The raw public key.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The public key as an OpenSSH line (`ssh-ed25519 AAAA… comment`), for
    /// a client's known_hosts.
    pub fn public_line(&self) -> String {
        let mut line = String::from(ED25519);
        line.push(' ');
        line.push_str(&STANDARD.encode(public_blob(&self.public_bytes())));
        if !self.comment.is_empty() {
            line.push(' ');
            line.push_str(&self.comment);
        }
        line
    }

    /// `SHA256:…`, as `ssh` prints it when it first meets the host.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_bytes())
    }

    pub(crate) fn sign_key(&self) -> sunset::SignKey {
        sunset::SignKey::Ed25519(self.key.clone())
    }

    /// The key as an unencrypted OpenSSH private key file (what
    /// `ssh-keygen -t ed25519 -N ''` writes), to persist it. `rng` fills
    /// the format's check integers.
    pub fn to_openssh(&self, rng: &mut dyn Rng) -> String {
        let public = self.public_bytes();
        let mut check = [0u8; 4];
        rng.fill(&mut check);

        let mut private = Vec::new();
        private.extend_from_slice(&check);
        private.extend_from_slice(&check);
        put_string(&mut private, ED25519.as_bytes());
        put_string(&mut private, &public);
        let mut secret = [0u8; 64];
        secret[..32].copy_from_slice(&self.key.to_bytes());
        secret[32..].copy_from_slice(&public);
        put_string(&mut private, &secret);
        secret.fill(0);
        put_string(&mut private, self.comment.as_bytes());
        // Pad to the cipher block size ("none": 8) with 1, 2, 3, …
        let mut pad = 1u8;
        while private.len() % 8 != 0 {
            private.push(pad);
            pad += 1;
        }

        let mut blob = Vec::from(MAGIC);
        put_string(&mut blob, b"none");
        put_string(&mut blob, b"none");
        put_string(&mut blob, b"");
        blob.extend_from_slice(&1u32.to_be_bytes());
        put_string(&mut blob, &public_blob(&public));
        put_string(&mut blob, &private);
        private.fill(0);

        let text = STANDARD.encode(&blob);
        blob.fill(0);
        let mut out = String::from(BEGIN);
        out.push('\n');
        for chunk in text.as_bytes().chunks(70) {
            out.push_str(core::str::from_utf8(chunk).unwrap_or(""));
            out.push('\n');
        }
        out.push_str(END);
        out.push('\n');
        out
    }

    /// Read an unencrypted OpenSSH ed25519 private key file (ours or one
    /// from `ssh-keygen`).
    pub fn from_openssh(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let body = text
            .strip_prefix(BEGIN)
            .and_then(|t| t.strip_suffix(END))
            .ok_or(KeyError::Malformed("missing BEGIN/END lines"))?;
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let blob = STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| KeyError::Malformed("bad base64"))?;
        let mut r = Reader(&blob);
        if r.take(MAGIC.len())? != MAGIC {
            return Err(KeyError::Malformed("not openssh-key-v1"));
        }
        let cipher = r.string()?;
        let kdf = r.string()?;
        let _kdf_options = r.string()?;
        if cipher != b"none" || kdf != b"none" {
            return Err(KeyError::Encrypted);
        }
        if r.u32()? != 1 {
            return Err(KeyError::Malformed("expected exactly one key"));
        }
        let _public = r.string()?;
        let mut p = Reader(r.string()?);
        if p.u32()? != p.u32()? {
            return Err(KeyError::Malformed(
                "check integers differ (wrong passphrase?)",
            ));
        }
        let kind = p.string()?;
        if kind != ED25519.as_bytes() {
            return Err(KeyError::UnsupportedType(
                String::from_utf8_lossy(kind).into_owned(),
            ));
        }
        let public = p.string()?;
        let secret = p.string()?;
        if public.len() != 32 || secret.len() != 64 {
            return Err(KeyError::Malformed("bad ed25519 key lengths"));
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&secret[..32]);
        let comment = String::from_utf8_lossy(p.string()?).into_owned();
        let key = HostKey::from_seed(&seed, &comment);
        seed.fill(0);
        if key.public_bytes() != public || secret[32..] != *public {
            return Err(KeyError::Malformed("public key does not match the secret"));
        }
        Ok(key)
    }
}

/// Clients allowed to log in: their ed25519 public keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizedKeys {
    keys: Vec<([u8; 32], String)>,
}

/// A line of `authorized_keys` that was not taken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line number.
    pub line: usize,
    /// Why it was skipped.
    pub reason: &'static str,
}

impl AuthorizedKeys {
    /// Parse OpenSSH `authorized_keys` text. Blank lines and `#` comments
    /// are ignored. Lines with options (`from=…`, `command=…`) are skipped,
    /// not obeyed partly: the server cannot enforce them, and a key meant
    /// to be restricted must not get in unrestricted. Key types other than
    /// ssh-ed25519 are skipped too. Skipped lines are reported so the
    /// kernel can log them.
    pub fn parse(text: &str) -> (Self, Vec<Skipped>) {
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let kind = words.next().unwrap_or("");
            let reason = if kind == ED25519 {
                match words.next().map(parse_public_blob) {
                    Some(Some(key)) => {
                        let comment = words.collect::<Vec<_>>().join(" ");
                        keys.push((key, comment));
                        continue;
                    }
                    _ => "malformed ssh-ed25519 key",
                }
            } else if kind.starts_with("ssh-")
                || kind.starts_with("ecdsa-")
                || kind.starts_with("sk-")
            {
                "only ssh-ed25519 keys are supported"
            } else {
                "key options are not supported"
            };
            skipped.push(Skipped {
                line: n + 1,
                reason,
            });
        }
        (AuthorizedKeys { keys }, skipped)
    }

    /// Whether `key` (raw ed25519 public key) may log in.
    pub fn allows(&self, key: &[u8; 32]) -> bool {
        self.keys.iter().any(|(k, _)| k == key)
    }

    /// How many keys are allowed.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No key is allowed (nobody can log in).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The comment of the key, for logging who logged in.
    pub fn comment(&self, key: &[u8; 32]) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, c)| c.as_str())
    }
}

/// `SHA256:…` fingerprint of a raw ed25519 public key.
pub fn fingerprint(public: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_blob(public));
    let mut s = String::from("SHA256:");
    s.push_str(&STANDARD_NO_PAD.encode(digest));
    s
}

/// The SSH wire form of an ed25519 public key.
fn public_blob(public: &[u8; 32]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(51);
    put_string(&mut blob, ED25519.as_bytes());
    put_string(&mut blob, public);
    blob
}

fn parse_public_blob(b64: &str) -> Option<[u8; 32]> {
    let blob = STANDARD.decode(b64).ok()?;
    let mut r = Reader(&blob);
    if r.string().ok()? != ED25519.as_bytes() {
        return None;
    }
    let key: [u8; 32] = r.string().ok()?.try_into().ok()?;
    r.0.is_empty().then_some(key)
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// Bounds-checked reads of SSH wire fields: a truncated or lying length is
/// an error, never a panic.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], KeyError> {
        if self.0.len() < n {
            return Err(KeyError::Malformed("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, KeyError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<&'a [u8], KeyError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}
