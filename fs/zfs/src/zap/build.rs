//! Encoding a complete entry set as a microzap (when every value is one
//! u64, names are short and there are few) or a fatzap (leaves split by
//! hash prefix until each fits, pointer table embedded in the header).

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use super::fat::{self, LeafGeometry, entry, header, leaf};
use super::{
    BLOCK_HEADER, BLOCK_LEAF, BLOCK_MICRO, LEAF_MAGIC, MICRO_ENTRY, MICRO_MAX_BLOCK,
    MICRO_NAME_MAX, NAME_MAX, ZAP_MAGIC, ZapValue, hash,
};
use crate::bytes::{put_u16, put_u32, put_u64};
use crate::error::{Error, Result};

/// An encoded ZAP: its block size and blocks (block 0 first).
#[derive(Debug, Clone)]
pub struct ZapImage {
    /// Size of every block.
    pub block_size: u32,
    /// The blocks.
    pub blocks: Vec<Vec<u8>>,
    /// Whether this is a microzap.
    pub micro: bool,
}

/// Block shifts tried for fatzaps: 16 KiB (OpenZFS's default), then 128 KiB.
const FAT_SHIFTS: [u32; 2] = [14, 17];

/// Encode `entries`. `allow_micro` is false once an object has been a
/// fatzap (OpenZFS never turns a fatzap back into a microzap).
pub fn encode(
    salt: u64,
    entries: &BTreeMap<Vec<u8>, ZapValue>,
    allow_micro: bool,
) -> Result<ZapImage> {
    for (name, value) in entries {
        if name.is_empty() || name.len() > NAME_MAX || name.contains(&0) {
            return Err(Error::InvalidName);
        }
        if value.ints.is_empty() || value.byte_len() > 8192 {
            return Err(Error::InvalidArgument("ZAP value size".into()));
        }
    }
    let fits_micro = entries.len() < MICRO_MAX_BLOCK / MICRO_ENTRY
        && entries
            .iter()
            .all(|(n, v)| n.len() <= MICRO_NAME_MAX && v.as_u64().is_some());
    if allow_micro && fits_micro {
        return Ok(encode_micro(salt, entries));
    }
    for shift in FAT_SHIFTS {
        if let Some(image) = encode_fat(salt, entries, shift) {
            return Ok(image);
        }
    }
    Err(Error::NoSpace)
}

/// Collision differentiators: entries whose hashes are equal get 0, 1, 2…
fn collision_numbers(hashes: &[u64]) -> Vec<u32> {
    let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
    hashes
        .iter()
        .map(|h| {
            let n = seen.entry(*h).or_insert(0);
            *n += 1;
            *n - 1
        })
        .collect()
}

fn encode_micro(salt: u64, entries: &BTreeMap<Vec<u8>, ZapValue>) -> ZapImage {
    let needed = MICRO_ENTRY * (entries.len() + 1);
    let size = needed.next_power_of_two().max(512);
    let mut block = vec![0u8; size];
    put_u64(&mut block, 0, BLOCK_MICRO);
    put_u64(&mut block, 8, salt);
    let hashes: Vec<u64> = entries.keys().map(|n| hash(salt, n)).collect();
    let cds = collision_numbers(&hashes);
    for (i, ((name, value), cd)) in entries.iter().zip(cds).enumerate() {
        let at = MICRO_ENTRY * (i + 1);
        put_u64(&mut block, at, value.ints[0]);
        put_u32(&mut block, at + 8, cd);
        block[at + 14..at + 14 + name.len()].copy_from_slice(name);
    }
    ZapImage {
        block_size: size as u32,
        blocks: vec![block],
        micro: true,
    }
}

struct Item<'a> {
    name: &'a [u8],
    value: &'a ZapValue,
    hash: u64,
    cd: u32,
    chunks: usize,
}

/// Split `items` (all sharing `prefix` of `prefix_len` bits) into leaves.
fn split<'a>(
    items: Vec<&'a Item<'a>>,
    prefix: u64,
    prefix_len: u32,
    geo: LeafGeometry,
    max_len: u32,
    out: &mut Vec<(u64, u32, Vec<&'a Item<'a>>)>,
) -> bool {
    let chunks: usize = items.iter().map(|i| i.chunks).sum();
    if chunks <= geo.chunks() {
        out.push((prefix, prefix_len, items));
        return true;
    }
    if prefix_len >= max_len {
        return false;
    }
    let bit = 63 - prefix_len;
    let (ones, zeros): (Vec<_>, Vec<_>) = items.into_iter().partition(|i| i.hash >> bit & 1 == 1);
    split(zeros, prefix << 1, prefix_len + 1, geo, max_len, out)
        && split(ones, (prefix << 1) | 1, prefix_len + 1, geo, max_len, out)
}

