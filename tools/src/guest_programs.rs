//! Building the guest test programs in tests/linux for an arch: the C
//! suite static and dynamic (Debian's gcc or cross gcc), and the Rust std
//! suite (static musl on x86_64 and aarch64; static glibc through the
//! cross gcc on ppc64, where rustup has no musl std).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use crate::arch::Arch;
use crate::setup;

/// The built programs.
pub struct GuestPrograms {
    /// C suite, statically linked (ET_EXEC).
    pub c_static: PathBuf,
    /// C suite, dynamically linked against glibc (PIE).
    pub c_dynamic: PathBuf,
    /// Rust std suite, static.
    pub rust: PathBuf,
    /// Where the dynamic C program's libraries come from.
    pub sysroot: PathBuf,
}

/// The Rust target the Rust suite is built for on `arch`.
pub fn rust_target(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64-unknown-linux-musl",
        Arch::Aarch64 => "aarch64-unknown-linux-musl",
        Arch::Ppc64 => "powerpc64le-unknown-linux-gnu",
    }
}

fn newest_mtime(dir: &Path) -> Result<SystemTime> {
    let mut newest = SystemTime::UNIX_EPOCH;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = if e.file_type()?.is_dir() {
            newest_mtime(&e.path())?
        } else {
            e.metadata()?.modified()?
        };
        newest = newest.max(t);
    }
    Ok(newest)
}

fn up_to_date(out: &Path, sources: &Path) -> bool {
    let built = out.metadata().and_then(|m| m.modified());
    matches!((built, newest_mtime(sources)), (Ok(b), Ok(s)) if b > s)
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start the build of {what}"))?;
    if !out.status.success() {
        bail!(
            "building {what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Build one static C program (`source`, relative to the workspace) for
/// `arch` as target/keel/guest/ARCH/NAME; returns its path.
pub fn build_static_c(workspace: &Path, arch: Arch, source: &str, name: &str) -> Result<PathBuf> {
    setup::ensure_c_compiler(arch)?;
    let out = workspace.join("target/keel/guest").join(arch.name());
    std::fs::create_dir_all(&out)?;
    let program = out.join(name);
    let source = workspace.join(source);
    let cc = setup::c_compiler(arch);
    let mut cmd = Command::new(&cc);
    cmd.args(["-O2", "-Wall", "-Wextra", "-Werror", "-static", "-pthread", "-o"])
        .arg(&program)
        .arg(&source);
    run(&mut cmd, &format!("{} for {arch} ({cc})", source.display()))?;
    Ok(program)
}

/// Build (or reuse) every guest test program for `arch`.
pub fn build(workspace: &Path, arch: Arch) -> Result<GuestPrograms> {
    setup::ensure_c_compiler(arch)?;
    setup::ensure_rust_targets(workspace, &[rust_target(arch)])?;
    let out = workspace
        .join("target")
        .join("keel")
        .join("guest")
        .join(arch.name());
    std::fs::create_dir_all(&out)?;
    let c_dir = workspace.join("tests").join("linux").join("c");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&c_dir)
        .with_context(|| format!("cannot list {}", c_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    let cc = setup::c_compiler(arch);
    let c_static = out.join("abi-static");
    let c_dynamic = out.join("abi-dynamic");
    for (target, extra) in [(&c_static, &["-static"][..]), (&c_dynamic, &[][..])] {
        if up_to_date(target, &c_dir) {
            continue;
        }
        let mut cmd = Command::new(&cc);
        cmd.args(["-O2", "-g", "-Wall", "-Wextra", "-Werror", "-pthread"])
            .args(extra)
            .arg("-o")
            .arg(target)
            .args(&sources);
        run(&mut cmd, &format!("the {arch} C test program ({cc})"))?;
    }

    let rust_dir = workspace.join("tests").join("linux").join("rust");
    let target = rust_target(arch);
    let target_dir = workspace.join("target").join("keel").join("guest-rust");
    let rust = target_dir
        .join(target)
        .join("release")
        .join("keel-guest-rust");
    if !up_to_date(&rust, &rust_dir.join("src")) {
        let env_target = target.to_uppercase().replace('-', "_");
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&rust_dir)
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                target,
                "--target-dir",
            ])
            .arg(&target_dir)
            // The Keel workspace's settings (rustflags for kernels) do not apply.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        match arch {
            Arch::X86_64 | Arch::Aarch64 => {
                cmd.env(format!("CARGO_TARGET_{env_target}_LINKER"), "rust-lld");
            }
            // The kernel is built for this same target, and Cargo joins
            // these flags to the workspace config's (which link with
            // rust-lld as ld.lld): the later linker flavour wins.
            Arch::Ppc64 => {
                cmd.env(format!("CARGO_TARGET_{env_target}_LINKER"), &cc)
                    .env(
                        format!("CARGO_TARGET_{env_target}_RUSTFLAGS"),
                        "-C linker-flavor=gcc -C target-feature=+crt-static",
                    );
            }
        }
        run(&mut cmd, &format!("the {arch} Rust test program"))?;
    }
    let sysroot = if Arch::host() == Some(arch) {
        PathBuf::from("/")
    } else {
        PathBuf::from(format!("/usr/{}", arch.linux_triplet()))
    };
    Ok(GuestPrograms {
        c_static,
        c_dynamic,
        rust,
        sysroot,
    })
}
