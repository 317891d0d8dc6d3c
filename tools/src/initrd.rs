//! The initial ramdisk: files from the host (and generated ones) gathered
//! under guest paths and written as a cpio "newc" archive, which the kernel
//! unpacks into its ramfs root. Parent directories are created implicitly.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// What one guest path holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    /// A host file's contents, with its permission bits.
    HostFile(PathBuf, u32),
    /// Generated contents.
    Bytes(Vec<u8>, u32),
    /// A symbolic link with this target.
    Symlink(String),
    /// A directory.
    Dir(u32),
}

/// A ramdisk being assembled.
#[derive(Default)]
pub struct Initrd {
    nodes: BTreeMap<String, Node>,
}

/// Normalise a guest path: absolute, no `.`, `..` or empty components.
pub fn guest_path(p: &str) -> Result<String> {
    if !p.starts_with('/') {
        bail!("guest path '{p}' must be absolute (start with /)");
    }
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => bail!("guest path '{p}' must not contain '..'"),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        bail!("guest path '{p}' names the root directory, not a file");
    }
    Ok(format!("/{}", parts.join("/")))
}

impl Initrd {
    /// An empty ramdisk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `guest` is already in it.
    #[cfg(test)]
    pub fn contains(&self, guest: &str) -> bool {
        guest_path(guest).is_ok_and(|g| self.nodes.contains_key(&g))
    }

    fn insert(&mut self, guest: &str, node: Node) -> Result<()> {
        let g = guest_path(guest)?;
        let mut parent = String::new();
        for part in g[1..]
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, p)| p)
        {
            parent.push('/');
            parent.push_str(part);
            match self.nodes.get(&parent) {
                None => {
                    self.nodes.insert(parent.clone(), Node::Dir(0o755));
                }
                Some(Node::Dir(_)) => {}
                Some(_) => bail!("cannot put {g} in the image: {parent} is already a file there"),
            }
        }
        if let Some(old) = self.nodes.get(&g)
            && *old != node
            && !matches!((old, &node), (Node::Dir(_), Node::Dir(_)))
        {
            bail!("{g} is added twice with different contents");
        }
        self.nodes.insert(g, node);
        Ok(())
    }

    /// Add the host file `host` as `guest` (its contents: symlinks on the
    /// host are followed).
    pub fn add_file(&mut self, host: &Path, guest: &str) -> Result<()> {
        let meta =
            std::fs::metadata(host).with_context(|| format!("cannot read {}", host.display()))?;
        if !meta.is_file() {
            bail!(
                "{} is not a regular file (use --add-dir for directories)",
                host.display()
            );
        }
        self.insert(
            guest,
            Node::HostFile(host.to_path_buf(), meta.permissions().mode() & 0o7777),
        )
    }

    /// Add generated contents as `guest`.
    pub fn add_bytes(&mut self, guest: &str, bytes: Vec<u8>, mode: u32) -> Result<()> {
        self.insert(guest, Node::Bytes(bytes, mode))
    }

    /// Add a symbolic link.
    pub fn add_symlink(&mut self, guest: &str, target: &str) -> Result<()> {
        self.insert(guest, Node::Symlink(target.to_string()))
    }

    /// Add the host directory `host` as `guest`, recursively; symbolic
    /// links inside it are kept as links.
    pub fn add_dir(&mut self, host: &Path, guest: &str) -> Result<()> {
        let meta =
            std::fs::metadata(host).with_context(|| format!("cannot read {}", host.display()))?;
        if !meta.is_dir() {
            bail!("{} is not a directory", host.display());
        }
        self.insert(guest, Node::Dir(meta.permissions().mode() & 0o7777))?;
        let mut entries: Vec<_> = std::fs::read_dir(host)
            .with_context(|| format!("cannot list {}", host.display()))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            let name = e.file_name();
            let name = name
                .to_str()
                .with_context(|| format!("{} has a name that is not UTF-8", e.path().display()))?;
            let child = format!("{}/{name}", guest.trim_end_matches('/'));
            let lmeta = std::fs::symlink_metadata(e.path())?;
            if lmeta.file_type().is_symlink() {
                let target = std::fs::read_link(e.path())?;
                self.add_symlink(&child, &target.to_string_lossy())?;
            } else if lmeta.is_dir() {
                self.add_dir(&e.path(), &child)?;
            } else if lmeta.is_file() {
                self.add_file(&e.path(), &child)?;
            }
            // Sockets, devices and fifos have no place in the image: skipped.
        }
        Ok(())
    }

    /// Bytes of file data in it.
    pub fn data_size(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match n {
                Node::HostFile(p, _) => std::fs::metadata(p).map_or(0, |m| m.size()),
                Node::Bytes(b, _) => b.len() as u64,
                _ => 0,
            })
            .sum()
    }

    /// Write the archive to `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        let mut buf = Vec::with_capacity(self.data_size() as usize + 512 * self.nodes.len());
        for (ino, (path, node)) in self.nodes.iter().enumerate() {
            let (mode, data): (u32, std::borrow::Cow<'_, [u8]>) = match node {
                Node::Dir(m) => (0o040000 | m, (&[][..]).into()),
                Node::Symlink(t) => (0o120777, t.as_bytes().into()),
                Node::Bytes(b, m) => (0o100000 | m, b.as_slice().into()),
                Node::HostFile(p, m) => (
                    0o100000 | m,
                    std::fs::read(p)
                        .with_context(|| format!("cannot read {}", p.display()))?
                        .into(),
                ),
            };
            entry(&mut buf, &path[1..], ino as u32 + 1, mode, &data)?;
        }
        entry(&mut buf, "TRAILER!!!", 0, 0, &[])?;
        std::fs::write(out, &buf).with_context(|| format!("cannot write {}", out.display()))
    }
}

