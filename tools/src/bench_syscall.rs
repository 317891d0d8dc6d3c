//! `cargo keel bench syscall`: the cost of a null system call (getppid)
//! and of a futex wake/wait ping-pong between two threads, measured by the
//! same static program on Keel and on a Linux guest in the same QEMU.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::arch::Arch;
use crate::initrd::Initrd;
use crate::linux_baseline;
use crate::qemu::{Accel, Next, Session, Vm};

/// Options of the benchmark.
pub struct SyscallBench {
    /// Architecture.
    pub arch: Arch,
    /// Boots of each kernel.
    pub boots: usize,
    /// vCPUs of each guest.
    pub smp: u32,
}

/// Repetitions per boot, system calls per repetition, ping-pong round trips
/// per repetition.
const PROGRAM_ARGS: &str = "5 200000 20000";

/// What the issue asks of each measurement (Linux / Keel).
const GOALS: [(&str, f64); 2] = [("null_syscall", 3.0), ("futex_pingpong", 2.0)];

fn build_program(workspace: &Path, arch: Arch) -> Result<PathBuf> {
    crate::guest_programs::build_static_c(
        workspace,
        arch,
        "tests/linux/bench/syscall_bench.c",
        "syscall-bench",
    )
}

/// Read "bench NAME ns=VALUE" lines from a guest until it ends.
fn collect(session: Session, results: &mut BTreeMap<String, Vec<f64>>) -> Result<String> {
    let mut kernel = String::new();
    let mut done = false;
    loop {
        match session.next(Duration::from_secs(300)) {
            Next::Line(l) => {
                let l = l.trim();
                if let Some(k) = l.strip_prefix("bench kernel ") {
                    kernel = k.to_string();
                } else if l == "bench done" {
                    done = true;
                } else if let Some(rest) = l.strip_prefix("bench ")
                    && let Some((name, value)) = rest.split_once(" ns=")
                    && let Ok(v) = value.parse::<f64>()
                {
                    results.entry(name.to_string()).or_default().push(v);
                }
            }
            Next::End => break,
            Next::Silent => {
                let _ = session.kill();
                bail!("the guest printed nothing for 300 s");
            }
        }
    }
    let _ = session.wait();
    if !done {
        bail!("the benchmark program did not finish (last kernel seen: {kernel})");
    }
    Ok(kernel)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Run the benchmark and print the report.
pub fn run(workspace: &Path, opts: &SyscallBench) -> Result<()> {
    let arch = opts.arch;
    let program = build_program(workspace, arch)?;
    let image = crate::cargo::build_image(workspace, arch, true)?;
    let linux = linux_baseline::kernel(workspace, arch)?;
    let dir = workspace.join("target").join("keel");
    let keel_initrd = dir.join(format!("bench-syscall-keel-{arch}.cpio"));
    let mut i = Initrd::new();
    i.add_file(&program, "/bench")?;
    i.write(&keel_initrd)?;
    let linux_initrd = dir.join(format!("bench-syscall-linux-{arch}.cpio"));
    let mut i = Initrd::new();
    i.add_file(&program, "/init")?;
    i.write(&linux_initrd)?;

    let vm = Vm {
        arch,
        machine: None,
        smp: opts.smp,
        memory: "512M".into(),
        accel: Accel::Tcg,
        image,
        cmdline: format!("-- /bench {PROGRAM_ARGS}"),
        interactive: false,
        initrd: Some(keel_initrd),
        devices: Vec::new(),
    };
    let (mut keel, mut lin) = (BTreeMap::new(), BTreeMap::new());
    let (mut keel_kernel, mut linux_kernel) = (String::new(), String::new());
    let bar = indicatif::ProgressBar::new(opts.boots as u64 * 2);
    bar.set_message("alternating Keel and Linux boots");
    for _ in 0..opts.boots {
        keel_kernel = collect(Session::start(&vm)?, &mut keel).context("Keel run")?;
        bar.inc(1);
        let cmd = linux_baseline::qemu_command(arch, &linux, &linux_initrd, opts.smp, PROGRAM_ARGS);
        linux_kernel = collect(Session::spawn(cmd)?, &mut lin).context("Linux run")?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "syscall benchmark: {} under TCG, {} vCPU(s), {} boots x 5 repetitions each (medians)",
        arch, opts.smp, opts.boots
    );
    println!("  Keel:  {keel_kernel}");
    println!(
        "  Linux: {linux_kernel} (Debian {}, same QEMU)",
        linux.file_name().unwrap_or_default().to_string_lossy()
    );
    println!(
        "  {:<16} {:>10} {:>10} {:>12} {:>8}",
        "", "Keel ns", "Linux ns", "Linux/Keel", "goal"
    );
    for (name, goal) in GOALS {
        let (k, l) = (keel.get(name), lin.get(name));
        match (k, l) {
            (Some(k), Some(l)) => {
                let (k, l) = (median(k), median(l));
                println!(
                    "  {name:<16} {k:>10.1} {l:>10.1} {:>11.2}x {:>7}",
                    l / k,
                    format!(">= {goal}x")
                );
            }
            _ => println!("  {name:<16} (no measurement: see the console output above)"),
        }
    }
    Ok(())
}
