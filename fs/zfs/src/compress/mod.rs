//! Block compression: off, lzjb (ours), lz4 (lz4_flex, with ZFS's 4-byte
//! length prefix), and the "empty" marker.

pub mod lzjb;

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};

/// Compression algorithms by on-disk number (`enum zio_compress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressKind {
    /// Inherit (never in a block pointer).
    Inherit = 0,
    /// The pool default.
    On = 1,
    /// Stored as is.
    Off = 2,
    /// LZJB, ZFS's original compressor.
    Lzjb = 3,
    /// An all-zero block.
    Empty = 4,
    /// gzip levels 1..9 are 5..13.
    Gzip = 5,
    /// Zero-length encoding.
    Zle = 14,
    /// LZ4 (feature lz4_compress).
    Lz4 = 15,
    /// Zstandard (feature).
    Zstd = 16,
}

impl CompressKind {
    /// Decode the on-disk number.
    pub fn from_u8(v: u8) -> Option<CompressKind> {
        Some(match v {
            0 => CompressKind::Inherit,
            1 => CompressKind::On,
            2 => CompressKind::Off,
            3 => CompressKind::Lzjb,
            4 => CompressKind::Empty,
            5..=13 => CompressKind::Gzip,
            14 => CompressKind::Zle,
            15 => CompressKind::Lz4,
            16 => CompressKind::Zstd,
            _ => return None,
        })
    }
}

/// Expand `src` (the physical block) into `lsize` bytes.
pub fn decompress(kind: CompressKind, src: &[u8], lsize: usize) -> Result<Vec<u8>> {
    match kind {
        CompressKind::Off | CompressKind::Inherit | CompressKind::On => {
            // "On" in a block pointer means the pool default, which for
            // every version here is lzjb; Off is a plain copy.
            if kind == CompressKind::On {
                return lzjb::decompress(src, lsize);
            }
            let mut out = vec![0u8; lsize];
            let n = src.len().min(lsize);
            out[..n].copy_from_slice(&src[..n]);
            Ok(out)
        }
        CompressKind::Empty => Ok(vec![0u8; lsize]),
        CompressKind::Lzjb => lzjb::decompress(src, lsize),
        CompressKind::Lz4 => lz4_decompress(src, lsize),
        CompressKind::Zle => zle_decompress(src, lsize),
        other => Err(Error::unsupported(format!("compression {other:?}"))),
    }
}

/// ZFS's LZ4 framing: a big-endian u32 length of the LZ4 block, then the block.
fn lz4_decompress(src: &[u8], lsize: usize) -> Result<Vec<u8>> {
    let len = src
        .get(0..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| Error::corrupt("lz4 block without its length"))?;
    let body = src
        .get(4..4 + len)
        .ok_or_else(|| Error::corrupt("lz4 length beyond the block"))?;
    let mut out = vec![0u8; lsize];
    lz4_flex::block::decompress_into(body, &mut out)
        .map_err(|_| Error::corrupt("lz4 stream does not decode"))?;
    Ok(out)
}

/// Compress with ZFS's LZ4 framing (used by tests and by readers' tests).
pub fn lz4_compress(src: &[u8]) -> Vec<u8> {
    let body = lz4_flex::block::compress(src);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Zero-length encoding: a byte n < 64 means n+1 literal bytes follow; a
/// byte n >= 64 means n-63 zero bytes.
fn zle_decompress(src: &[u8], lsize: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(lsize);
    let mut i = 0;
    while out.len() < lsize {
        let n = *src
            .get(i)
            .ok_or_else(|| Error::corrupt("zle stream ends early"))? as usize;
        i += 1;
        if n < 64 {
            let lit = src
                .get(i..i + n + 1)
                .ok_or_else(|| Error::corrupt("zle literal beyond the block"))?;
            out.extend_from_slice(lit);
            i += n + 1;
        } else {
            out.resize(out.len() + n - 63, 0);
        }
    }
    out.truncate(lsize);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lz4_round_trip_with_length_prefix() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 17) as u8).collect();
        let packed = lz4_compress(&data);
        assert!(packed.len() < data.len());
        assert_eq!(
            decompress(CompressKind::Lz4, &packed, data.len()).unwrap(),
            data
        );
    }

    #[test]
    fn corrupt_lz4_is_an_error_not_a_panic() {
        let bad = [
            0u8, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert!(decompress(CompressKind::Lz4, &bad, 100).is_err());
        assert!(decompress(CompressKind::Lz4, &[1], 100).is_err());
    }

    #[test]
    fn zle_expands_zero_runs() {
        let src = [1u8, b'a', b'b', 64 + 2];
        assert_eq!(
            decompress(CompressKind::Zle, &src, 5).unwrap(),
            vec![b'a', b'b', 0, 0, 0]
        );
    }
}
