//! The smallest bootable image per arch, which powers off at once: the
//! floor of QEMU's own start-up and exit cost, for `cargo keel bench boot`.

use anyhow::{Result, bail};

use crate::arch::Arch;

/// The empty kernel for `arch`, as a file's bytes.
pub fn image(arch: Arch) -> Result<Vec<u8>> {
    match arch {
        Arch::X86_64 => Ok(x86_64_pvh()),
        Arch::Aarch64 => Ok(aarch64_image()),
        other => bail!("no empty kernel for {other} yet (its port provides one)"),
    }
}

/// An ELF64 with a PVH entry note; the entry writes to the isa-debug-exit
/// port (`mov al, 0; out 0xf4, al`), which ends QEMU on the spot.
fn x86_64_pvh() -> Vec<u8> {
    const BASE: u64 = 0x10_0000;
    const PHOFF: u64 = 64;
    const NOTE_OFF: u64 = PHOFF + 2 * 56;
    const CODE_OFF: u64 = NOTE_OFF + 24;
    let code: [u8; 7] = [0xb0, 0x00, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]; // mov al,0; out 0xf4,al; hlt; jmp $-1
    let entry = BASE + CODE_OFF;
    let total = CODE_OFF + code.len() as u64;

    let mut f = Vec::new();
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(&entry.to_le_bytes());
    f.extend_from_slice(&PHOFF.to_le_bytes());
    f.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&64u16.to_le_bytes());
    f.extend_from_slice(&56u16.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&[0; 6]);
    // PT_LOAD of the whole file at BASE, read+execute.
    phdr(&mut f, 1, 5, 0, BASE, total, 0x1000);
    // PT_NOTE with the Xen PVH entry.
    phdr(&mut f, 4, 4, NOTE_OFF, BASE + NOTE_OFF, 24, 4);
    f.extend_from_slice(&4u32.to_le_bytes());
    f.extend_from_slice(&8u32.to_le_bytes());
    f.extend_from_slice(&18u32.to_le_bytes()); // XEN_ELFNOTE_PHYS32_ENTRY
    f.extend_from_slice(b"Xen\0");
    f.extend_from_slice(&entry.to_le_bytes());
    f.extend_from_slice(&code);
    debug_assert_eq!(f.len() as u64, total);
    f
}

/// An arm64 Image: the 64-byte header, then PSCI SYSTEM_OFF through `hvc`
/// (or `smc` when entered at EL2, where hvc would trap to itself), which
/// ends QEMU with status 0.
fn aarch64_image() -> Vec<u8> {
    let code: [u32; 9] = [
        0xd538_4241, // mrs x1, CurrentEL
        0xd342_fc21, // lsr x1, x1, #2
        0x5280_0100, // movz w0, #0x0008
        0x72b0_8000, // movk w0, #0x8400, lsl #16   (SYSTEM_OFF = 0x84000008)
        0xf100_083f, // cmp x1, #2
        0x5400_0040, // b.eq +8
        0xd400_0002, // hvc #0
        0xd400_0003, // smc #0
        0x1400_0000, // b .
    ];
    let mut f = Vec::new();
    f.extend_from_slice(&0x1400_0010u32.to_le_bytes()); // b +64 (past the header)
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&0x20_0000u64.to_le_bytes()); // text_offset
    f.extend_from_slice(&0x1000u64.to_le_bytes()); // image_size
    f.extend_from_slice(&0xau64.to_le_bytes()); // flags: LE, 4 KiB pages, anywhere
    f.extend_from_slice(&[0; 24]);
    f.extend_from_slice(b"ARM\x64");
    f.extend_from_slice(&0u32.to_le_bytes());
    for word in code {
        f.extend_from_slice(&word.to_le_bytes());
    }
    f
}

fn phdr(f: &mut Vec<u8>, kind: u32, flags: u32, offset: u64, addr: u64, size: u64, align: u64) {
    f.extend_from_slice(&kind.to_le_bytes());
    f.extend_from_slice(&flags.to_le_bytes());
    for v in [offset, addr, addr, size, size, align] {
        f.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::Object;

    #[test]
    fn aarch64_empty_kernel_is_an_arm64_image() {
        let img = image(Arch::Aarch64).unwrap();
        assert_eq!(&img[0x38..0x3c], b"ARM\x64");
        assert_eq!(
            u32::from_le_bytes(img[0..4].try_into().unwrap()),
            0x1400_0010
        );
        assert_eq!(img.len(), 64 + 9 * 4);
    }

    #[test]
    fn x86_64_empty_kernel_is_a_valid_elf_with_a_pvh_note() {
        let img = image(Arch::X86_64).unwrap();
        let file = object::File::parse(&*img).unwrap();
        assert_eq!(file.architecture(), object::Architecture::X86_64);
        assert_eq!(
            file.segments().count(),
            1,
            "one loadable segment (the note is not loadable)"
        );
        let note = &img[176..200];
        assert_eq!(&note[12..16], b"Xen\0");
        assert_eq!(
            u64::from_le_bytes(note[16..24].try_into().unwrap()),
            file.entry()
        );
    }
}
