//! Kernel panics and fault reports: print what happened and where, with a
//! backtrace the host tools can symbolise, then stop the machine with a
//! failure status.

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use keel_hal::{ExitStatus, machine};

use crate::console::print_unlocked;

static PANICKING: AtomicBool = AtomicBool::new(false);

/// Print a backtrace from frame pointer `fp` (0 = here). Lines look like
/// `  #3 0xffffffff80012345`; `cargo keel` adds symbol names.
pub fn print_backtrace(fp: usize) {
    let mut depth = 0;
    print_unlocked(format_args!("  backtrace:\n"));
    machine::walk_stack(fp, &mut |pc| {
        print_unlocked(format_args!("  #{depth} {pc:#x}\n"));
        depth += 1;
        depth < 32
    });
}

/// The kernel's panic handler body (the image crate's `#[panic_handler]`
/// calls this).
pub fn on_panic(info: &PanicInfo<'_>) -> ! {
    machine::disable_interrupts();
    if PANICKING.swap(true, Ordering::AcqRel) {
        // Another CPU is already reporting; let it finish.
        machine::halt_forever();
    }
    let cpu = machine::current_cpu();
    print_unlocked(format_args!(
        "\nkeel: PANIC on cpu {cpu}: {}\n",
        info.message()
    ));
    if let Some(loc) = info.location() {
        print_unlocked(format_args!(
            "  at {}:{}:{}\n",
            loc.file(),
            loc.line(),
            loc.column()
        ));
    }
    print_backtrace(0);
    print_unlocked(format_args!("keel: exit status panic\n"));
    machine::power_off(ExitStatus::Panic)
}
