//! The "zfs in the guest" phase of `cargo keel test`: an unmodified Linux
//! program (tests/linux/zfs/pool_workload.c) works a ZFS root under Keel,
//! then the host checks the pool with OpenZFS's zdb and compares every
//! file with what the program must have written; and a crash test kills
//! QEMU at random moments while the program replaces files, requiring
//! after each kill a clean zdb, every file old-or-new, and everything the
//! guest had synced still there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use keel_zfs::read::{FileKind, Filesystem, Pool};

use crate::arch::Arch;
use crate::harness::Tally;
use crate::image::{self, BuildOptions, FileDevice, Format, spec::ImageSpec};
use crate::qemu::{self, Accel, Next, Session, Vm};
use crate::referees::{self, Zdb};
use crate::test_devices;

/// Kill trials of the crash test per arch.
const CRASH_TRIALS: usize = 20;
/// Generations the churn workload would write if never killed.
const CHURN_GENERATIONS: u32 = 400;

fn build_workload(workspace: &Path, arch: Arch) -> Result<PathBuf> {
    crate::guest_programs::build_static_c(
        workspace,
        arch,
        "tests/linux/zfs/pool_workload.c",
        "pool-workload",
    )
}

/// A pool image holding the workload, in its own folder (zdb scans it).
fn make_image(dir: &Path, arch: Arch, program: &Path) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let mut spec = ImageSpec::default();
    spec.add_file(program, "/bin/pool_workload", "zfs guest test")?;
    let img = dir.join("pool.img");
    image::build(
        &spec,
        &img,
        &BuildOptions {
            size: Some(128 << 20),
            format: Format::Raw,
            arch: Some(arch),
            progress: false,
        },
    )?;
    Ok(img)
}

fn vm(arch: Arch, workspace: &Path, img: &Path, args: &str) -> Result<Vm> {
    let machine = qemu::default_machine(arch).to_string();
    Ok(Vm {
        arch,
        devices: test_devices::run_args(arch, &machine, &[img.to_path_buf()], false)?,
        machine: Some(machine),
        smp: 2,
        memory: "512M".into(),
        accel: Accel::Tcg,
        image: arch.image_path(workspace, false),
        cmdline: format!("-- /bin/pool_workload {args}"),
        interactive: false,
        initrd: None,
    })
}

/// The pool's root filesystem, read on the host.
struct HostPool {
    pool: Pool<FileDevice>,
    fs: Filesystem,
}

impl HostPool {
    fn open(img: &Path) -> Result<Self> {
        let mut pool = Pool::import(FileDevice::open(img)?)
            .map_err(|e| anyhow::anyhow!("the pool does not import: {e}"))?;
        let ds = pool
            .root_dataset()
            .map_err(|e| anyhow::anyhow!("root dataset: {e}"))?;
        let fs = pool
            .filesystem(&ds)
            .map_err(|e| anyhow::anyhow!("root filesystem: {e}"))?;
        Ok(Self { pool, fs })
    }

    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        let obj = match self.fs.resolve(&mut self.pool, path, true) {
            Ok(o) => o,
            Err(keel_zfs::Error::NotFound) => return Ok(None),
            Err(e) => bail!("{path}: {e}"),
        };
        let data = self
            .fs
            .read_all(&mut self.pool, obj)
            .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        Ok(Some(data))
    }

    fn names(&mut self, dir: &str) -> Result<Vec<(String, FileKind)>> {
        let obj = self
            .fs
            .resolve(&mut self.pool, dir, true)
            .map_err(|e| anyhow::anyhow!("{dir}: {e}"))?;
        let entries = self
            .fs
            .read_dir(&mut self.pool, obj)
            .map_err(|e| anyhow::anyhow!("{dir}: {e}"))?;
        Ok(entries
            .into_iter()
            .map(|e| (String::from_utf8_lossy(&e.name).into_owned(), e.kind))
            .collect())
    }
}

