//! QEMU arguments for x86_64 guests: microvm with qboot (fast, virtio-mmio)
//! or q35 (PCI, full ACPI); the isa-debug-exit device carries failure
//! statuses; under TCG the host's TSC rate goes on the command line.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{Accel, Vm};

/// Where Debian's qemu-system-x86 puts qboot.
pub const QBOOT: &str = "/usr/share/qemu/qboot.rom";

pub(super) fn args(vm: &Vm, machine: &str) -> Result<Vec<String>> {
    let mut a: Vec<String> = Vec::new();
    match machine {
        "microvm" => {
            a.extend(["-M".into(), "microvm,rtc=on".into()]);
            if std::path::Path::new(QBOOT).exists() {
                a.extend(["-bios".into(), QBOOT.into()]);
            }
        }
        "q35" => a.extend(["-M".into(), "q35".into()]),
        other => bail!("unknown x86_64 machine '{other}' (known: microvm, q35)"),
    }
    a.extend([
        "-cpu".into(),
        if vm.accel == Accel::Kvm {
            "host"
        } else {
            "max"
        }
        .into(),
    ]);
    a.extend([
        "-device".into(),
        "isa-debug-exit,iobase=0xf4,iosize=4".into(),
    ]);
    Ok(a)
}

/// Under TCG on an x86_64 host the guest's TSC is the host's, whose rate
/// the guest cannot learn from CPUID: tell it (`keel.tsc_khz`) rather than
/// have it spend 2 ms calibrating against the PIT.
pub(super) fn extra_cmdline(vm: &Vm) -> Option<String> {
    if vm.accel != Accel::Tcg || vm.cmdline.contains("keel.tsc_khz=") {
        return None;
    }
    host_tsc_khz().map(|khz| format!("keel.tsc_khz={khz}"))
}

/// The host TSC rate, measured against the monotonic clock over 20 ms.
#[cfg(target_arch = "x86_64")]
fn host_tsc_khz() -> Option<u64> {
    use std::sync::OnceLock;
    static KHZ: OnceLock<Option<u64>> = OnceLock::new();
    *KHZ.get_or_init(|| {
        // SAFETY: RDTSC has no side effects and exists on every x86_64 CPU.
        let tsc = || unsafe { core::arch::x86_64::_rdtsc() };
        let (t0, c0) = (Instant::now(), tsc());
        while t0.elapsed() < Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        let (t1, c1) = (Instant::now(), tsc());
        let khz = u128::from(c1 - c0) * 1_000_000 / (t1 - t0).as_micros().max(1) / 1000;
        (khz > 100_000).then_some(khz as u64)
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn host_tsc_khz() -> Option<u64> {
    None
}
