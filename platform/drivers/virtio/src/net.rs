//! virtio-net as a `keel_net::device::NetDevice`.
//!
//! Every receive slot of the ring holds one heap buffer big enough for a
//! full frame; `receive` hands the frame to the stack straight from that
//! buffer and queues it again. Transmit buffers come from a free list and
//! return to it when the device has used them (reaped in the interrupt
//! and before each send). Only MAC and link status are negotiated: no
//! checksum offload and no mergeable receive buffers, so every frame is
//! complete and every checksum is the stack's (docs/devices.md).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use keel_core::kprintln;
use keel_core::sync::SpinLock;
use keel_hal::IrqLine;
use keel_net::device::{NetDevice, TxFull, Wake};
use virtio_drivers::device::net::VirtIONetRaw;

use crate::KeelTransport;
use crate::hal::KeelHal;

/// Ring size of each queue (QEMU offers 256; 32 is plenty for a unikernel
/// and keeps 64 frame buffers per NIC).
const QUEUE: usize = 32;
/// One receive or transmit buffer: virtio-net header plus a 1514-byte
/// frame fits with room to spare.
const BUF: usize = 2048;
/// Largest Ethernet frame without FCS at MTU 1500.
const MAX_FRAME: usize = 1514;

type Raw = VirtIONetRaw<KeelHal, KeelTransport, QUEUE>;

struct Rings {
    dev: Raw,
    /// Receive buffers the device holds, by token.
    rx: Vec<Option<Box<[u8]>>>,
    /// Transmit buffers the device holds (with the length queued), by token.
    tx_busy: Vec<Option<(Box<[u8]>, usize)>>,
    /// Transmit buffers ready for use.
    tx_free: Vec<Box<[u8]>>,
}

impl Rings {
    /// Take back every transmit buffer the device has finished with.
    fn reap(&mut self) {
        while let Some(token) = self.dev.poll_transmit() {
            let Some((buf, len)) = self.tx_busy.get_mut(token as usize).and_then(Option::take)
            else {
                // A token we never queued: the device broke the protocol.
                // Stop reaping rather than pop someone else's buffer.
                break;
            };
            // SAFETY: the same buffer and length as given to transmit_begin.
            if unsafe { self.dev.transmit_complete(token, &buf[..len]) }.is_ok() {
                self.tx_free.push(buf);
            }
        }
    }
}

/// One virtio NIC.
pub struct VirtioNet {
    description: String,
    mac: [u8; 6],
    rings: SpinLock<Rings>,
    wake: SpinLock<Option<Wake>>,
    oversize_logged: AtomicBool,
}

