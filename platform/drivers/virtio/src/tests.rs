//! In-kernel tests against the devices the test harness attaches
//! (tools/src/harness.rs, `virtio_devices`): a raw disk image whose bytes
//! the host checks after the guest exits, a user-network NIC with a fixed
//! MAC, and an entropy device. Each test skips when its device is absent
//! (a plain `cargo keel run`), and the harness fails a run where a device
//! it attached was not found.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use keel_core::ktest::TestResult;
use keel_core::sched::{self, ExitReason};
use keel_core::sync::WaitQueue;
use keel_core::{check, check_eq, ktest, skip};
use keel_fs::block::DiskError;
use keel_hal::machine;

/// Disk regions the round trip writes: (byte offset, length). Chosen to
/// hit the first and last sector, a 64 KiB request boundary and a
/// transfer split into several requests. The host side
/// (tools/src/harness.rs, DISK_REGIONS) must list the same.
const DISK_REGIONS: [(u64, usize); 6] = [
    (0, 512),
    (4096, 8192),
    (65536 - 512, 1024),
    ((1 << 20) + 512 * 5, 512 * 300),
    (2 << 20, 4096),
    ((4 << 20) - 1024, 1024),
];

/// The byte the round trip puts at disk offset `at`; the host computes the
/// same (tools/src/harness.rs, `disk_pattern`).
fn pattern(at: u64) -> u8 {
    ((at as u32).wrapping_mul(0x9e37_79b1).rotate_right(13) as u8) ^ 0x5a
}

fn fill(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern(offset + i)).collect()
}

