//! Safe entry points into the linked arch, platform and kernel.
//!
//! Core calls these functions; each forwards to a symbol that
//! [`crate::export_arch!`], [`crate::export_platform!`] or
//! [`crate::export_kernel!`] defined from a trait implementation. The
//! symbol list here and the macro bodies in `export.rs` must match; a
//! mismatch is a compile or link error, never a silent gap.

use core::alloc::Layout;
use core::fmt;

use crate::addr::{PhysAddr, VirtAddr};
use crate::app::AppFrame;
use crate::context::SwitchFrame;
use crate::cpu::CpuIndex;
use crate::interrupt::{Ipi, IrqError, IrqLine};
use crate::paging::{Entry, PageTableFormat};
use crate::platform::ExitStatus;
use crate::smp::SmpError;
use crate::trap::{Fault, FaultResolution};

// SAFETY: every symbol below is defined by the export macros with exactly
// this signature, from a trait method of the same signature; the `safe`
// ones wrap safe trait methods.
unsafe extern "Rust" {
    safe fn __keel_arch_name() -> &'static str;
    safe fn __keel_current_cpu() -> CpuIndex;
    safe fn __keel_interrupts_enabled() -> bool;
    safe fn __keel_disable_interrupts() -> bool;
    safe fn __keel_restore_interrupts(were_enabled: bool);
    safe fn __keel_enable_interrupts_and_wait();
    safe fn __keel_spin_hint();
    safe fn __keel_halt_forever() -> !;
    safe fn __keel_cpu_features(out: &mut dyn fmt::Write) -> fmt::Result;
    safe fn __keel_hardware_random() -> Option<u64>;
    safe fn __keel_elf_hwcaps() -> (u64, u64);
    safe fn __keel_running_thread_word() -> Option<usize>;
    safe fn __keel_set_running_thread_word(word: usize);
    safe fn __keel_walk_stack(start: usize, visit: &mut dyn FnMut(usize) -> bool);

    safe fn __keel_fp_state_layout() -> Layout;
    fn __keel_init_fp_state(area: *mut u8);
    fn __keel_prepare_stack(
        bottom: usize,
        top: usize,
        entry: extern "C" fn(usize) -> !,
        arg: usize,
    ) -> usize;
    safe fn __keel_set_kernel_stack(bottom: usize, top: usize);
    fn __keel_switch_context(from: *mut SwitchFrame, to: *const SwitchFrame);

    safe fn __keel_pt_levels() -> usize;
    safe fn __keel_pt_page_shift() -> u32;
    safe fn __keel_pt_index_bits(level: usize) -> u32;
    safe fn __keel_pt_leaf_allowed(level: usize) -> bool;
    safe fn __keel_pt_encode(entry: Entry, level: usize) -> u64;
    safe fn __keel_pt_decode(raw: u64, level: usize) -> Entry;
    safe fn __keel_phys_map_base() -> usize;
    safe fn __keel_kernel_vmap() -> (usize, usize);
    safe fn __keel_app_range() -> (usize, usize);
    safe fn __keel_table_root(va: VirtAddr) -> PhysAddr;
    safe fn __keel_publish_table_update();
    safe fn __keel_flush_tlb_page(va: VirtAddr);
    safe fn __keel_flush_tlb_all();

    safe fn __keel_monotonic_ns() -> u64;
    safe fn __keel_set_timer(deadline_ns: Option<u64>);
    safe fn __keel_since_first_instruction_ns() -> u64;

    safe fn __keel_send_ipi(target: CpuIndex, ipi: Ipi);
    safe fn __keel_enable_irq(line: IrqLine, target: CpuIndex) -> Result<(), IrqError>;
    safe fn __keel_disable_irq(line: IrqLine);

    fn __keel_start_cpu(
        index: CpuIndex,
        hw_id: u64,
        stack_bottom: usize,
        stack_top: usize,
        entry: fn(CpuIndex) -> !,
    ) -> Result<(), SmpError>;

    safe fn __keel_platform_name() -> &'static str;
    safe fn __keel_console_write(bytes: &[u8]);
    safe fn __keel_console_read() -> Option<u8>;
    safe fn __keel_wall_clock_ns() -> u64;
    safe fn __keel_power_off(status: ExitStatus) -> !;

    safe fn __keel_kernel_timer();
    safe fn __keel_kernel_ipi(ipi: Ipi);
    safe fn __keel_kernel_irq(line: IrqLine);
    safe fn __keel_kernel_fault(fault: &mut Fault<'_>) -> FaultResolution;
    safe fn __keel_kernel_trap_exit();
    safe fn __keel_kernel_syscall(frame: &mut AppFrame);

    fn __keel_resume_app(frame: &AppFrame) -> !;
    safe fn __keel_set_app_thread_pointer(value: u64);
    safe fn __keel_app_thread_pointer() -> u64;
    fn __keel_copy_from_app(dst: *mut u8, src: usize, len: usize) -> bool;
    fn __keel_copy_to_app(dst: usize, src: *const u8, len: usize) -> bool;
    fn __keel_app_cmpxchg_u32(addr: usize, expected: u32, new: u32) -> Option<u32>;
    safe fn __keel_fp_signal_layout() -> Layout;
    safe fn __keel_save_fp_to_app(dst: usize) -> bool;
    safe fn __keel_restore_fp_from_app(src: usize) -> bool;
}

/// The linked arch's name.
pub fn arch_name() -> &'static str {
    __keel_arch_name()
}
/// See [`crate::Cpu::current_cpu`].
#[inline]
pub fn current_cpu() -> CpuIndex {
    __keel_current_cpu()
}
/// See [`crate::Cpu::interrupts_enabled`].
#[inline]
pub fn interrupts_enabled() -> bool {
    __keel_interrupts_enabled()
}
/// See [`crate::Cpu::disable_interrupts`].
#[inline]
pub fn disable_interrupts() -> bool {
    __keel_disable_interrupts()
}
/// See [`crate::Cpu::restore_interrupts`].
#[inline]
pub fn restore_interrupts(were_enabled: bool) {
    __keel_restore_interrupts(were_enabled)
}
/// See [`crate::Cpu::enable_interrupts_and_wait`].
#[inline]
pub fn enable_interrupts_and_wait() {
    __keel_enable_interrupts_and_wait()
}
/// See [`crate::Cpu::spin_hint`].
#[inline]
pub fn spin_hint() {
    __keel_spin_hint()
}
/// See [`crate::Cpu::halt_forever`].
pub fn halt_forever() -> ! {
    __keel_halt_forever()
}
/// See [`crate::Cpu::features`].
pub fn cpu_features(out: &mut dyn fmt::Write) -> fmt::Result {
    __keel_cpu_features(out)
}
/// See [`crate::Cpu::walk_stack`].
pub fn walk_stack(start: usize, visit: &mut dyn FnMut(usize) -> bool) {
    __keel_walk_stack(start, visit)
}

