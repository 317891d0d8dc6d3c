//! The ELF loader: maps a static, static-pie or dynamic executable (and
//! its PT_INTERP dynamic linker) into the app's address space and builds
//! the initial stack — argv, envp and the auxiliary vector — as Linux does.
//!
//! Every check a malformed or foreign file can fail is a `LoadError` with a
//! sentence for the console; nothing here panics on bad input.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_core::app::SPACE;
use keel_core::memory::PAGE_SIZE;
use keel_core::memory::app_space::{Backing, PROT_EXEC, PROT_READ, PROT_WRITE, Vma};
use keel_fs::{FileType, Inode, Lookup};
use keel_hal::{AppFrame, machine};
use object::Endianness;
use object::elf::{ET_DYN, ET_EXEC, FileHeader64, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};
use object::read::elf::{FileHeader, ProgramHeader};

use crate::abi::Abi;
use crate::{mem, process};

/// Why a program could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// No such file.
    NotFound(String),
    /// Not a regular file, or no execute permission.
    NotExecutable(String),
    /// Not an ELF file (and not a #! script).
    NotElf,
    /// An ELF file Keel cannot run, with the reason.
    Unsupported(String),
    /// Headers that do not make sense, with what is wrong.
    Malformed(String),
    /// The program is for another architecture.
    WrongArch {
        /// e_machine found.
        found: u16,
        /// This machine's arch.
        expected: &'static str,
    },
    /// The address space cannot take it.
    NoMemory,
    /// Reading the file failed.
    Io(String),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::NotFound(p) => write!(
                f,
                "{p}: no such file (was it added to the image? see `cargo keel run --add`)"
            ),
            LoadError::NotExecutable(p) => write!(f, "{p}: not an executable file"),
            LoadError::NotElf => write!(f, "not an ELF executable or #! script"),
            LoadError::Unsupported(why) => write!(f, "unsupported ELF file: {why}"),
            LoadError::Malformed(why) => write!(f, "malformed ELF file: {why}"),
            LoadError::WrongArch { found, expected } => {
                write!(
                    f,
                    "built for {} (e_machine {found}), but this is an {expected} machine",
                    machine_name(*found)
                )
            }
            LoadError::NoMemory => write!(f, "not enough memory to load it"),
            LoadError::Io(why) => write!(f, "cannot read it: {why}"),
        }
    }
}

impl LoadError {
    /// The exit status a shell would give: 127 not found, 126 cannot run.
    pub fn status(&self) -> u8 {
        match self {
            LoadError::NotFound(_) => 127,
            _ => 126,
        }
    }
}

fn machine_name(m: u16) -> &'static str {
    match m {
        3 => "i386",
        8 => "MIPS",
        20 => "32-bit PowerPC",
        21 => "ppc64",
        22 => "s390",
        40 => "32-bit ARM",
        62 => "x86_64",
        183 => "aarch64",
        243 => "RISC-V",
        _ => "another architecture",
    }
}

/// The program as the app will see it.
pub struct Loaded {
    /// Registers to start the main thread with.
    pub frame: AppFrame,
    /// The auxiliary vector given (for /proc/self/auxv).
    pub auxv: Vec<(u64, u64)>,
    /// The path actually run (after #! resolution).
    pub exe: String,
    /// The argv actually used (a #! script gains its interpreter).
    pub argv: Vec<String>,
}

/// Auxiliary vector keys.
mod at {
    pub const NULL: u64 = 0;
    pub const PHDR: u64 = 3;
    pub const PHENT: u64 = 4;
    pub const PHNUM: u64 = 5;
    pub const PAGESZ: u64 = 6;
    pub const BASE: u64 = 7;
    pub const FLAGS: u64 = 8;
    pub const ENTRY: u64 = 9;
    pub const UID: u64 = 11;
    pub const EUID: u64 = 12;
    pub const GID: u64 = 13;
    pub const EGID: u64 = 14;
    pub const PLATFORM: u64 = 15;
    pub const HWCAP: u64 = 16;
    pub const CLKTCK: u64 = 17;
    pub const DCACHEBSIZE: u64 = 19;
    pub const ICACHEBSIZE: u64 = 20;
    pub const UCACHEBSIZE: u64 = 21;
    pub const SECURE: u64 = 23;
    pub const RANDOM: u64 = 25;
    pub const HWCAP2: u64 = 26;
    pub const EXECFN: u64 = 31;
    pub const MINSIGSTKSZ: u64 = 51;
}

