//! `cargo keel run`: boot a kernel with the console on this terminal and
//! exit with the guest's exit status.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::arch::{Arch, GuestExit};
use crate::initrd::Initrd;
use crate::libs;
use crate::protocol::{self, Line};
use crate::qemu::{Next, Session, Vm};
use crate::symbols::Symbols;

/// Exit status of `cargo keel run` when the kernel panicked.
pub const PANIC_STATUS: i32 = 101;
/// Exit status when the guest ended without saying how (crash, mismatch).
pub const UNKNOWN_STATUS: i32 = 125;

/// Build the kernel command line from the words after `--`: leading
/// `key=value` words are kernel options; the first other word starts the
/// app's argv, which goes after a `--` separator, preceded by the app's
/// environment assignments (`env`).
pub fn kernel_cmdline(words: &[String], env: &[String]) -> Result<String> {
    let split = words
        .iter()
        .position(|w| !is_option(w))
        .unwrap_or(words.len());
    let mut parts: Vec<String> = words[..split].to_vec();
    if split == words.len() && !env.is_empty() {
        bail!("--env was given but no program to run: put the program after `--`");
    }
    if split < words.len() {
        parts.push("--".into());
        for w in env.iter().chain(&words[split..]) {
            if w.contains('"') {
                bail!(
                    "argument {w:?} contains a double quote, which the kernel command line cannot carry"
                );
            }
            parts.push(if w.is_empty() || w.chars().any(char::is_whitespace) {
                format!("\"{w}\"")
            } else {
                w.clone()
            });
        }
    }
    Ok(parts.join(" "))
}

/// Check an `--env` value: NAME=VALUE with a shell-style name.
pub fn parse_env(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((name, _))
            if !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()) =>
        {
            Ok(s.to_string())
        }
        _ => Err(format!("'{s}' is not NAME=VALUE")),
    }
}

/// The app's files, packed into the initial ramdisk.
#[derive(Args, Default)]
pub struct FileArgs {
    /// Add a host file to the image (repeatable); GUEST defaults to
    /// /<file name>. Dynamically linked programs bring their libraries.
    #[arg(long = "add", value_name = "HOST[:GUEST]")]
    pub add: Vec<String>,
    /// Add a host directory, recursively (repeatable).
    #[arg(long = "add-dir", value_name = "HOST:GUEST")]
    pub add_dir: Vec<String>,
    /// Add the dynamic linker and libraries every added program needs
    /// (automatic for dynamically linked programs).
    #[arg(long)]
    pub libs: bool,
    /// Where to find libraries: a folder laid out like the guest's root
    /// [default: / for programs of the host's arch].
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
}

fn split_spec(
    spec: &str,
    default_guest: impl FnOnce(&Path) -> Option<String>,
) -> Result<(PathBuf, String)> {
    let (host, guest) = match spec.split_once(':') {
        Some((h, g)) => (PathBuf::from(h), g.to_string()),
        None => {
            let h = PathBuf::from(spec);
            let g = default_guest(&h)
                .with_context(|| format!("'{spec}': give the guest path as HOST:GUEST"))?;
            (h, g)
        }
    };
    Ok((host, crate::initrd::guest_path(&guest)?))
}

