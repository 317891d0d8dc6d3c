//! The bridge between traps and the OS personality that runs the app (the
//! Linux ABI crate, which core cannot name: the image crate registers it).
//!
//! Core resolves what it can itself — demand paging and copy-on-write in
//! the app's address space — and hands the rest to the registered hooks:
//! system calls, and app faults that become signals.

use alloc::string::String;

use keel_hal::{AppFrame, Fault, FaultKind, FaultResolution, machine};

use crate::memory::app_space::{AddressSpace, FaultError};
use crate::sched;

/// What the OS personality provides.
pub struct AppHooks {
    /// Handle a system call; `frame` holds the app's registers and gets
    /// the result. The app resumes from `frame`.
    pub syscall: fn(&mut AppFrame),
    /// The app faulted and core could not fix it: deliver the signal
    /// (changing `frame` so the app resumes in its handler) or end the app;
    /// this returns only in the first case.
    pub fault: fn(&AppFault<'_>, &mut AppFrame),
    /// Run the app with this argv; returns its exit status.
    pub run: fn(&[String]) -> u8,
}

/// An app fault core could not resolve.
pub struct AppFault<'a> {
    /// What the arch saw.
    pub kind: FaultKind,
    /// Why the address space refused, for page faults.
    pub error: Option<FaultError>,
    /// The arch's register report.
    pub registers: &'a dyn core::fmt::Display,
}

static HOOKS: spin::Once<AppHooks> = spin::Once::new();

/// The app's address space (Keel runs one app).
pub static SPACE: AddressSpace = AddressSpace::new();

/// Register the OS personality (once, by the image crate at boot).
pub fn install(hooks: AppHooks) {
    HOOKS.call_once(|| hooks);
}

/// Whether `[addr, addr + len)` lies inside the app's half of the address space.
pub fn in_app_range(addr: usize, len: usize) -> bool {
    let (lo, hi) = machine::app_range();
    addr >= lo && addr.checked_add(len).is_some_and(|end| end <= hi)
}

/// Copy app memory at `addr` into `buf`. False (nothing guaranteed about
/// `buf`) if any byte is outside the app range or not readable: the
/// system call then fails with EFAULT.
pub fn copy_in(addr: usize, buf: &mut [u8]) -> bool {
    if buf.is_empty() {
        return true;
    }
    // SAFETY: `buf` is a valid kernel buffer of its length; app-side faults
    // are fixed up by the arch and reported as `false`.
    in_app_range(addr, buf.len())
        && unsafe { machine::copy_from_app(buf.as_mut_ptr(), addr, buf.len()) }
}

/// Copy `data` to app memory at `addr`; false if any byte is outside the
/// app range or not writable.
pub fn copy_out(addr: usize, data: &[u8]) -> bool {
    if data.is_empty() {
        return true;
    }
    // SAFETY: `data` is a valid kernel buffer; app-side faults are fixed up.
    in_app_range(addr, data.len())
        && unsafe { machine::copy_to_app(addr, data.as_ptr(), data.len()) }
}

/// Atomically replace the app's 32-bit word at `addr` with `new` if it
/// holds `expected`. Returns the value found, or None if it is outside the
/// app range, misaligned or not accessible.
pub fn cmpxchg_u32(addr: usize, expected: u32, new: u32) -> Option<u32> {
    if !addr.is_multiple_of(4) || !in_app_range(addr, 4) {
        return None;
    }
    // SAFETY: the address is in the app range and aligned; faults are fixed
    // up by the arch and reported as None.
    unsafe { machine::app_cmpxchg_u32(addr, expected, new) }
}

/// The registered hooks, if any.
pub fn hooks() -> Option<&'static AppHooks> {
    HOOKS.get()
}

/// A system call from the app (upcall from the arch).
pub(crate) fn syscall(frame: &mut AppFrame) {
    match HOOKS.get() {
        Some(h) => (h.syscall)(frame),
        None => panic!("the app made a system call but no OS personality is installed"),
    }
    // System calls return straight to the app: this is their preemption point.
    sched::preempt_point();
}

/// A fault in app code or in an app-memory copy. Returns `None` if it is
/// not the app's business (a kernel bug the caller reports).
pub(crate) fn fault(fault: &mut Fault<'_>) -> Option<FaultResolution> {
    let (lo, hi) = machine::app_range();
    let error = match fault.kind {
        // A copy with interrupts masked (under a spinlock, e.g. a futex
        // check) must not page in: that may sleep. It fails; the caller
        // faulted the page in beforehand if it could.
        FaultKind::PageFault { .. } if fault.in_app_copy && !fault.interrupts_enabled => None,
        FaultKind::PageFault {
            address,
            write,
            execute,
            ..
        } if (fault.app.is_some() || fault.in_app_copy) && (lo..hi).contains(&address.0) => {
            // Paging in may sleep (file pages, TLB shootdowns): run with
            // interrupts on, as the faulting code did.
            let were = machine::interrupts_enabled();
            if fault.interrupts_enabled {
                machine::restore_interrupts(true);
            }
            let r = SPACE.handle_fault(address.0, write, execute);
            if !were {
                machine::disable_interrupts();
            }
            match r {
                Ok(()) => return Some(FaultResolution::Retry),
                Err(e) => Some(e),
            }
        }
        _ => None,
    };
    if fault.in_app_copy {
        return Some(FaultResolution::AbandonCopy);
    }
    let hooks = HOOKS.get()?;
    let app = fault.app.as_deref_mut()?;
    let info = AppFault {
        kind: fault.kind,
        error,
        registers: fault.registers,
    };
    if fault.interrupts_enabled {
        machine::restore_interrupts(true);
    }
    (hooks.fault)(&info, app);
    machine::disable_interrupts();
    Some(FaultResolution::ResumeApp)
}

/// Start a thread that runs app code from `frame`, with `thread_pointer`
/// loaded (x86 FS base / aarch64 TPIDR_EL0) and `state` attached as its
/// OS-personality state.
pub fn spawn_app_thread(
    name: alloc::borrow::Cow<'static, str>,
    frame: AppFrame,
    thread_pointer: Option<u64>,
    state: alloc::sync::Arc<dyn core::any::Any + Send + Sync>,
) -> sched::JoinHandle {
    sched::spawn_with(
        sched::Options {
            name,
            pin: None,
            killable: false,
        },
        move || {
            sched::current().set_os_state(state);
            if let Some(tp) = thread_pointer {
                machine::set_app_thread_pointer(tp);
            }
            // SAFETY: the frame was built by the loader or copied from a system
            // call of this app, so it points at app code and an app stack; this
            // thread's kernel stack was set by the scheduler when it switched here.
            unsafe { machine::resume_app(&frame) }
        },
    )
}