/// Longest #! line considered (Linux's BINPRM_BUF_SIZE).
const SHEBANG_MAX: usize = 256;
/// Most program headers accepted.
const MAX_PHNUM: usize = 256;
/// Size of the main thread's stack mapping (grows on demand).
const STACK_SIZE: usize = 8 << 20;

/// An opened executable file.
struct Image {
    path: String,
    inode: Arc<dyn Inode>,
    size: u64,
}

fn open_image(path: &str) -> Result<Image, LoadError> {
    let p = process::get();
    let cwd = p.cwd.lock().clone();
    let r = p
        .vfs
        .resolve(&cwd, path, Lookup::Follow)
        .map_err(|_| LoadError::NotFound(path.to_string()))?;
    let meta = r.inode.metadata();
    if meta.file_type() != FileType::Regular || meta.mode & 0o111 == 0 {
        return Err(LoadError::NotExecutable(path.to_string()));
    }
    Ok(Image {
        path: r.path,
        inode: r.inode,
        size: meta.size,
    })
}

impl Image {
    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, LoadError> {
        let mut buf = alloc::vec![0u8; len];
        let mut done = 0;
        while done < len {
            match self.inode.read_at(offset + done as u64, &mut buf[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) => return Err(LoadError::Io(alloc::format!("errno {}", e.errno()))),
            }
        }
        buf.truncate(done);
        Ok(buf)
    }
}

/// Load `path` with `argv` and `envp` and build the initial frame.
pub fn load(
    abi: &'static Abi,
    path: &str,
    argv: &[String],
    envp: &[String],
) -> Result<Loaded, LoadError> {
    let image = open_image(path)?;
    let head = image.read(0, SHEBANG_MAX)?;
    if head.starts_with(b"#!") {
        let (interp, arg) = parse_shebang(&head).ok_or(LoadError::NotElf)?;
        let mut new_argv = alloc::vec![interp.clone()];
        new_argv.extend(arg);
        new_argv.push(image.path.clone());
        new_argv.extend(argv.iter().skip(1).cloned());
        let interp_image = open_image(&interp)?;
        return load_elf(abi, interp_image, new_argv, envp);
    }
    load_elf(abi, image, argv.to_vec(), envp)
}

/// The interpreter and optional single argument of a `#!` line.
pub fn parse_shebang(head: &[u8]) -> Option<(String, Option<String>)> {
    let line = head.strip_prefix(b"#!")?;
    let end = line.iter().position(|&b| b == b'\n')?;
    let text = core::str::from_utf8(&line[..end]).ok()?.trim();
    let (interp, rest) = match text.split_once([' ', '\t']) {
        Some((i, r)) => (i, r.trim()),
        None => (text, ""),
    };
    if interp.is_empty() {
        return None;
    }
    Some((
        interp.to_string(),
        (!rest.is_empty()).then(|| rest.to_string()),
    ))
}

/// What mapping one ELF object produced.
struct Mapped {
    bias: u64,
    entry: u64,
    phdr: u64,
    phent: u16,
    phnum: u16,
    end: u64,
    interp: Option<String>,
}

fn load_elf(
    abi: &'static Abi,
    image: Image,
    argv: Vec<String>,
    envp: &[String],
) -> Result<Loaded, LoadError> {
    // The stack first, at the top of the range; mappings go below it.
    let stack_top = map_stack()?;
    let exe = map_object(abi, &image, true)?;
    let (entry, base) = match &exe.interp {
        Some(interp_path) => {
            let interp = open_image(interp_path).map_err(|e| match e {
                LoadError::NotFound(p) => LoadError::Unsupported(alloc::format!(
                    "its dynamic linker {p} is not in the image (add it, or use `cargo keel run --libs`)"
                )),
                other => other,
            })?;
            let ld = map_object(abi, &interp, false)?;
            if ld.interp.is_some() {
                return Err(LoadError::Malformed(
                    "the dynamic linker itself asks for a dynamic linker".into(),
                ));
            }
            (ld.entry, ld.bias)
        }
        None => (exe.entry, 0),
    };
    SPACE.init_brk(page_up(exe.end) as usize);
    let (sp, auxv) = build_stack(abi, stack_top, &image.path, &argv, envp, &exe, base)?;
    Ok(Loaded {
        frame: initial_frame(abi, entry, sp),
        auxv,
        exe: image.path,
        argv,
    })
}

