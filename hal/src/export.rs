//! The registration macros that bind an implementation to the contract.
//!
//! Each macro first asserts at compile time that the type implements the
//! whole trait bundle, then defines the symbols `machine.rs` declares.

/// Register `$arch` as the linked architecture. It must implement
/// [`crate::Arch`] (every per-CPU trait); otherwise this fails to compile.
#[macro_export]
macro_rules! export_arch {
    ($arch:ty) => {
        const _: () = {
            const fn implements_whole_arch_contract<T: $crate::Arch>() {}
            implements_whole_arch_contract::<$arch>();
        };
        const _: () = {
            use $crate::paging::PageTableFormat as _;
            use $crate::{
                Clock as _, Context as _, Cpu as _, Interrupts as _, Paging as _, Smp as _,
            };
            type Format = <$arch as $crate::Paging>::Format;

            #[unsafe(no_mangle)]
            fn __keel_arch_name() -> &'static str {
                <$arch as $crate::Arch>::NAME
            }
            #[unsafe(no_mangle)]
            fn __keel_current_cpu() -> $crate::CpuIndex {
                <$arch>::current_cpu()
            }
            #[unsafe(no_mangle)]
            fn __keel_interrupts_enabled() -> bool {
                <$arch>::interrupts_enabled()
            }
            #[unsafe(no_mangle)]
            fn __keel_disable_interrupts() -> bool {
                <$arch>::disable_interrupts()
            }
            #[unsafe(no_mangle)]
            fn __keel_restore_interrupts(e: bool) {
                <$arch>::restore_interrupts(e)
            }
            #[unsafe(no_mangle)]
            fn __keel_enable_interrupts_and_wait() {
                <$arch>::enable_interrupts_and_wait()
            }
            #[unsafe(no_mangle)]
            fn __keel_spin_hint() {
                <$arch>::spin_hint()
            }
            #[unsafe(no_mangle)]
            fn __keel_halt_forever() -> ! {
                <$arch>::halt_forever()
            }
            #[unsafe(no_mangle)]
            fn __keel_cpu_features(out: &mut dyn ::core::fmt::Write) -> ::core::fmt::Result {
                <$arch>::features(out)
            }
            #[unsafe(no_mangle)]
            fn __keel_hardware_random() -> Option<u64> {
                <$arch>::hardware_random()
            }
            #[unsafe(no_mangle)]
            fn __keel_elf_hwcaps() -> (u64, u64) {
                <$arch>::elf_hwcaps()
            }
            #[unsafe(no_mangle)]
            fn __keel_running_thread_word() -> Option<usize> {
                <$arch>::running_thread_word()
            }
            #[unsafe(no_mangle)]
            fn __keel_set_running_thread_word(word: usize) {
                <$arch>::set_running_thread_word(word)
            }
            #[unsafe(no_mangle)]
            fn __keel_walk_stack(start: usize, visit: &mut dyn FnMut(usize) -> bool) {
                <$arch>::walk_stack(start, visit)
            }

            #[unsafe(no_mangle)]
            fn __keel_fp_state_layout() -> ::core::alloc::Layout {
                <$arch>::fp_state_layout()
            }
            #[unsafe(no_mangle)]
            unsafe fn __keel_init_fp_state(area: *mut u8) {
                // SAFETY: the caller upholds `Context::init_fp_state`'s contract.
                unsafe { <$arch>::init_fp_state(area) }
            }
            #[unsafe(no_mangle)]
            unsafe fn __keel_prepare_stack(
                bottom: usize,
                top: usize,
                entry: extern "C" fn(usize) -> !,
                arg: usize,
            ) -> usize {
                // SAFETY: the caller upholds `Context::prepare_stack`'s contract.
                unsafe { <$arch>::prepare_stack(bottom, top, entry, arg) }
            }
            #[unsafe(no_mangle)]
            fn __keel_set_kernel_stack(bottom: usize, top: usize) {
                <$arch>::set_kernel_stack(bottom, top)
            }
            #[unsafe(no_mangle)]
            unsafe fn __keel_switch_context(
                from: *mut $crate::SwitchFrame,
                to: *const $crate::SwitchFrame,
            ) {
                // SAFETY: the caller upholds `Context::switch`'s contract.
                unsafe { <$arch>::switch(from, to) }
            }

            #[unsafe(no_mangle)]
            fn __keel_pt_levels() -> usize {
                Format::levels()
            }
            #[unsafe(no_mangle)]
            fn __keel_pt_page_shift() -> u32 {
                Format::page_shift()
            }
            #[unsafe(no_mangle)]
            fn __keel_pt_index_bits(level: usize) -> u32 {
                Format::index_bits(level)
            }
            #[unsafe(no_mangle)]
            fn __keel_pt_leaf_allowed(level: usize) -> bool {
                Format::leaf_allowed(level)
            }
            #[unsafe(no_mangle)]
            fn __keel_pt_encode(entry: $crate::paging::Entry, level: usize) -> u64 {
                Format::encode(entry, level)
            }
            #[unsafe(no_mangle)]
            fn __keel_pt_decode(raw: u64, level: usize) -> $crate::paging::Entry {
                Format::decode(raw, level)
            }
            #[unsafe(no_mangle)]
            fn __keel_phys_map_base() -> usize {
                <$arch as $crate::Paging>::PHYS_MAP_BASE
            }
            #[unsafe(no_mangle)]
            fn __keel_kernel_vmap() -> (usize, usize) {
                <$arch as $crate::Paging>::KERNEL_VMAP
            }
            #[unsafe(no_mangle)]
            fn __keel_app_range() -> (usize, usize) {
                <$arch as $crate::Paging>::APP_RANGE
            }
            #[unsafe(no_mangle)]
            fn __keel_table_root(va: $crate::VirtAddr) -> $crate::PhysAddr {
                <$arch>::table_root(va)
            }
            #[unsafe(no_mangle)]
            fn __keel_publish_table_update() {
                <$arch>::publish_table_update()
            }
            #[unsafe(no_mangle)]
            fn __keel_flush_tlb_page(va: $crate::VirtAddr) {
                <$arch>::flush_tlb_page(va)
            }
            #[unsafe(no_mangle)]
            fn __keel_flush_tlb_all() {
                <$arch>::flush_tlb_all()
            }

            #[unsafe(no_mangle)]
            fn __keel_monotonic_ns() -> u64 {
                <$arch>::monotonic_ns()
            }
            #[unsafe(no_mangle)]
            fn __keel_set_timer(deadline: Option<u64>) {
                <$arch>::set_timer(deadline)
            }
            #[unsafe(no_mangle)]
            fn __keel_since_first_instruction_ns() -> u64 {
                <$arch>::since_first_instruction_ns()
            }

            #[unsafe(no_mangle)]
            fn __keel_send_ipi(target: $crate::CpuIndex, ipi: $crate::Ipi) {
                <$arch>::send_ipi(target, ipi)
            }
            #[unsafe(no_mangle)]
            fn __keel_enable_irq(
                line: $crate::IrqLine,
                target: $crate::CpuIndex,
            ) -> Result<(), $crate::interrupt::IrqError> {
                <$arch>::enable_irq(line, target)
            }
            #[unsafe(no_mangle)]
            fn __keel_disable_irq(line: $crate::IrqLine) {
                <$arch>::disable_irq(line)
            }

            #[unsafe(no_mangle)]
            unsafe fn __keel_start_cpu(
                index: $crate::CpuIndex,
                hw_id: u64,
                stack_bottom: usize,
                stack_top: usize,
                entry: fn($crate::CpuIndex) -> !,
            ) -> Result<(), $crate::smp::SmpError> {
                // SAFETY: the caller upholds `Smp::start_cpu`'s contract.
                unsafe { <$arch>::start_cpu(index, hw_id, stack_bottom, stack_top, entry) }
            }

            #[unsafe(no_mangle)]
            unsafe fn __keel_resume_app(frame: &$crate::AppFrame) -> ! {
                // SAFETY: the caller upholds `App::resume_app`'s contract.
                unsafe { <$arch>::resume_app(frame) }
            }
            #[unsafe(no_mangle)]
            fn __keel_set_app_thread_pointer(value: u64) {
                <$arch>::set_app_thread_pointer(value)
            }
            #[unsafe(no_mangle)]
            fn __keel_app_thread_pointer() -> u64 {
                <$arch>::app_thread_pointer()
            }
            #[unsafe(no_mangle)]
            unsafe fn __keel_copy_from_app(dst: *mut u8, src: usize, len: usize) -> bool {
                // SAFETY: the caller upholds `App::copy_from_app`'s contract.
                unsafe { <$arch>::copy_from_app(dst, src, len) }
            }
            #[unsafe(no_mangle)]
            unsafe fn __keel_copy_to_app(dst: usize, src: *const u8, len: usize) -> bool {
                // SAFETY: the caller upholds `App::copy_to_app`'s contract.
                unsafe { <$arch>::copy_to_app(dst, src, len) }
            }
            #[unsafe(no_mangle)]
            unsafe fn __keel_app_cmpxchg_u32(addr: usize, expected: u32, new: u32) -> Option<u32> {
                // SAFETY: the caller upholds `App::app_cmpxchg_u32`'s contract.
                unsafe { <$arch>::app_cmpxchg_u32(addr, expected, new) }
            }
            #[unsafe(no_mangle)]
            fn __keel_fp_signal_layout() -> ::core::alloc::Layout {
                <$arch>::fp_signal_layout()
            }
            #[unsafe(no_mangle)]
            fn __keel_save_fp_to_app(dst: usize) -> bool {
                <$arch>::save_fp_to_app(dst)
            }
            #[unsafe(no_mangle)]
            fn __keel_restore_fp_from_app(src: usize) -> bool {
                <$arch>::restore_fp_from_app(src)
            }
        };
    };
}

