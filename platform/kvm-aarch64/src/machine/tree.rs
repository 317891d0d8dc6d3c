//! Finding the device tree and turning it into core's `BootInfo`.

use keel_arch_aarch64 as arch;
use keel_core::memory::map::region;
use keel_core::memory::phys_to_virt;
use keel_driver_devicetree::{Machine, total_size};
use keel_hal::{BootInfo, CpuDescriptor, Firmware, MemoryKind, PhysAddr};

/// Largest DTB accepted (Linux's limit is 2 MiB; QEMU's are 1 MiB).
const MAX_DTB: usize = 8 << 20;
const CMDLINE_MAX: usize = 4096;

static mut CMDLINE: [u8; CMDLINE_MAX] = [0; CMDLINE_MAX];

/// The `len` bytes at physical `pa`, through the direct map, if it covers
/// them. Only the device tree is reached this way, once, during boot.
fn phys_slice(pa: u64, len: usize) -> Option<&'static mut [u8]> {
    let end = pa.checked_add(len as u64)?.checked_sub(1)?;
    if !arch::direct_map_covers(pa) || !arch::direct_map_covers(end) {
        return None;
    }
    // SAFETY: the range lies in RAM the direct map covers (checked above);
    // it is the DTB, which the memory map keeps in use for good and which
    // nothing else references while boot reads (and tidies) it.
    Some(unsafe { core::slice::from_raw_parts_mut(phys_to_virt(PhysAddr(pa)).as_ptr::<u8>(), len) })
}

/// The DTB's physical address and bytes. `from_loader` is x0 at entry:
/// an arm64 Image boot passes the DTB there. An ELF boot passes 0, and
/// QEMU puts the DTB at the start of RAM (the 1 GiB boundary below the
/// image on its virt machine), which is tried then.
pub fn locate(from_loader: u64) -> Result<(u64, &'static mut [u8]), &'static str> {
    let pa = if from_loader != 0 {
        from_loader
    } else {
        let (image, _) = arch::kernel_image_phys();
        let guess = image & !(arch::layout::GIB - 1);
        match phys_slice(guess, 8).and_then(|h| total_size(h)) {
            Some(_) => guess,
            None => {
                return Err(
                    "the loader passed no device tree (x0 = 0) and none lies at the start of RAM",
                );
            }
        }
    };
    if !pa.is_multiple_of(8) {
        return Err("the device tree address is not 8-byte aligned");
    }
    let header = phys_slice(pa, 8).ok_or("the device tree is not in RAM next to the kernel")?;
    let size =
        total_size(header).ok_or("no device tree at the address the loader gave (bad magic)")?;
    if size > MAX_DTB {
        return Err("the device tree claims to be larger than 8 MiB");
    }
    let blob = phys_slice(pa, size).ok_or("the device tree runs past the memory mapped at boot")?;
    Ok((pa, blob))
}

/// Memory map, CPUs, command line and firmware pointer from the tree.
pub fn boot_info(m: &Machine<'_>, dtb: u64, dtb_len: u64) -> Result<BootInfo, &'static str> {
    let mut boot = BootInfo::empty();
    let mut full = false;
    let mut push = |boot: &mut BootInfo, start: u64, len: u64, kind: MemoryKind| {
        if !boot.push_memory(region(start, len, kind)) {
            full = true;
        }
    };
    for r in m.memory.as_slice() {
        push(&mut boot, r.base, r.size, MemoryKind::Usable);
    }
    if boot.memory_len == 0 {
        return Err("the device tree describes no memory");
    }
    let (image_start, image_end) = arch::kernel_image_phys();
    push(
        &mut boot,
        image_start,
        image_end - image_start,
        MemoryKind::InUse,
    );
    push(&mut boot, dtb, dtb_len, MemoryKind::InUse);
    for r in m.reserved.as_slice() {
        push(&mut boot, r.base, r.size, MemoryKind::Reserved);
    }
    if let Some(initrd) = m.initrd {
        push(&mut boot, initrd.base, initrd.size, MemoryKind::InUse);
        boot.initrd = Some((PhysAddr(initrd.base), initrd.size));
    }
    if full {
        keel_core::kprintln!("keel: memory map too long; some regions ignored");
    }
    // The boot CPU first, then the others in tree order.
    let me = arch::boot_mpidr();
    boot.push_cpu(CpuDescriptor { hw_id: me });
    for &mpidr in m.cpus.as_slice().iter().filter(|&&id| id != me) {
        if !boot.push_cpu(CpuDescriptor { hw_id: mpidr }) {
            keel_core::kprintln!(
                "keel: more CPUs than Keel supports; using {}",
                boot.cpu_count
            );
            break;
        }
    }
    boot.cmdline = copy_cmdline(m.bootargs);
    boot.firmware = Firmware::DeviceTree {
        blob: PhysAddr(dtb),
    };
    boot.boot_stack = arch::boot_stack();
    Ok(boot)
}

/// Copy the command line into kernel memory (cut at a character boundary
/// if it is too long).
fn copy_cmdline(line: &str) -> &'static str {
    let mut len = line.len().min(CMDLINE_MAX);
    while !line.is_char_boundary(len) {
        len -= 1;
    }
    let buf = &raw mut CMDLINE;
    // SAFETY: written once here on the boot CPU before anything reads it.
    let buf = unsafe { &mut *buf };
    buf[..len].copy_from_slice(&line.as_bytes()[..len]);
    core::str::from_utf8(&buf[..len]).unwrap_or("")
}