/// Registers at the program's first instruction.
fn initial_frame(abi: &Abi, entry: u64, sp: u64) -> AppFrame {
    let mut f = AppFrame {
        pc: entry,
        sp,
        ..Default::default()
    };
    match abi.name {
        // rdx = 0: no function for the program to register with atexit.
        "x86_64" => f.flags = 0x202,
        // ELFv2: r12 holds the entry address (functions derive their TOC
        // from it); r1 is the stack pointer.
        "ppc64" => {
            f.gpr[1] = sp;
            f.gpr[12] = entry;
        }
        _ => {}
    }
    f
}

fn page_down(v: u64) -> u64 {
    v & !(PAGE_SIZE as u64 - 1)
}

fn page_up(v: u64) -> u64 {
    v.saturating_add(PAGE_SIZE as u64 - 1) & !(PAGE_SIZE as u64 - 1)
}

fn prot_of(flags: u32) -> u8 {
    let mut p = 0;
    if flags & PF_R != 0 {
        p |= PROT_READ;
    }
    if flags & PF_W != 0 {
        p |= PROT_WRITE;
    }
    if flags & PF_X != 0 {
        p |= PROT_EXEC;
    }
    p
}

fn malformed(why: &str) -> LoadError {
    LoadError::Malformed(why.to_string())
}

/// One PT_LOAD, checked.
struct Segment {
    vaddr: u64,
    offset: u64,
    filesz: u64,
    memsz: u64,
    prot: u8,
}

