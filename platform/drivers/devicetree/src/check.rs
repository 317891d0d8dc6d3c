//! A structural check of a whole DTB before anything walks it.
//!
//! The `fdt` crate trusts its input: offsets, lengths, tokens and strings
//! that are out of place make it panic (asserts, unwraps, slice indexing).
//! A kernel must answer a bad blob with an error message instead, so this
//! module walks every token once, with bounds checks, and accepts only
//! blobs the `fdt` crate's navigation is known to handle.

use crate::Error;

const MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;
const TOKEN_BEGIN_NODE: u32 = 1;
const TOKEN_END_NODE: u32 = 2;
const TOKEN_PROP: u32 = 3;
const TOKEN_NOP: u32 = 4;
const TOKEN_END: u32 = 9;
/// Deeper trees are refused (the `fdt` crate tracks at most 64 levels;
/// real trees are a handful deep).
pub(crate) const MAX_DEPTH: usize = 32;
/// More memory reservations than this are refused.
const MAX_RESERVATIONS: usize = 256;

/// The header fields the rest of the crate needs, all checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    /// Bytes of the whole blob.
    pub total: usize,
    /// Offset of the memory reservation block.
    pub reservations: usize,
}

pub(crate) fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

pub(crate) fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(be32(bytes, at)?) << 32 | u64::from(be32(bytes, at + 4)?))
}

/// The total size a header claims, if `first` (at least 8 bytes) starts a DTB.
pub fn total_size(first: &[u8]) -> Option<usize> {
    (be32(first, 0)? == MAGIC).then_some(be32(first, 4)? as usize)
}

fn range(blob_len: usize, offset: u32, len: u32) -> Option<(usize, usize)> {
    let start = offset as usize;
    let end = start.checked_add(len as usize)?;
    (end <= blob_len).then_some((start, end))
}

fn header_error(why: &'static str) -> Error {
    Error::BadHeader(why)
}

/// Squeeze NOP tokens out of the structure block, in place. Loaders edit
/// trees with libfdt, which turns deleted properties and nodes into NOPs;
/// the `fdt` crate cannot step over NOPs everywhere they may stand. No
/// offset into the structure block is stored anywhere, so dropping tokens
/// leaves the tree intact. Returns the header as `validate` does.
pub(crate) fn remove_nops(blob: &mut [u8]) -> Result<Header, Error> {
    check_header(blob)?;
    let field = |blob: &[u8], i: usize| be32(blob, i * 4).unwrap_or(0) as usize;
    let (start, len) = (field(blob, 2), field(blob, 9));
    let block = &mut blob[start..start + len];
    let (mut read, mut write) = (0usize, 0usize);
    while read + 4 <= block.len() {
        let token = be32(block, read).unwrap_or(TOKEN_END);
        let size = match token {
            TOKEN_NOP => {
                read += 4;
                continue;
            }
            TOKEN_BEGIN_NODE => {
                let Some(name) = c_str(block, read + 4) else {
                    break; // `validate` reports it
                };
                (4 + name.len() + 1).next_multiple_of(4)
            }
            TOKEN_PROP => match be32(block, read + 4) {
                Some(value) => (12 + value as usize).next_multiple_of(4),
                None => break,
            },
            _ => 4,
        };
        let end = (read + size).min(block.len());
        block.copy_within(read..end, write);
        write += end - read;
        read = end;
        if token == TOKEN_END {
            break;
        }
    }
    if write < len {
        let new_len = (write as u32).to_be_bytes();
        blob[36..40].copy_from_slice(&new_len);
    }
    validate(blob)
}

fn check_header(blob: &[u8]) -> Result<(), Error> {
    if blob.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    let field = |i: usize| be32(blob, i * 4).unwrap_or(0);
    if field(0) != MAGIC {
        return Err(Error::BadMagic(field(0)));
    }
    let total = field(1) as usize;
    if total > blob.len() {
        return Err(Error::Truncated);
    }
    if total < HEADER_LEN {
        return Err(header_error("total size is smaller than the header"));
    }
    if field(5) < 17 {
        return Err(header_error("format version is older than 17"));
    }
    range(total, field(2), field(9))
        .ok_or(header_error("structure block lies outside the blob"))?;
    if !(field(2) as usize).is_multiple_of(4) {
        return Err(header_error("structure block is not 4-byte aligned"));
    }
    Ok(())
}