/// See [`crate::Context::fp_state_layout`].
pub fn fp_state_layout() -> Layout {
    __keel_fp_state_layout()
}
/// See [`crate::Context::init_fp_state`].
///
/// # Safety
/// As for the trait method.
pub unsafe fn init_fp_state(area: *mut u8) {
    // SAFETY: forwarded contract.
    unsafe { __keel_init_fp_state(area) }
}
/// See [`crate::Context::prepare_stack`].
///
/// # Safety
/// As for the trait method.
pub unsafe fn prepare_stack(
    bottom: usize,
    top: usize,
    entry: extern "C" fn(usize) -> !,
    arg: usize,
) -> usize {
    // SAFETY: forwarded contract.
    unsafe { __keel_prepare_stack(bottom, top, entry, arg) }
}
/// See [`crate::Context::set_kernel_stack`].
#[inline]
pub fn set_kernel_stack(bottom: usize, top: usize) {
    __keel_set_kernel_stack(bottom, top)
}
/// See [`crate::Context::switch`].
///
/// # Safety
/// As for the trait method.
#[inline]
pub unsafe fn switch_context(from: *mut SwitchFrame, to: *const SwitchFrame) {
    // SAFETY: forwarded contract.
    unsafe { __keel_switch_context(from, to) }
}

