//! virtio-rng (entropy device), feeding `keel_core::random`.
//!
//! virtio-drivers' entropy driver only waits by polling its ring, with no
//! way to give up on a dead device, so this one runs its own queue: eight
//! descriptors of which one is ever used, the caller sleeping until the
//! device's interrupt (or a deadline). The layout fits both the modern and
//! the legacy (page-aligned used ring) virtqueue rules.

use alloc::string::String;
use alloc::sync::Arc;
use core::ptr::NonNull;
use core::sync::atomic::{Ordering, fence};

use keel_core::kprintln;
use keel_core::sync::{Mutex, SpinLock, WaitQueue};
use keel_hal::{IrqLine, machine};
use virtio_drivers::transport::Transport;
use virtio_drivers::{BufferDirection, Hal};

use crate::KeelTransport;
use crate::hal::KeelHal;

bitflags::bitflags! {
    /// The only feature this driver accepts.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Features: u64 {
        /// VIRTIO_F_VERSION_1: must be accepted when offered.
        const VERSION_1 = 1 << 32;
    }
}

const SIZE: u16 = 8;
const AVAIL: usize = 16 * SIZE as usize;
const USED: usize = 4096;
/// Where the device writes the random bytes.
const DATA: usize = 2048;
/// Bytes asked for per request.
pub const REQUEST: usize = 64;
const TIMEOUT_NS: u64 = 2_000_000_000;

struct Ring {
    /// Two pages: descriptors and available ring, then the used ring.
    va: NonNull<u8>,
    pa: u64,
    /// Requests made (the available index).
    avail_idx: u16,
}

// SAFETY: the ring memory is owned by this struct alone (DMA pages that are
// never freed) and every access happens under `Rng::ring`'s lock.
unsafe impl Send for Ring {}

impl Ring {
    fn write16(&self, offset: usize, v: u16) {
        // SAFETY: offsets used are inside the two pages and 2-aligned.
        unsafe { (self.va.as_ptr().add(offset) as *mut u16).write_volatile(v) }
    }
    fn write32(&self, offset: usize, v: u32) {
        // SAFETY: as above, 4-aligned.
        unsafe { (self.va.as_ptr().add(offset) as *mut u32).write_volatile(v) }
    }
    fn write64(&self, offset: usize, v: u64) {
        // SAFETY: as above, 8-aligned.
        unsafe { (self.va.as_ptr().add(offset) as *mut u64).write_volatile(v) }
    }
    fn read16(&self, offset: usize) -> u16 {
        // SAFETY: as above.
        unsafe { (self.va.as_ptr().add(offset) as *const u16).read_volatile() }
    }
    fn read32(&self, offset: usize) -> u32 {
        // SAFETY: as above.
        unsafe { (self.va.as_ptr().add(offset) as *const u32).read_volatile() }
    }
    fn used_idx(&self) -> u16 {
        self.read16(USED + 2)
    }
}

/// One entropy device.
pub struct Rng {
    description: String,
    transport: SpinLock<KeelTransport>,
    /// One request at a time; held across the wait (requests are rare).
    ring: Mutex<Ring>,
    done: WaitQueue,
}

static DEVICES: SpinLock<alloc::vec::Vec<Arc<Rng>>> = SpinLock::new(alloc::vec::Vec::new());

/// Every entropy device attached.
pub fn devices() -> alloc::vec::Vec<Arc<Rng>> {
    DEVICES.lock().clone()
}

pub(crate) fn attach(mut t: KeelTransport, irq: IrqLine, place: &str) -> Result<(), String> {
    let description = alloc::format!("virtio-rng {place}");
    t.begin_init(Features::VERSION_1);
    if t.queue_used(0) || t.max_queue_size(0) < u32::from(SIZE) {
        t.set_status(virtio_drivers::transport::DeviceStatus::FAILED);
        return Err(alloc::format!("{description}: queue 0 unusable"));
    }
    let (pa, va) = KeelHal::dma_alloc(2, BufferDirection::DeviceToDriver);
    if pa == 0 {
        return Err(alloc::format!("{description}: no memory for the ring"));
    }
    t.queue_set(0, u32::from(SIZE), pa, pa + AVAIL as u64, pa + USED as u64);
    t.finish_init();
    let rng = Arc::new(Rng {
        description,
        transport: SpinLock::new(t),
        ring: Mutex::new(Ring {
            va,
            pa,
            avail_idx: 0,
        }),
        done: WaitQueue::new(),
    });
    let r = rng.clone();
    crate::on_interrupt(irq, move || {
        r.transport.lock().ack_interrupt();
        r.done.wake_all();
    })?;
    DEVICES.lock().push(rng.clone());
    // Discovery runs before threads may sleep; the first harvest gets its
    // own thread.
    keel_core::sched::spawn("virtio-rng", move || {
        let mut seed = [0u8; REQUEST];
        match rng.read(&mut seed) {
            Ok(n) => keel_core::random::add_entropy(&seed[..n]),
            Err(e) => kprintln!("keel: {}: {e}", rng.description),
        }
    });
    Ok(())
}

impl Rng {
    /// Driver description for logs.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Fill up to [`REQUEST`] bytes of `out` with the device's random
    /// bytes; returns how many it gave. Sleeps until the device answers.
    pub fn read(&self, out: &mut [u8]) -> Result<usize, &'static str> {
        let want = out.len().min(REQUEST);
        let mut ring = self.ring.lock();
        let before = ring.used_idx();
        if before != ring.avail_idx {
            return Err("device stopped answering earlier");
        }
        // Descriptor 0: the data area, device-writable.
        ring.write64(0, ring.pa + DATA as u64);
        ring.write32(8, want as u32);
        ring.write16(12, 2); // VIRTQ_DESC_F_WRITE
        ring.write16(14, 0);
        let slot = usize::from(ring.avail_idx % SIZE);
        ring.write16(AVAIL + 4 + 2 * slot, 0);
        // The descriptor and ring entry are visible before the index.
        fence(Ordering::SeqCst);
        ring.avail_idx = ring.avail_idx.wrapping_add(1);
        ring.write16(AVAIL + 2, ring.avail_idx);
        fence(Ordering::SeqCst);
        self.transport.lock().notify(0);
        let deadline = machine::monotonic_ns() + TIMEOUT_NS;
        let answered = self
            .done
            .wait_until_deadline(|| ring.used_idx() != before, Some(deadline));
        if !answered {
            return Err("no answer in 2 s");
        }
        fence(Ordering::SeqCst);
        let entry = USED + 4 + 8 * usize::from(before % SIZE);
        if ring.read32(entry) != 0 {
            return Err("device returned a descriptor it was not given");
        }
        let n = (ring.read32(entry + 4) as usize).min(want);
        for (i, b) in out[..n].iter_mut().enumerate() {
            // SAFETY: DATA + n stays inside the first page.
            *b = unsafe { ring.va.as_ptr().add(DATA + i).read_volatile() };
        }
        Ok(n)
    }
}
