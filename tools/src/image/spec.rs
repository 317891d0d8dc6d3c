//! What goes into an image: a list of entries, each a guest path and where
//! its content comes from. `--add`, `--add-dir` and manifests produce
//! entries; a library resolver can append more with [`ImageSpec::add_file`].

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Where an entry's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A host file (symlinks followed).
    File(PathBuf),
    /// An empty directory.
    Directory,
    /// A symlink with this target.
    Symlink(String),
    /// A hard link to another guest path (a file added earlier).
    HardLink(String),
    /// A host directory copied recursively (symlinks kept as symlinks,
    /// hard links kept as hard links).
    Tree(PathBuf),
}

/// One thing to put in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute guest path, normalised (`/usr/bin/app`).
    pub guest: String,
    /// The content.
    pub source: Source,
    /// Permission bits (default: the host's, or 0755/0644).
    pub mode: Option<u32>,
    /// Owner (default 0).
    pub uid: Option<u32>,
    /// Group (default 0).
    pub gid: Option<u32>,
    /// Where the entry was given, for error messages.
    pub origin: String,
}

/// Every entry of an image, in the order given.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    /// The entries.
    pub entries: Vec<Entry>,
}

/// Normalise a guest path: absolute, no `.`/`..`/empty components, no NUL.
pub fn guest_path(raw: &str) -> Result<String> {
    if !raw.starts_with('/') {
        bail!("guest path '{raw}' must be absolute (start with /)");
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => bail!("guest path '{raw}' must not contain '..'"),
            p if p.len() > 255 => bail!("guest path '{raw}': component longer than 255 bytes"),
            p if p.contains('\0') => bail!("guest path '{raw}' contains a NUL byte"),
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.guest, self.origin)
    }
}

impl ImageSpec {
    /// Add a host file at a guest path (what a library resolver calls).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn add_file(&mut self, host: &Path, guest: &str, origin: &str) -> Result<()> {
        self.push(Entry {
            guest: guest_path(guest)?,
            source: Source::File(host.to_path_buf()),
            mode: None,
            uid: None,
            gid: None,
            origin: origin.into(),
        });
        Ok(())
    }

    /// Add an entry.
    pub fn push(&mut self, entry: Entry) {
        self.entries.push(entry);
    }

    /// Parse `HOST:GUEST` (`--add`): a file, or a directory copied whole.
    pub fn add_argument(&mut self, arg: &str, whole_dir: bool) -> Result<()> {
        let (host, guest) = arg
            .rsplit_once(':')
            .with_context(|| format!("'{arg}' is not HOST:GUEST (e.g. ./app:/app)"))?;
        let host = PathBuf::from(host);
        let meta = std::fs::metadata(&host).with_context(|| {
            format!(
                "{}: cannot read it (check the path before ':' in '{arg}')",
                host.display()
            )
        })?;
        let origin = format!("{} {arg}", if whole_dir { "--add-dir" } else { "--add" });
        let source = if meta.is_dir() {
            Source::Tree(host)
        } else if whole_dir {
            bail!(
                "--add-dir {arg}: {} is not a directory (use --add for files)",
                host.display()
            );
        } else {
            Source::File(host)
        };
        self.push(Entry {
            guest: guest_path(guest)?,
            source,
            mode: None,
            uid: None,
            gid: None,
            origin,
        });
        Ok(())
    }
}

/// A flattened entry: trees expanded, with the host metadata needed.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Guest path.
    pub guest: String,
    /// What to create.
    pub kind: PlannedKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, u32),
    /// Where it came from.
    pub origin: String,
}

/// What a planned entry creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedKind {
    /// A file copied from the host, of this size.
    File(PathBuf, u64),
    /// A directory.
    Directory,
    /// A symlink.
    Symlink(String),
    /// A hard link to an earlier guest path.
    HardLink(String),
}

