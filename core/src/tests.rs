//! In-kernel tests of core (run in QEMU by `cargo keel test`).

pub mod harness_probe;
mod memory;
mod sched;
mod sync;
mod time;
