//! Keel's filesystems: the VFS and its filesystems (ramfs, devfs, procfs,
//! ZFS). Empty until the Linux ABI and ZFS issues fill it; it exists so the
//! workspace shows where they go, and it already forbids `unsafe`.

#![no_std]
#![forbid(unsafe_code)]
