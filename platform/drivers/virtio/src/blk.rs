//! virtio-blk as a `keel_fs::block::Disk`.
//!
//! A request is queued under the device lock, then the caller sleeps
//! (lock released) until the device's interrupt wakes it and its token is
//! the next one in the used ring; it completes itself and wakes the
//! others, since the next completion may already be there. Several threads
//! thus have requests in flight, up to what the 16-entry ring holds.
//!
//! Data goes through a heap buffer owned by the request, never the
//! caller's memory: the heap is physically contiguous (app memory may not
//! be), and if the device stops answering the buffer can be leaked instead
//! of left in the device's hands after the caller has gone.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use keel_core::kprintln;
use keel_core::sync::{Semaphore, SpinLock, WaitQueue};
use keel_fs::block::{Disk, DiskError};
use keel_hal::{IrqLine, machine};
use virtio_drivers::device::blk::{BlkReq, BlkResp, RespStatus, SECTOR_SIZE, VirtIOBlk};

use crate::KeelTransport;
use crate::hal::KeelHal;

/// Requests in flight at once. virtio-drivers' ring has 16 descriptors and
/// a request needs 3 of them when indirect descriptors are not offered.
const IN_FLIGHT: usize = 5;
/// Largest transfer per request; bigger ones are split.
const CHUNK: usize = 64 * 1024;
/// A device that has not answered a request in this long is broken.
const TIMEOUT_NS: u64 = 10_000_000_000;

/// Requests queued and not yet completed, across all disks, and the most
/// there ever were: the round-trip test checks that requests really
/// overlap.
static IN_FLIGHT_NOW: AtomicUsize = AtomicUsize::new(0);
static IN_FLIGHT_PEAK: AtomicUsize = AtomicUsize::new(0);

/// The most disk requests that were ever in flight at once.
pub fn peak_in_flight() -> usize {
    IN_FLIGHT_PEAK.load(Ordering::Relaxed)
}

/// Overlap gate for tests, inert unless armed. A fast device (QEMU under
/// TCG often completes a request during the notify itself) finishes each
/// request before the next thread queues one, so overlap would depend on
/// timing; armed with `n`, each queued request waits (up to 2 s) until `n`
/// are in flight together, then the gate opens for good.
static GATE: AtomicUsize = AtomicUsize::new(0);
static GATE_QUEUE: WaitQueue = WaitQueue::new();

/// Arm the overlap gate for `n` requests and reset the peak.
pub(crate) fn arm_overlap_gate(n: usize) {
    IN_FLIGHT_PEAK.store(0, Ordering::Relaxed);
    GATE.store(n, Ordering::Relaxed);
}

/// Whether the armed gate saw its `n` requests (and opened).
pub(crate) fn overlap_gate_opened() -> bool {
    GATE.load(Ordering::Relaxed) == 0
}

fn overlap_gate() {
    let n = GATE.load(Ordering::Relaxed);
    if n < 2 {
        return;
    }
    let reached =
        || IN_FLIGHT_NOW.load(Ordering::Relaxed) >= n || GATE.load(Ordering::Relaxed) == 0;
    GATE_QUEUE.wake_all();
    GATE_QUEUE.wait_until_deadline(reached, Some(machine::monotonic_ns() + 2_000_000_000));
    if IN_FLIGHT_NOW.load(Ordering::Relaxed) >= n {
        GATE.store(0, Ordering::Relaxed);
    }
    GATE_QUEUE.wake_all();
}

/// One virtio block device.
pub struct VirtioBlk {
    description: String,
    device: SpinLock<VirtIOBlk<KeelHal, KeelTransport>>,
    /// Sleepers waiting for their request to reach the head of the used ring.
    done: WaitQueue,
    /// Free request slots; a flush takes them all.
    slots: Semaphore,
    capacity: u64,
    read_only: bool,
    /// Set when the device broke its protocol or stopped answering.
    broken: AtomicBool,
}

/// What one request owns while the device has it.
struct Request {
    req: BlkReq,
    resp: BlkResp,
    data: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

pub(crate) fn attach(t: KeelTransport, irq: IrqLine, place: &str) -> Result<(), String> {
    let device = VirtIOBlk::<KeelHal, _>::new(t)
        .map_err(|e| alloc::format!("virtio-blk {place}: init failed: {e}"))?;
    let capacity = device.capacity() * SECTOR_SIZE as u64;
    let read_only = device.readonly();
    let disk = Arc::new(VirtioBlk {
        description: alloc::format!("virtio-blk {place}"),
        device: SpinLock::new(device),
        done: WaitQueue::new(),
        slots: Semaphore::new(IN_FLIGHT),
        capacity,
        read_only,
        broken: AtomicBool::new(false),
    });
    let d = disk.clone();
    crate::on_interrupt(irq, move || {
        // Reading the ISR both tells and clears; a level-triggered line
        // drops only after it.
        d.device.lock().ack_interrupt();
        d.done.wake_all();
    })?;
    let index = keel_fs::block::register(disk);
    kprintln!(
        "keel: {} is {}: {} MiB{}",
        keel_fs::block::disk_name(index),
        alloc::format!("virtio-blk {place}"),
        capacity >> 20,
        if read_only { ", read-only" } else { "" }
    );
    Ok(())
}

impl VirtioBlk {
    fn check_range(&self, offset: u64, len: usize) -> Result<(), DiskError> {
        let s = SECTOR_SIZE as u64;
        let end = offset
            .checked_add(len as u64)
            .ok_or(DiskError::OutOfRange)?;
        if !offset.is_multiple_of(s) || !(len as u64).is_multiple_of(s) || end > self.capacity {
            return Err(DiskError::OutOfRange);
        }
        if self.broken.load(Ordering::Relaxed) {
            return Err(DiskError::Device("device stopped answering earlier"));
        }
        Ok(())
    }

