//! Mutated on-disk structures fed straight to the parsers: every call
//! returns (an error or a value) without panicking, hanging or allocating
//! absurd amounts.

use std::collections::BTreeMap;

use keel_zfs::dnode::{Dnode, object_type};
use keel_zfs::nvlist::{NvList, Value};
use keel_zfs::sa::{self, Attributes, SaTable};
use keel_zfs::zap::{self, ZapValue};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn mutate(&mut self, data: &mut [u8]) {
        for _ in 0..(self.next() % 8 + 1) {
            let at = (self.next() % data.len() as u64) as usize;
            data[at] = match self.next() % 4 {
                0 => 0,
                1 => 0xff,
                _ => self.next() as u8,
            };
        }
    }
}

#[test]
fn nvlists() {
    let disk = NvList::new()
        .with("type", Value::Str("disk".into()))
        .with("ashift", Value::U64(12));
    let list = NvList::new()
        .with("name", Value::Str("keel".into()))
        .with("vdev_tree", Value::List(disk.clone()))
        .with("children", Value::ListArray(vec![disk.clone(), disk]))
        .with("dtl", Value::U64Array(vec![1, 2, 3]));
    let packed = list.encode();
    let mut rng = Rng(1);
    for _ in 0..20_000 {
        let mut m = packed.clone();
        rng.mutate(&mut m);
        let _ = NvList::decode(&m);
    }
}

#[test]
fn dnodes() {
    let d = Dnode::new(
        object_type::PLAIN_FILE_CONTENTS,
        131072,
        object_type::SA,
        vec![3; 168],
    );
    let raw = d.to_bytes().unwrap();
    let mut rng = Rng(2);
    for _ in 0..20_000 {
        let mut m = raw.to_vec();
        rng.mutate(&mut m);
        if let Ok(d) = Dnode::parse(&m) {
            let _ = d.span_of_top_pointer();
            let _ = d.to_bytes();
        }
    }
}

#[test]
fn zaps_micro_and_fat() {
    let mut entries = BTreeMap::new();
    for i in 0..3000u64 {
        entries.insert(format!("name-{i}").into_bytes(), ZapValue::u64(i));
    }
    entries.insert(
        b"array".to_vec(),
        ZapValue {
            int_size: 2,
            ints: (0..20).collect(),
        },
    );
    let fat = zap::build::encode(9, &entries, true).unwrap();
    let small: BTreeMap<_, _> = entries
        .iter()
        .take(20)
        .map(|(k, v)| (k.clone(), v.clone()))
        .filter(|(_, v)| v.int_size == 8)
        .collect();
    let micro = zap::build::encode(9, &small, true).unwrap();
    let mut rng = Rng(3);
    for image in [fat, micro] {
        for _ in 0..300 {
            let mut blocks = image.blocks.clone();
            let which = (rng.next() % blocks.len() as u64) as usize;
            rng.mutate(&mut blocks[which]);
            let mut source = |blkid: u64| {
                blocks
                    .get(blkid as usize)
                    .cloned()
                    .ok_or_else(|| keel_zfs::Error::corrupt("no such block"))
            };
            let _ = zap::read::list(&mut source);
            let _ = zap::read::lookup(&mut source, b"name-17");
        }
    }
}

#[test]
fn system_attributes_and_znodes() {
    let registry: Vec<(Vec<u8>, ZapValue)> = sa::registry_entries()
        .into_iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), ZapValue::u64(v)))
        .collect();
    let layouts = vec![(
        b"2".to_vec(),
        ZapValue {
            int_size: 2,
            ints: sa::LAYOUT_DEFAULT.iter().map(|&a| u64::from(a)).collect(),
        },
    )];
    let table = SaTable::from_zaps(&registry, &layouts).unwrap();
    let bonus = sa::encode_bonus(
        &Attributes {
            mode: 0o100644,
            size: 5,
            ..Default::default()
        },
        320,
    )
    .unwrap();
    let mut rng = Rng(4);
    for _ in 0..20_000 {
        let mut m = bonus.clone();
        rng.mutate(&mut m);
        let mut values = BTreeMap::new();
        if table.decode(&m, &mut values).is_ok() {
            let _ = table.attributes_from(&values);
        }
        let mut z = vec![0u8; 320];
        rng.mutate(&mut z);
        let _ = sa::decode_znode(&z);
    }
}
