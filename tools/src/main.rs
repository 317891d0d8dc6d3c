//! `cargo keel`: build, run, test and benchmark Keel kernels.
//!
//! Errors print one clear line (with the fix where there is one) and exit
//! non-zero; nothing here panics on bad input.

mod arch;
mod bench;
mod bench_syscall;
mod cargo;
mod empty_kernel;
mod guest_programs;
mod harness;
mod image;
mod initrd;
mod libs;
mod linux_baseline;
mod linux_suite;
mod net_phase;
mod protocol;
mod qemu;
mod referees;
mod run;
mod setup;
mod symbols;
mod test_devices;
mod zfs_guest;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use arch::Arch;
use qemu::{Accel, Vm};

/// Build, run, test and benchmark Keel kernels.
#[derive(Parser)]
#[command(name = "cargo keel", bin_name = "cargo keel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the kernel image for an architecture (aarch64: the ELF, then the
    /// arm64 Image made from it).
    Build(BuildArgs),
    /// Build and boot a kernel in QEMU with its console on this terminal;
    /// exits with the guest's exit status.
    Run(RunArgs),
    /// Run every test: host unit tests, lints, and the in-kernel suites in QEMU.
    Test(TestArgs),
    /// Write a ZFS pool image holding the app and its files (no guest boot).
    Image(image::ImageArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Args)]
struct BuildArgs {
    /// Architecture [default: the host's].
    #[arg(long, value_enum)]
    arch: Option<Arch>,
    /// Optimised build.
    #[arg(long)]
    release: bool,
}

#[derive(Args)]
struct RunArgs {
    /// Architecture [default: the host's].
    #[arg(long, value_enum)]
    arch: Option<Arch>,
    /// Machine model (x86_64: microvm, q35; aarch64: virt, or variants like
    /// virt-gicv2-a72-el2) [default: the fastest].
    #[arg(long)]
    machine: Option<String>,
    /// Number of virtual CPUs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    smp: u32,
    /// Guest memory, e.g. 256M or 2G.
    #[arg(long, default_value = "256M", value_parser = parse_memory)]
    memory: String,
    /// Accelerator: tcg (software) or kvm.
    #[arg(long, value_enum, default_value_t = Accel::Tcg)]
    accel: Accel,
    /// Optimised build.
    #[arg(long)]
    release: bool,
    /// Stop the guest after this many seconds.
    #[arg(long)]
    timeout: Option<u64>,
    #[command(flatten)]
    files: run::FileArgs,
    /// Attach a raw disk image as a virtio disk (repeatable: vda, vdb, …);
    /// a ZFS pool image (`cargo keel image`) on one becomes the root.
    #[arg(long, visible_alias = "image", value_name = "IMAGE")]
    disk: Vec<PathBuf>,
    /// Attach a virtio NIC on QEMU user networking.
    #[arg(long)]
    net: bool,
    /// Set an environment variable for the app (repeatable): NAME=VALUE.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = run::parse_env)]
    env: Vec<String>,
    /// Kernel options (`keel.x=y`), then the app and its arguments.
    #[arg(last = true)]
    cmdline: Vec<String>,
}

#[derive(Args)]
struct TestArgs {
    /// Architecture, or `all` [default: all that have a kernel image].
    #[arg(long, default_value = "all")]
    arch: String,
    /// Run only tests whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Only configurations with this many CPUs.
    #[arg(long)]
    smp: Option<u32>,
    /// Only configurations on this machine model.
    #[arg(long)]
    machine: Option<String>,
    /// Show every console line of every guest.
    #[arg(long)]
    verbose: bool,
    /// Skip formatting and clippy checks.
    #[arg(long)]
    no_lint: bool,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time to ready and whole-QEMU time vs an empty kernel.
    Boot {
        /// Architecture [default: the host's].
        #[arg(long, value_enum)]
        arch: Option<Arch>,
        /// Machine model [default: the fastest].
        #[arg(long)]
        machine: Option<String>,
        /// Boots of each image.
        #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(10..=1000))]
        runs: u64,
        /// Number of virtual CPUs.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        smp: u32,
    },
    /// Null system call and futex ping-pong, Keel vs a Linux guest.
    Syscall {
        /// Architecture [default: the host's].
        #[arg(long, value_enum)]
        arch: Option<Arch>,
        /// Boots of each kernel.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=50))]
        boots: u64,
        /// Number of virtual CPUs.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        smp: u32,
    },
}

