//! Name-value lists in XDR encoding, as stored in vdev labels and the MOS
//! "config" object: a 4-byte stream header, then the list (version, flags,
//! pairs, a zero terminator). XDR is big-endian and 4-byte aligned.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};

/// One value. Only the types pool configurations use are supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A flag with no value (`DATA_TYPE_BOOLEAN`).
    Flag,
    /// `DATA_TYPE_BOOLEAN_VALUE`.
    Bool(bool),
    /// `DATA_TYPE_UINT64`.
    U64(u64),
    /// `DATA_TYPE_STRING`.
    Str(String),
    /// `DATA_TYPE_UINT64_ARRAY`.
    U64Array(Vec<u64>),
    /// `DATA_TYPE_NVLIST`.
    List(NvList),
    /// `DATA_TYPE_NVLIST_ARRAY`.
    ListArray(Vec<NvList>),
    /// Any other type: kept as its type number so decoding goes on.
    Other(u32),
}

const TYPE_BOOLEAN: u32 = 1;
const TYPE_UINT64: u32 = 8;
const TYPE_STRING: u32 = 9;
const TYPE_UINT64_ARRAY: u32 = 16;
const TYPE_NVLIST: u32 = 19;
const TYPE_NVLIST_ARRAY: u32 = 20;
const TYPE_BOOLEAN_VALUE: u32 = 21;

const ENCODE_XDR: u8 = 1;
const NV_UNIQUE_NAME: u32 = 1;
/// Deepest nesting accepted when decoding (labels nest three levels).
const MAX_DEPTH: usize = 16;

/// An ordered list of name-value pairs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NvList {
    /// The pairs, in order.
    pub pairs: Vec<(String, Value)>,
}

impl NvList {
    /// An empty list.
    pub fn new() -> NvList {
        NvList::default()
    }

    /// Append a pair (builder style).
    pub fn with(mut self, name: &str, value: Value) -> NvList {
        self.pairs.push((name.into(), value));
        self
    }

    /// The value named `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The u64 named `name`.
    pub fn u64(&self, name: &str) -> Option<u64> {
        match self.get(name) {
            Some(Value::U64(v)) => Some(*v),
            _ => None,
        }
    }

    /// The string named `name`.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The nested list named `name`.
    pub fn list(&self, name: &str) -> Option<&NvList> {
        match self.get(name) {
            Some(Value::List(l)) => Some(l),
            _ => None,
        }
    }

    /// The list array named `name`.
    pub fn lists(&self, name: &str) -> Option<&[NvList]> {
        match self.get(name) {
            Some(Value::ListArray(l)) => Some(l),
            _ => None,
        }
    }

    /// Encode as a packed XDR stream (stream header included).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = alloc::vec![ENCODE_XDR, 1, 0, 0];
        self.encode_body(&mut out);
        out
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        put32(out, 0); // nvl_version
        put32(out, NV_UNIQUE_NAME);
        for (name, value) in &self.pairs {
            let start = out.len();
            put32(out, 0); // encoded size, patched below
            put32(out, decoded_size(name, value));
            put_string(out, name);
            let (ty, nelem) = match value {
                Value::Flag => (TYPE_BOOLEAN, 0),
                Value::Bool(_) => (TYPE_BOOLEAN_VALUE, 1),
                Value::U64(_) => (TYPE_UINT64, 1),
                Value::Str(_) => (TYPE_STRING, 1),
                Value::U64Array(a) => (TYPE_UINT64_ARRAY, a.len() as u32),
                Value::List(_) => (TYPE_NVLIST, 1),
                Value::ListArray(a) => (TYPE_NVLIST_ARRAY, a.len() as u32),
                Value::Other(t) => (*t, 0),
            };
            put32(out, ty);
            put32(out, nelem);
            match value {
                Value::Flag | Value::Other(_) => {}
                Value::Bool(b) => put32(out, u32::from(*b)),
                Value::U64(v) => out.extend_from_slice(&v.to_be_bytes()),
                Value::Str(s) => put_string(out, s),
                Value::U64Array(a) => {
                    put32(out, a.len() as u32);
                    for v in a {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
                Value::List(l) => l.encode_body(out),
                Value::ListArray(a) => a.iter().for_each(|l| l.encode_body(out)),
            }
            let size = (out.len() - start) as u32;
            out[start..start + 4].copy_from_slice(&size.to_be_bytes());
        }
        put32(out, 0);
        put32(out, 0);
    }

    /// Decode a packed XDR stream (stream header included).
    pub fn decode(buf: &[u8]) -> Result<NvList> {
        match buf.first() {
            Some(&ENCODE_XDR) => {}
            Some(_) => return Err(Error::unsupported("nvlist not in XDR encoding")),
            None => return Err(Error::corrupt("empty nvlist")),
        }
        let mut r = Reader { buf, at: 4 };
        r.list(0)
    }
}

/// The size the pair occupies in libnvpair's native form; the decoder
/// there checks it, so it must be exact.
fn decoded_size(name: &str, value: &Value) -> u32 {
    const PAIR_HEADER: usize = 16;
    const LIST_STRUCT: usize = 24;
    let align8 = |n: usize| (n + 7) & !7;
    let value_size = match value {
        Value::Flag | Value::Other(_) => 0,
        Value::Bool(_) => 4,
        Value::U64(_) => 8,
        Value::Str(s) => s.len() + 1,
        Value::U64Array(a) => 8 * a.len(),
        Value::List(_) => LIST_STRUCT,
        Value::ListArray(a) => 8 * a.len() + a.len() * align8(LIST_STRUCT),
    };
    (align8(PAIR_HEADER + name.len() + 1) + align8(value_size)) as u32
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    put32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> Result<u32> {
        let b = self
            .buf
            .get(self.at..self.at + 4)
            .ok_or_else(|| Error::corrupt("nvlist ends early"))?;
        self.at += 4;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let hi = u64::from(self.u32()?);
        let lo = u64::from(self.u32()?);
        Ok((hi << 32) | lo)
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u32()? as usize;
        let end = self
            .at
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| Error::corrupt("nvlist string beyond the buffer"))?;
        let s = core::str::from_utf8(&self.buf[self.at..end])
            .map_err(|_| Error::corrupt("nvlist string is not UTF-8"))?;
        self.at = (end + 3) & !3;
        Ok(s.into())
    }

