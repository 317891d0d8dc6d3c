//! The machine: everything that runs only on ppc64.

// The memory functions the target leaves out (linked for their symbols).
extern crate keel_ppc64_builtins as _;

mod app;
mod boot;
mod context;
mod cpu;
mod paging;
mod percpu;
mod smp;
mod time;
mod trap;
mod trap_entry;
mod xics;

use core::alloc::Layout;
use core::arch::asm;
use core::fmt;
use core::sync::atomic::{AtomicPtr, Ordering};

use keel_driver_papr::hcall::{self as h, H_CEDE, H_SET_MODE, H_SUCCESS};
use keel_driver_papr::rtas::Service;
use keel_driver_papr::{hcall, rtas_call};
use keel_hal::interrupt::IrqError;
use keel_hal::smp::SmpError;
use keel_hal::{
    App, AppFrame, Arch, Clock, Context, Cpu, CpuIndex, Interrupts, Ipi, IrqLine, Paging, PhysAddr,
    Smp, SwitchFrame, VirtAddr,
};

use crate::layout;
use crate::radix::RadixFormat;
use boot::{MSR_EE, MSR_RI};

pub use boot::{boot_stack, call_firmware_be32, go_virtual, kernel_phys};
pub use paging::DIRECT_MAP_LIMIT;
pub use trap::{SYSCALL_PROBE, SYSCALLS};

/// The ppc64 architecture.
pub struct Ppc64;