/// The linked arch's page-table format, usable with core's generic walker.
pub struct ActiveFormat;

impl PageTableFormat for ActiveFormat {
    fn levels() -> usize {
        __keel_pt_levels()
    }
    fn page_shift() -> u32 {
        __keel_pt_page_shift()
    }
    fn index_bits(level: usize) -> u32 {
        __keel_pt_index_bits(level)
    }
    fn leaf_allowed(level: usize) -> bool {
        __keel_pt_leaf_allowed(level)
    }
    fn encode(entry: Entry, level: usize) -> u64 {
        __keel_pt_encode(entry, level)
    }
    fn decode(raw: u64, level: usize) -> Entry {
        __keel_pt_decode(raw, level)
    }
}

/// See [`crate::Paging::PHYS_MAP_BASE`].
#[inline]
pub fn phys_map_base() -> usize {
    __keel_phys_map_base()
}
/// See [`crate::Paging::KERNEL_VMAP`].
pub fn kernel_vmap() -> (usize, usize) {
    __keel_kernel_vmap()
}
/// See [`crate::Paging::APP_RANGE`].
pub fn app_range() -> (usize, usize) {
    __keel_app_range()
}
/// See [`crate::Paging::table_root`].
pub fn table_root(va: VirtAddr) -> PhysAddr {
    __keel_table_root(va)
}
/// See [`crate::Paging::publish_table_update`].
pub fn publish_table_update() {
    __keel_publish_table_update()
}
/// See [`crate::Paging::flush_tlb_page`].
pub fn flush_tlb_page(va: VirtAddr) {
    __keel_flush_tlb_page(va)
}
/// See [`crate::Paging::flush_tlb_all`].
pub fn flush_tlb_all() {
    __keel_flush_tlb_all()
}

/// See [`crate::Clock::monotonic_ns`].
#[inline]
pub fn monotonic_ns() -> u64 {
    __keel_monotonic_ns()
}
/// See [`crate::Clock::set_timer`].
#[inline]
pub fn set_timer(deadline_ns: Option<u64>) {
    __keel_set_timer(deadline_ns)
}
/// See [`crate::Clock::since_first_instruction_ns`].
pub fn since_first_instruction_ns() -> u64 {
    __keel_since_first_instruction_ns()
}

/// See [`crate::Interrupts::send_ipi`].
#[inline]
pub fn send_ipi(target: CpuIndex, ipi: Ipi) {
    __keel_send_ipi(target, ipi)
}
/// See [`crate::Interrupts::enable_irq`].
pub fn enable_irq(line: IrqLine, target: CpuIndex) -> Result<(), IrqError> {
    __keel_enable_irq(line, target)
}
/// See [`crate::Interrupts::disable_irq`].
pub fn disable_irq(line: IrqLine) {
    __keel_disable_irq(line)
}

/// See [`crate::Smp::start_cpu`].
///
/// # Safety
/// As for the trait method.
pub unsafe fn start_cpu(
    index: CpuIndex,
    hw_id: u64,
    stack_bottom: usize,
    stack_top: usize,
    entry: fn(CpuIndex) -> !,
) -> Result<(), SmpError> {
    // SAFETY: forwarded contract.
    unsafe { __keel_start_cpu(index, hw_id, stack_bottom, stack_top, entry) }
}

/// See [`crate::Platform::name`].
pub fn platform_name() -> &'static str {
    __keel_platform_name()
}
/// See [`crate::Platform::console_write`].
pub fn console_write(bytes: &[u8]) {
    __keel_console_write(bytes)
}
/// See [`crate::Platform::console_read`].
pub fn console_read() -> Option<u8> {
    __keel_console_read()
}
/// See [`crate::Platform::wall_clock_ns`].
pub fn wall_clock_ns() -> u64 {
    __keel_wall_clock_ns()
}
/// See [`crate::Platform::power_off`].
pub fn power_off(status: ExitStatus) -> ! {
    __keel_power_off(status)
}