/// Check the header, the reservation block and every structure token.
pub(crate) fn validate(blob: &[u8]) -> Result<Header, Error> {
    check_header(blob)?;
    let field = |i: usize| be32(blob, i * 4).unwrap_or(0);
    let total = field(1) as usize;
    let (s_start, s_end) = range(total, field(2), field(9))
        .ok_or(header_error("structure block lies outside the blob"))?;
    let (t_start, t_end) = range(total, field(3), field(8))
        .ok_or(header_error("strings block lies outside the blob"))?;
    let reservations = field(4) as usize;
    if !reservations.is_multiple_of(8) || reservations < HEADER_LEN {
        return Err(header_error("memory reservation block is misplaced"));
    }
    check_reservations(&blob[..total], reservations)?;
    check_structure(&blob[s_start..s_end], &blob[t_start..t_end])?;
    Ok(Header {
        total,
        reservations,
    })
}

fn check_reservations(blob: &[u8], start: usize) -> Result<(), Error> {
    for i in 0..MAX_RESERVATIONS {
        let at = start + i * 16;
        let (Some(address), Some(size)) = (be64(blob, at), be64(blob, at + 8)) else {
            return Err(header_error("memory reservation block runs past the blob"));
        };
        if address == 0 && size == 0 {
            return Ok(());
        }
    }
    Err(header_error("memory reservation block has no end"))
}

/// A NUL-terminated UTF-8 string starting at `at`.
pub(crate) fn c_str(bytes: &[u8], at: usize) -> Option<&str> {
    let rest = bytes.get(at..)?;
    let len = rest.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&rest[..len]).ok()
}

fn check_structure(block: &[u8], strings: &[u8]) -> Result<(), Error> {
    let fail = |offset: usize, why: &'static str| Err(Error::BadStructure { offset, why });
    let mut pos = 0usize;
    let mut depth = 0usize;
    let mut root_done = false;
    // Whether a child node has started at each level (properties must come first).
    let mut has_children = [false; MAX_DEPTH + 1];
    loop {
        let Some(token) = be32(block, pos) else {
            return fail(pos, "structure block ends without an END token");
        };
        match token {
            TOKEN_NOP if depth == 0 => pos += 4,
            TOKEN_NOP => return fail(pos, "NOP token inside a node (call remove_nops first)"),
            TOKEN_BEGIN_NODE => {
                if root_done {
                    return fail(pos, "more than one root node");
                }
                let Some(name) = c_str(block, pos + 4) else {
                    return fail(pos, "node name is not a NUL-terminated UTF-8 string");
                };
                if depth == 0 && !name.is_empty() {
                    return fail(pos, "the root node has a name");
                }
                if depth > 0 && name.is_empty() {
                    return fail(pos, "a node other than the root has no name");
                }
                has_children[depth] = true;
                depth += 1;
                if depth > MAX_DEPTH {
                    return fail(pos, "nodes nested too deeply");
                }
                has_children[depth] = false;
                pos = (pos + 4 + name.len() + 1).next_multiple_of(4);
            }
            TOKEN_PROP => {
                if depth == 0 {
                    return fail(pos, "property outside any node");
                }
                if has_children[depth] {
                    return fail(pos, "property after a child node");
                }
                let (Some(len), Some(name_offset)) = (be32(block, pos + 4), be32(block, pos + 8))
                else {
                    return fail(pos, "truncated property header");
                };
                let value_end = (pos + 12).checked_add(len as usize);
                if value_end.is_none_or(|end| end > block.len()) {
                    return fail(pos, "property value runs past the structure block");
                }
                if c_str(strings, name_offset as usize).is_none_or(str::is_empty) {
                    return fail(pos, "property name is not a string in the strings block");
                }
                pos = (pos + 12 + len as usize).next_multiple_of(4);
            }
            TOKEN_END_NODE => {
                if depth == 0 {
                    return fail(pos, "END_NODE without a node");
                }
                depth -= 1;
                root_done |= depth == 0;
                pos += 4;
            }
            TOKEN_END if depth == 0 && root_done => return Ok(()),
            TOKEN_END if depth == 0 => return fail(pos, "no root node"),
            TOKEN_END => return fail(pos, "END token inside a node"),
            _ => return fail(pos, "unknown token"),
        }
    }
}
