//! ACPI soft-off (S5) without an AML interpreter: find the `\_S5` package
//! in the DSDT and compute what to write to PM1 control or, on
//! hardware-reduced platforms, to the sleep control register.

#![no_std]
#![forbid(unsafe_code)]

/// The SLP_TYPa/SLP_TYPb values of `\_S5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SleepType {
    /// SLP_TYPa.
    pub a: u8,
    /// SLP_TYPb.
    pub b: u8,
}

/// Find `Name(_S5, Package(){a, b, ...})` in AML bytes.
pub fn find_s5(aml: &[u8]) -> Option<SleepType> {
    let at = aml.windows(4).position(|w| w == b"_S5_")?;
    let mut p = at + 4;
    // NameOp (0x08) precedes the name; the package follows it.
    if at == 0 || (aml[at - 1] != 0x08 && !(at >= 2 && aml[at - 2] == 0x08 && aml[at - 1] == b'\\'))
    {
        return None;
    }
    if *aml.get(p)? != 0x12 {
        return None; // not a PackageOp
    }
    p += 1;
    let lead = *aml.get(p)?;
    p += 1 + usize::from(lead >> 6); // PkgLength: 0-3 extra bytes
    let count = *aml.get(p)?;
    p += 1;
    if count < 1 {
        return None;
    }
    let (a, next) = integer(aml, p)?;
    let b = if count >= 2 { integer(aml, next)?.0 } else { 0 };
    Some(SleepType { a, b })
}

/// Decode a small AML integer constant at `p`; returns it and the next offset.
fn integer(aml: &[u8], p: usize) -> Option<(u8, usize)> {
    match *aml.get(p)? {
        0x00 => Some((0, p + 1)),                // ZeroOp
        0x01 => Some((1, p + 1)),                // OneOp
        0xff => Some((0xff, p + 1)),             // OnesOp
        0x0a => Some((*aml.get(p + 1)?, p + 2)), // BytePrefix
        _ => None,
    }
}

/// PM1 control value for S5: SLP_TYP in bits 10..13, SLP_EN bit 13.
pub fn pm1_control_value(slp_typ: u8) -> u16 {
    (u16::from(slp_typ & 7) << 10) | (1 << 13)
}

/// Hardware-reduced sleep control value: SLP_TYP in bits 2..5, SLP_EN bit 5.
pub fn sleep_control_value(slp_typ: u8) -> u8 {
    ((slp_typ & 7) << 2) | (1 << 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_byte_prefixed_and_constant_elements() {
        // Name(_S5, Package(4) {0x05, Zero, Zero, Zero})
        let aml = [
            0x10, 0x08, b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0a, 0x05, 0x00, 0x00, 0x00,
        ];
        assert_eq!(find_s5(&aml), Some(SleepType { a: 5, b: 0 }));
        let aml = [
            0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x00, 0x01, 0x00, 0x00,
        ];
        assert_eq!(find_s5(&aml), Some(SleepType { a: 0, b: 1 }));
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert_eq!(find_s5(b"no sleep here"), None);
        assert_eq!(find_s5(&[0x08, b'_', b'S', b'5', b'_', 0x12]), None);
        assert_eq!(find_s5(&[0x08, b'_', b'S', b'5', b'_', 0x13, 0, 0]), None);
        assert_eq!(
            find_s5(&[b'_', b'S', b'5', b'_', 0x12, 0x04, 0x01, 0x00]),
            None
        );
    }

    #[test]
    fn register_values() {
        assert_eq!(pm1_control_value(0), 0x2000);
        assert_eq!(pm1_control_value(5), 0x3400);
        assert_eq!(sleep_control_value(5), 0x34);
    }
}
