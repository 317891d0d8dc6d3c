//! Making sure the machine has what Keel needs: the Rust targets (through
//! rustup) and QEMU (from Debian, when run as root). When something cannot
//! be installed automatically, stop with the exact commands to run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::arch::Arch;

/// A spinner for a long step (a plain line when output is not a terminal).
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template"),
    );
    bar.set_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn command_exists(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// Add any missing Rust target among `targets`.
pub fn ensure_rust_targets(workspace: &Path, targets: &[&str]) -> Result<()> {
    if !command_exists("rustup") {
        bail!(
            "rustup is not installed; install it (https://rustup.rs) and re-run, or add the targets {} yourself",
            targets.join(" ")
        );
    }
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(workspace)
        .output()
        .context("running rustup target list")?;
    let installed = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let bar = spinner(format!("adding Rust targets: {}", missing.join(" ")));
    let out = Command::new("rustup")
        .args(["target", "add"])
        .args(&missing)
        .current_dir(workspace)
        .output()?;
    bar.finish_and_clear();
    if !out.status.success() {
        bail!(
            "rustup could not add {}:\n{}\nrun: rustup target add {}",
            missing.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            missing.join(" ")
        );
    }
    eprintln!("added Rust targets: {}", missing.join(" "));
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn os_codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|s| s.trim_matches('"').to_string())
}

const ALL_QEMU_PACKAGES: [&str; 3] = ["qemu-system-x86", "qemu-system-arm", "qemu-system-ppc"];

/// Make sure QEMU for `arch` is installed.
pub fn ensure_qemu(arch: Arch) -> Result<()> {
    if command_exists(arch.qemu_binary()) {
        return Ok(());
    }
    let codename = os_codename();
    let bookworm = codename.as_deref() == Some("bookworm");
    let install = if bookworm {
        format!(
            "apt-get install -y -t bookworm-backports {}",
            ALL_QEMU_PACKAGES.join(" ")
        )
    } else {
        format!("apt-get install -y {}", ALL_QEMU_PACKAGES.join(" "))
    };
    if !is_root() || !command_exists("apt-get") {
        let mut steps = String::new();
        if bookworm {
            steps.push_str(
                "  echo 'deb http://deb.debian.org/debian bookworm-backports main' | sudo tee /etc/apt/sources.list.d/keel-backports.list\n",
            );
        }
        steps.push_str(&format!("  sudo apt-get update\n  sudo {install}\n"));
        bail!(
            "{} is not installed. Keel runs its kernels in QEMU; install it with:\n{steps}(Debian bookworm's own QEMU 7.2 conflicts with the newer qemu-utils; use backports.)",
            arch.qemu_binary()
        );
    }
    if bookworm {
        add_backports_source()?;
    }
    apt_install("QEMU", &install, "2-4 minutes", || {
        command_exists(arch.qemu_binary())
    })
}

/// Run `apt-get update` and `install` (as root) with a spinner and a log;
/// `done` says whether it worked.
fn apt_install(what: &str, install: &str, expect: &str, done: impl Fn() -> bool) -> Result<()> {
    let log = std::env::temp_dir().join(format!("keel-install-{}.log", what.replace(' ', "-")));
    let bar = spinner(format!(
        "installing {what} ({install}); this takes {expect}, log in {}",
        log.display()
    ));
    let logfile = std::fs::File::create(&log)?;
    let run = |args: &str| -> Result<bool> {
        Ok(Command::new("sh")
            .args(["-c", args])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::from(logfile.try_clone()?))
            .stderr(Stdio::from(logfile.try_clone()?))
            .status()?
            .success())
    };
    let ok = run("apt-get update")? && run(install)?;
    bar.finish_and_clear();
    if !ok || !done() {
        bail!(
            "installing {what} failed; see {} and run: {install}",
            log.display()
        );
    }
    eprintln!("installed {what}");
    Ok(())
}

/// The C compiler that builds Linux programs for `arch` on this host.
pub fn c_compiler(arch: Arch) -> String {
    if Arch::host() == Some(arch) {
        "gcc".into()
    } else {
        format!("{}-gcc", arch.linux_triplet())
    }
}

/// Make sure there is a C compiler (with its glibc) for `arch`'s guest
/// test programs: Debian's gcc or cross gcc, installed when run as root.
pub fn ensure_c_compiler(arch: Arch) -> Result<()> {
    let cc = c_compiler(arch);
    if command_exists(&cc) {
        return Ok(());
    }
    let packages = if Arch::host() == Some(arch) {
        "gcc libc6-dev".to_string()
    } else {
        format!(
            "gcc-{0} libc6-dev-{1}-cross",
            arch.linux_triplet(),
            arch.debian_arch()
        )
    };
    let install = format!("apt-get install -y {packages}");
    if !is_root() || !command_exists("apt-get") {
        bail!(
            "{cc} is not installed; the {arch} guest test programs are built with it. Install it with:
  sudo apt-get update
  sudo {install}"
        );
    }
    apt_install(
        &format!("the {arch} C compiler"),
        &install,
        "about a minute",
        || command_exists(&cc),
    )
}

/// Add bookworm-backports to apt's sources, reusing the machine's mirror.
fn add_backports_source() -> Result<()> {
    let dir = Path::new("/etc/apt/sources.list.d");
    let mut mirror = String::from("http://deb.debian.org/debian");
    let mut present = false;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.push("/etc/apt/sources.list".into());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        present |= text.contains("bookworm-backports");
        if let Some(uri) = text
            .lines()
            .find_map(|l| l.strip_prefix("URIs:"))
            .map(str::trim)
            && text.contains("Suites: bookworm")
        {
            mirror = uri.split_whitespace().next().unwrap_or(&mirror).to_string();
        }
    }
    if !present {
        let source = format!(
            "Types: deb\nURIs: {mirror}\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
        std::fs::write(dir.join("keel-backports.sources"), source)
            .context("adding bookworm-backports to apt")?;
    }
    Ok(())
}
