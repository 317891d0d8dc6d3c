//! What the CPU is and has: MIDR and the ID registers, for banners, and
//! the MPIDR affinity the GIC and PSCI address CPUs by.

use core::fmt;

use aarch64_cpu::registers::{
    ID_AA64ISAR0_EL1, ID_AA64ISAR1_EL1, ID_AA64MMFR0_EL1, ID_AA64PFR0_EL1, MIDR_EL1, MPIDR_EL1,
    Readable,
};

/// This CPU's affinity fields (Aff3 at bits 39:32, Aff2..Aff0 at 23:0).
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// A name for the CPU model, from MIDR_EL1.
fn model() -> (&'static str, u64) {
    let midr = MIDR_EL1.get();
    let implementer = (midr >> 24) & 0xff;
    let part = (midr >> 4) & 0xfff;
    let name = match (implementer, part) {
        (0x41, 0xd03) => "Cortex-A53",
        (0x41, 0xd07) => "Cortex-A57",
        (0x41, 0xd08) => "Cortex-A72",
        (0x41, 0xd0b) => "Cortex-A76",
        (0x41, 0xd0c) => "Neoverse-N1",
        (0x41, 0xd40) => "Neoverse-V1",
        (0x41, 0xd49) => "Neoverse-N2",
        (0x41, 0xd4f) => "Neoverse-V2",
        (0x41, _) => "Arm core",
        (0x00, _) => "QEMU max",
        (0x61, _) => "Apple core",
        (0xc0, _) => "Ampere core",
        _ => "unknown core",
    };
    (name, midr)
}

/// Physical address bits the MMU supports (capped at 48, as configured).
pub fn physical_address_bits() -> u32 {
    match ID_AA64MMFR0_EL1.get() & 0xf {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        _ => 48,
    }
}

/// Model and feature flags ("Cortex-A72 (MIDR 0x410fd083) | fp asimd aes …").
pub fn write_features(out: &mut dyn fmt::Write) -> fmt::Result {
    let (name, midr) = model();
    write!(out, "{name} (MIDR {midr:#010x}) |")?;
    let isar0 = ID_AA64ISAR0_EL1.get();
    let isar1 = ID_AA64ISAR1_EL1.get();
    let pfr0 = ID_AA64PFR0_EL1.get();
    let field = |reg: u64, shift: u32| (reg >> shift) & 0xf;
    let checks: [(&str, bool); 14] = [
        ("fp", field(pfr0, 16) != 0xf),
        ("asimd", field(pfr0, 20) != 0xf),
        ("aes", field(isar0, 4) >= 1),
        ("pmull", field(isar0, 4) >= 2),
        ("sha1", field(isar0, 8) != 0),
        ("sha2", field(isar0, 12) != 0),
        ("crc32", field(isar0, 16) != 0),
        ("atomics", field(isar0, 20) >= 2),
        ("sha3", field(isar0, 32) != 0),
        ("dotprod", field(isar0, 44) != 0),
        ("rng", field(isar0, 60) != 0),
        ("lrcpc", field(isar1, 20) != 0),
        ("pauth", field(isar1, 4) != 0 || field(isar1, 8) != 0),
        ("sve", field(pfr0, 32) != 0),
    ];
    for (name, present) in checks {
        if present {
            write!(out, " {name}")?;
        }
    }
    Ok(())
}