fn encode_fat(
    salt: u64,
    entries: &BTreeMap<Vec<u8>, ZapValue>,
    block_shift: u32,
) -> Option<ZapImage> {
    let geo = LeafGeometry { block_shift };
    let block_size = 1usize << block_shift;
    let table_shift = fat::embedded_table_shift(block_shift);
    let hashes: Vec<u64> = entries.keys().map(|n| hash(salt, n)).collect();
    let cds = collision_numbers(&hashes);
    let items: Vec<Item<'_>> = entries
        .iter()
        .zip(hashes.iter().zip(cds))
        .map(|((name, value), (&hash, cd))| Item {
            name,
            value,
            hash,
            cd,
            chunks: fat::entry_chunks(name.len(), value.byte_len()),
        })
        .collect();
    let mut leaves = Vec::new();
    if !split(items.iter().collect(), 0, 0, geo, table_shift, &mut leaves) {
        return None;
    }

    let mut head = vec![0u8; block_size];
    put_u64(&mut head, header::BLOCK_TYPE, BLOCK_HEADER);
    put_u64(&mut head, header::MAGIC, ZAP_MAGIC);
    put_u64(&mut head, header::PTRTBL_SHIFT, u64::from(table_shift));
    put_u64(&mut head, header::FREEBLK, leaves.len() as u64 + 1);
    put_u64(&mut head, header::NUM_LEAFS, leaves.len() as u64);
    put_u64(&mut head, header::NUM_ENTRIES, entries.len() as u64);
    put_u64(&mut head, header::SALT, salt);
    let mut blocks = vec![head];
    for (leaf_index, (prefix, prefix_len, items)) in leaves.iter().enumerate() {
        let blkid = leaf_index as u64 + 1;
        let span = table_shift - prefix_len;
        let first = (*prefix << span) as usize;
        for slot in first..first + (1usize << span) {
            put_u64(&mut blocks[0], block_size / 2 + slot * 8, blkid);
        }
        blocks.push(encode_leaf(geo, *prefix, *prefix_len, items));
    }
    Some(ZapImage {
        block_size: block_size as u32,
        blocks,
        micro: false,
    })
}

fn write_array(block: &mut [u8], geo: LeafGeometry, first: usize, bytes: &[u8]) {
    let n = bytes.len().div_ceil(fat::ARRAY_BYTES).max(1);
    for k in 0..n {
        let at = geo.chunk_offset(first + k);
        block[at] = fat::CHUNK_ARRAY;
        let part = &bytes[(k * fat::ARRAY_BYTES).min(bytes.len())
            ..((k + 1) * fat::ARRAY_BYTES).min(bytes.len())];
        block[at + 1..at + 1 + part.len()].copy_from_slice(part);
        let next = if k + 1 == n {
            fat::CHAIN_END
        } else {
            (first + k + 1) as u16
        };
        put_u16(block, at + 22, next);
    }
}

