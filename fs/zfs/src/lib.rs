//! keel-zfs: read and write OpenZFS-compatible pools, in the kernel and on the host.
//!
//! One code base serves the Keel kernel (driving virtio-blk through
//! [`BlockDevice`]) and the host image builder (`cargo keel image`). The
//! format is OpenZFS's: pool version 5000 with no features (written), and
//! the older versions other implementations produce (read), down to
//! zfs-fuse's pool version 23 with the legacy ZPL 4 znode.
//!
//! Layers, bottom up:
//! - [`device`]: the block device a pool lives on;
//! - on-disk formats: [`blkptr`], [`label`], [`dnode`], [`objset`], [`zap`],
//!   [`sa`], [`dsl`], [`spacemap`], [`nvlist`], with [`checksum`] and
//!   [`compress`];
//! - [`read`]: import a pool, walk datasets, look up paths, read files;
//! - [`write`]: create a pool and change it in copy-on-write transaction
//!   groups.
//!
//! Every block read is checksum-verified; a mismatch is an [`Error`] for
//! that read, never a panic and never wrong data.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod blkptr;
pub mod bytes;
pub mod checksum;
pub mod compress;
pub mod device;
pub mod dnode;
pub mod dsl;
pub mod error;
pub mod label;
pub mod nvlist;
pub mod objset;
pub mod read;
pub mod sa;
pub mod spacemap;
pub mod write;
pub mod zap;

pub use device::{BlockDevice, DeviceError, MemoryDevice};
pub use error::{Error, Result};
