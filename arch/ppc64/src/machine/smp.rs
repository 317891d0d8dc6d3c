//! Starting the other CPUs through RTAS `start-cpu`.
//!
//! A started CPU begins at a real address with translation off, in
//! 64-bit big-endian mode (QEMU gives it MSR = SF|ME; the partition's
//! interrupt endianness, AIL and radix mode are copied from the caller),
//! with r3 = a value we choose: the physical address of a parameter
//! block. The entry fixes endianness, turns FP/VMX/VSX on, installs its
//! per-CPU block and PID, and turns translation on at a virtual address
//! where it picks up its stack.

use core::arch::global_asm;
use core::mem::offset_of;
use core::sync::atomic::{AtomicUsize, Ordering};

use keel_driver_papr::rtas::{RtasError, Service};
use keel_driver_papr::rtas_call;
use keel_hal::CpuIndex;
use keel_hal::smp::SmpError;

use crate::layout::APP_PID;
use crate::machine::boot::{
    MSR_DR, MSR_FP, MSR_IR, MSR_RI, MSR_VEC, MSR_VSX, fixup_endian, kernel_phys,
};
use crate::machine::percpu::{self, PerCpu};
use crate::machine::{paging, time, xics};

#[repr(C)]
struct StartBlock {
    toc: u64,
    percpu: u64,
    stack_top: u64,
    entry: u64,
    index: u64,
}

static mut START: StartBlock = StartBlock {
    toc: 0,
    percpu: 0,
    stack_top: 0,
    entry: 0,
    index: 0,
};

global_asm!(
    ".text",
    ".globl keel_ppc64_secondary_entry",
    "keel_ppc64_secondary_entry:",
    fixup_endian!(),
    "mfmsr 11",
    "ori 11, 11, {fp}",
    "oris 11, 11, {vec_vsx}",
    "mtmsrd 11",
    "isync",
    "ld 2, {toc}(3)",
    "ld 10, {percpu}(3)",
    "mtspr 272, 10",
    "li 10, 0",
    "mtspr 274, 10",
    "li 10, {pid}",
    "mtspr 48, 10",
    "isync",
    "ld 1, {stack}(3)",
    "ld 10, {entry}(3)",
    "mtsrr0 10",
    "mfmsr 10",
    "ori 10, 10, {ir_dr}",
    "mtsrr1 10",
    "ld 3, {index}(3)",
    "rfid",
    // Translation on: a terminal frame on the new stack, then Rust.
    ".globl keel_ppc64_secondary_virtual",
    "keel_ppc64_secondary_virtual:",
    "clrrdi 1, 1, 4",
    "li 0, 0",
    "stdu 0, -32(1)",
    "bl keel_ppc64_secondary_start",
    "nop",
    "trap",
    fp = const MSR_FP,
    vec_vsx = const (MSR_VEC | MSR_VSX) >> 16,
    pid = const APP_PID,
    ir_dr = const MSR_IR | MSR_DR | MSR_RI,
    toc = const offset_of!(StartBlock, toc),
    percpu = const offset_of!(StartBlock, percpu),
    stack = const offset_of!(StartBlock, stack_top),
    entry = const offset_of!(StartBlock, entry),
    index = const offset_of!(StartBlock, index),
);

unsafe extern "C" {
    fn keel_ppc64_secondary_entry();
    fn keel_ppc64_secondary_virtual();
}

static ENTRY: AtomicUsize = AtomicUsize::new(0);
static STACK_BOTTOM: AtomicUsize = AtomicUsize::new(0);
static READY: AtomicUsize = AtomicUsize::new(usize::MAX);

/// XICS server number of each started CPU, by index.
static SERVERS: [core::sync::atomic::AtomicU32; keel_hal::boot::MAX_CPUS] =
    [const { core::sync::atomic::AtomicU32::new(0) }; keel_hal::boot::MAX_CPUS];

/// Remember CPU `index`'s XICS server number.
pub fn record_server(index: CpuIndex, server: u32) {
    SERVERS[index].store(server, Ordering::Release);
}

/// XICS server number of CPU `index`.
pub fn server_of(index: CpuIndex) -> u32 {
    SERVERS[index].load(Ordering::Acquire)
}

/// Start CPU `index` (XICS server `server`) on the given stack.
///
/// # Safety
/// See `keel_hal::Smp::start_cpu`.
pub unsafe fn start_cpu(
    index: CpuIndex,
    server: u64,
    stack_bottom: usize,
    stack_top: usize,
    entry: fn(CpuIndex) -> !,
) -> Result<(), SmpError> {
    let block: &'static mut PerCpu = PerCpu::new_secondary(index, server as u32);
    let toc: u64;
    // SAFETY: reads the TOC pointer only.
    unsafe { core::arch::asm!("mr {0}, 2", out(reg) toc, options(nomem, nostack)) };
    // SAFETY: only one CPU starts at a time (core starts them in turn),
    // and the started CPU reads the block before it reports ready.
    unsafe {
        (&raw mut START).write_volatile(StartBlock {
            toc,
            percpu: block.address() as u64,
            stack_top: stack_top as u64,
            entry: keel_ppc64_secondary_virtual as *const () as u64,
            index: index as u64,
        });
    }
    ENTRY.store(entry as usize, Ordering::Release);
    STACK_BOTTOM.store(stack_bottom, Ordering::Release);
    READY.store(usize::MAX, Ordering::Release);
    record_server(index, server as u32);
    let start = kernel_phys(keel_ppc64_secondary_entry as *const () as usize);
    let params = kernel_phys((&raw const START) as usize);
    let mut rets = [0u32; 1];
    rtas_call(
        Service::StartCpu,
        &[server as u32, start as u32, params as u32],
        &mut rets,
    )
    .map_err(|e| match e {
        RtasError::Status(s) => SmpError::Firmware(i64::from(s)),
        RtasError::Hcall(s) => SmpError::Firmware(s),
        _ => SmpError::Firmware(-1),
    })?;
    let deadline = time::now_ns() + 1_000_000_000;
    while READY.load(Ordering::Acquire) != index {
        if time::now_ns() > deadline {
            return Err(SmpError::Timeout);
        }
        core::hint::spin_loop();
    }
    Ok(())
}

/// First Rust code on a secondary CPU (translation on, on its stack).
#[unsafe(no_mangle)]
extern "C" fn keel_ppc64_secondary_start(index: usize) -> ! {
    paging::flush_all();
    let me = percpu::this();
    me.kstack_bottom = STACK_BOTTOM.load(Ordering::Acquire);
    // SAFETY: the block is read after the boot CPU wrote it (Acquire above).
    me.kstack_top = unsafe { (&raw const START).read_volatile().stack_top } as usize;
    time::init_this_cpu();
    xics::init_this_cpu();
    crate::machine::secondary_ready(index);
    let entry = ENTRY.load(Ordering::Acquire);
    READY.store(index, Ordering::Release);
    // SAFETY: `entry` was stored from a `fn(CpuIndex) -> !` by `start_cpu`.
    let entry: fn(CpuIndex) -> ! =
        unsafe { core::mem::transmute::<usize, fn(CpuIndex) -> !>(entry) };
    entry(index)
}
