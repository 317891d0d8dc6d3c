//! Starting the other CPUs with PSCI CPU_ON: each enters
//! `keel_aarch64_secondary_entry` at its physical address with the MMU
//! off and its index in x0, turns the MMU on with the boot tables, and
//! reaches `keel_aarch64_secondary_start` on the stack core gave it.

use core::sync::atomic::{AtomicUsize, Ordering};

use keel_hal::CpuIndex;
use keel_hal::smp::SmpError;

use super::boot::KEEL_AARCH64_CPU_START;
use super::percpu::PerCpu;
use super::{gic, mmu, psci, timer};

unsafe extern "C" {
    fn keel_aarch64_secondary_entry();
}

static ENTRY: AtomicUsize = AtomicUsize::new(0);
static READY: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Start CPU `index` (MPIDR `mpidr`) on the given stack.
///
/// # Safety
/// See `keel_hal::Smp::start_cpu`.
pub unsafe fn start_cpu(
    index: CpuIndex,
    mpidr: u64,
    stack_bottom: usize,
    stack_top: usize,
    entry: fn(CpuIndex) -> !,
) -> Result<(), SmpError> {
    if index >= keel_hal::boot::MAX_CPUS {
        return Err(SmpError::Firmware(-2));
    }
    let block = PerCpu::new_secondary(index, (stack_bottom, stack_top));
    block.mpidr = mpidr;
    let slot = (&raw mut KEEL_AARCH64_CPU_START).cast::<super::boot::CpuStart>();
    // SAFETY: slot `index` is below MAX_CPUS and belongs to the CPU being
    // started, which reads it only after the CPU_ON below (core starts
    // CPUs one at a time).
    unsafe {
        slot.add(index).write_volatile(super::boot::CpuStart {
            stack_top: stack_top as u64,
            percpu: block as *mut PerCpu as u64,
        });
    }
    ENTRY.store(entry as usize, Ordering::Release);
    READY.store(usize::MAX, Ordering::Release);
    let entry_phys = mmu::image_phys(keel_aarch64_secondary_entry as *const () as usize);
    match psci::cpu_on(mpidr, entry_phys, index as u64) {
        0 => {}
        err => return Err(SmpError::Firmware(err)),
    }
    let deadline = timer::now_ns() + 1_000_000_000;
    while READY.load(Ordering::Acquire) != index {
        if timer::now_ns() > deadline {
            return Err(SmpError::Timeout);
        }
        core::hint::spin_loop();
    }
    Ok(())
}

/// First Rust code on a secondary CPU (on its idle stack, MMU on).
#[unsafe(no_mangle)]
extern "C" fn keel_aarch64_secondary_start(index: usize) -> ! {
    mmu::switch_to_app_root();
    timer::set(None);
    if let Err(why) = gic::init_this_cpu(index) {
        panic!("CPU {index}: {why}");
    }
    let entry = ENTRY.load(Ordering::Acquire);
    READY.store(index, Ordering::Release);
    // SAFETY: `entry` was stored from a `fn(CpuIndex) -> !` by `start_cpu`.
    let entry: fn(CpuIndex) -> ! =
        unsafe { core::mem::transmute::<usize, fn(CpuIndex) -> !>(entry) };
    entry(index)
}
