//! The smoltcp `phy::Device` adapter over a driver's [`NetDevice`]: frames
//! are copied once between the driver's ring buffers and the stack.
//!
//! The driver hands a received frame to a closure and then recycles its
//! buffer, while smoltcp wants a token it consumes later; so a received
//! frame is copied into a buffer the adapter owns. Transmit writes straight
//! into the driver's buffer. When the driver reports its ring full, the
//! adapter offers no transmit token until the device's next wake-up, so
//! smoltcp keeps the packet queued in the socket instead of losing it.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::device::NetDevice;

/// Ethernet header bytes on top of the IP MTU.
const ETHERNET_HEADER: usize = 14;

/// Counters of one NIC, for logs and tests.
#[derive(Default)]
pub struct NicStats {
    /// Frames received.
    pub rx_frames: AtomicU64,
    /// Frames sent.
    pub tx_frames: AtomicU64,
    /// Frames dropped because the ring filled between the token and the
    /// write (the device changed its mind); TCP retransmits them.
    pub tx_dropped: AtomicU64,
    /// Received frames the stack discarded before smoltcp saw them (see
    /// `Iface::poll`).
    pub rx_discarded: AtomicU64,
}

/// One NIC as smoltcp sees it.
pub struct NicPhy {
    dev: Arc<dyn NetDevice>,
    rx: Vec<u8>,
    /// `rx` holds a frame fetched by `peek` that smoltcp has not taken yet.
    held: bool,
    /// Set when the driver said its transmit ring is full; cleared by the
    /// device's wake-up (see `Stack::device_woke`).
    tx_blocked: Arc<AtomicBool>,
    stats: Arc<NicStats>,
}

impl NicPhy {
    /// Wrap `dev`. `tx_blocked` is shared with the wake-up the stack
    /// installs on the device.
    pub fn new(dev: Arc<dyn NetDevice>, tx_blocked: Arc<AtomicBool>) -> Self {
        Self {
            dev,
            rx: Vec::new(),
            held: false,
            tx_blocked,
            stats: Arc::new(NicStats::default()),
        }
    }

    /// Whether the driver's transmit ring was full at the last try (until
    /// its wake-up says otherwise).
    pub fn tx_blocked(&self) -> bool {
        self.tx_blocked.load(Ordering::Acquire)
    }

    /// The device's counters.
    pub fn stats(&self) -> Arc<NicStats> {
        self.stats.clone()
    }

