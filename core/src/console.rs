//! Kernel console output: `kprint!`/`kprintln!` write whole lines through
//! the platform console, serialised so lines from different CPUs never mix.

use core::fmt::{self, Write};

use keel_hal::machine;

use crate::sync::SpinLock;

static CONSOLE_LOCK: SpinLock<()> = SpinLock::new(());

struct ConsoleWriter;

impl Write for ConsoleWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        machine::console_write(s.as_bytes());
        Ok(())
    }
}

/// Print formatted text to the console (used by the macros).
pub fn print(args: fmt::Arguments<'_>) {
    let _lock = CONSOLE_LOCK.lock();
    let _ = ConsoleWriter.write_fmt(args);
}

/// Print without taking the console lock: for panics and fault reports,
/// where the lock may be held by the CPU that is going down.
pub fn print_unlocked(args: fmt::Arguments<'_>) {
    let _ = ConsoleWriter.write_fmt(args);
}

/// Print to the Keel console.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Print a line to the Keel console.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
