//! The image proper: boot protocol header, the platform type, and the
//! boot-time wiring from the device tree to core.

mod console;
mod devices;
mod power;
mod tests;
mod tree;

use core::arch::global_asm;
use core::panic::PanicInfo;

use alloc::string::String;
use keel_arch_aarch64 as arch;
use keel_driver_devicetree::{Conduit, Gic, Machine};
use keel_hal::{BootInfo, ExitStatus, MemoryKind, PhysAddr, Platform};

// The arm64 Image header (Documentation/arch/arm64/booting.rst in Linux):
// a branch to the entry, text_offset 2 MiB, the effective image size
// (with .bss, boot tables and stacks, so loaders place nothing there),
// flags 0xa (little-endian, 4 KiB pages, anywhere in RAM) and the magic.
// An ELF boot enters at the same first instruction (the ELF entry point).
global_asm!(
    r#"
    .section .text.head, "ax"
    .global keel_image_header
keel_image_header:
    b keel_aarch64_entry
    .long 0
    .quad 0x200000
    .quad keel_aarch64_image_size
    .quad 0xa
    .quad 0
    .quad 0
    .quad 0
    .long 0x644d5241
    .long 0
    .text
"#
);

/// The platform.
pub struct KvmAarch64;

impl Platform for KvmAarch64 {
    fn name() -> &'static str {
        "kvm-aarch64"
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

keel_hal::export_platform!(KvmAarch64);

static BOOT: spin::Once<BootInfo> = spin::Once::new();

/// Stop with a message when the machine cannot be used at all.
fn cannot_boot(why: core::fmt::Arguments<'_>) -> ! {
    console::init_fallback();
    keel_core::console::print_unlocked(format_args!(
        "keel: cannot boot: {why}\nkeel: exit status panic\n"
    ));
    power::power_off(ExitStatus::Panic)
}

/// Called by the arch crate once the boot CPU runs in the higher half.
#[unsafe(no_mangle)]
fn keel_platform_main(dtb: u64) -> ! {
    let (dtb, blob) = match tree::locate(dtb) {
        Ok(found) => found,
        Err(why) => cannot_boot(format_args!("{why}")),
    };
    let blob_len = blob.len() as u64;
    // Loaders that edit the tree (libfdt) leave NOP tokens; they are
    // squeezed out in place before the tree is read.
    let machine = match keel_driver_devicetree::parse_mut(blob) {
        Ok(m) => m,
        Err(e) => cannot_boot(format_args!("{e} (at physical {dtb:#x})")),
    };
    console::init(&machine);
    if let Some(p) = machine.psci {
        let conduit = match p.conduit {
            Conduit::Hvc => arch::Conduit::Hvc,
            Conduit::Smc => arch::Conduit::Smc,
        };
        arch::psci::configure(conduit, p.cpu_on, p.standard);
    }
    let mut boot = match tree::boot_info(&machine, dtb, blob_len) {
        Ok(b) => b,
        Err(why) => cannot_boot(format_args!("{why}")),
    };
    let beyond = arch::map_ram(
        &mut boot
            .memory_regions()
            .iter()
            .filter(|r| r.kind == MemoryKind::Usable)
            .map(|r| (r.start.0, r.end().0)),
    );
    if beyond > 0 {
        let limit = arch::layout::PHYS_MAP_LIMIT;
        boot.push_memory(keel_core::memory::map::region(
            limit,
            u64::MAX - limit,
            MemoryKind::Reserved,
        ));
        keel_core::kprintln!(
            "keel: {} MiB of RAM lie above {} GiB, beyond the direct map; unused",
            beyond >> 20,
            limit >> 30
        );
    }
    keel_core::memory::init(&boot);
    for problem in machine.problems.as_slice() {
        keel_core::kprintln!("keel: device tree: {problem}");
    }
    if let Err(why) = init_interrupts(&machine) {
        cannot_boot(format_args!("{why}"));
    }
    if machine.psci.is_none() && machine.cpus.len() > 1 {
        keel_core::kprintln!("keel: no PSCI in the device tree; running on one CPU");
    }
    if machine.psci.is_none() {
        boot.cpu_count = boot.cpu_count.min(1);
    }
    devices::remember(machine);
    let options = keel_core::cmdline::parse(boot.cmdline);
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

/// Map the GIC and hand it to the arch crate with the timer's interrupt.
fn init_interrupts(machine: &Machine<'_>) -> Result<(), &'static str> {
    use keel_core::memory::vmap::map_mmio;
    let map = |base: u64, size: u64| {
        map_mmio(PhysAddr(base), size as usize)
            .map(|va| va.0)
            .map_err(|_| "cannot map the GIC's registers")
    };
    let timer = machine.timer.and_then(|t| t.virtual_timer).map(|i| i.intid);
    let counter_hz = machine.timer.and_then(|t| t.frequency).map(u64::from);
    match machine.gic {
        None => Err("the device tree describes no GIC (arm,gic-v3 or a GICv2)"),
        Some(Gic::V2 {
            distributor,
            cpu_interface,
        }) => {
            let config = arch::GicConfig::V2 {
                distributor: map(distributor.base, distributor.size.clamp(0x1000, 0x1_0000))?,
                cpu_interface: map(
                    cpu_interface.base,
                    cpu_interface.size.clamp(0x1000, 0x2_0000),
                )?,
            };
            arch::init_after_memory(&config, timer, counter_hz)
        }
        Some(Gic::V3 {
            distributor,
            redistributors,
            stride,
        }) => {
            // Only as many redistributors as there are CPUs (each at most
            // 256 KiB): mapping QEMU's whole 15 MiB region would cost boot time.
            let cpus = machine.cpus.len().max(1) as u64;
            let mut regions = [(0usize, 0usize); arch::GIC_MAX_REDISTRIBUTOR_REGIONS];
            let mut n = 0;
            for r in redistributors.as_slice().iter().take(regions.len()) {
                let size = r.size.min(cpus * 0x4_0000);
                regions[n] = (map(r.base, size)?, size as usize);
                n += 1;
            }
            let config = arch::GicConfig::V3 {
                distributor: map(distributor.base, distributor.size.clamp(0x1_0000, 0x1_0000))?,
                redistributors: &regions[..n],
                stride: stride.map(|s| s as usize),
            };
            arch::init_after_memory(&config, timer, counter_hz)
        }
    }
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