fn msr() -> u64 {
    let v: u64;
    // SAFETY: reading the MSR has no side effects.
    unsafe { asm!("mfmsr {0}", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Mask external and decrementer interrupts (MSR[EE]), keeping RI.
#[inline]
fn mask() {
    // SAFETY: `mtmsrd L=1` changes only EE and RI. Not `nomem`: it is a
    // compiler barrier for the critical section it opens.
    unsafe { asm!("mtmsrd {0}, 1", in(reg) MSR_RI, options(nostack)) };
}

#[inline]
fn unmask() {
    // SAFETY: as in `mask`.
    unsafe { asm!("mtmsrd {0}, 1", in(reg) MSR_EE | MSR_RI, options(nostack)) };
}

impl Cpu for Ppc64 {
    #[inline]
    fn current_cpu() -> CpuIndex {
        percpu::cpu_index()
    }
    #[inline]
    fn interrupts_enabled() -> bool {
        msr() & MSR_EE != 0
    }
    #[inline]
    fn disable_interrupts() -> bool {
        let was = msr() & MSR_EE != 0;
        mask();
        was
    }
    #[inline]
    fn restore_interrupts(were_enabled: bool) {
        if were_enabled {
            unmask();
        }
    }
    fn enable_interrupts_and_wait() {
        // H_CEDE sets MSR[EE] and returns once an interrupt is pending
        // (at once if one already is); it is taken right after the call.
        let _ = hcall(H_CEDE, [0; 7]);
        mask();
    }
    #[inline]
    fn spin_hint() {
        // SAFETY: a thread-priority hint; no architectural effect.
        unsafe { asm!("or 27, 27, 27", options(nomem, nostack, preserves_flags)) };
    }
    fn halt_forever() -> ! {
        mask();
        let mut rets = [0u32; 1];
        let _ = rtas_call(Service::StopSelf, &[], &mut rets);
        loop {
            core::hint::spin_loop();
        }
    }
    fn features(out: &mut dyn fmt::Write) -> fmt::Result {
        cpu::write_features(out)
    }
    fn hardware_random() -> Option<u64> {
        cpu::darn()
    }
    fn elf_hwcaps() -> (u64, u64) {
        cpu::hwcaps()
    }
    #[inline]
    fn running_thread_word() -> Option<usize> {
        // SPRG2 holds it (zeroed at each CPU's entry): one `mfspr`, so a
        // preemption cannot separate the read from the CPU it names.
        let v: usize;
        // SAFETY: reads SPRG2, which only this pair of functions uses.
        unsafe { asm!("mfspr {0}, 274", out(reg) v, options(nomem, nostack, preserves_flags)) };
        Some(v)
    }
    #[inline]
    fn set_running_thread_word(word: usize) {
        // SAFETY: writes SPRG2 (see above); not `nomem`: the scheduler's
        // stores before it must not move past the switch it announces.
        unsafe { asm!("mtspr 274, {0}", in(reg) word, options(nostack, preserves_flags)) };
    }
    fn walk_stack(start: usize, visit: &mut dyn FnMut(usize) -> bool) {
        let mut sp = if start == 0 {
            let r1: usize;
            // SAFETY: reads this function's own stack pointer.
            unsafe { asm!("mr {0}, 1", out(reg) r1, options(nomem, nostack)) };
            r1
        } else {
            start
        };
        // Every frame starts with the back chain; a function's return
        // address is in its caller's frame, 16 bytes up. A leaf function
        // may have a frame but never saves its return address there (it
        // stays in LR, which fault reports print): skip the empty slot.
        for _ in 0..64 {
            if sp == 0 || sp % 16 != 0 || !paging::is_mapped(sp) {
                return;
            }
            // SAFETY: checked to be mapped just above.
            let next = unsafe { *(sp as *const usize) };
            if next == 0 || next % 16 != 0 || next <= sp || !paging::is_mapped(next + 16) {
                return;
            }
            // SAFETY: checked to be mapped just above.
            let ret = unsafe { *((next + 16) as *const usize) };
            if ret != 0 && !visit(ret) {
                return;
            }
            sp = next;
        }
    }
}

impl Context for Ppc64 {
    fn fp_state_layout() -> Layout {
        context::fp_layout()
    }
    unsafe fn init_fp_state(area: *mut u8) {
        // SAFETY: forwarded contract.
        unsafe { context::init_fp(area) }
    }
    unsafe fn prepare_stack(
        bottom: usize,
        top: usize,
        entry: extern "C" fn(usize) -> !,
        arg: usize,
    ) -> usize {
        // SAFETY: forwarded contract.
        unsafe { context::prepare_stack(bottom, top, entry, arg) }
    }
    #[inline]
    fn set_kernel_stack(bottom: usize, top: usize) {
        let me = percpu::this();
        me.kstack_bottom = bottom;
        me.kstack_top = top;
    }
    #[inline]
    unsafe fn switch(from: *mut SwitchFrame, to: *const SwitchFrame) {
        // SAFETY: forwarded contract.
        unsafe { context::switch(from, to) }
    }
}

impl Paging for Ppc64 {
    type Format = RadixFormat;
    const PHYS_MAP_BASE: usize = layout::PHYS_MAP_BASE;
    const KERNEL_VMAP: (usize, usize) = layout::KERNEL_VMAP;
    const APP_RANGE: (usize, usize) = layout::APP_RANGE;
    fn table_root(va: VirtAddr) -> PhysAddr {
        paging::root_for(va)
    }
    fn publish_table_update() {
        paging::publish();
    }
    fn flush_tlb_page(va: VirtAddr) {
        paging::flush_page(va);
    }
    fn flush_tlb_all() {
        paging::flush_all();
    }
}

impl Clock for Ppc64 {
    #[inline]
    fn monotonic_ns() -> u64 {
        time::now_ns()
    }
    fn set_timer(deadline_ns: Option<u64>) {
        time::set_timer(deadline_ns);
    }
    fn since_first_instruction_ns() -> u64 {
        time::now_ns()
    }
}

/// Each CPU's block, by index (for IPIs).
static BLOCKS: [AtomicPtr<percpu::PerCpu>; keel_hal::boot::MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; keel_hal::boot::MAX_CPUS];

impl Interrupts for Ppc64 {
    fn send_ipi(target: CpuIndex, ipi: Ipi) {
        let block = BLOCKS[target].load(Ordering::Acquire);
        if block.is_null() {
            return;
        }
        // SAFETY: blocks are never freed once published.
        let pending = unsafe { &(*block).ipi_pending };
        xics::send_ipi(smp::server_of(target), ipi, pending);
    }
    fn enable_irq(line: IrqLine, target: CpuIndex) -> Result<(), IrqError> {
        xics::route(line.0, smp::server_of(target))
    }
    fn disable_irq(line: IrqLine) {
        xics::mask(line.0);
    }
}

impl Smp for Ppc64 {
    unsafe fn start_cpu(
        index: CpuIndex,
        hw_id: u64,
        stack_bottom: usize,
        stack_top: usize,
        entry: fn(CpuIndex) -> !,
    ) -> Result<(), SmpError> {
        // SAFETY: forwarded contract.
        unsafe { smp::start_cpu(index, hw_id, stack_bottom, stack_top, entry) }
    }
}

impl App for Ppc64 {
    unsafe fn resume_app(frame: &AppFrame) -> ! {
        // SAFETY: forwarded contract.
        unsafe { app::resume_app(frame) }
    }
    fn set_app_thread_pointer(_value: u64) {
        // r13, part of the app's frame: nothing to do.
    }
    fn app_thread_pointer() -> u64 {
        app::thread_pointer()
    }
    unsafe fn copy_from_app(dst: *mut u8, src: usize, len: usize) -> bool {
        // SAFETY: the caller guarantees `dst`; app-side faults are fixed up.
        unsafe { app::app_copy(dst, src as *const u8, len) }
    }
    unsafe fn copy_to_app(dst: usize, src: *const u8, len: usize) -> bool {
        // SAFETY: the caller guarantees `src`; app-side faults are fixed up.
        unsafe { app::app_copy(dst as *mut u8, src, len) }
    }
    unsafe fn app_cmpxchg_u32(addr: usize, expected: u32, new: u32) -> Option<u32> {
        // SAFETY: forwarded contract.
        unsafe { app::app_cmpxchg(addr, expected, new) }
    }
    fn fp_signal_layout() -> Layout {
        app::fp_signal_layout()
    }
    fn save_fp_to_app(dst: usize) -> bool {
        app::save_fp_to_app(dst)
    }
    fn restore_fp_from_app(src: usize) -> bool {
        app::restore_fp_from_app(src)
    }
}

impl Arch for Ppc64 {
    const NAME: &'static str = "ppc64";
}

keel_hal::export_arch!(Ppc64);

/// Publish the calling CPU's block for IPIs (each CPU, once).
fn publish_block(index: CpuIndex) {
    BLOCKS[index].store(percpu::this() as *mut _, Ordering::Release);
}

/// Why translation could not be turned on.
#[derive(Clone, Copy, Debug)]
pub enum MmuError {
    /// `H_SET_MODE` refused little-endian interrupts.
    LittleEndianInterrupts(i64),
    /// `H_REGISTER_PROC_TBL` refused the radix process table.
    ProcessTable(i64),
}

impl fmt::Display for MmuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MmuError::LittleEndianInterrupts(s) => write!(
                f,
                "the hypervisor refused little-endian interrupts (H_SET_MODE: {})",
                h::status_name(s)
            ),
            MmuError::ProcessTable(s) => write!(
                f,
                "the hypervisor refused the radix process table (H_REGISTER_PROC_TBL: {}); \
                 Keel needs a POWER9 or later CPU with radix translation",
                h::status_name(s)
            ),
        }
    }
}

