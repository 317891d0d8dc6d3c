//! Reading device-tree property values (as Open Firmware's `getprop`
//! returns them: big-endian 32-bit cells, NUL-terminated strings). Every
//! reader checks lengths, so an odd tree gives `None`, never a panic.

/// Cell `index` of a property.
pub fn cell(bytes: &[u8], index: usize) -> Option<u32> {
    let b = bytes.get(index * 4..index * 4 + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A number of one or two cells starting at cell `index`.
pub fn number(bytes: &[u8], index: usize, cells: usize) -> Option<u64> {
    match cells {
        1 => cell(bytes, index).map(u64::from),
        2 => Some(u64::from(cell(bytes, index)?) << 32 | u64::from(cell(bytes, index + 1)?)),
        _ => None,
    }
}

/// A property that is a single number of one or two cells (by its length).
pub fn single_number(bytes: &[u8]) -> Option<u64> {
    match bytes.len() {
        4 => number(bytes, 0, 1),
        8 => number(bytes, 0, 2),
        _ => None,
    }
}

/// Why a `reg` property cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegError {
    /// `#address-cells` or `#size-cells` is not 1 or 2.
    UnsupportedCells,
    /// The length is not a whole number of (address, size) pairs.
    Truncated,
}

/// The (address, size) pairs of a `reg` property with the parent's
/// `#address-cells` and `#size-cells`.
pub fn reg_pairs(
    bytes: &[u8],
    address_cells: usize,
    size_cells: usize,
) -> Result<impl Iterator<Item = (u64, u64)> + '_, RegError> {
    if !(1..=2).contains(&address_cells) || !(1..=2).contains(&size_cells) {
        return Err(RegError::UnsupportedCells);
    }
    let pair = (address_cells + size_cells) * 4;
    if !bytes.len().is_multiple_of(pair) {
        return Err(RegError::Truncated);
    }
    Ok(bytes.chunks_exact(pair).filter_map(move |c| {
        Some((
            number(c, 0, address_cells)?,
            number(c, address_cells, size_cells)?,
        ))
    }))
}

/// A string property (up to its first NUL), if it is UTF-8.
pub fn string(bytes: &[u8]) -> Option<&str> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..end]).ok()
}

/// Whether a string-list property (`compatible`) holds `wanted`.
pub fn list_contains(bytes: &[u8], wanted: &str) -> bool {
    bytes.split(|&b| b == 0).any(|s| s == wanted.as_bytes())
}

/// Like [`list_contains`], ignoring ASCII case (QEMU names XICS
/// `IBM,ppc-xicp` where LoPAPR writes `ibm,ppc-xicp`).
pub fn list_contains_ignore_case(bytes: &[u8], wanted: &str) -> bool {
    bytes
        .split(|&b| b == 0)
        .any(|s| s.eq_ignore_ascii_case(wanted.as_bytes()))
}

/// The cells of a property as numbers (a list of `u32`).
pub fn cells(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn be(cells: &[u32]) -> Vec<u8> {
        cells.iter().flat_map(|c| c.to_be_bytes()).collect()
    }

    #[test]
    fn reads_numbers_of_one_and_two_cells() {
        let p = be(&[0x1, 0x2000_0000]);
        assert_eq!(number(&p, 0, 2), Some(0x1_2000_0000));
        assert_eq!(number(&p, 1, 1), Some(0x2000_0000));
        assert_eq!(number(&p, 1, 2), None, "runs off the end");
        assert_eq!(number(&p, 0, 3), None);
        assert_eq!(single_number(&be(&[512_000_000])), Some(512_000_000));
        assert_eq!(single_number(&p), Some(0x1_2000_0000));
        assert_eq!(single_number(&[1, 2, 3]), None);
    }

    #[test]
    fn reg_pairs_follow_the_parent_cell_counts() {
        let p = be(&[0, 0, 0, 0x2000_0000, 1, 0, 0, 0x1000_0000]);
        let v: Vec<_> = reg_pairs(&p, 2, 2).unwrap().collect();
        assert_eq!(v, [(0, 0x2000_0000), (0x1_0000_0000, 0x1000_0000)]);
        let v: Vec<_> = reg_pairs(&be(&[0x7100_0000, 0x10]), 1, 1)
            .unwrap()
            .collect();
        assert_eq!(v, [(0x7100_0000, 0x10)]);
        assert_eq!(reg_pairs(&p[..12], 2, 2).err(), Some(RegError::Truncated));
        assert_eq!(reg_pairs(&p, 3, 2).err(), Some(RegError::UnsupportedCells));
        assert_eq!(reg_pairs(&[], 2, 2).unwrap().count(), 0);
    }

    #[test]
    fn strings_and_lists() {
        assert_eq!(string(b"memory\0"), Some("memory"));
        assert_eq!(string(b"no-nul"), Some("no-nul"));
        assert_eq!(string(b"\xff\0"), None);
        assert!(list_contains(b"IBM,Logical_PHB\0hvterm1\0", "hvterm1"));
        assert!(!list_contains(b"hvterm-protocol\0", "hvterm1"));
        assert!(list_contains_ignore_case(
            b"PowerPC-External-Interrupt-Presentation\0IBM,ppc-xicp\0",
            "ibm,ppc-xicp"
        ));
        assert_eq!(cells(&be(&[0, 1, 2])).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(cells(&[0, 0, 0]).count(), 0, "a partial cell is ignored");
    }
}
