//! Devices the in-kernel suites run against: a fresh raw disk image, a
//! user-networking NIC with a fixed MAC and an entropy device, attached
//! over the machine's virtio transport (PCI on q35 and on aarch64 virt
//! with GICv2, MMIO on microvm and virt with GICv3). After the guest exits, the disk image is checked from the host:
//! it must hold exactly the bytes the guest's round-trip test wrote
//! (platform/drivers/virtio/src/tests.rs), and zeros everywhere else.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::arch::Arch;

/// Size of the test disk (the guest test checks it).
pub const DISK_SIZE: u64 = 4 << 20;
/// The MAC the guest test expects.
pub const MAC: &str = "52:54:00:12:34:56";
/// The guest test that writes the disk.
pub const DISK_TEST: &str = "virtio_disk_round_trip";

/// Regions the guest writes: (byte offset, length); the same list as
/// DISK_REGIONS in platform/drivers/virtio/src/tests.rs.
const DISK_REGIONS: [(u64, usize); 6] = [
    (0, 512),
    (4096, 8192),
    (65536 - 512, 1024),
    ((1 << 20) + 512 * 5, 512 * 300),
    (2 << 20, 4096),
    ((4 << 20) - 1024, 1024),
];

/// The byte the guest writes at disk offset `at` (its `pattern`).
fn disk_pattern(at: u64) -> u8 {
    ((at as u32).wrapping_mul(0x9e37_79b1).rotate_right(13) as u8) ^ 0x5a
}

/// The image the guest should leave behind.
fn expected_image() -> Vec<u8> {
    let mut img = vec![0u8; DISK_SIZE as usize];
    for (offset, len) in DISK_REGIONS {
        for at in offset..offset + len as u64 {
            img[at as usize] = disk_pattern(at);
        }
    }
    img
}

/// The virtio transport suffix QEMU's device names take on `machine`
/// (`virtio-blk-pci`, `virtio-blk-device`), or `None` where Keel drives no
/// virtio (ppc64). aarch64: the GICv2 machines get PCI (BARs placed by
/// Keel, INTx via interrupt-map), the GICv3 ones MMIO, so both transports
/// are tested there.
pub fn transport(arch: Arch, machine: &str) -> Option<&'static str> {
    match (arch, machine) {
        (Arch::X86_64, "q35") => Some("pci"),
        (Arch::Aarch64, m) if m.contains("gicv2") => Some("pci"),
        (Arch::X86_64, _) | (Arch::Aarch64, _) => Some("device"),
        (Arch::Ppc64, _) => None,
    }
}

/// QEMU arguments for `cargo keel run --disk IMAGE… [--net]`: each image a
/// virtio disk (raw, or QCOW2 by its magic), and a virtio NIC on QEMU
/// user networking.
pub fn run_args(arch: Arch, machine: &str, disks: &[PathBuf], net: bool) -> Result<Vec<String>> {
    if disks.is_empty() && !net {
        return Ok(Vec::new());
    }
    let Some(transport) = transport(arch, machine) else {
        anyhow::bail!("Keel has no virtio devices on {arch} yet");
    };
    let mut args = Vec::new();
    for (i, disk) in disks.iter().enumerate() {
        if !disk.is_file() {
            anyhow::bail!(
                "disk image {} is not a file (make one with `cargo keel image -o {}`)",
                disk.display(),
                disk.display()
            );
        }
        if disk.to_string_lossy().contains(',') {
            anyhow::bail!(
                "disk image {}: QEMU cannot take a path with a comma",
                disk.display()
            );
        }
        let mut magic = [0u8; 4];
        let _ = std::fs::File::open(disk)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
        let format = if magic == *b"QFI\xfb" { "qcow2" } else { "raw" };
        args.extend([
            "-drive".to_string(),
            format!(
                "file={},format={format},if=none,id=disk{i},cache=writeback",
                disk.display()
            ),
            "-device".into(),
            format!("virtio-blk-{transport},drive=disk{i}"),
        ]);
    }
    if net {
        args.extend([
            "-netdev".to_string(),
            "user,id=net0".into(),
            "-device".into(),
            format!("virtio-net-{transport},netdev=net0"),
        ]);
    }
    Ok(args)
}

/// QEMU arguments attaching the test devices to `machine`, with a fresh
/// zeroed disk image at the returned path; `None` where Keel has no
/// virtio transport (ppc64).
pub fn attach(
    workspace: &Path,
    arch: Arch,
    machine: &str,
    smp: u32,
) -> Result<Option<(Vec<String>, PathBuf)>> {
    let Some(transport) = transport(arch, machine) else {
        return Ok(None);
    };
    let dir = workspace.join("target").join("keel").join("test-disks");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let image = dir.join(format!("{arch}-{machine}-smp{smp}.img"));
    let file =
        std::fs::File::create(&image).with_context(|| format!("creating {}", image.display()))?;
    file.set_len(DISK_SIZE)?;
    let args = [
        "-drive".to_string(),
        format!(
            "file={},format=raw,if=none,id=vdisk,cache=writeback",
            image.display()
        ),
        "-device".into(),
        format!("virtio-blk-{transport},drive=vdisk"),
        // User networking only, and restricted: the guest reaches QEMU's
        // built-in gateway and nothing beyond it.
        "-netdev".into(),
        "user,id=vnet,restrict=on".into(),
        "-device".into(),
        format!("virtio-net-{transport},netdev=vnet,mac={MAC}"),
        "-object".into(),
        "rng-random,id=vrng,filename=/dev/urandom".into(),
        "-device".into(),
        format!("virtio-rng-{transport},rng=vrng"),
    ];
    Ok(Some((args.to_vec(), image)))
}

/// Check the disk image after the guest wrote it; returns why it is wrong.
pub fn check_disk(image: &Path) -> Result<Option<String>> {
    let got = std::fs::read(image).with_context(|| format!("reading {}", image.display()))?;
    if got.len() as u64 != DISK_SIZE {
        return Ok(Some(format!(
            "image is {} bytes, not {DISK_SIZE}",
            got.len()
        )));
    }
    let want = expected_image();
    Ok(got.iter().zip(&want).position(|(a, b)| a != b).map(|at| {
        format!(
            "byte {at:#x} is {:#04x}, the guest wrote {:#04x}",
            got[at], want[at]
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_fit_the_disk_and_do_not_overlap() {
        let mut r = DISK_REGIONS.to_vec();
        r.sort();
        for w in r.windows(2) {
            assert!(w[0].0 + w[0].1 as u64 <= w[1].0);
        }
        for (offset, len) in r {
            assert_eq!(offset % 512, 0);
            assert_eq!(len % 512, 0);
            assert!(offset + len as u64 <= DISK_SIZE);
        }
    }

    #[test]
    fn a_blank_image_fails_the_check_and_the_expected_one_passes() {
        let dir = std::env::temp_dir().join(format!("keel-disk-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = dir.join("d.img");
        std::fs::write(&img, vec![0u8; DISK_SIZE as usize]).unwrap();
        assert!(check_disk(&img).unwrap().is_some());
        std::fs::write(&img, expected_image()).unwrap();
        assert_eq!(check_disk(&img).unwrap(), None);
        let mut off_by_one = expected_image();
        off_by_one[4096 + 17] ^= 1;
        std::fs::write(&img, off_by_one).unwrap();
        assert!(check_disk(&img).unwrap().unwrap().contains("0x1011"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
