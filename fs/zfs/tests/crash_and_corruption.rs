//! Power cuts and bit rot. A commit cut short after any number of device
//! writes must leave a pool that imports with exactly the old or exactly
//! the new contents; flipped bytes must give checksum errors (or a
//! fallback to another label), never wrong data or a panic.

use keel_zfs::read::Pool;
use keel_zfs::sa::Timestamp;
use keel_zfs::write::{CreateOptions, NewKind, PoolWriter};
use keel_zfs::{Error, MemoryDevice};

fn options() -> CreateOptions {
    CreateOptions {
        name: "crash".into(),
        ashift: 12,
        seed: 7,
        now: Timestamp {
            secs: 1_700_000_000,
            nanos: 0,
        },
    }
}

/// Every file of the root filesystem: path → contents.
fn snapshot(dev: MemoryDevice) -> Vec<(String, Vec<u8>)> {
    let mut pool = Pool::import(dev).expect("pool imports after the cut");
    let ds = pool.root_dataset().unwrap();
    let fs = pool.filesystem(&ds).unwrap();
    let mut out = Vec::new();
    let mut stack = vec![(fs.root, String::new())];
    while let Some((dir, path)) = stack.pop() {
        for e in fs.read_dir(&mut pool, dir).unwrap() {
            let p = format!("{path}/{}", String::from_utf8_lossy(&e.name));
            match e.kind {
                keel_zfs::read::FileKind::Directory => stack.push((e.object, p.clone())),
                _ => out.push((
                    p.clone(),
                    fs.read_all(&mut pool, e.object).unwrap_or_default(),
                )),
            }
            out.push((p, Vec::new()));
        }
    }
    out.sort();
    out
}

fn base_pool() -> PoolWriter<MemoryDevice> {
    let mut w = PoolWriter::create_pool(MemoryDevice::new(64 << 20), &options()).unwrap();
    let root = w.root();
    for i in 0..20 {
        let f = w
            .create(
                root,
                format!("old-{i}").as_bytes(),
                NewKind::File,
                0o644,
                0,
                0,
            )
            .unwrap();
        w.write(f, 0, &vec![i as u8; 10_000 + i * 3000]).unwrap();
    }
    w.commit().unwrap();
    w
}

fn change(w: &mut PoolWriter<MemoryDevice>) {
    let root = w.root();
    for i in 0..20 {
        let name = format!("old-{i}");
        match i % 4 {
            0 => w.unlink(root, name.as_bytes()).unwrap(),
            1 => {
                let f = w.lookup(root, name.as_bytes()).unwrap();
                w.write(f, 5_000, &vec![0xee; 200_000]).unwrap();
            }
            2 => w
                .rename(root, name.as_bytes(), root, format!("new-{i}").as_bytes())
                .unwrap(),
            _ => {
                let f = w.lookup(root, name.as_bytes()).unwrap();
                w.truncate(f, 100).unwrap();
            }
        }
    }
    let d = w
        .create(root, b"dir", NewKind::Directory, 0o755, 0, 0)
        .unwrap();
    for i in 0..300 {
        let f = w
            .create(
                d,
                format!("small-{i}").as_bytes(),
                NewKind::File,
                0o644,
                0,
                0,
            )
            .unwrap();
        w.write(f, 0, format!("{i}").as_bytes()).unwrap();
    }
}

#[test]
fn a_cut_at_any_write_leaves_old_or_new() {
    let base = base_pool();
    let before = base.into_device();
    let old = snapshot(before.clone());

    // The complete commit, to learn its write count and the new state.
    let mut w = PoolWriter::open(before.clone()).unwrap();
    change(&mut w);
    let writes_before = w_writes(&mut w);
    w.commit().unwrap();
    let total = w_writes(&mut w) - writes_before;
    let new = snapshot(w.into_device());
    assert_ne!(old, new);

    let mut saw_old = 0;
    let mut saw_new = 0;
    let step = (total / 40).max(1);
    for cut in
        (0..=total)
            .step_by(step as usize)
            .chain([total / 2, total - 1, total - 2, total - 3])
    {
        let mut dev = before.clone();
        dev.writes = 0;
        let mut w = PoolWriter::open(dev).unwrap();
        change(&mut w);
        let start = w_writes(&mut w);
        set_cut(&mut w, start + cut);
        // After the cut the writer may read back blocks that never reached
        // the device and fail; a real power cut stops it anyway. Only the
        // device's contents matter.
        let _ = w.commit();
        let mut dev = w.into_device();
        dev.drop_writes_from = None;
        if cut == total / 2 || cut == total - 2 {
            dump(&format!("crash-cut-{cut}-of-{total}"), &dev);
        }
        let got = snapshot(dev);
        if got == old {
            saw_old += 1;
        } else if got == new {
            saw_new += 1;
        } else {
            panic!("cut after {cut} of {total} writes left a mixed state");
        }
    }
    assert!(saw_old > 0 && saw_new > 0, "old {saw_old}, new {saw_new}");
}

/// With `KEEL_ZFS_DUMP=dir`, leave images in `dir` for zdb.
fn dump(name: &str, dev: &MemoryDevice) {
    if let Some(dir) = std::env::var_os("KEEL_ZFS_DUMP") {
        let dir = std::path::Path::new(&dir).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pool.img"), &dev.bytes).unwrap();
    }
}

fn w_writes(w: &mut PoolWriter<MemoryDevice>) -> u64 {
    w.device_mut().writes
}

fn set_cut(w: &mut PoolWriter<MemoryDevice>, at: u64) {
    w.device_mut().drop_writes_from = Some(at);
}