    /// The next received frame, fetched from the driver but left for
    /// smoltcp's next `receive` (or for `discard`); None when none waits.
    pub fn peek(&mut self) -> Option<&[u8]> {
        if !self.held {
            let rx = &mut self.rx;
            self.held = self.dev.receive(&mut |frame: &[u8]| {
                rx.clear();
                rx.extend_from_slice(frame);
            });
            if self.held {
                self.stats.rx_frames.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.held.then_some(&self.rx[..])
    }

    /// Throw away the frame `peek` returned, as if the wire had lost it.
    pub fn discard(&mut self) {
        if self.held {
            self.held = false;
            self.stats.rx_discarded.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A received frame, already copied out of the driver.
pub struct NicRxToken<'a> {
    frame: &'a [u8],
}

/// The right to send one frame.
pub struct NicTxToken<'a> {
    dev: &'a dyn NetDevice,
    tx_blocked: &'a AtomicBool,
    stats: &'a NicStats,
}

impl phy::RxToken for NicRxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

impl phy::TxToken for NicTxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut f = Some(f);
        let mut result = None;
        let sent = self.dev.transmit(len, &mut |buf: &mut [u8]| {
            if let Some(f) = f.take() {
                result = Some(f(buf));
            }
        });
        match sent {
            Ok(()) => {
                self.stats.tx_frames.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.tx_blocked.store(true, Ordering::Release);
                // The device's completion may have run (and cleared the
                // flag) between its refusal and the store above: look
                // again, or the flag stays set with no wake-up to clear it.
                if self.dev.tx_room() {
                    self.tx_blocked.store(false, Ordering::Release);
                }
                self.stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        match (result, f) {
            (Some(r), _) => r,
            // The driver refused before calling `fill`: smoltcp still needs
            // its closure run (it records what it sent), so it writes into
            // scratch memory and the frame is counted as dropped.
            (None, Some(f)) => {
                let mut scratch = alloc::vec![0u8; len];
                f(&mut scratch)
            }
            (None, None) => unreachable!("fill ran but produced no result"),
        }
    }
}

impl phy::Device for NicPhy {
    type RxToken<'a> = NicRxToken<'a>;
    type TxToken<'a> = NicTxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.peek()?;
        self.held = false;
        Some((
            NicRxToken { frame: &self.rx },
            NicTxToken {
                dev: &*self.dev,
                tx_blocked: &self.tx_blocked,
                stats: &self.stats,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        if self.tx_blocked.load(Ordering::Acquire) {
            return None;
        }
        // No token without room: smoltcp then keeps the data queued and
        // sends it later. A frame refused after smoltcp built it is lost
        // and rests on retransmission, which smoltcp 0.12 cancels on every
        // ACK in CLOSE-WAIT and LAST-ACK: an echo server answering a
        // half-closed client lost the frame for good.
        if !self.dev.tx_room() {
            self.tx_blocked.store(true, Ordering::Release);
            // Set, then look again: a completion in between cleared nothing.
            if !self.dev.tx_room() {
                return None;
            }
            self.tx_blocked.store(false, Ordering::Release);
        }
        Some(NicTxToken {
            dev: &*self.dev,
            tx_blocked: &self.tx_blocked,
            stats: &self.stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        // A device's nonsense MTU is bounded: below 576 IPv4 cannot work
        // at all, above 65521 the length fields overflow.
        caps.max_transmission_unit = self.dev.mtu().clamp(576, 65521) + ETHERNET_HEADER;
        // One frame per token: the driver's ring decides how many fit.
        caps.max_burst_size = None;
        if self.dev.checksum_offload() {
            let mut c = ChecksumCapabilities::ignored();
            // Offload covers TCP/UDP; the IPv4 header checksum is cheap and
            // some devices do not fill it in.
            c.ipv4 = Checksum::Both;
            caps.checksum = c;
        }
        caps
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::device::{TxFull, Wake};
    use alloc::collections::VecDeque;
    use smoltcp::phy::{Device, RxToken, TxToken};
    use spin::Mutex;

    /// A NIC in memory: frames pushed into `rx` are received; transmitted
    /// frames land in `tx`; `ring` slots limit transmits in flight.
    #[derive(Default)]
    pub struct FakeNic {
        pub rx: Mutex<VecDeque<Vec<u8>>>,
        pub tx: Mutex<Vec<Vec<u8>>>,
        pub ring: Mutex<usize>,
        pub wake: Mutex<Option<Wake>>,
        /// Complete every transmit (and wake) just as one is refused: the
        /// interrupt racing the refusal.
        pub complete_on_refusal: Mutex<bool>,
    }

    impl FakeNic {
        pub fn with_ring(slots: usize) -> Arc<Self> {
            let n = Arc::new(Self::default());
            *n.ring.lock() = slots;
            n
        }
        /// The driver completed every transmit: ring empty, wake the stack.
        pub fn complete_tx(&self) {
            *self.ring.lock() = usize::MAX;
            if let Some(w) = self.wake.lock().clone() {
                w();
            }
        }
    }

    impl NetDevice for FakeNic {
        fn description(&self) -> &str {
            "fake"
        }
        fn mac_address(&self) -> [u8; 6] {
            [0x52, 0x54, 0, 0x12, 0x34, 0x56]
        }
        fn receive(&self, deliver: &mut dyn FnMut(&[u8])) -> bool {
            match self.rx.lock().pop_front() {
                Some(f) => {
                    deliver(&f);
                    true
                }
                None => false,
            }
        }
        fn transmit(&self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), TxFull> {
            let mut ring = self.ring.lock();
            if *ring == 0 {
                if *self.complete_on_refusal.lock() {
                    *ring = usize::MAX;
                    drop(ring);
                    self.complete_tx();
                }
                return Err(TxFull);
            }
            *ring = ring.saturating_sub(1);
            let mut buf = alloc::vec![0u8; len];
            fill(&mut buf);
            self.tx.lock().push(buf);
            Ok(())
        }
        fn tx_room(&self) -> bool {
            *self.ring.lock() > 0
        }
        fn set_wake(&self, wake: Wake) {
            *self.wake.lock() = Some(wake);
        }
    }

    #[test]
    fn frames_pass_through_in_order() {
        let nic = FakeNic::with_ring(8);
        nic.rx.lock().push_back(alloc::vec![1, 2, 3]);
        nic.rx.lock().push_back(alloc::vec![4, 5]);
        let mut phy = NicPhy::new(nic.clone(), Arc::new(AtomicBool::new(false)));
        let now = Instant::from_millis(0);
        let (rx, _) = phy.receive(now).unwrap();
        assert_eq!(rx.consume(|f| f.to_vec()), [1, 2, 3]);
        let (rx, _) = phy.receive(now).unwrap();
        assert_eq!(rx.consume(|f| f.to_vec()), [4, 5]);
        assert!(phy.receive(now).is_none());
        let tx = phy.transmit(now).unwrap();
        tx.consume(4, |b| b.copy_from_slice(&[9, 8, 7, 6]));
        assert_eq!(nic.tx.lock().as_slice(), [alloc::vec![9, 8, 7, 6]]);
        assert_eq!(phy.stats().rx_frames.load(Ordering::Relaxed), 2);
        assert_eq!(phy.stats().tx_frames.load(Ordering::Relaxed), 1);
    }

    /// A full ring gives smoltcp no token at all, so it keeps the frame
    /// queued instead of building one the driver then throws away.
    #[test]
    fn a_full_ring_withholds_tokens_until_cleared() {
        let nic = FakeNic::with_ring(1);
        let blocked = Arc::new(AtomicBool::new(false));
        let mut phy = NicPhy::new(nic.clone(), blocked.clone());
        let now = Instant::from_millis(0);
        phy.transmit(now).unwrap().consume(2, |b| b.fill(1));
        assert!(phy.transmit(now).is_none(), "no token for a full ring");
        assert!(blocked.load(Ordering::Acquire));
        assert_eq!(phy.stats().tx_dropped.load(Ordering::Relaxed), 0);
        nic.complete_tx();
        blocked.store(false, Ordering::Release); // what the stack's wake does
        assert!(phy.transmit(now).is_some());
    }

    /// A completion that lands between the driver's refusal and the
    /// adapter marking the device blocked must not leave it blocked: no
    /// wake-up would come, and the stack, which ignores a blocked NIC's
    /// timers, would stop sending (and retransmitting) on it. (The token
    /// paired with a received frame is the one that can still be refused.)
    #[test]
    fn a_completion_racing_a_refusal_does_not_leave_the_device_blocked() {
        let nic = FakeNic::with_ring(0);
        *nic.complete_on_refusal.lock() = true;
        nic.rx.lock().push_back(alloc::vec![1, 2, 3]);
        let blocked = Arc::new(AtomicBool::new(false));
        let b = blocked.clone();
        nic.set_wake(Arc::new(move || b.store(false, Ordering::Release)));
        let mut phy = NicPhy::new(nic.clone(), blocked.clone());
        let now = Instant::from_millis(0);
        let (_rx, tx) = phy.receive(now).unwrap();
        tx.consume(2, |b| b.fill(1));
        assert_eq!(phy.stats().tx_dropped.load(Ordering::Relaxed), 1);
        assert!(!blocked.load(Ordering::Acquire), "room again, not blocked");
        assert!(phy.transmit(now).is_some());
    }

    #[test]
    fn capabilities_follow_the_device() {
        let nic = FakeNic::with_ring(1);
        let phy = NicPhy::new(nic, Arc::new(AtomicBool::new(false)));
        let caps = phy.capabilities();
        assert_eq!(caps.medium, Medium::Ethernet);
        assert_eq!(caps.max_transmission_unit, 1514);
    }
}
