//! aarch64 (ARMv8-A) support for Keel. Empty until the aarch64 port lands:
//! it will implement the whole `keel_hal::Arch` contract.

#![no_std]
