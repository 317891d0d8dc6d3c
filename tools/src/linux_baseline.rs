//! A Linux guest to compare Keel with: Debian's kernel for the arch,
//! downloaded once into target/keel/linux-baseline (apt with private state
//! directories: no root needed, the host's package database untouched),
//! booted in the same QEMU with a program of ours as /init.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::arch::Arch;
use crate::setup::spinner;

/// Debian's kernel metapackage for `arch` (the cloud flavour where there is one).
fn metapackage(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "linux-image-cloud-amd64",
        Arch::Aarch64 => "linux-image-cloud-arm64",
        Arch::Ppc64 => "linux-image-powerpc64le",
    }
}

/// The kernel console device on each arch's QEMU machine.
pub fn console(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "ttyS0",
        Arch::Aarch64 => "ttyAMA0",
        Arch::Ppc64 => "hvc0",
    }
}

fn apt(dir: &Path, arch: Arch) -> Command {
    let deb = arch.debian_arch();
    let mut c = Command::new("apt-get");
    c.args([
        "-q",
        "-o",
        &format!("APT::Architecture={deb}"),
        "-o",
        &format!("APT::Architectures={deb}"),
        "-o",
        &format!("Dir::State::Lists={}", dir.join("lists").display()),
        "-o",
        &format!("Dir::Cache={}", dir.join("cache").display()),
        "-o",
        &format!("Dir::State::status={}", dir.join("status").display()),
    ]);
    c
}

fn run(mut c: Command, what: &str) -> Result<String> {
    let out = c
        .output()
        .with_context(|| format!("cannot run apt-get to {what}"))?;
    if !out.status.success() {
        bail!(
            "apt-get could not {what}:\n{}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The Debian kernel for `arch`, downloading it the first time.
pub fn kernel(workspace: &Path, arch: Arch) -> Result<PathBuf> {
    let dir = workspace
        .join("target")
        .join("keel")
        .join("linux-baseline")
        .join(arch.name());
    let marker = dir.join("kernel-path");
    if let Ok(p) = std::fs::read_to_string(&marker)
        && Path::new(p.trim()).exists()
    {
        return Ok(PathBuf::from(p.trim()));
    }
    if which("apt-get").is_none() || which("dpkg").is_none() {
        bail!(
            "the Linux baseline comes from Debian packages: apt-get and dpkg are needed (run on Debian or Ubuntu)"
        );
    }
    for sub in ["lists/partial", "cache/archives/partial", "extract"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::write(dir.join("status"), "")?;
    let bar = spinner(format!(
        "downloading Debian's {} kernel for the Linux baseline",
        arch.debian_arch()
    ));
    let result = (|| {
        let mut update = apt(&dir, arch);
        update.arg("update");
        run(update, "update its package lists")?;
        let mut depends = Command::new("apt-cache");
        depends
            .args(apt(&dir, arch).get_args().skip(1))
            .args(["depends", metapackage(arch)]);
        let text = run(depends, "resolve the kernel package")?;
        let package = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-"))
            .with_context(|| format!("{} names no linux-image package", metapackage(arch)))?
            .to_string();
        let mut download = apt(&dir, arch);
        download
            .current_dir(dir.join("cache"))
            .args(["download", &package]);
        run(download, &format!("download {package}"))?;
        let deb = std::fs::read_dir(dir.join("cache"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.extension().is_some_and(|x| x == "deb") && p.to_string_lossy().contains(&package)
            })
            .context("the downloaded package is missing")?;
        let status = Command::new("dpkg")
            .arg("-x")
            .arg(&deb)
            .arg(dir.join("extract"))
            .status()?;
        if !status.success() {
            bail!("dpkg -x {} failed", deb.display());
        }
        let boot = dir.join("extract").join("boot");
        let prefix = if arch == Arch::Ppc64 {
            "vmlinux-"
        } else {
            "vmlinuz-"
        };
        let kernel = std::fs::read_dir(&boot)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            })
            .with_context(|| format!("{package} holds no {prefix}* kernel"))?;
        std::fs::write(&marker, kernel.display().to_string())?;
        Ok(kernel)
    })();
    bar.finish_and_clear();
    result
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(cmd))
            .find(|p| p.is_file())
    })
}

/// QEMU for a Linux guest of `arch`: the same machine family Keel uses,
/// with the kernel's own firmware defaults.
pub fn qemu_command(
    arch: Arch,
    kernel: &Path,
    initrd: &Path,
    smp: u32,
    init_args: &str,
) -> Command {
    let mut c = Command::new(arch.qemu_binary());
    c.stdin(std::process::Stdio::null());
    c.args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-m",
        "512M",
        "-smp",
        &smp.to_string(),
    ]);
    c.args(["-accel", "tcg", "-serial", "stdio", "-no-reboot"]);
    match arch {
        Arch::X86_64 => {
            c.args(["-M", "microvm,rtc=on", "-cpu", "max"]);
            if Path::new(crate::qemu::QBOOT).exists() {
                c.args(["-bios", crate::qemu::QBOOT]);
            }
        }
        Arch::Aarch64 => {
            c.args(["-M", "virt", "-cpu", "max"]);
        }
        Arch::Ppc64 => {
            c.args(["-M", "pseries"]);
        }
    }
    c.arg("-kernel").arg(kernel).arg("-initrd").arg(initrd);
    c.args([
        "-append",
        &format!(
            "console={} quiet panic=-1 rdinit=/init -- {init_args}",
            console(arch)
        ),
    ]);
    c
}
