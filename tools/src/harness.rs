//! `cargo keel test`: host unit tests, lints, every arch crate built, then
//! the in-kernel suites in QEMU across machine models and CPU counts.
//!
//! A guest run ends in one of: a clean finish (end marker and a matching
//! QEMU status), a test failure, a crash (panic, or QEMU gone without the
//! marker), a hang (no output for too long) or a status mismatch. After a
//! crash or hang inside a test, that test is recorded as failed and the
//! guest is booted again to run the tests after it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::arch::{Arch, GuestExit};
use crate::protocol::{self, Line, Outcome};
use crate::qemu::{Accel, Next, Session, Vm};
use crate::symbols::Symbols;

/// A guest that prints nothing for this long is hung.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(150);
/// The same, for the self-check, whose hang is deliberate.
const SELF_CHECK_SILENCE: Duration = Duration::from_secs(8);
/// No boot may take longer than this.
const BOOT_LIMIT: Duration = Duration::from_secs(30 * 60);
/// Reboots after crashes per configuration before giving up.
const MAX_REBOOTS: usize = 8;

/// Tallies across everything run.
#[derive(Default)]
pub struct Tally {
    /// Passed.
    pub passed: usize,
    /// Failed (including crashes, hangs and mismatches).
    pub failed: usize,
    /// Skipped by the tests themselves.
    pub skipped: usize,
    /// Names of what failed, for the closing list.
    pub failures: Vec<String>,
    /// Print nothing per test (the self-check's deliberate failures).
    pub quiet: bool,
    /// Verdict per reported test (`label name` -> passed/skipped/failed),
    /// for checks the host makes after a guest ran.
    pub outcomes: std::collections::BTreeMap<String, &'static str>,
}

impl Tally {
    /// Print a report line unless quiet.
    fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            println!("{}", line.as_ref());
        }
    }

    fn pass(&mut self) {
        self.passed += 1;
    }
    /// Count a failure of `what`.
    pub fn fail(&mut self, what: String) {
        self.failed += 1;
        self.failures.push(what);
    }
}

/// The guest configurations each arch's suite runs on.
pub fn configurations(arch: Arch) -> Vec<(&'static str, u32)> {
    match arch {
        Arch::X86_64 => vec![
            ("microvm", 1),
            ("microvm", 2),
            ("microvm", 4),
            ("q35", 1),
            ("q35", 4),
        ],
        // Both GICs and both CPU models with 1, 2 and 4 CPUs; entry at EL2
        // with each GIC; one ELF boot (the DTB found at RAM base).
        Arch::Aarch64 => vec![
            ("virt-gicv3-max", 1),
            ("virt-gicv3-max", 2),
            ("virt-gicv3-max", 4),
            ("virt-gicv3-a72", 1),
            ("virt-gicv3-a72", 2),
            ("virt-gicv3-a72", 4),
            ("virt-gicv2-max", 1),
            ("virt-gicv2-max", 2),
            ("virt-gicv2-max", 4),
            ("virt-gicv2-a72", 1),
            ("virt-gicv2-a72", 2),
            ("virt-gicv2-a72", 4),
            ("virt-gicv3-max-el2", 2),
            ("virt-gicv2-a72-el2", 4),
            ("virt-gicv3-a72-elf", 2),
        ],
        // VOF (fast) on both CPU generations at every CPU count, and one
        // boot through SLOF, the firmware a default QEMU/KVM guest gets.
        Arch::Ppc64 => vec![
            ("pseries-vof-power9", 1),
            ("pseries-vof-power9", 2),
            ("pseries-vof-power9", 4),
            ("pseries-vof-power10", 1),
            ("pseries-vof-power10", 2),
            ("pseries-vof-power10", 4),
            ("pseries-slof-power9", 2),
        ],
    }
}

/// Run the in-kernel suite of `image` on one configuration.
pub fn run_guest_suite(
    base: &Vm,
    filter: &str,
    symbols: &Symbols,
    verbose: bool,
    tally: &mut Tally,
) -> Result<()> {
    run_suite(base, filter, symbols, verbose, SILENCE_LIMIT, tally)
}

/// Boot a guest program that runs tests itself and reports them in the
/// same protocol (the Linux ABI suites); `label` names it in reports.
pub fn run_app_suite(
    vm: &Vm,
    label: &str,
    symbols: &Symbols,
    verbose: bool,
    tally: &mut Tally,
) -> Result<()> {
    let mut seen = BTreeSet::new();
    if let BootEnd::Died { in_test, why } =
        boot_once(vm, symbols, verbose, SILENCE_LIMIT, label, &mut seen, tally)?
    {
        let what = match in_test {
            Some(t) => format!("{label} {t}"),
            None => label.to_string(),
        };
        tally.say(format!("test {what} ... FAILED: {why}"));
        tally.fail(format!("{what}: {why}"));
    }
    Ok(())
}