fn map_object(abi: &Abi, image: &Image, main: bool) -> Result<Mapped, LoadError> {
    let head = image.read(0, 64)?;
    if head.len() < 4 || &head[..4] != b"\x7fELF" {
        return Err(LoadError::NotElf);
    }
    if head.get(4) != Some(&2) {
        return Err(LoadError::Unsupported(
            "32-bit ELF (Keel runs 64-bit programs)".into(),
        ));
    }
    if head.get(5) != Some(&1) {
        return Err(LoadError::Unsupported(
            "big-endian ELF (Keel runs little-endian programs)".into(),
        ));
    }
    let header = FileHeader64::<Endianness>::parse(&*head)
        .map_err(|e| LoadError::Malformed(e.to_string()))?;
    let endian = header
        .endian()
        .map_err(|e| LoadError::Malformed(e.to_string()))?;
    let machine_found = header.e_machine(endian);
    if machine_found != abi.elf_machine {
        return Err(LoadError::WrongArch {
            found: machine_found,
            expected: abi.name,
        });
    }
    let kind = header.e_type(endian);
    if kind != ET_EXEC && kind != ET_DYN {
        return Err(LoadError::Unsupported(alloc::format!(
            "ELF type {kind} is not an executable or shared object"
        )));
    }
    let phoff = header.e_phoff(endian);
    let phnum = usize::from(header.e_phnum(endian));
    let phent = header.e_phentsize(endian);
    if phnum == 0
        || phnum > MAX_PHNUM
        || usize::from(phent) != core::mem::size_of::<object::elf::ProgramHeader64<Endianness>>()
    {
        return Err(malformed("no usable program headers"));
    }
    let table_len = phnum * usize::from(phent);
    let table_end = phoff
        .checked_add(table_len as u64)
        .filter(|&e| e <= image.size)
        .ok_or_else(|| malformed("program headers lie outside the file"))?;
    // The parser reads the table from a buffer laid out like the file.
    let mut buf = image.read(0, table_end as usize)?;
    if buf.len() < table_end as usize {
        return Err(malformed("file shorter than its headers"));
    }
    buf.truncate(table_end as usize);
    let header = FileHeader64::<Endianness>::parse(&*buf)
        .map_err(|e| LoadError::Malformed(e.to_string()))?;
    let phdrs = header
        .program_headers(endian, &*buf)
        .map_err(|e| LoadError::Malformed(e.to_string()))?;

    let mut segments = Vec::new();
    let mut interp = None;
    let mut phdr_vaddr = None;
    for ph in phdrs {
        match ph.p_type(endian) {
            PT_LOAD => {
                let s = Segment {
                    vaddr: ph.p_vaddr(endian),
                    offset: ph.p_offset(endian),
                    filesz: ph.p_filesz(endian),
                    memsz: ph.p_memsz(endian),
                    prot: prot_of(ph.p_flags(endian)),
                };
                if s.filesz > s.memsz
                    || s.offset
                        .checked_add(s.filesz)
                        .is_none_or(|e| e > image.size)
                {
                    return Err(malformed(
                        "a segment is larger in the file than in memory, or runs past the end of the file",
                    ));
                }
                if s.vaddr.checked_add(s.memsz).is_none() {
                    return Err(malformed("a segment wraps around the address space"));
                }
                segments.push(s);
            }
            PT_INTERP if main => {
                let (off, len) = (ph.p_offset(endian), ph.p_filesz(endian) as usize);
                if len == 0
                    || len > 4096
                    || off.checked_add(len as u64).is_none_or(|e| e > image.size)
                {
                    return Err(malformed("bad PT_INTERP"));
                }
                let raw = image.read(off, len)?;
                let path = raw.split(|&b| b == 0).next().unwrap_or(&[]);
                interp = Some(String::from_utf8_lossy(path).into_owned());
            }
            PT_PHDR => phdr_vaddr = Some(ph.p_vaddr(endian)),
            _ => {}
        }
    }
    if segments.is_empty() {
        return Err(malformed("no loadable segments"));
    }
    let lo = page_down(segments.iter().map(|s| s.vaddr).min().unwrap_or(0));
    let hi = page_up(
        segments
            .iter()
            .map(|s| s.vaddr + s.memsz)
            .max()
            .unwrap_or(0),
    );
    let span = (hi - lo) as usize;
    if span == 0 {
        return Err(malformed("segments occupy no memory"));
    }
    // Position-independent objects go wherever there is room; the rest
    // where they were linked.
    let bias = if kind == ET_DYN {
        // The program at two thirds of the range, as Linux does, leaving
        // its heap room to grow; its dynamic linker wherever mmap puts it.
        let reserve = Vma {
            start: 0,
            end: 0,
            prot: 0,
            shared: false,
            backing: Backing::Anonymous,
            label: None,
        };
        let (app_lo, app_hi) = machine::app_range();
        let preferred = main.then(|| (app_lo + (app_hi - app_lo) / 3 * 2) & !(0x20_0000 - 1));
        let at = match preferred.map(|p| SPACE.map(Some(p), span, reserve.clone(), false)) {
            Some(Ok(at)) => at,
            _ => SPACE
                .map(None, span, reserve, false)
                .map_err(|_| LoadError::NoMemory)?,
        };
        (at as u64).wrapping_sub(lo)
    } else {
        let (app_lo, app_hi) = machine::app_range();
        if lo < app_lo as u64 || hi > app_hi as u64 {
            return Err(LoadError::Unsupported(alloc::format!(
                "it is linked at {lo:#x}..{hi:#x}, outside the app address range {app_lo:#x}..{app_hi:#x}"
            )));
        }
        0
    };
    let mappable = image.inode.clone().mappable();
    for s in &segments {
        map_segment(image, mappable.as_ref(), s, bias)?;
    }
    // Where the program headers are in memory (AT_PHDR).
    let phdr = match phdr_vaddr {
        Some(v) => v,
        None => segments
            .iter()
            .find(|s| phoff >= s.offset && phoff + table_len as u64 <= s.offset + s.filesz)
            .map(|s| s.vaddr + (phoff - s.offset))
            .ok_or_else(|| malformed("program headers are not in any loaded segment"))?,
    };
    Ok(Mapped {
        bias,
        entry: bias.wrapping_add(header.e_entry(endian)),
        phdr: bias.wrapping_add(phdr),
        phent,
        phnum: phnum as u16,
        end: bias.wrapping_add(hi),
        interp,
    })
}

