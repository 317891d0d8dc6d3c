//! Referees for ZFS images that no one here wrote: OpenZFS's `zdb`
//! (Debian's zfsutils-linux, unpacked into target/ and run in user space)
//! and GRUB's `grub-fstest`. The "zfs referees" phase of `cargo keel test`
//! builds images with `cargo keel image`'s code, has keel-zfs's writer
//! tests leave their multi-txg pools behind, and requires every one to
//! pass `zdb -bcc` with "No leaks" and every file to come back from GRUB
//! byte for byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::harness::Tally;
use crate::image::{self, BuildOptions, Format, spec::ImageSpec};

/// Debian packages that hold zdb and its libraries (bookworm-backports).
const ZDB_PACKAGES: [&str; 5] = [
    "zfsutils-linux",
    "libzpool6linux",
    "libzfs6linux",
    "libnvpair3linux",
    "libuutil3linux",
];

/// zdb unpacked in the cache, and how to run it.
pub struct Zdb {
    root: PathBuf,
}

/// The unpacked libraries' folder (`lib/<multiarch triplet>`).
fn library_dir(root: &Path) -> PathBuf {
    std::fs::read_dir(root.join("lib"))
        .ok()
        .and_then(|d| {
            d.flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with("-linux-gnu"))
        })
        .unwrap_or_else(|| root.join("lib/x86_64-linux-gnu"))
}

impl Zdb {
    fn command(&self) -> Command {
        let mut cmd = Command::new(self.root.join("sbin/zdb"));
        cmd.env("LD_LIBRARY_PATH", library_dir(&self.root));
        cmd
    }

    /// `zdb -e -p DIR -bcc POOL`: Ok when it exits 0 and reports no leaks.
    pub fn check(&self, dir: &Path, pool: &str) -> Result<String> {
        let out = self
            .command()
            .args(["-e", "-p"])
            .arg(dir)
            .args(["-bcc", pool])
            .output()
            .context("running zdb")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let summary: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("loading concrete vdev") && !l.trim().is_empty())
            .collect();
        if !out.status.success()
            || !text.contains("No leaks (block sum matches space maps exactly)")
        {
            bail!("zdb -bcc exited {}:\n{}", out.status, summary.join("\n"));
        }
        let line = summary
            .iter()
            .find(|l| l.contains("No leaks"))
            .map_or(String::new(), |l| l.trim().to_string());
        let bps = summary
            .iter()
            .find(|l| l.contains("bp count"))
            .map_or(String::new(), |l| {
                l.split_whitespace().collect::<Vec<_>>().join(" ")
            });
        Ok(format!("{line}; {bps}"))
    }
}

fn command_exists(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The Debian mirror this machine uses (for the private apt lists).
fn debian_mirror() -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.push("/etc/apt/sources.list".into());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        if !text.contains("bookworm") {
            continue;
        }
        if let Some(uri) = text
            .lines()
            .find_map(|l| l.strip_prefix("URIs:"))
            .map(str::trim)
            && uri.ends_with("/debian")
        {
            return uri.to_string();
        }
        if let Some(uri) = text
            .lines()
            .filter(|l| l.starts_with("deb "))
            .find_map(|l| {
                l.split_whitespace()
                    .find(|w| w.starts_with("http") && w.ends_with("/debian"))
            })
        {
            return uri.to_string();
        }
    }
    "http://deb.debian.org/debian".into()
}

