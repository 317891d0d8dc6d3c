//! In-kernel tests of this platform's glue and of the ppc64 paths core
//! does not exercise by itself: the system-call entry, vector state
//! across preemption, interrupt routing through RTAS.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use keel_arch_ppc64 as arch;
use keel_core::ktest::TestResult;
use keel_core::sched::{self, ExitReason, Options};
use keel_core::{check, check_eq, ktest, time};
use keel_hal::IrqLine;

#[ktest]
fn wall_clock_comes_from_rtas() -> TestResult {
    let rtas = super::power::wall_clock();
    check!(rtas.is_some(), "RTAS get-time-of-day gave no valid time");
    let kernel = time::realtime_ns() / 1_000_000_000;
    let (secs, _) = rtas.unwrap_or((0, 0));
    let diff = kernel.abs_diff(secs);
    check!(
        diff <= 2,
        "kernel wall clock {kernel} differs from RTAS {secs} by {diff} s"
    );
    Ok(())
}

#[ktest]
fn sc_lands_on_the_kernel_stack_and_spares_the_red_zone() -> TestResult {
    // An app's stack, and the kernel stack its thread would own: while an
    // app runs, its thread's kernel stack is empty. (This test thread is
    // on its own kernel stack, so it lends the CPU a fresh one.) One
    // allocation, the app's stack above the kernel stack and clear of the
    // guard page below it, as the address space would lay them out.
    let memory: Vec<u64> = alloc::vec![0; 4096];
    let k_bottom = (memory.as_ptr() as usize + 15) & !15;
    let k_top = k_bottom + 16 * 1024;
    let app_top = k_top + 12 * 1024;
    let before = arch::SYSCALLS.load(Ordering::Relaxed);
    let (ok, unknown) = {
        // No switch may reset the CPU's kernel stack meanwhile.
        let _irq = keel_core::sync::IrqGuard::new();
        let own = arch::kernel_stack();
        keel_hal::machine::set_kernel_stack(k_bottom, k_top);
        // SAFETY: `app_top` is the aligned top of 8 KiB this test owns.
        let ok = unsafe { arch::syscall_from_stack(app_top, arch::SYSCALL_PROBE, 40, 2) };
        // SAFETY: as above.
        let unknown = unsafe { arch::syscall_from_stack(app_top, 9999, 0, 0) };
        keel_hal::machine::set_kernel_stack(own.0, own.1);
        (ok, unknown)
    };
    let (sum, handler_sp, failed, intact) = ok;
    check_eq!(sum, 42);
    check!(!failed, "CR0[SO] set on a successful system call");
    check!(
        intact,
        "the 288-byte red zone below the app's r1 was overwritten"
    );
    check!(
        (k_bottom..k_top).contains(&(handler_sp as usize)),
        "the handler ran on {handler_sp:#x}, not the thread's kernel stack {k_bottom:#x}..{k_top:#x}"
    );
    let (errno, _, failed, _) = unknown;
    check!(
        failed && errno == 38,
        "an unknown system call gave {errno} (SO {failed}), not ENOSYS"
    );
    check_eq!(arch::SYSCALLS.load(Ordering::Relaxed) - before, 2);
    Ok(())
}

/// Hold `pattern` in a volatile vector register (VSR34 = VR2) and a
/// volatile FPR (VSR5) while spinning until `stop`; report what they hold.
fn hold_vector_registers(pattern: u64, stop: &AtomicBool) -> (u64, u64, u64) {
    let (mut hi, mut lo, mut f) = (0u64, 0u64, 0u64);
    let flag = stop.as_ptr();
    // SAFETY: uses only the registers named as clobbers; reads `stop`
    // through its pointer (a relaxed-equivalent byte load).
    unsafe {
        core::arch::asm!(
            "mtvsrdd 34, {p}, {q}",
            "mtfprd 5, {q}",
            "1:",
            "lbz {t}, 0({flag})",
            "cmpdi {t}, 0",
            "beq 1b",
            "mfvsrd {hi}, 34",
            "mfvsrld {lo}, 34",
            "mffprd {f}, 5",
            p = in(reg) pattern,
            q = in(reg) !pattern,
            flag = in(reg_nonzero) flag,
            t = out(reg) _,
            hi = out(reg) hi,
            lo = out(reg) lo,
            f = out(reg) f,
            out("v2") _,
            out("f5") _,
        )
    };
    (hi, lo, f)
}

