//! The writer against the reader: pools built in memory are imported and
//! read back, across several transaction groups and every operation.

use keel_zfs::MemoryDevice;
use keel_zfs::read::{FileKind, Pool};
use keel_zfs::sa::Timestamp;
use keel_zfs::write::{CreateOptions, NewKind, PoolWriter};

fn options() -> CreateOptions {
    CreateOptions {
        name: "keel".into(),
        ashift: 12,
        seed: 42,
        now: Timestamp {
            secs: 1_700_000_000,
            nanos: 0,
        },
    }
}

fn read_path(pool: &mut Pool<MemoryDevice>, path: &str) -> Vec<u8> {
    let ds = pool.root_dataset().unwrap();
    let fs = pool.filesystem(&ds).unwrap();
    let object = fs.resolve(pool, path, true).unwrap();
    fs.read_all(pool, object).unwrap()
}

#[test]
fn a_new_pool_imports_and_reads_back() {
    let mut w = PoolWriter::create_pool(MemoryDevice::new(64 << 20), &options()).unwrap();
    let root = w.root();
    let etc = w
        .create(root, b"etc", NewKind::Directory, 0o755, 0, 0)
        .unwrap();
    let hello = w
        .create(etc, b"hello.txt", NewKind::File, 0o644, 1000, 100)
        .unwrap();
    w.write(hello, 0, b"hello, keel\n").unwrap();
    w.create(etc, b"link", NewKind::Symlink(b"hello.txt"), 0o777, 0, 0)
        .unwrap();
    let big = w.create(root, b"big", NewKind::File, 0o600, 0, 0).unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    w.write(big, 0, &data).unwrap();
    w.commit().unwrap();

    let mut pool = Pool::import(w.into_device()).unwrap();
    assert_eq!(pool.name(), "keel");
    assert_eq!(pool.version(), 5000);
    assert_eq!(read_path(&mut pool, "/etc/hello.txt"), b"hello, keel\n");
    assert_eq!(read_path(&mut pool, "/etc/link"), b"hello, keel\n");
    assert_eq!(read_path(&mut pool, "/big"), data);
    let ds = pool.root_dataset().unwrap();
    let fs = pool.filesystem(&ds).unwrap();
    assert_eq!(fs.version, 5);
    let hello = fs.resolve(&mut pool, "etc/hello.txt", true).unwrap();
    let st = fs.stat(&mut pool, hello).unwrap();
    assert_eq!(
        (st.attributes.uid, st.attributes.gid, st.attributes.mode),
        (1000, 100, 0o100644)
    );
    let etc = fs.resolve(&mut pool, "etc", true).unwrap();
    let etc_stat = fs.stat(&mut pool, etc).unwrap();
    assert_eq!(
        (
            etc_stat.kind,
            etc_stat.attributes.size,
            etc_stat.attributes.links
        ),
        (FileKind::Directory, 4, 2)
    );
}

#[test]
fn later_txgs_change_the_pool_and_reopen() {
    let mut w = PoolWriter::create_pool(MemoryDevice::new(64 << 20), &options()).unwrap();
    let root = w.root();
    let a = w.create(root, b"a", NewKind::File, 0o644, 0, 0).unwrap();
    w.write(a, 0, &[1u8; 300_000]).unwrap();
    let d = w
        .create(root, b"d", NewKind::Directory, 0o755, 0, 0)
        .unwrap();
    w.commit().unwrap();

    // Reopen from the device, as the kernel would.
    let mut w = PoolWriter::open(w.into_device()).unwrap();
    let root = w.root();
    let a = w.lookup(root, b"a").unwrap();
    w.write(a, 100_000, &[2u8; 10]).unwrap();
    w.truncate(a, 200_000).unwrap();
    w.link(d, b"a-again", a).unwrap();
    w.rename(root, b"a", d, b"moved").unwrap();
    let b = w.create(d, b"b", NewKind::File, 0o644, 0, 0).unwrap();
    w.write(b, 5 << 30, b"far away").unwrap();
    w.commit().unwrap();
    w.unlink(d, b"a-again").unwrap();
    w.commit().unwrap();
    let dev = w.into_device();
    dump("many-txgs", &dev);

    let mut pool = Pool::import(dev).unwrap();
    let moved = read_path(&mut pool, "/d/moved");
    assert_eq!(moved.len(), 200_000);
    assert_eq!(
        &moved[99_999..100_011],
        &[1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1]
    );
    let ds = pool.root_dataset().unwrap();
    let fs = pool.filesystem(&ds).unwrap();
    assert!(fs.resolve(&mut pool, "/a", true).is_err());
    assert!(fs.resolve(&mut pool, "/d/a-again", true).is_err());
    let b = fs.resolve(&mut pool, "/d/b", true).unwrap();
    let st = fs.stat(&mut pool, b).unwrap();
    assert_eq!(st.attributes.size, (5 << 30) + 8);
    let mut tail = [0u8; 12];
    assert_eq!(fs.read(&mut pool, b, (5 << 30) - 4, &mut tail).unwrap(), 12);
    assert_eq!(&tail, b"\0\0\0\0far away");
    let moved_obj = fs.resolve(&mut pool, "/d/moved", true).unwrap();
    assert_eq!(fs.stat(&mut pool, moved_obj).unwrap().attributes.links, 1);
}

