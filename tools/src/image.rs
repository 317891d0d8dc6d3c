//! `cargo keel image`: write a ZFS pool image on the host (no guest boot)
//! holding the app, its files and directories, using the same keel-zfs
//! code the kernel mounts with. The image appears only when complete.

mod manifest;
pub mod spec;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use keel_zfs::sa::Timestamp;
use keel_zfs::write::{CreateOptions, NewKind, PoolWriter};
use keel_zfs::{BlockDevice, DeviceError};

use crate::arch::Arch;
use crate::libs;
use spec::{ImageSpec, PlannedKind, Source};

/// Commit a transaction group whenever this much file data is pending.
const TXG_DIRTY_LIMIT: u64 = 64 << 20;
/// Pool name inside every image.
pub const POOL_NAME: &str = "keel";

/// Image file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A raw disk image.
    Raw,
    /// QCOW2 (converted with qemu-img).
    Qcow2,
}

/// Arguments of `cargo keel image`.
#[derive(Args, Debug)]
pub struct ImageArgs {
    /// Architecture of the app [default: the host's]; ELF files for
    /// another architecture get a warning.
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// Where to write the image.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Image size, e.g. 256M or 4G [default: content plus room to grow].
    #[arg(long)]
    pub size: Option<String>,
    /// HOST:GUEST — a host file (or directory) at a guest path; repeatable.
    #[arg(long, value_name = "HOST:GUEST")]
    pub add: Vec<String>,
    /// HOST:GUEST — a host directory copied recursively; repeatable.
    #[arg(long, value_name = "HOST:GUEST")]
    pub add_dir: Vec<String>,
    /// A manifest of entries (see docs/zfs-image.md); repeatable.
    #[arg(long)]
    pub manifest: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Raw)]
    pub format: Format,
    /// Add the dynamic linker and libraries every added program needs
    /// (automatic for dynamically linked programs).
    #[arg(long)]
    pub libs: bool,
    /// Where to find libraries: a folder laid out like the guest's root
    /// [default: / for programs of the host's arch].
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
}

/// Parse `512M`, `4G`, `1T` or a byte count.
pub fn parse_size(s: &str) -> Result<u64> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .with_context(|| format!("size '{s}' is not like 256M or 4G"))?;
    let mult: u64 = match unit {
        "" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "m" | "MiB" => 1 << 20,
        "G" | "g" | "GiB" => 1 << 30,
        "T" | "t" | "TiB" => 1 << 40,
        _ => bail!("size '{s}': unknown unit '{unit}' (use K, M, G or T)"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("size '{s}' is too large"))
}

/// A pool image in a host file.
pub struct FileDevice {
    file: File,
    size: u64,
}

impl FileDevice {
    /// Open an existing image file for reading and writing.
    pub fn open(path: &Path) -> Result<FileDevice> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata()?.len();
        Ok(FileDevice { file, size })
    }
}

fn device_error(offset: u64, len: usize, reason: &'static str) -> DeviceError {
    DeviceError {
        offset,
        len: len as u64,
        reason,
    }
}

impl BlockDevice for FileDevice {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|_| device_error(offset, buf.len(), "read from the image file failed"))
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        self.file.write_all_at(data, offset).map_err(|_| {
            device_error(
                offset,
                data.len(),
                "write to the image file failed (disk full?)",
            )
        })
    }
    fn flush(&mut self) -> Result<(), DeviceError> {
        // Durability matters only for the finished image, synced before
        // it is renamed into place.
        Ok(())
    }
}

/// Removes a half-written file unless told the work succeeded.
struct Partial(Vec<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// What a build produced.
#[derive(Debug, Default)]
pub struct Report {
    /// Files written (hard links counted once).
    pub files: usize,
    /// Directories.
    pub directories: usize,
    /// Symlinks.
    pub symlinks: usize,
    /// Hard links.
    pub hard_links: usize,
    /// File bytes.
    pub bytes: u64,
    /// Image size.
    pub image_size: u64,
    /// Transaction groups committed.
    pub txgs: u64,
    /// Guest path → file for every regular file (for checks).
    pub contents: Vec<(String, PathBuf)>,
}

/// Options of [`build`].
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Image size (None: computed).
    pub size: Option<u64>,
    /// Output format.
    pub format: Format,
    /// Arch to check ELF files against.
    pub arch: Option<Arch>,
    /// Show progress.
    pub progress: bool,
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

fn elf_machine(path: &Path) -> Option<u16> {
    let mut head = [0u8; 20];
    File::open(path).ok()?.read_exact(&mut head).ok()?;
    (head[..4] == *b"\x7fELF").then(|| u16::from_le_bytes([head[18], head[19]]))
}

fn arch_machine(arch: Arch) -> u16 {
    arch.elf_machine()
}

fn zfs_error(what: impl std::fmt::Display, e: keel_zfs::Error) -> anyhow::Error {
    match e {
        keel_zfs::Error::NoSpace => {
            anyhow::anyhow!(
                "{what}: {e}: the image is full; pass a larger --size (or leave it out to size the image from its content)"
            )
        }
        e => anyhow::anyhow!("{what}: {e}"),
    }
}

fn parent_of(guest: &str) -> (&str, &str) {
    match guest.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => ("/", guest),
    }
}

