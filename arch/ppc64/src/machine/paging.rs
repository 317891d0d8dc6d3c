//! The radix MMU: boot tables, registration with the hypervisor, TLB
//! maintenance, and a software walk for the backtrace code.
//!
//! Two trees: process-table entry 0 translates quadrant 3 (the kernel:
//! the direct map of RAM in 1 GiB pages, and `KERNEL_VMAP`), entry
//! `APP_PID` translates quadrant 0 (the app). Both roots and the process
//! table are static; core's walker adds lower levels on demand.

use core::arch::asm;

use keel_driver_papr::hcall::{self as h, H_REGISTER_PROC_TBL, H_SUCCESS};
use keel_hal::paging::{Entry, PageTableFormat};
use keel_hal::{PageFlags, PhysAddr, VirtAddr};

use crate::layout::{APP_PID, KERNEL_BASE, PHYS_MAP_BASE, RADIX_BITS};
use crate::machine::boot::kernel_phys;
use crate::radix::{RadixFormat, process_table_entry};

const ROOT_ENTRIES: usize = 1 << crate::radix::ROOT_BITS;
const GIB: u64 = 1 << 30;

#[repr(C, align(65536))]
struct Root([u64; ROOT_ENTRIES]);
#[repr(C, align(4096))]
struct Table([u64; 512]);

/// The process table: 256 entries of two doublewords (4 KiB, the
/// smallest size `H_REGISTER_PROC_TBL` takes).
static mut PROCESS_TABLE: Table = Table([0; 512]);
static mut KERNEL_ROOT: Root = Root([0; ROOT_ENTRIES]);
static mut APP_ROOT: Root = Root([0; ROOT_ENTRIES]);
/// The direct map's level-1 table: up to 512 GiB of RAM in 1 GiB leaves.
static mut DIRECT_MAP_L1: Table = Table([0; 512]);

/// Most RAM the boot direct map covers.
pub const DIRECT_MAP_LIMIT: u64 = 512 * GIB;

fn kernel_root() -> PhysAddr {
    PhysAddr(kernel_phys((&raw const KERNEL_ROOT) as usize))
}

fn app_root() -> PhysAddr {
    PhysAddr(kernel_phys((&raw const APP_ROOT) as usize))
}

/// The root table translating `va`.
pub fn root_for(va: VirtAddr) -> PhysAddr {
    if va.0 >= KERNEL_BASE {
        kernel_root()
    } else {
        app_root()
    }
}

/// Build the boot tables (direct map of `[0, ram_end)`) and register the
/// process table. Runs in real mode on the boot CPU, once. Fails with the
/// hypervisor's status if it refuses the table.
pub fn setup(ram_end: u64) -> Result<(), i64> {
    let gibs = ram_end.min(DIRECT_MAP_LIMIT).div_ceil(GIB) as usize;
    // Real mode, one CPU, before translation is on: nothing else reads or
    // writes these tables yet. Statics are reachable at their link
    // addresses in real mode.
    let (l1, root, pt) = (
        &raw mut DIRECT_MAP_L1,
        &raw mut KERNEL_ROOT,
        &raw mut PROCESS_TABLE,
    );
    // SAFETY: as above.
    unsafe {
        let l1 = &mut (*l1).0;
        for (g, slot) in l1.iter_mut().enumerate().take(gibs) {
            *slot = RadixFormat::encode(
                Entry::Leaf(PhysAddr(g as u64 * GIB), PageFlags::DATA | PageFlags::EXEC),
                1,
            );
        }
        let root = &mut (*root).0;
        let l1_phys = PhysAddr(kernel_phys(l1.as_ptr() as usize));
        root[RadixFormat::index(VirtAddr(PHYS_MAP_BASE), 0)] =
            RadixFormat::encode(Entry::Table(l1_phys), 0);
        let pt = &mut (*pt).0;
        pt[0] = process_table_entry(kernel_root(), RADIX_BITS);
        pt[2 * APP_PID as usize] = process_table_entry(app_root(), RADIX_BITS);
    }
    // SAFETY: barrier only: table stores before the hypervisor reads them.
    unsafe { asm!("ptesync", options(nostack)) };
    let table = kernel_phys((&raw const PROCESS_TABLE) as usize);
    let flags = h::proc_tbl::MODIFY | h::proc_tbl::REGISTER | h::proc_tbl::RADIX;
    let (status, _) = keel_driver_papr::hcall(H_REGISTER_PROC_TBL, [flags, table, 0, 0, 0, 0, 0]);
    if status != H_SUCCESS {
        return Err(status);
    }
    set_pid();
    flush_all();
    Ok(())
}