pub(crate) fn attach(t: KeelTransport, irq: IrqLine, place: &str) -> Result<(), String> {
    let mut dev =
        Raw::new(t).map_err(|e| alloc::format!("virtio-net {place}: init failed: {e}"))?;
    let mut rx: Vec<Option<Box<[u8]>>> = (0..QUEUE).map(|_| None).collect();
    for _ in 0..QUEUE {
        let mut buf: Box<[u8]> = vec![0u8; BUF].into_boxed_slice();
        // SAFETY: the buffer is heap memory kept in `rx` until the device
        // returns it through receive_complete.
        let token = unsafe { dev.receive_begin(&mut buf) }
            .map_err(|e| alloc::format!("virtio-net {place}: filling the receive ring: {e}"))?;
        match rx.get_mut(token as usize) {
            Some(slot) => *slot = Some(buf),
            None => {
                return Err(alloc::format!(
                    "virtio-net {place}: token {token} out of range"
                ));
            }
        }
    }
    let mac = dev.mac_address();
    let nic = Arc::new(VirtioNet {
        description: alloc::format!("virtio-net {place}"),
        mac,
        rings: SpinLock::new(Rings {
            dev,
            rx,
            tx_busy: (0..QUEUE).map(|_| None).collect(),
            tx_free: (0..QUEUE)
                .map(|_| vec![0u8; BUF].into_boxed_slice())
                .collect(),
        }),
        wake: SpinLock::new(None),
        oversize_logged: AtomicBool::new(false),
    });
    let n = nic.clone();
    crate::on_interrupt(irq, move || {
        {
            let mut rings = n.rings.lock();
            rings.dev.ack_interrupt();
            rings.reap();
        }
        let wake = n.wake.lock().clone();
        if let Some(w) = wake {
            w();
        }
    })?;
    let index = keel_net::device::register(nic);
    kprintln!(
        "keel: eth{index} is virtio-net {place}, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    );
    Ok(())
}

impl NetDevice for VirtioNet {
    fn description(&self) -> &str {
        &self.description
    }

    fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    fn receive(&self, deliver: &mut dyn FnMut(&[u8])) -> bool {
        let (buf, start, len) = {
            let mut rings = self.rings.lock();
            let Some(token) = rings.dev.poll_receive() else {
                return false;
            };
            let Some(mut buf) = rings.rx.get_mut(token as usize).and_then(Option::take) else {
                kprintln!(
                    "keel: {}: device returned unknown buffer {token}",
                    self.description
                );
                return false;
            };
            // SAFETY: the buffer queued under this token, returned whole.
            match unsafe { rings.dev.receive_complete(token, &mut buf) } {
                Ok((header, len)) => (buf, header, len),
                Err(e) => {
                    // Popped but malformed (shorter than its header): drop
                    // the frame, give the buffer back to the device.
                    kprintln!("keel: {}: bad receive: {e}", self.description);
                    Self::requeue(&mut rings, buf);
                    return true;
                }
            }
        };
        // No lock held while the stack looks at the frame.
        if let Some(frame) = buf.get(start..start + len) {
            deliver(frame);
        }
        Self::requeue(&mut self.rings.lock(), buf);
        true
    }

    fn transmit(&self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxFull> {
        if len > MAX_FRAME || len == 0 {
            if !self.oversize_logged.swap(true, Ordering::Relaxed) {
                kprintln!("keel: {}: dropping a {len}-byte frame", self.description);
            }
            return Ok(());
        }
        let (mut buf, header) = {
            let mut rings = self.rings.lock();
            rings.reap();
            let Some(mut buf) = rings.tx_free.pop() else {
                return Err(TxFull);
            };
            match rings.dev.fill_buffer_header(&mut buf) {
                Ok(h) => (buf, h),
                Err(_) => {
                    rings.tx_free.push(buf);
                    return Err(TxFull);
                }
            }
        };
        fill(&mut buf[header..header + len]);
        let mut rings = self.rings.lock();
        let total = header + len;
        // SAFETY: the buffer is heap memory kept in `tx_busy` until reaped.
        match unsafe { rings.dev.transmit_begin(&buf[..total]) } {
            Ok(token) => match rings.tx_busy.get_mut(token as usize) {
                Some(slot) => {
                    *slot = Some((buf, total));
                    Ok(())
                }
                None => {
                    // Cannot happen with virtio-drivers' tokens (descriptor
                    // indices < QUEUE); keep the buffer alive regardless.
                    Box::leak(buf);
                    Ok(())
                }
            },
            Err(_) => {
                rings.tx_free.push(buf);
                Err(TxFull)
            }
        }
    }

    fn tx_room(&self) -> bool {
        let mut rings = self.rings.lock();
        rings.reap();
        !rings.tx_free.is_empty()
    }

    fn set_wake(&self, wake: Wake) {
        *self.wake.lock() = Some(wake);
    }
}

impl VirtioNet {
    fn requeue(rings: &mut Rings, mut buf: Box<[u8]>) {
        // SAFETY: heap memory kept in `rx` until the device returns it.
        match unsafe { rings.dev.receive_begin(&mut buf) } {
            Ok(token) => {
                if let Some(slot) = rings.rx.get_mut(token as usize) {
                    *slot = Some(buf);
                } else {
                    Box::leak(buf);
                }
            }
            // The ring had room for it before; if not, the buffer is lost
            // to the ring (one fewer receive slot), not to memory safety.
            Err(_) => drop(buf),
        }
    }
}
