//! `cargo keel bench boot`: how long Keel takes from its first instruction
//! to "ready to run the app", and how a whole QEMU run of Keel compares
//! with one of an empty kernel that powers off at once (QEMU's floor).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::arch::Arch;
use crate::protocol::{self, Line};
use crate::qemu::{Accel, Next, Session, Vm};

/// Options of a boot benchmark.
pub struct BootBench {
    /// Architecture.
    pub arch: Arch,
    /// Machine model (default: the arch's fastest).
    pub machine: Option<String>,
    /// Boots of each image (at least 10).
    pub runs: usize,
    /// vCPUs.
    pub smp: u32,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Boot once; returns the whole-process time and the guest's ready time.
fn boot(vm: &Vm) -> Result<(Duration, Option<u64>)> {
    let session = Session::start(vm)?;
    let mut ready = None;
    loop {
        match session.next(Duration::from_secs(60)) {
            Next::Line(l) => {
                if let Line::Ready(us) = protocol::parse(&l) {
                    ready = Some(us);
                }
            }
            Next::End => break,
            Next::Silent => {
                session.kill();
                bail!("the guest printed nothing for 60 s");
            }
        }
    }
    let (_, wall) = session.wait()?;
    Ok((wall, ready))
}

/// Run the benchmark and print the report.
pub fn boot_bench(workspace: &Path, opts: &BootBench) -> Result<()> {
    let image = crate::cargo::build_image(workspace, opts.arch, true)?;
    let empty = workspace
        .join("target")
        .join(format!("keel-empty-{}.elf", opts.arch));
    std::fs::write(&empty, crate::empty_kernel::image(opts.arch)?)
        .context("writing the empty kernel")?;
    let vm = |image: &Path| Vm {
        arch: opts.arch,
        machine: opts.machine.clone(),
        smp: opts.smp,
        memory: "256M".into(),
        accel: Accel::Tcg,
        image: image.to_path_buf(),
        cmdline: String::new(),
        interactive: false,
        initrd: None,
        devices: Vec::new(),
    };
    let (keel_vm, empty_vm) = (vm(&image), vm(&empty));
    let (mut ready, mut keel_wall, mut empty_wall) = (Vec::new(), Vec::new(), Vec::new());
    let bar = indicatif::ProgressBar::new(opts.runs as u64 * 2);
    bar.set_message(format!("booting {} and an empty kernel", keel_vm.label()));
    // Interleave the two so both see the same machine conditions.
    for _ in 0..opts.runs {
        let (wall, us) = boot(&keel_vm)?;
        let us = us.context("Keel never printed 'keel: ready in N us'")?;
        ready.push(us as f64);
        keel_wall.push(wall.as_secs_f64() * 1000.0);
        bar.inc(1);
        let (wall, _) = boot(&empty_vm)?;
        empty_wall.push(wall.as_secs_f64() * 1000.0);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let range = |v: &[f64]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        format!("{lo:.1}..{hi:.1}")
    };
    let (r, k, e) = (
        median(&mut ready.clone()),
        median(&mut keel_wall.clone()),
        median(&mut empty_wall.clone()),
    );
    println!(
        "boot benchmark: {} under TCG, {} runs each (medians)",
        keel_vm.label(),
        opts.runs
    );
    println!(
        "  guest, first instruction to ready:  {:>8.0} us   (range {} us; goal <= 5000 us)",
        r,
        range(&ready)
    );
    println!(
        "  whole QEMU process, Keel:           {:>8.1} ms   (range {} ms)",
        k,
        range(&keel_wall)
    );
    println!(
        "  whole QEMU process, empty kernel:   {:>8.1} ms   (range {} ms)",
        e,
        range(&empty_wall)
    );
    println!(
        "  Keel / empty kernel:                {:>8.2}x     (goal <= 1.50x)",
        k / e
    );
    Ok(())
}
