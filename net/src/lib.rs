//! Keel's network stack glue: smoltcp interfaces, sockets, loopback, DHCP.
//! Empty until the networking issue fills it; it exists so the workspace
//! shows where it goes, and it already forbids `unsafe`.

#![no_std]
#![forbid(unsafe_code)]