/// Leave firmware behind and turn translation on: little-endian
/// interrupts, the exception vectors copied to low memory, the radix
/// tables (direct map of `[0, ram_end)`) registered, interrupts with
/// translation on delivered at 0xc000_0000_0000_4000. Then continue at
/// `next` on the boot stack (virtually addressed). Call in real mode,
/// after the last Open Firmware call.
pub fn enable_translation(ram_end: u64, next: extern "C" fn() -> !) -> Result<(), MmuError> {
    let (status, _) = hcall(
        H_SET_MODE,
        [
            h::SET_MODE_ENDIAN_LITTLE,
            h::SET_MODE_RESOURCE_LE,
            0,
            0,
            0,
            0,
            0,
        ],
    );
    if status != H_SUCCESS {
        return Err(MmuError::LittleEndianInterrupts(status));
    }
    // SAFETY: the linker script defines both symbols; the vectors are
    // copied over firmware memory at physical 0, which is no longer used
    // (Open Firmware is done) and which the frame allocator never gets.
    unsafe {
        let src = &raw const boot::__vectors_load;
        let len = (&raw const boot::__vectors_end) as usize - src as usize;
        let dst = layout::KERNEL_BASE as *mut u8;
        core::ptr::copy_nonoverlapping(src, dst, len);
        boot::sync_icache(layout::KERNEL_BASE, len);
    }
    paging::setup(ram_end).map_err(MmuError::ProcessTable)?;
    // Interrupts from translated code go to 0xc000_0000_0000_4000 + vector.
    // Without it they would arrive in real mode, which the vectors do not
    // handle; refuse to go on rather than crash at the first interrupt.
    let (status, _) = hcall(
        H_SET_MODE,
        [
            h::SET_MODE_AIL_C000_0000_0000_4000,
            h::SET_MODE_RESOURCE_ADDR_TRANS_MODE,
            0,
            0,
            0,
            0,
            0,
        ],
    );
    if status != H_SUCCESS {
        return Err(MmuError::LittleEndianInterrupts(status));
    }
    go_virtual(next)
}

