//! Keel's management REST API: an incremental HTTP/1.1 server, the router,
//! bearer-token authentication and the endpoints (/os, /env, /file, /fs,
//! /app, /network, /hardware, /metrics), all over the [`System`] trait the
//! kernel implements.
//!
//! Nothing here knows about sockets or kernel internals, so the whole API
//! is tested on the host against a fake system; the kernel feeds each TCP
//! connection's bytes to a [`Connection`] and implements [`System`] by
//! calling keel-core, keel-fs, keel-net and keel-linux. See
//! docs/management.md.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod api;
pub mod auth;
pub mod format;
pub mod http;
pub mod router;
pub mod system;

// The fake system is public behind `testing` so other front ends
// (keel-ssh) and the host examples test against the same double.
#[cfg(any(test, feature = "testing"))]
pub mod testing;

// One test tree named after the crate: `cargo keel test --filter mgmt`
// matches test paths, which leave out the crate name.
#[cfg(test)]
mod mgmt_tests;

pub use api::{Api, Config};
pub use auth::Token;
pub use http::{Connection, Limits};
pub use system::System;

/// TCP port the API listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 8000;
