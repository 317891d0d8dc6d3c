//! The Linux ABI suite: unmodified Linux programs booted on Keel. The C and
//! Rust test programs report their own tests over the console; further
//! boots check how programs end (abort, a fatal fault) and that bad
//! executables are refused with a clear message and the right status.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use crate::arch::{Arch, GuestExit};
use crate::guest_programs::{self, GuestPrograms};
use crate::harness::{self, Tally};
use crate::initrd::Initrd;
use crate::libs::{self, Sysroot};
use crate::protocol::{self, Line};
use crate::qemu::{Next, Session, Vm};
use crate::symbols::Symbols;

/// Where the programs sit in the guest.
const DIR: &str = "/tests";

/// The machine and CPU count the suite runs on: two CPUs, so threads
/// really run in parallel.
pub fn configuration(arch: Arch) -> (&'static str, u32) {
    (harness::configurations(arch)[0].0, 2)
}

/// How a boot is judged.
enum Expect {
    /// The program runs tests and reports them (exit 0 when all pass).
    Suite,
    /// The program ends with this status and prints this text.
    Ends(u8, &'static str),
}

struct Boot {
    name: &'static str,
    argv: Vec<String>,
    expect: Expect,
}

fn boots(filter: Option<&str>) -> Vec<Boot> {
    let which = filter.unwrap_or("all").to_string();
    let suite = |name, prog: &str| Boot {
        name,
        argv: vec!["KEEL_TEST=1".into(), format!("{DIR}/{prog}"), which.clone()],
        expect: Expect::Suite,
    };
    let ends = |name, argv: &[&str], status, text| Boot {
        name,
        argv: argv.iter().map(|s| s.to_string()).collect(),
        expect: Expect::Ends(status, text),
    };
    let mut all = vec![
        suite("c-static", "abi-static"),
        suite("c-dynamic", "abi-dynamic"),
        suite("rust", "rust"),
    ];
    if filter.is_none() {
        all.extend([
            ends(
                "abort_ends_with_sigabrt",
                &["/tests/abi-static", "abort"],
                134,
                "killed by SIGABRT",
            ),
            ends(
                "unhandled_fault_ends_with_sigsegv",
                &["/tests/abi-static", "segv"],
                139,
                "killed by SIGSEGV",
            ),
            ends(
                "missing_program_is_127",
                &["/tests/none"],
                127,
                "no such file",
            ),
            ends(
                "truncated_elf_is_refused",
                &["/tests/truncated"],
                126,
                "malformed ELF file",
            ),
            ends(
                "foreign_arch_elf_is_refused",
                &["/tests/foreign"],
                126,
                "built for",
            ),
            ends(
                "garbage_is_not_an_executable",
                &["/tests/garbage"],
                126,
                "not an ELF executable",
            ),
        ]);
    }
    all
}

/// The ramdisk: the programs, the dynamic one's libraries, and the bad
/// executables made from the static one.
fn ramdisk(workspace: &Path, arch: Arch, p: &GuestPrograms) -> Result<std::path::PathBuf> {
    let mut i = Initrd::new();
    i.add_file(&p.c_static, "/tests/abi-static")?;
    i.add_file(&p.rust, "/tests/rust")?;
    libs::add_with_libraries(
        &mut i,
        &Sysroot::new(&p.sysroot)?,
        arch,
        &p.c_dynamic,
        "/tests/abi-dynamic",
    )?;
    let elf = std::fs::read(&p.c_static)?;
    i.add_bytes("/tests/truncated", elf[..200].to_vec(), 0o755)?;
    let mut foreign = elf[..4096].to_vec();
    let other = if arch == Arch::Aarch64 {
        Arch::X86_64
    } else {
        Arch::Aarch64
    };
    foreign[18..20].copy_from_slice(&other.elf_machine().to_le_bytes());
    i.add_bytes("/tests/foreign", foreign, 0o755)?;
    i.add_bytes(
        "/tests/garbage",
        (0..4096u32)
            .map(|n| (n.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect(),
        0o755,
    )?;
    let out = workspace
        .join("target")
        .join("keel")
        .join(format!("linux-suite-{arch}.cpio"));
    i.write(&out)?;
    Ok(out)
}

/// Build the programs and run every boot of the suite on `arch`.
pub fn run(
    workspace: &Path,
    arch: Arch,
    image: &Path,
    symbols: &Symbols,
    filter: Option<&str>,
    verbose: bool,
    tally: &mut Tally,
) -> Result<()> {
    let (machine, smp) = configuration(arch);
    let mut base = harness::suite_vm(arch, machine, smp, image);
    let label = base.label();
    let programs = match guest_programs::build(workspace, arch) {
        Ok(p) => p,
        Err(e) => {
            tally.fail(format!("{label} linux: building the test programs"));
            println!("test {label} linux build ... FAILED: {e:#}");
            return Ok(());
        }
    };
    base.initrd = Some(ramdisk(workspace, arch, &programs)?);
    for boot in boots(filter) {
        let mut vm = base.clone();
        vm.cmdline = format!("-- {}", boot.argv.join(" "));
        let name = format!("{label} linux {}", boot.name);
        match boot.expect {
            Expect::Suite => harness::run_app_suite(&vm, &name, symbols, verbose, tally)?,
            Expect::Ends(status, text) => {
                ends_as_expected(&vm, &name, status, text, verbose, tally)?
            }
        }
    }
    Ok(())
}

/// Boot a program that must end with `status` after printing `text`.
fn ends_as_expected(
    vm: &Vm,
    name: &str,
    status: u8,
    text: &str,
    verbose: bool,
    tally: &mut Tally,
) -> Result<()> {
    let started = Instant::now();
    let session = Session::start(vm)?;
    let mut log = Vec::new();
    let mut marker = None;
    loop {
        match session.next(harness::SILENCE_LIMIT) {
            Next::Line(raw) => {
                let line = raw.trim_end().to_string();
                if verbose {
                    println!("  | {line}");
                }
                if let Line::Exit(e) = protocol::parse(&line) {
                    marker = Some(e);
                }
                log.push(line);
            }
            Next::End => break,
            Next::Silent => {
                let _ = session.kill();
                tally.fail(name.to_string());
                println!(
                    "test {name} ... FAILED: hang: no console output for {} s",
                    harness::SILENCE_LIMIT.as_secs()
                );
                return Ok(());
            }
        }
    }
    let (qemu_status, _) = session.wait()?;
    let saw_text = log.iter().any(|l| l.contains(text));
    let expected_qemu = vm.arch.expected_qemu_status(GuestExit::Code(status));
    let why = match marker {
        _ if !saw_text => Some(format!("the console never said \"{text}\"")),
        Some(GuestExit::Code(n)) if n == status && qemu_status.code() == Some(expected_qemu) => {
            None
        }
        Some(GuestExit::Code(n)) if n == status => Some(format!(
            "QEMU exited with {:?}, expected {expected_qemu}",
            qemu_status.code()
        )),
        Some(other) => Some(format!("ended with {other:?}, expected status {status}")),
        None => Some("no exit marker: the guest crashed or hung".into()),
    };
    match why {
        None => {
            tally.passed += 1;
            println!("test {name} ... ok ({} ms)", started.elapsed().as_millis());
        }
        Some(why) => {
            tally.fail(name.to_string());
            println!("test {name} ... FAILED: {why}");
            if !verbose {
                for l in log.iter().rev().take(20).rev() {
                    println!("  | {l}");
                }
            }
        }
    }
    Ok(())
}
