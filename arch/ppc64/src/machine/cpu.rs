//! What the CPU is: the processor version register, named; what apps are
//! told about it (AT_HWCAP/AT_HWCAP2); its random number generator.

use core::arch::asm;
use core::fmt;

/// The processor version register.
pub fn pvr() -> u32 {
    let v: u64;
    // SAFETY: reading the PVR has no side effects.
    unsafe { asm!("mfspr {0}, 287", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v as u32
}

/// The processor family's name, from the PVR's version field.
pub fn family() -> &'static str {
    match pvr() >> 16 {
        0x004b..=0x004d => "POWER8",
        0x004e => "POWER9",
        0x0080 => "POWER10",
        0x0082 => "POWER11",
        _ => "unknown POWER",
    }
}

/// A POWER9 (whose radix TLB has 128 congruence classes to flush).
pub fn is_power9() -> bool {
    pvr() >> 16 == 0x004e
}

/// Feature line for banners.
pub fn write_features(out: &mut dyn fmt::Write) -> fmt::Result {
    write!(
        out,
        "{} (PVR {:#010x}) | radix vsx altivec",
        family(),
        pvr()
    )?;
    if pvr() >> 16 >= 0x0080 {
        write!(out, " isa3.1")?;
    } else {
        write!(out, " isa3.0")?;
    }
    Ok(())
}

/// ISA 3.0 or later (POWER9 and up): `darn`, IEEE 128-bit, ISA 3.0 hwcaps.
fn isa_3_0() -> bool {
    pvr() >> 16 >= 0x004e
}

/// ISA 3.1 (POWER10 and up).
fn isa_3_1() -> bool {
    pvr() >> 16 >= 0x0080
}

// AT_HWCAP bits (Linux's uapi asm/cputable.h).
const PPC_FEATURE_32: u64 = 0x8000_0000;
const PPC_FEATURE_64: u64 = 0x4000_0000;
const PPC_FEATURE_HAS_ALTIVEC: u64 = 0x1000_0000;
const PPC_FEATURE_HAS_FPU: u64 = 0x0800_0000;
const PPC_FEATURE_HAS_MMU: u64 = 0x0400_0000;
const PPC_FEATURE_ICACHE_SNOOP: u64 = 0x0000_2000;
const PPC_FEATURE_HAS_DFP: u64 = 0x0000_0400;
const PPC_FEATURE_ARCH_2_06: u64 = 0x0000_0100;
const PPC_FEATURE_HAS_VSX: u64 = 0x0000_0080;
const PPC_FEATURE_TRUE_LE: u64 = 0x0000_0002;
// AT_HWCAP2 bits.
const PPC_FEATURE2_ARCH_2_07: u64 = 0x8000_0000;
const PPC_FEATURE2_HAS_ISEL: u64 = 0x0800_0000;
const PPC_FEATURE2_HAS_VEC_CRYPTO: u64 = 0x0200_0000;
const PPC_FEATURE2_ARCH_3_00: u64 = 0x0080_0000;
const PPC_FEATURE2_HAS_IEEE128: u64 = 0x0040_0000;
const PPC_FEATURE2_DARN: u64 = 0x0020_0000;
const PPC_FEATURE2_ARCH_3_1: u64 = 0x0004_0000;

/// AT_HWCAP and AT_HWCAP2 as Linux reports them for this CPU, less what
/// Keel does not give apps: `scv` (system calls come through `sc` only;
/// glibc would use `scv` if told it exists), transactional memory, EBB,
/// the DSCR and TAR (not kept per thread) and MMA (its accumulators are
/// not saved across switches).
pub fn hwcaps() -> (u64, u64) {
    let hwcap = PPC_FEATURE_32
        | PPC_FEATURE_64
        | PPC_FEATURE_HAS_ALTIVEC
        | PPC_FEATURE_HAS_FPU
        | PPC_FEATURE_HAS_MMU
        | PPC_FEATURE_ICACHE_SNOOP
        | PPC_FEATURE_HAS_DFP
        | PPC_FEATURE_ARCH_2_06
        | PPC_FEATURE_HAS_VSX
        | PPC_FEATURE_TRUE_LE;
    let mut hwcap2 = PPC_FEATURE2_ARCH_2_07 | PPC_FEATURE2_HAS_ISEL | PPC_FEATURE2_HAS_VEC_CRYPTO;
    if isa_3_0() {
        hwcap2 |= PPC_FEATURE2_ARCH_3_00 | PPC_FEATURE2_HAS_IEEE128 | PPC_FEATURE2_DARN;
    }
    if isa_3_1() {
        hwcap2 |= PPC_FEATURE2_ARCH_3_1;
    }
    (hwcap, hwcap2)
}

/// 64 conditioned random bits from `darn` (ISA 3.0), which returns all
/// ones when it has none ready: a few tries, then none.
pub fn darn() -> Option<u64> {
    if !isa_3_0() {
        return None;
    }
    for _ in 0..16 {
        let v: u64;
        // SAFETY: `darn r3, 1` (encoded by hand: the assembler may not
        // know ISA 3.0 mnemonics) only writes r3.
        unsafe { asm!(".long 0x7c6105e6", out("r3") v, options(nomem, nostack, preserves_flags)) };
        if v != u64::MAX {
            return Some(v);
        }
    }
    None
}
