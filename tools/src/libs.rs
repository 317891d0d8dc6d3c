//! Finding what a dynamically linked program needs: its PT_INTERP dynamic
//! linker and every DT_NEEDED library, searched the way glibc's ld.so
//! searches (RPATH, RUNPATH with $ORIGIN, then the default directories)
//! inside a sysroot — the host's `/` for host-arch programs, or a folder of
//! extracted Debian packages for any arch. Symbolic links inside the
//! sysroot, absolute ones included, resolve within it, never on the host.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, elf};

use crate::arch::Arch;
use crate::initrd::Initrd;

/// What an ELF file asks of the dynamic linker.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dynamic {
    /// PT_INTERP.
    pub interpreter: Option<String>,
    /// DT_NEEDED, in order.
    pub needed: Vec<String>,
    /// DT_RPATH and DT_RUNPATH entries (colon lists, split).
    pub search: Vec<String>,
    /// e_machine.
    pub machine: u16,
}

/// Read the dynamic-linking facts of an ELF file; None if it is not ELF.
pub fn inspect(data: &[u8]) -> Result<Option<Dynamic>> {
    if !data.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    if data.get(4) != Some(&2) {
        bail!("32-bit ELF files are not supported");
    }
    let header = elf::FileHeader64::<Endianness>::parse(data).context("bad ELF header")?;
    let endian = header.endian()?;
    let mut d = Dynamic {
        machine: header.e_machine(endian),
        ..Dynamic::default()
    };
    for ph in header.program_headers(endian, data)? {
        if ph.p_type(endian) == elf::PT_INTERP
            && let Some(raw) = ph.interpreter(endian, data)?
        {
            d.interpreter = Some(String::from_utf8_lossy(raw).into_owned());
        }
    }
    let sections = header.sections(endian, data)?;
    if let Some((entries, strtab_index)) = sections.dynamic(endian, data)? {
        let strings = sections.strings(endian, data, strtab_index)?;
        for e in entries {
            let tag = e.d_tag.get(endian) as u32;
            let value = e.d_val.get(endian) as u32;
            let text = || -> Result<String> {
                Ok(String::from_utf8_lossy(
                    strings
                        .get(value)
                        .map_err(|()| anyhow::anyhow!("bad dynamic string"))?,
                )
                .into_owned())
            };
            match tag {
                elf::DT_NEEDED => d.needed.push(text()?),
                elf::DT_RPATH | elf::DT_RUNPATH => d.search.extend(
                    text()?
                        .split(':')
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                ),
                _ => {}
            }
        }
    }
    Ok(Some(d))
}

/// A folder standing in for the guest's root when looking for libraries.
pub struct Sysroot {
    root: PathBuf,
}

/// Symbolic links followed in one lookup before giving up.
const MAX_LINKS: usize = 40;

impl Sysroot {
    /// `root` as the guest's `/`.
    pub fn new(root: &Path) -> Result<Self> {
        let root = root
            .canonicalize()
            .with_context(|| format!("sysroot {} does not exist", root.display()))?;
        Ok(Self { root })
    }

    /// The host file that guest path `guest` names, following symbolic
    /// links as the guest would (absolute targets from the sysroot's top).
    pub fn resolve(&self, guest: &str) -> Option<PathBuf> {
        let mut pending: Vec<String> = guest
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(String::from)
            .collect();
        let mut here: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "." => continue,
                ".." => {
                    here.pop();
                    continue;
                }
                _ => {}
            }
            let candidate = self.root.join(
                here.iter()
                    .chain(std::iter::once(&part))
                    .collect::<PathBuf>(),
            );
            let meta = std::fs::symlink_metadata(&candidate).ok()?;
            if meta.file_type().is_symlink() {
                links += 1;
                if links > MAX_LINKS {
                    return None;
                }
                let target = std::fs::read_link(&candidate).ok()?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    here.clear();
                }
                pending.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty())
                        .rev()
                        .map(String::from),
                );
            } else {
                here.push(part);
            }
        }
        let path = self.root.join(here.iter().collect::<PathBuf>());
        path.is_file().then_some(path)
    }
}

/// Directories glibc's ld.so searches by default on `arch`.
fn default_dirs(arch: Arch) -> Vec<String> {
    let triplet = arch.linux_triplet();
    vec![
        format!("/lib/{triplet}"),
        format!("/usr/lib/{triplet}"),
        "/lib".into(),
        "/usr/lib".into(),
        "/lib64".into(),
        "/usr/lib64".into(),
    ]
}