#[ktest]
fn vector_registers_survive_preemption() -> TestResult {
    let cpu = sched::online_count() - 1;
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = [0x0123_4567_89ab_cdefu64, 0xfedc_ba98_7654_3210]
        .into_iter()
        .map(|pattern| {
            let stop = stop.clone();
            let result = Arc::new(keel_core::sync::SpinLock::new((0, 0, 0)));
            let out = result.clone();
            let h = sched::spawn_with(
                Options {
                    name: "vsx".into(),
                    pin: Some(cpu),
                    killable: true,
                },
                move || *out.lock() = hold_vector_registers(pattern, &stop),
            );
            (pattern, h, result)
        })
        .collect();
    // Several 4 ms slices: each worker is preempted with its pattern live.
    time::sleep_ms(60);
    stop.store(true, Ordering::Relaxed);
    for (pattern, h, result) in workers {
        let switches = h.thread().switches();
        check_eq!(h.join(), ExitReason::Returned);
        check!(
            switches >= 2,
            "the worker was never preempted ({switches} switches)"
        );
        let got = *result.lock();
        check_eq!(got, (pattern, !pattern, !pattern));
    }
    Ok(())
}

#[ktest]
fn xics_routes_a_real_source_and_refuses_a_missing_one() -> TestResult {
    let Some(line) = super::firmware::facts().vty_irq else {
        keel_core::skip!("the vty has no interrupt in the device tree");
    };
    let r = keel_core::irq::register(IrqLine(line), 0, || {});
    keel_core::irq::unregister(IrqLine(line));
    check!(
        r.is_ok(),
        "RTAS would not route the console's source {line:#x}: {r:?}"
    );
    let bogus = keel_core::irq::register(IrqLine(0x00ff_fff0), 0, || {});
    keel_core::irq::unregister(IrqLine(0x00ff_fff0));
    check!(bogus.is_err(), "RTAS routed a source that does not exist");
    Ok(())
}

fn fault_of(
    name: &'static str,
    body: fn(),
) -> Result<alloc::string::String, keel_core::ktest::TestFailure> {
    let t = sched::spawn_with(
        Options {
            name: name.into(),
            pin: None,
            killable: true,
        },
        body,
    );
    match t.join() {
        ExitReason::Faulted(why) => Ok(why),
        ExitReason::Returned => Err(keel_core::ktest::TestFailure::Failed(alloc::format!(
            "{name} did not fault"
        ))),
    }
}

#[ktest]
fn program_checks_and_wild_jumps_are_reported() -> TestResult {
    let why = fault_of("illegal", || {
        // SAFETY: deliberately executes a word that is no instruction.
        unsafe { core::arch::asm!(".long 0") };
    })?;
    check!(why.contains("illegal instruction"), "reported as: {why}");
    let why = fault_of("trap", || {
        // SAFETY: deliberately executes an unconditional trap.
        unsafe { core::arch::asm!("trap") };
    })?;
    check!(why.contains("breakpoint"), "reported as: {why}");
    let why = fault_of("jump", || {
        // SAFETY: deliberately calls an address nothing is mapped at.
        let f: extern "C" fn() = unsafe { core::mem::transmute(0xc008_4000_0000_0000usize) };
        f();
    })?;
    check!(
        why.contains("execute at 0xc008400000000000"),
        "reported as: {why}"
    );
    Ok(())
}
