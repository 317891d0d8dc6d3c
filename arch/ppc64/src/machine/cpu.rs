//! What the CPU is: the processor version register, named.

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
