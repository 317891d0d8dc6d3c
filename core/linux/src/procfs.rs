//! /proc and /sys: the files runtimes read to learn about themselves and
//! the machine (glibc, Go and the JVM look at these), generated from live
//! kernel and process state whenever they are read.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;

use keel_core::app::SPACE;
use keel_core::memory::PAGE_SIZE;
use keel_core::memory::app_space::Backing;
use keel_fs::Inode;
use keel_fs::synth::{Generator, StaticLink, SynthDir, SynthFile, SynthLink};
use keel_hal::machine;

use crate::process::{self, PID};

const PROC_DEV: u64 = 3;
const SYS_DEV: u64 = 4;

type Entry = (String, Arc<dyn Inode>);

fn text(f: impl Fn() -> String + Send + Sync + 'static) -> Generator {
    Arc::new(move || f().into_bytes())
}

fn file(dev: u64, path: &str, g: Generator) -> Entry {
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    (name, SynthFile::new(dev, path, g))
}

fn dir(dev: u64, path: &str, list: impl Fn() -> Vec<Entry> + Send + Sync + 'static) -> Entry {
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    (name, SynthDir::new(dev, path, Arc::new(list)))
}

fn link(name: &str, ino: u64, target: &str) -> Entry {
    (
        name.to_string(),
        Arc::new(StaticLink::new(PROC_DEV, ino, target.to_string())),
    )
}

/// The root of /proc.
pub fn proc_root() -> Arc<dyn Inode> {
    SynthDir::new(
        PROC_DEV,
        "/proc",
        Arc::new(|| {
            alloc::vec![
                link("self", 2, "1"),
                link("thread-self", 3, "1"),
                dir(PROC_DEV, "/proc/1", process_dir),
                file(PROC_DEV, "/proc/meminfo", text(meminfo)),
                file(PROC_DEV, "/proc/cpuinfo", text(cpuinfo)),
                file(PROC_DEV, "/proc/stat", text(stat)),
                file(PROC_DEV, "/proc/uptime", text(uptime)),
                file(PROC_DEV, "/proc/mounts", text(mounts)),
                file(
                    PROC_DEV,
                    "/proc/filesystems",
                    text(
                        || "nodev\tramfs\nnodev\tproc\nnodev\tsysfs\nnodev\tdevtmpfs\n\tzfs\n"
                            .into()
                    )
                ),
                file(PROC_DEV, "/proc/version", text(version)),
                dir(PROC_DEV, "/proc/sys", sys_dir),
            ]
        }),
    )
}

fn version() -> String {
    format!(
        "Linux version {} (keel) #1 SMP Keel {}\n",
        crate::syscall::misc::RELEASE,
        env!("CARGO_PKG_VERSION")
    )
}

fn sys_dir() -> Vec<Entry> {
    alloc::vec![
        dir(PROC_DEV, "/proc/sys/kernel", || {
            alloc::vec![
                file(
                    PROC_DEV,
                    "/proc/sys/kernel/hostname",
                    text(|| format!("{}\n", *process::get().hostname.lock()))
                ),
                file(
                    PROC_DEV,
                    "/proc/sys/kernel/osrelease",
                    text(|| format!("{}\n", crate::syscall::misc::RELEASE))
                ),
                file(
                    PROC_DEV,
                    "/proc/sys/kernel/ostype",
                    text(|| "Linux\n".into())
                ),
                file(
                    PROC_DEV,
                    "/proc/sys/kernel/pid_max",
                    text(|| "4194304\n".into())
                ),
                file(
                    PROC_DEV,
                    "/proc/sys/kernel/threads-max",
                    text(|| "63000\n".into())
                ),
            ]
        }),
        dir(PROC_DEV, "/proc/sys/vm", || {
            alloc::vec![
                // No overcommit policy beyond "heuristic": memory is demand paged.
                file(
                    PROC_DEV,
                    "/proc/sys/vm/overcommit_memory",
                    text(|| "0\n".into())
                ),
                file(
                    PROC_DEV,
                    "/proc/sys/vm/max_map_count",
                    text(|| "65530\n".into())
                ),
            ]
        }),
    ]
}