fn find(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn flipped_data_is_a_checksum_error_for_that_file_only() {
    let mut w = PoolWriter::create_pool(MemoryDevice::new(64 << 20), &options()).unwrap();
    let root = w.root();
    let a = w.create(root, b"a", NewKind::File, 0o644, 0, 0).unwrap();
    w.write(a, 0, &[0x5a; 4096]).unwrap();
    let b = w.create(root, b"b", NewKind::File, 0o644, 0, 0).unwrap();
    w.write(b, 0, b"unharmed").unwrap();
    let big = w.create(root, b"big", NewKind::File, 0o644, 0, 0).unwrap();
    let pattern: Vec<u8> = (0..600_000u32).map(|i| (i % 241) as u8 | 1).collect();
    w.write(big, 0, &pattern).unwrap();
    w.commit().unwrap();
    let mut dev = w.into_device();
    let hits = find(&dev.bytes, &[0x5a; 4096]);
    assert_eq!(hits.len(), 1);
    dev.bytes[hits[0] + 100] ^= 0x01;

    let mut pool = Pool::import(dev).unwrap();
    let ds = pool.root_dataset().unwrap();
    let fs = pool.filesystem(&ds).unwrap();
    let a = fs.resolve(&mut pool, "a", true).unwrap();
    match fs.read_all(&mut pool, a) {
        Err(Error::Checksum { bp }) => {
            assert_eq!(bp.lsize(), 4096);
            assert_eq!(Error::Checksum { bp }.errno(), 5);
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    let b = fs.resolve(&mut pool, "b", true).unwrap();
    assert_eq!(fs.read_all(&mut pool, b).unwrap(), b"unharmed");
    let big = fs.resolve(&mut pool, "big", true).unwrap();
    assert_eq!(fs.read_all(&mut pool, big).unwrap(), pattern);
}

#[test]
fn flipped_indirect_block_fails_reads_beyond_it() {
    let mut w = PoolWriter::create_pool(MemoryDevice::new(64 << 20), &options()).unwrap();
    let root = w.root();
    let big = w.create(root, b"big", NewKind::File, 0o644, 0, 0).unwrap();
    let pattern: Vec<u8> = (0..600_000u32).map(|i| (i % 241) as u8 | 1).collect();
    w.write(big, 0, &pattern).unwrap();
    w.commit().unwrap();
    let mut pool = Pool::import(w.into_device()).unwrap();
    let ds = pool.root_dataset().unwrap();
    let fs = pool.filesystem(&ds).unwrap();
    let obj = fs.resolve(&mut pool, "big", true).unwrap();
    let dnode = fs.dnode(&mut pool, obj).unwrap();
    assert_eq!(dnode.levels, 2);
    let at = keel_zfs::label::ALLOCATABLE_START + dnode.blkptrs[0].dva(0).offset;
    let mut dev = pool.into_device();
    dev.bytes[at as usize + 7] ^= 0x80;
    let mut pool = Pool::import(dev).unwrap();
    let ds = pool.root_dataset().unwrap();
    let fs = pool.filesystem(&ds).unwrap();
    assert!(matches!(
        fs.read_all(&mut pool, obj),
        Err(Error::Checksum { .. })
    ));
}

#[test]
fn damaged_labels_fall_back_to_the_others() {
    let w = base_pool();
    let old = snapshot(w.into_device());
    let w = base_pool();
    let mut dev = w.into_device();
    let size = dev.bytes.len() as u64;
    // Wreck labels 0 and 3 entirely and label 1's configuration.
    for index in [0usize, 3] {
        let at = keel_zfs::label::label_offset(size, index) as usize;
        dev.bytes[at..at + 256 * 1024].fill(0xa5);
    }
    let at = (keel_zfs::label::label_offset(size, 1) + keel_zfs::label::CONFIG_OFFSET) as usize;
    dev.bytes[at + 64] ^= 0xff;
    assert_eq!(snapshot(dev.clone()), old);
    // With every label gone the pool does not import, with a clear error.
    for index in [1usize, 2] {
        let at = keel_zfs::label::label_offset(size, index) as usize;
        dev.bytes[at..at + 256 * 1024].fill(0);
    }
    match Pool::import(dev) {
        Err(Error::Corrupt(why)) => assert!(why.contains("label"), "{why}"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("imported without labels"),
    }
}

#[test]
fn random_damage_never_panics_or_hangs() {
    let w = base_pool();
    let clean = w.into_device();
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Damage the metadata-rich areas: labels and the first megabytes.
    for _ in 0..300 {
        let mut dev = clean.clone();
        for _ in 0..(next() % 64 + 1) {
            let region = next() % 3;
            let at = match region {
                0 => next() % (512 * 1024),
                1 => (4 << 20) + next() % (2 << 20),
                _ => dev.bytes.len() as u64 - 1 - next() % (512 * 1024),
            };
            dev.bytes[at as usize] ^= (next() % 255 + 1) as u8;
        }
        let Ok(mut pool) = Pool::import(dev) else {
            continue;
        };
        let Ok(ds) = pool.root_dataset() else {
            continue;
        };
        let Ok(fs) = pool.filesystem(&ds) else {
            continue;
        };
        let Ok(entries) = fs.read_dir(&mut pool, fs.root) else {
            continue;
        };
        for e in entries.iter().take(50) {
            let mut buf = vec![0u8; 70_000];
            let _ = fs.read(&mut pool, e.object, 0, &mut buf);
            let _ = fs.stat(&mut pool, e.object);
        }
    }
}