/// Expand trees, fill in metadata, check for conflicts. Parent
/// directories not given explicitly are created 0755 root:root.
pub fn plan(spec: &ImageSpec) -> Result<Vec<Planned>> {
    let mut out: Vec<Planned> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut add = |p: Planned, out: &mut Vec<Planned>| -> Result<()> {
        if let Some(&i) = seen.get(&p.guest) {
            let prev = &out[i];
            if prev.kind == PlannedKind::Directory && p.kind == PlannedKind::Directory {
                out[i] = p;
                return Ok(());
            }
            bail!(
                "{} is given twice: by {} and by {} (remove one of them)",
                p.guest,
                prev.origin,
                p.origin
            );
        }
        seen.insert(p.guest.clone(), out.len());
        out.push(p);
        Ok(())
    };
    for e in &spec.entries {
        match &e.source {
            Source::File(host) => {
                let meta = std::fs::metadata(host)
                    .with_context(|| format!("{}: cannot read {}", e, host.display()))?;
                if !meta.is_file() {
                    bail!("{e}: {} is not a regular file", host.display());
                }
                add(
                    planned_from(e, &meta, PlannedKind::File(host.clone(), meta.len())),
                    &mut out,
                )?;
            }
            Source::Directory => add(
                Planned {
                    guest: e.guest.clone(),
                    kind: PlannedKind::Directory,
                    mode: e.mode.unwrap_or(0o755),
                    uid: e.uid.unwrap_or(0),
                    gid: e.gid.unwrap_or(0),
                    mtime: (0, 0),
                    origin: e.origin.clone(),
                },
                &mut out,
            )?,
            Source::Symlink(target) => add(
                Planned {
                    guest: e.guest.clone(),
                    kind: PlannedKind::Symlink(target.clone()),
                    mode: 0o777,
                    uid: e.uid.unwrap_or(0),
                    gid: e.gid.unwrap_or(0),
                    mtime: (0, 0),
                    origin: e.origin.clone(),
                },
                &mut out,
            )?,
            Source::HardLink(to) => add(
                Planned {
                    guest: e.guest.clone(),
                    kind: PlannedKind::HardLink(guest_path(to)?),
                    mode: 0,
                    uid: 0,
                    gid: 0,
                    mtime: (0, 0),
                    origin: e.origin.clone(),
                },
                &mut out,
            )?,
            Source::Tree(root) => {
                let mut stack = vec![(root.clone(), e.guest.clone())];
                while let Some((host, guest)) = stack.pop() {
                    let meta = std::fs::symlink_metadata(&host)
                        .with_context(|| format!("{e}: cannot read {}", host.display()))?;
                    let ft = meta.file_type();
                    let kind = if ft.is_symlink() {
                        let target = std::fs::read_link(&host)?;
                        PlannedKind::Symlink(target.to_string_lossy().into_owned())
                    } else if ft.is_dir() {
                        let mut children: Vec<_> = std::fs::read_dir(&host)
                            .with_context(|| format!("{e}: cannot list {}", host.display()))?
                            .collect::<Result<_, _>>()?;
                        children.sort_by_key(|c| std::cmp::Reverse(c.file_name()));
                        for c in children {
                            let name = c.file_name().to_string_lossy().into_owned();
                            let child_guest = if guest == "/" {
                                format!("/{name}")
                            } else {
                                format!("{guest}/{name}")
                            };
                            stack.push((c.path(), child_guest));
                        }
                        PlannedKind::Directory
                    } else if ft.is_file() {
                        let key = (meta.dev(), meta.ino());
                        if meta.nlink() > 1
                            && let Some(first) = inodes.get(&key)
                        {
                            PlannedKind::HardLink(first.clone())
                        } else {
                            inodes.insert(key, guest.clone());
                            PlannedKind::File(host.clone(), meta.len())
                        }
                    } else {
                        eprintln!(
                            "warning: {}: skipping {} (not a file, directory or symlink)",
                            e.origin,
                            host.display()
                        );
                        continue;
                    };
                    let mut entry = e.clone();
                    entry.guest = guest;
                    if host != *root {
                        entry.mode = None;
                    }
                    add(planned_from(&entry, &meta, kind), &mut out)?;
                }
            }
        }
    }
    Ok(out)
}

fn planned_from(e: &Entry, meta: &std::fs::Metadata, kind: PlannedKind) -> Planned {
    Planned {
        guest: e.guest.clone(),
        mode: e.mode.unwrap_or(meta.mode() & 0o7777),
        uid: e.uid.unwrap_or(0),
        gid: e.gid.unwrap_or(0),
        mtime: (meta.mtime(), meta.mtime_nsec() as u32),
        origin: e.origin.clone(),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_are_normalised_or_refused() {
        assert_eq!(guest_path("/usr//bin/./app/").unwrap(), "/usr/bin/app");
        assert_eq!(guest_path("/").unwrap(), "/");
        assert!(guest_path("usr/bin").is_err());
        assert!(guest_path("/usr/../etc").is_err());
    }

    #[test]
    fn duplicate_files_are_an_error_naming_both() {
        let mut spec = ImageSpec::default();
        let me = std::env::current_exe().unwrap();
        spec.add_file(&me, "/app", "first").unwrap();
        spec.add_file(&me, "/app", "second").unwrap();
        let err = plan(&spec).unwrap_err().to_string();
        assert!(err.contains("first") && err.contains("second"), "{err}");
    }
}