fn process_dir() -> Vec<Entry> {
    alloc::vec![
        (
            "exe".into(),
            SynthLink::new(
                PROC_DEV,
                "/proc/1/exe",
                Arc::new(|| Some(process::get().exe.lock().clone()))
            ) as Arc<dyn Inode>,
        ),
        (
            "cwd".into(),
            SynthLink::new(
                PROC_DEV,
                "/proc/1/cwd",
                Arc::new(|| Some(process::get().cwd.lock().path.clone()))
            ) as Arc<dyn Inode>,
        ),
        link("root", 4, "/"),
        dir(PROC_DEV, "/proc/1/fd", fd_dir),
        file(PROC_DEV, "/proc/1/maps", text(maps)),
        file(PROC_DEV, "/proc/1/auxv", Arc::new(auxv)),
        file(PROC_DEV, "/proc/1/status", text(status)),
        file(PROC_DEV, "/proc/1/stat", text(process_stat)),
        file(PROC_DEV, "/proc/1/statm", text(statm)),
        file(
            PROC_DEV,
            "/proc/1/cmdline",
            Arc::new(|| nul_joined(&process::get().argv.lock()))
        ),
        file(
            PROC_DEV,
            "/proc/1/environ",
            Arc::new(|| nul_joined(&process::get().envp.lock()))
        ),
        file(PROC_DEV, "/proc/1/comm", text(|| format!("{}\n", comm()))),
        file(PROC_DEV, "/proc/1/mounts", text(mounts)),
        file(PROC_DEV, "/proc/1/mountinfo", text(mountinfo)),
    ]
}