/// Upcalls into core, for arch and platform crates.
pub mod kernel {
    use super::*;
    /// See [`crate::Kernel::timer`].
    #[inline]
    pub fn timer() {
        __keel_kernel_timer()
    }
    /// See [`crate::Kernel::ipi`].
    #[inline]
    pub fn ipi(ipi: Ipi) {
        __keel_kernel_ipi(ipi)
    }
    /// See [`crate::Kernel::irq`].
    #[inline]
    pub fn irq(line: IrqLine) {
        __keel_kernel_irq(line)
    }
    /// See [`crate::Kernel::fault`].
    pub fn fault(fault: &mut Fault<'_>) -> FaultResolution {
        __keel_kernel_fault(fault)
    }
    /// See [`crate::Kernel::syscall`].
    #[inline]
    pub fn syscall(frame: &mut AppFrame) {
        __keel_kernel_syscall(frame)
    }
    /// See [`crate::Kernel::trap_exit`].
    #[inline]
    pub fn trap_exit() {
        __keel_kernel_trap_exit()
    }
}

/// See [`crate::App::resume_app`].
///
/// # Safety
/// As for the trait method.
pub unsafe fn resume_app(frame: &AppFrame) -> ! {
    // SAFETY: forwarded contract.
    unsafe { __keel_resume_app(frame) }
}
/// See [`crate::App::set_app_thread_pointer`].
pub fn set_app_thread_pointer(value: u64) {
    __keel_set_app_thread_pointer(value)
}
/// See [`crate::App::app_thread_pointer`].
pub fn app_thread_pointer() -> u64 {
    __keel_app_thread_pointer()
}
/// See [`crate::App::copy_from_app`].
///
/// # Safety
/// As for the trait method.
pub unsafe fn copy_from_app(dst: *mut u8, src: usize, len: usize) -> bool {
    // SAFETY: forwarded contract.
    unsafe { __keel_copy_from_app(dst, src, len) }
}
/// See [`crate::App::copy_to_app`].
///
/// # Safety
/// As for the trait method.
pub unsafe fn copy_to_app(dst: usize, src: *const u8, len: usize) -> bool {
    // SAFETY: forwarded contract.
    unsafe { __keel_copy_to_app(dst, src, len) }
}
/// See [`crate::App::fp_signal_layout`].
pub fn fp_signal_layout() -> Layout {
    __keel_fp_signal_layout()
}
/// See [`crate::App::save_fp_to_app`].
pub fn save_fp_to_app(dst: usize) -> bool {
    __keel_save_fp_to_app(dst)
}
/// See [`crate::App::restore_fp_from_app`].
pub fn restore_fp_from_app(src: usize) -> bool {
    __keel_restore_fp_from_app(src)
}
/// See [`crate::Cpu::hardware_random`].
pub fn hardware_random() -> Option<u64> {
    __keel_hardware_random()
}
/// See [`crate::Cpu::elf_hwcaps`].
pub fn elf_hwcaps() -> (u64, u64) {
    __keel_elf_hwcaps()
}
/// See [`crate::Cpu::running_thread_word`].
#[inline]
pub fn running_thread_word() -> Option<usize> {
    __keel_running_thread_word()
}
/// See [`crate::Cpu::set_running_thread_word`].
#[inline]
pub fn set_running_thread_word(word: usize) {
    __keel_set_running_thread_word(word)
}
/// See [`crate::App::app_cmpxchg_u32`].
///
/// # Safety
/// As for the trait method.
pub unsafe fn app_cmpxchg_u32(addr: usize, expected: u32, new: u32) -> Option<u32> {
    // SAFETY: forwarded contract.
    unsafe { __keel_app_cmpxchg_u32(addr, expected, new) }
}