/// Register `$platform` as the linked platform. It must implement
/// [`crate::Platform`].
#[macro_export]
macro_rules! export_platform {
    ($platform:ty) => {
        const _: () = {
            use $crate::Platform as _;
            #[unsafe(no_mangle)]
            fn __keel_platform_name() -> &'static str {
                <$platform>::name()
            }
            #[unsafe(no_mangle)]
            fn __keel_console_write(bytes: &[u8]) {
                <$platform>::console_write(bytes)
            }
            #[unsafe(no_mangle)]
            fn __keel_console_read() -> Option<u8> {
                <$platform>::console_read()
            }
            #[unsafe(no_mangle)]
            fn __keel_wall_clock_ns() -> u64 {
                <$platform>::wall_clock_ns()
            }
            #[unsafe(no_mangle)]
            fn __keel_power_off(status: $crate::ExitStatus) -> ! {
                <$platform>::power_off(status)
            }
        };
    };
}

/// Register `$kernel` as the upcall target (core does this once).
#[macro_export]
macro_rules! export_kernel {
    ($kernel:ty) => {
        const _: () = {
            use $crate::Kernel as _;
            #[unsafe(no_mangle)]
            fn __keel_kernel_timer() {
                <$kernel>::timer()
            }
            #[unsafe(no_mangle)]
            fn __keel_kernel_ipi(ipi: $crate::Ipi) {
                <$kernel>::ipi(ipi)
            }
            #[unsafe(no_mangle)]
            fn __keel_kernel_irq(line: $crate::IrqLine) {
                <$kernel>::irq(line)
            }
            #[unsafe(no_mangle)]
            fn __keel_kernel_fault(fault: &mut $crate::Fault<'_>) -> $crate::FaultResolution {
                <$kernel>::fault(fault)
            }
            #[unsafe(no_mangle)]
            fn __keel_kernel_trap_exit() {
                <$kernel>::trap_exit()
            }
            #[unsafe(no_mangle)]
            fn __keel_kernel_syscall(frame: &mut $crate::AppFrame) {
                <$kernel>::syscall(frame)
            }
        };
    };
}