/// With `KEEL_ZFS_DUMP=dir`, leave images in `dir` for external checkers.
fn dump(name: &str, dev: &MemoryDevice) {
    if let Some(dir) = std::env::var_os("KEEL_ZFS_DUMP") {
        let dir = std::path::Path::new(&dir).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pool.img"), &dev.bytes).unwrap();
    }
}

#[test]
fn dump_images_for_referees() {
    let mut w = PoolWriter::create_pool(MemoryDevice::new(64 << 20), &options()).unwrap();
    let root = w.root();
    let f = w.create(root, b"file", NewKind::File, 0o644, 0, 0).unwrap();
    w.write(f, 0, b"contents\n").unwrap();
    w.commit().unwrap();
    dump("one-txg", &w.into_device());
}

#[test]
fn a_hundred_thousand_entry_directory_across_txgs() {
    let mut w = PoolWriter::create_pool(MemoryDevice::new(256 << 20), &options()).unwrap();
    let root = w.root();
    let d = w
        .create(root, b"big", NewKind::Directory, 0o755, 0, 0)
        .unwrap();
    for i in 0..100_000u32 {
        let f = w
            .create(
                d,
                format!("entry-{i:06}").as_bytes(),
                NewKind::File,
                0o644,
                0,
                0,
            )
            .unwrap();
        if i % 1000 == 0 {
            w.write(f, 0, format!("{i}\n").as_bytes()).unwrap();
        }
    }
    w.commit().unwrap();
    for i in (0..100_000u32).step_by(3) {
        w.unlink(d, format!("entry-{i:06}").as_bytes()).unwrap();
    }
    let f = w.lookup(d, b"entry-000001").unwrap();
    w.rename(d, b"entry-000001", root, b"moved-out").unwrap();
    w.commit().unwrap();
    assert_eq!(w.read_dir(d).unwrap().len(), 100_000 - 33_334 - 1);
    let dev = w.into_device();
    dump("hundred-thousand", &dev);

    let mut pool = Pool::import(dev).unwrap();
    let ds = pool.root_dataset().unwrap();
    let fs = pool.filesystem(&ds).unwrap();
    let big = fs.resolve(&mut pool, "big", true).unwrap();
    let entries = fs.read_dir(&mut pool, big).unwrap();
    assert_eq!(entries.len(), 66_665);
    assert_eq!(fs.stat(&mut pool, big).unwrap().attributes.size, 66_665 + 2);
    assert!(fs.resolve(&mut pool, "big/entry-000003", true).is_err());
    let kept = fs.resolve(&mut pool, "big/entry-001000", true).unwrap();
    assert_eq!(fs.read_all(&mut pool, kept).unwrap(), b"1000\n");
    assert_eq!(fs.resolve(&mut pool, "moved-out", true).unwrap(), f);
}