/// Byte k of /data/large (pool_workload.c's large_byte).
fn large_byte(k: u64) -> u8 {
    let x = (k as u32).wrapping_mul(2_654_435_761);
    ((x >> 13) as u64 ^ (k >> 12)) as u8
}

/// Churn file i of generation g (pool_workload.c's churn_len/churn_byte).
fn churn_content(g: u32, i: u32) -> Vec<u8> {
    let len = 1 + ((g.wrapping_mul(7919).wrapping_add(i.wrapping_mul(104_729))) % 65536) as usize;
    (0..len)
        .map(|k| {
            (k as u32)
                .wrapping_mul(31)
                .wrapping_add(g * 17)
                .wrapping_add(i * 101) as u8
        })
        .collect()
}

/// Run the guest to its end; returns its console output.
fn run_to_end(vm: &Vm, limit: Duration) -> Result<String> {
    let session = Session::start(vm)?;
    let started = Instant::now();
    let mut out = String::new();
    loop {
        match session.next(Duration::from_millis(500)) {
            Next::Line(l) => out.push_str(&l),
            Next::End => break,
            Next::Silent if started.elapsed() > limit => {
                session.kill();
                bail!("the guest did not finish in {} s:\n{out}", limit.as_secs());
            }
            Next::Silent => {}
        }
    }
    let (status, _) = session.wait()?;
    if !out.contains("keel: exit status 0") {
        bail!("the workload failed ({status}):\n{out}");
    }
    Ok(out)
}

fn check_write_workload(img: &Path) -> Result<String> {
    let mut p = HostPool::open(img)?;
    let expect = |p: &mut HostPool, path: &str, want: &[u8]| -> Result<()> {
        match p.read(path)? {
            Some(got) if got == want => Ok(()),
            Some(got) => bail!(
                "{path}: {} bytes differ from the {} expected",
                got.len(),
                want.len()
            ),
            None => bail!("{path} is missing"),
        }
    };
    expect(&mut p, "/data/log", b"append 0\nappend 1\nappend 2\n")?;
    expect(&mut p, "/data/over", b"second\n")?;
    expect(&mut p, "/data/b", b"renamed\n")?;
    for gone in ["/data/a", "/data/gone"] {
        if p.read(gone)?.is_some() {
            bail!("{gone} should not exist");
        }
    }
    for i in 0..1000 {
        expect(
            &mut p,
            &format!("/data/small/f{i:04}"),
            format!("small file {i}\n").as_bytes(),
        )?;
    }
    let small = p.names("/data/small")?.len();
    if small != 1000 {
        bail!("/data/small has {small} entries, not 1000");
    }
    let large: Vec<u8> = (0..8u64 << 20).map(large_byte).collect();
    expect(&mut p, "/data/large", &large)?;
    Ok("1,004 files and 8 MiB as written".into())
}

/// After a kill: every churn file is some generation's whole content, and
/// no older than the last generation the guest reported synced.
fn check_after_kill(img: &Path, synced: u32) -> Result<u32> {
    let mut p = HostPool::open(img)?;
    let mut newest = 0;
    for i in 0..8u32 {
        let Some(data) = p.read(&format!("/data/c{i}"))? else {
            if synced > 0 {
                bail!("/data/c{i} is missing after generation {synced} was synced");
            }
            continue;
        };
        let g = (1..=CHURN_GENERATIONS)
            .find(|&g| churn_content(g, i) == data)
            .with_context(|| {
                format!(
                    "/data/c{i} ({} bytes) is no generation's content",
                    data.len()
                )
            })?;
        if g < synced {
            bail!("/data/c{i} is generation {g}, older than the synced generation {synced}");
        }
        newest = newest.max(g);
        if let Some(tmp) = p.read(&format!("/data/c{i}.tmp"))?
            && !tmp.is_empty()
            && !(1..=CHURN_GENERATIONS).any(|g| churn_content(g, i) == tmp)
        {
            bail!("/data/c{i}.tmp holds a torn write ({} bytes)", tmp.len());
        }
    }
    Ok(newest)
}

