//! The reader against a pool no one here wrote: zfs-fuse's pool version 23
//! (legacy znodes, fletcher4, lzjb metadata with ditto copies). Every
//! file is listed and read, and its SHA-256 matches the reference list.

mod common;

use std::process::Command;

use common::{FileDevice, sha256_hex, shared_dir, temp_dir};
use keel_zfs::read::{FileKind, Pool};

fn unpack() -> std::path::PathBuf {
    let xz = shared_dir().join("zfs/zfs-fuse-v23.img.xz");
    assert!(
        xz.exists(),
        "reference pool missing: {} (shared/ beside the repository, or set KEEL_SHARED)",
        xz.display()
    );
    let dir = temp_dir("v23");
    let img = dir.join("pool.img");
    let out = Command::new("xz")
        .arg("-dc")
        .arg(&xz)
        .output()
        .expect("run xz (apt-get install xz-utils)");
    assert!(out.status.success(), "xz failed");
    std::fs::write(&img, out.stdout).unwrap();
    img
}

#[test]
fn every_file_matches_the_reference_hashes() {
    let img = unpack();
    let mut pool = Pool::import(FileDevice::open(&img)).expect("import");
    assert_eq!(pool.name(), "testpool");
    assert_eq!(pool.version(), 23);

    let expected = std::fs::read_to_string(shared_dir().join("zfs/zfs-fuse-v23.sha256")).unwrap();
    let mut checked = 0;
    for line in expected.lines().filter(|l| !l.trim().is_empty()) {
        let (hash, path) = line.split_once("  ").expect("hash  path");
        let (dataset, file) = path
            .trim_start_matches('/')
            .split_once("@/")
            .expect("GRUB path");
        let ds = pool.dataset(dataset.trim_end_matches('/')).expect(dataset);
        let fs = pool.filesystem(&ds).expect("open filesystem");
        assert!(fs.version <= 4, "zfs-fuse writes legacy znodes");
        let object = fs
            .resolve(&mut pool, file, true)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let data = fs.read_all(&mut pool, object).unwrap();
        assert_eq!(sha256_hex(&data), hash, "{path}");
        checked += 1;
    }
    assert_eq!(checked, 9);

    // List and read everything, in every dataset.
    let datasets = pool.datasets().unwrap();
    let names: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["", "app", "comp"]);
    let mut files = 0;
    for ds in &datasets {
        let fs = pool.filesystem(ds).unwrap();
        let mut stack = vec![fs.root];
        while let Some(dir) = stack.pop() {
            for entry in fs.read_dir(&mut pool, dir).unwrap() {
                let stat = fs.stat(&mut pool, entry.object).unwrap();
                assert_eq!(stat.kind, entry.kind);
                match stat.kind {
                    FileKind::Directory => stack.push(entry.object),
                    FileKind::File => {
                        let data = fs.read_all(&mut pool, entry.object).unwrap();
                        assert_eq!(data.len() as u64, stat.attributes.size);
                        files += 1;
                    }
                    FileKind::Symlink => {
                        let target = fs.read_link(&mut pool, entry.object).unwrap();
                        assert_eq!(target.len() as u64, stat.attributes.size);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }
    // top.txt; hello.txt, five_k.txt, f1..f100, random.bin, seq.txt; seq.txt.
    assert_eq!(files, 1 + 104 + 1);

    let app = pool.dataset("testpool/app").unwrap();
    let fs = pool.filesystem(&app).unwrap();
    let etc = fs.resolve(&mut pool, "etc", true).unwrap();
    assert_eq!(fs.read_dir(&mut pool, etc).unwrap().len(), 102);
    let link = fs.resolve(&mut pool, "etc/link", false).unwrap();
    assert_eq!(fs.stat(&mut pool, link).unwrap().kind, FileKind::Symlink);
    let through = fs.resolve(&mut pool, "etc/link", true).unwrap();
    assert_eq!(through, fs.resolve(&mut pool, "hello.txt", true).unwrap());

    // Its space maps, replayed, account for exactly the space zdb -bcc
    // finds referenced ("bp allocated: 3899392", "No leaks").
    let tree = pool.config.list("vdev_tree").unwrap().clone();
    let shift = tree.u64("metaslab_shift").unwrap() as u32;
    let asize = tree.u64("asize").unwrap();
    let array = tree.u64("metaslab_array").unwrap();
    let mut alloc = keel_zfs::write::alloc::Allocator::new(asize, shift, pool.ashift);
    let total: u64 = alloc.metaslabs.iter().map(|m| m.size).sum();
    let mos = pool.mos.clone();
    keel_zfs::write::spacemaps::load(&mut pool, &mos, array, &mut alloc).unwrap();
    assert_eq!(total - alloc.free_bytes(), 3_899_392);
    let _ = std::fs::remove_dir_all(img.parent().unwrap());
}
