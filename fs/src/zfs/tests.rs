//! Host tests: a pool on a memory disk, driven through the VFS inode
//! interface, then re-imported with keel-zfs's reader to see what is
//! really on the disk.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use keel_core::sync::SpinLock;
use keel_zfs::read::Pool;
use keel_zfs::sa::Timestamp;
use keel_zfs::write::{CreateOptions, PoolWriter};

use super::{DiskDevice, ZfsFs};
use crate::block::{Disk, DiskError};
use crate::error::FsError;
use crate::node::FileType;

struct MemoryDisk(SpinLock<Vec<u8>>);

impl Disk for MemoryDisk {
    fn description(&self) -> &str {
        "memory"
    }
    fn size(&self) -> u64 {
        self.0.lock().len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let d = self.0.lock();
        let end = offset as usize + buf.len();
        buf.copy_from_slice(d.get(offset as usize..end).ok_or(DiskError::OutOfRange)?);
        Ok(())
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let mut d = self.0.lock();
        let end = offset as usize + data.len();
        d.get_mut(offset as usize..end)
            .ok_or(DiskError::OutOfRange)?
            .copy_from_slice(data);
        Ok(())
    }
    fn flush(&self) -> Result<(), DiskError> {
        Ok(())
    }
}

fn new_pool() -> Arc<dyn Disk> {
    keel_core::memory::frame::init_from_heap(16 << 20);
    let disk: Arc<dyn Disk> = Arc::new(MemoryDisk(SpinLock::new(vec![0u8; 64 << 20])));
    let mut w = PoolWriter::create_pool(
        DiskDevice(disk.clone()),
        &CreateOptions {
            name: "keel".into(),
            ashift: 9,
            seed: 42,
            now: Timestamp {
                secs: 1_700_000_000,
                nanos: 0,
            },
        },
    )
    .unwrap();
    w.commit().unwrap();
    disk
}

/// What a fresh import of the disk sees at `path`.
fn on_disk(disk: &Arc<dyn Disk>, path: &str) -> Option<Vec<u8>> {
    let mut pool = Pool::import(DiskDevice(disk.clone())).unwrap();
    let ds = pool.root_dataset().unwrap();
    let fs = pool.filesystem(&ds).unwrap();
    let obj = fs.resolve(&mut pool, path, true).ok()?;
    Some(fs.read_all(&mut pool, obj).unwrap())
}

#[test]
fn files_written_through_the_vfs_are_on_disk_after_sync() {
    let disk = new_pool();
    let (fs, info) = ZfsFs::mount(disk.clone(), false).unwrap();
    assert_eq!(info.pool, "keel");
    assert!(info.read_only.is_none(), "{:?}", info.read_only);
    let root = fs.root().unwrap();
    let dir = root.create("data", FileType::Directory, 0o750).unwrap();
    let file = dir.create("a.txt", FileType::Regular, 0o640).unwrap();
    assert_eq!(file.write_at(0, b"hello, ").unwrap(), 7);
    assert_eq!(file.write_at(7, b"zfs").unwrap(), 3);
    let mut buf = [0u8; 16];
    assert_eq!(file.read_at(0, &mut buf).unwrap(), 10);
    assert_eq!(&buf[..10], b"hello, zfs");
    assert_eq!(file.metadata().size, 10);
    assert_eq!(file.metadata().mode, 0o100640);
    // Not durable before the transaction group commits.
    assert_eq!(on_disk(&disk, "/data/a.txt"), None);
    fs.sync().unwrap();
    assert_eq!(on_disk(&disk, "/data/a.txt").unwrap(), b"hello, zfs");
}

