//! The PVH boot protocol: what the loader tells us in `hvm_start_info`.

use keel_arch_x86_64::AP_TRAMPOLINE_PHYS;
use keel_core::memory::{map::region, phys_to_virt};
use keel_hal::{BootInfo, Firmware, MemoryKind, PhysAddr};

const MAGIC: u32 = 0x336e_c578;
const CMDLINE_MAX: usize = 4096;

#[repr(C)]
#[derive(Clone, Copy)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct ModuleEntry {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct MemmapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

const E820_RAM: u32 = 1;

static mut CMDLINE: [u8; CMDLINE_MAX] = [0; CMDLINE_MAX];

fn read_phys<T: Copy>(pa: u64) -> T {
    // SAFETY: the loader placed these structures in low RAM, which the boot
    // direct map covers; they are plain data and read by value.
    unsafe { phys_to_virt(PhysAddr(pa)).as_ptr::<T>().read_unaligned() }
}

unsafe extern "C" {
    static __kernel_end: u8;
}

/// Turn the loader's start_info into a [`BootInfo`] (memory map with
/// everything still needed marked in use, command line copied, RSDP,
/// initrd). Errors say what is wrong with the boot.
pub fn read_start_info(pa: u64) -> Result<BootInfo, &'static str> {
    if pa == 0 || !pa.is_multiple_of(4) {
        return Err("no PVH start_info (was the kernel entered through its PVH note?)");
    }
    let info: StartInfo = read_phys(pa);
    if info.magic != MAGIC {
        return Err("bad PVH start_info magic (not booted through PVH)");
    }
    if info.version < 1 || info.memmap_paddr == 0 || info.memmap_entries == 0 {
        return Err("the loader gave no memory map (PVH start_info version 0)");
    }
    let mut boot = BootInfo::empty();
    let mut push = |start: u64, len: u64, kind: MemoryKind| {
        if !boot.push_memory(region(start, len, kind)) {
            keel_core::kprintln!("keel: memory map too long; ignoring {start:#x}+{len:#x}");
        }
    };
    for i in 0..u64::from(info.memmap_entries) {
        let e: MemmapEntry =
            read_phys(info.memmap_paddr + i * core::mem::size_of::<MemmapEntry>() as u64);
        let kind = if e.kind == E820_RAM {
            MemoryKind::Usable
        } else {
            MemoryKind::Reserved
        };
        push(e.addr, e.size, kind);
    }
    // Low memory holds firmware data and the AP trampoline; the kernel image
    // (with its boot tables) starts at 1 MiB.
    let kernel_end =
        (&raw const __kernel_end) as u64 - keel_arch_x86_64::layout::KERNEL_BASE as u64;
    push(0, 0x10_0000, MemoryKind::InUse);
    push(0x10_0000, kernel_end - 0x10_0000, MemoryKind::InUse);
    push(AP_TRAMPOLINE_PHYS, 0x1000, MemoryKind::InUse);
    push(
        pa,
        core::mem::size_of::<StartInfo>() as u64,
        MemoryKind::InUse,
    );
    push(
        info.memmap_paddr,
        u64::from(info.memmap_entries) * 24,
        MemoryKind::InUse,
    );
    if info.nr_modules > 0 && info.modlist_paddr != 0 {
        let m: ModuleEntry = read_phys(info.modlist_paddr);
        push(info.modlist_paddr, 32, MemoryKind::InUse);
        if m.size > 0 {
            push(m.paddr, m.size, MemoryKind::InUse);
            boot.initrd = Some((PhysAddr(m.paddr), m.size));
        }
    }
    map_ram_above_4g(&mut boot, kernel_end)?;
    boot.cmdline = copy_cmdline(info.cmdline_paddr);
    boot.firmware = if info.rsdp_paddr != 0 {
        Firmware::Acpi {
            rsdp: PhysAddr(info.rsdp_paddr),
        }
    } else {
        Firmware::None
    };
    boot.boot_stack = keel_arch_x86_64::boot_stack();
    Ok(boot)
}

/// RAM above 4 GiB needs direct-map entries before the frame allocator
/// hands it out. Page tables for it (if the CPU lacks 1 GiB pages) come
/// from RAM just after the kernel, which is then marked in use.
fn map_ram_above_4g(boot: &mut BootInfo, kernel_end: u64) -> Result<(), &'static str> {
    let end = boot
        .memory_regions()
        .iter()
        .filter(|r| r.kind == MemoryKind::Usable)
        .map(|r| r.end().0)
        .max()
        .unwrap_or(0);
    if end <= 1 << 32 {
        return Ok(());
    }
    let first = kernel_end.next_multiple_of(0x1000);
    let mut next = first;
    let in_use: keel_core::memory::map::Ranges =
        keel_core::memory::map::usable_ranges(boot.memory_regions());
    let mut take = || {
        let page = next;
        let free = in_use
            .as_slice()
            .iter()
            .any(|&(s, e)| s <= page && page + 0x1000 <= e);
        (free && page + 0x1000 <= 1 << 32).then(|| {
            next += 0x1000;
            page
        })
    };
    keel_arch_x86_64::extend_direct_map(end, &mut take)?;
    if next > first {
        boot.push_memory(region(first, next - first, MemoryKind::InUse));
    }
    Ok(())
}

/// Copy the NUL-terminated command line into kernel memory (so its
/// physical page can be reused) and keep it if it is UTF-8.
fn copy_cmdline(pa: u64) -> &'static str {
    if pa == 0 {
        return "";
    }
    let buf = &raw mut CMDLINE;
    // SAFETY: written once here on the boot CPU before anything reads it.
    let buf = unsafe { &mut *buf };
    let mut len = 0;
    while len < CMDLINE_MAX - 1 {
        let b: u8 = read_phys(pa + len as u64);
        if b == 0 {
            break;
        }
        buf[len] = b;
        len += 1;
    }
    match core::str::from_utf8(&buf[..len]) {
        Ok(s) => s,
        Err(e) => {
            keel_core::kprintln!(
                "keel: command line is not UTF-8 after byte {}; using the part before it",
                e.valid_up_to()
            );
            // SAFETY-free: the prefix up to `valid_up_to` is valid UTF-8.
            core::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or("")
        }
    }
}