    fn list(&mut self, depth: usize) -> Result<NvList> {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt("nvlist nested too deeply"));
        }
        let _version = self.u32()?;
        let _flags = self.u32()?;
        let mut list = NvList::new();
        loop {
            let start = self.at;
            let encoded = self.u32()? as usize;
            let decoded = self.u32()?;
            if encoded == 0 && decoded == 0 {
                return Ok(list);
            }
            let end = start
                .checked_add(encoded)
                .filter(|&e| e <= self.buf.len() && encoded >= 8)
                .ok_or_else(|| Error::corrupt("nvlist pair beyond the buffer"))?;
            let name = self.string()?;
            let ty = self.u32()?;
            let nelem = self.u32()? as usize;
            let value = match ty {
                TYPE_BOOLEAN => Value::Flag,
                TYPE_BOOLEAN_VALUE => Value::Bool(self.u32()? != 0),
                TYPE_UINT64 => Value::U64(self.u64()?),
                TYPE_STRING => Value::Str(self.string()?),
                TYPE_UINT64_ARRAY => {
                    let n = self.u32()? as usize;
                    if n > self.buf.len() / 8 {
                        return Err(Error::corrupt("nvlist array longer than the buffer"));
                    }
                    let mut a = Vec::with_capacity(n);
                    for _ in 0..n {
                        a.push(self.u64()?);
                    }
                    Value::U64Array(a)
                }
                TYPE_NVLIST => Value::List(self.list(depth + 1)?),
                TYPE_NVLIST_ARRAY => {
                    if nelem > self.buf.len() / 16 {
                        return Err(Error::corrupt("nvlist array longer than the buffer"));
                    }
                    let mut a = Vec::with_capacity(nelem);
                    for _ in 0..nelem {
                        a.push(self.list(depth + 1)?);
                    }
                    Value::ListArray(a)
                }
                other => Value::Other(other),
            };
            // Nested lists are encoded inline after the pair header; every
            // other type ends where the encoded size says.
            if !matches!(ty, TYPE_NVLIST | TYPE_NVLIST_ARRAY) {
                self.at = end;
            }
            list.pairs.push((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> NvList {
        let disk = NvList::new()
            .with("type", Value::Str("disk".into()))
            .with("ashift", Value::U64(12));
        NvList::new()
            .with("version", Value::U64(5000))
            .with("name", Value::Str("keel".into()))
            .with("features_for_read", Value::List(NvList::new()))
            .with("vdev_tree", Value::List(disk.clone()))
            .with("children", Value::ListArray(vec![disk]))
            .with("dtl", Value::U64Array(vec![1, 2, 3]))
            .with("flag", Value::Flag)
            .with("yes", Value::Bool(true))
    }

    #[test]
    fn round_trips() {
        let list = sample();
        let packed = list.encode();
        assert_eq!(NvList::decode(&packed).unwrap(), list);
        assert_eq!(
            NvList::decode(&packed)
                .unwrap()
                .list("vdev_tree")
                .unwrap()
                .u64("ashift"),
            Some(12)
        );
    }

    #[test]
    fn sizes_match_libnvpair() {
        // "version" (7 chars): 16 + 8 rounded to 24, plus 8 for the value.
        assert_eq!(decoded_size("version", &Value::U64(1)), 32);
        // Encoded: sizes 8 + name 4+8 + type/nelem 8 + value 8 = 36.
        let packed = NvList::new().with("version", Value::U64(1)).encode();
        assert_eq!(u32::from_be_bytes(packed[12..16].try_into().unwrap()), 36);
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error() {
        let packed = sample().encode();
        for cut in [0, 3, 10, 30, packed.len() / 2, packed.len() - 1] {
            assert!(NvList::decode(&packed[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = packed.clone();
        bad[13] = 0xff; // absurd encoded size
        assert!(NvList::decode(&bad).is_err());
    }
}
