//! What a network interface driver gives the stack: Ethernet frames in and
//! out of the device's own buffers, and a wake-up when either side moves.
//!
//! Drivers (platform/drivers) implement [`NetDevice`] and call [`register`]
//! during device discovery; the stack builds one interface per registered
//! device. The trait is object-safe and synchronous: every method is called
//! with no stack lock held by the driver, and none of them may sleep.

use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

/// The transmit ring has no free slot; retry after the device's next wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxFull;

/// Called (possibly in interrupt context) when a frame arrived or transmit
/// space was freed. It must not sleep.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// One Ethernet NIC.
pub trait NetDevice: Send + Sync {
    /// Name for logs and the interface list (`eth0`, …) is given by the
    /// stack; this is the driver's description (`virtio-net 00:03.0`).
    fn description(&self) -> &str;
    /// The station MAC address.
    fn mac_address(&self) -> [u8; 6];
    /// Largest IP packet the link carries (Ethernet payload).
    fn mtu(&self) -> usize {
        1500
    }
    /// True when the device checks received checksums and fills in
    /// transmitted ones, so the stack may skip both.
    fn checksum_offload(&self) -> bool {
        false
    }
    /// Hand at most one received frame (Ethernet header first) to
    /// `deliver`, straight from the receive buffer, then recycle the
    /// buffer. Returns false when no frame was waiting.
    fn receive(&self, deliver: &mut dyn FnMut(&[u8])) -> bool;
    /// Send one frame of `len` bytes which `fill` writes into the transmit
    /// buffer in place.
    fn transmit(&self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxFull>;
    /// Whether a transmit would find room now. The stack asks before it
    /// lets smoltcp build a frame (a frame the device then refuses is lost
    /// after smoltcp counted it sent), and again after marking the device
    /// blocked (a completion between the check and the mark would leave it
    /// blocked with no wake-up to come).
    fn tx_room(&self) -> bool;
    /// Install the wake-up the device calls on receive and transmit
    /// completion (replacing any earlier one).
    fn set_wake(&self, wake: Wake);
}

static DEVICES: Mutex<Vec<Arc<dyn NetDevice>>> = Mutex::new(Vec::new());

/// Make a NIC known to the stack; returns its index (`eth{index}`).
pub fn register(device: Arc<dyn NetDevice>) -> usize {
    let mut devices = DEVICES.lock();
    devices.push(device);
    devices.len() - 1
}

/// Every registered NIC, in registration order.
pub fn devices() -> Vec<Arc<dyn NetDevice>> {
    DEVICES.lock().clone()
}