/// One newc entry: the 110-byte header, name, data, each padded to 4 bytes.
fn entry(buf: &mut Vec<u8>, name: &str, ino: u32, mode: u32, data: &[u8]) -> Result<()> {
    let size = u32::try_from(data.len()).with_context(|| format!("{name} is larger than 4 GiB"))?;
    let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        0,
        size,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    buf.extend_from_slice(b"070701");
    for f in fields {
        buf.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    buf.extend_from_slice(name.as_bytes());
    buf.push(0);
    pad(buf);
    buf.extend_from_slice(data);
    pad(buf);
    Ok(())
}

fn pad(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_are_normalised_and_checked() {
        assert_eq!(guest_path("/a//b/./c").unwrap(), "/a/b/c");
        assert!(guest_path("a/b").is_err());
        assert!(guest_path("/a/../b").is_err());
        assert!(guest_path("/").is_err());
    }

    #[test]
    fn parents_are_implied_and_conflicts_refused() {
        let mut i = Initrd::new();
        i.add_bytes("/usr/bin/tool", b"x".to_vec(), 0o755).unwrap();
        assert!(i.contains("/usr") && i.contains("/usr/bin"));
        assert!(i.add_bytes("/usr/bin/tool", b"y".to_vec(), 0o755).is_err());
        assert!(
            i.add_bytes("/usr/bin/tool/inner", b"z".to_vec(), 0o644)
                .is_err()
        );
        i.add_bytes("/usr/bin/tool", b"x".to_vec(), 0o755).unwrap(); // same again is fine
    }

    #[test]
    fn archive_layout_is_newc() {
        let mut i = Initrd::new();
        i.add_bytes("/f", b"hello".to_vec(), 0o644).unwrap();
        i.add_symlink("/l", "f").unwrap();
        let dir = std::env::temp_dir().join(format!("keel-initrd-test-{}", std::process::id()));
        i.write(&dir).unwrap();
        let bytes = std::fs::read(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert!(bytes.starts_with(b"070701"));
        assert_eq!(bytes.len() % 4, 0);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("f\0") && text.contains("hello") && text.contains("TRAILER!!!"));
        // The file's mode field (second) is 0o100644.
        assert_eq!(&bytes[14..22], b"000081A4");
    }
}
