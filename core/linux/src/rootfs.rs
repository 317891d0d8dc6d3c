//! The root filesystem: the ZFS pool on a disk (by default the first disk
//! holding one) or a ramfs, then the initial ramdisk's files on top, the
//! mount points runtimes expect, a ramfs on /tmp when the root is a pool,
//! and default /etc files for whatever neither brought.

use alloc::string::String;
use alloc::sync::Arc;

use keel_core::cmdline::RootChoice;
use keel_core::kprintln;
use keel_fs::block;
use keel_fs::ramfs::RamFs;
use keel_fs::zfs::ZfsFs;
use keel_fs::{FileType, FsError, Inode, Vfs, cpio, devfs};

use crate::procfs;

/// /etc files written when the ramdisk has none: what glibc, Go and the
/// JVM read to resolve names and users.
const ETC_DEFAULTS: &[(&str, &str)] = &[
    ("hostname", "keel\n"),
    (
        "hosts",
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tkeel\n",
    ),
    // No name server until the network is configured (DHCP fills it in).
    (
        "resolv.conf",
        "# written by Keel: no name server configured yet\n",
    ),
    (
        "passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    ),
    ("group", "root:x:0:\nnogroup:x:65534:\n"),
    (
        "nsswitch.conf",
        "passwd: files\ngroup: files\nhosts: files dns\n",
    ),
];

fn dir_at(root: &Arc<dyn Inode>, name: &str, mode: u32) -> Result<Arc<dyn Inode>, FsError> {
    match root.lookup(name) {
        Ok(d) => Ok(d),
        Err(FsError::NotFound) => root.create(name, FileType::Directory, mode),
        Err(e) => Err(e),
    }
}

/// Disks whose pool is mounted.
static MOUNTED_DISKS: keel_core::sync::SpinLock<alloc::vec::Vec<usize>> =
    keel_core::sync::SpinLock::new(alloc::vec::Vec::new());
/// The thread committing every writable pool (one for all of them).
static SYNC_THREAD: spin::Once<()> = spin::Once::new();

/// How often changes to a pool root are committed when nothing asks.
const SYNC_INTERVAL_MS: u64 = 5_000;

/// The pool on disk `index` as the root, or why not.
fn mount_pool(index: usize, read_only: bool, at: &str) -> Result<(Arc<dyn Inode>, bool), String> {
    let name = block::disk_name(index);
    // Two mounts of one pool would be two writers: the second would
    // overwrite the first's transaction groups.
    if MOUNTED_DISKS.lock().contains(&index) {
        return Err(alloc::format!("{name} is already mounted"));
    }
    let disk = block::disk(index).ok_or_else(|| alloc::format!("there is no disk {name}"))?;
    let t = keel_core::time::monotonic_ns();
    let (fs, info) = ZfsFs::mount(disk.clone(), read_only)
        .map_err(|e| alloc::format!("{name} ({}): no usable ZFS pool: {e}", disk.description()))?;
    let root = fs
        .root()
        .map_err(|e| alloc::format!("{name}: errno {}", e.errno()))?;
    kprintln!(
        "keel: {at}: ZFS pool '{}' (version {}) on {name}, {}, mounted in {} us",
        info.pool,
        info.version,
        match &info.read_only {
            None => String::from("read-write"),
            Some(why) => alloc::format!("read-only: {why}"),
        },
        (keel_core::time::monotonic_ns() - t) / 1000
    );
    MOUNTED_DISKS.lock().push(index);
    if info.read_only.is_none() {
        SYNC_THREAD.call_once(|| {
            keel_core::boot::on_shutdown(sync_pools);
            keel_core::sched::spawn("zfs-sync", || {
                loop {
                    keel_core::time::sleep_ms(SYNC_INTERVAL_MS);
                    sync_pools();
                }
            });
        });
    }
    Ok((root, info.read_only.is_some()))
}

fn sync_pools() {
    if let Err(e) = keel_fs::zfs::sync_all() {
        kprintln!("keel: committing the root pool failed: errno {}", e.errno());
    }
}

/// The root the boot options ask for: (inode, filesystem name).
fn choose_root() -> Result<(Arc<dyn Inode>, &'static str), String> {
    match &keel_core::boot::options().root {
        RootChoice::Ram => Ok((RamFs::new_root(), "ramfs")),
        RootChoice::Disk { name, read_only } => {
            let index = (0..block::disks().len())
                .find(|&i| block::disk_name(i) == *name)
                .ok_or_else(|| {
                    alloc::format!(
                        "keel.root={name}: there is no such disk ({} found)",
                        block::disks().len()
                    )
                })?;
            Ok((mount_pool(index, *read_only, "/")?.0, "zfs"))
        }
        RootChoice::Auto => {
            let named: alloc::vec::Vec<&str> = keel_core::boot::options()
                .mounts
                .iter()
                .map(|m| m.disk.as_str())
                .collect();
            for index in 0..block::disks().len() {
                if named.contains(&block::disk_name(index).as_str()) {
                    continue;
                }
                match mount_pool(index, false, "/") {
                    Ok((_, true)) if keel_core::memory::initrd().is_some() => kprintln!(
                        "keel: {}: the pool is read-only here and the ramdisk's files need a writable root; the root is a ramfs (keel.mount={}:/PATH:ro reaches the pool)",
                        block::disk_name(index),
                        block::disk_name(index)
                    ),
                    Ok((root, _)) => return Ok((root, "zfs")),
                    Err(e) => kprintln!("keel: {e}; not the root"),
                }
            }
            Ok((RamFs::new_root(), "ramfs"))
        }
    }
}

/// The first line of the /etc/resolv.conf Keel writes; a file without it
/// came from the ramdisk and is the app's own, never overwritten.
const RESOLV_MARK: &str = "# written by Keel";

/// Rewrite Keel's /etc/resolv.conf with `servers` (the network stack calls
/// this when DHCP or the command line names them).
pub fn write_resolv_conf(vfs: &Vfs, servers: &[alloc::string::String]) {
    let Ok(r) = vfs.resolve(&vfs.root(), "/etc/resolv.conf", keel_fs::Lookup::Follow) else {
        return;
    };
    let mut head = [0u8; RESOLV_MARK.len()];
    if r.inode.read_at(0, &mut head).ok() != Some(head.len()) || head != RESOLV_MARK.as_bytes() {
        return;
    }
    let mut text = alloc::format!("{RESOLV_MARK} from the network configuration\n");
    for s in servers {
        text.push_str(&alloc::format!("nameserver {s}\n"));
    }
    let _ = r.inode.truncate(0);
    let _ = r.inode.write_at(0, text.as_bytes());
}

/// Build the namespace: the root, ramdisk contents, /dev, /proc, /sys.
pub fn build() -> Result<Arc<Vfs>, String> {
    let (root, root_fs_name) = choose_root()?;
    if let Some(archive) = keel_core::memory::initrd() {
        let t = keel_core::time::monotonic_ns();
        let read_only_root = matches!(
            keel_core::boot::options().root,
            RootChoice::Disk {
                read_only: true,
                ..
            }
        );
        if read_only_root {
            return Err(String::from(
                "the root pool is mounted read-only, so the ramdisk's files (cargo keel run --add) cannot go into it: put them in the image, mount the root read-write, or use keel.root=ram with keel.mount=vdX:/PATH:ro",
            ));
        }
        let n = cpio::unpack(archive, &root).map_err(|e| {
            alloc::format!("cannot unpack the initial ramdisk into the root filesystem: {e}")
        })?;
        kprintln!(
            "keel: ramdisk: {} files, {} directories, {} links, {} KiB in {} us",
            n.files,
            n.dirs,
            n.links,
            n.bytes / 1024,
            (keel_core::time::monotonic_ns() - t) / 1000
        );
    }
    let fail = |what: &str, e: FsError| alloc::format!("cannot create {what}: errno {}", e.errno());
    for (name, mode) in [
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("root", 0o700),
        ("etc", 0o755),
    ] {
        dir_at(&root, name, mode).map_err(|e| fail(name, e))?;
    }
    let etc = root.lookup("etc").map_err(|e| fail("/etc", e))?;
    for (name, content) in ETC_DEFAULTS {
        if etc.lookup(name).is_ok() {
            continue;
        }
        let f = etc
            .create(name, FileType::Regular, 0o644)
            .map_err(|e| fail(name, e))?;
        f.write_at(0, content.as_bytes())
            .map_err(|e| fail(name, e))?;
    }
    let vfs = Arc::new(Vfs::new(root, root_fs_name));
    if root_fs_name != "ramfs" {
        let tmp = RamFs::new_root();
        tmp.setattr(keel_fs::SetAttr {
            mode: Some(0o1777),
            ..Default::default()
        })
        .map_err(|e| fail("/tmp", e))?;
        vfs.mount("/tmp", tmp, "tmpfs")
            .map_err(|e| fail("the /tmp mount", e))?;
    }
    vfs.mount("/dev", devfs::new(), "devtmpfs")
        .map_err(|e| fail("the /dev mount", e))?;
    vfs.mount("/proc", procfs::proc_root(), "proc")
        .map_err(|e| fail("the /proc mount", e))?;
    vfs.mount("/sys", procfs::sys_root(), "sysfs")
        .map_err(|e| fail("the /sys mount", e))?;
    for m in &keel_core::boot::options().mounts {
        // A disk that cannot be mounted is reported; the app still runs
        // (it may not need it, and its own errors will say what is missing).
        if let Err(e) = mount_extra(&vfs, m) {
            kprintln!("keel: keel.mount={}:{}: {e}; not mounted", m.disk, m.path);
        }
    }
    Ok(vfs)
}

/// Mount the pool on disk `m.disk` at `m.path`, creating the directory
/// (and its parents) on a writable root.
fn mount_extra(vfs: &Vfs, m: &keel_core::cmdline::DiskMount) -> Result<(), String> {
    let index = (0..block::disks().len())
        .find(|&i| block::disk_name(i) == m.disk)
        .ok_or_else(|| alloc::format!("there is no disk {}", m.disk))?;
    let (root, _) = mount_pool(index, m.read_only, &m.path)?;
    let mut dir = vfs.root().inode;
    for part in m.path.split('/').filter(|p| !p.is_empty()) {
        dir = dir_at(&dir, part, 0o755)
            .map_err(|e| alloc::format!("cannot make the mount point: errno {}", e.errno()))?;
    }
    vfs.mount(&m.path, root, "zfs")
        .map_err(|e| alloc::format!("errno {}", e.errno()))
}