#[ktest]
fn virtio_disk_round_trip() -> TestResult {
    let Some(disk) = keel_fs::block::disks()
        .into_iter()
        .find(|d| d.description().starts_with("virtio-blk"))
    else {
        skip!("no virtio disk attached");
    };
    check_eq!(disk.size(), 4 << 20);
    // Bad requests are errors, not crashes.
    let mut small = [0u8; 512];
    check_eq!(disk.read_at(100, &mut small), Err(DiskError::OutOfRange));
    check_eq!(
        disk.read_at(disk.size(), &mut small),
        Err(DiskError::OutOfRange)
    );
    check_eq!(disk.write_at(0, &[0u8; 100]), Err(DiskError::OutOfRange));
    check_eq!(
        disk.read_at(u64::MAX - 511, &mut small),
        Err(DiskError::OutOfRange)
    );
    // Every region written by its own thread, all at once; the first four
    // requests are held until all four are in flight together.
    crate::blk::arm_overlap_gate(4);
    let writers: Vec<_> = DISK_REGIONS
        .iter()
        .map(|&(offset, len)| {
            let d = disk.clone();
            sched::spawn("disk-writer", move || {
                if let Err(e) = d.write_at(offset, &fill(offset, len)) {
                    panic!("write at {offset:#x}: {e:?}");
                }
            })
        })
        .collect();
    for w in writers {
        check_eq!(w.join(), ExitReason::Returned);
    }
    check!(
        crate::blk::overlap_gate_opened() && crate::blk::peak_in_flight() >= 4,
        "four requests were never in flight together (peak {})",
        crate::blk::peak_in_flight()
    );
    check_eq!(disk.flush(), Ok(()));
    // Read back, again all at once, each thread comparing its region.
    let bad = Arc::new(AtomicU32::new(0));
    let readers: Vec<_> = DISK_REGIONS
        .iter()
        .map(|&(offset, len)| {
            let d = disk.clone();
            let bad = bad.clone();
            sched::spawn("disk-reader", move || {
                let mut got = vec![0u8; len];
                if d.read_at(offset, &mut got).is_err() || got != fill(offset, len) {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for r in readers {
        check_eq!(r.join(), ExitReason::Returned);
    }
    check_eq!(bad.load(Ordering::Relaxed), 0);
    // Bytes between regions were never written: still zero.
    let mut gap = vec![0xffu8; 4096];
    check_eq!(disk.read_at(3 << 20, &mut gap), Ok(()));
    check!(
        gap.iter().all(|&b| b == 0),
        "an unwritten sector is not zero"
    );
    Ok(())
}

/// The MAC the harness gives the NIC (`mac=` in its QEMU arguments).
const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// QEMU user networking: the guest's address and the gateway's.
const GUEST_IP: [u8; 4] = [10, 0, 2, 15];
const GATEWAY_IP: [u8; 4] = [10, 0, 2, 2];

fn arp_request(mac: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&mac);
    f.extend_from_slice(&GUEST_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&GATEWAY_IP);
    f
}

/// The gateway's MAC if `frame` is its ARP reply to us.
fn arp_reply_from_gateway(frame: &[u8], mac: [u8; 6]) -> Option<[u8; 6]> {
    let ok = frame.len() >= 42
        && frame[0..6] == mac
        && frame[12..14] == [0x08, 0x06]
        && frame[20..22] == [0, 2]
        && frame[28..32] == GATEWAY_IP
        && frame[38..42] == GUEST_IP;
    ok.then(|| {
        let mut m = [0u8; 6];
        m.copy_from_slice(&frame[22..28]);
        m
    })
}

#[ktest]
fn virtio_nic_arp_round_trip() -> TestResult {
    let Some(nic) = keel_net::device::devices()
        .into_iter()
        .find(|d| d.description().starts_with("virtio-net"))
    else {
        skip!("no virtio NIC attached");
    };
    check_eq!(nic.mac_address(), MAC);
    let wakes = Arc::new(AtomicU32::new(0));
    let queue = Arc::new(WaitQueue::new());
    {
        let (wakes, queue) = (wakes.clone(), queue.clone());
        nic.set_wake(Arc::new(move || {
            wakes.fetch_add(1, Ordering::Relaxed);
            queue.wake_all();
        }));
    }
    let request = arp_request(MAC);
    check_eq!(
        nic.transmit(request.len(), &mut |buf| buf.copy_from_slice(&request)),
        Ok(())
    );
    let deadline = machine::monotonic_ns() + 5_000_000_000;
    let mut gateway = None;
    let mut frames = 0;
    loop {
        // Note the wake-ups before looking, so one that comes after the
        // look is not missed by the sleep below.
        let seen = wakes.load(Ordering::Relaxed);
        while nic.receive(&mut |frame| {
            frames += 1;
            if let Some(m) = arp_reply_from_gateway(frame, MAC) {
                gateway = Some(m);
            }
        }) {}
        if gateway.is_some()
            || !queue.wait_until_deadline(|| wakes.load(Ordering::Relaxed) != seen, Some(deadline))
        {
            break;
        }
    }
    check!(
        gateway.is_some(),
        "no ARP reply from 10.0.2.2 within 5 s ({frames} other frames, {} wake-ups)",
        wakes.load(Ordering::Relaxed)
    );
    // On another CPU the frame can be seen in the ring a moment before
    // the interrupt handler runs; the interrupt must still come.
    let irq_deadline = machine::monotonic_ns() + 1_000_000_000;
    check!(
        queue.wait_until_deadline(|| wakes.load(Ordering::Relaxed) > 0, Some(irq_deadline)),
        "the device never interrupted"
    );
    check!(gateway != Some([0; 6]), "gateway MAC is zero");
    // Oversized frames are dropped with a log line, not sent or crashed on.
    check_eq!(nic.transmit(9000, &mut |_| {}), Ok(()));
    Ok(())
}

#[ktest]
fn virtio_rng_delivers_bytes() -> TestResult {
    let Some(rng) = crate::rng::devices().into_iter().next() else {
        skip!("no virtio entropy device attached");
    };
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    check_eq!(rng.read(&mut a), Ok(32));
    check_eq!(rng.read(&mut b), Ok(32));
    check!(a != b, "two reads gave the same 32 bytes");
    check!(a.iter().any(|&x| x != 0), "all zero");
    Ok(())
}

#[ktest]
fn virtio_features_are_only_those_the_drivers_honour() -> TestResult {
    use virtio_drivers::transport::DeviceType;
    const VERSION_1: u64 = 1 << 32;
    const EVENT_IDX: u64 = 1 << 29;
    // virtio-net: CSUM, GUEST_CSUM, the TSO/UFO family, MRG_RXBUF,
    // CTRL_VQ and MQ — none of which the driver implements.
    const NET_UNHONOURED: u64 =
        (1 << 0) | (1 << 1) | (0x7f << 7) | (1 << 15) | (1 << 17) | (1 << 22);
    let all = crate::transport::negotiated();
    if all.is_empty() {
        skip!("no virtio device attached");
    }
    for (kind, offered, accepted) in all {
        check!(
            accepted & !offered == 0,
            "{kind:?}: accepted {accepted:#x} beyond the offer {offered:#x}"
        );
        check!(
            offered & VERSION_1 == accepted & VERSION_1,
            "{kind:?}: VERSION_1 offered but refused"
        );
        check!(
            accepted & EVENT_IDX == 0,
            "{kind:?}: accepted RING_EVENT_IDX"
        );
        if kind == DeviceType::Network {
            check!(
                accepted & NET_UNHONOURED == 0,
                "virtio-net accepted {:#x}",
                accepted & NET_UNHONOURED
            );
        }
    }
    Ok(())
}