#[test]
fn rename_link_unlink_symlink_and_errors() {
    let disk = new_pool();
    let (fs, _) = ZfsFs::mount(disk.clone(), false).unwrap();
    let root = fs.root().unwrap();
    let f = root.create("f", FileType::Regular, 0o644).unwrap();
    f.write_at(0, b"content").unwrap();
    assert_eq!(
        root.create("f", FileType::Regular, 0o644).err(),
        Some(FsError::Exists)
    );
    root.link("g", &f).unwrap();
    assert_eq!(f.metadata().nlink, 2);
    let sub = root.create("sub", FileType::Directory, 0o755).unwrap();
    root.rename("f", &sub, "moved").unwrap();
    assert_eq!(root.lookup("f").err(), Some(FsError::NotFound));
    assert_eq!(root.rmdir("sub").err(), Some(FsError::NotEmpty));
    root.symlink("link", "/sub/moved").unwrap();
    assert_eq!(
        root.lookup("link").unwrap().readlink().unwrap(),
        "/sub/moved"
    );
    root.unlink("g").unwrap();
    let long = "x".repeat(256);
    assert_eq!(root.lookup(&long).err(), Some(FsError::NameTooLong));
    let mut names: Vec<_> = root
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    assert_eq!(names, ["link", "sub"]);
    fs.sync().unwrap();
    assert_eq!(on_disk(&disk, "/sub/moved").unwrap(), b"content");
    assert_eq!(on_disk(&disk, "/link").unwrap(), b"content");
    assert_eq!(on_disk(&disk, "/g"), None);
}

#[test]
fn a_remount_sees_committed_changes_and_same_objects_share_an_inode() {
    let disk = new_pool();
    {
        let (fs, _) = ZfsFs::mount(disk.clone(), false).unwrap();
        let root = fs.root().unwrap();
        let f = root.create("big", FileType::Regular, 0o600).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        f.write_at(5, &data).unwrap();
        f.truncate(200_000).unwrap();
        fs.sync().unwrap();
    }
    let (fs, _) = ZfsFs::mount(disk, false).unwrap();
    let root = fs.root().unwrap();
    let a = root.lookup("big").unwrap();
    let b = root.lookup("big").unwrap();
    assert!(core::ptr::addr_eq(Arc::as_ptr(&a), Arc::as_ptr(&b)));
    assert_eq!(a.metadata().size, 200_000);
    let mut buf = vec![0u8; 10];
    a.read_at(5, &mut buf).unwrap();
    assert_eq!(buf, [0, 7, 14, 21, 28, 35, 42, 49, 56, 63]);
}

#[test]
fn read_only_mounts_refuse_changes() {
    let disk = new_pool();
    let (fs, info) = ZfsFs::mount(disk, true).unwrap();
    assert!(info.read_only.is_some());
    let root = fs.root().unwrap();
    assert_eq!(
        root.create("x", FileType::Regular, 0o644).err(),
        Some(FsError::ReadOnly)
    );
    assert!(root.entries().unwrap().is_empty());
}

#[test]
fn garbage_disks_are_refused_not_mounted() {
    let disk: Arc<dyn Disk> = Arc::new(MemoryDisk(SpinLock::new(vec![0xa5u8; 8 << 20])));
    assert!(ZfsFs::mount(disk, false).is_err());
}

#[test]
fn mapped_pages_follow_writes_and_shared_changes_reach_the_disk() {
    let disk = new_pool();
    let (fs, _) = ZfsFs::mount(disk.clone(), false).unwrap();
    let root = fs.root().unwrap();
    let file = root.create("m", FileType::Regular, 0o644).unwrap();
    file.write_at(0, &[1u8; 8192]).unwrap();
    let zi = file.as_any().downcast_ref::<super::ZfsInode>().unwrap();
    let mappable = root.lookup("m").unwrap().mappable().unwrap();
    mappable.frame(1).unwrap();
    assert!(mappable.frame(2).is_err(), "past the end of the file");
    // A write() lands in the mapped page too.
    file.write_at(4096, b"abc").unwrap();
    {
        let cache = zi.cache.lock();
        let mut buf = [0u8; 4];
        cache.pages[&1].frame.read(0, &mut buf);
        assert_eq!(&buf, b"abc\x01");
        // The app writes the page through a shared mapping.
        cache.pages[&1].frame.write(10, b"XYZ");
    }
    fs.sync().unwrap();
    let bytes = on_disk(&disk, "/m").unwrap();
    assert_eq!(&bytes[4096..4099], b"abc");
    assert_eq!(&bytes[4106..4109], b"XYZ");
    assert_eq!(bytes[0], 1);
}
