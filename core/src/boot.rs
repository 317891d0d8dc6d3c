//! The boot flow after the platform has memory and a console: clocks,
//! scheduler, other CPUs, devices, then the main thread (tests or the app).

use alloc::string::String;

use keel_hal::{BootInfo, ExitStatus, machine};

use crate::cmdline::BootOptions;
use crate::memory::{PAGE_SIZE, frame};
use crate::{kprintln, ktest, sched, smp, time};

/// Platform hooks called during boot.
pub struct PlatformHooks {
    /// Find and start device drivers (runs with the scheduler up).
    pub probe_devices: fn(),
    /// A short description of the machine for the banner ("microvm").
    pub machine: fn() -> String,
}

/// Continue booting on the boot CPU; never returns. `boot` must already
/// have been used for `memory::init`; `options` is `cmdline::parse` of its
/// command line (the platform parses it once, early, for its own options).
pub fn run(boot: &'static BootInfo, options: BootOptions, hooks: PlatformHooks) -> ! {
    crate::cmdline::set_net_options(options.net.clone());
    sched::init_cpu(0, boot.boot_stack.0, boot.boot_stack.1);
    smp::start_secondaries(boot);
    (hooks.probe_devices)();
    sched::spawn("main", move || main(options, hooks.machine));
    sched::idle_loop()
}

static OPTIONS: spin::Once<BootOptions> = spin::Once::new();
static SHUTDOWN_HOOKS: crate::sync::SpinLock<alloc::vec::Vec<fn()>> =
    crate::sync::SpinLock::new(alloc::vec::Vec::new());

/// The boot options (defaults until boot parsed them).
pub fn options() -> &'static BootOptions {
    OPTIONS.call_once(BootOptions::default)
}

/// Run `hook` on the way to power-off (e.g. commit filesystems), in
/// registration order, before the exit marker is printed.
pub fn on_shutdown(hook: fn()) {
    SHUTDOWN_HOOKS.lock().push(hook);
}

fn main(options: BootOptions, machine: fn() -> String) {
    let options = OPTIONS.call_once(|| options);
    let ready_us = machine::since_first_instruction_ns() / 1000;
    let machine_name = machine();
    let (_, total_frames) = frame::stats();
    let mib = total_frames * PAGE_SIZE / (1024 * 1024);
    let (y, mo, d, h, mi, s) = time::civil_from_unix(time::realtime_ns() / 1_000_000_000);
    kprintln!(
        "Keel {} on {} ({}, {}): {} CPUs, {} MiB RAM, {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC",
        env!("CARGO_PKG_VERSION"),
        machine::arch_name(),
        machine::platform_name(),
        machine_name,
        sched::online_count(),
        mib,
    );
    kprintln!("keel: ready in {ready_us} us");
    for problem in &options.problems {
        kprintln!("keel: {problem}");
    }
    if let Some(filter) = &options.test {
        let summary = ktest::run(filter, options.test_after.as_deref());
        shutdown(u8::from(summary.failed > 0));
    }
    if !options.app_args.is_empty() {
        let Some(hooks) = crate::app::hooks() else {
            // 127, as a shell reports a command it cannot run.
            kprintln!(
                "keel: cannot run {}: this image has no OS personality installed",
                options.app_args[0]
            );
            shutdown(127);
        };
        shutdown((hooks.run)(&options.app_args));
    }
    shutdown(0)
}

/// Print the exit marker the host harness looks for, then power off.
pub fn shutdown(status: u8) -> ! {
    let hooks = core::mem::take(&mut *SHUTDOWN_HOOKS.lock());
    for hook in hooks {
        hook();
    }
    kprintln!("keel: exit status {status}");
    machine::power_off(ExitStatus::Code(status))
}
