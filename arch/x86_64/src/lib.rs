//! x86_64 support for Keel: boot to long mode, per-CPU data, traps, local
//! and I/O APICs, TSC clock, context switch, page-table format, SMP.
//!
//! The type [`X86_64`] implements the whole `keel_hal::Arch` contract and
//! is registered with `keel_hal::export_arch!`. A platform crate provides
//! `keel_platform_main`, which the boot path calls once this CPU is in long
//! mode with its GDT, TSS and IDT loaded.

#![no_std]

extern crate alloc;

mod apic;
mod app;
mod boot;
mod context;
mod cpu;
mod idt;
pub mod io;
pub mod ioapic;
pub mod layout;
mod paging;
mod percpu;
mod smp;
mod trap;
mod trap_entry;
mod tsc;

use core::alloc::Layout;
use core::arch::asm;
use core::fmt;

use keel_hal::interrupt::IrqError;
use keel_hal::smp::SmpError;
use keel_hal::{
    App, AppFrame, Arch, Clock, Context, Cpu, CpuIndex, Interrupts, Ipi, IrqLine, Paging, PhysAddr,
    Smp, SwitchFrame, VirtAddr,
};

pub use boot::boot_stack;
pub use smp::TRAMPOLINE_PHYS as AP_TRAMPOLINE_PHYS;

/// The x86_64 architecture.
pub struct X86_64;

impl Cpu for X86_64 {
    #[inline]
    fn current_cpu() -> CpuIndex {
        percpu::cpu_index()
    }
    #[inline]
    fn interrupts_enabled() -> bool {
        x86_64::instructions::interrupts::are_enabled()
    }
    #[inline]
    fn disable_interrupts() -> bool {
        let was = x86_64::instructions::interrupts::are_enabled();
        x86_64::instructions::interrupts::disable();
        was
    }
    #[inline]
    fn restore_interrupts(were_enabled: bool) {
        if were_enabled {
            x86_64::instructions::interrupts::enable();
        }
    }
    fn enable_interrupts_and_wait() {
        // `sti` takes effect after the next instruction, so no interrupt can
        // slip in between it and `hlt`.
        // SAFETY: only changes the interrupt flag and waits.
        unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
    }
    #[inline]
    fn spin_hint() {
        core::hint::spin_loop();
    }
    fn halt_forever() -> ! {
        loop {
            // SAFETY: stops this CPU; nothing else to preserve.
            unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
        }
    }
    fn features(out: &mut dyn fmt::Write) -> fmt::Result {
        cpu::write_features(out)
    }
    fn hardware_random() -> Option<u64> {
        cpu::hardware_random()
    }
    #[inline]
    fn running_thread_word() -> Option<usize> {
        Some(percpu::running_thread())
    }
    #[inline]
    fn set_running_thread_word(word: usize) {
        percpu::set_running_thread(word);
    }
    fn elf_hwcaps() -> (u64, u64) {
        // AT_HWCAP is CPUID.1 EDX on x86_64; HWCAP2 bit 1 (FSGSBASE) stays
        // clear because Keel keeps FSGSBASE off.
        (u64::from(raw_cpuid::cpuid!(1).edx), 0)
    }
    fn walk_stack(start: usize, visit: &mut dyn FnMut(usize) -> bool) {
        let mut fp = if start == 0 {
            let rbp: usize;
            // SAFETY: reads this function's own frame pointer.
            unsafe { asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack)) };
            rbp
        } else {
            start
        };
        for _ in 0..64 {
            if fp == 0 || fp % 8 != 0 || !paging::is_mapped(fp) || !paging::is_mapped(fp + 15) {
                return;
            }
            // SAFETY: both words were just checked to be mapped.
            let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
            if ret == 0 || !visit(ret) || next <= fp {
                return;
            }
            fp = next;
        }
    }
}

