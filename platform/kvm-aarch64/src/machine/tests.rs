//! In-kernel tests of this platform's glue: device interrupts through the
//! GIC, the device tree as read at boot, the PL031 clock, and FP/SIMD state
//! across context switches.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use keel_arch_aarch64 as arch;
use keel_core::ktest::TestResult;
use keel_core::sched::{self, ExitReason, Options};
use keel_core::{check, check_eq, ktest, skip, time};
use keel_driver_pl011::Interrupt;
use keel_hal::IrqLine;

use super::console::{self, UART};
use super::devices;

#[ktest]
fn uart_interrupt_arrives_through_the_gic() -> TestResult {
    let Some(irq) = console::interrupt() else {
        skip!("the device tree gives the console no interrupt");
    };
    let line = IrqLine(irq.intid);
    if arch::set_irq_trigger(line, irq.edge).is_err() {
        skip!("the GIC has no line {}", irq.intid);
    }
    let count = Arc::new(AtomicU32::new(0));
    let c = count.clone();
    let registered = keel_core::irq::register(line, 0, move || {
        c.fetch_add(1, Ordering::AcqRel);
        // Level-sensitive: mask and clear the source before the EOI.
        UART.set_interrupt(Interrupt::Transmit, false);
        UART.clear(Interrupt::Transmit);
    });
    check!(
        registered.is_ok(),
        "routing INTID {} failed: {registered:?}",
        irq.intid
    );
    // The transmit interrupt is raised while the FIFO is below its level
    // (console output keeps it so).
    UART.set_interrupt(Interrupt::Transmit, true);
    let deadline = time::monotonic_ns() + 500_000_000;
    while count.load(Ordering::Acquire) == 0 && time::monotonic_ns() < deadline {
        time::sleep_ms(1);
    }
    keel_core::irq::unregister(line);
    UART.set_interrupt(Interrupt::Transmit, false);
    check!(
        count.load(Ordering::Acquire) >= 1,
        "no interrupt on INTID {} within 500 ms",
        irq.intid
    );
    Ok(())
}

#[ktest]
fn device_tree_describes_this_machine() -> TestResult {
    let Some(m) = devices::machine() else {
        skip!("no device tree was read");
    };
    check!(!m.memory.is_empty(), "no memory in the device tree");
    check_eq!(m.cpus.len(), sched::online_count());
    check!(m.gic.is_some() && m.psci.is_some() && m.timer.is_some());
    // Every virtio-mmio slot has its own window and an SPI.
    let slots = m.virtio_mmio.as_slice();
    for (i, s) in slots.iter().enumerate() {
        check!(
            s.interrupt.is_some_and(|irq| irq.intid >= 32),
            "slot {i} has no SPI"
        );
        check!(
            slots[i + 1..].iter().all(|t| t.reg.base != s.reg.base),
            "two slots at {:#x}",
            s.reg.base
        );
    }
    // Garbage is refused, not trusted.
    check!(keel_driver_devicetree::parse(&[0u8; 64]).is_err());
    Ok(())
}

#[ktest]
fn wall_clock_comes_from_the_rtc() -> TestResult {
    let rtc = devices::rtc_unix_time();
    check!(rtc.is_some(), "the PL031 did not give a time");
    let kernel = time::realtime_ns() / 1_000_000_000;
    let diff = kernel.abs_diff(rtc.unwrap_or(0));
    check!(
        diff <= 2,
        "kernel wall clock {kernel} differs from the RTC {rtc:?} by {diff} s"
    );
    Ok(())
}

#[ktest]
fn fp_simd_registers_survive_context_switches() -> TestResult {
    // Three threads share one CPU; each fills v0-v31 and FPCR with its own
    // pattern, then yields and sleeps many times (timer interrupts and
    // switches in between) and checks its pattern is intact.
    let cpu = sched::online_count() - 1;
    let intact: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let threads: Vec<_> = intact
        .iter()
        .enumerate()
        .map(|(k, ok)| {
            let ok = ok.clone();
            sched::spawn_with(
                Options {
                    name: alloc::format!("simd{k}").into(),
                    pin: Some(cpu),
                    killable: true,
                },
                move || {
                    let seed = 0x0123_4567_89ab_cdef_u128.wrapping_mul(k as u128 + 3);
                    let values: [u128; 32] =
                        core::array::from_fn(|i| seed.rotate_left(i as u32 * 4) ^ i as u128);
                    let fpcr = (k as u64 + 1) << 22; // a rounding mode per thread
                    arch::simd::load(&values, fpcr);
                    for round in 0..100 {
                        sched::yield_now();
                        if round % 20 == 0 {
                            time::sleep_ms(1);
                        }
                    }
                    let mut seen = [0u128; 32];
                    let seen_fpcr = arch::simd::store(&mut seen);
                    ok.store(seen == values && seen_fpcr == fpcr, Ordering::Release);
                },
            )
        })
        .collect();
    for t in threads {
        check_eq!(t.join(), ExitReason::Returned);
    }
    for (k, ok) in intact.iter().enumerate() {
        check!(
            ok.load(Ordering::Acquire),
            "thread {k}'s FP/SIMD registers changed"
        );
    }
    Ok(())
}
