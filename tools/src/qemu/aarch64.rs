//! QEMU arguments for aarch64 guests: the `virt` machine with GICv2 or
//! GICv3, a Cortex-A72 or the `max` CPU, entered at EL1 or at EL2
//! (`virtualization=on`), booted as an arm64 Image (converted from the
//! built ELF) or as the ELF itself. Semihosting carries exit statuses
//! other than 0.
//!
//! Machine names: `virt` (GICv3, max, EL1, Image) or `virt-` followed by
//! dash-separated choices among `gicv2`/`gicv3`, `a72`/`max`, `el2`, `elf`,
//! e.g. `virt-gicv2-a72-el2`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use object::Endianness;
use object::elf::{FileHeader64, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};

use super::Vm;

/// One `virt` machine configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// GIC version (2 or 3).
    pub gic: u8,
    /// `-cpu` model.
    pub cpu: &'static str,
    /// Enter at EL2 (`virtualization=on`; PSCI then uses smc).
    pub el2: bool,
    /// Boot the ELF (x0 = 0, DTB at RAM base) instead of the Image.
    pub elf: bool,
}

const KNOWN: &str =
    "virt, or virt-<choices> with gicv2|gicv3, a72|max, el2, elf (e.g. virt-gicv2-a72-el2)";

/// Parse a machine name.
pub fn parse_machine(name: &str) -> Result<Variant> {
    let mut v = Variant {
        gic: 3,
        cpu: "max",
        el2: false,
        elf: false,
    };
    let Some(rest) = name.strip_prefix("virt") else {
        bail!("unknown aarch64 machine '{name}' (known: {KNOWN})");
    };
    for part in rest.split('-').filter(|p| !p.is_empty()) {
        match part {
            "gicv2" => v.gic = 2,
            "gicv3" => v.gic = 3,
            "a72" => v.cpu = "cortex-a72",
            "max" => v.cpu = "max",
            "el2" => v.el2 = true,
            "elf" => v.elf = true,
            other => bail!("unknown part '{other}' in aarch64 machine '{name}' (known: {KNOWN})"),
        }
    }
    Ok(v)
}

pub(super) fn args(_vm: &Vm, machine: &str) -> Result<Vec<String>> {
    let v = parse_machine(machine)?;
    let mut m = format!("virt,gic-version={}", v.gic);
    if v.el2 {
        m.push_str(",virtualization=on");
    }
    Ok(vec![
        "-M".into(),
        m,
        "-cpu".into(),
        v.cpu.into(),
        "-semihosting-config".into(),
        "enable=on,target=native".into(),
    ])
}

/// The file to pass as `-kernel`: the arm64 Image made from the built ELF
/// (written next to it), unless the machine asks for the ELF; a file that
/// is not an ELF (e.g. the empty kernel) is passed as it is.
pub(super) fn kernel_file(vm: &Vm, machine: &str) -> Result<PathBuf> {
    let v = parse_machine(machine)?;
    let data =
        std::fs::read(&vm.image).with_context(|| format!("reading {}", vm.image.display()))?;
    if v.elf || !data.starts_with(b"\x7fELF") {
        return Ok(vm.image.clone());
    }
    let image = arm64_image_from_elf(&data)
        .with_context(|| format!("making an arm64 Image of {}", vm.image.display()))?;
    let path = image_path(&vm.image);
    std::fs::write(&path, image).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Where the Image made from `elf` goes.
pub fn image_path(elf: &Path) -> PathBuf {
    elf.with_extension("Image")
}

/// Lay an ELF's loadable segments out by physical address: the flat arm64
/// Image (its first bytes must be the 64-byte Image header).
pub fn arm64_image_from_elf(data: &[u8]) -> Result<Vec<u8>> {
    let header = FileHeader64::<Endianness>::parse(data).context("not an ELF64 file")?;
    let endian = header.endian().context("bad ELF byte order")?;
    if endian != Endianness::Little || header.e_machine(endian) != object::elf::EM_AARCH64 {
        bail!("not a little-endian aarch64 ELF");
    }
    let segments: Vec<_> = header
        .program_headers(endian, data)
        .context("bad ELF program headers")?
        .iter()
        .filter(|p| p.p_type(endian) == PT_LOAD && p.p_filesz(endian) > 0)
        .collect();
    let base = segments
        .iter()
        .map(|p| p.p_paddr(endian))
        .min()
        .context("the ELF has no loadable data")?;
    let end = segments
        .iter()
        .map(|p| p.p_paddr(endian) + p.p_filesz(endian))
        .max()
        .unwrap_or(base);
    if end - base > 1 << 30 {
        bail!("loadable segments span more than 1 GiB of physical addresses");
    }
    let mut image = vec![0u8; (end - base) as usize];
    for p in segments {
        let bytes = p
            .data(endian, data)
            .map_err(|()| anyhow::anyhow!("a segment lies outside the file"))?;
        let at = (p.p_paddr(endian) - base) as usize;
        image[at..at + bytes.len()].copy_from_slice(bytes);
    }
    if image.len() < 64 || image[0x38..0x3c] != *b"ARM\x64" {
        bail!("the first loadable byte is not an arm64 Image header (magic at 0x38)");
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_parse_and_reject_typos() {
        assert_eq!(
            parse_machine("virt").unwrap(),
            Variant {
                gic: 3,
                cpu: "max",
                el2: false,
                elf: false
            }
        );
        assert_eq!(
            parse_machine("virt-gicv2-a72-el2-elf").unwrap(),
            Variant {
                gic: 2,
                cpu: "cortex-a72",
                el2: true,
                elf: true
            }
        );
        assert!(parse_machine("virt-gicv4").is_err());
        assert!(parse_machine("microvm").is_err());
    }

    #[test]
    fn garbage_is_not_made_into_an_image() {
        assert!(arm64_image_from_elf(b"not an elf").is_err());
    }
}
