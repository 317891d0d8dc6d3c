//! A stand-in machine for host unit tests of arch-neutral crates.
//!
//! Each host thread is a "CPU" (dense indices handed out on first use),
//! interrupts are a thread-local flag, time is `std::time::Instant`, and
//! the console is stdout. Context switching and CPU start-up do not exist
//! on the host: they panic, so a unit test that needs them is a test that
//! belongs in QEMU instead.

use std::alloc::Layout;
use std::cell::Cell;
use std::fmt;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use keel_hal::interrupt::IrqError;
use keel_hal::paging::{Entry, PageTableFormat};
use keel_hal::smp::SmpError;
use keel_hal::{
    App, AppFrame, Arch, Clock, Context, Cpu, CpuIndex, ExitStatus, Interrupts, Ipi, IrqLine,
    PageFlags, Paging, PhysAddr, Platform, Smp, SwitchFrame, VirtAddr,
};

/// The host machine.
pub struct Host;

static NEXT_CPU: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static CPU: usize = NEXT_CPU.fetch_add(1, Ordering::Relaxed) % keel_hal::boot::MAX_CPUS;
    static IRQ_ON: Cell<bool> = const { Cell::new(true) };
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Cpu for Host {
    fn current_cpu() -> CpuIndex {
        CPU.with(|c| *c)
    }
    fn interrupts_enabled() -> bool {
        IRQ_ON.with(Cell::get)
    }
    fn disable_interrupts() -> bool {
        IRQ_ON.with(|c| c.replace(false))
    }
    fn restore_interrupts(were_enabled: bool) {
        IRQ_ON.with(|c| c.set(were_enabled));
    }
    fn enable_interrupts_and_wait() {
        std::thread::yield_now();
    }
    fn spin_hint() {
        std::hint::spin_loop();
    }
    fn halt_forever() -> ! {
        panic!("halt_forever on the host");
    }
    fn features(out: &mut dyn fmt::Write) -> fmt::Result {
        out.write_str("host")
    }
    fn walk_stack(_start: usize, _visit: &mut dyn FnMut(usize) -> bool) {}
}

impl Context for Host {
    fn fp_state_layout() -> Layout {
        Layout::new::<u64>()
    }
    unsafe fn init_fp_state(_area: *mut u8) {}
    unsafe fn prepare_stack(_: usize, _: usize, _: extern "C" fn(usize) -> !, _: usize) -> usize {
        panic!("threads cannot be started on the host; test this in QEMU (#[ktest])")
    }
    fn set_kernel_stack(_bottom: usize, _top: usize) {}
    unsafe fn switch(_from: *mut SwitchFrame, _to: *const SwitchFrame) {
        panic!("context switch on the host; test this in QEMU (#[ktest])")
    }
}

/// A 4-level, 9-bits-per-level format like x86_64's, for host tests.
pub struct HostFormat;

impl PageTableFormat for HostFormat {
    fn levels() -> usize {
        4
    }
    fn page_shift() -> u32 {
        12
    }
    fn index_bits(_level: usize) -> u32 {
        9
    }
    fn leaf_allowed(level: usize) -> bool {
        level >= 2
    }
    fn encode(entry: Entry, level: usize) -> u64 {
        match entry {
            Entry::Invalid => 0,
            Entry::Table(p) => p.0 | 1,
            Entry::Leaf(p, f) => {
                p.0 | 1 | (u64::from(f.bits()) << 1) | if level < 3 { 0x80 } else { 0 }
            }
        }
    }
    fn decode(raw: u64, level: usize) -> Entry {
        let pa = PhysAddr(raw & 0x000f_ffff_ffff_f000);
        if raw & 1 == 0 {
            Entry::Invalid
        } else if level == 3 || raw & 0x80 != 0 {
            let mut f = PageFlags::READ;
            for (bit, flag) in [
                (2, PageFlags::WRITE),
                (4, PageFlags::EXEC),
                (8, PageFlags::DEVICE),
            ] {
                if raw & bit != 0 {
                    f = f | flag;
                }
            }
            Entry::Leaf(pa, f)
        } else {
            Entry::Table(pa)
        }
    }
}