/// Build the image `out` from `spec`.
pub fn build(spec: &ImageSpec, out: &Path, options: &BuildOptions) -> Result<Report> {
    let planned = spec::plan(spec)?;
    let content: u64 = planned
        .iter()
        .map(|p| match &p.kind {
            PlannedKind::File(_, len) => len.div_ceil(4096) * 4096 + 1024,
            _ => 1024,
        })
        .sum();
    let size = match options.size {
        Some(s) => s,
        None => ((content + content / 8 + (48 << 20)).div_ceil(1 << 20) << 20).max(64 << 20),
    };
    if size < 64 << 20 {
        bail!("image size {size} bytes is below the 64M minimum (pass --size 64M or more)");
    }
    if let Some(arch) = options.arch {
        for p in &planned {
            if let PlannedKind::File(host, _) = &p.kind
                && let Some(m) = elf_machine(host)
                && m != arch_machine(arch)
            {
                let other = Arch::ALL.into_iter().find(|a| arch_machine(*a) == m);
                let fix = other.map_or(String::new(), |a| {
                    format!("; building for {a}? pass --arch {a}")
                });
                eprintln!(
                    "warning: {} ({}) is an ELF file for another architecture than {arch} (e_machine {m}){fix}",
                    p.guest,
                    host.display()
                );
            }
        }
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = out
        .file_name()
        .context("output path has no file name")?
        .to_string_lossy();
    let raw_tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let mut partial = Partial(vec![raw_tmp.clone()]);
    {
        let f = File::create(&raw_tmp)
            .with_context(|| format!("cannot create {}", raw_tmp.display()))?;
        f.set_len(size)
            .with_context(|| format!("cannot size {} to {size} bytes", raw_tmp.display()))?;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now = Timestamp {
        secs: now.as_secs(),
        nanos: u64::from(now.subsec_nanos()),
    };
    let create = CreateOptions {
        name: POOL_NAME.into(),
        ashift: 12,
        seed: random_seed(),
        now,
    };
    let mut w = PoolWriter::create_pool(FileDevice::open(&raw_tmp)?, &create)
        .map_err(|e| zfs_error("creating the pool", e))?;
    let total: u64 = planned
        .iter()
        .map(|p| {
            if let PlannedKind::File(_, len) = p.kind {
                len
            } else {
                0
            }
        })
        .sum();
    let bar = if options.progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(format!("writing {}", out.display()));

    let mut report = Report {
        image_size: size,
        ..Default::default()
    };
    let mut objects: HashMap<String, u64> = HashMap::new();
    objects.insert("/".into(), w.root());
    let mut dir_times = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for p in &planned {
        let object = ensure_parents(&mut w, &mut objects, &p.guest, &mut report)?;
        let (parent, name) = parent_of(&p.guest);
        let parent_obj = objects[parent];
        let (uid, gid, mode) = (u64::from(p.uid), u64::from(p.gid), u64::from(p.mode));
        let at = |e| zfs_error(format!("{} ({})", p.guest, p.origin), e);
        match &p.kind {
            PlannedKind::Directory => {
                let obj = match object {
                    Some(obj) => obj,
                    None => {
                        report.directories += 1;
                        w.create(
                            parent_obj,
                            name.as_bytes(),
                            NewKind::Directory,
                            mode,
                            uid,
                            gid,
                        )
                        .map_err(at)?
                    }
                };
                objects.insert(p.guest.clone(), obj);
                dir_times.push((obj, p.clone()));
            }
            PlannedKind::File(host, len) => {
                let obj = w
                    .create(parent_obj, name.as_bytes(), NewKind::File, mode, uid, gid)
                    .map_err(at)?;
                let mut f = File::open(host)
                    .with_context(|| format!("{}: cannot open {}", p.guest, host.display()))?;
                let mut offset = 0u64;
                while offset < *len {
                    let want = buf.len().min((*len - offset) as usize);
                    f.read_exact(&mut buf[..want]).with_context(|| {
                        format!(
                            "{}: reading {} failed (did it shrink?)",
                            p.guest,
                            host.display()
                        )
                    })?;
                    if buf[..want].iter().any(|&b| b != 0) {
                        w.write(obj, offset, &buf[..want]).map_err(at)?;
                    }
                    offset += want as u64;
                    bar.inc(want as u64);
                    if w.dirty_bytes() > TXG_DIRTY_LIMIT {
                        w.commit()
                            .map_err(|e| zfs_error("committing a transaction group", e))?;
                        report.txgs += 1;
                    }
                }
                if w.attributes(obj).map_err(at)?.size < *len {
                    w.truncate(obj, *len).map_err(at)?;
                }
                set_times(&mut w, obj, p.mtime).map_err(at)?;
                objects.insert(p.guest.clone(), obj);
                report.files += 1;
                report.bytes += len;
                report.contents.push((p.guest.clone(), host.clone()));
            }
            PlannedKind::Symlink(target) => {
                let obj = w
                    .create(
                        parent_obj,
                        name.as_bytes(),
                        NewKind::Symlink(target.as_bytes()),
                        0o777,
                        uid,
                        gid,
                    )
                    .map_err(at)?;
                set_times(&mut w, obj, p.mtime).map_err(at)?;
                report.symlinks += 1;
            }
            PlannedKind::HardLink(to) => {
                let target = *objects.get(to).with_context(|| {
                    format!(
                        "{} ({}): hard link to {to}, which is not a file added before it",
                        p.guest, p.origin
                    )
                })?;
                w.link(parent_obj, name.as_bytes(), target).map_err(at)?;
                report.hard_links += 1;
            }
        }
    }
    for (obj, p) in dir_times.iter().rev() {
        set_times(&mut w, *obj, p.mtime).map_err(|e| zfs_error(&p.guest, e))?;
    }
    w.commit()
        .map_err(|e| zfs_error("committing the last transaction group", e))?;
    report.txgs += 1;
    bar.finish_and_clear();
    drop(w);
    File::open(&raw_tmp)?.sync_all()?;

    match options.format {
        Format::Raw => {}
        Format::Qcow2 => {
            let qcow_tmp = dir.join(format!(".{name}.qcow2-partial-{}", std::process::id()));
            partial.0.push(qcow_tmp.clone());
            let status = Command::new("qemu-img")
                .args(["convert", "-f", "raw", "-O", "qcow2"])
                .arg(&raw_tmp)
                .arg(&qcow_tmp)
                .status()
                .context("running qemu-img (install it: apt-get install qemu-utils)")?;
            if !status.success() {
                bail!("qemu-img convert failed ({status}); the raw image was not kept");
            }
            std::fs::rename(&qcow_tmp, &raw_tmp)?;
        }
    }
    std::fs::rename(&raw_tmp, out)
        .with_context(|| format!("cannot move the image to {}", out.display()))?;
    partial.0.clear();
    Ok(report)
}

fn set_times(w: &mut PoolWriter<FileDevice>, obj: u64, mtime: (i64, u32)) -> keel_zfs::Result<()> {
    if mtime == (0, 0) {
        return Ok(());
    }
    let t = Timestamp {
        secs: mtime.0.max(0) as u64,
        nanos: u64::from(mtime.1),
    };
    w.set_attributes(obj, |a| {
        a.mtime = t;
        a.atime = t;
    })
}

/// Make sure every parent directory of `guest` exists; returns the
/// object of `guest` itself if it already exists as a directory.
fn ensure_parents(
    w: &mut PoolWriter<FileDevice>,
    objects: &mut HashMap<String, u64>,
    guest: &str,
    report: &mut Report,
) -> Result<Option<u64>> {
    if let Some(&o) = objects.get(guest) {
        return Ok(Some(o));
    }
    let mut path = String::new();
    let parts: Vec<&str> = guest.split('/').filter(|p| !p.is_empty()).collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        let parent = if path.is_empty() {
            "/".to_string()
        } else {
            path.clone()
        };
        path.push('/');
        path.push_str(part);
        if objects.contains_key(&path) {
            continue;
        }
        let parent_obj = objects[&parent];
        let obj = match w.lookup(parent_obj, part.as_bytes()) {
            Ok(o) => o,
            Err(keel_zfs::Error::NotFound) => {
                report.directories += 1;
                w.create(parent_obj, part.as_bytes(), NewKind::Directory, 0o755, 0, 0)
                    .map_err(|e| zfs_error(&path, e))?
            }
            Err(e) => return Err(zfs_error(&path, e)),
        };
        objects.insert(path.clone(), obj);
    }
    Ok(None)
}

/// Gather the entries from the command line.
pub fn spec_from_args(args: &ImageArgs) -> Result<ImageSpec> {
    let mut spec = ImageSpec::default();
    for m in &args.manifest {
        manifest::load(m, &mut spec)?;
    }
    for a in &args.add {
        spec.add_argument(a, false)?;
    }
    for a in &args.add_dir {
        spec.add_argument(a, true)?;
    }
    if spec.entries.is_empty() {
        bail!(
            "nothing to put in the image: pass --add HOST:GUEST, --add-dir HOST:GUEST or --manifest FILE"
        );
    }
    add_libraries(&mut spec, args)?;
    Ok(spec)
}

/// Add what every dynamically linked program given with `--add` needs
/// (every ELF program with `--libs`), resolved the way `cargo keel run`
/// resolves them. Paths the spec already has are left as given.
fn add_libraries(spec: &mut ImageSpec, args: &ImageArgs) -> Result<()> {
    let arch = args.arch.or_else(Arch::host).unwrap_or(Arch::X86_64);
    let mut programs = Vec::new();
    for e in &spec.entries {
        if let Source::File(host) = &e.source
            && elf_machine(host).is_some()
        {
            let data =
                std::fs::read(host).with_context(|| format!("cannot read {}", host.display()))?;
            if let Ok(Some(d)) = libs::inspect(&data)
                && d.machine == arch.elf_machine()
                && (args.libs || d.interpreter.is_some())
            {
                programs.push((host.clone(), e.guest.clone()));
            }
        }
    }
    if programs.is_empty() {
        if args.sysroot.is_some() {
            bail!("--sysroot applies to dynamically linked programs added with --add; none were");
        }
        return Ok(());
    }
    let sysroot = libs::choose_sysroot(args.sysroot.as_deref(), arch, &programs[0].0)?;
    let mut present: std::collections::BTreeSet<String> =
        spec.entries.iter().map(|e| e.guest.clone()).collect();
    for (host, guest) in programs {
        let mut added = Vec::new();
        for (lib_host, lib_guest) in libs::libraries_of(&sysroot, arch, &host, &guest)? {
            if present.insert(lib_guest.clone()) {
                spec.push(spec::Entry {
                    guest: lib_guest.clone(),
                    source: Source::File(lib_host),
                    mode: None,
                    uid: None,
                    gid: None,
                    origin: format!("library of {guest}"),
                });
                added.push(lib_guest);
            }
        }
        if !added.is_empty() {
            eprintln!("cargo keel: {guest} needs {}", added.join(", "));
        }
    }
    Ok(())
}

/// `cargo keel image`.
pub fn run(args: &ImageArgs) -> Result<()> {
    let spec = spec_from_args(args)?;
    let size = args.size.as_deref().map(parse_size).transpose()?;
    let started = Instant::now();
    let report = build(
        &spec,
        &args.output,
        &BuildOptions {
            size,
            format: args.format,
            arch: args.arch.or_else(Arch::host),
            progress: true,
        },
    )?;
    println!(
        "{}: {} MiB ZFS pool '{POOL_NAME}' ({:?}), {} files ({:.1} MiB), {} directories, {} symlinks, {} hard links, {} txgs, {:.2} s",
        args.output.display(),
        report.image_size >> 20,
        args.format,
        report.files,
        report.bytes as f64 / (1 << 20) as f64,
        report.directories,
        report.symlinks,
        report.hard_links,
        report.txgs,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("M").is_err());
    }

    fn args(add: &[&str]) -> ImageArgs {
        ImageArgs {
            arch: Arch::host(),
            output: PathBuf::from("unused.img"),
            size: None,
            add: add.iter().map(|s| s.to_string()).collect(),
            add_dir: Vec::new(),
            manifest: Vec::new(),
            format: Format::Raw,
            libs: false,
            sysroot: None,
        }
    }

    #[test]
    fn dynamic_programs_bring_their_dynamic_linker_and_libraries() {
        let program = std::env::current_exe().unwrap();
        let data = std::fs::read(&program).unwrap();
        let Ok(Some(facts)) = libs::inspect(&data) else {
            return;
        };
        let Some(interp) = facts.interpreter else {
            return; // a static test binary: nothing to resolve
        };
        let spec = spec_from_args(&args(&[&format!("{}:/bin/app", program.display())])).unwrap();
        let guests: Vec<&str> = spec.entries.iter().map(|e| e.guest.as_str()).collect();
        assert!(guests.contains(&"/bin/app"));
        assert!(guests.contains(&interp.as_str()), "{guests:?}");
        assert!(guests.iter().any(|g| g.contains("libc.so")), "{guests:?}");
    }

    #[test]
    fn a_sysroot_without_dynamic_programs_is_an_error() {
        let mut a = args(&[concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/Cargo.toml:/Cargo.toml"
        )]);
        a.sysroot = Some(PathBuf::from("/"));
        let e = spec_from_args(&a).unwrap_err().to_string();
        assert!(e.contains("--sysroot"), "{e}");
    }
}

