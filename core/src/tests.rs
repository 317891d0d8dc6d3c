//! In-kernel tests of core (run in QEMU by `cargo keel test`).

mod memory;
mod sched;
mod sync;
mod time;
