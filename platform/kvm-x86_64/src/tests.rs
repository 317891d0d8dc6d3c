//! In-kernel tests of this platform's glue.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, Ordering};

use keel_core::ktest::TestResult;
use keel_core::{check, check_eq, ktest, skip, time};
use keel_driver_ns16550::UartInterrupt;
use keel_hal::IrqLine;

use crate::console::{COM1_IRQ, UART};
use crate::devices::{MmioSlot, parse_mmio_slot};

#[ktest]
fn uart_interrupt_arrives_through_the_ioapic() -> TestResult {
    let gsi = keel_arch_x86_64::ioapic::isa_to_gsi(COM1_IRQ);
    let count = Arc::new(AtomicU32::new(0));
    let c = count.clone();
    let line = IrqLine(gsi);
    if keel_core::irq::register(line, 0, move || {
        c.fetch_add(1, Ordering::AcqRel);
        // Reading IIR acknowledges "transmit holding register empty".
        let _ = UART.interrupt_id();
        UART.set_interrupt(UartInterrupt::TransmitEmpty, false);
    })
    .is_err()
    {
        skip!("no I/O APIC serves GSI {gsi}");
    }
    UART.set_interrupt(UartInterrupt::TransmitEmpty, true);
    let deadline = time::monotonic_ns() + 500_000_000;
    while count.load(Ordering::Acquire) == 0 && time::monotonic_ns() < deadline {
        time::sleep_ms(1);
    }
    keel_core::irq::unregister(line);
    UART.set_interrupt(UartInterrupt::TransmitEmpty, false);
    check!(
        count.load(Ordering::Acquire) >= 1,
        "no interrupt on GSI {gsi} within 500 ms"
    );
    Ok(())
}

#[ktest]
fn virtio_mmio_slots_parse_and_reject_garbage() -> TestResult {
    check_eq!(
        parse_mmio_slot("512@0xfeb00e00:12"),
        Some(MmioSlot {
            base: 0xfeb0_0e00,
            size: 512,
            irq: 12
        })
    );
    check_eq!(
        parse_mmio_slot("4K@0xd0000000:5"),
        Some(MmioSlot {
            base: 0xd000_0000,
            size: 4096,
            irq: 5
        })
    );
    check_eq!(parse_mmio_slot("512@0xzz:12"), None);
    check_eq!(parse_mmio_slot("512"), None);
    check_eq!(parse_mmio_slot("99999999999999999999K@0:1"), None);
    Ok(())
}

#[ktest]
fn wall_clock_comes_from_the_rtc() -> TestResult {
    let rtc = crate::devices::rtc_unix_time();
    check!(rtc.is_some(), "the CMOS RTC did not give a valid time");
    let kernel = time::realtime_ns() / 1_000_000_000;
    let diff = kernel.abs_diff(rtc.unwrap_or(0));
    check!(
        diff <= 2,
        "kernel wall clock {kernel} differs from the RTC {rtc:?} by {diff} s"
    );
    Ok(())
}

#[ktest]
fn virtio_mmio_devices_are_read_from_dsdt_bytes() -> TestResult {
    use crate::acpi::{AcpiVirtio, virtio_mmio_in_dsdt};
    // Two devices as QEMU's AML builder writes them: _HID string, then a
    // resource template with Memory32Fixed and a level/high Interrupt.
    let mut aml = alloc::vec::Vec::new();
    for (base, irq) in [(0xfeb0_0000u32, 16u32), (0xfeb0_0200, 17)] {
        aml.extend_from_slice(b"\x08_HID\x0dLNRO0005\x00\x08_CRS\x11\x1a\x0a\x17");
        aml.extend_from_slice(&[0x86, 0x09, 0x00, 0x01]);
        aml.extend_from_slice(&base.to_le_bytes());
        aml.extend_from_slice(&0x200u32.to_le_bytes());
        aml.extend_from_slice(&[0x89, 0x06, 0x00, 0x01, 0x01]);
        aml.extend_from_slice(&irq.to_le_bytes());
        aml.extend_from_slice(&[0x79, 0x00]);
    }
    let found = virtio_mmio_in_dsdt(&aml);
    check_eq!(found.len(), 2);
    check_eq!(
        found[1],
        AcpiVirtio {
            slot: MmioSlot {
                base: 0xfeb0_0200,
                size: 0x200,
                irq: 17
            },
            level: true,
            active_low: false
        }
    );
    // Cut short anywhere: fewer devices, never a panic.
    for cut in 0..aml.len() {
        check!(virtio_mmio_in_dsdt(&aml[..cut]).len() <= 2);
    }
    check!(virtio_mmio_in_dsdt(b"LNRO0005").is_empty());
    Ok(())
}