/// Accept `512`, `512M`, `2G` (QEMU's syntax); refuse anything else.
fn parse_memory(s: &str) -> Result<String, String> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "M"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a size like 256M or 2G"))?;
    let mib = match unit {
        "M" | "m" | "MiB" => n,
        "G" | "g" | "GiB" => n.saturating_mul(1024),
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use M or G)")),
    };
    if !(64..=1024 * 1024).contains(&mib) {
        return Err(format!("'{s}': Keel needs between 64M and 1024G"));
    }
    Ok(format!("{mib}M"))
}

/// The workspace root: the nearest ancestor with a `[workspace]` manifest.
fn workspace_root() -> Result<PathBuf> {
    let start = std::env::current_dir()?;
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if manifest.exists()
            && std::fs::read_to_string(&manifest).is_ok_and(|t| t.contains("[workspace]"))
        {
            return Ok(dir.to_path_buf());
        }
    }
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf);
    built_in
        .filter(|p| p.join("Cargo.toml").exists())
        .context("run cargo keel inside the Keel workspace")
}

fn host_arch() -> Result<Arch> {
    Arch::host().context("the host architecture is not one Keel supports; pass --arch")
}

fn prepare(workspace: &Path, arches: &[Arch]) -> Result<()> {
    let mut targets: Vec<&str> = Arch::ALL.iter().map(|a| a.kernel_target()).collect();
    targets.dedup();
    setup::ensure_rust_targets(workspace, &targets)?;
    for &a in arches {
        setup::ensure_qemu(a)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    // Installed as a cargo subcommand, argv[1] is "keel"; through the alias it is not.
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "keel") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    let workspace = workspace_root()?;
    match cli.command {
        Command::Build(a) => {
            let arch = a.arch.map_or_else(host_arch, Ok)?;
            setup::ensure_rust_targets(&workspace, &[arch.kernel_target()])?;
            let path = cargo::build_image(&workspace, arch, a.release)?;
            println!("{}", path.display());
            if arch == Arch::Aarch64 {
                // The arm64 Image (what loaders other than QEMU's ELF path boot).
                let elf = std::fs::read(&path).context("reading the built image")?;
                let image = qemu::aarch64::image_path(&path);
                std::fs::write(&image, qemu::aarch64::arm64_image_from_elf(&elf)?)
                    .with_context(|| format!("writing {}", image.display()))?;
                println!("{}", image.display());
            }
            Ok(0)
        }
        Command::Run(a) => {
            let arch = a.arch.map_or_else(host_arch, Ok)?;
            prepare(&workspace, &[arch])?;
            let image = cargo::build_image(&workspace, arch, a.release)?;
            let initrd = run::build_initrd(&workspace, arch, &a.files)?;
            let machine = a
                .machine
                .clone()
                .unwrap_or_else(|| qemu::default_machine(arch).to_string());
            let devices = test_devices::run_args(arch, &machine, &a.disk, a.net)?;
            let vm = Vm {
                arch,
                machine: a.machine,
                smp: a.smp,
                memory: a.memory,
                accel: a.accel,
                image,
                cmdline: run::kernel_cmdline(&a.cmdline, &a.env)?,
                interactive: true,
                initrd,
                devices,
            };
            run::run(&vm, a.timeout.map(Duration::from_secs))
        }
        Command::Test(a) => test(&workspace, a),
        Command::Image(a) => image::run(&a).map(|()| 0),
        Command::Bench {
            what: BenchCommand::Syscall { arch, boots, smp },
        } => {
            let arch = arch.map_or_else(host_arch, Ok)?;
            prepare(&workspace, &[arch])?;
            bench_syscall::run(
                &workspace,
                &bench_syscall::SyscallBench {
                    arch,
                    boots: boots as usize,
                    smp,
                },
            )?;
            Ok(0)
        }
        Command::Bench {
            what:
                BenchCommand::Boot {
                    arch,
                    machine,
                    runs,
                    smp,
                },
        } => {
            let arch = arch.map_or_else(host_arch, Ok)?;
            prepare(&workspace, &[arch])?;
            bench::boot_bench(
                &workspace,
                &bench::BootBench {
                    arch,
                    machine,
                    runs: runs as usize,
                    smp,
                },
            )?;
            Ok(0)
        }
    }
}

