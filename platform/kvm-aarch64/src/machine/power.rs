//! Power-off. Status 0 asks PSCI for SYSTEM_OFF (QEMU exits 0). Any other
//! status, and panics, go through semihosting's SYS_EXIT first, so QEMU
//! run with `-semihosting` exits with that status (255 for a panic);
//! without semihosting the call is stepped over and PSCI powers off. The
//! console marker always carries the real status.

use keel_arch_aarch64 as arch;
use keel_hal::ExitStatus;

/// Exit status reported for a kernel panic.
pub const PANIC_STATUS: u8 = 255;

/// Stop the machine, reporting `status` to the host.
pub fn power_off(status: ExitStatus) -> ! {
    match status {
        ExitStatus::Code(0) => {}
        ExitStatus::Code(n) => arch::semihosting::exit(n),
        ExitStatus::Panic => arch::semihosting::exit(PANIC_STATUS),
    }
    arch::psci::system_off();
    // The hypervisor acts on the request asynchronously: give it a second.
    arch::spin_us(1_000_000);
    keel_hal::machine::halt_forever()
}