#[test]
fn long_symlink_targets_go_to_a_spill_block() {
    let mut w = PoolWriter::create_pool(MemoryDevice::new(64 << 20), &options()).unwrap();
    let root = w.root();
    let long: Vec<u8> = format!("/{}/target", "directory-name".repeat(20)).into_bytes();
    let longest: Vec<u8> = vec![b'x'; 4000];
    let short = w
        .create(root, b"short", NewKind::Symlink(b"t"), 0o777, 0, 0)
        .unwrap();
    let a = w
        .create(root, b"long", NewKind::Symlink(&long), 0o777, 5, 6)
        .unwrap();
    w.create(root, b"longest", NewKind::Symlink(&longest), 0o777, 0, 0)
        .unwrap();
    assert_eq!(w.attributes(a).unwrap().symlink.as_deref(), Some(&long[..]));
    w.commit().unwrap();
    let mut w = PoolWriter::open(w.into_device()).unwrap();
    w.set_attributes(a, |attrs| attrs.uid = 77).unwrap();
    w.set_attributes(short, |attrs| attrs.gid = 9).unwrap();
    w.commit().unwrap();
    let dev = w.into_device();
    dump("long-symlinks", &dev);

    let mut pool = Pool::import(dev).unwrap();
    let ds = pool.root_dataset().unwrap();
    let fs = pool.filesystem(&ds).unwrap();
    for (name, target) in [("long", &long), ("longest", &longest)] {
        let object = fs.resolve(&mut pool, name, false).unwrap();
        let st = fs.stat(&mut pool, object).unwrap();
        assert_eq!(st.kind, FileKind::Symlink);
        assert_eq!(st.attributes.size, target.len() as u64);
        assert_eq!(&fs.read_link(&mut pool, object).unwrap(), target);
    }
    let object = fs.resolve(&mut pool, "long", false).unwrap();
    assert_eq!(fs.stat(&mut pool, object).unwrap().attributes.uid, 77);
    let object = fs.resolve(&mut pool, "short", false).unwrap();
    assert_eq!(fs.read_link(&mut pool, object).unwrap(), b"t");
}

#[test]
fn data_checksums_and_compression_read_back() {
    use keel_zfs::checksum::ChecksumKind;
    use keel_zfs::compress::CompressKind;
    use keel_zfs::write::DataFormat;
    let mut w = PoolWriter::create_pool(MemoryDevice::new(64 << 20), &options()).unwrap();
    let root = w.root();
    let text: Vec<u8> = b"compressible text, again and again. "
        .iter()
        .cycle()
        .take(400_000)
        .copied()
        .collect();
    let formats = [
        ("sha256", ChecksumKind::Sha256, CompressKind::Off),
        ("fletcher2", ChecksumKind::Fletcher2, CompressKind::Off),
        ("lzjb", ChecksumKind::Fletcher4, CompressKind::Lzjb),
        ("sha256-lzjb", ChecksumKind::Sha256, CompressKind::Lzjb),
    ];
    for (name, checksum, compress) in formats {
        w.set_data_format(DataFormat { checksum, compress })
            .unwrap();
        let f = w
            .create(root, name.as_bytes(), NewKind::File, 0o644, 0, 0)
            .unwrap();
        w.write(f, 0, &text).unwrap();
        w.commit().unwrap();
    }
    assert!(
        w.set_data_format(DataFormat {
            checksum: ChecksumKind::Fletcher4,
            compress: CompressKind::Lz4
        })
        .is_err(),
        "lz4 needs a feature"
    );
    let dev = w.into_device();
    dump("data-formats", &dev);
    let mut pool = Pool::import(dev).unwrap();
    let ds = pool.root_dataset().unwrap();
    let fs = pool.filesystem(&ds).unwrap();
    for (name, checksum, compress) in formats {
        let object = fs.resolve(&mut pool, name, true).unwrap();
        assert_eq!(fs.read_all(&mut pool, object).unwrap(), text, "{name}");
        let dnode = fs.dnode(&mut pool, object).unwrap();
        let bp = keel_zfs::read::object::level0_pointer(&mut pool, &dnode, 1).unwrap();
        assert_eq!(bp.checksum_kind().unwrap(), checksum, "{name}");
        assert_eq!(bp.compress().unwrap(), compress, "{name}");
        if compress == CompressKind::Lzjb {
            assert!(bp.psize() < bp.lsize() / 4, "{name}: {bp}");
        }
    }
}