fn test(workspace: &Path, a: TestArgs) -> Result<i32> {
    let arches: Vec<Arch> = if a.arch == "all" {
        Arch::ALL
            .iter()
            .copied()
            .filter(|x| x.has_image(workspace))
            .collect()
    } else {
        let arch = <Arch as clap::ValueEnum>::from_str(&a.arch, true).map_err(|_| {
            anyhow::anyhow!("unknown arch '{}' (x86_64, aarch64, ppc64 or all)", a.arch)
        })?;
        arch.require_image(workspace)?;
        vec![arch]
    };
    prepare(workspace, &arches)?;
    let mut tally = harness::Tally::default();

    println!("== host unit tests");
    for t in cargo::host_tests(workspace, a.filter.as_deref())? {
        println!(
            "test host {} ... {}",
            t.name,
            if t.ok { "ok" } else { "FAILED" }
        );
        if t.ok {
            tally.passed += 1
        } else {
            tally.failed += 1;
            tally.failures.push(format!("host {}", t.name))
        }
    }

    if !a.no_lint && a.filter.is_none() {
        println!("== lints and every arch built");
        cargo::build_arch_crates(workspace).map_or_else(
            |e| {
                tally.failed += 1;
                tally.failures.push(format!("build: {e}"));
                println!("test build every arch crate ... FAILED: {e}")
            },
            |()| {
                tally.passed += 1;
                println!("test build every arch crate ... ok")
            },
        );
        for (name, ok) in cargo::lints(workspace)? {
            println!("test lint {name} ... {}", if ok { "ok" } else { "FAILED" });
            if ok {
                tally.passed += 1
            } else {
                tally.failed += 1;
                tally.failures.push(format!("lint {name}"))
            }
        }
    }

    if a.filter.is_none() {
        referees::zfs_phase(workspace, &mut tally)?;
    }

    let filter = a.filter.clone().unwrap_or_else(|| "all".into());
    for arch in arches {
        println!("== {arch} in-kernel tests");
        let image = cargo::build_image(workspace, arch, false)?;
        let symbols = symbols::Symbols::load(&image);
        if a.filter.is_none() {
            let vm = harness::suite_vm(arch, harness::configurations(arch)[0].0, 1, &image);
            match harness::self_check(&vm, &symbols)? {
                None => {
                    tally.passed += 1;
                    println!("test {arch} harness self-check ... ok");
                }
                Some(why) => {
                    tally.failed += 1;
                    tally
                        .failures
                        .push(format!("{arch} harness self-check: {why}"));
                    println!("test {arch} harness self-check ... FAILED: {why}");
                }
            }
        }
        for (machine, smp) in harness::configurations(arch) {
            if a.smp.is_some_and(|s| s != smp) || a.machine.as_deref().is_some_and(|m| m != machine)
            {
                continue;
            }
            let mut vm = harness::suite_vm(arch, machine, smp, &image);
            let disk = test_devices::attach(workspace, arch, machine, smp)?;
            if let Some((args, _)) = &disk {
                vm.devices = args.clone();
            }
            harness::run_guest_suite(&vm, &filter, &symbols, a.verbose, &mut tally)?;
            if let Some((_, image)) = disk {
                harness::check_test_devices(&vm.label(), &image, &mut tally)?;
            }
        }
        let (machine, smp) = linux_suite::configuration(arch);
        if a.smp.is_none_or(|s| s == smp) && a.machine.as_deref().is_none_or(|m| m == machine) {
            println!("== {arch} Linux programs");
            linux_suite::run(
                workspace,
                arch,
                &image,
                &symbols,
                a.filter.as_deref(),
                a.verbose,
                &mut tally,
            )?;
        }
        if a.filter.as_deref().is_none_or(|f| f.contains("net"))
            && a.smp.is_none()
            && a.machine.is_none()
        {
            net_phase::phase(workspace, arch, &image, &mut tally)?;
        }
        if a.filter.as_deref().is_none_or(|f| f.contains("zfs"))
            && a.smp.is_none()
            && a.machine.is_none()
        {
            zfs_guest::phase(workspace, &[arch], &mut tally)?;
        }
    }

    println!();
    if !tally.failures.is_empty() {
        println!("failures:");
        for f in &tally.failures {
            println!("  {f}");
        }
    }
    println!(
        "{} passed, {} failed, {} skipped",
        tally.passed, tally.failed, tally.skipped
    );
    if tally.passed + tally.failed == 0 {
        bail!("no test ran (filter '{filter}' matched nothing)");
    }
    Ok(i32::from(tally.failed > 0))
}