fn crash_trials(
    workspace: &Path,
    arch: Arch,
    zdb: &Zdb,
    img: &Path,
    trials: usize,
) -> Result<String> {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let first_seed = seed;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let dir = img.parent().context("image folder")?;
    let mut killed_mid_run = 0;
    for trial in 1..=trials {
        // Each trial continues from what the last kill left.
        let vm = vm(arch, workspace, img, &format!("churn {CHURN_GENERATIONS}"))?;
        let wait_gens = 1 + rand(3) as u32;
        let extra = Duration::from_millis(rand(400));
        let session = Session::start(&vm)?;
        let started = Instant::now();
        let mut synced = 0u32;
        let mut out = String::new();
        let mut kill_at: Option<Instant> = None;
        loop {
            if kill_at.is_some_and(|t| Instant::now() >= t) {
                break;
            }
            match session.next(Duration::from_millis(20)) {
                Next::Line(l) => {
                    if let Some(g) = l.trim().strip_prefix("gen ").and_then(|g| g.parse().ok()) {
                        synced = g;
                        if g >= wait_gens && kill_at.is_none() {
                            kill_at = Some(Instant::now() + extra);
                        }
                    }
                    out.push_str(&l);
                }
                Next::End => break,
                Next::Silent if started.elapsed() > Duration::from_secs(120) => {
                    session.kill();
                    bail!("trial {trial}: no progress in 120 s (seed {first_seed}):\n{out}");
                }
                Next::Silent => {}
            }
        }
        session.kill();
        if out.contains("pool_workload: churn done") || out.contains("keel: exit status") {
            if !out.contains("keel: exit status 0") {
                bail!("trial {trial}: the workload failed (seed {first_seed}):\n{out}");
            }
        } else {
            killed_mid_run += 1;
        }
        // Note: `synced` counts generations from this boot only; files of
        // earlier boots are older generations, which the check allows.
        zdb.check(dir, image::POOL_NAME)
            .with_context(|| format!("trial {trial}: zdb after the kill (seed {first_seed})"))?;
        check_after_kill(img, synced)
            .with_context(|| format!("trial {trial} (seed {first_seed})"))?;
    }
    Ok(format!(
        "{trials} trials, {killed_mid_run} killed mid-run, zdb clean and every file whole each time (seed {first_seed})"
    ))
}

