//! LZJB, written from its documented behaviour: a control byte precedes
//! each group of eight items; a set bit marks a two-byte back-reference
//! (6-bit length minus 3, 10-bit distance), a clear bit a literal byte.
//! Matches are found through a 1024-entry hash of the next three bytes.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};

const MATCH_BITS: u32 = 6;
const MATCH_MIN: usize = 3;
const MATCH_MAX: usize = (1 << MATCH_BITS) + (MATCH_MIN - 1);
const DISTANCE_MASK: usize = (1 << (16 - MATCH_BITS)) - 1;
const HASH_SLOTS: usize = 1024;

/// Compress `src`. Returns `None` when the output would not be smaller
/// than the input (ZFS then stores the block uncompressed).
pub fn compress(src: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(src.len());
    let mut recent = [usize::MAX; HASH_SLOTS];
    let mut control_at = 0usize;
    let mut bit = 8u32;
    let mut pos = 0usize;
    while pos < src.len() {
        if bit == 8 {
            if out.len() + 1 + 2 * 8 >= src.len() {
                return None;
            }
            bit = 0;
            control_at = out.len();
            out.push(0);
        }
        let mut matched = false;
        if pos + MATCH_MAX <= src.len() {
            let key = (usize::from(src[pos]) << 16)
                | (usize::from(src[pos + 1]) << 8)
                | usize::from(src[pos + 2]);
            let mut hash = key;
            hash += hash >> 9;
            hash += hash >> 5;
            let slot = hash & (HASH_SLOTS - 1);
            let candidate = recent[slot];
            recent[slot] = pos;
            if candidate != usize::MAX {
                let distance = (pos - candidate) & DISTANCE_MASK;
                if distance != 0 && distance <= pos {
                    let from = pos - distance;
                    if src[from..from + MATCH_MIN] == src[pos..pos + MATCH_MIN] {
                        let mut len = MATCH_MIN;
                        while len < MATCH_MAX && src[from + len] == src[pos + len] {
                            len += 1;
                        }
                        out[control_at] |= 1 << bit;
                        out.push((((len - MATCH_MIN) << (8 - MATCH_BITS)) | (distance >> 8)) as u8);
                        out.push(distance as u8);
                        pos += len;
                        matched = true;
                    }
                }
            }
        }
        if !matched {
            out.push(src[pos]);
            pos += 1;
        }
        bit += 1;
    }
    (out.len() < src.len()).then_some(out)
}

/// Expand `src` into exactly `len` bytes.
pub fn decompress(src: &[u8], len: usize) -> Result<Vec<u8>> {
    let mut out = vec![0u8; len];
    let mut at = 0usize;
    let mut i = 0usize;
    let mut control = 0u8;
    let mut bit = 8u32;
    let short = || Error::corrupt("lzjb stream ends early");
    while at < len {
        if bit == 8 {
            control = *src.get(i).ok_or_else(short)?;
            i += 1;
            bit = 0;
        }
        if control & (1 << bit) != 0 {
            let b0 = usize::from(*src.get(i).ok_or_else(short)?);
            let b1 = usize::from(*src.get(i + 1).ok_or_else(short)?);
            i += 2;
            let mlen = (b0 >> (8 - MATCH_BITS)) + MATCH_MIN;
            let distance = ((b0 << 8) | b1) & DISTANCE_MASK;
            if distance == 0 || distance > at {
                return Err(Error::corrupt("lzjb back-reference before the start"));
            }
            for _ in 0..mlen {
                if at >= len {
                    break;
                }
                out[at] = out[at - distance];
                at += 1;
            }
        } else {
            out[at] = *src.get(i).ok_or_else(short)?;
            i += 1;
            at += 1;
        }
        bit += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_repetitive_text() {
        let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog; "
            .iter()
            .cycle()
            .take(4096)
            .copied()
            .collect();
        let packed = compress(&text).expect("text compresses");
        assert!(packed.len() < text.len() / 4);
        assert_eq!(decompress(&packed, text.len()).unwrap(), text);
    }

    #[test]
    fn random_data_is_left_uncompressed() {
        let mut x = 0x1234_5678u32;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert!(compress(&noise).is_none());
    }

    #[test]
    fn decodes_a_hand_made_stream() {
        // Control 0b0000_1000: three literals then a match of length 3 at distance 3.
        let stream = [0b0000_1000u8, b'a', b'b', b'c', 0x00, 0x03];
        assert_eq!(decompress(&stream, 6).unwrap(), b"abcabc");
    }

    #[test]
    fn bad_back_reference_is_an_error() {
        let stream = [0b0000_0001u8, 0x00, 0x05];
        assert!(decompress(&stream, 4).is_err());
        assert!(decompress(&[], 4).is_err());
    }
}
