//! The port itself (compiled only for aarch64 targets): the `Aarch64`
//! type implementing the HAL contract, and what the platform crate needs
//! to wire a machine (early device mappings, the direct map of RAM, GIC
//! and timer set-up, PSCI, semihosting).

mod app;
mod boot;
mod context;
mod cpu;
mod gic;
pub mod layout;
mod mmu;
mod percpu;
pub mod psci;
pub mod semihosting;
mod smp;
mod timer;
mod trap;
mod vectors;

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
pub use gic::{GicConfig, MAX_REDISTRIBUTOR_REGIONS as GIC_MAX_REDISTRIBUTOR_REGIONS};
pub use psci::Conduit;

/// PSTATE.I in DAIF.
const DAIF_IRQ: u64 = 1 << 7;

/// The aarch64 architecture.
pub struct Aarch64;

impl Cpu for Aarch64 {
    #[inline]
    fn current_cpu() -> CpuIndex {
        percpu::cpu_index()
    }
    #[inline]
    fn interrupts_enabled() -> bool {
        let daif: u64;
        // SAFETY: reads PSTATE's mask bits.
        unsafe { asm!("mrs {}, daif", out(reg) daif, options(nomem, nostack, preserves_flags)) };
        daif & DAIF_IRQ == 0
    }
    #[inline]
    fn disable_interrupts() -> bool {
        let daif: u64;
        // SAFETY: reads PSTATE's mask bits, then masks IRQ and FIQ. The
        // memory clobber keeps accesses from moving out of the section.
        unsafe {
            asm!("mrs {}, daif", "msr daifset, #3", out(reg) daif, options(nostack, preserves_flags))
        };
        daif & DAIF_IRQ == 0
    }
    #[inline]
    fn restore_interrupts(were_enabled: bool) {
        if were_enabled {
            // SAFETY: unmasks IRQ and FIQ; memory clobber as above.
            unsafe { asm!("msr daifclr, #3", options(nostack, preserves_flags)) };
        }
    }
    fn enable_interrupts_and_wait() {
        // WFI wakes for a pending interrupt even while it is masked, so
        // waiting first and unmasking after leaves no window to miss one;
        // the ISB makes the unmasked interrupt taken before re-masking.
        // SAFETY: only waits and toggles the interrupt masks.
        unsafe {
            asm!(
                "dsb sy",
                "wfi",
                "msr daifclr, #3",
                "isb",
                "msr daifset, #3",
                options(nostack, preserves_flags)
            )
        };
    }
    #[inline]
    fn spin_hint() {
        core::hint::spin_loop();
    }
    fn halt_forever() -> ! {
        loop {
            // SAFETY: stops this CPU; nothing else to preserve.
            unsafe { asm!("msr daifset, #3", "wfi", options(nomem, nostack)) };
        }
    }
    fn features(out: &mut dyn fmt::Write) -> fmt::Result {
        cpu::write_features(out)
    }
    fn hardware_random() -> Option<u64> {
        cpu::hardware_random()
    }
    fn elf_hwcaps() -> (u64, u64) {
        cpu::elf_hwcaps()
    }
    #[inline]
    fn running_thread_word() -> Option<usize> {
        let word: usize;
        // SAFETY: reads SP_EL0, which holds the running-thread word whenever
        // kernel code runs (0 before the scheduler set one).
        unsafe { asm!("mrs {}, sp_el0", out(reg) word, options(nomem, nostack, preserves_flags)) };
        Some(word)
    }
    #[inline]
    fn set_running_thread_word(word: usize) {
        percpu::this().thread_word = word;
        // SAFETY: SP_EL0 is not the kernel's stack pointer (SPSel = 1); app
        // code gets its own value back from its trap frame.
        unsafe { asm!("msr sp_el0, {}", in(reg) word, options(nomem, nostack, preserves_flags)) };
    }
    fn walk_stack(start: usize, visit: &mut dyn FnMut(usize) -> bool) {
        let mut fp = if start == 0 {
            let x29: usize;
            // SAFETY: reads this function's own frame pointer.
            unsafe { asm!("mov {}, x29", out(reg) x29, options(nomem, nostack, preserves_flags)) };
            x29
        } else {
            start
        };
        // AAPCS64 frame records: [fp] = caller's fp, [fp + 8] = return address.
        for _ in 0..64 {
            if fp == 0 || !fp.is_multiple_of(8) || !mmu::is_mapped(fp) || !mmu::is_mapped(fp + 15) {
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

impl Context for Aarch64 {
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

impl Paging for Aarch64 {
    type Format = mmu::Vmsa4k;
    const PHYS_MAP_BASE: usize = layout::PHYS_MAP_BASE;
    const KERNEL_VMAP: (usize, usize) = layout::KERNEL_VMAP;
    const APP_RANGE: (usize, usize) = layout::APP_RANGE;
    fn table_root(va: VirtAddr) -> PhysAddr {
        mmu::root_for(va)
    }
    fn publish_table_update() {
        mmu::publish();
    }
    fn flush_tlb_page(va: VirtAddr) {
        mmu::flush_page(va);
    }
    fn flush_tlb_all() {
        mmu::flush_all();
    }
}

impl Clock for Aarch64 {
    #[inline]
    fn monotonic_ns() -> u64 {
        timer::now_ns()
    }
    #[inline]
    fn set_timer(deadline_ns: Option<u64>) {
        timer::set(deadline_ns);
    }
    fn since_first_instruction_ns() -> u64 {
        timer::now_ns()
    }
}

impl Interrupts for Aarch64 {
    fn send_ipi(target: CpuIndex, ipi: Ipi) {
        let sgi = match ipi {
            Ipi::Reschedule => gic::SGI_RESCHEDULE,
            Ipi::Call => gic::SGI_CALL,
        };
        gic::send_sgi(target, sgi);
    }
    fn enable_irq(line: IrqLine, target: CpuIndex) -> Result<(), IrqError> {
        gic::route(line.0, target)
    }
    fn disable_irq(line: IrqLine) {
        gic::mask(line.0);
    }
}

impl Smp for Aarch64 {
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

impl App for Aarch64 {
    unsafe fn resume_app(frame: &AppFrame) -> ! {
        // SAFETY: forwarded contract.
        unsafe { app::resume_app(frame) }
    }
    fn set_app_thread_pointer(value: u64) {
        app::set_thread_pointer(value);
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

impl Arch for Aarch64 {
    const NAME: &'static str = "aarch64";
}

keel_hal::export_arch!(Aarch64);

unsafe extern "Rust" {
    /// The platform's main, called once the boot CPU runs in the higher
    /// half with the MMU on; `dtb` is the DTB's physical address (0 if the
    /// loader passed none).
    fn keel_platform_main(dtb: u64) -> !;
}

/// First Rust code on the boot CPU (on the boot stack, vectors installed).
#[unsafe(no_mangle)]
extern "C" fn keel_aarch64_start(dtb: u64) -> ! {
    percpu::init_boot(boot::boot_stack());
    timer::init(None);
    timer::set(None);
    // The lower half belongs to the app: drop the boot identity map.
    mmu::switch_to_app_root();
    // SAFETY: the platform crate linked into this image defines it.
    unsafe { keel_platform_main(dtb) }
}

/// Physical range `[start, end)` the kernel image occupies (with .bss,
/// boot tables and stacks).
pub fn kernel_image_phys() -> (u64, u64) {
    unsafe extern "C" {
        static __kernel_start: u8;
        static __kernel_end: u8;
    }
    let start = mmu::image_phys((&raw const __kernel_start) as usize);
    let end = mmu::image_phys((&raw const __kernel_end) as usize);
    (start, end)
}

/// Whether the kernel was entered at EL2 (and dropped to EL1).
pub fn entered_at_el2() -> bool {
    boot::state().entered_el == 2
}

/// Map device registers before the frame allocator exists (the console);
/// returns the virtual address of `pa`, or `None` if the fixmap is full.
pub fn map_early_device(pa: u64, len: usize) -> Option<usize> {
    mmu::map_early_device(pa, len)
}

/// Whether physical address `pa` is reachable through the direct map.
pub fn direct_map_covers(pa: u64) -> bool {
    mmu::direct_map_covers(pa)
}

/// Extend the direct map over RAM `[start, end)` ranges. Returns the bytes
/// of RAM beyond the direct map's reach (512 GiB), which must stay unused.
pub fn map_ram(ranges: &mut dyn Iterator<Item = (u64, u64)>) -> u64 {
    mmu::map_ram(ranges)
}

/// Finish bring-up of the boot CPU once the heap works: the counter
/// frequency (if firmware left CNTFRQ_EL0 unset), the timer's interrupt,
/// and the GIC.
pub fn init_after_memory(
    gic: &GicConfig<'_>,
    timer_intid: Option<u32>,
    counter_hz: Option<u64>,
) -> Result<(), &'static str> {
    if counter_hz.is_some() {
        timer::init(counter_hz);
    }
    if let Some(id) = timer_intid.filter(|id| (16..32).contains(id)) {
        timer::set_intid(id);
    }
    gic::init(gic)
}

/// Configure a device interrupt's trigger as the firmware describes it
/// (before enabling it).
pub fn set_irq_trigger(line: IrqLine, edge: bool) -> Result<(), IrqError> {
    gic::set_trigger(line.0, edge)
}

/// The boot CPU's MPIDR affinity (for matching the DTB's CPU list).
pub fn boot_mpidr() -> u64 {
    cpu::mpidr()
}

/// A phrase for boot logs: GIC, timer, PSCI, entry level.
pub fn describe(out: &mut dyn fmt::Write) -> fmt::Result {
    gic::describe(out)?;
    let hz = timer::hz();
    write!(
        out,
        ", generic timer {}.{} MHz",
        hz / 1_000_000,
        hz / 100_000 % 10
    )?;
    match psci::version() {
        Some((major, minor)) => write!(out, ", PSCI {major}.{minor}")?,
        None => write!(out, ", PSCI")?,
    }
    let conduit = match psci::conduit() {
        Conduit::Hvc => "hvc",
        Conduit::Smc => "smc",
    };
    write!(
        out,
        " via {conduit}, {}-bit PA, entered at EL{}",
        cpu::physical_address_bits(),
        boot::state().entered_el
    )
}

/// Spin for `us` microseconds (before the scheduler runs).
pub fn spin_us(us: u64) {
    timer::spin_us(us);
}

/// Helpers for the FP/SIMD context-switch test: the kernel itself never
/// touches these registers, so what a thread loads stays until a switch
/// saves it and brings it back.
pub mod simd {
    /// Load v0-v31 from `values` and FPCR from `fpcr`.
    pub fn load(values: &[u128; 32], fpcr: u64) {
        // SAFETY: reads 512 bytes from `values`; writes only FP/SIMD
        // registers, which no kernel code uses (soft-float target).
        unsafe {
            core::arch::asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                "ldp q0, q1, [{p}, #0]",
                "ldp q2, q3, [{p}, #32]",
                "ldp q4, q5, [{p}, #64]",
                "ldp q6, q7, [{p}, #96]",
                "ldp q8, q9, [{p}, #128]",
                "ldp q10, q11, [{p}, #160]",
                "ldp q12, q13, [{p}, #192]",
                "ldp q14, q15, [{p}, #224]",
                "ldp q16, q17, [{p}, #256]",
                "ldp q18, q19, [{p}, #288]",
                "ldp q20, q21, [{p}, #320]",
                "ldp q22, q23, [{p}, #352]",
                "ldp q24, q25, [{p}, #384]",
                "ldp q26, q27, [{p}, #416]",
                "ldp q28, q29, [{p}, #448]",
                "ldp q30, q31, [{p}, #480]",
                "msr fpcr, {f}",
                p = in(reg) values.as_ptr(),
                f = in(reg) fpcr,
                options(nostack, readonly),
            )
        };
    }

    /// Store v0-v31 into `values`; returns FPCR.
    pub fn store(values: &mut [u128; 32]) -> u64 {
        let fpcr: u64;
        // SAFETY: writes 512 bytes to `values`; reads FP/SIMD registers only.
        unsafe {
            core::arch::asm!(
                ".arch_extension fp",
                ".arch_extension simd",
                "stp q0, q1, [{p}, #0]",
                "stp q2, q3, [{p}, #32]",
                "stp q4, q5, [{p}, #64]",
                "stp q6, q7, [{p}, #96]",
                "stp q8, q9, [{p}, #128]",
                "stp q10, q11, [{p}, #160]",
                "stp q12, q13, [{p}, #192]",
                "stp q14, q15, [{p}, #224]",
                "stp q16, q17, [{p}, #256]",
                "stp q18, q19, [{p}, #288]",
                "stp q20, q21, [{p}, #320]",
                "stp q22, q23, [{p}, #352]",
                "stp q24, q25, [{p}, #384]",
                "stp q26, q27, [{p}, #416]",
                "stp q28, q29, [{p}, #448]",
                "stp q30, q31, [{p}, #480]",
                "mrs {f}, fpcr",
                p = in(reg) values.as_mut_ptr(),
                f = out(reg) fpcr,
                options(nostack),
            )
        };
        fpcr
    }
}