/// The sysroot to resolve libraries of `program` (dynamically linked for
/// `arch`) in: `given`, or the host's `/` for programs of the host's arch.
pub fn choose_sysroot(given: Option<&Path>, arch: Arch, program: &Path) -> Result<Sysroot> {
    match (given, Arch::host() == Some(arch)) {
        (Some(dir), _) => Sysroot::new(dir),
        (None, true) => Sysroot::new(Path::new("/")),
        (None, false) => bail!(
            "{} is dynamically linked for {arch}: pass --sysroot DIR with its libraries (for example /usr/{} from Debian's cross compiler, or a folder of extracted Debian {} packages)",
            program.display(),
            arch.linux_triplet(),
            arch.debian_arch()
        ),
    }
}

/// The dynamic linker and every library `host` (to live at guest path
/// `guest`) needs, transitively, found in `sysroot`: (host file, guest
/// path) pairs, each once, in discovery order.
pub fn libraries_of(
    sysroot: &Sysroot,
    arch: Arch,
    host: &Path,
    guest: &str,
) -> Result<Vec<(PathBuf, String)>> {
    let mut found_all = Vec::new();
    let mut queue = vec![(host.to_path_buf(), guest.to_string())];
    let mut done: BTreeSet<String> = BTreeSet::new();
    while let Some((file, as_guest)) = queue.pop() {
        let data =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let Some(d) = inspect(&data).with_context(|| format!("{}", file.display()))? else {
            continue;
        };
        if d.machine != arch.elf_machine() {
            bail!(
                "{} is not an {arch} ELF file (e_machine {})",
                file.display(),
                d.machine
            );
        }
        let origin = as_guest
            .rsplit_once('/')
            .map_or("/", |(dir, _)| if dir.is_empty() { "/" } else { dir });
        let mut wanted: Vec<String> = Vec::new();
        if let Some(interp) = &d.interpreter {
            wanted.push(interp.clone());
        }
        for lib in &d.needed {
            if lib.contains('/') {
                wanted.push(lib.clone());
                continue;
            }
            let dirs = d
                .search
                .iter()
                .map(|s| s.replace("$ORIGIN", origin).replace("${ORIGIN}", origin))
                .chain(default_dirs(arch));
            let found = dirs
                .map(|dir| format!("{}/{lib}", dir.trim_end_matches('/')))
                .find(|g| sysroot.resolve(g).is_some());
            match found {
                Some(g) => wanted.push(g),
                None => bail!(
                    "{} needs {lib}, which is not in {} under {}",
                    file.display(),
                    sysroot.root.display(),
                    default_dirs(arch).join(", ")
                ),
            }
        }
        for g in wanted {
            if !done.insert(g.clone()) {
                continue;
            }
            let host_file = sysroot.resolve(&g).with_context(|| {
                format!(
                    "{} needs {g}, which is not in {}",
                    file.display(),
                    sysroot.root.display()
                )
            })?;
            found_all.push((host_file.clone(), g.clone()));
            queue.push((host_file, g));
        }
    }
    Ok(found_all)
}

/// Add `host` as `guest` to `initrd` together with its dynamic linker and
/// every library it needs. Returns the guest paths added for libraries.
pub fn add_with_libraries(
    initrd: &mut Initrd,
    sysroot: &Sysroot,
    arch: Arch,
    host: &Path,
    guest: &str,
) -> Result<Vec<String>> {
    initrd.add_file(host, guest)?;
    let libraries = libraries_of(sysroot, arch, host, guest)?;
    for (host_file, g) in &libraries {
        initrd.add_file(host_file, g)?;
    }
    Ok(libraries.into_iter().map(|(_, g)| g).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysroot_links_stay_inside() {
        let root = std::env::temp_dir().join(format!("keel-sysroot-test-{}", std::process::id()));
        let lib = root.join("lib/x86_64-linux-gnu");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(root.join("lib64")).unwrap();
        std::fs::write(lib.join("libc.so.6"), b"libc").unwrap();
        // An absolute link, as Debian's amd64 interpreter link is.
        std::os::unix::fs::symlink("/lib/x86_64-linux-gnu/libc.so.6", root.join("lib64/ld.so"))
            .unwrap();
        std::os::unix::fs::symlink(
            "../lib/x86_64-linux-gnu/libc.so.6",
            root.join("lib64/rel.so"),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("lib64/escape")).unwrap();
        let s = Sysroot::new(&root).unwrap();
        let want = root
            .canonicalize()
            .unwrap()
            .join("lib/x86_64-linux-gnu/libc.so.6");
        assert_eq!(s.resolve("/lib64/ld.so"), Some(want.clone()));
        assert_eq!(s.resolve("/lib64/rel.so"), Some(want));
        assert_eq!(
            s.resolve("/lib64/escape"),
            None,
            "a link to a host file must not escape the sysroot"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_host_tool_itself_has_an_interpreter_and_libc() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let d = inspect(&me).unwrap().unwrap();
        if d.interpreter.is_some() {
            assert!(d.needed.iter().any(|n| n.starts_with("libc.so")), "{d:?}");
        }
        assert!(inspect(b"#!/bin/sh\n").unwrap().is_none());
    }
}