fn map_segment(
    image: &Image,
    mappable: Option<&Arc<dyn keel_core::memory::app_space::Mappable>>,
    s: &Segment,
    bias: u64,
) -> Result<(), LoadError> {
    let start = bias.wrapping_add(s.vaddr);
    let page_start = page_down(start);
    let file_end = start + s.filesz;
    let mem_end = start + s.memsz;
    let shift = start - page_start;
    let writable_prot = s.prot | PROT_WRITE;
    let vma = |backing, prot| Vma {
        start: 0,
        end: 0,
        prot,
        shared: false,
        backing,
        label: Some(Cow::Owned(image.path.clone())),
    };
    let file_pages_end = page_up(file_end);
    let congruent = s.offset % PAGE_SIZE as u64 == start % PAGE_SIZE as u64;
    // Zeroing the tail of the last file page needs it writable for a moment.
    let needs_tail_zero = s.memsz > s.filesz && !file_end.is_multiple_of(PAGE_SIZE as u64);
    if s.filesz > 0 {
        match mappable {
            Some(object) if congruent => {
                let prot = if needs_tail_zero {
                    writable_prot
                } else {
                    s.prot
                };
                let backing = Backing::File {
                    object: object.clone(),
                    offset: s.offset - shift,
                };
                SPACE
                    .map(
                        Some(page_start as usize),
                        (file_pages_end - page_start) as usize,
                        vma(backing, prot),
                        true,
                    )
                    .map_err(|_| LoadError::NoMemory)?;
            }
            _ => {
                // Not page-aligned in the file, or a file that cannot be
                // mapped: copy the bytes into anonymous memory.
                SPACE
                    .map(
                        Some(page_start as usize),
                        (file_pages_end - page_start) as usize,
                        vma(Backing::Anonymous, writable_prot),
                        true,
                    )
                    .map_err(|_| LoadError::NoMemory)?;
                let mut at = 0u64;
                while at < s.filesz {
                    let n = (s.filesz - at).min(1 << 20) as usize;
                    let bytes = image.read(s.offset + at, n)?;
                    mem::write_bytes(start + at, &bytes).map_err(|_| LoadError::NoMemory)?;
                    at += n as u64;
                }
            }
        }
        if needs_tail_zero {
            let len = (file_pages_end - file_end) as usize;
            mem::write_bytes(file_end, &alloc::vec![0u8; len]).map_err(|_| LoadError::NoMemory)?;
        }
        if needs_tail_zero || !(congruent && mappable.is_some()) {
            SPACE
                .protect(
                    page_start as usize,
                    (file_pages_end - page_start) as usize,
                    s.prot,
                )
                .map_err(|_| LoadError::NoMemory)?;
        }
    }
    let anon_start = if s.filesz > 0 {
        file_pages_end
    } else {
        page_start
    };
    let anon_end = page_up(mem_end);
    if anon_end > anon_start {
        let bss = Vma {
            start: 0,
            end: 0,
            prot: s.prot,
            shared: false,
            backing: Backing::Anonymous,
            label: None,
        };
        SPACE
            .map(
                Some(anon_start as usize),
                (anon_end - anon_start) as usize,
                bss,
                true,
            )
            .map_err(|_| LoadError::NoMemory)?;
    }
    Ok(())
}

/// Map the main thread's stack; returns its top.
fn map_stack() -> Result<u64, LoadError> {
    let stack_vma = Vma {
        start: 0,
        end: 0,
        prot: PROT_READ | PROT_WRITE,
        shared: false,
        backing: Backing::Anonymous,
        label: Some(Cow::Borrowed("[stack]")),
    };
    // One unmapped page below the stack catches overflows as faults.
    let base = SPACE
        .map(None, STACK_SIZE + PAGE_SIZE, stack_vma, false)
        .map_err(|_| LoadError::NoMemory)?;
    SPACE
        .unmap(base, PAGE_SIZE)
        .map_err(|_| LoadError::NoMemory)?;
    Ok((base + STACK_SIZE + PAGE_SIZE) as u64)
}

