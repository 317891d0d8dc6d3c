//! The two places the scheduler crosses into raw stack switching: the
//! switch itself and the first instructions of a new thread.

use keel_hal::{SwitchFrame, machine};

/// Save the running thread into `prev` and resume `next`.
///
/// # Safety
/// Interrupts masked; `prev` is the frame of this CPU's running thread;
/// `next` is the frame of a thread homed on this CPU and not running; both
/// threads stay alive across the call.
pub(super) unsafe fn switch(prev: *mut SwitchFrame, next: *mut SwitchFrame) {
    // SAFETY: per this function's contract nobody else touches either frame.
    unsafe { machine::switch_context(prev, next) }
}

/// First code of every spawned thread (entered with interrupts masked).
pub(super) extern "C" fn thread_start(_thread: usize) -> ! {
    super::finish_switch();
    machine::restore_interrupts(true);
    let me = super::current();
    let entry = me.entry.lock().take();
    let Some(f) = entry else {
        panic!(
            "thread {} '{}' started twice (arg {:#x}, self {:p})",
            me.id(),
            me.name(),
            _thread,
            alloc::sync::Arc::as_ptr(&me)
        );
    };
    drop(me);
    f();
    super::exit(super::ExitReason::Returned)
}
