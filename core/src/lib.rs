//! Keel's arch-neutral kernel: memory, scheduler, sync, time, boot flow and
//! the in-kernel test registry.
//!
//! Nothing here names an architecture: every machine operation goes through
//! `keel_hal::machine`. The crate builds for every kernel target and
//! unit-tests on the host (`cargo test -p keel-core`), where
//! `keel-platform-host` stands in for the machine.
//!
//! `unsafe` is confined to the modules that must touch raw memory or switch
//! stacks: `memory::{frame, heap, page_table, vmap}`, `sched::switch`, and
//! `sync::spin` (interior mutability under a lock). Each use is justified
//! where it happens.

#![cfg_attr(not(test), no_std)]

extern crate alloc;
// Lets `#[ktest]` expand to `::keel_core::…` inside this crate too.
extern crate self as keel_core;

#[cfg(test)]
extern crate keel_platform_host;

pub mod app;
pub mod boot;
pub mod cmdline;
pub mod console;
pub mod irq;
pub mod ktest;
pub mod memory;
pub mod panic;
pub mod random;
pub mod sched;
pub mod smp;
pub mod sync;
mod tests;
pub mod time;
mod upcalls;

pub use keel_macros::ktest;