fn nul_joined(items: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in items {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    out
}

fn comm() -> String {
    let exe = process::get().exe.lock().clone();
    let base = exe.rsplit('/').next().unwrap_or("");
    base.chars().take(15).collect()
}

fn fd_dir() -> Vec<Entry> {
    let fds = process::get().fds.lock().list();
    fds.into_iter()
        .map(|(n, _)| {
            let path = format!("/proc/1/fd/{n}");
            let target = Arc::new(move || {
                process::get()
                    .fds
                    .lock()
                    .file(n as i64)
                    .ok()
                    .map(|f| f.path())
            });
            let open = Arc::new(move || process::get().fds.lock().file(n as i64).ok());
            (
                n.to_string(),
                SynthLink::with_open(PROC_DEV, &path, target, open) as Arc<dyn Inode>,
            )
        })
        .collect()
}

fn maps() -> String {
    let mut out = String::new();
    for v in SPACE.mappings() {
        let perm = |bit: u8, c: char| if v.prot & bit != 0 { c } else { '-' };
        let (offset, name) = match (&v.backing, v.label.as_deref()) {
            (Backing::File { offset, .. }, Some(label)) => (*offset, label.to_string()),
            (Backing::File { object, offset }, None) => (*offset, object.describe()),
            (Backing::Anonymous, label) => (0, label.unwrap_or("").to_string()),
        };
        let line = format!(
            "{:08x}-{:08x} {}{}{}{} {:08x} 00:00 0",
            v.start,
            v.end,
            perm(1, 'r'),
            perm(2, 'w'),
            perm(4, 'x'),
            if v.shared { 's' } else { 'p' },
            offset
        );
        if name.is_empty() {
            let _ = writeln!(out, "{line}");
        } else {
            let _ = writeln!(out, "{line:<72} {name}");
        }
    }
    out
}

fn auxv() -> Vec<u8> {
    process::get()
        .auxv
        .lock()
        .iter()
        .flat_map(|(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes()))
        .collect()
}

fn vm_kib() -> (u64, u64) {
    let size: usize = SPACE.mappings().iter().map(|v| v.end - v.start).sum();
    let (free, total) = keel_core::memory::frame::stats();
    // Everything allocated belongs to the one app (and the kernel serving it).
    let rss = (total - free) * PAGE_SIZE;
    (size as u64 / 1024, rss as u64 / 1024)
}

fn status() -> String {
    let p = process::get();
    let creds = p.creds.lock().clone();
    let (vm, rss) = vm_kib();
    let ids = |v: [u32; 3]| format!("{}\t{}\t{}\t{}", v[0], v[1], v[2], v[1]);
    let groups: Vec<String> = creds.groups.iter().map(|g| g.to_string()).collect();
    let cpus = keel_core::sched::online_count();
    let acts = *p.sigactions.lock();
    let (mut ignored, mut caught) = (0u64, 0u64);
    for (i, a) in acts.iter().enumerate() {
        match a.handler {
            0 => {}
            1 => ignored |= 1 << i,
            _ => caught |= 1 << i,
        }
    }
    let main_mask = p.thread(PID).map_or(0, |(lt, _)| lt.mask());
    format!(
        "Name:\t{}\nUmask:\t{:04o}\nState:\tR (running)\nTgid:\t{PID}\nNgid:\t0\nPid:\t{PID}\nPPid:\t0\nTracerPid:\t0\n\
         Uid:\t{}\nGid:\t{}\nFDSize:\t{}\nGroups:\t{}\nVmPeak:\t{vm:8} kB\nVmSize:\t{vm:8} kB\nVmRSS:\t{rss:8} kB\n\
         Threads:\t{}\nSigPnd:\t{:016x}\nShdPnd:\t{:016x}\nSigBlk:\t{main_mask:016x}\nSigIgn:\t{ignored:016x}\nSigCgt:\t{caught:016x}\n\
         CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n\
         NoNewPrivs:\t0\nSeccomp:\t0\nCpus_allowed:\t{:x}\nCpus_allowed_list:\t0-{}\n",
        comm(),
        p.umask.load(core::sync::atomic::Ordering::Relaxed),
        ids(creds.uid),
        ids(creds.gid),
        p.fds.lock().limit,
        groups.join(" "),
        p.thread_count(),
        p.thread(PID).map_or(0, |(lt, _)| lt
            .pending
            .load(core::sync::atomic::Ordering::Relaxed)),
        p.pending.load(core::sync::atomic::Ordering::Relaxed),
        if cpus >= 64 {
            u64::MAX
        } else {
            (1u64 << cpus) - 1
        },
        cpus - 1,
    )
}

/// Clock ticks (USER_HZ) from nanoseconds.
fn ticks(ns: u64) -> u64 {
    ns / 10_000_000
}

fn process_stat() -> String {
    let p = process::get();
    let (vm, rss) = vm_kib();
    let start = ticks(p.started_ns);
    let cpu = ticks(p.cpu_time_ns());
    // The 52 fields of proc(5), in order; those Keel has no notion of are 0.
    format!(
        "{PID} ({}) R 0 {PID} {PID} 0 -1 4194560 0 0 0 0 {cpu} 0 0 0 20 0 {} 0 {start} {} {} 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        comm(),
        p.thread_count(),
        vm * 1024,
        rss * 1024 / PAGE_SIZE as u64,
    )
}

fn statm() -> String {
    let (vm, rss) = vm_kib();
    let page_kib = PAGE_SIZE as u64 / 1024;
    format!("{} {} 0 0 0 0 0\n", vm / page_kib, rss / page_kib)
}

fn meminfo() -> String {
    let (free, total) = keel_core::memory::frame::stats();
    let kib = |frames: usize| frames * PAGE_SIZE / 1024;
    let mut out = String::new();
    for (k, v) in [
        ("MemTotal", kib(total)),
        ("MemFree", kib(free)),
        ("MemAvailable", kib(free)),
        ("Buffers", 0),
        ("Cached", 0),
        ("SwapCached", 0),
        ("Active", kib(total - free)),
        ("Inactive", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Shmem", 0),
        ("CommitLimit", kib(total)),
        ("HugePages_Total", 0),
        ("HugePages_Free", 0),
        ("Hugepagesize", 2048),
    ] {
        let unit = if k.starts_with("HugePages_") {
            ""
        } else {
            " kB"
        };
        let _ = writeln!(out, "{:<16}{v:>8}{unit}", format!("{k}:"));
    }
    out
}

fn cpuinfo() -> String {
    let mut features = String::new();
    let _ = machine::cpu_features(&mut features);
    let mut out = String::new();
    for cpu in keel_core::sched::online() {
        match machine::arch_name() {
            "x86_64" => {
                let _ = write!(
                    out,
                    "processor\t: {cpu}\nvendor_id\t: Keel\nmodel name\t: x86_64 CPU\ncpu MHz\t\t: 0.000\nflags\t\t: {features}\n\n"
                );
            }
            "aarch64" => {
                let _ = write!(
                    out,
                    "processor\t: {cpu}\nFeatures\t: {features}\nCPU architecture: 8\n\n"
                );
            }
            _ => {
                let _ = write!(out, "processor\t: {cpu}\ncpu\t\t: {features}\n\n");
            }
        }
    }
    out
}

fn stat() -> String {
    let cpus = keel_core::sched::online_count() as u64;
    let up = ticks(keel_core::time::monotonic_ns());
    let busy = ticks(process::get().cpu_time_ns());
    let idle = (up * cpus).saturating_sub(busy);
    let mut out = format!("cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\n");
    for cpu in keel_core::sched::online() {
        let _ = writeln!(
            out,
            "cpu{cpu} {} 0 0 {} 0 0 0 0 0 0",
            busy / cpus,
            idle / cpus
        );
    }
    let boot = (keel_core::time::realtime_ns() - keel_core::time::monotonic_ns()) / 1_000_000_000;
    let _ = write!(
        out,
        "intr 0\nctxt {}\nbtime {boot}\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n",
        keel_core::sched::context_switches()
    );
    out
}

fn uptime() -> String {
    let up = keel_core::time::monotonic_ns();
    let cpus = keel_core::sched::online_count() as u64;
    let idle = (up * cpus).saturating_sub(process::get().cpu_time_ns());
    format!(
        "{}.{:02} {}.{:02}\n",
        up / 1_000_000_000,
        up / 10_000_000 % 100,
        idle / 1_000_000_000,
        idle / 10_000_000 % 100
    )
}

fn mounts() -> String {
    let mut out = String::new();
    for (at, fs) in process::get().vfs.mount_list() {
        let _ = writeln!(out, "{fs} {at} {fs} rw,relatime 0 0");
    }
    out
}

fn mountinfo() -> String {
    let mut out = String::new();
    for (i, (at, fs)) in process::get().vfs.mount_list().into_iter().enumerate() {
        let _ = writeln!(
            out,
            "{} {} 0:{} / {at} rw,relatime shared:{} - {fs} {fs} rw",
            i + 1,
            if i == 0 { 0 } else { 1 },
            i + 1,
            i + 1
        );
    }
    out
}

/// The root of /sys: the CPU topology files libc and runtimes count CPUs by.
pub fn sys_root() -> Arc<dyn Inode> {
    SynthDir::new(
        SYS_DEV,
        "/sys",
        Arc::new(|| {
            alloc::vec![dir(SYS_DEV, "/sys/devices", || {
                alloc::vec![dir(SYS_DEV, "/sys/devices/system", || {
                    alloc::vec![dir(SYS_DEV, "/sys/devices/system/cpu", cpu_dir)]
                })]
            })]
        }),
    )
}

fn cpu_list() -> String {
    let n = keel_core::sched::online_count();
    if n == 1 {
        "0\n".into()
    } else {
        format!("0-{}\n", n - 1)
    }
}

fn cpu_dir() -> Vec<Entry> {
    let mut v = alloc::vec![
        file(SYS_DEV, "/sys/devices/system/cpu/online", text(cpu_list)),
        file(SYS_DEV, "/sys/devices/system/cpu/possible", text(cpu_list)),
        file(SYS_DEV, "/sys/devices/system/cpu/present", text(cpu_list)),
    ];
    for cpu in keel_core::sched::online() {
        let path = format!("/sys/devices/system/cpu/cpu{cpu}");
        v.push(dir(SYS_DEV, &path, Vec::new));
    }
    v
}
