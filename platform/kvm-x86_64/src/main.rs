//! Keel's kernel image for x86_64 under KVM/QEMU: PVH boot (QEMU microvm
//! with qboot, q35 and pc; Firecracker and Xen PVH use the same entry),
//! 16550 console, ACPI for CPUs, interrupt routing and power-off, PCI
//! discovery. This crate only wires things: the arch crate runs the CPU,
//! core runs the kernel.

#![no_std]
#![no_main]

extern crate alloc;

mod acpi;
mod console;
mod devices;
mod power;
mod pvh;
mod tests;

use core::arch::global_asm;
use core::panic::PanicInfo;

use alloc::string::String;
use keel_arch_x86_64 as arch;
use keel_hal::{BootInfo, CpuDescriptor, ExitStatus, Platform};

// The PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) tells the loader where to
// enter in 32-bit protected mode; `ebx` holds the start_info address.
global_asm!(
    r#"
    .section .note.Xen, "a"
    .balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad keel_pvh_entry
    .balign 4

    .section .boot.text, "ax"
    .code32
    .global keel_pvh_entry
keel_pvh_entry:
    mov esi, ebx
    jmp keel_x86_64_entry32
    .code64
    .text
"#
);

/// The platform.
pub struct KvmX86;

impl Platform for KvmX86 {
    fn name() -> &'static str {
        "kvm-x86_64"
    }
    fn console_write(bytes: &[u8]) {
        console::write(bytes);
    }
    fn console_read() -> Option<u8> {
        console::read()
    }
    fn wall_clock_ns() -> u64 {
        devices::rtc_unix_time().unwrap_or(0) * 1_000_000_000
    }
    fn power_off(status: ExitStatus) -> ! {
        power::power_off(status)
    }
}

keel_hal::export_platform!(KvmX86);

static BOOT: spin::Once<BootInfo> = spin::Once::new();

/// Called by the arch crate once the boot CPU is in long mode.
#[unsafe(no_mangle)]
fn keel_platform_main(start_info: u32) -> ! {
    console::init();
    let mut boot = match pvh::read_start_info(u64::from(start_info)) {
        Ok(b) => b,
        Err(why) => {
            console::write(b"keel: cannot boot: ");
            console::write(why.as_bytes());
            console::write(b"\nkeel: exit status panic\n");
            power::power_off(ExitStatus::Panic);
        }
    };
    keel_core::memory::init(&boot);
    let found = acpi::discover(&boot);
    let options = keel_core::cmdline::parse(boot.cmdline);
    arch::init_after_memory(&found.ioapics, &found.overrides, options.tsc_khz);
    power::configure(found.power);
    devices::set_century_register(found.century_register);
    let bsp = arch::boot_apic_id();
    boot.push_cpu(CpuDescriptor {
        hw_id: u64::from(bsp),
    });
    for &id in found.cpu_apic_ids.iter().filter(|&&id| id != bsp) {
        if !boot.push_cpu(CpuDescriptor {
            hw_id: u64::from(id),
        }) {
            keel_core::kprintln!(
                "keel: more CPUs than Keel supports; using {}",
                boot.cpu_count
            );
            break;
        }
    }
    devices::set_hardware(found.hardware_reduced, found.ecam);
    devices::set_acpi_virtio_mmio(found.virtio_mmio);
    let boot = BOOT.call_once(|| boot);
    keel_linux::install();
    keel_core::boot::run(
        boot,
        options,
        keel_core::boot::PlatformHooks {
            probe_devices: devices::probe,
            machine: machine_description,
        },
    )
}

fn machine_description() -> String {
    let mut s = String::from(devices::machine_name());
    s.push_str(", ");
    let _ = arch::describe(&mut s);
    s.push_str(", ");
    s.push_str(&devices::summary());
    s
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    keel_core::panic::on_panic(info)
}