    /// Run one read or write of whole sectors through `r.data`.
    fn request(&self, op: Op, sector: u64, r: &mut Box<Request>) -> Result<(), DiskError> {
        self.slots.acquire();
        let queued = {
            let mut dev = self.device.lock();
            let Request { req, resp, data } = &mut **r;
            // SAFETY: `req`, `data` and `resp` live in a heap allocation
            // that outlives the request: it is completed below with the
            // same buffers, or leaked if the device never answers.
            unsafe {
                match op {
                    Op::Read => dev.read_blocks_nb(sector as usize, req, data, resp),
                    Op::Write => dev.write_blocks_nb(sector as usize, req, data, resp),
                }
            }
        };
        let token = match queued {
            Ok(t) => t,
            Err(e) => {
                self.slots.release();
                kprintln!("keel: {}: cannot queue a request: {e}", self.description);
                return Err(DiskError::Device("cannot queue request"));
            }
        };
        let now = IN_FLIGHT_NOW.fetch_add(1, Ordering::Relaxed) + 1;
        IN_FLIGHT_PEAK.fetch_max(now, Ordering::Relaxed);
        overlap_gate();
        let mut outcome = None;
        let deadline = machine::monotonic_ns() + TIMEOUT_NS;
        let finished = self.done.wait_until_deadline(
            || {
                let mut dev = self.device.lock();
                if dev.peek_used() != Some(token) {
                    return false;
                }
                let Request { req, resp, data } = &mut **r;
                // SAFETY: the same buffers as queued above, and the device
                // has returned them (the token is at the used ring's head).
                outcome = Some(unsafe {
                    match op {
                        Op::Read => dev.complete_read_blocks(token, req, data, resp),
                        Op::Write => dev.complete_write_blocks(token, req, data, resp),
                    }
                });
                true
            },
            Some(deadline),
        );
        IN_FLIGHT_NOW.fetch_sub(1, Ordering::Relaxed);
        if !finished {
            // The device still owns the buffers: leave them to it forever
            // and refuse further requests rather than reuse the ring.
            self.broken.store(true, Ordering::Relaxed);
            let leaked = core::mem::replace(
                r,
                Box::new(Request {
                    req: BlkReq::default(),
                    resp: BlkResp::default(),
                    data: Vec::new(),
                }),
            );
            Box::leak(leaked);
            kprintln!(
                "keel: {}: no answer in 10 s; disk disabled",
                self.description
            );
            self.done.wake_all();
            return Err(DiskError::Device("no answer from the device"));
        }
        self.slots.release();
        // The next entry in the used ring may be another sleeper's, and no
        // interrupt will come for it: let them look.
        self.done.wake_all();
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(virtio_drivers::Error::IoError)) => Err(DiskError::Io),
            Some(Err(virtio_drivers::Error::Unsupported)) => {
                Err(DiskError::Device("request not supported"))
            }
            Some(Err(e)) => {
                if r.resp.status() == RespStatus::IO_ERR {
                    return Err(DiskError::Io);
                }
                kprintln!("keel: {}: request failed: {e}", self.description);
                Err(DiskError::Device("request failed"))
            }
            None => Err(DiskError::Device("request lost")),
        }
    }
}

impl Disk for VirtioBlk {
    fn description(&self) -> &str {
        &self.description
    }
    fn size(&self) -> u64 {
        self.capacity
    }
    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.check_range(offset, buf.len())?;
        let mut r = Box::new(Request {
            req: BlkReq::default(),
            resp: BlkResp::default(),
            data: vec![0; buf.len().min(CHUNK)],
        });
        for (i, piece) in buf.chunks_mut(CHUNK).enumerate() {
            r.data.truncate(piece.len());
            let sector = (offset + (i * CHUNK) as u64) / SECTOR_SIZE as u64;
            self.request(Op::Read, sector, &mut r)?;
            piece.copy_from_slice(&r.data);
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        if self.read_only {
            return Err(DiskError::ReadOnly);
        }
        self.check_range(offset, data.len())?;
        let mut r = Box::new(Request {
            req: BlkReq::default(),
            resp: BlkResp::default(),
            data: Vec::with_capacity(data.len().min(CHUNK)),
        });
        for (i, piece) in data.chunks(CHUNK).enumerate() {
            r.data.clear();
            r.data.extend_from_slice(piece);
            let sector = (offset + (i * CHUNK) as u64) / SECTOR_SIZE as u64;
            self.request(Op::Write, sector, &mut r)?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), DiskError> {
        if self.broken.load(Ordering::Relaxed) {
            return Err(DiskError::Device("device stopped answering earlier"));
        }
        // virtio-drivers 0.12 has no queued flush, only one that waits for
        // the used ring by polling and expects nothing else in flight. So:
        // take every slot (new requests sleep, in-flight ones finish), then
        // flush under the lock. The poll lasts one host fsync.
        // A deadline, since a request that never completes keeps its slot.
        let deadline = machine::monotonic_ns() + TIMEOUT_NS;
        let mut held = 0;
        while held < IN_FLIGHT && self.slots.acquire_deadline(deadline) {
            held += 1;
        }
        let result = if held == IN_FLIGHT {
            self.device.lock().flush()
        } else {
            Err(virtio_drivers::Error::NotReady)
        };
        for _ in 0..held {
            self.slots.release();
        }
        match result {
            Ok(()) => Ok(()),
            Err(virtio_drivers::Error::IoError) => Err(DiskError::Io),
            Err(e) => {
                kprintln!("keel: {}: flush failed: {e}", self.description);
                Err(DiskError::Device("flush failed"))
            }
        }
    }
}
