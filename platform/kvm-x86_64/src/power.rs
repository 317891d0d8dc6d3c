//! Power-off. Status 0 powers off through ACPI (QEMU exits 0). Any other
//! status, or a panic, goes through QEMU's isa-debug-exit port (0xf4) so
//! the host sees a failure: QEMU exits with `(value << 1) | 1`. Without that
//! device the write is ignored and ACPI power-off follows; the console
//! marker always carries the real status.

use acpi::address::{AddressSpace, GenericAddress};
use acpi::fadt::Fadt;
use keel_arch_x86_64::io::{outb, outl, outw};
use keel_arch_x86_64::layout::PHYS_MAP_BASE;
use keel_driver_acpi_power::{find_s5, pm1_control_value, sleep_control_value};
use keel_hal::ExitStatus;

const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Debug-exit value for a kernel panic: QEMU exits with 0xff... | 1.
pub const PANIC_EXIT_VALUE: u32 = 0x7f;

/// Where and what to write for ACPI soft-off.
#[derive(Clone, Copy, Debug)]
pub enum PowerOff {
    /// PM1a (and maybe PM1b) control blocks.
    Pm1 {
        a: GenericAddress,
        b: Option<GenericAddress>,
        value_a: u16,
        value_b: u16,
    },
    /// Hardware-reduced ACPI sleep control register.
    SleepControl { reg: GenericAddress, value: u8 },
}

static POWER: spin::Once<Option<PowerOff>> = spin::Once::new();

/// Work out the soft-off method from the FADT and the DSDT's `\_S5`.
pub fn from_fadt(fadt: &Fadt, dsdt: &[u8]) -> Option<PowerOff> {
    let s5 = find_s5(dsdt)?;
    if { fadt.flags }.system_is_hw_reduced_acpi() {
        let reg = fadt.sleep_control_register().ok().flatten()?;
        return Some(PowerOff::SleepControl {
            reg,
            value: sleep_control_value(s5.a),
        });
    }
    let a = fadt.pm1a_control_block().ok()?;
    let b = fadt.pm1b_control_block().ok().flatten();
    Some(PowerOff::Pm1 {
        a,
        b,
        value_a: pm1_control_value(s5.a),
        value_b: pm1_control_value(s5.b),
    })
}

/// Remember the method ACPI gave (or none).
pub fn configure(method: Option<PowerOff>) {
    POWER.call_once(|| method);
}

fn write_gas(reg: &GenericAddress, value: u32) {
    match reg.address_space {
        AddressSpace::SystemIo => match reg.bit_width {
            8 => outb(reg.address as u16, value as u8),
            32 => outl(reg.address as u16, value),
            _ => outw(reg.address as u16, value as u16),
        },
        AddressSpace::SystemMemory => {
            let p = PHYS_MAP_BASE + reg.address as usize;
            // SAFETY: the FADT names this register; it lies below 4 GiB in
            // the direct map, and writing it only requests power-off.
            unsafe {
                match reg.bit_width {
                    8 => (p as *mut u8).write_volatile(value as u8),
                    32 => (p as *mut u32).write_volatile(value),
                    _ => (p as *mut u16).write_volatile(value as u16),
                }
            }
        }
        _ => {}
    }
}

fn acpi_soft_off() {
    match POWER.get().copied().flatten() {
        Some(PowerOff::SleepControl { reg, value }) => write_gas(&reg, u32::from(value)),
        Some(PowerOff::Pm1 {
            a,
            b,
            value_a,
            value_b,
        }) => {
            write_gas(&a, u32::from(value_a));
            if let Some(b) = b {
                write_gas(&b, u32::from(value_b));
            }
        }
        None => {}
    }
}

/// Stop the machine, reporting `status` to the host.
pub fn power_off(status: ExitStatus) -> ! {
    match status {
        ExitStatus::Code(0) => {}
        ExitStatus::Code(n) => outl(DEBUG_EXIT_PORT, u32::from(n)),
        ExitStatus::Panic => outl(DEBUG_EXIT_PORT, PANIC_EXIT_VALUE),
    }
    acpi_soft_off();
    // The hypervisor acts on the request asynchronously: give it a second.
    let deadline = keel_hal::machine::monotonic_ns() + 1_000_000_000;
    while keel_hal::machine::monotonic_ns() < deadline {
        core::hint::spin_loop();
    }
    // Neither worked (no debug-exit device, no ACPI): the debug port with 0
    // still ends a QEMU run (status 1); on other hypervisors, halt.
    outl(DEBUG_EXIT_PORT, 0);
    keel_hal::machine::halt_forever()
}