fn run_suite(
    base: &Vm,
    filter: &str,
    symbols: &Symbols,
    verbose: bool,
    silence: Duration,
    tally: &mut Tally,
) -> Result<()> {
    let label = base.label();
    let mut after: Option<String> = None;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for attempt in 0..=MAX_REBOOTS {
        let mut vm = base.clone();
        vm.cmdline = match &after {
            Some(a) => format!("keel.test={filter} keel.test.after={a}"),
            None => format!("keel.test={filter}"),
        };
        let run = boot_once(&vm, symbols, verbose, silence, &label, &mut seen, tally)?;
        match run {
            BootEnd::Finished => return Ok(()),
            BootEnd::Died {
                in_test: Some(test),
                why,
            } => {
                tally.fail(format!("{label} {test}: {why}"));
                tally.say(format!("test {label} {test} ... FAILED: {why}"));
                after = Some(test);
                if attempt == MAX_REBOOTS {
                    tally.fail(format!("{label}: gave up after {MAX_REBOOTS} reboots"));
                }
            }
            BootEnd::Died { in_test: None, why } => {
                tally.fail(format!("{label}: {why}"));
                tally.say(format!("boot {label} ... FAILED: {why}"));
                return Ok(());
            }
        }
    }
    Ok(())
}

enum BootEnd {
    /// Ran to the end marker, with a matching status.
    Finished,
    /// Crashed, hung, or ended wrongly; `in_test` names the test running then.
    Died {
        in_test: Option<String>,
        why: String,
    },
}

fn boot_once(
    vm: &Vm,
    symbols: &Symbols,
    verbose: bool,
    silence: Duration,
    label: &str,
    seen: &mut BTreeSet<String>,
    tally: &mut Tally,
) -> Result<BootEnd> {
    let session = Session::start(vm)?;
    let started = Instant::now();
    let mut current: Option<String> = None;
    let mut test_log: Vec<String> = Vec::new();
    let mut boot_log: Vec<String> = Vec::new();
    let mut marker: Option<GuestExit> = None;
    let mut guest_summary = None;
    let mut panic: Option<String> = None;
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    loop {
        if started.elapsed() > BOOT_LIMIT {
            let _ = session.kill();
            return Ok(BootEnd::Died {
                in_test: current,
                why: format!("boot ran longer than {} s", BOOT_LIMIT.as_secs()),
            });
        }
        match session.next(silence) {
            Next::Line(raw) => {
                let text = symbols.annotate(raw.trim_end());
                if verbose {
                    println!("  | {text}");
                }
                boot_log.push(text.clone());
                match protocol::parse(&raw) {
                    Line::TestStart(name) => {
                        current = Some(name);
                        test_log.clear();
                    }
                    Line::TestResult(name, outcome) => {
                        current = None;
                        match &outcome {
                            Outcome::Passed(_) => passed += 1,
                            Outcome::Skipped(_) => skipped += 1,
                            Outcome::Failed(_) => failed += 1,
                        }
                        let key = format!("{label} {name}");
                        if !seen.insert(key.clone()) {
                            continue; // reported in an earlier boot of this configuration
                        }
                        let verdict = match &outcome {
                            Outcome::Passed(_) => "passed",
                            Outcome::Skipped(_) => "skipped",
                            Outcome::Failed(_) => "failed",
                        };
                        tally.outcomes.insert(key.clone(), verdict);
                        match outcome {
                            Outcome::Passed(ms) => {
                                tally.pass();
                                tally.say(format!("test {key} ... ok ({ms} ms)"));
                            }
                            Outcome::Skipped(why) => {
                                tally.skipped += 1;
                                tally.say(format!("test {key} ... skipped: {why}"));
                            }
                            Outcome::Failed(why) => {
                                tally.fail(key.clone());
                                tally.say(format!("test {key} ... FAILED: {why}"));
                                if !verbose {
                                    for l in &test_log {
                                        tally.say(format!("  | {l}"));
                                    }
                                }
                            }
                        }
                    }
                    Line::Summary {
                        passed,
                        failed,
                        skipped,
                    } => guest_summary = Some((passed, failed, skipped)),
                    Line::Panic(msg) => panic = Some(msg),
                    Line::Exit(e) => marker = Some(e),
                    _ => test_log.push(text),
                }
            }
            Next::End => break,
            Next::Silent => {
                let _ = session.kill();
                if !verbose && !tally.quiet {
                    print_tail(&boot_log);
                }
                return Ok(BootEnd::Died {
                    in_test: current,
                    why: format!("hang: no console output for {} s", silence.as_secs()),
                });
            }
        }
    }
    let (status, _) = session.wait()?;
    let code = status.code().unwrap_or(-1);
    let quiet = tally.quiet;
    let died = |why: String, current: Option<String>, log: &[String]| {
        if !verbose && !quiet {
            print_tail(log);
        }
        Ok(BootEnd::Died {
            in_test: current,
            why,
        })
    };
    match marker {
        None => died(
            format!("crash: QEMU exited with status {code} and no exit marker"),
            current,
            &boot_log,
        ),
        Some(GuestExit::Panic) => died(
            format!("kernel panic: {}", panic.unwrap_or_default()),
            current,
            &boot_log,
        ),
        Some(exit) => {
            let expected = vm.arch.expected_qemu_status(exit);
            if code != expected {
                return died(
                    format!(
                        "exit marker says {exit:?} but QEMU exited with {code} (expected {expected})"
                    ),
                    None,
                    &boot_log,
                );
            }
            // The guest's own count must match what reached the host this boot,
            // and its exit status must say whether anything failed.
            match guest_summary {
                None => died(
                    "the guest never printed its summary line".into(),
                    None,
                    &boot_log,
                ),
                Some(counts) if counts != (passed, failed, skipped) => died(
                    format!(
                        "guest counted {counts:?} (passed, failed, skipped) but the host saw ({passed}, {failed}, {skipped})"
                    ),
                    None,
                    &boot_log,
                ),
                Some((_, f, _)) if exit != GuestExit::Code(u8::from(f > 0)) => died(
                    format!("guest reported {f} failures but exit status {exit:?}"),
                    None,
                    &boot_log,
                ),
                Some(_) => Ok(BootEnd::Finished),
            }
        }
    }
}