impl Context for X86_64 {
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

impl Paging for X86_64 {
    type Format = paging::X86Format;
    const PHYS_MAP_BASE: usize = layout::PHYS_MAP_BASE;
    const KERNEL_VMAP: (usize, usize) = layout::KERNEL_VMAP;
    const APP_RANGE: (usize, usize) = layout::APP_RANGE;
    fn table_root(_va: VirtAddr) -> PhysAddr {
        paging::root()
    }
    fn publish_table_update() {}
    fn flush_tlb_page(va: VirtAddr) {
        paging::flush_page(va);
    }
    fn flush_tlb_all() {
        paging::flush_all();
    }
}

impl Clock for X86_64 {
    #[inline]
    fn monotonic_ns() -> u64 {
        tsc::now_ns()
    }
    fn set_timer(deadline_ns: Option<u64>) {
        apic::set_timer(deadline_ns);
    }
    fn since_first_instruction_ns() -> u64 {
        tsc::now_ns()
    }
}

impl Interrupts for X86_64 {
    fn send_ipi(target: CpuIndex, ipi: Ipi) {
        let vector = match ipi {
            Ipi::Reschedule => trap::VECTOR_IPI_RESCHEDULE,
            Ipi::Call => trap::VECTOR_IPI_CALL,
        };
        apic::send_ipi(apic_id_of(target), vector);
    }
    fn enable_irq(line: IrqLine, target: CpuIndex) -> Result<(), IrqError> {
        ioapic::route(line.0, apic_id_of(target))
    }
    fn disable_irq(line: IrqLine) {
        ioapic::mask(line.0);
    }
}

impl Smp for X86_64 {
    unsafe fn start_cpu(
        index: CpuIndex,
        hw_id: u64,
        stack_bottom: usize,
        stack_top: usize,
        entry: fn(CpuIndex) -> !,
    ) -> Result<(), SmpError> {
        let r = {
            // SAFETY: forwarded contract.
            unsafe { smp::start_cpu(index, hw_id, stack_bottom, stack_top, entry) }
        };
        if r.is_ok() {
            record_apic_id(index, hw_id as u32);
        }
        r
    }
}

impl App for X86_64 {
    unsafe fn resume_app(frame: &AppFrame) -> ! {
        // SAFETY: forwarded contract.
        unsafe { app::resume_app(frame) }
    }
    fn set_app_thread_pointer(value: u64) {
        app::set_fs_base(value);
    }
    fn app_thread_pointer() -> u64 {
        app::fs_base()
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

impl Arch for X86_64 {
    const NAME: &'static str = "x86_64";
}

keel_hal::export_arch!(X86_64);

/// APIC id of each started CPU, by index.
static APIC_IDS: [core::sync::atomic::AtomicU32; keel_hal::boot::MAX_CPUS] =
    [const { core::sync::atomic::AtomicU32::new(0) }; keel_hal::boot::MAX_CPUS];

fn record_apic_id(index: CpuIndex, apic_id: u32) {
    APIC_IDS[index].store(apic_id, core::sync::atomic::Ordering::Release);
}

fn apic_id_of(index: CpuIndex) -> u32 {
    APIC_IDS[index].load(core::sync::atomic::Ordering::Acquire)
}

unsafe extern "Rust" {
    /// The platform's main, called once the boot CPU is in long mode.
    fn keel_platform_main(boot_arg: u32) -> !;
}

/// Called by the boot trampoline on the boot stack.
#[unsafe(no_mangle)]
extern "C" fn keel_x86_64_start(boot_arg: u32) -> ! {
    cpu::init_this_cpu();
    app::init_this_cpu();
    percpu::PerCpu::boot().install(boot::boot_stack());
    idt::init();
    idt::load();
    // Drop the boot identity map: the lower half belongs to the app. Early
    // platform code reaches physical memory through the direct map.
    // SAFETY: nothing runs from or points into the lower half any more.
    unsafe {
        let root = (layout::PHYS_MAP_BASE + boot::root_table_phys() as usize) as *mut u64;
        root.write_volatile(0);
    }
    paging::flush_all();
    // SAFETY: the platform crate linked into this image defines it.
    unsafe { keel_platform_main(boot_arg) }
}

/// Finish bring-up of the boot CPU once the heap works: calibrate the
/// clock (`tsc_khz` from the command line is used if the hardware does not
/// report the rate), enable the local APIC, take over the I/O APICs.
pub fn init_after_memory(
    ioapics: &[ioapic::IoApicDesc],
    overrides: &[ioapic::IsaOverride],
    tsc_khz: Option<u64>,
) {
    tsc::calibrate(tsc_khz);
    apic::init_this_cpu();
    let id = apic::id();
    percpu::this().apic_id = id;
    record_apic_id(0, id);
    ioapic::init(ioapics, overrides);
}

/// Make all RAM below `end` reachable through the direct map (the boot
/// tables cover 4 GiB). `take_page` hands out zeroable frames below 4 GiB,
/// used only if the CPU lacks 1 GiB pages.
pub fn extend_direct_map(
    end: u64,
    take_page: &mut dyn FnMut() -> Option<u64>,
) -> Result<(), &'static str> {
    paging::extend_direct_map(end, take_page)
}

/// A line for boot logs: clock source and rate, APIC mode, hypervisor.
pub fn describe(out: &mut dyn fmt::Write) -> fmt::Result {
    write!(
        out,
        "TSC {} MHz from {}, {}, {}",
        tsc::hz() / 1_000_000,
        tsc::source(),
        apic::describe(),
        cpu::hypervisor_name().unwrap_or("no hypervisor"),
    )
}

/// The boot CPU's APIC id (for matching the MADT's CPU list).
pub fn boot_apic_id() -> u32 {
    apic::id()
}