/// Download and unpack zdb into `target/referees/zfs-tools` (once).
/// Uses private apt lists, so it needs neither root nor changes to the
/// machine's apt configuration.
pub fn ensure_zdb(workspace: &Path) -> Result<Zdb> {
    let cache = workspace.join("target/referees/zfs-tools");
    let root = cache.join("root");
    let zdb = Zdb { root: root.clone() };
    if root.join("sbin/zdb").is_file() {
        return Ok(zdb);
    }
    let manual = format!(
        "to install it by hand:\n  mkdir -p {c}/lists/partial {c}/cache/archives/partial {c}/debs\n  \
         printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main contrib\\n\
         deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main contrib\\n' > {c}/sources.list\n  \
         APT=\"-o Dir::Etc::SourceList={c}/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists={c}/lists -o Dir::Cache={c}/cache\"\n  \
         apt-get $APT update && (cd {c}/debs && apt-get $APT download {p})\n  \
         for d in {c}/debs/*.deb; do dpkg -x $d {c}/root; done",
        c = cache.display(),
        p = ZDB_PACKAGES
            .iter()
            .map(|p| format!("{p}/bookworm-backports"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if !command_exists("apt-get") || !command_exists("dpkg") {
        bail!("zdb is not unpacked and apt-get/dpkg are missing (this needs Debian); {manual}");
    }
    let bar = crate::setup::spinner(
        "fetching OpenZFS zdb from Debian (zfsutils-linux, bookworm-backports)",
    );
    let result = (|| -> Result<()> {
        for d in ["lists/partial", "cache/archives/partial", "debs"] {
            std::fs::create_dir_all(cache.join(d))?;
        }
        let mirror = debian_mirror();
        let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
        std::fs::write(
            cache.join("sources.list"),
            format!(
                "deb [signed-by={keyring}] {mirror} bookworm main contrib\ndeb [signed-by={keyring}] {mirror} bookworm-backports main contrib\n"
            ),
        )?;
        let apt = |args: &[&str], dir: &Path| -> Result<()> {
            let out = Command::new("apt-get")
                .arg("-o")
                .arg(format!(
                    "Dir::Etc::SourceList={}",
                    cache.join("sources.list").display()
                ))
                .args(["-o", "Dir::Etc::SourceParts=/dev/null"])
                .arg("-o")
                .arg(format!(
                    "Dir::State::Lists={}",
                    cache.join("lists").display()
                ))
                .arg("-o")
                .arg(format!("Dir::Cache={}", cache.join("cache").display()))
                .args(["-o", "Debug::NoLocking=1"])
                .args(args)
                .current_dir(dir)
                .output()?;
            if !out.status.success() {
                bail!(
                    "apt-get {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(())
        };
        apt(&["update"], &cache)?;
        let wanted: Vec<String> = ZDB_PACKAGES
            .iter()
            .map(|p| format!("{p}/bookworm-backports"))
            .collect();
        let mut args = vec!["download"];
        args.extend(wanted.iter().map(String::as_str));
        apt(&args, &cache.join("debs"))?;
        for deb in std::fs::read_dir(cache.join("debs"))?.flatten() {
            let status = Command::new("dpkg")
                .arg("-x")
                .arg(deb.path())
                .arg(&root)
                .status()?;
            if !status.success() {
                bail!("dpkg -x {} failed", deb.path().display());
            }
        }
        Ok(())
    })();
    bar.finish_and_clear();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&root);
        bail!("could not fetch zdb: {e:#}; {manual}");
    }
    let ldd = Command::new("ldd")
        .arg(root.join("sbin/zdb"))
        .env("LD_LIBRARY_PATH", library_dir(&root))
        .output();
    if let Ok(out) = ldd {
        let missing: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("not found"))
            .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
            .collect();
        if !missing.is_empty() {
            bail!(
                "zdb needs libraries this machine lacks: {} (install them, e.g. apt-get install libtirpc3 libssl3 libblkid1 libudev1 zlib1g)",
                missing.join(" ")
            );
        }
    }
    eprintln!("unpacked OpenZFS zdb into {}", root.display());
    Ok(zdb)
}

/// Make sure grub-fstest is installed (apt-get as root; otherwise say how).
pub fn ensure_grub_fstest() -> Result<()> {
    if command_exists("grub-fstest") {
        return Ok(());
    }
    if !is_root() || !command_exists("apt-get") {
        bail!("grub-fstest is missing; install it with: sudo apt-get install -y grub-common");
    }
    let bar = crate::setup::spinner("installing grub-common (grub-fstest)");
    let ok = Command::new("sh")
        .args([
            "-c",
            "apt-get install -y grub-common || (apt-get update && apt-get install -y grub-common)",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    bar.finish_and_clear();
    if !ok || !command_exists("grub-fstest") {
        bail!("installing grub-common failed; run: apt-get install -y grub-common");
    }
    Ok(())
}

/// `grub-fstest IMG cat /@/PATH`.
fn grub_cat(image: &Path, guest: &str) -> Result<Vec<u8>> {
    let out = Command::new("grub-fstest")
        .arg(image)
        .arg("cat")
        .arg(format!("/@{guest}"))
        .output()
        .context("running grub-fstest")?;
    if !out.status.success() {
        bail!(
            "grub-fstest cat /@{guest}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// A small deterministic generator for test contents.
struct Noise(u64);

impl Noise {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0 as u8
            })
            .collect()
    }
}

/// A host tree exercising what images hold: binaries, empty and sparse
/// files, a fatzap directory, deep paths, symlinks and hard links.
fn make_tree(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let _ = std::fs::remove_dir_all(dir);
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let w = |p: &str, data: &[u8]| -> Result<()> {
        let path = dir.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
        std::fs::write(&path, data)?;
        Ok(())
    };
    w("bin/app", &noise.bytes(1_500_000))?;
    std::fs::set_permissions(dir.join("bin/app"), std::fs::Permissions::from_mode(0o755))?;
    w("etc/hello.txt", b"hello from keel\n")?;
    w("etc/empty", b"")?;
    w("etc/block-sized", &noise.bytes(131_072))?;
    w("etc/odd-sized", &noise.bytes(131_073))?;
    w("lib/libbig.so", &noise.bytes(5 << 20))?;
    w("deep/a/b/c/d/e/f/g/leaf.txt", b"deep\n")?;
    w("names/caf\u{e9} \u{1f680} spaced.txt", b"unicode\n")?;
    w(&format!("names/{}", "n".repeat(255)), b"long name\n")?;
    for i in 0..60 {
        w(
            &format!("fat/a-file-name-long-enough-to-need-a-fat-zap-directory-{i:03}"),
            format!("{i}\n").as_bytes(),
        )?;
    }
    // Sparse: data, a hole, data again.
    let sparse = dir.join("data/sparse.bin");
    std::fs::create_dir_all(sparse.parent().unwrap_or(dir))?;
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(&sparse)?;
        f.write_all_at(&noise.bytes(300_000), 0)?;
        f.write_all_at(&noise.bytes(70_000), 40 << 20)?;
    }
    std::fs::create_dir_all(dir.join("links"))?;
    symlink("../etc/hello.txt", dir.join("links/relative"))?;
    symlink(
        format!("/{}/target", "long-directory-name".repeat(16)),
        dir.join("long-link"),
    )?;
    symlink("/etc/hello.txt", dir.join("links/absolute"))?;
    std::fs::hard_link(dir.join("bin/app"), dir.join("links/app-hard"))?;
    std::fs::create_dir_all(dir.join("empty-dir"))?;
    Ok(())
}

struct Phase<'a> {
    tally: &'a mut Tally,
}

impl Phase<'_> {
    fn record(&mut self, name: &str, result: Result<String>) {
        match result {
            Ok(note) if note.is_empty() => {
                self.tally.passed += 1;
                println!("test zfs {name} ... ok");
            }
            Ok(note) => {
                self.tally.passed += 1;
                println!("test zfs {name} ... ok ({note})");
            }
            Err(e) => {
                self.tally.failed += 1;
                self.tally.failures.push(format!("zfs {name}"));
                println!("test zfs {name} ... FAILED: {e:#}");
            }
        }
    }
}

/// Build an image from `tree` with the image builder; returns its report.
fn build_from_tree(tree: &Path, out: &Path, size: Option<u64>) -> Result<image::Report> {
    let mut spec = ImageSpec::default();
    spec.add_argument(&format!("{}:/", tree.display()), true)?;
    image::build(
        &spec,
        out,
        &BuildOptions {
            size,
            format: Format::Raw,
            arch: None,
            progress: false,
        },
    )
}

/// Every regular file of the image must come back from GRUB unchanged.
fn grub_compare(image: &Path, report: &image::Report) -> Result<String> {
    for (guest, host) in &report.contents {
        let want = std::fs::read(host)?;
        let got = grub_cat(image, guest)?;
        if got != want {
            bail!(
                "{guest}: GRUB returned {} bytes that differ from the {} written",
                got.len(),
                want.len()
            );
        }
    }
    Ok(format!("{} files byte for byte", report.contents.len()))
}

/// The "zfs referees" phase of `cargo keel test`.
pub fn zfs_phase(workspace: &Path, tally: &mut Tally) -> Result<()> {
    println!("== zfs referees (OpenZFS zdb, GRUB grub-fstest)");
    let mut phase = Phase { tally };
    let zdb = ensure_zdb(workspace);
    let grub = ensure_grub_fstest();
    let (zdb, grub_ok) = match (zdb, grub) {
        (Ok(z), Ok(())) => (z, true),
        (z, g) => {
            if let Err(e) = &z {
                phase.record("referee zdb installed", Err(anyhow::anyhow!("{e:#}")));
            }
            if let Err(e) = &g {
                phase.record(
                    "referee grub-fstest installed",
                    Err(anyhow::anyhow!("{e:#}")),
                );
            }
            return Ok(());
        }
    };
    let work = workspace.join("target/referees/zfs");
    let images = work.join("images");
    let _ = std::fs::remove_dir_all(&images);
    std::fs::create_dir_all(&images)?;

    // 1. An image of an assorted tree, built by `cargo keel image`'s code.
    let tree = work.join("tree");
    let assorted = images.join("assorted");
    std::fs::create_dir_all(&assorted)?;
    let started = Instant::now();
    let built =
        make_tree(&tree).and_then(|()| build_from_tree(&tree, &assorted.join("pool.img"), None));
    let built_note = format!("{:.2} s", started.elapsed().as_secs_f64());
    match built {
        Ok(report) => {
            phase.record(
                "image builder: assorted tree",
                Ok(format!("{} files, {built_note}", report.files)),
            );
            phase.record("zdb -bcc assorted", zdb.check(&assorted, image::POOL_NAME));
            if grub_ok {
                let img = assorted.join("pool.img");
                phase.record("grub-fstest cat assorted", grub_compare(&img, &report));
                // Through symlinks (relative, absolute) and a hard link.
                let linked = image::Report {
                    contents: vec![
                        ("/links/relative".into(), tree.join("etc/hello.txt")),
                        ("/links/absolute".into(), tree.join("etc/hello.txt")),
                        ("/links/app-hard".into(), tree.join("bin/app")),
                    ],
                    ..Default::default()
                };
                phase.record("grub-fstest cat through links", grub_compare(&img, &linked));
            }
        }
        Err(e) => phase.record("image builder: assorted tree", Err(e)),
    }

    // 2. A directory of 100,000 entries (a multi-leaf fatzap).
    let big = work.join("bigdir-v2");
    let large = images.join("large-dir");
    std::fs::create_dir_all(&large)?;
    let built = (|| -> Result<(image::Report, f64)> {
        // The host tree is kept between runs: creating 100,000 files is
        // slower than building the image from them.
        let d = big.join("d");
        if std::fs::read_dir(&d).map(|r| r.count()).unwrap_or(0) != 100_000 {
            let _ = std::fs::remove_dir_all(&big);
            std::fs::create_dir_all(&d)?;
            // Mostly empty files: the directory is the point, and data
            // blocks of 4 KiB each would make a 400 MiB image.
            for i in 0..100_000 {
                let content = if i % 1000 == 0 {
                    format!("{i}\n")
                } else {
                    String::new()
                };
                std::fs::write(d.join(format!("entry-{i:06}")), content)?;
            }
        }
        let started = Instant::now();
        let report = build_from_tree(&big, &large.join("pool.img"), None)?;
        Ok((report, started.elapsed().as_secs_f64()))
    })();
    match built {
        Ok((report, secs)) => {
            phase.record(
                "image builder: 100,000-entry directory",
                Ok(format!("{secs:.2} s")),
            );
            phase.record("zdb -bcc large-dir", zdb.check(&large, image::POOL_NAME));
            if grub_ok {
                // GRUB looks names up in the fatzap quickly but lists a
                // 100,000-entry directory in ~45 s and starts a process per
                // file, so it checks a sample spread over every leaf; zdb
                // above has checked every block.
                let img = large.join("pool.img");
                let sample: Vec<_> = report.contents.iter().step_by(1000).cloned().collect();
                let sampled = image::Report {
                    contents: sample,
                    ..Default::default()
                };
                phase.record(
                    "grub-fstest cat large-dir sample",
                    grub_compare(&img, &sampled),
                );
            }
        }
        Err(e) => phase.record("image builder: 100,000-entry directory", Err(e)),
    }

    // 3. Pools changed over many txgs by keel-zfs's writer tests.
    let dumps = images.join("writer");
    let out = crate::cargo::cargo(workspace)
        .args([
            "test",
            "--quiet",
            "-p",
            "keel-zfs",
            "--test",
            "write_read",
            "--test",
            "crash_and_corruption",
        ])
        .env("KEEL_ZFS_DUMP", &dumps)
        .output()
        .context("running keel-zfs writer tests")?;
    if !out.status.success() {
        phase.record(
            "writer pools",
            Err(anyhow::anyhow!(
                "keel-zfs writer tests failed:\n{}",
                String::from_utf8_lossy(&out.stdout)
            )),
        );
    } else {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dumps)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        dirs.sort();
        if dirs.is_empty() {
            phase.record(
                "writer pools",
                Err(anyhow::anyhow!(
                    "the writer tests left no pools in {}",
                    dumps.display()
                )),
            );
        }
        for dir in dirs {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let pool = if name.starts_with("crash") {
                "crash"
            } else {
                "keel"
            };
            phase.record(&format!("zdb -bcc writer/{name}"), zdb.check(&dir, pool));
        }
    }
    Ok(())
}