/// Tests that must find the devices `test_devices::attach` gave the guest.
const DEVICE_TESTS: [&str; 4] = [
    crate::test_devices::DISK_TEST,
    "virtio_nic_arp_round_trip",
    "virtio_rng_delivers_bytes",
    "virtio_features_are_only_those_the_drivers_honour",
];

/// After a suite ran with the test devices attached: a device test that
/// skipped (device not found) fails, and when the disk round trip passed
/// the image must hold exactly its bytes, read back from the host.
pub fn check_test_devices(label: &str, image: &Path, tally: &mut Tally) -> Result<()> {
    for test in DEVICE_TESTS {
        let verdict = tally
            .outcomes
            .iter()
            .find(|(k, _)| k.starts_with(label) && k.ends_with(test))
            .map(|(_, v)| *v);
        match verdict {
            Some("skipped") => {
                tally.say(format!(
                    "test {label} {test} ... FAILED: the harness attached the device but the guest did not find it"
                ));
                tally.fail(format!("{label} {test}: device not found"));
            }
            Some("passed") if test == crate::test_devices::DISK_TEST => {
                let what = format!("{label} host check of the disk image");
                match crate::test_devices::check_disk(image)? {
                    None => {
                        tally.pass();
                        tally.say(format!("test {what} ... ok"));
                    }
                    Some(why) => {
                        tally.say(format!("test {what} ... FAILED: {why}"));
                        tally.fail(format!("{what}: {why}"));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Check the harness itself: run the deliberately broken probe tests and
/// require exactly the verdicts they deserve (a panic and a hang reported as
/// failures, and the test after them still run). Returns why it failed.
pub fn self_check(base: &Vm, symbols: &Symbols) -> Result<Option<String>> {
    let mut probe = Tally {
        quiet: true,
        ..Tally::default()
    };
    run_suite(
        base,
        "harness_probe",
        symbols,
        false,
        SELF_CHECK_SILENCE,
        &mut probe,
    )?;
    let has = |what: &str, verdict: &str| {
        probe
            .failures
            .iter()
            .any(|f| f.contains(what) && f.contains(verdict))
    };
    let ok = probe.passed == 1
        && probe.failed == 2
        && has("harness_probe::panics", "kernel panic")
        && has("harness_probe::hangs_with_interrupts_off", "hang");
    Ok((!ok).then(|| {
        format!(
            "expected 1 pass and a panic and a hang reported; got {} passed, failures {:?}",
            probe.passed, probe.failures
        )
    }))
}

fn print_tail(log: &[String]) {
    let from = log.len().saturating_sub(40);
    println!("  last console lines:");
    for l in &log[from..] {
        println!("  | {l}");
    }
}

/// Guest memory per configuration: one configuration per arch gets RAM
/// above 4 GiB (x86_64 q35 with 4 CPUs; aarch64 virt-gicv3-max with 4,
/// whose RAM starts at 1 GiB).
fn suite_memory(arch: Arch, machine: &str, smp: u32) -> &'static str {
    match (arch, machine, smp) {
        (Arch::X86_64, "q35", 4)
        | (Arch::Aarch64, "virt-gicv3-max", 4)
        | (Arch::Ppc64, "pseries-vof-power10", 4) => "5G",
        _ => "512M",
    }
}

/// Build a VM description for the suite.
pub fn suite_vm(arch: Arch, machine: &str, smp: u32, image: &Path) -> Vm {
    Vm {
        arch,
        machine: Some(machine.to_string()),
        smp,
        memory: suite_memory(arch, machine, smp).into(),
        accel: Accel::Tcg,
        image: image.to_path_buf(),
        cmdline: String::new(),
        interactive: false,
        initrd: None,
        devices: Vec::new(),
    }
}
