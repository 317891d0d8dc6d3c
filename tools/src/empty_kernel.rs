//! The smallest bootable image per arch, which powers off at once: the
//! floor of QEMU's own start-up and exit cost, for `cargo keel bench boot`.

use anyhow::Result;

use crate::arch::Arch;

/// The empty kernel for `arch`, as a file's bytes.
pub fn image(arch: Arch) -> Result<Vec<u8>> {
    match arch {
        Arch::X86_64 => Ok(x86_64_pvh()),
        Arch::Aarch64 => Ok(aarch64_image()),
        Arch::Ppc64 => Ok(ppc64_pseries()),
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

/// A big-endian ELF64 for pseries. SLOF and VOF enter the image's first
/// byte in big-endian 32-bit real mode, so a big-endian image needs no
/// endianness switch. RTAS has no fixed token for power-off: a kernel
/// must look it up in the device tree, so the empty kernel does the least
/// that takes — Open Firmware `finddevice("/rtas")`, `getprop("power-off")`
/// — and then calls RTAS power-off through the `H_RTAS` hcall. Its "first
/// instruction to power-off" therefore includes two client-interface
/// calls, as Keel's own boot does (Keel makes many more).
fn ppc64_pseries() -> Vec<u8> {
    const LOAD: u32 = 0x40_0000; // where pseries firmware loads -kernel
    const DATA: u32 = 0x100; // offset of the data after the code
    const HEADER: u64 = 0x1000; // file offset of the image
    let block1 = DATA; // finddevice: service, 1, 1, path, ret
    let block2 = DATA + 0x20; // getprop: service, 4, 1, node, name, buf, 4, ret
    let rtas = DATA + 0x40; // RTAS: token, 2, 1, 0, 0, status
    let buf = DATA + 0x60;
    let strings = DATA + 0x80;
    let names: [&[u8]; 4] = [b"finddevice\0", b"/rtas\0", b"getprop\0", b"power-off\0"];
    let mut name_at = [0u32; 4];
    let mut off = strings;
    for (i, n) in names.iter().enumerate() {
        name_at[i] = LOAD + off;
        off += n.len() as u32;
    }
    let code = [
        ppc::or(31, 5, 5), // r31 = client interface
        ppc::addis(3, 0, (LOAD >> 16) as u16),
        ppc::ori(3, 3, block1 as u16),
        ppc::mtctr(31),
        ppc::bctrl(),
        ppc::addis(9, 0, (LOAD >> 16) as u16),
        ppc::lwz(10, 9, (block1 + 16) as u16), // the node
        ppc::addis(3, 0, (LOAD >> 16) as u16),
        ppc::ori(3, 3, block2 as u16),
        ppc::stw(10, 3, 12),
        ppc::mtctr(31),
        ppc::bctrl(),
        ppc::addis(9, 0, (LOAD >> 16) as u16),
        ppc::lwz(10, 9, buf as u16), // the token
        ppc::addis(4, 0, (LOAD >> 16) as u16),
        ppc::ori(4, 4, rtas as u16),
        ppc::stw(10, 4, 0),
        ppc::addi(3, 0, 0),
        ppc::ori(3, 3, 0xf000), // KVMPPC_H_RTAS
        ppc::sc1(),
        ppc::branch_to_self(),
    ];
    let mut image = Vec::new();
    for insn in code {
        image.extend_from_slice(&insn.to_be_bytes());
    }
    image.resize(DATA as usize, 0);
    let cells =
        |v: &mut Vec<u8>, c: &[u32]| c.iter().for_each(|x| v.extend_from_slice(&x.to_be_bytes()));
    cells(&mut image, &[name_at[0], 1, 1, name_at[1], 0, 0, 0, 0]);
    cells(
        &mut image,
        &[name_at[2], 4, 1, 0, name_at[3], LOAD + buf, 4, 0],
    );
    cells(&mut image, &[0, 2, 1, 0, 0, 0, 0, 0]);
    cells(&mut image, &[0; 8]);
    for n in names {
        image.extend_from_slice(n);
    }

    let mut f = Vec::new();
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&2u16.to_be_bytes()); // ET_EXEC
    f.extend_from_slice(&21u16.to_be_bytes()); // EM_PPC64
    f.extend_from_slice(&1u32.to_be_bytes());
    f.extend_from_slice(&u64::from(LOAD).to_be_bytes()); // entry
    f.extend_from_slice(&64u64.to_be_bytes()); // program headers
    f.extend_from_slice(&0u64.to_be_bytes());
    f.extend_from_slice(&1u32.to_be_bytes()); // flags: ELFv1
    f.extend_from_slice(&64u16.to_be_bytes());
    f.extend_from_slice(&56u16.to_be_bytes());
    f.extend_from_slice(&1u16.to_be_bytes());
    f.extend_from_slice(&[0; 6]);
    // PT_LOAD: physical 0, which pseries firmware places at 0x400000.
    f.extend_from_slice(&1u32.to_be_bytes());
    f.extend_from_slice(&7u32.to_be_bytes());
    let size = image.len() as u64;
    for v in [HEADER, u64::from(LOAD), 0, size, size, 0x1000] {
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.resize(HEADER as usize, 0);
    f.extend_from_slice(&image);
    f
}

/// The few big-endian POWER instructions the empty kernel needs.
mod ppc {
    fn d_form(op: u32, rt: u32, ra: u32, imm: u16) -> u32 {
        (op << 26) | (rt << 21) | (ra << 16) | u32::from(imm)
    }
    pub fn addi(rt: u32, ra: u32, imm: u16) -> u32 {
        d_form(14, rt, ra, imm)
    }
    pub fn addis(rt: u32, ra: u32, imm: u16) -> u32 {
        d_form(15, rt, ra, imm)
    }
    /// `ori ra, rs, imm` (D-form with RS in the first field).
    pub fn ori(ra: u32, rs: u32, imm: u16) -> u32 {
        d_form(24, rs, ra, imm)
    }
    pub fn lwz(rt: u32, ra: u32, disp: u16) -> u32 {
        d_form(32, rt, ra, disp)
    }
    pub fn stw(rs: u32, ra: u32, disp: u16) -> u32 {
        d_form(36, rs, ra, disp)
    }
    /// `or ra, rs, rb`.
    pub fn or(ra: u32, rs: u32, rb: u32) -> u32 {
        (31 << 26) | (rs << 21) | (ra << 16) | (rb << 11) | (444 << 1)
    }
    pub fn mtctr(rs: u32) -> u32 {
        (31 << 26) | (rs << 21) | (9 << 16) | (467 << 1)
    }
    pub fn bctrl() -> u32 {
        0x4e80_0421
    }
    pub fn sc1() -> u32 {
        0x4400_0022
    }
    pub fn branch_to_self() -> u32 {
        0x4800_0000
    }
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

    #[test]
    fn ppc64_empty_kernel_is_a_big_endian_elf_starting_with_code() {
        let img = image(Arch::Ppc64).unwrap();
        let file = object::File::parse(&*img).unwrap();
        assert_eq!(file.architecture(), object::Architecture::PowerPc64);
        assert!(!file.is_little_endian());
        let seg = file.segments().next().unwrap();
        assert_eq!(file.segments().count(), 1);
        let code = object::ObjectSegment::data(&seg).unwrap();
        // The first instruction is `mr r31, r5` (keep the client interface).
        assert_eq!(&code[..4], &[0x7c, 0xbf, 0x2b, 0x78]);
        // mtctr r31 encodes as the assembler would.
        assert_eq!(super::ppc::mtctr(31), 0x7fe9_03a6);
        assert!(img.windows(10).any(|w| w == b"power-off\0"));
    }
}