fn encode_leaf(geo: LeafGeometry, prefix: u64, prefix_len: u32, items: &[&Item<'_>]) -> Vec<u8> {
    let mut block = vec![0u8; 1 << geo.block_shift];
    put_u64(&mut block, leaf::BLOCK_TYPE, BLOCK_LEAF);
    put_u64(&mut block, leaf::PREFIX, prefix);
    put_u32(&mut block, leaf::MAGIC, LEAF_MAGIC);
    put_u16(&mut block, leaf::NENTRIES, items.len() as u16);
    put_u16(&mut block, leaf::PREFIX_LEN, prefix_len as u16);
    for slot in 0..geo.hash_entries() {
        put_u16(&mut block, fat::LEAF_HEADER + 2 * slot, fat::CHAIN_END);
    }
    let mut next_chunk = 0usize;
    for item in items {
        let at_chunk = next_chunk;
        let mut name = item.name.to_vec();
        name.push(0);
        let name_chunks = name.len().div_ceil(fat::ARRAY_BYTES);
        let size = usize::from(item.value.int_size);
        let mut value = Vec::with_capacity(item.value.byte_len());
        for v in &item.value.ints {
            value.extend_from_slice(&v.to_be_bytes()[8 - size..]);
        }
        let at = geo.chunk_offset(at_chunk);
        block[at] = fat::CHUNK_ENTRY;
        block[at + entry::VALUE_INTLEN] = item.value.int_size;
        put_u16(&mut block, at + entry::NAME_CHUNK, (at_chunk + 1) as u16);
        put_u16(&mut block, at + entry::NAME_NUMINTS, name.len() as u16);
        put_u16(
            &mut block,
            at + entry::VALUE_CHUNK,
            (at_chunk + 1 + name_chunks) as u16,
        );
        put_u16(
            &mut block,
            at + entry::VALUE_NUMINTS,
            item.value.ints.len() as u16,
        );
        put_u32(&mut block, at + entry::CD, item.cd);
        put_u64(&mut block, at + entry::HASH, item.hash);
        // Push onto the front of the hash chain.
        let slot_at = fat::LEAF_HEADER + 2 * geo.hash_slot(item.hash, prefix_len);
        let head = u16::from_le_bytes([block[slot_at], block[slot_at + 1]]);
        put_u16(&mut block, at + entry::NEXT, head);
        put_u16(&mut block, slot_at, at_chunk as u16);
        write_array(&mut block, geo, at_chunk + 1, &name);
        write_array(&mut block, geo, at_chunk + 1 + name_chunks, &value);
        next_chunk += item.chunks;
    }
    let free = geo.chunks() - next_chunk;
    for i in next_chunk..geo.chunks() {
        let at = geo.chunk_offset(i);
        block[at] = fat::CHUNK_FREE;
        let next = if i + 1 == geo.chunks() {
            fat::CHAIN_END
        } else {
            (i + 1) as u16
        };
        put_u16(&mut block, at + 22, next);
    }
    put_u16(&mut block, leaf::NFREE, free as u16);
    let freelist = if free == 0 {
        fat::CHAIN_END
    } else {
        next_chunk as u16
    };
    put_u16(&mut block, leaf::FREELIST, freelist);
    block
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zap::read;
    use alloc::format;

    fn source(image: &ZapImage) -> impl FnMut(u64) -> Result<Vec<u8>> + '_ {
        move |blkid| {
            image
                .blocks
                .get(blkid as usize)
                .cloned()
                .ok_or(Error::corrupt("no such block"))
        }
    }

    #[test]
    fn small_u64_maps_become_microzaps() {
        let mut entries = BTreeMap::new();
        for i in 0..40u64 {
            entries.insert(format!("file{i}").into_bytes(), ZapValue::u64(i + 100));
        }
        let image = encode(0x1234, &entries, true).unwrap();
        assert!(image.micro);
        assert_eq!(image.block_size, 4096);
        let listed = read::list(&mut source(&image)).unwrap();
        assert_eq!(listed.len(), 40);
        assert_eq!(
            read::lookup(&mut source(&image), b"file7").unwrap(),
            Some(ZapValue::u64(107))
        );
        assert_eq!(read::lookup(&mut source(&image), b"nope").unwrap(), None);
    }

    #[test]
    fn arrays_and_big_maps_become_fatzaps_that_read_back() {
        let mut entries = BTreeMap::new();
        entries.insert(
            b"layout".to_vec(),
            ZapValue {
                int_size: 2,
                ints: (0..15).collect(),
            },
        );
        for i in 0..20_000u64 {
            entries.insert(
                format!("entry-number-{i:06}").into_bytes(),
                ZapValue::u64(i),
            );
        }
        let image = encode(0x9876_5432, &entries, true).unwrap();
        assert!(!image.micro);
        assert!(image.blocks.len() > 20);
        let listed = read::list(&mut source(&image)).unwrap();
        assert_eq!(listed.len(), entries.len());
        for probe in [0u64, 1, 9999, 19_999] {
            let name = format!("entry-number-{probe:06}");
            assert_eq!(
                read::lookup(&mut source(&image), name.as_bytes()).unwrap(),
                Some(ZapValue::u64(probe))
            );
        }
        assert_eq!(
            read::lookup(&mut source(&image), b"layout")
                .unwrap()
                .unwrap()
                .ints
                .len(),
            15
        );
    }

    #[test]
    fn a_hundred_thousand_entries_fit() {
        let mut entries = BTreeMap::new();
        for i in 0..100_000u64 {
            entries.insert(
                format!("f{i}").into_bytes(),
                ZapValue::u64((8 << 60) | (i + 10)),
            );
        }
        let image = encode(77, &entries, true).unwrap();
        assert_eq!(read::list(&mut source(&image)).unwrap().len(), 100_000);
        assert_eq!(
            read::lookup(&mut source(&image), b"f54321").unwrap(),
            Some(ZapValue::u64((8 << 60) | 54331))
        );
    }

    #[test]
    fn corrupt_blocks_give_errors() {
        let mut entries = BTreeMap::new();
        for i in 0..3000u64 {
            entries.insert(format!("name{i}").into_bytes(), ZapValue::u64(i));
        }
        let mut image = encode(5, &entries, true).unwrap();
        assert!(!image.micro);
        // Scribble over a leaf.
        for b in image.blocks[1].iter_mut().skip(40).step_by(7) {
            *b = 0xee;
        }
        let _ = read::list(&mut source(&image)); // must not panic
        image.blocks[0][8] ^= 1;
        assert!(read::list(&mut source(&image)).is_err());
    }
}