fn record(tally: &mut Tally, name: &str, result: Result<String>) {
    match result {
        Ok(note) => {
            tally.passed += 1;
            println!("test {name} ... ok ({note})");
        }
        Err(e) => {
            tally.failed += 1;
            tally.failures.push(name.to_string());
            println!("test {name} ... FAILED: {e:#}");
        }
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// zfs-fuse's v23 pool (../shared/zfs), mounted read-only by the kernel
/// beside a ramfs root: its root dataset's file must read back exactly as
/// keel-zfs on the host (checked against the reference SHA-256 list in
/// fs/zfs's tests) reads it, and writes must fail with EROFS.
fn foreign_pool(workspace: &Path, arch: Arch, program: &Path) -> Result<String> {
    let shared =
        std::env::var_os("KEEL_SHARED").map_or_else(|| workspace.join("../shared"), PathBuf::from);
    let xz = shared.join("zfs/zfs-fuse-v23.img.xz");
    if !xz.exists() {
        bail!("reference pool missing: {} (set KEEL_SHARED)", xz.display());
    }
    let dir = workspace
        .join("target/keel/zfs-guest")
        .join(arch.name())
        .join("v23");
    std::fs::create_dir_all(&dir)?;
    let img = dir.join("pool.img");
    let out = std::process::Command::new("xz")
        .arg("-dc")
        .arg(&xz)
        .output()
        .context("running xz (apt-get install xz-utils)")?;
    if !out.status.success() {
        bail!("xz could not unpack {}", xz.display());
    }
    std::fs::write(&img, out.stdout)?;
    let want = HostPool::open(&img)?
        .read("/top.txt")?
        .context("/top.txt missing from the reference pool")?;
    let initrd_path = dir.join("initrd.cpio");
    let mut initrd = crate::initrd::Initrd::new();
    initrd.add_file(program, "/bin/pool_workload")?;
    initrd.write(&initrd_path)?;
    let mut vm = vm(arch, workspace, &img, "sum /mnt/top.txt")?;
    vm.cmdline =
        "keel.root=ram keel.mount=vda:/mnt:ro -- /bin/pool_workload sum /mnt/top.txt".into();
    vm.initrd = Some(initrd_path);
    let console = run_to_end(&vm, Duration::from_secs(120))?;
    let expect = format!("sum /mnt/top.txt {} {:016x}", want.len(), fnv1a(&want));
    if !console.contains(&expect) {
        bail!("expected '{expect}' from the guest:\n{console}");
    }
    if !console.contains("create EROFS") {
        bail!("creating a file on the read-only pool did not fail with EROFS:\n{console}");
    }
    if !console.contains("ZFS pool 'testpool' (version 23)") {
        bail!("the boot log does not show the v23 pool mounted:\n{console}");
    }
    Ok(format!(
        "pool v23 read-only at /mnt, {} bytes match, writes EROFS",
        want.len()
    ))
}

/// The phase: for each arch with a kernel image and virtio disks.
pub fn phase(workspace: &Path, arches: &[Arch], tally: &mut Tally) -> Result<()> {
    println!("== zfs in the guest: a Linux program on a ZFS root, then zdb and host checks");
    let zdb = match referees::ensure_zdb(workspace) {
        Ok(z) => z,
        Err(e) => {
            record(tally, "zfs guest: zdb installed", Err(e));
            return Ok(());
        }
    };
    for &arch in arches {
        if test_devices::transport(arch, qemu::default_machine(arch)).is_none() {
            tally.skipped += 1;
            println!("test zfs guest {arch} ... skipped: no virtio disk transport on {arch} yet");
            continue;
        }
        let program = match build_workload(workspace, arch) {
            Ok(p) => p,
            Err(e) => {
                record(
                    tally,
                    &format!("zfs guest {arch}: build the workload"),
                    Err(e),
                );
                continue;
            }
        };
        let work = workspace.join("target/keel/zfs-guest").join(arch.name());
        let write_dir = work.join("write");
        let result = make_image(&write_dir, arch, &program).and_then(|img| {
            let t = Instant::now();
            run_to_end(
                &vm(arch, workspace, &img, "write")?,
                Duration::from_secs(300),
            )?;
            let secs = t.elapsed().as_secs_f64();
            let zdb_note = zdb.check(&write_dir, image::POOL_NAME)?;
            let files = check_write_workload(&img)?;
            Ok(format!("{files}; {zdb_note}; {secs:.1} s"))
        });
        record(
            tally,
            &format!("zfs guest {arch}: write workload, zdb -bcc, host compare"),
            result,
        );
        record(
            tally,
            &format!("zfs guest {arch}: zfs-fuse v23 pool read by the kernel"),
            foreign_pool(workspace, arch, &program),
        );
        let crash_dir = work.join("crash");
        let result = make_image(&crash_dir, arch, &program)
            .and_then(|img| crash_trials(workspace, arch, &zdb, &img, CRASH_TRIALS));
        record(
            tally,
            &format!("zfs guest {arch}: crash consistency"),
            result,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_contents_differ_between_generations_and_files() {
        assert_ne!(churn_content(1, 0), churn_content(2, 0));
        assert_ne!(churn_content(1, 0), churn_content(1, 1));
        assert!(churn_content(5, 3).len() <= 65536);
        assert_eq!(large_byte(0), 0);
    }
}