#[cfg(test)]
mod build_tests {
    use super::*;
    use keel_zfs::read::{FileKind, Pool};

    fn temp(name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/image-tests")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn built_images_read_back_through_keel_zfs() {
        let dir = temp("readback");
        let tree = dir.join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("sub/a.txt"), b"alpha\n").unwrap();
        std::fs::write(tree.join("b.bin"), vec![7u8; 300_000]).unwrap();
        std::os::unix::fs::symlink("sub/a.txt", tree.join("link")).unwrap();
        std::fs::hard_link(tree.join("b.bin"), tree.join("b-again")).unwrap();
        let manifest = dir.join("m");
        std::fs::write(
            &manifest,
            "dir /var/data mode=0700 uid=1000 gid=100\nfile /etc/conf tree/sub/a.txt mode=0600\nsymlink /lib64/ld.so /lib/ld.so\n",
        )
        .unwrap();
        let args = ImageArgs {
            arch: None,
            output: dir.join("out/disk.img"),
            size: None,
            add: vec![],
            add_dir: vec![format!("{}:/app", tree.display())],
            manifest: vec![manifest],
            format: Format::Raw,
            libs: false,
            sysroot: None,
        };
        let spec = spec_from_args(&args).unwrap();
        let options = BuildOptions {
            size: None,
            format: Format::Raw,
            arch: None,
            progress: false,
        };
        let report = build(&spec, &args.output, &options).unwrap();
        assert_eq!(
            (report.files, report.hard_links, report.symlinks),
            (3, 1, 2)
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("out")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "only the finished image remains");

