//! What the CPU is and has: MIDR and the ID registers, for banners, and
//! the MPIDR affinity the GIC and PSCI address CPUs by.

use core::fmt;

use aarch64_cpu::registers::{
    ID_AA64ISAR0_EL1, ID_AA64ISAR1_EL1, ID_AA64MMFR0_EL1, ID_AA64PFR0_EL1, MIDR_EL1, MPIDR_EL1,
    Readable,
};

/// Bits of Linux's arm64 AT_HWCAP.
mod hwcap {
    pub const FP: u64 = 1 << 0;
    pub const ASIMD: u64 = 1 << 1;
    pub const AES: u64 = 1 << 3;
    pub const PMULL: u64 = 1 << 4;
    pub const SHA1: u64 = 1 << 5;
    pub const SHA2: u64 = 1 << 6;
    pub const CRC32: u64 = 1 << 7;
    pub const ATOMICS: u64 = 1 << 8;
    pub const FPHP: u64 = 1 << 9;
    pub const ASIMDHP: u64 = 1 << 10;
    pub const ASIMDRDM: u64 = 1 << 12;
    pub const JSCVT: u64 = 1 << 13;
    pub const FCMA: u64 = 1 << 14;
    pub const LRCPC: u64 = 1 << 15;
    pub const DCPOP: u64 = 1 << 16;
    pub const SHA3: u64 = 1 << 17;
    pub const SM3: u64 = 1 << 18;
    pub const SM4: u64 = 1 << 19;
    pub const ASIMDDP: u64 = 1 << 20;
    pub const SHA512: u64 = 1 << 21;
    pub const ASIMDFHM: u64 = 1 << 23;
    pub const FLAGM: u64 = 1 << 27;
    pub const ILRCPC: u64 = 1 << 26;
    /// AT_HWCAP2 bit: RNDR/RNDRRS.
    pub const RNG2: u64 = 1 << 16;
}

/// Linux's (AT_HWCAP, AT_HWCAP2) for the instructions apps may use here.
/// SVE, SME and pointer authentication stay off (not enabled for apps),
/// and neither the event stream nor MRS emulation (CPUID) is offered.
pub fn elf_hwcaps() -> (u64, u64) {
    let isar0 = ID_AA64ISAR0_EL1.get();
    let isar1 = ID_AA64ISAR1_EL1.get();
    let pfr0 = ID_AA64PFR0_EL1.get();
    let field = |reg: u64, shift: u32| (reg >> shift) & 0xf;
    let mut caps = 0;
    let mut set = |present: bool, bit: u64| {
        if present {
            caps |= bit;
        }
    };
    let (fp, simd) = (field(pfr0, 16), field(pfr0, 20));
    set(fp != 0xf, hwcap::FP);
    set(fp == 1, hwcap::FPHP);
    set(simd != 0xf, hwcap::ASIMD);
    set(simd == 1, hwcap::ASIMDHP);
    set(field(isar0, 4) >= 1, hwcap::AES);
    set(field(isar0, 4) >= 2, hwcap::PMULL);
    set(field(isar0, 8) != 0, hwcap::SHA1);
    set(field(isar0, 12) >= 1, hwcap::SHA2);
    set(field(isar0, 12) >= 2, hwcap::SHA512);
    set(field(isar0, 16) != 0, hwcap::CRC32);
    set(field(isar0, 20) >= 2, hwcap::ATOMICS);
    set(field(isar0, 28) != 0, hwcap::ASIMDRDM);
    set(field(isar0, 32) != 0, hwcap::SHA3);
    set(field(isar0, 36) != 0, hwcap::SM3);
    set(field(isar0, 40) != 0, hwcap::SM4);
    set(field(isar0, 44) != 0, hwcap::ASIMDDP);
    set(field(isar0, 48) != 0, hwcap::ASIMDFHM);
    set(field(isar0, 52) != 0, hwcap::FLAGM);
    set(field(isar1, 0) != 0, hwcap::DCPOP);
    set(field(isar1, 12) != 0, hwcap::JSCVT);
    set(field(isar1, 16) != 0, hwcap::FCMA);
    set(field(isar1, 20) >= 1, hwcap::LRCPC);
    set(field(isar1, 20) >= 2, hwcap::ILRCPC);
    let caps2 = if has_rng() { hwcap::RNG2 } else { 0 };
    (caps, caps2)
}

fn has_rng() -> bool {
    (ID_AA64ISAR0_EL1.get() >> 60) & 0xf != 0
}

/// 64 random bits from RNDR, if the CPU has it and it delivers.
pub fn hardware_random() -> Option<u64> {
    if !has_rng() {
        return None;
    }
    let (value, failed): (u64, u64);
    // SAFETY: RNDR (s3_3_c2_c4_0) exists (checked above); it sets Z on failure.
    unsafe {
        core::arch::asm!(
            "mrs {v}, s3_3_c2_c4_0",
            "cset {f}, eq",
            v = out(reg) value,
            f = out(reg) failed,
            options(nostack, nomem)
        )
    };
    (failed == 0).then_some(value)
}

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
