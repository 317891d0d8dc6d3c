//! ppc64 (little-endian POWER9/10, PAPR) support for Keel. Empty until the
//! POWER port lands: it will implement the whole `keel_hal::Arch` contract.

#![no_std]