        let mut pool = Pool::import(FileDevice::open(&args.output).unwrap()).unwrap();
        let ds = pool.root_dataset().unwrap();
        let fs = pool.filesystem(&ds).unwrap();
        let read = |pool: &mut Pool<FileDevice>, path: &str| {
            let o = fs.resolve(pool, path, true).unwrap();
            fs.read_all(pool, o).unwrap()
        };
        assert_eq!(read(&mut pool, "/app/sub/a.txt"), b"alpha\n");
        assert_eq!(read(&mut pool, "/app/link"), b"alpha\n");
        assert_eq!(read(&mut pool, "/app/b-again"), vec![7u8; 300_000]);
        assert_eq!(read(&mut pool, "/etc/conf"), b"alpha\n");
        let b = fs.resolve(&mut pool, "/app/b.bin", true).unwrap();
        assert_eq!(fs.resolve(&mut pool, "/app/b-again", true).unwrap(), b);
        assert_eq!(fs.stat(&mut pool, b).unwrap().attributes.links, 2);
        let conf = fs.resolve(&mut pool, "/etc/conf", true).unwrap();
        assert_eq!(fs.stat(&mut pool, conf).unwrap().attributes.mode, 0o100600);
        let data = fs.resolve(&mut pool, "/var/data", true).unwrap();
        let st = fs.stat(&mut pool, data).unwrap();
        assert_eq!(st.kind, FileKind::Directory);
        assert_eq!(
            (st.attributes.mode, st.attributes.uid, st.attributes.gid),
            (0o040700, 1000, 100)
        );
        let ld = fs.resolve(&mut pool, "/lib64/ld.so", false).unwrap();
        assert_eq!(fs.read_link(&mut pool, ld).unwrap(), b"/lib/ld.so");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn failures_leave_nothing_behind() {
        let dir = temp("failure");
        let mut spec = ImageSpec::default();
        let big = dir.join("big");
        std::fs::write(&big, vec![1u8; 3 << 20]).unwrap();
        spec.add_file(&big, "/big", "test").unwrap();
        let out = dir.join("out/disk.img");
        let options = BuildOptions {
            size: Some(64 << 20),
            format: Format::Raw,
            arch: None,
            progress: false,
        };
        // 64 MiB holds 3 MiB; ask for 30 copies to run out of space.
        for i in 0..30 {
            spec.add_file(&big, &format!("/copy{i}"), "test").unwrap();
        }
        let err = build(&spec, &out, &options).unwrap_err();
        assert!(format!("{err:#}").contains("no space"), "{err:#}");
        assert_eq!(std::fs::read_dir(dir.join("out")).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
