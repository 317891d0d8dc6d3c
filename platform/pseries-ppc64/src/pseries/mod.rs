//! The image's wiring (see the crate root).

mod console;
mod devices;
mod firmware;
mod of;
mod power;
mod tests;

use core::panic::PanicInfo;

use alloc::string::String;
use keel_arch_ppc64 as arch;
use keel_hal::{BootInfo, CpuDescriptor, ExitStatus, MemoryKind, Platform};

use self::firmware::facts;

/// The platform.
pub struct Pseries;

impl Platform for Pseries {
    fn name() -> &'static str {
        "pseries-ppc64"
    }
    fn console_write(bytes: &[u8]) {
        console::write(bytes);
    }
    fn console_read() -> Option<u8> {
        console::read()
    }
    fn wall_clock_ns() -> u64 {
        power::wall_clock().map_or(0, |(s, ns)| s * 1_000_000_000 + u64::from(ns))
    }
    fn power_off(status: ExitStatus) -> ! {
        power::power_off(status)
    }
}

keel_hal::export_platform!(Pseries);

static BOOT: spin::Once<BootInfo> = spin::Once::new();

/// Stop booting with a sentence on the console.
fn cannot_boot(why: &dyn core::fmt::Display) -> ! {
    let mut line = heapless_line();
    let _ = core::fmt::write(&mut line, format_args!("keel: cannot boot: {why}\n"));
    console::write(line.as_bytes());
    console::write(b"keel: exit status panic\n");
    power::power_off(ExitStatus::Panic)
}

/// A fixed-size line buffer (no heap before memory init).
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn heapless_line() -> Line {
    Line {
        buf: [0; 256],
        len: 0,
    }
}

/// Called by the arch crate in real mode with the firmware's registers:
/// r3/r4 = initrd address/size, r5 = the client interface.
#[unsafe(no_mangle)]
fn keel_platform_main(r3: u64, r4: u64, r5: u64) -> ! {
    let Some(of) = of::Of::new(r5) else {
        cannot_boot(&"no Open Firmware client interface in r5 (Keel boots through SLOF or VOF)");
    };
    if let Err(why) = firmware::gather(&of, (r3, r4)) {
        console::set_vty(facts().vty);
        cannot_boot(&why);
    }
    console::set_vty(facts().vty);
    if let Err(why) = arch::enable_translation(facts().ram_end(), virtual_main) {
        cannot_boot(&why);
    }
    unreachable!("enable_translation returns only on failure")
}

unsafe extern "C" {
    static __kernel_end: u8;
}

/// Continue with translation on, on the boot stack.
extern "C" fn virtual_main() -> ! {
    let f = facts();
    let mut boot = BootInfo::empty();
    for &(start, size) in &f.memory[..f.memory_len] {
        if start.saturating_add(size) > arch::DIRECT_MAP_LIMIT {
            continue; // beyond the direct map (reported below)
        }
        boot.push_memory(keel_core::memory::map::region(
            start,
            size,
            MemoryKind::Usable,
        ));
    }
    // Low memory holds the exception vectors and firmware leftovers; the
    // image follows at 4 MiB.
    let kernel_end = arch::kernel_phys((&raw const __kernel_end) as usize);
    boot.push_memory(keel_core::memory::map::region(
        0,
        kernel_end,
        MemoryKind::InUse,
    ));
    if let Some((start, size)) = f.initrd {
        boot.push_memory(keel_core::memory::map::region(
            start,
            size,
            MemoryKind::InUse,
        ));
        boot.initrd = Some((keel_hal::PhysAddr(start), size));
    }
    boot.cmdline = match core::str::from_utf8(&f.cmdline[..f.cmdline_len]) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&f.cmdline[..e.valid_up_to()]).unwrap_or(""),
    };
    boot.boot_stack = arch::boot_stack();
    keel_core::memory::init(&boot);
    arch::init_boot_cpu(f.timebase_hz, f.boot_server);
    boot.push_cpu(CpuDescriptor {
        hw_id: u64::from(f.boot_server),
    });
    for &server in f.cpus[..f.cpu_count]
        .iter()
        .filter(|&&s| s != f.boot_server)
    {
        if keel_driver_papr::rtas::token(keel_driver_papr::rtas::Service::StartCpu).is_none() {
            break;
        }
        boot.push_cpu(CpuDescriptor {
            hw_id: u64::from(server),
        });
    }
    for w in &f.warnings[..f.warning_count] {
        keel_core::kprintln!("keel: {w}");
    }
    if f.ram_end() > arch::DIRECT_MAP_LIMIT {
        keel_core::kprintln!("keel: RAM above 512 GiB is not used yet");
    }
    let boot = BOOT.call_once(|| boot);
    let options = keel_core::cmdline::parse(boot.cmdline);
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
    let mut s = String::from(if facts().slof {
        "pseries (SLOF)"
    } else {
        "pseries (VOF)"
    });
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