/// Pack the files `files` names into a ramdisk for `arch`; None if there
/// are none. Shows what was added.
pub fn build_initrd(workspace: &Path, arch: Arch, files: &FileArgs) -> Result<Option<PathBuf>> {
    if files.add.is_empty() && files.add_dir.is_empty() {
        if files.libs || files.sysroot.is_some() {
            bail!("--libs and --sysroot apply to files added with --add; none were");
        }
        return Ok(None);
    }
    let mut initrd = Initrd::new();
    for spec in &files.add_dir {
        let (host, guest) = split_spec(spec, |_| None)?;
        initrd.add_dir(&host, &guest)?;
    }
    let mut dynamic = Vec::new();
    for spec in &files.add {
        let (host, guest) = split_spec(spec, |h| {
            h.file_name().map(|n| format!("/{}", n.to_string_lossy()))
        })?;
        let data =
            std::fs::read(&host).with_context(|| format!("cannot read {}", host.display()))?;
        let facts = libs::inspect(&data)
            .with_context(|| format!("{} is not a usable ELF file", host.display()))?;
        match facts {
            Some(d) if d.machine != arch.elf_machine() => bail!(
                "{} is a program for another architecture (e_machine {}), not {arch}: pass --arch",
                host.display(),
                d.machine
            ),
            Some(d) if files.libs || d.interpreter.is_some() => dynamic.push((host, guest)),
            _ => initrd.add_file(&host, &guest)?,
        }
    }
    if !dynamic.is_empty() {
        let sysroot = libs::choose_sysroot(files.sysroot.as_deref(), arch, &dynamic[0].0)?;
        for (host, guest) in &dynamic {
            let added = libs::add_with_libraries(&mut initrd, &sysroot, arch, host, guest)?;
            if !added.is_empty() {
                eprintln!("cargo keel: {guest} needs {}", added.join(", "));
            }
        }
    }
    let dir = workspace.join("target").join("keel");
    std::fs::create_dir_all(&dir)?;
    let out = dir.join(format!("run-{arch}.cpio"));
    initrd.write(&out)?;
    Ok(Some(out))
}

fn is_option(word: &str) -> bool {
    match word.split_once('=') {
        Some((key, _)) => {
            !key.is_empty()
                && !key.contains('/')
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        }
        None => false,
    }
}

/// Boot `vm` interactively; returns the process exit status to use.
pub fn run(vm: &Vm, timeout: Option<Duration>) -> Result<i32> {
    let symbols = Symbols::load(&vm.image);
    let session = Session::start(vm)?;
    let started = std::time::Instant::now();
    let mut marker = None;
    loop {
        let wait = match timeout {
            Some(t) => t.saturating_sub(started.elapsed()),
            None => Duration::from_secs(3600),
        };
        match session.next(wait) {
            Next::Line(raw) => {
                println!("{}", symbols.annotate(raw.trim_end_matches(['\r', '\n'])));
                if let Line::Exit(e) = protocol::parse(&raw) {
                    marker = Some(e);
                }
            }
            Next::End => break,
            Next::Silent if timeout.is_some_and(|t| started.elapsed() >= t) => {
                session.kill();
                eprintln!(
                    "cargo keel: stopped the guest after the {} s timeout",
                    timeout.unwrap_or_default().as_secs()
                );
                return Ok(UNKNOWN_STATUS);
            }
            Next::Silent => {}
        }
    }
    let (status, _) = session.wait()?;
    let code = status.code().unwrap_or(-1);
    Ok(match marker {
        None => {
            eprintln!(
                "cargo keel: the guest ended without an exit marker (QEMU status {code}): it crashed or was stopped"
            );
            UNKNOWN_STATUS
        }
        Some(exit) => {
            let expected = vm.arch.expected_qemu_status(exit);
            if code != expected {
                eprintln!(
                    "cargo keel: the guest said {exit:?} but QEMU exited with {code} (expected {expected}); treating it as a failure"
                );
                UNKNOWN_STATUS
            } else {
                match exit {
                    GuestExit::Code(n) => i32::from(n),
                    GuestExit::Panic => {
                        eprintln!("cargo keel: the kernel panicked");
                        PANIC_STATUS
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::kernel_cmdline;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn options_then_app_argv() {
        let none: &[String] = &[];
        assert_eq!(
            kernel_cmdline(&words(&["keel.test=all"]), none).unwrap(),
            "keel.test=all"
        );
        assert_eq!(
            kernel_cmdline(
                &words(&["keel.x=1", "/bin/app", "-v", "two words", "a=b"]),
                none
            )
            .unwrap(),
            "keel.x=1 -- /bin/app -v \"two words\" a=b"
        );
        assert_eq!(kernel_cmdline(&words(&["/app"]), none).unwrap(), "-- /app");
        assert_eq!(
            kernel_cmdline(&words(&["/app"]), &words(&["A=1"])).unwrap(),
            "-- A=1 /app"
        );
        assert!(kernel_cmdline(&words(&["/app", "say \"hi\""]), none).is_err());
        assert!(kernel_cmdline(&words(&["keel.x=1"]), &words(&["A=1"])).is_err());
        assert!(super::parse_env("PATH=/x").is_ok() && super::parse_env("1X=2").is_err());
    }
}