impl Paging for Host {
    type Format = HostFormat;
    const PHYS_MAP_BASE: usize = 0;
    const KERNEL_VMAP: (usize, usize) = (0, 0);
    const APP_RANGE: (usize, usize) = (0, 0);
    fn table_root(_va: VirtAddr) -> PhysAddr {
        panic!("no page tables on the host")
    }
    fn publish_table_update() {}
    fn flush_tlb_page(_va: VirtAddr) {}
    fn flush_tlb_all() {}
}

impl Clock for Host {
    fn monotonic_ns() -> u64 {
        epoch().elapsed().as_nanos() as u64
    }
    fn set_timer(_deadline_ns: Option<u64>) {}
    fn since_first_instruction_ns() -> u64 {
        Self::monotonic_ns()
    }
}

impl Interrupts for Host {
    fn send_ipi(_target: CpuIndex, _ipi: Ipi) {}
    fn enable_irq(_line: IrqLine, _target: CpuIndex) -> Result<(), IrqError> {
        Ok(())
    }
    fn disable_irq(_line: IrqLine) {}
}

impl Smp for Host {
    unsafe fn start_cpu(
        _: CpuIndex,
        _: u64,
        _: usize,
        _: usize,
        _: fn(CpuIndex) -> !,
    ) -> Result<(), SmpError> {
        panic!("no secondary CPUs on the host")
    }
}

impl App for Host {
    unsafe fn resume_app(_frame: &AppFrame) -> ! {
        panic!("no apps on the host; test this in QEMU (#[ktest])")
    }
    fn set_app_thread_pointer(_value: u64) {}
    fn app_thread_pointer() -> u64 {
        0
    }
    unsafe fn copy_from_app(dst: *mut u8, src: usize, len: usize) -> bool {
        // SAFETY: on the host "app memory" is ordinary process memory the
        // test owns; the caller guarantees `dst`.
        unsafe { core::ptr::copy(src as *const u8, dst, len) };
        true
    }
    unsafe fn copy_to_app(dst: usize, src: *const u8, len: usize) -> bool {
        // SAFETY: as above.
        unsafe { core::ptr::copy(src, dst as *mut u8, len) };
        true
    }
    unsafe fn app_cmpxchg_u32(addr: usize, expected: u32, new: u32) -> Option<u32> {
        // SAFETY: on the host "app memory" is the test's own memory; the
        // caller guarantees alignment.
        let word = unsafe { &*(addr as *const core::sync::atomic::AtomicU32) };
        Some(
            match word.compare_exchange(
                expected,
                new,
                core::sync::atomic::Ordering::SeqCst,
                core::sync::atomic::Ordering::SeqCst,
            ) {
                Ok(v) | Err(v) => v,
            },
        )
    }
    fn fp_signal_layout() -> Layout {
        Layout::from_size_align(512, 16).expect("valid layout")
    }
    fn save_fp_to_app(_dst: usize) -> bool {
        false // no app FP state on the host: signal frames are QEMU tests
    }
    fn restore_fp_from_app(_src: usize) -> bool {
        false
    }
}

impl Arch for Host {
    const NAME: &'static str = "host";
}

impl Platform for Host {
    fn name() -> &'static str {
        "host"
    }
    fn console_write(bytes: &[u8]) {
        let _ = std::io::stdout().write_all(bytes);
    }
    fn console_read() -> Option<u8> {
        None
    }
    fn wall_clock_ns() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }
    fn power_off(status: ExitStatus) -> ! {
        panic!("power_off({status:?}) on the host")
    }
}

keel_hal::export_arch!(Host);
keel_hal::export_platform!(Host);
