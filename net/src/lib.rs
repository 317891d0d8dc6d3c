//! Keel's network stack glue: smoltcp interfaces, sockets, loopback, DHCP.
//! So far it holds the contract between NIC drivers and the stack.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod device;
