//! Keel's in-kernel SSH server: a session driven by bytes in and bytes out
//! (no sockets here), public-key authentication against OpenSSH
//! `authorized_keys` text, an ed25519 host key the kernel generates once and
//! persists, and a small management shell over keel-mgmt's [`System`]
//! trait for `ssh host free` and interactive sessions.
//!
//! The shell ([`shell`], [`editor`], [`console`]) knows nothing of SSH, so
//! the serial console can use it too. The protocol itself is the `sunset`
//! crate's. See docs/management.md for the transport's and the kernel's
//! side.
//!
//! [`System`]: keel_mgmt::System

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod console;
pub mod editor;
pub mod keys;
pub mod session;
pub mod shell;

#[cfg(test)]
mod ssh_tests;

pub use console::Console;
pub use keys::{AuthorizedKeys, HostKey, KeyError, Rng};
pub use session::{Config, Session};
pub use shell::Shell;

/// TCP port the SSH server listens on unless configured otherwise (the
/// port `cargo keel run` forwards; 22 needs nothing special in a VM, but
/// stays free for an app that wants it).
pub const DEFAULT_PORT: u16 = 2222;
