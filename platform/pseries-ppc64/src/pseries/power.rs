//! Power and time from RTAS: power-off for status 0 (QEMU exits 0),
//! `ibm,os-term` for anything else and for panics (with QEMU's
//! `-action panic=exit-failure`, QEMU exits 1), the real-time clock.

use keel_driver_papr::rtas::{self, Service};
use keel_driver_papr::rtas_call;
use keel_hal::ExitStatus;

/// Messages for `ibm,os-term` (firmware reads them by physical address).
static FAILED: &[u8] = b"Keel: the kernel exited with a failure status\0";
static PANICKED: &[u8] = b"Keel: kernel panic\0";

/// Stop the machine, reporting `status` to the host.
pub fn power_off(status: ExitStatus) -> ! {
    let mut rets = [0u32; 1];
    let message = match status {
        ExitStatus::Code(0) => None,
        ExitStatus::Code(_) => Some(FAILED),
        ExitStatus::Panic => Some(PANICKED),
    };
    if let Some(m) = message {
        let phys = keel_arch_ppc64::kernel_phys(m.as_ptr() as usize) as u32;
        let _ = rtas_call(Service::OsTerm, &[phys], &mut rets);
    }
    let _ = rtas_call(Service::PowerOff, &[0, 0], &mut rets);
    // The hypervisor acts on the request asynchronously: give it a second.
    let deadline = keel_hal::machine::monotonic_ns() + 1_000_000_000;
    while keel_hal::machine::monotonic_ns() < deadline {
        core::hint::spin_loop();
    }
    keel_hal::machine::halt_forever()
}

/// Wall-clock seconds and nanoseconds from RTAS `get-time-of-day`.
pub fn wall_clock() -> Option<(u64, u32)> {
    let mut r = [0u32; 8];
    rtas_call(Service::GetTimeOfDay, &[], &mut r).ok()?;
    let secs = rtas::unix_time(r[1], r[2], r[3], r[4], r[5], r[6])?;
    Some((secs, r[7].min(999_999_999)))
}
