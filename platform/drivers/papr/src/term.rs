//! The hypervisor virtual terminal (`hvterm1`): characters travel in
//! registers, up to 16 per call, packed big-endian into two doublewords.

/// Bytes one `H_PUT_TERM_CHAR` / `H_GET_TERM_CHAR` carries.
pub const CHUNK: usize = 16;

/// Pack up to 16 bytes as `H_PUT_TERM_CHAR` wants them: the first byte is
/// the most significant byte of the first doubleword.
pub fn pack(bytes: &[u8]) -> (u64, u64) {
    let mut buf = [0u8; CHUNK];
    let n = bytes.len().min(CHUNK);
    buf[..n].copy_from_slice(&bytes[..n]);
    let hi: [u8; 8] = buf[..8].try_into().unwrap_or([0; 8]);
    let lo: [u8; 8] = buf[8..].try_into().unwrap_or([0; 8]);
    (u64::from_be_bytes(hi), u64::from_be_bytes(lo))
}

/// Unpack what `H_GET_TERM_CHAR` returned: `len` bytes from two doublewords.
pub fn unpack(len: u64, hi: u64, lo: u64) -> ([u8; CHUNK], usize) {
    let mut buf = [0u8; CHUNK];
    buf[..8].copy_from_slice(&hi.to_be_bytes());
    buf[8..].copy_from_slice(&lo.to_be_bytes());
    (buf, (len as usize).min(CHUNK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_big_endian_and_round_trips() {
        let (hi, lo) = pack(b"keel: ready\n");
        assert_eq!(hi, u64::from_be_bytes(*b"keel: re"));
        assert_eq!(lo, u64::from_be_bytes(*b"ady\n\0\0\0\0"));
        let (buf, n) = unpack(12, hi, lo);
        assert_eq!(&buf[..n], b"keel: ready\n");
        assert_eq!(unpack(99, 0, 0).1, CHUNK, "a bogus length is clamped");
        assert_eq!(
            pack(&[0xff; 40]),
            (u64::MAX, u64::MAX),
            "only 16 bytes travel"
        );
    }
}
