//! Starting a Keel guest in QEMU and reading its console line by line.
//!
//! Each arch has its own argument builder (`x86_64.rs`, `aarch64.rs`,
//! `ppc64.rs`); this module holds what they share.

pub mod aarch64;
mod ppc64;
mod x86_64;

pub use x86_64::QBOOT;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::arch::Arch;

/// How QEMU runs guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Accel {
    /// Software emulation (works everywhere).
    Tcg,
    /// Hardware virtualisation through /dev/kvm (host arch only).
    Kvm,
}

/// Everything needed to boot one guest.
#[derive(Clone, Debug)]
pub struct Vm {
    /// Guest architecture.
    pub arch: Arch,
    /// Machine model, or `None` for the arch's default.
    pub machine: Option<String>,
    /// Number of vCPUs.
    pub smp: u32,
    /// Memory size as QEMU takes it (`256M`, `2G`).
    pub memory: String,
    /// Accelerator.
    pub accel: Accel,
    /// Kernel image.
    pub image: PathBuf,
    /// Kernel command line.
    pub cmdline: String,
    /// Pass the terminal's input to the guest console.
    pub interactive: bool,
    /// Initial ramdisk (the app's files).
    pub initrd: Option<PathBuf>,
    /// Extra QEMU arguments attaching devices (disks, NICs), e.g. what the
    /// test harness gives each suite configuration.
    pub devices: Vec<String>,
}

impl Vm {
    /// The machine model name actually used.
    pub fn machine_name(&self) -> String {
        self.machine
            .clone()
            .unwrap_or_else(|| default_machine(self.arch).to_string())
    }

    /// The full QEMU command.
    pub fn command(&self) -> Result<Command> {
        let machine = self.machine_name();
        let mut args: Vec<String> = vec![
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
        ];
        args.extend([
            "-m".into(),
            self.memory.clone(),
            "-smp".into(),
            self.smp.to_string(),
        ]);
        args.extend(match self.accel {
            Accel::Tcg => ["-accel".into(), "tcg".into()],
            Accel::Kvm => ["-accel".into(), "kvm".into()],
        });
        args.extend(["-serial".into(), "stdio".into(), "-no-reboot".into()]);
        args.extend(match self.arch {
            Arch::X86_64 => x86_64::args(self, &machine)?,
            Arch::Aarch64 => aarch64::args(self, &machine)?,
            Arch::Ppc64 => ppc64::args(self, &machine)?,
        });
        args.extend(self.devices.iter().cloned());
        args.extend([
            "-kernel".into(),
            self.kernel_file(&machine)?.display().to_string(),
        ]);
        if let Some(initrd) = &self.initrd {
            args.extend(["-initrd".into(), initrd.display().to_string()]);
        }
        let mut cmdline = self.cmdline.clone();
        if let Some(extra) = self.platform_cmdline() {
            cmdline = if cmdline.is_empty() {
                extra
            } else {
                format!("{extra} {cmdline}")
            };
        }
        if !cmdline.is_empty() {
            args.extend(["-append".into(), cmdline]);
        }
        let mut cmd = Command::new(self.arch.qemu_binary());
        cmd.args(&args);
        Ok(cmd)
    }

    /// The file QEMU loads: the built image, or what the arch makes of it
    /// (aarch64 boots the arm64 Image made from the ELF).
    fn kernel_file(&self, machine: &str) -> Result<PathBuf> {
        match self.arch {
            Arch::Aarch64 => aarch64::kernel_file(self, machine),
            _ => Ok(self.image.clone()),
        }
    }

    /// Options the platform needs on this host (e.g. the TSC rate under TCG).
    fn platform_cmdline(&self) -> Option<String> {
        match self.arch {
            Arch::X86_64 => x86_64::extra_cmdline(self),
            _ => None,
        }
    }

    /// A short label for reports: `x86_64/microvm/smp2`.
    pub fn label(&self) -> String {
        format!("{}/{}/smp{}", self.arch, self.machine_name(), self.smp)
    }
}

/// The machine model used when none is asked for: the fastest to boot.
pub fn default_machine(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "microvm",
        Arch::Aarch64 => "virt",
        Arch::Ppc64 => "pseries",
    }
}

/// What reading the console produced.
pub enum Next {
    /// A line (lossily decoded).
    Line(String),
    /// The guest closed its console (QEMU is exiting).
    End,
    /// No output within the timeout.
    Silent,
}

/// A running guest.
pub struct Session {
    child: Child,
    lines: Receiver<String>,
    started: Instant,
}

impl Session {
    /// Start QEMU for `vm`.
    pub fn start(vm: &Vm) -> Result<Self> {
        let mut cmd = vm.command()?;
        cmd.stdin(if vm.interactive {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
        Self::spawn(cmd)
    }

    /// Start an arbitrary QEMU command line (a Linux baseline guest).
    pub fn spawn(mut cmd: Command) -> Result<Self> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start {}", cmd.get_program().to_string_lossy()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.by_ref().take(1 << 16).read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(Self {
            child,
            lines: rx,
            started,
        })
    }

    /// The next console line, waiting at most `timeout`.
    pub fn next(&self, timeout: Duration) -> Next {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => Next::Line(l),
            Err(RecvTimeoutError::Timeout) => Next::Silent,
            Err(RecvTimeoutError::Disconnected) => Next::End,
        }
    }

    /// Wait for QEMU to exit (bounded: a QEMU that closed its console but
    /// lingers is killed after a few seconds).
    pub fn wait(mut self) -> Result<(ExitStatus, Duration)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((status, self.started.elapsed()));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("QEMU closed the console but did not exit; killed it");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stop the guest now.
    pub fn kill(mut self) -> Duration {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.started.elapsed()
    }
}