/// Build the initial stack below `top`; returns the stack pointer (at
/// argc) and the auxiliary vector.
fn build_stack(
    abi: &Abi,
    top: u64,
    exe_path: &str,
    argv: &[String],
    envp: &[String],
    exe: &Mapped,
    interp_base: u64,
) -> Result<(u64, Vec<(u64, u64)>), LoadError> {
    // Strings at the top: argv and envp, then the exec path, platform and
    // 16 random bytes.
    let mut at = top;
    let mut push = |bytes: &[u8]| -> Result<u64, LoadError> {
        at -= bytes.len() as u64;
        mem::write_bytes(at, bytes).map_err(|_| LoadError::NoMemory)?;
        Ok(at)
    };
    let mut cstr = |s: &str| -> Result<u64, LoadError> {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        push(&b)
    };
    let execfn = cstr(exe_path)?;
    let (hwcap, hwcap2) = machine::elf_hwcaps();
    let platform = cstr(abi.platform_for(hwcap2))?;
    let envp_ptrs: Vec<u64> = envp
        .iter()
        .rev()
        .map(|s| cstr(s))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .rev()
        .collect();
    let argv_ptrs: Vec<u64> = argv
        .iter()
        .rev()
        .map(|s| cstr(s))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .rev()
        .collect();
    let mut random = [0u8; 16];
    keel_core::random::fill(&mut random);
    let random_at = push(&random)?;
    let total_strings = top - at;
    if total_strings as usize > STACK_SIZE / 4 {
        return Err(LoadError::Unsupported("argument list too long".into()));
    }

    let creds = process::get().creds.lock().clone();
    let mut auxv = alloc::vec![
        (at::PHDR, exe.phdr),
        (at::PHENT, u64::from(exe.phent)),
        (at::PHNUM, u64::from(exe.phnum)),
        (at::PAGESZ, PAGE_SIZE as u64),
        (at::BASE, interp_base),
        (at::FLAGS, 0),
        (at::ENTRY, exe.entry),
        (at::UID, u64::from(creds.uid[0])),
        (at::EUID, u64::from(creds.uid[1])),
        (at::GID, u64::from(creds.gid[0])),
        (at::EGID, u64::from(creds.gid[1])),
        (at::SECURE, 0),
        (at::RANDOM, random_at),
        (at::HWCAP, hwcap),
        (at::HWCAP2, hwcap2),
        (at::CLKTCK, 100),
        (at::PLATFORM, platform),
        (at::EXECFN, execfn),
    ];
    if abi.min_sigstack != 0 {
        auxv.push((at::MINSIGSTKSZ, abi.min_sigstack));
    }
    if abi.name == "ppc64" {
        // glibc's memset and cache maintenance read the block sizes.
        auxv.extend([
            (at::DCACHEBSIZE, 128),
            (at::ICACHEBSIZE, 128),
            (at::UCACHEBSIZE, 0),
        ]);
    }
    auxv.push((at::NULL, 0));

    // Below the strings: argc, argv[], NULL, envp[], NULL, auxv pairs; argc
    // 16-byte aligned as every arch's ABI wants.
    let words = 1 + argv_ptrs.len() + 1 + envp_ptrs.len() + 1 + 2 * auxv.len();
    let sp = (at - words as u64 * 8) & !15;
    let mut table = Vec::with_capacity(words * 8);
    table.extend_from_slice(&(argv_ptrs.len() as u64).to_le_bytes());
    for p in argv_ptrs
        .iter()
        .chain(core::iter::once(&0))
        .chain(envp_ptrs.iter())
        .chain(core::iter::once(&0))
    {
        table.extend_from_slice(&p.to_le_bytes());
    }
    for (k, v) in &auxv {
        table.extend_from_slice(&k.to_le_bytes());
        table.extend_from_slice(&v.to_le_bytes());
    }
    mem::write_bytes(sp, &table).map_err(|_| LoadError::NoMemory)?;
    Ok((sp, auxv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines() {
        assert_eq!(
            parse_shebang(b"#!/bin/sh\necho"),
            Some(("/bin/sh".into(), None))
        );
        assert_eq!(
            parse_shebang(b"#! /usr/bin/env  python3 \n"),
            Some(("/usr/bin/env".into(), Some("python3".into())))
        );
        assert_eq!(parse_shebang(b"#!\n"), None);
        assert_eq!(parse_shebang(b"#!/bin/sh"), None); // no end of line within the limit
    }

    #[test]
    fn errors_read_well() {
        let e = LoadError::WrongArch {
            found: 183,
            expected: "x86_64",
        };
        assert_eq!(
            alloc::format!("{e}"),
            "built for aarch64 (e_machine 183), but this is an x86_64 machine"
        );
        assert_eq!(LoadError::NotFound("/x".into()).status(), 127);
        assert_eq!(LoadError::NotElf.status(), 126);
    }
}