/// Point quadrant 0 at the app's process-table entry (per CPU).
pub fn set_pid() {
    // SAFETY: PIDR selects the quadrant-0 tree; the entry exists.
    unsafe { asm!("mtspr 48, {0}", "isync", in(reg) APP_PID, options(nostack)) };
}

/// `tlbiel RB, RS, RIC, PRS, R` with RB in r3 and RS in r4, encoded by
/// hand (assemblers differ on the five-operand form).
const fn tlbiel(ric: u32, prs: u32, r: u32) -> u32 {
    (31 << 26) | (4 << 21) | (ric << 18) | (prs << 17) | (r << 16) | (3 << 11) | (274 << 1)
}

/// Drop this CPU's translation of the 4 KiB page at `va`.
pub fn flush_page(va: VirtAddr) {
    let pid: u64 = if va.0 >= KERNEL_BASE { 0 } else { APP_PID };
    let rb = va.0 as u64 & !0xfff; // IS = 0 (this page), AP = 0 (4 KiB)
    // SAFETY: TLB maintenance only (process scoped, radix, this page).
    unsafe {
        asm!(
            "ptesync",
            ".long {insn}",
            "ptesync",
            insn = const tlbiel(0, 1, 1),
            in("r3") rb,
            in("r4") pid << 32,
            options(nostack)
        )
    };
}

/// Drop all of this CPU's process-scoped translations and cached walks:
/// `tlbiel` for every congruence class (POWER9 has 128 for radix; a
/// POWER10 invalidates everything from the first).
pub fn flush_all() {
    let sets = if crate::machine::cpu::is_power9() {
        128
    } else {
        1
    };
    // SAFETY: barrier only.
    unsafe { asm!("ptesync", options(nostack)) };
    for set in 0..sets {
        let rb: u64 = (set << 12) | (3 << 10);
        // SAFETY: TLB maintenance only (IS=3: everything in this
        // partition's process scope; RIC=2 on the first set also drops
        // cached page-walk and process-table entries).
        unsafe {
            if set == 0 {
                asm!(".long {insn}", insn = const tlbiel(2, 1, 1), in("r3") rb, in("r4") 0u64, options(nostack));
            } else {
                asm!(".long {insn}", insn = const tlbiel(0, 1, 1), in("r3") rb, in("r4") 0u64, options(nostack));
            }
        }
    }
    // SAFETY: barriers only.
    unsafe { asm!("ptesync", "isync", options(nostack)) };
}

/// Make page-table stores visible to the hardware walker.
pub fn publish() {
    // SAFETY: barrier only.
    unsafe { asm!("ptesync", options(nostack)) };
}

/// Whether `va` is mapped, by walking the live tables through the direct
/// map (used by the backtrace code, which must never fault).
pub fn is_mapped(va: usize) -> bool {
    let quadrant = va >> 62;
    let middle = (va >> RADIX_BITS) & ((1 << (62 - RADIX_BITS)) - 1);
    if (quadrant != 0 && quadrant != 3) || middle != 0 {
        return false;
    }
    let mut table = root_for(VirtAddr(va)).0;
    for level in 0..RadixFormat::levels() {
        let index = RadixFormat::index(VirtAddr(va), level);
        let p = (PHYS_MAP_BASE as u64 + table) as *const u64;
        // SAFETY: `table` is a live page table (a root, or an entry this
        // walk just read); the direct map covers all of them.
        let raw = unsafe { p.add(index).read_volatile() };
        match RadixFormat::decode(raw, level) {
            Entry::Invalid => return false,
            Entry::Leaf(..) => return true,
            Entry::Table(next) => table = next.0,
        }
    }
    false
}