/// Finish bring-up of the boot CPU once translation is on: the clock's
/// rate (the device tree's `timebase-frequency`), its decrementer and
/// interrupt controller, and its XICS server number.
pub fn init_boot_cpu(timebase_hz: u64, server: u32) {
    time::set_frequency(timebase_hz);
    let me = percpu::this();
    me.server = server;
    smp::record_server(0, server);
    publish_block(0);
    time::init_this_cpu();
    xics::init_this_cpu();
}

/// Called on each secondary CPU before it enters core.
pub(crate) fn secondary_ready(index: CpuIndex) {
    publish_block(index);
}

/// A line for boot logs: CPU, clock, interrupt controller, MMU.
pub fn describe(out: &mut dyn fmt::Write) -> fmt::Result {
    write!(
        out,
        "{}, timebase {} MHz, XICS, radix MMU",
        cpu::family(),
        time::frequency() / 1_000_000
    )
}

/// The kernel stack traps on this CPU land on, `[bottom, top)` (what
/// core last passed to `set_kernel_stack`).
pub fn kernel_stack() -> (usize, usize) {
    let me = percpu::this();
    (me.kstack_bottom, me.kstack_top)
}

/// Make a system call with `sc` from a stack of the caller's choosing (as
/// an app would), leaving `canary` in the 288-byte red zone below it:
/// returns (r3, r4, CR0[SO], whether the red zone survived). For tests of
/// the system-call path.
///
/// # Safety
/// `stack_top` must be the 16-aligned top of at least 1 KiB of writable
/// memory the caller owns.
pub unsafe fn syscall_from_stack(
    stack_top: usize,
    number: u64,
    a: u64,
    b: u64,
) -> (u64, u64, bool, bool) {
    const CANARY: u64 = 0x5245_445a_4f4e_4521;
    let zone = stack_top - layout::RED_ZONE;
    for off in (0..layout::RED_ZONE).step_by(8) {
        // SAFETY: the caller owns the memory below `stack_top`.
        unsafe { ((zone + off) as *mut u64).write_volatile(CANARY) };
    }
    let (mut r3, mut r4, cr): (u64, u64, u64);
    r3 = a;
    r4 = b;
    // SAFETY: switches r1 to the caller's stack for the `sc` only and
    // back; the handler preserves every register but r3, r4, CR0 and the
    // r11/r12 the vector works in (all volatile across `sc`).
    unsafe {
        asm!(
            "mr {saved}, 1",
            "mr 1, {stack}",
            "sc",
            "mr 1, {saved}",
            "mfcr {cr}",
            saved = out(reg) _,
            stack = in(reg) stack_top,
            cr = out(reg) cr,
            inout("r3") r3,
            inout("r4") r4,
            in("r0") number,
            out("r11") _,
            out("r12") _,
            out("cr0") _,
        )
    };
    let intact = (0..layout::RED_ZONE).step_by(8).all(|off| {
        // SAFETY: as above.
        unsafe { ((zone + off) as *const u64).read_volatile() == CANARY }
    });
    (r3, r4, cr & (1 << 28) != 0, intact)
}
